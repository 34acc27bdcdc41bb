//! Host tests of the `/ferry-backend` parser.
use super::*;
use vm_fdt::FdtWriter;

const NORMAL: Range<u64> = 0x4000_0000..0xc000_0000;

/// A device node's properties: (name, type, frontend-memory, disk).
struct Dev<'a> {
    reg: Vec<u8>,
    kind: &'a str,
    fm: Option<[u64; 3]>,
    disk: Option<[u64; 2]>,
    loopback: Option<Vec<u8>>,
    /// More properties: (name, raw value).
    extra: Vec<(&'a str, Vec<u8>)>,
}

fn dev(reg: u32, kind: &str) -> Dev<'_> {
    Dev {
        reg: reg.to_be_bytes().to_vec(),
        kind,
        fm: Some([0x4000_0000, 0x1000_0000, 0x8000_0000]),
        disk: (kind == "blk").then_some([0x4040_0000, 0x10_0000]),
        loopback: None,
        extra: Vec::new(),
    }
}

/// A DTB with `/ferry-backend` holding `props` (name, raw value) and `devs`.
fn dtb(props: &[(&str, Vec<u8>)], devs: &[Dev<'_>]) -> &'static [u8] {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let n = w.begin_node("ferry-backend").unwrap();
    w.property_string("compatible", "ferry,virtio-backend")
        .unwrap();
    for (name, v) in props {
        w.property(name, v).unwrap();
    }
    for (i, d) in devs.iter().enumerate() {
        let c = w.begin_node(&format!("device@{i}")).unwrap();
        w.property("reg", &d.reg).unwrap();
        w.property_string("type", d.kind).unwrap();
        if let Some(fm) = d.fm {
            w.property_array_u64("frontend-memory", &fm).unwrap();
        }
        if let Some(disk) = d.disk {
            w.property_array_u64("disk", &disk).unwrap();
        }
        if let Some(v) = &d.loopback {
            w.property("loopback", v).unwrap();
        }
        for (name, v) in &d.extra {
            w.property(name, v).unwrap();
        }
        w.end_node(c).unwrap();
    }
    w.end_node(n).unwrap();
    w.end_node(root).unwrap();
    Vec::leak(w.finish().unwrap())
}

fn page() -> (&'static str, Vec<u8>) {
    ("request-page", 0x0b00_0000u64.to_be_bytes().to_vec())
}

fn irq(spi: u32) -> (&'static str, Vec<u8>) {
    let v = [0u32, spi, 1]
        .iter()
        .flat_map(|c| c.to_be_bytes())
        .collect();
    ("interrupts", v)
}

fn parse_blob(blob: &'static [u8]) -> Result<BackendNode, NodeError<'static>> {
    parse(&Fdt::new(blob).unwrap(), NORMAL)
}

#[test]
fn a_doorbell_backend_with_three_devices() {
    let blob = dtb(
        &[page(), irq(100)],
        &[dev(0, "blk"), dev(1, "rng"), dev(2, "console")],
    );
    let n = parse_blob(blob).unwrap();
    assert_eq!(n.request_page, 0x0b00_0000);
    assert_eq!(n.signal, Signal::Doorbell { spi: 100 });
    let kinds: Vec<_> = n.iter().map(|d| (d.index, d.kind)).collect();
    assert_eq!(kinds, [(0, Kind::Blk), (1, Kind::Rng), (2, Kind::Console)]);
    assert_eq!(
        n.devices[0].as_ref().unwrap().disk,
        Some(Region::new(0x4040_0000, 0x10_0000))
    );
    assert_eq!(n.devices[1].as_ref().unwrap().disk, None);
}

#[test]
fn a_polling_backend() {
    let poll = ("poll-interval-ms", 5u32.to_be_bytes().to_vec());
    let n = parse_blob(dtb(&[page(), poll], &[dev(0, "rng")])).unwrap();
    assert_eq!(n.signal, Signal::Poll { interval_ms: 5 });
}

#[test]
fn the_signal_must_be_exactly_one_valid_choice() {
    let poll = |ms: u32| ("poll-interval-ms", ms.to_be_bytes().to_vec());
    for props in [
        vec![page()],
        vec![page(), irq(100), poll(5)],
        vec![page(), poll(0)],
        vec![page(), poll(1001)],
        vec![page(), irq(988)],
        vec![page(), ("interrupts", vec![0, 0, 0, 1])],
    ] {
        assert_eq!(
            parse_blob(dtb(&props, &[dev(0, "rng")])),
            Err(NodeError::Signal)
        );
    }
}

#[test]
fn a_bad_request_page_is_refused() {
    for v in [
        vec![],
        vec![0, 0, 0, 1],
        0x0b00_0800u64.to_be_bytes().to_vec(),
    ] {
        let blob = dtb(&[("request-page", v), irq(100)], &[dev(0, "rng")]);
        assert_eq!(parse_blob(blob), Err(NodeError::RequestPage));
    }
    let blob = dtb(&[irq(100)], &[dev(0, "rng")]);
    assert_eq!(parse_blob(blob), Err(NodeError::RequestPage));
}

#[test]
fn bad_devices_are_refused_with_their_name() {
    let e = parse_blob(dtb(&[page(), irq(100)], &[dev(0, "gpu")])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::Property {
            property: "type",
            ..
        }
    ));
    assert!(e.to_string().contains("/ferry-backend/device@0: type"));

    let e = parse_blob(dtb(&[page(), irq(100)], &[dev(8, "rng")])).unwrap_err();
    assert_eq!(
        e,
        NodeError::Index {
            node: "device@0",
            index: 8
        }
    );

    let twice = [dev(1, "rng"), dev(1, "console")];
    let e = parse_blob(dtb(&[page(), irq(100)], &twice)).unwrap_err();
    assert_eq!(
        e,
        NodeError::Index {
            node: "device@1",
            index: 1
        }
    );

    let mut d = dev(0, "rng");
    d.reg = vec![0, 0];
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::Property {
            property: "reg",
            ..
        }
    ));

    let mut d = dev(0, "rng");
    d.fm = None;
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::Property {
            property: "frontend-memory",
            ..
        }
    ));

    assert_eq!(
        parse_blob(dtb(&[page(), irq(100)], &[])),
        Err(NodeError::NoDevices)
    );
}

