//! The EL2 system register values a guest runs under, built from the
//! architecture's field definitions: aarch64-cpu's where it has the field, and
//! the few it lacks defined here once (Arm ARM, nVHE layouts: Ferry runs with
//! HCR_EL2.E2H = 0). The shell (`vcpu`) writes them; host tests pin the values.
//!
//! What a core implements decides some of them ([`Features`], from its ID
//! registers as read at EL2): a trap bit that is RES0 without its feature is set
//! only with the feature. What each trap leads to (UNDEFINED, RAZ/WI, emulated) is
//! `state::sysreg`'s; what the ID registers then advertise, `state::idregs`'s.
//! docs/partitions.md, "System registers", has the policy.
#![forbid(unsafe_code)]

use aarch64_cpu::registers::{
    HCR_EL2, ID_AA64DFR0_EL1, ID_AA64ISAR1_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, MDCR_EL2,
};

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
        ],
        /// MPAM2_EL2 (FEAT_MPAM).
        pub MPAM2_EL2 [
            /// Trap MPAMIDR_EL1 reads (with MPAMIDR_EL1.HAS_TIDR).
            TIDR OFFSET(58) NUMBITS(1) [],
            /// Trap MPAM0_EL1 accesses from EL1.
            TRAPMPAM0EL1 OFFSET(49) NUMBITS(1) [],
            /// Trap MPAM1_EL1 accesses from EL1.
            TRAPMPAM1EL1 OFFSET(48) NUMBITS(1) []
        ],
        /// MPAMIDR_EL1 (FEAT_MPAM).
        pub MPAMIDR_EL1 [
            /// MPAM2_EL2.TIDR exists.
            HAS_TIDR OFFSET(58) NUMBITS(1) [],
            /// MPAMHCR_EL2 exists.
            HAS_HCR OFFSET(17) NUMBITS(1) []
        ],
        /// PMCR_EL0 (FEAT_PMUv3).
        pub PMCR_EL0 [
            /// Event counters implemented.
            N OFFSET(11) NUMBITS(5) []
        ]
    }
}

use crate::state::idregs::fields::{
    ID_AA64ISAR2, ID_AA64MMFR0, ID_AA64MMFR1, ID_AA64PFR0, ID_AA64PFR1,
};
use crate::state::idregs::{IdSpace, id};
use fields::{CNTHCTL_EL2_NVHE, CPTR_EL2_NVHE, HCRX_EL2, MPAM2_EL2, MPAMIDR_EL1, PMCR_EL0};

/// What a core implements that the trap set-up depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Pointer authentication (any algorithm).
    pub pauth: bool,
    /// SVE.
    pub sve: bool,
    /// HCRX_EL2 (FEAT_HCX).
    pub hcx: bool,
    /// The memory copy and set instructions.
    pub mops: bool,
    /// The RAS extension (HCR_EL2.TERR, TEA; VDISR_EL2).
    pub ras: bool,
    /// Limited ordering regions (HCR_EL2.TLOR).
    pub lor: bool,
    /// Activity monitors (CPTR_EL2.TAM).
    pub amu: bool,
    /// PMUv3's version (ID_AA64DFR0_EL1.PMUVer 1..=14), if it has PMUv3.
    pub pmuv3: Option<u8>,
    /// The statistical profiling extension (MDCR_EL2.TPMS).
    pub spe: bool,
    /// Self-hosted trace filtering (MDCR_EL2.TTRF).
    pub trace_filter: bool,
    /// Fine-grained traps: 0, 1 (FEAT_FGT) or 2 (FEAT_FGT2).
    pub fgt: u8,
    /// SCXTNUM_ELx (FEAT_CSV2_2 or FEAT_CSV2_1p2: HCR_EL2.EnSCXT).
    pub scxtnum: bool,
    /// MPAM (MPAM2_EL2).
    pub mpam: bool,
}

