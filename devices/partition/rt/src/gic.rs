//! A small GICv3 driver for the test guests: distributor, redistributors and the
//! system-register CPU interface, with affinity routing and Group 1 only — the
//! standard model a partition sees under Ferry's vGIC, and what QEMU's real GICv3
//! offers the `smoke` build.
//!
//! - [`init`] finds the GIC in the guest DTB (`compatible = "arm,gic-v3"`: `reg` =
//!   the distributor, then the redistributor region);
//! - [`dist_init`] (once per partition, vCPU 0): GICD_CTLR = ARE | EnableGrp1;
//! - [`cpu_init`] (every vCPU): finds its redistributor by walking the frames and
//!   matching GICR_TYPER's affinity with MPIDR_EL1 (stopping at GICR_TYPER.Last),
//!   wakes it (GICR_WAKER), makes SGIs and PPIs Group 1, then ICC_SRE_EL1.SRE,
//!   ICC_CTLR_EL1 (EOImode 0), ICC_PMR_EL1 = 0xff, ICC_IGRPEN1_EL1 = 1;
//! - [`set_handler`] installs `fn(intid)` as the IRQ handler: each IRQ exception acks
//!   with ICC_IAR1_EL1, calls it, and EOIs with ICC_EOIR1_EL1, until IAR says
//!   spurious (1023). Unmask with [`crate::irq::enable`].
//!
//! Every GICD/GICR access is one plain 32- or 64-bit LDR/STR with a register
//! address (no writeback, no pairs), so a hypervisor trapping it sees a full
//! syndrome (ESR_EL2.ISV = 1). Priorities are changed 32 bits at a time
//! (read-modify-write of the IPRIORITYR word).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::{Boot, MAX_VCPUS, arch};

/// GICD register offsets.
pub mod gicd {
    /// Control.
    pub const CTLR: usize = 0x0000;
    /// Interrupt controller type.
    pub const TYPER: usize = 0x0004;
    /// Implementer identification.
    pub const IIDR: usize = 0x0008;
    /// Group (1 bit per INTID).
    pub const IGROUPR: usize = 0x0080;
    /// Set-enable.
    pub const ISENABLER: usize = 0x0100;
    /// Clear-enable.
    pub const ICENABLER: usize = 0x0180;
    /// Set-pending.
    pub const ISPENDR: usize = 0x0200;
    /// Clear-pending.
    pub const ICPENDR: usize = 0x0280;
    /// Set-active.
    pub const ISACTIVER: usize = 0x0300;
    /// Clear-active.
    pub const ICACTIVER: usize = 0x0380;
    /// Priority (1 byte per INTID).
    pub const IPRIORITYR: usize = 0x0400;
    /// Configuration (2 bits per INTID; the upper one set = edge).
    pub const ICFGR: usize = 0x0c00;
    /// Routing (64 bits per INTID, SPIs only).
    pub const IROUTER: usize = 0x6000;
    /// Peripheral ID 2 (ArchRev in bits 7:4).
    pub const PIDR2: usize = 0xffe8;

    /// GICD_CTLR.EnableGrp1 (non-secure Group 1 with a single security state).
    pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
    /// GICD_CTLR.ARE (affinity routing).
    pub const CTLR_ARE: u32 = 1 << 4;
    /// GICD_CTLR.RWP (register write pending).
    pub const CTLR_RWP: u32 = 1 << 31;
}

