//! `parse`: what a good config reads as, and each structural problem.

mod common;

use common::*;
use ferry_config::{ConfigError, GuestRegion, Region, StopCodes};

#[test]
fn good_config_reads_back() {
    let c = parsed(&good());
    assert_eq!(c.model, "test config");
    assert_eq!(c.platform.board, "qemu-virt");
    assert_eq!(c.platform.memory, [Region::new(0x4000_0000, 0x4000_0000)]);
    assert_eq!(c.platform.cpus, 4);
    assert_eq!(c.platform.gicd, Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(c.platform.gicr, Region::new(0x080a_0000, 0xf6_0000));
    assert_eq!(c.platform.console, Region::new(0x0900_0000, 0x1000));
    assert_eq!(c.hypervisor.memory, Region::new(0x4000_0000, 0x200_0000));
    assert_eq!(c.partitions.len(), 2);

    let a = &c.partitions[0];
    assert_eq!(
        (a.id, a.path.as_str(), a.label.as_str()),
        (0, "/partitions/partition@0", "alpha")
    );
    assert_eq!(a.cpus, [1]);
    let region = GuestRegion {
        ipa: 0x4000_0000,
        pa: 0x4800_0000,
        size: 0x80_0000,
    };
    assert_eq!(a.memory, [region]);
    assert_eq!(a.image, "alpha.bin");
    assert_eq!((a.load_address, a.entry), (0x4000_0000, 0x4000_0000));
    assert_eq!(
        a.dtb_address, 0x407f_0000,
        "default: last 64 KiB of the first region"
    );
    assert_eq!((a.bootargs.as_deref(), a.initrd.as_deref()), (None, None));
    assert_eq!(
        a.codes,
        StopCodes {
            system_off: 0,
            system_reset: 2,
            fault: 10
        }
    );
    assert_eq!(a.devices.len(), 1);
    let d = &a.devices[0];
    assert_eq!(d.path, "/partitions/partition@0/passthrough/serial@9040000");
    assert_eq!(d.name, "serial@9040000");
    assert_eq!(d.reg, [Region::new(0x0904_0000, 0x1000)]);
    assert_eq!(d.spis, [8]);
    assert_eq!(d.interrupts, [[0, 8, 4]]);
    assert_eq!(
        d.property("compatible"),
        Some(&sl(&["arm,pl011", "arm,primecell"])[..])
    );
    assert_eq!(d.properties.len(), 3);

    let b = &c.partitions[1];
    assert_eq!(b.cpus, [2, 3]);
    assert_eq!(b.bootargs.as_deref(), Some("console=hvc0"));
    assert_eq!(b.initrd.as_deref(), Some("beta.cpio"));
    assert_eq!(b.initrd_address, None);
    assert_eq!(b.initrd_address_for(0x1_0000), 0x407e_0000);
    assert_eq!(
        b.initrd_address_for(0x1_0001),
        0x407d_f000,
        "aligned down to 4 KiB"
    );

    let e = c.exit.as_ref().unwrap();
    assert_eq!(
        (e.wait_for.as_slice(), e.watchdog_ms),
        (&[0, 1][..], Some(20000))
    );
    assert_eq!(c.partition(1).unwrap().label, "beta");
    assert_eq!(c.partition_by_label("alpha").unwrap().id, 0);
    assert!(c.partition(2).is_none());
}

#[test]
fn optional_properties_are_read() {
    let mut t = good();
    t.at(P1)
        .set("entry", u64s(&[0x4000_1000]))
        .set("initrd-address", u64s(&[0x4040_0000]))
        .set("dtb-address", u64s(&[0x4030_0000]))
        .set("system-off-code", cells(&[20]))
        .set("system-reset-code", cells(&[21]))
        .set("fault-code", cells(&[22]));
    t.at("exit-policy").remove("watchdog-ms");
    let c = parsed(&t);
    let b = &c.partitions[1];
    assert_eq!((b.entry, b.dtb_address), (0x4000_1000, 0x4030_0000));
    assert_eq!(b.initrd_address_for(0x1000), 0x4040_0000);
    assert_eq!(
        b.codes,
        StopCodes {
            system_off: 20,
            system_reset: 21,
            fault: 22
        }
    );
    assert_eq!(c.exit.unwrap().watchdog_ms, None);

    let mut t = good();
    t.remove_child("exit-policy");
    assert_eq!(parsed(&t).exit, None);
}

#[test]
fn partition_helpers() {
    let mut t = good();
    t.at(P0).set(
        "memory",
        u64s(&[
            0x4000_0000,
            0x4800_0000,
            0x40_0000,
            0x4040_0000,
            0x4a00_0000,
            0x40_0000,
        ]),
    );
    let c = parsed(&t);
    let p = &c.partitions[0];
    assert_eq!(p.ipa_to_pa(0x4000_0000), Some(0x4800_0000));
    assert_eq!(p.ipa_to_pa(0x403f_ffff), Some(0x483f_ffff));
    assert_eq!(p.ipa_to_pa(0x4040_0010), Some(0x4a00_0010));
    assert_eq!(p.ipa_to_pa(0x4080_0000), None);
    assert_eq!(p.ipa_to_pa(0x3fff_ffff), None);
    assert!(p.contains_ipa(0x4000_0000, 0x40_0000));
    assert!(!p.contains_ipa(0x4000_0000, 0x40_0001), "spans two regions");
    assert!(p.contains_ipa(0x407f_ffff, 0));
    assert!(!p.contains_ipa(0x4080_0000, 0));
    assert!(!p.contains_ipa(u64::MAX, 2));
}

#[test]
fn nops_are_ignored() {
    let dtb = good().dtb();
    let nopped = with_nops(&dtb);
    assert!(nopped.len() > dtb.len());
    assert_eq!(ferry_config::parse(&nopped), ferry_config::parse(&dtb));
}

#[test]
fn display_format() {
    let e = ConfigError::new("/a", Some("b"), "c");
    assert_eq!(e.to_string(), "/a: b: c");
    assert_eq!(ConfigError::new("/a", None, "c").to_string(), "/a: c");
}

#[test]
fn not_a_device_tree() {
    let e = ferry_config::parse(b"hello").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "config");
    assert!(
        e[0].to_string().starts_with("config: not a device tree"),
        "{}",
        e[0]
    );
    let dtb = good().dtb();
    let e = ferry_config::parse(&dtb[..dtb.len() - 1]).unwrap_err();
    assert!(
        e[0].to_string()
            .starts_with("config: device tree truncated"),
        "{}",
        e[0]
    );
}

