//! A backend that restarts on failure: the budget, the stop that asks for a
//! restart, and its devices coming back when the frontend resets them.

use super::*;
use crate::policy::StopKind;
use crate::state::event::StopReason;
use crate::state::restart::{RestartBudget, Verdict};
use crate::state::system::BY_FERRY;
use crate::state::virtio::{self, DEVICE_NEEDS_RESET, Outcome, STATUS};
use ferry_config::RestartPolicy;

fn restarting() -> (System, Mem) {
    let (s, m) = system(Shape {
        restart: Some((2, 1000)),
        ..Shape::default()
    });
    switch_on_all(&s);
    (s, m)
}

fn access(s: &System, mem: &Mem, a: MmioAccess, now: u64) -> Outcome {
    let mut fx = Effects::new();
    virtio::frontend_access(s, 0, 0, a, mem, now, &mut fx)
}

fn logged(fx: &Effects, want: impl Fn(&Event) -> bool) -> bool {
    fx.events().any(want)
}

#[test]
fn the_budget_allows_limit_restarts_per_window() {
    let b = RestartBudget::new(
        RestartPolicy {
            limit: 2,
            window_ms: 1000,
        },
        HZ,
    );
    assert_eq!(b.failed(0), Verdict::Restart { nth: 1 });
    assert_eq!(b.failed(10), Verdict::Restart { nth: 2 });
    assert_eq!(b.failed(20), Verdict::GiveUp, "a third within 1 s");
    // Once the first restart is older than the window, one more is allowed.
    assert_eq!(b.failed(1001), Verdict::Restart { nth: 3 });
    assert_eq!(b.failed(1002), Verdict::GiveUp);
    let none = RestartBudget::new(
        RestartPolicy {
            limit: 0,
            window_ms: 1000,
        },
        HZ,
    );
    assert_eq!(none.failed(0), Verdict::GiveUp);
}

#[test]
fn a_faulting_backend_is_restarted_not_counted_by_the_exit_policy() {
    let (s, _) = restarting();
    let abort = StopReason::SError { esr: 0, pc: 0 };
    let fx = s.stop(1, 0, StopKind::Fault, abort, 5);
    assert!(s.partitions[1].is_stopped() && s.partitions[1].restart_pending());
    assert!(logged(&fx, |e| matches!(
        e,
        Event::Restarting {
            partition: 1,
            nth: 1
        }
    )));
    assert!(s.virtio[0].has_failed(), "its devices fail meanwhile");
    assert!(!fx.iter().any(|e| matches!(e, Effect::EndRun { .. })));
    // vCPU 0's core is told (it carries the restart out).
    assert_eq!(kicks(&fx, 1, true), 1);
}

#[test]
fn power_off_is_not_a_failure() {
    let (s, _) = restarting();
    let fx = s.stop(1, 0, StopKind::SystemOff, StopReason::SystemOff, 5);
    assert!(!s.partitions[1].restart_pending());
    assert!(!logged(&fx, |e| matches!(e, Event::Restarting { .. })));
}

#[test]
fn a_backend_that_keeps_failing_is_left_stopped() {
    let (s, mem) = restarting();
    let abort = StopReason::SError { esr: 0, pc: 0 };
    for now in [1, 2] {
        s.stop(1, 0, StopKind::Fault, abort, now);
        assert!(s.partitions[1].restart_pending());
        virtio::backend_restarted(&s, 1, &mem, now);
        assert_eq!(s.partitions[1].restarted(), now as u32);
    }
    let fx = s.stop(1, 0, StopKind::Fault, abort, 3);
    assert!(!s.partitions[1].restart_pending());
    assert!(logged(&fx, |e| matches!(
        e,
        Event::RestartGivenUp {
            partition: 1,
            limit: 2,
            window_ms: 1000
        }
    )));
}

#[test]
fn a_missed_deadline_stops_a_restarting_backend() {
    let (s, mem) = restarting();
    let mut fx = Effects::new();
    virtio::backend_ready(&s.partitions[1], 0, &mut fx).unwrap();
    let Outcome::Wait(p) = access(&s, &mem, load(0x70, 4), 1) else {
        panic!("not forwarded")
    };
    let mut fx = Effects::new();
    let late = 1 + u64::from(DEADLINE_MS) + 1;
    assert_eq!(virtio::poll(&s, &p, &mem, late, &mut fx), Some(u64::MAX));
    assert!(s.partitions[1].is_stopped() && s.partitions[1].restart_pending());
    assert!(logged(&fx, |e| matches!(
        e,
        Event::Stopped {
            partition: 1,
            vcpu: BY_FERRY,
            reason: StopReason::DeviceFailed { route: 0 },
            ..
        }
    )));
    let shown = fx
        .events()
        .map(|e| e.shown(&s).to_string())
        .find(|t| t.contains("stopped"))
        .unwrap();
    assert!(
        shown.contains("by Ferry: a virtio device it serves failed"),
        "{shown}"
    );
}

