//! The list-register bookkeeping on fake registers: delivery, priority, overflow,
//! what the guest finishes, and a vCPU restart with interrupts in flight.

use super::*;
use crate::vgic::{VTIMER_PPI, Vgic};

/// A core's LRs as plain values; the test plays the guest's CPU interface.
struct Fake {
    regs: Vec<u64>,
    hcr: u64,
}

impl Fake {
    fn new(n: usize) -> Fake {
        Fake {
            regs: vec![0; n],
            hcr: 0,
        }
    }

    /// The guest acknowledges what LR `n` holds (pending -> active).
    fn ack(&mut self, n: usize) {
        let v = self.regs[n];
        assert_eq!(v & STATE_MASK, STATE_PENDING, "LR {n} not pending");
        self.regs[n] = v & !STATE_MASK | STATE_ACTIVE;
    }

    /// The guest deactivates LR `n` (EOI) while it is also pending: pending.
    fn deactivate(&mut self, n: usize) {
        self.regs[n] &= !STATE_ACTIVE;
    }

    /// The guest deactivates LR `n` (EOI): invalid.
    fn eoi(&mut self, n: usize) {
        self.regs[n] &= !STATE_MASK;
    }

    fn intid(&self, n: usize) -> u32 {
        (self.regs[n] & 0xffff_ffff) as u32
    }

    fn held(&self) -> Vec<u32> {
        (0..self.regs.len())
            .filter(|&n| self.regs[n] & STATE_MASK != 0)
            .map(|n| self.intid(n))
            .collect()
    }
}

impl ListRegisters for Fake {
    fn count(&self) -> usize {
        self.regs.len()
    }
    fn read(&self, n: usize) -> u64 {
        self.regs[n]
    }
    fn write(&mut self, n: usize, value: u64) {
        self.regs[n] = value;
    }
    fn set_hcr(&mut self, value: u64) {
        self.hcr = value;
    }
}

/// A vGIC with two vCPUs, SPIs 33 (edge), 34 (level, emulated) and 40
/// (hardware), every interrupt enabled at priority 0xa0 unless set otherwise.
fn vgic() -> Vgic {
    let mut v = Vgic::new(2, 288, &[(33, false), (34, false), (40, true)]);
    v.enabled = true;
    for intid in [1, 5, VTIMER_PPI, 33, 34, 40] {
        let irq = v.irq_mut(0, intid).unwrap();
        irq.enabled = true;
        irq.priority = 0xa0;
    }
    v.irq_mut(0, 33).unwrap().edge = true;
    v
}

fn raise(v: &mut Vgic, intid: u32) {
    v.raise(0, intid);
    assert!(v.irq(0, intid).unwrap().pending);
}

#[test]
fn a_pending_interrupt_goes_into_an_lr() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33]);
    let irq = v.irq(0, 33).unwrap();
    assert!(irq.in_lr && !irq.pending);
    assert_eq!(lrs.regs[0], encode(33, irq));
    assert_eq!(lrs.hcr, ICH_HCR_EN, "nothing waits");
}

#[test]
fn nothing_is_delivered_while_the_distributor_or_the_interrupt_is_disabled() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    v.enabled = false;
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(lrs.held().is_empty());
    v.enabled = true;
    v.irq_mut(0, 33).unwrap().enabled = false;
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(lrs.held().is_empty());
    v.irq_mut(0, 33).unwrap().enabled = true;
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33], "delivered once enabled");
}

#[test]
fn the_most_urgent_goes_first_and_the_rest_wait_with_underflow_asked() {
    let (mut lrs, owners, mut v) = (Fake::new(1), Owners::new(), vgic());
    v.irq_mut(0, 34).unwrap().priority = 0x10;
    raise(&mut v, 33);
    v.set_level(34, true);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [34]);
    assert_eq!(lrs.hcr, ICH_HCR_EN | ICH_HCR_UIE, "33 waits");
}

#[test]
fn a_more_urgent_interrupt_takes_the_lr_of_an_unacknowledged_one() {
    let (mut lrs, owners, mut v) = (Fake::new(1), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    v.irq_mut(0, 5).unwrap().priority = 0x20;
    raise(&mut v, 5);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [5]);
    let evicted = v.irq(0, 33).unwrap();
    assert!(
        evicted.pending && !evicted.in_lr,
        "33 is pending again in the model"
    );
    assert_eq!(lrs.hcr & ICH_HCR_UIE, ICH_HCR_UIE);
}

