//! `virtio_backend_device`: the portable device library (`ferry-virtio-backend`):
//! a blk, console, rng or asynchronous-storage blk (`storage::StorageBlk`)
//! `Device` over 64 KiB of driver memory, driven by a driver that is sometimes
//! well-behaved (feature negotiation, queues laid out and made ready, descriptor
//! chains, whole block requests and avail entries) and sometimes not (any
//! register access of any size, any bytes anywhere, notifies of anything), and
//! for `StorageBlk` by an embedder and a mock storage: a fake disk of 64 sectors
//! that takes at most `room` operations at once (1 to 4 buffers, so requests
//! wait for one) and answers started operations in the order and with the status
//! the input picks; the embedder takes the answers (`next_done`), completes them
//! (`Device::complete`) at once or later, completes heads it was never given,
//! and serves the queue again while the model waits.
//!
//! Input (structured, `arbitrary`): the device type and its options, then a
//! sequence of driver, embedder and storage steps.
//!
//! Checked after every step: nothing panics; MagicValue reads "virt"; DRIVER_OK
//! only with FEATURES_OK, FEATURES_OK only with VERSION_1 and offered features;
//! a register write touches driver memory only to start a used ring (QueueReady);
//! serving a queue that is not served (`NotReady`, `InvalidQueue`,
//! `QueueNotReady`) touches nothing, any other error sets DEVICE_NEEDS_RESET
//! with a configuration-change interrupt, and a pass that serves `n` requests, of
//! which it left `p` pending (`Device::in_flight` grew by `p`), publishes used.idx
//! advanced by exactly `n - p` (and writes no used.idx otherwise), with used
//! entries naming the heads it took from the available ring, in order.
//! `Device::complete` that succeeds publishes exactly one used entry (used.idx + 1)
//! naming the head given, a request the queue took and the storage answered, with
//! the answer the storage gave (the status; a read's data as the disk held it);
//! `Err(NotPending)` and `Err(NotReady)` change nothing (no memory write, status,
//! interrupts and requests in flight unchanged). The storage is never handed a
//! buffer it still holds, gets a write's data as the driver's buffers held it,
//! never sees GET_ID, a write on a read-only disk or an operation outside the disk
//! or a buffer, and finds a write's buffer untouched when it answers; `next_done`
//! reports each answer for a live request with the operation and status the
//! storage gave, and skips only answers for requests a device reset dropped (or
//! tags the storage did not hold); a request it reports can be completed (unless
//! the device failed since).
//!
//! What the harness holds to: the mock storage reports a tag it does not hold
//! only right before the embedder drains the answers (never one the model hands
//! out again meanwhile); the embedder completes what `next_done` gave on queue 0
//! (the model's one queue; other completions are of any queue and head).
//! Open finding (docs/fuzzing.md "Findings"), checks switched off by
//! `FUZZ_KNOWN_BUGS=queue-reset-in-flight`: a queue reset with requests in flight.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ferry_virtio_backend::blk::{Blk, BlkOp, S_IOERR, S_OK, T_FLUSH, T_GET_ID, T_IN, T_OUT};
use ferry_virtio_backend::console::{Console, ConsoleSink};
use ferry_virtio_backend::rng::{EntropySource, Rng};
use ferry_virtio_backend::spec::{self, desc_flags, feature, reg, status};
use ferry_virtio_backend::storage::{BUFFER_BYTES, Busy, Storage, StorageBlk};
use ferry_virtio_backend::{
    Device, Error, Interrupt, MAX_QUEUES, MemError, Options, Transport, VirtioDevice, WriteEffect,
};
use libfuzzer_sys::fuzz_target;

/// Open findings this target steers around: `FUZZ_KNOWN_BUGS`, comma-separated
/// (docs/fuzzing.md "Findings").
fn known_bug(name: &str) -> bool {
    static BUGS: OnceLock<Vec<String>> = OnceLock::new();
    BUGS.get_or_init(|| {
        let bugs = std::env::var("FUZZ_KNOWN_BUGS").unwrap_or_default();
        bugs.split(',').map(|b| b.trim().to_owned()).collect()
    })
    .iter()
    .any(|b| b == name)
}

/// Driver memory: `MEM` bytes at `BASE`.
const BASE: u64 = 0x4000_0000;
const MEM: usize = 0x1_0000;
/// The mock storage's disk, in 512-byte sectors.
const SECTORS: u64 = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Bits 0-1: blk, console, rng, storage blk; for the storage blk, bits 2-3:
    /// 1 to 4 buffers, bits 4-6: the storage takes 1 to 8 operations at once.
    kind: u8,
    options: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A register read of any offset and size.
    Read { offset: u16, size: u8 },
    /// A register write of any offset, size and value.
    Write { offset: u16, size: u8, value: u64 },
    /// Reset, ACKNOWLEDGE, DRIVER, `features` (with VERSION_1), FEATURES_OK, DRIVER_OK.
    Negotiate { features: u64, ok: bool },
    /// Queue `queue` with 2^`log` entries, its rings at these offsets, made ready.
    SetUp {
        queue: u8,
        log: u8,
        desc: u16,
        avail: u16,
        used: u16,
    },
    /// Descriptor `index` of queue `queue`'s table (as the driver laid it out).
    Desc {
        queue: u8,
        index: u16,
        addr: u16,
        len: u32,
        flags: u8,
        next: u16,
        wild: Option<u64>,
    },
    /// An avail entry, and avail.idx moved by `publish`.
    Avail { queue: u8, head: u16, publish: u8 },
    /// Any bytes anywhere in driver memory.
    Poke { offset: u16, bytes: Vec<u8> },
    /// QueueNotify, then serving the queue if the device asks.
    Kick { queue: u8 },
    /// `process_queue` of any queue number, notified or not.
    Process { queue: u16 },
    /// `poll`: every notified queue.
    Poll,
    /// Console input.
    Receive { bytes: Vec<u8> },
    /// The device's configuration changed.
    ConfigChanged,
    /// A whole block request (IN, OUT, FLUSH, GET_ID or type `ty`) of
    /// `sectors % 33` sectors at `sector % 72`: header, data and status at `at`,
    /// descriptors `head`, `head + 1`, ..., published in the available ring. The
    /// data is cut into `1 + split % 8` descriptors, or with `split & 0x80` each of
    /// them is the whole data (a request larger than memory).
    BlkRequest {
        queue: u8,
        head: u16,
        ty: u8,
        sector: u8,
        sectors: u8,
        split: u8,
        at: u16,
    },
    /// The storage finishes started operation `pick` (S_OK, or `status` when
    /// `status % 4 == 3`); then, with `drain`, the embedder completes every
    /// finished request and serves the queue again if the model waits.
    Answer { pick: u8, status: u8, drain: bool },
    /// The embedder takes one finished request (`next_done`) to complete later.
    NextDone,
    /// `Device::complete` of a request the embedder holds (`pick`), or of any
    /// queue and head.
    Complete { pick: u8, any: Option<(u8, u16)> },
    /// The storage takes at most `room % 6` operations at once from now on.
    StorageRoom { room: u8 },
    /// The storage reports a tag it does not hold (never given, or answered)
    /// with its next answer; the embedder completes every finished request.
    StorageBogus { tag: u16, status: u8 },
}