#[test]
fn windows_and_disks_must_be_in_normal_memory() {
    for fm in [
        [0x4000_0000, 0x1000_0000, 0x0900_0000],
        [0x4000_0000, 0x8000_0000, 0x8000_0000],
        [0x4000_0000, 0, 0x8000_0000],
        [0x4000_0000, 0x1000, u64::MAX - 0x800],
    ] {
        let mut d = dev(0, "rng");
        d.fm = Some(fm);
        let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
        assert!(
            matches!(
                e,
                NodeError::OutsideNormal {
                    property: "frontend-memory",
                    ..
                }
            ),
            "{fm:x?}: {e:?}"
        );
    }
    let mut d = dev(0, "blk");
    d.disk = Some([0xc000_0000, 0x1000]);
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::OutsideNormal {
            property: "disk",
            ..
        }
    ));
}

#[test]
fn disks_belong_to_blk_devices_only_and_are_whole_sectors() {
    let mut d = dev(0, "blk");
    d.disk = None;
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::Property {
            property: "disk",
            ..
        }
    ));
    let mut d = dev(0, "rng");
    d.disk = Some([0x4040_0000, 0x1000]);
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert!(matches!(
        e,
        NodeError::Property {
            property: "disk",
            ..
        }
    ));
    for disk in [[0x4040_0100, 0x1000], [0x4040_0000, 0x1001]] {
        let mut d = dev(0, "blk");
        d.disk = Some(disk);
        let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
        assert!(matches!(
            e,
            NodeError::Property {
                property: "disk",
                ..
            }
        ));
    }
}

