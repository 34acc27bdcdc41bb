//! The checks of virtio devices (`/virtio`: window, SPI, shared-mode
//! `shared-region`/`shared-memory`, copy-mode `bounce`, disk, the properties
//! of each type; `storage` is in [`super::storage`], `mac` and `segment` in
//! [`super::net`]) and of backends' IOREQ pages (`ioreq-page`, `ioreq-spi` or
//! `ioreq-poll-ms` of a partition; `net-uplink` is in [`super::net`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ferry_abi::Region;

use super::partition::payloads;
use super::{Images, Validator, region_problem, sane};
use crate::MAX_SPI;
use crate::error::{Bytes, Range};
use crate::model::{
    IoreqSignal, MAX_DEADLINE_MS, MAX_FRONTEND_VCPUS, MAX_IOREQ_POLL_MS, MAX_VIRTIO_PER_BACKEND,
    MIN_BOUNCE_SIZE, MIN_IOREQ_POLL_MS, Partition, Sharing, VIRTIO_WINDOW_SIZE, VirtioDevice,
    VirtioKind,
};

/// A named guest-address range a new range must not overlap.
struct Taken {
    what: String,
    range: Region,
}

impl Validator<'_> {
    /// Every IOREQ page check, then every virtio device check.
    pub(super) fn virtio(&mut self, images: &dyn Images) {
        let cfg = self.cfg;
        for (i, p) in cfg.partitions.iter().enumerate() {
            self.ioreq(p, &cfg.partitions[..i]);
            self.net_uplink(p, &cfg.partitions[..i]);
        }
        for i in 0..cfg.virtio.len() {
            self.virtio_device(i, images);
        }
    }

    /// What a partition's guest address space already holds: guest memory,
    /// passthrough MMIO, the GIC frames and the console.
    fn guest_taken(&self, p: &Partition) -> Vec<Taken> {
        let platform = &self.cfg.platform;
        let mut v: Vec<Taken> = p
            .memory
            .iter()
            .map(|m| Taken {
                what: format!("{} guest memory", p.path),
                range: m.guest(),
            })
            .collect();
        for d in &p.devices {
            for r in &d.reg {
                v.push(Taken {
                    what: format!("{} reg", d.path),
                    range: *r,
                });
            }
        }
        for (what, r) in [
            ("/platform gic-distributor", platform.gicd),
            ("/platform gic-redistributors", platform.gicr),
            ("/platform console", platform.console),
        ] {
            v.push(Taken {
                what: what.into(),
                range: r,
            });
        }
        v.retain(|t| sane(&t.range));
        v
    }

    /// Reports every range of `taken` that `r` overlaps.
    fn clash(&mut self, path: &str, property: &str, r: &Region, what: &str, taken: &[Taken]) {
        for t in taken.iter().filter(|t| t.range.overlaps(r)) {
            let msg = format!(
                "{what}{} overlaps {} {}",
                Range::from(*r),
                t.what,
                Range::from(t.range)
            );
            self.errs.prop(path, property, msg);
        }
    }

    /// Why `spi` cannot be a virtual interrupt of a virtio device or IOREQ page,
    /// if it cannot: out of range, console-spi, a passthrough device's,
    /// an IOREQ page's (partitions before `ioreq_before`, skipping none) or a
    /// virtio device's (devices before `virtio_before`).
    fn spi_problem(&self, spi: u32, ioreq_before: usize, virtio_before: usize) -> Option<String> {
        let cfg = self.cfg;
        if spi > MAX_SPI {
            return Some(format!("SPI {spi} is out of range (0 to {MAX_SPI})"));
        }
        if cfg.platform.console_spi == Some(spi) {
            return Some(format!(
                "SPI {spi} is /platform console-spi (the emulated PL011 consoles' interrupt)"
            ));
        }
        let devices = cfg.partitions.iter().flat_map(|p| p.devices.iter());
        if let Some(d) = devices.clone().find(|d| d.spis.contains(&spi)) {
            return Some(format!("SPI {spi} is also given to {}", d.path));
        }
        let ioreqs = cfg.partitions[..ioreq_before.min(cfg.partitions.len())].iter();
        if let Some(p) = ioreqs
            .clone()
            .find(|p| p.ioreq.is_some_and(|q| q.spi() == Some(spi)))
        {
            return Some(format!("SPI {spi} is also the ioreq-spi of {}", p.path));
        }
        let virtio = cfg.virtio[..virtio_before.min(cfg.virtio.len())].iter();
        if let Some(d) = virtio.clone().find(|d| d.spi == spi) {
            return Some(format!("SPI {spi} is also the spi of {}", d.path));
        }
        None
    }

    /// `ioreq-page` and `ioreq-spi` or `ioreq-poll-ms` of `p`; `earlier` are the
    /// partitions before it.
    fn ioreq(&mut self, p: &Partition, earlier: &[Partition]) {
        let Some(q) = p.ioreq else { return };
        let path = p.path.as_str();
        let page = q.region();
        if let Some(problem) = region_problem(page.base, page.size) {
            let msg = format!("{:#x} {problem}", q.page);
            self.errs.prop(path, "ioreq-page", msg);
        } else {
            let mut taken = self.guest_taken(p);
            for d in self.cfg.virtio.iter().filter(|d| d.frontend == p.id) {
                taken.push(Taken {
                    what: format!("{} window", d.path),
                    range: d.window,
                });
            }
            taken.retain(|t| sane_small(&t.range));
            self.clash(path, "ioreq-page", &page, "the request page ", &taken);
        }
        match q.signal {
            // Every virtio device's spi is checked against all ioreq-spis there.
            IoreqSignal::Spi(spi) => {
                if let Some(msg) = self.spi_problem(spi, earlier.len(), 0) {
                    self.errs.prop(path, "ioreq-spi", msg);
                }
            }
            IoreqSignal::Poll { interval_ms } => {
                if !(MIN_IOREQ_POLL_MS..=MAX_IOREQ_POLL_MS).contains(&interval_ms) {
                    let msg = format!(
                        "<{interval_ms}> is out of range ({MIN_IOREQ_POLL_MS} to {MAX_IOREQ_POLL_MS} ms)"
                    );
                    self.errs.prop(path, "ioreq-poll-ms", msg);
                }
            }
        }
    }

    /// Checks virtio device `i` against everything before it.
    fn virtio_device(&mut self, i: usize, images: &dyn Images) {
        let cfg = self.cfg;
        let d = &cfg.virtio[i];
        let before = &cfg.virtio[..i];
        let path = d.path.as_str();

        // Indices 0..n-1, no duplicates.
        let n = cfg.virtio.len();
        if let Some(o) = before.iter().find(|o| o.index == d.index) {
            let msg = format!("index {} is also the index of {}", d.index, o.path);
            self.errs.prop(path, "reg", msg);
        } else if d.index as usize >= n {
            let msg = format!(
                "index {} leaves a gap: the {n} virtio devices must have indices 0 to {}",
                d.index,
                n - 1
            );
            self.errs.prop(path, "reg", msg);
        }

        let (Some(fe), Some(be)) = (cfg.partition(d.frontend), cfg.partition(d.backend)) else {
            return; // parse resolved the labels; ids are checked on the partitions
        };
        if d.frontend == d.backend {
            let msg = format!(
                "\"{}\" is also the frontend: a partition cannot serve its own device",
                be.label
            );
            self.errs.prop(path, "backend", msg);
        }
        if be.ioreq.is_none() {
            let msg = format!(
                "\"{}\" ({}) has no ioreq-page (a backend needs its request page)",
                be.label, be.path
            );
            self.errs.prop(path, "backend", msg);
        }
        // Reported once, on its first device beyond the limit.
        let served = before.iter().filter(|o| o.backend == d.backend).count();
        if served == MAX_VIRTIO_PER_BACKEND {
            let all = cfg.virtio.iter().filter(|o| o.backend == d.backend).count();
            let msg = format!(
                "\"{}\" serves {all} virtio devices, more than {MAX_VIRTIO_PER_BACKEND} (IOREQ sync slots: the device's number on its backend * 8 + vCPU)",
                be.label
            );
            self.errs.prop(path, "backend", msg);
        }
        if fe.cpus.len() > MAX_FRONTEND_VCPUS {
            let msg = format!(
                "\"{}\" has {} vCPUs, more than the {MAX_FRONTEND_VCPUS} a virtio frontend may have (IOREQ sync slots: device * 8 + vCPU)",
                fe.label,
                fe.cpus.len()
            );
            self.errs.prop(path, "frontend", msg);
        }

        self.window(d, fe, before);

        if let Some(msg) = self.spi_problem(d.spi, cfg.partitions.len(), i) {
            self.errs.prop(path, "spi", msg);
        }

        match d.sharing {
            Sharing::Shared => self.shared_memory(d, fe, be, before),
            Sharing::Copy => {}
        }

        self.deadline(d, be);
        self.type_properties(d);
        self.disk(d, be, before, images);
        self.storage(d, be, before);
        self.net(d, before);
        if let Some(bounce) = d.bounce {
            self.bounce(d, bounce, be, before, images);
        }
    }

    /// `deadline-ms`: 1 to [`MAX_DEADLINE_MS`], and at least twice the backend's polling
    /// interval when it polls (else an access may time out before it looks).
    fn deadline(&mut self, d: &VirtioDevice, be: &Partition) {
        let path = d.path.as_str();
        if d.deadline_ms == 0 {
            self.errs.prop(path, "deadline-ms", "must be at least 1");
            return;
        }
        if d.deadline_ms > MAX_DEADLINE_MS {
            let msg = format!(
                "<{}> is more than {MAX_DEADLINE_MS} ms: a backend that slow is failed, not waited for",
                d.deadline_ms
            );
            self.errs.prop(path, "deadline-ms", msg);
            return;
        }
        // An out-of-range interval was reported on the backend.
        let Some(poll) = be
            .ioreq
            .and_then(|q| q.poll_ms())
            .filter(|ms| (MIN_IOREQ_POLL_MS..=MAX_IOREQ_POLL_MS).contains(ms))
        else {
            return;
        };
        if u64::from(d.deadline_ms) < 2 * u64::from(poll) {
            let msg = format!(
                "<{}> is less than twice ioreq-poll-ms <{poll}> of \"{}\" ({}): every access may time out before the backend looks at its request page (give at least <{}>)",
                d.deadline_ms,
                be.label,
                be.path,
                2 * u64::from(poll)
            );
            self.errs.prop(path, "deadline-ms", msg);
        }
    }

    /// The properties of one type, refused on the others: `loopback` only for
    /// `"console"`; `disk`, `disk-image`, `storage` and `read-only` only for
    /// `"blk"`; `mac` and `segment` only for `"net"`.
    fn type_properties(&mut self, d: &VirtioDevice) {
        let given = [
            (VirtioKind::Console, "loopback", d.loopback),
            (VirtioKind::Blk, "disk", d.disk.is_some()),
            (VirtioKind::Blk, "disk-image", d.disk_image.is_some()),
            (VirtioKind::Blk, "storage", d.storage.is_some()),
            (VirtioKind::Blk, "read-only", d.read_only),
            (VirtioKind::Net, "mac", d.mac.is_some()),
            (VirtioKind::Net, "segment", d.segment.is_some()),
        ];
        for (kind, property, _) in given
            .into_iter()
            .filter(|&(kind, _, given)| given && kind != d.kind)
        {
            let msg = format!(
                "is only for type \"{}\" (this device is \"{}\")",
                kind.name(),
                d.kind.name()
            );
            self.errs.prop(&d.path, property, msg);
        }
    }

    /// `disk` (a blk device's RAM disk in the backend's memory) and
    /// `disk-image` (loaded at its start), `disk-image` only with `disk`; the
    /// disk page-aligned, inside one of the backend's guest regions, clear of
    /// its image, guest DTB, initrd and request page and of the disks of its
    /// other devices; the image no larger than the disk.
    fn disk(
        &mut self,
        d: &VirtioDevice,
        be: &Partition,
        before: &[VirtioDevice],
        images: &dyn Images,
    ) {
        let path = d.path.as_str();
        if d.kind != VirtioKind::Blk {
            return; // refused by type_properties
        }
        let Some(r) = d.disk else {
            // parse requires disk or storage
            if let (Some(name), Some(st)) = (&d.disk_image, d.storage) {
                let msg = format!(
                    "\"{name}\" is only for a RAM disk (disk): this device serves storage {}, a physical virtio-blk transport, which keeps its own contents",
                    Range::from(st.region())
                );
                self.errs.prop(path, "disk-image", msg);
            }
            return;
        };
        if !self.backend_area(d, "disk", r, 0, be, before, images) {
            return;
        }

        if let Some(name) = &d.disk_image
            && let Some(size) = images.disk_image_size(d)
            && size > r.size
        {
            let msg = format!(
                "\"{name}\" ({}) is larger than disk {} ({})",
                Bytes(size),
                Range::from(r),
                Bytes(r.size)
            );
            self.errs.prop(path, "disk-image", msg);
        }
    }

    /// `window`: 0x200 bytes, 0x200-aligned, free in the frontend's address space.
    fn window(&mut self, d: &VirtioDevice, fe: &Partition, before: &[VirtioDevice]) {
        let path = d.path.as_str();
        let w = d.window;
        if w.size != VIRTIO_WINDOW_SIZE {
            let msg = format!(
                "{} has size {:#x} (a virtio-mmio window is {VIRTIO_WINDOW_SIZE:#x} bytes)",
                Range::from(w),
                w.size
            );
            self.errs.prop(path, "window", msg);
            return;
        }
        if !w.base.is_multiple_of(VIRTIO_WINDOW_SIZE) || w.base.checked_add(w.size).is_none() {
            let msg = format!("{} is not {VIRTIO_WINDOW_SIZE:#x}-aligned", Range::from(w));
            self.errs.prop(path, "window", msg);
            return;
        }
        // An overlap with the frontend's own request page (when it is a backend
        // too) was reported on its ioreq-page.
        let mut taken = self.guest_taken(fe);
        for o in before.iter().filter(|o| o.frontend == d.frontend) {
            taken.push(Taken {
                what: format!("{} window", o.path),
                range: o.window,
            });
        }
        taken.retain(|t| sane_small(&t.range));
        self.clash(path, "window", &w, "", &taken);
    }

    /// `bounce` of a copy-mode device: a backend guest range like a blk
    /// device's `disk`, clear of the device's own disk too, at least
    /// [`MIN_BOUNCE_SIZE`].
    fn bounce(
        &mut self,
        d: &VirtioDevice,
        r: Region,
        be: &Partition,
        before: &[VirtioDevice],
        images: &dyn Images,
    ) {
        self.backend_area(d, "bounce", r, MIN_BOUNCE_SIZE, be, before, images);
    }

    /// A range `r` of device `d` in its backend's memory (`property`: `disk` or
    /// `bounce`): page-aligned, at least `min_size` bytes, inside one of the
    /// backend's guest regions, clear of its image, guest DTB, initrd and
    /// request page, of the device's own other area and of the disks and bounce
    /// areas of its other devices. Returns false if it is not even a usable
    /// range in the backend's memory (then nothing more is said about it).
    #[allow(clippy::too_many_arguments)] // each names one input of the check
    fn backend_area(
        &mut self,
        d: &VirtioDevice,
        property: &str,
        r: Region,
        min_size: u64,
        be: &Partition,
        before: &[VirtioDevice],
        images: &dyn Images,
    ) -> bool {
        let path = d.path.as_str();
        if let Some(problem) = region_problem(r.base, r.size) {
            let msg = format!("{} {problem}", Range::from(r));
            self.errs.prop(path, property, msg);
            return false;
        }
        if r.size < min_size {
            let msg = format!(
                "{} is smaller than {} (64 KiB: the shadow virtqueues and the buffers in flight)",
                Range::from(r),
                Bytes(min_size)
            );
            self.errs.prop(path, property, msg);
            return false;
        }
        if !be.contains_ipa(r.base, r.size) {
            let msg = format!(
                "{} is not inside one guest memory region of the backend \"{}\" ({})",
                Range::from(r),
                be.label,
                be.path
            );
            self.errs.prop(path, property, msg);
            return false;
        }
        let mut taken: Vec<Taken> = payloads(be, images)
            .into_iter()
            .map(|(what, range)| Taken { what, range })
            .collect();
        if let Some(q) = be.ioreq {
            taken.push(Taken {
                what: format!("{} ioreq-page", be.path),
                range: q.region(),
            });
        }
        // A copy-mode blk device's bounce area is checked against its disk.
        if let (Some(disk), "bounce") = (d.disk, property) {
            taken.push(Taken {
                what: format!("{} disk", d.path),
                range: disk,
            });
        }
        taken.extend(backend_areas(before, d.backend));
        taken.retain(|t| sane_small(&t.range));
        self.clash(path, property, &r, "", &taken);
        true
    }

    /// `shared-region` (if given) and `shared-memory` of a shared-mode device:
    /// the frontend range inside one of its memory regions, mapped into the
    /// backend at an address free in the backend's address space.
    fn shared_memory(
        &mut self,
        d: &VirtioDevice,
        fe: &Partition,
        be: &Partition,
        before: &[VirtioDevice],
    ) {
        let path = d.path.as_str();
        if let Some(r) = d.shared_region
            && !self.shared_region(d, r, fe)
        {
            return; // the size of the mapping is unknown
        }
        let (Some(at), Some(shared)) = (d.shared_memory, self.cfg.shared_region(d)) else {
            return; // parse requires shared-memory; a frontend without memory is reported on it
        };
        let r = Region::new(at, shared.size);
        if let Some(problem) = region_problem(r.base, r.size) {
            let msg = format!(
                "{} ({}) {problem}",
                Range::from(r),
                shared_what(d, fe, shared)
            );
            self.errs.prop(path, "shared-memory", msg);
            return;
        }
        let mut taken = self.guest_taken(be);
        if let Some(q) = be.ioreq {
            taken.push(Taken {
                what: format!("{} ioreq-page", be.path),
                range: q.region(),
            });
        }
        for o in self.cfg.virtio.iter().filter(|o| o.frontend == be.id) {
            taken.push(Taken {
                what: format!("{} window", o.path),
                range: o.window,
            });
        }
        // Devices of one frontend on one backend share the mapping when they
        // name the same shared-region and shared-memory; any other overlap is a
        // clash.
        for o in before.iter().filter(|o| o.backend == d.backend) {
            let (Some(o_at), Some(o_shared)) = (o.shared_memory, self.cfg.shared_region(o)) else {
                continue; // a copy-mode device maps nothing of its frontend
            };
            if o.frontend == d.frontend && o_at == at {
                if o_shared == shared {
                    continue;
                }
                let msg = format!(
                    "{at:#x} is also the shared-memory of {} for another range ({} here, {} there): devices share a mapping only when shared-region and shared-memory are both equal",
                    o.path,
                    Range::from(shared),
                    Range::from(o_shared)
                );
                self.errs.prop(path, "shared-memory", msg);
                continue;
            }
            taken.push(Taken {
                what: format!("{} shared-memory", o.path),
                range: Region::new(o_at, o_shared.size),
            });
        }
        taken.retain(|t| sane_small(&t.range));
        self.clash(path, "shared-memory", &r, "", &taken);
    }

    /// `shared-region` `r`: page-aligned, not empty, inside one of the
    /// frontend's memory regions. Returns whether it is usable.
    fn shared_region(&mut self, d: &VirtioDevice, r: Region, fe: &Partition) -> bool {
        let path = d.path.as_str();
        if let Some(problem) = region_problem(r.base, r.size) {
            let msg = format!("{} {problem}", Range::from(r));
            self.errs.prop(path, "shared-region", msg);
            return false;
        }
        if !fe.contains_ipa(r.base, r.size) {
            let msg = format!(
                "{} is not inside one guest memory region of the frontend \"{}\" ({})",
                Range::from(r),
                fe.label,
                fe.path
            );
            self.errs.prop(path, "shared-region", msg);
            return false;
        }
        true
    }
}

/// What a shared-mode device shows its backend, for messages: the frontend's
/// `guest memory [..]` (the default) or the device's `shared-region [..]`.
fn shared_what(d: &VirtioDevice, fe: &Partition, shared: Region) -> String {
    if d.shared_region.is_some() {
        format!("{} shared-region {}", d.path, Range::from(shared))
    } else {
        format!("{} guest memory {}", fe.path, Range::from(shared))
    }
}

/// The disks and bounce areas of the devices of `before` that `backend` serves:
/// what a new disk or bounce area in its memory must not overlap.
fn backend_areas(before: &[VirtioDevice], backend: u32) -> Vec<Taken> {
    let mut v = Vec::new();
    for o in before.iter().filter(|o| o.backend == backend) {
        for (what, area) in [("disk", o.disk), ("bounce", o.bounce)] {
            if let Some(range) = area {
                v.push(Taken {
                    what: format!("{} {what}", o.path),
                    range,
                });
            }
        }
    }
    v
}

/// A range that can be compared: non-empty and not wrapping (windows are
/// smaller than a page, so [`sane`] is too strict for them).
fn sane_small(r: &Region) -> bool {
    r.size != 0 && r.base.checked_add(r.size).is_some()
}
