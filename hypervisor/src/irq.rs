//! Physical interrupts at EL2.
//!
//! The CPU interface runs with EOImode = 1: every interrupt gets its priority
//! dropped at once; Ferry's own are then deactivated here, while interrupts it
//! forwards to the running guest (the EL1 timers, passthrough SPIs) stay active
//! until the guest's EOI of the hardware-linked virtual interrupt deactivates them.
//! Ferry's own: SGI `KICK_SGI` (a partition stopped: leave the guest), SGI
//! `VGIC_SGI` (another core changed this vCPU's virtual interrupts), the GIC
//! maintenance PPI (list registers drained or a level interrupt was EOId), and the
//! EL2 timer PPI [`WATCHDOG_PPI`] (the tick: watchdog and console input). Each exit to a guest
//! then refreshes its list registers (`trap`).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTHP_CTL_EL2, CNTP_CTL_EL0, CNTV_CTL_EL0};
use ferry_platform::gicv3;
use tock_registers::interfaces::Writeable;

use crate::apply::apply;
use crate::current::{SYSTEM, current};
use crate::exit::{self, ExitCode};
use crate::pages::PhysPages;
use crate::sgi::{KICK_SGI, VGIC_SGI};
use crate::state::effect::Effects;
use crate::{cpu, vcpu, vgic};
/// The EL2 physical timer's PPI (CNTHP): Ferry's tick (watchdog, console input).
pub const WATCHDOG_PPI: u32 = 26;

/// The watchdog's period in milliseconds (0: none), for the message.
static WATCHDOG_MS: AtomicU32 = AtomicU32::new(0);

/// Enables, in the calling core's redistributor at `rd`, the private interrupts
/// every core needs: the kicks, the GIC maintenance interrupt, the EL1 timers.
pub fn enable_private(gic: &gicv3::Gic, rd: u64) {
    // Whatever firmware left in the EL1 timers must not fire before a vCPU runs.
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    let timers = [vgic::VTIMER_PPI, vgic::PTIMER_PPI];
    for intid in [KICK_SGI, VGIC_SGI, vgic::MAINTENANCE_PPI]
        .into_iter()
        .chain(timers)
    {
        gic.enable_private(rd, intid);
    }
}

/// Period of the EL2 tick: console input polling and the watchdog check.
const TICK_MS: u64 = 10;
/// The counter value at which the run's watchdog fires (0: none).
static WATCHDOG_AT: AtomicU64 = AtomicU64::new(0);
/// Whether the tick polls the physical console for input.
static POLL_INPUT: AtomicBool = AtomicBool::new(false);

/// Starts the calling core's EL2 timer as a periodic tick if there is a watchdog
/// (`ms` milliseconds for the whole run) or console input to poll.
pub fn start_tick(watchdog_ms: Option<u32>, poll_input: bool) {
    if let Some(ms) = watchdog_ms {
        WATCHDOG_MS.store(ms, Ordering::Relaxed);
        let at = cpu::counter() + u64::from(ms) * cpu::counter_frequency() / 1000;
        WATCHDOG_AT.store(at, Ordering::Relaxed);
    }
    POLL_INPUT.store(poll_input, Ordering::Relaxed);
    if poll_input {
        ferry_platform::board::BOARD.console.enable_receive();
    }
    if watchdog_ms.is_some() || poll_input {
        arm_tick();
    }
}

fn arm_tick() {
    let next = cpu::counter() + TICK_MS * cpu::counter_frequency() / 1000;
    // SAFETY: CNTHP_CVAL_EL2 (not modelled by aarch64-cpu 11) is Ferry's own EL2
    // timer; setting its compare value affects nothing else.
    unsafe { core::arch::asm!("msr cnthp_cval_el2, {}", in(reg) next, options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// One tick: end the run if the watchdog expired, pass typed input on, re-arm.
fn tick() {
    let at = WATCHDOG_AT.load(Ordering::Relaxed);
    if at != 0 && cpu::counter() >= at {
        exit::end(
            ExitCode::Watchdog,
            format_args!(
                "watchdog: the run is still going after {} ms",
                WATCHDOG_MS.load(Ordering::Relaxed)
            ),
        );
    }
    if POLL_INPUT.load(Ordering::Relaxed) {
        poll_input();
    }
    arm_tick();
}

/// Shows the unfinished console lines of consoles that take input (their
/// prompts), then passes typed bytes on while the focused console has room.
fn poll_input() {
    let Some(system) = SYSTEM.get() else { return };
    for p in system.partitions.iter().filter(|p| p.uart.is_some()) {
        p.flush_partial_line(&mut crate::apply::console_out(p));
    }
    let mut out = crate::apply::device_console_out(system);
    for (i, c) in system
        .consoles
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.loopback)
    {
        c.flush_partial_line(&mut |text, complete| out(i, text, complete));
    }
    let console = ferry_platform::board::BOARD.console;
    for _ in 0..64 {
        if !system.console.lock().has_room(system) {
            break;
        }
        let Some(byte) = console.get_byte() else {
            break;
        };
        let fx = system.console.lock().input(system, byte, &PhysPages);
        apply(system, &fx);
    }
}

/// Handles one physical IRQ taken to EL2 (from a guest or from an idle core).
pub fn handle() {
    let intid = gicv3::acknowledge();
    if gicv3::is_spurious(intid) {
        return;
    }
    gicv3::end_of_interrupt(intid);
    if forward(intid) {
        return;
    }
    gicv3::deactivate(intid);
    match intid {
        KICK_SGI => {
            if let Some((_, partition, _)) = current()
                && partition.is_stopped()
            {
                vcpu::park();
            }
        }
        // The list registers are refreshed on the way back to the guest.
        VGIC_SGI | vgic::MAINTENANCE_PPI => {}
        WATCHDOG_PPI => tick(),
        other => log::warn!(
            "unexpected interrupt {other} on cpu{}: ignored",
            cpu::index()
        ),
    }
}

/// Hands a hardware interrupt to the vCPU of this core if its partition has it
/// (an EL1 timer, a passthrough SPI). The guest's EOI deactivates it.
fn forward(intid: u32) -> bool {
    let timer = intid == vgic::VTIMER_PPI || intid == vgic::PTIMER_PPI;
    if !timer && intid < vgic::PRIVATE {
        return false;
    }
    let Some((system, partition, vcpu)) = current() else {
        return false;
    };
    let mut vgic = partition.vgic.lock();
    if !vgic.irq(vcpu, intid).is_some_and(|irq| irq.hw) {
        return false;
    }
    if let Some(target) = vgic.raise(vcpu, intid) {
        drop(vgic);
        let mut fx = Effects::new();
        partition.update_vcpus(1 << target, vcpu, &mut fx);
        apply(system, &fx);
    }
    true
}
