//! The request page: header, posted ring, sync slots and sequence numbers.

use super::*;

fn page(mem: &Mem) -> RequestPage {
    RequestPage::new(PAGE, Some(DOORBELL), 5, HZ, mem)
}

fn request(device: u8, vcpu: u16, offset: u64) -> Ioreq {
    Ioreq {
        offset,
        data: 0xabcd,
        seq: 0,
        size: 4,
        dir: abi::dir::WRITE,
        state: abi::state::READY,
        device,
        vcpu,
        flags: 0,
        reserved: 0,
    }
}

#[test]
fn the_header_says_what_the_page_is() {
    let mem = Mem::default();
    let p = page(&mem);
    assert_eq!(mem.word(0), abi::PAGE_MAGIC as u32);
    assert_eq!(mem.word(4), (abi::PAGE_MAGIC >> 32) as u32);
    assert_eq!(mem.word(8), abi::PAGE_VERSION);
    assert_eq!(p.created_at(), 5);
    assert_eq!(p.start_ticks, ferry_abi::hypercall::BACKEND_START_MS);
    assert_eq!(p.ready_at(), None);
}

#[test]
fn a_zero_frequency_is_taken_as_one() {
    let mem = Mem::default();
    let p = RequestPage::new(PAGE, None, 0, 0, &mem);
    assert_eq!(p.frequency, 1);
}

#[test]
fn posts_go_into_the_ring_in_order() {
    let mem = Mem::default();
    let p = page(&mem);
    for q in 0..5 {
        assert!(p.post(&mem, 2, 1, q));
    }
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), 5);
    for q in 0..5usize {
        let r = mem.record(PAGE, abi::posted_offset(q));
        assert_eq!(r.data, q as u64);
        assert_eq!(r.seq, q as u32 + 1);
        assert_eq!(r.offset, crate::state::virtio::QUEUE_NOTIFY);
        assert_eq!((r.device, r.vcpu, r.flags), (2, 1, abi::FLAG_POSTED));
        assert_eq!(r.state, abi::state::READY);
        assert_eq!(r.dir, abi::dir::WRITE);
    }
}

#[test]
fn a_full_ring_coalesces_into_overflow_bits() {
    let mem = Mem::default();
    let p = page(&mem);
    for _ in 0..abi::POSTED_SLOTS {
        assert!(p.post(&mem, 0, 0, 0));
    }
    assert!(!p.post(&mem, 0, 0, 3));
    assert!(!p.post(&mem, 0, 0, 35), "queue 35 shares bit 3");
    assert!(!p.post(&mem, 0, 0, 7));
    assert_eq!(mem.word(abi::OVERFLOW_OFFSET), 1 << 3 | 1 << 7);
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), abi::POSTED_SLOTS as u32);
}

#[test]
fn the_ring_wraps_when_the_backend_consumes() {
    let mem = Mem::default();
    let p = page(&mem);
    for round in 0..3u32 {
        for _ in 0..abi::POSTED_SLOTS {
            assert!(p.post(&mem, 0, 0, 1));
        }
        assert!(!p.post(&mem, 0, 0, 1), "round {round}: full");
        mem.set_tail((round + 1) * abi::POSTED_SLOTS as u32);
    }
    assert_eq!(
        mem.word(abi::POSTED_HEAD_OFFSET),
        3 * abi::POSTED_SLOTS as u32
    );
}

#[test]
fn head_and_tail_wrap_at_two_to_the_32() {
    let mem = Mem::default();
    let p = page(&mem);
    mem.write_u32(PAGE + abi::POSTED_HEAD_OFFSET as u64, u32::MAX);
    mem.set_tail(u32::MAX);
    assert!(p.post(&mem, 0, 0, 1));
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), 0);
    let r = mem.record(
        PAGE,
        abi::posted_offset(u32::MAX as usize % abi::POSTED_SLOTS),
    );
    assert_eq!(r.data, 1);
}

#[test]
fn a_corrupt_tail_ahead_of_head_counts_as_full() {
    let mem = Mem::default();
    let p = page(&mem);
    // tail > head: head - tail wraps to a huge count.
    mem.set_tail(10);
    assert!(!p.post(&mem, 0, 0, 2));
    assert_eq!(mem.word(abi::OVERFLOW_OFFSET), 1 << 2);
}

#[test]
fn begin_publishes_a_ready_record_with_a_fresh_sequence_number() {
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 3, request(0, 3, 0x70));
    assert_eq!(seq, 1);
    let r = mem.slot(3);
    assert_eq!(
        (r.seq, r.state, r.offset, r.data),
        (1, abi::state::READY, 0x70, 0xabcd)
    );
    assert_eq!(p.begin(&mem, 3, request(0, 3, 0x70)), 2);
    assert_eq!(p.begin(&mem, 4, request(0, 4, 0x70)), 1, "per slot");
}

#[test]
fn complete_then_take_done_returns_the_value_and_marks_the_slot_done() {
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 0, request(0, 0, 0));
    assert_eq!(p.take_done(&mem, 0, seq), None);
    assert_eq!(p.complete(&mem, 0, u64::from(seq), 0x7472_6976), Ok(()));
    assert_eq!(p.take_done(&mem, 0, seq), Some(0x7472_6976));
    assert_eq!(mem.slot(0).state, abi::state::DONE);
}

