//! [`validate`]: every check of docs/config.md "Checks" on a parsed [`Config`].
//!
//! Checks run in a fixed order: `/platform`, `/hypervisor`, then each partition
//! in tree order (id, label, CPUs, memory, devices, image, DTB, initrd), each
//! partition's IOREQ page and net uplink, each `/virtio` device in tree order, then
//! `/exit-policy`. A problem between two nodes (an overlap, a CPU or SPI given
//! twice) is reported once, on the later node, naming the earlier one.

mod net;
mod partition;
mod storage;
mod virtio;

use alloc::format;
use alloc::vec::Vec;

use ferry_abi::{MAX_CPUS, Region};

use crate::error::{Bytes, ConfigError, Errors, Range};
use crate::model::{Config, Partition, VirtioDevice};
use crate::{MAX_SPI, PAGE_SIZE};

/// The distributor view every partition sees at `gic-distributor` (GICv3: 64 KiB).
pub(crate) const GICD_VIEW: u64 = 0x1_0000;
/// The redistributor view of one vCPU, from `gic-redistributors` on (GICv3: the
/// RD_base and SGI_base frames, 128 KiB).
pub(crate) const GICR_VIEW: u64 = 0x2_0000;

/// What the validator needs to know about images: their sizes, or `None` if
/// missing. The tool looks at files; Ferry at boot at the pack's payloads.
pub trait Images {
    /// Size of `p`'s image, or `None` if there is none.
    fn image_size(&self, p: &Partition) -> Option<u64>;
    /// Size of `p`'s initrd, or `None` if there is none (only asked when
    /// `p.initrd` is set).
    fn initrd_size(&self, p: &Partition) -> Option<u64>;
    /// Size of virtio device `d`'s `disk-image`, or `None` if it is missing or
    /// not known (only asked when `d.disk_image` is set). The default knows
    /// none: then only `ferry pack`, which reads the file, checks that it fits
    /// in `disk`.
    fn disk_image_size(&self, d: &VirtioDevice) -> Option<u64> {
        let _ = d;
        None
    }
}

/// Checks `cfg` against every rule of docs/config.md "Checks" and returns every
/// problem found, in a deterministic order (empty: the config is good).
pub fn validate(cfg: &Config, images: &dyn Images) -> Vec<ConfigError> {
    let mut v = Validator {
        cfg,
        errs: Errors::default(),
    };
    v.platform();
    v.hypervisor();
    v.partitions(images);
    v.virtio(images);
    v.exit_policy();
    v.errs.0
}

/// Checks in progress.
pub(crate) struct Validator<'c> {
    pub cfg: &'c Config,
    pub errs: Errors,
}

/// Why a range is unusable as a region (zero size, wrapping, misaligned), if it is.
pub(crate) fn region_problem(base: u64, size: u64) -> Option<&'static str> {
    if size == 0 {
        Some("has size 0")
    } else if base.checked_add(size).is_none() {
        Some("wraps around the end of the address space")
    } else if !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        Some("is not 4 KiB-aligned (base and size must be multiples of 0x1000)")
    } else {
        None
    }
}

/// Whether `r` is a usable region (see [`region_problem`]).
pub(crate) fn sane(r: &Region) -> bool {
    region_problem(r.base, r.size).is_none()
}

/// Whether every byte of `r` lies in some region of `regions` (adjacent regions
/// join up).
pub(crate) fn covered(regions: &[Region], r: &Region) -> bool {
    let Some(end) = r.base.checked_add(r.size) else {
        return false;
    };
    let mut at = r.base;
    // Each step moves `at` to the end of a region holding it; a region can hold
    // `at` once at most, so this ends after `regions.len()` steps.
    for _ in 0..=regions.len() {
        if at >= end {
            return true;
        }
        match regions.iter().find(|m| m.contains(at)) {
            Some(m) => at = m.end(),
            None => return false,
        }
    }
    at >= end
}

