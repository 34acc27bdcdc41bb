//! The virtio path: forwarding, waiting, completing, failing.

use super::*;
use crate::state::event::FailReason;
use crate::state::virtio::{
    self, CONFIG_CHANGE, DEVICE_NEEDS_RESET, INTERRUPT_STATUS, Outcome, Pending, QUEUE_NOTIFY,
    STATUS,
};
use ferry_abi::hypercall::HypercallStatus;

fn access(s: &System, mem: &Mem, vcpu: usize, a: MmioAccess, now: u64) -> (Outcome, Effects) {
    let mut fx = Effects::new();
    let out = virtio::frontend_access(s, 0, vcpu, a, mem, now, &mut fx);
    (out, fx)
}

fn pending(out: Outcome) -> Pending {
    match out {
        Outcome::Wait(p) => p,
        other => panic!("expected a wait, got {other:?}"),
    }
}

fn poll(s: &System, mem: &Mem, p: &Pending, now: u64) -> (Option<u64>, Effects) {
    let mut fx = Effects::new();
    let v = virtio::poll(s, p, mem, now, &mut fx);
    (v, fx)
}

fn complete(
    (s, mem): (&System, &Mem),
    slot: u64,
    seq: u64,
    value: u64,
    now: u64,
) -> (Result<(), HypercallStatus>, Effects) {
    let mut fx = Effects::new();
    let r = virtio::complete(s, &s.partitions[1], (slot, seq, value), mem, now, &mut fx);
    (r, fx)
}

/// Completes and expects the backend's answer to be taken.
fn completes(sm: (&System, &Mem), slot: usize, seq: u32, value: u64, now: u64) {
    assert_eq!(
        complete(sm, slot as u64, u64::from(seq), value, now).0,
        Ok(())
    );
}

fn ready(s: &System, now: u64) -> Effects {
    let mut fx = Effects::new();
    assert_eq!(
        virtio::backend_ready(&s.partitions[1], now, &mut fx),
        Ok(())
    );
    fx
}

#[test]
fn a_read_is_forwarded_to_the_vcpus_slot_and_rings_the_doorbell() {
    let (s, mem) = running();
    let (out, fx) = access(&s, &mem, 1, load(0x0, 4), 10);
    let p = pending(out);
    assert_eq!(
        (p.slot, p.seq, p.asked_at, p.offset, p.write),
        (1, 1, 10, 0, false)
    );
    let r = mem.slot(1);
    assert_eq!(
        (r.offset, r.size, r.dir, r.vcpu, r.device),
        (0, 4, abi::dir::READ, 1, 0)
    );
    assert_eq!(r.state, abi::state::READY);
    assert_eq!(
        kicks(&fx, 1, false),
        1,
        "the backend's vCPU 0 takes the doorbell"
    );
}

#[test]
fn a_write_carries_its_value() {
    let (s, mem) = running();
    let (out, _) = access(&s, &mem, 0, store(0x24, 4, 0xdead_beef), 0);
    let p = pending(out);
    assert!(p.write);
    let r = mem.slot(0);
    assert_eq!(
        (r.dir, r.data, r.offset),
        (abi::dir::WRITE, 0xdead_beef, 0x24)
    );
}

#[test]
fn a_completed_read_returns_the_backends_value() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 1).0);
    assert_eq!(poll(&s, &mem, &p, 2).0, None);
    let (r, fx) = complete((&s, &mem), p.slot as u64, u64::from(p.seq), 0x7472_6976, 3);
    assert_eq!(r, Ok(()));
    assert!(fx.iter().any(|e| *e == Effect::WakeWaiters));
    assert_eq!(poll(&s, &mem, &p, 4).0, Some(0x7472_6976));
    assert_eq!(mem.slot(0).state, abi::state::DONE);
    assert!(!s.virtio[0].has_failed());
}

#[test]
fn a_queue_notify_is_posted_and_does_not_wait() {
    let (s, mem) = running();
    let (out, fx) = access(&s, &mem, 1, store(QUEUE_NOTIFY, 4, 2), 0);
    assert_eq!(out, Outcome::Done(0));
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), 1);
    let r = mem.record(PAGE, abi::posted_offset(0));
    assert_eq!((r.data, r.vcpu, r.flags), (2, 1, abi::FLAG_POSTED));
    assert_eq!(kicks(&fx, 1, false), 1);
}

