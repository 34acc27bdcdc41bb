//! Networking, devices: `"net"` devices (`mac`, `segment`), several frontends
//! on one backend, segment numbering: parsing, defaults and every rule (the
//! uplink: tests/net_uplink.rs).

mod common;

use common::net::*;
use common::*;
use ferry_config::{NetUplink, Region, Transport, VirtioKind, default_mac};

const NONE: [&str; 0] = [];

#[test]
fn the_reference_system_parses_and_checks() {
    let t = lan();
    assert_eq!(check(&t), NONE);
    let c = parsed(&t);
    assert!(c.virtio.iter().all(|d| d.kind == VirtioKind::Net));
    assert_eq!(VirtioKind::Net.device_id(), 1);
    assert_eq!(VirtioKind::from_name("net"), Some(VirtioKind::Net));
    let macs: Vec<Option<[u8; 6]>> = c.virtio.iter().map(|d| d.mac).collect();
    assert_eq!(macs, [Some([2, 0, 0, 0, 0, 0x0a]), None, None]);
    let resolved: Vec<[u8; 6]> = c.virtio.iter().map(|d| d.resolved_mac().unwrap()).collect();
    assert_eq!(
        resolved,
        [
            [2, 0, 0, 0, 0, 0x0a],
            [0x02, 0x46, 0x52, 0x59, 0x00, 0x01],
            [0x02, 0x46, 0x52, 0x59, 0x00, 0x02],
        ]
    );
    assert_eq!(default_mac(7), [0x02, 0x46, 0x52, 0x59, 0x00, 0x07]);
    let segments: Vec<Option<&str>> = c.virtio.iter().map(|d| d.segment.as_deref()).collect();
    assert_eq!(segments, [Some("lan"), Some("lan"), Some("alone")]);
    // One backend, three frontends, one device each: device numbers 0, 1, 2.
    let numbers: Vec<u32> = c.virtio.iter().map(|d| d.backend_index).collect();
    assert_eq!(numbers, [0, 1, 2]);
    assert_eq!(c.backend_segments(3), ["lan", "alone"]);
    assert_eq!(c.segment_id(3, "lan"), Some(0));
    assert_eq!(c.segment_id(3, "alone"), Some(1));
    assert_eq!(c.segment_id(3, "wan"), None);
    assert!(c.backend_segments(0).is_empty());
    let be = &c.partitions[3];
    assert_eq!(
        be.net_uplink,
        Some(NetUplink {
            transport: Transport {
                address: 0x0a00_3c00,
                spi: 46
            },
            segment: "lan".into(),
        })
    );
    let u = be.net_uplink.as_ref().unwrap();
    assert_eq!(u.transport.region(), Region::new(0x0a00_3c00, 0x200));
    assert_eq!(
        be.transport_device(u.transport).unwrap().path,
        TRANSPORTS_PATH
    );
    assert!(c.partitions[..3].iter().all(|p| p.net_uplink.is_none()));
    // Other types have no MAC.
    let mut rng = c.virtio[1].clone();
    rng.kind = VirtioKind::Rng;
    assert_eq!(rng.resolved_mac(), None);
}

#[test]
fn segments_are_numbered_by_first_appearance_on_their_backend() {
    // In device-number order (reg order), not tree order.
    let mut t = lan();
    t.at(D0).set("reg", cells(&[2]));
    t.at(D2).set("reg", cells(&[0]));
    let c = parsed(&t);
    assert_eq!(check(&t), NONE);
    assert_eq!(c.backend_segments(3), ["alone", "lan"]);
    // Devices of other types do not count.
    let mut t = lan();
    t.at("virtio").children.insert(
        0,
        N::new("device@3")
            .p("reg", cells(&[3]))
            .p("type", s("rng"))
            .p("frontend", s("a"))
            .p("backend", s("be"))
            .p("window", u64s(&[0x0a00_0200, 0x200]))
            .p("spi", cells(&[19]))
            .p("shared-memory", u64s(&[0x8000_0000])),
    );
    assert_eq!(check(&t), NONE);
    assert_eq!(parsed(&t).backend_segments(3), ["lan", "alone"]);
}

#[test]
fn one_backend_serves_several_frontends_each_at_its_own_address() {
    // lan(): three frontends' first regions at be's 0x80000000, 0x80800000,
    // 0x81000000. The same address for two frontends is refused: it would map
    // two frontends' memory at one place.
    let p = edit(|t| {
        t.at(D1).set("shared-memory", u64s(&[0x8000_0000]));
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: shared-memory: [0x80000000, 0x80800000) overlaps /virtio/device@0 shared-memory [0x80000000, 0x80800000)"
        ]
    );
    // Every frontend may put its window at the same address of its own.
    let c = parsed(&lan());
    assert!(c.virtio.iter().all(|d| d.window.base == 0x0a00_0000));
    // A device's spi is unique over all devices, whatever its frontend.
    let p = edit(|t| {
        t.at(D1).set("spi", cells(&[16]));
    });
    assert_eq!(
        p,
        ["/virtio/device@1: spi: SPI 16 is also the spi of /virtio/device@0"]
    );
}

#[test]
fn mac_is_six_bytes() {
    for bad in [vec![2, 0, 0, 0, 0], vec![2, 0, 0, 0, 0, 1, 0], cells(&[1])] {
        let len = bad.len();
        let p = edit(|t| {
            t.at(D0).set("mac", bad);
        });
        assert_eq!(
            p,
            [format!(
                "/virtio/device@0: mac: must be a MAC address of 6 bytes (a byte string: [02 00 00 00 00 01]) (found {len} bytes)"
            )]
        );
    }
}

