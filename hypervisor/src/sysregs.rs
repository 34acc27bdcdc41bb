//! The EL2 system register values a guest runs under, built from the
//! architecture's field definitions: aarch64-cpu's where it has the field, and
//! the few it lacks defined here once (Arm ARM, nVHE layouts: Ferry runs with
//! HCR_EL2.E2H = 0). The shell (`vcpu`) writes them; host tests pin the values.
#![forbid(unsafe_code)]

use aarch64_cpu::registers::HCR_EL2;
/// Register fields aarch64-cpu 11 does not define (the macro's generated items
/// carry no docs of their own; each field has its doc comment).
#[allow(missing_docs)]
pub mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// CPTR_EL2 with E2H = 0 (aarch64-cpu 11 defines TAM only).
        pub CPTR_EL2_NVHE [
            /// Trap CPACR_EL1 accesses.
            TCPAC OFFSET(31) NUMBITS(1) [],
            /// Trap Activity Monitor accesses.
            TAM OFFSET(30) NUMBITS(1) [],
            /// Trap trace register accesses.
            TTA OFFSET(20) NUMBITS(1) [],
            /// RES1 bit 13.
            RES1_13 OFFSET(13) NUMBITS(1) [],
            /// Trap SME (RES1 without FEAT_SME).
            TSM OFFSET(12) NUMBITS(1) [],
            /// Trap FP/SIMD.
            TFP OFFSET(10) NUMBITS(1) [],
            /// RES1 bit 9.
            RES1_9 OFFSET(9) NUMBITS(1) [],
            /// Trap SVE (RES1 without FEAT_SVE).
            TZ OFFSET(8) NUMBITS(1) [],
            /// RES1 bits 7:0.
            RES1_LOW OFFSET(0) NUMBITS(8) []
        ],
        /// CNTHCTL_EL2 with E2H = 0 (aarch64-cpu 11 lacks the event stream).
        pub CNTHCTL_EL2_NVHE [
            /// Event stream: which counter bit triggers an event.
            EVNTI OFFSET(4) NUMBITS(4) [],
            /// Event stream: on a 1-to-0 transition (else 0-to-1).
            EVNTDIR OFFSET(3) NUMBITS(1) [],
            /// Event stream enable.
            EVNTEN OFFSET(2) NUMBITS(1) [],
            /// EL1 may use the physical timer.
            EL1PCEN OFFSET(1) NUMBITS(1) [],
            /// EL1 may read the physical counter.
            EL1PCTEN OFFSET(0) NUMBITS(1) []
        ],
        /// HCRX_EL2 (FEAT_HCX; not in aarch64-cpu 11).
        pub HCRX_EL2 [
            /// FEAT_MOPS instructions enabled at EL1 and EL0.
            MSCEN OFFSET(11) NUMBITS(1) []
        ]
    }
}

use fields::{CNTHCTL_EL2_NVHE, CPTR_EL2_NVHE, HCRX_EL2};

/// HCR_EL2 while a guest runs: stage 2 on, AArch64 EL1, physical IRQ/FIQ/SError
/// to EL2, SMC trapped (PSCI by SMC), set/way cache operations upgraded, barriers
/// inner-shareable, TLB and cache maintenance broadcast. WFI/WFE do not trap.
pub const HCR_GUEST: u64 = HCR_EL2::VM::Enable.value
    | HCR_EL2::SWIO::SET.value
    | HCR_EL2::FMO::EnableVirtualFIQ.value
    | HCR_EL2::IMO::EnableVirtualIRQ.value
    | HCR_EL2::AMO::SET.value
    | HCR_EL2::FB::SET.value
    | HCR_EL2::BSU::InnerShareable.value
    | HCR_EL2::TSC::EnableTrapEl1SmcToEl2.value
    | HCR_EL2::RW::EL1IsAarch64.value;

/// HCR_EL2.APK | API: pointer-authentication key registers and instructions do
/// not trap. Set only on a core with pointer authentication (RES0 otherwise); each
/// vCPU owns its core, so the guest's keys are never switched.
pub const HCR_PAUTH: u64 = HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2.value
    | HCR_EL2::API::DisableTrapPointerAuthInstToEl2.value;

/// CPTR_EL2 while a guest runs: RES1 bits set, FP/SIMD not trapped (Ferry never
/// touches those registers, so guest state stays in them), SVE and SME trapped
/// ([`CPTR_TZ`] is cleared on a core with SVE).
pub const CPTR_GUEST: u64 = CPTR_EL2_NVHE::RES1_LOW.mask << CPTR_EL2_NVHE::RES1_LOW.shift
    | CPTR_EL2_NVHE::RES1_9::SET.value
    | CPTR_EL2_NVHE::RES1_13::SET.value
    | CPTR_EL2_NVHE::TZ::SET.value
    | CPTR_EL2_NVHE::TSM::SET.value;

/// CPTR_EL2.TZ: traps SVE.
pub const CPTR_TZ: u64 = CPTR_EL2_NVHE::TZ::SET.value;

