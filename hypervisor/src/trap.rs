//! Exceptions taken to EL2: dispatch by vector. Guest exceptions go to
//! `guest_trap`, interrupts to `irq`; anything else at EL2 is a Ferry bug: it prints
//! the syndrome and ends the run with [`ExitCode::El2Exception`].

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2};
use ferry_boot::trap::{TrapFrame, Vector};
use ferry_platform::board::BOARD;
use ferry_platform::uart::RawWriter;
use tock_registers::interfaces::Readable;

use crate::cpu;
use crate::esr;
use crate::exit::{self, ExitCode};

/// Set while a fatal exception is being reported: a second one (say, the console
/// itself faulting) ends the run at once instead of recursing.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Entered from `vectors.S` for every exception taken to EL2.
#[unsafe(no_mangle)]
extern "C" fn ferry_trap(index: u64, frame: &mut TrapFrame) {
    match index {
        // Lower EL (a guest), AArch64: synchronous, IRQ, SError. The list registers
        // are brought up to date before going back.
        8 => {
            crate::guest_trap::handle(frame);
            crate::vcpu::sync_vgic();
        }
        9 => {
            crate::irq::handle();
            crate::vcpu::sync_vgic();
        }
        11 => match crate::partition::current() {
            Some((system, partition, vcpu)) => crate::partition::stop(
                system,
                partition,
                vcpu,
                crate::policy::StopKind::Fault,
                format_args!("SError (ESR_EL2 {:#x}, PC {:#x})", ESR_EL2.get(), frame.elr),
            ),
            None => fatal(
                index,
                frame,
                "an SError from a lower EL on a core that runs no vCPU",
            ),
        },
        // EL2 itself on SP_EL2: an IRQ while the core idles.
        5 => crate::irq::handle(),
        _ => fatal(index, frame, "unexpected EL2 exception"),
    }
}

/// Reports an exception Ferry cannot handle (kind, CPU, ESR, ELR, FAR) and ends the
/// run with [`ExitCode::El2Exception`].
pub fn fatal(index: u64, frame: &TrapFrame, what: &str) -> ! {
    // Plain load and store (no read-modify-write): valid even with the MMU off.
    if REPORTING.load(Ordering::Relaxed) {
        ferry_platform::exit::end_run(ExitCode::El2Exception.code());
    }
    REPORTING.store(true, Ordering::Relaxed);
    let (esr, far) = (ESR_EL2.get(), FAR_EL2.get());
    let (kind, origin) = match Vector::from_index(index) {
        Some(v) => v.describe(),
        None => ("unknown", "an unknown vector"),
    };
    let ec = esr::class(esr);
    let cpu = cpu::index();
    let mut out = RawWriter(BOARD.console);
    let _ = writeln!(out, "\ncpu{cpu}: {what}: {kind} from {origin}");
    let _ = write!(
        out,
        "  ESR_EL2  {esr:#018x}  EC {ec:#04x} {}",
        esr::class_name(ec)
    );
    if let Some(status) = esr::abort_status_name(esr) {
        let _ = write!(out, " ({status})");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  ELR_EL2  {:#018x}  FAR_EL2 {far:#018x}", frame.elr);
    let _ = writeln!(
        out,
        "  SPSR_EL2 {:#018x}  LR      {:#018x}",
        frame.spsr, frame.x[30]
    );
    exit::end(ExitCode::El2Exception, format_args!("{what} on cpu{cpu}"))
}