/// GICR register offsets: RD_base frame, and SGI_base frame (at [`SGI_BASE`]).
pub mod gicr {
    /// Size of one redistributor: an RD_base and an SGI_base 64 KiB frame.
    pub const STRIDE: usize = 0x2_0000;
    /// The SGI_base frame, from the RD_base frame.
    pub const SGI_BASE: usize = 0x1_0000;
    /// Control (RD_base).
    pub const CTLR: usize = 0x0000;
    /// Type, 64 bits (RD_base): affinity in 63:32, Last in bit 4.
    pub const TYPER: usize = 0x0008;
    /// Wake (RD_base).
    pub const WAKER: usize = 0x0014;
    /// GICR_TYPER.Last: the last redistributor of the region.
    pub const TYPER_LAST: u64 = 1 << 4;
    /// GICR_WAKER.ProcessorSleep.
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    /// GICR_WAKER.ChildrenAsleep.
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
    /// Group of SGIs/PPIs (SGI_base).
    pub const IGROUPR0: usize = SGI_BASE + 0x0080;
    /// Set-enable of SGIs/PPIs (SGI_base).
    pub const ISENABLER0: usize = SGI_BASE + 0x0100;
    /// Clear-enable of SGIs/PPIs (SGI_base).
    pub const ICENABLER0: usize = SGI_BASE + 0x0180;
    /// Set-pending of SGIs/PPIs (SGI_base).
    pub const ISPENDR0: usize = SGI_BASE + 0x0200;
    /// Clear-pending of SGIs/PPIs (SGI_base).
    pub const ICPENDR0: usize = SGI_BASE + 0x0280;
    /// Set-active of SGIs/PPIs (SGI_base).
    pub const ISACTIVER0: usize = SGI_BASE + 0x0300;
    /// Clear-active of SGIs/PPIs (SGI_base).
    pub const ICACTIVER0: usize = SGI_BASE + 0x0380;
    /// Priorities of SGIs/PPIs, 8 words (SGI_base).
    pub const IPRIORITYR: usize = SGI_BASE + 0x0400;
    /// Configuration of SGIs (ICFGR0) and PPIs (ICFGR1) (SGI_base).
    pub const ICFGR0: usize = SGI_BASE + 0x0c00;
}

/// QEMU virt's GIC, used when the DTB names none: GICD, and the redistributor region.
pub const VIRT_GICD: usize = 0x0800_0000;
/// See [`VIRT_GICD`].
pub const VIRT_GICR: usize = 0x080a_0000;

/// INTID of the EL1 virtual timer (PPI 11).
pub const VTIMER_INTID: u32 = 27;
/// INTIDs from here on are special (1020..1023; 1023 = spurious).
pub const SPECIAL: u32 = 1020;
/// What ICC_IAR1_EL1 returns when nothing is pending.
pub const SPURIOUS: u32 = 1023;

static GICD_BASE: AtomicUsize = AtomicUsize::new(0);
static GICR_BASE: AtomicUsize = AtomicUsize::new(0);
static GICR_SIZE: AtomicUsize = AtomicUsize::new(0);
/// Each vCPU's redistributor (RD_base), set by [`cpu_init`].
static REDIST: [AtomicUsize; MAX_VCPUS] = [const { AtomicUsize::new(0) }; MAX_VCPUS];
/// The `fn(u32)` [`set_handler`] installed.
static HANDLER: AtomicUsize = AtomicUsize::new(0);
/// IRQ exceptions in which ICC_IAR1_EL1 returned a spurious INTID first, per vCPU.
static SPURIOUS_IRQS: [AtomicU32; MAX_VCPUS] = [const { AtomicU32::new(0) }; MAX_VCPUS];

// ---------------------------------------------------------------------------------
// MMIO: one LDR/STR each, register addressing (ISV = 1 when trapped).

/// 32-bit MMIO read.
pub fn read32(addr: usize) -> u32 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u32;
        // SAFETY: a device register of the GIC, mapped Device by the runtime.
        unsafe {
            core::arch::asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v,
                options(nostack, readonly))
        };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = addr;
        unimplemented!("MMIO on the host")
    }
}

/// 32-bit MMIO write.
pub fn write32(addr: usize, v: u32) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: a device register of the GIC, mapped Device by the runtime.
    unsafe {
        core::arch::asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v,
            options(nostack))
    };
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = (addr, v);
        unimplemented!("MMIO on the host")
    }
}

