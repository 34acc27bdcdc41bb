//! `/virtio` devices and backends' `ioreq-page`/`ioreq-spi`: parsing, defaults,
//! and every rule.

mod common;

use common::*;
use ferry_config::{
    DEFAULT_DEADLINE_MS, DEFAULT_RESTART_LIMIT, DEFAULT_RESTART_WINDOW_MS, IoreqPage, IoreqSignal,
    MAX_DEADLINE_MS, MAX_IOREQ_POLL_MS, MAX_VIRTIO_PER_BACKEND, MIN_BOUNCE_SIZE, MIN_IOREQ_POLL_MS,
    Region, Sharing, VIRTIO_WINDOW_SIZE, VirtioDevice, VirtioKind,
};

const NONE: [&str; 0] = [];
const D0: &str = "virtio/device@0";
const D1: &str = "virtio/device@1";

/// Where `two()`'s blk device keeps its RAM disk in beta: 1 MiB at 0x40400000,
/// between beta.bin (0x1000 at 0x40000000) and beta.cpio (0x10000 below the DTB
/// at 0x407f0000).
const DISK: [u64; 2] = [0x4040_0000, 0x10_0000];

fn device(index: u32, kind: &str, window: u64, spi: u32) -> N {
    let d = N::new(&format!("device@{index}"))
        .p("reg", cells(&[index]))
        .p("type", s(kind))
        .p("frontend", s("alpha"))
        .p("backend", s("beta"))
        .p("window", u64s(&[window, 0x200]))
        .p("spi", cells(&[spi]))
        .p("sharing", s("shared"))
        .p("shared-memory", u64s(&[0x8000_0000]));
    if kind == "blk" {
        d.p("disk", u64s(&DISK))
    } else {
        d
    }
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
            signal: IoreqSignal::Spi(100),
            first_seq: 1,
            restart: None,
        })
    );
    let q = c.partitions[1].ioreq.unwrap();
    assert_eq!((q.spi(), q.poll_ms()), (Some(100), None));
    assert_eq!(q.region(), Region::new(0x0b00_0000, 0x1000));
    assert_eq!(
        c.virtio,
        [VirtioDevice {
            index: 0,
            backend_index: 0,
            path: "/virtio/device@0".into(),
            kind: VirtioKind::Rng,
            frontend: 0,
            backend: 1,
            window: Region::new(0x0a00_3e00, VIRTIO_WINDOW_SIZE),
            spi: 47,
            sharing: Sharing::Shared,
            shared_memory: Some(0x8000_0000),
            shared_region: None,
            bounce: None,
            deadline_ms: DEFAULT_DEADLINE_MS,
            disk: None,
            disk_image: None,
            storage: None,
            read_only: false,
            loopback: false,
            mac: None,
            segment: None,
        }]
    );
    assert_eq!(DEFAULT_DEADLINE_MS, 100);
    // The default shared region: alpha's first memory region.
    assert_eq!(
        c.shared_region(&c.virtio[0]),
        Some(Region::new(0x4000_0000, 0x80_0000))
    );
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
    assert_eq!(c.virtio[1].disk, Some(Region::new(DISK[0], DISK[1])));
    assert_eq!(c.virtio[0].disk, None);
    assert_eq!(c.virtio[1].sharing, Sharing::Shared);
    let by_be: Vec<u32> = c.backend_devices(1).iter().map(|d| d.index).collect();
    assert_eq!(by_be, [0, 1]);
    assert!(c.backend_devices(0).is_empty());
    assert_eq!(c.frontend_devices(0).len(), 2);
    for k in [
        VirtioKind::Blk,
        VirtioKind::Console,
        VirtioKind::Rng,
        VirtioKind::Net,
    ] {
        assert_eq!(VirtioKind::from_name(k.name()), Some(k));
    }
    assert_eq!(VirtioKind::Blk.device_id(), 2);
    assert_eq!(VirtioKind::Console.device_id(), 3);
    assert_eq!(VirtioKind::Rng.device_id(), 4);
    assert_eq!(VirtioKind::Net.device_id(), 1);
}

