//! `cpu-on-foreign`: PSCI must not reach outside the partition. CPU_ON of MPIDRs that
//! are not this partition's vCPUs (the vCPU count, count + 1, 0x100, 0x8000_0003) must
//! each return INVALID_PARAMETERS (-2). Also checks PSCI VERSION = 1.1, FEATURES(CPU_ON)
//! = 0, FEATURES(0x8600_1234) = NOT_SUPPORTED, MIGRATE_INFO_TYPE = 2, Ferry's hypercall
//! VERSION = `ferry_abi::hypercall::ABI_VERSION` (1) and, with bootarg `smc`, PSCI
//! VERSION over SMC too.
//!
//! Log: one `cpu-on-foreign: <call> = <value> ok|FAILED ...` line per check, then
//! `cpu-on-foreign: all <K> checks passed` and SYSTEM_OFF, or
//! `cpu-on-foreign: <F> of <K> checks FAILED` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::fmt;

use ferry_abi::hypercall::ABI_VERSION;
use ferry_partition_rt::psci::{self, Conduit, func, ret, ret_name};
use ferry_partition_rt::{self as rt, Boot, console, println, time};

rt::entry!(main);

/// A PSCI/hypercall function id Ferry does not implement (vendor hypervisor range).
const UNKNOWN_FID: u32 = 0x8600_1234;

/// A result as it reads best: errors by name, others in hex.
struct Show(i64);

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            v if v < 0 => write!(f, "{v} ({})", ret_name(v)),
            v => write!(f, "{v:#x}"),
        }
    }
}

#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    fn check(&mut self, what: fmt::Arguments<'_>, got: i64, want: i64) {
        if got == want {
            self.passed += 1;
            println!("cpu-on-foreign: {what} = {} ok", Show(got));
        } else {
            self.failed += 1;
            println!(
                "cpu-on-foreign: {what} = {} FAILED, expected {}",
                Show(got),
                Show(want)
            );
        }
    }
}

fn main(boot: &'static Boot) -> ! {
    let n = boot.cpus().len() as u64;
    let mut t = Tally::default();
    println!("cpu-on-foreign: {n} vCPUs in this partition");

    t.check(format_args!("PSCI VERSION"), psci::version(), 0x1_0001);
    t.check(
        format_args!("PSCI FEATURES(CPU_ON)"),
        psci::features(func::CPU_ON),
        0,
    );
    t.check(
        format_args!("PSCI FEATURES({UNKNOWN_FID:#x})"),
        psci::features(UNKNOWN_FID),
        ret::NOT_SUPPORTED,
    );
    t.check(
        format_args!("PSCI MIGRATE_INFO_TYPE"),
        psci::migrate_info_type(),
        2,
    );
    if rt::SMOKE {
        println!("cpu-on-foreign: hypercall VERSION skipped (smoke build, no Ferry)");
    } else {
        t.check(
            format_args!("hypercall VERSION"),
            console::ferry_version(),
            ABI_VERSION as i64,
        );
    }
    if boot.arg("smc").is_some() {
        t.check(
            format_args!("PSCI VERSION over SMC"),
            psci::call_via(Conduit::Smc, func::VERSION, 0, 0, 0),
            0x1_0001,
        );
    }

    for target in [n, n + 1, 0x100, 0x8000_0003] {
        t.check(
            format_args!("CPU_ON({target:#x})"),
            psci::cpu_on_raw(target, psci::secondary_entry(), 0xf0_7e16),
            ret::INVALID_PARAMETERS,
        );
    }
    // A vCPU wrongly started would announce itself from the runtime's secondary entry.
    time::delay_ms(50);

    if t.failed == 0 {
        println!("cpu-on-foreign: all {} checks passed", t.passed);
        psci::system_off()
    } else {
        println!(
            "cpu-on-foreign: {} of {} checks FAILED",
            t.failed,
            t.passed + t.failed
        );
        psci::system_reset()
    }
}
