//! Synchronous exceptions from partitions: PSCI and Ferry's hypercalls (HVC, and
//! trapped SMC), and aborts that stop the partition.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2};
use ferry_abi::hypercall;
use ferry_boot::trap::TrapFrame;
use tock_registers::interfaces::Readable;

use crate::partition::{self, Partition, System};
use crate::policy::StopKind;
use crate::vpsci::{self, Call, ret};
use crate::{esr, stage2, vcpu};

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
            aarch64_cpu::asm::sev();
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
