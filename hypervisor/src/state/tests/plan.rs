//! What the config makes of each partition: SPIs, a backend's extra memory, the
//! emulated regions and the routes.

use ferry_config::{
    Config, Console, Device as PassthroughDevice, Hypervisor, IoreqPage, IoreqSignal,
    Partition as PartitionConfig, Platform, Sharing, VirtioDevice, VirtioKind,
};

use super::*;
use crate::state::emul::Device;
use crate::state::plan::{self, Mapping};

fn partition(id: u32, label: &str, cpus: Vec<u32>, pa: u64) -> PartitionConfig {
    PartitionConfig {
        id,
        path: format!("/partitions/partition@{id}"),
        label: label.into(),
        cpus,
        memory: vec![GuestRegion {
            ipa: 0x4000_0000,
            pa,
            size: 0x100_0000,
        }],
        image: "x.bin".into(),
        load_address: 0x4000_0000,
        entry: 0x4000_0000,
        bootargs: None,
        initrd: None,
        initrd_address: None,
        dtb_address: 0x40ff_0000,
        devices: vec![],
        console: Console::Hypercall,
        codes: StopCodes::default(),
        on_fault: Default::default(),
        ioreq: None,
        net_uplink: None,
    }
}

fn device(index: u32, backend_index: u32, frontend: u32, backend: u32, spi: u32) -> VirtioDevice {
    VirtioDevice {
        index,
        backend_index,
        path: format!("/virtio/device@{index}"),
        kind: VirtioKind::Rng,
        frontend,
        backend,
        window: Region::new(WINDOW + 0x200 * u64::from(index), 0x200),
        spi,
        sharing: Sharing::Shared,
        shared_memory: Some(0x8000_0000),
        shared_region: None,
        bounce: None,
        deadline_ms: 50 + index,
        disk: None,
        disk_image: None,
        storage: None,
        read_only: false,
        loopback: false,
        mac: None,
        segment: None,
    }
}

/// fe (2 CPUs, PL011, a passthrough device with SPIs 5 and 6), be (a backend
/// with doorbell SPI 20), and two devices served by be in reverse config order.
fn config() -> Config {
    let mut fe = partition(0, "fe", vec![0, 1], 0x4000_0000);
    fe.console = Console::Pl011;
    fe.devices = vec![PassthroughDevice {
        path: "/partitions/partition@0/passthrough/net@a000000".into(),
        name: "net@a000000".into(),
        reg: vec![Region::new(0x0a10_0000, 0x1000)],
        spis: vec![5, 6],
        interrupts: vec![[0, 5, 4], [0, 6, 4]],
        properties: vec![],
        children: vec![],
    }];
    let mut be = partition(1, "be", vec![2], 0x5000_0000);
    be.ioreq = Some(IoreqPage {
        page: 0x40fe_0000,
        signal: IoreqSignal::Spi(20),
        first_seq: 1,
        restart: None,
    });
    Config {
        model: "test".into(),
        platform: Platform {
            board: "qemu-virt".into(),
            memory: vec![Region::new(0x4000_0000, 0x4000_0000)],
            cpus: 4,
            gicd: Region::new(GICD, 0x1_0000),
            gicr: Region::new(GICR, 0xf6_0000),
            console: Region::new(UART, 0x1000),
            console_spi: Some(1),
        },
        hypervisor: Hypervisor {
            memory: Region::new(0x7000_0000, 0x100_0000),
        },
        partitions: vec![be, fe],
        exit: None,
        virtio: vec![device(1, 1, 0, 1, 17), device(0, 0, 0, 1, 16)],
    }
}

#[test]
fn a_frontend_owns_its_passthrough_virtio_and_console_spis() {
    let cfg = config();
    let fe = cfg.partition(0).unwrap();
    assert_eq!(
        plan::partition_spis(&cfg, fe),
        [
            (37, true),
            (38, true),
            (49, false),
            (48, false),
            (33, false)
        ]
    );
    assert_eq!(plan::console_intid(&cfg, fe), Some(33));
}

#[test]
fn a_backend_owns_its_doorbell() {
    let cfg = config();
    let be = cfg.partition(1).unwrap();
    assert_eq!(plan::partition_spis(&cfg, be), [(52, false)]);
    assert_eq!(plan::console_intid(&cfg, be), None, "hypercall console");
}

#[test]
fn a_pl011_console_needs_the_platforms_console_spi() {
    let mut cfg = config();
    cfg.platform.console_spi = None;
    let fe = cfg.partition(0).unwrap().clone();
    assert_eq!(plan::console_intid(&cfg, &fe), None);
    assert!(!plan::partition_spis(&cfg, &fe).contains(&(33, false)));
}

/// The request page of `config()`'s backend, mapped at host 0x71000000.
const PAGE_REGION: (GuestRegion, Mapping) = (
    GuestRegion {
        ipa: 0x40fe_0000,
        pa: 0x7100_0000,
        size: 0x1000,
    },
    Mapping::RequestPage,
);

