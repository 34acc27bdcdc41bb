//! When a run ends and with which code: the config's exit policy, on plain values.
//!
//! Partitions stop (SYSTEM_OFF, SYSTEM_RESET, a fault), each stop with the code the
//! config gives that kind for that partition. When every partition the policy waits
//! for has stopped, the run ends with the first non-zero code among the waited-for
//! partitions' stops, else the first non-zero code of any other stop, else 0.

use alloc::vec;
use alloc::vec::Vec;

/// How a partition stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// PSCI SYSTEM_OFF.
    SystemOff,
    /// PSCI SYSTEM_RESET.
    SystemReset,
    /// A fault Ferry stopped it for.
    Fault,
}

impl StopKind {
    /// A name for logs.
    pub fn name(self) -> &'static str {
        match self {
            StopKind::SystemOff => "system off",
            StopKind::SystemReset => "system reset",
            StopKind::Fault => "fault",
        }
    }
}

/// The run's bookkeeping of stops.
#[derive(Clone, Debug)]
pub struct RunPolicy {
    waited: Vec<bool>,
    /// Codes of stops in the order they happened: (partition, code).
    stops: Vec<(usize, u32)>,
}

impl RunPolicy {
    /// A policy over `partitions` partitions that waits for those in `wait_for`
    /// (indices). With nothing to wait for, stops never end the run.
    pub fn new(partitions: usize, wait_for: &[usize]) -> RunPolicy {
        let mut waited = vec![false; partitions];
        for &p in wait_for {
            if let Some(w) = waited.get_mut(p) {
                *w = true;
            }
        }
        RunPolicy {
            waited,
            stops: Vec::new(),
        }
    }

    /// Records that `partition` stopped with `code`. Returns the run's exit code if
    /// the run ends now. A partition's second stop is ignored.
    pub fn stopped(&mut self, partition: usize, code: u32) -> Option<u32> {
        if partition >= self.waited.len() || self.stops.iter().any(|&(p, _)| p == partition) {
            return None;
        }
        self.stops.push((partition, code));
        let waiting = self.waited.iter().any(|&w| w);
        let all_stopped = self
            .waited
            .iter()
            .enumerate()
            .all(|(p, &w)| !w || self.stops.iter().any(|&(s, _)| s == p));
        if !(waiting && all_stopped) {
            return None;
        }
        let first_nonzero = |waited: bool| {
            self.stops
                .iter()
                .find(|&&(p, c)| self.waited[p] == waited && c != 0)
                .map(|&(_, c)| c)
        };
        Some(
            first_nonzero(true)
                .or_else(|| first_nonzero(false))
                .unwrap_or(0),
        )
    }

    /// Whether `partition` has stopped.
    pub fn has_stopped(&self, partition: usize) -> bool {
        self.stops.iter().any(|&(p, _)| p == partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_when_all_waited_partitions_stopped() {
        let mut p = RunPolicy::new(2, &[0, 1]);
        assert_eq!(p.stopped(0, 0), None);
        assert_eq!(p.stopped(0, 5), None, "second stop ignored");
        assert_eq!(p.stopped(1, 0), Some(0));
    }

    #[test]
    fn waited_codes_win_over_others() {
        let mut p = RunPolicy::new(2, &[1]);
        assert_eq!(p.stopped(0, 20), None, "not waited for: the run goes on");
        assert_eq!(
            p.stopped(1, 0),
            Some(20),
            "the attacker's fault code reports it"
        );
        let mut p = RunPolicy::new(2, &[1]);
        assert_eq!(p.stopped(0, 20), None);
        assert_eq!(p.stopped(1, 2), Some(2), "a failing waited partition wins");
    }

    #[test]
    fn first_nonzero_in_order() {
        let mut p = RunPolicy::new(3, &[0, 1, 2]);
        assert_eq!(p.stopped(2, 0), None);
        assert_eq!(p.stopped(1, 3), None);
        assert_eq!(p.stopped(0, 4), Some(3));
    }

    #[test]
    fn no_policy_never_ends() {
        let mut p = RunPolicy::new(2, &[]);
        assert_eq!(p.stopped(0, 0), None);
        assert_eq!(p.stopped(1, 0), None);
        assert!(p.has_stopped(1));
        assert_eq!(p.stopped(7, 0), None, "unknown partition");
    }
}
