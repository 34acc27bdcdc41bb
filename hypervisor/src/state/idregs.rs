//! What partitions read in the ID registers. HCR_EL2.TID3 traps every read of the
//! ID space (op0 = 3, op1 = 0, CRn = 0, CRm = 1..7); the answer is the core's own
//! value with every feature Ferry traps, hides or cannot give a partition removed,
//! so a guest that trusts its ID registers (Linux does) never reaches for one.
//!
//! Per register, the rules name fields: kept, capped or set. The other fields of an
//! AArch64 register read as 0, "not implemented": a feature Ferry has not vetted is
//! not advertised. The AArch32 registers keep their other fields (their features
//! describe AArch32 EL0, which partitions may use as the hardware allows). Hidden:
//! EL2 and Secure EL2 (partitions run at EL1), the PMU, SPE, trace (unit, filter,
//! buffer), BRBE, activity monitors, LOR, MPAM, RME, SME, MTE beyond the
//! instructions (no tag memory), TME, LS64, 128-bit system registers, FGT, HCX,
//! VH, NV and every feature of ID_AA64MMFR3/MMFR4, ID_AA64PFR2, ID_AA64SMFR0,
//! ID_AA64FPFR0, ID_AA64DFR2 and the auxiliary registers (IMPLEMENTATION DEFINED).
//! Changed: no OS Double Lock (OSDLR_EL1 is RAZ/WI), the enhanced counter
//! virtualization at most level 1 (the self-synchronised counter reads), and the
//! physical address range at most the smallest architected size covering what
//! stage 2 translates. docs/partitions.md, "System registers".

use tock_registers::RegisterLongName;
use tock_registers::fields::Field;

use aarch64_cpu::registers::{
    ID_AA64DFR0_EL1 as DFR0, ID_AA64ISAR0_EL1 as ISAR0, ID_AA64ISAR1_EL1 as ISAR1,
    ID_AA64MMFR0_EL1 as MMFR0, ID_AA64MMFR1_EL1 as MMFR1, ID_AA64MMFR2_EL1 as MMFR2,
    ID_AA64PFR0_EL1 as PFR0, ID_AA64PFR1_EL1 as PFR1,
};

