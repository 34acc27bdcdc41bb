//! `id`: the ID registers are honest. Every encoding of the ID space (op0 = 3,
//! op1 = 0, CRn = 0, CRm = 1..7) reads without fault, the unallocated ones as 0;
//! each feature is advertised iff its registers or instructions work; and the
//! features Ferry keeps from partitions are advertised as absent.

use ferry_partition_rt::println;

use super::{Reg, field};
use crate::code::{self, Enc};
use crate::{Checks, Outcome, Shown, read, write};

/// The allocated ID registers, by (CRm, op2).
const NAMES: [(u8, u8, &str); 42] = [
    (1, 0, "ID_PFR0_EL1"),
    (1, 1, "ID_PFR1_EL1"),
    (1, 2, "ID_DFR0_EL1"),
    (1, 3, "ID_AFR0_EL1"),
    (1, 4, "ID_MMFR0_EL1"),
    (1, 5, "ID_MMFR1_EL1"),
    (1, 6, "ID_MMFR2_EL1"),
    (1, 7, "ID_MMFR3_EL1"),
    (2, 0, "ID_ISAR0_EL1"),
    (2, 1, "ID_ISAR1_EL1"),
    (2, 2, "ID_ISAR2_EL1"),
    (2, 3, "ID_ISAR3_EL1"),
    (2, 4, "ID_ISAR4_EL1"),
    (2, 5, "ID_ISAR5_EL1"),
    (2, 6, "ID_MMFR4_EL1"),
    (2, 7, "ID_ISAR6_EL1"),
    (3, 0, "MVFR0_EL1"),
    (3, 1, "MVFR1_EL1"),
    (3, 2, "MVFR2_EL1"),
    (3, 4, "ID_PFR2_EL1"),
    (3, 5, "ID_DFR1_EL1"),
    (3, 6, "ID_MMFR5_EL1"),
    (4, 0, "ID_AA64PFR0_EL1"),
    (4, 1, "ID_AA64PFR1_EL1"),
    (4, 2, "ID_AA64PFR2_EL1"),
    (4, 4, "ID_AA64ZFR0_EL1"),
    (4, 5, "ID_AA64SMFR0_EL1"),
    (4, 7, "ID_AA64FPFR0_EL1"),
    (5, 0, "ID_AA64DFR0_EL1"),
    (5, 1, "ID_AA64DFR1_EL1"),
    (5, 2, "ID_AA64DFR2_EL1"),
    (5, 4, "ID_AA64AFR0_EL1"),
    (5, 5, "ID_AA64AFR1_EL1"),
    (6, 0, "ID_AA64ISAR0_EL1"),
    (6, 1, "ID_AA64ISAR1_EL1"),
    (6, 2, "ID_AA64ISAR2_EL1"),
    (6, 3, "ID_AA64ISAR3_EL1"),
    (7, 0, "ID_AA64MMFR0_EL1"),
    (7, 1, "ID_AA64MMFR1_EL1"),
    (7, 2, "ID_AA64MMFR2_EL1"),
    (7, 3, "ID_AA64MMFR3_EL1"),
    (7, 4, "ID_AA64MMFR4_EL1"),
];

/// The ID space as read: index CRm * 8 + op2.
struct Ids([u64; 64]);

impl Ids {
    /// Field `shift` of the register at (CRm, op2).
    fn f(&self, crm: u8, op2: u8, shift: u32) -> u64 {
        field(self.0[usize::from(crm) * 8 + usize::from(op2)], shift)
    }
}