#[test]
fn no_node_is_an_error_of_its_own() {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.end_node(root).unwrap();
    let blob = Vec::leak(w.finish().unwrap());
    assert_eq!(parse_blob(blob), Err(NodeError::Missing));
}

fn storage_prop(addr: u64, spi: u32) -> (&'static str, Vec<u8>) {
    let mut v = addr.to_be_bytes().to_vec();
    v.extend(spi.to_be_bytes());
    ("storage", v)
}

fn physical(reg: u32) -> Dev<'static> {
    let mut d = dev(reg, "blk");
    d.disk = None;
    d.extra.push(storage_prop(0x0a00_3e00, 47));
    d
}

#[test]
fn a_blk_device_over_a_physical_disk() {
    let mut d = physical(0);
    d.extra.push(("read-only", Vec::new()));
    let dma: Vec<u8> = [0x4000_0000u64, 0x4800_0000, 0x80_0000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let n = parse_blob(dtb(&[page(), irq(100), ("dma-ranges", dma)], &[d])).unwrap();
    let blk = n.devices[0].as_ref().unwrap();
    assert_eq!(blk.disk, None);
    assert_eq!(
        blk.storage,
        Some(PhysicalDisk {
            addr: 0x0a00_3e00,
            spi: 47
        })
    );
    assert!(blk.read_only);
    assert_eq!(n.dma.to_bus(0x4010_0000, 0x1000), Some(0x4810_0000));
}

#[test]
fn storage_and_disk_are_one_or_the_other() {
    let mut both = physical(0);
    both.disk = Some([0x4040_0000, 0x10_0000]);
    let e = parse_blob(dtb(&[page(), irq(100)], &[both])).unwrap_err();
    assert!(e.to_string().contains("storage: given with disk"), "{e}");
    let mut neither = dev(0, "blk");
    neither.disk = None;
    let e = parse_blob(dtb(&[page(), irq(100)], &[neither])).unwrap_err();
    assert!(
        e.to_string().contains("a RAM disk or a storage device"),
        "{e}"
    );
    let mut rng = dev(0, "rng");
    rng.extra.push(storage_prop(0x0a00_3e00, 47));
    let e = parse_blob(dtb(&[page(), irq(100)], &[rng])).unwrap_err();
    assert!(
        e.to_string().contains("only a blk device has storage"),
        "{e}"
    );
    let mut ro = dev(0, "console");
    ro.extra.push(("read-only", Vec::new()));
    let e = parse_blob(dtb(&[page(), irq(100)], &[ro])).unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
}

#[test]
fn malformed_storage_and_dma_ranges_are_refused() {
    for (addr, spi) in [(0x0a00_3e10, 47), (0x4000_0000, 47), (0x0a00_3e00, 988)] {
        let mut d = dev(0, "blk");
        d.disk = None;
        d.extra.push(storage_prop(addr, spi));
        let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
        assert!(e.to_string().contains("/device@0: storage:"), "{e}");
    }
    let mut short = dev(0, "blk");
    short.disk = None;
    short.extra.push(("storage", vec![0; 8]));
    assert!(parse_blob(dtb(&[page(), irq(100)], &[short])).is_err());
    let e = parse_blob(dtb(
        &[page(), irq(100), ("dma-ranges", vec![0; 20])],
        &[physical(0)],
    ))
    .unwrap_err();
    assert_eq!(e, NodeError::DmaRanges);
}

#[test]
fn a_console_is_real_unless_it_has_the_loopback_flag() {
    let mut echo = dev(1, "console");
    echo.loopback = Some(vec![]);
    let blob = dtb(&[page(), irq(100)], &[dev(0, "console"), echo]);
    let n = parse_blob(blob).unwrap();
    let flags: Vec<_> = n.iter().map(|d| (d.index, d.loopback)).collect();
    assert_eq!(flags, [(0, false), (1, true)]);
}

#[test]
fn loopback_is_an_empty_flag_of_a_console_only() {
    let mut d = dev(0, "console");
    d.loopback = Some(vec![0, 0, 0, 1]);
    let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
    assert_eq!(
        e,
        NodeError::Property {
            node: "device@0",
            property: "loopback",
            why: "not empty (a flag)"
        }
    );
    for kind in ["rng", "blk"] {
        let mut d = dev(0, kind);
        d.loopback = Some(vec![]);
        let e = parse_blob(dtb(&[page(), irq(100)], &[d])).unwrap_err();
        assert!(
            e.to_string()
                .contains("/ferry-backend/device@0: loopback: only a console"),
            "{kind}: {e}"
        );
    }
}

const MAC1: [u8; 6] = [0x02, 0x46, 0x52, 0x59, 0x00, 0x01];

/// A net device with MAC `mac` in `segment`.
fn net(reg: u32, mac: [u8; 6], segment: u32) -> Dev<'static> {
    let mut d = dev(reg, "net");
    d.extra.push(("mac", mac.to_vec()));
    d.extra.push(("segment", segment.to_be_bytes().to_vec()));
    d
}