/// 64-bit MMIO read.
pub fn read64(addr: usize) -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: a device register of the GIC, mapped Device by the runtime.
        unsafe {
            core::arch::asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v,
                options(nostack, readonly))
        };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = addr;
        unimplemented!("MMIO on the host")
    }
}

/// 64-bit MMIO write.
pub fn write64(addr: usize, v: u64) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: a device register of the GIC, mapped Device by the runtime.
    unsafe {
        core::arch::asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) v,
            options(nostack))
    };
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = (addr, v);
        unimplemented!("MMIO on the host")
    }
}

// ---------------------------------------------------------------------------------
// CPU interface system registers.

macro_rules! sysreg_rw {
    ($get:ident, $set:ident, $name:literal, $doc:literal) => {
        #[doc = concat!("Reads ", $doc, ".")]
        pub fn $get() -> u64 {
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            {
                let v: u64;
                // SAFETY: a GIC CPU interface register of this vCPU.
                unsafe {
                    core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v,
                        options(nomem, nostack))
                };
                v
            }
            #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
            unimplemented!("system registers on the host")
        }

        #[doc = concat!("Writes ", $doc, " (then ISB).")]
        pub fn $set(v: u64) {
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            // SAFETY: a GIC CPU interface register of this vCPU.
            unsafe {
                core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v,
                    options(nostack))
            };
            #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
            {
                let _ = v;
                unimplemented!("system registers on the host")
            }
        }
    };
}

sysreg_rw!(icc_sre, set_icc_sre, "S3_0_C12_C12_5", "ICC_SRE_EL1");
sysreg_rw!(icc_ctlr, set_icc_ctlr, "S3_0_C12_C12_4", "ICC_CTLR_EL1");
sysreg_rw!(icc_pmr, set_icc_pmr, "S3_0_C4_C6_0", "ICC_PMR_EL1");
sysreg_rw!(
    icc_igrpen1,
    set_icc_igrpen1,
    "S3_0_C12_C12_7",
    "ICC_IGRPEN1_EL1"
);

/// ICC_RPR_EL1: the running priority (0xff when idle).
pub fn icc_rpr() -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: reads a GIC CPU interface register.
        unsafe { core::arch::asm!("mrs {}, S3_0_C12_C11_3", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    unimplemented!("system registers on the host")
}

/// ICC_IAR1_EL1: acknowledges the highest-priority pending Group 1 interrupt and
/// returns its INTID ([`SPURIOUS`] if none).
pub fn ack() -> u32 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: reading IAR changes only the CPU interface's state.
        unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) v, options(nostack)) };
        (v & 0xff_ffff) as u32
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    unimplemented!("system registers on the host")
}

/// ICC_EOIR1_EL1: ends `intid` (priority drop and deactivation; EOImode 0).
pub fn eoi(intid: u32) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: ends an interrupt this vCPU acknowledged.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) intid as u64,
            options(nostack))
    };
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = intid;
        unimplemented!("system registers on the host")
    }
}

/// Writes ICC_SGI1R_EL1 (see [`sgi1r`]).
pub fn write_sgi1r(v: u64) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: generates SGIs; DSB first so this vCPU's stores are visible to the
    // targets' handlers, ISB after so the write is not reordered with what follows.
    unsafe {
        core::arch::asm!("dsb ish", "msr S3_0_C12_C11_5, {}", "isb", in(reg) v,
            options(nostack))
    };
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = v;
        unimplemented!("system registers on the host")
    }
}

/// Who an SGI goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTarget {
    /// The PEs with these Aff0 values in the cluster `Aff3.Aff2.Aff1` of `mpidr`:
    /// `list` bit n = Aff0 `16 * (Aff0(mpidr) / 16) + n` (RS from `mpidr`).
    List {
        /// Any MPIDR of the cluster (and 16-range) addressed.
        mpidr: u64,
        /// TargetList.
        list: u16,
    },
    /// Every PE but the sender (IRM = 1).
    AllButSelf,
}

