//! `timers`: the EL1 virtual and physical timers as the Arm architecture describes
//! them (D12.2: the output is ENABLE && ISTATUS && !IMASK, level-sensitive, the
//! virtual timer on PPI 11 = INTID 27, the physical on PPI 14 = INTID 30), checked
//! through Ferry's vGIC, each timer in turn:
//!
//! 1. `fires`: enabled and expired, its interrupt arrives, once, not before the
//!    compare value (the handler stops the timer).
//! 2. `disabled`: expired but ENABLE = 0: no interrupt, not pending in GICR_ISPENDR0.
//! 3. `masked`: expired with IMASK = 1: ISTATUS reads 1, no interrupt, not pending.
//! 4. `pending follows the output` (its PPI disabled in GICR_ISENABLER0): pending
//!    while asserted; clear once disabled; pending again when re-enabled; clear when
//!    masked; pending when unmasked; clear once re-armed into the future.
//! 5. `withdrawn`: expired while PSTATE.I masks IRQs (its interrupt reaches the
//!    vCPU interface), then disabled: not pending, and no interrupt once IRQs are
//!    unmasked. (The read of GICR_ISPENDR0 in between is what makes Ferry look at
//!    the line again: without any exit, a vCPU may still take an interrupt
//!    signalled before it disabled the timer, docs/partitions.md.)
//! 6. `tval+wfi`: with IRQs masked in PSTATE, a TVAL write then WFI wakes when the
//!    timer expires; unmasked, the interrupt is taken once.
//!
//! Log: `timers: <timer>: <check> ok` per check, then `timers: all 12 checks
//! passed` and SYSTEM_OFF; a failure prints `FAIL: timers: ...` and resets.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_partition_rt::{self as rt, Boot, fail, gic, irq, println, psci, time};

rt::entry!(main);

/// One EL1 timer's registers.
struct Timer {
    name: &'static str,
    intid: u32,
    ctl: fn() -> u64,
    set_ctl: fn(u64),
    set_cval: fn(u64),
    set_tval: fn(u64),
    count: fn() -> u64,
}

macro_rules! sysreg {
    ($get:ident, $set:ident, $name:literal) => {
        #[allow(dead_code)]
        fn $get() -> u64 {
            let v: u64;
            // SAFETY: reads one of this vCPU's timer registers.
            unsafe { core::arch::asm!("isb", concat!("mrs {}, ", $name), out(reg) v) };
            v
        }
        fn $set(v: u64) {
            // SAFETY: writes one of this vCPU's timer registers.
            unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v) };
        }
    };
}

macro_rules! counter {
    ($get:ident, $name:literal) => {
        fn $get() -> u64 {
            let v: u64;
            // SAFETY: reads a counter.
            unsafe { core::arch::asm!("isb", concat!("mrs {}, ", $name), out(reg) v) };
            v
        }
    };
}

sysreg!(cntv_ctl, set_cntv_ctl, "cntv_ctl_el0");
sysreg!(cntv_cval, set_cntv_cval, "cntv_cval_el0");
sysreg!(cntv_tval, set_cntv_tval, "cntv_tval_el0");
counter!(cntvct, "cntvct_el0");
sysreg!(cntp_ctl, set_cntp_ctl, "cntp_ctl_el0");
sysreg!(cntp_cval, set_cntp_cval, "cntp_cval_el0");
sysreg!(cntp_tval, set_cntp_tval, "cntp_tval_el0");
counter!(cntpct, "cntpct_el0");

const TIMERS: [Timer; 2] = [
    Timer {
        name: "virtual",
        intid: 27,
        ctl: cntv_ctl,
        set_ctl: set_cntv_ctl,
        set_cval: set_cntv_cval,
        set_tval: set_cntv_tval,
        count: cntvct,
    },
    Timer {
        name: "physical",
        intid: 30,
        ctl: cntp_ctl,
        set_ctl: set_cntp_ctl,
        set_cval: set_cntp_cval,
        set_tval: set_cntp_tval,
        count: cntpct,
    },
];

