//! A backend's request page as Ferry keeps it: the shared page's layout
//! (ferry-abi `ioreq`), written through [`PageMemory`], and Ferry's private
//! bookkeeping of its sync slots (sequence numbers, what waits, what completed),
//! the posted ring and the backend's start of service.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_abi::ioreq::{self, Ioreq};
use spin::Mutex;

/// Access to physical memory: request pages, and partitions' RAM for the copy
/// path. The EL2 shell uses volatile accesses and barriers; host tests use a
/// plain buffer.
pub trait PageMemory {
    /// Reads the 32-bit word at `addr` (4-byte aligned).
    fn read_u32(&self, addr: u64) -> u32;
    /// Writes the 32-bit word at `addr` (4-byte aligned).
    fn write_u32(&self, addr: u64, value: u32);
    /// Writes `bytes` from `addr` on.
    fn write_bytes(&self, addr: u64, bytes: &[u8]);
    /// Reads `buf.len()` bytes from `addr` on (the copy path: guest memory by
    /// physical address).
    fn read_bytes(&self, addr: u64, buf: &mut [u8]);
    /// Sets `bits` in the 32-bit word at `addr` (4-byte aligned), atomically
    /// where the backend also changes the word (the EL2 shell); the default
    /// reads and writes it.
    fn or_u32(&self, addr: u64, bits: u32) {
        self.write_u32(addr, self.read_u32(addr) | bits);
    }
    /// Orders the writes before it before the writes after it, as the backend's
    /// cores see them.
    fn barrier(&self);
    /// Copies `len` bytes from `src` to `dst` (the copy path: between two
    /// partitions' RAM; the ranges do not overlap).
    fn copy(&self, dst: u64, src: u64, len: u64) {
        let mut buf = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            self.read_bytes(src + done, &mut buf[..n]);
            self.write_bytes(dst + done, &buf[..n]);
            done += n as u64;
        }
    }
}

/// A backend's request page and Ferry's private view of its slots.
#[derive(Debug)]
pub struct RequestPage {
    /// The page (Ferry's address = its physical address).
    pub base: u64,
    /// The backend's doorbell interrupt (INTID in its vGIC); `None`: it polls.
    pub doorbell: Option<u32>,
    /// Counter value when the page was set up or the backend restarted (its
    /// start, near enough).
    created_at: AtomicU64,
    /// How long the backend may take to start serving, in counter ticks.
    pub start_ticks: u64,
    /// Counter ticks per second.
    pub frequency: u64,
    ready_at: AtomicU64,
    next_seq: [AtomicU32; ioreq::SYNC_SLOTS],
    waiting: [AtomicU32; ioreq::SYNC_SLOTS],
    done_seq: [AtomicU32; ioreq::SYNC_SLOTS],
    done_value: [AtomicU64; ioreq::SYNC_SLOTS],
    posted_seq: AtomicU32,
    ring: Mutex<()>,
    /// Serialises completions: two backend vCPUs completing one request at once
    /// (a race the hostile suite runs) see one accepted, and the other only once
    /// everything the first one did is visible.
    completing: Mutex<()>,
}

impl RequestPage {
    /// Initialises the page at `base` (zeroed, 4 KiB) for a backend with doorbell
    /// `doorbell` (`None`: it polls), set up at counter value `now`; the counter
    /// runs at `frequency` Hz.
    pub fn new(
        base: u64,
        doorbell: Option<u32>,
        now: u64,
        frequency: u64,
        mem: &impl PageMemory,
    ) -> RequestPage {
        write_header(base, mem);
        let frequency = frequency.max(1);
        RequestPage {
            base,
            doorbell,
            created_at: AtomicU64::new(now),
            start_ticks: ferry_abi::hypercall::BACKEND_START_MS * frequency / 1000,
            frequency,
            ready_at: AtomicU64::new(0),
            next_seq: [const { AtomicU32::new(1) }; ioreq::SYNC_SLOTS],
            waiting: [const { AtomicU32::new(0) }; ioreq::SYNC_SLOTS],
            done_seq: [const { AtomicU32::new(0) }; ioreq::SYNC_SLOTS],
            done_value: [const { AtomicU64::new(0) }; ioreq::SYNC_SLOTS],
            posted_seq: AtomicU32::new(1),
            ring: Mutex::new(()),
            completing: Mutex::new(()),
        }
    }