/// Makes `d` a copy-mode device with a 64 KiB bounce area in the backend.
fn make_copy(d: &mut VirtioDevice, bounce: u64) {
    d.sharing = Sharing::Copy;
    d.shared_memory = None;
    d.bounce = Some(Region::new(bounce, 0x1_0000));
}

#[test]
fn a_backend_maps_its_page_and_each_frontends_first_region() {
    let cfg = config();
    let be = cfg.partition(1).unwrap();
    let regions = plan::backend_regions(&cfg, be, Some(0x7100_0000));
    // Both devices share one mapping (same frontend, region and address).
    assert_eq!(
        regions,
        [
            PAGE_REGION,
            (
                GuestRegion {
                    ipa: 0x8000_0000,
                    pa: 0x4000_0000,
                    size: 0x100_0000
                },
                Mapping::FrontendShared
            ),
        ]
    );
    // Without its page (not built yet), the frontend memory alone.
    let regions = plan::backend_regions(&cfg, be, None);
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].1, Mapping::FrontendShared);
}

#[test]
fn a_copy_device_maps_no_frontend_memory() {
    let mut cfg = config();
    make_copy(&mut cfg.virtio[0], 0x4080_0000);
    make_copy(&mut cfg.virtio[1], 0x4090_0000);
    let be = cfg.partition(1).unwrap();
    assert_eq!(
        plan::backend_regions(&cfg, be, Some(0x7100_0000)),
        [PAGE_REGION]
    );
    // Beside a shared device: only the shared one's region.
    let mut cfg = config();
    make_copy(&mut cfg.virtio[1], 0x4080_0000);
    cfg.virtio[0].shared_region = Some(Region::new(0x4000_0000, 0x20_0000));
    let be = cfg.partition(1).unwrap();
    let regions = plan::backend_regions(&cfg, be, Some(0x7100_0000));
    assert_eq!(
        regions,
        [
            PAGE_REGION,
            (
                GuestRegion {
                    ipa: 0x8000_0000,
                    pa: 0x4000_0000,
                    size: 0x20_0000
                },
                Mapping::FrontendShared
            ),
        ]
    );
}

#[test]
fn a_shared_region_maps_that_range_at_its_host_address() {
    let mut cfg = config();
    // fe: a second region, 16 MiB at guest 0x60000000, host 0x48000000.
    let fe = cfg.partitions.iter_mut().find(|p| p.id == 0).unwrap();
    fe.memory.push(GuestRegion {
        ipa: 0x6000_0000,
        pa: 0x4800_0000,
        size: 0x100_0000,
    });
    // Device 0 (virtio[1]): 1 MiB of the second region at be's 0x80000000;
    // device 1 (virtio[0], first in config order): the default (fe's first
    // region) at be's 0x90000000.
    cfg.virtio[1].shared_region = Some(Region::new(0x6030_0000, 0x10_0000));
    cfg.virtio[0].shared_memory = Some(0x9000_0000);
    let be = cfg.partition(1).unwrap();
    let regions = plan::backend_regions(&cfg, be, Some(0x7100_0000));
    assert_eq!(
        regions,
        [
            PAGE_REGION,
            (
                GuestRegion {
                    ipa: 0x9000_0000,
                    pa: 0x4000_0000,
                    size: 0x100_0000
                },
                Mapping::FrontendShared
            ),
            (
                GuestRegion {
                    ipa: 0x8000_0000,
                    pa: 0x4830_0000,
                    size: 0x10_0000
                },
                Mapping::FrontendShared
            ),
        ]
    );
    // Two devices with different regions at the same address are two mappings
    // (validation refuses that config; the plan hides nothing).
    cfg.virtio[0].shared_memory = Some(0x8000_0000);
    let be = cfg.partition(1).unwrap();
    assert_eq!(plan::backend_regions(&cfg, be, Some(0x7100_0000)).len(), 3);
}

#[test]
fn a_shared_region_outside_the_frontend_maps_nothing() {
    // Validation refuses these; the plan maps no stray host memory for them.
    let mut cfg = config();
    cfg.virtio[0].shared_region = Some(Region::new(0x7000_0000, 0x10_0000));
    cfg.virtio[1].shared_region = Some(Region::new(0x40ff_0000, 0x2_0000));
    let be = cfg.partition(1).unwrap();
    assert_eq!(
        plan::backend_regions(&cfg, be, Some(0x7100_0000)),
        [PAGE_REGION]
    );
}

#[test]
fn a_frontend_maps_nothing_extra() {
    let cfg = config();
    let fe = cfg.partition(0).unwrap();
    assert!(plan::backend_regions(&cfg, fe, None).is_empty());
}