impl SgiTarget {
    /// The one PE with this MPIDR.
    pub fn one(mpidr: u64) -> Self {
        SgiTarget::List {
            mpidr,
            list: 1 << (mpidr & 0xf),
        }
    }
}

/// The ICC_SGI1R_EL1 value that sends SGI `intid` (0..=15) to `target`:
/// TargetList 15:0, Aff1 23:16, INTID 27:24, Aff2 39:32, IRM 40, RS 47:44, Aff3 55:48.
pub fn sgi1r(intid: u32, target: SgiTarget) -> u64 {
    let id = ((intid & 0xf) as u64) << 24;
    match target {
        SgiTarget::AllButSelf => id | 1 << 40,
        SgiTarget::List { mpidr, list } => {
            let aff0 = mpidr & 0xff;
            let aff1 = (mpidr >> 8) & 0xff;
            let aff2 = (mpidr >> 16) & 0xff;
            let aff3 = (mpidr >> 32) & 0xff;
            id | list as u64 | aff1 << 16 | aff2 << 32 | (aff0 >> 4) << 44 | aff3 << 48
        }
    }
}

/// Sends SGI `intid` to `target`.
pub fn send_sgi(intid: u32, target: SgiTarget) {
    write_sgi1r(sgi1r(intid, target));
}

// ---------------------------------------------------------------------------------
// Discovery and initialisation.

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The DTB's `arm,gic-v3` node has no usable `reg` (GICD and GICR).
    BadReg,
    /// GICD_PIDR2.ArchRev is not 3 or 4 (value read).
    NotGicV3(u32),
    /// GICD_CTLR did not take ARE | EnableGrp1 (value read back).
    DistNotEnabled(u32),
    /// GICD_CTLR.RWP stayed set.
    RwpTimeout,
    /// No redistributor frame has this vCPU's affinity (affinity, frames walked).
    NoRedistributor(u32, usize),
    /// GICR_WAKER.ChildrenAsleep stayed set (value read).
    WakerTimeout(u32),
    /// ICC_SRE_EL1.SRE reads 0: no system-register interface (value read).
    NoSre(u64),
    /// ICC_PMR_EL1 did not take 0xff (value read back).
    Pmr(u64),
    /// ICC_IGRPEN1_EL1 did not take 1 (value read back).
    Igrpen1(u64),
    /// [`init`] was not called.
    NotInitialised,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::BadReg => write!(f, "the DTB's arm,gic-v3 node has no GICD and GICR reg"),
            Error::NotGicV3(p) => write!(f, "GICD_PIDR2 = {p:#x}: ArchRev is not 3 or 4"),
            Error::DistNotEnabled(c) => {
                write!(
                    f,
                    "GICD_CTLR = {c:#x} after writing ARE | EnableGrp1 (0x12)"
                )
            }
            Error::RwpTimeout => write!(f, "GICD_CTLR.RWP stayed set for 100 ms"),
            Error::NoRedistributor(a, n) => write!(
                f,
                "no redistributor has affinity {a:#x} (walked {n} frames, GICR_TYPER 63:32)"
            ),
            Error::WakerTimeout(w) => {
                write!(
                    f,
                    "GICR_WAKER = {w:#x}: ChildrenAsleep stayed set for 100 ms"
                )
            }
            Error::NoSre(s) => write!(f, "ICC_SRE_EL1 = {s:#x}: SRE does not stick"),
            Error::Pmr(p) => write!(f, "ICC_PMR_EL1 = {p:#x} after writing 0xff"),
            Error::Igrpen1(v) => write!(f, "ICC_IGRPEN1_EL1 = {v:#x} after writing 1"),
            Error::NotInitialised => write!(f, "gic::init was not called"),
        }
    }
}

