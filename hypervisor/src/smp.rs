//! Bringing up the other cores: PSCI CPU_ON for every CPU of the host device tree,
//! each with its own stack and boot record, then a bounded wait for all of them.

use alloc::boxed::Box;
use alloc::vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use ferry_boot::secondary::{self, SecondaryBoot};
use ferry_platform::hostdt::Cpu;
use ferry_platform::psci;

use crate::cpu;
use crate::exit::{self, ExitCode};

/// Stack size of each secondary CPU.
const SECONDARY_STACK_SIZE: usize = 32 * 1024;

/// How long the primary waits for secondaries to report, in milliseconds.
const ONLINE_DEADLINE_MS: u64 = 5_000;

/// CPUs that have finished their bring-up, the primary included.
static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// Counts the calling CPU as online.
pub fn mark_online() {
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// Starts every CPU in `cpus` except `primary` (their logical index is their
/// position) through PSCI `conduit` and waits, with a deadline, until they are online. Returns how many
/// CPUs are online in the end, the primary included.
pub fn start_secondaries(
    cpus: &[Cpu],
    primary: usize,
    conduit: psci::Method,
    template: SecondaryBoot,
) -> usize {
    let mut started = 0;
    for (index, target) in cpus.iter().enumerate() {
        if index == primary {
            continue;
        }
        if !target.enable_method_psci {
            log::error!(
                "cpu{index} (MPIDR {:#x}): its enable-method is not \"psci\"; Ferry can only start CPUs through PSCI",
                target.mpidr
            );
            continue;
        }
        let stack = vec![0u8; SECONDARY_STACK_SIZE].leak();
        let record = Box::leak(Box::new(SecondaryBoot {
            stack_top: (stack.as_ptr() as u64 + SECONDARY_STACK_SIZE as u64) & !0xf,
            cpu_index: index as u64,
            mpidr: target.mpidr,
            ..template
        }));
        let record_pa = record as *const SecondaryBoot as u64;
        // The CPU reads its record with the MMU off: push it out to RAM.
        ferry_boot::cache::clean_range(record_pa, core::mem::size_of::<SecondaryBoot>() as u64);
        let ret = psci::call(
            conduit,
            psci::function::CPU_ON,
            target.mpidr,
            secondary::entry_point(),
            record_pa,
        );
        match psci::Error::check(ret) {
            Ok(_) => started += 1,
            Err(e) => log::error!(
                "cpu{index} (MPIDR {:#x}): PSCI CPU_ON failed: {}{}",
                target.mpidr,
                e.name(),
                match e {
                    psci::Error::InvalidParameters =>
                        " (firmware knows no CPU with this MPIDR: the device tree lists more CPUs than the machine has?)",
                    psci::Error::AlreadyOn => " (the CPU is already running: who started it?)",
                    _ => "",
                }
            ),
        }
    }
    let expected = started + 1;
    let deadline = cpu::counter() + ONLINE_DEADLINE_MS * cpu::counter_frequency() / 1000;
    while ONLINE.load(Ordering::Acquire) < expected && cpu::counter() < deadline {
        core::hint::spin_loop();
    }
    ONLINE.load(Ordering::Acquire)
}

/// Where a secondary CPU enters Rust, MMU and caches already on (`entry.S`).
#[unsafe(no_mangle)]
extern "C" fn ferry_secondary_entry(boot: &SecondaryBoot) -> ! {
    let Some(gic) = crate::physgic::GIC.get() else {
        exit::end(
            ExitCode::BootRefused,
            format_args!("cpu{} started before the GIC", boot.cpu_index),
        );
    };
    match gic.init_cpu(cpu::mpidr()) {
        Ok(rd) => crate::irq::enable_private(gic, rd),
        Err(e) => exit::end(
            ExitCode::BootRefused,
            format_args!("cpu{}: GIC: {e}", boot.cpu_index),
        ),
    }
    if cpu::mpidr() != boot.mpidr {
        log::warn!(
            "started as MPIDR {:#x} but reports {:#x}",
            boot.mpidr,
            cpu::mpidr()
        );
    }
    log::info!("online (MPIDR {:#x})", cpu::mpidr());
    crate::vcpu::set_stack_top(boot.stack_top);
    mark_online();
    crate::vcpu::park()
}
