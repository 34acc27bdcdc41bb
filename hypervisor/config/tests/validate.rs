//! `validate`: the good config passes; each bad variant gives exactly the
//! expected messages (one test per check of docs/config.md "Checks").

mod common;

use common::*;

const NONE: [&str; 0] = [];

#[test]
fn good_config_passes() {
    assert_eq!(problems(&good()), NONE);
}

#[test]
fn partitions_overlapping() {
    let p = after(|t| {
        t.at(P0)
            .set("memory", u64s(&[0x4000_0000, 0x4840_0000, 0x80_0000]));
        t.at(P1)
            .set("memory", u64s(&[0x4000_0000, 0x4800_0000, 0x80_0000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: memory: [0x48000000, 0x48800000) overlaps /partitions/partition@0 memory [0x48400000, 0x48c00000)"
        ]
    );
}

#[test]
fn partition_overlapping_hypervisor() {
    let p = after(|t| {
        t.at(P0)
            .set("memory", u64s(&[0x4000_0000, 0x41f0_0000, 0x80_0000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: memory: [0x41f00000, 0x42700000) overlaps /hypervisor memory [0x40000000, 0x42000000)"
        ]
    );
}

#[test]
fn partition_outside_platform_memory() {
    let p = after(|t| {
        t.at(P0)
            .set("memory", u64s(&[0x4000_0000, 0x7ff0_0000, 0x80_0000]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@0: memory: [0x7ff00000, 0x80700000) is outside /platform memory"]
    );
    // Adjacent platform regions join up.
    let mut t = good();
    t.at("platform").set(
        "memory",
        u64s(&[0x4000_0000, 0x2000_0000, 0x6000_0000, 0x2000_0000]),
    );
    t.at(P0)
        .set("memory", u64s(&[0x4000_0000, 0x5ff0_0000, 0x80_0000]));
    assert_eq!(problems(&t), NONE);
}

#[test]
fn guest_regions_overlapping() {
    let p = after(|t| {
        let m = [
            0x4000_0000,
            0x4800_0000,
            0x80_0000,
            0x4040_0000,
            0x4a00_0000,
            0x80_0000,
        ];
        t.at(P0).set("memory", u64s(&m));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: memory: guest [0x40400000, 0x40c00000) overlaps guest [0x40000000, 0x40800000)"
        ]
    );
}

#[test]
fn guest_region_overlapping_passthrough_device() {
    let p = after(|t| {
        let m = [
            0x4000_0000,
            0x4800_0000,
            0x80_0000,
            0x0900_0000,
            0x4a00_0000,
            0x10_0000,
        ];
        t.at(P0).set("memory", u64s(&m));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0/passthrough/serial@9040000: reg: [0x9040000, 0x9041000) overlaps /partitions/partition@0 guest memory [0x9000000, 0x9100000)"
        ]
    );
}

#[test]
fn alignment_and_zero_sizes() {
    let p = after(|t| {
        t.at("platform").set("console", u64s(&[0x0900_0000, 0]));
        t.at("hypervisor")
            .set("memory", u64s(&[0x4000_0800, 0x200_0000]));
        let m = [
            0x4000_0000,
            0x4800_0000,
            0x80_0100,
            0x5000_0000,
            0x4a00_0000,
            0,
        ];
        t.at(P0).set("memory", u64s(&m));
        t.at(SERIAL).set("reg", u64s(&[0x0904_0000, 0x200]));
        t.at(P1)
            .set("memory", u64s(&[0x4000_0000, u64::MAX - 0xfff, 0x80_0000]));
    });
    assert_eq!(
        p,
        [
            "/platform: console: [0x9000000, 0x9000000) has size 0",
            "/hypervisor: memory: [0x40000800, 0x42000800) is not 4 KiB-aligned (base and size must be multiples of 0x1000)",
            "/partitions/partition@0: memory: region 0 (guest 0x40000000, host 0x48000000, size 0x800100) is not 4 KiB-aligned (base and size must be multiples of 0x1000)",
            "/partitions/partition@0: memory: region 1 (guest 0x50000000, host 0x4a000000, size 0x0) has size 0",
            "/partitions/partition@0/passthrough/serial@9040000: reg: [0x9040000, 0x9040200) is not 4 KiB-aligned (base and size must be multiples of 0x1000)",
            "/partitions/partition@1: memory: region 0 (guest 0x40000000, host 0xfffffffffffff000, size 0x800000) wraps around the end of the address space",
        ]
    );
}

#[test]
fn cpu_in_two_partitions() {
    let p = after(|t| {
        t.at(P1).set("cpus", cells(&[2, 1]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@1: cpus: CPU 1 is also used by /partitions/partition@0"]
    );
}

#[test]
fn cpu_not_below_platform_cpus() {
    let p = after(|t| {
        t.at(P1).set("cpus", cells(&[2, 4]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@1: cpus: CPU 4 does not exist (/platform cpus = <4>)"]
    );
}

#[test]
fn cpu_listed_twice() {
    let p = after(|t| {
        t.at(P1).set("cpus", cells(&[2, 2]));
    });
    assert_eq!(p, ["/partitions/partition@1: cpus: CPU 2 is listed twice"]);
}

#[test]
fn partition_without_cpu_or_memory() {
    let p = after(|t| {
        t.at(P1).set("cpus", vec![]).set("memory", vec![]);
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: cpus: has no CPU",
            "/partitions/partition@1: memory: has no region",
            "/partitions/partition@1: dtb-address: [0x0, 0x10000) (room for the guest DTB) is outside guest memory",
            "/partitions/partition@1: load-address: 0x40000000 is outside guest memory",
            "/partitions/partition@1: entry: 0x40000000 is outside guest memory",
            "/partitions/partition@1: initrd: \"beta.cpio\" at [0x0, 0x10000) (placed just below the guest DTB) is outside guest memory",
        ]
    );
}

#[test]
fn ids_not_0_to_n_minus_1() {
    let p = after(|t| {
        t.at(P1).set("reg", cells(&[2]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@1: reg: id 2 leaves a gap: the 2 partitions must have ids 0 to 1"]
    );
    let p = after(|t| {
        t.at(P1).set("reg", cells(&[0]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@1: reg: id 0 is also the id of /partitions/partition@0"]
    );
}

#[test]
fn duplicate_or_empty_labels() {
    let p = after(|t| {
        t.at(P1).set("label", s("alpha"));
        t.at("exit-policy").set("wait-for", sl(&["alpha"]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@1: label: \"alpha\" is also the label of /partitions/partition@0"]
    );
    let p = after(|t| {
        t.at(P1).set("label", s(""));
        t.at("exit-policy").set("wait-for", sl(&["alpha"]));
    });
    assert_eq!(p, ["/partitions/partition@1: label: is empty"]);
}

#[test]
fn no_partitions() {
    let p = after(|t| {
        t.at("partitions").children.clear();
        t.remove_child("exit-policy");
    });
    assert_eq!(p, ["/partitions: has no partition"]);
}

#[test]
fn platform_checks() {
    let p = after(|t| {
        t.at("platform")
            .set("board", s(""))
            .set("cpus", cells(&[0]))
            .set(
                "memory",
                u64s(&[0x4000_0000, 0x4000_0000, 0x7000_0000, 0x2000_0000]),
            )
            .set("gic-distributor", u64s(&[0x4000_0000, 0x1_0000]));
    });
    assert_eq!(
        p,
        [
            "/platform: board: is empty",
            "/platform: memory: [0x70000000, 0x90000000) overlaps [0x40000000, 0x80000000)",
            "/platform: cpus: must be at least 1",
            "/platform: gic-distributor: [0x40000000, 0x40010000) overlaps /platform memory [0x40000000, 0x80000000)",
            "/partitions/partition@0: cpus: CPU 1 does not exist (/platform cpus = <0>)",
            "/partitions/partition@1: cpus: CPU 2 does not exist (/platform cpus = <0>)",
            "/partitions/partition@1: cpus: CPU 3 does not exist (/platform cpus = <0>)",
        ]
    );
    let p = after(|t| {
        t.at("platform")
            .set("cpus", cells(&[33]))
            .set("memory", vec![]);
    });
    assert_eq!(
        p,
        [
            "/platform: memory: has no region",
            "/platform: cpus: <33> is more than Ferry supports (MAX_CPUS = 32)",
            "/hypervisor: memory: [0x40000000, 0x42000000) is outside /platform memory",
            "/partitions/partition@0: memory: [0x48000000, 0x48800000) is outside /platform memory",
            "/partitions/partition@1: memory: [0x49000000, 0x49800000) is outside /platform memory",
        ]
    );
}

/// Found by the `config_parse` fuzz target (hypervisor/fuzz/regressions/config_parse/
/// gic-frames-overlap): redistributors over the distributor passed `ferry check`,
/// and Ferry refused the config at boot ("emulated region ... overlaps the Gicd").
#[test]
fn platform_frames_overlapping() {
    let p = after(|t| {
        t.at("platform")
            .set("gic-redistributors", u64s(&[0x0800_0000, 0xf6_0000]))
            .set("console", u64s(&[0x0808_0000, 0x1000]));
    });
    assert_eq!(
        p,
        [
            "/platform: gic-redistributors: [0x8000000, 0x8f60000) overlaps /platform gic-distributor [0x8000000, 0x8010000)",
            "/platform: console: [0x8080000, 0x8081000) overlaps /platform gic-redistributors [0x8000000, 0x8f60000)",
        ]
    );
    // Frames that only touch are fine (QEMU virt: the redistributors end where the
    // console starts).
    let p = after(|t| {
        t.at("platform")
            .set("gic-redistributors", u64s(&[0x0801_0000, 0xff_0000]));
    });
    assert_eq!(p, NONE);
}

/// Each partition sees a 64 KiB distributor and 128 KiB of redistributor per vCPU
/// at the platform's frames: smaller frames would put its views over whatever
/// follows them (the `config_parse` fuzz target checks that a validated config's
/// emulated regions can be laid out).
#[test]
fn gic_frames_too_small_for_the_views() {
    let p = after(|t| {
        t.at("platform")
            .set("gic-distributor", u64s(&[0x0800_0000, 0x1000]))
            .set("gic-redistributors", u64s(&[0x080a_0000, 0x2_0000]));
    });
    assert_eq!(
        p,
        [
            "/platform: gic-distributor: [0x8000000, 0x8001000) is smaller than the distributor a partition sees (0x10000 bytes)",
            "/partitions/partition@1: cpus: 2 vCPUs see 0x40000 bytes of redistributors, more than /platform gic-redistributors [0x80a0000, 0x80c0000)",
        ]
    );
}

#[test]
fn hypervisor_outside_platform_memory() {
    let p = after(|t| {
        t.at("hypervisor")
            .set("memory", u64s(&[0x3f00_0000, 0x200_0000]));
    });
    assert_eq!(
        p,
        ["/hypervisor: memory: [0x3f000000, 0x41000000) is outside /platform memory"]
    );
}

#[test]
fn watchdog_zero() {
    let p = after(|t| {
        t.at("exit-policy").set("watchdog-ms", cells(&[0]));
    });
    assert_eq!(p, ["/exit-policy: watchdog-ms: must be at least 1"]);
}

#[test]
fn many_problems_in_a_fixed_order() {
    let mut t = good();
    t.at(P0).set("cpus", cells(&[2]));
    t.at(P1)
        .set("label", s("alpha"))
        .set("memory", u64s(&[0x4000_0000, 0x4800_0000, 0x80_0000]));
    t.at("exit-policy").set("wait-for", sl(&["alpha"]));
    let files = Files::good().without("alpha.bin");
    let expected = [
        "/partitions/partition@0: image: \"alpha.bin\" is missing",
        "/partitions/partition@1: label: \"alpha\" is also the label of /partitions/partition@0",
        "/partitions/partition@1: cpus: CPU 2 is also used by /partitions/partition@0",
        "/partitions/partition@1: memory: [0x48000000, 0x48800000) overlaps /partitions/partition@0 memory [0x48000000, 0x48800000)",
    ];
    assert_eq!(problems_with(&t, &files), expected);
    // Same input, same output.
    assert_eq!(problems_with(&t, &files), problems_with(&t, &files));
}

#[test]
fn a_dma_master_passes_through_only_unconfined() {
    // The serial port is no DMA master: no `dma` needed.
    assert_eq!(problems(&good()), NONE);
    let refused = |edit: &dyn Fn(&mut N), why: &str| {
        let p = after(|t| edit(t));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(&format!("/{SERIAL}: is a DMA master ({why})")),
            "{p:?}"
        );
        assert!(p[0].contains("dma = \"unconfined\""), "{p:?}");
        let p = after(|t| {
            edit(t);
            t.at(SERIAL).set("dma", s("unconfined"));
        });
        assert_eq!(p, NONE, "acknowledged");
    };
    refused(
        &|t| {
            t.at(SERIAL).set("compatible", sl(&["virtio,mmio"]));
        },
        "compatible \"virtio,mmio\": a virtio device reads and writes its driver's memory",
    );
    refused(
        &|t| {
            t.at(SERIAL).set("dma-coherent", vec![]);
        },
        "it has dma-coherent",
    );
    refused(
        &|t| {
            t.at(SERIAL).set("iommus", cells(&[1, 2]));
        },
        "it has iommus",
    );
    let p = after(|t| {
        t.at(SERIAL).set("dma", s("confined"));
    });
    assert_eq!(
        p,
        [format!(
            "/{SERIAL}: dma: must be \"unconfined\" (the only value: it accepts a DMA master Ferry cannot confine)"
        )]
    );
}

#[test]
fn on_fault_is_stop_or_abort() {
    use ferry_config::FaultPolicy;
    assert_eq!(parsed(&good()).partitions[0].on_fault, FaultPolicy::Stop);
    let mut t = good();
    t.at(P0).set("on-fault", s("abort"));
    assert_eq!(parsed(&t).partitions[0].on_fault, FaultPolicy::Abort);
    t.at(P0).set("on-fault", s("ignore"));
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@0: on-fault: \"ignore\" is not a fault policy (expected \"stop\" or \"abort\")"
        ]
    );
}
