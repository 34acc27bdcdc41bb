//! The flattened device-tree format itself: the header ([`Header`]), the memory
//! reservation block ([`rsvmap_len`], [`rsvmap_entries`]) and a validating walk
//! over the structure block's tokens ([`Walker`]).
//!
//! Everything reads big-endian words from byte slices with `get` and
//! `from_be_bytes` (never an unaligned word load, never an index panic), and
//! every offset sum is checked.

use super::{DtbError, MAX_DTB_SIZE};

/// `magic` of every DTB.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Starts a node; followed by its NUL-terminated name, padded to 4 bytes.
pub const FDT_BEGIN_NODE: u32 = 1;
/// Ends a node.
pub const FDT_END_NODE: u32 = 2;
/// A property: `len`, `nameoff`, then `len` value bytes padded to 4.
pub const FDT_PROP: u32 = 3;
/// Filler that parsers must skip (left by in-place edits, e.g. QEMU's).
pub const FDT_NOP: u32 = 4;
/// Ends the structure block.
pub const FDT_END: u32 = 9;

/// Size of a version 17 header, the one [`copy_without_nops`](super::copy_without_nops) writes.
pub const HEADER_SIZE: usize = 40;
/// Size of a version 16 header (no `size_dt_struct`).
const HEADER_SIZE_V16: usize = 36;
/// Deepest node nesting accepted (the root is depth 1). Real trees stay below 10;
/// the bound keeps recursive walks of a checked blob (e.g. the host device-tree
/// parser at EL2) on a small stack.
pub const MAX_DEPTH: usize = 16;

/// The big-endian word at `off`, if all four bytes are in `b`.
pub fn be32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The big-endian doubleword at `off`, if all eight bytes are in `b`.
pub fn be64(b: &[u8], off: usize) -> Option<u64> {
    let hi = be32(b, off)?;
    let lo = be32(b, off.checked_add(4)?)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// `n` rounded up to a multiple of 4.
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// A checked header.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// Bytes of the whole blob.
    pub totalsize: usize,
    /// Offset of the structure block.
    pub off_dt_struct: usize,
    /// Offset of the strings block.
    pub off_dt_strings: usize,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: usize,
    /// Format version (16 or later).
    pub version: u32,
    /// Oldest version the blob is compatible with (17 or earlier).
    pub last_comp_version: u32,
    /// Physical ID of the boot CPU.
    pub boot_cpuid_phys: u32,
    /// Bytes of the strings block.
    pub size_dt_strings: usize,
    /// `None` for a version 16 blob, whose header lacks the field.
    pub size_dt_struct: Option<usize>,
}

impl Header {
    /// Reads the first [`HEADER_SIZE`] bytes and checks magic, `totalsize <=`
    /// [`MAX_DTB_SIZE`] and the version (16 or later, last compatible 17 or
    /// earlier). Offsets are checked by [`Header::read`].
    pub fn read_prefix(prefix: &[u8]) -> Result<Self, DtbError> {
        let word = |i: usize| {
            be32(prefix, i * 4).ok_or(DtbError::Truncated {
                needed: HEADER_SIZE,
                available: prefix.len(),
            })
        };
        let magic = word(0)?;
        if magic != FDT_MAGIC {
            return Err(DtbError::BadMagic { found: magic });
        }
        let h = Self {
            totalsize: word(1)? as usize,
            off_dt_struct: word(2)? as usize,
            off_dt_strings: word(3)? as usize,
            off_mem_rsvmap: word(4)? as usize,
            version: word(5)?,
            last_comp_version: word(6)?,
            boot_cpuid_phys: word(7)?,
            size_dt_strings: word(8)? as usize,
            size_dt_struct: Some(word(9)? as usize),
        };
        if h.totalsize > MAX_DTB_SIZE {
            return Err(DtbError::TooLarge {
                totalsize: h.totalsize,
            });
        }
        if h.version < 16 || h.last_comp_version > 17 {
            return Err(DtbError::UnsupportedVersion {
                version: h.version,
                last_comp_version: h.last_comp_version,
            });
        }
        Ok(Self {
            size_dt_struct: if h.version >= 17 {
                h.size_dt_struct
            } else {
                None
            },
            ..h
        })
    }