#[test]
fn an_acknowledged_interrupt_is_never_evicted() {
    let (mut lrs, owners, mut v) = (Fake::new(1), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    v.irq_mut(0, 5).unwrap().priority = 0x00;
    raise(&mut v, 5);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33]);
    assert_eq!(lrs.hcr, ICH_HCR_EN | ICH_HCR_UIE);
}

#[test]
fn a_finished_lr_returns_to_the_model_and_frees_the_lr() {
    let (mut lrs, owners, mut v) = (Fake::new(1), Owners::new(), vgic());
    raise(&mut v, 33);
    raise(&mut v, 5);
    flush(&mut lrs, &owners, &mut v, 0);
    let first = lrs.intid(0);
    lrs.ack(0);
    lrs.eoi(0);
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(!v.irq(0, first).unwrap().in_lr);
    assert_eq!(lrs.held().len(), 1, "the other one took the LR");
    assert_ne!(lrs.intid(0), first);
}

#[test]
fn a_level_line_still_high_after_the_eoi_is_delivered_again() {
    let (mut lrs, owners, mut v) = (Fake::new(2), Owners::new(), vgic());
    v.set_level(34, true);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.regs[0] & EOI, EOI, "a level interrupt asks for its EOI");
    lrs.ack(0);
    lrs.eoi(0);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [34], "line still high");
    lrs.ack(0);
    v.set_level(34, false);
    lrs.eoi(0);
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(lrs.held().is_empty(), "line low");
}

#[test]
fn an_edge_raised_while_active_becomes_pending_and_active() {
    let (mut lrs, owners, mut v) = (Fake::new(2), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.regs[0] & STATE_MASK, STATE_PENDING | STATE_ACTIVE);
    assert_eq!(lrs.held(), [33], "in the same LR, not a second one");
}

#[test]
fn hardware_interrupts_carry_their_physical_intid() {
    let (mut lrs, owners, mut v) = (Fake::new(2), Owners::new(), vgic());
    raise(&mut v, VTIMER_PPI);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.regs[0] & HW, HW);
    assert_eq!(lrs.regs[0] >> 32 & 0x1fff, u64::from(VTIMER_PPI));
    assert_eq!(lrs.regs[0] & EOI, 0);
}

#[test]
fn read_states_shows_what_the_guest_holds() {
    let (mut lrs, owners, mut v) = (Fake::new(2), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    read_states(&lrs, &owners, &mut v, 0);
    let irq = v.irq(0, 33).unwrap();
    assert!(Vgic::seen_active(irq) && !Vgic::seen_pending(irq));
}

#[test]
fn only_the_lrs_the_core_has_are_used() {
    let (mut lrs, owners, mut v) = (Fake::new(2), Owners::new(), vgic());
    for intid in [1, 5, 33] {
        raise(&mut v, intid);
    }
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held().len(), 2);
    assert_eq!(lrs.hcr & ICH_HCR_UIE, ICH_HCR_UIE);
}

#[test]
fn reset_of_empty_lrs_turns_the_interface_on() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    let mut deactivated = Vec::new();
    reset(&mut lrs, &owners, &mut v, 0, &mut |i| deactivated.push(i));
    assert_eq!(lrs.hcr, ICH_HCR_EN);
    assert!(deactivated.is_empty());
    assert!(lrs.held().is_empty());
}

/// CPU_OFF with an interrupt the guest had not acknowledged yet, then CPU_ON:
/// the interrupt is delivered to the new start, not lost.
#[test]
fn a_restart_keeps_an_unacknowledged_interrupt_pending() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    reset(&mut lrs, &owners, &mut v, 0, &mut |_| {
        panic!("nothing to deactivate")
    });
    assert!(lrs.held().is_empty());
    let irq = v.irq(0, 33).unwrap();
    assert!(irq.pending && !irq.in_lr);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33], "delivered again after the restart");
}