/// ID register fields aarch64-cpu 11 does not define (Arm ARM names; the macro's
/// generated items carry no docs of their own).
#[allow(missing_docs, non_camel_case_types)]
pub mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// ID_AA64PFR0_EL1.
        pub ID_AA64PFR0 [
            EL0 OFFSET(0) NUMBITS(4) [], EL1 OFFSET(4) NUMBITS(4) [],
            EL2 OFFSET(8) NUMBITS(4) [], EL3 OFFSET(12) NUMBITS(4) [],
            FP OFFSET(16) NUMBITS(4) [], ADVSIMD OFFSET(20) NUMBITS(4) [],
            GIC OFFSET(24) NUMBITS(4) [], RAS OFFSET(28) NUMBITS(4) [],
            SEL2 OFFSET(36) NUMBITS(4) [], MPAM OFFSET(40) NUMBITS(4) [],
            DIT OFFSET(48) NUMBITS(4) [], RME OFFSET(52) NUMBITS(4) [],
            CSV2 OFFSET(56) NUMBITS(4) [], CSV3 OFFSET(60) NUMBITS(4) []
        ],
        /// ID_AA64PFR1_EL1.
        pub ID_AA64PFR1 [
            BT OFFSET(0) NUMBITS(4) [], SSBS OFFSET(4) NUMBITS(4) [],
            RAS_FRAC OFFSET(12) NUMBITS(4) [], MPAM_FRAC OFFSET(16) NUMBITS(4) [],
            SME OFFSET(24) NUMBITS(4) [], CSV2_FRAC OFFSET(32) NUMBITS(4) [],
            NMI OFFSET(36) NUMBITS(4) []
        ],
        /// ID_AA64DFR0_EL1.
        pub ID_AA64DFR0 [
            DOUBLELOCK OFFSET(36) NUMBITS(4) []
        ],
        /// ID_AA64DFR1_EL1 (8-bit counts, used when ID_AA64DFR0_EL1's are 0xf).
        pub ID_AA64DFR1 [
            BRPS OFFSET(8) NUMBITS(8) [], WRPS OFFSET(16) NUMBITS(8) [],
            CTX_CMPS OFFSET(24) NUMBITS(8) []
        ],
        /// ID_AA64ISAR0_EL1.
        pub ID_AA64ISAR0 [
            AES OFFSET(4) NUMBITS(4) [], SHA1 OFFSET(8) NUMBITS(4) [],
            SHA2 OFFSET(12) NUMBITS(4) [], CRC32 OFFSET(16) NUMBITS(4) [],
            ATOMIC OFFSET(20) NUMBITS(4) [], TME OFFSET(24) NUMBITS(4) [],
            RDM OFFSET(28) NUMBITS(4) [], SHA3 OFFSET(32) NUMBITS(4) [],
            SM3 OFFSET(36) NUMBITS(4) [], SM4 OFFSET(40) NUMBITS(4) [],
            DP OFFSET(44) NUMBITS(4) [], FHM OFFSET(48) NUMBITS(4) [],
            TS OFFSET(52) NUMBITS(4) [], TLB OFFSET(56) NUMBITS(4) []
        ],
        /// ID_AA64ISAR1_EL1.
        pub ID_AA64ISAR1 [
            DPB OFFSET(0) NUMBITS(4) [], JSCVT OFFSET(12) NUMBITS(4) [],
            FCMA OFFSET(16) NUMBITS(4) [], LRCPC OFFSET(20) NUMBITS(4) [],
            FRINTTS OFFSET(32) NUMBITS(4) [], SB OFFSET(36) NUMBITS(4) [],
            SPECRES OFFSET(40) NUMBITS(4) [], BF16 OFFSET(44) NUMBITS(4) [],
            DGH OFFSET(48) NUMBITS(4) [], I8MM OFFSET(52) NUMBITS(4) [],
            XS OFFSET(56) NUMBITS(4) [], LS64 OFFSET(60) NUMBITS(4) []
        ],
        /// ID_AA64ISAR2_EL1 (not in aarch64-cpu 11).
        pub ID_AA64ISAR2 [
            WFXT OFFSET(0) NUMBITS(4) [], RPRES OFFSET(4) NUMBITS(4) [],
            GPA3 OFFSET(8) NUMBITS(4) [], APA3 OFFSET(12) NUMBITS(4) [],
            MOPS OFFSET(16) NUMBITS(4) [], BC OFFSET(20) NUMBITS(4) [],
            PAC_FRAC OFFSET(24) NUMBITS(4) [], CLRBHB OFFSET(28) NUMBITS(4) [],
            SYSREG_128 OFFSET(32) NUMBITS(4) [], PRFMSLC OFFSET(40) NUMBITS(4) [],
            RPRFM OFFSET(48) NUMBITS(4) [], CSSC OFFSET(52) NUMBITS(4) [],
            LUT OFFSET(56) NUMBITS(4) [], ATS1A OFFSET(60) NUMBITS(4) []
        ],
        /// ID_AA64ISAR3_EL1 (not in aarch64-cpu 11).
        pub ID_AA64ISAR3 [
            FAMINMAX OFFSET(4) NUMBITS(4) []
        ],
        /// ID_AA64MMFR0_EL1.
        pub ID_AA64MMFR0 [
            BIGEND OFFSET(8) NUMBITS(4) [], SNSMEM OFFSET(12) NUMBITS(4) [],
            BIGENDEL0 OFFSET(16) NUMBITS(4) [], EXS OFFSET(44) NUMBITS(4) [],
            FGT OFFSET(56) NUMBITS(4) [], ECV OFFSET(60) NUMBITS(4) []
        ],
        /// ID_AA64MMFR1_EL1.
        pub ID_AA64MMFR1 [
            ETS OFFSET(36) NUMBITS(4) [], HCX OFFSET(40) NUMBITS(4) [],
            AFP OFFSET(44) NUMBITS(4) [], NTLBPA OFFSET(48) NUMBITS(4) [],
            TIDCP1 OFFSET(52) NUMBITS(4) [], CMOW OFFSET(56) NUMBITS(4) [],
            ECBHB OFFSET(60) NUMBITS(4) []
        ],
        /// ID_AA64MMFR3_EL1 (not in aarch64-cpu 11).
        pub ID_AA64MMFR3 [
            SPEC_FPACC OFFSET(60) NUMBITS(4) []
        ],
        /// ID_PFR0_EL1 (AArch32).
        pub ID_PFR0 [
            AMU OFFSET(20) NUMBITS(4) []
        ],
        /// ID_PFR1_EL1 (AArch32).
        pub ID_PFR1 [
            VIRTUALIZATION OFFSET(12) NUMBITS(4) [], VIRT_FRAC OFFSET(24) NUMBITS(4) []
        ],
        /// ID_DFR0_EL1 (AArch32).
        pub ID_DFR0 [
            COPTRC OFFSET(12) NUMBITS(4) [], MMAPTRC OFFSET(16) NUMBITS(4) [],
            PERFMON OFFSET(24) NUMBITS(4) [], TRACEFILT OFFSET(28) NUMBITS(4) []
        ]
    }
}

