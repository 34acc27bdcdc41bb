//! Synchronous exceptions from partitions: PSCI and Ferry's hypercalls (HVC, and
//! trapped SMC), and aborts that stop the partition.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2};
use ferry_abi::hypercall;
use ferry_boot::trap::TrapFrame;
use tock_registers::interfaces::Readable;

use crate::partition::{self, Partition, System};
use crate::policy::StopKind;
use crate::vpsci::{self, Call, ret};
use crate::{esr, mmio, stage2, vcpu, vgic, virtio};

/// Handles a synchronous exception from the guest on this core.
pub fn handle(frame: &mut TrapFrame) {
    let Some((system, partition, vcpu)) = partition::current() else {
        crate::trap::fatal(8, frame, "a guest exception on a core that runs no vCPU");
    };
    let esr = ESR_EL2.get();
    match esr::class(esr) {
        // HVC #0 (SMCCC); ELR already points after it.
        0x16 if esr::syndrome(esr) & 0xffff == 0 => call(system, partition, vcpu, frame),
        0x16 => frame.x[0] = ret::NOT_SUPPORTED as u64,
        // Trapped SMC: ELR points at the SMC itself.
        0x17 => {
            frame.elr += 4;
            call(system, partition, vcpu, frame);
        }
        // MSR/MRS: the only trapped one is ICC_SGI1R_EL1 (SGI generation).
        0x18 => {
            sysreg(system, partition, vcpu, frame, esr);
            frame.elr += 4;
        }
        0x24 if let Some(next) = emulate(system, partition, vcpu, frame, esr) => {
            if next == Resume::After {
                frame.elr += 4;
            }
        }
        ec @ (0x20 | 0x24) => {
            let ipa = stage2::fault_ipa(HPFAR_EL2.get(), FAR_EL2.get());
            let what = if ec == 0x24 { "data" } else { "instruction" };
            let access = if ec == 0x24 && esr & (1 << 6) != 0 {
                "write"
            } else {
                "access"
            };
            partition::stop(
                system,
                partition,
                vcpu,
                StopKind::Fault,
                format_args!(
                    "stage-2 {what} abort: {access} at IPA {ipa:#x} outside its memory and devices (ESR_EL2 {esr:#x}, PC {:#x}, {})",
                    frame.elr,
                    esr::abort_status_name(esr).unwrap_or("?"),
                ),
            )
        }
        ec => partition::stop(
            system,
            partition,
            vcpu,
            StopKind::Fault,
            format_args!(
                "unhandled exception class {ec:#04x} ({}), ESR_EL2 {esr:#x}, PC {:#x}",
                esr::class_name(ec),
                frame.elr
            ),
        ),
    }
}

/// An SMCCC call from the guest: PSCI or one of Ferry's hypercalls.
fn call(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
) {
    let x = frame.x;
    if let Some(call) = Call::decode([x[0], x[1], x[2], x[3]]) {
        frame.x[0] = psci(system, partition, vcpu, call) as u64;
        return;
    }
    frame.x[0] = match x[0] {
        v if v == u64::from(hypercall::VERSION) => hypercall::ABI_VERSION,
        v if v == u64::from(hypercall::IOREQ_COMPLETE) => {
            virtio::complete(system, partition, x[1], x[2], x[3]) as u64
        }
        v if v == u64::from(hypercall::NOTIFY_FRONTEND) => {
            virtio::notify_frontend(system, partition, x[1]) as u64
        }
        v if v == u64::from(hypercall::BACKEND_READY) => virtio::backend_ready(partition) as u64,
        v if v == u64::from(hypercall::CONSOLE_WRITE) => {
            let mut buf = [0; hypercall::CONSOLE_WRITE_MAX];
            match hypercall::console_bytes(x[1], [x[2], x[3], x[4]], &mut buf) {
                Some(bytes) => {
                    partition.console_write(bytes);
                    bytes.len() as u64
                }
                None => hypercall::INVALID_PARAMETERS as u64,
            }
        }
        _ => hypercall::NOT_SUPPORTED as u64,
    };
}

