//! An emulated Arm PL011 UART (PrimeCell UART, DDI0183) as pure logic.
//!
//! A Linux partition's console: Linux's unmodified `amba-pl011` driver probes it by
//! its PrimeCell ID registers and drives it polled (earlycon, console) and by
//! interrupts (tty TX and RX). The model follows the TRM and, where the two differ,
//! QEMU's `hw/char/pl011.c`, the device Linux is known to work with:
//!
//! - **TX is instant.** A DR write hands the byte to the `tx` sink at once, so the
//!   TX FIFO is always empty: FR.TXFE = 1, TXFF = 0, BUSY = 0. Every DR write raises
//!   the TX interrupt (RIS bit 5, as QEMU does); ICR clears it. TX does *not* depend
//!   on CR.UARTEN/TXE: earlycon writes before anyone enabled the UART (QEMU is as
//!   lenient). With CR.LBE set the byte loops back into the RX FIFO instead.
//! - **RX** is a [`RX_FIFO_DEPTH`]-deep FIFO (one-deep holding register while
//!   LCR_H.FEN = 0), filled by [`Pl011::receive`] whether or not RX is enabled
//!   (QEMU: the same). RX interrupt (bit 4): set when a byte arrives and the fill
//!   level is at or above the IFLS trigger (any byte with FEN = 0), cleared when
//!   reads take it below the trigger or by ICR. Receive timeout (bit 6): set on every
//!   arriving byte (a simplification: no character timer), cleared when the FIFO
//!   drains or by ICR. Linux's driver enables both and drains the FIFO on either.
//! - **Overrun**: a byte arriving at a full FIFO is lost; RSR.OE and RIS.OE (bit 10)
//!   are set, and the next byte stored carries DR.OE (bit 11), as the TRM says.
//!   Writing ECR clears RSR. No other receive errors occur.
//! - **Modem lines** read as a connected null modem: FR.CTS, DSR, DCD = 1, RI = 0;
//!   modem interrupts never fire.
//! - **Accesses**: registers are 32 bits wide. An access of size 1 or 2 sees the
//!   byte lanes its offset selects; 8 behaves as 4 (the upper half reads 0); any
//!   other size is taken as 4. Every read of the DR word pops the FIFO (APB has no
//!   read strobes); a write transmits only if it covers DR's low byte. Sub-word
//!   writes to configuration registers change only their lanes. Reserved and test
//!   offsets read 0 and ignore writes, as do writes to read-only registers.
//! - **IDs**: PeriphID 0x00141011 and PCellID 0xB105F00D, QEMU's values. Linux takes
//!   revision 1 from them and so assumes a 16-deep FIFO; that only makes it move
//!   fewer bytes per interrupt than it could.

/// Size of the register window the guest sees.
pub const WINDOW: u64 = 0x1000;
/// Depth of the receive FIFO while LCR_H.FEN is set.
pub const RX_FIFO_DEPTH: usize = 32;

const DR: u64 = 0x000;
const RSR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const ID_BASE: u64 = 0xfe0;
/// PeriphID0..3 then PCellID0..3, one byte in each 32-bit register.
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// FR.CTS, DSR and DCD: the modem lines of a connected null modem.
const FR_MODEM: u32 = 0b111;
const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;
const DR_OE: u16 = 1 << 11;
const RSR_OE: u32 = 1 << 3;
const LCR_H_FEN: u32 = 1 << 4;
const CR_LBE: u32 = 1 << 7;
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
const INT_OE: u32 = 1 << 10;
const INT_ALL: u32 = 0x7ff;

