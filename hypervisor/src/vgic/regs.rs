//! GICD and GICR registers as a partition sees them, emulated on [`Vgic`], and the
//! trapped ICC_SGI1R_EL1 write. Every function returns a bit mask of the vCPUs
//! whose list registers must be looked at again (bit n = vCPU n).

use super::PRIVATE;
use super::model::{Irq, Vgic};

/// GICD_PIDR2 / GICR_PIDR2: architecture revision 3 (GICv3).
const PIDR2_GICV3: u64 = 0x3b;
/// GICD_IIDR / GICR_IIDR: implementer Arm.
const IIDR_ARM: u64 = 0x43b;
/// GICD_CTLR bits: EnableGrp1 (1), ARE (4, always 1), DS (6, single security state).
const CTLR_ENABLE_GRP1: u64 = 1 << 1;
const CTLR_ARE: u64 = 1 << 4;
const CTLR_DS: u64 = 1 << 6;

fn all(v: &Vgic) -> u64 {
    (1u64 << v.vcpus.len().min(63)) - 1
}

/// Reads a register holding one bit per INTID (for `vcpu`'s view of privates).
fn bits(v: &Vgic, vcpu: usize, first: u32, test: impl Fn(&Irq) -> bool) -> u64 {
    (0..32)
        .filter(|&b| v.irq(vcpu, first + b).is_some_and(&test))
        .fold(0, |r, b| r | 1 << b)
}

/// Applies `set` to every INTID whose bit is set in `value`.
fn set_bits(v: &mut Vgic, vcpu: usize, first: u32, value: u64, set: impl Fn(&mut Irq)) -> u64 {
    for b in (0..32).filter(|b| value >> b & 1 == 1) {
        if let Some(irq) = v.irq_mut(vcpu, first + b) {
            set(irq);
        }
    }
    if value as u32 != 0 { all(v) } else { 0 }
}

/// The bit-per-INTID registers shared by GICD (SPIs) and GICR SGI_base (privates):
/// `offset` relative to the frame, `first` the INTID of bit 0 of the word.
fn bit_register(
    v: &mut Vgic,
    vcpu: usize,
    offset: u64,
    first: u32,
    write: Option<u64>,
) -> Option<(u64, u64)> {
    let (read, update) = match offset & !0x7f {
        // IGROUPR: every visible interrupt is Group 1; writes ignored.
        0x080 => (bits(v, vcpu, first, |_| true), None),
        0x100 | 0x180 => {
            let read = bits(v, vcpu, first, |i| i.enabled);
            let enable = offset & !0x7f == 0x100;
            (
                read,
                write.map(|w| set_bits(v, vcpu, first, w, |i| i.enabled = enable)),
            )
        }
        0x200 => (
            bits(v, vcpu, first, Vgic::seen_pending),
            write.map(|w| set_bits(v, vcpu, first, w, |i| i.pending = true)),
        ),
        0x280 => (
            bits(v, vcpu, first, Vgic::seen_pending),
            write.map(|w| set_bits(v, vcpu, first, w, |i| i.pending = false)),
        ),
        // Active state lives in the list registers.
        0x300 | 0x380 => (bits(v, vcpu, first, Vgic::seen_active), None),
        _ => return None,
    };
    Some((read, update.unwrap_or(0)))
}

/// IPRIORITYR bytes starting at `intid`, `size` bytes.
fn priority(v: &mut Vgic, vcpu: usize, intid: u32, size: u8, write: Option<u64>) -> (u64, u64) {
    let mut read = 0;
    for i in 0..u32::from(size.min(8)) {
        if let Some(irq) = v.irq_mut(vcpu, intid + i) {
            if let Some(w) = write {
                irq.priority = (w >> (8 * i)) as u8;
            }
            read |= u64::from(irq.priority) << (8 * i);
        }
    }
    (read, 0)
}

/// ICFGR word `index` (16 INTIDs, 2 bits each; bit 1 = edge). SGIs stay edge.
fn config(v: &mut Vgic, vcpu: usize, index: u32, write: Option<u64>) -> (u64, u64) {
    let mut read = 0;
    for i in 0..16 {
        let intid = index * 16 + i;
        if let Some(irq) = v.irq_mut(vcpu, intid) {
            if let (Some(w), true) = (write, intid >= 16) {
                irq.edge = w >> (2 * i + 1) & 1 == 1;
            }
            read |= u64::from(irq.edge) << (2 * i + 1);
        }
    }
    (read, 0)
}

