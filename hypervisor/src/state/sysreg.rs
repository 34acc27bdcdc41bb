//! System register accesses from partitions that trap to EL2, and what Ferry does
//! with each (docs/partitions.md, "System registers"):
//!
//! - the ID registers (HCR_EL2.TID3; TID1: REVIDR_EL1, AIDR_EL1) read their
//!   sanitised values ([`super::idregs`]);
//! - the debug registers (MDCR_EL2.TDA, TDOSA, TDRA) are RAZ/WI, so a guest's
//!   boot-time writes (OS lock, MDSCR_EL1, breakpoint reset) work but it gets no
//!   debug events; OSLSR_EL1 says the OS lock is implemented and unlocked;
//! - the RAS error record registers (HCR_EL2.TERR) are RAZ/WI: no record visible,
//!   none cleared; ACTLR_EL1 (HCR_EL2.TACR) is RAZ/WI;
//! - ICC_SGI1R_EL1 sends SGIs within the partition; ICC_ASGI1R_EL1 and
//!   ICC_SGI0R_EL1 writes are ignored;
//! - everything else is UNDEFINED: an exception is injected into the guest as if
//!   the register did not exist, and logged (rate-limited per partition): the PMU,
//!   SPE, trace, BRBE, activity monitors, LOR, MPAM, MTE's tag registers, SME,
//!   IMPLEMENTATION DEFINED registers (HCR_EL2.TIDCP), writes to read-only and
//!   reads of write-only registers, and whatever else traps.

use core::fmt;

use super::idregs::fields::ID_AA64PFR1;
use super::idregs::{self, IdSpace, id};

/// A system register encoding (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysReg {
    /// op0.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
}

impl SysReg {
    /// The register (op0, op1, CRn, CRm, op2).
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysReg {
        SysReg {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }
}

impl fmt::Display for SysReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}_{}_C{}_C{}_{}",
            self.op0, self.op1, self.crn, self.crm, self.op2
        )
    }
}

/// A trapped MRS or MSR (ESR_EL2.EC 0x18), from the syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The register.
    pub reg: SysReg,
    /// The general-purpose register (31: XZR).
    pub rt: u8,
    /// An MRS (else an MSR).
    pub read: bool,
}

impl Access {
    /// Decodes ESR_EL2.ISS of EC 0x18: op0 [21:20], op2 [19:17], op1 [16:14], CRn
    /// [13:10], Rt [9:5], CRm [4:1], direction [0] (1: read).
    pub fn decode(iss: u32) -> Access {
        let bits = |shift: u32, width: u32| ((iss >> shift) & ((1 << width) - 1)) as u8;
        Access {
            reg: SysReg::new(
                bits(20, 2),
                bits(14, 3),
                bits(10, 4),
                bits(1, 4),
                bits(17, 3),
            ),
            rt: bits(5, 5),
            read: iss & 1 == 1,
        }
    }
}

/// What a trapped register belongs to: the policy's unit, and the log's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The ID registers.
    Id,
    /// The GIC's SGI registers.
    Sgi,
    /// Debug registers.
    Debug,
    /// The performance monitors.
    Pmu,
    /// The statistical profiling extension.
    Spe,
    /// Trace: the trace unit, filter and buffer.
    Trace,
    /// The branch record buffer.
    Brbe,
    /// The activity monitors.
    Amu,
    /// RAS error records.
    Ras,
    /// LORegions.
    Lor,
    /// Memory partitioning and monitoring.
    Mpam,
    /// MTE's allocation tag registers.
    Mte,
    /// SME.
    Sme,
    /// ACTLR_EL1.
    Actlr,
    /// IMPLEMENTATION DEFINED registers.
    ImpDef,
    /// The LS64 instructions (ESR_EL2.EC 0x0a).
    Ls64,
    /// A 128-bit system register access (EC 0x14).
    Sysreg128,
    /// An AArch32 coprocessor register access from AArch32 EL0 (EC 0x03-0x06,
    /// 0x0c): Ferry emulates no AArch32 register.
    Aarch32,
    /// Anything else.
    Other,
}

impl Group {
    /// A name for the log.
    pub fn name(self) -> &'static str {
        match self {
            Group::Id => "ID register",
            Group::Sgi => "GIC SGI register",
            Group::Debug => "debug",
            Group::Pmu => "PMU",
            Group::Spe => "statistical profiling",
            Group::Trace => "trace",
            Group::Brbe => "branch record buffer",
            Group::Amu => "activity monitors",
            Group::Ras => "RAS error records",
            Group::Lor => "LORegions",
            Group::Mpam => "MPAM",
            Group::Mte => "MTE tags",
            Group::Sme => "SME",
            Group::Actlr => "ACTLR_EL1",
            Group::ImpDef => "IMPLEMENTATION DEFINED",
            Group::Ls64 => "LS64",
            Group::Sysreg128 => "128-bit system register",
            Group::Aarch32 => "AArch32 coprocessor register",
            Group::Other => "not emulated",
        }
    }
}

