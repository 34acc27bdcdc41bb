//! The virtual GICv3 each partition sees.
//!
//! The distributor and the redistributors are emulated (guest accesses to them trap
//! as stage-2 aborts) by the plain model in [`model`]; the CPU interface is the
//! hardware's virtual interface, fed through the list registers (`lr`, target
//! only). A partition sees its own SGIs and PPIs per vCPU and only the SPIs it owns
//! (its passthrough devices' and its emulated devices'): every other SPI reads as
//! zero and ignores writes, so it can neither enable, route, pend nor observe them.

pub mod listregs;
pub mod model;
pub mod regs;

#[cfg(target_os = "none")]
pub mod lr;

pub use model::{Irq, Vgic};

/// INTIDs below this are private to a vCPU (SGIs 0-15, PPIs 16-31).
pub const PRIVATE: u32 = 32;
/// Size of one vCPU's redistributor view: RD_base and SGI_base frames.
pub const REDIST_STRIDE: u64 = ferry_platform::gicv3::offsets::GICR_SIZE;
/// Size of the distributor window.
pub const DIST_SIZE: u64 = ferry_platform::gicv3::offsets::GICD_SIZE;
/// The EL1 virtual timer's PPI.
pub const VTIMER_PPI: u32 = 27;
/// The EL1 physical timer's PPI (the guest's own: one vCPU per core).
pub const PTIMER_PPI: u32 = 30;
/// The GIC maintenance interrupt's PPI.
pub const MAINTENANCE_PPI: u32 = 25;
