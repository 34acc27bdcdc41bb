//! What a victim checks about itself, shared by `victim` and the hostile suite's
//! virtio peers (`hostile probe=peer-*`): its memory (a pattern written at the start
//! and checked at the end) and its progress (its own virtual-timer interrupts, their
//! lateness, and how many loop iterations a millisecond it still gets done).
//!
//! The ticker runs on one vCPU (the one that calls [`Ticker::start`]): the EL1
//! virtual timer (INTID 27) re-armed from its handler at `CNTV_CVAL + period`, so
//! lateness does not add up; *lateness* is CNTVCT at handler entry minus the compare
//! value that fired. A tick missed entirely (the handler ran more than a period late)
//! counts as late by the whole delay, and the next compare value skips ahead. Any
//! other interrupt is *stray* unless a handler registered with [`Ticker::set_other`]
//! claims it; SGIs 0-15 are enabled so that an SGI reaching this vCPU shows up.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{Boot, irq, time, vtimer};

/// The most bytes a pattern covers.
const MAX_FILL: u64 = 16 << 20;

/// The word the pattern holds at `addr`.
pub fn pattern(addr: u64) -> u64 {
    addr.rotate_left(17) ^ 0x5a5a_a5a5_0f0f_f0f0
}

/// A pattern over this partition's free RAM: from the image end (`.bss` and stacks
/// included) to the DTB if it lies in the first memory region, else to the region's
/// end, at most 16 MiB.
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    /// First byte covered.
    pub start: u64,
    /// One past the last byte covered.
    pub end: u64,
}

/// Where a pattern check found memory changed.
#[derive(Clone, Copy, Debug)]
pub struct Corrupted {
    /// The first changed word.
    pub addr: u64,
    /// What it held.
    pub got: u64,
    /// How many words differ.
    pub words: u64,
}

impl Pattern {
    /// The range a pattern would cover, or why there is none.
    pub fn range(boot: &Boot, image_end: u64, max: u64) -> Result<Pattern, &'static str> {
        let mem = *boot.memory().first().ok_or("the DTB has no /memory")?;
        let start = (image_end + 0xfff) & !0xfff;
        let mut end = mem.end().min(start.saturating_add(max.min(MAX_FILL)));
        let dtb = boot.dtb_region();
        if (start..end).contains(&dtb.base) {
            end = dtb.base;
        }
        end &= !7;
        if start < mem.base || start >= end {
            return Err("no free RAM between the image and the DTB");
        }
        Ok(Pattern { start, end })
    }

    /// Writes the pattern.
    pub fn fill(&self) {
        for a in (self.start..self.end).step_by(8) {
            // SAFETY: [start, end) is this partition's RAM above its image and below
            // its DTB (`range`), which nothing else of this program uses.
            unsafe { core::ptr::write_volatile(a as usize as *mut u64, pattern(a)) };
        }
    }

    /// Checks the pattern: the bytes covered, or where it changed.
    pub fn check(&self) -> Result<u64, Corrupted> {
        let mut bad: Option<Corrupted> = None;
        for a in (self.start..self.end).step_by(8) {
            // SAFETY: as in `fill`.
            let got = unsafe { core::ptr::read_volatile(a as usize as *const u64) };
            if got != pattern(a) {
                bad.get_or_insert(Corrupted {
                    addr: a,
                    got,
                    words: 0,
                })
                .words += 1;
            }
        }
        match bad {
            None => Ok(self.end - self.start),
            Some(c) => Err(c),
        }
    }
}

static PERIOD: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static LATE_MAX: AtomicU64 = AtomicU64::new(0);
static LATE_SUM: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts taken while the timer's condition was not met.
static PHANTOM: AtomicU64 = AtomicU64::new(0);
static STRAY: AtomicU32 = AtomicU32::new(0);
static STRAY_ID: AtomicU32 = AtomicU32::new(0);
static OTHER: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);

/// What the ticker saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickStats {
    /// Timer interrupts taken with the condition met.
    pub ticks: u64,
    /// Worst lateness, microseconds.
    pub late_max_us: u64,
    /// Mean lateness, microseconds.
    pub late_mean_us: u64,
    /// Timer interrupts taken with the condition not met.
    pub phantom: u64,
    /// Interrupts nobody claimed, and the last such INTID.
    pub stray: u32,
    /// See `stray`.
    pub stray_id: u32,
}

