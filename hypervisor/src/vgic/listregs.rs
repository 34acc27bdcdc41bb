//! The list registers' bookkeeping: moving interrupts from the vGIC model into a
//! core's virtual CPU interface and noticing when the guest is done with them,
//! generic over the registers ([`ListRegisters`]) so it runs on the host too.
//! `lr.rs` (target only) gives it the real `ICH_LR<n>_EL2` and ICH_HCR_EL2.
//!
//! An LR holds an interrupt until the guest deactivates it (state goes to invalid);
//! only then does the model see it again. More deliverable interrupts than LRs: the
//! rest wait in the model and the underflow maintenance interrupt brings the core
//! back when LRs drain.

use core::sync::atomic::{AtomicU32, Ordering};

use super::model::{Irq, Vgic};

/// Most list registers the architecture has.
pub const MAX_LRS: usize = 16;
/// An owner slot that holds nothing.
const NONE: u32 = u32::MAX;

/// ICH_HCR_EL2.En: the virtual CPU interface is on.
pub const ICH_HCR_EN: u64 = 1 << 0;
/// ICH_HCR_EL2.UIE: maintenance interrupt when at most one LR holds anything.
pub const ICH_HCR_UIE: u64 = 1 << 1;

/// `ICH_LR<n>_EL2` fields.
pub mod field {
    /// State: pending.
    pub const STATE_PENDING: u64 = 0b01 << 62;
    /// State: active.
    pub const STATE_ACTIVE: u64 = 0b10 << 62;
    /// The state field.
    pub const STATE_MASK: u64 = 0b11 << 62;
    /// HW: linked to the physical interrupt in bits 44:32.
    pub const HW: u64 = 1 << 61;
    /// Group 1.
    pub const GROUP1: u64 = 1 << 60;
    /// EOI: a maintenance interrupt when the guest deactivates it (no HW).
    pub const EOI: u64 = 1 << 41;
}
use field::*;

/// A core's list registers and its virtual CPU interface control.
pub trait ListRegisters {
    /// How many LRs the core has (at most [`MAX_LRS`]).
    fn count(&self) -> usize;
    /// LR `n`.
    fn read(&self, n: usize) -> u64;
    /// Sets LR `n`.
    fn write(&mut self, n: usize, value: u64);
    /// Sets ICH_HCR_EL2.
    fn set_hcr(&mut self, value: u64);
}

/// Which vINTID Ferry put in each of a core's LRs.
#[derive(Debug)]
pub struct Owners([AtomicU32; MAX_LRS]);

impl Owners {
    /// No LR holds anything.
    pub const fn new() -> Owners {
        Owners([const { AtomicU32::new(NONE) }; MAX_LRS])
    }

    fn get(&self, lr: usize) -> Option<u32> {
        match self.0[lr].load(Ordering::Relaxed) {
            NONE => None,
            intid => Some(intid),
        }
    }

    fn set(&self, lr: usize, intid: Option<u32>) {
        self.0[lr].store(intid.unwrap_or(NONE), Ordering::Relaxed);
    }
}

impl Default for Owners {
    fn default() -> Self {
        Owners::new()
    }
}

/// The LR value that signals `intid` with `irq`'s priority, pending, Group 1;
/// hardware-linked interrupts carry their physical INTID, emulated level ones ask
/// for an EOI maintenance interrupt so their line is looked at again.
pub fn encode(intid: u32, irq: &Irq) -> u64 {
    let mut lr = STATE_PENDING | GROUP1 | u64::from(irq.priority) << 48 | u64::from(intid);
    if irq.hw {
        lr |= HW | u64::from(intid) << 32;
    } else if !irq.edge {
        lr |= EOI;
    }
    lr
}

