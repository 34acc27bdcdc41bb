//! The copy path fuzzed against a plain model of it.
//!
//! A random frontend (descriptor tables with random addresses, lengths, flags
//! and links, indirect tables, avail indices and entries, EVENT_IDX and
//! INDIRECT_DESC or not) and a random backend (used entries with valid or bogus
//! ids and lengths, used.idx jumps, bytes written anywhere in the bounce area)
//! drive a [`CopyDevice`] through its public API, interleaved with register
//! writes (QueueSel, QueueNum, ring addresses, QueueReady, QueueReset, Status 0,
//! features). Every call is replayed on a model that predicts its result and the
//! frontend's memory afterwards, byte for byte; and after every call:
//! - Ferry wrote frontend memory only inside the writable buffers of requests it
//!   held and inside the used rings of ready queues;
//! - it wrote backend memory only inside the bounce area, and its data part only
//!   inside the runs of the requests it just posted;
//! - each new shadow request points inside its queue's share of the data part,
//!   chunk-aligned, and overlaps no outstanding one (no chunk is handed out twice);
//! - a request waits only when its queue has no free slot or no free run of
//!   chunks large enough for it (nothing leaks, nothing is held back for good);
//! - the used entries the frontend gets name chains it posted, each once, with
//!   the length and bytes the backend wrote.
//!
//! A refused input fails the device: the call returns the error the model
//! predicts and the scenario ends there.
//!
//! This file is also the harness of the coverage-guided target `copy_engine`
//! (hypervisor/fuzz, docs/fuzzing.md), where the choices come from libFuzzer's
//! bytes instead of a seeded PRNG; it uses only the copy path's public API.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;

use ferry_abi::Region;
use ferry_config::GuestRegion;
use ferry_virtio_backend::spec::{AVAIL_F_NO_INTERRUPT, desc_flags, feature, reg};
use ferry_virtio_backend::{Buffer, Chain, Interrupt, MemError, Transport, walk_chain};

#[cfg(test)]
use crate::state::{
    copy::{
        CopyDevice, CopyError, MAX_QUEUE_SIZE, MAX_QUEUES, Moved, QUEUE_AREA, RINGS_AREA, Register,
        ring::GuestView,
    },
    ioreq::PageMemory,
};
#[cfg(not(test))]
use ferry_hypervisor::state::{
    copy::{
        CopyDevice, CopyError, MAX_QUEUE_SIZE, MAX_QUEUES, Moved, QUEUE_AREA, RINGS_AREA, Register,
        ring::GuestView,
    },
    ioreq::PageMemory,
};

/// Bytes per bounce chunk (the pool's; a test checks they agree).
pub const CHUNK: u64 = 256;

/// The frontend's RAM: two regions, adjacent as the frontend addresses them and
/// apart in physical memory (a buffer across the seam is outside its RAM).
const FE_RAM: [GuestRegion; 2] = [
    GuestRegion {
        ipa: 0x4000_0000,
        pa: 0x1000_0000,
        size: 0xc000,
    },
    GuestRegion {
        ipa: 0x4000_c000,
        pa: 0x2000_0000,
        size: 0x4000,
    },
];
const FE_BASE: u64 = 0x4000_0000;
const FE_SIZE: u64 = 0x1_0000;
const FE_SEAM: u64 = 0x4000_c000;
/// Queue q's rings, when the frontend plays by the rules: at `FE_BASE + q *
/// FE_QUEUE`, the descriptor table, then the avail ring at +0x1000 and the used
/// ring at +0x1300.
const FE_QUEUE: u64 = 0x2000;
/// The frontend's indirect tables (64 bytes for each of the first 16 heads of
/// each queue) and, after them to the end of its RAM, its buffers.
const DATA: u64 = 0x4000_8000;
const BUFFERS: u64 = DATA + 0x1000;
/// The backend's RAM; the bounce area lies in it at `BOUNCE_BASE`.
const BE_RAM: [GuestRegion; 1] = [GuestRegion {
    ipa: 0x4000_0000,
    pa: 0x3000_0000,
    size: 0x2_0000,
}];
const BOUNCE_BASE: u64 = 0x4000_4000;