#[test]
fn unknown_compatible() {
    let p = after(|t| {
        t.set("compatible", sl(&["acme,board", "acme,other"]));
    });
    assert_eq!(
        p,
        [
            r#"/: compatible: "acme,board", "acme,other" is not a Ferry config (expected "ferry,config-v1")"#
        ]
    );
    assert_eq!(
        after(|t| {
            t.remove("compatible");
        }),
        ["/: compatible: is missing"]
    );
}

#[test]
fn root_cells() {
    let p = after(|t| {
        t.set("#address-cells", cells(&[1]));
        t.remove("#size-cells");
    });
    assert_eq!(
        p,
        [
            "/: #address-cells: must be <2> (found <1>)",
            "/: #size-cells: is missing"
        ]
    );
}

#[test]
fn missing_nodes() {
    let p = after(|t| {
        t.remove_child("platform")
            .remove_child("hypervisor")
            .remove_child("partitions");
    });
    assert_eq!(
        p,
        [
            "/platform: is missing",
            "/hypervisor: is missing",
            "/partitions: is missing"
        ]
    );
}

#[test]
fn missing_required_properties() {
    let p = after(|t| {
        t.at("platform").remove("board").remove("console");
        t.at("hypervisor").remove("memory");
        for name in ["reg", "label", "cpus", "memory", "image", "load-address"] {
            t.at(P1).remove(name);
        }
        t.at("exit-policy").remove("wait-for");
    });
    assert_eq!(
        p,
        [
            "/platform: board: is missing",
            "/platform: console: is missing",
            "/hypervisor: memory: is missing",
            "/partitions/partition@1: reg: is missing",
            "/partitions/partition@1: label: is missing",
            "/partitions/partition@1: cpus: is missing",
            "/partitions/partition@1: memory: is missing",
            "/partitions/partition@1: image: is missing",
            "/partitions/partition@1: load-address: is missing",
            "/exit-policy: wait-for: is missing",
        ]
    );
}

