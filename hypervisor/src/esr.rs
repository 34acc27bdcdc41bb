//! Exception syndromes (ESR_EL2): the class and a name for logs.

use aarch64_cpu::registers::ESR_EL2::EC::Value as Ec;

/// The exception classes Ferry handles from guests, from aarch64-cpu's ESR_EL2.EC.
pub mod ec {
    use super::Ec;
    /// HVC from AArch64.
    pub const HVC64: u8 = Ec::HVC64 as u8;
    /// SMC from AArch64 (trapped).
    pub const SMC64: u8 = Ec::SMC64 as u8;
    /// MSR/MRS/system instruction (trapped).
    pub const SYSREG: u8 = Ec::TrappedMsrMrs as u8;
    /// Instruction abort from a lower EL.
    pub const INSTRUCTION_ABORT_LOWER: u8 = Ec::InstrAbortLowerEL as u8;
    /// Data abort from a lower EL.
    pub const DATA_ABORT_LOWER: u8 = Ec::DataAbortLowerEL as u8;
}

/// ESR_ELx.EC: the exception class, bits 31:26.
pub fn class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// ESR_ELx.IL: a 32-bit instruction trapped, bit 25.
pub fn is_32bit_instruction(esr: u64) -> bool {
    esr & (1 << 25) != 0
}

/// ESR_ELx.ISS: the class-specific syndrome, bits 24:0.
pub fn syndrome(esr: u64) -> u32 {
    (esr & 0x1ff_ffff) as u32
}

/// The ESR_EL1 a guest sees for a synchronous external abort injected in place of
/// the abort with syndrome `esr_el2` that it took from PSTATE `spsr`: a data abort
/// (EC 0x24 from EL0, 0x25 from EL1; WnR kept) or an instruction abort (0x20,
/// 0x21), IL set, status 0x10 (synchronous external abort, not on a table walk).
pub fn external_abort_for_guest(esr_el2: u64, spsr: u64) -> u64 {
    let from_el1 = spsr >> 4 & 1 == 0 && spsr & 0b1100 != 0;
    let instruction = class(esr_el2) == ec::INSTRUCTION_ABORT_LOWER;
    let class: u64 = match instruction {
        true => 0x20,
        false => 0x24,
    } | u64::from(from_el1);
    let wnr = if instruction { 0 } else { esr_el2 & (1 << 6) };
    class << 26 | 1 << 25 | wnr | 0x10
}

/// A short name for an exception class.
pub fn class_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "WFI/WFE",
        0x07 => "SIMD/FP access",
        0x0e => "illegal execution state",
        0x15 => "SVC from AArch64",
        0x16 => "HVC from AArch64",
        0x17 => "SMC from AArch64",
        0x18 => "MSR/MRS/system instruction",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at EL2",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at EL2",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// For aborts (EC 0x20, 0x21, 0x24, 0x25): the fault status code, `ISS[5:0]`, named.
pub fn abort_status_name(esr: u64) -> Option<&'static str> {
    if !matches!(class(esr), 0x20 | 0x21 | 0x24 | 0x25) {
        return None;
    }
    Some(match esr & 0x3f {
        0b000000..=0b000011 => "address size fault",
        0b000100..=0b000111 => "translation fault",
        0b001000..=0b001011 => "access flag fault",
        0b001100..=0b001111 => "permission fault",
        0b010000 => "synchronous external abort",
        0b100001 => "alignment fault",
        0b110000 => "TLB conflict abort",
        _ => "other fault",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_external_abort_is_what_hardware_gives() {
        let write_from_el1h = 0x93880006u64 | 1 << 6;
        assert_eq!(
            external_abort_for_guest(write_from_el1h, 0x3c5),
            0x9600_0050
        );
        // A read from EL0: EC 0x24, WnR clear.
        assert_eq!(external_abort_for_guest(0x9388_0006, 0x0), 0x9200_0010);
        // An instruction fetch from EL1t: EC 0x21.
        assert_eq!(external_abort_for_guest(0x8200_000e, 0x4), 0x8600_0010);
        // AArch32 EL0 (M[4] set): a lower EL.
        assert_eq!(external_abort_for_guest(0x8200_000e, 0x10), 0x8200_0010);
    }

    #[test]
    fn decodes_a_data_abort_at_el2() {
        // EC 0x25, IL, translation fault level 0.
        let esr = 0x9600_0004;
        assert_eq!(class(esr), 0x25);
        assert!(is_32bit_instruction(esr));
        assert_eq!(syndrome(esr), 0x4);
        assert_eq!(class_name(class(esr)), "data abort at EL2");
        assert_eq!(abort_status_name(esr), Some("translation fault"));
    }

    #[test]
    fn handled_classes_are_the_architected_numbers() {
        assert_eq!(
            [
                ec::HVC64,
                ec::SMC64,
                ec::SYSREG,
                ec::INSTRUCTION_ABORT_LOWER,
                ec::DATA_ABORT_LOWER
            ],
            [0x16, 0x17, 0x18, 0x20, 0x24]
        );
    }

    #[test]
    fn other_classes() {
        assert_eq!(class_name(class(0x5a00_0000)), "HVC from AArch64");
        assert_eq!(abort_status_name(0x5a00_0000), None);
        assert_eq!(class_name(0x3f), "other");
        assert_eq!(abort_status_name(0x9600_004f), Some("permission fault"));
    }
}
