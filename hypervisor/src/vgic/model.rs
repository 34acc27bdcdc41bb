//! The vGIC's interrupt state, independent of hardware: what is enabled, pending,
//! active, at which priority, routed where, and which interrupt goes into a list
//! register next.

use alloc::vec;
use alloc::vec::Vec;

use super::PRIVATE;

/// One interrupt's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irq {
    /// Enabled by the guest.
    pub enabled: bool,
    /// Pending and not yet handed to a list register.
    pub pending: bool,
    /// Held by a list register (pending or active there).
    pub in_lr: bool,
    /// Its list register says pending (as last read from the hardware).
    pub lr_pending: bool,
    /// Its list register says active (as last read from the hardware).
    pub lr_active: bool,
    /// Priority (lower is more urgent).
    pub priority: u8,
    /// Edge-triggered (else level).
    pub edge: bool,
    /// Linked to the physical interrupt with the same INTID (timer, passthrough):
    /// the guest's EOI deactivates the physical one.
    pub hw: bool,
    /// For emulated level-triggered interrupts: the line's level.
    pub level: bool,
    /// Which vCPU's list register holds it (meaningful while `in_lr`).
    pub lr_vcpu: u16,
}

/// A vCPU's private interrupts and redistributor state.
#[derive(Clone, Debug)]
pub struct Private {
    /// SGIs and PPIs.
    pub irqs: [Irq; PRIVATE as usize],
    /// GICR_WAKER.ProcessorSleep.
    pub asleep: bool,
}

/// One owned SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spi {
    /// INTID (32 and up).
    pub intid: u32,
    /// State.
    pub irq: Irq,
    /// GICD_IROUTER as the guest wrote it.
    pub router: u64,
}

/// A partition's virtual GIC state.
#[derive(Clone, Debug)]
pub struct Vgic {
    /// GICD_CTLR.EnableGrp1.
    pub enabled: bool,
    /// Interrupt lines the distributor reports (as the physical one: SPI numbers
    /// mean the same in every partition).
    pub lines: u32,
    /// Per vCPU.
    pub vcpus: Vec<Private>,
    /// The SPIs this partition owns, sorted by INTID.
    pub spis: Vec<Spi>,
}

impl Vgic {
    /// A reset vGIC for `vcpus` vCPUs that owns `spis`: (INTID, hardware-linked).
    pub fn new(vcpus: usize, lines: u32, spis: &[(u32, bool)]) -> Vgic {
        let mut private = Private {
            irqs: [Irq::default(); PRIVATE as usize],
            asleep: true,
        };
        for (i, irq) in private.irqs.iter_mut().enumerate() {
            // SGIs are always edge-triggered.
            irq.edge = i < 16;
        }
        private.irqs[super::VTIMER_PPI as usize].hw = true;
        private.irqs[super::PTIMER_PPI as usize].hw = true;
        let mut owned: Vec<Spi> = spis
            .iter()
            .filter(|&&(intid, _)| intid >= PRIVATE && intid < lines)
            .map(|&(intid, hw)| Spi {
                intid,
                irq: Irq {
                    hw,
                    ..Irq::default()
                },
                router: 0,
            })
            .collect();
        owned.sort_by_key(|s| s.intid);
        owned.dedup_by_key(|s| s.intid);
        Vgic {
            enabled: false,
            lines,
            vcpus: vec![private; vcpus],
            spis: owned,
        }
    }

