//! [`DtError`], the one error type of host device-tree discovery, and the
//! allocation-free strings ([`FixedStr`], [`NodePath`]) its variants carry.

use core::fmt;

use super::DtbError;
use crate::MAX_CPUS;

/// A short string held inline (no heap): at most `N` bytes, cut at a character
/// boundary when longer, with a mark that it was cut. `N` must be below 256.
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: u8,
    truncated: bool,
}

/// A node's path, e.g. `/soc@0/interrupt-controller@38800000` (64 bytes, then cut).
pub type NodePath = FixedStr<64>;

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const fn empty() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// `s`, cut to `N` bytes at a character boundary if longer.
    pub fn new(s: &str) -> Self {
        let mut f = Self::empty();
        f.push_str(s);
        f
    }

    /// `bytes` as text: the longest valid UTF-8 prefix, marked cut if it is not all
    /// of `bytes`.
    pub fn from_lossy(bytes: &[u8]) -> Self {
        match core::str::from_utf8(bytes) {
            Ok(s) => Self::new(s),
            Err(e) => {
                let mut f = Self::new(
                    bytes
                        .get(..e.valid_up_to())
                        .map_or("", |b| core::str::from_utf8(b).unwrap_or_default()),
                );
                f.truncated = true;
                f
            }
        }
    }

    /// Appends `s`, as much of it as fits (whole characters only).
    pub fn push_str(&mut self, s: &str) {
        let cap = N.min(u8::MAX as usize);
        let len = self.len as usize;
        let mut take = s.len().min(cap.saturating_sub(len));
        while take > 0 && !s.is_char_boundary(take) {
            take -= 1;
        }
        if take < s.len() {
            self.truncated = true;
        }
        if let (Some(dst), Some(src)) = (self.buf.get_mut(len..len + take), s.get(..take)) {
            dst.copy_from_slice(src.as_bytes());
            self.len = (len + take) as u8;
        }
    }

    /// The path of child `name` of the node at `self` (`/` joins as `/name`).
    pub fn join(&self, name: &str) -> Self {
        let mut f = *self;
        if f.as_str() != "/" {
            f.push_str("/");
        }
        f.push_str(name);
        f
    }

    /// The text held (without the cut mark).
    pub fn as_str(&self) -> &str {
        self.buf
            .get(..self.len as usize)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Whether the original text was longer than `N` bytes.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> PartialEq for FixedStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() && self.truncated == other.truncated
    }
}

impl<const N: usize> Eq for FixedStr<N> {}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Why a host device tree was refused. [`Display`](fmt::Display) names the node
/// path and property where there is one, and the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// [`blob_at`](super::blob_at) was given address 0 (no DTB in `x0`).
    NullAddress,
    /// The blob is not a well-formed DTB (header, reservation block, structure
    /// block or copy buffer; the checks of [`ferry_abi::dtb`]).
    Format(DtbError),
    /// [`HostInfo::parse`](super::HostInfo::parse) found an FDT_NOP token: the blob
    /// must go through [`copy_without_nops`](super::copy_without_nops) first.
    Nop {
        /// Byte offset in the blob.
        offset: usize,
    },
    /// A property has a malformed value.
    Property {
        /// The node.
        node: NodePath,
        /// The property.
        property: &'static str,
        /// What is wrong with its value.
        cause: &'static str,
    },
    /// A required property is absent.
    MissingProperty {
        /// The node.
        node: NodePath,
        /// The property.
        property: &'static str,
    },
    /// A `#address-cells`/`#size-cells` value Ferry cannot use for this property.
    Cells {
        /// The node whose property is decoded with these cells.
        node: NodePath,
        /// The property being decoded (`reg`, `ranges`).
        property: &'static str,
        /// `#address-cells` or `#size-cells`.
        which: &'static str,
        /// The value.
        value: u32,
        /// The values accepted, e.g. "1 or 2".
        allowed: &'static str,
    },
    /// `/psci` says `method = "hvc"`, which from EL2 would trap to Ferry itself.
    PsciHvc {
        /// The PSCI node.
        node: NodePath,
    },
    /// `/psci` `method` is neither `smc` nor `hvc`.
    PsciMethod {
        /// The PSCI node.
        node: NodePath,
        /// The value found (cut to 16 bytes).
        value: FixedStr<16>,
    },
    /// No `/psci` node.
    NoPsci,
    /// No enabled node compatible with `arm,gic-v3`.
    NoGicV3 {
        /// A GICv2-family `compatible` found instead, if any.
        found: Option<&'static str>,
    },
    /// No memory node with a `reg` entry.
    NoMemory,
    /// No enabled `/cpus` child with `device_type = "cpu"`.
    NoCpus,
    /// More CPU nodes than [`MAX_CPUS`].
    TooManyCpus {
        /// The `/cpus` node.
        node: NodePath,
        /// How many enabled CPU nodes there are.
        count: usize,
    },
    /// More regions than a fixed array of [`HostInfo`](super::HostInfo) holds.
    TooManyRegions {
        /// The node whose entry did not fit.
        node: NodePath,
        /// Its property (empty for the memory reservation block).
        property: &'static str,
        /// What the regions are, e.g. "memory regions".
        kind: &'static str,
        /// The array size.
        max: usize,
        /// The constant that sets it, e.g. `MAX_MEMORY_REGIONS`.
        constant: &'static str,
    },
}