use fields::*;

/// A core's ID register space (op0 = 3, op1 = 0, CRn = 0, CRm = 0..7, op2 = 0..7;
/// index CRm * 8 + op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdSpace(pub [u64; 64]);

/// Where ID registers sit in an [`IdSpace`]: (CRm, op2).
pub mod id {
    /// ID_AA64PFR0_EL1.
    pub const PFR0: (u8, u8) = (4, 0);
    /// ID_AA64PFR1_EL1.
    pub const PFR1: (u8, u8) = (4, 1);
    /// ID_AA64ZFR0_EL1.
    pub const ZFR0: (u8, u8) = (4, 4);
    /// ID_AA64DFR0_EL1.
    pub const DFR0: (u8, u8) = (5, 0);
    /// ID_AA64DFR1_EL1.
    pub const DFR1: (u8, u8) = (5, 1);
    /// ID_AA64ISAR0_EL1.
    pub const ISAR0: (u8, u8) = (6, 0);
    /// ID_AA64ISAR1_EL1.
    pub const ISAR1: (u8, u8) = (6, 1);
    /// ID_AA64ISAR2_EL1.
    pub const ISAR2: (u8, u8) = (6, 2);
    /// ID_AA64ISAR3_EL1.
    pub const ISAR3: (u8, u8) = (6, 3);
    /// ID_AA64MMFR0_EL1.
    pub const MMFR0: (u8, u8) = (7, 0);
    /// ID_AA64MMFR1_EL1.
    pub const MMFR1: (u8, u8) = (7, 1);
    /// ID_AA64MMFR2_EL1.
    pub const MMFR2: (u8, u8) = (7, 2);
    /// ID_AA64MMFR3_EL1.
    pub const MMFR3: (u8, u8) = (7, 3);
    /// ID_PFR0_EL1.
    pub const AA32_PFR0: (u8, u8) = (1, 0);
    /// ID_PFR1_EL1.
    pub const AA32_PFR1: (u8, u8) = (1, 1);
    /// ID_DFR0_EL1.
    pub const AA32_DFR0: (u8, u8) = (1, 2);
}

impl IdSpace {
    /// The register at (CRm, op2).
    pub fn get(&self, (crm, op2): (u8, u8)) -> u64 {
        self.0[usize::from(crm & 7) * 8 + usize::from(op2 & 7)]
    }

    /// Field `field` of the register at `at`.
    pub fn field<R: RegisterLongName>(&self, at: (u8, u8), field: Field<u64, R>) -> u64 {
        field.read(self.get(at))
    }
}

