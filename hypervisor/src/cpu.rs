//! This CPU: its logical index, MPIDR, and the system counter.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, MPIDR_EL1, TPIDR_EL2};
use tock_registers::interfaces::{Readable, Writeable};

/// Ferry's logical index of the calling CPU (its position in the host device
/// tree's /cpus), kept in TPIDR_EL2.
pub fn index() -> usize {
    TPIDR_EL2.get() as usize
}

/// Records the calling CPU's logical index.
pub fn set_index(index: usize) {
    TPIDR_EL2.set(index as u64);
}

/// The calling CPU's affinity fields (Aff3..Aff0) from MPIDR_EL1, as device-tree
/// `reg` values of cpu nodes give them.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The system counter (CNTPCT_EL0).
pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

/// The system counter's frequency in Hz (CNTFRQ_EL0), at least 1.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

/// Time since the counter started, as (seconds, microseconds).
pub fn uptime() -> (u64, u64) {
    let (ticks, freq) = (counter(), counter_frequency());
    (ticks / freq, (ticks % freq) * 1_000_000 / freq)
}

/// Whether a physical IRQ, FIQ or SError is pending for this core (ISR_EL1 read
/// at EL2 shows the physical state; aarch64-cpu 11 does not define it).
pub fn interrupt_pending() -> bool {
    let isr: u64;
    // SAFETY: reads a status register; no memory or state is changed.
    unsafe { core::arch::asm!("mrs {}, isr_el1", out(reg) isr, options(nomem, nostack)) };
    isr != 0
}
