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

// Defined in ferry-abi, shared with the config; re-exported under their old paths.
pub use ferry_abi::{MAX_CPUS, Region};
