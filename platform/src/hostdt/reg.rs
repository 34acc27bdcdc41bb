//! Property values: `#address-cells`/`#size-cells`, `reg` entries, translation
//! through the `ranges` of parent buses, and string(-list) values.

use super::DtError;
use super::error::NodePath;
use crate::Region;
use ferry_abi::dtb::be32;

/// A node's `#address-cells` and `#size-cells`: how its children's `reg` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cells {
    pub address: u32,
    pub size: u32,
}

impl Cells {
    /// The devicetree specification's defaults when a node does not say.
    pub const DEFAULT: Self = Self {
        address: 2,
        size: 1,
    };
}

/// One level of the bus hierarchy above a node: a node with children, its
/// `ranges` and its own parent, so child addresses can be translated to CPU
/// physical addresses. Lives on the stack of the recursive walk.
pub(crate) struct Bus<'p, 'a> {
    /// The node's path (for errors).
    pub path: NodePath,
    /// The node's cells, i.e. how its children's addresses read (an error if its
    /// `#address-cells`/`#size-cells` is malformed, raised only when used).
    pub cells: Result<Cells, DtError>,
    /// The node's `ranges` (`None` if absent; always `None` at the root).
    pub ranges: Option<&'a [u8]>,
    /// The node's parent bus; `None` at the root.
    pub parent: Option<&'p Bus<'p, 'a>>,
}

/// A `#address-cells`/`#size-cells` value: exactly one cell.
pub(crate) fn cell_count(node: &NodePath, name: &'static str, v: &[u8]) -> Result<u32, DtError> {
    match (v.len(), be32(v, 0)) {
        (4, Some(n)) => Ok(n),
        _ => Err(DtError::Property {
            node: *node,
            property: name,
            cause: "is not exactly one 32-bit cell",
        }),
    }
}

/// `n` cells (n <= 2) at the start of `b` as one number.
fn read_cells(b: &[u8], n: u32) -> Option<u64> {
    match n {
        0 => Some(0),
        1 => be32(b, 0).map(u64::from),
        2 => Some((u64::from(be32(b, 0)?) << 32) | u64::from(be32(b, 4)?)),
        _ => None,
    }
}

/// Checks that `cells` can decode `property` of `node` (address 1 or 2 cells,
/// size `min_size..=2` cells) and that `value` is a whole number of entries;
/// returns the entry size in bytes.
fn entry_size(
    node: &NodePath,
    property: &'static str,
    value: &[u8],
    cells: Cells,
    min_size: u32,
) -> Result<usize, DtError> {
    let cells_err = |which, value, allowed| DtError::Cells {
        node: *node,
        property,
        which,
        value,
        allowed,
    };
    if !(1..=2).contains(&cells.address) {
        return Err(cells_err("#address-cells", cells.address, "1 or 2"));
    }
    if !(min_size..=2).contains(&cells.size) {
        let allowed = if min_size == 0 { "0, 1 or 2" } else { "1 or 2" };
        return Err(cells_err("#size-cells", cells.size, allowed));
    }
    let entry = (cells.address + cells.size) as usize * 4;
    if value.is_empty() || !value.len().is_multiple_of(entry) {
        return Err(DtError::Property {
            node: *node,
            property,
            cause: "is empty or not a whole number of (address, size) entries for the \
                    parent's #address-cells/#size-cells",
        });
    }
    Ok(entry)
}

/// The (address, size) entries of `reg` of `node`, read with its parent's
/// `cells` (`#size-cells` may be 0 only if `min_size` is 0; size is then 0).
pub(crate) fn reg_entries<'a>(
    node: &NodePath,
    value: &'a [u8],
    cells: Cells,
    min_size: u32,
) -> Result<impl Iterator<Item = Region> + 'a, DtError> {
    let entry = entry_size(node, "reg", value, cells, min_size)?;
    let addr_bytes = cells.address as usize * 4;
    Ok(value.chunks_exact(entry).map(move |e| {
        let base = read_cells(e, cells.address).unwrap_or_default();
        let size = e
            .get(addr_bytes..)
            .and_then(|s| read_cells(s, cells.size))
            .unwrap_or_default();
        Region::new(base, size)
    }))
}

/// Translates `r`, from `reg` of `node` (a child of `bus`), to a CPU physical
/// address through the `ranges` of every bus up to the root. An absent or empty
/// `ranges` is taken as identity.
pub(crate) fn translate(
    node: &NodePath,
    mut r: Region,
    mut bus: &Bus<'_, '_>,
) -> Result<Region, DtError> {
    while let Some(up) = bus.parent {
        if let Some(ranges) = bus.ranges.filter(|v| !v.is_empty()) {
            r.base = map_through(node, ranges, r, bus, up)?;
        }
        bus = up;
    }
    Ok(r)
}

/// `r.base` mapped through one `ranges` value of `bus` (whose parent is `up`).
fn map_through(
    node: &NodePath,
    ranges: &[u8],
    r: Region,
    bus: &Bus<'_, '_>,
    up: &Bus<'_, '_>,
) -> Result<u64, DtError> {
    let (cells, up_cells) = (bus.cells?, up.cells?);
    let (child, parent, size) = (cells.address, up_cells.address, cells.size);
    let cells_err = |which, value| DtError::Cells {
        node: bus.path,
        property: "ranges",
        which,
        value,
        allowed: "1 or 2",
    };
    if !(1..=2).contains(&child) {
        return Err(cells_err("#address-cells", child));
    }
    if !(1..=2).contains(&parent) {
        return Err(cells_err("#address-cells of its parent", parent));
    }
    if !(1..=2).contains(&size) {
        return Err(cells_err("#size-cells", size));
    }
    let (cb, pb) = (child as usize * 4, parent as usize * 4);
    let entry = cb + pb + size as usize * 4;
    if !ranges.len().is_multiple_of(entry) {
        return Err(DtError::Property {
            node: bus.path,
            property: "ranges",
            cause: "is not a whole number of (child, parent, size) entries",
        });
    }
    for e in ranges.chunks_exact(entry) {
        let c = read_cells(e, child).unwrap_or_default();
        let p = e.get(cb..).and_then(|s| read_cells(s, parent));
        let len = e.get(cb + pb..).and_then(|s| read_cells(s, size));
        let (Some(p), Some(len)) = (p, len) else {
            continue;
        };
        let offset = r.base.checked_sub(c).filter(|&o| o < len);
        if let Some(base) = offset.and_then(|o| p.checked_add(o)) {
            return Ok(base);
        }
    }
    Err(DtError::Property {
        node: *node,
        property: "reg",
        cause: "has an address outside every `ranges` entry of its parent bus",
    })
}

/// A string value without its NUL terminator, if it is NUL-terminated UTF-8 with
/// no NUL inside (an empty value reads as `""`).
pub(crate) fn as_str(v: &[u8]) -> Option<&str> {
    let body = match v.split_last() {
        None => return Some(""),
        Some((0, body)) => body,
        Some(_) => return None,
    };
    if body.contains(&0) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

/// The strings of a string-list value (`"a\0b\0"`), empty strings included.
pub(crate) fn strings(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.strip_suffix(&[0]).unwrap_or(v).split(|&b| b == 0)
}

/// Whether string-list value `v` contains `s`.
pub(crate) fn list_contains(v: &[u8], s: &str) -> bool {
    !v.is_empty() && strings(v).any(|x| x == s.as_bytes())
}
