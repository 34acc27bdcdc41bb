//! `aarch32`: exceptions to EL2 from a partition's AArch32 EL0. Partitions run
//! AArch64 EL1, but the hardware may let EL0 run AArch32 (ID_AA64PFR0_EL1.EL0 = 2).
//! Exceptions from there reach Ferry through its "lower EL, AArch64" vectors (the
//! level below EL2, EL1, uses AArch64) but with AArch32 syndromes and state: a
//! physical interrupt while AArch32 EL0 runs must be served as any other, and a
//! stage-2 fault from AArch32 EL0 must stop this partition, never Ferry.
//!
//! The probe maps an EL0-executable, read-only alias of its RAM at 0xc000_0000 and
//! makes 0x8000_0000 (no memory of this partition) EL0-accessible at stage 1, arms
//! its virtual timer (PPI 27, enabled in its vGIC) to fire in 2 ms, points
//! VBAR_EL1 at its own vectors and ERETs to A32 code at EL0 with IRQs masked at
//! EL0: `mrc p14, 0, r0, c0, c1, 0` (DBGDSCRint, the DCC status: MDCR_EL2.TDA
//! traps it) must be UNDEFINED at EL1 (Ferry emulates no AArch32 register: EC 0
//! reported to the guest's "lower EL, AArch32" vector, which logs it and returns
//! to EL0 after it); then `subs r2, r2, #1; bne` 10^8 times (the timer's physical
//! interrupt reaches EL2 meanwhile), then `ldr r0, [r1]` of 0x8000_0000, a stage-2
//! fault. It never returns: the expected end is Ferry stopping this partition (its
//! fault code). Without AArch32 EL0 it says so and passes.

use core::cell::UnsafeCell;

use ferry_partition_rt::{Boot, fail, gic, println, time, vtimer};

use crate::Checks;
use crate::code;
use crate::probes::{PFR0, field, id_reg};

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: only vCPU 0 writes it, before it is used as a translation table.
unsafe impl Sync for Table {}

static L1: Table = Table(UnsafeCell::new([0; 512]));

/// Block descriptor bits: valid block, AttrIndx 1 (Normal), inner shareable, AF.
const NORMAL_BLOCK: u64 = 0b01 | 1 << 2 | 0b11 << 8 | 1 << 10;
/// AP[2:1] = 01: EL1 and EL0 read/write.
const AP_EL0_RW: u64 = 0b01 << 6;
/// AP[2:1] = 11: EL1 and EL0 read-only.
const AP_RO: u64 = 0b11 << 6;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// Where EL0 sees this partition's RAM (read-only, executable).
const ALIAS: u64 = 0xc000_0000;
/// An address outside this partition, EL0-accessible at stage 1.
const OUTSIDE: u64 = 0x8000_0000;

/// The A32 program: read the DCC status, count r2 down, then load from r1.
const A32: [u32; 5] = [
    0xee10_0e11, // mrc  p14, 0, r0, c0, c1, 0 (DBGDSCRint)
    0xe252_2001, // subs r2, r2, #1
    0x1aff_fffd, // bne  <subs>
    0xe591_0000, // ldr  r0, [r1]
    0xeaff_fffe, // b    .
];

/// Where the vectors go in the code page (VBAR_EL1 needs 2 KiB alignment).
const VECTORS: usize = 0x800;
/// The loop count (r2).
const LOOPS: u64 = 100_000_000;
/// SPSR_EL1 for AArch32 User with A, I and F masked.
const SPSR_USR: u64 = 0x1d0;

/// The code page: the A32 program at 0, at [`VECTORS`] 16 vector entries, each
/// `mrs x0, esr_el1; mrs x1, elr_el1; mov x2, #<index>` and a jump to
/// [`el1_vector`].
fn program() -> [u32; VECTORS / 4 + 16 * 32] {
    let mut words = [0xd503_201f; VECTORS / 4 + 16 * 32]; // nop
    words[..A32.len()].copy_from_slice(&A32);
    let target = el1_vector as extern "C" fn(u64, u64, u64) -> ! as usize as u64;
    for k in 0..16u32 {
        let at = VECTORS / 4 + 32 * k as usize;
        let movk = |hw: u32| 0xf280_0010 | hw << 21 | ((target >> (16 * hw)) as u32 & 0xffff) << 5;
        let entry = [
            0xd538_5200,                                 // mrs  x0, esr_el1
            0xd538_4021,                                 // mrs  x1, elr_el1
            0xd280_0002 | k << 5,                        // movz x2, #k
            0xd280_0010 | (target as u32 & 0xffff) << 5, // movz x16, #target[15:0]
            movk(1),
            movk(2),
            movk(3),
            0xd61f_0200, // br   x16
        ];
        words[at..at + entry.len()].copy_from_slice(&entry);
    }
    words
}

