//! The checks of one partition: id, label, CPUs, memory, devices, image, DTB, initrd.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ferry_abi::Region;

use super::{GICR_VIEW, Images, Validator, covered, region_problem, sane};
use crate::error::{Bytes, Range};
use crate::model::{Console, DMA_PROPERTY, Device, Partition};
use crate::{MAX_SPI, PL011_CLOCK_NODE, pl011_node_name};

/// Base names (before `@`) of the nodes `ferry pack` generates at the root of a
/// guest device tree; a passthrough device may not use them.
const GENERATED_NODES: [&str; 10] = [
    "memory",
    "cpus",
    "psci",
    "timer",
    "interrupt-controller",
    "chosen",
    "hypervisor",
    "aliases",
    "virtio_mmio",
    "ferry-backend",
];

impl Validator<'_> {
    /// Every check of partition `i`; problems shared with an earlier partition
    /// are reported here, naming that one.
    pub(super) fn partition(&mut self, i: usize, images: &dyn Images) {
        let cfg = self.cfg;
        let p = &cfg.partitions[i];
        let earlier = &cfg.partitions[..i];
        let path = p.path.as_str();

        // Ids 0..n-1, no duplicates.
        let n = cfg.partitions.len();
        if let Some(o) = earlier.iter().find(|o| o.id == p.id) {
            let msg = format!("id {} is also the id of {}", p.id, o.path);
            self.errs.prop(path, "reg", msg);
        } else if p.id as usize >= n {
            let msg = format!(
                "id {} leaves a gap: the {n} partitions must have ids 0 to {}",
                p.id,
                n - 1
            );
            self.errs.prop(path, "reg", msg);
        }

        // Labels: non-empty, unique.
        if p.label.is_empty() {
            self.errs.prop(path, "label", "is empty");
        } else if let Some(o) = earlier.iter().find(|o| o.label == p.label) {
            let msg = format!("\"{}\" is also the label of {}", p.label, o.path);
            self.errs.prop(path, "label", msg);
        }

        self.cpus(p, earlier);
        self.memory(p, earlier);
        self.console(p);
        for (d, dev) in p.devices.iter().enumerate() {
            self.device(p, dev, &p.devices[..d], earlier);
        }
        self.images(p, images);
    }

    fn cpus(&mut self, p: &Partition, earlier: &[Partition]) {
        let path = p.path.as_str();
        if p.cpus.is_empty() {
            self.errs.prop(path, "cpus", "has no CPU");
        }
        let count = self.cfg.platform.cpus;
        for (k, &cpu) in p.cpus.iter().enumerate() {
            if p.cpus[..k].contains(&cpu) {
                self.errs
                    .prop(path, "cpus", format!("CPU {cpu} is listed twice"));
            } else if cpu >= count {
                let msg = format!("CPU {cpu} does not exist (/platform cpus = <{count}>)");
                self.errs.prop(path, "cpus", msg);
            } else if let Some(o) = earlier.iter().find(|o| o.cpus.contains(&cpu)) {
                let msg = format!("CPU {cpu} is also used by {}", o.path);
                self.errs.prop(path, "cpus", msg);
            }
        }
        // Each vCPU sees its redistributor at gic-redistributors + n * 128 KiB.
        let gicr = self.cfg.platform.gicr;
        let views = p.cpus.len() as u64 * GICR_VIEW;
        if sane(&gicr) && views > gicr.size {
            let msg = format!(
                "{} vCPUs see {} of redistributors, more than /platform gic-redistributors {}",
                p.cpus.len(),
                Bytes(views),
                Range::from(gicr)
            );
            self.errs.prop(path, "cpus", msg);
        }
    }

    fn memory(&mut self, p: &Partition, earlier: &[Partition]) {
        let path = p.path.as_str();
        if p.memory.is_empty() {
            self.errs.prop(path, "memory", "has no region");
        }
        let hv = self.cfg.hypervisor.memory;
        for (k, r) in p.memory.iter().enumerate() {
            let problem = region_problem(r.ipa, r.size).or(region_problem(r.pa, r.size));
            if let Some(problem) = problem {
                let msg = format!(
                    "region {k} (guest {:#x}, host {:#x}, size {:#x}) {problem}",
                    r.ipa, r.pa, r.size
                );
                self.errs.prop(path, "memory", msg);
                continue;
            }
            let host = r.host();
            if !covered(&self.cfg.platform.memory, &host) {
                let msg = format!("{} is outside /platform memory", Range::from(host));
                self.errs.prop(path, "memory", msg);
            }
            if sane(&hv) && host.overlaps(&hv) {
                let msg = format!(
                    "{} overlaps /hypervisor memory {}",
                    Range::from(host),
                    Range::from(hv)
                );
                self.errs.prop(path, "memory", msg);
            }
            for o in earlier {
                let theirs = o.memory.iter().map(|m| m.host());
                if let Some(m) = theirs.filter(sane).find(|m| m.overlaps(&host)) {
                    let msg = format!(
                        "{} overlaps {} memory {}",
                        Range::from(host),
                        o.path,
                        Range::from(m)
                    );
                    self.errs.prop(path, "memory", msg);
                }
            }
            let guest = r.guest();
            let mine = p.memory[..k].iter().map(|m| m.guest());
            if let Some(m) = mine.filter(sane).find(|m| m.overlaps(&guest)) {
                let msg = format!(
                    "guest {} overlaps guest {}",
                    Range::from(guest),
                    Range::from(m)
                );
                self.errs.prop(path, "memory", msg);
            }
        }
    }

    /// An emulated PL011 console needs `/platform` `console-spi`, room at the console
    /// address in the guest's address space, and node names of its own.
    fn console(&mut self, p: &Partition) {
        if p.console != Console::Pl011 {
            return;
        }
        let path = p.path.as_str();
        let platform = &self.cfg.platform;
        if platform.console_spi.is_none() {
            let msg = "\"pl011\" needs /platform console-spi (the emulated UART's SPI)";
            self.errs.prop(path, "console", msg);
        }
        let uart = platform.console;
        if sane(&uart) {
            for m in p.memory.iter().map(|m| m.guest()).filter(sane) {
                if m.overlaps(&uart) {
                    let msg = format!(
                        "the emulated PL011 at {} overlaps guest memory {}",
                        Range::from(uart),
                        Range::from(m)
                    );
                    self.errs.prop(path, "console", msg);
                }
            }
        }
        let generated = [pl011_node_name(uart.base), PL011_CLOCK_NODE.into()];
        for d in p.devices.iter().filter(|d| generated.contains(&d.name)) {
            let msg = format!(
                "node name \"{}\" clashes with a node Ferry generates for the emulated PL011 console",
                d.name
            );
            self.errs.node(&d.path, msg);
        }
    }

    /// Checks device `dev` of `p`; `before` are `p`'s earlier devices.
    fn device(&mut self, p: &Partition, dev: &Device, before: &[Device], earlier: &[Partition]) {
        let path = dev.path.as_str();
        let base = dev.name.split('@').next().unwrap_or_default();
        if GENERATED_NODES.contains(&base) {
            let msg = format!(
                "node name \"{}\" clashes with a node Ferry generates in the guest device tree",
                dev.name
            );
            self.errs.node(path, msg);
        }
        let platform = &self.cfg.platform;
        let others = || earlier.iter().flat_map(|o| o.devices.iter());
        for r in &dev.reg {
            if !self.check_region(path, "reg", r) {
                continue;
            }
            let mut clash = |what: &str, with: &Region| {
                if sane(with) && with.overlaps(r) {
                    let msg = format!("{} overlaps {what} {}", Range::from(*r), Range::from(*with));
                    self.errs.prop(path, "reg", msg);
                }
            };
            for m in &platform.memory {
                clash("/platform memory", m);
            }
            clash("/platform console", &platform.console);
            clash("/platform gic-distributor", &platform.gicd);
            clash("/platform gic-redistributors", &platform.gicr);
            for m in &p.memory {
                clash(&format!("{} guest memory", p.path), &m.guest());
            }
            let given = before.iter().chain(others());
            for o in given {
                if let Some(m) = o.reg.iter().filter(|m| sane(m)).find(|m| m.overlaps(r)) {
                    let msg = format!(
                        "{} is also given to {} reg {}",
                        Range::from(*r),
                        o.path,
                        Range::from(*m)
                    );
                    self.errs.prop(path, "reg", msg);
                }
            }
        }
        self.dma(dev);
        for [kind, num, flags] in &dev.interrupts {
            if *kind != 0 {
                let msg = format!(
                    "<{kind} {num} {flags:#x}> is not an SPI (only SPIs, type 0, can be passed through)"
                );
                self.errs.prop(path, "interrupts", msg);
            } else if *num > MAX_SPI {
                let msg = format!("SPI {num} is out of range (0 to {MAX_SPI})");
                self.errs.prop(path, "interrupts", msg);
            } else if platform.console_spi == Some(*num) {
                let msg = format!(
                    "SPI {num} is /platform console-spi (the emulated PL011 consoles' interrupt)"
                );
                self.errs.prop(path, "interrupts", msg);
            } else if let Some(o) = others().find(|o| o.spis.contains(num)) {
                let msg = format!("SPI {num} is also given to {}", o.path);
                self.errs.prop(path, "interrupts", msg);
            }
        }
    }

    /// A DMA master is passed through only with `dma = "unconfined"`: without an
    /// SMMU its DMA reaches all of memory (docs/passthrough.md).
    fn dma(&mut self, dev: &Device) {
        let path = dev.path.as_str();
        match dev.property(DMA_PROPERTY) {
            None => {}
            Some(_) if dev.dma_unconfined() => return,
            Some(_) => {
                let msg = "must be \"unconfined\" (the only value: it accepts a DMA master Ferry cannot confine)";
                self.errs.prop(path, DMA_PROPERTY, msg);
                return;
            }
        }
        if let Some(why) = dev.dma_master() {
            let msg = format!(
                "is a DMA master ({why}); without an SMMU, Ferry cannot confine its DMA to the partition's memory: it could read and write any partition's and Ferry's. To pass it through anyway, acknowledge that with dma = \"unconfined\""
            );
            self.errs.node(path, msg);
        }
    }

    fn images(&mut self, p: &Partition, images: &dyn Images) {
        let path = p.path.as_str();
        let dtb = p.dtb_region();
        let dtb_ok = dtb_region(p).is_some();
        if !dtb_ok {
            let msg = format!(
                "{} (room for the guest DTB) is outside guest memory",
                Range::from(dtb)
            );
            self.errs.prop(path, "dtb-address", msg);
        }
        if !p.dtb_address.is_multiple_of(8) {
            let msg = format!("{:#x} is not 8-byte aligned", p.dtb_address);
            self.errs.prop(path, "dtb-address", msg);
        }

        let load_ok = p.contains_ipa(p.load_address, 0);
        if !load_ok {
            let msg = format!("{:#x} is outside guest memory", p.load_address);
            self.errs.prop(path, "load-address", msg);
        }
        let mut image = None;
        match images.image_size(p) {
            None => {
                let msg = format!("\"{}\" is missing", p.image);
                self.errs.prop(path, "image", msg);
            }
            Some(size) if load_ok && image_region(p, size).is_none() => {
                let msg = format!(
                    "\"{}\" ({} at {:#x}) does not fit in guest memory",
                    p.image,
                    Bytes(size),
                    p.load_address
                );
                self.errs.prop(path, "image", msg);
            }
            Some(size) if load_ok => {
                let r = Region::new(p.load_address, size);
                if dtb_ok && r.overlaps(&dtb) {
                    let msg = format!(
                        "\"{}\" at {} overlaps the guest DTB {}",
                        p.image,
                        Range::from(r),
                        Range::from(dtb)
                    );
                    self.errs.prop(path, "image", msg);
                }
                image = Some(r);
            }
            Some(_) => {}
        }
        if !p.contains_ipa(p.entry, 0) {
            let msg = format!("{:#x} is outside guest memory", p.entry);
            self.errs.prop(path, "entry", msg);
        }

        let Some(name) = &p.initrd else { return };
        let Some(size) = images.initrd_size(p) else {
            let msg = format!("\"{name}\" is missing");
            self.errs.prop(path, "initrd", msg);
            return;
        };
        let r = Region::new(p.initrd_address_for(size), size);
        let (property, placed) = match p.initrd_address {
            Some(_) => ("initrd-address", ""),
            None => ("initrd", " (placed just below the guest DTB)"),
        };
        if initrd_region(p, size).is_none() {
            let msg = format!(
                "\"{name}\" at {}{placed} is outside guest memory",
                Range::from(r)
            );
            self.errs.prop(path, property, msg);
            return;
        }
        for (what, other) in [
            ("the image", image),
            ("the guest DTB", dtb_ok.then_some(dtb)),
        ] {
            if let Some(o) = other.filter(|o| o.overlaps(&r)) {
                let msg = format!(
                    "\"{name}\" at {} overlaps {what} {}",
                    Range::from(r),
                    Range::from(o)
                );
                self.errs.prop(path, property, msg);
            }
        }
    }
}