/// What Ferry does with a trapped access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An MRS that reads this value (into Rt); the guest continues after it.
    Read(u64),
    /// An MSR that is ignored; the guest continues after it.
    Ignore,
    /// An MSR ICC_SGI1R_EL1: SGIs to the partition's vCPUs (Rt's value).
    SendSgi,
    /// UNDEFINED: an exception is injected into the guest at the access, and
    /// logged.
    Undefined(Group),
}

/// What a core's partition sees of it: the sanitised ID space, TID1's REVIDR_EL1
/// and AIDR_EL1 (the real values), and the breakpoints and watchpoints the ID
/// registers announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestView {
    /// The ID space as partitions read it.
    pub ids: IdSpace,
    /// REVIDR_EL1.
    pub revidr: u64,
    /// AIDR_EL1.
    pub aidr: u64,
    /// Breakpoints (DBGBCR/DBGBVR<n>_EL1 that exist).
    pub breakpoints: u8,
    /// Watchpoints (DBGWCR/DBGWVR<n>_EL1 that exist).
    pub watchpoints: u8,
}

impl GuestView {
    /// The view of a core whose ID space is `real`, with `ipa_bits` of stage-2
    /// input.
    pub fn new(real: &IdSpace, revidr: u64, aidr: u64, ipa_bits: u32) -> GuestView {
        let ids = idregs::sanitise(real, ipa_bits);
        let (breakpoints, watchpoints) = idregs::debug_counts(&ids);
        GuestView {
            ids,
            revidr,
            aidr,
            breakpoints,
            watchpoints,
        }
    }
}

/// OSLSR_EL1 as partitions read it: OSLM = 0b10 (the OS lock is implemented),
/// OSLK = 0 (unlocked: OSLAR_EL1 is ignored).
pub const OSLSR: u64 = 0b1000;

/// How a register may be accessed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rights {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

/// Emulated as RAZ/WI within its access rights, else UNDEFINED as `group`.
fn raz_wi(access: &Access, rw: Rights, group: Group) -> Decision {
    match (access.read, rw) {
        (true, Rights::ReadOnly | Rights::ReadWrite) => Decision::Read(0),
        (false, Rights::WriteOnly | Rights::ReadWrite) => Decision::Ignore,
        _ => Decision::Undefined(group),
    }
}

/// What Ferry does with `access`, trapped from a partition that sees `view`.
pub fn decide(access: &Access, view: &GuestView) -> Decision {
    let r = access.reg;
    match r.op0 {
        2 => debug_or_trace(access, view),
        3 => match (r.op1, r.crn, r.crm, r.op2) {
            (0, 0, 1..=7, _) if access.read => Decision::Read(view.ids.get((r.crm, r.op2))),
            (0, 0, 1..=7, _) => Decision::Undefined(Group::Id),
            (0, 0, 0, 6) if access.read => Decision::Read(view.revidr),
            (1, 0, 0, 7) if access.read => Decision::Read(view.aidr),
            (0, 12, 11, 5) if !access.read => Decision::SendSgi,
            (0, 12, 11, 6 | 7) if !access.read => Decision::Ignore,
            (0, 12, 11, 5..=7) => Decision::Undefined(Group::Sgi),
            (0, 1, 0, 1) => raz_wi(access, Rights::ReadWrite, Group::Actlr),
            (0, 5, 3..=5, _) => ras(access),
            _ => Decision::Undefined(undefined_group(r)),
        },
        _ => Decision::Undefined(Group::Other),
    }
}

