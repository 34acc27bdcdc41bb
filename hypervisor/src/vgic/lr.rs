//! The list registers of the calling core: moving interrupts from the vGIC model
//! into the hardware virtual CPU interface and noticing when the guest is done.
//!
//! Called on every way back into a guest ([`flush`]). An LR holds an interrupt until
//! the guest deactivates it (state goes to invalid); only then does the model see it
//! again. More deliverable interrupts than LRs: the rest wait in the model and the
//! underflow maintenance interrupt brings the core back when LRs drain.

use core::sync::atomic::{AtomicU32, Ordering};

use aarch64_cpu::registers::*;
use ferry_platform::MAX_CPUS;
use tock_registers::interfaces::{Readable, Writeable};

use super::model::{Irq, Vgic};

/// Most list registers the architecture has.
const MAX_LRS: usize = 16;
const NONE: u32 = u32::MAX;

/// For each core and LR: the vINTID Ferry put there (NONE when free).
static OWNERS: [[AtomicU32; MAX_LRS]; MAX_CPUS] =
    [const { [const { AtomicU32::new(NONE) }; MAX_LRS] }; MAX_CPUS];

/// ICH_HCR_EL2 bits.
const ICH_HCR_EN: u64 = 1 << 0;
const ICH_HCR_UIE: u64 = 1 << 1;

/// LR fields.
const LR_STATE_PENDING: u64 = 0b01 << 62;
const LR_STATE_ACTIVE: u64 = 0b10 << 62;
const LR_STATE_MASK: u64 = 0b11 << 62;
const LR_HW: u64 = 1 << 61;
const LR_GROUP1: u64 = 1 << 60;
const LR_EOI: u64 = 1 << 41;

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn count() -> usize {
    ((ICH_VTR_EL2.get() & 0x1f) as usize + 1).min(MAX_LRS)
}

fn read(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        _ => ICH_LR15_EL2.get(),
    }
}

fn write(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        _ => ICH_LR15_EL2.set(value),
    }
}

/// The LR value that signals `intid` with `irq`'s priority, pending, Group 1;
/// hardware-linked interrupts carry their physical INTID, emulated level ones ask
/// for an EOI maintenance interrupt so their line is looked at again.
pub fn encode(intid: u32, irq: &Irq) -> u64 {
    let mut lr = LR_STATE_PENDING | LR_GROUP1 | u64::from(irq.priority) << 48 | u64::from(intid);
    if irq.hw {
        lr |= LR_HW | u64::from(intid) << 32;
    } else if !irq.edge {
        lr |= LR_EOI;
    }
    lr
}

/// Resets the calling core's virtual CPU interface for a vCPU about to start.
pub fn reset(core: usize) {
    for (lr, owner) in OWNERS[core].iter().enumerate().take(count()) {
        write(lr, 0);
        owner.store(NONE, Ordering::Relaxed);
    }
    ICH_VMCR_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    ICH_HCR_EL2.set(ICH_HCR_EN);
}

/// Copies the pending and active bits of the calling core's LRs into the model,
/// so emulated GICD/GICR reads show what the guest's CPU interface holds.
pub fn read_states(core: usize, vgic: &mut Vgic, vcpu: usize) {
    for (lr, slot) in OWNERS[core].iter().enumerate().take(count()) {
        let owner = slot.load(Ordering::Relaxed);
        if owner == NONE {
            continue;
        }
        let state = read(lr) >> 62;
        if let Some(irq) = vgic.irq_mut(vcpu, owner) {
            irq.lr_pending = state & 1 != 0;
            irq.lr_active = state & 2 != 0;
        }
    }
}

/// Synchronises the calling core's LRs with `vgic` for `vcpu`: returns finished
/// interrupts to the model, fills free LRs with the most urgent deliverable ones,
/// and asks for an underflow interrupt if some still wait.
pub fn flush(core: usize, vgic: &mut Vgic, vcpu: usize) {
    let n = count();
    let owners = &OWNERS[core][..n];
    // One read of each held LR: a finished one (state invalid) goes back to the
    // model; a live one reports its state to the model, and an edge raised again
    // while the guest still handles the previous one (active) becomes
    // pending+active in the LR, delivered after the EOI without another exit.
    // (Hardware-linked LRs cannot be both.)
    for (lr, slot) in owners.iter().enumerate() {
        let owner = slot.load(Ordering::Relaxed);
        if owner == NONE {
            continue;
        }
        let value = read(lr);
        let state = value & LR_STATE_MASK;
        if state == 0 {
            vgic.from_lr(vcpu, owner);
            slot.store(NONE, Ordering::Relaxed);
            write(lr, 0);
            continue;
        }
        let Some(irq) = vgic.irq_mut(vcpu, owner) else {
            continue;
        };
        irq.lr_pending = state & LR_STATE_PENDING != 0;
        irq.lr_active = state & LR_STATE_ACTIVE != 0;
        if irq.pending && irq.edge && !irq.hw && value & LR_HW == 0 && state == LR_STATE_ACTIVE {
            write(lr, value | LR_STATE_PENDING);
            vgic.to_lr(vcpu, owner);
            if let Some(irq) = vgic.irq_mut(vcpu, owner) {
                irq.lr_active = true;
            }
        }
    }
    // Fill free LRs with the most urgent waiting interrupts; when none is free, a
    // waiting interrupt more urgent than an LR's not-yet-acknowledged one takes its
    // place (so the guest always sees the most urgent ones first).
    // The loop ends when nothing waits, or when something waits that no LR takes:
    // that answers whether to ask for the underflow interrupt without another
    // scan of the model.
    let mut waiting = false;
    while let Some((intid, irq)) = vgic.next_for_lr(vcpu) {
        let free = owners
            .iter()
            .position(|slot| slot.load(Ordering::Relaxed) == NONE);
        let slot = match free {
            Some(lr) => lr,
            None => {
                let victim = (0..n)
                    .map(|lr| (lr, read(lr)))
                    .filter(|&(_, value)| value & LR_STATE_MASK == LR_STATE_PENDING)
                    .max_by_key(|&(_, value)| (value >> 48) & 0xff);
                match victim {
                    Some((lr, value)) if ((value >> 48) & 0xff) as u8 > irq.priority => {
                        vgic.evict(vcpu, owners[lr].load(Ordering::Relaxed));
                        lr
                    }
                    _ => {
                        waiting = true;
                        break;
                    }
                }
            }
        };
        write(slot, encode(intid, &irq));
        vgic.to_lr(vcpu, intid);
        owners[slot].store(intid, Ordering::Relaxed);
    }
    ICH_HCR_EL2.set(ICH_HCR_EN | if waiting { ICH_HCR_UIE } else { 0 });
}
