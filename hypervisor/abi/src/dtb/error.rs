//! [`DtbError`]: why a blob is not a well-formed flattened device tree.

use core::fmt;

use super::MAX_DTB_SIZE;

/// Why a blob was refused by the format checks of this module ([`Header::read`],
/// [`Walker`], [`copy_without_nops`]). [`Display`](fmt::Display) names the
/// offending header field or byte offset and the cause.
///
/// [`Header::read`]: super::Header::read
/// [`Walker`]: super::Walker
/// [`copy_without_nops`]: super::copy_without_nops
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbError {
    /// The buffer ends before the header or before `totalsize` bytes.
    Truncated {
        /// Bytes the header says (or the header itself) needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The first word is not `0xd00dfeed`.
    BadMagic {
        /// The word found.
        found: u32,
    },
    /// `totalsize` exceeds [`MAX_DTB_SIZE`].
    TooLarge {
        /// The header's `totalsize`.
        totalsize: usize,
    },
    /// A format version that cannot be read.
    UnsupportedVersion {
        /// The header's `version`.
        version: u32,
        /// The header's `last_comp_version`.
        last_comp_version: u32,
    },
    /// A header field is out of range or misaligned.
    BadHeader {
        /// The field, e.g. `off_dt_struct`.
        field: &'static str,
        /// What is wrong with it.
        cause: &'static str,
    },
    /// The memory reservation block is malformed.
    MemReserve {
        /// Byte offset in the blob.
        offset: usize,
        /// What is wrong.
        cause: &'static str,
    },
    /// The structure block is malformed.
    Structure {
        /// Byte offset in the blob of the offending token.
        offset: usize,
        /// What is wrong.
        cause: &'static str,
    },
    /// A structure-block token that is none of BEGIN_NODE, END_NODE, PROP, NOP, END.
    UnknownToken {
        /// Byte offset in the blob.
        offset: usize,
        /// The token word.
        token: u32,
    },
    /// The destination of [`copy_without_nops`](super::copy_without_nops) is too small.
    DstTooSmall {
        /// Bytes the NOP-free copy needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => write!(
                f,
                "device tree truncated: it needs {needed} bytes, only {available} are there"
            ),
            Self::BadMagic { found } => write!(
                f,
                "not a device tree: magic is {found:#010x}, expected 0xd00dfeed"
            ),
            Self::TooLarge { totalsize } => write!(
                f,
                "device tree header says totalsize = {totalsize} bytes, Ferry accepts at most \
                 {MAX_DTB_SIZE} (MAX_DTB_SIZE)"
            ),
            Self::UnsupportedVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "device tree version {version} (last compatible version {last_comp_version}) is \
                 not supported: copy_without_nops reads version 16 and later, the parsers of \
                 its copy (HostInfo::parse, the config) version 17 and later (both need last \
                 compatible version <= 17)"
            ),
            Self::BadHeader { field, cause } => {
                write!(f, "device tree header: `{field}` {cause}")
            }
            Self::MemReserve { offset, cause } => {
                write!(f, "memory reservation block at byte {offset:#x}: {cause}")
            }
            Self::Structure { offset, cause } => {
                write!(f, "structure block at byte {offset:#x}: {cause}")
            }
            Self::UnknownToken { offset, token } => write!(
                f,
                "structure block at byte {offset:#x}: unknown token {token:#010x}"
            ),
            Self::DstTooSmall { needed, available } => write!(
                f,
                "copy buffer too small: the NOP-free device tree needs {needed} bytes, the \
                 buffer has {available}"
            ),
        }
    }
}
