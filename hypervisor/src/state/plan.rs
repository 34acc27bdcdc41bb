//! What the config makes of each partition at run time, decided before anything
//! is built: its interrupts, the extra memory a backend maps, its emulated
//! regions, the routes of the virtio devices.

use alloc::vec::Vec;

use ferry_config::{
    Config, Console, GuestRegion, Partition as PartitionConfig, VirtioDevice, VirtioKind,
};
use ferry_platform::Region;

use super::emul::{self, EmulError, EmulTable};
use super::hvc::{ConsoleSpec, MAX_KEYS};
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

/// What a region of [`backend_regions`] is, so the stage-2 builder knows how to
/// map it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// The backend's IOREQ request page: a page of Ferry's memory that Ferry
    /// and the backend both write (ordinary guest memory).
    RequestPage,
    /// A frontend's memory shared with the backend (a shared-mode device's
    /// shared region): read/write, to be mapped never-executable, so the
    /// backend can use it as data but never run code from it.
    FrontendShared,
}

/// Memory backend `p` maps beyond its RAM, each region with what it is: its
/// request page (at `page_pa`, if it has one) first, then, for each
/// shared-mode device it serves in config order, the device's shared region
/// ([`Config::shared_region`]: its `shared-region`, else the frontend's first
/// memory region) at the device's `shared-memory` address, the host address
/// translated through the frontend's memory regions. A copy-mode device maps
/// nothing of its frontend. Devices that share one mapping (same frontend,
/// shared region and address) give it once.
pub fn backend_regions(
    cfg: &Config,
    p: &PartitionConfig,
    page_pa: Option<u64>,
) -> Vec<(GuestRegion, Mapping)> {
    let mut extra: Vec<(GuestRegion, Mapping)> = p
        .ioreq
        .zip(page_pa)
        .map(|(io, pa)| {
            let page = GuestRegion {
                ipa: io.page,
                pa,
                size: ferry_abi::ioreq::PAGE_SIZE as u64,
            };
            (page, Mapping::RequestPage)
        })
        .into_iter()
        .collect();
    for d in cfg.virtio.iter().filter(|d| d.backend == p.id) {
        let Some(r) = frontend_shared(cfg, d) else {
            continue;
        };
        let r = (r, Mapping::FrontendShared);
        if !extra.contains(&r) {
            extra.push(r);
        }
    }
    extra
}

/// Where the backend of device `d` sees its frontend's memory, as a region of
/// the backend (guest address `shared-memory`, host address of the shared
/// region's start): `None` for a copy-mode device, or a shared region not inside
/// one of the frontend's regions (which validation refuses).
fn frontend_shared(cfg: &Config, d: &VirtioDevice) -> Option<GuestRegion> {
    let at = d.shared_memory?;
    let region = cfg.shared_region(d)?;
    let fe = cfg.partition(d.frontend)?;
    if !fe.contains_ipa(region.base, region.size) {
        return None;
    }
    Some(GuestRegion {
        ipa: at,
        pa: fe.ipa_to_pa(region.base)?,
        size: region.size,
    })
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
            bounce: d.bounce,
        })
        .collect();
    specs.sort_by_key(|r| r.index);
    specs
}

/// The virtio console devices, in index order: each one's route, its hvc number
/// in its frontend (its position among the frontend's console devices, loopback
/// ones included), its label (`<frontend>:hvc<N>`) and, for the first
/// [`MAX_KEYS`] without the loopback hook, the letter Ctrl-\ names it with (a,
/// b, ...).
pub fn console_specs(cfg: &Config) -> Vec<ConsoleSpec> {
    let mut consoles: Vec<&VirtioDevice> = cfg
        .virtio
        .iter()
        .filter(|d| d.kind == VirtioKind::Console)
        .collect();
    consoles.sort_by_key(|d| d.index);
    let mut keys = (b'a'..).take(MAX_KEYS);
    consoles
        .iter()
        .map(|d| {
            let hvc = consoles
                .iter()
                .filter(|o| o.frontend == d.frontend && o.index < d.index)
                .count() as u32;
            let fe = cfg.partition(d.frontend).map_or("?", |p| p.label.as_str());
            ConsoleSpec {
                route: d.index as usize,
                hvc,
                loopback: d.loopback,
                key: if d.loopback { None } else { keys.next() },
                label: alloc::format!("{fe}:hvc{hvc}"),
            }
        })
        .collect()
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

/// Whether the config's GIC (`gicd`, `gicr`) is the host's (`host_gicd`, the host's
/// redistributor regions): the same bases, and frames at least as large as the
/// host's, so that every check against the config's GIC (no passthrough device,
/// window or partition RAM over a GIC frame) holds for the real frames too.
/// Returns the problem, if there is one.
pub fn gic_mismatch(
    (gicd, gicr): (Region, Region),
    host_gicd: Region,
    host_gicr: &[Region],
) -> Option<alloc::string::String> {
    let covers = |outer: &Region, inner: &Region| {
        inner.base >= outer.base && inner.end() <= outer.end() && outer.size > 0
    };
    let same_bases =
        gicd.base == host_gicd.base && host_gicr.first().map(|g| g.base) == Some(gicr.base);
    if !same_bases {
        return Some(alloc::format!(
            "/platform: the GIC at {:#x}/{:#x} is not the host's ({:#x}/{:#x})",
            gicd.base,
            gicr.base,
            host_gicd.base,
            host_gicr.first().map_or(0, |g| g.base)
        ));
    }
    if !covers(&gicd, &host_gicd) {
        return Some(alloc::format!(
            "/platform: gic-distributor: [{:#x}, {:#x}) is smaller than the host's distributor [{:#x}, {:#x})",
            gicd.base,
            gicd.end(),
            host_gicd.base,
            host_gicd.end()
        ));
    }
    host_gicr.iter().find(|g| !covers(&gicr, g)).map(|g| {
        alloc::format!(
            "/platform: gic-redistributors: [{:#x}, {:#x}) does not cover the host's redistributors [{:#x}, {:#x})",
            gicr.base,
            gicr.end(),
            g.base,
            g.end()
        )
    })
}
