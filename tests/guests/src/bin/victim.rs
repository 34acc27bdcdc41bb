//! `victim`: fills its RAM above its image with a pattern, waits, and checks nobody
//! changed it (e.g. a `trespass` partition writing to this partition's host address);
//! optionally it also checks its progress while it waits (the hostile suite,
//! tests/hostile/README.md).
//!
//! The pattern covers the first `/memory` region from the end of the image (`.bss` and
//! stacks included) up to the DTB if the DTB lies in it, else to the region's end, at
//! most 16 MiB.
//!
//! Bootargs:
//! - `wait=<ms>` between writing and checking (default 1000), without `ticks`;
//! - `ticks=<n>`: instead of `wait`, tick with the virtual timer every
//!   `period-us=<p>` (default 1000) for `n` periods: first `quiet-ms=<q>`
//!   (default 0) of calibration, when no offender is meant to run yet (loop iterations
//!   a millisecond, the progress measure), then `skip-ms=<s>` (default 0) while the
//!   offender starts, then `n` periods measured. Checks: at least `min-ticks=<pct>`
//!   (default 25) % of the `n` ticks arrive (a tick more than a period late replaces
//!   the ones it covers; under TCG on a loaded host whole periods go by while this
//!   vCPU's thread is not scheduled); the worst lateness of a measured tick is at most
//!   `max-late-us=<l>` (if given); the loop iterations a millisecond while measuring
//!   are at least `min-progress=<pct>` % of the quiet ones (if given; needs
//!   `quiet-ms`); no interrupt arrives that was not asked for (SGIs 0-15 are
//!   enabled to catch stray ones);
//! - `pend-spi=<intid>`: enable that interrupt at priority 0xf8 with ICC_PMR_EL1 =
//!   0xf0, so once raised it stays pending, never taken (a device interrupt an
//!   offender keeps raising: notify storms);
//! - `take-spi=<intid>`: enable and take that interrupt, counting it (a control run:
//!   what a storm that does land costs).
//!
//! Log: `victim: pattern written to [<a>, <b>)`; with `ticks`: `victim: quiet: <r>
//! loops/ms over <q> ms`, `victim: <k> of <n> ticks of <p> us in <t> ms: lateness max
//! <x> us, mean <y> us`,
//! `victim: progress <r'> loops/ms, <pct>% of quiet`, `victim: took <k> interrupts
//! <intid>`; then `victim: memory intact (<n> bytes)` and SYSTEM_OFF, or `FAIL:
//! victim: ...` / `victim: memory CORRUPTED at <addr> ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_partition_rt::{self as rt, Boot, fail, gic, println, psci, time};

// The victim uses the memory and ticker halves of the module, not every helper.
#[allow(dead_code)]
#[path = "../hostile/watch.rs"]
mod watch;

use watch::{Pattern, Ticker};

rt::entry!(main);

const DEFAULT_WAIT_MS: u64 = 1000;

/// `take-spi`: the INTID taken and how often.
static TAKE_ID: AtomicU32 = AtomicU32::new(u32::MAX);
static TAKEN: AtomicU64 = AtomicU64::new(0);

fn main(boot: &'static Boot) -> ! {
    let pat = match Pattern::range(boot, rt::image_end() as u64, u64::MAX) {
        Ok(p) => p,
        Err(e) => fail!("victim: {e}"),
    };
    pat.fill();
    println!(
        "victim: pattern written to [{:#x}, {:#x})",
        pat.start, pat.end
    );

    match boot.arg_u64("ticks") {
        Some(n) => tick(boot, n),
        None => time::delay_ms(boot.arg_u64("wait").unwrap_or(DEFAULT_WAIT_MS)),
    }

    match pat.check() {
        Ok(bytes) => {
            println!("victim: memory intact ({bytes} bytes)");
            psci::system_off()
        }
        Err(c) => {
            println!(
                "victim: memory CORRUPTED at {:#x}: read {:#x}, expected {:#x} ({} words differ)",
                c.addr,
                c.got,
                watch::pattern(c.addr),
                c.words
            );
            psci::system_reset()
        }
    }
}