#[test]
fn a_completion_with_the_wrong_sequence_number_is_refused() {
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 0, request(0, 0, 0));
    assert_eq!(p.complete(&mem, 0, u64::from(seq) + 1, 1), Err(seq));
    assert_eq!(
        p.complete(&mem, 0, u64::from(seq) | 1 << 32, 1),
        Err(seq),
        "upper bits"
    );
    assert_eq!(p.take_done(&mem, 0, seq), None);
    assert_eq!(p.complete(&mem, 0, u64::from(seq), 1), Ok(()));
}

#[test]
fn a_completion_of_an_idle_slot_is_refused() {
    let mem = Mem::default();
    let p = page(&mem);
    assert_eq!(p.complete(&mem, 5, 0, 1), Err(0));
    assert_eq!(p.complete(&mem, 5, 1, 1), Err(0));
}

#[test]
fn a_second_completion_of_the_same_request_is_refused() {
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 0, request(0, 0, 0));
    assert_eq!(p.complete(&mem, 0, u64::from(seq), 1), Ok(()));
    assert_eq!(p.complete(&mem, 0, u64::from(seq), 2), Err(0));
    assert_eq!(p.take_done(&mem, 0, seq), Some(1));
}

#[test]
fn an_abandoned_request_cannot_complete_later() {
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 0, request(0, 0, 0));
    assert_eq!(mem.slot(0).state, abi::state::READY);
    p.abandon(&mem, 0);
    assert_eq!(
        mem.slot(0).state,
        abi::state::NONE,
        "the backend no longer sees it"
    );
    assert_eq!(p.complete(&mem, 0, u64::from(seq), 1), Err(0));
}

#[test]
fn sequence_numbers_skip_zero_and_never_repeat_across_the_wrap() {
    let mem = Mem::default();
    let p = page(&mem);
    p.set_next_seq(0, u32::MAX - 1);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(p.begin(&mem, 0, request(0, 0, 0)));
    }
    assert_eq!(seen, [u32::MAX - 1, u32::MAX, 1, 2, 3]);
    assert!(!seen.contains(&0));
}

#[test]
fn the_config_hook_starts_every_slot_near_the_wrap() {
    let mem = Mem::default();
    let p = page(&mem);
    p.start_seqs_at(u32::MAX);
    for slot in [0, 9, abi::SYNC_SLOTS - 1] {
        let first = p.begin(&mem, slot, request(0, 0, 0));
        let second = p.begin(&mem, slot, request(0, 0, 0));
        assert_eq!((first, second), (u32::MAX, 1), "slot {slot}");
    }
}

/// Across the wrap, a completed request's sequence number is never handed out
/// again right away: an old completion cannot satisfy a new access.
#[test]
fn an_old_completion_does_not_satisfy_the_access_after_the_wrap() {
    let mem = Mem::default();
    let p = page(&mem);
    p.set_next_seq(0, u32::MAX);
    let old = p.begin(&mem, 0, request(0, 0, 0));
    p.complete(&mem, 0, u64::from(old), 11).unwrap();
    assert_eq!(p.take_done(&mem, 0, old), Some(11));
    let new = p.begin(&mem, 0, request(0, 0, 0));
    assert_ne!(new, old);
    assert_ne!(new, 0);
    assert_eq!(p.take_done(&mem, 0, new), None, "not completed yet");
    let next = p.begin(&mem, 0, request(0, 0, 0));
    assert_ne!(next, new, "consecutive requests differ");
}

#[test]
fn mark_ready_counts_the_first_time_only() {
    let mem = Mem::default();
    let p = page(&mem);
    assert!(p.mark_ready(30));
    assert!(!p.mark_ready(40));
    assert_eq!(p.ready_at(), Some(30));
}

#[test]
fn ready_at_time_zero_is_still_ready() {
    let mem = Mem::default();
    let p = page(&mem);
    assert!(p.mark_ready(0));
    assert_eq!(p.ready_at(), Some(1));
}

#[test]
fn posted_and_sync_sequence_numbers_are_separate() {
    let mem = Mem::default();
    let p = page(&mem);
    p.post(&mem, 0, 0, 0);
    p.post(&mem, 0, 0, 0);
    assert_eq!(p.begin(&mem, 0, request(0, 0, 0)), 1);
    assert_eq!(mem.record(PAGE, abi::posted_offset(1)).seq, 2);
}

#[test]
fn a_completion_marks_the_record_done_at_once() {
    // The backend must never read the slot as READY again while Ferry may write
    // the next request over it (a torn read: the hostile suite's finding).
    let mem = Mem::default();
    let p = page(&mem);
    let seq = p.begin(&mem, 0, request(0, 0, 0));
    assert_eq!(mem.slot(0).state, abi::state::READY);
    p.complete(&mem, 0, u64::from(seq), 1).unwrap();
    assert_eq!(mem.slot(0).state, abi::state::DONE);
    assert_eq!(p.take_done(&mem, 0, seq), Some(1));
}
