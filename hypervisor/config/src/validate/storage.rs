//! The checks of a physical virtio-mmio transport a backend drives: a blk
//! device's `storage` (the virtio-blk device it serves the blk device from
//! instead of a RAM disk) and a backend's `net-uplink` (the virtio-net device
//! of its switch's uplink, [`super::net`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Validator;
use crate::error::Range;
use crate::model::{Partition, Transport, VIRTIO_WINDOW_SIZE, VirtioDevice, VirtioKind, holds};

/// Where a transport is given, for [`Validator::transport`].
pub(super) struct Use<'a> {
    /// The node path of the property.
    pub path: &'a str,
    /// The property: `storage` or `net-uplink`.
    pub property: &'a str,
    /// What the backend owns through it, for messages: `a disk`, `a NIC`.
    pub what: &'a str,
}

impl Validator<'_> {
    /// `storage` of device `d` (served by `be`; `before` are the devices before
    /// it): a physical transport ([`Validator::transport`]) that is no earlier
    /// device's `storage` and no backend's `net-uplink`. Only for a `"blk"`
    /// device (on another type `type_properties` refuses it).
    pub(super) fn storage(&mut self, d: &VirtioDevice, be: &Partition, before: &[VirtioDevice]) {
        // On another type, `storage` is refused as such.
        let (Some(s), VirtioKind::Blk) = (d.storage, d.kind) else {
            return;
        };
        let mut taken: Vec<(String, Transport)> = before
            .iter()
            .filter_map(|o| Some((format!("the storage of {}", o.path), o.storage?)))
            .collect();
        // Partitions come before /virtio: their uplinks are earlier nodes.
        for p in &self.cfg.partitions {
            if let Some(u) = &p.net_uplink {
                taken.push((format!("the net-uplink of {}", p.path), u.transport));
            }
        }
        let at = Use {
            path: &d.path,
            property: "storage",
            what: "a disk",
        };
        self.transport(&at, s, be, &taken);
    }

    /// A physical virtio-mmio transport `t` that backend `be` drives, given at
    /// `at`: 0x200-aligned and not wrapping; its 0x200 bytes inside the MMIO
    /// (`reg`) of one of the backend's passthrough devices, which is marked
    /// `dma = "unconfined"` (the backend drives the transport as a DMA master)
    /// and has the SPI among its `interrupts`; not at the address of a
    /// transport of `taken` (earlier uses, each with what it is); its backend
    /// not `restart = "on-failure"`.
    pub(super) fn transport(
        &mut self,
        at: &Use<'_>,
        t: Transport,
        be: &Partition,
        taken: &[(String, Transport)],
    ) {
        let (path, property) = (at.path, at.property);
        let r = t.region();
        if !t.address.is_multiple_of(VIRTIO_WINDOW_SIZE) {
            let msg = format!(
                "{:#x} is not {VIRTIO_WINDOW_SIZE:#x}-aligned (a virtio-mmio transport is {VIRTIO_WINDOW_SIZE:#x} bytes)",
                t.address
            );
            self.errs.prop(path, property, msg);
            return;
        }
        if t.address.checked_add(VIRTIO_WINDOW_SIZE).is_none() {
            let msg = format!(
                "{} wraps around the end of the address space",
                Range::from(r)
            );
            self.errs.prop(path, property, msg);
            return;
        }
        if be.ioreq.as_ref().is_some_and(|io| io.restart.is_some()) {
            let msg = format!(
                "{} is a DMA master of the backend \"{}\", which has restart = \"on-failure\": Ferry does not yet reset a passthrough DMA master before reloading a backend (a request in flight could write into the reloaded image); use restart = \"never\" for a backend that owns {}",
                Range::from(r),
                be.label,
                at.what
            );
            self.errs.prop(path, property, msg);
        }
        if let Some((other, _)) = taken.iter().find(|(_, o)| o.address == t.address) {
            let msg = format!("{} is also {other}", Range::from(r));
            self.errs.prop(path, property, msg);
        }
        self.transport_device(at, t, be);
    }

    /// The passthrough device of `be` holding transport `t` (given at `at`):
    /// present, `dma = "unconfined"`, with `t`'s SPI.
    fn transport_device(&mut self, at: &Use<'_>, t: Transport, be: &Partition) {
        let (path, property) = (at.path, at.property);
        let r = t.region();
        let Some(dev) = be.transport_device(t) else {
            let msg = format!(
                "{} is not inside the reg of a passthrough device of the backend \"{}\" ({}){}",
                Range::from(r),
                be.label,
                be.path,
                self.owner_elsewhere(be, t)
            );
            self.errs.prop(path, property, msg);
            return;
        };
        if !dev.dma_unconfined() {
            let msg = format!(
                "{} is in {}, which is not marked dma = \"unconfined\": the backend drives the transport as a DMA master (it reads and writes memory by host address), which Ferry cannot confine without an SMMU",
                Range::from(r),
                dev.path
            );
            self.errs.prop(path, property, msg);
        }
        if !dev.spis.contains(&t.spi) {
            let theirs = if dev.spis.is_empty() {
                String::from("it has none")
            } else {
                let list: Vec<String> = dev.spis.iter().map(|n| format!("{n}")).collect();
                format!("its SPIs: {}", list.join(", "))
            };
            let msg = format!(
                "SPI {} is not an interrupt of {} ({theirs})",
                t.spi, dev.path
            );
            self.errs.prop(path, property, msg);
        }
    }

    /// For a transport not in the backend's devices: `"; it is in <device>
    /// reg [..), a device of <partition>: ..."` when another partition's
    /// passthrough device holds it (a transport given to the wrong partition),
    /// else nothing.
    fn owner_elsewhere(&self, be: &Partition, t: Transport) -> String {
        let r = t.region();
        let others = self.cfg.partitions.iter().filter(|p| p.id != be.id);
        for p in others {
            for dev in &p.devices {
                if let Some(m) = dev.reg.iter().find(|m| holds(m, &r)) {
                    return format!(
                        "; it is in {} reg {}, a device of {}: the backend must own the transport",
                        dev.path,
                        Range::from(*m),
                        p.path
                    );
                }
            }
        }
        String::new()
    }
}