/// What a rule does to its field.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Passed through.
    Keep,
    /// At most this value (an unsigned field).
    Cap(u64),
    /// Always this value.
    Set(u64),
    /// At most the smallest physical address size covering the IPA bits.
    IpaRange,
}

/// A field (mask at bit 0, shift) and what happens to it.
#[derive(Clone, Copy, Debug)]
struct Rule {
    mask: u64,
    shift: usize,
    action: Action,
}

const fn rule<R: RegisterLongName>(f: Field<u64, R>, action: Action) -> Rule {
    Rule {
        mask: f.mask,
        shift: f.shift,
        action,
    }
}

const fn keep<R: RegisterLongName>(f: Field<u64, R>) -> Rule {
    rule(f, Action::Keep)
}

const fn zero<R: RegisterLongName>(f: Field<u64, R>) -> Rule {
    rule(f, Action::Set(0))
}

/// One register: where, its rules, and whether fields without a rule are kept.
struct Register {
    at: (u8, u8),
    others_kept: bool,
    rules: &'static [Rule],
}

/// The guest-visible ID registers; any other ID register reads 0.
const REGISTERS: [Register; 16] = [
    Register {
        at: id::PFR0,
        others_kept: false,
        rules: &[
            keep(ID_AA64PFR0::EL0),
            keep(ID_AA64PFR0::EL1),
            keep(ID_AA64PFR0::EL3),
            keep(ID_AA64PFR0::FP),
            keep(ID_AA64PFR0::ADVSIMD),
            keep(ID_AA64PFR0::GIC),
            keep(ID_AA64PFR0::RAS),
            keep(PFR0::SVE),
            keep(ID_AA64PFR0::DIT),
            keep(ID_AA64PFR0::CSV2),
            keep(ID_AA64PFR0::CSV3),
        ],
    },
    Register {
        at: id::PFR1,
        others_kept: false,
        rules: &[
            keep(ID_AA64PFR1::BT),
            keep(ID_AA64PFR1::SSBS),
            rule(PFR1::MTE, Action::Cap(1)),
            keep(ID_AA64PFR1::RAS_FRAC),
            keep(ID_AA64PFR1::CSV2_FRAC),
            keep(ID_AA64PFR1::NMI),
        ],
    },
    // The SVE extensions: usable wherever SVE is (0 without SVE).
    Register {
        at: id::ZFR0,
        others_kept: true,
        rules: &[],
    },
    Register {
        at: id::DFR0,
        others_kept: false,
        rules: &[
            keep(DFR0::DebugVer),
            keep(DFR0::BRPs),
            keep(DFR0::WRPs),
            keep(DFR0::CTX_CMPs),
            rule(ID_AA64DFR0::DOUBLELOCK, Action::Set(0xf)),
        ],
    },
    Register {
        at: id::DFR1,
        others_kept: false,
        rules: &[
            keep(ID_AA64DFR1::BRPS),
            keep(ID_AA64DFR1::WRPS),
            keep(ID_AA64DFR1::CTX_CMPS),
        ],
    },
    Register {
        at: id::ISAR0,
        others_kept: false,
        rules: &[
            keep(ID_AA64ISAR0::AES),
            keep(ID_AA64ISAR0::SHA1),
            keep(ID_AA64ISAR0::SHA2),
            keep(ID_AA64ISAR0::CRC32),
            keep(ID_AA64ISAR0::ATOMIC),
            keep(ID_AA64ISAR0::RDM),
            keep(ID_AA64ISAR0::SHA3),
            keep(ID_AA64ISAR0::SM3),
            keep(ID_AA64ISAR0::SM4),
            keep(ID_AA64ISAR0::DP),
            keep(ID_AA64ISAR0::FHM),
            keep(ID_AA64ISAR0::TS),
            keep(ID_AA64ISAR0::TLB),
            keep(ISAR0::RNDR),
        ],
    },
    Register {
        at: id::ISAR1,
        others_kept: false,
        rules: &[
            keep(ID_AA64ISAR1::DPB),
            keep(ISAR1::APA),
            keep(ISAR1::API),
            keep(ID_AA64ISAR1::JSCVT),
            keep(ID_AA64ISAR1::FCMA),
            keep(ID_AA64ISAR1::LRCPC),
            keep(ISAR1::GPA),
            keep(ISAR1::GPI),
            keep(ID_AA64ISAR1::FRINTTS),
            keep(ID_AA64ISAR1::SB),
            keep(ID_AA64ISAR1::SPECRES),
            keep(ID_AA64ISAR1::BF16),
            keep(ID_AA64ISAR1::DGH),
            keep(ID_AA64ISAR1::I8MM),
            keep(ID_AA64ISAR1::XS),
        ],
    },
    Register {
        at: id::ISAR2,
        others_kept: false,
        rules: &[
            keep(ID_AA64ISAR2::WFXT),
            keep(ID_AA64ISAR2::RPRES),
            keep(ID_AA64ISAR2::GPA3),
            keep(ID_AA64ISAR2::APA3),
            keep(ID_AA64ISAR2::MOPS),
            keep(ID_AA64ISAR2::BC),
            keep(ID_AA64ISAR2::PAC_FRAC),
            keep(ID_AA64ISAR2::CLRBHB),
            keep(ID_AA64ISAR2::PRFMSLC),
            keep(ID_AA64ISAR2::RPRFM),
            keep(ID_AA64ISAR2::CSSC),
            keep(ID_AA64ISAR2::LUT),
            keep(ID_AA64ISAR2::ATS1A),
        ],
    },
    Register {
        at: id::ISAR3,
        others_kept: false,
        rules: &[keep(ID_AA64ISAR3::FAMINMAX)],
    },
    Register {
        at: id::MMFR0,
        others_kept: false,
        rules: &[
            rule(MMFR0::PARange, Action::IpaRange),
            keep(MMFR0::ASIDBits),
            keep(ID_AA64MMFR0::BIGEND),
            keep(ID_AA64MMFR0::SNSMEM),
            keep(ID_AA64MMFR0::BIGENDEL0),
            keep(MMFR0::TGran16),
            keep(MMFR0::TGran64),
            keep(MMFR0::TGran4),
            keep(ID_AA64MMFR0::EXS),
            rule(ID_AA64MMFR0::ECV, Action::Cap(1)),
        ],
    },
    Register {
        at: id::MMFR1,
        others_kept: false,
        rules: &[
            keep(MMFR1::HAFDBS),
            keep(MMFR1::HPDS),
            keep(MMFR1::PAN),
            keep(MMFR1::SpecSEI),
            keep(ID_AA64MMFR1::ETS),
            keep(ID_AA64MMFR1::AFP),
            keep(ID_AA64MMFR1::NTLBPA),
            keep(ID_AA64MMFR1::TIDCP1),
            keep(ID_AA64MMFR1::CMOW),
            keep(ID_AA64MMFR1::ECBHB),
        ],
    },
    Register {
        at: id::MMFR2,
        others_kept: false,
        rules: &[
            keep(MMFR2::CnP),
            keep(MMFR2::UAO),
            keep(MMFR2::LSM),
            keep(MMFR2::IESB),
            keep(MMFR2::VARange),
            keep(MMFR2::CCIDX),
            keep(MMFR2::ST),
            keep(MMFR2::AT),
            keep(MMFR2::IDS),
            keep(MMFR2::TTL),
            keep(MMFR2::BBM),
            keep(MMFR2::E0PD),
        ],
    },
    Register {
        at: id::MMFR3,
        others_kept: false,
        rules: &[keep(ID_AA64MMFR3::SPEC_FPACC)],
    },
    Register {
        at: id::AA32_PFR0,
        others_kept: true,
        rules: &[zero(ID_PFR0::AMU)],
    },
    Register {
        at: id::AA32_PFR1,
        others_kept: true,
        rules: &[zero(ID_PFR1::VIRTUALIZATION), zero(ID_PFR1::VIRT_FRAC)],
    },
    Register {
        at: id::AA32_DFR0,
        others_kept: true,
        rules: &[
            zero(ID_DFR0::COPTRC),
            zero(ID_DFR0::MMAPTRC),
            zero(ID_DFR0::PERFMON),
            zero(ID_DFR0::TRACEFILT),
        ],
    },
];

