//! `echo`: answers lines typed on its emulated PL011 console, to test how Ferry
//! shares the one physical console's input between partitions.
//!
//! Polls the PL011 at 0x0900_0000 (the platform console address, where Ferry
//! emulates one for a partition with `console = "pl011"`). Each line typed is
//! answered with `<name> got: <line>` through the console hypercall; the line
//! `quit` ends it with SYSTEM_OFF.
//!
//! Bootargs: `name=<text>` (default "echo").
//! Log: `<name>: ready`, `<name> got: <line>` ..., `<name>: bye`.
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, println, psci, time};

rt::entry!(main);

/// The emulated PL011's data and flag registers, and FR.RXFE.
const UART_DR: usize = 0x0900_0000;
const UART_FR: usize = 0x0900_0018;
const FR_RXFE: u32 = 1 << 4;

fn read_reg(addr: usize) -> u32 {
    // SAFETY: a device register of the emulated PL011 (device memory in the
    // runtime's map); reading has no effect on this program's memory.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn main(boot: &'static Boot) -> ! {
    let name = boot.arg("name").filter(|n| !n.is_empty()).unwrap_or("echo");
    println!("{name}: ready");
    let mut line = [0u8; 64];
    let mut len = 0;
    loop {
        if read_reg(UART_FR) & FR_RXFE != 0 {
            // Nothing typed: look again in a millisecond.
            let start = time::ticks();
            while time::ticks_to_ms(time::ticks().wrapping_sub(start)) < 1 {
                core::hint::spin_loop();
            }
            continue;
        }
        let byte = read_reg(UART_DR) as u8;
        if byte != b'\n' && byte != b'\r' {
            if len < line.len() {
                line[len] = byte;
                len += 1;
            }
            continue;
        }
        if len == 0 {
            continue;
        }
        let text = core::str::from_utf8(&line[..len]).unwrap_or("<not UTF-8>");
        if text == "quit" {
            println!("{name}: bye");
            psci::system_off();
        }
        println!("{name} got: {text}");
        len = 0;
    }
}
