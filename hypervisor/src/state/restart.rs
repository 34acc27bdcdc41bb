//! A backend's restarts (`restart = "on-failure"`): whether one more is allowed
//! within the policy's window, so a backend that keeps failing is left stopped
//! instead of restarting in a storm.

use ferry_config::RestartPolicy;
use spin::Mutex;

/// Most restarts a window can count (a larger `restart-limit` counts as this).
pub const MAX_LIMIT: usize = 32;

/// A backend's restart policy and the restarts it has had.
#[derive(Debug)]
pub struct RestartBudget {
    /// At most this many restarts within the window.
    pub limit: u32,
    /// The window, in milliseconds (for messages).
    pub window_ms: u32,
    window_ticks: u64,
    /// Counter values of the restarts in the window, oldest first.
    history: Mutex<([u64; MAX_LIMIT], usize)>,
    total: core::sync::atomic::AtomicU32,
}

/// What becomes of a failed backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Restart it: this is restart `nth` (1-based) since the system started.
    Restart {
        /// How many restarts it has had, this one included.
        nth: u32,
    },
    /// It already had `limit` restarts within the window: leave it stopped.
    GiveUp,
}

impl RestartBudget {
    /// The budget of `policy`; the counter runs at `frequency` Hz.
    pub fn new(policy: RestartPolicy, frequency: u64) -> RestartBudget {
        RestartBudget {
            limit: policy.limit.min(MAX_LIMIT as u32),
            window_ms: policy.window_ms,
            window_ticks: u64::from(policy.window_ms) * frequency.max(1) / 1000,
            history: Mutex::new(([0; MAX_LIMIT], 0)),
            total: core::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The backend failed at counter value `now`: restart it or give up.
    pub fn failed(&self, now: u64) -> Verdict {
        let mut h = self.history.lock();
        let (times, len) = &mut *h;
        // Forget restarts older than the window.
        let keep = times[..*len]
            .iter()
            .position(|&t| now.saturating_sub(t) < self.window_ticks)
            .unwrap_or(*len);
        times.copy_within(keep..*len, 0);
        *len -= keep;
        if *len >= self.limit as usize {
            return Verdict::GiveUp;
        }
        times[*len] = now;
        *len += 1;
        let nth = self
            .total
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed)
            + 1;
        Verdict::Restart { nth }
    }
}
