//! A frontend vCPU that leaves a wait to take its interrupts, and the
//! slow-backend budget.

use super::*;
use crate::state::event::FailReason;
use crate::state::virtio::{self, AccessKey, Outcome, Pending, WAIT_BUDGET_DEADLINES, Waited};

fn key(a: MmioAccess, pc: u64) -> AccessKey {
    AccessKey {
        route: 0,
        offset: a.offset,
        size: a.size,
        write: a.write,
        pc,
    }
}

fn trap(s: &System, mem: &Mem, a: MmioAccess, pc: u64, now: u64) -> Outcome {
    let mut fx = Effects::new();
    virtio::frontend_trap(s, key(a, pc), 0, a, mem, now, &mut fx)
}

fn wait_poll(s: &System, mem: &Mem, a: MmioAccess, pc: u64, now: u64) -> (Option<Waited>, Effects) {
    let mut fx = Effects::new();
    let w = virtio::wait_poll(s, key(a, pc), 0, mem, now, &mut fx);
    (w, fx)
}

fn pending(out: Outcome) -> Pending {
    match out {
        Outcome::Wait(p) => p,
        other => panic!("expected a wait, got {other:?}"),
    }
}

fn complete((s, mem): (&System, &Mem), p: &Pending, value: u64, now: u64) {
    let mut fx = Effects::new();
    let r = virtio::complete(
        s,
        &s.partitions[1],
        (p.slot as u64, u64::from(p.seq), value),
        mem,
        now,
        &mut fx,
    );
    assert_eq!(r, Ok(()));
}

fn serving(now: u64) -> (System, Mem) {
    let (s, mem) = running();
    let mut fx = Effects::new();
    virtio::backend_ready(&s.partitions[1], now, &mut fx).unwrap();
    (s, mem)
}

fn failed_by(fx: &Effects) -> Option<FailReason> {
    fx.events().find_map(|e| match *e {
        Event::DeviceFailed { why, .. } => Some(why),
        _ => None,
    })
}

#[test]
fn the_access_executed_again_picks_up_its_request() {
    let (s, mem) = serving(0);
    let read = load(0x70, 4);
    let first = pending(trap(&s, &mem, read, 0x1000, 1));
    // An interrupt: the vCPU leaves; the same instruction traps again later.
    assert_eq!(wait_poll(&s, &mem, read, 0x1000, 2).0, None);
    let again = pending(trap(&s, &mem, read, 0x1000, 5));
    assert_eq!(again, first, "no second request");
    assert_eq!(mem.slot(0).seq, first.seq);
    complete((&s, &mem), &first, 0xabc, 6);
    assert_eq!(
        wait_poll(&s, &mem, read, 0x1000, 7).0,
        Some(Waited::Value(0xabc))
    );
    // Nothing in flight or held any more: the next access is a new request.
    let next = pending(trap(&s, &mem, read, 0x1000, 8));
    assert_ne!(next.seq, first.seq);
}

#[test]
fn an_interrupt_handlers_access_waits_for_the_one_it_interrupted() {
    let (s, mem) = serving(0);
    let main = load(0x70, 4);
    let handler = load(0x60, 4);
    let first = pending(trap(&s, &mem, main, 0x1000, 1));
    // The handler reads InterruptStatus while the main path's read is in flight.
    assert_eq!(pending(trap(&s, &mem, handler, 0x2000, 2)), first);
    assert_eq!(wait_poll(&s, &mem, handler, 0x2000, 3).0, None);
    complete((&s, &mem), &first, 0x11, 4);
    assert_eq!(
        wait_poll(&s, &mem, handler, 0x2000, 5).0,
        Some(Waited::Retry),
        "the main path's answer is held; the handler's access executes again"
    );
    let second = pending(trap(&s, &mem, handler, 0x2000, 6));
    assert_ne!(second.seq, first.seq);
    assert_eq!(mem.slot(0).offset, 0x60);
    complete((&s, &mem), &second, 0x22, 7);
    assert_eq!(
        wait_poll(&s, &mem, handler, 0x2000, 8).0,
        Some(Waited::Value(0x22))
    );
    // Back in the main path: its instruction gets the held answer, once.
    assert_eq!(trap(&s, &mem, main, 0x1000, 9), Outcome::Done(0x11));
    assert!(matches!(trap(&s, &mem, main, 0x1000, 10), Outcome::Wait(_)));
}

