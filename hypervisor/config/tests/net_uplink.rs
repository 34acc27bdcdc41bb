//! Networking, a backend's uplink (`net-uplink`, `net-uplink-segment`):
//! parsing and every rule (the devices: tests/net.rs).

mod common;

use common::net::*;
use common::*;

const NONE: [&str; 0] = [];

#[test]
fn an_uplink_needs_its_segment_and_the_segment_its_uplink() {
    let p = edit(|t| {
        t.at(BE).remove("net-uplink-segment");
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink-segment: is missing (a net-uplink needs net-uplink-segment, the switch segment its port is in)"
        )]
    );
    let p = edit(|t| {
        t.at(BE).remove("net-uplink");
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: is missing (net-uplink-segment names the segment of an uplink: give net-uplink, its physical virtio-net transport)"
        )]
    );
    // Neither: no uplink, fine.
    let mut t = lan();
    t.at(BE).remove("net-uplink").remove("net-uplink-segment");
    assert_eq!(check(&t), NONE);
    assert_eq!(parsed(&t).partitions[3].net_uplink, None);
}

#[test]
fn an_uplink_is_an_address_and_an_spi() {
    for bad in [u64s(&[0x0a00_3c00, 46]), cells(&[0x0a00_3c00, 46])] {
        let len = bad.len();
        let p = edit(|t| {
            t.at(BE).set("net-uplink", bad);
        });
        assert_eq!(
            p,
            [format!(
                "{BE_PATH}: net-uplink: must be (address, SPI) of 2 + 1 cells (found {len} bytes)"
            )]
        );
    }
    let p = edit(|t| {
        t.at(BE).set("net-uplink-segment", cells(&[0]));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink-segment: must be one NUL-terminated UTF-8 string"
        )]
    );
}

#[test]
fn only_a_backend_has_an_uplink() {
    let p = edit(|t| {
        t.at("partitions/partition@0")
            .set("net-uplink", transport(0x0a00_3c00, 46))
            .set("net-uplink-segment", s("lan"));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: net-uplink: is a virtio backend's: it needs ioreq-page",
            "/partitions/partition@0: net-uplink-segment: is a virtio backend's: it needs ioreq-page",
        ]
    );
    let p = edit(|t| {
        t.at("partitions/partition@0")
            .set("net-uplink-segment", s("lan"));
    });
    assert_eq!(
        p,
        ["/partitions/partition@0: net-uplink-segment: is a virtio backend's: it needs ioreq-page"]
    );
}

#[test]
fn an_uplink_serves_a_net_device_of_its_backend() {
    // A backend with an uplink and only an rng.
    let p = edit(|t| {
        let v = t.at("virtio");
        v.children.truncate(1);
        v.at("device@0")
            .set("type", s("rng"))
            .remove("segment")
            .remove("mac");
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: \"be\" serves no \"net\" device: an uplink is a port of the switch between the backend's net devices"
        )]
    );
    // A segment nobody uses: nobody could reach the uplink.
    let p = edit(|t| {
        t.at(BE).set("net-uplink-segment", s("wan"));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink-segment: \"wan\" is the segment of no \"net\" device of \"be\" (its segments: \"lan\", \"alone\"): nobody could reach the uplink"
        )]
    );
    // The segment of the lone device is fine too.
    let p = edit(|t| {
        t.at(BE).set("net-uplink-segment", s("alone"));
    });
    assert_eq!(p, NONE);
    let p = edit(|t| {
        t.at(BE).set("net-uplink-segment", s(""));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink-segment: is empty (a segment is named by a non-empty string)"
        )]
    );
}

#[test]
fn an_uplink_is_a_transport_of_the_backend() {
    // Misaligned, wrapping.
    let p = edit(|t| {
        t.at(BE).set("net-uplink", transport(0x0a00_3c10, 46));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: 0xa003c10 is not 0x200-aligned (a virtio-mmio transport is 0x200 bytes)"
        )]
    );
    let p = edit(|t| {
        t.at(BE)
            .set("net-uplink", transport(0xffff_ffff_ffff_fe00, 46));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: [0xfffffffffffffe00, 0x10000000000000000) wraps around the end of the address space"
        )]
    );
    // In no device of the backend.
    let p = edit(|t| {
        t.at(BE).set("net-uplink", transport(0x0a00_4000, 46));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: [0xa004000, 0xa004200) is not inside the reg of a passthrough device of the backend \"be\" ({BE_PATH})"
        )]
    );
    // An SPI that is not the device's.
    let p = edit(|t| {
        t.at(BE).set("net-uplink", transport(0x0a00_3c00, 48));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: SPI 48 is not an interrupt of {TRANSPORTS_PATH} (its SPIs: 40, 41, 42, 43, 44, 45, 46, 47)"
        )]
    );
}

