//! EL2 stage-1 translation (non-VHE, TTBR0_EL2 only): memory types, leaf
//! attributes, and the MAIR/TCR/SCTLR values that turn the MMU and caches on.

use tock_registers::LocalRegisterCopy;
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// Leaf attribute fields of an EL2 stage-1 block or page descriptor.
    LEAF [
        /// Index into MAIR_EL2.
        ATTR_INDEX OFFSET(2) NUMBITS(3) [],
        /// AP[1]: RES1 in the EL2 regime.
        AP1 OFFSET(6) NUMBITS(1) [],
        /// AP[2]: read-only.
        READ_ONLY OFFSET(7) NUMBITS(1) [],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
        /// Access flag: set, so no access-flag faults.
        AF OFFSET(10) NUMBITS(1) [],
        /// Execute-never at EL2.
        XN OFFSET(54) NUMBITS(1) []
    ]
}

/// MAIR_EL2 index of Device-nGnRE memory.
pub const MAIR_DEVICE: u64 = 0;
/// MAIR_EL2 index of Normal, inner/outer write-back read/write-allocate memory.
pub const MAIR_NORMAL: u64 = 1;
/// MAIR_EL2 index of Normal non-cacheable memory.
pub const MAIR_NORMAL_NC: u64 = 2;

/// MAIR_EL2: attribute 0 Device-nGnRE, 1 Normal WB, 2 Normal NC.
pub const MAIR: u64 = 0x04 | (0xff << 8) | (0x44 << 16);

/// What a mapping is for; each gives one set of leaf attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Ferry's code: read + execute.
    Text,
    /// Constants: read only, never executed.
    ReadOnly,
    /// Data, stacks, RAM: read + write, never executed.
    ReadWrite,
    /// Device registers: Device-nGnRE, read + write, never executed.
    Device,
}

impl Memory {
    /// The leaf attribute bits for [`super::Tables::map`].
    pub fn attributes(self) -> u64 {
        let mut leaf: LocalRegisterCopy<u64, LEAF::Register> = LocalRegisterCopy::new(0);
        leaf.modify(LEAF::AF::SET + LEAF::AP1::SET);
        match self {
            Memory::Text => leaf.modify(
                LEAF::ATTR_INDEX.val(MAIR_NORMAL) + LEAF::SH::InnerShareable + LEAF::READ_ONLY::SET,
            ),
            Memory::ReadOnly => leaf.modify(
                LEAF::ATTR_INDEX.val(MAIR_NORMAL)
                    + LEAF::SH::InnerShareable
                    + LEAF::READ_ONLY::SET
                    + LEAF::XN::SET,
            ),
            Memory::ReadWrite => leaf.modify(
                LEAF::ATTR_INDEX.val(MAIR_NORMAL) + LEAF::SH::InnerShareable + LEAF::XN::SET,
            ),
            Memory::Device => leaf.modify(
                LEAF::ATTR_INDEX.val(MAIR_DEVICE) + LEAF::SH::OuterShareable + LEAF::XN::SET,
            ),
        }
        leaf.get()
    }
}

/// Physical address size in bits from ID_AA64MMFR0_EL1.PARange, capped at 48 (the
/// most a 4 KiB granule translates without LPA2). `None` for a reserved encoding.
pub fn pa_bits(pa_range: u64) -> Option<u32> {
    Some(match pa_range {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 | 6 => 48,
        _ => return None,
    })
}

/// The TCR_EL2.PS encoding for `bits` of physical address.
fn ps_encoding(bits: u32) -> u64 {
    match bits {
        0..=32 => 0,
        33..=36 => 1,
        37..=40 => 2,
        41..=42 => 3,
        43..=44 => 4,
        _ => 5,
    }
}

