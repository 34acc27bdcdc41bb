//! virtio-blk over asynchronous storage (`storage::StorageBlk`) through the mock
//! driver: many requests in flight, answers in any order, storage errors, flush,
//! the queue depth, resets with requests in flight, hostile drivers.

mod common;

use std::collections::VecDeque;

use common::*;
use ferry_virtio_backend::blk::{BlkOp, S_IOERR, S_OK, T_FLUSH, T_GET_ID, T_IN, T_OUT};
use ferry_virtio_backend::storage::{BUFFER_BYTES, Buffer, Busy, Storage, StorageBlk};
use ferry_virtio_backend::{Error, Options};

const SECTORS: u64 = 1024;

/// A disk whose operations finish when the test says, in any order.
struct MockDisk {
    disk: Vec<u8>,
    /// Started, not finished: (tag, op, buffer pointer, length).
    started: Vec<(u16, BlkOp, *mut u8)>,
    finished: VecDeque<(u16, u8)>,
    /// Sectors whose reads and writes fail.
    bad: std::ops::Range<u64>,
    /// Operations it takes at once.
    room: usize,
    ops: Vec<BlkOp>,
    read_only: bool,
}

impl MockDisk {
    fn new() -> Self {
        MockDisk {
            disk: vec![0; SECTORS as usize * 512],
            started: Vec::new(),
            finished: VecDeque::new(),
            bad: 0..0,
            room: usize::MAX,
            ops: Vec::new(),
            read_only: false,
        }
    }

    /// Performs the started operation at position `i` and queues its answer.
    fn finish(&mut self, i: usize) {
        let (tag, op, buf) = self.started.remove(i);
        let hits = |sector: u64, len: u32| {
            let end = sector + u64::from(len) / 512;
            sector < self.bad.end && end > self.bad.start
        };
        let status = match op {
            BlkOp::Read { sector, len } | BlkOp::Write { sector, len } if hits(sector, len) => {
                S_IOERR
            }
            BlkOp::Read { sector, len } => {
                let at = sector as usize * 512;
                // SAFETY: the model keeps the buffer for us until we answer (the contract
                // of `Storage::submit`).
                let b = unsafe { std::slice::from_raw_parts_mut(buf, len as usize) };
                b.copy_from_slice(&self.disk[at..at + len as usize]);
                S_OK
            }
            BlkOp::Write { sector, len } => {
                let at = sector as usize * 512;
                // SAFETY: as above.
                let b = unsafe { std::slice::from_raw_parts(buf, len as usize) };
                self.disk[at..at + len as usize].copy_from_slice(b);
                S_OK
            }
            BlkOp::Flush | BlkOp::GetId { .. } => S_OK,
        };
        self.finished.push_back((tag, status));
    }
}

impl Storage for MockDisk {
    fn capacity(&self) -> u64 {
        SECTORS
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, tag: u16, op: BlkOp, buf: &mut [u8]) -> Result<(), Busy> {
        if self.started.len() >= self.room {
            return Err(Busy);
        }
        self.ops.push(op);
        self.started.push((tag, op, buf.as_mut_ptr()));
        Ok(())
    }

    fn poll(&mut self) -> Option<(u16, u8)> {
        self.finished.pop_front()
    }
}

type Dev<'a> = Driver<StorageBlk<'a, MockDisk>>;

fn bufs(n: usize) -> Vec<Buffer> {
    vec![[0u8; BUFFER_BYTES]; n]
}

fn header(ty: u32, sector: u64) -> Vec<u8> {
    let mut h = ty.to_le_bytes().to_vec();
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&sector.to_le_bytes());
    h
}

/// A request in flight: its head, data buffer and status byte addresses.
struct Sent {
    head: u16,
    data: u64,
    status: u64,
}

/// Publishes a read (`out` empty, `len` bytes) or write (`out` = data) and kicks.
fn send(
    d: &mut Dev<'_>,
    ty: u32,
    sector: u64,
    out: &[u8],
    len: u32,
) -> (Sent, Result<usize, Error>) {
    let hdr = header(ty, sector);
    let h = d.buf_with(&hdr);
    let mut chain = vec![(h, 16, false)];
    let data = if out.is_empty() {
        d.buf(len.max(1))
    } else {
        d.buf_with(out)
    };
    if !out.is_empty() {
        chain.push((data, out.len() as u32, false));
    } else if len > 0 {
        chain.push((data, len, true));
    }
    let status = d.buf(1);
    d.poke(status, &[0xff]);
    chain.push((status, 1, true));
    let (head, r) = d.submit(0, &chain);
    (Sent { head, data, status }, r)
}

