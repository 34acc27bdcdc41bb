//! Log lines on the console: `[   1.234567 cpu2 INFO ] message`.
//!
//! One lock keeps lines whole. Last words (panic, fatal exceptions) bypass it and
//! write raw, so a CPU that dies holding the lock still gets its reason out.

use core::fmt::Write;

use ferry_platform::board::BOARD;
use ferry_platform::uart::RawWriter;
use log::{LevelFilter, Log, Metadata, Record};
use spin::Mutex;

use crate::cpu;

/// A stream of guest console text: a partition's console, or a virtio console
/// (index into the system's consoles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Partition n's console (hypercall or emulated PL011).
    Partition(usize),
    /// Virtio console n.
    Device(usize),
}

struct ConsoleLogger {
    /// Held while a line is written; holds the stream whose console line is
    /// still open (printed without its newline yet), if any.
    lock: Mutex<Option<Stream>>,
}

static LOGGER: ConsoleLogger = ConsoleLogger {
    lock: Mutex::new(None),
};

/// Ends a partition's open console line before something else is printed.
fn close_open_line(open: &mut Option<Stream>) {
    if open.take().is_some() {
        BOARD.console.write_str("\n");
    }
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut open = self.lock.lock();
        close_open_line(&mut open);
        let (secs, micros) = cpu::uptime();
        let _ = writeln!(
            RawWriter(BOARD.console),
            "[{secs:4}.{micros:06} cpu{} {:5}] {}",
            cpu::index(),
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the console logger. Call once, with the MMU on.
pub fn init(level: LevelFilter) {
    // A second call only fails to replace the logger, which is harmless.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The level named by a `ferry.log=` boot argument.
pub fn level_from_bootarg(value: Option<&str>) -> Result<LevelFilter, &str> {
    match value {
        None => Ok(LevelFilter::Info),
        Some(v) => v.parse().map_err(|_| v),
    }
}

/// Prints console text of `stream` as `[label] text`, under the log lock.
/// With `complete`, the line ends; otherwise it stays open and the stream's next
/// text continues it without a new prefix (a shell prompt, typed input echoed), unless
/// something else is printed first. Control characters other than tab, backspace
/// and escape (terminal control sequences of an interactive shell) are shown as `.`.
pub fn guest_text(stream: Stream, label: &str, text: &[u8], complete: bool) {
    let console = BOARD.console;
    let mut open = LOGGER.lock.lock();
    if *open != Some(stream) {
        close_open_line(&mut open);
        console.write_str("[");
        console.write_str(label);
        console.write_str("] ");
    }
    for &b in text {
        console.put_byte(if printable(b) { b } else { b'.' });
    }
    if complete {
        console.write_str("\n");
        *open = None;
    } else {
        *open = Some(stream);
    }
}

/// Whether a partition's console byte is passed to the terminal as is.
fn printable(b: u8) -> bool {
    matches!(b, b'\t' | 0x08 | 0x1b) || b >= 0x20 && b != 0x7f
}
