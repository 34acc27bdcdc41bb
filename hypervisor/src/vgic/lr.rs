//! The calling core's list registers (`ICH_LR<n>_EL2`) and ICH_HCR_EL2, for the
//! bookkeeping in `listregs` (called on every way back into a guest).

use aarch64_cpu::registers::*;
use ferry_platform::MAX_CPUS;
use tock_registers::interfaces::{Readable, Writeable};

use super::listregs::{self, ListRegisters, MAX_LRS, Owners};
use super::model::Vgic;

/// For each core: which vINTID Ferry put in each LR.
static OWNERS: [Owners; MAX_CPUS] = [const { Owners::new() }; MAX_CPUS];

/// The calling core's list registers.
struct Hardware;

impl ListRegisters for Hardware {
    fn count(&self) -> usize {
        ((ICH_VTR_EL2.get() & 0x1f) as usize + 1).min(MAX_LRS)
    }

    fn read(&self, n: usize) -> u64 {
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

    fn write(&mut self, n: usize, value: u64) {
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

    fn set_hcr(&mut self, value: u64) {
        ICH_HCR_EL2.set(value);
    }
}

/// Resets core `core`'s virtual CPU interface for `vcpu` about to (re)start: what
/// its LRs still hold goes back to the model, the physical interrupts of
/// acknowledged hardware-linked ones are deactivated.
pub fn reset(core: usize, vgic: &mut Vgic, vcpu: usize) {
    ICH_VMCR_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    // The EL1 timers start disabled, whatever a previous run left.
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    listregs::reset(&mut Hardware, &OWNERS[core], vgic, vcpu, &mut |intid| {
        ferry_platform::gicv3::deactivate(intid)
    });
}

/// Empties core `core`'s LRs: its partition stopped (see `listregs::discard`).
pub fn discard(core: usize) {
    listregs::discard(&mut Hardware, &OWNERS[core], &mut |intid| {
        ferry_platform::gicv3::deactivate(intid)
    });
}

/// Copies the pending and active bits of core `core`'s LRs into the model (the
/// timers' interrupts first follow their lines).
pub fn read_states(core: usize, vgic: &mut Vgic, vcpu: usize) {
    sync_timers(core, vgic, vcpu);
    listregs::read_states(&Hardware, &OWNERS[core], vgic, vcpu);
}

/// Synchronises core `core`'s LRs with `vgic` for `vcpu` (the timers'
/// interrupts first follow their lines). Returns the other vCPUs to kick
/// (`listregs::flush`).
pub fn flush(core: usize, vgic: &mut Vgic, vcpu: usize) -> u64 {
    sync_timers(core, vgic, vcpu);
    listregs::flush(&mut Hardware, &OWNERS[core], vgic, vcpu)
}

/// Withdraws the interrupt of an EL1 timer of this core (the guest's: E2H = 0)
/// whose output no longer asserts, so its pending state follows the line. Runs on
/// every exit: a timer is read only while its interrupt is pending or in an LR.
fn sync_timers(core: usize, vgic: &mut Vgic, vcpu: usize) {
    let timers: [(u32, fn() -> u64); 2] = [
        (super::VTIMER_PPI, || CNTV_CTL_EL0.get()),
        (super::PTIMER_PPI, || CNTP_CTL_EL0.get()),
    ];
    for (intid, ctl) in timers {
        let held = vgic.irq(vcpu, intid).is_some_and(|i| i.pending || i.in_lr);
        if held && !listregs::timer_asserted(ctl()) {
            listregs::withdraw(
                &mut Hardware,
                &OWNERS[core],
                vgic,
                (vcpu, intid),
                &mut |i| ferry_platform::gicv3::deactivate(i),
            );
        }
    }
}