/// Completes every answer the storage has; returns the heads in order.
fn complete_all(d: &mut Dev<'_>) -> Vec<u16> {
    let mut heads = Vec::new();
    while let Some(done) = d.dev.model_mut().next_done() {
        d.dev.complete(0, done.head).expect("complete");
        heads.push(done.head);
    }
    heads
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

#[test]
fn many_in_flight_answered_in_any_order() {
    let mut b = bufs(16);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"ferry-disk", false),
        Options::new(),
        1,
        64,
    );
    let mut sent = Vec::new();
    for i in 0..8u64 {
        let (s, r) = send(&mut d, T_OUT, i * 8, &pattern(4096, i as u8), 0);
        assert_eq!(r, Ok(1), "taken, not finished");
        sent.push(s);
    }
    assert!(d.take_used(0).is_empty(), "nothing finished yet");
    assert_eq!(d.dev.model().in_flight(), 8);
    assert_eq!(d.dev.in_flight(0), 8);
    // The disk answers backwards.
    for i in (0..8).rev() {
        d.dev.model_mut().storage_mut().finish(i);
    }
    let heads = complete_all(&mut d);
    let want: Vec<u16> = sent.iter().rev().map(|s| s.head).collect();
    assert_eq!(heads, want);
    let used: Vec<u32> = d.take_used(0).iter().map(|u| u.0).collect();
    assert_eq!(used, want.iter().map(|&h| u32::from(h)).collect::<Vec<_>>());
    for s in &sent {
        assert_eq!(d.peek(s.status, 1), [S_OK]);
    }
    // Read them back, answered out of order too.
    let reads: Vec<Sent> = (0..8u64)
        .map(|i| send(&mut d, T_IN, i * 8, &[], 4096).0)
        .collect();
    for i in [3, 0, 5, 1, 3, 0, 1, 0] {
        d.dev.model_mut().storage_mut().finish(i);
    }
    complete_all(&mut d);
    for (i, r) in reads.iter().enumerate() {
        assert_eq!(d.peek(r.status, 1), [S_OK]);
        assert_eq!(d.peek(r.data, 4096), pattern(4096, i as u8), "read {i}");
    }
    assert_eq!(d.dev.in_flight(0), 0);
    assert!(!d.needs_reset());
}

