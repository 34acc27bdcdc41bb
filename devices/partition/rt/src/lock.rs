//! [`OwnerLock`]: a spin lock that knows which vCPU holds it.
//!
//! Sound because the runtime turns the MMU and caches on before any Rust runs (RAM is
//! Normal write-back, so load/store-exclusives work). Knowing the owner lets last
//! words (panic, exception) print even when their own vCPU died holding the lock.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch;

const FREE: usize = usize::MAX;

/// How often [`OwnerLock::lock_for_last_words`] tries before printing anyway.
const LAST_WORDS_SPINS: usize = 1 << 22;

/// A spin lock owned by a vCPU index.
pub struct OwnerLock {
    owner: AtomicUsize,
}

/// Releases the lock when dropped.
pub struct Guard<'a> {
    lock: &'a OwnerLock,
}

impl OwnerLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        Self {
            owner: AtomicUsize::new(FREE),
        }
    }

    fn try_take(&self, me: usize) -> bool {
        self.owner
            .compare_exchange_weak(FREE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Spins until this vCPU holds the lock.
    pub fn lock(&self) -> Guard<'_> {
        let me = arch::vcpu_index();
        while !self.try_take(me) {
            core::hint::spin_loop();
        }
        Guard { lock: self }
    }

    /// For a vCPU about to stop: the lock if it can be had within a bounded wait;
    /// `None` if this vCPU already holds it or another one never lets go (the caller
    /// then goes ahead without it).
    pub fn lock_for_last_words(&self) -> Option<Guard<'_>> {
        let me = arch::vcpu_index();
        for _ in 0..LAST_WORDS_SPINS {
            if self.owner.load(Ordering::Relaxed) == me {
                return None;
            }
            if self.try_take(me) {
                return Some(Guard { lock: self });
            }
            core::hint::spin_loop();
        }
        None
    }
}

impl Default for OwnerLock {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.lock.owner.store(FREE, Ordering::Release);
    }
}