fn read_cells(value: &[u8], cells: usize) -> Option<(u64, &[u8])> {
    if !(1..=2).contains(&cells) || value.len() < 4 * cells {
        return None;
    }
    let mut v = 0u64;
    for i in 0..cells {
        let w = u32::from_be_bytes(value[4 * i..4 * i + 4].try_into().ok()?);
        v = (v << 32) | w as u64;
    }
    Some((v, &value[4 * cells..]))
}

/// The first two (address, size) pairs of a `reg` value: (GICD, GICR region).
pub fn parse_reg(reg: &[u8], ac: usize, sc: usize) -> Option<[(u64, u64); 2]> {
    let (d, r) = read_cells(reg, ac)?;
    let (ds, r) = read_cells(r, sc)?;
    let (rd, r) = read_cells(r, ac)?;
    let (rs, _) = read_cells(r, sc)?;
    Some([(d, ds), (rd, rs)])
}

/// Finds the GIC in the DTB (QEMU virt's addresses if it names none) and remembers
/// it. Returns (GICD, GICR region base, GICR region size).
pub fn init(boot: &Boot) -> Result<(usize, usize, usize), Error> {
    let fdt = boot.fdt();
    let (gicd, gicr, size) = match fdt.find_compatible(&["arm,gic-v3"]) {
        Some(node) => {
            let root = fdt.find_node("/");
            let cells = |name: &str, default: usize| {
                root.as_ref()
                    .and_then(|r| r.property(name))
                    .and_then(|p| p.as_usize())
                    .unwrap_or(default)
            };
            let reg = node.property("reg").ok_or(Error::BadReg)?;
            let [(d, _), (r, rs)] = parse_reg(
                reg.value,
                cells("#address-cells", 2),
                cells("#size-cells", 1),
            )
            .ok_or(Error::BadReg)?;
            (d as usize, r as usize, rs as usize)
        }
        None => (VIRT_GICD, VIRT_GICR, 0xf6_0000),
    };
    if gicd == 0 || gicr == 0 || gicd >= 1 << 32 || gicr >= 1 << 32 {
        return Err(Error::BadReg);
    }
    GICD_BASE.store(gicd, Ordering::Release);
    GICR_BASE.store(gicr, Ordering::Release);
    GICR_SIZE.store(size.max(gicr::STRIDE), Ordering::Release);
    Ok((gicd, gicr, size))
}

/// The distributor's base ([`init`] must have run).
pub fn gicd_base() -> usize {
    GICD_BASE.load(Ordering::Acquire)
}

/// The redistributor region's base.
pub fn gicr_base() -> usize {
    GICR_BASE.load(Ordering::Acquire)
}

fn wait_rwp() -> Result<(), Error> {
    let d = crate::time::Deadline::after_ms(100);
    while read32(gicd_base() + gicd::CTLR) & gicd::CTLR_RWP != 0 {
        if d.passed() {
            return Err(Error::RwpTimeout);
        }
    }
    Ok(())
}

/// Distributor set-up, once per partition: checks GICD_PIDR2 says GICv3/v4, then
/// GICD_CTLR = ARE, then ARE | EnableGrp1 (waiting for RWP after each) and checks both
/// bits read back set.
pub fn dist_init() -> Result<(), Error> {
    let d = gicd_base();
    if d == 0 {
        return Err(Error::NotInitialised);
    }
    let pidr2 = read32(d + gicd::PIDR2);
    let rev = (pidr2 >> 4) & 0xf;
    if rev != 3 && rev != 4 {
        return Err(Error::NotGicV3(pidr2));
    }
    write32(d + gicd::CTLR, gicd::CTLR_ARE);
    wait_rwp()?;
    write32(d + gicd::CTLR, gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1);
    wait_rwp()?;
    let ctlr = read32(d + gicd::CTLR);
    let want = gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1;
    if ctlr & want != want {
        return Err(Error::DistNotEnabled(ctlr));
    }
    Ok(())
}