/// Serves a PSCI call for `vcpu` of `partition`; returns x0.
fn psci(system: &'static System, partition: &'static Partition, vcpu: usize, call: Call) -> i64 {
    match call {
        Call::Version => vpsci::VERSION_1_1,
        Call::Features(function) => {
            if vpsci::implemented(function) {
                ret::SUCCESS
            } else {
                ret::NOT_SUPPORTED
            }
        }
        Call::MigrateInfoType => vpsci::MIGRATE_NONE,
        Call::CpuOn {
            target,
            entry,
            context,
        } => {
            let Some(index) = vpsci::vcpu_of(target, partition.vcpus.len()) else {
                log::info!(
                    "partition '{}' vCPU {vcpu}: CPU_ON({target:#x}) refused: it has no such vCPU",
                    partition.label
                );
                return ret::INVALID_PARAMETERS;
            };
            let target_vcpu = &partition.vcpus[index];
            if let Err(code) = vpsci::cpu_on(target_vcpu.power(), partition.contains_ipa(entry, 4))
            {
                return code;
            }
            if !target_vcpu.request_on(entry, context) {
                // Another vCPU switched it on in the meantime.
                return vpsci::cpu_on(target_vcpu.power(), true)
                    .err()
                    .unwrap_or(ret::ALREADY_ON);
            }
            crate::irq::kick_vgic(target_vcpu.core_mpidr);
            ret::SUCCESS
        }
        Call::CpuOff => {
            partition.vcpus[vcpu].set_off();
            log::debug!("partition '{}' vCPU {vcpu} off", partition.label);
            vcpu::park()
        }
        Call::AffinityInfo { target, level } => {
            match (level, vpsci::vcpu_of(target, partition.vcpus.len())) {
                (0, Some(index)) => vpsci::affinity_info(partition.vcpus[index].power()),
                _ => ret::INVALID_PARAMETERS,
            }
        }
        Call::SystemOff => partition::stop(
            system,
            partition,
            vcpu,
            StopKind::SystemOff,
            format_args!("PSCI SYSTEM_OFF"),
        ),
        Call::SystemReset => partition::stop(
            system,
            partition,
            vcpu,
            StopKind::SystemReset,
            format_args!("PSCI SYSTEM_RESET"),
        ),
    }
}

/// Emulates a data abort in one of the partition's emulated windows (virtio
/// devices, GIC distributor and redistributors, the PL011 console). Returns `None` if
/// the address is in none, so the caller treats it as a fault. An access the syndrome does not describe stops
/// the partition.
fn emulate(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    esr: u64,
) -> Option<Resume> {
    let ipa = stage2::fault_ipa(HPFAR_EL2.get(), FAR_EL2.get());
    if let Some(route) = virtio::route_at(system, partition.id, ipa) {
        match mmio::decode(esr, ipa) {
            Some(access) => virtio::frontend_access(system, route, vcpu, &access, &mut frame.x),
            None => {
                log::warn!(
                    "partition '{}' vCPU {vcpu}: an access to virtio device {} at IPA {ipa:#x} that cannot be decoded (ESR_EL2 {esr:#x}, PC {:#x}): abort injected",
                    partition.label,
                    route.index,
                    frame.elr
                );
                inject_data_abort(frame, FAR_EL2.get());
                return Some(Resume::At);
            }
        }
        return Some(Resume::After);
    }
    let redist_end = partition.gicr_base + vgic::REDIST_STRIDE * partition.vcpus.len() as u64;
    let in_dist = ipa >= partition.gicd.base && ipa < partition.gicd.base + vgic::DIST_SIZE;
    let in_redist = ipa >= partition.gicr_base && ipa < redist_end;
    let uart = partition.uart.as_ref().filter(|u| u.window.contains(ipa));
    if !in_dist && !in_redist && uart.is_none() {
        return None;
    }
    let Some(access) = mmio::decode(esr, ipa) else {
        partition::stop(
            system,
            partition,
            vcpu,
            StopKind::Fault,
            format_args!(
                "an access to the GIC at IPA {ipa:#x} that cannot be emulated (ESR_EL2 {esr:#x}: no syndrome; PC {:#x})",
                frame.elr
            ),
        );
    };
    let value = access.write.then(|| access.store_value(&frame.x));
    if let Some(uart) = uart {
        let offset = ipa - uart.window.base;
        let (read, level) = {
            let mut device = uart.device.lock();
            let read = match value {
                Some(v) => {
                    device.write(offset, access.size, v, &mut |b| {
                        partition.console_write(&[b])
                    });
                    0
                }
                None => device.read(offset, access.size),
            };
            (read, device.irq_level())
        };
        if !access.write {
            access.complete_load(&mut frame.x, read);
        }
        partition.uart_irq(uart, level, vcpu);
        return Some(Resume::After);
    }
    // Pending and active state of interrupts in other cores' list registers.
    let offset_in_frame = if in_dist {
        ipa - partition.gicd.base
    } else {
        (ipa - partition.gicr_base) % vgic::REDIST_STRIDE
    };
    if !access.write && vgic::regs::reads_lr_state(in_dist, offset_in_frame) {
        vcpu::sync_other_vcpus(partition, vcpu);
    }
    let mut gic = partition.vgic.lock();
    vgic::lr::read_states(crate::cpu::index(), &mut gic, vcpu);
    let (read, update) = if in_dist {
        vgic::regs::dist(&mut gic, ipa - partition.gicd.base, access.size, value)
    } else {
        let offset = ipa - partition.gicr_base;
        let target = (offset / vgic::REDIST_STRIDE) as usize;
        vgic::regs::redist(
            &mut gic,
            target,
            offset % vgic::REDIST_STRIDE,
            access.size,
            value,
        )
    };
    // A passthrough SPI re-routed by the guest: the physical one follows it to the
    // core of its new vCPU (acknowledge and deactivation stay on one core).
    let rerouted = (in_dist && access.write && (0x6100..0x7fe0).contains(&offset_in_frame))
        .then(|| (offset_in_frame - 0x6100) as u32 / 8 + vgic::PRIVATE)
        .filter(|&intid| gic.irq(vcpu, intid).is_some_and(|irq| irq.hw))
        .map(|intid| (intid, gic.spi_target(intid)));
    drop(gic);
    if let (Some((intid, target)), Some(physical)) = (rerouted, crate::smp::GIC.get()) {
        physical.route_spi(intid, partition.vcpus[target].core_mpidr);
    }
    if !access.write {
        access.complete_load(&mut frame.x, read);
    }
    partition.update_vcpus(update, vcpu);
    Some(Resume::After)
}