#[test]
fn storage_errors_become_ioerr_and_the_device_stays_live() {
    let mut b = bufs(4);
    let mut disk = MockDisk::new();
    disk.bad = 100..108;
    let mut d = Driver::ready(
        StorageBlk::new(disk, &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    let (bad, _) = send(&mut d, T_IN, 104, &[], 512);
    let (good, _) = send(&mut d, T_IN, 0, &[], 512);
    d.dev.model_mut().storage_mut().finish(0);
    d.dev.model_mut().storage_mut().finish(0);
    let done = d.dev.model_mut().next_done().unwrap();
    assert_eq!(
        done.status, S_IOERR,
        "the embedder sees the storage's status to log"
    );
    d.dev.complete(0, done.head).unwrap();
    complete_all(&mut d);
    assert_eq!(d.peek(bad.status, 1), [S_IOERR]);
    assert_eq!(d.peek(good.status, 1), [S_OK]);
    assert!(!d.needs_reset());
}

#[test]
fn flush_waits_for_the_storage() {
    let mut b = bufs(4);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    let (f, r) = send(&mut d, T_FLUSH, 0, &[], 0);
    assert_eq!(r, Ok(1));
    assert_eq!(d.dev.model().storage().ops, [BlkOp::Flush]);
    assert_eq!(
        d.peek(f.status, 1),
        [0xff],
        "not answered before the storage"
    );
    assert!(complete_all(&mut d).is_empty());
    d.dev.model_mut().storage_mut().finish(0);
    assert_eq!(complete_all(&mut d), [f.head]);
    assert_eq!(d.peek(f.status, 1), [S_OK]);
}

#[test]
fn the_depth_and_a_busy_storage_hold_requests_in_the_ring() {
    let mut b = bufs(2);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    assert_eq!(d.dev.model().depth(), 2);
    assert_eq!(send(&mut d, T_IN, 0, &[], 512).1, Ok(1));
    assert_eq!(send(&mut d, T_IN, 1, &[], 512).1, Ok(1));
    let (third, r) = send(&mut d, T_IN, 2, &[], 512);
    assert_eq!(r, Ok(0), "no buffer: it waits in the ring");
    assert!(d.dev.model().waiting());
    d.dev.model_mut().storage_mut().finish(0);
    complete_all(&mut d);
    assert_eq!(d.dev.process_queue(0), Ok(1), "taken once a buffer is free");
    d.dev.model_mut().storage_mut().finish(0);
    d.dev.model_mut().storage_mut().finish(0);
    complete_all(&mut d);
    assert_eq!(d.peek(third.status, 1), [S_OK]);
    // A storage queue with no room: the same.
    d.dev.model_mut().storage_mut().room = 0;
    let (w, r) = send(&mut d, T_IN, 3, &[], 512);
    assert_eq!(r, Ok(0));
    d.dev.model_mut().storage_mut().room = 8;
    assert_eq!(d.dev.process_queue(0), Ok(1));
    d.dev.model_mut().storage_mut().finish(0);
    complete_all(&mut d);
    assert_eq!(d.peek(w.status, 1), [S_OK]);
}

#[test]
fn a_reset_drops_requests_in_flight_and_late_answers() {
    let mut b = bufs(2);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    let (old, _) = send(&mut d, T_IN, 0, &[], 512);
    assert_eq!(send(&mut d, T_IN, 1, &[], 512).1, Ok(1));
    d.dev.model_mut().storage_mut().finish(0);
    assert_eq!(
        d.dev.model_mut().next_done().map(|x| x.head),
        Some(old.head)
    );
    d.set_status(0); // reset with one answered and one still with the storage
    assert_eq!(
        d.dev.complete(0, old.head),
        Err(Error::NotPending {
            queue: 0,
            head: old.head
        })
    );
    assert!(!d.needs_reset(), "a late completion changes nothing");
    let f = d.device_features();
    assert!(d.negotiate(f));
    d.queues.clear();
    d.setup_queue(0, 16);
    d.driver_ok();
    // The buffer the storage still holds is not reused before it answers.
    let (a, r) = send(&mut d, T_IN, 2, &[], 512);
    assert_eq!(r, Ok(1));
    let (b2, r) = send(&mut d, T_IN, 3, &[], 512);
    assert_eq!(r, Ok(0), "one buffer is still with the storage");
    d.dev.model_mut().storage_mut().finish(0); // the stale one
    assert!(
        d.dev.model_mut().next_done().is_none(),
        "a dropped request's answer is skipped"
    );
    assert_eq!(d.dev.process_queue(0), Ok(1));
    d.dev.model_mut().storage_mut().finish(0);
    d.dev.model_mut().storage_mut().finish(0);
    complete_all(&mut d);
    assert_eq!(d.peek(a.status, 1), [S_OK]);
    assert_eq!(d.peek(b2.status, 1), [S_OK]);
}

#[test]
fn read_only_oversized_and_get_id_are_answered_at_once() {
    let mut b = bufs(2);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"ferry-phys", true),
        Options::new(),
        1,
        16,
    );
    assert_ne!(d.device_features() & (1 << 5), 0, "VIRTIO_BLK_F_RO offered");
    let (w, r) = send(&mut d, T_OUT, 0, &[1; 512], 0);
    assert_eq!(r, Ok(1));
    assert_eq!(d.peek(w.status, 1), [S_IOERR]);
    let (big, _) = send(&mut d, T_IN, 0, &[], BUFFER_BYTES as u32 + 512);
    assert_eq!(
        d.peek(big.status, 1),
        [S_IOERR],
        "larger than size_max x seg_max"
    );
    let (id, _) = send(&mut d, T_GET_ID, 0, &[], 20);
    assert_eq!(&d.peek(id.data, 10), b"ferry-phys");
    let (out, _) = send(&mut d, T_IN, SECTORS, &[], 512);
    assert_eq!(d.peek(out.status, 1), [S_IOERR], "past the end");
    assert!(
        d.dev.model().storage().ops.is_empty(),
        "none reached the storage"
    );
    assert_eq!(d.take_used(0).len(), 4);
}

