//! Console UART drivers: write-only, polled, usable before any lock exists.
//!
//! Firmware (or QEMU) has already configured baud rate and framing; Ferry only
//! transmits. Each model is a `register_structs!` layout with checked offsets.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::Region;

register_bitfields! {u32,
    /// PL011 flag register.
    FR [
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) []
    ],
    /// i.MX UART test register.
    UTS [
        /// Receive FIFO empty.
        RXEMPTY OFFSET(5) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFULL OFFSET(4) NUMBITS(1) []
    ],
    /// i.MX UART status register 2.
    USR2 [
        /// Transmission complete.
        TXDC OFFSET(3) NUMBITS(1) []
    ]
}

register_structs! {
    /// Arm PL011 registers Ferry uses.
    pub Pl011Registers {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x30 => cr: ReadWrite<u32>),
        (0x34 => @END),
    }
}

register_structs! {
    /// NXP i.MX UART registers Ferry uses.
    pub ImxUartRegisters {
        (0x00 => urxd: ReadOnly<u32>),
        (0x04 => _reserved0),
        (0x40 => utxd: WriteOnly<u32>),
        (0x44 => _reserved1),
        (0x98 => usr2: ReadOnly<u32, USR2::Register>),
        (0x9c => _reserved2),
        (0xb4 => uts: ReadOnly<u32, UTS::Register>),
        (0xb8 => @END),
    }
}

/// A console UART: its model and MMIO base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uart {
    /// Arm PrimeCell PL011 (QEMU virt, SynQuacer).
    Pl011 {
        /// MMIO base address.
        base: usize,
    },
    /// NXP i.MX UART (i.MX8).
    Imx {
        /// MMIO base address.
        base: usize,
    },
}

impl Uart {
    /// The page(s) of MMIO the UART needs mapped.
    pub fn mmio(&self) -> Region {
        match *self {
            Uart::Pl011 { base } | Uart::Imx { base } => Region::new(base as u64, 0x1000),
        }
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put_byte(&self, byte: u8) {
        match *self {
            Uart::Pl011 { base } => {
                // SAFETY: `base` is the board's PL011, mapped as device memory (or the
                // MMU is off); the registers are only read and written, never aliased
                // as ordinary memory.
                let regs = unsafe { &*(base as *const Pl011Registers) };
                while regs.fr.is_set(FR::TXFF) {}
                regs.dr.set(byte as u32);
            }
            Uart::Imx { base } => {
                // SAFETY: as above, for the board's i.MX UART.
                let regs = unsafe { &*(base as *const ImxUartRegisters) };
                while regs.uts.is_set(UTS::TXFULL) {}
                regs.utxd.set(byte as u32);
            }
        }
    }

    /// Makes sure the UART receives (PL011: UARTEN, TXE and RXE set; firmware
    /// usually did this, QEMU's reset state has UARTEN clear and drops input then).
    /// Baud rate and framing are left as they are.
    pub fn enable_receive(&self) {
        if let Uart::Pl011 { base } = *self {
            // SAFETY: as in `put_byte`.
            let regs = unsafe { &*(base as *const Pl011Registers) };
            const UARTEN: u32 = 1 << 0;
            const TXE: u32 = 1 << 8;
            const RXE: u32 = 1 << 9;
            regs.cr.set(regs.cr.get() | UARTEN | TXE | RXE);
        }
    }

    /// Takes one received byte, if any (polled; receive interrupts stay off).
    pub fn get_byte(&self) -> Option<u8> {
        match *self {
            Uart::Pl011 { base } => {
                // SAFETY: as in `put_byte`.
                let regs = unsafe { &*(base as *const Pl011Registers) };
                (!regs.fr.is_set(FR::RXFE)).then(|| regs.dr.get() as u8)
            }
            Uart::Imx { base } => {
                // SAFETY: as in `put_byte`.
                let regs = unsafe { &*(base as *const ImxUartRegisters) };
                (!regs.uts.is_set(UTS::RXEMPTY)).then(|| regs.urxd.get() as u8)
            }
        }
    }

    /// Sends `text`, turning `\n` into `\r\n`.
    pub fn write_str(&self, text: &str) {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.put_byte(b'\r');
            }
            self.put_byte(byte);
        }
    }

    /// Waits until everything sent has left the UART.
    pub fn flush(&self) {
        match *self {
            Uart::Pl011 { base } => {
                // SAFETY: as in `put_byte`.
                let regs = unsafe { &*(base as *const Pl011Registers) };
                while regs.fr.is_set(FR::BUSY) {}
            }
            Uart::Imx { base } => {
                // SAFETY: as in `put_byte`.
                let regs = unsafe { &*(base as *const ImxUartRegisters) };
                while !regs.usr2.is_set(USR2::TXDC) {}
            }
        }
    }
}

/// A `core::fmt::Write` adapter over a UART with no lock: for early boot (MMU off)
/// and last words (panic, fault). Lines from several CPUs may interleave.
pub struct RawWriter(pub Uart);

impl core::fmt::Write for RawWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_str(s);
        Ok(())
    }
}