/// Resets a core's virtual CPU interface for `vcpu`, about to (re)start. What its
/// LRs still hold from before (a CPU_OFF with interrupts in flight) goes back to
/// the model: an interrupt the guest had not acknowledged stays pending and is
/// delivered again; one it had acknowledged is dropped (the new start will never
/// end it), and a hardware-linked one of those is handed to `deactivate` so its
/// physical interrupt can fire again.
pub fn reset(
    lrs: &mut impl ListRegisters,
    owners: &Owners,
    vgic: &mut Vgic,
    vcpu: usize,
    deactivate: &mut dyn FnMut(u32),
) {
    for lr in 0..lrs.count().min(MAX_LRS) {
        if let Some(intid) = owners.get(lr) {
            let value = lrs.read(lr);
            let hw = value & HW != 0;
            match value & STATE_MASK {
                0 => vgic.from_lr(vcpu, intid),
                STATE_PENDING => vgic.evict(vcpu, intid),
                _ => {
                    vgic.from_lr(vcpu, intid);
                    if hw {
                        deactivate(intid);
                    }
                }
            }
        }
        lrs.write(lr, 0);
        owners.set(lr, None);
    }
    lrs.set_hcr(ICH_HCR_EN);
}

/// Whether an EL1 timer whose CNT{V,P}_CTL_EL0 reads `ctl` asserts its interrupt:
/// enabled, condition met (ISTATUS) and not masked (Arm ARM D12.2.4: the output is
/// ENABLE && ISTATUS && !IMASK).
pub fn timer_asserted(ctl: u64) -> bool {
    ctl & 0b111 == 0b101
}

/// Withdraws the hardware-linked private interrupt `intid` of `vcpu` whose line
/// no longer asserts (a timer disabled, masked or re-armed before the guest
/// acknowledged its interrupt): it stops being pending in the model, and an LR
/// that holds it only pending is emptied. Its physical interrupt, acknowledged at
/// EL2 and left active for the guest's EOI, is handed to `deactivate` so it can
/// fire again when the line rises. One the guest already acknowledged (active) is
/// left to its EOI. Returns whether something was withdrawn.
pub fn withdraw(
    lrs: &mut impl ListRegisters,
    owners: &Owners,
    vgic: &mut Vgic,
    (vcpu, intid): (usize, u32),
    deactivate: &mut dyn FnMut(u32),
) -> bool {
    let Some(irq) = vgic.irq_mut(vcpu, intid).filter(|i| i.hw) else {
        return false;
    };
    if irq.pending {
        irq.pending = false;
        deactivate(intid);
        return true;
    }
    if !irq.in_lr {
        return false;
    }
    let held = (0..lrs.count().min(MAX_LRS)).find(|&lr| owners.get(lr) == Some(intid));
    match held {
        Some(lr) if lrs.read(lr) & STATE_MASK == STATE_PENDING => {
            lrs.write(lr, 0);
            owners.set(lr, None);
            vgic.from_lr(vcpu, intid);
            deactivate(intid);
            true
        }
        _ => false,
    }
}

/// Empties a core's LRs without telling the model (its partition stopped: the
/// model is thrown away or never used again). Hardware-linked interrupts still
/// held are handed to `deactivate`, so their physical interrupts can fire again.
pub fn discard(lrs: &mut impl ListRegisters, owners: &Owners, deactivate: &mut dyn FnMut(u32)) {
    for lr in 0..lrs.count().min(MAX_LRS) {
        if let Some(intid) = owners.get(lr) {
            let value = lrs.read(lr);
            if value & HW != 0 && value & STATE_MASK != 0 {
                deactivate(intid);
            }
        }
        lrs.write(lr, 0);
        owners.set(lr, None);
    }
    lrs.set_hcr(ICH_HCR_EN);
}

/// Copies the pending and active bits of the core's LRs into the model, so
/// emulated GICD/GICR reads show what the guest's CPU interface holds.
pub fn read_states(lrs: &impl ListRegisters, owners: &Owners, vgic: &mut Vgic, vcpu: usize) {
    for lr in 0..lrs.count().min(MAX_LRS) {
        let Some(owner) = owners.get(lr) else {
            continue;
        };
        let state = lrs.read(lr) >> 62;
        if let Some(irq) = vgic.irq_mut(vcpu, owner) {
            irq.lr_pending = state & 1 != 0;
            irq.lr_active = state & 2 != 0;
        }
    }
}