fn uplink(addr: u64, spi: u32, segment: u32) -> [(&'static str, Vec<u8>); 2] {
    let (_, v) = storage_prop(addr, spi);
    [
        ("net-uplink", v),
        ("net-uplink-segment", segment.to_be_bytes().to_vec()),
    ]
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0x46, 0x52, 0x59, 0x00, n]
}

#[test]
fn net_devices_and_an_uplink() {
    let [u, s] = uplink(0x0a00_3c00, 46, 7);
    let blob = dtb(
        &[page(), irq(100), u, s],
        &[net(0, MAC1, 7), dev(1, "rng"), net(2, mac(2), 9)],
    );
    let n = parse_blob(blob).unwrap();
    let nets: Vec<_> = n.iter().map(|d| (d.index, d.kind, d.net)).collect();
    assert_eq!(
        nets,
        [
            (
                0,
                Kind::Net,
                Some(NetNode {
                    mac: MAC1,
                    segment: 7
                })
            ),
            (1, Kind::Rng, None),
            (
                2,
                Kind::Net,
                Some(NetNode {
                    mac: mac(2),
                    segment: 9
                })
            ),
        ]
    );
    assert_eq!(
        n.uplink,
        Some(Uplink {
            device: PhysicalDevice {
                addr: 0x0a00_3c00,
                spi: 46
            },
            segment: 7
        })
    );
    // No uplink: none.
    let n = parse_blob(dtb(&[page(), irq(100)], &[net(0, MAC1, 0)])).unwrap();
    assert_eq!(n.uplink, None);
}