/// The virtual-timer ticker of one vCPU.
pub struct Ticker;

impl Ticker {
    /// Sets up the GIC for this vCPU (the distributor too if `dist`) and enables
    /// SGIs 0-15 at priority 0x80 so that a stray SGI is seen.
    pub fn gic_setup(boot: &Boot, dist: bool) -> Result<(), gic::Error> {
        if dist {
            gic::init(boot)?;
            gic::dist_init()?;
        }
        gic::cpu_init()?;
        for sgi in 0..16 {
            gic::set_private_priority(sgi, 0x80);
        }
        gic::enable_private(0xffff);
        gic::set_handler(handler);
        Ok(())
    }

    /// Registers `f` for interrupts other than the timer's: it returns true for one
    /// it handled (the ticker then does not count it as stray).
    pub fn set_other(f: fn(u32) -> bool) {
        OTHER.store(f as usize, Ordering::Release);
    }

    /// Starts ticking every `period_us` (GIC set up first) and unmasks IRQs.
    pub fn start(period_us: u64) {
        let period = (period_us * time::freq() / 1_000_000).max(1);
        PERIOD.store(period, Ordering::Relaxed);
        RUNNING.store(true, Ordering::Release);
        gic::set_private_priority(VTIMER_INTID, 0x80);
        gic::enable_private(1 << VTIMER_INTID);
        vtimer::arm_at(time::ticks() + period);
        irq::enable();
    }

    /// Stops the timer (IRQs stay unmasked for other interrupts).
    pub fn stop() {
        RUNNING.store(false, Ordering::Release);
        vtimer::stop();
    }

    /// Ticks so far.
    pub fn ticks() -> u64 {
        COUNT.load(Ordering::Acquire)
    }

    /// What the ticker saw so far.
    pub fn stats() -> TickStats {
        let ticks = COUNT.load(Ordering::Acquire);
        let us = |t: u64| t.saturating_mul(1_000_000) / time::freq();
        TickStats {
            ticks,
            late_max_us: us(LATE_MAX.load(Ordering::Relaxed)),
            late_mean_us: us(LATE_SUM.load(Ordering::Relaxed) / ticks.max(1)),
            phantom: PHANTOM.load(Ordering::Relaxed),
            stray: STRAY.load(Ordering::Relaxed),
            stray_id: STRAY_ID.load(Ordering::Relaxed),
        }
    }

    /// Starts the statistics afresh (ticks, lateness), e.g. after a warm-up.
    pub fn reset() {
        LATE_MAX.store(0, Ordering::Relaxed);
        LATE_SUM.store(0, Ordering::Relaxed);
        COUNT.store(0, Ordering::Release);
    }
}

fn handler(intid: u32) {
    if intid != VTIMER_INTID {
        let other = OTHER.load(Ordering::Acquire);
        if other != 0 {
            // SAFETY: only `set_other` stores into OTHER, and only `fn(u32) -> bool`.
            let f = unsafe { core::mem::transmute::<usize, fn(u32) -> bool>(other) };
            if f(intid) {
                return;
            }
        }
        STRAY.fetch_add(1, Ordering::Relaxed);
        STRAY_ID.store(intid, Ordering::Relaxed);
        return;
    }
    let now = time::ticks();
    let ctl = vtimer::ctl();
    if ctl & vtimer::ISTATUS == 0 || ctl & vtimer::ENABLE == 0 || !RUNNING.load(Ordering::Acquire) {
        PHANTOM.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let cval = vtimer::cval();
    let late = now.saturating_sub(cval);
    LATE_MAX.fetch_max(late, Ordering::Relaxed);
    LATE_SUM.fetch_add(late, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Release);
    let period = PERIOD.load(Ordering::Relaxed);
    let mut next = cval + period;
    if next <= now {
        // Whole periods went by: the next tick is the next one in the future.
        next += (now - next) / period * period + period;
    }
    vtimer::arm_at(next);
}

/// Spins until `until` passes; returns the loop iterations done meanwhile (the
/// progress measure: time stolen from this vCPU shows as fewer iterations).
pub fn spin_until(until: time::Deadline) -> u64 {
    let mut n = 0u64;
    while !until.passed() {
        // A short, fixed body per iteration; the counter read adds an ISB.
        for _ in 0..16 {
            core::hint::spin_loop();
        }
        n += 1;
    }
    n
}
