//! Panics: the message and location on the console, then the panic exit code.

use core::fmt::Write;

use ferry_platform::board::BOARD;
use ferry_platform::uart::RawWriter;

use crate::cpu;
use crate::exit::{self, ExitCode};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let index = cpu::index();
    let mut out = RawWriter(BOARD.console);
    let _ = write!(out, "\ncpu{index}: Ferry panicked at ");
    match info.location() {
        Some(at) => {
            let _ = write!(out, "{}:{}:{}", at.file(), at.line(), at.column());
        }
        None => {
            let _ = write!(out, "an unknown location");
        }
    }
    let _ = writeln!(out, ": {}", info.message());
    exit::end(ExitCode::Panic, format_args!("panic on cpu{index}"))
}
