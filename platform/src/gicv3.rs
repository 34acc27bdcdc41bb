//! The physical GICv3: distributor, redistributors and the CPU interface.
//!
//! Ferry owns the physical GIC. At boot it puts every interrupt in non-secure
//! Group 1, disabled, at a middle priority, enables affinity routing, wakes each
//! CPU's redistributor and enables the CPU interface's system registers. Routing
//! and enabling of individual interrupts is the EL2 core's business later.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use crate::Region;

use self::offsets::{GICR_SGI_BASE, GICR_SIZE};

register_bitfields! {u32,
    /// Distributor control (non-secure view; same bits with a single security state).
    GICD_CTLR [
        /// Enable non-secure Group 1 (EnableGrp1A, or EnableGrp1 with DS=1).
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) [],
        /// Affinity routing enabled (ARE_NS, or ARE with DS=1).
        ARE OFFSET(4) NUMBITS(1) [],
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) []
    ],
    /// Distributor type.
    GICD_TYPER [
        /// Supported SPIs: 32 * (N + 1) INTIDs in all.
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) []
    ],
    /// Redistributor wake control.
    GICR_WAKER [
        /// The CPU interface is asleep.
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
        /// The redistributor's children are asleep.
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) []
    ]
}

register_structs! {
    /// Distributor registers (GICD), 64 KiB.
    pub GicdRegisters {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => iidr: ReadOnly<u32>),
        (0x000c => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => ispendr: [ReadWrite<u32>; 32]),
        (0x0280 => icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => isactiver: [ReadWrite<u32>; 32]),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x07fc => _reserved1),
        (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => _reserved2),
        // GICD_IROUTER<n> for the SPIs, n = 32..1020.
        (0x6100 => irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => _reserved3),
        (0xffe8 => pidr2: ReadOnly<u32>),
        (0xffec => _reserved4),
        (0x10000 => @END),
    }
}

register_structs! {
    /// Redistributor control frame (RD_base), 64 KiB.
    pub GicrRegisters {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _reserved0),
        (0x0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => _reserved1),
        (0xffe8 => pidr2: ReadOnly<u32>),
        (0xffec => _reserved2),
        (0x10000 => @END),
    }
}

register_structs! {
    /// Redistributor SGI/PPI frame (SGI_base), the 64 KiB after RD_base.
    pub GicrSgiRegisters {
        (0x0000 => _reserved0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0200 => ispendr0: ReadWrite<u32>),
        (0x0204 => _reserved4),
        (0x0280 => icpendr0: ReadWrite<u32>),
        (0x0284 => _reserved5),
        (0x0300 => isactiver0: ReadWrite<u32>),
        (0x0304 => _reserved6),
        (0x0380 => icactiver0: ReadWrite<u32>),
        (0x0384 => _reserved7),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x0420 => _reserved8),
        (0x0c00 => icfgr0: ReadWrite<u32>),
        (0x0c04 => icfgr1: ReadWrite<u32>),
        (0x0c08 => _reserved9),
        (0x10000 => @END),
    }
}

/// Byte offsets of the GIC registers in their 64 KiB frames, taken from the
/// register structs above: the one definition of the layout, shared by this driver
/// and the GIC that Ferry emulates for partitions (`ferry-hypervisor`'s vGIC).
///
/// `GICD_*` count from the distributor's base, `GICR_CTLR` to `GICR_PIDR2` from
/// RD_base, the other `GICR_*` (the SGI/PPI registers) from SGI_base, which lies
/// [`GICR_SGI_BASE`] bytes after RD_base. An `*_END` constant is the first byte
/// after a register array. Each value is checked against the architecture (Arm
/// IHI 0069) at compile time.
pub mod offsets {
    use core::mem::{offset_of, size_of};

    use super::{GicdRegisters, GicrRegisters, GicrSgiRegisters};

    /// Bytes of a register struct's field (the whole of an array).
    const fn field_bytes<S, F>(_field: fn(&S) -> &F) -> u64 {
        size_of::<F>() as u64
    }