/// op0 = 2: the debug registers (op1 = 0 and 3), trace (op1 = 1) and BRBE
/// (op1 = 1, CRn = 8 and 9).
fn debug_or_trace(access: &Access, view: &GuestView) -> Decision {
    let r = access.reg;
    let rw = match (r.op1, r.crn, r.crm, r.op2) {
        (0, 0, n, 4 | 5) if n < view.breakpoints => Rights::ReadWrite,
        (0, 0, n, 6 | 7) if n < view.watchpoints => Rights::ReadWrite,
        // OSDTRRX_EL1, MDCCINT_EL1, MDSCR_EL1, OSDTRTX_EL1, OSECCR_EL1.
        (0, 0, 0 | 2 | 3 | 6, 2) | (0, 0, 2, 0) => Rights::ReadWrite,
        (0, 1, 0, 0) => Rights::ReadOnly,  // MDRAR_EL1
        (0, 1, 0, 4) => Rights::WriteOnly, // OSLAR_EL1
        (0, 1, 1, 4) if access.read => return Decision::Read(OSLSR),
        (0, 1, 3 | 4, 4) => Rights::ReadWrite, // OSDLR_EL1, DBGPRCR_EL1
        (0, 7, 8 | 9, 6) => Rights::ReadWrite, // DBGCLAIMSET_EL1, DBGCLAIMCLR_EL1
        (0, 7, 14, 6) => Rights::ReadOnly,     // DBGAUTHSTATUS_EL1
        (3, 0, 1, 0) => Rights::ReadOnly,      // MDCCSR_EL0
        (3, 0, 4 | 5, 0) => Rights::ReadWrite, // DBGDTR_EL0, DBGDTRRX_EL0 / DBGDTRTX_EL0
        (1, 8 | 9, _, _) => return Decision::Undefined(Group::Brbe),
        (1, _, _, _) => return Decision::Undefined(Group::Trace),
        (0 | 3, _, _, _) => return Decision::Undefined(Group::Debug),
        _ => return Decision::Undefined(Group::Other),
    };
    raz_wi(access, rw, Group::Debug)
}

/// op0 = 3, CRn = 5, CRm = 3..5: the RAS error record registers (ERRIDR_EL1,
/// ERRSELR_EL1, ERXGSR_EL1, ERX*_EL1), RAZ/WI; MTE's TFSR*_EL1 sit beside them.
fn ras(access: &Access) -> Decision {
    let r = access.reg;
    let rw = match (r.op1, r.crm, r.op2) {
        (0, 3, 0 | 2) | (0, 4, 0 | 4) => Rights::ReadOnly, // ERRIDR, ERXGSR, ERXFR, ERXPFGF
        (0, 3, 1) | (0, 4, 1..=3 | 5 | 6) | (0, 5, 0..=3) => Rights::ReadWrite,
        _ => return Decision::Undefined(undefined_group(r)),
    };
    raz_wi(access, rw, Group::Ras)
}

/// Which group an UNDEFINED op0 = 3 register belongs to.
fn undefined_group(r: SysReg) -> Group {
    match (r.op1, r.crn, r.crm, r.op2) {
        (_, 11 | 15, _, _) => Group::ImpDef,
        (3, 9, 12..=14, _) | (0, 9, 14, _) | (3, 14, 8..=15, _) | (3, 9, 4, _) => Group::Pmu,
        (0, 9, 9 | 10, _) => Group::Spe,
        (0, 9, 11, _) | (0, 1, 2, 1) => Group::Trace,
        (3, 13, 2..=15, _) => Group::Amu,
        (0, 5, 3..=5, _) => Group::Ras,
        (0, 10, 4, 0..=3 | 7) => Group::Lor,
        (0, 10, 5, _) | (0, 10, 4, 4) => Group::Mpam,
        (0, 1, 0, 5 | 6) | (0, 5, 6, 0 | 1) | (1, 0, 0, 4) => Group::Mte,
        (0, 1, 2, 4 | 6) | (3, 4, 2, 2) | (3, 13, 0, 5) | (1, 0, 0, 6) => Group::Sme,
        _ => Group::Other,
    }
}

/// The group of a trapped instruction class Ferry answers with UNDEFINED, if `ec`
/// is one: SME (0x1d, CPTR_EL2.TSM), LS64 (0x0a, HCRX_EL2.EnALS/EnASR/EnAS0 clear)
/// and 128-bit system register accesses (0x14), each of a feature the ID registers
/// say is absent; and AArch32 EL0's coprocessor accesses (MCR/MRC/MCRR/MRRC/LDC/STC
/// to CP15 and CP14: 0x03-0x06, 0x0c), e.g. the DCC that MDCR_EL2.TDA traps.
pub fn undefined_class(ec: u8) -> Option<Group> {
    match ec {
        0x1d => Some(Group::Sme),
        0x0a => Some(Group::Ls64),
        0x14 => Some(Group::Sysreg128),
        0x03..=0x06 | 0x0c => Some(Group::Aarch32),
        _ => None,
    }
}

/// What was made UNDEFINED, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undefined {
    /// The group.
    pub group: Group,
    /// The access, for a trapped MRS/MSR (else a trapped instruction class).
    pub access: Option<Access>,
    /// ESR_EL2.
    pub esr: u64,
}

impl fmt::Display for Undefined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.access {
            Some(a) => write!(
                f,
                "{} {} ({})",
                if a.read { "MRS" } else { "MSR" },
                a.reg,
                self.group.name()
            ),
            None => write!(
                f,
                "an instruction of class {:#04x} ({})",
                (self.esr >> 26) & 0x3f,
                self.group.name()
            ),
        }
    }
}

