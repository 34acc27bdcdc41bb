//! A blk device backed by a physical virtio-blk transport (`storage`) instead of
//! a RAM disk (`disk`), and `read-only`: parsing and every rule.

mod common;

use common::*;
use ferry_config::{Region, Sharing, Storage, VirtioKind};

const NONE: [&str; 0] = [];
const D0: &str = "virtio/device@0";
/// beta's passthrough device holding QEMU virt's virtio-mmio transports.
const TRANSPORTS: &str = "partitions/partition@1/passthrough/virtio-transports@a003000";
const TRANSPORTS_PATH: &str = "/partitions/partition@1/passthrough/virtio-transports@a003000";

/// The page of QEMU virt's virtio-mmio transports, [0x0a003000, 0x0a004000), with
/// SPIs 40..47, as a passthrough DMA master accepted unconfined.
fn transports() -> N {
    let spis: Vec<u32> = (40..48).flat_map(|n| [0, n, 1]).collect();
    N::new("virtio-transports@a003000")
        .p("compatible", s("virtio,mmio"))
        .p("reg", u64s(&[0x0a00_3000, 0x1000]))
        .p("interrupts", cells(&spis))
        .p("dma", s("unconfined"))
        .p("dma-coherent", vec![])
}

/// A blk device of alpha served by beta from the physical transport at
/// `address` with `spi` (alpha's window 0x0a000000 + 0x200 * index, SPI 16 +
/// index).
fn blk(index: u32, address: u64, spi: u32) -> N {
    N::new(&format!("device@{index}"))
        .p("reg", cells(&[index]))
        .p("type", s("blk"))
        .p("frontend", s("alpha"))
        .p("backend", s("beta"))
        .p(
            "window",
            u64s(&[0x0a00_0000 + 0x200 * u64::from(index), 0x200]),
        )
        .p("spi", cells(&[16 + index]))
        .p("shared-memory", u64s(&[0x8000_0000]))
        .p("storage", storage(address, spi))
        .p("deadline-ms", cells(&[2000]))
}

/// A `storage` value: 2 address cells and 1 SPI cell.
fn storage(address: u64, spi: u32) -> Vec<u8> {
    let mut v = u64s(&[address]);
    v.extend(cells(&[spi]));
    v
}

/// `good()` with beta a backend (request page 0x0b000000, SPI 100) owning the
/// transports page, serving alpha a blk device from the transport QEMU gives
/// the first `-device virtio-blk-device` (0x0a003e00, SPI 47).
fn physical() -> N {
    let mut t = good();
    let be = t.at(P1);
    be.set("ioreq-page", u64s(&[0x0b00_0000]))
        .set("ioreq-spi", cells(&[100]));
    be.children.push(
        N::new("passthrough")
            .p("#address-cells", cells(&[2]))
            .p("#size-cells", cells(&[2]))
            .c(transports()),
    );
    t.children.push(
        N::new("virtio")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(blk(0, 0x0a00_3e00, 47)),
    );
    t
}

fn edit(f: impl FnOnce(&mut N)) -> Vec<String> {
    let mut t = physical();
    f(&mut t);
    problems(&t)
}

#[test]
fn a_physical_disk_parses_and_checks() {
    let t = physical();
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    let d = &c.virtio[0];
    assert_eq!(d.kind, VirtioKind::Blk);
    assert_eq!(
        d.storage,
        Some(Storage {
            address: 0x0a00_3e00,
            spi: 47
        })
    );
    assert_eq!(d.storage.unwrap().region(), Region::new(0x0a00_3e00, 0x200));
    assert_eq!(
        (d.disk, d.disk_image.as_deref(), d.read_only),
        (None, None, false)
    );
    let dev = c.storage_device(d).unwrap();
    assert_eq!(dev.path, TRANSPORTS_PATH);
    // Devices without storage have no storage device.
    let mut rng = d.clone();
    rng.storage = None;
    assert!(c.storage_device(&rng).is_none());
}