    /// The offset of a register struct's field, as `u64`.
    macro_rules! at {
        ($regs:ty, $field:ident) => {
            offset_of!($regs, $field) as u64
        };
    }

    /// The first byte after a register struct's field.
    macro_rules! end {
        ($regs:ty, $field:ident) => {
            offset_of!($regs, $field) as u64 + field_bytes(|r: &$regs| &r.$field)
        };
    }

    /// Size of the distributor frame.
    pub const GICD_SIZE: u64 = size_of::<GicdRegisters>() as u64;
    /// Offset of SGI_base from RD_base (the size of the RD_base frame).
    pub const GICR_SGI_BASE: u64 = size_of::<GicrRegisters>() as u64;
    /// Size of a redistributor without virtual LPIs: RD_base and SGI_base.
    pub const GICR_SIZE: u64 = GICR_SGI_BASE + size_of::<GicrSgiRegisters>() as u64;

    /// GICD_CTLR.
    pub const GICD_CTLR: u64 = at!(GicdRegisters, ctlr);
    /// GICD_TYPER.
    pub const GICD_TYPER: u64 = at!(GicdRegisters, typer);
    /// GICD_IIDR.
    pub const GICD_IIDR: u64 = at!(GicdRegisters, iidr);
    /// `GICD_IGROUPR<n>`, one bit per INTID.
    pub const GICD_IGROUPR: u64 = at!(GicdRegisters, igroupr);
    /// End of `GICD_IGROUPR<n>`.
    pub const GICD_IGROUPR_END: u64 = end!(GicdRegisters, igroupr);
    /// `GICD_ISENABLER<n>`, one bit per INTID.
    pub const GICD_ISENABLER: u64 = at!(GicdRegisters, isenabler);
    /// End of `GICD_ISENABLER<n>`.
    pub const GICD_ISENABLER_END: u64 = end!(GicdRegisters, isenabler);
    /// `GICD_ICENABLER<n>`, one bit per INTID.
    pub const GICD_ICENABLER: u64 = at!(GicdRegisters, icenabler);
    /// End of `GICD_ICENABLER<n>`.
    pub const GICD_ICENABLER_END: u64 = end!(GicdRegisters, icenabler);
    /// `GICD_ISPENDR<n>`, one bit per INTID.
    pub const GICD_ISPENDR: u64 = at!(GicdRegisters, ispendr);
    /// End of `GICD_ISPENDR<n>`.
    pub const GICD_ISPENDR_END: u64 = end!(GicdRegisters, ispendr);
    /// `GICD_ICPENDR<n>`, one bit per INTID.
    pub const GICD_ICPENDR: u64 = at!(GicdRegisters, icpendr);
    /// End of `GICD_ICPENDR<n>`.
    pub const GICD_ICPENDR_END: u64 = end!(GicdRegisters, icpendr);
    /// `GICD_ISACTIVER<n>`, one bit per INTID.
    pub const GICD_ISACTIVER: u64 = at!(GicdRegisters, isactiver);
    /// End of `GICD_ISACTIVER<n>`.
    pub const GICD_ISACTIVER_END: u64 = end!(GicdRegisters, isactiver);
    /// `GICD_ICACTIVER<n>`, one bit per INTID.
    pub const GICD_ICACTIVER: u64 = at!(GicdRegisters, icactiver);
    /// End of `GICD_ICACTIVER<n>`.
    pub const GICD_ICACTIVER_END: u64 = end!(GicdRegisters, icactiver);
    /// `GICD_IPRIORITYR<n>`, one byte per INTID.
    pub const GICD_IPRIORITYR: u64 = at!(GicdRegisters, ipriorityr);
    /// End of `GICD_IPRIORITYR<n>` (INTIDs up to 1019).
    pub const GICD_IPRIORITYR_END: u64 = end!(GicdRegisters, ipriorityr);
    /// `GICD_ICFGR<n>`, two bits per INTID.
    pub const GICD_ICFGR: u64 = at!(GicdRegisters, icfgr);
    /// End of `GICD_ICFGR<n>`.
    pub const GICD_ICFGR_END: u64 = end!(GicdRegisters, icfgr);
    /// `GICD_IROUTER<32>`, the first SPI's route; one 64-bit register per SPI.
    pub const GICD_IROUTER: u64 = at!(GicdRegisters, irouter);
    /// End of `GICD_IROUTER<n>` (after `GICD_IROUTER<1019>`).
    pub const GICD_IROUTER_END: u64 = end!(GicdRegisters, irouter);
    /// GICD_PIDR2.
    pub const GICD_PIDR2: u64 = at!(GicdRegisters, pidr2);

