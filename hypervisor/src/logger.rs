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

struct ConsoleLogger {
    lock: Mutex<()>,
}

static LOGGER: ConsoleLogger = ConsoleLogger {
    lock: Mutex::new(()),
};

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let _guard = self.lock.lock();
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

/// Prints one line of a partition's console as `[label] text`, under the log lock.
/// Control characters other than tab are shown as `.`.
pub fn guest_line(label: &str, text: &[u8]) {
    let console = BOARD.console;
    let _guard = LOGGER.lock.lock();
    console.write_str("[");
    console.write_str(label);
    console.write_str("] ");
    for &b in text {
        console.put_byte(if b == b'\t' || b >= 0x20 && b != 0x7f {
            b
        } else {
            b'.'
        });
    }
    console.write_str("\n");
}