impl From<DtbError> for DtError {
    fn from(e: DtbError) -> Self {
        DtError::Format(e)
    }
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NullAddress => f.write_str("no device tree: its address (x0 at entry) is 0"),
            Self::Format(e) => e.fmt(f),
            Self::Nop { offset } => write!(
                f,
                "structure block at byte {offset:#x}: FDT_NOP token (the fdt crate mis-parses \
                 these: pass the blob through copy_without_nops first)"
            ),
            Self::Property {
                node,
                property,
                cause,
            } => write!(f, "{node}: property `{property}` {cause}"),
            Self::MissingProperty { node, property } => {
                write!(f, "{node}: property `{property}` is missing")
            }
            Self::Cells {
                node,
                property,
                which,
                value,
                allowed,
            } => write!(
                f,
                "{node}: property `{property}`: {which} = {value} is not supported here \
                 (Ferry reads {allowed})"
            ),
            Self::PsciHvc { node } => write!(
                f,
                "{node}: property `method` is \"hvc\": PSCI through HVC cannot reach firmware \
                 from EL2 (the host DT must say method = \"smc\")"
            ),
            Self::PsciMethod { node, value } => write!(
                f,
                "{node}: property `method` is \"{value}\": Ferry calls PSCI firmware through \
                 SMC (the host DT must say method = \"smc\")"
            ),
            Self::NoPsci => f.write_str(
                "no /psci node: Ferry starts CPUs and powers off through PSCI (the host DT \
                 needs /psci with method = \"smc\")",
            ),
            Self::NoGicV3 { found } => {
                f.write_str("no node compatible with \"arm,gic-v3\": Ferry needs a GICv3 (")?;
                if let Some(found) = found {
                    write!(f, "found \"{found}\"; ")?;
                }
                f.write_str("on QEMU use -M virt,gic-version=3)")
            }
            Self::NoMemory => f.write_str(
                "no memory: no child of / with device_type = \"memory\" has a `reg` entry",
            ),
            Self::NoCpus => f.write_str(
                "/cpus: no CPU: no child with device_type = \"cpu\" that is not disabled",
            ),
            Self::TooManyCpus { node, count } => write!(
                f,
                "{node}: {count} CPUs found, Ferry supports at most {MAX_CPUS} (MAX_CPUS)"
            ),
            Self::TooManyRegions {
                node,
                property,
                kind,
                max,
                constant,
            } => {
                f.write_str(node.as_str())?;
                if !property.is_empty() {
                    write!(f, ": property `{property}`")?;
                }
                write!(
                    f,
                    ": more than {max} {kind}, Ferry keeps at most {max} ({constant})"
                )
            }
        }
    }
}