    /// GICR_CTLR (RD_base).
    pub const GICR_CTLR: u64 = at!(GicrRegisters, ctlr);
    /// GICR_IIDR (RD_base).
    pub const GICR_IIDR: u64 = at!(GicrRegisters, iidr);
    /// GICR_TYPER (RD_base), 64 bits.
    pub const GICR_TYPER: u64 = at!(GicrRegisters, typer);
    /// GICR_WAKER (RD_base).
    pub const GICR_WAKER: u64 = at!(GicrRegisters, waker);
    /// GICR_PIDR2 (RD_base).
    pub const GICR_PIDR2: u64 = at!(GicrRegisters, pidr2);

    /// GICR_IGROUPR0 (SGI_base).
    pub const GICR_IGROUPR0: u64 = at!(GicrSgiRegisters, igroupr0);
    /// GICR_ISENABLER0 (SGI_base).
    pub const GICR_ISENABLER0: u64 = at!(GicrSgiRegisters, isenabler0);
    /// GICR_ICENABLER0 (SGI_base).
    pub const GICR_ICENABLER0: u64 = at!(GicrSgiRegisters, icenabler0);
    /// GICR_ISPENDR0 (SGI_base).
    pub const GICR_ISPENDR0: u64 = at!(GicrSgiRegisters, ispendr0);
    /// GICR_ICPENDR0 (SGI_base).
    pub const GICR_ICPENDR0: u64 = at!(GicrSgiRegisters, icpendr0);
    /// GICR_ISACTIVER0 (SGI_base).
    pub const GICR_ISACTIVER0: u64 = at!(GicrSgiRegisters, isactiver0);
    /// GICR_ICACTIVER0 (SGI_base).
    pub const GICR_ICACTIVER0: u64 = at!(GicrSgiRegisters, icactiver0);
    /// `GICR_IPRIORITYR<n>` (SGI_base), one byte per SGI and PPI.
    pub const GICR_IPRIORITYR: u64 = at!(GicrSgiRegisters, ipriorityr);
    /// End of `GICR_IPRIORITYR<n>` (after INTID 31).
    pub const GICR_IPRIORITYR_END: u64 = end!(GicrSgiRegisters, ipriorityr);
    /// GICR_ICFGR0 (SGI_base): the SGIs' configuration.
    pub const GICR_ICFGR0: u64 = at!(GicrSgiRegisters, icfgr0);
    /// GICR_ICFGR1 (SGI_base): the PPIs' configuration.
    pub const GICR_ICFGR1: u64 = at!(GicrSgiRegisters, icfgr1);

