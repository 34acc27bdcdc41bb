//! The checks of a blk device's `storage`: the physical virtio-mmio transport
//! its backend serves the device from instead of a RAM disk.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::Validator;
use crate::error::Range;
use crate::model::{Partition, Storage, VIRTIO_WINDOW_SIZE, VirtioDevice, VirtioKind, holds};

impl Validator<'_> {
    /// `storage` of device `d` (served by `be`; `before` are the devices before
    /// it): 0x200-aligned; its 0x200 bytes inside the MMIO (`reg`) of one of the
    /// backend's passthrough devices, which is marked `dma = "unconfined"` (the
    /// backend drives the transport as a DMA master) and has the SPI among its
    /// `interrupts`; no earlier device's `storage` at the same address. Only for
    /// a `"blk"` device (on another type the `disk` check refuses it).
    pub(super) fn storage(&mut self, d: &VirtioDevice, be: &Partition, before: &[VirtioDevice]) {
        // On another type, `storage` is refused as such.
        let (Some(s), VirtioKind::Blk) = (d.storage, d.kind) else {
            return;
        };
        let path = d.path.as_str();
        let r = s.region();
        if !s.address.is_multiple_of(VIRTIO_WINDOW_SIZE) {
            let msg = format!(
                "{:#x} is not {VIRTIO_WINDOW_SIZE:#x}-aligned (a virtio-mmio transport is {VIRTIO_WINDOW_SIZE:#x} bytes)",
                s.address
            );
            self.errs.prop(path, "storage", msg);
            return;
        }
        if s.address.checked_add(VIRTIO_WINDOW_SIZE).is_none() {
            let msg = format!(
                "{} wraps around the end of the address space",
                Range::from(r)
            );
            self.errs.prop(path, "storage", msg);
            return;
        }
        if be.ioreq.as_ref().is_some_and(|io| io.restart.is_some()) {
            let msg = format!(
                "{} is a DMA master of the backend \"{}\", which has restart = \"on-failure\": Ferry does not yet reset a passthrough DMA master before reloading a backend (a request in flight could write into the reloaded image); use restart = \"never\" for a backend that owns a disk",
                Range::from(r),
                be.label
            );
            self.errs.prop(path, "storage", msg);
        }
        if let Some(o) = before
            .iter()
            .find(|o| o.storage.is_some_and(|t| t.address == s.address))
        {
            let msg = format!("{} is also the storage of {}", Range::from(r), o.path);
            self.errs.prop(path, "storage", msg);
        }
        let Some(dev) = self.cfg.storage_device(d) else {
            let msg = format!(
                "{} is not inside the reg of a passthrough device of the backend \"{}\" ({}){}",
                Range::from(r),
                be.label,
                be.path,
                self.owner_elsewhere(be, s)
            );
            self.errs.prop(path, "storage", msg);
            return;
        };
        if !dev.dma_unconfined() {
            let msg = format!(
                "{} is in {}, which is not marked dma = \"unconfined\": the backend drives the transport as a DMA master (it reads and writes memory by host address), which Ferry cannot confine without an SMMU",
                Range::from(r),
                dev.path
            );
            self.errs.prop(path, "storage", msg);
        }
        if !dev.spis.contains(&s.spi) {
            let theirs = if dev.spis.is_empty() {
                String::from("it has none")
            } else {
                let list: Vec<String> = dev.spis.iter().map(|n| format!("{n}")).collect();
                format!("its SPIs: {}", list.join(", "))
            };
            let msg = format!(
                "SPI {} is not an interrupt of {} ({theirs})",
                s.spi, dev.path
            );
            self.errs.prop(path, "storage", msg);
        }
    }

    /// For a `storage` transport not in the backend's devices: `"; it is in
    /// <device> reg [..), a device of <partition>: ..."` when another partition's
    /// passthrough device holds it (a transport given to the wrong partition),
    /// else nothing.
    fn owner_elsewhere(&self, be: &Partition, s: Storage) -> String {
        let r = s.region();
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
