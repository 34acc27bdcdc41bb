//! Exceptions taken to EL2: dispatch by vector. Guest exceptions go to
//! `guest_trap`, interrupts to `irq`; anything else at EL2 is a Ferry bug: it prints
//! the syndrome and ends the run with exit code 5 (`fatal`).

use aarch64_cpu::registers::ESR_EL2;
use ferry_boot::trap::TrapFrame;
use tock_registers::interfaces::Readable;

use crate::fatal::fatal;

/// Entered from `vectors.S` for every exception taken to EL2.
#[unsafe(no_mangle)]
extern "C" fn ferry_trap(index: u64, frame: &mut TrapFrame) {
    match index {
        // Lower EL (a guest), AArch64: synchronous, IRQ, SError. The list registers
        // are brought up to date before going back.
        8 => {
            crate::guest_trap::handle(frame);
            crate::vcpu::sync_vgic();
        }
        9 => {
            crate::irq::handle();
            crate::vcpu::sync_vgic();
        }
        11 => match crate::current::current() {
            Some((system, partition, vcpu)) => crate::apply::stop(
                system,
                partition,
                vcpu,
                crate::policy::StopKind::Fault,
                crate::state::event::StopReason::SError {
                    esr: ESR_EL2.get(),
                    pc: frame.elr,
                },
            ),
            None => fatal(
                index,
                frame,
                "an SError from a lower EL on a core that runs no vCPU",
            ),
        },
        // EL2 itself on SP_EL2: an IRQ while the core idles.
        5 => crate::irq::handle(),
        _ => fatal(index, frame, "unexpected EL2 exception"),
    }
}