/// Where the guest resumes after an emulated access.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// After the access (it was emulated).
    After,
    /// At the address already in ELR (an exception was injected).
    At,
}

/// A trapped MSR: ICC_SGI1R_EL1 sends SGIs within the partition; ICC_ASGI1R_EL1 and
/// ICC_SGI0R_EL1 (Group 0 and alias) are ignored; anything else stops the partition.
fn sysreg(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    frame: &mut TrapFrame,
    esr: u64,
) {
    let iss = esr::syndrome(esr);
    let (op0, op2, op1, crn, rt, crm, read) = (
        iss >> 20 & 3,
        iss >> 17 & 7,
        iss >> 14 & 7,
        iss >> 10 & 0xf,
        (iss >> 5 & 0x1f) as usize,
        iss >> 1 & 0xf,
        iss & 1 == 1,
    );
    match (op0, op1, crn, crm, op2, read) {
        (3, 0, 12, 11, 5, false) => {
            let value = frame.x.get(rt).copied().unwrap_or(0);
            let targets = vgic::regs::send_sgi(&mut partition.vgic.lock(), vcpu, value);
            partition.update_vcpus(targets, vcpu);
        }
        (3, 0, 12, 11, 6 | 7, false) => {}
        _ => partition::stop(
            system,
            partition,
            vcpu,
            StopKind::Fault,
            format_args!(
                "a trapped system register access Ferry does not emulate (ESR_EL2 {esr:#x}, PC {:#x})",
                frame.elr
            ),
        ),
    }
}

/// Injects a synchronous external data abort into the guest at EL1, as if the
/// access had faulted there: ESR_EL1, FAR_EL1, ELR_EL1 and SPSR_EL1 describe it and
/// the guest resumes at its vector for the exception.
fn inject_data_abort(frame: &mut TrapFrame, far: u64) {
    use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, SPSR_EL1, VBAR_EL1};
    use tock_registers::interfaces::Writeable;
    // From EL1h (SPSR M = 0b0101) the vector is "current EL with SP_ELx"; from
    // EL0, "lower EL, AArch64".
    let from_el1 = frame.spsr & 0b1111 != 0;
    let (ec, vector) = if from_el1 {
        (0x25u64, 0x200)
    } else {
        (0x24u64, 0x400)
    };
    // IL = 1, DFSC = 0b010000: synchronous external abort.
    ESR_EL1.set(ec << 26 | 1 << 25 | 0b01_0000);
    FAR_EL1.set(far);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + vector;
    // EL1h with D, A, I, F masked.
    frame.spsr = ferry_boot::context::SPSR_EL1H_MASKED;
}