#[test]
fn mac_is_unicast_and_not_zero() {
    let p = edit(|t| {
        t.at(D0).set("mac", vec![0x03, 0, 0, 0, 0, 1]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@0: mac: 03:00:00:00:00:01 is a multicast address (bit 0 of its first byte is set): a device's MAC must be unicast"
        ]
    );
    // Broadcast is multicast too.
    let p = edit(|t| {
        t.at(D1).set("mac", vec![0xff; 6]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: mac: ff:ff:ff:ff:ff:ff is a multicast address (bit 0 of its first byte is set): a device's MAC must be unicast"
        ]
    );
    let p = edit(|t| {
        t.at(D0).set("mac", vec![0; 6]);
    });
    assert_eq!(
        p,
        ["/virtio/device@0: mac: 00:00:00:00:00:00 is not a MAC address (all zero)"]
    );
    // A universally administered unicast address is fine.
    let p = edit(|t| {
        t.at(D0)
            .set("mac", vec![0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    });
    assert_eq!(p, NONE);
}

#[test]
fn no_two_net_devices_have_one_mac() {
    // Two explicit MACs.
    let p = edit(|t| {
        t.at(D2).set("mac", vec![2, 0, 0, 0, 0, 0x0a]);
    });
    assert_eq!(
        p,
        ["/virtio/device@2: mac: 02:00:00:00:00:0a is also the MAC of /virtio/device@0"]
    );
    // An explicit MAC equal to an earlier device's default.
    let p = edit(|t| {
        t.at(D2).set("mac", default_mac(1).to_vec());
    });
    assert_eq!(
        p,
        [
            "/virtio/device@2: mac: 02:46:52:59:00:01 is also the MAC of /virtio/device@1 (its default, from reg <1>)"
        ]
    );
    // A default equal to an earlier device's explicit MAC: reported on the
    // later device, whose mac is missing.
    let p = edit(|t| {
        t.at(D0).set("mac", default_mac(2).to_vec());
    });
    assert_eq!(
        p,
        [
            "/virtio/device@2: mac: is missing, and the default 02:46:52:59:00:02 (from reg <2>) is also the MAC of /virtio/device@0: give this device a mac of its own"
        ]
    );
    // Across backends and segments too: a MAC is the system's.
    let p = edit(|t| {
        t.at(D2)
            .set("segment", s("lan"))
            .set("mac", vec![2, 0, 0, 0, 0, 0x0a]);
    });
    assert_eq!(
        p,
        ["/virtio/device@2: mac: 02:00:00:00:00:0a is also the MAC of /virtio/device@0"]
    );
}

#[test]
fn a_net_device_needs_a_segment() {
    let p = edit(|t| {
        t.at(D1).remove("segment");
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: segment: is missing (a \"net\" device needs segment, the name of the switch segment its port is in)"
        ]
    );
    let p = edit(|t| {
        t.at(D1).set("segment", s(""));
    });
    assert_eq!(
        p,
        ["/virtio/device@1: segment: is empty (a segment is named by a non-empty string)"]
    );
    let p = edit(|t| {
        t.at(D1).set("segment", cells(&[0]));
    });
    assert_eq!(
        p,
        ["/virtio/device@1: segment: must be one NUL-terminated UTF-8 string"]
    );
}

#[test]
fn mac_and_segment_are_only_for_net() {
    let p = edit(|t| {
        t.at(D1)
            .set("type", s("rng"))
            .set("mac", vec![2, 0, 0, 0, 0, 1]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: mac: is only for type \"net\" (this device is \"rng\")",
            "/virtio/device@1: segment: is only for type \"net\" (this device is \"rng\")",
        ]
    );
    let p = edit(|t| {
        t.at(D1)
            .set("type", s("console"))
            .remove("segment")
            .set("mac", vec![2, 0, 0, 0, 0, 1]);
    });
    assert_eq!(
        p,
        ["/virtio/device@1: mac: is only for type \"net\" (this device is \"console\")"]
    );
}

#[test]
fn blk_and_console_properties_are_refused_on_net() {
    let p = edit(|t| {
        t.at(D1)
            .set("disk", u64s(&[0x4040_0000, 0x10_0000]))
            .set("disk-image", s("disk.img"))
            .set("storage", transport(0x0a00_3e00, 47))
            .set("read-only", vec![])
            .set("loopback", vec![]);
    });
    assert_eq!(
        p,
        [
            "/virtio/device@1: loopback: is only for type \"console\" (this device is \"net\")",
            "/virtio/device@1: disk: is only for type \"blk\" (this device is \"net\")",
            "/virtio/device@1: disk-image: is only for type \"blk\" (this device is \"net\")",
            "/virtio/device@1: storage: is only for type \"blk\" (this device is \"net\")",
            "/virtio/device@1: read-only: is only for type \"blk\" (this device is \"net\")",
        ]
    );
}

#[test]
fn a_net_device_in_copy_mode() {
    let p = edit(|t| {
        t.at(D2)
            .set("sharing", s("copy"))
            .remove("shared-memory")
            .set("bounce", u64s(&[0x4060_0000, 0x1_0000]));
    });
    assert_eq!(p, NONE);
}