impl Features {
    /// What the core whose ID registers are `ids` implements.
    pub fn of(ids: &IdSpace) -> Features {
        let isar1 = ids.get(id::ISAR1);
        let pauth = ID_AA64ISAR1_EL1::APA.read(isar1)
            | ID_AA64ISAR1_EL1::API.read(isar1)
            | ID_AA64ISAR1_EL1::GPA.read(isar1)
            | ID_AA64ISAR1_EL1::GPI.read(isar1)
            | ids.field(id::ISAR2, ID_AA64ISAR2::APA3)
            | ids.field(id::ISAR2, ID_AA64ISAR2::GPA3)
            != 0;
        let pmuver = ids.field(id::DFR0, ID_AA64DFR0_EL1::PMUVer) as u8;
        let csv2 = ids.field(id::PFR0, ID_AA64PFR0::CSV2);
        let csv2_frac = ids.field(id::PFR1, ID_AA64PFR1::CSV2_FRAC);
        Features {
            pauth,
            sve: ids.field(id::PFR0, ID_AA64PFR0_EL1::SVE) != 0,
            hcx: ids.field(id::MMFR1, ID_AA64MMFR1::HCX) != 0,
            mops: ids.field(id::ISAR2, ID_AA64ISAR2::MOPS) != 0,
            ras: ids.field(id::PFR0, ID_AA64PFR0::RAS) != 0,
            lor: ids.field(id::MMFR1, ID_AA64MMFR1_EL1::LO) != 0,
            amu: ids.field(id::PFR0, ID_AA64PFR0_EL1::AMU) != 0,
            pmuv3: (1..=14).contains(&pmuver).then_some(pmuver),
            spe: ids.field(id::DFR0, ID_AA64DFR0_EL1::PMSVer) != 0,
            trace_filter: ids.field(id::DFR0, ID_AA64DFR0_EL1::TraceFilt) != 0,
            fgt: ids.field(id::MMFR0, ID_AA64MMFR0::FGT).min(2) as u8,
            scxtnum: csv2 >= 2 || (csv2 == 1 && csv2_frac >= 2),
            mpam: ids.field(id::PFR0, ID_AA64PFR0::MPAM)
                | ids.field(id::PFR1, ID_AA64PFR1::MPAM_FRAC)
                != 0,
        }
    }
}

/// HCR_EL2 while a guest runs, on any core: stage 2 on, AArch64 EL1, physical
/// IRQ/FIQ/SError to EL2, SMC trapped (PSCI by SMC), set/way cache operations
/// upgraded, barriers inner-shareable, TLB and cache maintenance broadcast; ID
/// registers (TID3; TID1: AIDR, REVIDR, SMIDR), IMPLEMENTATION DEFINED registers
/// (TIDCP) and ACTLR_EL1 (TACR) trapped. WFI/WFE do not trap.
pub const HCR_GUEST: u64 = HCR_EL2::VM::Enable.value
    | HCR_EL2::SWIO::SET.value
    | HCR_EL2::FMO::EnableVirtualFIQ.value
    | HCR_EL2::IMO::EnableVirtualIRQ.value
    | HCR_EL2::AMO::SET.value
    | HCR_EL2::FB::SET.value
    | HCR_EL2::BSU::InnerShareable.value
    | HCR_EL2::TSC::EnableTrapEl1SmcToEl2.value
    | HCR_EL2::RW::EL1IsAarch64.value
    | HCR_EL2::TID1::SET.value
    | HCR_EL2::TID3::SET.value
    | HCR_EL2::TIDCP::SET.value
    | HCR_EL2::TACR::SET.value;

/// HCR_EL2.APK | API: pointer-authentication key registers and instructions do
/// not trap. Set only on a core with pointer authentication (RES0 otherwise); each
/// vCPU owns its core, so the guest's keys are never switched.
pub const HCR_PAUTH: u64 = HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2.value
    | HCR_EL2::API::DisableTrapPointerAuthInstToEl2.value;