/// Synchronises the core's LRs with `vgic` for `vcpu`: returns finished interrupts
/// to the model, fills free LRs with the most urgent deliverable ones, and asks for
/// an underflow interrupt if some still wait. Returns the other vCPUs whose cores
/// must look at their LRs: those an SPI freed here is now routed to.
pub fn flush(lrs: &mut impl ListRegisters, owners: &Owners, vgic: &mut Vgic, vcpu: usize) -> u64 {
    let n = lrs.count().min(MAX_LRS);
    let others = collect(lrs, owners, vgic, vcpu, n);
    let waiting = fill(lrs, owners, vgic, vcpu, n);
    lrs.set_hcr(ICH_HCR_EN | if waiting { ICH_HCR_UIE } else { 0 });
    others
}

/// One read of each held LR: a finished one (state invalid) goes back to the
/// model; a live one reports its state to the model, and an edge raised again
/// while the guest still handles the previous one (active) becomes
/// pending+active in the LR, delivered after the EOI without another exit.
/// (Hardware-linked LRs cannot be both.)
fn collect(
    lrs: &mut impl ListRegisters,
    owners: &Owners,
    vgic: &mut Vgic,
    vcpu: usize,
    n: usize,
) -> u64 {
    let mut others = 0;
    for lr in 0..n {
        let Some(owner) = owners.get(lr) else {
            continue;
        };
        let value = lrs.read(lr);
        let state = value & STATE_MASK;
        if state == 0 {
            vgic.from_lr(vcpu, owner);
            owners.set(lr, None);
            lrs.write(lr, 0);
            // An SPI pending again meanwhile, now routed to another vCPU.
            if owner >= super::PRIVATE && vgic.irq(vcpu, owner).is_some_and(|i| i.pending) {
                let target = vgic.spi_target(owner);
                if target != vcpu {
                    others |= 1 << target;
                }
            }
            continue;
        }
        let Some(irq) = vgic.irq_mut(vcpu, owner) else {
            continue;
        };
        irq.lr_pending = state & STATE_PENDING != 0;
        irq.lr_active = state & STATE_ACTIVE != 0;
        // An edge raised again before the guest took the first: they are one
        // interrupt (the LR's pending state covers both). Kept pending in the model
        // it would wait behind its own LR, and the raises after it, seeing it
        // pending, would tell no one: a doorbell lost.
        // Pending and active counts too: the pending state the LR holds covers it.
        if irq.pending && irq.edge && !irq.hw && state & STATE_PENDING != 0 {
            irq.pending = false;
        }
        if irq.pending && irq.edge && !irq.hw && value & HW == 0 && state == STATE_ACTIVE {
            lrs.write(lr, value | STATE_PENDING);
            vgic.to_lr(vcpu, owner);
            if let Some(irq) = vgic.irq_mut(vcpu, owner) {
                irq.lr_active = true;
            }
        }
    }
    others
}

/// Fills free LRs with the most urgent waiting interrupts; when none is free, a
/// waiting interrupt more urgent than an LR's not-yet-acknowledged one takes its
/// place (so the guest always sees the most urgent ones first). Returns whether
/// something still waits: the loop ends when nothing waits, or when something
/// waits that no LR takes, which answers it without another scan of the model.
fn fill(
    lrs: &mut impl ListRegisters,
    owners: &Owners,
    vgic: &mut Vgic,
    vcpu: usize,
    n: usize,
) -> bool {
    while let Some((intid, irq)) = vgic.next_for_lr(vcpu) {
        let slot = match (0..n).find(|&lr| owners.get(lr).is_none()) {
            Some(lr) => lr,
            None => {
                let victim = (0..n)
                    .map(|lr| (lr, lrs.read(lr)))
                    .filter(|&(_, value)| value & STATE_MASK == STATE_PENDING)
                    .max_by_key(|&(_, value)| (value >> 48) & 0xff);
                match victim {
                    Some((lr, value)) if ((value >> 48) & 0xff) as u8 > irq.priority => {
                        if let Some(old) = owners.get(lr) {
                            vgic.evict(vcpu, old);
                        }
                        lr
                    }
                    _ => return true,
                }
            }
        };
        lrs.write(slot, encode(intid, &irq));
        vgic.to_lr(vcpu, intid);
        owners.set(slot, Some(intid));
    }
    false
}

#[cfg(test)]
mod tests;
