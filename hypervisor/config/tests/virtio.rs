//! `/virtio` devices and backends' `ioreq-page`/`ioreq-spi`: parsing, defaults,
//! and every rule.

mod common;

use common::*;
use ferry_config::{
    DEFAULT_DEADLINE_MS, IoreqPage, Region, Sharing, VIRTIO_WINDOW_SIZE, VirtioDevice, VirtioKind,
};

const NONE: [&str; 0] = [];
const D0: &str = "virtio/device@0";
const D1: &str = "virtio/device@1";

fn device(index: u32, kind: &str, window: u64, spi: u32) -> N {
    N::new(&format!("device@{index}"))
        .p("reg", cells(&[index]))
        .p("type", s(kind))
        .p("frontend", s("alpha"))
        .p("backend", s("beta"))
        .p("window", u64s(&[window, 0x200]))
        .p("spi", cells(&[spi]))
        .p("sharing", s("shared"))
        .p("shared-memory", u64s(&[0x8000_0000]))
}

/// `good()` with beta a backend (request page at 0x0b000000, SPI 100) serving
/// alpha an rng device at 0x0a003e00 (SPI 47).
fn virtio() -> N {
    let mut t = good();
    t.at(P1)
        .set("ioreq-page", u64s(&[0x0b00_0000]))
        .set("ioreq-spi", cells(&[100]));
    t.children.push(
        N::new("virtio")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(device(0, "rng", 0x0a00_3e00, 47)),
    );
    t
}

/// `virtio()` with a second device (blk at 0x0a003c00, SPI 46).
fn two() -> N {
    let mut t = virtio();
    t.at("virtio")
        .children
        .push(device(1, "blk", 0x0a00_3c00, 46));
    t
}

fn edit(base: fn() -> N, f: impl FnOnce(&mut N)) -> Vec<String> {
    let mut t = base();
    f(&mut t);
    problems(&t)
}

#[test]
fn parses_with_defaults() {
    let t = virtio();
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    assert_eq!(c.partitions[0].ioreq, None);
    assert_eq!(
        c.partitions[1].ioreq,
        Some(IoreqPage {
            page: 0x0b00_0000,
            spi: 100
        })
    );
    assert_eq!(
        c.virtio,
        [VirtioDevice {
            index: 0,
            path: "/virtio/device@0".into(),
            kind: VirtioKind::Rng,
            frontend: 0,
            backend: 1,
            window: Region::new(0x0a00_3e00, VIRTIO_WINDOW_SIZE),
            spi: 47,
            sharing: Sharing::Shared,
            shared_memory: 0x8000_0000,
            deadline_ms: DEFAULT_DEADLINE_MS,
            disk_image: None,
        }]
    );
    assert_eq!(DEFAULT_DEADLINE_MS, 100);
    // Without /virtio: no devices.
    assert!(parsed(&good()).virtio.is_empty());
}

#[test]
fn optional_properties_and_helpers() {
    let mut t = two();
    t.at(D1)
        .set("deadline-ms", cells(&[250]))
        .set("disk-image", s("disk.img"))
        .remove("sharing");
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    assert_eq!(c.virtio[1].kind, VirtioKind::Blk);
    assert_eq!(c.virtio[1].deadline_ms, 250);
    assert_eq!(c.virtio[1].disk_image.as_deref(), Some("disk.img"));
    assert_eq!(c.virtio[1].sharing, Sharing::Shared);
    let by_be: Vec<u32> = c.backend_devices(1).iter().map(|d| d.index).collect();
    assert_eq!(by_be, [0, 1]);
    assert!(c.backend_devices(0).is_empty());
    assert_eq!(c.frontend_devices(0).len(), 2);
    for k in [VirtioKind::Blk, VirtioKind::Console, VirtioKind::Rng] {
        assert_eq!(VirtioKind::from_name(k.name()), Some(k));
    }
    assert_eq!(VirtioKind::Blk.device_id(), 2);
    assert_eq!(VirtioKind::Console.device_id(), 3);
    assert_eq!(VirtioKind::Rng.device_id(), 4);
}

