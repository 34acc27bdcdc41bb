//! The backend's side of the IOREQ request page (docs/ioreq.md; layout in
//! `ferry_abi::ioreq`): synchronous requests in per-(device, vCPU) slots, posted
//! QueueNotify records in a ring, and the `overflow_queues` bits Ferry sets when the
//! ring is full.
//!
//! Ferry writes the page through its own mapping; the backend reads it with volatile
//! accesses ordered by `dmb ish`, and writes only `posted_tail` and (atomically, as
//! Ferry does) `overflow_queues` and `console_input`.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use ferry_abi::ioreq::{
    self, CONSOLE_INPUT_OFFSET, Ioreq, OVERFLOW_OFFSET, PAGE_SIZE, POSTED_HEAD_OFFSET,
    POSTED_SLOTS, POSTED_TAIL_OFFSET, STATE_OFFSET, SYNC_SLOTS, posted_offset, sync_slot_offset,
};

/// `dmb ish`: orders this CPU's accesses to the page against Ferry's.
#[inline(always)]
pub fn barrier() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier; no memory effects of its own.
    unsafe {
        core::arch::asm!("dmb ish", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(Ordering::SeqCst);
}

/// The request page.
pub struct RequestPage {
    base: usize,
}

impl RequestPage {
    /// The page at `base`.
    ///
    /// # Safety
    /// `base` is the 4 KiB-aligned address of a page that stays mapped (as Normal
    /// memory) for as long as the value lives, and that only Ferry and this value
    /// write.
    pub unsafe fn new(base: usize) -> RequestPage {
        RequestPage { base }
    }

    fn u32_at(&self, off: usize) -> u32 {
        debug_assert!(off + 4 <= PAGE_SIZE && off.is_multiple_of(4));
        // SAFETY: an aligned word inside the page (`new`'s contract).
        unsafe { ptr::read_volatile((self.base + off) as *const u32) }
    }

    /// The header's magic (`ioreq::PAGE_MAGIC` once Ferry set the page up).
    pub fn magic(&self) -> u64 {
        // SAFETY: the first, aligned, word of the page.
        unsafe { ptr::read_volatile(self.base as *const u64) }
    }

    /// The state byte of the record at `off`.
    fn state(&self, off: usize) -> u8 {
        // SAFETY: a byte of a record inside the page.
        unsafe { ptr::read_volatile((self.base + off + STATE_OFFSET) as *const u8) }
    }

    /// The 32-byte record at `off`.
    fn record(&self, off: usize) -> Ioreq {
        let mut b = [0u8; 32];
        for (i, chunk) in b.chunks_exact_mut(8).enumerate() {
            // SAFETY: 8-byte aligned words of a record inside the page.
            let w = unsafe { ptr::read_volatile((self.base + off + 8 * i) as *const u64) };
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        Ioreq::decode(&b)
    }

    fn overflow(&self) -> &AtomicU32 {
        // SAFETY: an aligned u32 inside the page, which Ferry also updates atomically.
        unsafe { AtomicU32::from_ptr((self.base + OVERFLOW_OFFSET) as *mut u32) }
    }

    fn console_input(&self) -> &AtomicU32 {
        // SAFETY: an aligned u32 inside the page, which Ferry sets bits of atomically.
        unsafe { AtomicU32::from_ptr((self.base + CONSOLE_INPUT_OFFSET) as *mut u32) }
    }

    /// Whether Ferry holds typed input for a console device (a `console_input` bit).
    pub fn console_input_waiting(&self) -> bool {
        self.console_input().load(Ordering::Acquire) != 0
    }

    /// Takes (and clears) the `console_input` bits: console devices with typed
    /// input waiting in Ferry (read it with `CONSOLE_DEVICE_READ` until 0). A bit
    /// Ferry sets meanwhile stays for the next round.
    pub fn take_console_input(&self) -> u32 {
        self.console_input().swap(0, Ordering::AcqRel)
    }

    /// Whether a posted record or an overflow bit is waiting.
    pub fn posted_waiting(&self) -> bool {
        barrier();
        self.u32_at(POSTED_HEAD_OFFSET) != self.u32_at(POSTED_TAIL_OFFSET)
            || self.overflow().load(Ordering::Acquire) != 0
    }

    /// Hands every posted record from `posted_tail` up to Ferry's `posted_head` (at
    /// most a ring's worth) to `f`, then advances `posted_tail` past them. Returns
    /// how many there were.
    pub fn drain_posted(&self, mut f: impl FnMut(Ioreq)) -> usize {
        barrier();
        let head = self.u32_at(POSTED_HEAD_OFFSET);
        let mut tail = self.u32_at(POSTED_TAIL_OFFSET);
        barrier();
        let mut n = 0;
        while tail != head && n < POSTED_SLOTS {
            f(self.record(posted_offset(tail as usize % POSTED_SLOTS)));
            tail = tail.wrapping_add(1);
            n += 1;
        }
        if n > 0 {
            barrier();
            // SAFETY: posted_tail, an aligned word of the header; only the backend
            // writes it.
            unsafe { ptr::write_volatile((self.base + POSTED_TAIL_OFFSET) as *mut u32, tail) };
        }
        n
    }

    /// Takes (and clears) the `overflow_queues` bits: queues notified while the ring
    /// was full. Cleared before serving, so a bit Ferry sets meanwhile stays for the
    /// next round.
    pub fn take_overflow(&self) -> u32 {
        self.overflow().swap(0, Ordering::AcqRel)
    }
}

/// Whether sequence number `seq` is newer than `last` (wrapping).
pub fn newer(last: Option<u32>, seq: u32) -> bool {
    match last {
        None => true,
        Some(l) => (seq.wrapping_sub(l) as i32) > 0,
    }
}

/// The last sequence number served in each sync slot: a READY record is new only if
/// its sequence number is newer, so a request is served once even though its state
/// stays READY until Ferry sees the completion.
pub struct SyncSlots {
    last: [Option<u32>; SYNC_SLOTS],
}

impl Default for SyncSlots {
    fn default() -> Self {
        SyncSlots::new()
    }
}

impl SyncSlots {
    /// Nothing served yet.
    pub const fn new() -> SyncSlots {
        SyncSlots {
            last: [None; SYNC_SLOTS],
        }
    }

    /// The new request in `slot`, if any, marked served.
    pub fn take(&mut self, page: &RequestPage, slot: usize) -> Option<Ioreq> {
        let off = sync_slot_offset(slot);
        if page.state(off) != ioreq::state::READY {
            return None;
        }
        barrier();
        let r = page.record(off);
        if r.state != ioreq::state::READY || !newer(self.last[slot], r.seq) {
            return None;
        }
        // Ferry may be publishing the next request in this slot while we read:
        // only a record that reads the same twice is whole (else: next round).
        barrier();
        if page.record(off) != r {
            return None;
        }
        self.last[slot] = Some(r.seq);
        Some(r)
    }

    /// Whether any slot holds a new request.
    pub fn any_new(&self, page: &RequestPage) -> bool {
        barrier();
        (0..SYNC_SLOTS).any(|s| {
            let off = sync_slot_offset(s);
            page.state(off) == ioreq::state::READY && newer(self.last[s], page.record(off).seq)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_abi::ioreq::{FLAG_POSTED, PAGE_MAGIC, PageHeader, dir, state};

    #[repr(C, align(4096))]
    struct Mem([u8; PAGE_SIZE]);

    fn page() -> (Box<Mem>, RequestPage) {
        let mut m = Box::new(Mem([0; PAGE_SIZE]));
        let h = PageHeader {
            magic: PAGE_MAGIC,
            version: ioreq::PAGE_VERSION,
            sync_slots: SYNC_SLOTS as u32,
            posted_slots: POSTED_SLOTS as u32,
            ..Default::default()
        };
        m.0[..64].copy_from_slice(&h.encode());
        // SAFETY: the boxed page outlives the value (both dropped at the test's end,
        // the page last since it is declared first in the tuple's user).
        let p = unsafe { RequestPage::new(m.0.as_ptr() as usize) };
        (m, p)
    }

    fn rec(seq: u32, offset: u64, st: u8) -> Ioreq {
        Ioreq {
            offset,
            data: 0,
            seq,
            size: 4,
            dir: dir::READ,
            state: st,
            device: 0,
            vcpu: 0,
            flags: 0,
            reserved: 0,
        }
    }

    fn put(m: &mut Mem, off: usize, r: &Ioreq) {
        m.0[off..off + 32].copy_from_slice(&r.encode());
    }

    fn set_u32(m: &mut Mem, off: usize, v: u32) {
        m.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn a_sync_request_is_served_once_per_sequence_number() {
        let (mut m, p) = page();
        let mut s = SyncSlots::new();
        assert!(!s.any_new(&p));
        put(&mut m, sync_slot_offset(9), &rec(1, 0x70, state::READY));
        assert!(s.any_new(&p));
        assert_eq!(s.take(&p, 9).map(|r| (r.seq, r.offset)), Some((1, 0x70)));
        // Still READY (Ferry has not seen the completion): not served again.
        assert_eq!(s.take(&p, 9), None);
        assert!(!s.any_new(&p));
        // The next request in the same slot is.
        put(&mut m, sync_slot_offset(9), &rec(2, 0x00, state::READY));
        assert_eq!(s.take(&p, 9).map(|r| r.seq), Some(2));
        // An older sequence number (a stale record) is not.
        put(&mut m, sync_slot_offset(9), &rec(1, 0x00, state::READY));
        assert_eq!(s.take(&p, 9), None);
        // Nor a record that is not READY.
        put(&mut m, sync_slot_offset(3), &rec(7, 0x00, state::DONE));
        assert_eq!(s.take(&p, 3), None);
    }

    #[test]
    fn sequence_numbers_wrap() {
        assert!(newer(Some(u32::MAX), 0));
        assert!(newer(Some(u32::MAX - 1), 3));
        assert!(!newer(Some(5), 5));
        assert!(!newer(Some(5), 4));
        assert!(newer(None, 0));
    }

    #[test]
    fn the_posted_ring_drains_from_tail_to_head_and_wraps() {
        let (mut m, p) = page();
        assert!(!p.posted_waiting());
        // Ferry wrote records at ring positions 60..=64 (wrapping at 62).
        for i in 60u32..65 {
            let mut r = rec(i, 0x50, state::READY);
            r.flags = FLAG_POSTED;
            r.data = u64::from(i);
            put(&mut m, posted_offset(i as usize % POSTED_SLOTS), &r);
        }
        set_u32(&mut m, POSTED_TAIL_OFFSET, 60);
        set_u32(&mut m, POSTED_HEAD_OFFSET, 65);
        assert!(p.posted_waiting());
        let mut seen = Vec::new();
        assert_eq!(p.drain_posted(|r| seen.push(r.data)), 5);
        assert_eq!(seen, [60, 61, 62, 63, 64]);
        assert_eq!(p.u32_at(POSTED_TAIL_OFFSET), 65);
        assert!(!p.posted_waiting());
        assert_eq!(p.drain_posted(|_| panic!("nothing is waiting")), 0);
    }

    #[test]
    fn a_corrupt_head_drains_at_most_one_ring() {
        let (mut m, p) = page();
        set_u32(&mut m, POSTED_HEAD_OFFSET, 1000);
        assert_eq!(p.drain_posted(|_| {}), POSTED_SLOTS);
        assert_eq!(p.u32_at(POSTED_TAIL_OFFSET), POSTED_SLOTS as u32);
    }

    #[test]
    fn overflow_bits_are_taken_once() {
        let (mut m, p) = page();
        set_u32(&mut m, OVERFLOW_OFFSET, 0b101);
        assert!(p.posted_waiting());
        assert_eq!(p.take_overflow(), 0b101);
        assert_eq!(p.take_overflow(), 0);
        assert!(!p.posted_waiting());
        assert_eq!(p.magic(), PAGE_MAGIC);
    }

    #[test]
    fn console_input_bits_are_taken_once() {
        let (mut m, p) = page();
        assert!(!p.console_input_waiting());
        set_u32(&mut m, ferry_abi::ioreq::CONSOLE_INPUT_OFFSET, 0b100);
        assert!(p.console_input_waiting());
        assert!(!p.posted_waiting(), "not a posted record");
        assert_eq!(p.take_console_input(), 0b100);
        assert_eq!(p.take_console_input(), 0);
        assert!(!p.console_input_waiting());
    }
}
