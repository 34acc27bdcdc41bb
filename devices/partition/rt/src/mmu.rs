//! The guest's stage-1 identity map, built at compile time and turned on by the entry
//! code of every vCPU before any Rust runs.
//!
//! 4 KiB granule, T0SZ = 32 (4 GiB of VA, lookup starts at level 1), one level-1
//! table: `[0x4000_0000, 0x8000_0000)` is a Normal write-back 1 GiB block
//! (inner-shareable; every test partition's RAM starts at IPA 0x4000_0000), and so is
//! `[0x8000_0000, 0xc000_0000)` (where a virtio backend's `shared-memory` window, the
//! frontend's RAM, appears); `[0xc000_0000, 4 GiB)` is a Device-nGnRnE block; the
//! first GiB goes through a level-2 table of 2 MiB Device-nGnRnE blocks except the
//! one holding a virtio backend's IOREQ request page (0x0b00_0000, Normal: Ferry
//! writes it cacheable). Device blocks are execute-never. Addresses from 4 GiB up are not
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

/// A translation table of 512 descriptors (level 2; for level 1 only the first 4
/// entries are used with T0SZ = 32).
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

/// The level-1 table: its entry 0 is a *table* descriptor, i.e. the address of
/// [`__rt_l2_table_0`] plus 0b11, which a `const` can only express as a pointer (a
/// linker relocation); the other entries are plain block descriptors cast to
/// pointers.
#[repr(C, align(4096))]
pub struct L1Table(pub [*const u8; 512]);

// SAFETY: read-only after link time; the pointers are descriptors, never dereferenced.
unsafe impl Sync for L1Table {}

/// 2 MiB blocks of the first GiB that are Normal write-back instead of Device: the
/// IOREQ request page of a virtio backend (`ioreq-page`, docs/ioreq.md) is ordinary
/// memory Ferry writes through a cacheable mapping, so the backend must map it
/// cacheable too (a Device mapping would be incoherent with Ferry's on hardware).
/// Test configs put it at 0x0b00_0000; nothing else in that 2 MiB on QEMU virt.
pub const NORMAL_2M_BELOW_1G: [u64; 1] = [0x0b00_0000];

/// A level-2 block descriptor for the 2 MiB at `base` (same attribute bits as a
/// level-1 block).
const fn block2(base: u64, normal: bool) -> u64 {
    block(base, normal)
}

const fn build_l2_0() -> Table {
    let mut t = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        let base = (i as u64) << 21;
        let mut normal = false;
        let mut k = 0;
        while k < NORMAL_2M_BELOW_1G.len() {
            if NORMAL_2M_BELOW_1G[k] & !0x1f_ffff == base {
                normal = true;
            }
            k += 1;
        }
        t[i] = block2(base, normal);
        i += 1;
    }
    Table(t)
}

/// Level-2 table of the first GiB: Device-nGnRnE 2 MiB blocks, except
/// [`NORMAL_2M_BELOW_1G`].
#[unsafe(no_mangle)]
pub static __rt_l2_table_0: Table = build_l2_0();

const fn build() -> L1Table {
    let mut t = [core::ptr::null::<u8>(); 512];
    // GiB 0: table descriptor (bits 1:0 = 0b11) to the level-2 table.
    t[0] = (&raw const __rt_l2_table_0).cast::<u8>().wrapping_add(0b11);
    // GiB 1 [0x4000_0000, 0x8000_0000): every test partition's RAM.
    // GiB 2 [0x8000_0000, 0xc000_0000): a virtio backend's `shared-memory` window
    // (the frontend's RAM mapped into the backend by Ferry), Normal as well.
    // GiB 3: Device.
    let mut i = 1;
    while i < 4 {
        t[i] = block((i as u64) << 30, i == 1 || i == 2) as usize as *const u8;
        i += 1;
    }
    L1Table(t)
}

/// The level-1 table TTBR0_EL1 points at (read-only).
#[unsafe(no_mangle)]
pub static __rt_l1_table: L1Table = build();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_ram_normal_and_the_rest_device() {
        let t: [u64; 512] = core::array::from_fn(|i| __rt_l1_table.0[i] as usize as u64);
        let l2 = &raw const __rt_l2_table_0 as usize as u64;
        assert_eq!(t[0], l2 | 0b11, "table descriptor to the level-2 table");
        assert_eq!(t[1], 0x0040_0000_4000_0705);
        assert_eq!(t[2], 0x0040_0000_8000_0705, "shared-memory window: Normal");
        assert_eq!(t[3] & 0xffff_f000, 0xc000_0000);
        assert_eq!(t[3] & 0x1c, 0, "Device attr index");
        assert!(t[4..].iter().all(|&e| e == 0));
    }

    #[test]
    fn first_gib_is_device_but_the_request_page_block() {
        let t = &__rt_l2_table_0.0;
        assert_eq!(t[0], 0x0060_0000_0000_0401);
        assert_eq!(t[0x0900_0000 >> 21], 0x0060_0000_0900_0401, "PL011: Device");
        assert_eq!(
            t[0x0a00_0000 >> 21] & 0x1c,
            0,
            "virtio-mmio windows: Device"
        );
        assert_eq!(
            t[0x0b00_0000 >> 21],
            0x0040_0000_0b00_0705,
            "request page: Normal"
        );
        assert_eq!(t.iter().filter(|&&e| e & 0x1c != 0).count(), 1);
        assert_eq!(t[511] & !0xfff & 0xffff_ffff, 0x3fe0_0000);
    }

    #[test]
    fn control_values() {
        assert_eq!(TCR, 0x80a0_3520);
        assert_eq!(SCTLR, 0x30d0_181d);
        assert_eq!(MAIR, 0xff00);
    }
}

/// The range mapped as Normal write-back memory in 1 GiB blocks.
pub const NORMAL_RAM: core::ops::Range<u64> = 0x4000_0000..0xc000_0000;

/// Whether `[addr, addr + len)` (`len` > 0) is mapped as Normal memory: inside
/// [`NORMAL_RAM`] or inside one of the [`NORMAL_2M_BELOW_1G`] blocks.
pub fn is_normal(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    let within = |r: core::ops::Range<u64>| len > 0 && addr >= r.start && end <= r.end;
    within(NORMAL_RAM)
        || NORMAL_2M_BELOW_1G
            .iter()
            .any(|&b| within(b & !0x1f_ffff..(b & !0x1f_ffff) + 0x20_0000))
}

#[cfg(test)]
mod normal_tests {
    use super::*;

    #[test]
    fn normal_ranges() {
        assert!(is_normal(0x4000_0000, 0x8000_0000));
        assert!(!is_normal(0x4000_0000, 0x8000_0001));
        assert!(is_normal(0x0b00_0000, 0x1000));
        assert!(is_normal(0x0b1f_f000, 0x1000));
        assert!(!is_normal(0x0b1f_f000, 0x2000));
        assert!(!is_normal(0x0900_0000, 0x1000));
        assert!(!is_normal(0x4000_0000, 0));
        assert!(!is_normal(u64::MAX, 2));
    }
}