#[test]
fn structure_problems() {
    let p = edit(virtio, |t| {
        t.at(D0)
            .set("type", s("net"))
            .set("frontend", s("gamma"))
            .set("colour", s("red"))
            .remove("window");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: colour: unknown property",
            "/virtio/device@0: type: \"net\" is not a virtio device type (expected \"blk\", \"console\" or \"rng\")",
            "/virtio/device@0: frontend: \"gamma\" is not the label of any partition",
            "/virtio/device@0: window: is missing",
        ]
    );
    let p = edit(virtio, |t| {
        t.at(D0).set("backend", s("delta"));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: backend: \"delta\" is not the label of any partition"]
    );
    let p = edit(virtio, |t| {
        t.at("virtio").remove("#size-cells");
    });
    assert_eq!(p, ["/virtio: #size-cells: is missing"]);
    let p = edit(virtio, |t| {
        t.at(P1).remove("ioreq-spi");
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-spi: is missing (a backend's ioreq-page needs its ioreq-spi)"
        ]
    );
    let p = edit(virtio, |t| {
        t.at(P1).remove("ioreq-page");
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: is missing (a backend's ioreq-spi needs its ioreq-page)"
        ]
    );
}

#[test]
fn sharing_copy_is_not_implemented() {
    let p = edit(virtio, |t| {
        t.at(D0).set("sharing", s("copy"));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: sharing: \"copy\" is not implemented yet (use \"shared\")"]
    );
    let p = edit(virtio, |t| {
        t.at(D0).set("sharing", s("grant"));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: sharing: \"grant\" is not a sharing mode (expected \"shared\")"]
    );
}

#[test]
fn frontend_and_backend() {
    // The frontend is its own backend (alpha has an ioreq page too).
    let p = edit(virtio, |t| {
        t.at(P0)
            .set("ioreq-page", u64s(&[0x0b00_0000]))
            .set("ioreq-spi", cells(&[101]));
        t.at(D0).set("backend", s("alpha"));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: backend: \"alpha\" is also the frontend: a partition cannot serve its own device"
        ]
    );
    // A backend without a request page.
    let p = edit(virtio, |t| {
        t.at(P1).remove("ioreq-page").remove("ioreq-spi");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: backend: \"beta\" (/partitions/partition@1) has no ioreq-page/ioreq-spi (a backend needs its request page)"
        ]
    );
}

#[test]
fn indices() {
    let p = edit(two, |t| {
        t.at(D1).set("reg", cells(&[0]));
    });
    assert_eq!(
        p,
        ["/virtio/device@1: reg: index 0 is also the index of /virtio/device@0"]
    );
    let p = edit(two, |t| {
        t.at(D1).set("reg", cells(&[2]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: reg: index 2 leaves a gap: the 2 virtio devices must have indices 0 to 1"
        ]
    );
}

#[test]
fn window_size_and_alignment() {
    let p = edit(virtio, |t| {
        t.at(D0).set("window", u64s(&[0x0a00_3e00, 0x1000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: window: [0xa003e00, 0xa004e00) has size 0x1000 (a virtio-mmio window is 0x200 bytes)"
        ]
    );
    let p = edit(virtio, |t| {
        t.at(D0).set("window", u64s(&[0x0a00_3e10, 0x200]));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: window: [0xa003e10, 0xa004010) is not 0x200-aligned"]
    );
}

#[test]
fn window_overlaps() {
    let cases = [
        (
            0x4000_0000,
            "[0x40000000, 0x40000200) overlaps /partitions/partition@0 guest memory [0x40000000, 0x40800000)",
        ),
        (
            0x0904_0200,
            "[0x9040200, 0x9040400) overlaps /partitions/partition@0/passthrough/serial@9040000 reg [0x9040000, 0x9041000)",
        ),
        (
            0x0800_0000,
            "[0x8000000, 0x8000200) overlaps /platform gic-distributor [0x8000000, 0x8010000)",
        ),
        (
            0x080a_0000,
            "[0x80a0000, 0x80a0200) overlaps /platform gic-redistributors [0x80a0000, 0x9000000)",
        ),
        (
            0x0900_0000,
            "[0x9000000, 0x9000200) overlaps /platform console [0x9000000, 0x9001000)",
        ),
    ];
    for (base, msg) in cases {
        let p = edit(virtio, |t| {
            t.at(D0).set("window", u64s(&[base, 0x200]));
        });
        assert_eq!(p, [format!("/virtio/device@0: window: {msg}")]);
    }
    // Another device's window in the same frontend ...
    let p = edit(two, |t| {
        t.at(D1).set("window", u64s(&[0x0a00_3e00, 0x200]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: window: [0xa003e00, 0xa004000) overlaps /virtio/device@0 window [0xa003e00, 0xa004000)"
        ]
    );
    // ... but the same address in another frontend is fine (beta fronts, alpha serves).
    let p = edit(two, |t| {
        t.at(P0)
            .set("ioreq-page", u64s(&[0x0c00_0000]))
            .set("ioreq-spi", cells(&[101]));
        t.at(D1)
            .set("window", u64s(&[0x0a00_3e00, 0x200]))
            .set("frontend", s("beta"))
            .set("backend", s("alpha"));
    });
    assert_eq!(p, NONE);
}

#[test]
fn spi_taken_or_out_of_range() {
    type Case = (u32, fn(&mut N), &'static str);
    let cases: [Case; 5] = [
        (1000, |_| {}, "SPI 1000 is out of range (0 to 987)"),
        (
            8,
            |_| {},
            "SPI 8 is also given to /partitions/partition@0/passthrough/serial@9040000",
        ),
        (
            1,
            |t| {
                t.at("platform").set("console-spi", cells(&[1]));
            },
            "SPI 1 is /platform console-spi (the emulated PL011 consoles' interrupt)",
        ),
        (
            100,
            |_| {},
            "SPI 100 is also the ioreq-spi of /partitions/partition@1",
        ),
        (46, |_| {}, "SPI 46 is also the spi of /virtio/device@0"),
    ];
    for (spi, f, msg) in cases {
        let p = edit(two, |t| {
            f(t);
            t.at(D0).set("spi", cells(&[46]));
            t.at(D1).set("spi", cells(&[spi]));
        });
        let p: Vec<String> = p.into_iter().filter(|m| m.contains(": spi: ")).collect();
        assert_eq!(p, [format!("/virtio/device@1: spi: {msg}")], "SPI {spi}");
    }
    // A passthrough SPI in *another* partition is taken too.
    let p = edit(virtio, |t| {
        let pt = N::new("passthrough").c(N::new("x@a000000")
            .p("reg", u64s(&[0x0a00_0000, 0x1000]))
            .p("interrupts", cells(&[0, 47, 4])));
        t.at(P1).children.push(pt);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: spi: SPI 47 is also given to /partitions/partition@1/passthrough/x@a000000"
        ]
    );
}

#[test]
fn ioreq_page_and_spi() {
    let p = edit(virtio, |t| {
        t.at(P1).set("ioreq-page", u64s(&[0x0b00_0800]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: 0xb000800 is not 4 KiB-aligned (base and size must be multiples of 0x1000)"
        ]
    );
    let cases = [
        (
            0x4000_1000,
            "the request page [0x40001000, 0x40002000) overlaps /partitions/partition@1 guest memory [0x40000000, 0x40800000)",
        ),
        (
            0x0800_0000,
            "the request page [0x8000000, 0x8001000) overlaps /platform gic-distributor [0x8000000, 0x8010000)",
        ),
        (
            0x0900_0000,
            "the request page [0x9000000, 0x9001000) overlaps /platform console [0x9000000, 0x9001000)",
        ),
    ];
    for (page, msg) in cases {
        let p = edit(virtio, |t| {
            t.at(P1).set("ioreq-page", u64s(&[page]));
        });
        assert_eq!(p, [format!("/partitions/partition@1: ioreq-page: {msg}")]);
    }
    // Its own passthrough devices.
    let p = edit(virtio, |t| {
        t.at(P1).set("ioreq-page", u64s(&[0x0a00_0000]));
        t.at(P1).children.push(
            N::new("passthrough").c(N::new("x@a000000").p("reg", u64s(&[0x0a00_0000, 0x1000]))),
        );
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: the request page [0xa000000, 0xa001000) overlaps /partitions/partition@1/passthrough/x@a000000 reg [0xa000000, 0xa001000)"
        ]
    );
    // A window of a device the backend itself fronts.
    let p = edit(two, |t| {
        t.at(P0)
            .set("ioreq-page", u64s(&[0x0c00_0000]))
            .set("ioreq-spi", cells(&[101]));
        t.at(P1).set("ioreq-page", u64s(&[0x0a00_3000]));
        t.at(D1)
            .set("frontend", s("beta"))
            .set("backend", s("alpha"));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: the request page [0xa003000, 0xa004000) overlaps /virtio/device@1 window [0xa003c00, 0xa003e00)"
        ]
    );
    // ioreq-spi: out of range, console-spi, a passthrough SPI, another backend's.
    let cases: [(u32, &str); 3] = [
        (990, "SPI 990 is out of range (0 to 987)"),
        (
            1,
            "SPI 1 is /platform console-spi (the emulated PL011 consoles' interrupt)",
        ),
        (
            8,
            "SPI 8 is also given to /partitions/partition@0/passthrough/serial@9040000",
        ),
    ];
    for (spi, msg) in cases {
        let p = edit(virtio, |t| {
            t.at("platform").set("console-spi", cells(&[1]));
            t.at(P1).set("ioreq-spi", cells(&[spi]));
        });
        assert_eq!(p, [format!("/partitions/partition@1: ioreq-spi: {msg}")]);
    }
    let p = edit(virtio, |t| {
        t.at(P0)
            .set("ioreq-page", u64s(&[0x0b00_0000]))
            .set("ioreq-spi", cells(&[100]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-spi: SPI 100 is also the ioreq-spi of /partitions/partition@0"
        ]
    );
}

#[test]
fn shared_memory() {
    let p = edit(virtio, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x8000_0800]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: shared-memory: [0x80000800, 0x80800800) (/partitions/partition@0 guest memory [0x40000000, 0x40800000)) is not 4 KiB-aligned (base and size must be multiples of 0x1000)"
        ]
    );
    let cases = [
        (
            0x4040_0000,
            "[0x40400000, 0x40c00000) overlaps /partitions/partition@1 guest memory [0x40000000, 0x40800000)",
        ),
        (
            0x0a80_1000,
            "[0xa801000, 0xb001000) overlaps /partitions/partition@1 ioreq-page [0xb000000, 0xb001000)",
        ),
        (
            0x0780_1000,
            "[0x7801000, 0x8001000) overlaps /platform gic-distributor [0x8000000, 0x8010000)",
        ),
        (
            0x0880_0000,
            "[0x8800000, 0x9000000) overlaps /platform gic-redistributors [0x80a0000, 0x9000000)",
        ),
        (
            0x0880_1000,
            "[0x8801000, 0x9001000) overlaps /platform gic-redistributors [0x80a0000, 0x9000000)",
        ),
    ];
    for (base, msg) in cases {
        let p = edit(virtio, |t| {
            t.at(D0).set("shared-memory", u64s(&[base]));
        });
        let want = format!("/virtio/device@0: shared-memory: {msg}");
        assert!(p.contains(&want), "{p:?}");
    }
    // ... and the console.
    let p = edit(virtio, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x0880_1000]));
    });
    assert!(p.contains(&"/virtio/device@0: shared-memory: [0x8801000, 0x9001000) overlaps /platform console [0x9000000, 0x9001000)".to_string()), "{p:?}");
    // Its passthrough devices.
    let p = edit(virtio, |t| {
        t.at(P1).children.push(
            N::new("passthrough").c(N::new("x@80100000").p("reg", u64s(&[0x8010_0000, 0x1000]))),
        );
    });
    assert!(
        p.contains(&"/virtio/device@0: shared-memory: [0x80000000, 0x80800000) overlaps /partitions/partition@1/passthrough/x@80100000 reg [0x80100000, 0x80101000)".to_string()),
        "{p:?}"
    );
    // Two devices of one frontend share the mapping at the same address; elsewhere is a clash.
    let p = edit(two, |t| {
        t.at(D1).set("shared-memory", u64s(&[0x8040_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: shared-memory: [0x80400000, 0x80c00000) overlaps /virtio/device@0 shared-memory [0x80000000, 0x80800000)"
        ]
    );
    assert_eq!(problems(&two()), NONE);
}

#[test]
fn limits_and_misc() {
    // Nine devices on one backend.
    let mut t = virtio();
    t.at("virtio").children.clear();
    for i in 0..9 {
        let d = device(i, "rng", 0x0a00_0000 + u64::from(i) * 0x200, 40 + i);
        t.at("virtio").children.push(d);
    }
    assert_eq!(
        problems(&t),
        [
            "/virtio/device@8: backend: \"beta\" serves more than 8 virtio devices (IOREQ sync slots: device * 8 + vCPU)"
        ]
    );
    // A frontend with 9 vCPUs (a 16-CPU machine).
    let p = edit(virtio, |t| {
        t.at("platform").set("cpus", cells(&[16]));
        t.at(P0).set("cpus", cells(&[1, 4, 5, 6, 7, 8, 9, 10, 11]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: frontend: \"alpha\" has 9 vCPUs, more than the 8 a virtio frontend may have (IOREQ sync slots: device * 8 + vCPU)"
        ]
    );
    let p = edit(virtio, |t| {
        t.at(D0)
            .set("deadline-ms", cells(&[0]))
            .set("disk-image", s("disk.img"));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: deadline-ms: must be at least 1",
            "/virtio/device@0: disk-image: is only for type \"blk\" (this device is \"rng\")",
        ]
    );
    // Passthrough nodes may not take the generated names.
    let p = edit(virtio, |t| {
        t.at(&format!("{P0}/passthrough"))
            .children
            .push(N::new("virtio_mmio@a000000"));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0/passthrough/virtio_mmio@a000000: node name \"virtio_mmio@a000000\" clashes with a node Ferry generates in the guest device tree"
        ]
    );
}
