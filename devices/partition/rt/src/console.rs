//! The guest console: [`print!`](crate::print)/[`println!`](crate::println) over Ferry's
//! CONSOLE_WRITE hypercall (`HVC #0`, x0 = 0x8600_0001, x1 = length ≤ 24, x2..x4 =
//! the bytes little-endian; see docs/hypercalls.md). One call prints a whole
//! formatted message under one lock, so vCPUs of one partition never interleave
//! within a line. The `smoke` build writes to the PL011 at 0x0900_0000 instead.

use core::fmt::{self, Write};

use ferry_abi::hypercall::{CONSOLE_WRITE, CONSOLE_WRITE_MAX, console_args};

use crate::lock::OwnerLock;

static LOCK: OwnerLock = OwnerLock::new();

/// Sends up to [`CONSOLE_WRITE_MAX`] bytes.
fn emit(bytes: &[u8]) {
    #[cfg(not(feature = "smoke"))]
    {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (len, w) = console_args(rest);
            let taken = crate::arch::hvc(CONSOLE_WRITE as u64, len, w[0], w[1], w[2])[0] as i64;
            if taken <= 0 || taken as usize > rest.len() {
                return; // refused: nothing sensible left to do with the text
            }
            rest = &rest[taken as usize..];
        }
    }
    #[cfg(feature = "smoke")]
    {
        let _ = (CONSOLE_WRITE, console_args as fn(&[u8]) -> (u64, [u64; 3]));
        const PL011: usize = 0x0900_0000;
        for &b in bytes {
            // SAFETY: QEMU virt's PL011, mapped Device-nGnRnE by the runtime's MMU setup.
            unsafe {
                while core::ptr::read_volatile((PL011 + 0x18) as *const u32) & (1 << 5) != 0 {}
                core::ptr::write_volatile(PL011 as *mut u32, b as u32);
            }
        }
    }
}

/// Collects bytes into hypercall-sized chunks.
struct Chunker {
    buf: [u8; CONSOLE_WRITE_MAX],
    len: usize,
}

impl Chunker {
    const fn new() -> Self {
        Self {
            buf: [0; CONSOLE_WRITE_MAX],
            len: 0,
        }
    }

    fn flush(&mut self) {
        if self.len > 0 {
            emit(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for Chunker {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// What `print!` calls: formats and sends `args` under the console lock.
pub fn print(args: fmt::Arguments<'_>) {
    let _guard = LOCK.lock();
    let mut c = Chunker::new();
    let _ = c.write_fmt(args);
    c.flush();
}

/// For a vCPU about to stop (panic, exception, failure): prints `args` even if the
/// console lock cannot be had.
pub fn print_last_words(args: fmt::Arguments<'_>) {
    let _guard = LOCK.lock_for_last_words();
    let mut c = Chunker::new();
    let _ = c.write_fmt(args);
    c.flush();
}

/// Prints to the partition's console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!($($arg)*))
    };
}

/// Prints a line to the partition's console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Ferry's hypercall ABI version (hypercall VERSION, 0x8600_0000): major << 16 | minor.
pub fn ferry_version() -> i64 {
    crate::arch::hvc(ferry_abi::hypercall::VERSION as u64, 0, 0, 0, 0)[0] as i64
}
