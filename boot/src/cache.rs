//! Data-cache maintenance by virtual address range (to the point of coherency).
//!
//! Needed where one side accesses memory with caches off: a secondary CPU reading
//! its boot record before its MMU is on, and memory written before the primary's
//! MMU was on.

/// The smallest data-cache line size in bytes, from CTR_EL0.DminLine.
#[cfg(target_os = "none")]
fn dcache_line() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects (aarch64-cpu 11 does not model it).
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Cleans `[start, start + len)` to the point of coherency (`DC CVAC`), then `DSB SY`.
#[cfg(target_os = "none")]
pub fn clean_range(start: u64, len: u64) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: DC CVAC on a mapped address only writes back dirty lines.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Invalidates `[start, start + len)` to the point of coherency (`DC IVAC`).
///
/// # Safety
/// Discards any dirty lines in the range: only for memory whose current content is
/// already in RAM (written with caches off), never for data only in the cache.
#[cfg(target_os = "none")]
pub unsafe fn invalidate_range(start: u64, len: u64) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: the caller guarantees RAM already holds the range's data.
        unsafe { core::arch::asm!("dc ivac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}