/// ESR_EL1 of an UNDEFINED exception: EC 0 (unknown reason), IL (a 32-bit
/// instruction).
pub const ESR_UNDEFINED: u64 = 1 << 25;

/// ESR_EL1 for an UNDEFINED `access` (with ESR_EL2 `esr_el2`) in a partition that
/// sees `ids`: EC 0 with the trapped instruction's length (IL; a 16-bit T32
/// instruction from AArch32 EL0 has none), except for the ID space (op0 = 3,
/// CRn = 0) when the ID registers advertise FEAT_IDST (ID_AA64MMFR2_EL1.IDS): then,
/// as on the hardware, EC 0x18 with the access's syndrome.
pub fn undefined_esr(access: Option<&Access>, esr_el2: u64, ids: &IdSpace) -> u64 {
    use aarch64_cpu::registers::ID_AA64MMFR2_EL1;
    match access {
        Some(a)
            if a.reg.op0 == 3
                && a.reg.crn == 0
                && ids.field(id::MMFR2, ID_AA64MMFR2_EL1::IDS) != 0 =>
        {
            0x18 << 26 | ESR_UNDEFINED | (esr_el2 & 0x1ff_ffff)
        }
        Some(_) => ESR_UNDEFINED,
        None => esr_el2 & ESR_UNDEFINED,
    }
}

/// Where a synchronous exception taken to EL1 enters the guest: the offset from
/// VBAR_EL1 and the PSTATE (SPSR_EL2 for the ERET) its handler starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the vector from VBAR_EL1.
    pub offset: u64,
    /// The handler's PSTATE.
    pub spsr: u64,
}

/// The PSTATE features that decide an exception entry, from the guest's (sanitised)
/// ID registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryFeatures {
    /// FEAT_PAN: PSTATE.PAN set on entry unless SCTLR_EL1.SPAN.
    pub pan: bool,
    /// FEAT_SSBS: PSTATE.SSBS from SCTLR_EL1.DSSBS.
    pub ssbs: bool,
    /// FEAT_MTE: PSTATE.TCO set.
    pub mte: bool,
    /// FEAT_NMI: PSTATE.ALLINT from SCTLR_EL1.SPINTMASK when SCTLR_EL1.NMI.
    pub nmi: bool,
}

impl EntryFeatures {
    /// The features of a partition that sees `ids`.
    pub fn of(ids: &IdSpace) -> EntryFeatures {
        use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, ID_AA64PFR1_EL1};
        EntryFeatures {
            pan: ids.field(id::MMFR1, ID_AA64MMFR1_EL1::PAN) != 0,
            ssbs: ids.field(id::PFR1, ID_AA64PFR1::SSBS) != 0,
            mte: ids.field(id::PFR1, ID_AA64PFR1_EL1::MTE) != 0,
            nmi: ids.field(id::PFR1, ID_AA64PFR1::NMI) != 0,
        }
    }
}

/// The entry of a synchronous exception taken to EL1 from the guest state
/// `spsr` (SPSR_EL2 at the trap), with SCTLR_EL1 = `sctlr` (Arm ARM, "Exception
/// entry"): the vector for the current EL with SP_EL0 (from EL1t), with SP_EL1
/// (from EL1h), or a lower EL using AArch64 (EL0) or AArch32 (AArch32 EL0); the
/// handler runs in EL1h with D, A, I and F masked, PAN, SSBS, TCO and ALLINT as
/// the architecture sets them, DIT kept, everything else 0.
pub fn sync_entry(spsr: u64, sctlr: u64, f: EntryFeatures) -> Entry {
    const EL1H: u64 = 0b0101;
    const DAIF: u64 = 0b1111 << 6;
    const PAN: u64 = 1 << 22;
    const DIT: u64 = 1 << 24;
    const SSBS: u64 = 1 << 12;
    const TCO: u64 = 1 << 25;
    const ALLINT: u64 = 1 << 13;
    let offset = match (spsr >> 4 & 1, spsr & 0b1111) {
        (1, _) => 0x600,
        (0, 0b0000) => 0x400,
        (0, 0b0100) => 0x000,
        _ => 0x200,
    };
    let bit = |n: u32| sctlr >> n & 1 == 1;
    let mut new = EL1H | DAIF | (spsr & DIT);
    if f.pan && (!bit(23) || spsr & PAN != 0) {
        new |= PAN;
    }
    if f.ssbs && bit(44) {
        new |= SSBS;
    }
    if f.mte {
        new |= TCO;
    }
    if f.nmi {
        let allint = if bit(61) {
            !bit(62)
        } else {
            spsr & ALLINT != 0
        };
        if allint {
            new |= ALLINT;
        }
    }
    Entry { offset, spsr: new }
}