/// CPU_OFF while the guest handled a hardware-linked interrupt (its timer): the
/// physical one is deactivated so it can fire again; the new start does not see
/// the old one.
#[test]
fn a_restart_deactivates_acknowledged_hardware_interrupts() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, VTIMER_PPI);
    raise(&mut v, 40);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    lrs.ack(1);
    let mut deactivated = Vec::new();
    reset(&mut lrs, &owners, &mut v, 0, &mut |i| deactivated.push(i));
    deactivated.sort();
    assert_eq!(deactivated, [VTIMER_PPI, 40]);
    for intid in [VTIMER_PPI, 40] {
        let irq = v.irq(0, intid).unwrap();
        assert!(!irq.in_lr && !irq.pending, "{intid}");
    }
    // The timer fires again after the restart and is delivered.
    raise(&mut v, VTIMER_PPI);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [VTIMER_PPI]);
}

#[test]
fn a_restart_drops_an_acknowledged_emulated_interrupt_and_keeps_a_high_level() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, 33);
    v.set_level(34, true);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    lrs.ack(1);
    reset(&mut lrs, &owners, &mut v, 0, &mut |_| {
        panic!("emulated: nothing physical")
    });
    assert!(!v.irq(0, 33).unwrap().pending, "the edge was handled");
    assert!(
        v.irq(0, 34).unwrap().pending,
        "the level line is still high"
    );
}

#[test]
fn a_finished_lr_found_at_reset_returns_to_the_model() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    lrs.eoi(0);
    reset(&mut lrs, &owners, &mut v, 0, &mut |_| panic!("finished"));
    let irq = v.irq(0, 33).unwrap();
    assert!(!irq.in_lr && !irq.pending);
}

#[test]
fn pending_and_active_at_reset_counts_as_acknowledged() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    reset(&mut lrs, &owners, &mut v, 0, &mut |_| {});
    assert!(!v.irq(0, 33).unwrap().in_lr);
}

#[test]
fn each_core_keeps_its_own_owners() {
    let (mut a, mut b) = (Fake::new(2), Fake::new(2));
    let (oa, ob) = (Owners::new(), Owners::new());
    let mut v = vgic();
    v.irq_mut(1, 5).unwrap().enabled = true;
    raise(&mut v, 5);
    v.raise(1, 5).unwrap();
    flush(&mut a, &oa, &mut v, 0);
    flush(&mut b, &ob, &mut v, 1);
    assert_eq!(a.held(), [5]);
    assert_eq!(b.held(), [5]);
    a.ack(0);
    a.eoi(0);
    flush(&mut a, &oa, &mut v, 0);
    assert!(a.held().is_empty());
    assert!(v.irq(1, 5).unwrap().in_lr, "vCPU 1's copy untouched");
}

#[test]
fn a_timer_asserts_only_enabled_expired_and_unmasked() {
    assert!(timer_asserted(0b101));
    for ctl in [0b000, 0b001, 0b100, 0b111, 0b011, 0b110] {
        assert!(!timer_asserted(ctl), "{ctl:#b}");
    }
    assert!(timer_asserted(0b101 | 1 << 9), "other bits ignored");
}

#[test]
fn a_timer_interrupt_whose_line_fell_is_withdrawn() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    let mut deactivated = Vec::new();
    // Pending in the model only (the LRs were full, say): withdrawn there.
    raise(&mut v, VTIMER_PPI);
    assert!(withdraw(
        &mut lrs,
        &owners,
        &mut v,
        (0, VTIMER_PPI),
        &mut |i| deactivated.push(i)
    ));
    assert!(!v.irq(0, VTIMER_PPI).unwrap().pending);
    assert_eq!(deactivated, [VTIMER_PPI]);
    // Pending in an LR: the LR is emptied, nothing is delivered.
    raise(&mut v, VTIMER_PPI);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [VTIMER_PPI]);
    assert!(withdraw(
        &mut lrs,
        &owners,
        &mut v,
        (0, VTIMER_PPI),
        &mut |i| deactivated.push(i)
    ));
    assert!(lrs.held().is_empty());
    assert_eq!(deactivated, [VTIMER_PPI, VTIMER_PPI]);
    let irq = v.irq(0, VTIMER_PPI).unwrap();
    assert!(!irq.pending && !irq.in_lr, "{irq:?}");
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(lrs.held().is_empty(), "not delivered again");
    // Acknowledged by the guest: left to its EOI.
    raise(&mut v, VTIMER_PPI);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    assert!(!withdraw(
        &mut lrs,
        &owners,
        &mut v,
        (0, VTIMER_PPI),
        &mut |i| deactivated.push(i)
    ));
    assert_eq!(lrs.held(), [VTIMER_PPI]);
    assert_eq!(deactivated.len(), 2);
    // Not hardware-linked: never withdrawn this way.
    raise(&mut v, 33);
    assert!(!withdraw(&mut lrs, &owners, &mut v, (0, 33), &mut |i| {
        deactivated.push(i)
    }));
    assert!(v.irq(0, 33).unwrap().pending);
}