/// CNTHCTL_EL2 while a guest runs: EL1 may use the physical counter and timer;
/// the event stream (every 2^11 ticks, counter bit 10) wakes a core waiting in WFE
/// for a backend at least that often.
pub const CNTHCTL_GUEST: u64 = CNTHCTL_EL2_NVHE::EL1PCTEN::SET.value
    | CNTHCTL_EL2_NVHE::EL1PCEN::SET.value
    | CNTHCTL_EL2_NVHE::EVNTEN::SET.value
    | (10 << CNTHCTL_EL2_NVHE::EVNTI.shift);

/// HCRX_EL2.MSCEn: the memory copy/set instructions (FEAT_MOPS) are enabled at
/// EL1/EL0. Without it they are UNDEFINED there even though the ID registers
/// advertise them, and a guest that trusts those (Linux and its libc do) dies of
/// SIGILL.
pub const HCRX_MSCEN: u64 = HCRX_EL2::MSCEN::SET.value;

/// SCTLR_EL1 at vCPU start: MMU and caches off, RES1 bits (29:28, 23:22, 20, 11)
/// set.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// HCR_EL2 for a guest on a core with (or without) pointer authentication.
pub const fn hcr_guest(pauth: bool) -> u64 {
    if pauth {
        HCR_GUEST | HCR_PAUTH
    } else {
        HCR_GUEST
    }
}

/// CPTR_EL2 for a guest on a core with (or without) SVE.
pub const fn cptr_guest(sve: bool) -> u64 {
    if sve {
        CPTR_GUEST & !CPTR_TZ
    } else {
        CPTR_GUEST
    }
}

/// Whether ID_AA64ISAR1_EL1 / ID_AA64ISAR2_EL1 show pointer authentication (APA,
/// API, GPA, GPI at 7:4, 11:8, 27:24, 31:28; APA3, GPA3 at 15:12, 11:8).
pub const fn pauth_implemented(isar1: u64, isar2: u64) -> bool {
    isar1 & 0xff00_0ff0 != 0 || isar2 & 0xff00 != 0
}

/// Whether ID_AA64PFR0_EL1 shows SVE (bits 35:32).
pub const fn sve_implemented(pfr0: u64) -> bool {
    (pfr0 >> 32) & 0xf != 0
}

/// HCRX_EL2 for a guest, if the core has FEAT_HCX (ID_AA64MMFR1_EL1 bits 43:40):
/// MOPS enabled when ID_AA64ISAR2_EL1 (bits 19:16) shows it.
pub const fn hcrx_guest(mmfr1: u64, isar2: u64) -> Option<u64> {
    if (mmfr1 >> 40) & 0xf == 0 {
        return None;
    }
    Some(if (isar2 >> 16) & 0xf != 0 {
        HCRX_MSCEN
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Ferry has always run guests with (before they were built from
    /// field definitions).
    #[test]
    fn values_are_the_architected_bits() {
        assert_eq!(
            HCR_GUEST,
            1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 1 << 10 | 1 << 19 | 1 << 31
        );
        assert_eq!(HCR_PAUTH, 1 << 40 | 1 << 41);
        assert_eq!(CPTR_GUEST, 0x33ff);
        assert_eq!(CPTR_TZ, 1 << 8);
        assert_eq!(CNTHCTL_GUEST, 0b11 | 1 << 2 | 10 << 4);
        assert_eq!(HCRX_MSCEN, 1 << 11);
    }

    #[test]
    fn guest_hcr_traps_smc_and_routes_interrupts_to_el2() {
        assert_ne!(HCR_GUEST & HCR_EL2::TSC::SET.value, 0);
        assert_ne!(HCR_GUEST & HCR_EL2::IMO::SET.value, 0);
        assert_eq!(HCR_GUEST & HCR_EL2::TWI::SET.value, 0, "WFI does not trap");
        assert_eq!(HCR_GUEST & HCR_EL2::TWE::SET.value, 0, "WFE does not trap");
        assert_eq!(HCR_GUEST & HCR_EL2::E2H::SET.value, 0, "nVHE");
        assert_eq!(hcr_guest(false), HCR_GUEST);
        assert_eq!(hcr_guest(true), HCR_GUEST | HCR_PAUTH);
    }

    #[test]
    fn sve_is_untrapped_only_where_implemented() {
        assert_eq!(cptr_guest(false) & CPTR_TZ, CPTR_TZ);
        assert_eq!(cptr_guest(true) & CPTR_TZ, 0);
        assert_eq!(
            cptr_guest(true) & CPTR_EL2_NVHE::TFP::SET.value,
            0,
            "FP never trapped"
        );
        assert!(sve_implemented(1 << 32));
        assert!(!sve_implemented(0xffff_ffff));
    }

    #[test]
    fn id_register_fields() {
        assert!(pauth_implemented(0x10, 0));
        assert!(pauth_implemented(0x1000_0000, 0));
        assert!(pauth_implemented(0, 0x1000));
        assert!(!pauth_implemented(0x00ff_f00f, 0xff));
        assert_eq!(hcrx_guest(0, u64::MAX), None, "no FEAT_HCX");
        assert_eq!(hcrx_guest(1 << 40, 0), Some(0));
        assert_eq!(hcrx_guest(1 << 40, 1 << 16), Some(HCRX_MSCEN));
    }
}