impl Validator<'_> {
    /// Reports `r` (of `property` of `path`) if it is not a usable region;
    /// returns whether it is.
    pub(crate) fn check_region(&mut self, path: &str, property: &str, r: &Region) -> bool {
        match region_problem(r.base, r.size) {
            Some(problem) => {
                let msg = format!("{} {problem}", Range::from(*r));
                self.errs.prop(path, property, msg);
                false
            }
            None => true,
        }
    }

    fn platform(&mut self) {
        let p = &self.cfg.platform;
        let path = "/platform";
        if p.board.is_empty() {
            self.errs.prop(path, "board", "is empty");
        }
        if p.memory.is_empty() {
            self.errs.prop(path, "memory", "has no region");
        }
        for (i, r) in p.memory.iter().enumerate() {
            if !self.check_region(path, "memory", r) {
                continue;
            }
            if let Some(o) = p.memory[..i].iter().find(|o| sane(o) && o.overlaps(r)) {
                let msg = format!("{} overlaps {}", Range::from(*r), Range::from(*o));
                self.errs.prop(path, "memory", msg);
            }
        }
        if p.cpus == 0 {
            self.errs.prop(path, "cpus", "must be at least 1");
        } else if p.cpus as usize > MAX_CPUS {
            let msg = format!(
                "<{}> is more than Ferry supports (MAX_CPUS = {MAX_CPUS})",
                p.cpus
            );
            self.errs.prop(path, "cpus", msg);
        }
        for (name, r) in [
            ("gic-distributor", &p.gicd),
            ("gic-redistributors", &p.gicr),
            ("console", &p.console),
        ] {
            if !self.check_region(path, name, r) {
                continue;
            }
            if let Some(m) = p.memory.iter().find(|m| sane(m) && m.overlaps(r)) {
                let msg = format!(
                    "{} overlaps /platform memory {}",
                    Range::from(*r),
                    Range::from(*m)
                );
                self.errs.prop(path, name, msg);
            }
        }
        self.platform_frames();
        if let Some(spi) = p.console_spi.filter(|&s| s > MAX_SPI) {
            let msg = format!("SPI {spi} is out of range (0 to {MAX_SPI})");
            self.errs.prop(path, "console-spi", msg);
        }
    }

    /// The GIC distributor, the redistributors and the console do not overlap
    /// each other, and the distributor holds a partition's distributor view:
    /// every partition sees its emulated GIC views (and a PL011 console) at these
    /// addresses, and Ferry refuses at boot a partition whose emulated regions
    /// overlap (found by the `config_parse` fuzz target).
    fn platform_frames(&mut self) {
        let p = &self.cfg.platform;
        if sane(&p.gicd) && p.gicd.size < GICD_VIEW {
            let msg = format!(
                "{} is smaller than the distributor a partition sees ({})",
                Range::from(p.gicd),
                Bytes(GICD_VIEW)
            );
            self.errs.prop("/platform", "gic-distributor", msg);
        }
        let frames = [
            ("gic-distributor", p.gicd),
            ("gic-redistributors", p.gicr),
            ("console", p.console),
        ];
        for (i, (name, r)) in frames.iter().enumerate() {
            let earlier = frames[..i]
                .iter()
                .find(|(_, o)| sane(o) && sane(r) && o.overlaps(r));
            if let Some((other, o)) = earlier {
                let msg = format!(
                    "{} overlaps /platform {other} {}",
                    Range::from(*r),
                    Range::from(*o)
                );
                self.errs.prop("/platform", name, msg);
            }
        }
    }

    fn hypervisor(&mut self) {
        let r = self.cfg.hypervisor.memory;
        if self.check_region("/hypervisor", "memory", &r) && !covered(&self.cfg.platform.memory, &r)
        {
            let msg = format!("{} is outside /platform memory", Range::from(r));
            self.errs.prop("/hypervisor", "memory", msg);
        }
    }

    fn partitions(&mut self, images: &dyn Images) {
        if self.cfg.partitions.is_empty() {
            self.errs.node("/partitions", "has no partition");
        }
        for i in 0..self.cfg.partitions.len() {
            self.partition(i, images);
        }
    }

    fn exit_policy(&mut self) {
        if let Some(e) = &self.cfg.exit
            && e.watchdog_ms == Some(0)
        {
            self.errs
                .prop("/exit-policy", "watchdog-ms", "must be at least 1");
        }
    }
}