/// The guest range of `p`'s image of `size` bytes at `load-address`, if it lies
/// inside one guest region.
fn image_region(p: &Partition, size: u64) -> Option<Region> {
    p.contains_ipa(p.load_address, size)
        .then(|| Region::new(p.load_address, size))
}

/// The guest range reserved for `p`'s guest DTB, if it lies inside one guest region.
fn dtb_region(p: &Partition) -> Option<Region> {
    let r = p.dtb_region();
    p.contains_ipa(r.base, r.size).then_some(r)
}

/// The guest range of `p`'s initrd of `size` bytes, if it lies inside one guest
/// region.
fn initrd_region(p: &Partition, size: u64) -> Option<Region> {
    let r = Region::new(p.initrd_address_for(size), size);
    p.contains_ipa(r.base, r.size).then_some(r)
}

/// What `p`'s guest memory holds besides free RAM, as far as known: its image
/// (when its size is known), the room for its guest DTB and its initrd (when its
/// size is known), each only when it lies inside one guest region (the other
/// cases are reported on `p`). Named for messages: `<path> image "<file>"`.
pub(super) fn payloads(p: &Partition, images: &dyn Images) -> Vec<(String, Region)> {
    let mut v = Vec::new();
    if let Some(r) = images.image_size(p).and_then(|size| image_region(p, size)) {
        v.push((format!("{} image \"{}\"", p.path, p.image), r));
    }
    if let Some(r) = dtb_region(p) {
        v.push((format!("{} guest DTB", p.path), r));
    }
    if let Some(name) = &p.initrd
        && let Some(r) = images
            .initrd_size(p)
            .and_then(|size| initrd_region(p, size))
    {
        v.push((format!("{} initrd \"{name}\"", p.path), r));
    }
    v
}
