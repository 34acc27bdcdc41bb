//! Synchronous exceptions from partitions: decode the syndrome, hand the
//! decision to the state layer, apply what it returns. PSCI and Ferry's
//! hypercalls (HVC, and trapped SMC), trapped system registers and instructions
//! of hidden features (`sysreg_trap`), and data aborts in emulated regions (looked
//! up in the partition's table); anything else stops the partition.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2};
use ferry_abi::hypercall;
use ferry_boot::trap::TrapFrame;
use tock_registers::interfaces::Readable;

use crate::apply::{self, apply};
use crate::current::current;
use crate::esr::ec;
use crate::pages::PhysPages;
use crate::policy::StopKind;
use crate::stage2::FaultAddress;
use crate::state::effect::Effects;
use crate::state::emul::{self, Device, MmioAccess, Undecodable};
use crate::state::event::{Event, StopReason};
use crate::state::hvc;
use crate::state::partition::Partition;
use crate::state::power::{self, PsciNext};
use crate::state::sysreg::EntryFeatures;
use crate::state::system::System;
use crate::state::virtio::{self, AccessKey, Outcome, Waited};
use crate::vpsci::Call;
use crate::{cpu, esr, mmio, stage2, vcpu, vgic};
use ferry_abi::hypercall::HypercallStatus;
use ferry_abi::psci::PsciRet;
use ferry_config::FaultPolicy;

/// Handles a synchronous exception from the guest on this core.
pub fn handle(frame: &mut TrapFrame) {
    let Some((system, partition, vcpu)) = current() else {
        crate::fatal::fatal(8, frame, "a guest exception on a core that runs no vCPU");
    };
    let esr = ESR_EL2.get();
    let fault = |reason| apply::stop(system, partition, vcpu, StopKind::Fault, reason);
    match esr::class(esr) {
        // HVC #0 (SMCCC); ELR already points after it.
        ec::HVC64 if esr::syndrome(esr) & 0xffff == 0 => call(system, partition, vcpu, frame),
        ec::HVC64 => frame.x[0] = PsciRet::NotSupported.to_x0(),
        // Trapped SMC: ELR points at the SMC itself.
        ec::SMC64 => {
            frame.elr += 4;
            call(system, partition, vcpu, frame);
        }
        ec::SYSREG => crate::sysreg_trap::handle(system, partition, vcpu, frame, esr),
        ec::DATA_ABORT_LOWER if data_abort(system, partition, vcpu, frame, esr) => {}
        ec::DATA_ABORT_LOWER | ec::INSTRUCTION_ABORT_LOWER => {
            let abort = StopReason::Stage2Abort {
                ipa: fault_ipa(esr),
                esr,
                pc: frame.elr,
            };
            match partition.on_fault {
                FaultPolicy::Stop => fault(abort),
                FaultPolicy::Abort => {
                    let mut fx = Effects::new();
                    fx.log(Event::AbortInjected {
                        partition: partition.id,
                        vcpu,
                        abort,
                    });
                    apply(system, &fx);
                    inject_external_abort(frame, esr);
                }
            }
        }
        _ if crate::sysreg_trap::hidden_class(system, partition, vcpu, frame, esr) => {}
        _ => fault(StopReason::UnhandledClass { esr, pc: frame.elr }),
    }
}

/// The faulting IPA of the abort with syndrome `esr`: from HPFAR_EL2 where it is
/// valid, else FAR_EL2 translated by the guest's stage 1, else `None`.
fn fault_ipa(esr: u64) -> Option<u64> {
    let far = FAR_EL2.get();
    match stage2::fault_address(esr) {
        FaultAddress::Hpfar => Some(stage2::fault_ipa(HPFAR_EL2.get(), far)),
        FaultAddress::TranslateFar => stage2::par_ipa(translate_stage1(far), far),
        FaultAddress::Unknown => None,
    }
}

/// PAR_EL1 after `AT S1E1R` of `va` in the guest's EL1&0 regime (live on this
/// core), with the guest's own PAR_EL1 preserved.
fn translate_stage1(va: u64) -> u64 {
    let par: u64;
    // SAFETY: AT only fills PAR_EL1, which is saved before and restored after;
    // no memory is accessed.
    unsafe {
        core::arch::asm!(
            "mrs {saved}, par_el1",
            "at s1e1r, {va}",
            "isb",
            "mrs {par}, par_el1",
            "msr par_el1, {saved}",
            va = in(reg) va,
            saved = out(reg) _,
            par = out(reg) par,
            options(nostack, preserves_flags),
        );
    }
    par
}