    /// Counter value of the backend's (re)start.
    pub fn created_at(&self) -> u64 {
        self.created_at.load(Ordering::Acquire)
    }

    /// The backend restarted at counter value `now`: the page is zeroed and its
    /// header written again, nothing waits, and the backend has its start-up
    /// allowance again. Answers given before the restart stay for their frontend
    /// to take; sequence numbers go on from where they were, so a completion from
    /// before the restart can never match a new request.
    pub fn restart(&self, mem: &impl PageMemory, now: u64) {
        let _ring = self.ring.lock();
        mem.write_bytes(self.base, &[0; ioreq::PAGE_SIZE]);
        write_header(self.base, mem);
        for waiting in &self.waiting {
            waiting.store(0, Ordering::Relaxed);
        }
        self.ready_at.store(0, Ordering::Relaxed);
        self.created_at.store(now, Ordering::Release);
        mem.barrier();
    }

    /// Writes `record` at `offset`: everything but the state first, then the
    /// state, with barriers, so the backend never sees READY over a half-written
    /// record.
    fn publish(&self, mem: &impl PageMemory, offset: usize, record: &Ioreq) {
        let bytes = Ioreq {
            state: ioreq::state::NONE,
            ..*record
        }
        .encode();
        mem.write_bytes(self.base + offset as u64, &bytes);
        mem.barrier();
        mem.write_bytes(
            self.base + (offset + ioreq::STATE_OFFSET) as u64,
            &[record.state],
        );
        mem.barrier();
    }

    /// Appends a posted QueueNotify(`queue`) of device `device` from frontend
    /// vCPU `vcpu` to the ring; with the ring full, sets the queue's bit in
    /// `overflow_queues` instead. Returns whether it went into the ring.
    pub fn post(&self, mem: &impl PageMemory, device: u8, vcpu: u16, queue: u64) -> bool {
        let _ring = self.ring.lock();
        let head = mem.read_u32(self.base + ioreq::POSTED_HEAD_OFFSET as u64);
        let tail = mem.read_u32(self.base + ioreq::POSTED_TAIL_OFFSET as u64);
        if head.wrapping_sub(tail) < ioreq::POSTED_SLOTS as u32 {
            let record = Ioreq {
                offset: super::virtio::QUEUE_NOTIFY,
                data: queue,
                seq: self.posted_seq.fetch_add(1, Ordering::Relaxed),
                size: 4,
                dir: ioreq::dir::WRITE,
                state: ioreq::state::READY,
                device,
                vcpu,
                flags: ioreq::FLAG_POSTED,
                reserved: 0,
            };
            let at = ioreq::posted_offset(head as usize % ioreq::POSTED_SLOTS);
            self.publish(mem, at, &record);
            mem.write_u32(
                self.base + ioreq::POSTED_HEAD_OFFSET as u64,
                head.wrapping_add(1),
            );
            true
        } else {
            let addr = self.base + ioreq::OVERFLOW_OFFSET as u64;
            let bits = mem.read_u32(addr) | 1 << (queue & 31);
            mem.write_u32(addr, bits);
            false
        }
    }

    /// Tells the backend that its console device `device` has typed input
    /// waiting: sets bit `device` of the header's `console_input`.
    pub fn signal_console_input(&self, mem: &impl PageMemory, device: usize) {
        let bit = 1u32.checked_shl(device as u32).unwrap_or(0);
        mem.barrier();
        mem.or_u32(self.base + ioreq::CONSOLE_INPUT_OFFSET as u64, bit);
        mem.barrier();
    }

    /// The next sequence number for `slot`: never 0 (the backend's "nothing"), and
    /// never the one before it, also where the 32-bit count wraps.
    fn next_seq(&self, slot: usize) -> u32 {
        let seq = self.next_seq[slot].fetch_add(1, Ordering::Relaxed);
        if seq != 0 {
            return seq;
        }
        self.next_seq[slot].fetch_add(1, Ordering::Relaxed)
    }

