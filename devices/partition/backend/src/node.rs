//! The `/ferry-backend` node of the backend's guest DTB, written by `ferry pack`
//! (docs/config.md, "What the guest sees"):
//!
//! ```text
//! ferry-backend { compatible = "ferry,virtio-backend"; request-page = <addr(2)>;
//!                 interrupts = <0 spi 1>;          or  poll-interval-ms = <ms>;
//!                 dma-ranges = <guest(2) host(2) size(2)>...;   (optional)
//!                 net-uplink = <addr(2) spi>;                   (optional: a physical
//!                 net-uplink-segment = <segment>;                virtio-net, see [`net`])
//!                 device@N { reg = <N>; type = "blk" | "console" | "rng" | "net";
//!                            frontend-memory = <FE base(2) size(2) BE address(2)>;
//!                            disk = <addr(2) size(2)>;     (blk: a RAM disk, or
//!                            storage = <addr(2) spi>;        a physical virtio-blk)
//!                            read-only;                     (blk, optional)
//!                            loopback;                      (console only: the test hook)
//!                            mac = [6 bytes]; segment = <segment>; }; };   (net only)
//! ```
//!
//! Parsing checks every property the backend relies on; nothing here trusts the DTB.

use core::fmt;
use core::ops::Range;

use fdt::Fdt;
use fdt::node::FdtNode;
use ferry_abi::{Region, ioreq};

use crate::dma::DmaRanges;

pub mod net;
pub use net::{NetNode, Uplink};

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
    /// virtio-net: a port of the backend's switch.
    Net,
}

impl Kind {
    /// The DT `type` value.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Blk => "blk",
            Kind::Console => "console",
            Kind::Rng => "rng",
            Kind::Net => "net",
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
    /// `storage` (blk only, instead of `disk`): the physical virtio-blk device.
    pub storage: Option<PhysicalDisk>,
    /// `read-only` (blk only): writes fail.
    pub read_only: bool,
    /// `loopback` (console only): the test hook under which the console echoes
    /// what the frontend transmits; without it, output and input go through
    /// Ferry (`CONSOLE_DEVICE_WRITE`, `CONSOLE_DEVICE_READ`).
    pub loopback: bool,
    /// `mac` and `segment` (net only): the device's port on the switch.
    pub net: Option<NetNode>,
}

/// A physical virtio-mmio device passed through to the backend (a disk's
/// `storage`, the `net-uplink`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysicalDevice {
    /// Its virtio-mmio registers (0x200 bytes, identity-mapped device memory).
    pub addr: u64,
    /// Its interrupt (SPI number; INTID = spi + 32).
    pub spi: u32,
}

/// A blk device's physical virtio-blk device.
pub type PhysicalDisk = PhysicalDevice;

/// The parsed node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendNode {
    /// `request-page`: the IOREQ request page (4 KiB, shared with Ferry).
    pub request_page: u64,
    /// `interrupts` or `poll-interval-ms`.
    pub signal: Signal,
    /// The devices, by index.
    pub devices: [Option<DeviceNode>; MAX_DEVICES],
    /// `dma-ranges`: guest → bus addresses of the backend's memory (empty if absent).
    pub dma: DmaRanges,
    /// `net-uplink` and `net-uplink-segment`: the physical NIC, if any.
    pub uplink: Option<Uplink>,
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
    /// `dma-ranges` not whole `<guest(2) host(2) size(2)>` triples (at most 8, none
    /// empty or wrapping).
    DmaRanges,
    /// A property of `/ferry-backend` itself is missing or malformed.
    Backend {
        /// The property.
        property: &'static str,
        /// What was wrong.
        why: &'static str,
    },
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
            NodeError::DmaRanges => write!(
                f,
                "/ferry-backend: dma-ranges: not <guest(2) host(2) size(2)> triples (at most 8, none empty or wrapping)"
            ),
            NodeError::Backend { property, why } => write!(f, "/ferry-backend: {property}: {why}"),
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
    let mut names = [""; MAX_DEVICES];
    for c in node.children() {
        let d = device(&c, &normal)?;
        let slot = &mut devices[d.index];
        if slot.is_some() {
            return Err(NodeError::Index {
                node: c.name,
                index: d.index as u32,
            });
        }
        names[d.index] = c.name;
        *slot = Some(d);
    }
    if devices.iter().all(Option::is_none) {
        return Err(NodeError::NoDevices);
    }
    let dma = match node.property("dma-ranges") {
        None => DmaRanges::new(),
        Some(p) => DmaRanges::parse(p.value).ok_or(NodeError::DmaRanges)?,
    };
    let uplink = net::uplink(&node)?;
    let doorbell = match signal {
        Signal::Doorbell { spi } => Some(spi),
        Signal::Poll { .. } => None,
    };
    net::check(&devices, &names, uplink.as_ref(), doorbell)?;
    Ok(BackendNode {
        request_page,
        signal,
        devices,
        dma,
        uplink,
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
        Some("net") => Kind::Net,
        _ => {
            return Err(bad(
                "type",
                "missing or not \"blk\", \"console\", \"rng\" or \"net\"",
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
        (_, Some(_)) => return Err(bad("disk", "only a blk device has a disk")),
        (_, None) => None,
    };
    let storage = storage(c, kind).map_err(|why| bad("storage", why))?;
    match (kind, disk.is_some(), storage.is_some()) {
        (Kind::Blk, false, false) => {
            return Err(bad(
                "disk",
                "missing (a blk device needs a RAM disk or a storage device)",
            ));
        }
        (Kind::Blk, true, true) => return Err(bad("storage", "given with disk: one or the other")),
        _ => {}
    }
    let read_only = c.property("read-only").is_some();
    if read_only && kind != Kind::Blk {
        return Err(bad("read-only", "only a blk device is read-only"));
    }
    let loopback = match (kind, c.property("loopback").map(|p| p.value)) {
        (Kind::Console, Some([])) => true,
        (Kind::Console, Some(_)) => return Err(bad("loopback", "not empty (a flag)")),
        (_, Some(_)) => return Err(bad("loopback", "only a console device has it")),
        (_, None) => false,
    };
    let net = net::device(c, kind)?;
    Ok(DeviceNode {
        index: index as usize,
        kind,
        memory: FrontendMemory {
            fe_base,
            size,
            be_addr,
        },
        disk,
        storage,
        read_only,
        loopback,
        net,
    })
}

/// A device node's `storage = <addr(2) spi>` (blk only).
fn storage(c: &FdtNode<'_, '_>, kind: Kind) -> Result<Option<PhysicalDisk>, &'static str> {
    let Some(v) = c.property("storage").map(|p| p.value) else {
        return Ok(None);
    };
    if kind != Kind::Blk {
        return Err("only a blk device has storage");
    }
    transport(v).map(Some)
}

/// A physical virtio-mmio transport `<addr(2) spi>`: 0x200 bytes of device memory
/// (identity-mapped below 0x4000_0000) and its SPI.
fn transport(v: &[u8]) -> Result<PhysicalDevice, &'static str> {
    let Ok(v) = <[u8; 12]>::try_from(v) else {
        return Err("not <address(2) spi(1)>");
    };
    let addr = u64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8]));
    let spi = u32::from_be_bytes([v[8], v[9], v[10], v[11]]);
    if addr % 0x200 != 0 || addr >= 0x4000_0000 || spi > 987 {
        return Err(
            "the address must be 0x200-aligned device memory below 0x40000000, the SPI at most 987",
        );
    }
    Ok(PhysicalDevice { addr, spi })
}

#[cfg(test)]
mod tests;
