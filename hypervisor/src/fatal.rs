//! The end of the run for an exception Ferry cannot handle: the syndrome on the
//! console, exit code 5.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2};
use ferry_boot::trap::{TrapFrame, Vector};
use ferry_platform::board::BOARD;
use ferry_platform::uart::RawWriter;
use tock_registers::interfaces::Readable;

use crate::exit::{self, ExitCode};
use crate::{cpu, esr};

/// Set while a fatal exception is being reported: a second one (say, the console
/// itself faulting) ends the run at once instead of recursing.
static REPORTING: AtomicBool = AtomicBool::new(false);

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