const ENABLE: u64 = 1;
const IMASK: u64 = 2;
const ISTATUS: u64 = 4;

/// Interrupts taken, per INTID 27 / 30 / other.
static TAKEN: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];
/// Taken before the compare value was reached, or with the output not asserted.
static EARLY: AtomicU32 = AtomicU32::new(0);
/// The compare value of the timer armed (for the early check).
static ARMED_AT: AtomicU64 = AtomicU64::new(0);

fn slot(intid: u32) -> usize {
    match intid {
        27 => 0,
        30 => 1,
        _ => 2,
    }
}

fn handler(intid: u32) {
    let n = slot(intid);
    if n < 2 {
        let t = &TIMERS[n];
        let ctl = (t.ctl)();
        if ctl & (ENABLE | IMASK | ISTATUS) != ENABLE | ISTATUS
            || (t.count)() < ARMED_AT.load(Ordering::Relaxed)
        {
            EARLY.fetch_add(1, Ordering::Relaxed);
        }
        (t.set_ctl)(0);
    }
    TAKEN[n].fetch_add(1, Ordering::Relaxed);
}

fn taken(t: &Timer) -> u32 {
    TAKEN[slot(t.intid)].load(Ordering::Relaxed)
}

fn pending(t: &Timer) -> bool {
    gic::private_pending() & (1 << t.intid) != 0
}

/// Waits up to `ms` for `cond`.
fn within(ms: u64, cond: impl Fn() -> bool) -> bool {
    let deadline = time::Deadline::after_ms(ms);
    while !deadline.passed() {
        if cond() {
            return true;
        }
    }
    cond()
}

fn expired_at(t: &Timer) -> u64 {
    (t.count)().saturating_sub(1)
}

fn check_fires(t: &Timer) {
    let before = taken(t);
    let at = (t.count)() + time::ms_to_ticks(2);
    ARMED_AT.store(at, Ordering::Relaxed);
    (t.set_cval)(at);
    (t.set_ctl)(ENABLE);
    irq::enable();
    let arrived = within(1000, || taken(t) > before);
    time::delay_ms(20);
    irq::disable();
    if !arrived || taken(t) != before + 1 {
        fail!(
            "timers: {}: fires: {} interrupts, expected 1",
            t.name,
            taken(t) - before
        );
    }
}

fn check_disabled(t: &Timer) {
    let before = taken(t);
    (t.set_cval)(expired_at(t));
    (t.set_ctl)(0);
    irq::enable();
    time::delay_ms(20);
    irq::disable();
    if taken(t) != before || pending(t) {
        fail!(
            "timers: {}: disabled: an interrupt or pending state while disabled",
            t.name
        );
    }
}

fn check_masked(t: &Timer) {
    let before = taken(t);
    (t.set_cval)(expired_at(t));
    (t.set_ctl)(ENABLE | IMASK);
    irq::enable();
    time::delay_ms(20);
    irq::disable();
    let ctl = (t.ctl)();
    (t.set_ctl)(0);
    if ctl & ISTATUS == 0 {
        fail!(
            "timers: {}: masked: ISTATUS reads 0 after the compare value",
            t.name
        );
    }
    if taken(t) != before || pending(t) {
        fail!(
            "timers: {}: masked: an interrupt or pending state while masked",
            t.name
        );
    }
}

/// Pending in GICR_ISPENDR0 must read `want` (within 100 ms when it should rise:
/// the line reaches the vGIC through Ferry).
fn expect_pending(t: &Timer, step: &str, want: bool) {
    let ok = if want {
        within(100, || pending(t))
    } else {
        !pending(t)
    };
    if !ok {
        fail!(
            "timers: {}: pending follows the output: {step}: GICR_ISPENDR0 bit {} reads {}, CTL {:#x}",
            t.name,
            t.intid,
            !want,
            (t.ctl)()
        );
    }
}

