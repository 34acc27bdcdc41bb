//! The ID registers partitions read, field by field, on QEMU's Cortex-A53 and
//! `max` (the real values in `idregs::samples`), with Ferry's 39-bit IPA space.

use crate::stage2::IPA_BITS;
use crate::state::idregs::samples::{CORTEX_A53, MAX};
use crate::state::idregs::{IdSpace, debug_counts, id, parange_for, sanitise};

fn at(ids: &IdSpace, crm: u8, op2: u8) -> u64 {
    ids.get((crm, op2))
}

/// Field `[shift + 3 : shift]`.
fn f(v: u64, shift: u32) -> u64 {
    v >> shift & 0xf
}

#[test]
fn cortex_a53_loses_el2_the_pmu_and_the_double_lock() {
    let s = sanitise(&CORTEX_A53, IPA_BITS);
    // ID_AA64PFR0_EL1 0x1000222: EL0, EL1 AArch64+AArch32 kept, EL2 (2) hidden,
    // GIC system registers (1) kept.
    assert_eq!(s.get(id::PFR0), 0x0100_0022);
    // ID_AA64DFR0_EL1 0x10305106: DebugVer 6, BRPs 5, WRPs 3, CTX_CMPs 1 kept;
    // PMUVer 1 hidden; DoubleLock 0 (implemented) becomes 0xf (not implemented).
    assert_eq!(s.get(id::DFR0), 0xf0_1030_5006);
    // ISAR0 (AES, SHA1, SHA2, CRC32) and MMFR0 (40-bit PA, 16-bit ASID, mixed
    // endian) as they are: 40 bits is the smallest size covering the 39-bit IPA.
    assert_eq!(s.get(id::ISAR0), 0x11120);
    assert_eq!(s.get(id::MMFR0), 0x1122);
    // AArch32: ID_DFR0.PerfMon (3) and ID_PFR1.Virtualization (1) hidden; the
    // instruction-set, memory-model and media registers whole.
    assert_eq!(at(&s, 1, 2), 0x6);
    assert_eq!(at(&s, 1, 1), 0x1001_0001);
    assert_eq!(at(&s, 1, 0), 0x131);
    for (crm, op2) in [
        (1, 4),
        (1, 5),
        (1, 6),
        (1, 7),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
    ] {
        assert_eq!(
            at(&s, crm, op2),
            at(&CORTEX_A53, crm, op2),
            "({crm}, {op2})"
        );
    }
    for (crm, op2) in [(2, 4), (2, 5), (3, 0), (3, 1), (3, 2)] {
        assert_eq!(
            at(&s, crm, op2),
            at(&CORTEX_A53, crm, op2),
            "({crm}, {op2})"
        );
    }
    assert_eq!(debug_counts(&s), (6, 4), "6 breakpoints, 4 watchpoints");
}

#[test]
fn qemu_max_loses_sme_pmu_lor_fgt_and_el2_but_keeps_sve() {
    let s = sanitise(&MAX, IPA_BITS);
    // ID_AA64PFR0_EL1 0x1301001121110222: EL2 (2) and SEL2 (1) hidden; FP, AdvSIMD,
    // GIC, RASv1p1 (2), SVE (1), DIT, CSV2 (3), CSV3 kept.
    assert_eq!(s.get(id::PFR0), 0x1301_0001_2111_0022);
    assert_eq!(f(s.get(id::PFR0), 32), 1, "SVE");
    // ID_AA64PFR1_EL1 0x1001000121: SME (1) hidden; BT, SSBS (2), MTE (1, the
    // instructions), NMI kept.
    assert_eq!(s.get(id::PFR1), 0x10_0000_0121);
    assert_eq!(f(s.get(id::PFR1), 24), 0, "SME");
    assert_eq!(s.get((4, 5)), 0, "ID_AA64SMFR0_EL1");
    assert_eq!(s.get(id::ZFR0), at(&MAX, 4, 4), "the SVE extensions");
    // ID_AA64DFR0_EL1 0x100000001030560a: PMUVer 6 and HPMN0 hidden, DoubleLock 0xf.
    assert_eq!(s.get(id::DFR0), 0xf0_1030_500a);
    // ID_AA64MMFR0_EL1 0x2100032310201126: PARange 52 bits -> 40 (the IPA space is
    // 39 bits), the stage-2 granule fields and FGT hidden, ECV 2 -> 1.
    assert_eq!(s.get(id::MMFR0), 0x1000_0000_1020_1122);
    // ID_AA64MMFR1_EL1 0x0110112010312122: VMIDBits, VH, LO, XNX, HCX hidden;
    // HAFDBS, HPDS, PAN 3, ETS, AFP, TIDCP1, CMOW kept.
    assert_eq!(s.get(id::MMFR1), 0x0110_1020_0030_2002);
    assert_eq!(f(s.get(id::MMFR1), 16), 0, "LO");
    // ID_AA64MMFR2_EL1 0x1221011112011011: NV (2), FWB, EVT (2) hidden.
    assert_eq!(s.get(id::MMFR2), 0x1021_0011_1001_1011);
    assert_eq!(s.get(id::MMFR3), 1 << 60, "Spec_FPACC only");
    // The instruction sets as they are (no TME, no LS64 on this core).
    for at_ in [id::ISAR0, id::ISAR1, id::ISAR2] {
        assert_eq!(s.get(at_), MAX.get(at_), "{at_:?}");
    }
    // AArch32: PerfMon 6 hidden, ID_DFR1 (MTPMU, HPMN0) zero, ID_PFR2 and ID_MMFR5
    // kept.
    assert_eq!(at(&s, 1, 2), 0xa);
    assert_eq!(at(&s, 3, 5), 0);
    assert_eq!(at(&s, 3, 4), 0x11);
    assert_eq!(at(&s, 3, 6), 0x2);
    assert_eq!(debug_counts(&s), (6, 4));
}