/// How a feature is tried.
enum Try {
    /// An MRS of this register.
    Read(Reg),
    /// This instruction (it may use x0).
    Insn(&'static str, u32),
}

fn r(name: &'static str, op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Try {
    Try::Read(Reg(name, Enc::new(op0, op1, crn, crm, op2)))
}

/// A feature: its name, whether the ID registers advertise it, how to try it.
type Feature = (&'static str, bool, [Option<Try>; 3]);

fn features(ids: &Ids) -> [Feature; 30] {
    let pfr0 = |s| ids.f(4, 0, s);
    let pfr1 = |s| ids.f(4, 1, s);
    let dfr0 = |s| ids.f(5, 0, s);
    let mmfr3 = |s| ids.f(7, 3, s);
    let csv2 = pfr0(56);
    let pmuver = dfr0(8);
    let pauth = ids.f(6, 1, 4) | ids.f(6, 1, 8) | ids.f(6, 2, 12) != 0;
    [
        (
            "SVE",
            pfr0(32) != 0,
            [
                Some(Try::Insn("RDVL", 0x04bf_5020)),
                Some(r("ZCR_EL1", 3, 0, 1, 2, 0)),
                None,
            ],
        ),
        (
            "SME",
            pfr1(24) != 0,
            [
                Some(r("SVCR", 3, 3, 4, 2, 2)),
                Some(r("SMCR_EL1", 3, 0, 1, 2, 6)),
                Some(r("SMIDR_EL1", 3, 1, 0, 0, 6)),
            ],
        ),
        (
            "SME TPIDR2_EL0",
            pfr1(24) != 0,
            [Some(r("TPIDR2_EL0", 3, 3, 13, 0, 5)), None, None],
        ),
        (
            "PMU",
            pmuver != 0 && pmuver != 0xf,
            [Some(r("PMCR_EL0", 3, 3, 9, 12, 0)), None, None],
        ),
        (
            "SPE",
            dfr0(32) != 0,
            [Some(r("PMSIDR_EL1", 3, 0, 9, 9, 7)), None, None],
        ),
        (
            "trace unit",
            dfr0(4) != 0,
            [Some(r("TRCIDR0", 2, 1, 0, 8, 7)), None, None],
        ),
        (
            "trace filter",
            dfr0(40) != 0,
            [Some(r("TRFCR_EL1", 3, 0, 1, 2, 1)), None, None],
        ),
        (
            "trace buffer",
            dfr0(44) != 0,
            [Some(r("TRBIDR_EL1", 3, 0, 9, 11, 7)), None, None],
        ),
        (
            "BRBE",
            dfr0(52) != 0,
            [Some(r("BRBIDR0_EL1", 2, 1, 9, 2, 0)), None, None],
        ),
        (
            "AMU",
            pfr0(44) != 0,
            [Some(r("AMCFGR_EL0", 3, 3, 13, 2, 1)), None, None],
        ),
        (
            "LOR",
            ids.f(7, 1, 16) != 0,
            [Some(r("LORID_EL1", 3, 0, 10, 4, 7)), None, None],
        ),
        (
            "MPAM",
            pfr0(40) | pfr1(16) != 0,
            [Some(r("MPAM1_EL1", 3, 0, 10, 5, 0)), None, None],
        ),
        (
            "RAS",
            pfr0(28) != 0,
            [Some(r("ERRIDR_EL1", 3, 0, 5, 3, 0)), None, None],
        ),
        (
            "MTE instructions",
            pfr1(8) != 0,
            [Some(Try::Insn("IRG", 0x9adf_1000)), None, None],
        ),
        (
            "MTE2",
            pfr1(8) >= 2,
            [
                Some(r("GCR_EL1", 3, 0, 1, 0, 6)),
                Some(r("TFSR_EL1", 3, 0, 5, 6, 0)),
                None,
            ],
        ),
        (
            "GCS",
            pfr1(44) != 0,
            [Some(r("GCSPR_EL1", 3, 0, 2, 5, 1)), None, None],
        ),
        (
            "S1PIE",
            mmfr3(8) != 0,
            [Some(r("PIR_EL1", 3, 0, 10, 2, 3)), None, None],
        ),
        (
            "S1POE",
            mmfr3(16) != 0,
            [Some(r("POR_EL1", 3, 0, 10, 2, 4)), None, None],
        ),
        (
            "TCR2",
            mmfr3(0) != 0,
            [Some(r("TCR2_EL1", 3, 0, 2, 0, 3)), None, None],
        ),
        (
            "SCTLR2",
            mmfr3(4) != 0,
            [Some(r("SCTLR2_EL1", 3, 0, 1, 0, 3)), None, None],
        ),
        (
            "AIE",
            mmfr3(24) != 0,
            [Some(r("MAIR2_EL1", 3, 0, 10, 2, 1)), None, None],
        ),
        (
            "THE",
            pfr1(48) != 0,
            [Some(r("RCWMASK_EL1", 3, 0, 13, 0, 6)), None, None],
        ),
        (
            "SCXTNUM (CSV2_2)",
            csv2 >= 2 || (csv2 == 1 && pfr1(32) >= 2),
            [Some(r("SCXTNUM_EL1", 3, 0, 13, 0, 7)), None, None],
        ),
        (
            "RNDR",
            ids.f(6, 0, 60) != 0,
            [Some(r("RNDR", 3, 3, 2, 4, 0)), None, None],
        ),
        (
            "pointer authentication",
            pauth,
            [Some(r("APIAKEYLO_EL1", 3, 0, 2, 1, 0)), None, None],
        ),
        (
            "NMI",
            pfr1(36) != 0,
            [Some(r("ALLINT", 3, 0, 4, 3, 0)), None, None],
        ),
        (
            "TME",
            ids.f(6, 0, 24) != 0,
            [Some(Try::Insn("TTEST", 0xd523_3160)), None, None],
        ),
        (
            "ECV",
            ids.f(7, 0, 60) != 0,
            [Some(r("CNTVCTSS_EL0", 3, 3, 14, 0, 6)), None, None],
        ),
        (
            "FPMR",
            ids.f(4, 2, 32) != 0,
            [Some(r("FPMR", 3, 3, 4, 4, 2)), None, None],
        ),
        (
            "debug",
            dfr0(0) >= 6,
            [
                Some(r("MDSCR_EL1", 2, 0, 0, 2, 2)),
                Some(r("OSLSR_EL1", 2, 0, 1, 1, 4)),
                None,
            ],
        ),
    ]
}

fn attempt(t: &Try) -> (&'static str, Outcome) {
    match *t {
        Try::Read(Reg(name, enc)) => (name, read(enc)),
        Try::Insn(name, insn) => {
            code::load(core::iter::once(insn));
            (name, code::call(0, 0))
        }
    }
}

/// Reads the whole ID space: every encoding must read, the unallocated ones as 0.
fn read_all(checks: &mut Checks) -> Ids {
    let mut ids = Ids([0; 64]);
    for crm in 1..8u8 {
        for op2 in 0..8u8 {
            let enc = Enc::new(3, 0, 0, crm, op2);
            let o = read(enc);
            let name = NAMES.iter().find(|n| n.0 == crm && n.1 == op2).map(|n| n.2);
            println!(
                "id: {} ({enc}) = {}",
                name.unwrap_or("unallocated"),
                Shown(&o)
            );
            checks.check(o.is_ok(), format_args!("{enc} must read (TID3 space)"));
            let v = o.unwrap_or(0);
            checks.check(
                name.is_some() || v == 0,
                format_args!("unallocated ID register {enc} reads {v:#x}, not 0"),
            );
            ids.0[usize::from(crm) * 8 + usize::from(op2)] = v;
        }
    }
    ids
}

/// The `id` probe.
pub fn id(checks: &mut Checks) {
    // FP/SIMD, SVE and SME enabled at EL1 (CPACR_EL1 FPEN, ZEN, SMEN), as an OS
    // using them would.
    let _ = write(
        Enc::new(3, 0, 1, 0, 2),
        0b11 << 20 | 0b11 << 16 | 0b11 << 24,
    );
    let ids = read_all(checks);
    for (name, advertised, tries) in features(&ids) {
        let mut worked = 0;
        let mut tried = 0;
        for t in tries.iter().flatten() {
            let (what, o) = attempt(t);
            println!("id: {name}: {what}: {}", Shown(&o));
            tried += 1;
            worked += u32::from(o.is_ok());
        }
        let works = worked == tried;
        println!(
            "id: {name}: {} and {}",
            if advertised {
                "advertised"
            } else {
                "not advertised"
            },
            match worked {
                0 => "absent",
                _ if works => "works",
                _ => "partly works",
            }
        );
        checks.check(
            (advertised && works) || (!advertised && worked == 0),
            format_args!("{name}: the ID registers do not match what works"),
        );
    }
    hidden(checks, &ids);
}

/// The features Ferry keeps from partitions must be advertised as absent.
fn hidden(checks: &mut Checks, ids: &Ids) {
    let must_be = [
        ("ID_AA64PFR0_EL1.EL2", ids.f(4, 0, 8), 0),
        ("ID_AA64PFR0_EL1.SEL2", ids.f(4, 0, 36), 0),
        ("ID_AA64PFR0_EL1.MPAM", ids.f(4, 0, 40), 0),
        ("ID_AA64PFR0_EL1.AMU", ids.f(4, 0, 44), 0),
        ("ID_AA64PFR0_EL1.RME", ids.f(4, 0, 52), 0),
        ("ID_AA64PFR1_EL1.MPAM_frac", ids.f(4, 1, 16), 0),
        ("ID_AA64PFR1_EL1.SME", ids.f(4, 1, 24), 0),
        ("ID_AA64DFR0_EL1.TraceVer", ids.f(5, 0, 4), 0),
        ("ID_AA64DFR0_EL1.PMUVer", ids.f(5, 0, 8), 0),
        ("ID_AA64DFR0_EL1.PMSVer", ids.f(5, 0, 32), 0),
        ("ID_AA64DFR0_EL1.TraceFilt", ids.f(5, 0, 40), 0),
        ("ID_AA64DFR0_EL1.TraceBuffer", ids.f(5, 0, 44), 0),
        ("ID_AA64DFR0_EL1.BRBE", ids.f(5, 0, 52), 0),
        ("ID_AA64MMFR1_EL1.LO", ids.f(7, 1, 16), 0),
        ("ID_PFR0_EL1.AMU", ids.f(1, 0, 20), 0),
        ("ID_DFR0_EL1.CopTrc", ids.f(1, 2, 12), 0),
        ("ID_DFR0_EL1.MMapTrc", ids.f(1, 2, 16), 0),
        ("ID_DFR0_EL1.PerfMon", ids.f(1, 2, 24), 0),
        ("ID_DFR0_EL1.TraceFilt", ids.f(1, 2, 28), 0),
    ];
    for (name, value, want) in must_be {
        checks.check(
            value == want,
            format_args!(
                "{name} = {value}: Ferry keeps it from partitions, so it must read {want}"
            ),
        );
    }
    let mte = ids.f(4, 1, 8);
    checks.check(
        mte <= 1,
        format_args!(
            "ID_AA64PFR1_EL1.MTE = {mte}: tag memory is not given to partitions (at most 1)"
        ),
    );
}
