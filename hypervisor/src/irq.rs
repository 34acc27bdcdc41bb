//! Physical interrupts at EL2: the stop kick between cores and the watchdog.
//!
//! Until the vGIC exists, Ferry handles only its own interrupts: SGI
//! [`KICK_SGI`] (a partition stopped: leave the guest) and the EL2 physical timer
//! PPI [`WATCHDOG_PPI`] (the run took too long). Anything else is logged and
//! ended.

use core::sync::atomic::{AtomicU32, Ordering};

use aarch64_cpu::registers::CNTHP_CTL_EL2;
use ferry_platform::gicv3;
use tock_registers::interfaces::Writeable;

use crate::exit::{self, ExitCode};
use crate::{cpu, partition, vcpu};

/// The SGI that tells a core its partition stopped.
pub const KICK_SGI: u32 = 0;
/// The EL2 physical timer's PPI (CNTHP), used as the run's watchdog.
pub const WATCHDOG_PPI: u32 = 26;

/// The watchdog's period in milliseconds (0: none), for the message.
static WATCHDOG_MS: AtomicU32 = AtomicU32::new(0);

/// Makes the core with `mpidr` take an interrupt at EL2 (and look at its
/// partition's state).
pub fn kick(mpidr: u64) {
    gicv3::send_sgi(KICK_SGI, mpidr);
}

/// Arms the watchdog on the calling core: the run ends with
/// [`ExitCode::Watchdog`] after `ms` milliseconds.
pub fn arm_watchdog(ms: u32) {
    WATCHDOG_MS.store(ms, Ordering::Relaxed);
    let deadline = cpu::counter() + u64::from(ms) * cpu::counter_frequency() / 1000;
    // SAFETY: CNTHP_CVAL_EL2 (not modelled by aarch64-cpu 11) is Ferry's own EL2
    // timer; setting its compare value affects nothing else.
    unsafe { core::arch::asm!("msr cnthp_cval_el2, {}", in(reg) deadline, options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Handles one physical IRQ taken to EL2 (from a guest or from an idle core).
pub fn handle() {
    let intid = gicv3::acknowledge();
    if gicv3::is_spurious(intid) {
        return;
    }
    gicv3::end_of_interrupt(intid);
    match intid {
        KICK_SGI => {
            if let Some((_, partition, _)) = partition::current() {
                if partition.is_stopped() {
                    vcpu::park();
                }
            }
        }
        WATCHDOG_PPI => exit::end(
            ExitCode::Watchdog,
            format_args!(
                "watchdog: the run is still going after {} ms",
                WATCHDOG_MS.load(Ordering::Relaxed)
            ),
        ),
        other => log::warn!(
            "unexpected interrupt {other} on cpu{}: ignored",
            cpu::index()
        ),
    }
}