/// An SMCCC call from the guest: PSCI or one of Ferry's hypercalls.
fn call(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
) {
    let x = [
        frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4], frame.x[5],
    ];
    if let Some(call) = Call::decode([x[0], x[1], x[2], x[3]]) {
        let mut fx = Effects::new();
        let next = power::psci(partition, vcpu, call, &mut fx);
        apply(system, &fx);
        match next {
            PsciNext::Return(value) => frame.x[0] = value as u64,
            PsciNext::Park => vcpu::park(),
            PsciNext::Stop(kind, reason) => apply::stop(system, partition, vcpu, kind, reason),
        }
        return;
    }
    if u32::try_from(x[0]) == Ok(hypercall::CONSOLE_DEVICE_READ) {
        // Returns x0..x3: the count, then the bytes.
        let mut fx = Effects::new();
        let read = hvc::device_read(system, partition, x[1], &mut fx);
        apply(system, &fx);
        let (x0, words) = match read {
            Ok((n, words)) => (n as u64, words),
            Err(status) => (status.to_x0(), [0; 3]),
        };
        frame.x[0] = x0;
        frame.x[1..4].copy_from_slice(&words);
        return;
    }
    frame.x[0] = hypercall(system, partition, x) as u64;
}

/// One of Ferry's hypercalls that return x0 alone (x0..x5 as the guest passed
/// them); returns x0.
fn hypercall(system: &'static System, partition: &'static Partition, x: [u64; 6]) -> i64 {
    let with_effects = |decide: &dyn Fn(&mut Effects) -> Result<(), HypercallStatus>| {
        let mut fx = Effects::new();
        let result = decide(&mut fx);
        apply(system, &fx);
        result.err().unwrap_or(HypercallStatus::Success).code()
    };
    match u32::try_from(x[0]).unwrap_or(0) {
        hypercall::VERSION => hypercall::ABI_VERSION as i64,
        hypercall::GENERATION => i64::from(partition.generation()),
        hypercall::IOREQ_COMPLETE => with_effects(&|fx| {
            virtio::complete(
                system,
                partition,
                (x[1], x[2], x[3]),
                &PhysPages,
                cpu::counter(),
                fx,
            )
        }),
        hypercall::NOTIFY_FRONTEND => {
            with_effects(&|fx| virtio::notify_frontend(system, partition, x[1], &PhysPages, fx))
        }
        hypercall::BACKEND_READY => {
            with_effects(&|fx| virtio::backend_ready(partition, cpu::counter(), fx))
        }
        hypercall::CONSOLE_DEVICE_WRITE => {
            let mut fx = Effects::new();
            let args = (x[1], x[2], [x[3], x[4], x[5]]);
            let mut out = apply::device_console_out(system);
            let taken = hvc::device_write(system, partition, args, &mut out, &mut fx);
            apply(system, &fx);
            taken.map_or_else(HypercallStatus::code, |n| n as i64)
        }
        hypercall::CONSOLE_WRITE => {
            let mut buf = [0; hypercall::CONSOLE_WRITE_MAX];
            match hypercall::console_bytes(x[1], [x[2], x[3], x[4]], &mut buf) {
                Some(bytes) => {
                    partition.console_write(bytes, &mut apply::console_out(partition));
                    bytes.len() as i64
                }
                None => HypercallStatus::InvalidParameters.code(),
            }
        }
        _ => HypercallStatus::NotSupported.code(),
    }
}