/// Where the fuzzer's choices come from: a seeded PRNG in `cargo test`,
/// libFuzzer's bytes in the cargo-fuzz target.
pub trait Source {
    /// A number below `n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64;
    /// Whether the choices ran out: the scenario ends.
    fn done(&self) -> bool {
        false
    }
    /// Any number.
    fn any(&mut self) -> u64 {
        self.below(u64::MAX)
    }
    /// True `percent` times out of 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Bulk bytes from a seed (data areas, bytes the backend writes): cheap, so a
/// libFuzzer input spends its bytes on decisions.
fn bytes_from(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Guest memory in flat arrays, one per region (by physical address), with a
/// log of every write: what Ferry wrote during a call.
pub struct FlatMem {
    areas: RefCell<Vec<(u64, Vec<u8>)>>,
    writes: RefCell<Vec<(u64, u64)>>,
}

impl FlatMem {
    fn new(regions: &[GuestRegion]) -> FlatMem {
        FlatMem {
            areas: RefCell::new(
                regions
                    .iter()
                    .map(|r| (r.pa, vec![0; r.size as usize]))
                    .collect(),
            ),
            writes: RefCell::new(Vec::new()),
        }
    }

    fn with<R>(&self, pa: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut areas = self.areas.borrow_mut();
        let end = pa.checked_add(len as u64);
        let Some((base, bytes)) = areas
            .iter_mut()
            .find(|(b, v)| pa >= *b && end.is_some_and(|e| e <= *b + v.len() as u64))
        else {
            panic!("Ferry accessed [{pa:#x}, +{len:#x}): outside every RAM region");
        };
        let off = (pa - *base) as usize;
        f(&mut bytes[off..off + len])
    }

    fn take_writes(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.writes.borrow_mut())
    }
}

impl PageMemory for FlatMem {
    fn read_u32(&self, addr: u64) -> u32 {
        self.with(addr, 4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn write_u32(&self, addr: u64, value: u32) {
        self.write_bytes(addr, &value.to_le_bytes());
    }

    fn write_bytes(&self, addr: u64, bytes: &[u8]) {
        self.with(addr, bytes.len(), |b| b.copy_from_slice(bytes));
        self.writes.borrow_mut().push((addr, bytes.len() as u64));
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        self.with(addr, buf.len(), |b| buf.copy_from_slice(b));
    }

    fn barrier(&self) {}
}

/// `[ipa, ipa + len)` if it lies entirely in one region of `regions`.
fn inside(regions: &[GuestRegion], ipa: u64, len: u64) -> Option<Range<u64>> {
    let end = ipa.checked_add(len)?;
    regions
        .iter()
        .any(|r| ipa >= r.ipa && end <= r.ipa + r.size)
        .then_some(ipa..end)
}

/// The guest address of physical address `pa` in `regions`.
fn ipa_of(regions: &[GuestRegion], pa: u64) -> Option<u64> {
    regions
        .iter()
        .find(|r| pa >= r.pa && pa < r.pa + r.size)
        .map(|r| r.ipa + (pa - r.pa))
}

fn covers(outer: &Range<u64>, inner: &Range<u64>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The model's copy of the frontend's RAM (by guest address), refusing what
/// Ferry's view refuses.
#[derive(Clone, PartialEq, Eq)]
struct Image(Vec<u8>);

impl Image {
    fn slice(&self, ipa: u64, len: u64) -> Option<&[u8]> {
        let r = inside(&FE_RAM, ipa, len)?;
        Some(&self.0[(r.start - FE_BASE) as usize..(r.end - FE_BASE) as usize])
    }

    fn u16(&self, ipa: u64) -> Option<u16> {
        self.slice(ipa, 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn put(&mut self, ipa: u64, data: &[u8]) -> Option<()> {
        let r = inside(&FE_RAM, ipa, data.len() as u64)?;
        self.0[(r.start - FE_BASE) as usize..(r.end - FE_BASE) as usize].copy_from_slice(data);
        Some(())
    }
}

impl Transport for Image {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        buf.copy_from_slice(self.slice(addr, buf.len() as u64).ok_or(MemError)?);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        self.put(addr, data).ok_or(MemError)
    }

    fn notify(&mut self, _cause: Interrupt) {}
}

/// A split ring's place (the model's own layout arithmetic, overflow refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Layout {
    desc: u64,
    avail: u64,
    used: u64,
    num: u16,
}

impl Layout {
    fn at(base: u64, off: u64) -> u64 {
        // An address past u64::MAX is refused like any address outside RAM.
        base.checked_add(off).unwrap_or(0)
    }
    fn avail_idx(&self) -> u64 {
        Self::at(self.avail, 2)
    }
    fn avail_entry(&self, i: u16) -> u64 {
        Self::at(self.avail, 4 + 2 * u64::from(i % self.num.max(1)))
    }
    fn used_event(&self) -> u64 {
        Self::at(self.avail, 4 + 2 * u64::from(self.num))
    }
    fn used_idx(&self) -> u64 {
        Self::at(self.used, 2)
    }
    fn used_entry(&self, i: u16) -> u64 {
        Self::at(self.used, 4 + 8 * u64::from(i % self.num.max(1)))
    }
    fn avail_event(&self) -> u64 {
        Self::at(self.used, 4 + 8 * u64::from(self.num))
    }
    fn desc_bytes(&self) -> u64 {
        16 * u64::from(self.num)
    }
    fn avail_bytes(&self) -> u64 {
        6 + 2 * u64::from(self.num)
    }
    fn used_bytes(&self) -> u64 {
        6 + 8 * u64::from(self.num)
    }
    fn rings(&self) -> [Range<u64>; 3] {
        [
            self.desc..self.desc.saturating_add(self.desc_bytes()),
            self.avail..self.avail.saturating_add(self.avail_bytes()),
            self.used..self.used.saturating_add(self.used_bytes()),
        ]
    }
}

/// A request the backend holds, as the model saw it posted.
#[derive(Clone, Debug)]
struct Req {
    /// Its shadow head (2k for slot k).
    id: u16,
    /// The frontend chain's head.
    head: u16,
    /// Its bounce bytes (backend address): readable, then writable.
    data: u64,
    /// Its run of chunks in the queue's share: first, count.
    first: u64,
    chunks: u64,
    r: u32,
    w: u32,
    writable: Vec<Buffer>,
}

#[derive(Clone, Debug, Default)]
struct MQueue {
    fe: Layout,
    ready: bool,
    last_avail: u16,
    fe_used: u16,
    shadow_avail: u16,
    shadow_used: u16,
    held: Vec<Req>,
}

/// What the copy path should do, kept plainly.
struct Model {
    bounce: Region,
    sel: u32,
    features_sel: u32,
    features: u64,
    queues: [MQueue; MAX_QUEUES],
}

/// One call's context: the frontend's memory as the model evolves it, the
/// bounce area as it was before the call, the backend's memory and Ferry's
/// backend writes after it, and the expectations the model adds.
struct Call<'a> {
    fe: Image,
    bounce_before: Vec<u8>,
    mem: &'a FlatMem,
    be_writes: Vec<Range<u64>>,
    shadow: [Layout; MAX_QUEUES],
    /// Backend bytes Ferry may have written: the readable part of each request
    /// posted in this call, and shadow rings.
    be_allowed: Vec<Range<u64>>,
    /// (address, value) u16s the backend must see after the call.
    be_expect: Vec<(u64, u16)>,
    /// Backend ranges that must read as zeros after the call.
    be_zero: Vec<Range<u64>>,
    held_back: usize,
}

impl Call<'_> {
    fn be(&self, ipa: u64, len: u64) -> Vec<u8> {
        let mut b = vec![0; len as usize];
        GuestView::new(&BE_RAM, self.mem)
            .read(ipa, &mut b)
            .expect("inside the backend's RAM");
        b
    }

    fn be_u16(&self, ipa: u64) -> u16 {
        let b = self.be(ipa, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    fn be_u32(&self, ipa: u64) -> u32 {
        let b = self.be(ipa, 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn before(&self, bounce: Region, ipa: u64, len: u64) -> &[u8] {
        let off = (ipa - bounce.base) as usize;
        &self.bounce_before[off..off + len as usize]
    }

    /// Whether Ferry wrote `[ipa, ipa + len)` of backend memory in this call.
    fn be_written(&self, ipa: u64, len: u64) -> bool {
        self.be_writes.iter().any(|w| covers(w, &(ipa..ipa + len)))
    }
}

fn chunks_for(bytes: u64) -> u64 {
    bytes.div_ceil(CHUNK).max(1)
}

fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl Model {
    fn new(bounce: Region) -> Model {
        Model {
            bounce,
            sel: 0,
            features_sel: 0,
            features: 0,
            queues: Default::default(),
        }
    }

    fn negotiated(&self, f: u64) -> bool {
        self.features & f != 0
    }

    fn share(&self) -> u64 {
        self.bounce.size.saturating_sub(RINGS_AREA) / MAX_QUEUES as u64
    }

    fn share_chunks(&self) -> u64 {
        self.share() / CHUNK
    }

    fn pool_base(&self, q: usize) -> u64 {
        self.bounce.base + RINGS_AREA + self.share() * q as u64
    }

    /// The frontend's writable buffers Ferry may fill, and its used rings.
    fn fe_allowed(&self) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        for q in self.queues.iter().filter(|q| q.ready) {
            out.push(q.fe.rings()[2].clone());
            for r in &q.held {
                out.extend(r.writable.iter().map(|b| b.addr..b.addr + u64::from(b.len)));
            }
        }
        out
    }

    fn on_read(&self, offset: u64) -> Register {
        let Some(q) = self.queues.get(self.sel as usize) else {
            return Register::Forward(0);
        };
        let value = match u32::try_from(offset).unwrap_or(u32::MAX) {
            reg::QUEUE_DESC_LOW => q.fe.desc & 0xffff_ffff,
            reg::QUEUE_DESC_HIGH => q.fe.desc >> 32,
            reg::QUEUE_DRIVER_LOW => q.fe.avail & 0xffff_ffff,
            reg::QUEUE_DRIVER_HIGH => q.fe.avail >> 32,
            reg::QUEUE_DEVICE_LOW => q.fe.used & 0xffff_ffff,
            reg::QUEUE_DEVICE_HIGH => q.fe.used >> 32,
            _ => return Register::Forward(0),
        };
        Register::Answer(value)
    }

    fn on_write(&mut self, offset: u64, value: u64, call: &mut Call) -> Register {
        let sel = self.sel as usize;
        let lo = value & 0xffff_ffff;
        let set_lo = |old: u64| old & !0xffff_ffff | lo;
        let set_hi = |old: u64| old & 0xffff_ffff | lo << 32;
        let shadow = call.shadow.get(sel).copied().unwrap_or_default();
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        let exists = sel < MAX_QUEUES;
        let addr_reg = matches!(
            offset,
            reg::QUEUE_DESC_LOW
                | reg::QUEUE_DESC_HIGH
                | reg::QUEUE_DRIVER_LOW
                | reg::QUEUE_DRIVER_HIGH
                | reg::QUEUE_DEVICE_LOW
                | reg::QUEUE_DEVICE_HIGH
        );
        match offset {
            reg::QUEUE_SEL => self.sel = value as u32,
            reg::DRIVER_FEATURES_SEL => self.features_sel = value as u32,
            reg::DRIVER_FEATURES => match self.features_sel {
                0 => self.features = set_lo(self.features),
                1 => self.features = set_hi(self.features),
                _ => {}
            },
            reg::STATUS if value == 0 => {
                self.queues = Default::default();
                self.sel = 0;
                self.features = 0;
            }
            reg::QUEUE_NUM if exists && !self.queues[sel].ready => {
                self.queues[sel].fe.num = value as u16;
            }
            _ if addr_reg && !exists => return Register::Forward(0),
            _ if addr_reg && self.queues[sel].ready => {
                let theirs = match offset {
                    reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => shadow.desc,
                    reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => shadow.avail,
                    _ => shadow.used,
                };
                return Register::Forward(if offset % 8 == 4 {
                    theirs >> 32
                } else {
                    theirs & 0xffff_ffff
                });
            }
            _ if addr_reg => {
                let fe = &mut self.queues[sel].fe;
                let (field, theirs) = match offset {
                    reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => (&mut fe.desc, shadow.desc),
                    reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => (&mut fe.avail, shadow.avail),
                    _ => (&mut fe.used, shadow.used),
                };
                let high = offset % 8 == 4;
                *field = if high { set_hi(*field) } else { set_lo(*field) };
                return Register::Forward(if high {
                    theirs >> 32
                } else {
                    theirs & 0xffff_ffff
                });
            }
            reg::QUEUE_READY if exists && value & 1 == 1 && self.queues[sel].ready => {}
            reg::QUEUE_READY if exists && value & 1 == 1 => {
                if let Err(e) = self.enable(sel, call) {
                    return Register::Fail(e);
                }
            }
            reg::QUEUE_READY | reg::QUEUE_RESET if exists => {
                let num = self.queues[sel].fe.num;
                self.queues[sel] = MQueue::default();
                self.queues[sel].fe.num = num;
            }
            _ => {}
        }
        Register::Forward(value)
    }

    fn enable(&mut self, q: usize, call: &mut Call) -> Result<(), CopyError> {
        let fe = self.queues[q].fe;
        let ok = |addr: u64, len: u64| inside(&FE_RAM, addr, len).is_some();
        let fine = (2..=MAX_QUEUE_SIZE).contains(&fe.num)
            && fe.num.is_power_of_two()
            && fe.desc.is_multiple_of(16)
            && fe.avail.is_multiple_of(2)
            && fe.used.is_multiple_of(4)
            && ok(fe.desc, fe.desc_bytes())
            && ok(fe.avail, fe.avail_bytes())
            && ok(fe.used, fe.used_bytes());
        if !fine {
            return Err(CopyError::Ring { queue: q as u16 });
        }
        let shadow = Layout {
            num: fe.num,
            ..call.shadow[q]
        };
        call.shadow[q] = shadow;
        for r in shadow.rings() {
            call.be_allowed.push(r.clone());
            call.be_zero.push(r);
        }
        self.queues[q] = MQueue {
            fe,
            ready: true,
            ..MQueue::default()
        };
        Ok(())
    }

    fn complete(&mut self, call: &mut Call) -> Result<Moved, CopyError> {
        let mut moved = Moved::default();
        for q in 0..MAX_QUEUES {
            if self.queues[q].ready {
                let (n, interrupt) = self.complete_queue(q, call)?;
                moved.completed += n;
                moved.interrupt |= interrupt;
            }
        }
        for q in 0..MAX_QUEUES {
            let n = self.post(q, call)?;
            if n > 0 {
                moved.posted += n;
                moved.posted_queues |= 1 << q;
            }
        }
        Ok(moved)
    }

    fn complete_queue(&mut self, q: usize, call: &mut Call) -> Result<(u16, bool), CopyError> {
        let queue = q as u16;
        let mem = CopyError::Memory { queue };
        let shadow = call.shadow[q];
        let idx = call.be_u16(shadow.used_idx());
        let event_idx = self.negotiated(feature::RING_EVENT_IDX);
        let bounce = self.bounce;
        let mq = &mut self.queues[q];
        if usize::from(idx.wrapping_sub(mq.shadow_used)) > mq.held.len() {
            return Err(CopyError::UsedJump {
                queue,
                last: mq.shadow_used,
                idx,
            });
        }
        let old = mq.fe_used;
        let mut n = 0;
        while mq.shadow_used != idx {
            let at = shadow.used_entry(mq.shadow_used);
            let (id, len) = (call.be_u32(at), call.be_u32(at + 4));
            let Some(i) = mq.held.iter().position(|r| u32::from(r.id) == id) else {
                return Err(CopyError::NotOutstanding { queue, id });
            };
            if len > mq.held[i].w {
                let writable = mq.held[i].w;
                return Err(CopyError::UsedTooLong {
                    queue,
                    id,
                    len,
                    writable,
                });
            }
            let req = mq.held.remove(i);
            let mut from = req.data + u64::from(req.r);
            let mut left = len;
            for b in &req.writable {
                let k = left.min(b.len);
                if k == 0 {
                    break;
                }
                let bytes = call.before(bounce, from, u64::from(k)).to_vec();
                call.fe.put(b.addr, &bytes).expect("checked when posted");
                from += u64::from(k);
                left -= k;
            }
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&u32::from(req.head).to_le_bytes());
            entry[4..].copy_from_slice(&len.to_le_bytes());
            call.fe
                .put(mq.fe.used_entry(mq.fe_used), &entry)
                .ok_or(mem)?;
            mq.fe_used = mq.fe_used.wrapping_add(1);
            mq.shadow_used = mq.shadow_used.wrapping_add(1);
            n += 1;
        }
        call.be_expect.push((shadow.used_event(), mq.shadow_used));
        call.be_allowed
            .push(shadow.used_event()..shadow.used_event() + 2);
        if n == 0 {
            return Ok((0, false));
        }
        call.fe
            .put(mq.fe.used_idx(), &mq.fe_used.to_le_bytes())
            .ok_or(mem)?;
        let interrupt = if event_idx {
            let event = call.fe.u16(mq.fe.used_event()).ok_or(mem)?;
            need_event(event, mq.fe_used, old)
        } else {
            let flags = call.fe.u16(mq.fe.avail).ok_or(mem)?;
            flags & AVAIL_F_NO_INTERRUPT == 0
        };
        Ok((n, interrupt))
    }

    fn post(&mut self, q: usize, call: &mut Call) -> Result<u16, CopyError> {
        if !self.queues.get(q).is_some_and(|s| s.ready) {
            return Ok(0);
        }
        let queue = q as u16;
        let mem = CopyError::Memory { queue };
        let fe = self.queues[q].fe;
        let idx = call.fe.u16(fe.avail_idx()).ok_or(mem)?;
        let last = self.queues[q].last_avail;
        if idx.wrapping_sub(last) > fe.num {
            return Err(CopyError::AvailJump { queue, last, idx });
        }
        let mut posted = 0;
        while self.queues[q].last_avail != idx {
            let head = call
                .fe
                .u16(fe.avail_entry(self.queues[q].last_avail))
                .ok_or(mem)?;
            let indirect = self.negotiated(feature::RING_INDIRECT_DESC);
            let chain = walk_chain(&mut call.fe, fe.desc, fe.num, head, indirect)
                .map_err(|error| CopyError::Chain { queue, head, error })?;
            if let Some(b) = chain
                .buffers()
                .iter()
                .find(|b| inside(&FE_RAM, b.addr, u64::from(b.len)).is_none())
            {
                return Err(CopyError::Buffer {
                    queue,
                    addr: b.addr,
                    len: b.len,
                });
            }
            let bytes = u64::from(chain.readable_len()) + u64::from(chain.writable_len());
            if chunks_for(bytes) > self.share_chunks() {
                return Err(CopyError::TooBig { queue, bytes });
            }
            if !self.room(q, chunks_for(bytes)) {
                call.held_back += 1;
                break;
            }
            let req = self.observe(q, &chain, call);
            let mq = &mut self.queues[q];
            mq.held.push(req);
            mq.shadow_avail = mq.shadow_avail.wrapping_add(1);
            mq.last_avail = mq.last_avail.wrapping_add(1);
            posted += 1;
        }
        let mq = &self.queues[q];
        let shadow = call.shadow[q];
        assert!(
            !call.be_written(shadow.avail_entry(mq.shadow_avail), 2),
            "queue {q}: Ferry posted a request the model holds back or refuses (held {}, \
             last_avail {}, avail.idx {idx})",
            mq.held.len(),
            mq.last_avail
        );
        if posted > 0 {
            call.be_expect.push((shadow.avail_idx(), mq.shadow_avail));
            call.be_allowed
                .push(shadow.avail_idx()..shadow.avail_idx() + 2);
        }
        if self.negotiated(feature::RING_EVENT_IDX) {
            call.fe
                .put(fe.avail_event(), &mq.last_avail.to_le_bytes())
                .ok_or(mem)?;
        }
        Ok(posted)
    }

    /// Whether queue `q` has a free slot and a free run of `need` chunks.
    fn room(&self, q: usize, need: u64) -> bool {
        let mq = &self.queues[q];
        if mq.held.len() >= usize::from(mq.fe.num / 2) {
            return false;
        }
        let mut run = 0;
        for c in 0..self.share_chunks() {
            let used = mq
                .held
                .iter()
                .any(|r| (r.first..r.first + r.chunks).contains(&c));
            run = if used { 0 } else { run + 1 };
            if run == need {
                return true;
            }
        }
        false
    }

    /// The request Ferry must have posted on queue `q` for `chain`: checks its
    /// shadow entry, descriptors, run and readable bytes.
    fn observe(&self, q: usize, chain: &Chain, call: &mut Call) -> Req {
        let mq = &self.queues[q];
        let shadow = call.shadow[q];
        let entry = shadow.avail_entry(mq.shadow_avail);
        let (r, w) = (chain.readable_len(), chain.writable_len());
        let need = chunks_for(u64::from(r) + u64::from(w));
        assert!(
            call.be_written(entry, 2),
            "queue {q}: Ferry held back chain {} ({r}+{w} bytes, {need} chunks) although a \
             slot and a run are free (held: {:?})",
            chain.head(),
            mq.held
                .iter()
                .map(|h| (h.id, h.first, h.chunks))
                .collect::<Vec<_>>()
        );
        let id = call.be_u16(entry);
        assert!(
            id.is_multiple_of(2) && id / 2 < mq.fe.num / 2,
            "queue {q}: shadow head {id} is no slot's first descriptor"
        );
        assert!(
            mq.held.iter().all(|h| h.id != id),
            "queue {q}: shadow head {id} is already outstanding"
        );
        let mut want = Vec::new();
        if r > 0 {
            want.push((0, r, 0));
        }
        if w > 0 {
            want.push((r, w, desc_flags::WRITE));
        }
        let mut data = None;
        let mut i = id;
        for (k, &(off, len, flags)) in want.iter().enumerate() {
            let d = call.be(shadow.desc + 16 * u64::from(i), 16);
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let dlen = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let dflags = u16::from_le_bytes([d[12], d[13]]);
            let next = u16::from_le_bytes([d[14], d[15]]);
            let more = k + 1 < want.len();
            let base = *data.get_or_insert(addr);
            let flags = flags | if more { desc_flags::NEXT } else { 0 };
            assert_eq!(
                (addr, dlen, dflags),
                (base + u64::from(off), len, flags),
                "queue {q}: shadow descriptor {i} of head {id}"
            );
            if more {
                assert_eq!(next, id + 1, "queue {q}: shadow head {id}'s next");
                i = next;
            }
        }
        let data = data.expect("a chain has a buffer");
        let pool = self.pool_base(q);
        assert!(
            data >= pool && (data - pool).is_multiple_of(CHUNK),
            "queue {q}: shadow data {data:#x} is not a chunk of its share at {pool:#x}"
        );
        let first = (data - pool) / CHUNK;
        assert!(
            first + need <= self.share_chunks()
                && data >= self.bounce.base + RINGS_AREA
                && data + u64::from(r) + u64::from(w) <= self.bounce.end(),
            "queue {q}: shadow data [{data:#x}, +{need} chunks) leaves its share"
        );
        for h in &mq.held {
            assert!(
                !overlaps(&(first..first + need), &(h.first..h.first + h.chunks)),
                "queue {q}: run {first}+{need} of head {id} overlaps head {}'s {}+{}",
                h.id,
                h.first,
                h.chunks
            );
        }
        let mut at = data;
        for b in chain.readable() {
            let want = call
                .fe
                .slice(b.addr, u64::from(b.len))
                .expect("checked")
                .to_vec();
            assert!(
                call.be(at, u64::from(b.len)) == want,
                "queue {q}: readable bytes of head {id} at {at:#x} differ from the frontend's"
            );
            at += u64::from(b.len);
        }
        call.be_allowed.push(data..data + u64::from(r));
        call.be_allowed.push(entry..entry + 2);
        let descs = shadow.desc + 16 * u64::from(id);
        call.be_allowed.push(descs..descs + 16 * want.len() as u64);
        Req {
            id,
            head: chain.head(),
            data,
            first,
            chunks: need,
            r,
            w,
            writable: chain.writable().to_vec(),
        }
    }
}

/// What the loops exercised.
#[derive(Debug, Default)]
pub struct Stats {
    /// Scenarios run.
    pub scenarios: usize,
    /// Calls into the copy path.
    pub calls: usize,
    /// Requests moved to the backend.
    pub posted: usize,
    /// Requests moved back to the frontend.
    pub completed: usize,
    /// Times a request waited for a slot or room.
    pub held_back: usize,
    /// Calls that said the frontend wants an interrupt.
    pub interrupts: usize,
    /// Errors that failed the device, by kind.
    pub errors: BTreeMap<&'static str, usize>,
}

fn kind(e: &CopyError) -> &'static str {
    match e {
        CopyError::Chain { .. } => "chain",
        CopyError::Buffer { .. } => "buffer",
        CopyError::AvailJump { .. } => "avail-jump",
        CopyError::Ring { .. } => "ring",
        CopyError::TooBig { .. } => "too-big",
        CopyError::UsedJump { .. } => "used-jump",
        CopyError::NotOutstanding { .. } => "not-outstanding",
        CopyError::UsedTooLong { .. } => "used-too-long",
        CopyError::Memory { .. } => "memory",
    }
}

/// One device between a random frontend and a random backend.
pub struct Scenario<'s> {
    src: &'s mut dyn Source,
    mem: FlatMem,
    dev: CopyDevice,
    model: Model,
    /// Percent of choices that are hostile.
    chaos: u64,
    /// The frontend's chains per queue (head, descriptors), while they are its
    /// own business or Ferry's: a well-behaved frontend reuses no descriptor of them.
    chains: [Vec<(u16, Vec<u16>)>; MAX_QUEUES],
    failed: bool,
    /// Steer around a known bug: QueueReady=1 on a ready queue that holds
    /// requests (`queue_ready_again_leaks_the_bounce_chunks`).
    pub avoid_ready_again: bool,
    /// Steer around a known bug: ring addresses near the top of the address space
    /// written while the queue is ready (`ring_addresses_rewritten_while_ready_overflow`).
    pub avoid_top_addresses: bool,
    /// What it exercised.
    pub stats: Stats,
}

/// The register offsets the fuzzer writes.
const REGS: [u32; 14] = [
    reg::QUEUE_SEL,
    reg::QUEUE_NUM,
    reg::QUEUE_DESC_LOW,
    reg::QUEUE_DESC_HIGH,
    reg::QUEUE_DRIVER_LOW,
    reg::QUEUE_DRIVER_HIGH,
    reg::QUEUE_DEVICE_LOW,
    reg::QUEUE_DEVICE_HIGH,
    reg::QUEUE_READY,
    reg::QUEUE_RESET,
    reg::STATUS,
    reg::DRIVER_FEATURES,
    reg::DRIVER_FEATURES_SEL,
    reg::QUEUE_NOTIFY,
];

impl<'s> Scenario<'s> {
    /// A fresh device with a bounce area and a degree of hostility chosen by `src`.
    pub fn new(src: &'s mut dyn Source) -> Scenario<'s> {
        let chunks = [1u64, 4, 6, 16, 32][src.below(5) as usize];
        let bounce = Region::new(
            BOUNCE_BASE,
            RINGS_AREA + MAX_QUEUES as u64 * chunks * CHUNK + src.below(CHUNK * 4),
        );
        let chaos = [0u64, 0, 1, 3, 10, 30][src.below(6) as usize];
        let mem = FlatMem::new(&[FE_RAM[0], FE_RAM[1], BE_RAM[0]]);
        let seed = src.any();
        let s = Scenario {
            src,
            mem,
            dev: CopyDevice::new(bounce),
            model: Model::new(bounce),
            chaos,
            chains: Default::default(),
            failed: false,
            avoid_ready_again: false,
            avoid_top_addresses: false,
            stats: Stats::default(),
        };
        s.fe_write(DATA, &bytes_from(seed, (FE_BASE + FE_SIZE - DATA) as usize));
        s.check_shadow_layout();
        s
    }

    /// COPY_FUZZ_KNOWN_BUGS=all (or a comma-separated list of `ready-again`,
    /// `top-addresses`): stop steering around those known bugs.
    pub fn known_bugs_from_env(&mut self) {
        let bugs = std::env::var("COPY_FUZZ_KNOWN_BUGS").unwrap_or_default();
        let known = |name: &str| bugs == "all" || bugs.split(',').any(|b| b == name);
        self.avoid_ready_again = !known("ready-again");
        self.avoid_top_addresses = !known("top-addresses");
    }

    /// Runs up to `steps` steps, or until the device failed or the choices ran out.
    pub fn run(&mut self, steps: usize) {
        self.stats.scenarios += 1;
        let f = [0, feature::RING_EVENT_IDX, feature::RING_INDIRECT_DESC]
            [self.src.below(3) as usize]
            | if self.src.chance(50) {
                feature::RING_EVENT_IDX | feature::RING_INDIRECT_DESC
            } else {
                0
            };
        self.features(f);
        for q in 0..MAX_QUEUES {
            if q == 0 || self.src.chance(40) {
                self.setup_queue(q);
            }
        }
        for _ in 0..steps {
            if self.failed || self.src.done() {
                break;
            }
            self.step();
        }
    }

    fn step(&mut self) {
        match self.src.below(20) {
            0..=4 => self.fe_post(),
            5..=6 => {
                let q = self.src.below(MAX_QUEUES as u64 + 1) as usize;
                self.notify(q);
            }
            7..=10 => self.be_complete(),
            11 => self.complete(),
            12..=13 => self.register_write(),
            14 => {
                let q = self.src.below(MAX_QUEUES as u64) as usize;
                self.setup_queue(q);
            }
            15 => self.fe_scribble(),
            16 => self.be_scribble(),
            17 if self.hostile() => {
                let f = self.src.any() & (feature::RING_EVENT_IDX | feature::RING_INDIRECT_DESC);
                self.features(f);
            }
            _ => self.read_register(),
        }
    }

    /// Mostly a ready queue, if there is one.
    fn pick_queue(&mut self) -> usize {
        let ready: Vec<usize> = (0..MAX_QUEUES)
            .filter(|&q| self.model.queues[q].ready)
            .collect();
        if ready.is_empty() || self.src.chance(15) {
            self.src.below(MAX_QUEUES as u64) as usize
        } else {
            ready[self.src.below(ready.len() as u64) as usize]
        }
    }

    fn hostile(&mut self) -> bool {
        self.chaos > 0 && self.src.chance(self.chaos)
    }

    // --- memory as the two partitions see it -------------------------------------

    fn fe_write(&self, ipa: u64, data: &[u8]) {
        // The frontend writes only its RAM; a write elsewhere goes nowhere.
        let _ = GuestView::new(&FE_RAM, &self.mem).write(ipa, data);
    }

    fn fe_u16(&self, ipa: u64) -> Option<u16> {
        GuestView::new(&FE_RAM, &self.mem).u16(ipa).ok()
    }

    fn be_write(&self, ipa: u64, data: &[u8]) {
        GuestView::new(&BE_RAM, &self.mem)
            .write(ipa, data)
            .expect("inside the backend's RAM");
    }

    fn be_u16(&self, ipa: u64) -> u16 {
        GuestView::new(&BE_RAM, &self.mem)
            .u16(ipa)
            .expect("inside the backend's RAM")
    }

    fn fe_image(&self) -> Image {
        let mut img = Image(vec![0; FE_SIZE as usize]);
        GuestView::new(&FE_RAM, &self.mem)
            .read(FE_RAM[0].ipa, &mut img.0[..FE_RAM[0].size as usize])
            .unwrap();
        GuestView::new(&FE_RAM, &self.mem)
            .read(FE_RAM[1].ipa, &mut img.0[FE_RAM[0].size as usize..])
            .unwrap();
        img
    }

    fn shadows(&self) -> [Layout; MAX_QUEUES] {
        core::array::from_fn(|q| {
            let s = self.dev.shadow(q);
            Layout {
                desc: s.desc,
                avail: s.avail,
                used: s.used,
                num: self.model.queues[q].fe.num,
            }
        })
    }

    /// The shadow rings lie in the rings area, one queue's area each, aligned.
    fn check_shadow_layout(&self) {
        let bounce = self.model.bounce;
        for q in 0..MAX_QUEUES {
            let s = Layout {
                num: MAX_QUEUE_SIZE,
                ..self.shadows()[q]
            };
            let area =
                bounce.base + QUEUE_AREA * q as u64..bounce.base + QUEUE_AREA * (q + 1) as u64;
            assert!(
                s.rings().iter().all(|r| covers(&area, r)) && area.end <= bounce.base + RINGS_AREA,
                "queue {q}: shadow rings {s:?} outside its area {area:x?}"
            );
            let [d, a, u] = s.rings();
            assert!(!overlaps(&d, &a) && !overlaps(&a, &u) && !overlaps(&d, &u));
            assert!(
                s.desc.is_multiple_of(16) && s.avail.is_multiple_of(2) && s.used.is_multiple_of(4)
            );
        }
    }

    // --- one call into the copy path and the checks after it ---------------------

    fn begin(&self) -> (Image, Vec<u8>, Vec<Range<u64>>) {
        self.mem.take_writes();
        let bounce = self.model.bounce;
        let mut before = vec![0; bounce.size as usize];
        GuestView::new(&BE_RAM, &self.mem)
            .read(bounce.base, &mut before)
            .unwrap();
        (self.fe_image(), before, self.model.fe_allowed())
    }

    /// Runs `ferry` and `model` on the same state and checks everything after.
    fn call<T: PartialEq + core::fmt::Debug>(
        &mut self,
        what: &str,
        ferry: impl FnOnce(&mut CopyDevice, &GuestView<'_, FlatMem>, &GuestView<'_, FlatMem>) -> T,
        model: impl FnOnce(&mut Model, &mut Call) -> T,
    ) -> T {
        let (image, bounce_before, fe_allowed) = self.begin();
        let got = {
            let fe = GuestView::new(&FE_RAM, &self.mem);
            let be = GuestView::new(&BE_RAM, &self.mem);
            ferry(&mut self.dev, &fe, &be)
        };
        self.stats.calls += 1;
        let writes = self.mem.take_writes();
        let (mut fe_writes, mut be_writes) = (Vec::new(), Vec::new());
        for &(pa, len) in &writes {
            if let Some(ipa) = ipa_of(&FE_RAM, pa) {
                fe_writes.push(ipa..ipa + len);
            } else {
                let ipa = ipa_of(&BE_RAM, pa).expect("a write in some RAM");
                be_writes.push(ipa..ipa + len);
            }
        }
        for w in &fe_writes {
            assert!(
                fe_allowed.iter().any(|a| covers(a, w)),
                "{what}: Ferry wrote frontend bytes {w:x?}, outside the writable buffers it \
                 holds and the used rings ({fe_allowed:x?})"
            );
        }
        let mut call = Call {
            fe: image,
            bounce_before,
            mem: &self.mem,
            be_writes,
            shadow: self.shadows(),
            be_allowed: Vec::new(),
            be_expect: Vec::new(),
            be_zero: Vec::new(),
            held_back: 0,
        };
        let want = model(&mut self.model, &mut call);
        assert_eq!(got, want, "{what}: Ferry and the model disagree");
        self.stats.held_back += call.held_back;
        let bounce = self.model.bounce;
        for w in &call.be_writes {
            assert!(
                covers(&(bounce.base..bounce.end()), w),
                "{what}: Ferry wrote backend bytes {w:x?} outside the bounce area"
            );
            assert!(
                call.be_allowed.iter().any(|a| covers(a, w)),
                "{what}: Ferry wrote backend bytes {w:x?} outside the shadow rings and the \
                 requests it posted"
            );
        }
        for &(at, v) in &call.be_expect {
            assert_eq!(call.be_u16(at), v, "{what}: the backend's u16 at {at:#x}");
        }
        for z in &call.be_zero {
            assert!(
                call.be(z.start, z.end - z.start).iter().all(|&b| b == 0),
                "{what}: shadow ring {z:x?} not cleared"
            );
        }
        let after = self.fe_image();
        if after != call.fe {
            let i = (0..after.0.len())
                .find(|&i| after.0[i] != call.fe.0[i])
                .unwrap_or_default();
            panic!(
                "{what}: the frontend's byte at {:#x} is {:#04x}, the model says {:#04x}",
                FE_BASE + i as u64,
                after.0[i],
                call.fe.0[i]
            );
        }
        got
    }

    fn failed_with(&mut self, e: &CopyError) {
        *self.stats.errors.entry(kind(e)).or_default() += 1;
        assert!(!e.to_string().is_empty());
        self.failed = true;
    }

    fn write_reg(&mut self, offset: u32, value: u64) -> Register {
        let off = u64::from(offset);
        let got = self.call(
            "register write",
            |dev, fe, be| dev.on_write(off, value, fe, be),
            |m, call| m.on_write(off, value, call),
        );
        if let Register::Fail(e) = got {
            self.failed_with(&e);
        }
        got
    }

    fn notify(&mut self, q: usize) {
        if self.failed {
            return;
        }
        let got = self.call(
            "post",
            |dev, fe, be| dev.post(q, fe, be),
            |m, call| m.post(q, call),
        );
        match got {
            Ok(n) => self.stats.posted += usize::from(n),
            Err(e) => self.failed_with(&e),
        }
    }

    fn complete(&mut self) {
        if self.failed {
            return;
        }
        let got = self.call(
            "complete",
            |dev, fe, be| dev.complete(fe, be),
            |m, call| m.complete(call),
        );
        match got {
            Ok(moved) => {
                self.stats.posted += usize::from(moved.posted);
                self.stats.completed += usize::from(moved.completed);
                self.stats.interrupts += usize::from(moved.interrupt);
            }
            Err(e) => self.failed_with(&e),
        }
    }

    fn read_register(&mut self) {
        let offset = if self.src.chance(80) {
            u64::from(REGS[self.src.below(REGS.len() as u64) as usize])
        } else {
            self.src.below(0x200)
        };
        assert_eq!(self.dev.on_read(offset), self.model.on_read(offset));
        let v = self.src.any() >> self.src.below(64);
        let max = u64::from(reg::QUEUE_NUM_MAX);
        let offset = if self.src.chance(30) { max } else { offset };
        let want = if offset == max {
            v.min(u64::from(MAX_QUEUE_SIZE))
        } else {
            v
        };
        assert_eq!(self.dev.after_read(offset, v), want);
    }

    // --- the frontend -----------------------------------------------------------

    fn features(&mut self, f: u64) {
        for (sel, half) in [(0u64, f & 0xffff_ffff), (1, f >> 32)] {
            if !self.failed {
                self.write_reg(reg::DRIVER_FEATURES_SEL, sel);
                self.write_reg(reg::DRIVER_FEATURES, half);
            }
        }
    }

    /// Where queue `q`'s rings go when the frontend plays by the rules.
    fn layout(q: usize, num: u16) -> Layout {
        let desc = FE_BASE + FE_QUEUE * q as u64;
        Layout {
            desc,
            avail: desc + 0x1000,
            used: desc + 0x1300,
            num,
        }
    }

    fn random_num(&mut self) -> u16 {
        if self.hostile() {
            [0, 1, 3, 255, 257, 0x1_0008u64 as u16, self.src.any() as u16]
                [self.src.below(7) as usize]
        } else {
            1 << (1 + self.src.below(8))
        }
    }

    /// Sets queue `q` up as a driver does, sometimes with a twist: rings of
    /// another queue, misaligned or outside RAM.
    fn setup_queue(&mut self, q: usize) {
        let num = self.random_num();
        let mut l = Self::layout(q, num);
        if self.hostile() {
            match self.src.below(5) {
                0 => l = Self::layout(self.src.below(MAX_QUEUES as u64) as usize, num),
                1 => l.used += 2, // misaligned
                2 => l.avail = FE_SEAM - 4,
                3 => l.desc = FE_BASE + FE_SIZE - 16,
                _ => l.desc = self.src.any(),
            }
        }
        let sel = if self.hostile() {
            self.src.below(8)
        } else {
            q as u64
        };
        if self.avoid_ready_again
            && self
                .model
                .queues
                .get(sel as usize)
                .is_some_and(|mq| mq.ready && !mq.held.is_empty())
        {
            // bug: QueueReady=1 on a ready queue leaks its requests' chunks
            // (`queue_ready_again_leaks_the_bounce_chunks` below).
            self.write_reg(reg::QUEUE_SEL, sel);
            self.write_reg(reg::QUEUE_READY, 0);
        }
        // A driver clears the rings it hands over.
        for r in l.rings().iter().skip(1) {
            self.fe_write(r.start, &vec![0; (r.end - r.start) as usize]);
        }
        for (offset, value) in [
            (reg::QUEUE_SEL, sel),
            (reg::QUEUE_NUM, u64::from(num)),
            (reg::QUEUE_DESC_LOW, l.desc & 0xffff_ffff),
            (reg::QUEUE_DESC_HIGH, l.desc >> 32),
            (reg::QUEUE_DRIVER_LOW, l.avail & 0xffff_ffff),
            (reg::QUEUE_DRIVER_HIGH, l.avail >> 32),
            (reg::QUEUE_DEVICE_LOW, l.used & 0xffff_ffff),
            (reg::QUEUE_DEVICE_HIGH, l.used >> 32),
            (reg::QUEUE_READY, 1),
        ] {
            if self.failed {
                return;
            }
            self.write_reg(offset, value);
        }
        if !self.failed && self.hostile() {
            // Rings moved while ready: across the seam, the end of RAM or (a
            // known bug: `ring_addresses_rewritten_while_ready_overflow`) to the
            // top of the address space.
            let low = [reg::QUEUE_DRIVER_LOW, reg::QUEUE_DEVICE_LOW][self.src.below(2) as usize];
            let to = [FE_SEAM - 8, FE_BASE + FE_SIZE - 8, u64::MAX - 7]
                [self.src.below(if self.avoid_top_addresses { 2 } else { 3 }) as usize];
            self.write_reg(low, to & 0xffff_ffff);
            self.write_reg(low + 4, to >> 32);
        }
    }

    /// A register write: well-behaved, one a driver may make at any time
    /// (QueueSel, QueueNum, QueueReset, Status, ...); hostile, any.
    fn register_write(&mut self) {
        const BENIGN: [u32; 6] = [
            reg::QUEUE_SEL,
            reg::QUEUE_NUM,
            reg::QUEUE_RESET,
            reg::STATUS,
            reg::DRIVER_FEATURES_SEL,
            reg::QUEUE_NOTIFY,
        ];
        let offset = if !self.hostile() {
            BENIGN[self.src.below(BENIGN.len() as u64) as usize]
        } else if self.src.chance(90) {
            REGS[self.src.below(REGS.len() as u64) as usize]
        } else {
            self.src.below(0x100) as u32 & !3
        };
        let q = self.src.below(MAX_QUEUES as u64) as usize;
        let value = match offset {
            reg::QUEUE_SEL => {
                [0, 1, 2, 3, 4, 0x1_0000_0001, self.src.any()][self.src.below(7) as usize]
            }
            reg::QUEUE_NUM => u64::from(self.random_num()),
            reg::QUEUE_DESC_LOW | reg::QUEUE_DRIVER_LOW | reg::QUEUE_DEVICE_LOW => {
                let l = Self::layout(q, 0);
                match self.src.below(8) {
                    0 => l.desc,
                    1 => l.avail,
                    2 => l.used,
                    3 => DATA + self.src.below(FE_BASE + FE_SIZE - DATA),
                    4 => FE_SEAM - 8,
                    5 => FE_BASE + FE_SIZE - 8,
                    6 => 0xffff_fff0,
                    _ => self.src.any(),
                }
            }
            reg::QUEUE_DESC_HIGH | reg::QUEUE_DRIVER_HIGH | reg::QUEUE_DEVICE_HIGH => {
                [0, 0, 0, 1, 0xffff_ffff, self.src.any()][self.src.below(6) as usize]
            }
            reg::QUEUE_READY | reg::QUEUE_RESET | reg::STATUS => {
                [0, 1, self.src.any()][self.src.below(3) as usize]
            }
            reg::DRIVER_FEATURES_SEL => self.src.below(3),
            _ => self.src.any(),
        };
        let sel = self.model.sel as usize;
        if offset == reg::QUEUE_READY
            && value & 1 == 1
            && self.avoid_ready_again
            && self
                .model
                .queues
                .get(sel)
                .is_some_and(|mq| mq.ready && !mq.held.is_empty())
        {
            return; // bug: see `queue_ready_again_leaks_the_bounce_chunks`
        }
        let ready = self.model.queues.get(sel).is_some_and(|mq| mq.ready);
        let high = matches!(
            offset,
            reg::QUEUE_DESC_HIGH | reg::QUEUE_DRIVER_HIGH | reg::QUEUE_DEVICE_HIGH
        );
        if self.avoid_top_addresses && ready && high && value & 0xffff_ffff >= 0xffff_0000 {
            // bug: see `ring_addresses_rewritten_while_ready_overflow`
            return;
        }
        self.write_reg(offset, value);
    }

    /// A buffer of about `budget` bytes, in the data area and one region, or
    /// (hostile) anywhere, of any length.
    fn buffer(&mut self, budget: u64, hostile: bool) -> (u64, u32) {
        if hostile && self.src.chance(50) {
            let addr = match self.src.below(6) {
                0 => self.src.any(),
                1 => FE_SEAM - 1 - self.src.below(32),
                2 => FE_BASE + self.src.below(DATA - FE_BASE), // into the rings
                3 => FE_BASE + FE_SIZE - self.src.below(32),
                4 => FE_BASE - 1 - self.src.below(32),
                _ => DATA + self.src.below(FE_BASE + FE_SIZE - DATA),
            };
            let len = match self.src.below(5) {
                0 => 0,
                1 => self.src.any() as u32,
                // In RAM, larger than any share: too big.
                2 => return (BUFFERS, 0x2001 + self.src.below(0x1000) as u32),
                _ => 1 + self.src.below(64) as u32,
            };
            return (addr, len);
        }
        let len = match self.src.below(10) {
            0..=5 => 1 + self.src.below(64.min(budget)),
            _ => 1 + self.src.below(budget),
        };
        let (start, end) = if self.src.chance(60) {
            (BUFFERS, FE_SEAM)
        } else {
            (FE_SEAM, FE_BASE + FE_SIZE)
        };
        let len = len.min(end - start);
        (start + self.src.below(end - start - len + 1), len as u32)
    }

    /// Descriptors of queue `q` the frontend may use: none of a chain that is
    /// posted and not taken yet (`[last_avail, idx)`) or that Ferry holds.
    fn free_descs(&mut self, q: usize, idx: u16) -> Vec<u16> {
        let mq = &self.model.queues[q];
        let l = mq.fe;
        let pending: Vec<u16> = (0..idx.wrapping_sub(mq.last_avail).min(l.num))
            .filter_map(|k| self.fe_u16(l.avail_entry(mq.last_avail.wrapping_add(k))))
            .collect();
        let mq = &self.model.queues[q];
        let chains = &mut self.chains[q];
        if !mq.ready {
            chains.clear();
        }
        chains
            .retain(|(head, _)| pending.contains(head) || mq.held.iter().any(|r| r.head == *head));
        (0..l.num)
            .filter(|d| !chains.iter().any(|(_, ds)| ds.contains(d)))
            .collect()
    }

    /// Writes a chain into queue `q`'s table (or an indirect one) and returns its
    /// head and the descriptors it took: from `free` if given, else (hostile) any
    /// (loops, indices past the table).
    fn write_chain(
        &mut self,
        l: Layout,
        budget: u64,
        free: Option<&mut Vec<u16>>,
    ) -> (u16, Vec<u16>) {
        let hostile = free.is_none();
        let len = if hostile {
            1 + self.src.below(80)
        } else {
            1 + self.src.below(4)
        };
        let readable = self.src.below(len + 1);
        let per = (budget / len).max(1);
        let mut bufs = Vec::new();
        for i in 0..len {
            let (addr, blen) = self.buffer(per, hostile);
            let mut flags = if i >= readable { desc_flags::WRITE } else { 0 };
            if i + 1 < len {
                flags |= desc_flags::NEXT;
            }
            if hostile && self.src.chance(20) {
                flags ^= 1 << self.src.below(3);
            }
            bufs.push((addr, blen, flags));
        }
        let mut pick = {
            let mut free = free;
            let num = u64::from(l.num);
            move |src: &mut dyn Source| match free.as_deref_mut() {
                Some(f) if !f.is_empty() => Some(f.swap_remove(src.below(f.len() as u64) as usize)),
                Some(_) => None,
                None => Some(src.below(num + 2) as u16),
            }
        };
        let indirect = self.model.negotiated(feature::RING_INDIRECT_DESC) || hostile;
        if indirect && self.src.chance(20) {
            let Some(head) = pick(&mut *self.src) else {
                return (0, Vec::new());
            };
            // A well-behaved frontend's table is its own: one per queue and head.
            let q = l.desc.wrapping_sub(FE_BASE) / FE_QUEUE;
            let table = if hostile {
                (DATA + self.src.below(FE_SEAM - DATA - 16 * len)) & !15
            } else if q < MAX_QUEUES as u64 && head < 16 && l.desc.is_multiple_of(FE_QUEUE) {
                DATA + (q * 16 + u64::from(head)) * 64
            } else {
                return (0, Vec::new());
            };
            for (i, &(addr, blen, flags)) in bufs.iter().enumerate() {
                let next = if hostile && self.src.chance(20) {
                    self.src.any() as u16
                } else {
                    i as u16 + 1
                };
                self.desc_at(table + 16 * i as u64, addr, blen, flags, next);
            }
            let mut flags = desc_flags::INDIRECT;
            let mut tlen = 16 * len as u32;
            if hostile && self.src.chance(30) {
                flags |= desc_flags::NEXT;
                tlen = self.src.any() as u32;
            }
            self.desc_at(
                l.desc.wrapping_add(16 * u64::from(head)),
                table,
                tlen,
                flags,
                0,
            );
            return (head, vec![head]);
        }
        let mut idx = Vec::new();
        while idx.len() < len as usize {
            match pick(&mut *self.src) {
                Some(d) => idx.push(d),
                None => break,
            }
        }
        let n = idx.len();
        for (i, &(addr, blen, mut flags)) in bufs.iter().take(n).enumerate() {
            let next = idx.get(i + 1).copied().unwrap_or(0);
            if i + 1 == n && !hostile {
                flags &= !desc_flags::NEXT;
            }
            self.desc_at(
                l.desc.wrapping_add(16 * u64::from(idx[i])),
                addr,
                blen,
                flags,
                next,
            );
        }
        (idx.first().copied().unwrap_or(0), idx)
    }

    fn desc_at(&self, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.fe_write(at, &d);
    }

    /// The frontend posts a few chains on a queue and (mostly) notifies. A
    /// well-behaved one takes free descriptors only, so it never has more than
    /// the queue size in flight; a hostile one writes anything anywhere.
    fn fe_post(&mut self) {
        let q = self.pick_queue();
        let l = self.model.queues[q].fe;
        if l.num == 0 {
            return;
        }
        let Some(idx) = self.fe_u16(l.avail_idx()) else {
            return;
        };
        let mut free = self.free_descs(q, idx);
        let share = (self.model.share_chunks() * CHUNK).max(1);
        let mut k = 0u16;
        for _ in 0..1 + self.src.below(u64::from(l.num.min(6))) {
            let budget = if self.src.chance(90) {
                share / 2
            } else {
                share
            };
            let hostile = self.hostile();
            let (head, descs) = self.write_chain(l, budget.max(1), (!hostile).then_some(&mut free));
            if descs.is_empty() {
                break;
            }
            self.fe_write(l.avail_entry(idx.wrapping_add(k)), &head.to_le_bytes());
            self.chains[q].push((head, descs));
            k += 1;
        }
        let new = if self.hostile() {
            self.src.any() as u16
        } else {
            idx.wrapping_add(k)
        };
        self.fe_write(l.avail_idx(), &new.to_le_bytes());
        if self.src.chance(20) {
            let flags = self.src.below(2) as u16;
            self.fe_write(l.avail, &flags.to_le_bytes());
        }
        if self.src.chance(20) {
            let fe_used = self.model.queues[q].fe_used;
            let event = fe_used.wrapping_add(self.src.below(4) as u16);
            self.fe_write(l.used_event(), &event.to_le_bytes());
        }
        if self.src.chance(75) {
            self.notify(q);
        }
    }

    /// The frontend rewrites its memory: well-behaved, only descriptors of chains
    /// Ferry already took (it must not see them); hostile, anything: pending
    /// descriptors, ring indices and flags, its used ring, its data.
    fn fe_scribble(&mut self) {
        let q = self.pick_queue();
        let l = self.model.queues[q].fe;
        if !self.hostile() {
            let taken: Vec<u16> = self.model.queues[q].held.iter().map(|r| r.head).collect();
            let descs: Vec<u16> = self.chains[q]
                .iter()
                .filter(|(h, _)| taken.contains(h))
                .flat_map(|(_, ds)| ds.iter().copied())
                .collect();
            if !descs.is_empty() {
                let d = descs[self.src.below(descs.len() as u64) as usize];
                let (addr, len) = self.buffer(64, false);
                let flags = self.src.below(8) as u16;
                let next = self.src.below(u64::from(l.num)) as u16;
                self.desc_at(
                    l.desc.wrapping_add(16 * u64::from(d)),
                    addr,
                    len,
                    flags,
                    next,
                );
            }
            return;
        }
        let at = match self.src.below(4) {
            0 => l
                .desc
                .wrapping_add(16 * self.src.below(u64::from(l.num.max(1)))),
            1 => l.avail.wrapping_add(self.src.below(l.avail_bytes())),
            2 => l.used.wrapping_add(self.src.below(l.used_bytes())),
            _ => FE_BASE + self.src.below(FE_SIZE),
        };
        let len = 1 + self.src.below(16);
        let bytes = bytes_from(self.src.any(), len as usize);
        self.fe_write(at, &bytes);
    }

    // --- the backend -------------------------------------------------------------

    /// The backend completes some requests of a queue (writing bytes, used entries
    /// and used.idx) and (mostly) notifies.
    fn be_complete(&mut self) {
        let q = self.pick_queue();
        let mq = &self.model.queues[q];
        let s = self.shadows()[q];
        if !mq.ready || s.num == 0 {
            return;
        }
        // Requests already in the used ring but not yet taken are not used again.
        let mut idx = self.be_u16(s.used_idx());
        let pending = idx.wrapping_sub(mq.shadow_used).min(s.num);
        let taken: Vec<u32> = (0..pending)
            .map(|k| {
                let i = mq.shadow_used.wrapping_add(k);
                let mut b = [0u8; 4];
                GuestView::new(&BE_RAM, &self.mem)
                    .read(s.used_entry(i), &mut b)
                    .unwrap();
                u32::from_le_bytes(b)
            })
            .collect();
        let mut reqs: Vec<Req> = mq
            .held
            .iter()
            .filter(|r| !taken.contains(&u32::from(r.id)))
            .cloned()
            .collect();
        let m = if reqs.is_empty() {
            0
        } else {
            1 + self.src.below(reqs.len() as u64)
        };
        for _ in 0..m {
            let req = reqs.swap_remove(self.src.below(reqs.len() as u64) as usize);
            let w = u64::from(req.w);
            if w > 0 {
                let bytes = bytes_from(self.src.any(), w as usize);
                self.be_write(req.data + u64::from(req.r), &bytes);
            }
            let mut id = u32::from(req.id);
            let mut len = self.src.below(w + 1) as u32;
            if self.hostile() {
                match self.src.below(5) {
                    0 => id += 1,
                    1 => id = self.src.any() as u32,
                    2 => id = self.src.below(u64::from(s.num) + 2) as u32,
                    3 => len = req.w + 1 + self.src.below(4) as u32,
                    _ => len = self.src.any() as u32,
                }
            }
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&id.to_le_bytes());
            e[4..].copy_from_slice(&len.to_le_bytes());
            self.be_write(s.used_entry(idx), &e);
            idx = idx.wrapping_add(1);
        }
        if self.hostile() {
            idx = idx.wrapping_add(self.src.any() as u16 % (s.num + 2));
        }
        self.be_write(s.used_idx(), &idx.to_le_bytes());
        if self.src.chance(85) {
            self.complete();
        }
    }