/// HCR_EL2 with RAS: error record registers trapped (TERR), synchronous external
/// aborts routed to EL2 (TEA: they stop the partition).
pub const HCR_RAS: u64 = HCR_EL2::TERR::SET.value | HCR_EL2::TEA::SET.value;

/// HCR_EL2 for a guest on a core with `f`: [`HCR_GUEST`], plus [`HCR_PAUTH`],
/// [`HCR_RAS`], TLOR (LORegion registers trapped) and EnSCXT (SCXTNUM_ELx
/// usable, as advertised) where the core has them.
pub const fn hcr_guest(f: &Features) -> u64 {
    let mut hcr = HCR_GUEST;
    if f.pauth {
        hcr |= HCR_PAUTH;
    }
    if f.ras {
        hcr |= HCR_RAS;
    }
    if f.lor {
        hcr |= HCR_EL2::TLOR::SET.value;
    }
    if f.scxtnum {
        hcr |= HCR_EL2::EnSCXT::SET.value;
    }
    hcr
}

/// CPTR_EL2 while a guest runs: RES1 bits set, FP/SIMD not trapped (Ferry never
/// touches those registers, so guest state stays in them), trace registers (TTA),
/// SVE and SME trapped ([`CPTR_TZ`] is cleared on a core with SVE).
pub const CPTR_GUEST: u64 = CPTR_EL2_NVHE::RES1_LOW.mask << CPTR_EL2_NVHE::RES1_LOW.shift
    | CPTR_EL2_NVHE::RES1_9::SET.value
    | CPTR_EL2_NVHE::RES1_13::SET.value
    | CPTR_EL2_NVHE::TTA::SET.value
    | CPTR_EL2_NVHE::TZ::SET.value
    | CPTR_EL2_NVHE::TSM::SET.value;

/// CPTR_EL2.TZ: traps SVE.
pub const CPTR_TZ: u64 = CPTR_EL2_NVHE::TZ::SET.value;

/// CPTR_EL2 for a guest on a core with `f`: SVE untrapped where implemented,
/// activity monitors trapped (TAM, RES0 without them).
pub const fn cptr_guest(f: &Features) -> u64 {
    let mut cptr = CPTR_GUEST;
    if f.sve {
        cptr &= !CPTR_TZ;
    }
    if f.amu {
        cptr |= CPTR_EL2_NVHE::TAM::SET.value;
    }
    cptr
}

/// MDCR_EL2 for a guest on a core with `f`, whose PMCR_EL0.N (read at EL2) is
/// `pmcr_n`: every debug register access trapped (TDA, TDOSA, TDRA: emulated as
/// RAZ/WI); with PMUv3 every PMU access trapped (TPM, TPMCR: UNDEFINED), HPMN =
/// PMCR_EL0.N (no counter reserved for EL2; with TPM the split never shows) and
/// counting at EL2 prohibited (HPMD with PMUv3p1, HCCD with PMUv3p5) so no
/// counter ever holds Ferry's cycles; SPE (TPMS; E2PB = 0: the buffer is EL2's,
/// EL1 accesses trapped) and trace filtering (TTRF; E2TB = 0 likewise) trapped.
pub fn mdcr_guest(f: &Features, pmcr_n: u64) -> u64 {
    let mut mdcr = (MDCR_EL2::TDA::SET + MDCR_EL2::TDOSA::SET + MDCR_EL2::TDRA::SET).value;
    if let Some(version) = f.pmuv3 {
        mdcr |= (MDCR_EL2::TPM::SET + MDCR_EL2::TPMCR::SET + MDCR_EL2::HPMN.val(pmcr_n)).value;
        if version >= 4 {
            mdcr |= MDCR_EL2::HPMD::SET.value;
        }
        if version >= 6 {
            mdcr |= MDCR_EL2::HCCD::SET.value;
        }
    }
    if f.spe {
        mdcr |= MDCR_EL2::TPMS::SET.value;
    }
    if f.trace_filter {
        mdcr |= MDCR_EL2::TTRF::SET.value;
    }
    mdcr
}

