//! The running system and what the calling core runs in it.

use spin::Once;

use crate::cpu;
use crate::state::partition::Partition;
use crate::state::system::System;

/// The running system, once the primary has set it up.
pub static SYSTEM: Once<System> = Once::new();

/// The system, the partition and the vCPU the calling core runs.
pub fn current() -> Option<(&'static System, &'static Partition, usize)> {
    let system = SYSTEM.get()?;
    let (partition, vcpu) = system.on_core(cpu::index())?;
    Some((system, partition, vcpu))
}