/// One transport access, as the harness logs it.
#[derive(Clone, Debug)]
struct Access {
    addr: u64,
    len: usize,
    write: bool,
    /// The first two bytes written.
    head: u16,
    /// The bytes written.
    data: Vec<u8>,
}

/// Bytes the device read from driver memory lately (the last ones at the end),
/// for the mock storage to check a write's data against.
type Reads = Rc<RefCell<Vec<u8>>>;

/// Driver memory with a log of the device's accesses.
struct Mem {
    bytes: Vec<u8>,
    log: Vec<Access>,
    notifies: Vec<Interrupt>,
    reads: Reads,
}

impl Mem {
    fn range(&self, addr: u64, len: usize) -> Result<Range<usize>, MemError> {
        let off = usize::try_from(addr.checked_sub(BASE).ok_or(MemError)?).map_err(|_| MemError)?;
        let end = off.checked_add(len).ok_or(MemError)?;
        (end <= self.bytes.len())
            .then_some(off..end)
            .ok_or(MemError)
    }
}

impl Transport for Mem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.log.push(Access {
            addr,
            len: buf.len(),
            write: false,
            head: 0,
            data: Vec::new(),
        });
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        let mut reads = self.reads.borrow_mut();
        if reads.len() > 2 * BUFFER_BYTES {
            reads.drain(..BUFFER_BYTES);
        }
        reads.extend_from_slice(buf);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let head = u16::from_le_bytes([
            data.first().copied().unwrap_or(0),
            data.get(1).copied().unwrap_or(0),
        ]);
        self.log.push(Access {
            addr,
            len: data.len(),
            write: true,
            head,
            data: data.to_vec(),
        });
        let r = self.range(addr, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn notify(&mut self, cause: Interrupt) {
        self.notifies.push(cause);
    }
}

/// An operation the mock storage was given.
#[derive(Clone, Debug)]
struct Op {
    tag: u16,
    op: BlkOp,
    /// The buffer (one of the model's, `BUFFER_BYTES` long).
    buf: *mut u8,
    /// A write's data as submitted.
    data: Vec<u8>,
    /// Its request was dropped by a device reset: `next_done` must skip it.
    stale: bool,
}

/// An operation the mock storage finished.
#[derive(Clone, Debug)]
struct Answer {
    tag: u16,
    op: BlkOp,
    status: u8,
    /// A read's data (the disk's bytes when it was answered).
    read: Vec<u8>,
    /// `next_done` must skip it: a device reset dropped its request, or the
    /// storage never held the tag.
    stale: bool,
}

/// A finished request as the embedder got it from `next_done`, with what the
/// storage did: the harness's copy of the model's answered requests.
#[derive(Clone, Debug)]
struct Finished {
    head: u16,
    op: BlkOp,
    status: u8,
    read: Vec<u8>,
}

impl Finished {
    /// Whether `writes` (the request's writes of one `Device::complete`, before its
    /// used entry) answer this request: a status byte, after a read's data.
    fn answered_by(&self, writes: &[&Access]) -> bool {
        let Some((st, data)) = writes.split_last() else {
            return false;
        };
        if st.len != 1 {
            return false;
        }
        let st = st.data[0];
        let data: Vec<u8> = data.iter().flat_map(|a| a.data.iter().copied()).collect();
        match self.op {
            _ if self.status != S_OK => st == S_IOERR && data.is_empty(),
            // A chain changed while the storage worked gets S_IOERR and no data.
            BlkOp::Read { .. } => {
                (st == S_OK && data == self.read) || (st == S_IOERR && data.is_empty())
            }
            _ => st == S_OK && data.is_empty(),
        }
    }
}

/// A disk of `SECTORS` sectors whose operations finish when the input says, in
/// any order, with the status it says.
struct MockDisk {
    disk: Vec<u8>,
    /// The model's buffers: where buffer `tag` is, and how many there are.
    base: *mut u8,
    bufs: usize,
    /// Operations it takes at once.
    room: usize,
    read_only: bool,
    started: Vec<Op>,
    finished: VecDeque<Answer>,
    /// What `poll` reported since the harness last looked.
    polled: Vec<Answer>,
    reads: Reads,
}

impl MockDisk {
    /// Whether the storage holds buffer `tag` (given, not yet reported by `poll`).
    fn holds(&self, tag: u16) -> bool {
        self.started.iter().any(|o| o.tag == tag) || self.finished.iter().any(|a| a.tag == tag)
    }