#[test]
fn a_read_of_queue_notify_is_forwarded() {
    let (s, mem) = running();
    assert!(matches!(
        access(&s, &mem, 0, load(QUEUE_NOTIFY, 4), 0).0,
        Outcome::Wait(_)
    ));
}

#[test]
fn a_polling_backend_gets_no_doorbell() {
    let (s, mem) = system(Shape {
        doorbell: false,
        ..Shape::default()
    });
    switch_on_all(&s);
    let (_, fx) = access(&s, &mem, 0, store(QUEUE_NOTIFY, 4, 0), 0);
    assert!(fx.is_empty());
    let (out, fx) = access(&s, &mem, 0, load(0, 4), 0);
    assert!(matches!(out, Outcome::Wait(_)));
    assert!(fx.is_empty());
}

#[test]
fn before_the_backend_serves_an_access_may_wait_its_start_up_allowance() {
    let (s, mem) = running();
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    let allowance = ferry_abi::hypercall::BACKEND_START_MS;
    assert_eq!(
        poll(&s, &mem, &p, allowance).0,
        None,
        "well past the deadline, still starting"
    );
    let (v, fx) = poll(&s, &mem, &p, allowance + 1);
    assert_eq!(v, Some(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::NotStarted
        }
    ));
    assert!(s.virtio[0].has_failed());
}

#[test]
fn once_serving_the_deadline_counts_from_the_later_of_ask_and_ready() {
    let (s, mem) = running();
    let p = pending(access(&s, &mem, 0, load(0x10, 4), 5).0);
    ready(&s, 50);
    let deadline = 50 + u64::from(DEADLINE_MS);
    assert_eq!(poll(&s, &mem, &p, deadline).0, None);
    let (v, fx) = poll(&s, &mem, &p, deadline + 1);
    assert_eq!(v, Some(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::Deadline {
                offset: 0x10,
                write: false,
                ms: DEADLINE_MS
            }
        }
    ));
    assert_eq!(
        lines(&s, &fx)[0],
        "virtio device 0 (frontend 'fe', backend 'be') failed: the backend did not complete a read of offset 0x10 within 100 ms; the frontend sees DEVICE_NEEDS_RESET"
    );
}

#[test]
fn a_missed_deadline_raises_the_frontends_interrupt_once() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    let (_, fx) = poll(&s, &mem, &p, 1000);
    assert_eq!(kicks(&fx, 0, false), 1, "fe vCPU 0 takes the SPI");
    assert!(
        s.partitions[0]
            .vgic
            .lock()
            .irq(0, FE_INTID)
            .unwrap()
            .pending
    );
    // A second failure of the same device says nothing more.
    let mut fx = Effects::new();
    assert_eq!(virtio::fail(&s, 0, FailReason::NoSlot, &mut fx), u64::MAX);
    assert!(fx.is_empty());
}

#[test]
fn a_late_completion_after_the_deadline_is_garbage() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    poll(&s, &mem, &p, 1000);
    let (r, _) = complete((&s, &mem), p.slot as u64, u64::from(p.seq), 1, 1001);
    assert_eq!(r, Err(HypercallStatus::InvalidParameters));
}

#[test]
fn a_failed_device_answers_by_itself() {
    let (s, mem) = running();
    access(&s, &mem, 0, store(STATUS, 4, 0xf), 0);
    let mut fx = Effects::new();
    virtio::fail(&s, 0, FailReason::BackendStopped, &mut fx);
    let read = |off| access(&s, &mem, 0, load(off, 4), 0).0;
    assert_eq!(
        read(STATUS),
        Outcome::Done(u64::from(0xf | DEVICE_NEEDS_RESET))
    );
    assert_eq!(
        read(INTERRUPT_STATUS),
        Outcome::Done(u64::from(CONFIG_CHANGE))
    );
    assert_eq!(read(0), Outcome::Done(u64::MAX));
    assert_eq!(read(0x100), Outcome::Done(u64::MAX));
}

#[test]
fn after_failure_a_reset_write_is_remembered_and_nothing_is_forwarded() {
    let (s, mem) = running();
    let mut fx = Effects::new();
    virtio::fail(&s, 0, FailReason::BackendStopped, &mut fx);
    let (out, fx) = access(&s, &mem, 0, store(STATUS, 4, 0), 0);
    assert!(matches!(out, Outcome::Done(_)), "answered by Ferry");
    assert!(fx.is_empty());
    assert_eq!(
        access(&s, &mem, 0, load(STATUS, 4), 0).0,
        Outcome::Done(u64::from(DEVICE_NEEDS_RESET))
    );
    let (out, fx) = access(&s, &mem, 0, store(QUEUE_NOTIFY, 4, 0), 0);
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(fx.is_empty());
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), 0, "nothing posted");
}