/// One emulated PL011: its registers and receive FIFO.
#[derive(Clone, Debug)]
pub struct Pl011 {
    /// Received entries: data in bits 7:0, DR error bits in 11:8.
    fifo: [u16; RX_FIFO_DEPTH],
    head: usize,
    count: usize,
    /// An overrun happened; the next stored byte carries DR.OE.
    overrun: bool,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state: CR = 0x300 (TXE, RXE; UARTEN clear), IFLS = 0x12
    /// (half-full triggers), every other register 0, FIFO empty.
    pub fn new() -> Self {
        Self {
            fifo: [0; RX_FIFO_DEPTH],
            head: 0,
            count: 0,
            overrun: false,
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0x300,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    /// A guest load of `size` bytes at `offset` in the window. Reading DR pops the
    /// receive FIFO; reserved offsets read 0.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= WINDOW {
            return 0;
        }
        let shift = 8 * (offset & 3);
        (u64::from(self.read_reg(offset & !3)) >> shift) & lane_mask(size)
    }

    /// A guest store of `size` bytes of `value` at `offset` in the window. A DR
    /// write transmits its low byte through `tx` (or loops it back with CR.LBE).
    pub fn write(&mut self, offset: u64, size: u8, value: u64, tx: &mut dyn FnMut(u8)) {
        if offset >= WINDOW {
            return;
        }
        let shift = 8 * (offset & 3);
        let lanes = ((lane_mask(size) << shift) & 0xffff_ffff) as u32;
        let data = ((value << shift) & u64::from(lanes)) as u32;
        let merge = |old: u32, mask: u32| ((old & !lanes) | data) & mask;
        match offset & !3 {
            DR if lanes & 0xff != 0 => {
                let byte = data as u8;
                if self.cr & CR_LBE != 0 {
                    self.push(byte);
                } else {
                    tx(byte);
                }
                self.ris |= INT_TX;
            }
            RSR => self.rsr = 0,
            ILPR => self.ilpr = merge(self.ilpr, 0xff),
            IBRD => self.ibrd = merge(self.ibrd, 0xffff),
            FBRD => self.fbrd = merge(self.fbrd, 0x3f),
            LCR_H => self.lcr_h = merge(self.lcr_h, 0xff),
            CR => self.cr = merge(self.cr, 0xff87),
            IFLS => self.ifls = merge(self.ifls, 0x3f),
            IMSC => self.imsc = merge(self.imsc, INT_ALL),
            ICR => self.ris &= !data,
            DMACR => self.dmacr = merge(self.dmacr, 0x7),
            _ => {}
        }
    }

    /// A byte from the physical console. Returns false when the FIFO is full: the
    /// byte is lost and an overrun is flagged (check [`Pl011::rx_space`] first).
    pub fn receive(&mut self, byte: u8) -> bool {
        self.push(byte)
    }

    /// The level of the UART's interrupt line: (RIS & IMSC) != 0.
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// How many bytes [`Pl011::receive`] can take without an overrun.
    pub fn rx_space(&self) -> usize {
        self.capacity().saturating_sub(self.count)
    }

    fn capacity(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            RX_FIFO_DEPTH
        } else {
            1
        }
    }

    /// The RX interrupt's fill level: IFLS.RXIFLSEL in 1/8ths of the FIFO (1/8,
    /// 1/4, 1/2, 3/4, 7/8; reserved values as 7/8); 1 with the FIFO disabled.
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        let eighths = [1, 2, 4, 6, 7][((self.ifls >> 3) & 7).min(4) as usize];
        RX_FIFO_DEPTH * eighths / 8
    }

    fn push(&mut self, byte: u8) -> bool {
        if self.count >= self.capacity() {
            self.overrun = true;
            self.rsr |= RSR_OE;
            self.ris |= INT_OE;
            return false;
        }
        let flags = if core::mem::take(&mut self.overrun) {
            DR_OE
        } else {
            0
        };
        self.fifo[(self.head + self.count) % RX_FIFO_DEPTH] = u16::from(byte) | flags;
        self.count += 1;
        self.ris |= INT_RT;
        if self.count >= self.rx_trigger() {
            self.ris |= INT_RX;
        }
        true
    }

    fn pop(&mut self) -> u32 {
        if self.count == 0 {
            return 0;
        }
        let entry = u32::from(self.fifo[self.head]);
        self.head = (self.head + 1) % RX_FIFO_DEPTH;
        self.count -= 1;
        if self.count < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if self.count == 0 {
            self.ris &= !INT_RT;
        }
        // RSR reports the popped byte's errors; OE stays until ECR is written.
        self.rsr = (self.rsr & RSR_OE) | ((entry >> 8) & 0xf);
        entry
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE | FR_MODEM;
        if self.count == 0 {
            fr |= FR_RXFE;
        }
        if self.count >= self.capacity() {
            fr |= FR_RXFF;
        }
        fr
    }

    fn read_reg(&mut self, reg: u64) -> u32 {
        match reg {
            DR => self.pop(),
            RSR => self.rsr,
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr_h,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            DMACR => self.dmacr,
            ID_BASE..WINDOW => u32::from(ID[((reg - ID_BASE) / 4) as usize]),
            _ => 0,
        }
    }
}

