//! What the config makes of each partition: SPIs, a backend's extra memory, the
//! emulated regions and the routes.

use ferry_config::{
    Config, Console, Device as PassthroughDevice, Hypervisor, IoreqPage, IoreqSignal,
    Partition as PartitionConfig, Platform, Sharing, VirtioDevice, VirtioKind,
};

use super::*;
use crate::state::emul::Device;
use crate::state::plan;

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
        ioreq: None,
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
        shared_memory: 0x8000_0000,
        deadline_ms: 50 + index,
        disk: None,
        disk_image: None,
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

#[test]
fn a_backend_maps_its_page_and_each_frontends_first_region() {
    let cfg = config();
    let be = cfg.partition(1).unwrap();
    let regions = plan::backend_regions(&cfg, be, Some(0x7100_0000));
    assert_eq!(
        regions,
        [
            GuestRegion {
                ipa: 0x40fe_0000,
                pa: 0x7100_0000,
                size: 0x1000
            },
            GuestRegion {
                ipa: 0x8000_0000,
                pa: 0x4000_0000,
                size: 0x100_0000
            },
            GuestRegion {
                ipa: 0x8000_0000,
                pa: 0x4000_0000,
                size: 0x100_0000
            },
        ]
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
