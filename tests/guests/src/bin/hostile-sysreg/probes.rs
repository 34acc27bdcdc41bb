//! The probes but `id` (see the crate docs for what each checks).

use ferry_partition_rt::println;

use crate::code::{self, SLOTS};
use crate::{Checks, Enc, Outcome, Shown, caught, read, undefined, write};

mod id;
pub use id::id;

/// A register named for the log.
#[derive(Clone, Copy)]
pub struct Reg(pub &'static str, pub Enc);

const fn reg(name: &'static str, op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Reg {
    Reg(name, Enc::new(op0, op1, crn, crm, op2))
}

/// ID_AA64DFR0_EL1.
pub const DFR0: Enc = Enc::new(3, 0, 0, 5, 0);
/// ID_AA64PFR0_EL1.
pub const PFR0: Enc = Enc::new(3, 0, 0, 4, 0);

/// Field `[shift + 3 : shift]` of `value`.
pub fn field(value: u64, shift: u32) -> u64 {
    value >> shift & 0xf
}

/// Reads an ID register the probe cannot do without.
pub fn id_reg(checks: &mut Checks, name: &str, enc: Enc) -> u64 {
    let o = read(enc);
    checks.check(o.is_ok(), format_args!("{name} ({enc}): {}", Shown(&o)));
    o.unwrap_or(0)
}

/// Checks that every access in `regs` (read, then write of `value`) is UNDEFINED.
fn all_undefined(checks: &mut Checks, regs: &[Reg], value: u64) {
    for &Reg(name, enc) in regs {
        let r = read(enc);
        let w = write(enc, value);
        println!("  {name}: read {}, write {}", Shown(&r), Shown(&w));
        checks.check(
            undefined(&r) && undefined(&w),
            format_args!(
                "{name} ({enc}) must be UNDEFINED: read {}, write {}",
                Shown(&r),
                Shown(&w)
            ),
        );
    }
}

const PMCR_EL0: Enc = Enc::new(3, 3, 9, 12, 0);
const PMCNTENSET_EL0: Enc = Enc::new(3, 3, 9, 12, 1);
const PMCCNTR_EL0: Enc = Enc::new(3, 3, 9, 13, 0);
const PMCCFILTR_EL0: Enc = Enc::new(3, 3, 14, 15, 7);
const PMEVTYPER0_EL0: Enc = Enc::new(3, 3, 14, 12, 0);
const PMEVCNTR0_EL0: Enc = Enc::new(3, 3, 14, 8, 0);
/// PMCCFILTR/PMEVTYPER: P (not at EL1), U (not at EL0), NSH (at EL2).
const AT_EL2_ONLY: u64 = 1 << 31 | 1 << 30 | 1 << 27;
/// The CPU_CYCLES event.
const CPU_CYCLES: u64 = 0x11;
const HYPERCALLS: u32 = 10_000;

/// `pmu`: the cycle counter and event counter 0 set to count at EL2 only, around
/// hypercalls. Ferry's policy: no PMU for partitions (PMUVer 0, UNDEFINED).
pub fn pmu(checks: &mut Checks) {
    let dfr0 = id_reg(checks, "ID_AA64DFR0_EL1", DFR0);
    let pmuver = field(dfr0, 8);
    println!("pmu: ID_AA64DFR0_EL1 {dfr0:#x}: PMUVer {pmuver}");
    checks.check(
        pmuver == 0,
        format_args!("the PMU is advertised (PMUVer {pmuver}) to a partition"),
    );
    let setup = [
        ("MRS PMCR_EL0", read(PMCR_EL0)),
        (
            "MSR PMCCFILTR_EL0 (EL2 only)",
            write(PMCCFILTR_EL0, AT_EL2_ONLY),
        ),
        (
            "MSR PMEVTYPER0_EL0 (CPU_CYCLES at EL2 only)",
            write(PMEVTYPER0_EL0, CPU_CYCLES | AT_EL2_ONLY),
        ),
        (
            "MSR PMCR_EL0 (E, P, C, LC)",
            write(PMCR_EL0, 1 | 1 << 1 | 1 << 2 | 1 << 6),
        ),
        ("MSR PMCNTENSET_EL0", write(PMCNTENSET_EL0, 1 << 31 | 1)),
    ];
    for _ in 0..HYPERCALLS {
        ferry_partition_rt::console::ferry_version();
    }
    let counts = [
        ("MRS PMCCNTR_EL0", read(PMCCNTR_EL0)),
        ("MRS PMEVCNTR0_EL0", read(PMEVCNTR0_EL0)),
    ];
    for (what, o) in setup.iter().chain(counts.iter()) {
        println!("pmu: {what}: {}", Shown(o));
        checks.check(
            undefined(o),
            format_args!("{what} is not UNDEFINED: {}", Shown(o)),
        );
    }
    for (what, o) in counts {
        if let Ok(n) = o {
            checks.check(
                n == 0,
                format_args!(
                    "{what}: {n} cycles counted at EL2 only over {HYPERCALLS} hypercalls: Ferry's time is visible"
                ),
            );
        }
    }
    all_undefined(
        checks,
        &[
            reg("PMUSERENR_EL0", 3, 3, 9, 14, 0),
            reg("PMCEID0_EL0", 3, 3, 9, 12, 6),
            reg("PMSELR_EL0", 3, 3, 9, 12, 5),
            reg("PMINTENSET_EL1", 3, 0, 9, 14, 1),
            reg("PMOVSCLR_EL0", 3, 3, 9, 12, 3),
        ],
        0,
    );
}

/// The RAS error record registers, and whether each is writable.
const RAS: [(Reg, bool); 13] = [
    (reg("ERRIDR_EL1", 3, 0, 5, 3, 0), false),
    (reg("ERRSELR_EL1", 3, 0, 5, 3, 1), true),
    (reg("ERXFR_EL1", 3, 0, 5, 4, 0), false),
    (reg("ERXCTLR_EL1", 3, 0, 5, 4, 1), true),
    (reg("ERXSTATUS_EL1", 3, 0, 5, 4, 2), true),
    (reg("ERXADDR_EL1", 3, 0, 5, 4, 3), true),
    (reg("ERXPFGF_EL1", 3, 0, 5, 4, 4), false),
    (reg("ERXPFGCTL_EL1", 3, 0, 5, 4, 5), true),
    (reg("ERXPFGCDN_EL1", 3, 0, 5, 4, 6), true),
    (reg("ERXMISC0_EL1", 3, 0, 5, 5, 0), true),
    (reg("ERXMISC1_EL1", 3, 0, 5, 5, 1), true),
    (reg("ERXMISC2_EL1", 3, 0, 5, 5, 2), true),
    (reg("ERXMISC3_EL1", 3, 0, 5, 5, 3), true),
];

/// `hvc #0`.
const HVC0: u32 = 0xd400_0002;
/// TPIDR_EL1: a register no hypervisor traps.
const TPIDR_EL1: Enc = Enc::new(3, 0, 13, 0, 4);

/// Whether reading `enc` (which must not fault) reaches EL2: 256 reads cost at
/// least a quarter of 256 hypercalls (HVC VERSION, a round trip through Ferry),
/// where native reads (TPIDR_EL1) cost next to nothing. Prints the three costs.
pub fn trapped(name: &str, enc: Enc) -> bool {
    code::load([enc.mrs(), TPIDR_EL1.mrs(), HVC0].into_iter());
    let cost = |slot, arg| code::time(slot, arg, 256);
    let (x, native, hvc) = (cost(0, 0), cost(1, 0), cost(2, 0x8600_0000));
    println!("  {name}: 256 reads take {x} ticks; native reads {native}, hypercalls {hvc}");
    x * 4 > hvc
}

/// `ras`: with RAS advertised, ERRIDR_EL1 is trapped and says there is no error
/// record, and no other record register shows or takes anything (select record 1,
/// clear every status bit, then read back); without, every register UNDEFs.
pub fn ras(checks: &mut Checks) {
    let pfr0 = id_reg(checks, "ID_AA64PFR0_EL1", PFR0);
    let ras = field(pfr0, 28);
    println!("ras: ID_AA64PFR0_EL1 {pfr0:#x}: RAS {ras}");
    for (Reg(name, enc), writable) in RAS {
        let w = if !writable {
            None
        } else if name == "ERRSELR_EL1" {
            Some(write(enc, 1))
        } else {
            Some(write(enc, u64::MAX))
        };
        let r = read(enc);
        match &w {
            Some(w) => println!("ras: {name}: write {}, then read {}", Shown(w), Shown(&r)),
            None => println!("ras: {name}: read {}", Shown(&r)),
        }
        if ras == 0 {
            let ok = undefined(&r) && w.as_ref().is_none_or(undefined);
            checks.check(
                ok,
                format_args!("{name} without RAS advertised must be UNDEFINED"),
            );
        } else if name == "ERRIDR_EL1" {
            checks.check(
                r == Ok(0),
                format_args!("ERRIDR_EL1 must say there is no error record"),
            );
            checks.check(
                r.is_ok() && trapped(name, enc),
                format_args!(
                    "ERRIDR_EL1 must be trapped (TERR): the error records are the hardware's"
                ),
            );
        } else {
            let ok = (r == Ok(0) || undefined(&r))
                && w.as_ref().is_none_or(|w| w.is_ok() || undefined(w));
            checks.check(
                ok,
                format_args!(
                    "{name} must read 0 and ignore writes, or be UNDEFINED (no error record)"
                ),
            );
        }
    }
}

/// `impdef`: every IMPLEMENTATION DEFINED encoding UNDEFs; ACTLR_EL1 reads 0.
pub fn impdef(checks: &mut Checks) {
    // op0 = 3, CRn = 11 or 15, every op1, CRm, op2: 2048 encodings.
    let n = 2048;
    let enc = |i: usize| {
        let crn = if i < 1024 { 11 } else { 15 };
        Enc::new(
            3,
            (i >> 7 & 7) as u8,
            crn,
            (i >> 3 & 15) as u8,
            (i & 7) as u8,
        )
    };
    let (mut worked, mut other) = (0, 0);
    sweep(n, enc, |enc, r, w| {
        for (what, o) in [("read", &r), ("write", &w)] {
            if !undefined(o) {
                if o.is_ok() {
                    worked += 1;
                } else {
                    other += 1;
                }
                if worked + other <= 16 {
                    println!("impdef: {what} {enc}: {}", Shown(o));
                }
            }
        }
    });
    println!(
        "impdef: {} accesses to {n} encodings: {worked} worked, {other} other exceptions",
        2 * n
    );
    checks.check(
        worked + other == 0,
        format_args!(
            "{} IMPLEMENTATION DEFINED accesses were not UNDEFINED",
            worked + other
        ),
    );
    let actlr = Enc::new(3, 0, 1, 0, 1);
    let r = read(actlr);
    let w = write(actlr, r.unwrap_or(0));
    println!("impdef: ACTLR_EL1: read {}, write {}", Shown(&r), Shown(&w));
    checks.check(
        r == Ok(0) && w.is_ok(),
        format_args!("ACTLR_EL1 must read 0 and ignore writes"),
    );
}

/// Reads each of the `n` encodings `enc(0..n)`, then writes it with what was read
/// (0 if the read failed), in batches of stubs; calls `seen(encoding, read, write)`.
pub fn sweep(n: usize, enc: impl Fn(usize) -> Enc, mut seen: impl FnMut(Enc, Outcome, Outcome)) {
    let mut start = 0;
    while start < n {
        let len = (n - start).min(SLOTS / 2);
        code::load(
            (start..start + len)
                .map(|i| enc(i).mrs())
                .chain((start..start + len).map(|i| enc(i).msr())),
        );
        for i in 0..len {
            let r = code::call(i, 0);
            let w = code::call(len + i, *r.as_ref().unwrap_or(&0)).map(|_| 0);
            seen(enc(start + i), r, w);
        }
        start += len;
    }
}

const OSLAR_EL1: Enc = Enc::new(2, 0, 1, 0, 4);
const OSLSR_EL1: Enc = Enc::new(2, 0, 1, 1, 4);
const OSDLR_EL1: Enc = Enc::new(2, 0, 1, 3, 4);
const MDSCR_EL1: Enc = Enc::new(2, 0, 0, 2, 2);
const DBGBVR0_EL1: Enc = Enc::new(2, 0, 0, 0, 4);
const DBGBCR0_EL1: Enc = Enc::new(2, 0, 0, 0, 5);
const DBGWVR0_EL1: Enc = Enc::new(2, 0, 0, 0, 6);
const DBGWCR0_EL1: Enc = Enc::new(2, 0, 0, 0, 7);
/// MDSCR_EL1.KDE | MDE: debug exceptions at EL1.
const MDSCR_KDE_MDE: u64 = 1 << 13 | 1 << 15;
/// DBGBCR: E, PMC = EL1 and EL0, BAS = all.
const BCR_ENABLED: u64 = 1 | 0b11 << 1 | 0xf << 5;
/// DBGWCR: E, PAC = EL1 and EL0, LSC = load and store, BAS = 8 bytes.
const WCR_ENABLED: u64 = 1 | 0b11 << 1 | 0b11 << 3 | 0xff << 5;

static WATCHED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

#[inline(never)]
fn breakpoint_target() -> u64 {
    // SAFETY: a NOP, the instruction the breakpoint is set on.
    unsafe { core::arch::asm!("nop", options(nomem, nostack)) };
    7
}

/// `debug`: the registers Linux writes at boot work (RAZ/WI); an armed breakpoint
/// and watchpoint never fire.
pub fn debug(checks: &mut Checks) {
    let oslsr = read(OSLSR_EL1);
    println!("debug: OSLSR_EL1: {}", Shown(&oslsr));
    checks.check(
        matches!(oslsr, Ok(v) if v & 0b1001 == 0b1000),
        format_args!("OSLSR_EL1 must say the OS lock is implemented (OSLM 0b10)"),
    );
    let target = breakpoint_target as fn() -> u64 as usize as u64;
    let watched = WATCHED.as_ptr() as u64;
    let writes = [
        ("OSLAR_EL1 (unlock)", OSLAR_EL1, 0, None),
        ("OSDLR_EL1", OSDLR_EL1, 0, Some(OSDLR_EL1)),
        (
            "MDSCR_EL1 (KDE, MDE)",
            MDSCR_EL1,
            MDSCR_KDE_MDE,
            Some(MDSCR_EL1),
        ),
        ("DBGBVR0_EL1", DBGBVR0_EL1, target, Some(DBGBVR0_EL1)),
        ("DBGBCR0_EL1", DBGBCR0_EL1, BCR_ENABLED, Some(DBGBCR0_EL1)),
        ("DBGWVR0_EL1", DBGWVR0_EL1, watched, Some(DBGWVR0_EL1)),
        ("DBGWCR0_EL1", DBGWCR0_EL1, WCR_ENABLED, Some(DBGWCR0_EL1)),
    ];
    for (name, enc, value, back) in writes {
        let w = write(enc, value);
        let r = back.map(read);
        match &r {
            Some(r) => println!(
                "debug: {name}: write {value:#x}: {}, read back {}",
                Shown(&w),
                Shown(r)
            ),
            None => println!("debug: {name}: write {value:#x}: {}", Shown(&w)),
        }
        checks.check(w.is_ok(), format_args!("MSR {name} must work (RAZ/WI)"));
        if let Some(r) = r {
            checks.check(
                r == Ok(0),
                format_args!("{name} must read 0 (RAZ/WI): {}", Shown(&r)),
            );
        }
    }
    // (register, whether cores may lack it: QEMU's Cortex-A53 has no DBGDTR_EL0
    // or DBGAUTHSTATUS_EL1)
    for (Reg(name, enc), optional) in [
        (reg("MDCCSR_EL0", 2, 3, 0, 1, 0), false),
        (reg("MDCCINT_EL1", 2, 0, 0, 2, 0), false),
        (reg("DBGDTR_EL0", 2, 3, 0, 4, 0), true),
        (reg("DBGCLAIMCLR_EL1", 2, 0, 7, 9, 6), false),
        (reg("DBGAUTHSTATUS_EL1", 2, 0, 7, 14, 6), true),
        (reg("MDRAR_EL1", 2, 0, 1, 0, 0), false),
    ] {
        let r = read(enc);
        println!("debug: {name}: {}", Shown(&r));
        checks.check(
            r == Ok(0) || (optional && undefined(&r)),
            format_args!("{name} must read 0"),
        );
    }
    let fired = caught(|| {
        // SAFETY: unmasks debug exceptions (PSTATE.D) around the armed accesses only.
        unsafe { core::arch::asm!("msr daifclr, #8", "isb", options(nostack)) };
        let v = breakpoint_target();
        WATCHED.store(v, core::sync::atomic::Ordering::SeqCst);
        // SAFETY: masks them again.
        unsafe { core::arch::asm!("msr daifset, #8", "isb", options(nostack)) };
        v
    });
    println!(
        "debug: the armed breakpoint and watchpoint: {}",
        Shown(&fired)
    );
    checks.check(
        fired.is_ok(),
        format_args!(
            "a hardware breakpoint or watchpoint fired: {}",
            Shown(&fired)
        ),
    );
}

/// `trace-amu`: trace, SPE, BRBE, AMU, LOR and MPAM are hidden and UNDEFINED.
pub fn trace_amu(checks: &mut Checks) {
    let dfr0 = id_reg(checks, "ID_AA64DFR0_EL1", DFR0);
    let pfr0 = id_reg(checks, "ID_AA64PFR0_EL1", PFR0);
    let pfr1 = id_reg(checks, "ID_AA64PFR1_EL1", Enc::new(3, 0, 0, 4, 1));
    let mmfr1 = id_reg(checks, "ID_AA64MMFR1_EL1", Enc::new(3, 0, 0, 7, 1));
    for (name, value) in [
        ("ID_AA64DFR0_EL1.TraceVer", field(dfr0, 4)),
        ("ID_AA64DFR0_EL1.PMSVer", field(dfr0, 32)),
        ("ID_AA64DFR0_EL1.TraceFilt", field(dfr0, 40)),
        ("ID_AA64DFR0_EL1.TraceBuffer", field(dfr0, 44)),
        ("ID_AA64DFR0_EL1.BRBE", field(dfr0, 52)),
        ("ID_AA64PFR0_EL1.MPAM", field(pfr0, 40)),
        ("ID_AA64PFR0_EL1.AMU", field(pfr0, 44)),
        ("ID_AA64PFR1_EL1.MPAM_frac", field(pfr1, 16)),
        ("ID_AA64MMFR1_EL1.LO", field(mmfr1, 16)),
    ] {
        println!("trace-amu: {name} = {value}");
        checks.check(
            value == 0,
            format_args!("{name} = {value}: must be 0 (hidden)"),
        );
    }
    all_undefined(
        checks,
        &[
            reg("TRFCR_EL1", 3, 0, 1, 2, 1),
            reg("TRCPRGCTLR", 2, 1, 0, 1, 0),
            reg("TRCSTATR", 2, 1, 0, 3, 0),
            reg("TRCIDR0", 2, 1, 0, 8, 7),
            reg("TRBLIMITR_EL1", 3, 0, 9, 11, 0),
            reg("TRBIDR_EL1", 3, 0, 9, 11, 7),
            reg("PMSCR_EL1", 3, 0, 9, 9, 0),
            reg("PMSIDR_EL1", 3, 0, 9, 9, 7),
            reg("PMBIDR_EL1", 3, 0, 9, 10, 7),
            reg("BRBCR_EL1", 2, 1, 9, 0, 0),
            reg("BRBIDR0_EL1", 2, 1, 9, 2, 0),
            reg("AMCR_EL0", 3, 3, 13, 2, 0),
            reg("AMCFGR_EL0", 3, 3, 13, 2, 1),
            reg("AMUSERENR_EL0", 3, 3, 13, 2, 3),
            reg("AMCNTENSET0_EL0", 3, 3, 13, 2, 5),
            reg("AMEVCNTR00_EL0", 3, 3, 13, 4, 0),
            reg("LORSA_EL1", 3, 0, 10, 4, 0),
            reg("LORC_EL1", 3, 0, 10, 4, 3),
            reg("LORID_EL1", 3, 0, 10, 4, 7),
            reg("MPAM1_EL1", 3, 0, 10, 5, 0),
            reg("MPAM0_EL1", 3, 0, 10, 5, 1),
        ],
        0,
    );
}

/// `fuzz`: every op0 = 2 or 3 encoding, read then written back.
pub fn fuzz(checks: &mut Checks) {
    // FP/SIMD, SVE and SME enabled at EL1 (CPACR_EL1 FPEN, ZEN, SMEN): what remains
    // is what Ferry and the hardware do, not this partition's own traps.
    let cpacr = Enc::new(3, 0, 1, 0, 2);
    let _ = write(cpacr, 0b11 << 20 | 0b11 << 16 | 0b11 << 24);
    let (mut read_ok, mut write_ok, mut undef, mut other) = (0u32, 0u32, 0u32, 0u32);
    let mut total = 0u32;
    for op0 in [2u8, 3] {
        for op1 in 0..8u8 {
            // CRn, CRm, op2: 2048 encodings per (op0, op1).
            let enc =
                |i: usize| Enc::new(op0, op1, (i >> 7) as u8, (i >> 3 & 15) as u8, (i & 7) as u8);
            sweep(2048, enc, |enc, r, w| {
                total += 1;
                for (ok_count, o) in [(&mut read_ok, &r), (&mut write_ok, &w)] {
                    match o {
                        Ok(_) => *ok_count += 1,
                        Err(_) if undefined(o) => undef += 1,
                        Err(_) => {
                            other += 1;
                            println!("fuzz: {enc}: {}", Shown(o));
                        }
                    }
                }
            });
            println!("fuzz: op0 {op0} op1 {op1} done");
        }
    }
    println!(
        "fuzz: {} accesses to {total} encodings: {read_ok} reads and {write_ok} writes worked, {undef} UNDEFINED, {other} other exceptions",
        2 * total
    );
    checks.check(
        other == 0,
        format_args!("{other} accesses took an exception other than UNDEFINED"),
    );
    checks.check(
        total == 32768,
        format_args!("{total} encodings tried, not 32768"),
    );
}
