//! GICD and GICR registers as a partition sees them, emulated on [`Vgic`], and the
//! trapped ICC_SGI1R_EL1 write. Every function returns a bit mask of the vCPUs
//! whose list registers must be looked at again (bit n = vCPU n).

use ferry_platform::gicv3::offsets::{
    GICD_CTLR, GICD_ICACTIVER, GICD_ICACTIVER_END, GICD_ICENABLER, GICD_ICFGR, GICD_ICFGR_END,
    GICD_ICPENDR, GICD_IGROUPR, GICD_IGROUPR_END, GICD_IIDR, GICD_IPRIORITYR, GICD_IPRIORITYR_END,
    GICD_IROUTER, GICD_IROUTER_END, GICD_ISACTIVER, GICD_ISENABLER, GICD_ISPENDR, GICD_PIDR2,
    GICD_TYPER, GICR_ICACTIVER0, GICR_ICENABLER0, GICR_ICFGR0, GICR_ICFGR1, GICR_ICPENDR0,
    GICR_IGROUPR0, GICR_IIDR, GICR_IPRIORITYR, GICR_IPRIORITYR_END, GICR_ISACTIVER0,
    GICR_ISENABLER0, GICR_ISPENDR0, GICR_PIDR2, GICR_SGI_BASE, GICR_TYPER, GICR_WAKER,
};

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

/// Bytes of one bit-per-INTID register array (32 words, 1024 INTIDs); each array
/// starts on a multiple of it.
const BIT_ARRAY: u64 = GICD_IGROUPR_END - GICD_IGROUPR;
/// GICR_TYPER's upper word (the affinity), read on its own.
const GICR_TYPER_HIGH: u64 = GICR_TYPER + 4;
/// The SGI_base registers at their offsets in a redistributor's frames.
const SGI_IGROUPR0: u64 = GICR_SGI_BASE + GICR_IGROUPR0;
const SGI_ICACTIVER0: u64 = GICR_SGI_BASE + GICR_ICACTIVER0;
const SGI_IPRIORITYR: u64 = GICR_SGI_BASE + GICR_IPRIORITYR;
const SGI_IPRIORITYR_END: u64 = GICR_SGI_BASE + GICR_IPRIORITYR_END;
const SGI_ICFGR0: u64 = GICR_SGI_BASE + GICR_ICFGR0;
const SGI_ICFGR1: u64 = GICR_SGI_BASE + GICR_ICFGR1;

// `bit_register` serves both frames: SGI_base's word-0 registers sit where the
// distributor's arrays start, and masking with `BIT_ARRAY` finds the array.
const _: () = assert!(
    GICR_IGROUPR0 == GICD_IGROUPR
        && GICR_ISENABLER0 == GICD_ISENABLER
        && GICR_ICENABLER0 == GICD_ICENABLER
        && GICR_ISPENDR0 == GICD_ISPENDR
        && GICR_ICPENDR0 == GICD_ICPENDR
        && GICR_ISACTIVER0 == GICD_ISACTIVER
        && GICR_ICACTIVER0 == GICD_ICACTIVER
        && BIT_ARRAY.is_power_of_two()
        && GICD_IGROUPR.is_multiple_of(BIT_ARRAY)
        && GICD_ICACTIVER_END - GICD_IGROUPR == 7 * BIT_ARRAY
);

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
    let array = offset & !(BIT_ARRAY - 1);
    let (read, update) = match array {
        // IGROUPR: every visible interrupt is Group 1; writes ignored.
        GICD_IGROUPR => (bits(v, vcpu, first, |_| true), None),
        GICD_ISENABLER | GICD_ICENABLER => {
            let read = bits(v, vcpu, first, |i| i.enabled);
            let enable = array == GICD_ISENABLER;
            (
                read,
                write.map(|w| set_bits(v, vcpu, first, w, |i| i.enabled = enable)),
            )
        }
        GICD_ISPENDR => (
            bits(v, vcpu, first, Vgic::seen_pending),
            write.map(|w| set_bits(v, vcpu, first, w, |i| i.pending = true)),
        ),
        GICD_ICPENDR => (
            bits(v, vcpu, first, Vgic::seen_pending),
            write.map(|w| set_bits(v, vcpu, first, w, |i| i.pending = false)),
        ),
        // Active state lives in the list registers.
        GICD_ISACTIVER | GICD_ICACTIVER => (bits(v, vcpu, first, Vgic::seen_active), None),
        _ => return None,
    };
    Some((read, update.unwrap_or(0)))
}