/// TCR_EL2 for an identity map of `va_bits` (= physical address bits): 4 KiB
/// granule, inner-shareable write-back table walks.
pub fn tcr(va_bits: u32) -> u64 {
    const RES1: u64 = (1 << 31) | (1 << 23);
    let t0sz = 64 - va_bits as u64;
    let irgn0_wb = 0b01 << 8;
    let orgn0_wb = 0b01 << 10;
    let sh0_inner = 0b11 << 12;
    // TG0 = 0b00: 4 KiB.
    RES1 | t0sz | irgn0_wb | orgn0_wb | sh0_inner | (ps_encoding(va_bits) << 16)
}

/// SCTLR_EL2 with the MMU, data and instruction caches on, SP alignment checks,
/// and write-implies-execute-never. Little-endian; no alignment checking.
pub fn sctlr_enabled() -> u64 {
    const RES1: u64 = (1 << 4)
        | (1 << 5)
        | (1 << 11)
        | (1 << 16)
        | (1 << 18)
        | (1 << 22)
        | (1 << 23)
        | (1 << 28)
        | (1 << 29);
    const M: u64 = 1 << 0;
    const C: u64 = 1 << 2;
    const SA: u64 = 1 << 3;
    const I: u64 = 1 << 12;
    const WXN: u64 = 1 << 19;
    RES1 | M | C | SA | I | WXN
}

/// Turns on the EL2 MMU and caches with tables rooted at `ttbr0`.
///
/// # Safety
/// The tables must identity-map every address the CPU touches from here on (code,
/// stack, data), with the caller's memory written back to RAM (tables included).
#[cfg(target_os = "none")]
pub unsafe fn enable(ttbr0: u64, tcr: u64, sctlr: u64) {
    use aarch64_cpu::registers::{MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
    use tock_registers::interfaces::Writeable;
    MAIR_EL2.set(MAIR);
    TCR_EL2.set(tcr);
    TTBR0_EL2.set(ttbr0);
    // SAFETY: TLB and I-cache invalidation plus barriers before the MMU turns on,
    // as the architecture requires; the caller vouches for the tables.
    unsafe {
        core::arch::asm!(
            "isb",
            "tlbi alle2",
            "ic iallu",
            "dsb nsh",
            "isb",
            options(nostack)
        );
    }
    SCTLR_EL2.set(sctlr);
    // SAFETY: synchronises the SCTLR_EL2 write.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_match_the_architecture() {
        // AF (bit 10), AP[1] RES1 (bit 6), SH inner (0b11 << 8), MAIR index 1, AP[2] RO.
        assert_eq!(
            Memory::Text.attributes(),
            1 << 10 | 1 << 6 | 3 << 8 | 1 << 2 | 1 << 7
        );
        assert_eq!(
            Memory::ReadOnly.attributes(),
            Memory::Text.attributes() | 1 << 54
        );
        assert_eq!(
            Memory::ReadWrite.attributes(),
            1 << 10 | 1 << 6 | 3 << 8 | 1 << 2 | 1 << 54
        );
        assert_eq!(
            Memory::Device.attributes(),
            1 << 10 | 1 << 6 | 2 << 8 | 1 << 54
        );
        for m in [
            Memory::Text,
            Memory::ReadOnly,
            Memory::ReadWrite,
            Memory::Device,
        ] {
            assert_eq!(m.attributes() & !super::super::table::ATTRIBUTE_MASK, 0);
        }
    }

    #[test]
    fn register_values() {
        assert_eq!(pa_bits(2), Some(40));
        assert_eq!(pa_bits(6), Some(48));
        assert_eq!(pa_bits(7), None);
        // 40-bit: T0SZ 24, PS 0b010, WB walks, inner shareable, RES1 bits.
        assert_eq!(
            tcr(40),
            0x8080_0000 | 24 | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | 2 << 16
        );
        assert_eq!(tcr(48) >> 16 & 7, 5);
        assert_eq!(
            sctlr_enabled(),
            0x30C5_0830 | 1 | 1 << 2 | 1 << 3 | 1 << 12 | 1 << 19
        );
        assert_eq!(MAIR & 0xff, 0x04);
        assert_eq!(MAIR >> (8 * MAIR_NORMAL) & 0xff, 0xff);
    }
}