fn take(intid: u32) -> bool {
    if intid == TAKE_ID.load(Ordering::Relaxed) {
        TAKEN.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    false
}

/// `ticks=<n>`: ticks and measures for `n` periods; checks ticks, lateness, progress.
fn tick(boot: &Boot, n: u64) {
    let period_us = boot.arg_u64("period-us").unwrap_or(1000).max(50);
    let quiet_ms = boot.arg_u64("quiet-ms").unwrap_or(0);
    let skip_ms = boot.arg_u64("skip-ms").unwrap_or(0);
    let max_late = boot.arg_u64("max-late-us");
    let min_progress = boot.arg_u64("min-progress");
    let min_ticks = boot.arg_u64("min-ticks").unwrap_or(25);
    if min_progress.is_some() && quiet_ms == 0 {
        fail!("victim: min-progress needs quiet-ms");
    }
    if let Err(e) = Ticker::gic_setup(boot, true) {
        fail!("victim: GIC set-up: {e}");
    }
    if let Some(id) = boot.arg_u64("pend-spi") {
        let id = id as u32;
        gic::set_dist_priority(id, 0xf8);
        gic::set_dist_router(id, gic::router_for(rt::arch::mpidr()));
        gic::dist_write_bit(gic::gicd::ISENABLER, id);
        gic::set_icc_pmr(0xf0);
        println!("victim: INTID {id} enabled at priority 0xf8 under PMR 0xf0: it stays pending");
    }
    if let Some(id) = boot.arg_u64("take-spi") {
        let id = id as u32;
        TAKE_ID.store(id, Ordering::Relaxed);
        Ticker::set_other(take);
        gic::set_dist_priority(id, 0xa0);
        gic::set_dist_router(id, gic::router_for(rt::arch::mpidr()));
        gic::dist_write_bit(gic::gicd::ISENABLER, id);
        println!("victim: INTID {id} enabled and taken");
    }
    Ticker::start(period_us);

    let quiet = (quiet_ms > 0).then(|| {
        let loops = watch::spin_until(time::Deadline::after_ms(quiet_ms));
        let rate = loops / quiet_ms;
        println!("victim: quiet: {rate} loops/ms over {quiet_ms} ms");
        rate
    });
    time::delay_ms(skip_ms);

    Ticker::reset();
    let t0 = time::ticks();
    let loops = watch::spin_until(time::Deadline::after_ms(n * period_us / 1000));
    let elapsed_ms = time::ticks_to_ms(time::ticks() - t0).max(1);
    Ticker::stop();
    let s = Ticker::stats();
    println!(
        "victim: {} of {n} ticks of {period_us} us in {elapsed_ms} ms: lateness max {} us, mean {} us",
        s.ticks, s.late_max_us, s.late_mean_us
    );
    let taken = TAKEN.load(Ordering::Relaxed);
    if TAKE_ID.load(Ordering::Relaxed) != u32::MAX {
        println!(
            "victim: took {taken} interrupts {}",
            TAKE_ID.load(Ordering::Relaxed)
        );
    }
    let rate = loops / elapsed_ms;
    if let Some(q) = quiet {
        println!(
            "victim: progress {rate} loops/ms, {}% of quiet",
            rate * 100 / q.max(1)
        );
    }
    if s.stray > 0 {
        fail!(
            "victim: {} interrupts it did not ask for (last INTID {})",
            s.stray,
            s.stray_id
        );
    }
    if s.ticks * 100 < n * min_ticks {
        fail!(
            "victim: only {} of {n} ticks of {period_us} us arrived, fewer than min-ticks={min_ticks}%",
            s.ticks
        );
    }
    if let Some(l) = max_late.filter(|&l| s.late_max_us > l) {
        fail!(
            "victim: a tick came {} us late, more than max-late-us={l}",
            s.late_max_us
        );
    }
    if let (Some(q), Some(min)) = (quiet, min_progress)
        && rate * 100 < q * min
    {
        fail!(
            "victim: progress {rate} loops/ms is {}% of quiet {q}, below min-progress={min}%",
            rate * 100 / q.max(1)
        );
    }
}