    /// The backend writes anywhere in the bounce area: shadow descriptors, rings,
    /// data (mostly data, where a backend writes).
    fn be_scribble(&mut self) {
        let bounce = self.model.bounce;
        let hostile = self.hostile();
        let at = if hostile {
            bounce.base + self.src.below(bounce.size)
        } else {
            bounce.base + RINGS_AREA + self.src.below(bounce.size - RINGS_AREA)
        };
        let len = (1 + self.src.below(32)).min(bounce.end() - at);
        let bytes = bytes_from(self.src.any(), len as usize);
        self.be_write(at, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small seeded PRNG (xorshift64*), as in the device library's tests.
    struct Rng64(u64);

    impl Source for Rng64 {
        fn below(&mut self, n: u64) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    #[test]
    fn the_models_chunk_is_the_pools() {
        assert_eq!(u64::from(crate::state::copy::pool::CHUNK), CHUNK);
    }

    fn env(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// 400 scenarios of up to 150 steps from a fixed seed; COPY_FUZZ_SCENARIOS and
    /// COPY_FUZZ_SEED run others, COPY_FUZZ_KNOWN_BUGS=all (or a list of
    /// `ready-again`, `top-addresses`) stops steering around the known bugs
    /// (docs/fuzzing.md).
    #[test]
    fn copy_path_against_the_model() {
        let seed = env("COPY_FUZZ_SEED", 0x5eed_f00d_c0ff_ee11);
        let scenarios = env("COPY_FUZZ_SCENARIOS", 400);
        let mut rng = Rng64(seed | 1);
        let mut total = Stats::default();
        for _ in 0..scenarios {
            let mut s = Scenario::new(&mut rng);
            s.known_bugs_from_env();
            s.run(150);
            let st = s.stats;
            total.scenarios += st.scenarios;
            total.calls += st.calls;
            total.posted += st.posted;
            total.completed += st.completed;
            total.held_back += st.held_back;
            total.interrupts += st.interrupts;
            for (k, v) in st.errors {
                *total.errors.entry(k).or_default() += v;
            }
        }
        eprintln!("copy path fuzz: {total:?}");
        if scenarios < 400 {
            return;
        }
        // What the default run must reach, lest the generator drift into dullness.
        assert!(total.posted > 1000 && total.completed > 1000 && total.held_back > 100);
        for kind in [
            "chain",
            "buffer",
            "avail-jump",
            "ring",
            "too-big",
            "used-jump",
            "not-outstanding",
            "used-too-long",
        ] {
            assert!(total.errors.contains_key(kind), "no {kind} error reached");
        }
        // "memory" (Ferry cannot reach a ring) is no longer reachable from the
        // frontend: ring addresses are checked at QueueReady and not taken while a
        // queue is ready.
    }

    /// Was a bug (found by this fuzzer, fixed): QueueReady=1 on a queue that is ready and holds requests dropped them
    /// without giving their bounce chunks back (`enable` replaces the queue;
    /// `disable` would have freed them). Nothing holds those chunks any more, yet
    /// they stay in use until Status 0: a frontend that sets a queue up again
    /// shrinks its share for good, down to requests that wait forever.
    #[test]
    fn queue_ready_again_leaks_the_bounce_chunks() {
        use crate::state::copy::tests::{FE_AVAIL, Rig};
        let mut r = Rig::new();
        r.ready(0);
        r.post_chain(&[(0x4003_0000, 0x0800, true)]);
        assert_eq!(r.notify(), Ok(1));
        // The driver sets the queue up again from fresh rings.
        r.fe_write(FE_AVAIL, &[0; 4]);
        r.avail = 0;
        assert_eq!(r.write(reg::QUEUE_READY, 1), Register::Forward(1));
        let held: u32 = r.dev.queues[0]
            .slots
            .iter()
            .flatten()
            .map(|s| s.run.count)
            .sum();
        assert_eq!(
            r.dev.pools[0].in_use(),
            held,
            "bounce chunks in use that no request holds"
        );
    }

    /// Was a bug (found by this fuzzer, fixed): the ring address registers were taken while the queue is ready and the
    /// ring offsets are computed with plain `+` (`Rings::avail_event`,
    /// `used_entry`, `avail_entry`, ...): a frontend that moves its used ring to
    /// the top of the address space makes Ferry panic on overflow where overflow
    /// checks are on (host tests, cargo-fuzz, a debug image); a release image
    /// wraps, and the wrapped address is then checked against the frontend's RAM.
    #[test]
    fn ring_addresses_rewritten_while_ready_overflow() {
        use crate::state::copy::tests::Rig;
        let mut r = Rig::new();
        r.ready(feature::RING_EVENT_IDX);
        r.write(reg::QUEUE_DEVICE_LOW, 0xffff_fff8);
        r.write(reg::QUEUE_DEVICE_HIGH, 0xffff_ffff);
        let res = r.notify();
        assert!(
            matches!(res, Ok(0) | Err(CopyError::Memory { queue: 0 })),
            "{res:?}"
        );
    }
}