    /// Finishes started operation `pick`.
    fn answer(&mut self, pick: u8, status: u8) {
        if self.started.is_empty() {
            return;
        }
        let o = self.started.remove(usize::from(pick) % self.started.len());
        let status = if status % 4 == 3 { status } else { S_OK };
        // SAFETY: `o.buf` is one of the model's buffers, which outlive the model and
        // this storage (the fuzz target's local); the harness runs outside the
        // model, which does not touch a buffer the storage holds until `poll`
        // reported it (what `Storage::submit` promises; the write check below).
        let buf = unsafe { std::slice::from_raw_parts_mut(o.buf, BUFFER_BYTES) };
        let mut read = Vec::new();
        match o.op {
            BlkOp::Write { sector, len } => {
                let len = len as usize;
                assert!(
                    buf[..len] == o.data[..],
                    "the model changed write buffer {} while the storage held it",
                    o.tag
                );
                if status == S_OK {
                    let at = sector as usize * 512;
                    self.disk[at..at + len].copy_from_slice(&buf[..len]);
                }
            }
            BlkOp::Read { sector, len } if status == S_OK => {
                let (at, len) = (sector as usize * 512, len as usize);
                read = self.disk[at..at + len].to_vec();
                buf[..len].copy_from_slice(&read);
            }
            _ => {}
        }
        self.finished.push_back(Answer {
            tag: o.tag,
            op: o.op,
            status,
            read,
            stale: o.stale,
        });
    }

    /// A device reset: the model drops every request in flight.
    fn reset(&mut self) {
        for o in &mut self.started {
            o.stale = true;
        }
        for a in &mut self.finished {
            a.stale = true;
        }
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
        assert!(
            usize::from(tag) < self.bufs,
            "tag {tag}: the model has {} buffers",
            self.bufs
        );
        assert_eq!(buf.len(), BUFFER_BYTES);
        assert_eq!(
            buf.as_ptr(),
            self.base
                .wrapping_add(usize::from(tag) * BUFFER_BYTES)
                .cast_const(),
            "tag {tag} is not buffer {tag}"
        );
        assert!(
            !self.holds(tag),
            "buffer {tag} handed to the storage again before it answered ({op:?})"
        );
        let mut data = Vec::new();
        match op {
            BlkOp::Read { sector, len } | BlkOp::Write { sector, len } => {
                assert!(
                    (len as usize).is_multiple_of(512)
                        && len as usize <= BUFFER_BYTES
                        && sector + u64::from(len) / 512 <= SECTORS,
                    "{op:?} outside the disk or the buffer"
                );
                if let BlkOp::Write { len, .. } = op {
                    assert!(!self.read_only, "{op:?} on a read-only disk");
                    data = buf[..len as usize].to_vec();
                    assert!(
                        self.reads.borrow().ends_with(&data),
                        "{op:?}: the buffer does not hold what the device read last"
                    );
                }
            }
            BlkOp::Flush => {}
            BlkOp::GetId { .. } => panic!("{op:?} reached the storage"),
        }
        if self.started.len() >= self.room {
            return Err(Busy);
        }
        self.started.push(Op {
            tag,
            op,
            buf: buf.as_mut_ptr(),
            data,
            stale: false,
        });
        Ok(())
    }

    fn poll(&mut self) -> Option<(u16, u8)> {
        let a = self.finished.pop_front()?;
        let r = (a.tag, a.status);
        self.polled.push(a);
        Some(r)
    }
}

/// What a device kind adds to the driver's steps.
trait Model: VirtioDevice + Sized {
    /// Console input (`Device::receive`); nothing for other devices.
    fn receive(_dev: &mut Device<Self, Mem>, _bytes: &[u8]) {}

    /// The mock storage behind `StorageBlk`.
    fn disk(&mut self) -> Option<&mut MockDisk> {
        None
    }

    /// `StorageBlk::next_done`, checked against what the storage answered.
    fn take_done(&mut self) -> Option<Finished> {
        None
    }

    /// `StorageBlk::waiting`.
    fn deferred(&self) -> bool {
        false
    }

    /// Requests with the storage as the model counts them, and as the storage does.
    fn with_storage(&self) -> (usize, usize) {
        (0, 0)
    }
}

impl Model for Blk<'_> {}

impl<E: EntropySource> Model for Rng<E> {}

impl<S: ConsoleSink, const RX: usize> Model for Console<S, RX> {
    fn receive(dev: &mut Device<Self, Mem>, bytes: &[u8]) {
        dev.receive(bytes);
    }
}

impl Model for StorageBlk<'_, MockDisk> {
    fn disk(&mut self) -> Option<&mut MockDisk> {
        Some(self.storage_mut())
    }

    fn take_done(&mut self) -> Option<Finished> {
        self.storage_mut().polled.clear();
        let done = self.next_done();
        let polled = std::mem::take(&mut self.storage_mut().polled);
        let skipped = if done.is_some() {
            &polled[..polled.len().saturating_sub(1)]
        } else {
            &polled[..]
        };
        for a in skipped {
            assert!(
                a.stale,
                "next_done skipped the answer for live tag {}",
                a.tag
            );
        }
        let done = done?;
        let a = polled.last().expect("next_done without a poll");
        assert!(
            !a.stale,
            "next_done reported tag {}: its request a reset dropped, or not the storage's",
            a.tag
        );
        assert_eq!(
            (done.op, done.status),
            (a.op, a.status),
            "next_done: not what the storage did under tag {}",
            a.tag
        );
        Some(Finished {
            head: done.head,
            op: a.op,
            status: a.status,
            read: a.read.clone(),
        })
    }

    fn deferred(&self) -> bool {
        self.waiting()
    }

    fn with_storage(&self) -> (usize, usize) {
        let s = self.storage();
        (self.in_flight(), s.started.len() + s.finished.len())
    }
}