    /// Reads and checks the whole header of `blob`: [`Header::read_prefix`], then
    /// `totalsize <= blob.len()` and every block inside `totalsize`.
    pub fn read(blob: &[u8]) -> Result<Self, DtbError> {
        let h = Self::read_prefix(blob)?;
        if h.totalsize > blob.len() {
            return Err(DtbError::Truncated {
                needed: h.totalsize,
                available: blob.len(),
            });
        }
        let header_size = if h.version >= 17 {
            HEADER_SIZE
        } else {
            HEADER_SIZE_V16
        };
        let bad = |field, cause| Err(DtbError::BadHeader { field, cause });
        if h.totalsize < header_size {
            return bad("totalsize", "is smaller than the header");
        }
        let inside = |off: usize, size: usize| {
            off >= header_size && off.checked_add(size).is_some_and(|end| end <= h.totalsize)
        };
        if h.off_mem_rsvmap % 8 != 0 {
            return bad("off_mem_rsvmap", "is not a multiple of 8");
        }
        if !inside(h.off_mem_rsvmap, 16) {
            return bad(
                "off_mem_rsvmap",
                "points outside the blob (or into the header)",
            );
        }
        if h.off_dt_struct % 4 != 0 {
            return bad("off_dt_struct", "is not a multiple of 4");
        }
        if !inside(h.off_dt_struct, h.size_dt_struct.unwrap_or(0)) {
            return bad(
                "off_dt_struct",
                "with size_dt_struct points outside the blob (or into the header)",
            );
        }
        if !inside(h.off_dt_strings, h.size_dt_strings) {
            return bad(
                "off_dt_strings",
                "with size_dt_strings points outside the blob (or into the header)",
            );
        }
        Ok(h)
    }

    /// Byte range of the structure block (`totalsize` bounds it in version 16).
    pub fn struct_end(&self) -> usize {
        match self.size_dt_struct {
            Some(size) => self.off_dt_struct.saturating_add(size),
            None => self.totalsize,
        }
    }

    /// The strings block (empty if out of range, which [`Header::read`] rules out).
    pub fn strings<'a>(&self, blob: &'a [u8]) -> &'a [u8] {
        self.off_dt_strings
            .checked_add(self.size_dt_strings)
            .and_then(|end| blob.get(self.off_dt_strings..end))
            .unwrap_or_default()
    }
}

/// Length of the memory reservation block, terminating (0, 0) entry included,
/// after checking it ends inside `totalsize`.
pub fn rsvmap_len(blob: &[u8], h: &Header) -> Result<usize, DtbError> {
    let mut off = h.off_mem_rsvmap;
    loop {
        let entry_end = off.checked_add(16).filter(|&e| e <= h.totalsize);
        let entry = entry_end.and_then(|_| Some((be64(blob, off)?, be64(blob, off + 8)?)));
        let Some((addr, size)) = entry else {
            return Err(DtbError::MemReserve {
                offset: off,
                cause: "runs past the end of the blob without its (0, 0) terminator",
            });
        };
        off += 16;
        if addr == 0 && size == 0 {
            return Ok(off - h.off_mem_rsvmap);
        }
    }
}

/// The (address, size) entries of a memory reservation block already checked by
/// [`rsvmap_len`], terminator excluded.
pub fn rsvmap_entries<'a>(blob: &'a [u8], h: &Header) -> impl Iterator<Item = (u64, u64)> + 'a {
    let mut off = h.off_mem_rsvmap;
    core::iter::from_fn(move || {
        let entry = (be64(blob, off)?, be64(blob, off.checked_add(8)?)?);
        off = off.checked_add(16)?;
        (entry != (0, 0)).then_some(entry)
    })
}

/// One structure-block token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// FDT_BEGIN_NODE with the node's name (`""` for the root).
    Begin(&'a str),
    /// FDT_END_NODE.
    EndNode,
    /// FDT_PROP with its name (from the strings block) and value.
    Prop(&'a str, &'a [u8]),
    /// FDT_NOP.
    Nop,
    /// FDT_END.
    End,
}

/// A token with the byte range `[offset, offset + len)` it occupies in the blob,
/// padding included.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The token.
    pub token: Token<'a>,
    /// Byte offset of the token word in the blob.
    pub offset: usize,
    /// Bytes it occupies, name or value and padding included.
    pub len: usize,
}

/// Walks the structure block checking, token by token: known tokens, names and
/// values inside the block, NUL-terminated UTF-8 names, property names inside
/// the strings block, properties before child nodes, a single root, balanced
/// BEGIN_NODE/END_NODE at most [`MAX_DEPTH`] deep, and a final FDT_END.
pub struct Walker<'a> {
    blob: &'a [u8],
    strings: &'a [u8],
    pos: usize,
    end: usize,
    depth: usize,
    root_seen: bool,
    /// The current node has had a child or was closed: no more PROP for it.
    props_closed: bool,
    done: bool,
}