#[test]
fn an_uplink_of_another_partition_is_refused_and_named() {
    // The transports are a's (a frontend's), not the backend's.
    let p = edit(|t| {
        t.at(BE).remove_child("passthrough");
        t.at("partitions/partition@0").children.push(
            N::new("passthrough")
                .p("#address-cells", cells(&[2]))
                .p("#size-cells", cells(&[2]))
                .c(transports()),
        );
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: [0xa003c00, 0xa003e00) is not inside the reg of a passthrough device of the backend \"be\" ({BE_PATH}); it is in /partitions/partition@0/passthrough/virtio-transports@a003000 reg [0xa003000, 0xa004000), a device of /partitions/partition@0: the backend must own the transport"
        )]
    );
}

#[test]
fn the_uplink_must_be_accepted_as_an_unconfined_dma_master() {
    let p = edit(|t| {
        t.at(TRANSPORTS)
            .remove("dma")
            .remove("dma-coherent")
            .set("compatible", s("vendor,mmio-nic"));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: [0xa003c00, 0xa003e00) is in {TRANSPORTS_PATH}, which is not marked dma = \"unconfined\": the backend drives the transport as a DMA master (it reads and writes memory by host address), which Ferry cannot confine without an SMMU"
        )]
    );
}

#[test]
fn a_backend_with_an_uplink_is_not_restarted() {
    let p = edit(|t| {
        t.at(BE).set("restart", s("on-failure"));
    });
    assert_eq!(
        p,
        [format!(
            "{BE_PATH}: net-uplink: [0xa003c00, 0xa003e00) is a DMA master of the backend \"be\", which has restart = \"on-failure\": Ferry does not yet reset a passthrough DMA master before reloading a backend (a request in flight could write into the reloaded image); use restart = \"never\" for a backend that owns a NIC"
        )]
    );
}

/// A blk device of a served by be from the physical transport at `address`.
fn blk(index: u32, address: u64, spi: u32) -> N {
    N::new(&format!("device@{index}"))
        .p("reg", cells(&[index]))
        .p("type", s("blk"))
        .p("frontend", s("a"))
        .p("backend", s("be"))
        .p("window", u64s(&[0x0a00_0200, 0x200]))
        .p("spi", cells(&[16 + index]))
        .p("shared-memory", u64s(&[0x8000_0000]))
        .p("storage", transport(address, spi))
}

#[test]
fn the_uplink_and_a_disk_are_different_transports() {
    // QEMU's first device (0x0a003e00, SPI 47) a disk, its second the uplink.
    let p = edit(|t| {
        t.at("virtio").children.push(blk(3, 0x0a00_3e00, 47));
    });
    assert_eq!(p, NONE);
    // The same transport: reported on the device (a later node).
    let p = edit(|t| {
        t.at("virtio").children.push(blk(3, 0x0a00_3c00, 46));
    });
    assert_eq!(
        p,
        [format!(
            "/virtio/device@3: storage: [0xa003c00, 0xa003e00) is also the net-uplink of {BE_PATH}"
        )]
    );
}

#[test]
fn two_backends_do_not_share_an_uplink() {
    // c becomes a second backend serving b's device; both claim one transport
    // (each passthrough device is refused as overlapping the other too).
    let p = edit(|t| {
        t.at("partitions/partition@2")
            .set("ioreq-page", u64s(&[0x0b00_0000]))
            .set("ioreq-spi", cells(&[101]))
            .set("net-uplink", transport(0x0a00_3c00, 46))
            .set("net-uplink-segment", s("lan"))
            .children
            .push(
                N::new("passthrough")
                    .p("#address-cells", cells(&[2]))
                    .p("#size-cells", cells(&[2]))
                    .c(transports()),
            );
        t.at(D1).set("backend", s("c"));
        t.at(D2).set("frontend", s("b"));
    });
    let uplink: Vec<&String> = p.iter().filter(|m| m.contains("net-uplink:")).collect();
    assert_eq!(
        uplink,
        [&format!(
            "{BE_PATH}: net-uplink: [0xa003c00, 0xa003e00) is also the net-uplink of /partitions/partition@2"
        )],
        "{p:#?}"
    );
}

#[test]
fn net_survives_nop_tokens() {
    let dtb = with_nops(&lan().dtb());
    let c = ferry_config::parse(&dtb).expect("parses");
    assert_eq!(c, parsed(&lan()));
}
