//! The trap register values, bit by bit, for QEMU's Cortex-A53 and `max` cores.

use super::*;
use crate::state::idregs::samples::{CORTEX_A53, MAX};
use crate::state::idregs::{IdSpace, id};

/// PMCR_EL0 as QEMU's Cortex-A53 reads it at reset: IMP 0x41, N = 6.
const A53_PMCR: u64 = 0x4103_3000;

#[test]
fn values_are_the_architected_bits() {
    assert_eq!(
        HCR_GUEST,
        1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 1 << 10 | 1 << 19 | 1 << 31
            | 1 << 16 // TID1
            | 1 << 18 // TID3
            | 1 << 20 // TIDCP
            | 1 << 21 // TACR
    );
    assert_eq!(HCR_PAUTH, 1 << 40 | 1 << 41);
    assert_eq!(HCR_RAS, 1 << 36 | 1 << 37);
    assert_eq!(CPTR_GUEST, 0x33ff | 1 << 20, "RES1, TZ, TSM, TTA");
    assert_eq!(CPTR_TZ, 1 << 8);
    assert_eq!(CNTHCTL_GUEST, 0b11 | 1 << 2 | 10 << 4);
    assert_eq!(HCRX_MSCEN, 1 << 11);
    assert_eq!(ACTLR_GUEST, 0);
}

#[test]
fn guest_hcr_traps_smc_and_routes_interrupts_to_el2() {
    assert_ne!(HCR_GUEST & HCR_EL2::TSC::SET.value, 0);
    assert_ne!(HCR_GUEST & HCR_EL2::IMO::SET.value, 0);
    assert_eq!(HCR_GUEST & HCR_EL2::TWI::SET.value, 0, "WFI does not trap");
    assert_eq!(HCR_GUEST & HCR_EL2::TWE::SET.value, 0, "WFE does not trap");
    assert_eq!(HCR_GUEST & HCR_EL2::E2H::SET.value, 0, "nVHE");
    assert_eq!(HCR_GUEST & HCR_EL2::TGE::SET.value, 0);
}

#[test]
fn features_of_a_cortex_a53() {
    assert_eq!(
        Features::of(&CORTEX_A53),
        Features {
            pmuv3: Some(1),
            ..Features::default()
        }
    );
}

#[test]
fn features_of_qemu_max() {
    assert_eq!(
        Features::of(&MAX),
        Features {
            pauth: true,
            sve: true,
            hcx: true,
            mops: true,
            ras: true,
            lor: true,
            amu: false,
            pmuv3: Some(6),
            spe: false,
            trace_filter: false,
            fgt: 1,
            scxtnum: true,
            mpam: false,
        }
    );
}

#[test]
fn hcr_adds_what_each_core_has() {
    let a53 = Features::of(&CORTEX_A53);
    assert_eq!(
        hcr_guest(&a53),
        HCR_GUEST,
        "no pointer auth, RAS, LOR, SCXTNUM"
    );
    let max = hcr_guest(&Features::of(&MAX));
    assert_eq!(
        max,
        HCR_GUEST | HCR_PAUTH | 1 << 36 | 1 << 37 | 1 << 35 | 1 << 53,
        "APK, API, TERR, TEA, TLOR, EnSCXT"
    );
    for bit in [HCR_EL2::TID3::SET, HCR_EL2::TIDCP::SET, HCR_EL2::TACR::SET] {
        assert_ne!(max & bit.value, 0);
    }
}

#[test]
fn cptr_traps_trace_and_amu_and_frees_sve_where_implemented() {
    let a53 = cptr_guest(&Features::of(&CORTEX_A53));
    assert_eq!(a53, CPTR_GUEST);
    assert_ne!(a53 & CPTR_TZ, 0, "no SVE: TZ stays (RES1)");
    let max = cptr_guest(&Features::of(&MAX));
    assert_eq!(max, CPTR_GUEST & !CPTR_TZ);
    assert_eq!(max & CPTR_EL2_NVHE::TFP::SET.value, 0, "FP never trapped");
    assert_ne!(max & CPTR_EL2_NVHE::TTA::SET.value, 0);
    assert_ne!(max & CPTR_EL2_NVHE::TSM::SET.value, 0, "SME trapped");
    let amu = Features {
        amu: true,
        ..Features::default()
    };
    assert_eq!(cptr_guest(&amu), CPTR_GUEST | 1 << 30, "TAM");
}