/// AArch32 ID registers passed through whole (instruction sets, memory model,
/// media and VFP; ID_PFR2: CSV3, SSBS, RAS_frac; ID_MMFR5: ETS).
const AARCH32_KEPT: [(u8, u8); 17] = [
    (1, 4),
    (1, 5),
    (1, 6),
    (1, 7),
    (2, 0),
    (2, 1),
    (2, 2),
    (2, 3),
    (2, 4),
    (2, 5),
    (2, 6),
    (2, 7),
    (3, 0),
    (3, 1),
    (3, 2),
    (3, 4),
    (3, 6),
];

/// ID_AA64MMFR0_EL1.PARange for `ipa_bits` of stage-2 input: the smallest
/// architected size that covers them (0: 32 bits, 1: 36, 2: 40, 3: 42, 4: 44,
/// 5: 48, 6: 52).
pub fn parange_for(ipa_bits: u32) -> u64 {
    const SIZES: [u32; 7] = [32, 36, 40, 42, 44, 48, 52];
    SIZES.iter().position(|&s| s >= ipa_bits).unwrap_or(6) as u64
}

fn apply(value: u64, register: &Register, ipa_bits: u32) -> u64 {
    let mut out = if register.others_kept { value } else { 0 };
    for r in register.rules {
        let field = value >> r.shift & r.mask;
        let new = match r.action {
            Action::Keep => field,
            Action::Cap(max) => field.min(max),
            Action::Set(v) => v,
            Action::IpaRange => field.min(parange_for(ipa_bits)),
        };
        out = out & !(r.mask << r.shift) | (new & r.mask) << r.shift;
    }
    out
}

