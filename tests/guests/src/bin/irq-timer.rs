//! `irq-timer`: the EL1 virtual timer's interrupt (PPI 11, INTID 27) through the GIC.
//!
//! Sets up the GIC (GICD_CTLR = ARE | EnableGrp1; its redistributor woken, INTID 27
//! priority 0xa0 and enabled in GICR_ISENABLER0; ICC_PMR_EL1 = 0xff,
//! ICC_IGRPEN1_EL1 = 1), arms the timer `period_ms` ahead (CNTV_TVAL, CNTV_CTL) and
//! unmasks IRQs. Each IRQ is acknowledged (ICC_IAR1_EL1), the timer re-armed and the
//! IRQ ended (ICC_EOIR1_EL1); after the `count`-th the timer is stopped. Re-arming:
//! `rearm=cval` (the default) sets CNTV_CVAL = the compare value that fired +
//! period, so delivery latency does not add up and the mean interval is the period
//! whatever the host's load; `rearm=tval` sets CNTV_TVAL = period from the handler,
//! so every interval is period + delivery latency (under TCG on a loaded 2-core host
//! that latency reaches milliseconds; the 20% check then becomes a latency check).
//!
//! Checks: `count` IRQs within `2 * count * period_ms + 1000` ms; none taken before
//! CNTVCT reached CNTV_CVAL; no other INTID; no extra IRQ in the `2 * period_ms`
//! after the last; the mean interval between IRQs (CNTVCT at handler entry) within
//! ±20% of the period; the mean delivery latency (CNTVCT at handler entry minus the
//! CNTV_CVAL that fired) at most one period; x0-x17 and v0-v31 of the interrupted
//! code intact across every IRQ (the main loop spins in [`irq::register_check`]).
//!
//! Bootargs: `period_ms=<ms>` (default 10), `count=<n>` (default 50, at least 2),
//! `rearm=cval|tval` (default cval), `wfi` (wait in WFI instead of spinning: a lost
//! interrupt then hangs until the watchdog instead of failing on the deadline, and
//! registers are not checked).
//! Log: `irq-timer: intervals min <a> us, max <b> us, delivery latency mean <c> us,
//! max <d> us (re-armed with CNTV_CVAL)`, then
//! `irq-timer: <n> interrupts, mean interval <x> us (expected <y> us)` and
//! SYSTEM_OFF; a failure prints `FAIL: irq-timer: ...` and SYSTEM_RESETs.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, fail, irq, println, psci, time, vtimer};

rt::entry!(main);

static TARGET: AtomicU32 = AtomicU32::new(0);
static PERIOD: AtomicU64 = AtomicU64::new(0);
static TVAL_MODE: AtomicBool = AtomicBool::new(false);

static COUNT: AtomicU32 = AtomicU32::new(0);
static FIRST: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicU64 = AtomicU64::new(0);
static MIN_IV: AtomicU64 = AtomicU64::new(u64::MAX);
static MAX_IV: AtomicU64 = AtomicU64::new(0);
static LAT_SUM: AtomicU64 = AtomicU64::new(0);
static LAT_MAX: AtomicU64 = AtomicU64::new(0);
/// Timer IRQs taken while CNTVCT < CNTV_CVAL (not counted).
static EARLY: AtomicU32 = AtomicU32::new(0);
/// IRQs of other INTIDs, and the last such INTID.
static STRAY: AtomicU32 = AtomicU32::new(0);
static STRAY_ID: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid != VTIMER_INTID {
        STRAY.fetch_add(1, Ordering::Relaxed);
        STRAY_ID.store(intid, Ordering::Relaxed);
        return;
    }
    let now = time::ticks();
    let cval = vtimer::cval();
    if now < cval || vtimer::ctl() & vtimer::ENABLE == 0 {
        EARLY.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let latency = now - cval;
    LAT_SUM.fetch_add(latency, Ordering::Relaxed);
    LAT_MAX.fetch_max(latency, Ordering::Relaxed);
    let n = COUNT.load(Ordering::Relaxed) + 1;
    if n == 1 {
        FIRST.store(now, Ordering::Relaxed);
    } else {
        let iv = now - LAST.load(Ordering::Relaxed);
        MIN_IV.fetch_min(iv, Ordering::Relaxed);
        MAX_IV.fetch_max(iv, Ordering::Relaxed);
    }
    LAST.store(now, Ordering::Relaxed);
    let period = PERIOD.load(Ordering::Relaxed);
    if n >= TARGET.load(Ordering::Relaxed) {
        vtimer::stop();
    } else if TVAL_MODE.load(Ordering::Relaxed) {
        vtimer::arm_in(period);
    } else {
        vtimer::arm_at(cval + period);
    }
    COUNT.store(n, Ordering::Release);
}

fn us(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000) / time::freq()
}