/// PMCR_EL0.N from a PMCR_EL0 value.
pub fn pmcr_n(pmcr: u64) -> u64 {
    PMCR_EL0::N.read(pmcr)
}

/// ACTLR_EL2 while a guest runs: 0. Its bits are IMPLEMENTATION DEFINED; on the
/// Cortex-A cores they let EL1 reach IMPLEMENTATION DEFINED control registers
/// (CPUACTLR_EL1, L2CTLR_EL1, ...), which 0 refuses. Firmware's value is not kept.
pub const ACTLR_GUEST: u64 = 0;

/// The fine-grained trap registers while a guest runs, on a core with FEAT_FGT:
/// all 0. Their positive bits add traps the coarse controls (TID3, TIDCP, TERR,
/// TLOR, MDCR_EL2, CPTR_EL2) already cover; their negative-polarity nXXX bits trap
/// the registers of features Ferry hides from partitions when 0 (SME's
/// TPIDR2_EL0 and SMPRI_EL1, GCS, S1PIE/S1POE, AIE, THE, LS64's ACCDATA_EL1,
/// BRBE, SPE's PMSNEVFR_EL1; FGT2's nXXX bits likewise): each then UNDEFs, as its
/// hidden ID field says. Written whatever firmware left in them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fgt {
    /// HFGRTR_EL2, HFGWTR_EL2, HFGITR_EL2.
    pub fgt: u64,
    /// HDFGRTR_EL2, HDFGWTR_EL2.
    pub dfgt: u64,
    /// HAFGRTR_EL2 (with activity monitors).
    pub afgt: Option<u64>,
    /// The FEAT_FGT2 registers (HFGRTR2, HFGWTR2, HFGITR2, HDFGRTR2, HDFGWTR2).
    pub fgt2: Option<u64>,
}

/// The fine-grained trap values for a core with `f`, if it has FEAT_FGT.
pub const fn fgt_guest(f: &Features) -> Option<Fgt> {
    if f.fgt == 0 {
        return None;
    }
    Some(Fgt {
        fgt: 0,
        dfgt: 0,
        afgt: if f.amu { Some(0) } else { None },
        fgt2: if f.fgt >= 2 { Some(0) } else { None },
    })
}

/// MPAM2_EL2 for a core with MPAM whose MPAMIDR_EL1 is `mpamidr`: MPAM0_EL1 and
/// MPAM1_EL1 trapped (partitions get no say over cache and bandwidth partitions:
/// UNDEFINED), MPAMIDR_EL1 too where it can be.
pub fn mpam2_guest(mpamidr: u64) -> u64 {
    let mut v = (MPAM2_EL2::TRAPMPAM0EL1::SET + MPAM2_EL2::TRAPMPAM1EL1::SET).value;
    if MPAMIDR_EL1::HAS_TIDR.is_set(mpamidr) {
        v |= MPAM2_EL2::TIDR::SET.value;
    }
    v
}

/// Whether MPAMHCR_EL2 exists (to be written 0: no virtual PARTID mapping).
pub fn mpam_has_hcr(mpamidr: u64) -> bool {
    MPAMIDR_EL1::HAS_HCR.is_set(mpamidr)
}

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

/// HCRX_EL2 for a guest, if the core has FEAT_HCX: MOPS enabled where
/// implemented; every other control 0 (the features they enable — LS64, TCR2,
/// SCTLR2, GCS, FPMR, ... — are hidden from partitions and trap or UNDEF).
pub const fn hcrx_guest(f: &Features) -> Option<u64> {
    if !f.hcx {
        return None;
    }
    Some(if f.mops { HCRX_MSCEN } else { 0 })
}

#[cfg(test)]
mod tests;
