//! Guest DTBs of a network: `"net"` devices and a backend's uplink, from a
//! `.dts` compiled by `dtc` (so `mac = [..]` byte strings go the real way)
//! to the generated DTBs parsed back with `fdt`.

mod common;

use std::path::Path;

use common::*;
use fdt::Fdt;
use fdt::node::FdtNode;
use ferry_config::Config;
use ferry_tool::dtb::{BACKEND_NODE, guest_dtb};
use ferry_tool::load;

/// Frontends a and b on segment "lan", c alone on "alone", all served by "be",
/// which owns QEMU virt's transports and has an uplink on `uplink_segment` at
/// the second `-device` (0x0a003c00, SPI 46). `devices` replaces the
/// `/virtio` devices when given.
fn dts(uplink_segment: &str, devices: Option<&str>) -> String {
    let partition = |id: u32, label: &str, extra: &str| {
        format!(
            "partition@{id} {{ reg = <{id}>; label = \"{label}\"; cpus = <{id}>;
                memory = <0x0 0x40000000 0x0 {:#x} 0x0 0x00800000>;
                image = \"{label}.bin\"; load-address = <0x0 0x40000000>; {extra} }};",
            0x4800_0000 + id * 0x80_0000
        )
    };
    let be = partition(
        3,
        "be",
        &format!(
            "ioreq-page = <0x0 0x0b000000>; ioreq-spi = <100>;
            net-uplink = <0x0 0x0a003c00 46>; net-uplink-segment = \"{uplink_segment}\";
            passthrough {{ #address-cells = <2>; #size-cells = <2>;
                virtio-transports@a003000 {{ compatible = \"virtio,mmio\";
                    reg = <0x0 0x0a003000 0x0 0x1000>;
                    interrupts = <0 40 1>, <0 41 1>, <0 42 1>, <0 43 1>,
                                 <0 44 1>, <0 45 1>, <0 46 1>, <0 47 1>;
                    dma = \"unconfined\"; dma-coherent; }}; }};"
        ),
    );
    let net = |n: u32, fe: &str, segment: &str, extra: &str| {
        format!(
            "device@{n} {{ reg = <{n}>; type = \"net\"; frontend = \"{fe}\"; backend = \"be\";
                window = <0x0 0x0a000000 0x0 0x200>; spi = <{}>;
                shared-memory = <0x0 {:#x}>; segment = \"{segment}\"; {extra} }};",
            16 + n,
            0x8000_0000 + n * 0x80_0000
        )
    };
    let devices = devices.map(String::from).unwrap_or_else(|| {
        [
            net(0, "a", "lan", "mac = [02 00 00 00 00 0a];"),
            net(1, "b", "lan", ""),
            net(2, "c", "alone", ""),
        ]
        .join("\n")
    });
    format!(
        "/dts-v1/;
/ {{
    compatible = \"ferry,config-v1\";
    #address-cells = <2>; #size-cells = <2>;
    platform {{ board = \"qemu-virt\"; memory = <0x0 0x40000000 0x0 0x40000000>; cpus = <4>;
        gic-distributor = <0x0 0x08000000 0x0 0x10000>;
        gic-redistributors = <0x0 0x080a0000 0x0 0xf60000>;
        console = <0x0 0x09000000 0x0 0x1000>; }};
    hypervisor {{ memory = <0x0 0x40000000 0x0 0x02000000>; }};
    partitions {{ #address-cells = <1>; #size-cells = <0>;
        {} {} {} {} }};
    virtio {{ #address-cells = <1>; #size-cells = <0>;
        {devices} }};
    exit-policy {{ wait-for = \"a\"; }};
}};
",
        partition(0, "a", ""),
        partition(1, "b", ""),
        partition(2, "c", ""),
        be
    )
}

/// `text` written as `net.dts` (with its images) in scratch directory `name`,
/// compiled and checked.
fn checked(name: &str, text: &str) -> Result<Config, Vec<String>> {
    let dir = scratch(name);
    for image in ["a.bin", "b.bin", "c.bin", "be.bin"] {
        std::fs::write(dir.join(image), [0u8; 0x100]).unwrap();
    }
    let path = dir.join("net.dts");
    std::fs::write(&path, text).unwrap();
    let loaded = load::load(&path, &[]).unwrap();
    let out = load::check(&loaded).map_err(|e| e.iter().map(ToString::to_string).collect());
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn be32(v: &[u8]) -> Vec<u32> {
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn prop<'a>(n: &FdtNode<'_, 'a>, name: &str) -> &'a [u8] {
    n.property(name)
        .unwrap_or_else(|| panic!("{} has no {name}", n.name))
        .value
}

/// Decompiles `blob` with dtc, failing on any warning.
fn dtc_accepts(name: &str, blob: &[u8]) {
    let dir = scratch(name);
    let f = dir.join(format!("{name}.dtb"));
    std::fs::write(&f, blob).unwrap();
    let out = std::process::Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "/dev/null"])
        .arg(Path::new(&f))
        .output()
        .expect("dtc (device-tree-compiler) is needed: make deps");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "dtc warns: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_backend_sees_macs_segments_and_its_uplink() {
    let cfg = checked("net-backend", &dts("lan", None)).unwrap();
    let blob = guest_dtb(&cfg, &cfg.partitions[3], None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let be = fdt.find_node(&format!("/{BACKEND_NODE}")).unwrap();
    // The uplink: <address (2 cells) SPI (1 cell)>, and the id of "lan".
    assert_eq!(be32(prop(&be, "net-uplink")), [0, 0x0a00_3c00, 46]);
    assert_eq!(be32(prop(&be, "net-uplink-segment")), [0]);
    let devs: Vec<FdtNode> = be.children().collect();
    let names: Vec<&str> = devs.iter().map(|d| d.name).collect();
    assert_eq!(names, ["device@0", "device@1", "device@2"]);
    let want: [([u8; 6], u32, u64); 3] = [
        ([0x02, 0, 0, 0, 0, 0x0a], 0, 0x8000_0000),
        ([0x02, 0x46, 0x52, 0x59, 0x00, 0x01], 0, 0x8080_0000),
        ([0x02, 0x46, 0x52, 0x59, 0x00, 0x02], 1, 0x8100_0000),
    ];
    for (d, (mac, segment, at)) in devs.iter().zip(want) {
        assert_eq!(prop(d, "type"), b"net\0");
        // The resolved MAC, always written: 6 bytes.
        assert_eq!(prop(d, "mac"), mac);
        assert_eq!(be32(prop(d, "segment")), [segment]);
        // Each frontend's memory at its own address in the backend.
        assert_eq!(
            be32(prop(d, "frontend-memory")),
            [0, 0x4000_0000, 0, 0x80_0000, 0, at as u32]
        );
        for blk_or_console in ["disk", "storage", "read-only", "loopback"] {
            assert!(d.property(blk_or_console).is_none(), "{blk_or_console}");
        }
    }
    dtc_accepts("net-backend", &blob);
}

#[test]
fn the_uplink_segment_uses_the_backends_numbering() {
    let cfg = checked("net-uplink-alone", &dts("alone", None)).unwrap();
    let blob = guest_dtb(&cfg, &cfg.partitions[3], None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let be = fdt.find_node(&format!("/{BACKEND_NODE}")).unwrap();
    assert_eq!(be32(prop(&be, "net-uplink-segment")), [1]);
    // Numbered by first appearance in device order: c's device first.
    let devices = "
        device@0 { reg = <0>; type = \"net\"; frontend = \"c\"; backend = \"be\";
            window = <0x0 0x0a000000 0x0 0x200>; spi = <16>;
            shared-memory = <0x0 0x80000000>; segment = \"alone\"; };
        device@1 { reg = <1>; type = \"rng\"; frontend = \"a\"; backend = \"be\";
            window = <0x0 0x0a000200 0x0 0x200>; spi = <17>;
            shared-memory = <0x0 0x80800000>; };
        device@2 { reg = <2>; type = \"net\"; frontend = \"a\"; backend = \"be\";
            window = <0x0 0x0a000000 0x0 0x200>; spi = <18>;
            shared-memory = <0x0 0x80800000>; segment = \"lan\"; };
        device@3 { reg = <3>; type = \"net\"; frontend = \"b\"; backend = \"be\";
            window = <0x0 0x0a000000 0x0 0x200>; spi = <19>;
            shared-memory = <0x0 0x81000000>; segment = \"alone\"; };";
    let cfg = checked("net-order", &dts("lan", Some(devices))).unwrap();
    let blob = guest_dtb(&cfg, &cfg.partitions[3], None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let be = fdt.find_node(&format!("/{BACKEND_NODE}")).unwrap();
    assert_eq!(be32(prop(&be, "net-uplink-segment")), [1]);
    let segments: Vec<Option<Vec<u32>>> = be
        .children()
        .map(|d| d.property("segment").map(|p| be32(p.value)))
        .collect();
    assert_eq!(
        segments,
        [Some(vec![0]), None, Some(vec![1]), Some(vec![0])]
    );
    // The rng has no MAC.
    let rng = fdt.find_node("/ferry-backend/device@1").unwrap();
    assert_eq!(prop(&rng, "type"), b"rng\0");
    assert!(rng.property("mac").is_none());
    dtc_accepts("net-order", &blob);
}

#[test]
fn a_backend_without_an_uplink_has_no_uplink_properties() {
    let text = dts("lan", None).replace(
        "net-uplink = <0x0 0x0a003c00 46>; net-uplink-segment = \"lan\";",
        "",
    );
    let cfg = checked("net-no-uplink", &text).unwrap();
    assert!(cfg.partitions[3].net_uplink.is_none());
    let blob = guest_dtb(&cfg, &cfg.partitions[3], None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let be = fdt.find_node(&format!("/{BACKEND_NODE}")).unwrap();
    assert!(be.property("net-uplink").is_none());
    assert!(be.property("net-uplink-segment").is_none());
    assert!(be.children().all(|d| d.property("mac").is_some()));
}

#[test]
fn a_frontend_sees_a_plain_virtio_mmio_device() {
    let cfg = checked("net-frontend", &dts("lan", None)).unwrap();
    for (id, spi) in [(0, 16), (1, 17), (2, 18)] {
        let blob = guest_dtb(&cfg, &cfg.partitions[id], None).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let n = fdt.find_node("/virtio_mmio@a000000").unwrap();
        assert_eq!(prop(&n, "compatible"), b"virtio,mmio\0");
        assert_eq!(be32(prop(&n, "reg")), [0, 0x0a00_0000, 0, 0x200]);
        assert_eq!(be32(prop(&n, "interrupts")), [0, spi, 1]);
        // Nothing net-specific, no backend node.
        for name in ["mac", "segment", "net-uplink", "net-uplink-segment"] {
            assert!(
                fdt.all_nodes().all(|n| n.property(name).is_none()),
                "{name}"
            );
        }
        assert!(fdt.find_node(&format!("/{BACKEND_NODE}")).is_none());
    }
}

#[test]
fn ferry_check_refuses_a_bad_network() {
    let duplicate = dts("lan", None).replace(
        "segment = \"alone\"; ",
        "segment = \"alone\"; mac = [02 00 00 00 00 0a];",
    );
    assert_eq!(
        checked("net-dup", &duplicate).unwrap_err(),
        ["/virtio/device@2: mac: 02:00:00:00:00:0a is also the MAC of /virtio/device@0"]
    );
    assert_eq!(
        checked("net-wan", &dts("wan", None)).unwrap_err(),
        [
            "/partitions/partition@3: net-uplink-segment: \"wan\" is the segment of no \"net\" device of \"be\" (its segments: \"lan\", \"alone\"): nobody could reach the uplink"
        ]
    );
}

#[test]
fn an_uplink_segment_nobody_uses_is_an_error_unchecked() {
    // ferry pack --no-check: the DTB generator says so instead of guessing.
    let mut cfg = checked("net-unchecked", &dts("lan", None)).unwrap();
    cfg.partitions[3].net_uplink.as_mut().unwrap().segment = "wan".into();
    let err = guest_dtb(&cfg, &cfg.partitions[3], None).unwrap_err();
    assert!(
        format!("{err:#}").contains("segment \"wan\" is the segment of no \"net\" device"),
        "{err:#}"
    );
}