fn main(boot: &'static Boot) -> ! {
    let period_ms = boot.arg_u64("period_ms").unwrap_or(10);
    let count = boot.arg_u64("count").unwrap_or(50);
    if period_ms == 0 || !(2..=100_000).contains(&count) {
        fail!("irq-timer: period_ms must be at least 1 and count 2..=100000");
    }
    let tval_mode = match boot.arg("rearm").unwrap_or("cval") {
        "tval" => true,
        "cval" => false,
        other => fail!("irq-timer: rearm={other:?}: use tval or cval"),
    };
    let use_wfi = boot.arg("wfi").is_some();
    let period = time::ms_to_ticks(period_ms);
    TARGET.store(count as u32, Ordering::Relaxed);
    PERIOD.store(period, Ordering::Relaxed);
    TVAL_MODE.store(tval_mode, Ordering::Relaxed);

    if let Err(e) = gic::init(boot) {
        fail!("irq-timer: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("irq-timer: GIC distributor: {e}");
    }
    if let Err(e) = gic::cpu_init() {
        fail!("irq-timer: GIC redistributor / CPU interface: {e}");
    }
    vtimer::stop();
    gic::set_private_priority(VTIMER_INTID, 0xa0);
    let prio = gic::private_priority(VTIMER_INTID);
    if prio != 0xa0 {
        fail!("irq-timer: INTID 27 priority reads {prio:#x} after writing 0xa0");
    }
    gic::enable_private(1 << VTIMER_INTID);
    let enabled = gic::private_enabled();
    if enabled & (1 << VTIMER_INTID) == 0 {
        fail!("irq-timer: GICR_ISENABLER0 = {enabled:#x} after enabling INTID 27");
    }
    gic::set_handler(handler);

    let deadline_ms = 2 * count * period_ms + 1000;
    let mut clobbered = 0;
    let deadline = time::Deadline::after_ms(deadline_ms);
    vtimer::arm_in(period);
    irq::enable();
    while (COUNT.load(Ordering::Acquire) as u64) < count {
        if deadline.passed() {
            irq::disable();
            fail!(
                "irq-timer: only {} of {count} interrupts within {deadline_ms} ms \
                 (CNTV_CTL={:#x}, GICR_ISPENDR0={:#x}, GICR_ISENABLER0={:#x}, \
                 ICC_RPR_EL1={:#x}, early {}, other INTIDs {})",
                COUNT.load(Ordering::Acquire),
                vtimer::ctl(),
                gic::private_pending(),
                gic::private_enabled(),
                gic::icc_rpr(),
                EARLY.load(Ordering::Relaxed),
                STRAY.load(Ordering::Relaxed)
            );
        }
        if use_wfi {
            irq::wfi();
        } else {
            clobbered += irq::register_check(20_000);
        }
    }
    // The handler stopped the timer at the last one: nothing more may come.
    time::delay_ms(2 * period_ms);
    irq::disable();
    vtimer::stop();
    gic::disable_private(1 << VTIMER_INTID);

    let n = COUNT.load(Ordering::Acquire) as u64;
    let early = EARLY.load(Ordering::Relaxed);
    let stray = STRAY.load(Ordering::Relaxed);
    if n != count {
        fail!("irq-timer: {n} interrupts, expected exactly {count} (one after the timer stopped)");
    }
    if early != 0 {
        fail!("irq-timer: {early} timer interrupts before CNTVCT reached CNTV_CVAL");
    }
    if clobbered != 0 {
        fail!(
            "irq-timer: {clobbered} times a register of the interrupted code changed across an IRQ"
        );
    }
    if stray != 0 {
        fail!(
            "irq-timer: {stray} interrupts of other INTIDs (last {})",
            STRAY_ID.load(Ordering::Relaxed)
        );
    }
    let span = LAST.load(Ordering::Relaxed) - FIRST.load(Ordering::Relaxed);
    let mean = span / (n - 1);
    let mean_us = us(mean);
    let expected_us = period_ms * 1000;
    println!(
        "irq-timer: intervals min {} us, max {} us, delivery latency mean {} us, max {} us \
         (re-armed with {})",
        us(MIN_IV.load(Ordering::Relaxed)),
        us(MAX_IV.load(Ordering::Relaxed)),
        us(LAT_SUM.load(Ordering::Relaxed) / n),
        us(LAT_MAX.load(Ordering::Relaxed)),
        if tval_mode { "CNTV_TVAL" } else { "CNTV_CVAL" }
    );
    let latency_us = us(LAT_SUM.load(Ordering::Relaxed) / n);
    if latency_us > expected_us {
        fail!(
            "irq-timer: mean delivery latency {latency_us} us is more than the period \
             ({expected_us} us)"
        );
    }
    if mean_us * 5 < expected_us * 4 || mean_us * 5 > expected_us * 6 {
        fail!(
            "irq-timer: {n} interrupts, mean interval {mean_us} us: not within 20% of \
             {expected_us} us"
        );
    }
    println!("irq-timer: {n} interrupts, mean interval {mean_us} us (expected {expected_us} us)");
    psci::system_off()
}