/// Whether reading the register at `offset` (in the distributor, or in a
/// redistributor's frames) shows pending or active state, which list registers hold.
pub fn reads_lr_state(dist: bool, offset: u64) -> bool {
    let bit_regs = 0x200..0x400;
    if dist {
        bit_regs.contains(&offset)
    } else {
        bit_regs.contains(&(offset.wrapping_sub(0x1_0000)))
    }
}

/// A distributor register access at `offset` (`write` = the value stored).
/// Returns (value read, vCPUs to update).
pub fn dist(v: &mut Vgic, offset: u64, size: u8, write: Option<u64>) -> (u64, u64) {
    match offset {
        0x0000 => {
            if let Some(w) = write {
                v.enabled = w & CTLR_ENABLE_GRP1 != 0;
                return (0, all(v));
            }
            (
                (u64::from(v.enabled) * CTLR_ENABLE_GRP1) | CTLR_ARE | CTLR_DS,
                0,
            )
        }
        // TYPER: ITLinesNumber as the hardware, 10 INTID bits, no LPIs.
        0x0004 => (
            (u64::from(v.lines / 32).saturating_sub(1) & 0x1f) | 9 << 19,
            0,
        ),
        0x0008 => (IIDR_ARM, 0),
        0x0080..=0x03ff => {
            let first = ((offset & 0x7f) / 4 * 32) as u32;
            if first < PRIVATE {
                // With affinity routing, privates live in the redistributors.
                return (0, 0);
            }
            bit_register(v, 0, offset, first, write).unwrap_or((0, 0))
        }
        0x0400..=0x07fb => {
            let intid = (offset - 0x400) as u32;
            if intid < PRIVATE {
                (0, 0)
            } else {
                priority(v, 0, intid, size, write)
            }
        }
        0x0c00..=0x0cff => {
            let index = ((offset - 0xc00) / 4) as u32;
            if index < 2 {
                (0, 0)
            } else {
                config(v, 0, index, write)
            }
        }
        0x6100..=0x7fdf => {
            let intid = ((offset - 0x6100) / 8) as u32 + PRIVATE;
            let high = offset % 8 == 4;
            let Some(spi) = v.spis.iter_mut().find(|s| s.intid == intid) else {
                return (0, 0);
            };
            let mask: u64 = 0xff_0000_80ff_ffff;
            if let Some(w) = write {
                spi.router = if size == 8 {
                    w & mask
                } else if high {
                    (spi.router & 0xffff_ffff) | (w << 32 & mask)
                } else {
                    (spi.router & !0xffff_ffff) | (w & mask & 0xffff_ffff)
                };
                return (0, all(v));
            }
            (if high { spi.router >> 32 } else { spi.router }, 0)
        }
        0xffe8 => (PIDR2_GICV3, 0),
        _ => (0, 0),
    }
}

/// A redistributor access by the guest to `vcpu`'s frames (RD_base at 0, SGI_base at
/// 0x10000). Returns (value read, vCPUs to update).
pub fn redist(v: &mut Vgic, vcpu: usize, offset: u64, size: u8, write: Option<u64>) -> (u64, u64) {
    let vcpus = v.vcpus.len();
    if vcpu >= vcpus {
        return (0, 0);
    }
    match offset {
        0x0004 => (IIDR_ARM, 0),
        0x0008 | 0x000c => {
            let last = if vcpu + 1 == vcpus { 1 << 4 } else { 0 };
            let typer = (vcpu as u64) << 32 | (vcpu as u64) << 8 | last;
            (if offset == 0x000c { typer >> 32 } else { typer }, 0)
        }
        0x0014 => {
            if let Some(w) = write {
                v.vcpus[vcpu].asleep = w & 0b10 != 0;
            }
            // ChildrenAsleep follows ProcessorSleep at once.
            (if v.vcpus[vcpu].asleep { 0b110 } else { 0 }, 0)
        }
        0xffe8 => (PIDR2_GICV3, 0),
        0x1_0080..=0x1_03ff if (offset & 0x7f) == 0 => {
            let (read, update) =
                bit_register(v, vcpu, offset - 0x1_0000, 0, write).unwrap_or((0, 0));
            // Updates of private interrupts concern this vCPU only.
            (read, update & (1 << vcpu))
        }
        0x1_0400..=0x1_041f => priority(v, vcpu, (offset - 0x1_0400) as u32, size, write),
        0x1_0c00 | 0x1_0c04 => config(v, vcpu, ((offset - 0x1_0c00) / 4) as u32, write),
        _ => (0, 0),
    }
}

