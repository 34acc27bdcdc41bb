//! Host device-tree discovery: what Ferry learns from the DTB handed over in `x0`.
//!
//! At boot (EL2, MMU off, no heap) Ferry reads from the host DTB: the RAM
//! regions, the CPUs, the PSCI method, the GICv3 frames, `/chosen` `bootargs` and
//! the model string ([`HostInfo`]).
//!
//! It takes three steps:
//! 1. [`blob_at`] turns the address in `x0` into a slice after checking the header;
//! 2. [`copy_without_nops`] (defined in [`ferry_abi::dtb`], the one NOP-stripping
//!    routine of Ferry, shared with the config and the partition runtime) copies the
//!    blob into a caller buffer without its FDT_NOP tokens, validating every token
//!    on the way;
//! 3. [`HostInfo::parse`] reads the copy with the `fdt` crate.
//!
//! Step 2 exists because `fdt` 0.1.5 mis-parses FDT_NOP tokens, which QEMU leaves
//! when it edits a DTB (see [`ferry_abi::dtb`]): e.g. `find_node("/chosen")` fails
//! an `assert` on QEMU's imx8mp-evk DTB. `tests/nops.rs` pins down each case.
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

use ferry_abi::dtb;

mod error;
mod info;
mod parse;
mod reg;
#[cfg(test)]
mod tests;

pub use error::{DtError, FixedStr, NodePath};
/// The NOP-stripping copy, its error type and the DTB size bound, re-exported
/// from [`ferry_abi::dtb`] under their old paths.
pub use ferry_abi::dtb::{DtbError, MAX_DTB_SIZE, copy_without_nops};
pub use info::{Cpu, Gicv3, HostInfo};

/// Most RAM regions [`HostInfo`] holds (all `reg` entries of all memory nodes).
pub const MAX_MEMORY_REGIONS: usize = 8;
/// Most reserved regions [`HostInfo`] holds (`/memreserve/` plus `/reserved-memory`).
pub const MAX_RESERVED_REGIONS: usize = 16;
/// Most GICv3 redistributor regions [`HostInfo`] holds.
pub const MAX_GICR_REGIONS: usize = 4;

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
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, dtb::HEADER_SIZE) };
    let totalsize = dtb::total_size(header)?;
    if addr.checked_add(totalsize).is_none() {
        return Err(DtError::Format(DtbError::BadHeader {
            field: "totalsize",
            cause: "wraps the address space",
        }));
    }
    // SAFETY: the caller guarantees `totalsize` bytes at `addr` are readable and
    // unchanging; `totalsize` was checked against MAX_DTB_SIZE and overflow.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, totalsize) })
}
