//! Networking in `/ferry-backend`: a `net` device's `mac` and `segment`, and the
//! backend's uplink (`net-uplink`, `net-uplink-segment`).
//!
//! ```text
//! ferry-backend { ...
//!                 net-uplink = <addr(2) spi>;          (optional, with the segment)
//!                 net-uplink-segment = <segment>;
//!                 device@N { type = "net"; frontend-memory = <...>;
//!                            mac = [02 46 52 59 00 01]; segment = <segment>; }; };
//! ```

use fdt::node::FdtNode;

use super::{DeviceNode, Kind, NodeError, PhysicalDevice, cells, transport};
use crate::switch::{MAX_PORTS, Mac, is_multicast};

/// A `net` device's port on the backend's switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetNode {
    /// `mac`: the MAC address the device offers its driver (unicast, not zero).
    pub mac: Mac,
    /// `segment`: ports of one segment reach each other, of different ones never.
    pub segment: u32,
}

/// `net-uplink` + `net-uplink-segment`: a physical virtio-net device passed
/// through to the backend, one more port of its switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// Its virtio-mmio registers and interrupt.
    pub device: PhysicalDevice,
    /// The segment of its port.
    pub segment: u32,
}

/// A device node's `mac` and `segment` (both required for `net`, refused on
/// any other type).
pub(super) fn device<'a>(
    c: &FdtNode<'_, 'a>,
    kind: Kind,
) -> Result<Option<NetNode>, NodeError<'a>> {
    let bad = |property, why| NodeError::Property {
        node: c.name,
        property,
        why,
    };
    let mac = c.property("mac").map(|p| p.value);
    let segment = c.property("segment").map(|p| p.value);
    if kind != Kind::Net {
        return match (mac, segment) {
            (Some(_), _) => Err(bad("mac", "only a net device has it")),
            (_, Some(_)) => Err(bad("segment", "only a net device has it")),
            _ => Ok(None),
        };
    }
    let Some(Ok(mac)) = mac.map(<Mac>::try_from) else {
        return Err(bad("mac", "missing or not 6 bytes"));
    };
    if is_multicast(&mac) {
        return Err(bad(
            "mac",
            "a multicast address (bit 0 of the first byte set): must be unicast",
        ));
    }
    if mac == [0; 6] {
        return Err(bad("mac", "all zero: not a MAC address"));
    }
    let segment = one_cell(segment).ok_or_else(|| bad("segment", "missing or not one cell"))?;
    Ok(Some(NetNode { mac, segment }))
}

/// `value` as exactly one cell.
fn one_cell(value: Option<&[u8]>) -> Option<u32> {
    value.filter(|v| v.len() == 4).and_then(|v| cells(v).next())
}

/// The backend's uplink, both properties or neither.
pub(super) fn uplink<'a>(node: &FdtNode<'_, 'a>) -> Result<Option<Uplink>, NodeError<'a>> {
    let bad = |property, why| NodeError::Backend { property, why };
    let addr = node.property("net-uplink").map(|p| p.value);
    let segment = node.property("net-uplink-segment").map(|p| p.value);
    match (addr, segment) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad(
            "net-uplink-segment",
            "missing (net-uplink is given: both or neither)",
        )),
        (None, Some(_)) => Err(bad(
            "net-uplink",
            "missing (net-uplink-segment is given: both or neither)",
        )),
        (Some(a), Some(s)) => {
            let device = transport(a).map_err(|why| bad("net-uplink", why))?;
            let segment =
                one_cell(Some(s)).ok_or_else(|| bad("net-uplink-segment", "not one cell"))?;
            Ok(Some(Uplink { device, segment }))
        }
    }
}

/// The checks across devices: no two net devices share a MAC, the switch has a
/// port for every net device and the uplink, and the uplink shares neither
/// transport nor SPI with a disk's storage or the doorbell (`doorbell`).
pub(super) fn check<'a>(
    devices: &[Option<DeviceNode>],
    names: &[&'a str],
    uplink: Option<&Uplink>,
    doorbell: Option<u32>,
) -> Result<(), NodeError<'a>> {
    let nets = || {
        let named = devices.iter().zip(names);
        named.filter_map(|(d, n)| Some((*n, d.as_ref()?.net?)))
    };
    for (i, (name, net)) in nets().enumerate() {
        if nets().take(i).any(|(_, other)| other.mac == net.mac) {
            return Err(NodeError::Property {
                node: name,
                property: "mac",
                why: "also the MAC of another net device of this backend",
            });
        }
    }
    let Some(u) = uplink else {
        return Ok(());
    };
    if nets().count() + 1 > MAX_PORTS {
        return Err(NodeError::Backend {
            property: "net-uplink",
            why: "one port more than the switch has (at most 7 net devices with an uplink)",
        });
    }
    let shared = |s: PhysicalDevice| s.addr == u.device.addr || s.spi == u.device.spi;
    if devices
        .iter()
        .flatten()
        .any(|d| d.storage.is_some_and(shared))
    {
        return Err(NodeError::Backend {
            property: "net-uplink",
            why: "the same transport or SPI as a blk device's storage",
        });
    }
    if doorbell == Some(u.device.spi) {
        return Err(NodeError::Backend {
            property: "net-uplink",
            why: "the same SPI as the doorbell",
        });
    }
    Ok(())
}
