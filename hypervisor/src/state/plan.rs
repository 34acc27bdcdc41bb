//! What the config makes of each partition at run time, decided before anything
//! is built: its interrupts, the extra memory a backend maps, its emulated
//! regions, the routes of the virtio devices.

use alloc::vec::Vec;

use ferry_config::{Config, Console, GuestRegion, Partition as PartitionConfig};
use ferry_platform::Region;

use super::emul::{self, EmulError, EmulTable};
use super::virtio::RouteSpec;
use crate::vgic::PRIVATE;

/// The SPIs partition `p`'s vGIC owns, as (INTID, hardware-linked): its
/// passthrough devices' (linked), then the emulated edges (a backend's doorbell,
/// a frontend's virtio interrupts) and its PL011's level interrupt.
pub fn partition_spis(cfg: &Config, p: &PartitionConfig) -> Vec<(u32, bool)> {
    let mut spis: Vec<(u32, bool)> = p
        .devices
        .iter()
        .flat_map(|d| d.spis.iter().map(|&spi| (spi + PRIVATE, true)))
        .collect();
    spis.extend(
        p.ioreq
            .and_then(|io| io.spi())
            .map(|spi| (spi + PRIVATE, false)),
    );
    spis.extend(
        cfg.virtio
            .iter()
            .filter(|d| d.frontend == p.id)
            .map(|d| (d.spi + PRIVATE, false)),
    );
    if let Some(intid) = console_intid(cfg, p) {
        spis.push((intid, false));
    }
    spis
}

/// The INTID of partition `p`'s emulated PL011, if its console is one.
pub fn console_intid(cfg: &Config, p: &PartitionConfig) -> Option<u32> {
    match (p.console, cfg.platform.console_spi) {
        (Console::Pl011, Some(spi)) => Some(spi + PRIVATE),
        _ => None,
    }
}

/// Memory a backend maps beyond its RAM: its request page (at `page_pa`, if it
/// has one) and, for each device it serves, its frontend's first memory region
/// at the device's `shared-memory` address.
pub fn backend_regions(
    cfg: &Config,
    p: &PartitionConfig,
    page_pa: Option<u64>,
) -> Vec<GuestRegion> {
    let mut extra: Vec<GuestRegion> = p
        .ioreq
        .zip(page_pa)
        .map(|(io, pa)| GuestRegion {
            ipa: io.page,
            pa,
            size: ferry_abi::ioreq::PAGE_SIZE as u64,
        })
        .into_iter()
        .collect();
    for d in cfg.virtio.iter().filter(|d| d.backend == p.id) {
        if let Some(fe) = cfg.partition(d.frontend).and_then(|fe| fe.memory.first()) {
            extra.push(GuestRegion {
                ipa: d.shared_memory,
                pa: fe.pa,
                size: fe.size,
            });
        }
    }
    extra
}

/// The virtio routes, in the order of the devices' indices (a route's position
/// is its index).
pub fn route_specs(cfg: &Config) -> Vec<RouteSpec> {
    let mut specs: Vec<RouteSpec> = cfg
        .virtio
        .iter()
        .map(|d| RouteSpec {
            index: d.index as usize,
            backend_index: d.backend_index as usize,
            window: d.window,
            frontend: d.frontend as usize,
            backend: d.backend as usize,
            fe_intid: d.spi + PRIVATE,
            deadline_ms: d.deadline_ms,
        })
        .collect();
    specs.sort_by_key(|r| r.index);
    specs
}

/// Partition `p`'s emulated regions: its GIC views, its PL011 if it has one
/// (`uart`), and the virtio windows of `routes` it is the frontend of.
pub fn emul_table(
    cfg: &Config,
    p: &PartitionConfig,
    routes: &[RouteSpec],
    uart: Option<Region>,
) -> Result<EmulTable, EmulError> {
    emul::partition_table(
        cfg.platform.gicd.base,
        cfg.platform.gicr.base,
        p.cpus.len(),
        uart,
        routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.frontend == p.id as usize)
            .map(|(i, r)| (i, r.window)),
    )
}
