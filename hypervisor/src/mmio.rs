//! Decoding a trapped guest load or store from ESR_EL2 (data abort, ISV = 1).
//!
//! Linux's `readl`/`writel` and plain Rust volatile accesses are single LDR/STR
//! instructions, which the architecture describes fully in the syndrome: size,
//! direction, register, sign extension. Accesses it does not describe (ISV = 0:
//! pair loads, writeback addressing, ...) cannot be emulated.

/// One decoded MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The guest address accessed.
    pub ipa: u64,
    /// Bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// A store (true) or a load.
    pub write: bool,
    /// The transfer register, 0..=30; 31 is XZR (stores write zero, loads discard).
    pub reg: u8,
    /// Loads: sign-extend the value to the register width.
    pub sign_extend: bool,
    /// Loads: the register is 64-bit (X) rather than 32-bit (W).
    pub wide: bool,
}

/// Decodes a data-abort syndrome; `None` if ISV is clear (not emulatable).
pub fn decode(esr: u64, ipa: u64) -> Option<Access> {
    const ISV: u64 = 1 << 24;
    if esr & ISV == 0 {
        return None;
    }
    Some(Access {
        ipa,
        size: 1 << ((esr >> 22) & 0b11),
        write: esr & (1 << 6) != 0,
        reg: ((esr >> 16) & 0x1f) as u8,
        sign_extend: esr & (1 << 21) != 0,
        wide: esr & (1 << 15) != 0,
    })
}

impl Access {
    /// The value a store writes, from the register file `x` (x0..x30), cut to size.
    pub fn store_value(&self, x: &[u64; 31]) -> u64 {
        let value = x.get(self.reg as usize).copied().unwrap_or(0);
        value & self.mask()
    }

    /// Puts a load's `value` into the register file, extended as the instruction
    /// asks. A load into XZR changes nothing.
    pub fn complete_load(&self, x: &mut [u64; 31], value: u64) {
        let Some(slot) = x.get_mut(self.reg as usize) else {
            return;
        };
        let bits = 8 * self.size as u32;
        let mut v = value & self.mask();
        if self.sign_extend && bits < 64 && v >> (bits - 1) & 1 == 1 {
            v |= !self.mask();
        }
        if !self.wide {
            v &= 0xffff_ffff;
        }
        *slot = v;
    }

    fn mask(&self) -> u64 {
        if self.size >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.size)) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESR for a data abort from a lower EL with the given ISS fields.
    fn esr(isv: bool, sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool) -> u64 {
        0x24 << 26
            | 1 << 25
            | (isv as u64) << 24
            | sas << 22
            | (sse as u64) << 21
            | srt << 16
            | (sf as u64) << 15
            | (wnr as u64) << 6
            | 0x07
    }

    #[test]
    fn decodes_loads_and_stores() {
        let a = decode(esr(true, 2, false, 3, false, true), 0x0800_0000).unwrap();
        assert_eq!((a.size, a.write, a.reg, a.wide), (4, true, 3, false));
        let a = decode(esr(true, 3, false, 30, true, false), 0x0800_6100).unwrap();
        assert_eq!((a.size, a.write, a.reg, a.wide), (8, false, 30, true));
        assert_eq!(decode(esr(false, 2, false, 3, false, true), 0), None);
    }

    #[test]
    fn store_values_are_cut_to_size() {
        let mut x = [0u64; 31];
        x[5] = 0x1122_3344_5566_7788;
        let a = decode(esr(true, 0, false, 5, false, true), 0).unwrap();
        assert_eq!(a.store_value(&x), 0x88);
        let a = decode(esr(true, 3, false, 5, true, true), 0).unwrap();
        assert_eq!(a.store_value(&x), 0x1122_3344_5566_7788);
        let xzr = decode(esr(true, 2, false, 31, false, true), 0).unwrap();
        assert_eq!(xzr.store_value(&x), 0);
    }

    #[test]
    fn loads_extend_as_asked() {
        let mut x = [7u64; 31];
        // LDRB w1: zero-extended, upper bits cleared.
        decode(esr(true, 0, false, 1, false, false), 0)
            .unwrap()
            .complete_load(&mut x, 0x1ff);
        assert_eq!(x[1], 0xff);
        // LDRSH x2: sign-extended to 64 bits.
        decode(esr(true, 1, true, 2, true, false), 0)
            .unwrap()
            .complete_load(&mut x, 0x8000);
        assert_eq!(x[2], 0xffff_ffff_ffff_8000);
        // LDRSB w3: sign-extended to 32 bits only.
        decode(esr(true, 0, true, 3, false, false), 0)
            .unwrap()
            .complete_load(&mut x, 0x80);
        assert_eq!(x[3], 0xffff_ff80);
        // LDR x4.
        decode(esr(true, 3, false, 4, true, false), 0)
            .unwrap()
            .complete_load(&mut x, u64::MAX);
        assert_eq!(x[4], u64::MAX);
        // Load into XZR: nothing changes.
        let before = x;
        decode(esr(true, 2, false, 31, false, false), 0)
            .unwrap()
            .complete_load(&mut x, 1);
        assert_eq!(x, before);
    }
}
