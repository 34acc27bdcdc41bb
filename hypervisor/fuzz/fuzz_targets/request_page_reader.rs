//! `request_page_reader`: the reference backend partition's reader of its IOREQ
//! request page (`ferry_backend::page`: `SyncSlots::any_new` / `take`,
//! `RequestPage::drain_posted`, `posted_waiting`, `take_overflow`), over a real
//! 4 KiB page that the fuzzer writes as Ferry would (records published in sync
//! slots, posted records appended, overflow bits) and as nobody should (any bytes
//! anywhere, head and tail anywhere).
//!
//! Input (structured, `arbitrary`): the page's first contents, then a sequence of
//! writes and reads.
//!
//! Checked: nothing panics or reads outside the page; `any_new` is true exactly
//! when some slot has a request `take` gives out; `take` gives the record as the
//! page holds it, READY, newer than the last one served in that slot, and never
//! the same one twice; `drain_posted` hands out the records from tail to head in
//! ring order, at most one ring's worth, and moves the tail past them;
//! `posted_waiting` says whether head and tail differ or a bit is set;
//! `take_overflow` takes the bits once.
#![no_main]

use arbitrary::Arbitrary;
use ferry_abi::ioreq::{
    self, Ioreq, OVERFLOW_OFFSET, PAGE_SIZE, POSTED_HEAD_OFFSET, POSTED_SLOTS, POSTED_TAIL_OFFSET,
    SYNC_SLOTS, posted_offset, sync_slot_offset,
};
use ferry_backend::page::{RequestPage, SyncSlots, newer};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// The page's first bytes (the rest zero), or a page Ferry set up.
    initial: Option<Vec<u8>>,
    steps: Vec<Step>,
}

/// A record as the fuzzer gives it.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Rec {
    offset: u16,
    data: u64,
    seq: u32,
    size: u8,
    dir: u8,
    device: u8,
    vcpu: u16,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Ferry publishes a request in `slot` (`next`: with the slot's next
    /// sequence number, else with the record's own).
    Publish { slot: u8, rec: Rec, next: bool },
    /// Ferry abandons `slot` (state NONE) or the backend's answer was taken (DONE).
    State { slot: u8, state: u8 },
    /// Ferry appends posted records.
    Post { recs: Vec<Rec> },
    /// Ferry sets overflow bits.
    Overflow { bits: u32 },
    /// Anything at all written anywhere in the page.
    Scribble { offset: u16, bytes: Vec<u8> },
    /// The serving loop's reads: sync slots, then the posted ring, then the bits.
    Serve,
    /// Only `posted_waiting`.
    Waiting,
}

/// The shared page (4 KiB-aligned, as the backend maps it).
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);

/// The page and what the harness knows of it.
struct Harness {
    page: *mut Page,
    reader: RequestPage,
    slots: SyncSlots,
    /// The last sequence number served in each slot (the reader's own record).
    served: [Option<u32>; SYNC_SLOTS],
    next_seq: [u32; SYNC_SLOTS],
}

fuzz_target!(|input: Input| {
    let page = Box::into_raw(Box::new(Page([0; PAGE_SIZE])));
    // SAFETY: `page` is a live, 4 KiB-aligned allocation until the end of this
    // function; only the harness (as Ferry) and the reader touch it, through raw
    // pointers.
    let reader = unsafe { RequestPage::new(page as usize) };
    let mut h = Harness {
        page,
        reader,
        slots: SyncSlots::new(),
        served: [None; SYNC_SLOTS],
        next_seq: [1; SYNC_SLOTS],
    };
    match &input.initial {
        Some(bytes) => h.write(0, &bytes[..bytes.len().min(PAGE_SIZE)]),
        None => h.write(0, &set_up_header()),
    }
    for step in input.steps.iter().take(256) {
        h.step(step);
    }
    // SAFETY: from Box::into_raw above; the reader is no longer used.
    drop(unsafe { Box::from_raw(page) });
});

/// The header Ferry writes when it sets the page up.
fn set_up_header() -> [u8; 64] {
    ioreq::PageHeader {
        magic: ioreq::PAGE_MAGIC,
        version: ioreq::PAGE_VERSION,
        sync_slots: SYNC_SLOTS as u32,
        posted_slots: POSTED_SLOTS as u32,
        ..Default::default()
    }
    .encode()
}

fn record(rec: &Rec, seq: u32, state: u8, flags: u16) -> Ioreq {
    Ioreq {
        offset: u64::from(rec.offset),
        data: rec.data,
        seq,
        size: rec.size,
        dir: rec.dir,
        state,
        device: rec.device,
        vcpu: rec.vcpu,
        flags,
        reserved: 0,
    }
}

