//! `ticker`: a partition that keeps running: `ticker: up`, then `tick <n>` (n = 1, 2,
//! ...) every `period_ms` (default 500) on the virtual counter, forever — or, with
//! `count=<n>`, `ticker: done` and SYSTEM_OFF after the n-th tick. Between ticks it
//! sleeps in WFI until its virtual timer fires (PPI 27 enabled in its vGIC, IRQs
//! masked: the pending interrupt wakes WFI and is acknowledged by hand), so it costs
//! its core nothing; with `busy=1` it spins on CNTVCT instead (no GIC at all).
//!
//! Bootargs: `period_ms=<ms>` (default 500), `count=<n>` (default: never stop),
//! `name=<text>` (replaces `ticker` in the first and last line), `busy=1`.
//! Log: `ticker: up`, `tick 1`, `tick 2`, ..., [`ticker: done`].
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, fail, gic, irq, println, psci, time, vtimer};

rt::entry!(main);

fn main(boot: &'static Boot) -> ! {
    let name = boot
        .arg("name")
        .filter(|n| !n.is_empty())
        .unwrap_or("ticker");
    let period_ms = boot.arg_u64("period_ms").unwrap_or(500);
    if period_ms == 0 {
        fail!("{name}: period_ms must be at least 1");
    }
    let count = boot.arg_u64("count");
    let busy = boot.arg_u64("busy") == Some(1);
    if !busy {
        let setup = gic::init(boot)
            .and_then(|_| gic::dist_init())
            .and_then(|_| gic::cpu_init());
        if let Err(e) = setup {
            fail!("{name}: GIC set-up failed: {e:?}");
        }
        gic::enable_private(1 << gic::VTIMER_INTID);
    }
    println!("{name}: up");
    let period = time::ms_to_ticks(period_ms);
    let start = time::ticks();
    let mut n: u64 = 0;
    loop {
        if count.is_some_and(|c| n >= c) {
            println!("{name}: done");
            psci::system_off();
        }
        n += 1;
        // Deadlines from the start: no drift from printing.
        let at = start.wrapping_add(period.saturating_mul(n));
        if !busy {
            vtimer::arm_at(at);
        }
        while time::ticks().wrapping_sub(start) < at.wrapping_sub(start) {
            if busy {
                core::hint::spin_loop();
            } else {
                irq::wfi();
            }
        }
        if !busy {
            // Timer off first (its line drops), then end the interrupt that woke us.
            vtimer::stop();
            loop {
                let id = gic::ack();
                if id >= 1020 {
                    break;
                }
                gic::eoi(id);
            }
        }
        println!("tick {n}");
    }
}
