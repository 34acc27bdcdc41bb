//! Turning the pack into a running system: verify the pack, read and validate the
//! config (the same checks as `ferry check`, plus what only the real machine can
//! answer), build each partition's stage-2 tables, load its images.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use ferry_abi::pack::{self, Kind, Pack};
use ferry_boot::layout::ImageLayout;
use ferry_boot::mmu::{Table, Tables};
use ferry_config::{Config, GuestRegion, Images, Partition as PartitionConfig};
use ferry_platform::board::BOARD;
use ferry_platform::hostdt::HostInfo;
use ferry_platform::uart::RawWriter;

use crate::current::SYSTEM;
use crate::exit::{self, ExitCode};
use crate::pages::PhysPages;
use crate::policy::RunPolicy;
use crate::stage2::{self, GuestMemory};
use crate::state::hvc::{self, DeviceConsole};
use crate::state::ioreq::RequestPage;
use crate::state::partition::{EmulatedUart, Partition, PartitionParts};
use crate::state::plan::{self, Mapping};
use crate::state::power::Vcpu;
use crate::state::restart::RestartBudget;
use crate::state::system::System;
use crate::state::virtio::{Route, RouteSpec};
use crate::vgic::{self, Vgic};
use crate::{cpu, loader};
use ferry_platform::Region;
use ferry_platform::gicv3::Gic;

/// Translation tables each partition's stage 2 may use.
const STAGE2_TABLES: usize = 32;

/// The pack behind the image, if there is one. A present but corrupt pack refuses
/// the boot.
pub fn find_pack(image: &ImageLayout) -> Option<Pack<'static>> {
    // SAFETY: the pack, if any, was loaded with the image and lies in RAM that the
    // EL2 map covers; the header is read first and bounds the rest.
    let head = unsafe { core::slice::from_raw_parts(image.end as *const u8, 64) };
    // `ferry pack` patches the Image header's image_size (offset 0x10) to cover the
    // pack: a larger size than the linked image means a pack must follow.
    // SAFETY: the header is the first 64 bytes of the image itself.
    let image_size = unsafe { core::ptr::read_volatile((image.start + 0x10) as *const u64) };
    let total = match Pack::total_size(head) {
        Ok(total) => total,
        Err(pack::PackError::BadMagic) if image_size <= image.end - image.start => return None,
        Err(e) => refuse_lines(&[alloc::format!(
            "pack: {e} (the Image header's image_size {image_size:#x} says a pack follows the image)"
        )]),
    };
    let Ok(len) = usize::try_from(total) else {
        refuse_lines(&["pack: size out of range".into()])
    };
    // SAFETY: as above; `total` was checked against the header's checksum, and the
    // full parse below verifies every byte's checksum.
    let bytes = unsafe { core::slice::from_raw_parts(image.end as *const u8, len) };
    match Pack::parse(bytes) {
        Ok(pack) => Some(pack),
        Err(e) => refuse_lines(&[alloc::format!("pack: {e}")]),
    }
}

/// Prints each problem as `config error: ...` and ends the run with BootRefused.
fn refuse_lines(problems: &[String]) -> ! {
    let mut out = RawWriter(BOARD.console);
    for p in problems {
        let _ = writeln!(out, "ferry: config error: {p}");
    }
    exit::end(
        ExitCode::BootRefused,
        format_args!("{} config problem(s); boot refused", problems.len()),
    )
}

/// Image sizes as the pack holds them.
struct PackImages<'a>(Pack<'a>);

impl Images for PackImages<'_> {
    fn image_size(&self, p: &PartitionConfig) -> Option<u64> {
        self.0.find(Kind::Image, p.id).map(|i| i.data.len() as u64)
    }

    fn initrd_size(&self, p: &PartitionConfig) -> Option<u64> {
        self.0.find(Kind::Initrd, p.id).map(|i| i.data.len() as u64)
    }

    fn disk_image_size(&self, d: &ferry_config::VirtioDevice) -> Option<u64> {
        loader::disk_item(&self.0, d).map(|i| i.data.len() as u64)
    }
}

/// Checks only the running machine can answer: the config is for this board, its
/// RAM, CPUs and GIC are the host's, and Ferry (image and pack) lies inside its
/// declared memory.
fn host_checks(cfg: &Config, host: &HostInfo<'_>, ferry: ferry_platform::Region) -> Vec<String> {
    let mut problems = Vec::new();
    let p = &cfg.platform;
    if p.board != BOARD.name {
        problems.push(alloc::format!(
            "/platform: board: the config is for \"{}\", this Ferry is built for \"{}\"",
            p.board,
            BOARD.name
        ));
    }
    for r in &p.memory {
        if !host
            .memory()
            .iter()
            .any(|h| h.base <= r.base && r.end() <= h.end())
        {
            problems.push(alloc::format!(
                "/platform: memory: [{:#x}, {:#x}) is not RAM in the host device tree",
                r.base,
                r.end()
            ));
        }
    }
    if p.cpus as usize > host.cpus().len() {
        problems.push(alloc::format!(
            "/platform: cpus: the config assumes {} CPUs, the host device tree has {}",
            p.cpus,
            host.cpus().len()
        ));
    }
    if let Some(problem) = plan::gic_mismatch((p.gicd, p.gicr), host.gic.gicd, host.gicr()) {
        problems.push(problem);
    }
    let declared = cfg.hypervisor.memory;
    if ferry.base < declared.base || ferry.end() > declared.end() {
        problems.push(alloc::format!(
            "/hypervisor: memory: Ferry occupies [{:#x}, {:#x}), outside the declared [{:#x}, {:#x})",
            ferry.base,
            ferry.end(),
            declared.base,
            declared.end()
        ));
    }
    problems
}