#[test]
fn a_stopped_backend_fails_the_device_at_the_next_access() {
    let (s, mem) = running();
    s.partitions[1].mark_stopped();
    let (out, fx) = access(&s, &mem, 0, load(0, 4), 0);
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::BackendStopped
        }
    ));
}

#[test]
fn a_backend_that_stops_while_an_access_waits_fails_it() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    s.partitions[1].mark_stopped();
    let (v, fx) = poll(&s, &mem, &p, 1);
    assert_eq!(v, Some(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::StoppedWhileWaiting
        }
    ));
}

#[test]
fn a_device_failed_elsewhere_ends_the_wait_quietly() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    let mut fx = Effects::new();
    virtio::fail(&s, 0, FailReason::NoSlot, &mut fx);
    let (v, fx) = poll(&s, &mem, &p, 1);
    assert_eq!(v, Some(u64::MAX));
    assert!(fx.is_empty());
}

#[test]
fn a_completion_that_arrived_wins_over_a_stop_seen_later() {
    let (s, mem) = running();
    ready(&s, 0);
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    completes((&s, &mem), p.slot, p.seq, 42, 1);
    s.partitions[1].mark_stopped();
    assert_eq!(poll(&s, &mem, &p, 2).0, Some(42));
}

#[test]
fn a_backend_without_a_request_page_fails_the_device() {
    let (s, mem) = system(Shape {
        page: false,
        ..Shape::default()
    });
    let (out, fx) = access(&s, &mem, 0, load(0, 4), 0);
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::NoRequestPage
        }
    ));
    let mut fx = Effects::new();
    assert_eq!(
        virtio::backend_ready(&s.partitions[1], 0, &mut fx),
        Err(HypercallStatus::NotSupported)
    );
    assert_eq!(
        complete((&s, &mem), 0, 1, 0, 0).0,
        Err(HypercallStatus::NotSupported)
    );
}

#[test]
fn a_frontend_vcpu_beyond_the_slots_fails_the_device() {
    let (s, mem) = system(Shape {
        fe_vcpus: 9,
        ..Shape::default()
    });
    let (out, fx) = access(&s, &mem, 8, load(0, 4), 0);
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::NoSlot
        }
    ));
}

#[test]
fn a_completion_with_the_wrong_sequence_number_fails_the_device() {
    let (s, mem) = running();
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    let (r, fx) = complete((&s, &mem), p.slot as u64, u64::from(p.seq) + 7, 0, 1);
    assert_eq!(r, Err(HypercallStatus::InvalidParameters));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::Garbage {
                slot: 0,
                seq: u64::from(p.seq) + 7,
                waiting: p.seq
            }
        }
    ));
    assert_eq!(
        poll(&s, &mem, &p, 2).0,
        Some(u64::MAX),
        "the waiting access ends"
    );
}

#[test]
fn a_completion_for_an_idle_slot_of_its_own_device_is_garbage() {
    let (s, mem) = running();
    let (r, fx) = complete((&s, &mem), 3, 1, 0, 0);
    assert_eq!(r, Err(HypercallStatus::InvalidParameters));
    assert!(s.virtio[0].has_failed());
    assert!(lines(&s, &fx)[0].contains("but 0 is pending (0: none)"));
}

#[test]
fn a_completion_for_another_backends_slot_is_refused_without_failing_anything() {
    let (s, mem) = running();
    for slot in [8u64, 63, 64, 1 << 40, u64::MAX] {
        let (r, fx) = complete((&s, &mem), slot, 1, 0, 0);
        assert_eq!(r, Err(HypercallStatus::InvalidParameters), "slot {slot}");
        assert!(has(&fx, &Event::ForeignSlot { backend: 1, slot }));
        assert!(!s.virtio[0].has_failed());
    }
}

#[test]
fn a_completion_from_the_frontend_is_not_supported() {
    let (s, mem) = running();
    let mut fx = Effects::new();
    assert_eq!(
        virtio::complete(&s, &s.partitions[0], (0, 1, 0), &mem, 0, &mut fx),
        Err(HypercallStatus::NotSupported)
    );
}