#[test]
fn malformed_cells() {
    let p = after(|t| {
        t.at("platform")
            .set("memory", cells(&[0, 0x4000_0000, 0x4000_0000]))
            .set("cpus", u64s(&[4]))
            .set("gic-distributor", u64s(&[0x0800_0000, 0x1_0000, 0, 0]))
            .set("board", vec![b'x']);
        t.at(P0)
            .set("memory", u64s(&[0x4000_0000, 0x4800_0000]))
            .set("load-address", cells(&[0x4000_0000]))
            .set("cpus", vec![0, 1])
            .set("fault-code", vec![]);
        t.at(SERIAL)
            .set("reg", cells(&[0x0904_0000, 0x1000]))
            .set("interrupts", cells(&[0, 8]));
        t.at("exit-policy").set("wait-for", b"alpha".to_vec());
    });
    assert_eq!(
        p,
        [
            "/platform: board: must be one NUL-terminated UTF-8 string",
            "/platform: memory: must be (address, size) pairs of 2 + 2 cells (found 12 bytes)",
            "/platform: cpus: must be one 32-bit cell (found 8 bytes)",
            "/platform: gic-distributor: must be one (address, size) pair of 2 + 2 cells (found 32 bytes)",
            "/partitions/partition@0: cpus: must be a list of 32-bit cells (found 2 bytes)",
            "/partitions/partition@0: memory: must be (guest address, host address, size) triples of 2 + 2 + 2 cells (found 16 bytes)",
            "/partitions/partition@0: load-address: must be one address of 2 cells (found 4 bytes)",
            "/partitions/partition@0: fault-code: must be one 32-bit cell (found 0 bytes)",
            "/partitions/partition@0/passthrough/serial@9040000: reg: must be (address, size) pairs of 2 + 2 cells (found 8 bytes)",
            "/partitions/partition@0/passthrough/serial@9040000: interrupts: must be GIC specifiers of 3 cells (type, number, flags) (found 8 bytes)",
            "/exit-policy: wait-for: must be a list of NUL-terminated UTF-8 strings",
        ]
    );
}

#[test]
fn partitions_and_passthrough_cells() {
    let p = after(|t| {
        t.at("partitions")
            .set("#address-cells", cells(&[2]))
            .remove("#size-cells");
        t.at(&format!("{P0}/passthrough"))
            .set("#size-cells", cells(&[1]))
            .set("ranges", u64s(&[0, 0, 0x1000]));
    });
    assert_eq!(
        p,
        [
            "/partitions: #address-cells: must be <1> (found <2>)",
            "/partitions: #size-cells: is missing",
            "/partitions/partition@0/passthrough: #size-cells: must be <2> (found <1>)",
            "/partitions/partition@0/passthrough: ranges: must be empty (devices keep their host addresses)",
        ]
    );
    // An empty `ranges` and no cells at all are fine.
    let mut t = good();
    let pt = t.at(&format!("{P0}/passthrough"));
    pt.remove("#address-cells")
        .remove("#size-cells")
        .set("ranges", vec![]);
    assert_eq!(problems(&t), Vec::<String>::new());
}

#[test]
fn unknown_nodes_and_properties() {
    let p = after(|t| {
        t.set("colour", s("blue"));
        t.children.push(N::new("virtual"));
        t.children.push(N::new("aliases").p("x", s("/platform")));
        t.at("platform")
            .set("phandle", cells(&[1]))
            .children
            .push(N::new("extra"));
        t.at(P0)
            .set("dtb-adress", u64s(&[0]))
            .children
            .push(N::new("devices"));
        t.at("exit-policy").set("watchdog", cells(&[1]));
    });
    assert_eq!(
        p,
        [
            "/: colour: unknown property",
            "/virtual: unknown node",
            "/platform/extra: unknown node",
            "/partitions/partition@0/devices: unknown node",
            "/partitions/partition@0: dtb-adress: unknown property",
            "/exit-policy: watchdog: unknown property",
        ]
    );
}

#[test]
fn wait_for_unknown_partition() {
    let p = after(|t| {
        t.at("exit-policy").set("wait-for", sl(&["alpha", "gamma"]));
    });
    assert_eq!(
        p,
        [r#"/exit-policy: wait-for: "gamma" is not the label of any partition"#]
    );
}

#[test]
fn initrd_address_without_initrd() {
    let p = after(|t| {
        t.at(P0).set("initrd-address", u64s(&[0x4040_0000]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@0: initrd-address: is set but there is no initrd"]
    );
}

#[test]
fn interrupts_extended_is_refused() {
    let p = after(|t| {
        t.at(SERIAL)
            .set("interrupts-extended", cells(&[1, 0, 8, 4]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0/passthrough/serial@9040000: interrupts-extended: is not supported: use `interrupts` (the guest GIC is the interrupt parent)"
        ]
    );
}

#[test]
fn device_subnodes_are_kept() {
    let mut t = good();
    t.at(SERIAL)
        .children
        .push(N::new("child@0").p("reg", u64s(&[0, 1])).c(N::new("leaf")));
    let c = parsed(&t);
    let d = &c.partitions[0].devices[0];
    assert_eq!(d.children.len(), 1);
    assert_eq!(d.children[0].name, "child@0");
    assert_eq!(d.children[0].properties[0].name, "reg");
    assert_eq!(d.children[0].children[0].name, "leaf");
}
