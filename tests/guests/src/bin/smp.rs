//! `smp`: brings up every vCPU of its DT with PSCI CPU_ON and checks the PSCI state
//! machine: AFFINITY_INFO ON for each, ALREADY_ON for a second CPU_ON, one secondary's
//! CPU_OFF seen as AFFINITY_INFO OFF. Then `smp: <N> vCPUs ok` and SYSTEM_OFF; any
//! failure prints why (`FAIL: smp: ...`) and ends with SYSTEM_RESET.
//!
//! Log: `vCPU <k> up` per secondary, `vCPU <k>: CPU_OFF`, `smp: <N> vCPUs ok`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicUsize, Ordering};

use ferry_partition_rt::psci::{self, affinity, ret, ret_name};
use ferry_partition_rt::{self as rt, Boot, arch, fail, println, time};

rt::entry!(main);

/// How long the secondaries get to come up, and the one to go off, in ms.
const UP_DEADLINE_MS: u64 = 5000;
const OFF_DEADLINE_MS: u64 = 2000;

/// context_id = this | vCPU index, checked by each secondary.
const CONTEXT_MAGIC: u64 = 0x5eed_0000;

const NOBODY: usize = usize::MAX;

/// Secondaries that printed their line.
static UP: AtomicUsize = AtomicUsize::new(0);
/// The vCPU index asked to CPU_OFF.
static OFF_REQUEST: AtomicUsize = AtomicUsize::new(NOBODY);

fn secondary(context_id: u64) -> ! {
    let me = arch::vcpu_index();
    if context_id != CONTEXT_MAGIC | me as u64 {
        fail!(
            "smp: vCPU {me} got context_id {context_id:#x}, expected {:#x}",
            CONTEXT_MAGIC | me as u64
        );
    }
    println!("vCPU {me} up");
    UP.fetch_add(1, Ordering::AcqRel);
    arch::sev();
    loop {
        if OFF_REQUEST.load(Ordering::Acquire) == me {
            println!("vCPU {me}: CPU_OFF");
            let r = psci::cpu_off();
            fail!("smp: CPU_OFF on vCPU {me} returned {r} ({})", ret_name(r));
        }
        arch::wfe();
    }
}

fn main(boot: &'static Boot) -> ! {
    let me = arch::mpidr_affinity(arch::mpidr());
    let cpus = boot.cpus();
    let n = cpus.len();
    if n < 2 {
        fail!("smp: needs at least 2 vCPUs, the DT lists {n}");
    }
    if !cpus.contains(&me) {
        fail!("smp: my MPIDR {me:#x} is not among the DT's CPUs {cpus:x?}");
    }
    let others = || cpus.iter().copied().filter(move |&c| c != me);
    println!("smp: vCPU {} starting {} more", arch::vcpu_index(), n - 1);

    for c in others() {
        let r = psci::cpu_on(c, secondary, CONTEXT_MAGIC | (c & 0xff));
        if r != ret::SUCCESS {
            fail!("smp: CPU_ON({c:#x}) = {r} ({})", ret_name(r));
        }
    }

    let deadline = time::Deadline::after_ms(UP_DEADLINE_MS);
    while UP.load(Ordering::Acquire) < n - 1 {
        if deadline.passed() {
            fail!(
                "smp: only {} of {} secondaries up after {UP_DEADLINE_MS} ms",
                UP.load(Ordering::Acquire),
                n - 1
            );
        }
        core::hint::spin_loop();
    }

    for c in others() {
        let a = psci::affinity_info(c);
        if a != affinity::ON {
            fail!("smp: AFFINITY_INFO({c:#x}) = {a}, expected 0 (ON)");
        }
    }
    for c in others() {
        let r = psci::cpu_on(c, secondary, CONTEXT_MAGIC | (c & 0xff));
        if r != ret::ALREADY_ON {
            fail!(
                "smp: CPU_ON({c:#x}) of a running vCPU = {r} ({}), expected -4 (ALREADY_ON)",
                ret_name(r)
            );
        }
    }
    println!("smp: all {n} vCPUs ON, CPU_ON again says ALREADY_ON");

    let Some(leaver) = others().next_back() else {
        fail!("smp: no secondary")
    };
    OFF_REQUEST.store((leaver & 0xff) as usize, Ordering::Release);
    arch::sev();
    let deadline = time::Deadline::after_ms(OFF_DEADLINE_MS);
    loop {
        let a = psci::affinity_info(leaver);
        if a == affinity::OFF {
            break;
        }
        if deadline.passed() {
            fail!(
                "smp: AFFINITY_INFO({leaver:#x}) = {a} {OFF_DEADLINE_MS} ms after its \
                 CPU_OFF, expected 1 (OFF)"
            );
        }
        time::delay_ms(1);
    }
    for c in others().filter(|&c| c != leaver) {
        let a = psci::affinity_info(c);
        if a != affinity::ON {
            fail!("smp: AFFINITY_INFO({c:#x}) = {a} after another vCPU's CPU_OFF, expected 0");
        }
    }
    println!("smp: {n} vCPUs ok");
    psci::system_off()
}
