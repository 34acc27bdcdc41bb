//! `ferry-partition-rt`: the one tiny runtime every Ferry test guest links.
//!
//! A guest is a bare-metal EL1 program entered per the Linux arm64 boot protocol
//! (EL1h, MMU off, x0 = its DTB) on vCPU 0; secondaries enter at the PSCI CPU_ON
//! entry point with x0 = context_id. Before any Rust runs, the entry code in
//! [`start`](crate#boot-sequence) does on every vCPU:
//!
//! 1. masks interrupts, takes the vCPU index from MPIDR_EL1.Aff0 (Ferry presents
//!    vMPIDR = vCPU index; an index of [`MAX_VCPUS`] or more parks the vCPU) and its
//!    own [`STACK_SIZE`] stack;
//! 2. enables FP/SIMD (CPACR_EL1.FPEN = 0b11), since the target's code uses it;
//! 3. sets VBAR_EL1 to a vector table that prints ESR_EL1/ELR_EL1/FAR_EL1 and calls
//!    PSCI SYSTEM_RESET — except an IRQ from EL1h, which goes to the handler
//!    registered with [`irq::set_handler`] (or [`gic::set_handler`]) and returns;
//! 4. turns the stage-1 MMU and caches on with one static identity map ([`mmu`]):
//!    the first 4 GiB, `[0x4000_0000, 0xc000_0000)` Normal write-back (RAM, and a
//!    virtio backend's view of its frontend's RAM), the 2 MiB at 0x0b00_0000 Normal
//!    (a virtio backend's request page), the rest Device-nGnRnE. With the MMU off every access is Device and
//!    load/store-exclusives are unreliable on hardware; with it on, the atomics of
//!    the console lock and the guests' counters are sound;
//! 5. vCPU 0 only: zeroes `.bss`, then copies the DTB without FDT_NOP tokens (fdt
//!    0.1.5 mis-parses them; [`ferry_abi::dtb::copy_without_nops`], the routine Ferry
//!    runs on its own DTBs), parses it into a [`Boot`] and calls the guest's `main`
//!    (named with [`entry!`]); secondaries call the function given to
//!    [`psci::cpu_on`].
//!
//! The rest: [`console`] (`print!`/`println!` over Ferry's CONSOLE_WRITE hypercall,
//! whole lines under one lock), [`psci`] (HVC or SMC conduit), [`time`] (CNTVCT),
//! [`Boot`] (bootargs `key=value`, CPUs, memory), [`gic`] (a GICv3 driver: distributor,
//! redistributors, ICC_* CPU interface, SGIs, IRQ dispatch), [`irq`] (IRQ masking,
//! handlers, WFI), [`vtimer`] (the EL1 virtual timer), and a panic handler that prints
//! and calls SYSTEM_RESET. With the `smoke` feature the console is the PL011 at
//! 0x0900_0000 and the image is linked at 0x4020_0000, so a guest boots directly on
//! `qemu-system-aarch64 -M virt` (no Ferry) for smoke tests.
#![cfg_attr(not(test), no_std)]

pub mod arch;
pub mod args;
pub mod console;
pub mod dt;
pub mod gic;
pub mod irq;
pub mod lock;
pub mod mmu;
pub mod probe;
pub mod psci;
pub mod time;
pub mod vtimer;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod start;

pub use dt::Boot;

/// Most vCPUs a guest runs on; vCPU indices at or above it park at entry.
pub const MAX_VCPUS: usize = 8;

/// Stack bytes per vCPU.
pub const STACK_SIZE: usize = 16 * 1024;

/// True in the `smoke` build (PL011 console, no Ferry underneath).
pub const SMOKE: bool = cfg!(feature = "smoke");

/// Names the guest's `fn main(boot: &'static Boot) -> !`, which vCPU 0 runs once the
/// runtime is up.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The guest's main function, called by the runtime on vCPU 0.
        #[unsafe(no_mangle)]
        pub extern "Rust" fn __ferry_guest_main(boot: &'static $crate::Boot) -> ! {
            let main: fn(&'static $crate::Boot) -> ! = $main;
            main(boot)
        }
    };
}

/// Prints `FAIL: <message>` and ends the partition with PSCI SYSTEM_RESET.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::fail_with(format_args!($($arg)*))
    };
}

/// What [`fail!`] calls.
pub fn fail_with(args: core::fmt::Arguments<'_>) -> ! {
    console::print_last_words(format_args!("FAIL: {args}\n"));
    psci::system_reset()
}

/// The first byte after the image in memory: end of code, data, `.bss` and stacks,
/// 4 KiB-aligned.
pub fn image_end() -> usize {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        unsafe extern "C" {
            static __image_end: u8;
        }
        core::ptr::addr_of!(__image_end) as usize
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        0
    }
}

/// The first byte of the image (the link base).
pub fn image_start() -> usize {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        unsafe extern "C" {
            static __image_start: u8;
        }
        core::ptr::addr_of!(__image_start) as usize
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        0
    }
}

#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::print_last_words(format_args!(
        "panic on vCPU {}: {info}\n",
        arch::vcpu_index()
    ));
    psci::system_reset()
}