/// The driver's view of a queue it set up.
#[derive(Clone, Copy, Debug, Default)]
struct DQueue {
    size: u16,
    desc: u64,
    avail: u64,
    avail_idx: u16,
}

/// A ready queue's requests as the harness follows them: where its rings are
/// (the device's registers), the next available entry the device takes, and the
/// heads it took and left pending.
#[derive(Clone, Debug)]
struct Taken {
    num: u16,
    avail: u64,
    used: u64,
    next_avail: u16,
    pending: Vec<u16>,
}

/// The driver and what the harness expects of the device.
struct Driver<D: Model> {
    dev: Device<D, Mem>,
    queues: [DQueue; MAX_QUEUES],
    /// Each queue: its used ring and the used.idx the device will publish next
    /// (`None`: not known, the queue is not ready or a pass failed half-way).
    used: [Option<(u64, u16)>; MAX_QUEUES],
    /// Each queue: the requests it took (`None`: not known).
    taken: [Option<Taken>; MAX_QUEUES],
    /// Each queue was ready after the last step.
    was_ready: [bool; MAX_QUEUES],
    /// The requests the model answered and not yet finished, as `next_done` gave them.
    finished: Vec<Finished>,
    /// Heads the embedder took from `next_done` and completes later.
    held: Vec<u16>,
}

const SIZES: [u8; 4] = [1, 2, 4, 8];

fuzz_target!(|input: Input| {
    let o = input.options;
    let options = Options {
        event_idx: o & 1 != 0,
        indirect_desc: o & 2 != 0,
        ring_reset: o & 4 != 0,
        queue_size_max: 1 << (o >> 4).min(15),
        ..Options::new()
    };
    let steps = &input.steps[..input.steps.len().min(256)];
    let reads = Reads::default();
    let k = input.kind;
    match k % 4 {
        0 => {
            let mut disk = vec![0u8; 16 * 512];
            let blk = Blk::new(&mut disk, b"fuzz").read_only(o & 8 != 0);
            run(blk, options, steps, reads);
        }
        1 => {
            let console = Console::<_, 64>::new(|_: &[u8]| {});
            run(console, options, steps, reads);
        }
        2 => {
            let mut n = 0u8;
            let source = move |b: &mut [u8]| {
                b.fill({
                    n = n.wrapping_add(1);
                    n
                });
                b.len() / 2 + 1
            };
            run(Rng::new(source), options, steps, reads)
        }
        _ => {
            let mut bufs = vec![[0u8; BUFFER_BYTES]; 1 + usize::from(k >> 2) % 4];
            let disk = MockDisk {
                disk: (0..SECTORS as usize * 512)
                    .map(|i| (i / 512) as u8)
                    .collect(),
                base: bufs.as_mut_ptr().cast(),
                bufs: bufs.len(),
                room: 1 + usize::from(k >> 4) % 8,
                read_only: o & 8 != 0,
                started: Vec::new(),
                finished: VecDeque::new(),
                polled: Vec::new(),
                reads: reads.clone(),
            };
            run(
                StorageBlk::new(disk, &mut bufs, b"fuzz-storage", false),
                options,
                steps,
                reads,
            );
        }
    }
});

fn run<D: Model>(model: D, options: Options, steps: &[Step], reads: Reads) {
    let mem = Mem {
        bytes: vec![0; MEM],
        log: Vec::new(),
        notifies: Vec::new(),
        reads,
    };
    let mut d = Driver {
        dev: Device::new(model, mem, options),
        queues: [DQueue::default(); MAX_QUEUES],
        used: [None; MAX_QUEUES],
        taken: std::array::from_fn(|_| None),
        was_ready: [false; MAX_QUEUES],
        finished: Vec::new(),
        held: Vec::new(),
    };
    for step in steps {
        d.dev.transport_mut().log.clear();
        d.step(step);
        d.check_state();
        d.track_used();
    }
}

impl<D: Model> Driver<D> {
    fn read_reg(&self, offset: u32) -> u32 {
        self.dev.mmio_read(offset, 4) as u32
    }

    fn write_reg(&mut self, offset: u32, value: u32) -> WriteEffect {
        let dropped = self.drops_queue(offset, 4, u64::from(value));
        let effect = self.dev.mmio_write(offset, 4, u64::from(value));
        if effect == WriteEffect::Reset {
            self.on_reset();
        }
        if dropped {
            self.on_queue_reset();
        }
        effect
    }

    /// Whether this register write resets a queue of the device on its own
    /// (`QueueReady` = 0, or `QueueReset` = 1 with VIRTIO_F_RING_RESET), so the
    /// model drops that queue's requests in flight.
    fn drops_queue(&self, offset: u32, size: usize, value: u64) -> bool {
        if size != 4 {
            return false;
        }
        let sel = self.read_reg(reg::QUEUE_SEL);
        let exists = sel < u32::from(self.dev.model().num_queues()) && (sel as usize) < MAX_QUEUES;
        let value = value as u32;
        exists
            && match offset {
                reg::QUEUE_READY => value == 0,
                reg::QUEUE_RESET => {
                    value == 1 && self.dev.driver_features() & feature::RING_RESET != 0
                }
                _ => false,
            }
    }

    /// A queue reset: the storage model drops its requests in flight (it has one
    /// queue) as at a device reset.
    fn on_queue_reset(&mut self) {
        self.on_reset();
    }

    /// A device reset: the model drops its requests (answered or not).
    fn on_reset(&mut self) {
        self.finished.clear();
        if let Some(disk) = self.dev.model_mut().disk() {
            disk.reset();
        }
    }