#[test]
fn a_chain_changed_while_in_flight_gets_ioerr() {
    let mut b = bufs(2);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    let (s, _) = send(&mut d, T_IN, 0, &[], 1024);
    // The driver shrinks the data descriptor while the disk works.
    let desc = d.queues[0].desc + 16 * u64::from((s.head + 1) % 16);
    let mut len = [0u8; 4];
    len.copy_from_slice(&512u32.to_le_bytes());
    d.poke(desc + 8, &len);
    d.dev.model_mut().storage_mut().finish(0);
    complete_all(&mut d);
    assert_eq!(d.peek(s.status, 1), [S_IOERR]);
    assert!(!d.needs_reset());
}

#[test]
fn a_model_that_never_defers_completions_refuses_complete() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::ready(
        ferry_virtio_backend::blk::Blk::new(&mut disk, b"ram"),
        Options::new(),
        1,
        16,
    );
    assert!(matches!(
        d.dev.complete(0, 0),
        Err(Error::NotPending { .. })
    ));
    assert!(!d.needs_reset());
}

#[test]
fn a_queue_reset_drops_requests_in_flight_and_late_answers() {
    use ferry_virtio_backend::spec::reg;
    let mut b = bufs(2);
    let mut disk = MockDisk::new();
    disk.disk[512..1024].fill(0x11);
    disk.disk[1024..1536].fill(0x22);
    let options = Options {
        ring_reset: true,
        ..Options::new()
    };
    let mut d = Driver::ready(StorageBlk::new(disk, &mut b, b"d", false), options, 1, 16);
    let (old, r) = send(&mut d, T_IN, 1, &[], 512);
    assert_eq!(r, Ok(1));
    // Queue 0 reset on its own while the storage holds the read, then set up again.
    d.write_reg(reg::QUEUE_SEL, 0);
    d.write_reg(reg::QUEUE_RESET, 1);
    assert_eq!(d.dev.in_flight(0), 0);
    d.queues.clear();
    d.setup_queue(0, 16);
    let (new, r) = send(&mut d, T_IN, 2, &[], 512);
    assert_eq!(r, Ok(1));
    assert_eq!(new.head, old.head, "the same head, a different request");
    d.dev.model_mut().storage_mut().finish(0); // the dropped read of sector 1
    assert!(
        d.dev.model_mut().next_done().is_none(),
        "its answer is skipped"
    );
    d.dev.model_mut().storage_mut().finish(0); // the read of sector 2
    assert_eq!(complete_all(&mut d), [new.head]);
    assert_eq!(d.peek(new.status, 1), [S_OK]);
    assert_eq!(
        d.peek(new.data, 512),
        [0x22; 512],
        "sector 2's data, not sector 1's"
    );
    // QueueReady = 0 drops requests in flight the same way.
    let (_, r) = send(&mut d, T_IN, 1, &[], 512);
    assert_eq!(r, Ok(1));
    d.write_reg(reg::QUEUE_READY, 0);
    d.dev.model_mut().storage_mut().finish(0);
    assert!(d.dev.model_mut().next_done().is_none());
    assert_eq!(d.dev.model().in_flight(), 0, "no buffer stays taken");
    assert!(!d.needs_reset());
}

#[test]
fn a_head_made_available_again_while_in_flight_is_a_device_error() {
    let mut b = bufs(4);
    let mut d = Driver::ready(
        StorageBlk::new(MockDisk::new(), &mut b, b"d", false),
        Options::new(),
        1,
        16,
    );
    let (s, r) = send(&mut d, T_IN, 0, &[], 512);
    assert_eq!(r, Ok(1));
    // The same chain again, before the device answered it.
    d.push_avail(0, s.head);
    assert_eq!(d.kick(0), Err(Error::BadRequest));
    assert!(d.needs_reset());
}