    // The architected layout (Arm IHI 0069, 12.8 to 12.11).
    const _: () = {
        assert!(GICD_SIZE == 0x1_0000);
        assert!(GICR_SGI_BASE == 0x1_0000);
        assert!(GICR_SIZE == 0x2_0000);
        assert!(GICD_CTLR == 0x0000);
        assert!(GICD_TYPER == 0x0004);
        assert!(GICD_IIDR == 0x0008);
        assert!(GICD_IGROUPR == 0x0080 && GICD_IGROUPR_END == 0x0100);
        assert!(GICD_ISENABLER == 0x0100 && GICD_ISENABLER_END == 0x0180);
        assert!(GICD_ICENABLER == 0x0180 && GICD_ICENABLER_END == 0x0200);
        assert!(GICD_ISPENDR == 0x0200 && GICD_ISPENDR_END == 0x0280);
        assert!(GICD_ICPENDR == 0x0280 && GICD_ICPENDR_END == 0x0300);
        assert!(GICD_ISACTIVER == 0x0300 && GICD_ISACTIVER_END == 0x0380);
        assert!(GICD_ICACTIVER == 0x0380 && GICD_ICACTIVER_END == 0x0400);
        assert!(GICD_IPRIORITYR == 0x0400 && GICD_IPRIORITYR_END == 0x07fc);
        assert!(GICD_ICFGR == 0x0c00 && GICD_ICFGR_END == 0x0d00);
        assert!(GICD_IROUTER == 0x6000 + 8 * 32 && GICD_IROUTER_END == 0x6000 + 8 * 1020);
        assert!(GICD_PIDR2 == 0xffe8);
        assert!(GICR_CTLR == 0x0000);
        assert!(GICR_IIDR == 0x0004);
        assert!(GICR_TYPER == 0x0008);
        assert!(GICR_WAKER == 0x0014);
        assert!(GICR_PIDR2 == 0xffe8);
        assert!(GICR_IGROUPR0 == 0x0080);
        assert!(GICR_ISENABLER0 == 0x0100);
        assert!(GICR_ICENABLER0 == 0x0180);
        assert!(GICR_ISPENDR0 == 0x0200);
        assert!(GICR_ICPENDR0 == 0x0280);
        assert!(GICR_ISACTIVER0 == 0x0300);
        assert!(GICR_ICACTIVER0 == 0x0380);
        assert!(GICR_IPRIORITYR == 0x0400 && GICR_IPRIORITYR_END == 0x0420);
        assert!(GICR_ICFGR0 == 0x0c00);
        assert!(GICR_ICFGR1 == 0x0c04);
    };
}

/// The priority Ferry gives every interrupt at boot (the middle of the range).
pub const DEFAULT_PRIORITY: u8 = 0xa0;

/// GICR_TYPER.Last: this is the last redistributor of its region.
const TYPER_LAST: u64 = 1 << 4;
/// GICR_TYPER.VLPIS: GICv4 virtual LPIs, so each redistributor has four frames.
const TYPER_VLPIS: u64 = 1 << 1;

/// Why the GIC could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// GICD_PIDR2.ArchRev is not 3 or 4: the distributor is not a GICv3/v4.
    NotGicv3 {
        /// The revision read.
        arch_rev: u32,
    },
    /// No redistributor in the device tree's regions reports this CPU's affinity.
    NoRedistributor {
        /// The CPU's MPIDR affinity.
        mpidr: u64,
    },
    /// ICC_SRE_EL2.SRE did not stick: the system-register interface is unavailable.
    NoSystemRegisters,
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NotGicv3 { arch_rev } => write!(
                f,
                "the distributor reports architecture revision {arch_rev} (GICD_PIDR2), not a GICv3"
            ),
            GicError::NoRedistributor { mpidr } => write!(
                f,
                "no redistributor for MPIDR {mpidr:#x} in the device tree's GICR regions"
            ),
            GicError::NoSystemRegisters => {
                f.write_str("ICC_SRE_EL2.SRE reads 0: the GIC system-register interface is off")
            }
        }
    }
}

/// The affinity value of an MPIDR in the format of `GICR_TYPER[63:32]`
/// (Aff3.Aff2.Aff1.Aff0).
pub fn affinity_of(mpidr: u64) -> u32 {
    (((mpidr >> 32) & 0xff) << 24 | (mpidr & 0x00ff_ffff)) as u32
}

/// Bytes between redistributors, from GICR_TYPER: two 64 KiB frames, four with
/// GICv4 virtual LPIs.
pub fn redistributor_stride(typer: u64) -> u64 {
    if typer & TYPER_VLPIS != 0 {
        2 * GICR_SIZE
    } else {
        GICR_SIZE
    }
}

