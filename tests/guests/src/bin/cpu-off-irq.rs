//! `cpu-off-irq`: a vCPU switched off while it handles its timer interrupt, then
//! switched on again, gets its timer interrupts in its second life.
//!
//! vCPU 0 sets up the distributor and starts vCPU 1 (CPU_ON). vCPU 1 sets up its
//! redistributor and CPU interface, enables the virtual timer's PPI (INTID 27) and
//! arms the timer; its first timer interrupt is acknowledged and, inside the
//! handler (never ended: no EOI), vCPU 1 calls CPU_OFF. vCPU 0 waits for
//! AFFINITY_INFO OFF and starts vCPU 1 again, which arms its timer and counts
//! `count` interrupts. The hardware-linked interrupt the first life left active
//! must not keep the physical timer interrupt active (it would never fire again).
//!
//! Bootargs: `period_ms=<ms>` (default 5), `count=<n>` (default 10).
//! Log: `cpu-off-irq: vCPU 1 off inside its timer handler`, then
//! `cpu-off-irq: <n> timer interrupts after the restart` and SYSTEM_OFF; a failure
//! prints `FAIL: cpu-off-irq: ...` and SYSTEM_RESETs.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::psci::{self, affinity, ret, ret_name};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, time, vtimer};

rt::entry!(main);

/// Which life vCPU 1 is in (its CPU_ON context).
static LIFE: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts vCPU 1 took in its second life.
static COUNT: AtomicU32 = AtomicU32::new(0);
/// Interrupts of other INTIDs.
static STRAY: AtomicU32 = AtomicU32::new(0);
/// Interrupts vCPU 1 should take in its second life, and their period in ticks.
static TARGET: AtomicU32 = AtomicU32::new(0);
static PERIOD: AtomicU64 = AtomicU64::new(0);

const DEADLINE_MS: u64 = 5000;

fn handler(intid: u32) {
    if intid != VTIMER_INTID {
        STRAY.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if LIFE.load(Ordering::Acquire) == 1 {
        // Off with the interrupt acknowledged and never ended.
        vtimer::stop();
        let r = psci::cpu_off();
        fail!(
            "cpu-off-irq: CPU_OFF in the handler returned {r} ({})",
            ret_name(r)
        );
    }
    let n = COUNT.fetch_add(1, Ordering::AcqRel) + 1;
    if n >= TARGET.load(Ordering::Relaxed) {
        vtimer::stop();
    } else {
        vtimer::arm_in(PERIOD.load(Ordering::Relaxed));
    }
}

fn secondary(life: u64) -> ! {
    LIFE.store(life, Ordering::Release);
    if let Err(e) = gic::cpu_init() {
        fail!("cpu-off-irq: vCPU 1 (life {life}): GIC redistributor / CPU interface: {e}");
    }
    vtimer::stop();
    gic::set_private_priority(VTIMER_INTID, 0xa0);
    gic::enable_private(1 << VTIMER_INTID);
    gic::set_handler(handler);
    vtimer::arm_in(PERIOD.load(Ordering::Relaxed));
    irq::enable();
    loop {
        irq::wfi();
    }
}

/// Waits until AFFINITY_INFO of `target` says `want`.
fn wait_affinity(target: u64, want: i64, what: &str) {
    let deadline = time::Deadline::after_ms(DEADLINE_MS);
    loop {
        let a = psci::affinity_info(target);
        if a == want {
            return;
        }
        if deadline.passed() {
            fail!("cpu-off-irq: AFFINITY_INFO({target:#x}) = {a} {DEADLINE_MS} ms after {what}");
        }
        time::delay_ms(1);
    }
}

fn main(boot: &'static Boot) -> ! {
    let period_ms = boot.arg_u64("period_ms").unwrap_or(5).max(1);
    let count = boot.arg_u64("count").unwrap_or(10).clamp(1, 10_000) as u32;
    PERIOD.store(time::ms_to_ticks(period_ms), Ordering::Relaxed);
    TARGET.store(count, Ordering::Relaxed);
    let Some(&other) = boot
        .cpus()
        .iter()
        .find(|&&c| c != arch::mpidr_affinity(arch::mpidr()))
    else {
        fail!("cpu-off-irq: needs 2 vCPUs");
    };
    if let Err(e) = gic::init(boot) {
        fail!("cpu-off-irq: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("cpu-off-irq: GIC distributor: {e}");
    }
    for life in [1u64, 2] {
        let r = psci::cpu_on(other, secondary, life);
        if r != ret::SUCCESS {
            fail!(
                "cpu-off-irq: CPU_ON({other:#x}) for life {life} = {r} ({})",
                ret_name(r)
            );
        }
        if life == 1 {
            wait_affinity(
                other,
                affinity::OFF,
                "its start (it powers off in its timer handler)",
            );
            println!("cpu-off-irq: vCPU 1 off inside its timer handler");
        }
    }
    let deadline = time::Deadline::after_ms(DEADLINE_MS + 2 * u64::from(count) * period_ms);
    while COUNT.load(Ordering::Acquire) < count {
        if deadline.passed() {
            fail!(
                "cpu-off-irq: {} of {count} timer interrupts after the restart (the one \
                 left active by CPU_OFF blocks the physical timer interrupt?)",
                COUNT.load(Ordering::Acquire)
            );
        }
        time::delay_ms(1);
    }
    let stray = STRAY.load(Ordering::Relaxed);
    if stray != 0 {
        fail!("cpu-off-irq: {stray} interrupts of other INTIDs");
    }
    println!("cpu-off-irq: {count} timer interrupts after the restart");
    psci::system_off()
}