/// A trapped write of ICC_SGI1R_EL1 by `from`: makes the SGI pending on every
/// targeted vCPU of the partition. Returns the vCPUs to update.
pub fn send_sgi(v: &mut Vgic, from: usize, value: u64) -> u64 {
    let intid = ((value >> 24) & 0xf) as u32;
    let targets: u64 = if value & (1 << 40) != 0 {
        all(v) & !(1 << from)
    } else {
        let upper_affinity = (value >> 16) & 0xff | (value >> 32) & 0xff | (value >> 48) & 0xff;
        if upper_affinity != 0 {
            0
        } else {
            let range = (value >> 44) & 0xf;
            let list = value & 0xffff;
            let mut t = 0;
            for b in (0..16).filter(|b| list >> b & 1 == 1) {
                let vcpu = range * 16 + b;
                if (vcpu as usize) < v.vcpus.len() {
                    t |= 1 << vcpu;
                }
            }
            t
        }
    };
    for vcpu in (0..v.vcpus.len()).filter(|&c| targets >> c & 1 == 1) {
        v.raise(vcpu, intid);
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vgic() -> Vgic {
        Vgic::new(2, 288, &[(34, false), (40, true)])
    }

    fn rd(v: &mut Vgic, off: u64) -> u64 {
        dist(v, off, 4, None).0
    }

    #[test]
    fn which_reads_need_list_register_state() {
        assert!(reads_lr_state(true, 0x204));
        assert!(reads_lr_state(true, 0x3fc));
        assert!(!reads_lr_state(true, 0x104));
        assert!(reads_lr_state(false, 0x1_0200));
        assert!(reads_lr_state(false, 0x1_0300));
        assert!(!reads_lr_state(false, 0x200));
        assert!(!reads_lr_state(false, 0x1_0100));
    }

    #[test]
    fn identification() {
        let mut v = vgic();
        assert_eq!(rd(&mut v, 0x0), CTLR_ARE | CTLR_DS);
        assert_eq!(rd(&mut v, 0x4) & 0x1f, 8, "288 lines: ITLinesNumber 8");
        assert_eq!(rd(&mut v, 0xffe8) >> 4 & 0xf, 3);
        dist(&mut v, 0x0, 4, Some(CTLR_ENABLE_GRP1));
        assert!(v.enabled);
        assert_eq!(redist(&mut v, 0, 0x8, 8, None).0, 0);
        assert_eq!(
            redist(&mut v, 1, 0x8, 8, None).0,
            1 << 32 | 1 << 8 | 1 << 4,
            "vCPU 1 is last"
        );
        assert_eq!(redist(&mut v, 1, 0xc, 4, None).0, 1);
        assert_eq!(redist(&mut v, 2, 0x8, 8, None).0, 0, "no vCPU 2");
    }

    #[test]
    fn foreign_spis_are_invisible() {
        let mut v = vgic();
        // SPI 35 (INTID 35) is not owned: every write is ignored, reads are zero.
        let word = 0x100 + 4; // ISENABLER1: INTIDs 32..63
        dist(&mut v, word, 4, Some(1 << 3));
        dist(&mut v, 0x200 + 4, 4, Some(1 << 3));
        dist(&mut v, 0x400 + 35, 1, Some(0x10));
        dist(&mut v, 0x6100 + 8 * 3, 8, Some(1));
        assert_eq!(rd(&mut v, word), 0);
        assert_eq!(rd(&mut v, 0x200 + 4), 0);
        assert_eq!(dist(&mut v, 0x400 + 35, 1, None).0, 0);
        assert_eq!(dist(&mut v, 0x6100 + 8 * 3, 8, None).0, 0);
        assert_eq!(
            rd(&mut v, 0x80 + 4),
            1 << 2 | 1 << 8,
            "groups show only owned SPIs"
        );
        // Owned SPI 34 works.
        dist(&mut v, word, 4, Some(1 << 2));
        assert_eq!(rd(&mut v, word), 1 << 2);
        dist(&mut v, 0x180 + 4, 4, Some(1 << 2));
        assert_eq!(rd(&mut v, word), 0);
    }

    #[test]
    fn priorities_configs_and_routes() {
        let mut v = vgic();
        dist(&mut v, 0x400 + 32, 4, Some(0xa0b0_c0d0));
        assert_eq!(
            dist(&mut v, 0x400 + 32, 4, None).0,
            0x00b0_0000,
            "only INTID 34 owned"
        );
        dist(&mut v, 0xc00 + 8, 4, Some(0b10 << 4));
        assert!(v.irq(0, 34).unwrap().edge);
        dist(&mut v, 0x6100 + 8 * 8, 4, Some(1));
        assert_eq!(v.spi_target(40), 1);
        dist(&mut v, 0x6100 + 8 * 8 + 4, 4, Some(0));
        assert_eq!(dist(&mut v, 0x6100 + 8 * 8, 8, None).0, 1);
        // Privates through the distributor are RAZ/WI (affinity routing).
        dist(&mut v, 0x100, 4, Some(u64::MAX));
        assert!(!v.irq(0, 0).unwrap().enabled);
    }

    #[test]
    fn redistributor_privates_are_per_vcpu() {
        let mut v = vgic();
        redist(&mut v, 1, 0x1_0100, 4, Some(1 << 27 | 1 << 1));
        assert_eq!(redist(&mut v, 1, 0x1_0100, 4, None).0, 1 << 27 | 1 << 1);
        assert_eq!(redist(&mut v, 0, 0x1_0100, 4, None).0, 0);
        redist(&mut v, 1, 0x1_0400 + 27, 1, Some(0x20));
        assert_eq!(v.irq(1, 27).unwrap().priority, 0x20);
        redist(&mut v, 0, 0x1_0c00, 4, Some(0));
        assert!(v.irq(0, 5).unwrap().edge, "SGIs stay edge-triggered");
        assert_eq!(redist(&mut v, 0, 0x14, 4, None).0, 0b110, "asleep at reset");
        redist(&mut v, 0, 0x14, 4, Some(0));
        assert_eq!(redist(&mut v, 0, 0x14, 4, None).0, 0);
    }

    #[test]
    fn sgis_reach_only_partition_vcpus() {
        let mut v = vgic();
        assert_eq!(send_sgi(&mut v, 0, 1 << 24 | 0b10), 0b10);
        assert!(v.irq(1, 1).unwrap().pending);
        assert!(!v.irq(0, 1).unwrap().pending);
        assert_eq!(
            send_sgi(&mut v, 1, 2 << 24 | 1 << 40),
            0b01,
            "IRM: all but self"
        );
        assert_eq!(
            send_sgi(&mut v, 0, 1 << 16 | 1),
            0,
            "Aff1 names no vCPU here"
        );
        assert_eq!(
            send_sgi(&mut v, 0, 1 << 44 | 1),
            0,
            "range 1: vCPU 16 does not exist"
        );
        assert_eq!(send_sgi(&mut v, 0, 0b100), 0, "vCPU 2 does not exist");
        assert_eq!(send_sgi(&mut v, 1, 0b10), 0b10, "self");
    }

    #[test]
    fn no_offset_or_size_panics() {
        let mut v = vgic();
        for off in (0..0x1_0000u64).step_by(1) {
            for size in [1u8, 2, 4, 8] {
                dist(&mut v, off, size, Some(u64::MAX));
                dist(&mut v, off, size, None);
            }
        }
        for off in (0..0x2_0000u64).step_by(3) {
            redist(&mut v, 0, off, 4, Some(u64::MAX));
            redist(&mut v, 1, off, 1, None);
        }
    }
}

#[cfg(test)]
mod burst_tests {
    use super::*;

    #[test]
    fn pending_view_includes_list_registers() {
        let mut v = Vgic::new(1, 288, &[]);
        dist(&mut v, 0, 4, Some(CTLR_ENABLE_GRP1));
        redist(&mut v, 0, 0x1_0100, 4, Some(0xffff));
        for sgi in 0..16 {
            send_sgi(&mut v, 0, sgi << 24 | 1);
            if let Some((intid, _)) = v.next_for_lr(0)
                && v.vcpus[0].irqs.iter().filter(|i| i.in_lr).count() < 4
            {
                v.to_lr(0, intid);
            }
        }
        assert_eq!(redist(&mut v, 0, 0x1_0200, 4, None).0, 0xffff);
    }
}
