//! The `/ferry-backend` node of the backend's guest DTB, written by `ferry pack`
//! (docs/config.md, "What the guest sees"):
//!
//! ```text
//! ferry-backend { compatible = "ferry,virtio-backend"; request-page = <addr(2)>;
//!                 interrupts = <0 spi 1>;          or  poll-interval-ms = <ms>;
//!                 device@N { reg = <N>; type = "blk" | "console" | "rng";
//!                            frontend-memory = <FE base(2) size(2) BE address(2)>;
//!                            disk = <addr(2) size(2)>;   (blk only)
//!                            loopback; };                (console only: the test hook) };
//! ```
//!
//! Parsing checks every property the backend relies on; nothing here trusts the DTB.

use core::fmt;
use core::ops::Range;

use fdt::Fdt;
use fdt::node::FdtNode;
use ferry_abi::{Region, ioreq};

/// Most devices one backend serves (the request page's sync slots, per device).
pub use ferry_abi::ioreq::MAX_DEVICES;

/// What a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// virtio-blk over a RAM disk.
    Blk,
    /// virtio-console.
    Console,
    /// virtio-rng.
    Rng,
}

impl Kind {
    /// The DT `type` value.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Blk => "blk",
            Kind::Console => "console",
            Kind::Rng => "rng",
        }
    }
}

/// How Ferry tells the backend about new requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A doorbell SPI (edge) in the backend's vGIC.
    Doorbell {
        /// The SPI number (INTID - 32).
        spi: u32,
    },
    /// No interrupt: the backend polls its request page.
    Poll {
        /// Milliseconds between polls.
        interval_ms: u32,
    },
}

/// Where a device's frontend memory appears in the backend: frontend address `a` is
/// at `be_addr + (a - fe_base)` for `a` in `[fe_base, fe_base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendMemory {
    /// First frontend (guest) address of the window.
    pub fe_base: u64,
    /// Bytes.
    pub size: u64,
    /// Where the window starts in the backend.
    pub be_addr: u64,
}

/// One `device@N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// `reg`: the device number in IOREQ records and NOTIFY_FRONTEND.
    pub index: usize,
    /// `type`.
    pub kind: Kind,
    /// `frontend-memory`.
    pub memory: FrontendMemory,
    /// `disk` (blk only): the RAM disk in backend memory.
    pub disk: Option<Region>,
    /// `loopback` (console only): the test hook under which the console echoes
    /// what the frontend transmits; without it, output and input go through
    /// Ferry (`CONSOLE_DEVICE_WRITE`, `CONSOLE_DEVICE_READ`).
    pub loopback: bool,
}

/// The parsed node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendNode {
    /// `request-page`: the IOREQ request page (4 KiB, shared with Ferry).
    pub request_page: u64,
    /// `interrupts` or `poll-interval-ms`.
    pub signal: Signal,
    /// The devices, by index.
    pub devices: [Option<DeviceNode>; MAX_DEVICES],
}

impl BackendNode {
    /// The devices present, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &DeviceNode> {
        self.devices.iter().flatten()
    }
}

/// Why the node was refused; the message names the node and property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError<'a> {
    /// No `/ferry-backend` node: this partition serves nothing.
    Missing,
    /// `request-page` missing, not 2 cells, or not 4 KiB-aligned.
    RequestPage,
    /// Neither (or both) of `interrupts = <0 spi flags>` and `poll-interval-ms`.
    Signal,
    /// A property of a device node is missing or malformed.
    Property {
        /// The device node's name.
        node: &'a str,
        /// The property.
        property: &'static str,
        /// What was wrong.
        why: &'static str,
    },
    /// A `reg` at or above [`MAX_DEVICES`], or given twice.
    Index {
        /// The device node's name.
        node: &'a str,
        /// Its `reg`.
        index: u32,
    },
    /// `frontend-memory` or `disk` outside the range the runtime maps as Normal memory.
    OutsideNormal {
        /// The device node's name.
        node: &'a str,
        /// The property.
        property: &'static str,
        /// Start of the range.
        start: u64,
        /// Its size.
        size: u64,
    },
    /// No `device@N` child.
    NoDevices,
}

impl fmt::Display for NodeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Missing => write!(f, "no /ferry-backend node in the DTB"),
            NodeError::RequestPage => write!(
                f,
                "/ferry-backend: request-page is missing or not a 4 KiB-aligned <hi lo> address"
            ),
            NodeError::Signal => write!(
                f,
                "/ferry-backend: needs exactly one of interrupts = <0 spi flags> and poll-interval-ms = <ms> (1..1000)"
            ),
            NodeError::Property {
                node,
                property,
                why,
            } => write!(f, "/ferry-backend/{node}: {property}: {why}"),
            NodeError::Index { node, index } => write!(
                f,
                "/ferry-backend/{node}: reg = <{index}>: duplicate or not below {MAX_DEVICES}"
            ),
            NodeError::OutsideNormal {
                node,
                property,
                start,
                size,
            } => write!(
                f,
                "/ferry-backend/{node}: {property}: [{start:#x}, +{size:#x}) is outside the memory this partition maps"
            ),
            NodeError::NoDevices => write!(f, "/ferry-backend has no device@N child"),
        }
    }
}

/// The `u32` cells of a property value.
fn cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Exactly `N` 64-bit values (2 cells each) of a property value.
fn u64s<const N: usize>(v: &[u8]) -> Option<[u64; N]> {
    if v.len() != N * 8 {
        return None;
    }
    let mut out = [0u64; N];
    for (i, c) in v.chunks_exact(8).enumerate() {
        out[i] = u64::from_be_bytes(c.try_into().ok()?);
    }
    Some(out)
}

