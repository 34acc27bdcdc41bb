//! Time from the virtual counter (CNTVCT_EL0 at CNTFRQ_EL0 Hz).

use crate::arch;

/// Counter ticks per second (CNTFRQ_EL0), or 62.5 MHz if firmware left it 0.
pub fn freq() -> u64 {
    match arch::cntfrq() {
        0 => 62_500_000,
        f => f,
    }
}

/// The counter now.
pub fn ticks() -> u64 {
    arch::cntvct()
}

/// `ms` milliseconds in counter ticks.
pub fn ms_to_ticks(ms: u64) -> u64 {
    ms.saturating_mul(freq()) / 1000
}

/// `ticks` counter ticks in milliseconds.
pub fn ticks_to_ms(ticks: u64) -> u64 {
    ticks.saturating_mul(1000) / freq()
}

/// `ticks` counter ticks in microseconds.
pub fn ticks_to_us(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(freq())) as u64
}

/// A point in time some milliseconds ahead.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: u64,
}

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self {
            at: ticks().saturating_add(ms_to_ticks(ms)),
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        ticks() >= self.at
    }
}

/// Busy-waits `ms` milliseconds.
pub fn delay_ms(ms: u64) {
    let d = Deadline::after_ms(ms);
    while !d.passed() {
        core::hint::spin_loop();
    }
}
