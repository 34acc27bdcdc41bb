//! Ferry's boards and the hardware they share.
//!
//! `platform` knows no partitions. It gives the EL2 core:
//! - the board chosen at build time (`board`): its name, console UART and how a
//!   run ends (semihosting under QEMU, PSCI on hardware);
//! - drivers for what every board has: console UARTs ([`uart`]), the physical
//!   GICv3 ([`gicv3`]), the PSCI conduit ([`psci`]);
//! - discovery of the rest from the host device tree handed over in `x0`
//!   ([`hostdt`]): RAM, CPUs, the PSCI method, the GIC frames, bootargs.
//!
//! Nothing here assumes a UART model, a QEMU address or a CPU count: those are the
//! board's (`board`) or the device tree's to say.
#![cfg_attr(not(test), no_std)]

#[cfg(any(feature = "qemu-virt", feature = "imx8mp-evk"))]
pub mod board;
pub mod exit;
pub mod gicv3;
pub mod hostdt;
pub mod psci;
pub mod uart;

/// The most CPUs Ferry brings up. A device tree with more is refused with an error
/// naming the count (SynQuacer has 24 cores; raise this for bigger parts).
pub const MAX_CPUS: usize = 32;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// A region from its base and size.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// One past the last byte, saturating at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `addr` lies inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    /// Whether the two regions share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}