/// Parses `/ferry-backend`. `normal` is the address range the runtime maps as
/// Normal memory: every window and disk must lie inside it.
pub fn parse<'a>(fdt: &Fdt<'a>, normal: Range<u64>) -> Result<BackendNode, NodeError<'a>> {
    let node = fdt.find_node("/ferry-backend").ok_or(NodeError::Missing)?;
    let request_page = node
        .property("request-page")
        .and_then(|p| u64s::<1>(p.value))
        .map(|[a]| a)
        .filter(|a| a % ioreq::PAGE_SIZE as u64 == 0 && *a != 0)
        .ok_or(NodeError::RequestPage)?;
    let irq = node.property("interrupts").map(|p| p.value);
    let poll = node.property("poll-interval-ms").map(|p| p.value);
    let signal = match (irq, poll) {
        (Some(v), None) if v.len() == 12 => {
            let spi = cells(v).nth(1).ok_or(NodeError::Signal)?;
            if cells(v).next() != Some(0) || spi > 987 {
                return Err(NodeError::Signal);
            }
            Signal::Doorbell { spi }
        }
        (None, Some(v)) => match <[u8; 4]>::try_from(v).map(u32::from_be_bytes) {
            Ok(ms @ 1..=1000) => Signal::Poll { interval_ms: ms },
            _ => return Err(NodeError::Signal),
        },
        _ => return Err(NodeError::Signal),
    };
    let mut devices: [Option<DeviceNode>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    for c in node.children() {
        let d = device(&c, &normal)?;
        let slot = &mut devices[d.index];
        if slot.is_some() {
            return Err(NodeError::Index {
                node: c.name,
                index: d.index as u32,
            });
        }
        *slot = Some(d);
    }
    if devices.iter().all(Option::is_none) {
        return Err(NodeError::NoDevices);
    }
    Ok(BackendNode {
        request_page,
        signal,
        devices,
    })
}

/// One `device@N` child.
fn device<'a>(c: &FdtNode<'_, 'a>, normal: &Range<u64>) -> Result<DeviceNode, NodeError<'a>> {
    let node = c.name;
    let bad = |property, why| NodeError::Property {
        node,
        property,
        why,
    };
    let index = match c.property("reg").map(|p| p.value) {
        Some(v) if v.len() == 4 => cells(v).next().unwrap_or(u32::MAX),
        _ => return Err(bad("reg", "missing or not one cell")),
    };
    if index as usize >= MAX_DEVICES {
        return Err(NodeError::Index { node, index });
    }
    let kind = match c.property("type").and_then(|p| p.as_str()) {
        Some("blk") => Kind::Blk,
        Some("console") => Kind::Console,
        Some("rng") => Kind::Rng,
        _ => {
            return Err(bad(
                "type",
                "missing or not \"blk\", \"console\" or \"rng\"",
            ));
        }
    };
    let inside = |property, start: u64, size: u64| {
        let end = start.checked_add(size);
        if size == 0 || start < normal.start || end.is_none_or(|e| e > normal.end) {
            Err(NodeError::OutsideNormal {
                node,
                property,
                start,
                size,
            })
        } else {
            Ok(Region::new(start, size))
        }
    };
    let Some([fe_base, size, be_addr]) = c.property("frontend-memory").and_then(|p| u64s(p.value))
    else {
        return Err(bad(
            "frontend-memory",
            "missing or not <FE base(2) size(2) BE address(2)>",
        ));
    };
    if fe_base.checked_add(size).is_none() {
        return Err(bad("frontend-memory", "the frontend range wraps"));
    }
    inside("frontend-memory", be_addr, size)?;
    let disk = match (kind, c.property("disk").map(|p| p.value)) {
        (Kind::Blk, Some(v)) => {
            let Some([start, size]) = u64s(v) else {
                return Err(bad("disk", "not <address(2) size(2)>"));
            };
            if start % 4096 != 0 || size % 512 != 0 {
                return Err(bad(
                    "disk",
                    "not 4 KiB-aligned or not whole 512-byte sectors",
                ));
            }
            Some(inside("disk", start, size)?)
        }
        (Kind::Blk, None) => return Err(bad("disk", "missing (a blk device needs its RAM disk)")),
        (_, Some(_)) => return Err(bad("disk", "only a blk device has a disk")),
        (_, None) => None,
    };
    let loopback = match (kind, c.property("loopback").map(|p| p.value)) {
        (Kind::Console, Some([])) => true,
        (Kind::Console, Some(_)) => return Err(bad("loopback", "not empty (a flag)")),
        (_, Some(_)) => return Err(bad("loopback", "only a console device has it")),
        (_, None) => false,
    };
    Ok(DeviceNode {
        index: index as usize,
        kind,
        memory: FrontendMemory {
            fe_base,
            size,
            be_addr,
        },
        disk,
        loopback,
    })
}

#[cfg(test)]
mod tests {
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
    }

    fn dev(reg: u32, kind: &str) -> Dev<'_> {
        Dev {
            reg: reg.to_be_bytes().to_vec(),
            kind,
            fm: Some([0x4000_0000, 0x1000_0000, 0x8000_0000]),
            disk: (kind == "blk").then_some([0x4040_0000, 0x10_0000]),
            loopback: None,
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

    #[test]
    fn no_node_is_an_error_of_its_own() {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.end_node(root).unwrap();
        let blob = Vec::leak(w.finish().unwrap());
        assert_eq!(parse_blob(blob), Err(NodeError::Missing));
    }
}