/// IPRIORITYR bytes starting at `intid`, `size` bytes, for INTIDs below `end`
/// (a redistributor's frame holds the privates only). The registers are byte- or
/// word-accessible (GICv3 12.1.6): any other size reads as zero and is ignored.
fn priority(
    v: &mut Vgic,
    vcpu: usize,
    (intid, end): (u32, u32),
    size: u8,
    write: Option<u64>,
) -> (u64, u64) {
    if !matches!(size, 1 | 4) || intid.saturating_add(u32::from(size)) > end {
        return (0, 0);
    }
    let mut read = 0;
    for i in 0..u32::from(size) {
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
    // ISPENDR to ICACTIVER, at the same offsets in the distributor and SGI_base.
    let bit_regs = GICD_ISPENDR..GICD_ICACTIVER_END;
    if dist {
        bit_regs.contains(&offset)
    } else {
        bit_regs.contains(&(offset.wrapping_sub(GICR_SGI_BASE)))
    }
}

/// Whether a `size`-byte access at `offset` is one the GICv3 architecture defines
/// there (12.1.6: naturally aligned words everywhere, bytes in the priority
/// registers, doublewords in the 64-bit registers `doubleword`). Any other access
/// reads as zero and is ignored: a byte store to an enable register must not act
/// as a store to the word's low byte.
fn size_ok(offset: u64, size: u8, bytes: &core::ops::Range<u64>, doubleword: bool) -> bool {
    let aligned = size != 0 && offset.is_multiple_of(u64::from(size));
    aligned
        && match size {
            4 => true,
            1 => bytes.contains(&offset),
            8 => doubleword,
            _ => false,
        }
}

/// A distributor register access at `offset` (`write` = the value stored).
/// Returns (value read, vCPUs to update).
pub fn dist(v: &mut Vgic, offset: u64, size: u8, write: Option<u64>) -> (u64, u64) {
    let doubleword = (GICD_IROUTER..GICD_IROUTER_END).contains(&offset);
    if !size_ok(
        offset,
        size,
        &(GICD_IPRIORITYR..GICD_IPRIORITYR_END),
        doubleword,
    ) {
        return (0, 0);
    }
    match offset {
        GICD_CTLR => {
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
        GICD_TYPER => (
            (u64::from(v.lines / 32).saturating_sub(1) & 0x1f) | 9 << 19,
            0,
        ),
        GICD_IIDR => (IIDR_ARM, 0),
        GICD_IGROUPR..GICD_ICACTIVER_END => {
            let first = ((offset & (BIT_ARRAY - 1)) / 4 * 32) as u32;
            if first < PRIVATE {
                // With affinity routing, privates live in the redistributors.
                return (0, 0);
            }
            bit_register(v, 0, offset, first, write).unwrap_or((0, 0))
        }
        GICD_IPRIORITYR..GICD_IPRIORITYR_END => {
            let intid = (offset - GICD_IPRIORITYR) as u32;
            if intid < PRIVATE {
                (0, 0)
            } else {
                priority(v, 0, (intid, v.lines), size, write)
            }
        }
        GICD_ICFGR..GICD_ICFGR_END => {
            let index = ((offset - GICD_ICFGR) / 4) as u32;
            if index < 2 {
                (0, 0)
            } else {
                config(v, 0, index, write)
            }
        }
        GICD_IROUTER..GICD_IROUTER_END => {
            let intid = ((offset - GICD_IROUTER) / 8) as u32 + PRIVATE;
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
        GICD_PIDR2 => (PIDR2_GICV3, 0),
        _ => (0, 0),
    }
}

/// A redistributor access by the guest to `vcpu`'s frames (RD_base at 0, SGI_base at
/// [`GICR_SGI_BASE`]). Returns (value read, vCPUs to update).
pub fn redist(v: &mut Vgic, vcpu: usize, offset: u64, size: u8, write: Option<u64>) -> (u64, u64) {
    let vcpus = v.vcpus.len();
    if vcpu >= vcpus
        || !size_ok(
            offset,
            size,
            &(SGI_IPRIORITYR..SGI_IPRIORITYR_END),
            offset == GICR_TYPER,
        )
    {
        return (0, 0);
    }
    match offset {
        GICR_IIDR => (IIDR_ARM, 0),
        GICR_TYPER | GICR_TYPER_HIGH => {
            let last = if vcpu + 1 == vcpus { 1 << 4 } else { 0 };
            let typer = (vcpu as u64) << 32 | (vcpu as u64) << 8 | last;
            let word = if offset == GICR_TYPER_HIGH {
                typer >> 32
            } else {
                typer
            };
            (word, 0)
        }
        GICR_WAKER => {
            if let Some(w) = write {
                v.vcpus[vcpu].asleep = w & 0b10 != 0;
            }
            // ChildrenAsleep follows ProcessorSleep at once.
            (if v.vcpus[vcpu].asleep { 0b110 } else { 0 }, 0)
        }
        GICR_PIDR2 => (PIDR2_GICV3, 0),
        // Word 0 of each bit-per-INTID array: the privates.
        SGI_IGROUPR0..=SGI_ICACTIVER0 if offset & (BIT_ARRAY - 1) == 0 => {
            let (read, update) =
                bit_register(v, vcpu, offset - GICR_SGI_BASE, 0, write).unwrap_or((0, 0));
            // Updates of private interrupts concern this vCPU only.
            (read, update & (1 << vcpu))
        }
        SGI_IPRIORITYR..SGI_IPRIORITYR_END => priority(
            v,
            vcpu,
            ((offset - SGI_IPRIORITYR) as u32, PRIVATE),
            size,
            write,
        ),
        SGI_ICFGR0 | SGI_ICFGR1 => config(v, vcpu, ((offset - SGI_ICFGR0) / 4) as u32, write),
        _ => (0, 0),
    }
}

/// A trapped write of ICC_SGI1R_EL1 by `from`: makes the SGI pending on every
/// targeted vCPU of the partition. Returns the vCPUs to update: those where it
/// newly became pending and deliverable (an SGI storm costs the sender).
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
    let mut update = 0;
    for vcpu in (0..v.vcpus.len()).filter(|&c| targets >> c & 1 == 1) {
        if v.raise(vcpu, intid).is_some() {
            update |= 1 << vcpu;
        }
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_platform::gicv3::offsets::{GICD_ICACTIVER_END, GICD_SIZE, GICR_SIZE};

    /// An SGI_base register at its offset in a redistributor's frames.
    fn sgi(offset: u64) -> u64 {
        GICR_SGI_BASE + offset
    }

    fn vgic() -> Vgic {
        Vgic::new(2, 288, &[(34, false), (40, true)])
    }

    fn rd(v: &mut Vgic, off: u64) -> u64 {
        dist(v, off, 4, None).0
    }

    #[test]
    fn which_reads_need_list_register_state() {
        assert!(reads_lr_state(true, GICD_ISPENDR + 4));
        assert!(reads_lr_state(true, GICD_ICACTIVER_END - 4));
        assert!(!reads_lr_state(true, GICD_ISENABLER + 4));
        assert!(reads_lr_state(false, sgi(GICR_ISPENDR0)));
        assert!(reads_lr_state(false, sgi(GICR_ISACTIVER0)));
        assert!(
            !reads_lr_state(false, GICR_ISPENDR0),
            "RD_base, not SGI_base"
        );
        assert!(!reads_lr_state(false, sgi(GICR_ISENABLER0)));
    }

    #[test]
    fn identification() {
        let mut v = vgic();
        assert_eq!(rd(&mut v, GICD_CTLR), CTLR_ARE | CTLR_DS);
        assert_eq!(
            rd(&mut v, GICD_TYPER) & 0x1f,
            8,
            "288 lines: ITLinesNumber 8"
        );
        assert_eq!(rd(&mut v, GICD_PIDR2) >> 4 & 0xf, 3);
        dist(&mut v, GICD_CTLR, 4, Some(CTLR_ENABLE_GRP1));
        assert!(v.enabled);
        assert_eq!(redist(&mut v, 0, GICR_TYPER, 8, None).0, 0);
        assert_eq!(
            redist(&mut v, 1, GICR_TYPER, 8, None).0,
            1 << 32 | 1 << 8 | 1 << 4,
            "vCPU 1 is last"
        );
        assert_eq!(redist(&mut v, 1, GICR_TYPER_HIGH, 4, None).0, 1);
        assert_eq!(redist(&mut v, 2, GICR_TYPER, 8, None).0, 0, "no vCPU 2");
    }

    #[test]
    fn foreign_spis_are_invisible() {
        let mut v = vgic();
        // SPI 35 (INTID 35) is not owned: every write is ignored, reads are zero.
        let word = GICD_ISENABLER + 4; // ISENABLER1: INTIDs 32..63
        dist(&mut v, word, 4, Some(1 << 3));
        dist(&mut v, GICD_ISPENDR + 4, 4, Some(1 << 3));
        dist(&mut v, GICD_IPRIORITYR + 35, 1, Some(0x10));
        dist(&mut v, GICD_IROUTER + 8 * 3, 8, Some(1));
        assert_eq!(rd(&mut v, word), 0);
        assert_eq!(rd(&mut v, GICD_ISPENDR + 4), 0);
        assert_eq!(dist(&mut v, GICD_IPRIORITYR + 35, 1, None).0, 0);
        assert_eq!(dist(&mut v, GICD_IROUTER + 8 * 3, 8, None).0, 0);
        assert_eq!(
            rd(&mut v, GICD_IGROUPR + 4),
            1 << 2 | 1 << 8,
            "groups show only owned SPIs"
        );
        // Owned SPI 34 works.
        dist(&mut v, word, 4, Some(1 << 2));
        assert_eq!(rd(&mut v, word), 1 << 2);
        dist(&mut v, GICD_ICENABLER + 4, 4, Some(1 << 2));
        assert_eq!(rd(&mut v, word), 0);
    }

    #[test]
    fn priorities_configs_and_routes() {
        let mut v = vgic();
        dist(&mut v, GICD_IPRIORITYR + 32, 4, Some(0xa0b0_c0d0));
        assert_eq!(
            dist(&mut v, GICD_IPRIORITYR + 32, 4, None).0,
            0x00b0_0000,
            "only INTID 34 owned"
        );
        dist(&mut v, GICD_ICFGR + 8, 4, Some(0b10 << 4));
        assert!(v.irq(0, 34).unwrap().edge);
        dist(&mut v, GICD_IROUTER + 8 * 8, 4, Some(1));
        assert_eq!(v.spi_target(40), 1);
        dist(&mut v, GICD_IROUTER + 8 * 8 + 4, 4, Some(0));
        assert_eq!(dist(&mut v, GICD_IROUTER + 8 * 8, 8, None).0, 1);
        // Privates through the distributor are RAZ/WI (affinity routing).
        dist(&mut v, GICD_ISENABLER, 4, Some(u64::MAX));
        assert!(!v.irq(0, 0).unwrap().enabled);
    }

    #[test]
    fn priority_accesses_stay_in_their_frame_and_size() {
        let mut v = vgic();
        // 8 bytes at the redistributor's last priority word would cover INTIDs
        // 28..36: it must not reach SPI 34 (the audit's finding); 8-byte accesses
        // to a word register are RAZ/WI.
        redist(&mut v, 0, sgi(GICR_IPRIORITYR + 28), 8, Some(u64::MAX));
        assert_eq!(v.irq(0, 34).unwrap().priority, 0, "SPI reached from GICR");
        assert_eq!(v.irq(0, 28).unwrap().priority, 0, "8-byte write ignored");
        assert_eq!(redist(&mut v, 0, sgi(GICR_IPRIORITYR + 28), 8, None).0, 0);
        // Bytes and words work; a word may not run past INTID 31.
        redist(&mut v, 0, sgi(GICR_IPRIORITYR + 28), 4, Some(0x8070_6050));
        assert_eq!(v.irq(0, 31).unwrap().priority, 0x80);
        redist(&mut v, 0, sgi(GICR_IPRIORITYR + 30), 4, Some(u64::MAX));
        assert_eq!(v.irq(0, 34).unwrap().priority, 0, "word past the privates");
        redist(&mut v, 0, sgi(GICR_IPRIORITYR + 31), 1, Some(0x11));
        assert_eq!(v.irq(0, 31).unwrap().priority, 0x11);
        // The distributor: 2-byte and 8-byte accesses are ignored too.
        dist(&mut v, GICD_IPRIORITYR + 32, 8, Some(u64::MAX));
        dist(&mut v, GICD_IPRIORITYR + 34, 2, Some(u64::MAX));
        assert_eq!(v.irq(0, 34).unwrap().priority, 0);
    }

    #[test]
    fn wrong_sized_accesses_change_nothing() {
        // The hostile suite's gic-wrong-size-other: a byte store to GICD_ISENABLER1 + 1
        // (INTIDs 40-47) must not enable INTID 34, a byte store to GICD_CTLR must not
        // clear EnableGrp1, a halfword store to GICR_WAKER must not wake it.
        let mut v = vgic();
        dist(&mut v, GICD_CTLR, 4, Some(CTLR_ENABLE_GRP1));
        dist(&mut v, GICD_ISENABLER + 4 + 1, 1, Some(0xff));
        assert!(!v.irq(0, 34).unwrap().enabled);
        dist(&mut v, GICD_ISENABLER + 4, 2, Some(0xffff));
        assert!(!v.irq(0, 34).unwrap().enabled);
        dist(&mut v, GICD_CTLR, 1, Some(0));
        assert!(v.enabled, "byte store to CTLR ignored");
        assert_eq!(dist(&mut v, GICD_CTLR, 1, None).0, 0, "and reads as zero");
        redist(&mut v, 0, GICR_WAKER, 2, Some(0));
        assert_eq!(
            redist(&mut v, 0, GICR_WAKER, 4, None).0,
            0b110,
            "still asleep"
        );
        // Misaligned words, and doublewords outside the 64-bit registers.
        dist(&mut v, GICD_ISENABLER + 4 + 2, 4, Some(u64::MAX));
        dist(&mut v, GICD_ISENABLER + 8, 8, Some(u64::MAX));
        assert!(!v.irq(0, 34).unwrap().enabled && !v.irq(0, 40).unwrap().enabled);
        // What the architecture defines still works.
        dist(&mut v, GICD_ISENABLER + 4, 4, Some(1 << 2));
        assert!(v.irq(0, 34).unwrap().enabled);
        dist(&mut v, GICD_IROUTER + 8 * 8, 8, Some(1));
        assert_eq!(v.spi_target(40), 1);
        assert_ne!(redist(&mut v, 1, GICR_TYPER, 8, None).0, 0);
        redist(&mut v, 0, sgi(GICR_IPRIORITYR + 3), 1, Some(0x40));
        assert_eq!(v.irq(0, 3).unwrap().priority, 0x40);
    }

    #[test]
    fn redistributor_privates_are_per_vcpu() {
        let mut v = vgic();
        let isenabler0 = sgi(GICR_ISENABLER0);
        redist(&mut v, 1, isenabler0, 4, Some(1 << 27 | 1 << 1));
        assert_eq!(redist(&mut v, 1, isenabler0, 4, None).0, 1 << 27 | 1 << 1);
        assert_eq!(redist(&mut v, 0, isenabler0, 4, None).0, 0);
        redist(&mut v, 1, sgi(GICR_IPRIORITYR) + 27, 1, Some(0x20));
        assert_eq!(v.irq(1, 27).unwrap().priority, 0x20);
        redist(&mut v, 0, sgi(GICR_ICFGR0), 4, Some(0));
        assert!(v.irq(0, 5).unwrap().edge, "SGIs stay edge-triggered");
        assert_eq!(
            redist(&mut v, 0, GICR_WAKER, 4, None).0,
            0b110,
            "asleep at reset"
        );
        redist(&mut v, 0, GICR_WAKER, 4, Some(0));
        assert_eq!(redist(&mut v, 0, GICR_WAKER, 4, None).0, 0);
    }

    #[test]
    fn sgis_reach_only_partition_vcpus() {
        let mut v = vgic();
        v.enabled = true;
        for (vcpu, intid) in [(0, 1), (1, 1), (0, 2), (1, 2)] {
            v.irq_mut(vcpu, intid).unwrap().enabled = true;
        }
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
        assert_eq!(send_sgi(&mut v, 1, 2 << 24 | 0b10), 0b10, "self");
    }

    #[test]
    fn an_sgi_storm_costs_the_sender() {
        let mut v = vgic();
        v.enabled = true;
        v.irq_mut(1, 3).unwrap().enabled = true;
        assert_eq!(send_sgi(&mut v, 0, 3 << 24 | 0b10), 0b10, "news: update");
        for _ in 0..1000 {
            assert_eq!(send_sgi(&mut v, 0, 3 << 24 | 0b10), 0, "already pending");
        }
        v.irq_mut(1, 3).unwrap().pending = false;
        assert_eq!(
            send_sgi(&mut v, 0, 3 << 24 | 0b10),
            0b10,
            "taken: news again"
        );
        // Disabled: pending is kept, nobody is disturbed; enabling updates all.
        assert_eq!(send_sgi(&mut v, 0, 4 << 24 | 0b10), 0);
        assert!(v.irq(1, 4).unwrap().pending);
        let (_, update) = redist(&mut v, 1, sgi(GICR_ISENABLER0), 4, Some(1 << 4));
        assert_eq!(update, 0b10);
        // The distributor disabled: likewise.
        v.enabled = false;
        v.irq_mut(1, 3).unwrap().pending = false;
        assert_eq!(send_sgi(&mut v, 0, 3 << 24 | 0b10), 0);
        assert_eq!(dist(&mut v, GICD_CTLR, 4, Some(CTLR_ENABLE_GRP1)).1, 0b11);
    }

    #[test]
    fn no_offset_or_size_panics() {
        let mut v = vgic();
        for off in (0..GICD_SIZE).step_by(1) {
            for size in [1u8, 2, 4, 8] {
                dist(&mut v, off, size, Some(u64::MAX));
                dist(&mut v, off, size, None);
            }
        }
        for off in (0..GICR_SIZE).step_by(3) {
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
        dist(&mut v, GICD_CTLR, 4, Some(CTLR_ENABLE_GRP1));
        redist(&mut v, 0, GICR_SGI_BASE + GICR_ISENABLER0, 4, Some(0xffff));
        for sgi in 0..16 {
            send_sgi(&mut v, 0, sgi << 24 | 1);
            if let Some((intid, _)) = v.next_for_lr(0)
                && v.vcpus[0].irqs.iter().filter(|i| i.in_lr).count() < 4
            {
                v.to_lr(0, intid);
            }
        }
        assert_eq!(
            redist(&mut v, 0, GICR_SGI_BASE + GICR_ISPENDR0, 4, None).0,
            0xffff
        );
    }
}
