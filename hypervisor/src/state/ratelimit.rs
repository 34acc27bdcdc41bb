//! Per-partition budget for log lines a guest can trigger at will (a refused
//! CPU_ON, a bad IOREQ_COMPLETE, an undecodable access, an UNDEFINED system
//! register): a token bucket of [`BURST`] lines refilled at [`PER_SECOND`] lines a
//! second. Lines over budget are counted, not written; the next line admitted (or
//! the end of the run) first says how many were suppressed. One hostile vCPU can
//! then neither flood the console nor hold the UART lock every partition's output
//! and Ferry's own log share.

use spin::Mutex;

/// Lines a partition may trigger back to back.
pub const BURST: u32 = 10;
/// Lines a second it may trigger in the long run.
pub const PER_SECOND: u64 = 2;

/// What to do with one guest-triggered line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it, after a summary of the `suppressed` lines before it (if any).
    Write {
        /// Lines dropped since the last one written.
        suppressed: u32,
    },
    /// Drop it (counted).
    Drop,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens, in lines × counter frequency (so refills need no division).
    tokens: u64,
    /// Counter value of the last refill.
    at: u64,
    suppressed: u32,
    started: bool,
}

/// One partition's log budget.
#[derive(Debug)]
pub struct LogBudget {
    bucket: Mutex<Bucket>,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl LogBudget {
    /// A full budget.
    pub const fn new() -> LogBudget {
        LogBudget {
            bucket: Mutex::new(Bucket {
                tokens: 0,
                at: 0,
                suppressed: 0,
                started: false,
            }),
        }
    }

    /// One line at counter value `now` (the counter runs at `frequency` Hz).
    pub fn admit(&self, now: u64, frequency: u64) -> Admit {
        let frequency = frequency.max(1);
        let full = u64::from(BURST) * frequency;
        let mut b = self.bucket.lock();
        if !b.started {
            b.started = true;
            b.tokens = full;
            b.at = now;
        }
        let elapsed = now.saturating_sub(b.at);
        b.tokens = b
            .tokens
            .saturating_add(elapsed.saturating_mul(PER_SECOND))
            .min(full);
        b.at = b.at.max(now);
        if b.tokens < frequency {
            b.suppressed = b.suppressed.saturating_add(1);
            return Admit::Drop;
        }
        b.tokens -= frequency;
        Admit::Write {
            suppressed: core::mem::take(&mut b.suppressed),
        }
    }

    /// Lines dropped and not yet reported (taken: the count restarts at 0).
    pub fn take_suppressed(&self) -> u32 {
        core::mem::take(&mut self.bucket.lock().suppressed)
    }
}