#[test]
fn unvetted_fields_and_registers_read_as_absent() {
    let mut real = IdSpace([u64::MAX; 64]);
    // FP and AdvSIMD implemented (0; 0xf is "not implemented" for these signed
    // fields).
    real.0[4 * 8] = !(0xff << 16);
    let s = sanitise(&real, IPA_BITS);
    // Unallocated encodings, the registers of hidden features, the auxiliary
    // (IMPLEMENTATION DEFINED) registers.
    for (crm, op2) in [
        (3, 3),
        (3, 7),
        (4, 2),
        (4, 3),
        (4, 5),
        (4, 6),
        (4, 7),
        (5, 2),
    ] {
        assert_eq!(at(&s, crm, op2), 0, "({crm}, {op2})");
    }
    for (crm, op2) in [
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
        (5, 7),
        (6, 4),
        (7, 4),
        (7, 7),
    ] {
        assert_eq!(at(&s, crm, op2), 0, "({crm}, {op2})");
    }
    assert_eq!(at(&s, 1, 3), 0, "ID_AFR0_EL1");
    let pfr0 = s.get(id::PFR0);
    for (shift, what) in [
        (8, "EL2"),
        (36, "SEL2"),
        (40, "MPAM"),
        (44, "AMU"),
        (52, "RME"),
    ] {
        assert_eq!(f(pfr0, shift), 0, "{what}");
    }
    let pfr1 = s.get(id::PFR1);
    assert_eq!(f(pfr1, 8), 1, "MTE capped at the instructions");
    for shift in [16, 20, 24, 28, 40, 44, 48, 52, 56, 60] {
        assert_eq!(
            f(pfr1, shift),
            0,
            "PFR1 bit {shift}: MPAM_frac, SME, RNDR_trap, GCS, ..."
        );
    }
    let dfr0 = s.get(id::DFR0);
    for (shift, what) in [
        (4, "TraceVer"),
        (8, "PMUVer"),
        (32, "PMSVer"),
        (40, "TraceFilt"),
    ] {
        assert_eq!(f(dfr0, shift), 0, "{what}");
    }
    for (shift, what) in [
        (44, "TraceBuffer"),
        (48, "MTPMU"),
        (52, "BRBE"),
        (60, "HPMN0"),
    ] {
        assert_eq!(f(dfr0, shift), 0, "{what}");
    }
    assert_eq!(f(s.get(id::ISAR0), 24), 0, "TME");
    assert_eq!(f(s.get(id::ISAR1), 60), 0, "LS64");
    assert_eq!(f(s.get(id::ISAR2), 32), 0, "SYSREG_128");
    assert_eq!(f(s.get(id::ISAR2), 36), 0, "SYSINSTR_128");
    assert_eq!(s.get(id::ISAR3), 0xf << 4, "FAMINMAX only");
    assert_eq!(f(s.get(id::MMFR0), 56), 0, "FGT");
    assert_eq!(f(s.get(id::MMFR0), 60), 1, "ECV at most 1");
    assert_eq!(f(s.get(id::MMFR0), 0), 2, "PARange: 40 bits for 39");
    for (shift, what) in [
        (4, "VMIDBits"),
        (8, "VH"),
        (16, "LO"),
        (32, "TWED"),
        (40, "HCX"),
    ] {
        assert_eq!(f(s.get(id::MMFR1), shift), 0, "{what}");
    }
    for (shift, what) in [(24, "NV"), (40, "FWB"), (56, "EVT")] {
        assert_eq!(f(s.get(id::MMFR2), shift), 0, "{what}");
    }
    assert_eq!(s.get(id::MMFR3), 0xf << 60);
    // AArch32 trace, PMU, AMU and virtualization.
    assert_eq!(at(&s, 1, 0) >> 20 & 0xf, 0);
    assert_eq!(at(&s, 1, 2) & 0xff0f_f000, 0);
    assert_eq!(at(&s, 1, 1) & (0xf << 12 | 0xf << 24), 0);
}

#[test]
fn parange_covers_the_ipa_space_with_an_architected_size() {
    assert_eq!(parange_for(32), 0);
    assert_eq!(parange_for(33), 1);
    assert_eq!(parange_for(36), 1);
    assert_eq!(parange_for(39), 2);
    assert_eq!(parange_for(40), 2);
    assert_eq!(parange_for(48), 5);
    assert_eq!(parange_for(52), 6);
    assert_eq!(parange_for(64), 6);
    // Never more than the core has.
    let mut small = CORTEX_A53;
    small.0[7 * 8] = small.0[7 * 8] & !0xf | 1;
    assert_eq!(sanitise(&small, IPA_BITS).get(id::MMFR0) & 0xf, 1);
}

#[test]
fn many_breakpoints_are_counted_from_dfr1_and_capped() {
    let mut real = CORTEX_A53;
    real.0[5 * 8] |= 0xf << 12 | 0xf << 20;
    real.0[5 * 8 + 1] = 0x3f << 8 | 0x13 << 16;
    let s = sanitise(&real, IPA_BITS);
    assert_eq!(s.get(id::DFR1), 0x13_3f00, "DFR1's counts kept");
    assert_eq!(debug_counts(&s), (16, 16), "encodings exist for 16");
    real.0[5 * 8 + 1] = 0;
    assert_eq!(debug_counts(&sanitise(&real, IPA_BITS)), (16, 16));
}
