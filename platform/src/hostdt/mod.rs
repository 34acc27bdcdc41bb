//! Host device-tree discovery: what Ferry learns from the DTB handed over in `x0`.
//!
//! At boot (EL2, MMU off, no heap) Ferry reads from the host DTB: the RAM
//! regions, the CPUs, the PSCI method, the GICv3 frames, `/chosen` `bootargs` and
//! the model string ([`HostInfo`]).
//!
//! It takes three steps:
//! 1. [`blob_at`] turns the address in `x0` into a slice after checking the header;
//! 2. [`copy_without_nops`] copies the blob into a caller buffer without its
//!    FDT_NOP tokens, validating every token on the way;
//! 3. [`HostInfo::parse`] reads the copy with the `fdt` crate.
//!
//! Step 2 exists because `fdt` 0.1.5 mis-parses FDT_NOP tokens, which QEMU leaves
//! when it edits a DTB (its imx8mp-evk DTB has 132, whole deleted nodes): a NOP
//! among a node's properties or between sibling nodes makes `find_node` return
//! `None` for what follows, and `cpus()` then panics; `find_node` fails an
//! `assert` ("bad node") when it has to skip a node that holds NOPs (as
//! `find_node("/chosen")` does on QEMU's imx8mp-evk DTB); `all_nodes()` stops
//! at a NOP before FDT_END_NODE. `tests/nops.rs` pins down each case.
//!
//! Nothing here allocates, locks or panics on any input: every read of blob data
//! is bounds-checked (`get`) and reads big-endian words byte by byte
//! (`from_be_bytes`, no unaligned word loads with the MMU off).
//!
//! ```text
//! let blob = unsafe { hostdt::blob_at(x0) }?;
//! let len = hostdt::copy_without_nops(blob, &mut DTB_COPY)?;
//! let host = hostdt::HostInfo::parse(&DTB_COPY[..len])?;
//! ```

mod error;
mod info;
mod nop;
mod parse;
mod raw;
mod reg;
#[cfg(test)]
mod tests;

pub use error::{DtError, FixedStr, NodePath};
pub use info::{Cpu, Gicv3, HostInfo};
pub use nop::copy_without_nops;

/// Most RAM regions [`HostInfo`] holds (all `reg` entries of all memory nodes).
pub const MAX_MEMORY_REGIONS: usize = 8;
/// Most reserved regions [`HostInfo`] holds (`/memreserve/` plus `/reserved-memory`).
pub const MAX_RESERVED_REGIONS: usize = 16;
/// Most GICv3 redistributor regions [`HostInfo`] holds.
pub const MAX_GICR_REGIONS: usize = 4;
/// Upper bound on a host DTB's header `totalsize` that Ferry accepts (2 MiB).
pub const MAX_DTB_SIZE: usize = 2 << 20;

/// Reads the header at `addr` and returns the whole blob as a slice, after
/// checking the magic, `totalsize <= MAX_DTB_SIZE` and `version >= 16` (the
/// block offsets are checked later, by [`copy_without_nops`]).
///
/// # Safety
/// `addr` must point to readable memory of at least the header's `totalsize`
/// (at least the 40 header bytes whatever they hold), which stays unchanged
/// for the rest of the program (`'static`).
pub unsafe fn blob_at(addr: usize) -> Result<&'static [u8], DtError> {
    if addr == 0 {
        return Err(DtError::NullAddress);
    }
    // SAFETY: the caller guarantees the header bytes are readable and unchanging.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, raw::HEADER_SIZE) };
    let h = raw::Header::read_prefix(header)?;
    if h.totalsize < raw::HEADER_SIZE || addr.checked_add(h.totalsize).is_none() {
        return Err(DtError::BadHeader {
            field: "totalsize",
            cause: "is smaller than the header or wraps the address space",
        });
    }
    // SAFETY: the caller guarantees `totalsize` bytes at `addr` are readable and
    // unchanging; `totalsize` was checked against MAX_DTB_SIZE and overflow.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, h.totalsize) })
}