/// The bits an access of `size` bytes carries; 8 and odd sizes as 4.
fn lane_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Writes with a sink that must not be called.
    fn w(u: &mut Pl011, offset: u64, size: u8, value: u64) {
        u.write(offset, size, value, &mut |b| panic!("unexpected TX {b:#x}"));
    }

    /// Writes DR with `size`, returning what reached the TX sink.
    fn send(u: &mut Pl011, size: u8, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        u.write(DR, size, value, &mut |b| out.push(b));
        out
    }

    /// Linux's pl011_startup/set_termios, 16-bit accesses as its default UPIO_MEM.
    fn linux_setup() -> Pl011 {
        let mut u = Pl011::new();
        w(&mut u, CR, 2, 0); // disable
        w(&mut u, ICR, 2, 0x7f0); // clear errors, RX, RT
        w(&mut u, IBRD, 2, 1); // 24 MHz / (16 * 1.5) = 1 Mbaud
        w(&mut u, FBRD, 2, 0x20);
        w(&mut u, LCR_H, 2, 0x70); // WLEN_8 | FEN
        w(&mut u, IFLS, 2, 0x12);
        w(&mut u, CR, 2, 0x301); // UARTEN | TXE | RXE
        w(&mut u, ICR, 2, 0x50);
        w(&mut u, IMSC, 2, u64::from(INT_RX | INT_RT));
        u
    }

    #[test]
    fn reset_values() {
        let mut u = Pl011::new();
        let nonzero = [(FR, 0x97), (CR, 0x300), (IFLS, 0x12)];
        for reg in (0..0x50).step_by(4) {
            let reset = nonzero.iter().find(|r| r.0 == reg).map_or(0, |r| r.1);
            assert_eq!(u.read(reg, 4), reset, "register {reg:#x}");
        }
        assert!(!u.irq_level());
        assert_eq!(u.rx_space(), 1, "FEN is clear: one-deep holding register");
    }

    #[test]
    fn amba_ids_as_linux_reads_them() {
        let mut u = Pl011::new();
        let (mut pid, mut cid) = (0u32, 0u32);
        for i in 0..4 {
            pid |= ((u.read(0xfe0 + 4 * i, 4) & 0xff) as u32) << (8 * i);
            cid |= ((u.read(0xff0 + 4 * i, 4) & 0xff) as u32) << (8 * i);
        }
        assert_eq!((pid, cid), (0x0014_1011, 0xb105_f00d));
        assert_eq!(u.read(0xff4, 1), 0xf0);
        assert_eq!(u.read(0xffc, 2), 0xb1);
        assert_eq!(u.read(0xffc, 8), 0xb1);
        assert_eq!(u.read(0xffd, 1), 0, "upper bytes of an ID register are 0");
        w(&mut u, 0xfe0, 4, 0xff);
        assert_eq!(u.read(0xfe0, 4), 0x11, "IDs are read-only");
    }

    #[test]
    fn linux_tx_and_tx_interrupt() {
        let mut u = linux_setup();
        let regs = [CR, LCR_H, IBRD, FBRD].map(|reg| u.read(reg, 2));
        assert_eq!(regs, [0x301, 0x70, 1, 0x20]);
        let mut out = Vec::new();
        for &c in b"ok\n" {
            assert_eq!(u.read(FR, 2) & 0x28, 0, "never TXFF, never BUSY");
            out.extend(send(&mut u, 2, u64::from(c)));
        }
        assert_eq!(out, b"ok\n");
        assert_eq!(u.read(RIS, 4), u64::from(INT_TX));
        assert!(!u.irq_level(), "TXIM is masked");
        w(&mut u, IMSC, 2, u64::from(INT_RX | INT_RT | INT_TX));
        assert!(u.irq_level());
        assert_eq!(u.read(MIS, 4), u64::from(INT_TX));
        w(&mut u, ICR, 2, u64::from(INT_TX));
        assert!(!u.irq_level());
        assert_eq!(send(&mut u, 4, 0x1_0000_0141), b"A", "just the data byte");
        assert!(u.irq_level(), "the next write raises TX again");
    }

    #[test]
    fn tx_is_lenient_and_byte_wide() {
        let mut u = Pl011::new();
        assert_eq!(send(&mut u, 1, 0x65), b"e", "earlycon: UART not enabled");
        assert_eq!(u.read(FR, 4) & 0x80, 0x80, "TXFE");
        let mut out = Vec::new();
        u.write(DR + 1, 1, 0x42, &mut |b| out.push(b));
        assert!(
            out.is_empty(),
            "a write missing DR's low byte sends nothing"
        );
    }

    #[test]
    fn rx_fifo_order_flags_and_interrupts() {
        let mut u = linux_setup();
        assert_eq!(u.rx_space(), RX_FIFO_DEPTH);
        assert!(u.receive(b'a'));
        assert_eq!(u.read(FR, 2) & 0x50, 0, "neither RXFE nor RXFF");
        assert_eq!(u.read(RIS, 4), u64::from(INT_RT), "below the trigger (16)");
        assert!(u.irq_level());
        for c in b'b'..b'q' {
            assert!(u.receive(c));
        }
        assert_eq!(u.read(RIS, 4), u64::from(INT_RX | INT_RT), "16 bytes");
        w(&mut u, IMSC, 2, u64::from(INT_RX));
        assert!(u.irq_level());
        assert_eq!(u.read(DR, 2), u64::from(b'a'));
        assert_eq!(u.read(RIS, 4), u64::from(INT_RT), "below the trigger again");
        assert!(!u.irq_level(), "RT is masked now");
        let rest: Vec<u8> = (0..15).map(|_| u.read(DR, 4) as u8).collect();
        assert_eq!(rest, (b'b'..b'q').collect::<Vec<_>>());
        assert_eq!(u.read(FR, 2) & 0x10, 0x10, "RXFE");
        assert_eq!(u.read(RIS, 4), 0, "drained: no RX, no RT");
        assert_eq!(u.read(DR, 4), 0, "an empty FIFO reads 0");
        assert!(u.receive(b'x'));
        w(&mut u, ICR, 4, u64::from(INT_RT));
        assert_eq!(u.read(RIS, 4), 0, "ICR clears RT");
        assert_eq!(u.read(DR, 1), u64::from(b'x'));
    }

    #[test]
    fn rx_trigger_levels() {
        for (rxiflsel, trigger) in [(0, 4), (1, 8), (2, 16), (3, 24), (4, 28), (7, 28)] {
            let mut u = linux_setup();
            let ifls = rxiflsel << 3;
            w(&mut u, IFLS, 4, ifls);
            for i in 1..=trigger {
                u.receive(0);
                assert_eq!(u.read(RIS, 4) & 0x10 != 0, i == trigger, "IFLS {ifls:#x}");
            }
        }
    }

    #[test]
    fn overrun() {
        let mut u = linux_setup();
        for i in 0..RX_FIFO_DEPTH {
            assert!(u.receive(i as u8));
        }
        assert_eq!((u.rx_space(), u.read(FR, 4) & 0x40), (0, 0x40), "RXFF");
        assert!(!u.receive(0xee));
        assert_eq!(u.read(RSR, 4), 8, "RSR.OE");
        assert_eq!(u.read(RIS, 4), u64::from(INT_OE | INT_RX | INT_RT));
        w(&mut u, ICR, 4, u64::from(INT_OE));
        assert_eq!(u.read(RIS, 4), u64::from(INT_RX | INT_RT));
        assert_eq!(u.read(DR, 4), 0, "the FIFO's contents stay valid");
        assert_eq!(u.read(FR, 4) & 0x40, 0);
        assert!(u.receive(0x55));
        for i in 1..RX_FIFO_DEPTH {
            assert_eq!(u.read(DR, 4), i as u64);
        }
        assert_eq!(u.read(DR, 4), 0x800 | 0x55, "the next byte carries DR.OE");
        w(&mut u, RSR, 4, 0);
        assert_eq!(u.read(RSR, 4), 0, "ECR clears errors");
    }

    #[test]
    fn fifo_disabled_is_one_deep() {
        let mut u = Pl011::new();
        w(&mut u, IMSC, 4, u64::from(INT_RX));
        assert!(u.receive(b'1'));
        assert!(u.irq_level(), "any byte raises RX");
        assert_eq!(u.read(FR, 4) & 0x40, 0x40, "RXFF");
        assert!(!u.receive(b'2'));
        assert_eq!(u.read(DR, 4), u64::from(b'1'));
        assert!(!u.irq_level());
    }

    #[test]
    fn level_follows_imsc() {
        let mut u = linux_setup();
        u.receive(b'z');
        for (imsc, level) in [(0, false), (INT_RT, true), (INT_TX, false), (INT_ALL, true)] {
            w(&mut u, IMSC, 4, u64::from(imsc));
            assert_eq!(u.irq_level(), level, "IMSC {imsc:#x}");
            assert_eq!(u.read(MIS, 4), u64::from(imsc & INT_RT));
        }
    }

    #[test]
    fn loopback_feeds_rx() {
        let mut u = linux_setup();
        w(&mut u, CR, 4, 0x381);
        assert!(send(&mut u, 4, 0x5a).is_empty());
        assert_eq!(u.read(DR, 4), 0x5a);
    }

    #[test]
    fn read_only_and_sub_word_writes() {
        let mut u = linux_setup();
        for reg in [FR, RIS, MIS, 0x008, 0x01c, 0x04c, 0x080, 0xfdc] {
            w(&mut u, reg, 4, 0xffff_ffff);
        }
        assert_eq!(u.read(FR, 4), 0x97);
        assert_eq!((u.read(RIS, 4), u.read(0x080, 4)), (0, 0));
        w(&mut u, CR + 1, 1, 0x0c); // DTR | RTS, low byte untouched
        assert_eq!(u.read(CR, 4), 0xc01);
        w(&mut u, CR, 4, 0xffff_ffff);
        assert_eq!(u.read(CR, 4), 0xff87, "reserved bits read 0");
        w(&mut u, IBRD, 8, u64::MAX);
        assert_eq!(u.read(IBRD, 8), 0xffff);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut u = Pl011::new();
        for offset in (0..WINDOW + 8).chain([u64::MAX - 3, 1 << 40]) {
            for size in [0, 1, 2, 3, 4, 5, 8, 16, 255] {
                let value = next();
                u.write(offset, size, value, &mut |_| {});
                if value & 1 == 0 {
                    u.receive(value as u8);
                }
                assert!(u.read(offset, size) <= 0xffff_ffff);
                assert!(u.rx_space() <= RX_FIFO_DEPTH && u.count <= RX_FIFO_DEPTH);
                assert_eq!(u.irq_level(), u.read(MIS, 4) != 0);
            }
        }
    }
}