#[test]
fn mdcr_traps_debug_pmu_spe_and_trace_filtering() {
    let n = pmcr_n(A53_PMCR);
    assert_eq!(n, 6);
    let a53 = mdcr_guest(&Features::of(&CORTEX_A53), n);
    // TDA, TDOSA, TDRA, TPM, TPMCR, HPMN = 6; PMUv3 (v1): no HPMD, HCCD.
    assert_eq!(a53, 1 << 9 | 1 << 10 | 1 << 11 | 1 << 6 | 1 << 5 | 6);
    let max = mdcr_guest(&Features::of(&MAX), 6);
    // PMUv3p5: counting at EL2 prohibited for event counters (HPMD) and the
    // cycle counter (HCCD).
    assert_eq!(max, a53 | 1 << 17 | 1 << 23);
    assert_eq!(
        max & MDCR_EL2::TDE::SET.value,
        0,
        "debug exceptions stay EL1's"
    );
    assert_eq!(max & MDCR_EL2::HPME::SET.value, 0);
    let none = mdcr_guest(&Features::default(), 0);
    assert_eq!(
        none,
        1 << 9 | 1 << 10 | 1 << 11,
        "no PMUv3: its bits are RES0"
    );
    let spe_trf = Features {
        spe: true,
        trace_filter: true,
        ..Features::default()
    };
    assert_eq!(
        mdcr_guest(&spe_trf, 0),
        none | 1 << 14 | 1 << 19,
        "TPMS, TTRF"
    );
    assert_eq!(
        mdcr_guest(&spe_trf, 0) & (0b11 << 12 | 0b11 << 24),
        0,
        "E2PB, E2TB 0"
    );
}

#[test]
fn an_impdef_pmu_is_not_pmuv3() {
    let mut ids = CORTEX_A53;
    ids.0[5 * 8] |= 0xf << 8;
    assert_eq!(
        Features::of(&ids).pmuv3,
        None,
        "PMUVer 0xf: IMPLEMENTATION DEFINED"
    );
    assert_eq!(mdcr_guest(&Features::of(&ids), 31) & 0x7f, 0);
}

#[test]
fn fine_grained_traps_only_where_they_exist() {
    assert_eq!(fgt_guest(&Features::of(&CORTEX_A53)), None);
    assert_eq!(
        fgt_guest(&Features::of(&MAX)),
        Some(Fgt {
            fgt: 0,
            dfgt: 0,
            afgt: None,
            fgt2: None
        })
    );
    let fgt2_amu = Features {
        fgt: 2,
        amu: true,
        ..Features::default()
    };
    assert_eq!(
        fgt_guest(&fgt2_amu),
        Some(Fgt {
            fgt: 0,
            dfgt: 0,
            afgt: Some(0),
            fgt2: Some(0)
        })
    );
    let mut ids = MAX;
    ids.0[7 * 8] |= 0xf << 56;
    assert_eq!(
        Features::of(&ids).fgt,
        2,
        "later FGT versions: FGT2's registers"
    );
}

#[test]
fn hcrx_enables_mops_only() {
    assert_eq!(hcrx_guest(&Features::of(&CORTEX_A53)), None, "no FEAT_HCX");
    assert_eq!(hcrx_guest(&Features::of(&MAX)), Some(HCRX_MSCEN));
    let hcx = Features {
        hcx: true,
        ..Features::default()
    };
    assert_eq!(hcrx_guest(&hcx), Some(0));
}

#[test]
fn mpam_traps_its_registers() {
    assert!(!Features::of(&MAX).mpam);
    assert_eq!(mpam2_guest(0), 1 << 48 | 1 << 49);
    assert_eq!(mpam2_guest(1 << 58 | 1 << 17), 1 << 48 | 1 << 49 | 1 << 58);
    assert!(mpam_has_hcr(1 << 17));
    assert!(!mpam_has_hcr(1 << 58));
}

#[test]
fn pointer_authentication_by_any_algorithm() {
    let mut ids = IdSpace([0; 64]);
    assert!(!Features::of(&ids).pauth);
    for (at, bits) in [
        (id::ISAR1, 0x10),
        (id::ISAR1, 0x1000_0000),
        (id::ISAR2, 0x1000),
    ] {
        ids.0 = [0; 64];
        ids.0[usize::from(at.0) * 8 + usize::from(at.1)] = bits;
        assert!(Features::of(&ids).pauth, "{at:?} {bits:#x}");
    }
    ids.0 = [0; 64];
    ids.0[6 * 8 + 1] = 0x00ff_f00f;
    ids.0[6 * 8 + 2] = 0xff;
    assert!(!Features::of(&ids).pauth);
}