/// Number of INTIDs the distributor implements (SGIs and PPIs included, at most 1020).
pub fn interrupt_lines(it_lines_number: u32) -> u32 {
    (32 * (it_lines_number + 1)).min(1020)
}

/// The distributor and the redistributor regions, mapped as device memory.
pub struct Gic {
    gicd: &'static GicdRegisters,
    gicr: [Region; 4],
    gicr_count: usize,
}

// SAFETY: the distributor is programmed only by the primary CPU during boot;
// each CPU touches only its own redistributor frames and its own CPU interface.
unsafe impl Sync for Gic {}
// SAFETY: as above; the driver holds only addresses of MMIO that lives forever.
unsafe impl Send for Gic {}

impl Gic {
    /// Takes the GIC at `gicd` with redistributors in `gicr`.
    ///
    /// # Safety
    /// The regions must be the GIC's MMIO, mapped as device memory for as long as
    /// Ferry runs, and only this driver may program them.
    pub unsafe fn new(gicd: Region, gicr: &[Region]) -> Gic {
        let mut regions = [Region::default(); 4];
        let count = gicr.len().min(regions.len());
        regions[..count].copy_from_slice(&gicr[..count]);
        Gic {
            // SAFETY: the caller guarantees `gicd` is the mapped distributor.
            gicd: unsafe { &*(gicd.base as usize as *const GicdRegisters) },
            gicr: regions,
            gicr_count: count,
        }
    }

    /// Number of INTIDs the distributor implements.
    pub fn lines(&self) -> u32 {
        interrupt_lines(self.gicd.typer.read(GICD_TYPER::IT_LINES_NUMBER))
    }

    /// Brings the distributor to a known state (once, on the primary CPU): every
    /// SPI disabled, not pending, not active, Group 1, default priority, level-
    /// triggered; then affinity routing and Group 1 on.
    pub fn init_distributor(&self) -> Result<(), GicError> {
        let arch_rev = (self.gicd.pidr2.get() >> 4) & 0xf;
        if arch_rev != 3 && arch_rev != 4 {
            return Err(GicError::NotGicv3 { arch_rev });
        }
        self.gicd.ctlr.set(0);
        self.wait_for_distributor();
        let words = (self.lines() / 32) as usize;
        let priority = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for i in 1..words {
            self.gicd.icenabler[i].set(u32::MAX);
            self.gicd.icpendr[i].set(u32::MAX);
            self.gicd.icactiver[i].set(u32::MAX);
            self.gicd.igroupr[i].set(u32::MAX);
        }
        for i in 8..(self.lines() / 4) as usize {
            self.gicd.ipriorityr[i].set(priority);
        }
        for i in 2..(self.lines() / 16) as usize {
            self.gicd.icfgr[i].set(0);
        }
        self.gicd
            .ctlr
            .write(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET);
        self.wait_for_distributor();
        Ok(())
    }

    fn wait_for_distributor(&self) {
        while self.gicd.ctlr.is_set(GICD_CTLR::RWP) {}
    }

    /// Finds the redistributor of the CPU with `mpidr`: its RD_base address.
    pub fn find_redistributor(&self, mpidr: u64) -> Option<u64> {
        let wanted = affinity_of(mpidr);
        for region in &self.gicr[..self.gicr_count] {
            let mut frame = region.base;
            while frame + GICR_SIZE <= region.end() {
                // SAFETY: `frame` lies inside a mapped GICR region (checked above).
                let regs = unsafe { &*(frame as usize as *const GicrRegisters) };
                let typer = regs.typer.get();
                if (typer >> 32) as u32 == wanted {
                    return Some(frame);
                }
                if typer & TYPER_LAST != 0 {
                    break;
                }
                frame += redistributor_stride(typer);
            }
        }
        None
    }