#[test]
fn the_physical_timer_is_hardware_linked_too() {
    let v = Vgic::new(1, 288, &[]);
    assert!(v.irq(0, crate::vgic::PTIMER_PPI).unwrap().hw);
    assert!(v.irq(0, VTIMER_PPI).unwrap().hw);
}

#[test]
fn a_stopped_partitions_lrs_are_discarded() {
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    raise(&mut v, VTIMER_PPI);
    raise(&mut v, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held().len(), 2);
    let mut deactivated = Vec::new();
    discard(&mut lrs, &owners, &mut |i| deactivated.push(i));
    assert!(lrs.held().is_empty());
    assert_eq!(deactivated, [VTIMER_PPI], "only the hardware-linked one");
    assert!(lrs.regs.iter().all(|&r| r == 0));
}

#[test]
fn an_spi_rerouted_after_it_was_handled_reaches_its_new_vcpu() {
    // The hostile suite's irouter-fuzz: vCPU 0 handled SPI 33 (its LR went
    // invalid, which the model learns only at vCPU 0's next sync); the SPI is
    // routed to vCPU 1 and raised again.
    let (mut lrs0, owners0, mut v) = (Fake::new(4), Owners::new(), vgic());
    let (mut lrs1, owners1) = (Fake::new(4), Owners::new());
    raise(&mut v, 33);
    flush(&mut lrs0, &owners0, &mut v, 0);
    lrs0.ack(0);
    lrs0.eoi(0);
    v.spis.iter_mut().find(|s| s.intid == 33).unwrap().router = 1;
    // The raise tells the vCPU whose LR (as far as the model knows) holds it...
    assert_eq!(v.raise(0, 33), Some(0));
    // ...whose sync frees it and names vCPU 1...
    assert_eq!(flush(&mut lrs0, &owners0, &mut v, 0), 0b10);
    assert!(lrs0.held().is_empty());
    // ...which then takes it.
    assert_eq!(flush(&mut lrs1, &owners1, &mut v, 1), 0);
    assert_eq!(lrs1.held(), [33]);
}

#[test]
fn an_edge_raised_while_its_lr_is_still_pending_is_not_stranded() {
    // Linux over copy mode in CI: a doorbell raised twice before the backend took
    // the first stayed pending in the model behind its own LR; the next raise saw
    // it pending and told no one, and the backend slept through a request.
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    assert_eq!(v.raise(0, 33), Some(0));
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(
        v.raise(0, 33),
        Some(0),
        "the LR holds it pending: tell the core"
    );
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(
        !v.irq(0, 33).unwrap().pending,
        "coalesced into the pending LR"
    );
    lrs.ack(0);
    lrs.eoi(0);
    // The next edge must reach the core again.
    assert_eq!(v.raise(0, 33), Some(0));
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33]);
}

#[test]
fn an_edge_raised_while_its_lr_is_pending_and_active_is_not_stranded() {
    // Net ports in one backend under load: a doorbell raised while its LR was
    // pending and active stayed pending in the model; the guest then took and
    // EOI'd the LR without an exit, and every later raise saw the model pending
    // and told no one: the backend slept with requests waiting.
    let (mut lrs, owners, mut v) = (Fake::new(4), Owners::new(), vgic());
    v.raise(0, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    lrs.ack(0);
    v.raise(0, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.regs[0] & STATE_MASK, STATE_PENDING | STATE_ACTIVE);
    v.raise(0, 33);
    flush(&mut lrs, &owners, &mut v, 0);
    assert!(
        !v.irq(0, 33).unwrap().pending,
        "coalesced into the pending and active LR"
    );
    // The guest finishes both without an exit.
    lrs.deactivate(0);
    lrs.ack(0);
    lrs.eoi(0);
    assert_eq!(v.raise(0, 33), Some(0), "the next edge reaches the core");
    flush(&mut lrs, &owners, &mut v, 0);
    assert_eq!(lrs.held(), [33]);
}