/// Reads and validates the config in `pack`, builds and loads the partitions, and
/// publishes the [`System`]. Refuses the boot (exit 3) on any problem.
pub fn build(
    pack: Pack<'static>,
    host: &HostInfo<'_>,
    image: &ImageLayout,
    pa_bits: u32,
    gic: &Gic,
) -> &'static System {
    let cfg = read_config(&pack, host, image);
    let frequency = cpu::counter_frequency();
    let specs = plan::route_specs(&cfg);
    let mut cores = vec![None; host.cpus().len()];
    // Validation made ids 0..n-1: build in id order so index = id.
    let mut by_id: Vec<&PartitionConfig> = cfg.partitions.iter().collect();
    by_id.sort_by_key(|p| p.id);
    let partitions: Vec<Partition> = by_id
        .into_iter()
        .map(|p| build_partition(p, &cfg, &pack, host, gic, &specs, &mut cores))
        .collect();
    let wait_for: Vec<usize> = cfg.exit.as_ref().map_or(Vec::new(), |e| {
        e.wait_for.iter().map(|&w| w as usize).collect()
    });
    let policy = RunPolicy::new(partitions.len(), &wait_for);
    for d in &cfg.virtio {
        log::info!(
            "virtio device {} ({:?}): frontend '{}' at {:#x}, backend '{}'",
            d.index,
            d.kind,
            partitions[d.frontend as usize].label,
            d.window.base,
            partitions[d.backend as usize].label
        );
    }
    let routes: Vec<Route> = specs.iter().map(|&s| Route::new(s, frequency)).collect();
    let consoles = plan::console_specs(&cfg)
        .into_iter()
        .map(DeviceConsole::new)
        .collect();
    let watchdog = cfg.exit.as_ref().and_then(|e| e.watchdog_ms);
    loader::keep(cfg, pack);
    let system = SYSTEM.call_once(|| {
        System::new(partitions, cores, stage2::vtcr(pa_bits), routes, policy)
            .with_consoles(consoles)
    });
    start_tick(watchdog, system);
    system
}

/// The config in `pack`, parsed and validated (the same checks as `ferry check`,
/// plus the host's); refuses the boot with every problem found.
fn read_config(pack: &Pack<'static>, host: &HostInfo<'_>, image: &ImageLayout) -> Config {
    let Some(config_blob) = pack.find(Kind::Config, pack::SYSTEM) else {
        refuse_lines(&["pack: no config in the pack".into()]);
    };
    let cfg = match ferry_config::parse(config_blob.data) {
        Ok(cfg) => cfg,
        Err(errors) => refuse_lines(&errors.iter().map(ToString::to_string).collect::<Vec<_>>()),
    };
    let ferry = Region::new(
        image.start,
        image.end - image.start + pack.bytes().len() as u64,
    );
    let mut problems: Vec<String> = ferry_config::validate(&cfg, &PackImages(*pack))
        .iter()
        .map(ToString::to_string)
        .collect();
    problems.extend(host_checks(&cfg, host, ferry));
    if !problems.is_empty() {
        refuse_lines(&problems);
    }
    log::info!(
        "config {:?} from {}: {} partition(s)",
        cfg.model,
        config_blob.name,
        cfg.partitions.len()
    );
    cfg
}

/// Starts the EL2 tick if the run has a watchdog or a console that takes input
/// (then says which key focuses which console).
fn start_tick(watchdog: Option<u32>, system: &System) {
    if let Some(ms) = watchdog {
        log::info!("watchdog: {ms} ms");
    }
    let map = hvc::input_map(system);
    if let Some(line) = &map {
        log::info!("{line}");
    }
    crate::irq::start_tick(watchdog, map.is_some());
}

