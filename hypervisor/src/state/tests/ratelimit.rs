//! The per-partition budget of guest-triggered log lines.

use super::super::event::Event;
use super::super::ratelimit::{Admit, BURST, LogBudget, PER_SECOND};

const HZ: u64 = 1_000_000;

fn written(budget: &LogBudget, now: u64, n: u32) -> (u32, u32) {
    let mut wrote = 0;
    let mut summary = 0;
    for _ in 0..n {
        if let Admit::Write { suppressed } = budget.admit(now, HZ) {
            wrote += 1;
            summary += suppressed;
        }
    }
    (wrote, summary)
}

#[test]
fn a_burst_passes_then_the_rest_is_counted() {
    let b = LogBudget::new();
    assert_eq!(written(&b, 5, BURST), (BURST, 0));
    assert_eq!(written(&b, 5, 1000), (0, 0));
    assert_eq!(b.take_suppressed(), 1000);
    assert_eq!(b.take_suppressed(), 0, "taken once");
}

#[test]
fn the_next_line_written_reports_what_was_suppressed() {
    let b = LogBudget::new();
    written(&b, 0, BURST + 7);
    // Half a second later one token is back (PER_SECOND = 2).
    assert_eq!(PER_SECOND, 2);
    assert_eq!(b.admit(HZ / 2, HZ), Admit::Write { suppressed: 7 });
    assert_eq!(b.admit(HZ / 2, HZ), Admit::Drop);
}

#[test]
fn a_flood_is_held_to_the_long_run_rate() {
    // 7,380 lines in 1.5 s (the audit's figure) from one vCPU: a burst plus 3.
    let b = LogBudget::new();
    let mut wrote = 0;
    for i in 0..7380u64 {
        if matches!(b.admit(i * 3 * HZ / 2 / 7380, HZ), Admit::Write { .. }) {
            wrote += 1;
        }
    }
    assert_eq!(wrote, BURST + 2, "burst plus 2 lines a second over 1.5 s");
}

#[test]
fn the_budget_refills_to_the_burst_only() {
    let b = LogBudget::new();
    written(&b, 0, 1);
    assert_eq!(written(&b, 3600 * HZ, 100).0, BURST);
}

#[test]
fn a_counter_that_goes_back_does_not_refill() {
    let b = LogBudget::new();
    written(&b, 1000 * HZ, BURST);
    assert_eq!(b.admit(0, HZ), Admit::Drop);
}

#[test]
fn only_lines_a_guest_triggers_at_will_are_budgeted() {
    let refused = Event::CpuOnRefused {
        partition: 1,
        vcpu: 0,
        target: 7,
    };
    assert_eq!(refused.offender(), Some(1));
    assert_eq!(
        Event::ForeignSlot {
            backend: 2,
            slot: 99
        }
        .offender(),
        Some(2)
    );
    assert_eq!(Event::StillRunning { partition: 1 }.offender(), None);
    let failed = Event::DeviceFailed {
        route: 0,
        why: super::super::event::FailReason::NoSlot,
    };
    assert_eq!(failed.offender(), None, "a device fails once");
}