fn check_pending_follows(t: &Timer) {
    gic::disable_private(1 << t.intid);
    (t.set_cval)(expired_at(t));
    (t.set_ctl)(ENABLE);
    expect_pending(t, "enabled and expired", true);
    (t.set_ctl)(0);
    expect_pending(t, "disabled", false);
    (t.set_ctl)(ENABLE);
    expect_pending(t, "enabled again", true);
    (t.set_ctl)(ENABLE | IMASK);
    expect_pending(t, "masked", false);
    (t.set_ctl)(ENABLE);
    expect_pending(t, "unmasked", true);
    (t.set_tval)(time::ms_to_ticks(10_000));
    expect_pending(t, "re-armed 10 s ahead", false);
    (t.set_ctl)(0);
    gic::clear_private_pending(1 << t.intid);
    gic::enable_private(1 << t.intid);
}

fn check_withdrawn(t: &Timer) {
    let before = taken(t);
    (t.set_cval)(expired_at(t));
    (t.set_ctl)(ENABLE);
    // IRQs masked in PSTATE: the interrupt reaches the vCPU interface and waits.
    time::delay_ms(10);
    (t.set_ctl)(0);
    let still = pending(t);
    irq::enable();
    time::delay_ms(20);
    irq::disable();
    if still || taken(t) != before {
        fail!(
            "timers: {}: withdrawn: after disabling, pending {still}, {} interrupts",
            t.name,
            taken(t) - before
        );
    }
}

fn check_tval_wfi(t: &Timer) {
    let before = taken(t);
    let start = (t.count)();
    let wait = time::ms_to_ticks(5);
    ARMED_AT.store(start + wait, Ordering::Relaxed);
    (t.set_tval)(wait);
    (t.set_ctl)(ENABLE);
    let deadline = time::Deadline::after_ms(2000);
    while (t.ctl)() & ISTATUS == 0 && !deadline.passed() {
        irq::wfi();
    }
    let woke = (t.count)();
    if (t.ctl)() & ISTATUS == 0 || woke < start + wait {
        fail!(
            "timers: {}: tval+wfi: WFI did not wait for the timer (ISTATUS 0 or early)",
            t.name
        );
    }
    irq::enable();
    let arrived = within(1000, || taken(t) > before);
    irq::disable();
    if !arrived || taken(t) != before + 1 {
        fail!(
            "timers: {}: tval+wfi: {} interrupts after the wake",
            t.name,
            taken(t) - before
        );
    }
}

/// One check of a timer, by name.
type Check = (&'static str, fn(&Timer));

const CHECKS: [Check; 6] = [
    ("fires", check_fires),
    ("disabled", check_disabled),
    ("masked", check_masked),
    ("pending follows the output", check_pending_follows),
    ("withdrawn", check_withdrawn),
    ("tval+wfi", check_tval_wfi),
];

fn main(boot: &'static Boot) -> ! {
    if let Err(e) = gic::init(boot).and_then(|_| gic::dist_init()) {
        fail!("timers: GIC: {e}");
    }
    if let Err(e) = gic::cpu_init() {
        fail!("timers: GIC CPU interface: {e}");
    }
    gic::set_handler(handler);

    let mut passed = 0;
    for t in &TIMERS {
        (t.set_ctl)(0);
        gic::set_private_priority(t.intid, 0xa0);
        gic::enable_private(1 << t.intid);
        for (name, check) in &CHECKS {
            check(t);
            println!("timers: {} timer: {name} ok", t.name);
            passed += 1;
        }
        (t.set_ctl)(0);
    }
    let (early, other) = (
        EARLY.load(Ordering::Relaxed),
        TAKEN[2].load(Ordering::Relaxed),
    );
    if early != 0 || other != 0 {
        fail!("timers: {early} interrupts with the output not asserted, {other} of other INTIDs");
    }
    println!("timers: all {passed} checks passed");
    psci::system_off()
}
