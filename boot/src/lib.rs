//! Ferry's first instructions at EL2.
//!
//! `boot` owns what runs before the EL2 core has a stack, a map and a logger, and
//! the mechanisms every later trap relies on:
//! - the Linux arm64 Image header and the primary entry (`entry.S`);
//! - the EL2 exception vectors that save a [`trap::TrapFrame`] (`vectors.S`);
//! - EL2 stage-1 translation: a page-table builder in plain Rust ([`mmu::table`])
//!   and the register settings that turn the MMU and caches on ([`mmu::el2`]);
//! - the secondary-CPU entry that PSCI CPU_ON jumps to ([`secondary`]);
//! - cache maintenance by address range ([`cache`]).
//!
//! `boot` knows no partitions and no board. It calls three functions the EL2 core
//! provides: `ferry_primary_entry(dtb, el, load_delta)`,
//! `ferry_secondary_entry(&SecondaryBoot)` and `ferry_trap(kind, &mut TrapFrame)`.
//!
//! The logic (table building, register values, frame layout) builds and is tested
//! on the host; only the instructions are target-only.
#![cfg_attr(not(test), no_std)]

pub mod cache;
pub mod context;
pub mod layout;
pub mod mmu;
pub mod secondary;
pub mod trap;

/// Size of the primary CPU's boot stack (in `.bss`).
pub const PRIMARY_STACK_SIZE: usize = 64 * 1024;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    include_str!("entry.S"),
    SB_MAIR = const core::mem::offset_of!(secondary::SecondaryBoot, mair),
    SB_TCR = const core::mem::offset_of!(secondary::SecondaryBoot, tcr),
    SB_TTBR0 = const core::mem::offset_of!(secondary::SecondaryBoot, ttbr0),
    SB_SCTLR = const core::mem::offset_of!(secondary::SecondaryBoot, sctlr),
    SB_STACK_TOP = const core::mem::offset_of!(secondary::SecondaryBoot, stack_top),
    SB_CPU_INDEX = const core::mem::offset_of!(secondary::SecondaryBoot, cpu_index),
    PRIMARY_STACK_SIZE = const PRIMARY_STACK_SIZE,
);

#[cfg(target_os = "none")]
core::arch::global_asm!(
    include_str!("vectors.S"),
    FRAME_SIZE = const core::mem::size_of::<trap::TrapFrame>(),
    FRAME_X30 = const core::mem::offset_of!(trap::TrapFrame, x) + 30 * 8,
    FRAME_SPSR = const core::mem::offset_of!(trap::TrapFrame, spsr),
);
