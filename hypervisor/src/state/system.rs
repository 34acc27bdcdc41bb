//! Everything Ferry runs: the partitions, which core runs which vCPU, the virtio
//! routes, the exit policy and the console input router; and what a partition's
//! stop sets off.

use alloc::vec::Vec;

use spin::Mutex;

use super::console::ConsoleRouter;
use super::effect::{Effect, Effects};
use super::event::{Event, StopReason};
use super::hvc::DeviceConsole;
use super::partition::Partition;
use super::restart::Verdict;
use super::virtio::{self, Route};

/// The `vcpu` of a stop Ferry decides itself (a backend that failed its
/// devices): no vCPU of the partition is the caller.
pub const BY_FERRY: usize = usize::MAX;
use crate::policy::{RunPolicy, StopKind};

/// The running system.
#[derive(Debug)]
pub struct System {
    /// The partitions, by id.
    pub partitions: Vec<Partition>,
    /// For each physical core: (partition, vCPU) it runs, if any.
    pub cores: Vec<Option<(usize, usize)>>,
    /// VTCR_EL2, the same for every partition.
    pub vtcr: u64,
    /// The routed virtio devices, by index.
    pub virtio: Vec<Route>,
    /// Where typed console input goes.
    pub console: Mutex<ConsoleRouter>,
    /// The virtio console devices, in `/virtio` order (see [`System::with_consoles`]).
    pub consoles: Vec<DeviceConsole>,
    policy: Mutex<RunPolicy>,
}

impl System {
    /// Puts the system together.
    pub fn new(
        partitions: Vec<Partition>,
        cores: Vec<Option<(usize, usize)>>,
        vtcr: u64,
        virtio: Vec<Route>,
        policy: RunPolicy,
    ) -> System {
        System {
            partitions,
            cores,
            vtcr,
            virtio,
            console: Mutex::new(ConsoleRouter::new()),
            consoles: Vec::new(),
            policy: Mutex::new(policy),
        }
    }

    /// The system with its virtio console devices (none by default).
    pub fn with_consoles(mut self, consoles: Vec<DeviceConsole>) -> System {
        self.consoles = consoles;
        self
    }

    /// Decides whether stopped partition `p` restarts: a backend with
    /// `restart = "on-failure"` that stopped other than by SYSTEM_OFF, within its
    /// budget. Then its restart is requested (vCPU 0's core carries it out) and
    /// true is returned.
    fn restart_on_failure(
        &self,
        p: &Partition,
        kind: StopKind,
        now: u64,
        fx: &mut Effects,
    ) -> bool {
        let Some(budget) = p.restart.as_ref() else {
            return false;
        };
        if kind == StopKind::SystemOff {
            return false;
        }
        match budget.failed(now) {
            Verdict::Restart { nth } => {
                fx.log(Event::Restarting {
                    partition: p.id,
                    nth,
                });
                p.request_restart();
                // vCPU 0's core may be idle in EL2 (it stopped another way).
                fx.push(Effect::KickStop {
                    partition: p.id,
                    vcpus: 1,
                });
                true
            }
            Verdict::GiveUp => {
                fx.log(Event::RestartGivenUp {
                    partition: p.id,
                    limit: budget.limit,
                    window_ms: budget.window_ms,
                });
                false
            }
        }
    }

    /// The partition and vCPU core `core` runs, if any.
    pub fn on_core(&self, core: usize) -> Option<(&Partition, usize)> {
        let (p, v) = (*self.cores.get(core)?)?;
        Some((self.partitions.get(p)?, v))
    }

    /// Stops `partition` from its vCPU `vcpu` ([`BY_FERRY`]: Ferry itself) at
    /// counter value `now` (the caller parks its core after applying the
    /// effects): logs why, makes its other vCPUs leave the guest, fails the
    /// devices it serves, and applies the exit policy; or, for a backend that
    /// restarts on failure and has restarts left, asks its vCPU 0's core to
    /// restart it (the exit policy does not see it stop). A second stop of the
    /// same partition does nothing.
    pub fn stop(
        &self,
        partition: usize,
        vcpu: usize,
        kind: StopKind,
        reason: StopReason,
        now: u64,
    ) -> Effects {
        let mut fx = Effects::new();
        let Some(p) = self.partitions.get(partition) else {
            return fx;
        };
        if !p.mark_stopped() {
            return fx;
        }
        let code = match kind {
            StopKind::SystemOff => p.codes.system_off,
            StopKind::SystemReset => p.codes.system_reset,
            StopKind::Fault => p.codes.fault,
        };
        fx.log(Event::Stopped {
            partition,
            vcpu,
            kind,
            code,
            reason,
        });
        // Running vCPUs take the kick as an interrupt and leave the guest; vCPUs
        // waiting for CPU_ON wake from WFI and see the stop.
        let all = if p.vcpus.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << p.vcpus.len()) - 1
        };
        fx.push(Effect::KickStop {
            partition,
            vcpus: all & !(1u64.checked_shl(vcpu as u32).unwrap_or(0)),
        });
        virtio::backend_stopped(self, partition, &mut fx);
        if self.restart_on_failure(p, kind, now, &mut fx) {
            return fx;
        }
        let end = self.policy.lock().stopped(partition, code);
        if let Some(code) = end {
            for q in self.partitions.iter().filter(|q| !q.is_stopped()) {
                fx.log(Event::StillRunning { partition: q.id });
            }
            fx.push(Effect::EndRun { code, partition });
        }
        fx
    }
}
