//! Deliberate failures, chosen by the boot argument `ferry.selftest=<name>`, so the
//! test harness can check that each failure path ends the run as documented.

use crate::exit::{self, ExitCode};

/// Runs the self-test `name`, if any. `unmapped` is an address the EL2 map leaves
/// unmapped. Unknown names refuse the boot.
pub fn run(name: Option<&str>, unmapped: u64) {
    match name {
        None => {}
        Some("el2-fault") => {
            log::warn!("selftest: reading unmapped address {unmapped:#x} at EL2");
            // SAFETY: the address is unmapped at EL2, so the read faults before any
            // memory is touched; the trap handler reports it and ends the run.
            let value = unsafe { core::ptr::read_volatile(unmapped as *const u64) };
            log::error!(
                "selftest: the read of {unmapped:#x} returned {value:#x} instead of faulting"
            );
        }
        Some("panic") => panic!("selftest: deliberate panic"),
        Some(other) => exit::end(
            ExitCode::BootRefused,
            format_args!("unknown ferry.selftest={other:?} (known: el2-fault, panic)"),
        ),
    }
}