/// Aff3.Aff2.Aff1.Aff0 of an MPIDR packed as in GICR_TYPER[63:32].
pub fn affinity32(mpidr: u64) -> u32 {
    ((mpidr & 0xff_ffff) | ((mpidr >> 8) & 0xff00_0000)) as u32
}

/// Walks the redistributor frames from the region base for the one whose
/// GICR_TYPER affinity is `aff` (stops after the frame with Last set, or at the
/// end of the region). Returns (its RD_base or `None`, frames walked).
pub fn find_redistributor(aff: u32) -> (Option<usize>, usize) {
    let base = gicr_base();
    let frames = GICR_SIZE.load(Ordering::Acquire) / gicr::STRIDE;
    for i in 0..frames {
        let frame = base + i * gicr::STRIDE;
        let typer = read64(frame + gicr::TYPER);
        if (typer >> 32) as u32 == aff {
            return (Some(frame), i + 1);
        }
        if typer & gicr::TYPER_LAST != 0 {
            return (None, i + 1);
        }
    }
    (None, frames)
}

/// This vCPU's redistributor (RD_base), once [`cpu_init`] has run on it.
pub fn redist() -> usize {
    redist_of(arch::vcpu_index())
}

/// vCPU `index`'s redistributor (RD_base), once [`cpu_init`] has run on it (0 before).
pub fn redist_of(index: usize) -> usize {
    REDIST.get(index).map_or(0, |r| r.load(Ordering::Acquire))
}

/// Per-vCPU set-up: finds and wakes this vCPU's redistributor, makes SGIs and PPIs
/// Group 1 (all disabled; enable them with [`enable_private`]), then the CPU
/// interface: ICC_SRE_EL1.SRE, EOImode 0, ICC_PMR_EL1 = 0xff, ICC_IGRPEN1_EL1 = 1,
/// each checked. IRQs stay masked (PSTATE.I). Returns the RD_base.
pub fn cpu_init() -> Result<usize, Error> {
    if gicr_base() == 0 {
        return Err(Error::NotInitialised);
    }
    let aff = affinity32(arch::mpidr());
    let (frame, walked) = find_redistributor(aff);
    let rd = frame.ok_or(Error::NoRedistributor(aff, walked))?;
    if let Some(slot) = REDIST.get(arch::vcpu_index()) {
        slot.store(rd, Ordering::Release);
    }

    let waker = read32(rd + gicr::WAKER);
    write32(rd + gicr::WAKER, waker & !gicr::WAKER_PROCESSOR_SLEEP);
    let d = crate::time::Deadline::after_ms(100);
    loop {
        let w = read32(rd + gicr::WAKER);
        if w & gicr::WAKER_CHILDREN_ASLEEP == 0 {
            break;
        }
        if d.passed() {
            return Err(Error::WakerTimeout(w));
        }
    }

    write32(rd + gicr::ICENABLER0, u32::MAX);
    write32(rd + gicr::ICPENDR0, u32::MAX);
    write32(rd + gicr::IGROUPR0, u32::MAX);

    set_icc_sre(icc_sre() | 0b111); // SRE, DFB, DIB
    let sre = icc_sre();
    if sre & 1 == 0 {
        return Err(Error::NoSre(sre));
    }
    set_icc_ctlr(icc_ctlr() & !0b11); // CBPR 0, EOImode 0
    set_icc_pmr(0xff);
    let pmr = icc_pmr();
    // Unimplemented low priority bits read as zero: 0xff reads back as 0xf8 with
    // 5 bits, and so on.
    if pmr & 0xf0 != 0xf0 {
        return Err(Error::Pmr(pmr));
    }
    set_icc_igrpen1(1);
    let g = icc_igrpen1();
    if g & 1 != 1 {
        return Err(Error::Igrpen1(g));
    }
    Ok(rd)
}

// ---------------------------------------------------------------------------------
// SGIs and PPIs: this vCPU's redistributor.