#[test]
fn a_held_answer_goes_stale_and_is_not_given_to_a_later_access() {
    let (s, mem) = serving(0);
    let main = load(0x70, 4);
    let other = load(0x60, 4);
    let first = pending(trap(&s, &mem, main, 0x1000, 1));
    pending(trap(&s, &mem, other, 0x2000, 2));
    complete((&s, &mem), &first, 0x11, 3);
    assert_eq!(wait_poll(&s, &mem, other, 0x2000, 4).0, Some(Waited::Retry));
    let later = 4 + u64::from(DEADLINE_MS) + 1;
    assert!(matches!(
        trap(&s, &mem, main, 0x1000, later),
        Outcome::Wait(_)
    ));
}

#[test]
fn a_restarted_vcpu_forgets_what_it_held() {
    let (s, mem) = serving(0);
    let main = load(0x70, 4);
    let other = load(0x60, 4);
    let first = pending(trap(&s, &mem, main, 0x1000, 1));
    pending(trap(&s, &mem, other, 0x2000, 2));
    complete((&s, &mem), &first, 0x11, 3);
    wait_poll(&s, &mem, other, 0x2000, 4);
    let v = &s.partitions[0].vcpus[0];
    v.set_off();
    assert!(v.request_on(0x4000_0000, 0));
    v.take_start().unwrap();
    assert!(matches!(trap(&s, &mem, main, 0x1000, 5), Outcome::Wait(_)));
}

/// The backend answers each read `late` ms after it was asked, back to back.
/// Returns after how many accesses the device failed (and why), if it did.
fn slow_backend(late: u64, accesses: u64) -> Option<(u64, FailReason)> {
    let (s, mem) = serving(0);
    let read = load(0x70, 4);
    let mut now = 10;
    for n in 1..=accesses {
        let p = pending(trap(&s, &mem, read, 0x1000, now));
        now += late;
        if s.virtio[0].has_failed() {
            return None;
        }
        complete((&s, &mem), &p, 7, now);
        let (w, fx) = wait_poll(&s, &mem, read, 0x1000, now);
        assert_eq!(w, Some(Waited::Value(7)));
        if let Some(why) = failed_by(&fx) {
            return Some((n, why));
        }
        now += 1;
    }
    None
}

#[test]
fn a_backend_answering_just_before_the_deadline_is_failed_by_the_budget() {
    // 90 ms of every 91: the debt grows by ~44 ms an access, over a budget of
    // 4 deadlines (400 ms).
    let (n, why) = slow_backend(u64::from(DEADLINE_MS) * 9 / 10, 1000).expect("never failed");
    assert_eq!(WAIT_BUDGET_DEADLINES, 4);
    assert!((7..=10).contains(&n), "failed after {n} accesses");
    let FailReason::TooSlow { owed_ms, budget_ms } = why else {
        panic!("{why:?}")
    };
    assert_eq!(budget_ms, 400);
    assert!(owed_ms > 400);
}

#[test]
fn a_backend_answering_within_half_the_time_is_never_failed() {
    assert_eq!(slow_backend(1, 100_000), None);
    // Slow, but the frontend waits less than half the time: the debt drains.
    let (s, mem) = serving(0);
    let read = load(0x70, 4);
    let mut now = 10;
    for _ in 0..10_000 {
        let p = pending(trap(&s, &mem, read, 0x1000, now));
        now += 40;
        complete((&s, &mem), &p, 7, now);
        let (_, fx) = wait_poll(&s, &mem, read, 0x1000, now);
        assert_eq!(failed_by(&fx), None);
        now += 45;
    }
}

#[test]
fn waiting_for_a_backend_to_start_is_not_charged() {
    let (s, mem) = running();
    let read = load(0x70, 4);
    // Not serving yet: 5 s of waiting for the start, then served at once.
    let p = pending(trap(&s, &mem, read, 0x1000, 0));
    let mut fx = Effects::new();
    virtio::backend_ready(&s.partitions[1], 5000, &mut fx).unwrap();
    complete((&s, &mem), &p, 1, 5000);
    let (w, fx) = wait_poll(&s, &mem, read, 0x1000, 5000);
    assert_eq!(w, Some(Waited::Value(1)));
    assert_eq!(failed_by(&fx), None);
}