/// The error of a backend with `props` and `devs`, as text.
fn refused(props: &[(&str, Vec<u8>)], devs: &[Dev<'_>]) -> String {
    let mut all = vec![page(), irq(100)];
    all.extend_from_slice(props);
    parse_blob(dtb(&all, devs)).unwrap_err().to_string()
}

#[test]
fn malformed_net_properties_are_refused_by_name() {
    let cases: Vec<(Dev<'static>, &str)> = vec![
        (dev(0, "net"), "device@0: mac: missing or not 6 bytes"),
        (
            {
                let mut d = dev(0, "net");
                d.extra.push(("mac", vec![2, 0, 0, 0, 1]));
                d.extra.push(("segment", vec![0, 0, 0, 1]));
                d
            },
            "device@0: mac: missing or not 6 bytes",
        ),
        (
            net(0, [0x03, 0, 0, 0, 0, 1], 1),
            "device@0: mac: a multicast",
        ),
        (net(0, [0xff; 6], 1), "device@0: mac: a multicast"),
        (net(0, [0; 6], 1), "device@0: mac: all zero"),
        (
            {
                let mut d = dev(0, "net");
                d.extra.push(("mac", MAC1.to_vec()));
                d
            },
            "device@0: segment: missing or not one cell",
        ),
        (
            {
                let mut d = dev(0, "net");
                d.extra.push(("mac", MAC1.to_vec()));
                d.extra.push(("segment", vec![0; 8]));
                d
            },
            "device@0: segment: missing or not one cell",
        ),
        (
            {
                let mut d = dev(0, "rng");
                d.extra.push(("mac", MAC1.to_vec()));
                d
            },
            "device@0: mac: only a net device",
        ),
        (
            {
                let mut d = dev(0, "console");
                d.extra.push(("segment", vec![0, 0, 0, 1]));
                d
            },
            "device@0: segment: only a net device",
        ),
        (
            {
                let mut d = net(0, MAC1, 1);
                d.loopback = Some(vec![]);
                d
            },
            "device@0: loopback: only a console",
        ),
        (
            {
                let mut d = net(0, MAC1, 1);
                d.disk = Some([0x4040_0000, 0x1000]);
                d
            },
            "device@0: disk: only a blk device",
        ),
    ];
    for (d, want) in cases {
        let e = refused(&[], &[d]);
        assert!(e.contains(&format!("/ferry-backend/{want}")), "{want}: {e}");
    }
}

#[test]
fn two_net_devices_never_share_a_mac() {
    let e = refused(&[], &[net(0, MAC1, 0), net(1, MAC1, 1)]);
    assert!(
        e.contains("/ferry-backend/device@1: mac: also the MAC of another net device"),
        "{e}"
    );
}

/// Properties of `/ferry-backend`: (name, raw value).
type Props = Vec<(&'static str, Vec<u8>)>;

#[test]
fn a_malformed_uplink_is_refused() {
    let [u, s] = uplink(0x0a00_3c00, 46, 1);
    let devs = || vec![net(0, MAC1, 1)];
    let cases: Vec<(Props, &str)> = vec![
        (vec![u.clone()], "net-uplink-segment: missing"),
        (vec![s.clone()], "net-uplink: missing"),
        (
            uplink(0x0a00_3c10, 46, 1).to_vec(),
            "net-uplink: the address",
        ),
        (
            uplink(0x4000_0000, 46, 1).to_vec(),
            "net-uplink: the address",
        ),
        (
            uplink(0x0a00_3c00, 988, 1).to_vec(),
            "net-uplink: the address",
        ),
        (
            vec![("net-uplink", vec![0; 8]), s.clone()],
            "net-uplink: not <address(2) spi(1)>",
        ),
        (
            vec![u.clone(), ("net-uplink-segment", vec![0; 8])],
            "net-uplink-segment: not one cell",
        ),
        (
            uplink(0x0a00_3c00, 100, 1).to_vec(),
            "net-uplink: the same SPI as the doorbell",
        ),
    ];
    for (props, want) in cases {
        let e = refused(&props, &devs());
        assert!(
            e.contains(&format!("/ferry-backend: {want}")),
            "{want}: {e}"
        );
    }
    // Not a disk's transport, nor its SPI.
    for (addr, spi) in [(0x0a00_3e00, 46), (0x0a00_3c00, 47)] {
        let e = refused(&uplink(addr, spi, 1), &[net(0, MAC1, 1), physical(1)]);
        assert!(e.contains("net-uplink: the same transport or SPI"), "{e}");
    }
}

#[test]
fn the_switch_has_a_port_for_every_net_device_and_the_uplink() {
    let eight: Vec<_> = (0..8).map(|i| net(i, mac(i as u8 + 1), 0)).collect();
    let n = parse_blob(dtb(&[page(), irq(100)], &eight)).unwrap();
    assert_eq!(n.iter().filter(|d| d.kind == Kind::Net).count(), 8);
    let e = refused(&uplink(0x0a00_3c00, 46, 0), &eight);
    assert!(
        e.contains("/ferry-backend: net-uplink: one port more"),
        "{e}"
    );
    let seven = &eight[..7];
    let n = parse_blob(dtb(
        &[&[page(), irq(100)][..], &uplink(0x0a00_3c00, 46, 0)].concat(),
        seven,
    ))
    .unwrap();
    assert!(n.uplink.is_some());
}
