//! The SGIs Ferry sends between its own cores.

use ferry_platform::gicv3;

/// The SGI that tells a core its partition stopped.
pub const KICK_SGI: u32 = 0;
/// The SGI that tells a core to refresh its vCPU's list registers.
pub const VGIC_SGI: u32 = 1;

/// Makes the core with `mpidr` take an interrupt at EL2 (and look at its
/// partition's state).
pub fn kick(mpidr: u64) {
    gicv3::send_sgi(KICK_SGI, mpidr);
}

/// Makes the core with `mpidr` refresh its vCPU's list registers.
pub fn kick_vgic(mpidr: u64) {
    gicv3::send_sgi(VGIC_SGI, mpidr);
}