    /// Reads queue `q`'s register at `offset` without changing QueueSel.
    fn queue_reg(&mut self, q: u16, offset: u32) -> u32 {
        let sel = self.read_reg(reg::QUEUE_SEL);
        self.write_reg(reg::QUEUE_SEL, u32::from(q));
        let v = self.read_reg(offset);
        self.write_reg(reg::QUEUE_SEL, sel);
        v
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Read { offset, size } => {
                let _ = self
                    .dev
                    .mmio_read(u32::from(offset), SIZES[usize::from(size % 4)]);
            }
            Step::Write {
                offset,
                size,
                value,
            } => self.write(u32::from(offset), size, value),
            Step::Negotiate { features, ok } => self.negotiate(features, ok),
            Step::SetUp {
                queue,
                log,
                desc,
                avail,
                used,
            } => self.set_up(
                u16::from(queue) % MAX_QUEUES as u16,
                log,
                (desc, avail, used),
            ),
            Step::Desc {
                queue,
                index,
                addr,
                len,
                flags,
                next,
                wild,
            } => {
                let q = self.queues[usize::from(queue) % MAX_QUEUES];
                let addr = wild.unwrap_or(BASE + u64::from(addr));
                self.desc(&q, index, (addr, len, u16::from(flags % 8)), next);
            }
            Step::Avail {
                queue,
                head,
                publish,
            } => self.avail(usize::from(queue) % MAX_QUEUES, head, publish % 4),
            Step::Poke { offset, ref bytes } => self.poke(BASE + u64::from(offset), bytes),
            Step::Kick { queue } => {
                if let WriteEffect::QueueNotify(q) =
                    self.write_reg(reg::QUEUE_NOTIFY, u32::from(queue))
                {
                    self.process(q);
                }
            }
            Step::Process { queue } => self.process(queue),
            Step::Poll => self.poll(),
            Step::Receive { ref bytes } => {
                D::receive(&mut self.dev, bytes);
                // If it served a queue, which requests it took is not known.
                if !self.dev.transport().log.is_empty() {
                    self.taken = std::array::from_fn(|_| None);
                }
            }
            Step::ConfigChanged => self.dev.config_changed(),
            Step::BlkRequest {
                queue,
                head,
                ty,
                sector,
                sectors,
                split,
                at,
            } => self.blk_request(queue, head, (ty, sector, sectors, split), at),
            Step::StorageBogus { tag, status } => {
                if let Some(disk) = self.dev.model_mut().disk() {
                    if !disk.holds(tag) {
                        disk.finished.push_back(Answer {
                            tag,
                            op: BlkOp::Flush,
                            status,
                            read: Vec::new(),
                            stale: true,
                        });
                    }
                    self.drain();
                }
            }
            Step::Answer {
                pick,
                status,
                drain,
            } => {
                if let Some(disk) = self.dev.model_mut().disk() {
                    disk.answer(pick, status);
                }
                if drain {
                    self.drain();
                }
            }
            Step::NextDone => {
                if let Some(f) = self.dev.model_mut().take_done() {
                    self.held.push(f.head);
                    self.finished.push(f);
                }
            }
            Step::Complete { pick, any } => match any {
                Some((queue, head)) => {
                    let _ = self.complete(u16::from(queue), head);
                }
                None if !self.held.is_empty() => {
                    let head = self.held.remove(usize::from(pick) % self.held.len());
                    let _ = self.complete(0, head);
                }
                None => {}
            },
            Step::StorageRoom { room } => {
                if let Some(disk) = self.dev.model_mut().disk() {
                    disk.room = usize::from(room % 6);
                }
            }
        }
    }

    /// A register write; only QueueReady may touch memory: the used ring's header.
    fn write(&mut self, offset: u32, size: u8, value: u64) {
        let dropped = self.drops_queue(offset, usize::from(SIZES[usize::from(size % 4)]), value);
        let effect = self
            .dev
            .mmio_write(offset, SIZES[usize::from(size % 4)], value);
        if effect == WriteEffect::Reset {
            self.on_reset();
        }
        if dropped {
            self.on_queue_reset();
        }
        let log = std::mem::take(&mut self.dev.transport_mut().log);
        let ready = offset == reg::QUEUE_READY && size % 4 == 2;
        for a in log.iter().filter(|a| a.write) {
            assert!(
                ready && a.len == 4,
                "register write {offset:#x} wrote memory: {a:?}"
            );
        }
    }

    fn negotiate(&mut self, features: u64, ok: bool) {
        self.write_reg(reg::STATUS, 0);
        self.write_reg(reg::STATUS, u32::from(status::ACKNOWLEDGE));
        self.write_reg(reg::STATUS, u32::from(status::ACKNOWLEDGE | status::DRIVER));
        let offered = self.dev.device_features();
        let f = if ok {
            features & offered | feature::VERSION_1
        } else {
            features
        };
        for (sel, word) in [(0, f as u32), (1, (f >> 32) as u32)] {
            self.write_reg(reg::DRIVER_FEATURES_SEL, sel);
            self.write_reg(reg::DRIVER_FEATURES, word);
        }
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, u32::from(s));
        self.write_reg(reg::STATUS, u32::from(s | status::DRIVER_OK));
    }

    fn set_up(&mut self, q: u16, log: u8, (desc, avail, used): (u16, u16, u16)) {
        let size = 1u16 << (log % 9);
        let at = |x: u16, align: u64| (BASE + u64::from(x)) & !(align - 1);
        let (desc, avail, used) = (at(desc, 16), at(avail, 2), at(used, 4));
        self.write_reg(reg::QUEUE_SEL, u32::from(q));
        self.write_reg(reg::QUEUE_NUM, u32::from(size));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, avail),
            (reg::QUEUE_DEVICE_LOW, used),
        ] {
            self.write_reg(low, addr as u32);
            self.write_reg(low + 4, (addr >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 2, 1);
        self.queues[usize::from(q)] = DQueue {
            size,
            desc,
            avail,
            avail_idx: 0,
        };
    }

    /// Descriptor `index` of queue `q`'s table: (`addr`, `len`, `flags`), `next`.
    fn desc(&mut self, q: &DQueue, index: u16, (addr, len, flags): (u64, u32, u16), next: u16) {
        let index = index % q.size.max(1);
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..16].copy_from_slice(&(next % q.size.max(1)).to_le_bytes());
        self.poke(q.desc + 16 * u64::from(index), &b);
    }

    /// An avail entry for `head` in queue `i`, and avail.idx moved by `publish`.
    fn avail(&mut self, i: usize, head: u16, publish: u8) {
        let q = self.queues[i];
        let slot = q.avail + 4 + 2 * u64::from(q.avail_idx % q.size.max(1));
        self.poke(slot, &(head % q.size.max(1)).to_le_bytes());
        let idx = q.avail_idx.wrapping_add(u16::from(publish));
        self.poke(q.avail + 2, &idx.to_le_bytes());
        self.queues[i].avail_idx = idx;
    }

    /// A block request as a driver lays it out, published.
    fn blk_request(
        &mut self,
        queue: u8,
        head: u16,
        (ty, sector, sectors, split): (u8, u8, u8, u8),
        at: u16,
    ) {
        let i = usize::from(queue) % MAX_QUEUES;
        let q = self.queues[i];
        let ty = [T_IN, T_OUT, T_FLUSH, T_GET_ID, u32::from(ty)][usize::from(ty % 5)];
        let sector = u64::from(sector) % (SECTORS + 8);
        let len: u32 = match ty {
            T_IN | T_OUT => u32::from(sectors % 33) * 512,
            T_GET_ID => 20,
            _ => 0,
        };
        let at = BASE + u64::from(at);
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&ty.to_le_bytes());
        hdr[8..16].copy_from_slice(&sector.to_le_bytes());
        self.poke(at, &hdr);
        let data = at + 16;
        if ty == T_OUT {
            let pattern: Vec<u8> = (0..len)
                .map(|k| (k as u8).wrapping_mul(31) ^ sector as u8 ^ head as u8)
                .collect();
            self.poke(data, &pattern);
        }
        let status = data + u64::from(len);
        self.poke(status, &[0xff]);
        let mut chain = vec![(at, 16, false)];
        let pieces = 1 + u32::from(split % 8);
        for k in 0..pieces {
            let (from, to) = if split & 0x80 != 0 {
                (0, len)
            } else {
                (k * len / pieces, (k + 1) * len / pieces)
            };
            if to > from {
                chain.push((data + u64::from(from), to - from, ty != T_OUT));
            }
        }
        chain.push((status, 1, true));
        let n = chain.len();
        for (k, (addr, len, writable)) in chain.into_iter().enumerate() {
            let index = head.wrapping_add(k as u16);
            let mut flags = if writable { desc_flags::WRITE } else { 0 };
            if k + 1 < n {
                flags |= desc_flags::NEXT;
            }
            self.desc(&q, index, (addr, len, flags), index.wrapping_add(1));
        }
        self.avail(i, head, 1);
    }

    /// Writes driver memory (what lies outside the 64 KiB is dropped).
    fn poke(&mut self, addr: u64, bytes: &[u8]) {
        let mem = &mut self.dev.transport_mut().bytes;
        let Some(off) = addr.checked_sub(BASE).and_then(|o| usize::try_from(o).ok()) else {
            return;
        };
        let len = bytes.len().min(MEM.saturating_sub(off));
        if len > 0 {
            mem[off..off + len].copy_from_slice(&bytes[..len]);
        }
    }

    /// The embedder after the storage's interrupt: completes every finished
    /// request, then serves the queue again if the model waits.
    fn drain(&mut self) {
        while let Some(f) = self.dev.model_mut().take_done() {
            let head = f.head;
            self.finished.push(f);
            // A request the model just answered is one of this device's (a device
            // reset drops the others): unless the device failed since, it completes.
            if let Err(e @ Error::NotPending { .. }) = self.complete(0, head) {
                assert!(
                    known_bug("queue-reset-in-flight"),
                    "{e:?}: the request the storage answered is never completed, its buffer \
                     never freed"
                );
            }
        }
        if self.dev.model().deferred() {
            self.process(0);
        }
    }

    /// `poll`: as `process` of the one notified queue if there is one.
    fn poll(&mut self) {
        let pending = self.dev.pending_queues();
        if pending.count_ones() == 1 {
            let q = pending.trailing_zeros() as u16;
            return self.serve(q, |d| d.poll());
        }
        let result = self.dev.poll();
        self.check_result(result);
        // Which requests each served queue took is not known.
        for (q, t) in self.taken.iter_mut().enumerate() {
            if pending & (1 << q) != 0 {
                *t = None;
            }
        }
    }

    fn process(&mut self, q: u16) {
        self.serve(q, |d| d.process_queue(q));
    }

    /// Serves queue `q` (`call`) and checks the outcome.
    fn serve(&mut self, q: u16, call: impl FnOnce(&mut Device<D, Mem>) -> Result<usize, Error>) {
        self.dev.transport_mut().log.clear();
        self.dev.transport().reads.borrow_mut().clear();
        let before = self.dev.status();
        let in_before = self.dev.in_flight(q);
        let i = usize::from(q);
        let ring = self
            .taken
            .get(i)
            .cloned()
            .flatten()
            .map(|t| self.avail_ring(&t));
        let result = call(&mut self.dev);
        let log = self.dev.transport().log.clone();
        if let Err(Error::NotReady | Error::InvalidQueue(_) | Error::QueueNotReady(_)) = result {
            assert!(log.is_empty(), "{result:?} after touching memory: {log:?}");
            assert_eq!(self.dev.status(), before, "{result:?} changed the status");
            assert_eq!(self.dev.in_flight(q), in_before, "{result:?} took requests");
            return;
        }
        self.check_result(result.map(|_| 0));
        let Ok(n) = result else {
            if i < MAX_QUEUES {
                self.used[i] = None;
                self.taken[i] = None;
            }
            return;
        };
        let pending = self.dev.in_flight(q).wrapping_sub(in_before);
        assert!(
            usize::from(pending) <= n,
            "queue {q}: {n} served, but {pending} more in flight"
        );
        let done = n - usize::from(pending);
        let used_before = self.used[i];
        if let Some((used, next)) = used_before {
            let idx_writes: Vec<&Access> = log
                .iter()
                .filter(|a| a.write && overlaps(a, used + 2..used + 4))
                .collect();
            if done > 0 {
                let last = idx_writes.last().expect("used.idx published");
                let want = next.wrapping_add(done as u16);
                assert_eq!(
                    (last.addr, last.len, last.head),
                    (used + 2, 2, want),
                    "queue {q}: {n} served, {pending} of them pending"
                );
                self.used[i] = Some((used, want));
            }
        }
        self.follow_pass(q, (n, done), ring, used_before.map(|u| u.1), &log);
    }

    /// Queue `q`'s available ring entries (not the header) as they are now.
    fn avail_ring(&self, t: &Taken) -> Option<Vec<u16>> {
        let mem = self.dev.transport();
        let r = mem.range(t.avail + 4, 2 * usize::from(t.num)).ok()?;
        let ring = mem.bytes[r]
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Some(ring)
    }

    /// Follows the requests a pass over queue `q` took: `n` from the available ring
    /// (`ring` before the pass), `done` of them into the used ring, whose next
    /// index was `next_used`; the others are pending. Stops following the queue
    /// when the pass wrote into its rings other than its used entries.
    fn follow_pass(
        &mut self,
        q: u16,
        (n, done): (usize, usize),
        ring: Option<Option<Vec<u16>>>,
        next_used: Option<u16>,
        log: &[Access],
    ) {
        let i = usize::from(q);
        let Some(mut t) = self.taken[i].take() else {
            return;
        };
        let (Some(Some(ring)), Some(next_used)) = (ring, next_used) else {
            return;
        };
        let num = u64::from(t.num);
        let slots = t.avail + 4..t.avail + 4 + 2 * num;
        let entries = t.used + 4..t.used + 4 + 8 * num;
        let mut used_heads = Vec::new();
        for a in log.iter().filter(|a| a.write) {
            // A write into the available ring may change the heads the pass reads.
            if overlaps(a, slots.clone()) {
                return;
            }
            let j = next_used.wrapping_add(used_heads.len() as u16);
            let slot = t.used + 4 + 8 * (u64::from(j) % num);
            if a.len == 8 && a.addr == slot && used_heads.len() < done {
                used_heads.push(u32::from_le_bytes([
                    a.data[0], a.data[1], a.data[2], a.data[3],
                ]));
            } else if overlaps(a, entries.clone()) {
                return;
            }
        }
        if used_heads.len() != done {
            return;
        }
        let taken: Vec<u16> = (0..n)
            .map(|k| ring[usize::from(t.next_avail.wrapping_add(k as u16) % t.num)])
            .collect();
        let mut j = 0;
        for &h in &taken {
            if used_heads.get(j) == Some(&u32::from(h)) {
                j += 1;
            } else {
                t.pending.push(h);
            }
        }
        assert_eq!(
            j,
            used_heads.len(),
            "queue {q}: used entries {used_heads:?} are not heads the pass took ({taken:?}), in order"
        );
        t.next_avail = t.next_avail.wrapping_add(n as u16);
        assert_eq!(
            t.pending.len(),
            usize::from(self.dev.in_flight(q)),
            "queue {q}: in flight {} but the heads left pending are {:?}",
            self.dev.in_flight(q),
            t.pending
        );
        self.taken[i] = Some(t);
    }

    /// `Device::complete(q, head)` and its outcome.
    fn complete(&mut self, q: u16, head: u16) -> Result<(), Error> {
        self.dev.transport_mut().log.clear();
        let before = self.dev.status();
        let interrupts = self.dev.interrupt_status();
        let notifies = self.dev.transport().notifies.len();
        let in_before = self.dev.in_flight(q);
        let result = self.dev.complete(q, head);
        let log = self.dev.transport().log.clone();
        let i = usize::from(q);
        match result {
            Err(Error::NotPending { .. } | Error::NotReady) => {
                let writes: Vec<&Access> = log.iter().filter(|a| a.write).collect();
                assert!(writes.is_empty(), "{result:?} after writing: {writes:?}");
                assert_eq!(self.dev.status(), before, "{result:?} changed the status");
                assert_eq!(
                    self.dev.interrupt_status(),
                    interrupts,
                    "{result:?}: interrupt"
                );
                assert_eq!(
                    self.dev.transport().notifies.len(),
                    notifies,
                    "{result:?}: notify"
                );
                assert_eq!(self.dev.in_flight(q), in_before, "{result:?}: in flight");
            }
            Err(e) => {
                self.check_result(Err(e));
                if i < MAX_QUEUES {
                    self.used[i] = None;
                    self.taken[i] = None;
                }
            }
            Ok(()) => {
                assert_eq!(
                    self.dev.in_flight(q),
                    in_before.wrapping_sub(1),
                    "complete({q}, {head}): in flight"
                );
                let writes: Vec<&Access> = log.iter().filter(|a| a.write).collect();
                let [answer @ .., elem, idx] = &writes[..] else {
                    panic!("complete({q}, {head}) published nothing: {writes:?}");
                };
                if let Some((used, next)) = self.used[i] {
                    let num = self.queue_reg(q, reg::QUEUE_NUM);
                    let want = next.wrapping_add(1);
                    assert_eq!(
                        (idx.addr, idx.len, idx.head),
                        (used + 2, 2, want),
                        "complete({q}, {head}): used.idx"
                    );
                    let slot = used + 4 + 8 * (u64::from(next) % u64::from(num.max(1)));
                    assert_eq!(
                        (elem.addr, elem.len, &elem.data[..4]),
                        (slot, 8, &u32::from(head).to_le_bytes()[..]),
                        "complete({q}, {head}): used entry"
                    );
                    self.used[i] = Some((used, want));
                }
                if let Some(t) = &mut self.taken[i] {
                    match t.pending.iter().position(|&h| h == head) {
                        Some(k) => {
                            t.pending.remove(k);
                        }
                        None => {
                            assert!(
                                known_bug("queue-reset-in-flight"),
                                "complete({q}, {head}) published a request the queue did not \
                                 take (pending: {:?})",
                                t.pending
                            );
                            self.taken[i] = None;
                        }
                    }
                }
                let k = self
                    .finished
                    .iter()
                    .position(|f| f.head == head && f.answered_by(answer));
                let Some(k) = k else {
                    let answered: Vec<&Finished> =
                        self.finished.iter().filter(|f| f.head == head).collect();
                    panic!(
                        "complete({q}, {head}) wrote {answer:?}; the storage answered {answered:?}"
                    );
                };
                self.finished.remove(k);
            }
        }
        result
    }

    /// An error other than "not served" puts the device in DEVICE_NEEDS_RESET.
    fn check_result(&mut self, result: Result<usize, Error>) {
        match result {
            Ok(_) | Err(Error::NotReady | Error::InvalidQueue(_) | Error::QueueNotReady(_)) => {}
            Err(e) => {
                assert!(self.dev.needs_reset(), "{e:?} without DEVICE_NEEDS_RESET");
                assert_eq!(self.dev.last_error(), Some(e));
                assert_ne!(self.dev.interrupt_status() & spec::INT_CONFIG_CHANGE, 0);
                let notified = self
                    .dev
                    .transport()
                    .notifies
                    .contains(&Interrupt::ConfigChange);
                assert!(notified, "{e:?}: no configuration-change interrupt");
            }
        }
    }

    /// The status state machine's invariants, and the storage's.
    fn check_state(&mut self) {
        assert_eq!(self.read_reg(reg::MAGIC_VALUE), spec::MAGIC);
        let s = self.dev.status();
        assert_eq!(self.read_reg(reg::STATUS), u32::from(s));
        if s & status::DRIVER_OK != 0 {
            assert_ne!(s & status::FEATURES_OK, 0, "DRIVER_OK without FEATURES_OK");
        }
        if s & status::FEATURES_OK != 0 {
            let f = self.dev.driver_features();
            assert_ne!(f & feature::VERSION_1, 0, "FEATURES_OK without VERSION_1");
            assert_eq!(f & !self.dev.device_features(), 0, "features not offered");
        }
        let (model, storage) = self.dev.model().with_storage();
        assert_eq!(
            model, storage,
            "requests with the storage: model and storage disagree"
        );
        self.dev.transport_mut().notifies.clear();
    }

    /// Which queues are ready and where their used rings are: a queue that
    /// became ready starts at used.idx 0, with no request taken. A used.idx the
    /// device published outside `process` (a poll, console input) is taken as the
    /// next one to expect.
    fn track_used(&mut self) {
        let log = std::mem::take(&mut self.dev.transport_mut().log);
        // The used rings of the ready queues: a used.idx write where another
        // queue's used ring lies may be that queue's.
        let mut rings = Vec::new();
        for q in 0..MAX_QUEUES as u16 {
            if self.queue_reg(q, reg::QUEUE_READY) != 0 {
                let low = self.queue_reg(q, reg::QUEUE_DEVICE_LOW);
                let used =
                    u64::from(low) | u64::from(self.queue_reg(q, reg::QUEUE_DEVICE_HIGH)) << 32;
                let num = u64::from(self.queue_reg(q, reg::QUEUE_NUM));
                rings.push((q, used..used.saturating_add(6 + 8 * num)));
            }
        }
        for q in 0..MAX_QUEUES as u16 {
            let i = usize::from(q);
            let ready = self.queue_reg(q, reg::QUEUE_READY) != 0;
            if !ready {
                self.used[i] = None;
            } else if !self.was_ready[i] {
                let addr = |d: &mut Self, low: u32| {
                    u64::from(d.queue_reg(q, low)) | u64::from(d.queue_reg(q, low + 4)) << 32
                };
                let used = addr(self, reg::QUEUE_DEVICE_LOW);
                self.used[i] = Some((used, 0));
                self.taken[i] = Some(Taken {
                    num: self.queue_reg(q, reg::QUEUE_NUM) as u16,
                    avail: addr(self, reg::QUEUE_DRIVER_LOW),
                    used,
                    next_avail: 0,
                    pending: Vec::new(),
                });
            } else if let Some((used, _)) = self.used[i] {
                let last = log
                    .iter()
                    .rev()
                    .find(|a| a.write && overlaps(a, used + 2..used + 4));
                let shared = rings
                    .iter()
                    .any(|(j, r)| *j != q && r.start < used + 4 && r.end > used + 2);
                self.used[i] = match last {
                    None => self.used[i],
                    Some(a) if (a.addr, a.len) == (used + 2, 2) && !shared => Some((used, a.head)),
                    Some(_) => None,
                };
            }
            if self.used[i].is_none() {
                self.taken[i] = None;
            }
            self.was_ready[i] = ready;
        }
    }
}

/// Whether access `a` touches `range`.
fn overlaps(a: &Access, range: Range<u64>) -> bool {
    a.addr < range.end && a.addr.saturating_add(a.len as u64) > range.start
}