/// Where every exception to EL1 lands once EL0 runs: an UNDEFINED DCC read from
/// AArch32 EL0 (vector 12, "lower EL, AArch32, synchronous") is the expected one;
/// back to EL0 after it. Anything else fails the probe.
extern "C" fn el1_vector(esr: u64, elr: u64, index: u64) -> ! {
    let ec = esr >> 26 & 0x3f;
    if index != 12 || ec != 0 {
        fail!(
            "aarch32: exception at EL1 from vector {index}: ESR_EL1 {esr:#x} (EC {ec:#x}), ELR_EL1 {elr:#x}; expected the DCC read UNDEFINED"
        );
    }
    println!("aarch32: MRC p14 DBGDSCRint at EL0: UNDEFINED (ESR_EL1 {esr:#x}, ELR_EL1 {elr:#x})");
    let next = elr + if esr & 1 << 25 != 0 { 4 } else { 2 };
    // SAFETY: back to AArch32 EL0 after the UNDEFINED instruction, with the
    // registers the program expects (r1 = OUTSIDE, r2 = LOOPS); this EL1 stack is
    // abandoned (the partition ends at EL0).
    unsafe {
        core::arch::asm!(
            "msr elr_el1, {next}",
            "msr spsr_el1, {spsr}",
            "mov x1, {outside}",
            "mov x2, {loops}",
            "eret",
            next = in(reg) next,
            spsr = in(reg) SPSR_USR,
            outside = in(reg) OUTSIDE,
            loops = in(reg) LOOPS,
            options(noreturn)
        )
    }
}

/// The `aarch32` probe; returns only if the core has no AArch32 EL0.
pub fn aarch32(checks: &mut Checks, boot: &Boot) {
    let pfr0 = id_reg(checks, "ID_AA64PFR0_EL1", PFR0);
    if field(pfr0, 0) != 2 {
        println!("aarch32: ID_AA64PFR0_EL1 {pfr0:#x}: no AArch32 at EL0, nothing to probe");
        return;
    }
    let setup = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init());
    checks.check(setup.is_ok(), format_args!("GIC set-up: {setup:?}"));
    gic::enable_private(1 << gic::VTIMER_INTID);
    let ttbr0 = map_el0();
    code::load_raw(&program());
    let page = code::slot_address(0);
    let entry = ALIAS + (page - 0x4000_0000);
    println!(
        "aarch32: entering AArch32 EL0 at {entry:#x}: a DCC read, {LOOPS} loops with the timer firing, then a load from {OUTSIDE:#x}"
    );
    vtimer::arm_at(time::ticks() + time::ms_to_ticks(2));
    // SAFETY: switches to a table that maps what the runtime's does plus the two
    // EL0 blocks and to this probe's vectors, then leaves EL1 for good: ELR_EL1 =
    // the A32 code (EL0 alias), SPSR_EL1 = AArch32 User with A, I, F masked,
    // r1 = OUTSIDE, r2 = LOOPS.
    unsafe {
        core::arch::asm!(
            "msr ttbr0_el1, {ttbr0}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "msr vbar_el1, {vbar}",
            "isb",
            "msr elr_el1, {entry}",
            "msr spsr_el1, {spsr}",
            "mov x1, {outside}",
            "mov x2, {loops}",
            "eret",
            ttbr0 = in(reg) ttbr0,
            vbar = in(reg) page + VECTORS as u64,
            entry = in(reg) entry,
            spsr = in(reg) SPSR_USR,
            outside = in(reg) OUTSIDE,
            loops = in(reg) LOOPS,
            options(noreturn)
        )
    }
}

/// A level-1 table like the runtime's (its entries 0 and 1: devices and RAM, EL1
/// only) plus OUTSIDE (EL0 read/write, never executable) and ALIAS (this RAM,
/// read-only, EL0-executable). Returns its address for TTBR0_EL1.
fn map_el0() -> u64 {
    let current: u64;
    // SAFETY: reads TTBR0_EL1.
    unsafe { core::arch::asm!("mrs {}, ttbr0_el1", out(reg) current, options(nomem, nostack)) };
    let base = current & 0x0000_ffff_ffff_f000;
    let table = L1.0.get().cast::<u64>();
    for i in 0..2 {
        // SAFETY: the runtime's level-1 table (identity-mapped RAM) and ours.
        unsafe {
            table
                .add(i)
                .write_volatile((base as *const u64).add(i).read_volatile())
        };
    }
    // SAFETY: entries 2 and 3 of our table.
    unsafe {
        table
            .add(2)
            .write_volatile(OUTSIDE | NORMAL_BLOCK | AP_EL0_RW | PXN | UXN);
        table
            .add(3)
            .write_volatile(0x4000_0000 | NORMAL_BLOCK | AP_RO | PXN);
        core::arch::asm!("dsb ish", options(nostack));
    }
    table as u64
}
