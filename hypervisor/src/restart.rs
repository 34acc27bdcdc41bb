//! Restarting a backend partition (`restart = "on-failure"`, `state::restart`):
//! its vCPU 0's core, having seen the stop and the restart request, waits for the
//! partition's other vCPUs to leave the guest, reloads the partition from the pack
//! into fresh memory, resets its vGIC and request page, makes its failed devices
//! recoverable and switches its vCPU 0 on again.

use crate::pages::PhysPages;
use crate::state::event::Event;
use crate::state::partition::Partition;
use crate::state::system::System;
use crate::state::{hvc, virtio};
use crate::vgic::Vgic;
use crate::vpsci::Power;
use crate::{cpu, loader};

/// How long the restart waits for the other vCPUs to leave the guest.
const PARK_WAIT_MS: u64 = 100;

/// Restarts `partition` (stopped, restart requested) from its vCPU 0's core.
pub fn restart(system: &System, partition: &Partition) {
    let started = cpu::counter();
    let deadline = started + PARK_WAIT_MS * cpu::counter_frequency() / 1000;
    let others = || {
        partition
            .vcpus
            .iter()
            .skip(1)
            .any(|v| v.power() != Power::Off)
    };
    while others() && cpu::counter() < deadline {
        core::hint::spin_loop();
    }
    let (entry, dtb) = match loader::reload(partition.id) {
        Ok(start) => start,
        Err(why) => {
            log::error!("partition '{}': cannot restart: {why}", partition.label);
            return;
        }
    };
    {
        let mut vgic = partition.vgic.lock();
        let spis: alloc::vec::Vec<(u32, bool)> =
            vgic.spis.iter().map(|s| (s.intid, s.irq.hw)).collect();
        *vgic = Vgic::new(partition.vcpus.len(), vgic.lines, &spis);
    }
    for v in &partition.vcpus {
        v.set_off();
    }
    partition.clear_console_line();
    virtio::backend_restarted(system, partition.id, &PhysPages, cpu::counter());
    hvc::backend_restarted(system, partition.id);
    let generation = partition.restarted();
    let us = cpu::counter().saturating_sub(started) * 1_000_000 / cpu::counter_frequency();
    let event = Event::Restarted {
        partition: partition.id,
        generation,
        us,
    };
    // Not through `apply` (which parks cores): a restart line is never budgeted.
    log::log!(event.level(), "{}", event.shown(system));
    partition.vcpus[0].request_on(entry, dtb);
}