/// What partitions read in the ID space of a core whose own values are `real`,
/// with `ipa_bits` of stage-2 input: the registers of [`REGISTERS`] sanitised,
/// the AArch32 instruction-set, memory-model and media registers as they are, and
/// 0 for everything else (the unallocated encodings, and the registers of features
/// partitions do not get).
pub fn sanitise(real: &IdSpace, ipa_bits: u32) -> IdSpace {
    let mut out = IdSpace([0; 64]);
    for &(crm, op2) in &AARCH32_KEPT {
        out.0[usize::from(crm) * 8 + usize::from(op2)] = real.get((crm, op2));
    }
    for register in &REGISTERS {
        let (crm, op2) = register.at;
        out.0[usize::from(crm) * 8 + usize::from(op2)] =
            apply(real.get(register.at), register, ipa_bits);
    }
    out
}

/// How many hardware breakpoints and watchpoints a guest is told it has, from the
/// sanitised ID_AA64DFR0_EL1 and ID_AA64DFR1_EL1 (a count of 16 and more is given
/// by the latter), at most 16 each: the DBGBCR/DBGWCR<n>_EL1 encodings that are
/// not UNDEFINED.
pub fn debug_counts(ids: &IdSpace) -> (u8, u8) {
    let count = |dfr0: u64, dfr1: u64| {
        let n = if dfr0 == 0xf && dfr1 != 0 { dfr1 } else { dfr0 };
        (n + 1).min(16) as u8
    };
    (
        count(
            ids.field(id::DFR0, DFR0::BRPs),
            ids.field(id::DFR1, ID_AA64DFR1::BRPS),
        ),
        count(
            ids.field(id::DFR0, DFR0::WRPs),
            ids.field(id::DFR1, ID_AA64DFR1::WRPS),
        ),
    )
}

#[cfg(test)]
pub mod samples;
