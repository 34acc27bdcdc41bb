//! vCPU power states (PSCI CPU_ON, CPU_OFF, AFFINITY_INFO) and the PSCI calls a
//! partition makes, decided on plain values.
//!
//! A vCPU moves Off -> Claimed -> OnPending -> On -> Off. CPU_ON claims an off
//! vCPU with one compare-and-swap, only then writes the entry point and context,
//! and publishes them with the move to OnPending: of two concurrent CPU_ONs for
//! one target exactly one wins, and the target starts at the winner's entry point.
//! A claimed vCPU reads as ON_PENDING (it is, for every caller but the winner).

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use super::effect::{Effect, Effects};
use super::event::{Event, StopReason};
use super::partition::Partition;
use super::wait::VcpuWait;
use crate::policy::StopKind;
use ferry_abi::psci::PsciRet;

use crate::vpsci::{self, Call, Power};

const OFF: u8 = 0;
const CLAIMED: u8 = 1;
const ON_PENDING: u8 = 2;
const ON: u8 = 3;

/// One vCPU: the physical core it runs on and its PSCI power state.
#[derive(Debug)]
pub struct Vcpu {
    /// Ferry's logical index of the physical core it runs on.
    pub core: usize,
    /// The MPIDR of the physical core it runs on (for SGIs).
    pub core_mpidr: u64,
    /// Its synchronous virtio access in flight, if it is a frontend's.
    pub wait: spin::Mutex<VcpuWait>,
    state: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
}

impl Vcpu {
    /// A vCPU on core `core` (logical index) with `core_mpidr`, off.
    pub fn new(core: usize, core_mpidr: u64) -> Vcpu {
        Vcpu {
            core,
            core_mpidr,
            wait: spin::Mutex::new(VcpuWait::default()),
            state: AtomicU8::new(OFF),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
        }
    }

    /// The power state as PSCI reports it.
    pub fn power(&self) -> Power {
        match self.state.load(Ordering::Acquire) {
            ON => Power::On,
            CLAIMED | ON_PENDING => Power::OnPending,
            _ => Power::Off,
        }
    }

    /// Off -> OnPending with the entry point and x0; false if it was not off (the
    /// entry point of a vCPU someone else switched on is left alone).
    pub fn request_on(&self, entry: u64, context: u64) -> bool {
        if self
            .state
            .compare_exchange(OFF, CLAIMED, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(context, Ordering::Relaxed);
        // Publishes entry and context with the state that makes them valid.
        self.state.store(ON_PENDING, Ordering::Release);
        true
    }

    /// OnPending -> On: returns (entry, x0) for the core to start the vCPU with.
    pub fn take_start(&self) -> Option<(u64, u64)> {
        self.state
            .compare_exchange(ON_PENDING, ON, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| {
                self.wait.lock().restart();
                (
                    self.entry.load(Ordering::Relaxed),
                    self.context.load(Ordering::Relaxed),
                )
            })
    }

    /// On -> Off (PSCI CPU_OFF).
    pub fn set_off(&self) {
        self.state.store(OFF, Ordering::Release);
    }
}

/// What the calling vCPU does after a PSCI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciNext {
    /// Return to the guest with this value in x0.
    Return(i64),
    /// The vCPU is off: its core waits for the next CPU_ON.
    Park,
    /// The partition stops (SYSTEM_OFF, SYSTEM_RESET).
    Stop(StopKind, StopReason),
}

/// Serves PSCI `call` from `vcpu` of `partition`.
pub fn psci(partition: &Partition, vcpu: usize, call: Call, fx: &mut Effects) -> PsciNext {
    let value = match call {
        Call::Version => vpsci::VERSION_1_1,
        Call::Features(function) if vpsci::implemented(function) => PsciRet::Success.code(),
        Call::Features(_) => PsciRet::NotSupported.code(),
        Call::MigrateInfoType => vpsci::MIGRATE_NONE,
        Call::CpuOn {
            target,
            entry,
            context,
        } => cpu_on(partition, vcpu, target, entry, context, fx),
        Call::CpuOff => {
            partition.vcpus[vcpu].set_off();
            fx.log(Event::VcpuOff {
                partition: partition.id,
                vcpu,
            });
            return PsciNext::Park;
        }
        Call::AffinityInfo { target, level } => {
            match (level, vpsci::vcpu_of(target, partition.vcpus.len())) {
                (0, Some(index)) => vpsci::affinity_info(partition.vcpus[index].power()),
                _ => PsciRet::InvalidParameters.code(),
            }
        }
        Call::SystemOff => return PsciNext::Stop(StopKind::SystemOff, StopReason::SystemOff),
        Call::SystemReset => {
            return PsciNext::Stop(StopKind::SystemReset, StopReason::SystemReset);
        }
    };
    PsciNext::Return(value)
}

/// CPU_ON(target, entry, context) from `vcpu`: the PSCI answer; on success the
/// target's core is woken.
fn cpu_on(
    partition: &Partition,
    vcpu: usize,
    target: u64,
    entry: u64,
    context: u64,
    fx: &mut Effects,
) -> i64 {
    let Some(index) = vpsci::vcpu_of(target, partition.vcpus.len()) else {
        fx.log(Event::CpuOnRefused {
            partition: partition.id,
            vcpu,
            target,
        });
        return PsciRet::InvalidParameters.code();
    };
    let target_vcpu = &partition.vcpus[index];
    if let Err(code) = vpsci::cpu_on(target_vcpu.power(), partition.contains_ipa(entry, 4)) {
        return code.code();
    }
    if !target_vcpu.request_on(entry, context) {
        // Another vCPU switched it on in the meantime.
        return vpsci::cpu_on(target_vcpu.power(), true)
            .err()
            .unwrap_or(PsciRet::AlreadyOn)
            .code();
    }
    // Its core sleeps in WFI until an interrupt: the kick wakes it.
    fx.push(Effect::KickVgic {
        partition: partition.id,
        vcpus: 1 << index,
    });
    PsciRet::Success.code()
}