#[test]
fn read_only_is_a_flag_of_blk_devices() {
    let mut t = physical();
    t.at(D0).set("read-only", vec![]);
    assert_eq!(problems(&t), NONE);
    assert!(parsed(&t).virtio[0].read_only);
    // A RAM disk may be read-only too.
    let p = edit(|t| {
        t.at(D0)
            .remove("storage")
            .set("disk", u64s(&[0x4040_0000, 0x10_0000]))
            .set("read-only", vec![]);
    });
    assert_eq!(p, NONE);
    // A flag has no value.
    let p = edit(|t| {
        t.at(D0).set("read-only", cells(&[1]));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: read-only: must be empty (a flag: write `read-only;`) (found 4 bytes)"]
    );
    // Only for blk.
    let p = edit(|t| {
        t.at(D0)
            .set("type", s("rng"))
            .remove("storage")
            .set("read-only", vec![]);
    });
    assert_eq!(
        p,
        ["/virtio/device@0: read-only: is only for type \"blk\" (this device is \"rng\")"]
    );
}

#[test]
fn blk_has_exactly_one_of_disk_and_storage() {
    let p = edit(|t| {
        t.at(D0).remove("storage");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: disk: is missing (a \"blk\" device needs disk, the region of the backend's memory its RAM disk lives in, or storage, the physical virtio-blk transport it serves)"
        ]
    );
    let p = edit(|t| {
        t.at(D0).set("disk", u64s(&[0x4040_0000, 0x10_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: storage: cannot be given with disk (a \"blk\" device serves either a RAM disk, disk, or a physical virtio-blk transport, storage)"
        ]
    );
}

#[test]
fn storage_is_only_for_blk_and_disk_image_only_with_disk() {
    let p = edit(|t| {
        t.at(D0).set("type", s("console"));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: storage: is only for type \"blk\" (this device is \"console\")"]
    );
    // Refused as such, whatever it holds.
    let p = edit(|t| {
        t.at(D0)
            .set("type", s("rng"))
            .set("storage", storage(0x0a00_3e10, 99));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: storage: is only for type \"blk\" (this device is \"rng\")"]
    );
    let p = edit(|t| {
        t.at(D0).set("disk-image", s("disk.img"));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: disk-image: \"disk.img\" is only for a RAM disk (disk): this device serves storage [0xa003e00, 0xa004000), a physical virtio-blk transport, which keeps its own contents"
        ]
    );
}

#[test]
fn storage_is_an_address_and_an_spi() {
    for bad in [u64s(&[0x0a00_3e00, 47]), cells(&[0x0a00_3e00, 47])] {
        let len = bad.len();
        let p = edit(|t| {
            t.at(D0).set("storage", bad);
        });
        assert_eq!(
            p,
            [format!(
                "/virtio/device@0: storage: must be (address, SPI) of 2 + 1 cells (found {len} bytes)"
            )]
        );
    }
}

#[test]
fn storage_is_aligned_and_does_not_wrap() {
    let p = edit(|t| {
        t.at(D0).set("storage", storage(0x0a00_3e10, 47));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: storage: 0xa003e10 is not 0x200-aligned (a virtio-mmio transport is 0x200 bytes)"
        ]
    );
    let p = edit(|t| {
        t.at(D0).set("storage", storage(0xffff_ffff_ffff_fe00, 47));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: storage: [0xfffffffffffffe00, 0x10000000000000000) wraps around the end of the address space"
        ]
    );
}

#[test]
fn storage_lies_in_a_passthrough_device_of_the_backend() {
    // Any transport of the page: the first, the last, one between.
    for (address, spi) in [(0x0a00_3000, 40), (0x0a00_3e00, 47), (0x0a00_3200, 41)] {
        let p = edit(|t| {
            t.at(D0).set("storage", storage(address, spi));
        });
        assert_eq!(p, NONE, "{address:#x}");
    }
    // Beyond the device's reg, or in no device at all (the console).
    for (address, range) in [
        (0x0a00_4000, "[0xa004000, 0xa004200)"),
        (0x0900_0000, "[0x9000000, 0x9000200)"),
    ] {
        let p = edit(|t| {
            t.at(D0).set("storage", storage(address, 47));
        });
        assert_eq!(
            p,
            [format!(
                "/virtio/device@0: storage: {range} is not inside the reg of a passthrough device of the backend \"beta\" (/partitions/partition@1)"
            )]
        );
    }
    // A device with several reg ranges: any one of them may hold it.
    let p = edit(|t| {
        t.at(TRANSPORTS)
            .set("reg", u64s(&[0x0a00_2000, 0x1000, 0x0a00_3000, 0x1000]));
    });
    assert_eq!(p, NONE);
}

#[test]
fn a_transport_of_another_partition_is_refused_and_named() {
    // The transports are alpha's (the frontend's), not the backend's.
    let p = edit(|t| {
        t.at(P1).remove_child("passthrough");
        t.at("partitions/partition@0/passthrough")
            .children
            .push(transports());
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: storage: [0xa003e00, 0xa004000) is not inside the reg of a passthrough device of the backend \"beta\" (/partitions/partition@1); it is in /partitions/partition@0/passthrough/virtio-transports@a003000 reg [0xa003000, 0xa004000), a device of /partitions/partition@0: the backend must own the transport"
        ]
    );
}

#[test]
fn the_transport_must_be_accepted_as_an_unconfined_dma_master() {
    // A DMA master without dma = "unconfined": refused as a passthrough device,
    // and as the device's storage.
    let p = edit(|t| {
        t.at(TRANSPORTS).remove("dma");
    });
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(&format!(
            "{TRANSPORTS_PATH}: is a DMA master (compatible \"virtio,mmio\""
        )),
        "{}",
        p[0]
    );
    assert_eq!(
        p[1],
        format!(
            "/virtio/device@0: storage: [0xa003e00, 0xa004000) is in {TRANSPORTS_PATH}, which is not marked dma = \"unconfined\": the backend drives the transport as a DMA master (it reads and writes memory by host address), which Ferry cannot confine without an SMMU"
        )
    );
    // A node that does not say it is a DMA master passes as a passthrough
    // device, but serving storage makes it one.
    let p = edit(|t| {
        t.at(TRANSPORTS)
            .remove("dma")
            .remove("dma-coherent")
            .set("compatible", s("vendor,mmio-block"));
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@0: storage: [0xa003e00, 0xa004000) is in {TRANSPORTS_PATH}, which is not marked dma = \"unconfined\": the backend drives the transport as a DMA master (it reads and writes memory by host address), which Ferry cannot confine without an SMMU"
        )]
    );
}

#[test]
fn the_spi_is_one_of_the_transports() {
    let p = edit(|t| {
        t.at(D0).set("storage", storage(0x0a00_3e00, 48));
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@0: storage: SPI 48 is not an interrupt of {TRANSPORTS_PATH} (its SPIs: 40, 41, 42, 43, 44, 45, 46, 47)"
        )]
    );
    let p = edit(|t| {
        t.at(TRANSPORTS).remove("interrupts");
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@0: storage: SPI 47 is not an interrupt of {TRANSPORTS_PATH} (it has none)"
        )]
    );
    // Not checked against the transport's position: QEMU's order is the
    // board's business.
    let p = edit(|t| {
        t.at(D0).set("storage", storage(0x0a00_3e00, 40));
    });
    assert_eq!(p, NONE);
}

#[test]
fn two_devices_do_not_share_a_transport() {
    let p = edit(|t| {
        t.at("virtio").children.push(blk(1, 0x0a00_3c00, 46));
    });
    assert_eq!(p, NONE);
    let p = edit(|t| {
        t.at("virtio").children.push(blk(1, 0x0a00_3e00, 47));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: storage: [0xa003e00, 0xa004000) is also the storage of /virtio/device@0"
        ]
    );
    // Beside a RAM-disk blk device on the same backend.
    let p = edit(|t| {
        let mut ram = blk(1, 0, 0);
        ram.remove("storage")
            .set("disk", u64s(&[0x4040_0000, 0x10_0000]));
        t.at("virtio").children.push(ram);
    });
    assert_eq!(p, NONE);
    let c = parsed(&{
        let mut t = physical();
        t.at("virtio").children.push(blk(1, 0x0a00_3c00, 46));
        t
    });
    assert_eq!(
        c.virtio
            .iter()
            .map(|d| d.storage.map(|s| s.spi))
            .collect::<Vec<_>>(),
        [Some(47), Some(46)]
    );
}

#[test]
fn a_physical_disk_in_copy_mode() {
    let p = edit(|t| {
        t.at(D0)
            .set("sharing", s("copy"))
            .remove("shared-memory")
            .set("bounce", u64s(&[0x4060_0000, 0x1_0000]));
    });
    assert_eq!(p, NONE);
    let mut t = physical();
    t.at(D0)
        .set("sharing", s("copy"))
        .remove("shared-memory")
        .set("bounce", u64s(&[0x4060_0000, 0x1_0000]));
    assert_eq!(parsed(&t).virtio[0].sharing, Sharing::Copy);
}

#[test]
fn the_frontend_spi_rules_see_the_backends_passthrough_spis() {
    // The frontend's virtual SPI 16 is none of the backend's passthrough SPIs
    // 40..47 (physical()); one of them would be taken.
    let p = edit(|t| {
        t.at(D0).set("spi", cells(&[47]));
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@0: spi: SPI 47 is also given to {TRANSPORTS_PATH}"
        )]
    );
    // The frontend's window may sit at the guest address of the backend's
    // transports: two address spaces.
    let p = edit(|t| {
        t.at(D0).set("window", u64s(&[0x0a00_3e00, 0x200]));
    });
    assert_eq!(p, NONE);
}

#[test]
fn a_backend_that_owns_a_disk_is_not_restarted() {
    let errs = edit(|t| {
        t.at(P1).set("restart", s("on-failure"));
    });
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("/virtio/device@0: storage: [0xa003e00, 0xa004000) is a DMA master of the backend \"beta\", which has restart = \"on-failure\""),
        "{errs:?}"
    );
}
