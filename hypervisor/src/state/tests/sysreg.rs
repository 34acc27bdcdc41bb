//! What Ferry does with each trapped system register access, on the view of a
//! QEMU Cortex-A53 and `max` core; exception entry for an injected UNDEFINED.

use crate::stage2::IPA_BITS;
use crate::state::idregs::samples::{CORTEX_A53, MAX};
use crate::state::sysreg::{
    Access, Decision, ESR_UNDEFINED, Entry, EntryFeatures, Group, GuestView, OSLSR, SysReg,
    Undefined, decide, sync_entry, undefined_class, undefined_esr,
};

fn a53() -> GuestView {
    GuestView::new(&CORTEX_A53, 0x5, 0x7, IPA_BITS)
}

fn mrs(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Access {
    Access {
        reg: SysReg::new(op0, op1, crn, crm, op2),
        rt: 3,
        read: true,
    }
}

fn msr(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Access {
    Access {
        read: false,
        ..mrs(op0, op1, crn, crm, op2)
    }
}

/// ESR_EL2.ISS of a trapped access (the inverse of `Access::decode`).
fn iss(a: &Access) -> u32 {
    let r = a.reg;
    u32::from(r.op0) << 20
        | u32::from(r.op2) << 17
        | u32::from(r.op1) << 14
        | u32::from(r.crn) << 10
        | u32::from(a.rt) << 5
        | u32::from(r.crm) << 1
        | u32::from(a.read)
}

#[test]
fn decodes_the_syndrome() {
    // QEMU max, before TID3: MRS x0, SMPRI_EL1 trapped by the fine-grained traps
    // firmware left at 0 (ESR_EL2 0x62380405).
    let a = Access::decode(0x62_380405 & 0x1ff_ffff);
    assert_eq!(a, mrs(3, 0, 1, 2, 4).with_rt(0));
    assert_eq!(a.reg.to_string(), "S3_0_C1_C2_4");
    for access in [
        msr(3, 0, 12, 11, 5),
        mrs(2, 3, 0, 5, 0),
        msr(3, 7, 15, 15, 7),
    ] {
        assert_eq!(Access::decode(iss(&access)), access);
    }
    let xzr = Access::decode(iss(&msr(3, 0, 1, 0, 1).with_rt(31)));
    assert_eq!(xzr.rt, 31);
}

trait WithRt {
    fn with_rt(self, rt: u8) -> Self;
}

impl WithRt for Access {
    fn with_rt(self, rt: u8) -> Self {
        Access { rt, ..self }
    }
}

#[test]
fn id_registers_read_their_sanitised_values() {
    let v = a53();
    assert_eq!(decide(&mrs(3, 0, 0, 4, 0), &v), Decision::Read(0x0100_0022));
    assert_eq!(
        decide(&mrs(3, 0, 0, 5, 0), &v),
        Decision::Read(0xf0_1030_5006)
    );
    assert_eq!(
        decide(&mrs(3, 0, 0, 7, 7), &v),
        Decision::Read(0),
        "unallocated"
    );
    assert_eq!(
        decide(&msr(3, 0, 0, 4, 0), &v),
        Decision::Undefined(Group::Id)
    );
    // TID1: REVIDR and AIDR as the core has them; SMIDR is SME's.
    assert_eq!(decide(&mrs(3, 0, 0, 0, 6), &v), Decision::Read(0x5));
    assert_eq!(decide(&mrs(3, 1, 0, 0, 7), &v), Decision::Read(0x7));
    assert_eq!(
        decide(&mrs(3, 1, 0, 0, 6), &v),
        Decision::Undefined(Group::Sme)
    );
}

#[test]
fn the_pmu_spe_trace_amu_lor_mpam_mte_and_sme_are_undefined() {
    let v = GuestView::new(&MAX, 0, 0, IPA_BITS);
    let cases = [
        (mrs(3, 3, 9, 12, 0), Group::Pmu),   // PMCR_EL0
        (msr(3, 3, 9, 12, 1), Group::Pmu),   // PMCNTENSET_EL0
        (mrs(3, 3, 9, 13, 0), Group::Pmu),   // PMCCNTR_EL0
        (msr(3, 3, 14, 15, 7), Group::Pmu),  // PMCCFILTR_EL0
        (mrs(3, 3, 14, 8, 0), Group::Pmu),   // PMEVCNTR0_EL0
        (mrs(3, 3, 9, 14, 0), Group::Pmu),   // PMUSERENR_EL0
        (msr(3, 0, 9, 14, 1), Group::Pmu),   // PMINTENSET_EL1
        (mrs(3, 0, 9, 9, 7), Group::Spe),    // PMSIDR_EL1
        (mrs(3, 0, 9, 10, 7), Group::Spe),   // PMBIDR_EL1
        (mrs(3, 0, 1, 2, 1), Group::Trace),  // TRFCR_EL1
        (mrs(3, 0, 9, 11, 7), Group::Trace), // TRBIDR_EL1
        (mrs(2, 1, 0, 8, 7), Group::Trace),  // TRCIDR0
        (msr(2, 1, 0, 1, 0), Group::Trace),  // TRCPRGCTLR
        (mrs(2, 1, 9, 2, 0), Group::Brbe),   // BRBIDR0_EL1
        (mrs(3, 3, 13, 2, 0), Group::Amu),   // AMCR_EL0
        (mrs(3, 3, 13, 4, 0), Group::Amu),   // AMEVCNTR00_EL0
        (mrs(3, 0, 10, 4, 7), Group::Lor),   // LORID_EL1
        (msr(3, 0, 10, 4, 3), Group::Lor),   // LORC_EL1
        (mrs(3, 0, 10, 5, 0), Group::Mpam),  // MPAM1_EL1
        (mrs(3, 0, 10, 4, 4), Group::Mpam),  // MPAMIDR_EL1
        (mrs(3, 0, 1, 0, 6), Group::Mte),    // GCR_EL1
        (mrs(3, 0, 5, 6, 0), Group::Mte),    // TFSR_EL1
        (mrs(3, 1, 0, 0, 4), Group::Mte),    // GMID_EL1
        (mrs(3, 0, 1, 2, 4), Group::Sme),    // SMPRI_EL1
        (msr(3, 0, 1, 2, 6), Group::Sme),    // SMCR_EL1
        (mrs(3, 3, 4, 2, 2), Group::Sme),    // SVCR
        (mrs(3, 3, 13, 0, 5), Group::Sme),   // TPIDR2_EL0
        (mrs(3, 0, 10, 2, 3), Group::Other), // PIR_EL1 (nPIR_EL1 = 0)
        (mrs(1, 0, 7, 6, 1), Group::Other),  // a system instruction
    ];
    for (access, group) in cases {
        assert_eq!(
            decide(&access, &v),
            Decision::Undefined(group),
            "{}",
            access.reg
        );
    }
}

#[test]
fn implementation_defined_registers_are_undefined_and_actlr_is_raz_wi() {
    let v = a53();
    for op1 in 0..8 {
        for crn in [11, 15] {
            for (crm, op2) in [(0, 0), (2, 0), (2, 1), (15, 7)] {
                for access in [mrs(3, op1, crn, crm, op2), msr(3, op1, crn, crm, op2)] {
                    assert_eq!(decide(&access, &v), Decision::Undefined(Group::ImpDef));
                }
            }
        }
    }
    assert_eq!(decide(&mrs(3, 0, 1, 0, 1), &v), Decision::Read(0));
    assert_eq!(decide(&msr(3, 0, 1, 0, 1), &v), Decision::Ignore);
}

#[test]
fn debug_registers_are_raz_wi_within_their_access_rights() {
    let v = a53();
    assert_eq!((v.breakpoints, v.watchpoints), (6, 4));
    let rw = [
        (2, 0, 0, 2, 2), // MDSCR_EL1
        (2, 0, 0, 2, 0), // MDCCINT_EL1
        (2, 0, 0, 0, 2), // OSDTRRX_EL1
        (2, 0, 0, 3, 2), // OSDTRTX_EL1
        (2, 0, 0, 6, 2), // OSECCR_EL1
        (2, 0, 1, 3, 4), // OSDLR_EL1
        (2, 0, 1, 4, 4), // DBGPRCR_EL1
        (2, 0, 7, 8, 6), // DBGCLAIMSET_EL1
        (2, 0, 7, 9, 6), // DBGCLAIMCLR_EL1
        (2, 3, 0, 4, 0), // DBGDTR_EL0
        (2, 3, 0, 5, 0), // DBGDTRRX_EL0 / DBGDTRTX_EL0
        (2, 0, 0, 5, 4), // DBGBVR5_EL1
        (2, 0, 0, 5, 5), // DBGBCR5_EL1
        (2, 0, 0, 3, 6), // DBGWVR3_EL1
        (2, 0, 0, 3, 7), // DBGWCR3_EL1
    ];
    for (op0, op1, crn, crm, op2) in rw {
        assert_eq!(decide(&mrs(op0, op1, crn, crm, op2), &v), Decision::Read(0));
        assert_eq!(decide(&msr(op0, op1, crn, crm, op2), &v), Decision::Ignore);
    }
    let ro = [(2, 0, 1, 0, 0), (2, 0, 7, 14, 6), (2, 3, 0, 1, 0)]; // MDRAR, DBGAUTHSTATUS, MDCCSR
    for (op0, op1, crn, crm, op2) in ro {
        assert_eq!(decide(&mrs(op0, op1, crn, crm, op2), &v), Decision::Read(0));
        assert_eq!(
            decide(&msr(op0, op1, crn, crm, op2), &v),
            Decision::Undefined(Group::Debug)
        );
    }
    // The OS lock: implemented, never locked.
    assert_eq!(decide(&msr(2, 0, 1, 0, 4), &v), Decision::Ignore);
    assert_eq!(
        decide(&mrs(2, 0, 1, 0, 4), &v),
        Decision::Undefined(Group::Debug)
    );
    assert_eq!(decide(&mrs(2, 0, 1, 1, 4), &v), Decision::Read(OSLSR));
    assert_eq!(
        decide(&msr(2, 0, 1, 1, 4), &v),
        Decision::Undefined(Group::Debug)
    );
    // Breakpoint 6 and watchpoint 4 do not exist on this core.
    for (crm, op2) in [(6, 4), (6, 5), (4, 6), (4, 7), (15, 5)] {
        assert_eq!(
            decide(&mrs(2, 0, 0, crm, op2), &v),
            Decision::Undefined(Group::Debug)
        );
    }
    assert_eq!(
        decide(&mrs(2, 0, 3, 0, 0), &v),
        Decision::Undefined(Group::Debug)
    );
    assert_eq!(
        decide(&mrs(2, 2, 0, 0, 0), &v),
        Decision::Undefined(Group::Other)
    );
}

#[test]
fn ras_error_records_are_raz_wi() {
    let v = GuestView::new(&MAX, 0, 0, IPA_BITS);
    for (crm, op2) in [(3, 0), (3, 2), (4, 0), (4, 4)] {
        assert_eq!(decide(&mrs(3, 0, 5, crm, op2), &v), Decision::Read(0));
        assert_eq!(
            decide(&msr(3, 0, 5, crm, op2), &v),
            Decision::Undefined(Group::Ras)
        );
    }
    for (crm, op2) in [
        (3, 1),
        (4, 1),
        (4, 2),
        (4, 3),
        (4, 5),
        (4, 6),
        (5, 0),
        (5, 3),
    ] {
        assert_eq!(decide(&mrs(3, 0, 5, crm, op2), &v), Decision::Read(0));
        assert_eq!(decide(&msr(3, 0, 5, crm, op2), &v), Decision::Ignore);
    }
    assert_eq!(
        decide(&mrs(3, 0, 5, 5, 4), &v),
        Decision::Undefined(Group::Ras)
    );
    assert_eq!(
        decide(&mrs(3, 0, 5, 4, 7), &v),
        Decision::Undefined(Group::Ras)
    );
}

#[test]
fn sgis_are_sent_or_ignored() {
    let v = a53();
    assert_eq!(decide(&msr(3, 0, 12, 11, 5), &v), Decision::SendSgi);
    assert_eq!(decide(&msr(3, 0, 12, 11, 6), &v), Decision::Ignore);
    assert_eq!(decide(&msr(3, 0, 12, 11, 7), &v), Decision::Ignore);
    for op2 in 5..8 {
        assert_eq!(
            decide(&mrs(3, 0, 12, 11, op2), &v),
            Decision::Undefined(Group::Sgi)
        );
    }
}

#[test]
fn hidden_instruction_classes_are_undefined() {
    assert_eq!(undefined_class(0x1d), Some(Group::Sme));
    assert_eq!(undefined_class(0x0a), Some(Group::Ls64));
    assert_eq!(undefined_class(0x14), Some(Group::Sysreg128));
    for ec in [0x03, 0x04, 0x05, 0x06, 0x0c] {
        assert_eq!(undefined_class(ec), Some(Group::Aarch32), "{ec:#x}");
    }
    for ec in [0x00, 0x01, 0x07, 0x16, 0x17, 0x18, 0x19, 0x20, 0x24, 0x2f] {
        assert_eq!(undefined_class(ec), None, "{ec:#x}");
    }
}

#[test]
fn the_log_names_the_access() {
    let pmcr = Undefined {
        group: Group::Pmu,
        access: Some(mrs(3, 3, 9, 12, 0)),
        esr: 0,
    };
    assert_eq!(pmcr.to_string(), "MRS S3_3_C9_C12_0 (PMU)");
    let sme = Undefined {
        group: Group::Sme,
        access: None,
        esr: 0x7600_0000,
    };
    assert_eq!(sme.to_string(), "an instruction of class 0x1d (SME)");
}

#[test]
fn exception_entry_vectors_by_where_the_guest_was() {
    let f = EntryFeatures::default();
    let el1h = sync_entry(0x3c5, 0, f);
    assert_eq!(
        el1h,
        Entry {
            offset: 0x200,
            spsr: 0x3c5
        }
    );
    assert_eq!(sync_entry(0x3c4, 0, f).offset, 0x000, "EL1t: SP_EL0 vector");
    assert_eq!(sync_entry(0x0, 0, f).offset, 0x400, "EL0, AArch64");
    assert_eq!(sync_entry(0x10, 0, f).offset, 0x600, "EL0, AArch32");
    // From EL0 with interrupts unmasked: EL1h, all masked.
    assert_eq!(sync_entry(0x0, 0, f).spsr, 0x3c5);
    assert_eq!(ESR_UNDEFINED, 0x0200_0000, "EC 0, IL");
}

#[test]
fn exception_entry_pstate() {
    let all = EntryFeatures {
        pan: true,
        ssbs: true,
        mte: true,
        nmi: true,
    };
    const PAN: u64 = 1 << 22;
    const DIT: u64 = 1 << 24;
    const SSBS: u64 = 1 << 12;
    const TCO: u64 = 1 << 25;
    const ALLINT: u64 = 1 << 13;
    const SPAN: u64 = 1 << 23;
    const DSSBS: u64 = 1 << 44;
    const NMI: u64 = 1 << 61;
    const SPINTMASK: u64 = 1 << 62;
    // SCTLR_EL1.SPAN = 0: PAN set; DIT kept; TCO set; SSBS from DSSBS (0).
    let e = sync_entry(DIT | SSBS, 0, all);
    assert_eq!(e.spsr, 0x3c5 | PAN | DIT | TCO);
    // SPAN = 1: PAN as it was.
    assert_eq!(sync_entry(0, SPAN, all).spsr & PAN, 0);
    assert_eq!(sync_entry(PAN, SPAN, all).spsr & PAN, PAN);
    assert_eq!(sync_entry(0, DSSBS, all).spsr & SSBS, SSBS);
    // ALLINT: NOT SPINTMASK when SCTLR_EL1.NMI, else as it was.
    assert_eq!(sync_entry(0, NMI, all).spsr & ALLINT, ALLINT);
    assert_eq!(sync_entry(ALLINT, NMI | SPINTMASK, all).spsr & ALLINT, 0);
    assert_eq!(sync_entry(ALLINT, 0, all).spsr & ALLINT, ALLINT);
    // Without the features none of it.
    let none = sync_entry(
        PAN | SSBS | ALLINT | 1 << 21,
        DSSBS | NMI,
        EntryFeatures::default(),
    );
    assert_eq!(none.spsr, 0x3c5, "SS, PAN, SSBS, ALLINT cleared");
    assert_eq!(
        EntryFeatures::of(&GuestView::new(&MAX, 0, 0, IPA_BITS).ids),
        all
    );
    assert_eq!(
        EntryFeatures::of(&a53().ids),
        EntryFeatures::default(),
        "Cortex-A53: none of PAN, SSBS, MTE, NMI"
    );
}

#[test]
fn undefined_id_space_accesses_report_ec_0x18_with_feat_idst() {
    let smidr = mrs(3, 1, 0, 0, 6);
    let esr_el2 = 0x18 << 26 | 1 << 25 | u64::from(iss(&smidr));
    // QEMU max advertises FEAT_IDST (ID_AA64MMFR2_EL1.IDS = 1): as its hardware
    // does for unallocated ID registers, EC 0x18 with the syndrome.
    let max = GuestView::new(&MAX, 0, 0, IPA_BITS);
    assert_eq!(undefined_esr(Some(&smidr), esr_el2, &max.ids), esr_el2);
    // Outside the ID space, or without FEAT_IDST: EC 0.
    let pmcr = mrs(3, 3, 9, 12, 0);
    assert_eq!(undefined_esr(Some(&pmcr), esr_el2, &max.ids), ESR_UNDEFINED);
    assert_eq!(undefined_esr(None, 0x7600_0000, &max.ids), ESR_UNDEFINED);
    // An AArch32 EL0 coprocessor access: IL as trapped (0 for a 16-bit T32 one).
    assert_eq!(undefined_esr(None, 0x1600_0001, &max.ids), ESR_UNDEFINED);
    assert_eq!(undefined_esr(None, 0x1400_0001, &max.ids), 0);
    assert_eq!(
        undefined_esr(Some(&smidr), esr_el2, &a53().ids),
        ESR_UNDEFINED
    );
}