fn rd_checked() -> usize {
    let rd = redist();
    if rd == 0 {
        crate::fail!(
            "gic: vCPU {} has no redistributor (cpu_init not run)",
            arch::vcpu_index()
        );
    }
    rd
}

/// Enables private INTIDs (bit n = INTID n) in this vCPU's GICR_ISENABLER0.
pub fn enable_private(mask: u32) {
    write32(rd_checked() + gicr::ISENABLER0, mask);
}

/// Disables private INTIDs (GICR_ICENABLER0).
pub fn disable_private(mask: u32) {
    write32(rd_checked() + gicr::ICENABLER0, mask);
}

/// GICR_ISENABLER0: which private INTIDs are enabled.
pub fn private_enabled() -> u32 {
    read32(rd_checked() + gicr::ISENABLER0)
}

/// GICR_ISPENDR0: which private INTIDs are pending.
pub fn private_pending() -> u32 {
    read32(rd_checked() + gicr::ISPENDR0)
}

/// GICR_ICPENDR0: clears pending private INTIDs.
pub fn clear_private_pending(mask: u32) {
    write32(rd_checked() + gicr::ICPENDR0, mask);
}

/// GICR_ISACTIVER0: which private INTIDs are active.
pub fn private_active() -> u32 {
    read32(rd_checked() + gicr::ISACTIVER0)
}

/// Sets the priority of private INTID `intid` (0..=31), word read-modify-write.
pub fn set_private_priority(intid: u32, priority: u8) {
    let rd = rd_checked();
    set_priority_at(rd + gicr::IPRIORITYR, intid, priority);
}

/// The priority of private INTID `intid`.
pub fn private_priority(intid: u32) -> u8 {
    priority_at(rd_checked() + gicr::IPRIORITYR, intid)
}

fn set_priority_at(table: usize, intid: u32, priority: u8) {
    let word = table + (intid as usize & !3);
    let shift = 8 * (intid % 4);
    let v = read32(word) & !(0xff << shift) | (priority as u32) << shift;
    write32(word, v);
}

fn priority_at(table: usize, intid: u32) -> u8 {
    (read32(table + (intid as usize & !3)) >> (8 * (intid % 4))) as u8
}

// ---------------------------------------------------------------------------------
// The distributor, per INTID (SPIs: 32 and up).

/// GICD_TYPER.
pub fn dist_typer() -> u32 {
    read32(gicd_base() + gicd::TYPER)
}

/// INTIDs the distributor says it has: 32 * (GICD_TYPER.ITLinesNumber + 1).
pub fn dist_lines() -> u32 {
    32 * ((dist_typer() & 0x1f) + 1)
}

/// Bit `intid` of the bit-per-INTID GICD register at `reg` (e.g. [`gicd::ISENABLER`]).
pub fn dist_bit(reg: usize, intid: u32) -> bool {
    read32(gicd_base() + reg + 4 * (intid as usize / 32)) >> (intid % 32) & 1 == 1
}

/// Writes bit `intid` alone (set/clear registers: the other bits are 0 = no effect).
pub fn dist_write_bit(reg: usize, intid: u32) {
    write32(
        gicd_base() + reg + 4 * (intid as usize / 32),
        1 << (intid % 32),
    );
}

/// GICD_IPRIORITYR byte of `intid`.
pub fn dist_priority(intid: u32) -> u8 {
    priority_at(gicd_base() + gicd::IPRIORITYR, intid)
}

/// Sets GICD_IPRIORITYR byte of `intid` (word read-modify-write).
pub fn set_dist_priority(intid: u32, priority: u8) {
    set_priority_at(gicd_base() + gicd::IPRIORITYR, intid, priority);
}

/// GICD_ICFGR bits of `intid` (0b10 = edge, 0b00 = level).
pub fn dist_config(intid: u32) -> u32 {
    read32(gicd_base() + gicd::ICFGR + 4 * (intid as usize / 16)) >> (2 * (intid % 16)) & 0b11
}