    /// Brings up the calling CPU's redistributor and CPU interface: SGIs and PPIs
    /// disabled in Group 1 at the default priority, the system-register interface
    /// on, all priorities unmasked, Group 1 enabled. Returns RD_base.
    pub fn init_cpu(&self, mpidr: u64) -> Result<u64, GicError> {
        let rd_base = self
            .find_redistributor(mpidr)
            .ok_or(GicError::NoRedistributor { mpidr })?;
        // SAFETY: `rd_base` was found inside a mapped GICR region; SGI_base follows it.
        let (rd, sgi) = unsafe {
            (
                &*(rd_base as usize as *const GicrRegisters),
                &*((rd_base + GICR_SGI_BASE) as usize as *const GicrSgiRegisters),
            )
        };
        rd.waker.write(GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
        while rd.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {}
        sgi.icenabler0.set(u32::MAX);
        sgi.icpendr0.set(u32::MAX);
        sgi.icactiver0.set(u32::MAX);
        sgi.igroupr0.set(u32::MAX);
        let priority = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for reg in &sgi.ipriorityr {
            reg.set(priority);
        }
        cpu_interface::enable()?;
        Ok(rd_base)
    }
}

impl Gic {
    /// Routes SPI `intid` to the CPU with `mpidr` at the default priority and
    /// enables it (a passthrough device's interrupt, forwarded to its owner).
    pub fn route_spi(&self, intid: u32, mpidr: u64) {
        if !(32..self.lines()).contains(&intid) {
            return;
        }
        let i = intid as usize;
        self.gicd.irouter[i - 32].set(mpidr & 0xff_00ff_ffff);
        let shift = 8 * (i % 4);
        let reg = &self.gicd.ipriorityr[i / 4];
        reg.set(reg.get() & !(0xff << shift) | u32::from(DEFAULT_PRIORITY) << shift);
        self.gicd.isenabler[i / 32].set(1 << (i % 32));
    }

