//! Trapped system register accesses (ESR_EL2.EC 0x18) and trapped instructions of
//! features partitions do not get (SME, LS64, 128-bit system registers): the
//! state layer decides (`state::sysreg`), this applies it — a value into Rt, an
//! SGI, nothing, or an UNDEFINED exception injected into the guest (`inject`)
//! with a rate-limited log line. What the partition sees of its core comes from
//! `guest_view`.

use ferry_boot::trap::TrapFrame;

use crate::apply::apply;
use crate::state::effect::Effects;
use crate::state::event::Event;
use crate::state::partition::Partition;
use crate::state::sysreg::{self, Access, Decision, EntryFeatures, Group, Undefined};
use crate::state::system::System;
use crate::{esr, guest_view, inject, vgic};

/// A trapped MRS or MSR from the guest (ESR_EL2.EC 0x18, syndrome `esr`).
pub fn handle(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    esr: u64,
) {
    let access = Access::decode(esr::syndrome(esr));
    let view = guest_view::get();
    let rt = usize::from(access.rt);
    match sysreg::decide(&access, &view) {
        Decision::Read(value) => {
            // Rt = 31 is XZR: the value goes nowhere.
            if let Some(x) = frame.x.get_mut(rt) {
                *x = value;
            }
        }
        Decision::Ignore => {}
        Decision::SendSgi => {
            let value = frame.x.get(rt).copied().unwrap_or(0);
            let targets = vgic::regs::send_sgi(&mut partition.vgic.lock(), vcpu, value);
            let mut fx = Effects::new();
            partition.update_vcpus(targets, vcpu, &mut fx);
            apply(system, &fx);
        }
        Decision::Undefined(group) => {
            undefined(system, partition, vcpu, frame, group, Some(access), esr);
            return;
        }
    }
    frame.elr += 4;
}

/// A trapped instruction of a class partitions do not get (SME, LS64, 128-bit
/// system registers): UNDEFINED. False if `esr` is of no such class.
pub fn hidden_class(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    esr: u64,
) -> bool {
    let Some(group) = sysreg::undefined_class(esr::class(esr)) else {
        return false;
    };
    undefined(system, partition, vcpu, frame, group, None, esr);
    true
}

/// Logs an UNDEFINED access (rate-limited per partition) and injects the
/// exception: the guest resumes at its vector with the access not done.
fn undefined(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    group: Group,
    access: Option<Access>,
    esr: u64,
) {
    let mut fx = Effects::new();
    fx.log(Event::SysRegUndefined {
        partition: partition.id,
        vcpu,
        what: Undefined { group, access, esr },
        pc: frame.elr,
    });
    apply(system, &fx);
    let ids = guest_view::get().ids;
    let esr_el1 = sysreg::undefined_esr(access.as_ref(), esr, &ids);
    inject::undefined(frame, esr_el1, EntryFeatures::of(&ids));
}