#[test]
fn routes_come_in_index_order_with_their_intids() {
    let cfg = config();
    let specs = plan::route_specs(&cfg);
    assert_eq!(specs.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(specs[0].fe_intid, 48);
    assert_eq!(specs[1].fe_intid, 49);
    assert_eq!((specs[1].backend_index, specs[1].deadline_ms), (1, 51));
    assert_eq!((specs[0].frontend, specs[0].backend), (0, 1));
    assert_eq!((specs[0].bounce, specs[1].bounce), (None, None), "shared");
}

#[test]
fn a_copy_devices_route_carries_its_bounce_area() {
    let mut cfg = config();
    make_copy(&mut cfg.virtio[0], 0x4080_0000);
    let specs = plan::route_specs(&cfg);
    // virtio[0] is the device with index 1.
    assert_eq!(specs[1].bounce, Some(Region::new(0x4080_0000, 0x1_0000)));
    assert_eq!(specs[0].bounce, None);
}

#[test]
fn a_frontends_table_holds_its_windows_gic_and_console() {
    let cfg = config();
    let specs = plan::route_specs(&cfg);
    let fe = cfg.partition(0).unwrap();
    let t = plan::emul_table(&cfg, fe, &specs, Some(Region::new(UART, 0x1000))).unwrap();
    assert_eq!(t.regions().len(), 5);
    assert_eq!(t.find(WINDOW), Some((Device::Virtio(0), 0)));
    assert_eq!(t.find(WINDOW + 0x204), Some((Device::Virtio(1), 4)));
    assert_eq!(t.find(UART), Some((Device::Pl011, 0)));
    assert_eq!(
        t.find(GICR + 2 * crate::vgic::REDIST_STRIDE),
        None,
        "two vCPUs"
    );
}

#[test]
fn a_backends_table_has_no_virtio_window() {
    let cfg = config();
    let specs = plan::route_specs(&cfg);
    let be = cfg.partition(1).unwrap();
    let t = plan::emul_table(&cfg, be, &specs, None).unwrap();
    assert_eq!(t.regions().len(), 2);
    assert_eq!(t.find(WINDOW), None);
}

#[test]
fn a_virtio_window_on_the_console_is_refused() {
    let mut cfg = config();
    cfg.virtio[0].window = Region::new(UART + 0x800, 0x200);
    let specs = plan::route_specs(&cfg);
    let fe = cfg.partition(0).unwrap();
    assert!(plan::emul_table(&cfg, fe, &specs, Some(Region::new(UART, 0x1000))).is_err());
}

#[test]
fn the_configs_gic_must_cover_the_hosts_frames() {
    use crate::state::plan::gic_mismatch;
    let host_gicd = Region::new(0x0800_0000, 0x1_0000);
    let host_gicr = [Region::new(0x080a_0000, 0xf6_0000)];
    let good = (host_gicd, Region::new(0x080a_0000, 0xf6_0000));
    assert_eq!(gic_mismatch(good, host_gicd, &host_gicr), None);
    // Larger than the host's frames is fine (stricter checks).
    let larger = (
        Region::new(0x0800_0000, 0x2_0000),
        Region::new(0x080a_0000, 0x100_0000),
    );
    assert_eq!(gic_mismatch(larger, host_gicd, &host_gicr), None);
    // The same bases but a smaller distributor: a passthrough device could sit
    // on the rest of the real one (the audit's finding).
    let small_d = (Region::new(0x0800_0000, 0x1000), good.1);
    let e = gic_mismatch(small_d, host_gicd, &host_gicr).unwrap();
    assert!(
        e.contains("gic-distributor") && e.contains("smaller"),
        "{e}"
    );
    let small_r = (host_gicd, Region::new(0x080a_0000, 0x2_0000));
    let e = gic_mismatch(small_r, host_gicd, &host_gicr).unwrap();
    assert!(
        e.contains("gic-redistributors") && e.contains("does not cover"),
        "{e}"
    );
    // A second host redistributor region outside the config's.
    let two = [host_gicr[0], Region::new(0x2000_0000, 0x2_0000)];
    assert!(gic_mismatch(good, host_gicd, &two).is_some());
    let moved = (Region::new(0x0900_0000, 0x1_0000), good.1);
    assert!(
        gic_mismatch(moved, host_gicd, &host_gicr)
            .unwrap()
            .contains("is not the host's")
    );
    assert!(
        gic_mismatch(good, host_gicd, &[]).is_some(),
        "no redistributor at all"
    );
}

#[test]
fn consoles_get_hvc_numbers_per_frontend_and_keys_in_order() {
    let mut cfg = config();
    let mut other = partition(2, "other", vec![3], 0x6000_0000);
    other.console = Console::Hypercall;
    cfg.partitions.push(other);
    let console = |index: u32, frontend: u32, loopback: bool| VirtioDevice {
        kind: VirtioKind::Console,
        loopback,
        ..device(index, index, frontend, 1, 16 + index)
    };
    // In reverse config order: numbering follows the index.
    cfg.virtio = vec![
        console(4, 0, false),
        console(3, 2, false),
        device(2, 2, 0, 1, 18),
        console(1, 0, false),
        console(0, 0, true),
    ];
    let specs = plan::console_specs(&cfg);
    let got: Vec<(usize, u32, bool, Option<char>, &str)> = specs
        .iter()
        .map(|c| {
            let key = c.key.map(char::from);
            (c.route, c.hvc, c.loopback, key, c.label.as_str())
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 0, true, None, "fe:hvc0"),
            (1, 1, false, Some('a'), "fe:hvc1"),
            (3, 0, false, Some('b'), "other:hvc0"),
            (4, 2, false, Some('c'), "fe:hvc2"),
        ]
    );
}