    /// Enables the SGI or PPI `intid` (below 32) in the redistributor at `rd_base`
    /// (as [`Gic::init_cpu`] returned it for the calling CPU).
    pub fn enable_private(&self, rd_base: u64, intid: u32) {
        if intid < 32 {
            // SAFETY: `rd_base` came from `find_redistributor`, inside a mapped
            // GICR region; SGI_base follows RD_base.
            let sgi = unsafe { &*((rd_base + GICR_SGI_BASE) as usize as *const GicrSgiRegisters) };
            sgi.isenabler0.set(1 << intid);
        }
    }
}

/// ICC_SGI1R_EL1 value that sends SGI `intid` (0..16) to the CPU with `mpidr`.
pub fn sgi1r(intid: u32, mpidr: u64) -> u64 {
    let aff0 = mpidr & 0xff;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let range = aff0 / 16;
    let target = 1u64 << (aff0 % 16);
    aff3 << 48 | range << 44 | aff2 << 32 | ((intid & 0xf) as u64) << 24 | aff1 << 16 | target
}

/// The INTIDs 1020..=1023 are special (spurious and friends): nothing to handle.
pub fn is_spurious(intid: u32) -> bool {
    (1020..=1023).contains(&intid)
}

#[cfg(target_os = "none")]
pub use cpu_interface::{acknowledge, deactivate, end_of_interrupt, send_sgi};

#[cfg(target_os = "none")]
mod cpu_interface {
    /// Acknowledges the highest-priority pending Group 1 interrupt (ICC_IAR1_EL1);
    /// returns its INTID (1023 if none).
    pub fn acknowledge() -> u32 {
        let iar: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt of this CPU only.
        unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nostack)) };
        (iar & 0xff_ffff) as u32
    }

    /// Deactivates interrupt `intid` (ICC_DIR_EL1): with EOImode = 1, the second
    /// half of ending an interrupt Ferry handled itself.
    pub fn deactivate(intid: u32) {
        // SAFETY: writing ICC_DIR_EL1 affects this CPU's interrupt state only.
        unsafe {
            core::arch::asm!("msr icc_dir_el1, {}", "isb", in(reg) intid as u64, options(nostack))
        };
    }

    /// Drops the running priority of interrupt `intid` (ICC_EOIR1_EL1). With
    /// EOImode = 1 it stays active until [`deactivate`], or until the guest's EOI of
    /// a hardware-linked virtual interrupt.
    pub fn end_of_interrupt(intid: u32) {
        // SAFETY: writing ICC_EOIR1_EL1 affects this CPU's interrupt state only.
        unsafe {
            core::arch::asm!("msr icc_eoir1_el1, {}", in(reg) intid as u64, options(nostack))
        };
    }

    /// Sends SGI `intid` to the CPU with `mpidr` (ICC_SGI1R_EL1).
    pub fn send_sgi(intid: u32, mpidr: u64) {
        // SAFETY: generating an SGI has no memory effects; the barriers order it
        // after the caller's earlier stores.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "msr icc_sgi1r_el1, {}",
                "isb",
                in(reg) super::sgi1r(intid, mpidr),
                options(nostack),
            )
        };
    }

    use super::GicError;
    use aarch64_cpu::registers::ICC_SRE_EL2;
    use tock_registers::interfaces::{Readable, Writeable};

    /// Enables the EL2 system-register interface (and lets EL1 use its own), then
    /// unmasks all priorities, splits EOI from deactivation and enables Group 1.
    pub fn enable() -> Result<(), GicError> {
        ICC_SRE_EL2.write(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        if !ICC_SRE_EL2.is_set(ICC_SRE_EL2::SRE) {
            return Err(GicError::NoSystemRegisters);
        }
        // SAFETY: ICC_PMR_EL1, ICC_BPR1_EL1, ICC_CTLR_EL1 and ICC_IGRPEN1_EL1 (not
        // modelled by aarch64-cpu 11 as writable) only change this CPU's interrupt
        // masking and EOI mode.
        unsafe {
            core::arch::asm!(
                "msr icc_pmr_el1, {pmr}",
                "msr icc_bpr1_el1, xzr",
                // EOImode = 1: priority drop and deactivation are separate, so a
                // guest's EOI can deactivate a forwarded physical interrupt.
                "msr icc_ctlr_el1, {eoimode}",
                "msr icc_igrpen1_el1, {one}",
                "isb",
                pmr = in(reg) 0xffu64,
                eoimode = in(reg) 0b10u64,
                one = in(reg) 1u64,
                options(nostack),
            );
        }
        Ok(())
    }
}

#[cfg(not(target_os = "none"))]
mod cpu_interface {
    use super::GicError;

    /// Host builds have no CPU interface.
    pub fn enable() -> Result<(), GicError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_matches_gicr_typer_layout() {
        assert_eq!(affinity_of(0x8000_0003), 3);
        assert_eq!(affinity_of(0x0000_0102), 0x0102);
        assert_eq!(affinity_of(0x0000_00ff_0001_0203), 0xff01_0203);
        // MT, U and other flag bits between Aff2 and Aff3 are ignored.
        assert_eq!(affinity_of(0x0000_0012_c100_0001), 0x1200_0001);
    }

    #[test]
    fn sgi_targets() {
        assert_eq!(sgi1r(0, 2), 1 << 2);
        assert_eq!(sgi1r(3, 0x0102), 3 << 24 | 1 << 16 | 1 << 2);
        assert_eq!(
            sgi1r(1, 17),
            1 << 44 | 1 << 24 | 1 << 1,
            "Aff0 17: range 1, bit 1"
        );
        assert_eq!(sgi1r(0, 0x01_0003_0000), 1 << 48 | 3 << 32 | 1);
        assert!(is_spurious(1023) && !is_spurious(26));
    }

    #[test]
    fn strides_and_lines() {
        assert_eq!(redistributor_stride(0), 0x2_0000);
        assert_eq!(redistributor_stride(TYPER_VLPIS), 0x4_0000);
        assert_eq!(interrupt_lines(0), 32);
        assert_eq!(interrupt_lines(7), 256);
        assert_eq!(interrupt_lines(31), 1020);
    }
}
