//! The guest's stage-1 identity map, built at compile time and turned on by the entry
//! code of every vCPU before any Rust runs.
//!
//! 4 KiB granule, T0SZ = 32 (4 GiB of VA, lookup starts at level 1), one level-1
//! table of 1 GiB blocks: `[0x4000_0000, 0x8000_0000)` is Normal write-back
//! (inner-shareable; every test partition's RAM starts at IPA 0x4000_0000), the other
//! three blocks Device-nGnRnE and execute-never. Addresses from 4 GiB up are not
//! mapped: an access there is a stage-1 fault inside the guest (its vector prints and
//! resets), so trespass targets must be below 4 GiB. TTBR1 walks are off.

/// MAIR_EL1: attr0 Device-nGnRnE, attr1 Normal write-back read/write-allocate.
#[allow(clippy::identity_op)] // every field spelled out, zeros included
pub const MAIR: u64 = 0x00 | (0xff << 8);

const ATTR_DEVICE: u64 = 0;
const ATTR_NORMAL: u64 = 1;

/// TCR_EL1: T0SZ=32, walks write-back inner-shareable, TG0=4K, EPD1, TG1=4K, IPS=32 bits.
#[allow(clippy::identity_op)] // every field spelled out, zeros included
pub const TCR: u64 = 32 // T0SZ
    | (0b01 << 8)   // IRGN0: write-back write-allocate
    | (0b01 << 10)  // ORGN0
    | (0b11 << 12)  // SH0: inner shareable
    | (0b00 << 14)  // TG0: 4 KiB
    | (32 << 16)    // T1SZ (unused)
    | (1 << 23)     // EPD1: no TTBR1 walks
    | (0b10 << 30); // TG1: 4 KiB; IPS (34:32) = 0: 32-bit PA

/// SCTLR_EL1 with the MMU, caches and SP alignment checks on: the v8.0 RES1 bits
/// (11, 20, 22, 23, 28, 29) plus M, C, SA, SA0, I; little-endian, no WXN, no A.
pub const SCTLR: u64 = (1 << 0) // M
    | (1 << 2)   // C
    | (1 << 3)   // SA
    | (1 << 4)   // SA0
    | (1 << 12)  // I
    | (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// A level-1 block descriptor for the 1 GiB at `base`.
const fn block(base: u64, normal: bool) -> u64 {
    if normal {
        base | BLOCK | (ATTR_NORMAL << 2) | SH_INNER | AF | UXN
    } else {
        base | BLOCK | (ATTR_DEVICE << 2) | AF | PXN | UXN
    }
}

/// A translation table (only the first 4 entries are used with T0SZ = 32).
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

const fn build() -> Table {
    let mut t = [0u64; 512];
    let mut i = 0;
    while i < 4 {
        t[i] = block((i as u64) << 30, i == 1);
        i += 1;
    }
    Table(t)
}

/// The level-1 table TTBR0_EL1 points at (read-only, in `.rodata`).
#[unsafe(no_mangle)]
pub static __rt_l1_table: Table = build();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_ram_normal_and_the_rest_device() {
        let t = &__rt_l1_table.0;
        assert_eq!(t[0], 0x0060_0000_0000_0401);
        assert_eq!(t[1], 0x0040_0000_4000_0705);
        assert_eq!(t[2] & 0xffff_f000, 0x8000_0000);
        assert_eq!(t[3] & 0x1c, 0, "Device attr index");
        assert!(t[4..].iter().all(|&e| e == 0));
    }

    #[test]
    fn control_values() {
        assert_eq!(TCR, 0x80a0_3520);
        assert_eq!(SCTLR, 0x30d0_181d);
        assert_eq!(MAIR, 0xff00);
    }
}
