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

/// Zeroes `[start, start + len)` and cleans it to the point of coherency: whole
/// blocks with `DC ZVA` (DCZID_EL0's block size; one instruction per block instead
/// of a store per word), the rest with stores; then `DC CVAC` and `DSB SY`.
///
/// # Safety
/// The range must be RAM mapped read/write at this EL that nothing else uses.
#[cfg(target_os = "none")]
pub unsafe fn zero_range(start: u64, len: u64) {
    let dczid: u64;
    // SAFETY: reads an ID register.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4u64 << (dczid & 0xf);
    let end = start + len;
    let mut addr = start;
    if dczid & (1 << 4) == 0 {
        let first = start.next_multiple_of(block).min(end);
        // SAFETY: inside the range the caller hands over.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize) };
        addr = first;
        while addr + block <= end {
            // SAFETY: a whole block inside the range.
            unsafe { core::arch::asm!("dc zva, {}", in(reg) addr, options(nostack)) };
            addr += block;
        }
    }
    // SAFETY: the tail (or everything, if DC ZVA is prohibited) inside the range.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, (end - addr) as usize) };
    clean_range(start, len);
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
