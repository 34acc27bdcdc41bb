//! The checks of networking: a `"net"` device's `mac` and `segment`, and a
//! backend's uplink (`net-uplink`, `net-uplink-segment`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Validator;
use super::storage::Use;
use crate::error::Mac;
use crate::model::{Partition, Transport, VirtioDevice, VirtioKind};

impl Validator<'_> {
    /// `mac` and `segment` of a `"net"` device `d` (`before`: the devices
    /// before it): the MAC (its `mac`, else the default of its `reg`) unicast,
    /// not all zero and no earlier net device's; the segment a non-empty name.
    /// On another type both are refused by `type_properties`.
    pub(super) fn net(&mut self, d: &VirtioDevice, before: &[VirtioDevice]) {
        let Some(mac) = d.resolved_mac() else {
            return;
        };
        let path = d.path.as_str();
        if d.segment.as_deref() == Some("") {
            let msg = "is empty (a segment is named by a non-empty string)";
            self.errs.prop(path, "segment", msg);
        }
        if mac[0] & 1 != 0 {
            let msg = format!(
                "{} is a multicast address (bit 0 of its first byte is set): a device's MAC must be unicast",
                Mac(mac)
            );
            self.errs.prop(path, "mac", msg);
        } else if mac == [0; 6] {
            let msg = format!("{} is not a MAC address (all zero)", Mac(mac));
            self.errs.prop(path, "mac", msg);
        }
        let Some(o) = before.iter().find(|o| o.resolved_mac() == Some(mac)) else {
            return;
        };
        let theirs = if o.mac.is_none() {
            format!(" (its default, from reg <{}>)", o.index)
        } else {
            String::new()
        };
        let msg = match d.mac {
            Some(_) => format!("{} is also the MAC of {}{theirs}", Mac(mac), o.path),
            None => format!(
                "is missing, and the default {} (from reg <{}>) is also the MAC of {}{theirs}: give this device a mac of its own",
                Mac(mac),
                d.index,
                o.path
            ),
        };
        self.errs.prop(path, "mac", msg);
    }

    /// `net-uplink` and `net-uplink-segment` of backend `p` (`earlier`: the
    /// partitions before it): the transport a physical one of `p`
    /// ([`Validator::transport`]) that is no earlier partition's uplink; `p`
    /// serves at least one `"net"` device, and one of them is in the uplink's
    /// segment (else nobody could reach the uplink).
    pub(super) fn net_uplink(&mut self, p: &Partition, earlier: &[Partition]) {
        let Some(u) = &p.net_uplink else {
            return;
        };
        let taken: Vec<(String, Transport)> = earlier
            .iter()
            .filter_map(|o| {
                let t = o.net_uplink.as_ref()?.transport;
                Some((format!("the net-uplink of {}", o.path), t))
            })
            .collect();
        let at = Use {
            path: &p.path,
            property: "net-uplink",
            what: "a NIC",
        };
        self.transport(&at, u.transport, p, &taken);
        let nets = self
            .cfg
            .backend_devices(p.id)
            .into_iter()
            .filter(|d| d.kind == VirtioKind::Net)
            .count();
        if nets == 0 {
            let msg = format!(
                "\"{}\" serves no \"net\" device: an uplink is a port of the switch between the backend's net devices",
                p.label
            );
            self.errs.prop(&p.path, "net-uplink", msg);
            return;
        }
        if u.segment.is_empty() {
            let msg = "is empty (a segment is named by a non-empty string)";
            self.errs.prop(&p.path, "net-uplink-segment", msg);
            return;
        }
        let segments = self.cfg.backend_segments(p.id);
        if !segments.contains(&u.segment.as_str()) {
            let list: Vec<String> = segments.iter().map(|s| format!("\"{s}\"")).collect();
            let msg = format!(
                "\"{}\" is the segment of no \"net\" device of \"{}\" (its segments: {}): nobody could reach the uplink",
                u.segment,
                p.label,
                list.join(", ")
            );
            self.errs.prop(&p.path, "net-uplink-segment", msg);
        }
    }
}
