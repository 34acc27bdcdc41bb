//! ID register spaces of real (emulated) cores for host tests: what a guest read
//! from QEMU 10.0's `-cpu cortex-a53` and `-cpu max` (`virt`, no EL3, no MTE tag
//! memory) before Ferry trapped them (the hostile-sysreg guest's `id` probe, run
//! under Ferry without TID3). Zero registers are left out.

use super::IdSpace;

/// Index of (CRm, op2) in an [`IdSpace`].
const fn at(crm: usize, op2: usize) -> usize {
    crm * 8 + op2
}

/// QEMU `-cpu cortex-a53`.
pub const CORTEX_A53: IdSpace = IdSpace({
    let mut r = [0u64; 64];
    r[at(1, 0)] = 0x131; // ID_PFR0_EL1
    r[at(1, 1)] = 0x10011001; // ID_PFR1_EL1
    r[at(1, 2)] = 0x3000006; // ID_DFR0_EL1
    r[at(1, 4)] = 0x10101105; // ID_MMFR0_EL1
    r[at(1, 5)] = 0x40000000; // ID_MMFR1_EL1
    r[at(1, 6)] = 0x1260000; // ID_MMFR2_EL1
    r[at(1, 7)] = 0x2102211; // ID_MMFR3_EL1
    r[at(2, 0)] = 0x2101110; // ID_ISAR0_EL1
    r[at(2, 1)] = 0x13112111; // ID_ISAR1_EL1
    r[at(2, 2)] = 0x21232042; // ID_ISAR2_EL1
    r[at(2, 3)] = 0x1112131; // ID_ISAR3_EL1
    r[at(2, 4)] = 0x11142; // ID_ISAR4_EL1
    r[at(2, 5)] = 0x11121; // ID_ISAR5_EL1
    r[at(3, 0)] = 0x10110222; // MVFR0_EL1
    r[at(3, 1)] = 0x12111111; // MVFR1_EL1
    r[at(3, 2)] = 0x43; // MVFR2_EL1
    r[at(4, 0)] = 0x1000222; // ID_AA64PFR0_EL1
    r[at(5, 0)] = 0x10305106; // ID_AA64DFR0_EL1
    r[at(6, 0)] = 0x11120; // ID_AA64ISAR0_EL1
    r[at(7, 0)] = 0x1122; // ID_AA64MMFR0_EL1
    r
});

/// QEMU `-cpu max`: SVE, SME, FGT, HCX, RASv1p1, LOR, PMUv3p5, MOPS, ...
pub const MAX: IdSpace = IdSpace({
    let mut r = [0u64; 64];
    r[at(1, 0)] = 0x11020131; // ID_PFR0_EL1
    r[at(1, 1)] = 0x10011001; // ID_PFR1_EL1
    r[at(1, 2)] = 0x600000a; // ID_DFR0_EL1
    r[at(1, 4)] = 0x10101105; // ID_MMFR0_EL1
    r[at(1, 5)] = 0x40000000; // ID_MMFR1_EL1
    r[at(1, 6)] = 0x1260000; // ID_MMFR2_EL1
    r[at(1, 7)] = 0x2122211; // ID_MMFR3_EL1
    r[at(2, 0)] = 0x2101110; // ID_ISAR0_EL1
    r[at(2, 1)] = 0x13112111; // ID_ISAR1_EL1
    r[at(2, 2)] = 0x21232042; // ID_ISAR2_EL1
    r[at(2, 3)] = 0x1112131; // ID_ISAR3_EL1
    r[at(2, 4)] = 0x11142; // ID_ISAR4_EL1
    r[at(2, 5)] = 0x11011121; // ID_ISAR5_EL1
    r[at(2, 6)] = 0x20021110; // ID_MMFR4_EL1
    r[at(2, 7)] = 0x1111111; // ID_ISAR6_EL1
    r[at(3, 0)] = 0x10110222; // MVFR0_EL1
    r[at(3, 1)] = 0x13211111; // MVFR1_EL1
    r[at(3, 2)] = 0x43; // MVFR2_EL1
    r[at(3, 4)] = 0x11; // ID_PFR2_EL1
    r[at(3, 5)] = 0x10; // ID_DFR1_EL1
    r[at(3, 6)] = 0x2; // ID_MMFR5_EL1
    r[at(4, 0)] = 0x1301001121110222; // ID_AA64PFR0_EL1
    r[at(4, 1)] = 0x1001000121; // ID_AA64PFR1_EL1
    r[at(4, 4)] = 0x110110100210021; // ID_AA64ZFR0_EL1
    r[at(4, 5)] = 0x80f100fd00000000; // ID_AA64SMFR0_EL1
    r[at(5, 0)] = 0x100000001030560a; // ID_AA64DFR0_EL1
    r[at(6, 0)] = 0x1221111110212120; // ID_AA64ISAR0_EL1
    r[at(6, 1)] = 0x111211110211502; // ID_AA64ISAR1_EL1
    r[at(6, 2)] = 0x110012; // ID_AA64ISAR2_EL1
    r[at(7, 0)] = 0x2100032310201126; // ID_AA64MMFR0_EL1
    r[at(7, 1)] = 0x110112010312122; // ID_AA64MMFR1_EL1
    r[at(7, 2)] = 0x1221011112011011; // ID_AA64MMFR2_EL1
    r[at(7, 3)] = 0x1000000000000000; // ID_AA64MMFR3_EL1
    r
});