#[test]
fn structure_problems() {
    let p = edit(virtio, |t| {
        t.at(D0)
            .set("type", s("scsi"))
            .set("frontend", s("gamma"))
            .set("colour", s("red"))
            .remove("window");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: colour: unknown property",
            "/virtio/device@0: type: \"scsi\" is not a virtio device type (expected \"blk\", \"console\", \"rng\" or \"net\")",
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
            "/partitions/partition@1: ioreq-spi: is missing (a backend's ioreq-page needs its ioreq-spi, the doorbell, or ioreq-poll-ms)"
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
fn sharing_modes() {
    let p = edit(virtio, |t| {
        t.at(D0).set("sharing", s("grant"));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: sharing: \"grant\" is not a sharing mode (expected \"shared\" or \"copy\")"
        ]
    );
    for m in [Sharing::Shared, Sharing::Copy] {
        assert_eq!(Sharing::from_name(m.name()), Some(m));
    }
    assert_eq!(Sharing::Copy.name(), "copy");
    assert_eq!(Sharing::default(), Sharing::Shared);
    assert_eq!(Sharing::from_name("grant"), None);
    // Shared mode (also the default) needs shared-memory.
    for sharing in [Some("shared"), None] {
        let p = edit(virtio, |t| {
            t.at(D0).remove("shared-memory");
            match sharing {
                Some(m) => t.at(D0).set("sharing", s(m)),
                None => t.at(D0).remove("sharing"),
            };
        });
        assert_eq!(
            p,
            [
                "/virtio/device@0: shared-memory: is missing (a \"shared\" device needs the backend address the frontend's shared region is mapped at)"
            ],
            "{sharing:?}"
        );
    }
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
            "/virtio/device@0: backend: \"beta\" (/partitions/partition@1) has no ioreq-page (a backend needs its request page)"
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
            "/virtio/device@8: backend: \"beta\" serves 9 virtio devices, more than 8 (IOREQ sync slots: the device's number on its backend * 8 + vCPU)"
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
    assert_eq!(MAX_DEADLINE_MS, 10_000);
    let p = edit(virtio, |t| {
        t.at(D0).set("deadline-ms", cells(&[MAX_DEADLINE_MS + 1]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: deadline-ms: <10001> is more than 10000 ms: a backend that slow is failed, not waited for"
        ]
    );
    assert!(
        edit(virtio, |t| {
            t.at(D0).set("deadline-ms", cells(&[MAX_DEADLINE_MS]));
        })
        .is_empty()
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

// ---------------------------------------------------------------------------
// Poll-only backends: `ioreq-poll-ms` instead of `ioreq-spi`.

/// `virtio()` with beta polling its request page every `ms` ms instead of
/// being signalled by SPI 100.
fn polling(ms: u32) -> N {
    let mut t = virtio();
    t.at(P1)
        .remove("ioreq-spi")
        .set("ioreq-poll-ms", cells(&[ms]));
    t
}

#[test]
fn poll_only_backend_parses() {
    let t = polling(5);
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    let q = c.partitions[1].ioreq.unwrap();
    assert_eq!(
        q,
        IoreqPage {
            page: 0x0b00_0000,
            signal: IoreqSignal::Poll { interval_ms: 5 },
            first_seq: 1,
            restart: None,
        }
    );
    assert_eq!((q.spi(), q.poll_ms()), (None, Some(5)));
    assert_eq!((MIN_IOREQ_POLL_MS, MAX_IOREQ_POLL_MS), (1, 1000));
    // Both ends of the range (the default deadline, 100 ms, covers 1 ms; 1000 ms
    // needs 2000).
    assert_eq!(problems(&polling(1)), NONE);
    let p = edit(
        || polling(1000),
        |t| {
            t.at(D0).set("deadline-ms", cells(&[2000]));
        },
    );
    assert_eq!(p, NONE);
}

#[test]
fn poll_structure_problems() {
    // Both ways of signalling.
    let p = edit(virtio, |t| {
        t.at(P1).set("ioreq-poll-ms", cells(&[5]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-poll-ms: cannot be given with ioreq-spi (a backend is signalled by its doorbell SPI or polls its request page, not both)"
        ]
    );
    // Neither (the page alone).
    let p = edit(
        || polling(5),
        |t| {
            t.at(P1).remove("ioreq-poll-ms");
        },
    );
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-spi: is missing (a backend's ioreq-page needs its ioreq-spi, the doorbell, or ioreq-poll-ms)"
        ]
    );
    // The interval without a page.
    let p = edit(
        || polling(5),
        |t| {
            t.at(P1).remove("ioreq-page");
        },
    );
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: is missing (a backend's ioreq-poll-ms needs its ioreq-page)"
        ]
    );
    // Malformed.
    let p = edit(
        || polling(5),
        |t| {
            t.at(P1).set("ioreq-poll-ms", u64s(&[5]));
        },
    );
    assert_eq!(
        p,
        ["/partitions/partition@1: ioreq-poll-ms: must be one 32-bit cell (found 8 bytes)"]
    );
}

#[test]
fn poll_interval_out_of_range() {
    for ms in [0, 1001, u32::MAX] {
        let p = problems(&polling(ms));
        assert_eq!(
            p,
            [format!(
                "/partitions/partition@1: ioreq-poll-ms: <{ms}> is out of range (1 to 1000 ms)"
            )],
            "{ms}"
        );
    }
}

#[test]
fn deadline_must_cover_two_poll_intervals() {
    let p = edit(
        || polling(50),
        |t| {
            t.at(D0).set("deadline-ms", cells(&[99]));
        },
    );
    assert_eq!(
        p,
        [
            "/virtio/device@0: deadline-ms: <99> is less than twice ioreq-poll-ms <50> of \"beta\" (/partitions/partition@1): every access may time out before the backend looks at its request page (give at least <100>)"
        ]
    );
    let p = edit(
        || polling(50),
        |t| {
            t.at(D0).set("deadline-ms", cells(&[100]));
        },
    );
    assert_eq!(p, NONE);
    // The default deadline (100 ms) against 51 ms.
    assert_eq!(
        problems(&polling(51)),
        [
            "/virtio/device@0: deadline-ms: <100> is less than twice ioreq-poll-ms <51> of \"beta\" (/partitions/partition@1): every access may time out before the backend looks at its request page (give at least <102>)"
        ]
    );
    // A doorbell backend has no such bound.
    let p = edit(virtio, |t| {
        t.at(D0).set("deadline-ms", cells(&[1]));
    });
    assert_eq!(p, NONE);
    // A zero deadline is reported once.
    let p = edit(
        || polling(5),
        |t| {
            t.at(D0).set("deadline-ms", cells(&[0]));
        },
    );
    assert_eq!(p, ["/virtio/device@0: deadline-ms: must be at least 1"]);
}

#[test]
fn a_polling_backend_takes_no_spi() {
    // SPI 100, beta's doorbell in virtio(), is free once beta polls ...
    let p = edit(
        || polling(5),
        |t| {
            t.at(D0).set("spi", cells(&[100]));
        },
    );
    assert_eq!(p, NONE);
    // ... but not while it rings it.
    let p = edit(virtio, |t| {
        t.at(D0).set("spi", cells(&[100]));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: spi: SPI 100 is also the ioreq-spi of /partitions/partition@1"]
    );
    // A polling backend's page is still checked.
    let p = edit(
        || polling(5),
        |t| {
            t.at(P1).set("ioreq-page", u64s(&[0x4000_1000]));
        },
    );
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: the request page [0x40001000, 0x40002000) overlaps /partitions/partition@1 guest memory [0x40000000, 0x40800000)"
        ]
    );
}

// ---------------------------------------------------------------------------
// Per-backend device numbering.

/// `good()` plus "gamma" (id 2, CPU 0, 8 MiB at host 0x4a000000, gamma.bin), a
/// backend (page 0x0c000000, SPI 101), and alpha fronting `n_beta` rng devices
/// served by beta and `n_gamma` by gamma, interleaved: indices 0, 1, 2, ... go
/// to beta, gamma, beta, gamma, ... while both have some left.
fn two_backends(n_beta: u32, n_gamma: u32) -> N {
    let mut t = good();
    t.at(P1)
        .set("ioreq-page", u64s(&[0x0b00_0000]))
        .set("ioreq-spi", cells(&[100]));
    t.at("partitions").children.push(
        N::new("partition@2")
            .p("reg", cells(&[2]))
            .p("label", s("gamma"))
            .p("cpus", cells(&[0]))
            .p("memory", u64s(&[0x4000_0000, 0x4a00_0000, 0x80_0000]))
            .p("image", s("gamma.bin"))
            .p("load-address", u64s(&[0x4000_0000]))
            .p("ioreq-page", u64s(&[0x0c00_0000]))
            .p("ioreq-spi", cells(&[101])),
    );
    let mut v = N::new("virtio")
        .p("#address-cells", cells(&[1]))
        .p("#size-cells", cells(&[0]));
    let (mut b, mut g) = (n_beta, n_gamma);
    for i in 0..n_beta + n_gamma {
        let to_beta = b > 0 && (g == 0 || i % 2 == 0);
        let backend = if to_beta { "beta" } else { "gamma" };
        if to_beta {
            b -= 1;
        } else {
            g -= 1;
        }
        let mut d = device(i, "rng", 0x0a00_0000 + u64::from(i) * 0x200, 40 + i);
        d.set("backend", s(backend));
        v.children.push(d);
    }
    t.children.push(v);
    t
}

fn gamma_files() -> Files {
    Files::good().with("gamma.bin", 0x1000)
}

#[test]
fn devices_are_numbered_per_backend() {
    let mut t = two_backends(2, 2);
    // Tree order is not index order: the numbering follows `reg`.
    t.at("virtio").children.reverse();
    assert_eq!(problems_with(&t, &gamma_files()), NONE);
    let c = parsed(&t);
    let got: Vec<(u32, u32, u32)> = c
        .virtio
        .iter()
        .map(|d| (d.index, d.backend, d.backend_index))
        .collect();
    assert_eq!(got, [(3, 2, 1), (2, 1, 1), (1, 2, 0), (0, 1, 0)]);
    let beta: Vec<(u32, u32)> = c
        .backend_devices(1)
        .iter()
        .map(|d| (d.index, d.backend_index))
        .collect();
    assert_eq!(beta, [(0, 0), (2, 1)]);
    let gamma: Vec<(u32, u32)> = c
        .backend_devices(2)
        .iter()
        .map(|d| (d.index, d.backend_index))
        .collect();
    assert_eq!(gamma, [(1, 0), (3, 1)]);
    assert_eq!(c.backend_device(2, 1).map(|d| d.index), Some(3));
    assert_eq!(c.backend_device(1, 0).map(|d| d.index), Some(0));
    assert!(c.backend_device(1, 2).is_none());
    assert!(c.backend_device(0, 0).is_none());
}

#[test]
fn eight_per_backend_not_per_system() {
    // 8 + 8 = 16 devices in the system: fine.
    let t = two_backends(8, 8);
    assert_eq!(problems_with(&t, &gamma_files()), NONE);
    let c = parsed(&t);
    assert_eq!(c.virtio.len(), 16);
    assert!(c.virtio.iter().all(|d| d.backend_index < 8));
    assert_eq!(MAX_VIRTIO_PER_BACKEND, 8);
    // 10 on beta: reported once, on its 9th device, with the count.
    let t = two_backends(10, 1);
    assert_eq!(
        problems_with(&t, &gamma_files()),
        [
            "/virtio/device@9: backend: \"beta\" serves 10 virtio devices, more than 8 (IOREQ sync slots: the device's number on its backend * 8 + vCPU)"
        ]
    );
    // The global index stays 0..n-1 without gaps.
    let mut t = two_backends(2, 2);
    t.at("virtio/device@3").set("reg", cells(&[7]));
    assert_eq!(
        problems_with(&t, &gamma_files()),
        [
            "/virtio/device@3: reg: index 7 leaves a gap: the 4 virtio devices must have indices 0 to 3"
        ]
    );
}

// ---------------------------------------------------------------------------
// A blk device's `disk`.

#[test]
fn blk_needs_a_disk_and_only_blk_has_one() {
    let p = edit(two, |t| {
        t.at(D1).remove("disk");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: disk: is missing (a \"blk\" device needs disk, the region of the backend's memory its RAM disk lives in, or storage, the physical virtio-blk transport it serves)"
        ]
    );
    let p = edit(two, |t| {
        t.at(D0).set("disk", u64s(&[0x4060_0000, 0x1000]));
    });
    assert_eq!(
        p,
        ["/virtio/device@0: disk: is only for type \"blk\" (this device is \"rng\")"]
    );
    let p = edit(two, |t| {
        t.at(D1).set("disk", u64s(&[0x4040_0000, 0x1000, 0]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: disk: must be one (address, size) pair of 2 + 2 cells (found 24 bytes)"
        ]
    );
}

#[test]
fn disk_alignment_and_placement() {
    let cases: [([u64; 2], &str); 5] = [
        (
            [0x4040_0800, 0x10_0000],
            "[0x40400800, 0x40500800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)",
        ),
        (
            [0x4040_0000, 0x1800],
            "[0x40400000, 0x40401800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)",
        ),
        ([0x4040_0000, 0], "[0x40400000, 0x40400000) has size 0"),
        (
            [0x4078_0000, 0x10_0000],
            "[0x40780000, 0x40880000) is not inside one guest memory region of the backend \"beta\" (/partitions/partition@1)",
        ),
        (
            [0x8000_0000, 0x10_0000],
            "[0x80000000, 0x80100000) is not inside one guest memory region of the backend \"beta\" (/partitions/partition@1)",
        ),
    ];
    for (disk, msg) in cases {
        let p = edit(two, |t| {
            t.at(D1).set("disk", u64s(&disk));
        });
        assert_eq!(p, [format!("/virtio/device@1: disk: {msg}")], "{disk:x?}");
    }
}

#[test]
fn disk_overlaps() {
    let cases: [([u64; 2], &str); 3] = [
        (
            [0x4000_0000, 0x10_0000],
            "[0x40000000, 0x40100000) overlaps /partitions/partition@1 image \"beta.bin\" [0x40000000, 0x40001000)",
        ),
        (
            [0x407f_0000, 0x1_0000],
            "[0x407f0000, 0x40800000) overlaps /partitions/partition@1 guest DTB [0x407f0000, 0x40800000)",
        ),
        (
            [0x407e_f000, 0x1000],
            "[0x407ef000, 0x407f0000) overlaps /partitions/partition@1 initrd \"beta.cpio\" [0x407e0000, 0x407f0000)",
        ),
    ];
    for (disk, msg) in cases {
        let p = edit(two, |t| {
            t.at(D1).set("disk", u64s(&disk));
        });
        assert_eq!(p, [format!("/virtio/device@1: disk: {msg}")], "{disk:x?}");
    }
    // All three at once.
    let p = edit(two, |t| {
        t.at(D1).set("disk", u64s(&[0x4000_0000, 0x80_0000]));
    });
    assert_eq!(p.len(), 3, "{p:?}");
    // An image of unknown size is only reported missing.
    let mut t = two();
    t.at(D1).set("disk", u64s(&[0x4000_0000, 0x10_0000]));
    assert_eq!(
        problems_with(&t, &Files::good().without("beta.bin")),
        ["/partitions/partition@1: image: \"beta.bin\" is missing"]
    );
    // Another device's disk on the same backend.
    let p = edit(two, |t| {
        let mut d = device(2, "blk", 0x0a00_3a00, 45);
        d.set("disk", u64s(&[0x404f_f000, 0x2000]));
        t.at("virtio").children.push(d);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@2: disk: [0x404ff000, 0x40501000) overlaps /virtio/device@1 disk [0x40400000, 0x40500000)"
        ]
    );
    // Adjacent disks are fine.
    let p = edit(two, |t| {
        let mut d = device(2, "blk", 0x0a00_3a00, 45);
        d.set("disk", u64s(&[0x4050_0000, 0x10_0000]));
        t.at("virtio").children.push(d);
    });
    assert_eq!(p, NONE);
    // The request page (itself refused inside guest memory).
    let p = edit(two, |t| {
        t.at(P1).set("ioreq-page", u64s(&[0x4040_0000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: the request page [0x40400000, 0x40401000) overlaps /partitions/partition@1 guest memory [0x40000000, 0x40800000)",
            "/virtio/device@1: disk: [0x40400000, 0x40500000) overlaps /partitions/partition@1 ioreq-page [0x40400000, 0x40401000)",
        ]
    );
}

#[test]
fn disk_image_must_fit_in_the_disk() {
    let mut t = two();
    t.at(D1).set("disk-image", s("disk.img"));
    // Of unknown size (e.g. Ferry at boot, or a missing file): not checked here.
    assert_eq!(problems(&t), NONE);
    assert_eq!(
        problems_with(&t, &Files::good().with("disk.img", 0x10_0000)),
        NONE
    );
    assert_eq!(
        problems_with(&t, &Files::good().with("disk.img", 0x10_0001)),
        [
            "/virtio/device@1: disk-image: \"disk.img\" (0x100001 bytes) is larger than disk [0x40400000, 0x40500000) (0x100000 bytes)"
        ]
    );
}

// ---------------------------------------------------------------------------
// Copy mode: `sharing = "copy"` with a `bounce` area in the backend's memory.

/// Where `copy()`'s device keeps its bounce area in beta: 64 KiB at 0x40600000,
/// clear of beta.bin, the blk disk of `two()`, beta.cpio and the DTB.
const BOUNCE: [u64; 2] = [0x4060_0000, 0x1_0000];

/// Makes device `d` of `t` a copy-mode device with bounce area `bounce`.
fn make_copy(t: &mut N, d: &str, bounce: [u64; 2]) {
    t.at(d)
        .set("sharing", s("copy"))
        .remove("shared-memory")
        .set("bounce", u64s(&bounce));
}

/// `virtio()` with its rng device in copy mode (bounce area [`BOUNCE`]).
fn copy() -> N {
    let mut t = virtio();
    make_copy(&mut t, D0, BOUNCE);
    t
}

/// `two()` with its rng device (device 0) in copy mode.
fn copy_two() -> N {
    let mut t = two();
    make_copy(&mut t, D0, BOUNCE);
    t
}

#[test]
fn copy_mode_parses() {
    let t = copy();
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    let d = &c.virtio[0];
    assert_eq!(d.sharing, Sharing::Copy);
    assert_eq!(d.shared_memory, None);
    assert_eq!(d.shared_region, None);
    assert_eq!(d.bounce, Some(Region::new(BOUNCE[0], BOUNCE[1])));
    // The backend sees nothing of the frontend.
    assert_eq!(c.shared_region(d), None);
    assert_eq!(MIN_BOUNCE_SIZE, 0x1_0000);
    // A copy device beside a shared one on the same backend.
    let t = copy_two();
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    assert_eq!(
        c.virtio.iter().map(|d| d.sharing).collect::<Vec<_>>(),
        [Sharing::Copy, Sharing::Shared]
    );
    assert_eq!(c.virtio[1].bounce, None);
    // A blk device in copy mode: its disk and its bounce area side by side.
    let mut t = two();
    make_copy(&mut t, D1, [0x4050_0000, 0x2_0000]);
    assert_eq!(problems(&t), NONE);
}

#[test]
fn copy_mode_properties() {
    let copy_needs_bounce = "/virtio/device@0: bounce: is missing (a \"copy\" device needs its bounce area in the backend's memory)";
    let p = edit(copy, |t| {
        t.at(D0).remove("bounce");
    });
    assert_eq!(p, [copy_needs_bounce]);
    // shared-memory and shared-region are for shared mode only.
    let only_shared = "is only for sharing \"shared\" (this device is \"copy\": the backend gets no mapping of frontend memory)";
    let p = edit(copy, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x8000_0000]));
    });
    assert_eq!(
        p,
        [format!("/virtio/device@0: shared-memory: {only_shared}")]
    );
    let p = edit(copy, |t| {
        t.at(D0)
            .set("shared-region", u64s(&[0x4000_0000, 0x10_0000]));
    });
    assert_eq!(
        p,
        [format!("/virtio/device@0: shared-region: {only_shared}")]
    );
    // All at once: every problem is reported.
    let p = edit(copy, |t| {
        t.at(D0)
            .remove("bounce")
            .set("shared-memory", u64s(&[0x8000_0000]))
            .set("shared-region", u64s(&[0x4000_0000, 0x10_0000]));
    });
    assert_eq!(
        p,
        [
            copy_needs_bounce.to_string(),
            format!("/virtio/device@0: shared-memory: {only_shared}"),
            format!("/virtio/device@0: shared-region: {only_shared}"),
        ]
    );
    // bounce is for copy mode only (explicit or default shared mode).
    for sharing in [Some("shared"), None] {
        let p = edit(virtio, |t| {
            t.at(D0).set("bounce", u64s(&BOUNCE));
            if sharing.is_none() {
                t.at(D0).remove("sharing");
            }
        });
        assert_eq!(
            p,
            ["/virtio/device@0: bounce: is only for sharing \"copy\" (this device is \"shared\")"],
            "{sharing:?}"
        );
    }
    // Malformed.
    let p = edit(copy, |t| {
        t.at(D0).set("bounce", u64s(&[0x4060_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: bounce: must be one (address, size) pair of 2 + 2 cells (found 8 bytes)"
        ]
    );
}

#[test]
fn bounce_alignment_size_and_placement() {
    let outside =
        "is not inside one guest memory region of the backend \"beta\" (/partitions/partition@1)";
    let cases: [([u64; 2], String); 7] = [
        (
            [0x4060_0800, 0x1_0000],
            "[0x40600800, 0x40610800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)".into(),
        ),
        (
            [0x4060_0000, 0x1_0800],
            "[0x40600000, 0x40610800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)".into(),
        ),
        ([0x4060_0000, 0], "[0x40600000, 0x40600000) has size 0".into()),
        (
            [0x4060_0000, 0xf000],
            "[0x40600000, 0x4060f000) is smaller than 0x10000 bytes (64 KiB: the shadow virtqueues and the buffers in flight)".into(),
        ),
        // Outside beta's RAM, across its end, and larger than its region.
        (
            [0x8000_0000, 0x1_0000],
            format!("[0x80000000, 0x80010000) {outside}"),
        ),
        (
            [0x407f_8000, 0x1_0000],
            format!("[0x407f8000, 0x40808000) {outside}"),
        ),
        (
            [0x4000_0000, 0x100_0000],
            format!("[0x40000000, 0x41000000) {outside}"),
        ),
    ];
    for (bounce, msg) in cases {
        let p = edit(copy, |t| {
            t.at(D0).set("bounce", u64s(&bounce));
        });
        assert_eq!(
            p,
            [format!("/virtio/device@0: bounce: {msg}")],
            "{bounce:x?}"
        );
    }
    // Exactly 64 KiB (copy()) is fine, and so is all the room between beta.bin
    // and beta.cpio.
    let p = edit(copy, |t| {
        t.at(D0).set("bounce", u64s(&[0x4000_1000, 0x7d_f000]));
    });
    assert_eq!(p, NONE);
}

#[test]
fn bounce_overlaps() {
    let cases: [([u64; 2], &str); 3] = [
        (
            [0x4000_0000, 0x1_0000],
            "[0x40000000, 0x40010000) overlaps /partitions/partition@1 image \"beta.bin\" [0x40000000, 0x40001000)",
        ),
        (
            [0x407f_0000, 0x1_0000],
            "[0x407f0000, 0x40800000) overlaps /partitions/partition@1 guest DTB [0x407f0000, 0x40800000)",
        ),
        (
            [0x407d_0000, 0x1_1000],
            "[0x407d0000, 0x407e1000) overlaps /partitions/partition@1 initrd \"beta.cpio\" [0x407e0000, 0x407f0000)",
        ),
    ];
    for (bounce, msg) in cases {
        let p = edit(copy, |t| {
            t.at(D0).set("bounce", u64s(&bounce));
        });
        assert_eq!(
            p,
            [format!("/virtio/device@0: bounce: {msg}")],
            "{bounce:x?}"
        );
    }
    // The request page (itself refused inside guest memory).
    let p = edit(copy, |t| {
        t.at(P1).set("ioreq-page", u64s(&[0x4060_f000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: ioreq-page: the request page [0x4060f000, 0x40610000) overlaps /partitions/partition@1 guest memory [0x40000000, 0x40800000)",
            "/virtio/device@0: bounce: [0x40600000, 0x40610000) overlaps /partitions/partition@1 ioreq-page [0x4060f000, 0x40610000)",
        ]
    );
    // A later device's disk over an earlier device's bounce area ...
    let p = edit(copy_two, |t| {
        t.at(D0).set("bounce", u64s(&[0x404f_0000, 0x2_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: disk: [0x40400000, 0x40500000) overlaps /virtio/device@0 bounce [0x404f0000, 0x40510000)"
        ]
    );
    // ... a later device's bounce area over an earlier device's disk ...
    let p = edit(copy_two, |t| {
        make_copy(t, D0, [0x4060_0000, 0x1_0000]);
        let mut d = device(2, "rng", 0x0a00_3a00, 45);
        d.set("sharing", s("copy"))
            .remove("shared-memory")
            .set("bounce", u64s(&[0x404f_0000, 0x2_0000]));
        t.at("virtio").children.push(d);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@2: bounce: [0x404f0000, 0x40510000) overlaps /virtio/device@1 disk [0x40400000, 0x40500000)"
        ]
    );
    // ... over its own disk ...
    let p = edit(two, |t| {
        make_copy(t, D1, [0x404f_0000, 0x2_0000]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: bounce: [0x404f0000, 0x40510000) overlaps /virtio/device@1 disk [0x40400000, 0x40500000)"
        ]
    );
    // ... and over another device's bounce area; adjacent ones are fine.
    let p = edit(copy_two, |t| {
        make_copy(t, D1, [0x4060_f000, 0x1_0000]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: bounce: [0x4060f000, 0x4061f000) overlaps /virtio/device@0 bounce [0x40600000, 0x40610000)"
        ]
    );
    let p = edit(copy_two, |t| {
        make_copy(t, D1, [0x4061_0000, 0x1_0000]);
    });
    assert_eq!(p, NONE);
    // The same range in another backend's memory is not a clash.
    let mut t = two_backends(1, 1);
    make_copy(&mut t, D0, BOUNCE);
    make_copy(&mut t, D1, BOUNCE);
    assert_eq!(problems_with(&t, &gamma_files()), NONE);
}

// ---------------------------------------------------------------------------
// Shared mode confined: `shared-region`.

/// `virtio()` with its device showing beta only 1 MiB of alpha, at alpha's
/// 0x40400000.
fn confined() -> N {
    let mut t = virtio();
    t.at(D0)
        .set("shared-region", u64s(&[0x4040_0000, 0x10_0000]));
    t
}

#[test]
fn shared_region_parses() {
    let t = confined();
    assert_eq!(problems(&t), NONE);
    let c = parsed(&t);
    let d = &c.virtio[0];
    assert_eq!(d.shared_region, Some(Region::new(0x4040_0000, 0x10_0000)));
    assert_eq!(d.shared_memory, Some(0x8000_0000));
    assert_eq!(
        c.shared_region(d),
        Some(Region::new(0x4040_0000, 0x10_0000))
    );
    // The whole first region, explicitly, is the default.
    let mut t = virtio();
    t.at(D0)
        .set("shared-region", u64s(&[0x4000_0000, 0x80_0000]));
    assert_eq!(problems(&t), NONE);
    // A region of a frontend with two regions, in its second.
    let mut t = two_regions();
    t.at(D0)
        .set("shared-region", u64s(&[0x4080_0000, 0x80_0000]));
    assert_eq!(problems(&t), NONE);
}

/// `virtio()` with alpha's RAM in two adjacent guest regions: 8 MiB at
/// 0x40000000 and 8 MiB at 0x40800000.
fn two_regions() -> N {
    let mut t = virtio();
    t.at(P0).set(
        "memory",
        u64s(&[
            0x4000_0000,
            0x4800_0000,
            0x80_0000,
            0x4080_0000,
            0x4880_0000,
            0x80_0000,
        ]),
    );
    t
}

#[test]
fn shared_region_problems() {
    let outside =
        "is not inside one guest memory region of the frontend \"alpha\" (/partitions/partition@0)";
    let cases: [([u64; 2], String); 6] = [
        (
            [0x4040_0800, 0x10_0000],
            "[0x40400800, 0x40500800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)".into(),
        ),
        (
            [0x4040_0000, 0x800],
            "[0x40400000, 0x40400800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)".into(),
        ),
        ([0x4040_0000, 0], "[0x40400000, 0x40400000) has size 0".into()),
        (
            [0x8000_0000, 0x10_0000],
            format!("[0x80000000, 0x80100000) {outside}"),
        ),
        (
            [0x407f_0000, 0x2_0000],
            format!("[0x407f0000, 0x40810000) {outside}"),
        ),
        (
            [0xffff_ffff_ffff_f000, 0x2000],
            "[0xfffffffffffff000, 0x10000000000001000) wraps around the end of the address space".into(),
        ),
    ];
    for (region, msg) in cases {
        let p = edit(confined, |t| {
            t.at(D0).set("shared-region", u64s(&region));
        });
        assert_eq!(
            p,
            [format!("/virtio/device@0: shared-region: {msg}")],
            "{region:x?}"
        );
    }
    // Spanning two adjacent regions of the frontend.
    let p = edit(two_regions, |t| {
        t.at(D0)
            .set("shared-region", u64s(&[0x407f_0000, 0x2_0000]));
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@0: shared-region: [0x407f0000, 0x40810000) {outside}"
        )]
    );
    // Malformed.
    let p = edit(confined, |t| {
        t.at(D0).set("shared-region", u64s(&[0x4040_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: shared-region: must be one (address, size) pair of 2 + 2 cells (found 8 bytes)"
        ]
    );
}

#[test]
fn shared_memory_takes_the_shared_regions_size() {
    // 1 MiB just below beta's request page fits; alpha's whole 8 MiB would not.
    let p = edit(confined, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x0af0_0000]));
    });
    assert_eq!(p, NONE);
    let p = edit(virtio, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x0af0_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: shared-memory: [0xaf00000, 0xb700000) overlaps /partitions/partition@1 ioreq-page [0xb000000, 0xb001000)"
        ]
    );
    let p = edit(confined, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x0af0_1000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: shared-memory: [0xaf01000, 0xb001000) overlaps /partitions/partition@1 ioreq-page [0xb000000, 0xb001000)"
        ]
    );
    // Misaligned: the message names the shared region.
    let p = edit(confined, |t| {
        t.at(D0).set("shared-memory", u64s(&[0x8000_0800]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: shared-memory: [0x80000800, 0x80100800) (/virtio/device@0 shared-region [0x40400000, 0x40500000)) is not 4 KiB-aligned (base and size must be multiples of 0x1000)"
        ]
    );
}

#[test]
fn devices_share_a_mapping_only_when_region_and_address_are_equal() {
    let region = u64s(&[0x4040_0000, 0x10_0000]);
    // Both confined to the same range at the same address: one mapping.
    let p = edit(two, |t| {
        t.at(D0).set("shared-region", region.clone());
        t.at(D1).set("shared-region", region.clone());
    });
    assert_eq!(p, NONE);
    // The default and the same range written out: equal too.
    let p = edit(two, |t| {
        t.at(D1)
            .set("shared-region", u64s(&[0x4000_0000, 0x80_0000]));
    });
    assert_eq!(p, NONE);
    // Same address, different ranges.
    let p = edit(two, |t| {
        t.at(D1).set("shared-region", region.clone());
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: shared-memory: 0x80000000 is also the shared-memory of /virtio/device@0 for another range ([0x40400000, 0x40500000) here, [0x40000000, 0x40800000) there): devices share a mapping only when shared-region and shared-memory are both equal"
        ]
    );
    // Different ranges at separate addresses are fine; overlapping ones clash
    // by the size of the earlier device's range.
    let p = edit(two, |t| {
        t.at(D1)
            .set("shared-region", region.clone())
            .set("shared-memory", u64s(&[0x8080_0000]));
    });
    assert_eq!(p, NONE);
    let p = edit(two, |t| {
        t.at(D0).set("shared-region", region.clone());
        t.at(D1).set("shared-memory", u64s(&[0x800f_f000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: shared-memory: [0x800ff000, 0x808ff000) overlaps /virtio/device@0 shared-memory [0x80000000, 0x80100000)"
        ]
    );
    let p = edit(two, |t| {
        t.at(D0).set("shared-region", region.clone());
        t.at(D1).set("shared-memory", u64s(&[0x8010_0000]));
    });
    assert_eq!(p, NONE);
    // A copy-mode device maps nothing: its neighbour may take any address.
    let p = edit(copy_two, |t| {
        t.at(D1).set("shared-memory", u64s(&[0x8000_1000]));
    });
    assert_eq!(p, NONE);
}

#[test]
fn ioreq_first_seq_is_a_backends_test_hook() {
    let mut t = virtio();
    t.at(P1).set("ioreq-first-seq", cells(&[0xffff_fff0]));
    assert_eq!(problems(&t), NONE);
    assert_eq!(
        parsed(&t).partitions[1].ioreq.unwrap().first_seq,
        0xffff_fff0
    );
    assert_eq!(parsed(&virtio()).partitions[1].ioreq.unwrap().first_seq, 1);
    let mut t = virtio();
    t.at(P0).set("ioreq-first-seq", cells(&[5]));
    assert_eq!(
        problems(&t),
        ["/partitions/partition@0: ioreq-first-seq: is a virtio backend's: it needs ioreq-page"]
    );
}

#[test]
fn a_backend_may_be_restarted_on_failure() {
    assert_eq!(parsed(&virtio()).partitions[1].ioreq.unwrap().restart, None);
    let mut t = virtio();
    t.at(P1).set("restart", s("on-failure"));
    assert_eq!(problems(&t), NONE);
    let policy = parsed(&t).partitions[1].ioreq.unwrap().restart.unwrap();
    assert_eq!(
        (policy.limit, policy.window_ms),
        (DEFAULT_RESTART_LIMIT, DEFAULT_RESTART_WINDOW_MS)
    );
    assert_eq!(
        (DEFAULT_RESTART_LIMIT, DEFAULT_RESTART_WINDOW_MS),
        (3, 60_000)
    );
    t.at(P1)
        .set("restart-limit", cells(&[5]))
        .set("restart-window-ms", cells(&[1000]));
    let policy = parsed(&t).partitions[1].ioreq.unwrap().restart.unwrap();
    assert_eq!((policy.limit, policy.window_ms), (5, 1000));
    let mut t = virtio();
    t.at(P1).set("restart", s("always"));
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@1: restart: \"always\" is not a restart policy (expected \"on-failure\" or \"never\")"
        ]
    );
    let mut t = virtio();
    t.at(P1).set("restart-limit", cells(&[2]));
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@1: restart-limit and restart-window-ms need restart = \"on-failure\""
        ]
    );
    let mut t = virtio();
    t.at(P0).set("restart", s("on-failure"));
    assert_eq!(
        problems(&t),
        ["/partitions/partition@0: restart: is a virtio backend's: it needs ioreq-page"]
    );
}