impl Harness {
    fn write(&mut self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= PAGE_SIZE);
        // SAFETY: inside the page (checked above), which is live.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.page.cast::<u8>().add(at),
                bytes.len(),
            )
        };
    }

    fn read(&self, at: usize, buf: &mut [u8]) {
        assert!(at + buf.len() <= PAGE_SIZE);
        // SAFETY: inside the page (checked above), which is live.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.page.cast::<u8>().add(at),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
    }

    fn word(&self, at: usize) -> u32 {
        let mut b = [0; 4];
        self.read(at, &mut b);
        u32::from_le_bytes(b)
    }

    fn record_at(&self, at: usize) -> Ioreq {
        let mut b = [0; 32];
        self.read(at, &mut b);
        Ioreq::decode(&b)
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Publish { slot, rec, next } => {
                let slot = usize::from(*slot) % SYNC_SLOTS;
                let seq = if *next { self.next_seq[slot] } else { rec.seq };
                self.next_seq[slot] = seq.wrapping_add(1).max(1);
                let r = record(rec, seq, ioreq::state::READY, 0);
                self.write(sync_slot_offset(slot), &r.encode());
            }
            Step::State { slot, state } => {
                let at = sync_slot_offset(usize::from(*slot) % SYNC_SLOTS) + ioreq::STATE_OFFSET;
                self.write(at, &[*state % 4]);
            }
            Step::Post { recs } => {
                for rec in recs.iter().take(POSTED_SLOTS + 2) {
                    let head = self.word(POSTED_HEAD_OFFSET);
                    let r = record(rec, rec.seq, ioreq::state::READY, ioreq::FLAG_POSTED);
                    self.write(posted_offset(head as usize % POSTED_SLOTS), &r.encode());
                    self.write(POSTED_HEAD_OFFSET, &head.wrapping_add(1).to_le_bytes());
                }
            }
            Step::Overflow { bits } => {
                let old = self.word(OVERFLOW_OFFSET);
                self.write(OVERFLOW_OFFSET, &(old | bits).to_le_bytes());
            }
            Step::Scribble { offset, bytes } => {
                let at = usize::from(*offset) % PAGE_SIZE;
                let len = bytes.len().min(PAGE_SIZE - at);
                self.write(at, &bytes[..len]);
            }
            Step::Serve => {
                self.serve_sync();
                self.drain();
                self.overflow();
            }
            Step::Waiting => self.check_waiting(),
        }
    }

    /// `any_new`, then `take` on every slot.
    fn serve_sync(&mut self) {
        let any = self.slots.any_new(&self.reader);
        let mut taken = 0;
        for slot in 0..SYNC_SLOTS {
            let on_page = self.record_at(sync_slot_offset(slot));
            let Some(r) = self.slots.take(&self.reader, slot) else {
                let fresh =
                    on_page.state == ioreq::state::READY && newer(self.served[slot], on_page.seq);
                assert!(!fresh, "slot {slot}: {on_page:?} is new but not taken");
                continue;
            };
            assert_eq!(r, on_page, "slot {slot}: taken as the page holds it");
            assert_eq!(r.state, ioreq::state::READY);
            assert!(
                newer(self.served[slot], r.seq),
                "slot {slot}: {r:?} not newer"
            );
            self.served[slot] = Some(r.seq);
            assert_eq!(
                self.slots.take(&self.reader, slot),
                None,
                "slot {slot} twice"
            );
            taken += 1;
        }
        assert_eq!(any, taken > 0, "any_new said {any}, {taken} taken");
    }

    /// `drain_posted`: from tail to head, ring order, at most one ring.
    fn drain(&mut self) {
        let head = self.word(POSTED_HEAD_OFFSET);
        let tail = self.word(POSTED_TAIL_OFFSET);
        let expected: Vec<Ioreq> = (0..head.wrapping_sub(tail).min(POSTED_SLOTS as u32))
            .map(|i| self.record_at(posted_offset(tail.wrapping_add(i) as usize % POSTED_SLOTS)))
            .collect();
        let mut got = Vec::new();
        let n = self.reader.drain_posted(|r| got.push(r));
        assert_eq!(n, got.len());
        assert_eq!(
            got, expected,
            "posted records from tail {tail} to head {head}"
        );
        let after = self.word(POSTED_TAIL_OFFSET);
        assert_eq!(
            after,
            tail.wrapping_add(n as u32),
            "tail after draining {n}"
        );
    }

    /// `take_overflow` takes the bits once.
    fn overflow(&mut self) {
        let bits = self.word(OVERFLOW_OFFSET);
        assert_eq!(self.reader.take_overflow(), bits);
        assert_eq!(self.word(OVERFLOW_OFFSET), 0);
        assert_eq!(self.reader.take_overflow(), 0);
    }

    fn check_waiting(&self) {
        let head = self.word(POSTED_HEAD_OFFSET);
        let tail = self.word(POSTED_TAIL_OFFSET);
        let bits = self.word(OVERFLOW_OFFSET);
        assert_eq!(self.reader.posted_waiting(), head != tail || bits != 0);
        let mut magic = [0; 8];
        self.read(0, &mut magic);
        assert_eq!(self.reader.magic(), u64::from_le_bytes(magic));
    }
}