impl<'a> Walker<'a> {
    /// A walk over `blob`'s structure block; `h` must come from [`Header::read`] on `blob`.
    pub fn new(blob: &'a [u8], h: &Header) -> Self {
        Self {
            blob,
            strings: h.strings(blob),
            pos: h.off_dt_struct,
            end: h.struct_end().min(blob.len()),
            depth: 0,
            root_seen: false,
            props_closed: false,
            done: false,
        }
    }

    fn err(&self, cause: &'static str) -> DtbError {
        DtbError::Structure {
            offset: self.pos,
            cause,
        }
    }

    /// The bytes from `from` to the end of the structure block.
    fn rest(&self, from: usize) -> &'a [u8] {
        self.blob.get(from..self.end).unwrap_or_default()
    }

    /// The next token, `Ok(None)` after FDT_END, or the first problem found.
    pub fn next_item(&mut self) -> Result<Option<Item<'a>>, DtbError> {
        if self.done {
            return Ok(None);
        }
        let offset = self.pos;
        let Some(tag) = be32(self.rest(offset), 0) else {
            return Err(self.err("the block ends without an FDT_END token"));
        };
        let (token, len) = match tag {
            FDT_BEGIN_NODE => {
                if self.depth == 0 && self.root_seen {
                    return Err(self.err("a second root node follows the first"));
                }
                if self.depth >= MAX_DEPTH {
                    return Err(self.err("nodes nest deeper than 16 levels (MAX_DEPTH)"));
                }
                let name_area = self.rest(offset + 4);
                let Some(nul) = name_area.iter().position(|&b| b == 0) else {
                    return Err(self.err("node name has no NUL before the end of the block"));
                };
                let Ok(name) = core::str::from_utf8(name_area.get(..nul).unwrap_or_default())
                else {
                    return Err(self.err("node name is not UTF-8"));
                };
                if self.depth == 0 && !name.is_empty() {
                    return Err(self.err("root node name is not empty"));
                }
                let len = align4(4 + nul + 1).unwrap_or(usize::MAX);
                self.root_seen = true;
                self.depth += 1;
                self.props_closed = false;
                (Token::Begin(name), len)
            }
            FDT_END_NODE => {
                if self.depth == 0 {
                    return Err(self.err("FDT_END_NODE without a matching FDT_BEGIN_NODE"));
                }
                self.depth -= 1;
                self.props_closed = true;
                (Token::EndNode, 4)
            }
            FDT_PROP => {
                if self.depth == 0 {
                    return Err(self.err("FDT_PROP outside any node"));
                }
                if self.props_closed {
                    return Err(self.err("FDT_PROP after a child node"));
                }
                let rest = self.rest(offset);
                let (Some(vlen), Some(nameoff)) = (be32(rest, 4), be32(rest, 8)) else {
                    return Err(self.err("FDT_PROP header runs past the end of the block"));
                };
                let vlen = vlen as usize;
                let Some(value) = 12usize.checked_add(vlen).and_then(|e| rest.get(12..e)) else {
                    return Err(self.err("property value runs past the end of the block"));
                };
                let Some(name_area) = self.strings.get(nameoff as usize..) else {
                    return Err(self.err("property name offset is outside the strings block"));
                };
                let Some(nul) = name_area.iter().position(|&b| b == 0) else {
                    return Err(self.err("property name has no NUL inside the strings block"));
                };
                let Ok(name) = core::str::from_utf8(name_area.get(..nul).unwrap_or_default())
                else {
                    return Err(self.err("property name is not UTF-8"));
                };
                (
                    Token::Prop(name, value),
                    align4(12 + value.len()).unwrap_or(usize::MAX),
                )
            }
            FDT_NOP => (Token::Nop, 4),
            FDT_END => {
                if !self.root_seen {
                    return Err(self.err("FDT_END before any node"));
                }
                if self.depth != 0 {
                    return Err(self.err("FDT_END inside an unclosed node"));
                }
                self.done = true;
                (Token::End, 4)
            }
            token => return Err(DtbError::UnknownToken { offset, token }),
        };
        match offset.checked_add(len).filter(|&e| e <= self.end) {
            Some(next) => self.pos = next,
            None => return Err(self.err("token padding runs past the end of the block")),
        }
        Ok(Some(Item { token, offset, len }))
    }
}
