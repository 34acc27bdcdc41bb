//! What a secondary CPU needs before it can run Rust: the boot record.

/// Handed to a secondary CPU as PSCI CPU_ON's `context_id` (its physical address).
///
/// The CPU reads it with the MMU off, so the primary must clean it to the point of
/// coherency (`cache::clean_range`) before CPU_ON. The field offsets are
/// used by `entry.S` (through `offset_of!`); the size is fixed below.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SecondaryBoot {
    /// MAIR_EL2 value.
    pub mair: u64,
    /// TCR_EL2 value.
    pub tcr: u64,
    /// TTBR0_EL2 value (the shared EL2 page tables).
    pub ttbr0: u64,
    /// SCTLR_EL2 value (MMU and caches on).
    pub sctlr: u64,
    /// Initial stack pointer (16-byte aligned, one past the stack's end).
    pub stack_top: u64,
    /// Ferry's logical CPU index; written to TPIDR_EL2.
    pub cpu_index: u64,
    /// The CPU's MPIDR affinity, as the primary targeted it.
    pub mpidr: u64,
    /// Reserved; zero.
    pub _reserved: u64,
}

const _: () = assert!(core::mem::size_of::<SecondaryBoot>() == 64);

/// Physical address of the secondary entry point (`ferry_secondary_start`), to pass
/// to PSCI CPU_ON. Ferry runs identity-mapped, so this is also its virtual address.
#[cfg(target_os = "none")]
pub fn entry_point() -> u64 {
    unsafe extern "C" {
        fn ferry_secondary_start();
    }
    ferry_secondary_start as *const () as u64
}