/// Sets `intid` edge-triggered (`edge`) or level-sensitive (word read-modify-write).
pub fn set_dist_config(intid: u32, edge: bool) {
    let word = gicd_base() + gicd::ICFGR + 4 * (intid as usize / 16);
    let bit = 1 << (2 * (intid % 16) + 1);
    let v = read32(word);
    write32(word, if edge { v | bit } else { v & !bit });
}

/// GICD_IROUTER of SPI `intid`.
pub fn dist_router(intid: u32) -> u64 {
    read64(gicd_base() + gicd::IROUTER + 8 * intid as usize)
}

/// Writes GICD_IROUTER of SPI `intid`.
pub fn set_dist_router(intid: u32, v: u64) {
    write64(gicd_base() + gicd::IROUTER + 8 * intid as usize, v);
}

/// The GICD_IROUTER value that routes to the PE with this MPIDR (IRM = 0).
pub fn router_for(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

// ---------------------------------------------------------------------------------
// IRQ dispatch.

/// Installs `handler` as the IRQ handler of every vCPU of the guest: each IRQ
/// exception acks (ICC_IAR1_EL1), calls `handler(intid)` and EOIs (ICC_EOIR1_EL1),
/// until the CPU interface has nothing more. `handler` runs with IRQs masked.
pub fn set_handler(handler: fn(u32)) {
    HANDLER.store(handler as usize, Ordering::Release);
    crate::irq::set_handler(dispatch);
}

/// IRQ exceptions on vCPU `index` that found nothing to acknowledge.
pub fn spurious_count(index: usize) -> u32 {
    SPURIOUS_IRQS
        .get(index)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

fn dispatch() {
    let h = HANDLER.load(Ordering::Acquire);
    // SAFETY: only `set_handler` stores into HANDLER, and only `fn(u32)` pointers.
    let handler: fn(u32) = unsafe { core::mem::transmute::<usize, fn(u32)>(h) };
    let mut first = true;
    loop {
        let intid = ack();
        if intid >= SPECIAL {
            if first && let Some(c) = SPURIOUS_IRQS.get(arch::vcpu_index()) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        first = false;
        handler(intid);
        eoi(intid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi1r_encoding() {
        // SGI 1 to vCPU 1 (MPIDR Aff0 = 1): TargetList bit 1.
        assert_eq!(sgi1r(1, SgiTarget::one(1)), 0x0100_0002);
        // SGI 15 to Aff3.Aff2.Aff1.Aff0 = 5.4.3.0x12: RS 1, TargetList bit 2.
        let mpidr = 5 << 32 | 4 << 16 | 3 << 8 | 0x12;
        assert_eq!(
            sgi1r(15, SgiTarget::one(mpidr)),
            5 << 48 | 1 << 44 | 4 << 32 | 0xf << 24 | 3 << 16 | 1 << 2
        );
        assert_eq!(sgi1r(3, SgiTarget::AllButSelf), 1 << 40 | 3 << 24);
        assert_eq!(
            sgi1r(
                7,
                SgiTarget::List {
                    mpidr: 0,
                    list: 0b11
                }
            ),
            0x0700_0003
        );
    }

    #[test]
    fn affinity_packing() {
        assert_eq!(affinity32(0x8000_0001), 1);
        assert_eq!(affinity32(0x5_0004_0302), 0x0504_0302);
        assert_eq!(router_for(0x8000_0000 | 0x5_0004_0302), 0x5_0004_0302);
    }

    #[test]
    fn reg_parsing() {
        let mut reg = [0u8; 32];
        let words: [u32; 8] = [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0xf6_0000];
        for (i, w) in words.iter().enumerate() {
            reg[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        assert_eq!(
            parse_reg(&reg, 2, 2),
            Some([(0x0800_0000, 0x1_0000), (0x080a_0000, 0xf6_0000)])
        );
        assert_eq!(parse_reg(&reg[..24], 2, 2), None);
    }
}