/// A data abort: emulated if it falls in one of the partition's emulated
/// regions (then true), else false (a fault). An access the syndrome does not
/// describe gets an abort injected (virtio) or stops the partition (GIC, PL011).
fn data_abort(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    esr: u64,
) -> bool {
    // Emulated windows are unmapped: an access there is a stage-2 translation
    // fault, whose IPA HPFAR_EL2 holds. Anything else (a permission fault, an
    // external abort) is no access to emulate, nor is a stage-1 table walk that
    // lands in a window (the guest put its page tables there): a fault.
    let walk = esr & (1 << 7) != 0;
    if walk || stage2::fault_address(esr) != FaultAddress::Hpfar {
        return false;
    }
    let ipa = stage2::fault_ipa(HPFAR_EL2.get(), FAR_EL2.get());
    let Some((device, offset)) = partition.emulated.find(ipa) else {
        return false;
    };
    let Some(decoded) = mmio::decode(esr, ipa) else {
        match (device.on_undecodable(), device) {
            (Undecodable::InjectAbort, Device::Virtio(route)) => {
                let event = Event::VirtioUndecodable {
                    partition: partition.id,
                    vcpu,
                    route,
                    ipa,
                    esr,
                    pc: frame.elr,
                };
                let mut fx = Effects::new();
                fx.log(event);
                apply(system, &fx);
                inject_external_abort(frame, esr);
                return true;
            }
            _ => apply::stop(
                system,
                partition,
                vcpu,
                StopKind::Fault,
                StopReason::Undecodable {
                    ipa,
                    esr,
                    pc: frame.elr,
                },
            ),
        }
    };
    let access = MmioAccess {
        offset,
        size: decoded.size,
        write: decoded.write.then(|| decoded.store_value(&frame.x)),
    };
    // None: the vCPU leaves a wait to take an interrupt; the access executes again.
    if let Some(read) = emulate(system, partition, (vcpu, frame.elr), device, access) {
        if !decoded.write {
            decoded.complete_load(&mut frame.x, read);
        }
        // IL: a 32-bit instruction, or a 16-bit T32 one (AArch32 EL0).
        frame.elr += if esr::is_32bit_instruction(esr) { 4 } else { 2 };
    }
    true
}

/// Emulates `access` to `device` by vCPU `vcpu` at guest PC `pc`; returns the
/// value a load gets, or `None` if the access must execute again.
fn emulate(
    system: &'static System,
    partition: &'static Partition,
    (vcpu, pc): (usize, u64),
    device: Device,
    access: MmioAccess,
) -> Option<u64> {
    let mut fx = Effects::new();
    let read = match device {
        Device::Virtio(route) => {
            let key = AccessKey {
                route,
                offset: access.offset,
                size: access.size,
                write: access.write,
                pc,
            };
            let now = cpu::counter();
            match virtio::frontend_trap(system, key, vcpu, access, &PhysPages, now, &mut fx) {
                Outcome::Done(value) => value,
                Outcome::Wait(_) => {
                    apply(system, &fx);
                    fx = Effects::new();
                    let waited = wait_backend(system, key, vcpu, &mut fx);
                    apply(system, &fx);
                    return waited;
                }
            }
        }
        Device::Pl011 => match &partition.uart {
            Some(uart) => emul::uart(
                partition,
                uart,
                vcpu,
                access,
                &mut apply::console_out(partition),
                &mut fx,
            ),
            None => 0,
        },
        Device::Gicd | Device::Gicr => {
            // Pending and active state of interrupts in other cores' list registers.
            if emul::gic_reads_lr_state(device, access.offset, access) {
                vcpu::sync_other_vcpus(partition, vcpu);
            }
            let mut gic = partition.vgic.lock();
            vgic::lr::read_states(cpu::index(), &mut gic, vcpu);
            emul::gic(partition, &mut gic, vcpu, device, access, &mut fx)
        }
    };
    if !fx.is_empty() {
        apply(system, &fx);
    }
    Some(read)
}

/// Waits in EL2 for the access in flight to complete or fail (the backend's
/// completion, or the timer's event stream, sends an event), but only while no
/// physical interrupt is pending for this core: then it returns `None` and the
/// guest goes back to the faulting instruction, taking the interrupt first (a
/// slow backend must not keep its frontend's timer and IPIs out).
fn wait_backend(system: &System, key: AccessKey, vcpu: usize, fx: &mut Effects) -> Option<u64> {
    loop {
        match virtio::wait_poll(system, key, vcpu, &PhysPages, cpu::counter(), fx) {
            Some(Waited::Value(value)) => return Some(value),
            Some(Waited::Retry) => return None,
            None if cpu::interrupt_pending() => return None,
            None => aarch64_cpu::asm::wfe(),
        }
    }
}

/// Injects a synchronous external abort into the guest in place of the abort
/// with syndrome `esr` it took (FAR_EL2 is its fault address), at the guest's own
/// vector for the EL and state it came from.
fn inject_external_abort(frame: &mut TrapFrame, esr: u64) {
    let esr_el1 = esr::external_abort_for_guest(esr, frame.spsr);
    let features = EntryFeatures::of(&crate::guest_view::get().ids);
    crate::inject::external_abort(frame, esr_el1, FAR_EL2.get(), features);
}
