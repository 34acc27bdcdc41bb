//! PSCI as partitions see it: the decisions, on plain values.
//!
//! A partition's vCPUs are numbered 0..n; the guest names them by virtual MPIDR
//! (Aff0 = the number, all other affinity fields zero), as its DT's `cpu@N` says.
//! The physical cores behind them are never visible, so a partition can start only
//! its own vCPUs.

use ferry_abi::psci::function as f;
use ferry_abi::psci::{PsciRet, affinity};

/// PSCI 1.1, as PSCI_VERSION reports it.
pub const VERSION_1_1: i64 = 0x1_0001;
/// MIGRATE_INFO_TYPE: no trusted OS that needs migration.
pub const MIGRATE_NONE: i64 = 2;

/// A vCPU's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Off: CPU_ON may start it.
    Off,
    /// CPU_ON accepted; its core has not entered the guest yet.
    OnPending,
    /// Running guest code.
    On,
}

/// A PSCI call decoded from the guest's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// PSCI_VERSION.
    Version,
    /// PSCI_FEATURES(function).
    Features(u32),
    /// CPU_ON(target vMPIDR, entry, context).
    CpuOn {
        /// Target virtual MPIDR.
        target: u64,
        /// Guest entry address.
        entry: u64,
        /// Value for the new vCPU's x0.
        context: u64,
    },
    /// CPU_OFF.
    CpuOff,
    /// AFFINITY_INFO(target vMPIDR, lowest affinity level).
    AffinityInfo {
        /// Target virtual MPIDR.
        target: u64,
        /// Lowest affinity level: only 0 is supported.
        level: u64,
    },
    /// MIGRATE_INFO_TYPE.
    MigrateInfoType,
    /// SYSTEM_OFF.
    SystemOff,
    /// SYSTEM_RESET.
    SystemReset,
}

impl Call {
    /// Decodes a PSCI call from x0..x3; `None` if x0 is not a PSCI function Ferry
    /// serves (the caller answers NOT_SUPPORTED).
    pub fn decode(x: [u64; 4]) -> Option<Call> {
        let function = u32::try_from(x[0]).ok()?;
        // SMC32 calls take 32-bit arguments.
        let arg = |i: usize| {
            if !f::is_smc64(function) {
                x[i] & 0xffff_ffff
            } else {
                x[i]
            }
        };
        Some(match function {
            f::VERSION => Call::Version,
            f::FEATURES => Call::Features(arg(1) as u32),
            f::CPU_ON | f::CPU_ON_32 => Call::CpuOn {
                target: arg(1),
                entry: arg(2),
                context: arg(3),
            },
            f::CPU_OFF => Call::CpuOff,
            f::AFFINITY_INFO | f::AFFINITY_INFO_32 => Call::AffinityInfo {
                target: arg(1),
                level: arg(2),
            },
            f::MIGRATE_INFO_TYPE => Call::MigrateInfoType,
            f::SYSTEM_OFF => Call::SystemOff,
            f::SYSTEM_RESET => Call::SystemReset,
            _ => return None,
        })
    }
}

/// Whether PSCI_FEATURES should report `function` as implemented.
pub fn implemented(function: u32) -> bool {
    matches!(
        function,
        f::VERSION
            | f::FEATURES
            | f::CPU_ON
            | f::CPU_ON_32
            | f::CPU_OFF
            | f::AFFINITY_INFO
            | f::AFFINITY_INFO_32
            | f::MIGRATE_INFO_TYPE
            | f::SYSTEM_OFF
            | f::SYSTEM_RESET
    )
}

/// The vCPU a virtual MPIDR names in a partition of `vcpus` vCPUs, if any.
pub fn vcpu_of(mpidr: u64, vcpus: usize) -> Option<usize> {
    // Only Aff0 may be non-zero (Aff1..Aff3 and the flag bits must be clear).
    if mpidr & !0xff != 0 {
        return None;
    }
    let index = mpidr as usize;
    (index < vcpus).then_some(index)
}

/// CPU_ON's answer for a target in `state`, when the entry point is inside the
/// partition's memory or not. `Ok` means: move the target to OnPending.
pub fn cpu_on(state: Power, entry_valid: bool) -> Result<(), PsciRet> {
    match state {
        Power::On => Err(PsciRet::AlreadyOn),
        Power::OnPending => Err(PsciRet::OnPending),
        Power::Off if !entry_valid => Err(PsciRet::InvalidAddress),
        Power::Off => Ok(()),
    }
}

/// AFFINITY_INFO's answer for a vCPU in `state`.
pub fn affinity_info(state: Power) -> i64 {
    match state {
        Power::On => affinity::ON,
        Power::Off => affinity::OFF,
        Power::OnPending => affinity::ON_PENDING,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_calls() {
        assert_eq!(Call::decode([0x8400_0000, 0, 0, 0]), Some(Call::Version));
        assert_eq!(
            Call::decode([0xC400_0003, 1, 0x4000_1000, 7]),
            Some(Call::CpuOn {
                target: 1,
                entry: 0x4000_1000,
                context: 7
            })
        );
        // SMC32 CPU_ON ignores the upper halves.
        assert_eq!(
            Call::decode([0x8400_0003, 0xffff_0000_0000_0001, 0x1_4000_1000, 0]),
            Some(Call::CpuOn {
                target: 1,
                entry: 0x4000_1000,
                context: 0
            })
        );
        assert_eq!(Call::decode([0x8400_0008, 0, 0, 0]), Some(Call::SystemOff));
        assert_eq!(
            Call::decode([0x8400_0001, 0, 0, 0]),
            None,
            "CPU_SUSPEND is not served"
        );
        assert_eq!(
            Call::decode([0x1_8400_0000, 0, 0, 0]),
            None,
            "x0 beyond 32 bits"
        );
        assert_eq!(
            Call::decode([0x8600_0001, 0, 0, 0]),
            None,
            "Ferry's own calls are not PSCI"
        );
    }

    #[test]
    fn only_own_vcpus_are_named() {
        assert_eq!(vcpu_of(0, 2), Some(0));
        assert_eq!(vcpu_of(1, 2), Some(1));
        assert_eq!(vcpu_of(2, 2), None);
        assert_eq!(vcpu_of(0x100, 4), None, "Aff1 set");
        assert_eq!(vcpu_of(0x8000_0001, 4), None, "MPIDR flag bits set");
        assert_eq!(vcpu_of(1 << 32, 4), None, "Aff3 set");
    }

    #[test]
    fn power_transitions() {
        assert_eq!(cpu_on(Power::Off, true), Ok(()));
        assert_eq!(cpu_on(Power::Off, false), Err(PsciRet::InvalidAddress));
        assert_eq!(cpu_on(Power::On, true), Err(PsciRet::AlreadyOn));
        assert_eq!(cpu_on(Power::OnPending, true), Err(PsciRet::OnPending));
        assert_eq!(affinity_info(Power::On), 0);
        assert_eq!(affinity_info(Power::Off), 1);
        assert_eq!(affinity_info(Power::OnPending), 2);
        assert!(implemented(f::CPU_ON));
        assert!(!implemented(0x8400_0001));
        assert!(!implemented(0x8600_1234));
    }
}
