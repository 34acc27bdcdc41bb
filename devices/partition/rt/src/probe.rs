//! Probing: run code that is expected to fault and see what it got. Inside
//! [`catch`], a synchronous exception this vCPU takes at EL1 (an abort Ferry
//! injects, an UNDEFINED instruction, a stage-1 fault) is recorded and the
//! faulting instruction is skipped: execution resumes at ELR_EL1 + 4. Outside it,
//! a synchronous exception is reported and the vCPU resets, as before.
//!
//! Hostile test guests use it to try an access and check how it was handled
//! (`EC 0x00`: UNDEFINED, `0x25`: data abort from EL1, ...).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::{MAX_VCPUS, arch};

/// A synchronous exception caught by [`catch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caught {
    /// ESR_EL1 it reported.
    pub esr: u64,
    /// The faulting instruction's address (ELR_EL1).
    pub elr: u64,
    /// FAR_EL1 (meaningful for aborts only).
    pub far: u64,
}

impl Caught {
    /// The exception class, ESR_EL1.EC.
    pub fn ec(&self) -> u64 {
        self.esr >> 26 & 0x3f
    }
}

/// EC of an UNDEFINED instruction (unknown reason).
pub const EC_UNKNOWN: u64 = 0x00;
/// EC of a trapped MSR/MRS/system instruction (not seen by a guest under Ferry).
pub const EC_SYSREG: u64 = 0x18;
/// EC of a data abort taken from EL1 itself.
pub const EC_DATA_ABORT_SAME: u64 = 0x25;

struct Slot {
    armed: AtomicBool,
    count: AtomicU32,
    esr: AtomicU64,
    elr: AtomicU64,
    far: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    armed: AtomicBool::new(false),
    count: AtomicU32::new(0),
    esr: AtomicU64::new(0),
    elr: AtomicU64::new(0),
    far: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_VCPUS] = [EMPTY; MAX_VCPUS];

fn slot() -> &'static Slot {
    &SLOTS[arch::vcpu_index() % MAX_VCPUS]
}

/// Runs `f` with this vCPU's synchronous exceptions caught (each one skips its
/// instruction). Returns `f`'s result, the first exception caught (if any) and how
/// many were caught in all.
pub fn catch<R>(f: impl FnOnce() -> R) -> (R, Option<Caught>, u32) {
    let s = slot();
    s.count.store(0, Ordering::Relaxed);
    s.armed.store(true, Ordering::SeqCst);
    let result = f();
    s.armed.store(false, Ordering::SeqCst);
    let count = s.count.load(Ordering::Relaxed);
    let first = (count > 0).then(|| Caught {
        esr: s.esr.load(Ordering::Relaxed),
        elr: s.elr.load(Ordering::Relaxed),
        far: s.far.load(Ordering::Relaxed),
    });
    (result, first, count)
}

/// Called by the synchronous vector: records the exception and returns true if
/// this vCPU is inside [`catch`] (the vector then skips the instruction).
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn record(esr: u64, elr: u64, far: u64) -> bool {
    let s = slot();
    if !s.armed.load(Ordering::SeqCst) {
        return false;
    }
    if s.count.fetch_add(1, Ordering::Relaxed) == 0 {
        s.esr.store(esr, Ordering::Relaxed);
        s.elr.store(elr, Ordering::Relaxed);
        s.far.store(far, Ordering::Relaxed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_reports_the_first_exception_and_the_count() {
        let ((), none, n) = catch(|| ());
        assert_eq!((none, n), (None, 0));
        let (v, first, n) = catch(|| {
            assert!(record(0x0200_0000, 0x1000, 0));
            assert!(record(0x9600_0010, 0x2000, 0x3000));
            7
        });
        assert_eq!((v, n), (7, 2));
        let first = first.unwrap();
        assert_eq!((first.ec(), first.elr), (EC_UNKNOWN, 0x1000));
        assert!(!record(0, 0, 0), "outside catch nothing is recorded");
    }
}