#[test]
fn the_first_completion_counts_as_ready() {
    let (s, mem) = running();
    let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    completes((&s, &mem), 0, p.seq, 0, 77);
    assert_eq!(s.partitions[1].ioreq.as_ref().unwrap().ready_at(), Some(77));
}

#[test]
fn backend_ready_logs_once_and_always_wakes_waiters() {
    let (s, _) = running();
    let fx = ready(&s, 1234);
    assert_eq!(
        lines(&s, &fx),
        ["backend 'be' serves (1234 ms after its start)"]
    );
    assert!(fx.iter().any(|e| *e == Effect::WakeWaiters));
    let fx = ready(&s, 2000);
    assert_eq!(fx.events().count(), 0);
    assert!(fx.iter().any(|e| *e == Effect::WakeWaiters));
}

#[test]
fn notify_frontend_raises_the_devices_interrupt() {
    let (s, mem) = running();
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Ok(())
    );
    assert_eq!(kicks(&fx, 0, false), 1);
    assert!(
        s.partitions[0]
            .vgic
            .lock()
            .irq(0, FE_INTID)
            .unwrap()
            .pending
    );
}

#[test]
fn notify_frontend_of_a_device_it_does_not_serve_is_refused() {
    let (s, mem) = running();
    for device in [1u64, 8, u64::MAX] {
        let mut fx = Effects::new();
        assert_eq!(
            virtio::notify_frontend(&s, &s.partitions[1], device, &mem, &mut fx),
            Err(HypercallStatus::InvalidParameters)
        );
        assert!(fx.is_empty());
    }
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[0], 0, &mem, &mut fx),
        Err(HypercallStatus::InvalidParameters),
        "the frontend serves nothing"
    );
}

#[test]
fn notify_frontend_of_a_failed_device_is_refused() {
    let (s, mem) = running();
    let mut fx = Effects::new();
    virtio::fail(&s, 0, FailReason::BackendStopped, &mut fx);
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Err(HypercallStatus::InvalidParameters)
    );
}

#[test]
fn notify_frontend_to_a_disabled_interrupt_kicks_nobody() {
    let (s, mem) = system(Shape::default());
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Ok(())
    );
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn backend_stopped_fails_its_devices_and_wakes_waiters() {
    let (s, _) = running();
    let mut fx = Effects::new();
    virtio::backend_stopped(&s, 1, &mut fx);
    assert!(s.virtio[0].has_failed());
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::BackendStopped
        }
    ));
    assert_eq!(fx.iter().last(), Some(&Effect::WakeWaiters));
    let mut fx = Effects::new();
    virtio::backend_stopped(&s, 0, &mut fx);
    assert_eq!(fx.len(), 1, "the frontend serves nothing: only the wake");
}

#[test]
fn each_frontend_vcpu_has_its_own_slot() {
    let (s, mem) = running();
    let a = pending(access(&s, &mem, 0, load(0, 4), 0).0);
    let b = pending(access(&s, &mem, 1, load(4, 4), 0).0);
    assert_ne!(a.slot, b.slot);
    completes((&s, &mem), b.slot, b.seq, 2, 1);
    completes((&s, &mem), a.slot, a.seq, 1, 1);
    assert_eq!(poll(&s, &mem, &a, 2).0, Some(1));
    assert_eq!(poll(&s, &mem, &b, 2).0, Some(2));
}

#[test]
fn sequence_numbers_advance_per_access() {
    let (s, mem) = running();
    for expected in 1..=5u32 {
        let p = pending(access(&s, &mem, 0, load(0, 4), 0).0);
        assert_eq!(p.seq, expected);
        completes((&s, &mem), 0, p.seq, 0, 0);
        poll(&s, &mem, &p, 0);
    }
}

#[test]
fn fail_reasons_read_as_the_log_says() {
    let texts = [
        (FailReason::NoRequestPage, "the backend has no request page"),
        (FailReason::BackendStopped, "the backend partition stopped"),
        (
            FailReason::StoppedWhileWaiting,
            "the backend partition stopped while an access waited",
        ),
        (
            FailReason::NotStarted,
            "the backend did not start serving (BACKEND_READY) within 10000 ms of its start",
        ),
        (
            FailReason::Deadline {
                offset: 0x70,
                write: true,
                ms: 5,
            },
            "the backend did not complete a write of offset 0x70 within 5 ms",
        ),
    ];
    for (why, text) in texts {
        assert_eq!(why.to_string(), text);
    }
}
