//! The board Ferry is built for, chosen by a cargo feature (`make PLATFORM=...`).
//!
//! A board says only what the host device tree cannot: which UART is the console
//! (needed before the device tree is read) and how a run ends. Everything else
//! (RAM, CPUs, GIC, PSCI) comes from the device tree ([`crate::hostdt`]).
//! Each board also has `platform/boards/<name>/board.ld` with its load address.

use crate::uart::Uart;

/// What Ferry knows about a board at build time.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The board's name, as in `make PLATFORM=<name>`.
    pub name: &'static str,
    /// The console UART (already set up by firmware or QEMU).
    pub console: Uart,
    /// Whether a run ends through semihosting SYS_EXIT (QEMU with `-semihosting`)
    /// rather than PSCI SYSTEM_OFF / SYSTEM_RESET.
    pub semihosting_exit: bool,
}

#[cfg(all(feature = "qemu-virt", feature = "imx8mp-evk"))]
compile_error!("choose exactly one board feature (qemu-virt or imx8mp-evk)");

/// QEMU `-M virt`: PL011 at 0x0900_0000.
#[cfg(feature = "qemu-virt")]
pub const BOARD: Board = Board {
    name: "qemu-virt",
    console: Uart::Pl011 { base: 0x0900_0000 },
    semihosting_exit: true,
};

/// QEMU `-M imx8mp-evk` (NXP i.MX 8M Plus EVK): the console is UART2 at
/// 0x3089_0000, QEMU's *second* `-serial`.
#[cfg(feature = "imx8mp-evk")]
pub const BOARD: Board = Board {
    name: "imx8mp-evk",
    console: Uart::Imx { base: 0x3089_0000 },
    semihosting_exit: true,
};