#[test]
fn without_a_restart_policy_a_slow_backend_keeps_running() {
    let (s, mem) = running();
    let mut fx = Effects::new();
    virtio::backend_ready(&s.partitions[1], 0, &mut fx).unwrap();
    let Outcome::Wait(p) = access(&s, &mem, load(0x70, 4), 1) else {
        panic!("not forwarded")
    };
    let mut fx = Effects::new();
    virtio::poll(&s, &p, &mem, 1000, &mut fx);
    assert!(s.virtio[0].has_failed());
    assert!(!s.partitions[1].is_stopped());
}

#[test]
fn the_frontends_reset_brings_the_device_back_after_the_restart() {
    let (s, mem) = restarting();
    s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        5,
    );
    // Before the restart: the failed device answers by itself.
    assert_eq!(access(&s, &mem, load(0, 4), 6), Outcome::Done(u64::MAX));
    assert!(
        matches!(access(&s, &mem, store(STATUS, 4, 0), 6), Outcome::Done(_)),
        "a reset before the backend is back is answered by Ferry"
    );
    assert!(s.virtio[0].has_failed());
    // Restarted: identification reads reach the new backend; Status still says
    // DEVICE_NEEDS_RESET until the frontend resets the device.
    virtio::backend_restarted(&s, 1, &mem, 7);
    s.partitions[1].restarted();
    assert_eq!(s.partitions[1].ioreq.as_ref().unwrap().ready_at(), None);
    assert!(matches!(access(&s, &mem, load(0, 4), 8), Outcome::Wait(_)));
    let Outcome::Done(status) = access(&s, &mem, load(STATUS, 4), 8) else {
        panic!("Status forwarded before the reset")
    };
    assert_ne!(status as u32 & DEVICE_NEEDS_RESET, 0);
    assert!(matches!(
        access(&s, &mem, store(0x30, 4, 0), 8),
        Outcome::Done(_)
    ));
    // The reset: forwarded, and the device works again.
    assert!(matches!(
        access(&s, &mem, store(STATUS, 4, 0), 9),
        Outcome::Wait(_)
    ));
    assert!(!s.virtio[0].has_failed() && !s.virtio[0].is_recoverable());
    assert!(matches!(
        access(&s, &mem, load(0x70, 4), 9),
        Outcome::Wait(_)
    ));
}

#[test]
fn a_restart_clears_the_request_page_but_not_its_sequence_numbers() {
    let (s, mem) = restarting();
    let Outcome::Wait(before) = access(&s, &mem, load(0x70, 4), 1) else {
        panic!("not forwarded")
    };
    s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        2,
    );
    virtio::backend_restarted(&s, 1, &mem, 3);
    s.partitions[1].restarted();
    let page = s.partitions[1].ioreq.as_ref().unwrap();
    assert_eq!(page.created_at(), 3, "a new start-up allowance");
    assert_eq!(
        mem.slot(0).state,
        abi::state::NONE,
        "the old record is gone"
    );
    // A late completion from the old incarnation names nothing.
    assert!(page.complete(&mem, 0, u64::from(before.seq), 1).is_err());
    let mut fx = Effects::new();
    assert!(
        virtio::frontend_access(&s, 0, 0, store(STATUS, 4, 0), &mem, 4, &mut fx)
            != Outcome::Done(u64::MAX)
    );
    let Outcome::Wait(after) = access(&s, &mem, load(0x70, 4), 5) else {
        panic!("not forwarded")
    };
    assert!(after.seq > before.seq);
}

#[test]
fn an_access_in_flight_across_a_restart_ends_at_once() {
    // The fuzzer's `restart-loses-answer`: an access answered, then the backend
    // restarted before the frontend took the answer; and one never answered.
    let (s, mem) = restarting();
    let mut fx = Effects::new();
    virtio::backend_ready(&s.partitions[1], 0, &mut fx).unwrap();
    let Outcome::Wait(answered) = access(&s, &mem, load(0x70, 4), 1) else {
        panic!("not forwarded")
    };
    let mut fx = Effects::new();
    let done = (answered.slot as u64, u64::from(answered.seq), 0x55);
    virtio::complete(&s, &s.partitions[1], done, &mem, 2, &mut fx).unwrap();
    s.stop(
        1,
        0,
        StopKind::Fault,
        StopReason::SError { esr: 0, pc: 0 },
        3,
    );
    virtio::backend_restarted(&s, 1, &mem, 4);
    s.partitions[1].restarted();
    let mut fx = Effects::new();
    assert_eq!(
        virtio::poll(&s, &answered, &mem, 5, &mut fx),
        Some(0x55),
        "its answer"
    );
    // A request the old backend never answered: all-ones, not a wait that would
    // blame the new backend at its deadline.
    let mut late = answered;
    late.seq += 1;
    let mut fx = Effects::new();
    assert_eq!(virtio::poll(&s, &late, &mem, 5, &mut fx), Some(u64::MAX));
    assert!(!logged(&fx, |e| matches!(e, Event::Stopped { .. })));
}
