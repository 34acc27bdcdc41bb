//! `config_parse`: the config DTB through `ferry_config::parse` and `validate` (what
//! `ferry check` runs, and Ferry at boot on the pack's config), then, for a config
//! that validates, the state layer's plan of it (`state::plan`: SPIs, a backend's
//! extra memory, emulated regions, virtio routes), as Ferry builds the system.
//!
//! Input: a DTB (the seeds are the configs under tests/ and configs/). Image sizes
//! come from the file names (a CRC of the name; a name containing "missing" has
//! no file), so the fuzzer reaches the image checks by editing names.
//!
//! Checked: nothing panics (parse, validate, every error's message, the plan); and
//! a config `validate` accepts keeps the rules of docs/config.md "Checks" that the
//! boot code relies on (ids 0..n-1, CPUs, memory, virtio devices and their sync
//! slots, the exit policy), and its emulated regions can be laid out.
#![no_main]

use std::collections::BTreeSet;

use ferry_abi::{MAX_CPUS, Region, crc32, ioreq};
use ferry_config::{
    Config, Console, Images, MAX_FRONTEND_VCPUS, MAX_SPI, MAX_VIRTIO_PER_BACKEND, PAGE_SIZE,
    Partition, VIRTIO_WINDOW_SIZE, VirtioDevice,
};
use ferry_hypervisor::state::plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = match ferry_config::parse(data) {
        Ok(cfg) => cfg,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused config names a problem");
            errors.iter().for_each(|e| drop(e.to_string()));
            return;
        }
    };
    let errors = ferry_config::validate(&cfg, &Sizes);
    errors.iter().for_each(|e| drop(e.to_string()));
    if errors.is_empty() {
        check_rules(&cfg);
        check_plan(&cfg);
    }
});

/// Image sizes from the file names.
struct Sizes;

impl Sizes {
    fn size(name: &str) -> Option<u64> {
        if name.contains("missing") {
            return None;
        }
        Some(u64::from(crc32::checksum(name.as_bytes()) % 0x40_0000) + 1)
    }
}

impl Images for Sizes {
    fn image_size(&self, p: &Partition) -> Option<u64> {
        Sizes::size(&p.image)
    }

    fn initrd_size(&self, p: &Partition) -> Option<u64> {
        Sizes::size(p.initrd.as_deref()?)
    }

    fn disk_image_size(&self, d: &VirtioDevice) -> Option<u64> {
        Sizes::size(d.disk_image.as_deref()?)
    }
}

/// A usable region: aligned, not empty, not wrapping.
fn sane(r: Region) -> bool {
    r.size != 0
        && r.base.checked_add(r.size).is_some()
        && r.base.is_multiple_of(PAGE_SIZE)
        && r.size.is_multiple_of(PAGE_SIZE)
}

/// The rules of docs/config.md "Checks" that Ferry's boot code indexes by.
fn check_rules(cfg: &Config) {
    let p = &cfg.platform;
    assert!((1..=MAX_CPUS as u32).contains(&p.cpus), "cpus {}", p.cpus);
    let n = cfg.partitions.len();
    assert!(n >= 1, "at least one partition");
    let ids: BTreeSet<u32> = cfg.partitions.iter().map(|q| q.id).collect();
    assert!(ids.iter().copied().eq(0..n as u32), "ids 0..n-1: {ids:?}");
    let labels: BTreeSet<&str> = cfg.partitions.iter().map(|q| q.label.as_str()).collect();
    assert_eq!(labels.len(), n, "labels unique");
    assert!(!labels.contains(""), "labels not empty");
    let mut cpus = BTreeSet::new();
    let mut host: Vec<Region> = vec![cfg.hypervisor.memory];
    for q in &cfg.partitions {
        assert!(!q.cpus.is_empty(), "{}: a CPU", q.path);
        for &c in &q.cpus {
            assert!(c < p.cpus, "{}: CPU {c} of {}", q.path, p.cpus);
            assert!(cpus.insert(c), "{}: CPU {c} given twice", q.path);
        }
        assert!(!q.memory.is_empty(), "{}: memory", q.path);
        for r in &q.memory {
            assert!(
                sane(r.guest()) && sane(r.host()),
                "{}: region {r:?}",
                q.path
            );
            let overlap = host.iter().find(|h| h.overlaps(&r.host()));
            assert!(overlap.is_none(), "{}: {r:?} overlaps {overlap:?}", q.path);
        }
        host.extend(q.memory.iter().map(|r| r.host()));
        assert!(q.contains_ipa(q.entry, 0), "{}: entry in memory", q.path);
        assert!(
            q.contains_ipa(q.load_address, 0),
            "{}: load address",
            q.path
        );
    }
    check_virtio(cfg);
    if let Some(exit) = &cfg.exit {
        assert!(exit.wait_for.iter().all(|&w| (w as usize) < n));
        assert_ne!(exit.watchdog_ms, Some(0));
    }
}

/// The `/virtio` rules: what the IOREQ path's slots and routes rely on.
fn check_virtio(cfg: &Config) {
    let indices: BTreeSet<u32> = cfg.virtio.iter().map(|d| d.index).collect();
    assert!(indices.iter().copied().eq(0..cfg.virtio.len() as u32));
    let mut slots = BTreeSet::new();
    for d in &cfg.virtio {
        let fe = cfg.partition(d.frontend).expect("a frontend partition");
        let be = cfg.partition(d.backend).expect("a backend partition");
        assert_ne!(d.frontend, d.backend, "{}", d.path);
        assert!(
            be.ioreq.is_some(),
            "{}: the backend has a request page",
            d.path
        );
        assert!(fe.cpus.len() <= MAX_FRONTEND_VCPUS, "{}", d.path);
        assert!(cfg.backend_devices(d.backend).len() <= MAX_VIRTIO_PER_BACKEND);
        let slot = ioreq::sync_slot(d.backend_index as usize, fe.cpus.len() - 1);
        assert!(slot.is_some(), "{}: sync slots for every vCPU", d.path);
        assert!(slots.insert((d.backend, d.backend_index)), "{}", d.path);
        assert_eq!(d.window.size, VIRTIO_WINDOW_SIZE, "{}", d.path);
        assert!(
            d.window.base.is_multiple_of(VIRTIO_WINDOW_SIZE),
            "{}",
            d.path
        );
        assert!(d.spi <= MAX_SPI && d.deadline_ms >= 1, "{}", d.path);
    }
}

/// The state layer's plan of a valid config, as `system::build` makes it.
fn check_plan(cfg: &Config) {
    let routes = plan::route_specs(cfg);
    for (i, r) in routes.iter().enumerate() {
        assert_eq!(r.index, i, "a route's position is its index");
    }
    for p in &cfg.partitions {
        for (intid, _) in plan::partition_spis(cfg, p) {
            assert!((32..1020).contains(&intid), "{}: INTID {intid}", p.path);
        }
        let uart = plan::console_intid(cfg, p)
            .map(|_| Region::new(cfg.platform.console.base, ferry_hypervisor::vuart::WINDOW));
        assert_eq!(uart.is_some(), p.console == Console::Pl011);
        let page_pa = p.ioreq.map(|_| 0x10_0000);
        let _ = plan::backend_regions(cfg, p, page_pa);
        if let Err(e) = plan::emul_table(cfg, p, &routes, uart) {
            panic!("{}: validated, but its emulated regions clash: {e}", p.path);
        }
    }
}