/// Builds partition `p`: its request page (a backend), stage 2, memory contents,
/// vCPUs (recorded in `cores`), physical SPI routing, vGIC and emulated regions.
fn build_partition(
    p: &PartitionConfig,
    cfg: &Config,
    pack: &Pack<'static>,
    host: &HostInfo<'_>,
    gic: &Gic,
    routes: &[RouteSpec],
    cores: &mut [Option<(usize, usize)>],
) -> Partition {
    let page = p.ioreq.map(|io| {
        let frame = vec![Table::EMPTY; 1].leak();
        let base = frame.as_ptr() as u64;
        let doorbell = io.spi().map(|spi| spi + vgic::PRIVATE);
        let now = cpu::counter();
        let page = RequestPage::new(base, doorbell, now, cpu::counter_frequency(), &PhysPages);
        page.start_seqs_at(io.first_seq);
        page
    });
    let extra = plan::backend_regions(cfg, p, page.as_ref().map(|rp| rp.base));
    let vttbr = build_stage2(p, &extra);
    if let Err(problem) = loader::load(p, pack).and_then(|()| loader::load_disks(p, cfg, pack)) {
        refuse_lines(&[problem]);
    }
    let vcpus: Vec<Vcpu> = p
        .cpus
        .iter()
        .enumerate()
        .map(|(v, &core)| {
            cores[core as usize] = Some((p.id as usize, v));
            Vcpu::new(core as usize, host.cpus()[core as usize].mpidr)
        })
        .collect();
    // vCPU 0 boots per the Linux arm64 protocol: x0 = the guest DTB.
    vcpus[0].request_on(p.entry, p.dtb_address);
    log::info!(
        "partition '{}': CPUs {:?}, {} MiB, entry {:#x}, DTB at {:#x}",
        p.label,
        p.cpus,
        p.memory.iter().map(|r| r.size).sum::<u64>() >> 20,
        p.entry,
        p.dtb_address
    );
    let spis = plan::partition_spis(cfg, p);
    for &(intid, _) in spis.iter().filter(|(_, hw)| *hw) {
        gic.route_spi(intid, host.cpus()[p.cpus[0] as usize].mpidr);
    }
    let uart = plan::console_intid(cfg, p).map(|intid| EmulatedUart {
        window: Region::new(cfg.platform.console.base, crate::vuart::WINDOW),
        intid,
        device: spin::Mutex::new(crate::vuart::Pl011::new()),
    });
    let emulated = match plan::emul_table(cfg, p, routes, uart.as_ref().map(|u| u.window)) {
        Ok(table) => table,
        Err(e) => refuse_lines(&[alloc::format!("{}: {e}", p.path)]),
    };
    Partition::new(PartitionParts {
        id: p.id as usize,
        label: p.label.clone(),
        vttbr,
        memory: p.memory.clone(),
        vgic: Vgic::new(vcpus.len(), gic.lines(), &spis),
        vcpus,
        codes: p.codes,
        gicd: cfg.platform.gicd,
        gicr_base: cfg.platform.gicr.base,
        uart,
        ioreq: page,
        emulated,
        restart: p
            .ioreq
            .and_then(|io| io.restart)
            .map(|policy| RestartBudget::new(policy, cpu::counter_frequency())),
        on_fault: p.on_fault,
    })
}

/// How a backend maps a region beyond its RAM: its request page as ordinary memory
/// (Ferry's, written by Ferry and the backend), the frontend memory it shares as
/// [`GuestMemory::Shared`]: read/write, never executed.
fn backend_memory(m: Mapping) -> GuestMemory {
    match m {
        Mapping::RequestPage => GuestMemory::Ram,
        Mapping::FrontendShared => GuestMemory::Shared,
    }
}

/// Builds `p`'s stage-2 tables: guest RAM, passthrough devices and, for a backend,
/// `extra` ([`plan::backend_regions`]: its request page and the frontend memory it
/// shares). Returns VTTBR.
fn build_stage2(p: &PartitionConfig, extra: &[(GuestRegion, Mapping)]) -> u64 {
    let pool = vec![Table::EMPTY; STAGE2_TABLES].leak();
    let pool_pa = pool.as_ptr() as u64;
    let fail = |what: &str, e: ferry_boot::mmu::MapError| -> ! {
        refuse_lines(&[alloc::format!(
            "{}: stage 2: cannot map {what}: {e}",
            p.path
        )])
    };
    let mut tables = match Tables::new(pool, pool_pa, stage2::IPA_BITS) {
        Ok(t) => t,
        Err(e) => fail("anything", e),
    };
    for r in &p.memory {
        if let Err(e) = tables.map(r.ipa, r.pa, r.size, GuestMemory::Ram.attributes()) {
            fail("memory", e);
        }
    }
    for d in &p.devices {
        if d.dma_unconfined() {
            log::warn!(
                "partition '{}': passthrough device {} is an unconfined DMA master (dma = \"unconfined\"): its DMA can reach all memory",
                p.label,
                d.name
            );
        }
        for r in &d.reg {
            if let Err(e) = tables.map(r.base, r.base, r.size, GuestMemory::Device.attributes()) {
                fail(&d.path, e);
            }
        }
    }
    // A backend's request page and the frontend memory it shares.
    for &(r, m) in extra {
        if let Err(e) = tables.map(r.ipa, r.pa, r.size, backend_memory(m).attributes()) {
            fail("virtio memory", e);
        }
    }
    // VMID 0 is left unused: partition n gets VMID n + 1.
    stage2::vttbr((p.id + 1) as u8, tables.root_pa())
}
