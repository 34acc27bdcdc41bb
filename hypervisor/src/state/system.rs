//! Everything Ferry runs: the partitions, which core runs which vCPU, the virtio
//! routes, the exit policy and the console input router; and what a partition's
//! stop sets off.

use alloc::vec::Vec;

use spin::Mutex;

use super::console::ConsoleRouter;
use super::effect::{Effect, Effects};
use super::event::{Event, StopReason};
use super::partition::Partition;
use super::virtio::{self, Route};
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
            policy: Mutex::new(policy),
        }
    }

    /// The partition and vCPU core `core` runs, if any.
    pub fn on_core(&self, core: usize) -> Option<(&Partition, usize)> {
        let (p, v) = (*self.cores.get(core)?)?;
        Some((self.partitions.get(p)?, v))
    }

    /// Stops `partition` from its vCPU `vcpu` (the caller parks its core after
    /// applying the effects): logs why, makes its other vCPUs leave the guest,
    /// fails the devices it serves, and applies the exit policy. A second stop of
    /// the same partition does nothing.
    pub fn stop(
        &self,
        partition: usize,
        vcpu: usize,
        kind: StopKind,
        reason: StopReason,
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