    /// The state of `intid` as `vcpu` sees it, if the partition has it.
    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        if intid < PRIVATE {
            return self.vcpus.get(vcpu).map(|p| &p.irqs[intid as usize]);
        }
        self.spi_index(intid).map(|i| &self.spis[i].irq)
    }

    /// Mutable state of `intid` for `vcpu`.
    pub fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        if intid < PRIVATE {
            return self
                .vcpus
                .get_mut(vcpu)
                .map(|p| &mut p.irqs[intid as usize]);
        }
        let i = self.spi_index(intid)?;
        Some(&mut self.spis[i].irq)
    }

    fn spi_index(&self, intid: u32) -> Option<usize> {
        self.spis.binary_search_by_key(&intid, |s| s.intid).ok()
    }

    /// The vCPU an SPI is delivered to: IROUTER's Aff0 if it names one of the
    /// partition's vCPUs (and Aff1-3 are zero), else vCPU 0 (also for IRM = 1).
    pub fn spi_target(&self, intid: u32) -> usize {
        let Some(i) = self.spi_index(intid) else {
            return 0;
        };
        let router = self.spis[i].router;
        let aff0 = (router & 0xff) as usize;
        if router & (1 << 31) == 0 && router & 0xff_00ff_ff00 == 0 && aff0 < self.vcpus.len() {
            aff0
        } else {
            0
        }
    }

    /// The vCPU that handles `intid` when raised for `vcpu` (private) or routed.
    fn target(&self, vcpu: usize, intid: u32) -> usize {
        if intid < PRIVATE {
            vcpu
        } else {
            self.spi_target(intid)
        }
    }

    /// Makes `intid` pending (an edge, an SGI, a hardware interrupt). Returns the
    /// vCPU that must look at its list registers: only if the partition has the
    /// interrupt and it newly became pending and deliverable.
    pub fn raise(&mut self, vcpu: usize, intid: u32) -> Option<usize> {
        let target = self.target(vcpu, intid);
        let group = self.enabled;
        let irq = self.irq_mut(vcpu, intid)?;
        let news = !irq.pending && irq.enabled && group;
        irq.pending = true;
        // Still in another vCPU's list register (an SPI routed elsewhere since, as
        // far as the model knows): that vCPU's core must report it first; its sync
        // then tells the target (`listregs::flush`).
        if news && irq.in_lr && usize::from(irq.lr_vcpu) != target {
            return Some(usize::from(irq.lr_vcpu));
        }
        // Already waiting for a list register (its core was told then), or not
        // deliverable (enabling it updates every vCPU): nobody to tell. A storm of
        // raises then costs the sender, not the target's core.
        news.then_some(target)
    }

    /// Sets an emulated level-triggered line. Returns the vCPU to update when the
    /// line rises.
    pub fn set_level(&mut self, intid: u32, level: bool) -> Option<usize> {
        let target = self.target(0, intid);
        let irq = self.irq_mut(0, intid)?;
        irq.level = level;
        irq.pending = level;
        level.then_some(target)
    }

    /// Whether the guest sees `irq` pending: waiting in the model or in its LR.
    pub fn seen_pending(irq: &Irq) -> bool {
        irq.pending || irq.in_lr && irq.lr_pending
    }

    /// Whether the guest sees `irq` active (in its LR, acknowledged).
    pub fn seen_active(irq: &Irq) -> bool {
        irq.in_lr && irq.lr_active
    }

    /// Whether `irq` may be signalled to the guest now.
    fn deliverable(&self, irq: &Irq) -> bool {
        self.enabled && irq.enabled && irq.pending && !irq.in_lr
    }

    /// The most urgent interrupt for `vcpu` that is not in a list register yet:
    /// (INTID, its state). Lowest priority value first, then lowest INTID.
    pub fn next_for_lr(&self, vcpu: usize) -> Option<(u32, Irq)> {
        let private = self.vcpus.get(vcpu)?;
        let privates = private
            .irqs
            .iter()
            .enumerate()
            .map(|(i, irq)| (i as u32, *irq));
        let spis = self
            .spis
            .iter()
            .filter(|s| self.spi_target(s.intid) == vcpu)
            .map(|s| (s.intid, s.irq));
        privates
            .chain(spis)
            .filter(|(_, irq)| self.deliverable(irq))
            .min_by_key(|&(intid, irq)| (irq.priority, intid))
    }

    /// Records that `intid` went into one of `vcpu`'s list registers. Edges and
    /// hardware interrupts stop being pending here (the list register carries them);
    /// a level line stays pending while it is high.
    pub fn to_lr(&mut self, vcpu: usize, intid: u32) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.in_lr = true;
            irq.lr_vcpu = vcpu as u16;
            irq.lr_pending = true;
            irq.lr_active = false;
            irq.pending = !irq.edge && !irq.hw && irq.level;
        }
    }

    /// Takes `intid` back from a list register where the guest had not acknowledged
    /// it yet, to make room for a more urgent one: pending again in the model.
    pub fn evict(&mut self, vcpu: usize, intid: u32) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.in_lr = false;
            irq.lr_pending = false;
            irq.lr_active = false;
            irq.pending = true;
        }
    }

    /// Records that the list register holding `intid` for `vcpu` became empty (the
    /// guest handled it).
    pub fn from_lr(&mut self, vcpu: usize, intid: u32) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.in_lr = false;
            irq.lr_pending = false;
            irq.lr_active = false;
            if !irq.edge && !irq.hw {
                irq.pending = irq.level;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vgic() -> Vgic {
        let mut v = Vgic::new(2, 288, &[(33, false), (40, true), (9999, false)]);
        v.enabled = true;
        v
    }

    #[test]
    fn owns_only_its_spis() {
        let v = vgic();
        assert_eq!(v.spis.len(), 2, "INTIDs beyond the lines are dropped");
        assert!(v.irq(0, 33).is_some());
        assert!(v.irq(0, 34).is_none());
        assert!(
            v.irq(1, 27).unwrap().hw,
            "the virtual timer is hardware-linked"
        );
        assert!(v.irq(0, 3).unwrap().edge && !v.irq(0, 20).unwrap().edge);
    }

    #[test]
    fn picks_by_priority_then_intid() {
        let mut v = vgic();
        for intid in [1, 2, 5] {
            let irq = v.irq_mut(0, intid).unwrap();
            irq.enabled = true;
            irq.priority = 0x80;
        }
        v.irq_mut(0, 5).unwrap().priority = 0x10;
        for intid in [1, 2, 5] {
            assert_eq!(v.raise(0, intid), Some(0));
        }
        assert_eq!(v.next_for_lr(0).unwrap().0, 5);
        v.to_lr(0, 5);
        assert_eq!(v.next_for_lr(0).unwrap().0, 1);
        v.to_lr(0, 1);
        assert_eq!(v.next_for_lr(0).unwrap().0, 2);
        v.to_lr(0, 2);
        assert_eq!(v.next_for_lr(0), None);
        assert_eq!(v.next_for_lr(1), None, "private to vCPU 0");
        // Raised again while in a list register: delivered once the LR frees.
        v.raise(0, 1);
        assert_eq!(v.next_for_lr(0), None);
        assert!(
            Vgic::seen_pending(v.irq(0, 2).unwrap()),
            "pending in its LR"
        );
        v.irq_mut(0, 2).unwrap().lr_pending = false;
        v.irq_mut(0, 2).unwrap().lr_active = true;
        assert!(
            !Vgic::seen_pending(v.irq(0, 2).unwrap()) && Vgic::seen_active(v.irq(0, 2).unwrap())
        );
        v.from_lr(0, 1);
        assert_eq!(v.next_for_lr(0).unwrap().0, 1);
    }

    #[test]
    fn nothing_is_delivered_disabled() {
        let mut v = vgic();
        v.raise(0, 3);
        assert_eq!(v.next_for_lr(0), None, "SGI 3 not enabled");
        v.irq_mut(0, 3).unwrap().enabled = true;
        v.enabled = false;
        assert_eq!(v.next_for_lr(0), None, "distributor group 1 off");
        v.enabled = true;
        assert_eq!(v.next_for_lr(0).unwrap().0, 3);
    }

    #[test]
    fn spis_follow_their_router() {
        let mut v = vgic();
        v.irq_mut(0, 40).unwrap().enabled = true;
        assert_eq!(v.raise(1, 40), Some(0), "default route: vCPU 0");
        v.spis[1].router = 1;
        assert_eq!(v.spi_target(40), 1);
        assert_eq!(v.next_for_lr(1).unwrap().0, 40);
        assert_eq!(v.next_for_lr(0), None);
        v.spis[1].router = 0x100;
        assert_eq!(v.spi_target(40), 0, "Aff1 names no vCPU");
        v.spis[1].router = 1 << 31 | 1;
        assert_eq!(v.spi_target(40), 0, "IRM: any, so vCPU 0");
        assert_eq!(v.raise(0, 41), None, "not owned");
    }

    #[test]
    fn level_lines_stay_pending_while_high() {
        let mut v = vgic();
        v.irq_mut(0, 33).unwrap().enabled = true;
        assert_eq!(v.set_level(33, true), Some(0));
        v.to_lr(0, 33);
        assert_eq!(v.next_for_lr(0), None, "in the LR");
        v.from_lr(0, 33);
        assert_eq!(v.next_for_lr(0).unwrap().0, 33, "still high after EOI");
        v.to_lr(0, 33);
        v.set_level(33, false);
        v.from_lr(0, 33);
        assert_eq!(v.next_for_lr(0), None, "low after EOI");
    }
}