    /// Publishes a synchronous request in `slot` (its `seq` is chosen here) and
    /// records that the slot waits for it. Returns the sequence number.
    pub fn begin(&self, mem: &impl PageMemory, slot: usize, record: Ioreq) -> u32 {
        let seq = self.next_seq(slot);
        self.waiting[slot].store(seq, Ordering::Release);
        let record = Ioreq {
            seq,
            state: ioreq::state::READY,
            ..record
        };
        self.publish(mem, ioreq::sync_slot_offset(slot), &record);
        seq
    }

    /// The completed value of request `seq` in `slot`, if it has completed (the
    /// slot is then marked DONE for the backend).
    pub fn take_done(&self, mem: &impl PageMemory, slot: usize, seq: u32) -> Option<u64> {
        if self.done_seq[slot].load(Ordering::Acquire) != seq {
            return None;
        }
        mem.write_bytes(
            self.base + (ioreq::sync_slot_offset(slot) + ioreq::STATE_OFFSET) as u64,
            &[ioreq::state::DONE],
        );
        Some(self.done_value[slot].load(Ordering::Relaxed))
    }

    /// Stops waiting in `slot` (the access failed): a late completion for it is
    /// then garbage, and the record no longer reads READY, so a backend that has
    /// not picked it up yet does not serve an access nobody waits for.
    pub fn abandon(&self, mem: &impl PageMemory, slot: usize) {
        self.waiting[slot].store(0, Ordering::Release);
        mem.write_bytes(
            self.base + (ioreq::sync_slot_offset(slot) + ioreq::STATE_OFFSET) as u64,
            &[ioreq::state::NONE],
        );
        mem.barrier();
    }

    /// The backend completes `slot` with sequence number `seq` and `value`:
    /// `Err(waiting)` (what the slot waits for, 0: nothing) if that is not `seq`.
    /// The record is marked DONE at once, so the backend never reads it as READY
    /// again while Ferry may be writing the slot's next request over it.
    pub fn complete(
        &self,
        mem: &impl PageMemory,
        slot: usize,
        seq: u64,
        value: u64,
    ) -> Result<(), u32> {
        let _one = self.completing.lock();
        let waiting = self.waiting[slot].load(Ordering::Acquire);
        if waiting == 0 || u64::from(waiting) != seq {
            return Err(waiting);
        }
        // DONE before the frontend can see the completion: once it has, it may
        // publish the slot's next request, which a late DONE would hide.
        mem.write_bytes(
            self.base + (ioreq::sync_slot_offset(slot) + ioreq::STATE_OFFSET) as u64,
            &[ioreq::state::DONE],
        );
        mem.barrier();
        self.done_value[slot].store(value, Ordering::Relaxed);
        self.waiting[slot].store(0, Ordering::Relaxed);
        self.done_seq[slot].store(waiting, Ordering::Release);
        Ok(())
    }

    /// Records that the backend started serving at counter value `now`; true the
    /// first time only.
    pub fn mark_ready(&self, now: u64) -> bool {
        self.ready_at
            .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// When the backend started serving (counter value), if it has.
    pub fn ready_at(&self) -> Option<u64> {
        match self.ready_at.load(Ordering::Acquire) {
            0 => None,
            at => Some(at),
        }
    }

    /// Sets the next sequence number of `slot` (tests: the wrap at 2^32).
    #[cfg(test)]
    pub fn set_next_seq(&self, slot: usize, seq: u32) {
        self.next_seq[slot].store(seq, Ordering::Relaxed);
    }

    /// Starts every sync slot's sequence numbers at `first` (the config's
    /// `ioreq-first-seq` test hook: scenarios cross the wrap at 2^32).
    pub fn start_seqs_at(&self, first: u32) {
        for next in &self.next_seq {
            next.store(first, Ordering::Relaxed);
        }
    }
}

/// Writes a fresh request page's header at `base`.
fn write_header(base: u64, mem: &impl PageMemory) {
    let header = ioreq::PageHeader {
        magic: ioreq::PAGE_MAGIC,
        version: ioreq::PAGE_VERSION,
        sync_slots: ioreq::SYNC_SLOTS as u32,
        posted_slots: ioreq::POSTED_SLOTS as u32,
        ..Default::default()
    };
    mem.write_bytes(base, &header.encode());
}
