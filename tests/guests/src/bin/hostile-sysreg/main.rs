//! `hostile-sysreg`: a partition that goes after the system registers Ferry must
//! keep from it (docs/partitions.md, "System registers"), and checks that each one is
//! handled per policy: the PMU, trace, SPE, BRBE, AMU, LOR, MPAM and
//! IMPLEMENTATION DEFINED registers are UNDEFINED; the debug, RAS error record and
//! ACTLR_EL1 registers read as zero and ignore writes; the ID registers advertise
//! exactly the features that work. Every access runs inside
//! `ferry_partition_rt::probe::catch`: an exception the access takes at EL1 is
//! recorded and the instruction skipped, so the probe sees "worked (value)" or
//! "UNDEFINED" (EC 0x00) or another exception class (a failure). Most accesses are
//! an MRS or MSR built at run time in a code page ([`code`]), so any encoding can be
//! tried.
//!
//! Bootargs: `probe=` one of
//!
//! | probe | what it checks |
//! |---|---|
//! | `pmu` | the PMU is hidden (ID_AA64DFR0_EL1.PMUVer = 0) and every PMU access UNDEFs; in particular the cycle counter, filtered to count at EL2 only (PMCCFILTR_EL0.NSH) around 10 000 hypercalls, cannot be read |
//! | `ras` | RAS error records: with ID_AA64PFR0_EL1.RAS, ERRIDR_EL1 is trapped to EL2 (timed against a native read and a hypercall) and reads NUM = 0, and every other ERR*/ERX* register reads 0 and ignores writes or is UNDEFINED (both allowed without records); without RAS, all UNDEF |
//! | `impdef` | every IMPLEMENTATION DEFINED encoding (op0 = 3, CRn = 11 or 15) UNDEFs, read and write; ACTLR_EL1 reads 0 |
//! | `id` | the ID registers (all 56 encodings of the ID space) read without fault, unallocated ones as 0; each feature they advertise works and each they hide does not (SVE, SME, PMU, SPE, trace, BRBE, AMU, LOR, MPAM, RAS, MTE, GCS, PIE/POE, TCR2, SCTLR2, SCXTNUM, RNDR, pointer authentication, NMI, TME, ECV, FPMR, AIE, THE); the features Ferry traps are hidden |
//! | `debug` | the debug registers Linux writes at boot (OS lock, MDSCR_EL1, breakpoints and watchpoints, DCC) work as RAZ/WI (OSLSR_EL1 says the OS lock is implemented; DBGDTR_EL0 and DBGAUTHSTATUS_EL1 read 0 or are UNDEFINED, as on cores without them); an armed breakpoint and watchpoint never fire |
//! | `trace-amu` | trace (TRFCR, TRC*, TRB*), SPE, BRBE, AMU, LOR and MPAM registers UNDEF and their ID fields say absent |
//! | `fuzz` | every MRS and MSR encoding (op0 = 2 or 3: 32 768 registers, each read, then written with what was read or 0) either works or UNDEFs (EC 0x00, or 0x18 in the ID space with FEAT_IDST) |
//! | `aarch32` | exceptions from AArch32 EL0: a physical interrupt taken there is served, a stage-2 fault stops this partition (the expected end: its fault code), never Ferry ([`aarch32`]) |
//!
//! Log: what each check saw, then `hostile-sysreg: <probe>: PASS` and SYSTEM_OFF, or
//! `hostile-sysreg: <probe>: FAIL (<n> checks failed)` and SYSTEM_RESET.
#![no_std]
#![no_main]

mod aarch32;
mod code;
mod probes;

use core::fmt;

use ferry_partition_rt::probe::{self, Caught, EC_SYSREG, EC_UNKNOWN};
use ferry_partition_rt::{self as rt, Boot, fail, println, psci};

pub use code::{Enc, read, write};

rt::entry!(main);

/// What an access did: worked (the value an MRS read; 0 for an MSR) or took an
/// exception at EL1.
pub type Outcome = Result<u64, Caught>;

/// Whether `o` is an UNDEFINED exception: EC 0x00, or EC 0x18 for the ID space
/// (op0 = 3, CRn = 0: FEAT_IDST reports its unallocated encodings so).
pub fn undefined(o: &Outcome) -> bool {
    match o {
        Err(c) if c.ec() == EC_UNKNOWN => true,
        Err(c) => c.ec() == EC_SYSREG && c.esr >> 20 & 3 == 3 && c.esr >> 10 & 0xf == 0,
        Ok(_) => false,
    }
}

/// An outcome, printed.
pub struct Shown<'a>(pub &'a Outcome);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "{v:#x}"),
            Err(c) if c.ec() == EC_UNKNOWN => write!(f, "UNDEFINED"),
            Err(c) if undefined(self.0) => write!(f, "UNDEFINED (EC 0x18, FEAT_IDST)"),
            Err(c) => write!(f, "exception EC {:#04x} (ESR_EL1 {:#x})", c.ec(), c.esr),
        }
    }
}

/// The probe's verdict so far: failed checks are printed as they happen.
pub struct Checks {
    name: &'static str,
    failed: u32,
}

impl Checks {
    /// No check failed yet.
    pub fn new(name: &'static str) -> Checks {
        Checks { name, failed: 0 }
    }

    /// Records a check: prints `FAIL <what>` if `ok` is false.
    pub fn check(&mut self, ok: bool, what: fmt::Arguments<'_>) {
        if !ok {
            self.failed += 1;
            println!("hostile-sysreg: {}: FAIL {what}", self.name);
        }
    }

    /// Ends the partition with the verdict.
    pub fn finish(self) -> ! {
        if self.failed == 0 {
            println!("hostile-sysreg: {}: PASS", self.name);
            psci::system_off()
        }
        println!(
            "hostile-sysreg: {}: FAIL ({} checks failed)",
            self.name, self.failed
        );
        psci::system_reset()
    }
}

/// Runs `f` (an access) with exceptions caught.
pub fn caught(f: impl FnOnce() -> u64) -> Outcome {
    match probe::catch(f) {
        (v, None, _) => Ok(v),
        (_, Some(c), _) => Err(c),
    }
}

fn main(boot: &'static Boot) -> ! {
    let which = boot.arg("probe").unwrap_or("");
    let mut checks = match which {
        "pmu" => Checks::new("pmu"),
        "ras" => Checks::new("ras"),
        "impdef" => Checks::new("impdef"),
        "id" => Checks::new("id"),
        "debug" => Checks::new("debug"),
        "trace-amu" => Checks::new("trace-amu"),
        "fuzz" => Checks::new("fuzz"),
        "aarch32" => Checks::new("aarch32"),
        _ => fail!(
            "hostile-sysreg: probe={which:?}: use pmu, ras, impdef, id, debug, trace-amu, fuzz or aarch32"
        ),
    };
    println!("hostile-sysreg: {which}: start");
    match which {
        "pmu" => probes::pmu(&mut checks),
        "ras" => probes::ras(&mut checks),
        "impdef" => probes::impdef(&mut checks),
        "id" => probes::id(&mut checks),
        "debug" => probes::debug(&mut checks),
        "trace-amu" => probes::trace_amu(&mut checks),
        "aarch32" => aarch32::aarch32(&mut checks, boot),
        _ => probes::fuzz(&mut checks),
    }
    checks.finish()
}
