//! The copy path on a mock frontend ring and a mock backend: register rewriting,
//! requests moved both ways, back-pressure, and hostile rings on either side.

use ferry_config::GuestRegion;
use ferry_platform::Region;
use ferry_virtio_backend::Error as WalkError;
use ferry_virtio_backend::spec::{desc_flags, feature, reg};

use super::ring::{GuestView, Rings};
use super::*;
use crate::state::ioreq::PageMemory;
use crate::state::tests::Mem;

mod fuzz;
mod hostile;

const FE_RAM: GuestRegion = GuestRegion {
    ipa: 0x4000_0000,
    pa: 0x4000_0000,
    size: 0x10_0000,
};
const BE_RAM: GuestRegion = GuestRegion {
    ipa: 0x4000_0000,
    pa: 0x6000_0000,
    size: 0x10_0000,
};
/// The bounce area (backend addresses): the rings area and 32 KiB of data (8 KiB
/// a queue).
const BOUNCE: Region = Region::new(0x4008_0000, RINGS_AREA + 0x8000);
/// The frontend's queue 0 rings.
const FE_DESC: u64 = 0x4001_0000;
const FE_AVAIL: u64 = 0x4001_1000;
const FE_USED: u64 = 0x4001_2000;
const NUM: u16 = 8;

/// A frontend and a backend with a copy device between them.
pub(super) struct Rig {
    mem: Mem,
    dev: CopyDevice,
    fe_regions: Vec<GuestRegion>,
    be_regions: Vec<GuestRegion>,
    /// Next frontend avail index and free descriptor.
    avail: u16,
    next_desc: u16,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_bounce(BOUNCE)
    }

    fn with_bounce(bounce: Region) -> Rig {
        Rig {
            mem: Mem::default(),
            dev: CopyDevice::new(bounce),
            fe_regions: vec![FE_RAM],
            be_regions: vec![BE_RAM],
            avail: 0,
            next_desc: 0,
        }
    }

    fn write(&mut self, offset: u32, value: u64) -> Register {
        let fe = GuestView::new(&self.fe_regions, &self.mem);
        let be = GuestView::new(&self.be_regions, &self.mem);
        self.dev.on_write(u64::from(offset), value, &fe, &be)
    }

    /// Sets queue 0 up as a driver does, with `features` negotiated.
    fn ready(&mut self, features: u64) -> Register {
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, features & 0xffff_ffff);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, features >> 32);
        self.write(reg::QUEUE_SEL, 0);
        self.write(reg::QUEUE_NUM, u64::from(NUM));
        self.write(reg::QUEUE_DESC_LOW, FE_DESC & 0xffff_ffff);
        self.write(reg::QUEUE_DESC_HIGH, FE_DESC >> 32);
        self.write(reg::QUEUE_DRIVER_LOW, FE_AVAIL & 0xffff_ffff);
        self.write(reg::QUEUE_DRIVER_HIGH, 0);
        self.write(reg::QUEUE_DEVICE_LOW, FE_USED & 0xffff_ffff);
        self.write(reg::QUEUE_DEVICE_HIGH, 0);
        self.write(reg::QUEUE_READY, 1)
    }

    fn fe_write(&self, ipa: u64, data: &[u8]) {
        GuestView::new(&self.fe_regions, &self.mem)
            .write(ipa, data)
            .unwrap();
    }

    fn fe_read(&self, ipa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        GuestView::new(&self.fe_regions, &self.mem)
            .read(ipa, &mut b)
            .unwrap();
        b
    }

    fn be_read(&self, ipa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        GuestView::new(&self.be_regions, &self.mem)
            .read(ipa, &mut b)
            .unwrap();
        b
    }

    fn be_write(&self, ipa: u64, data: &[u8]) {
        GuestView::new(&self.be_regions, &self.mem)
            .write(ipa, data)
            .unwrap();
    }

    fn u16_at(bytes: &[u8]) -> u16 {
        u16::from_le_bytes([bytes[0], bytes[1]])
    }

    /// Writes frontend descriptor `i`.
    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.fe_write(FE_DESC + 16 * u64::from(i), &d);
    }

    /// Posts a chain of (addr, len, writable) buffers; returns its head.
    fn post_chain(&mut self, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let d = head + i as u16;
            let last = i + 1 == bufs.len();
            let flags =
                if w { desc_flags::WRITE } else { 0 } | if last { 0 } else { desc_flags::NEXT };
            self.desc(d % NUM, addr, len, flags, (d + 1) % NUM);
        }
        self.next_desc = (head + bufs.len() as u16) % NUM;
        self.publish(head);
        head
    }

    /// Puts `head` in the avail ring and bumps avail.idx.
    fn publish(&mut self, head: u16) {
        self.fe_write(
            FE_AVAIL + 4 + 2 * u64::from(self.avail % NUM),
            &head.to_le_bytes(),
        );
        self.avail = self.avail.wrapping_add(1);
        self.fe_write(FE_AVAIL + 2, &self.avail.to_le_bytes());
    }

    fn notify(&mut self) -> Result<u16, CopyError> {
        let fe = GuestView::new(&self.fe_regions, &self.mem);
        let be = GuestView::new(&self.be_regions, &self.mem);
        self.dev.post(0, &fe, &be)
    }

    fn complete(&mut self) -> Result<Moved, CopyError> {
        let fe = GuestView::new(&self.fe_regions, &self.mem);
        let be = GuestView::new(&self.be_regions, &self.mem);
        self.dev.complete(&fe, &be)
    }

    fn shadow(&self) -> Rings {
        self.dev.shadow(0)
    }

    /// The backend's view of shadow request `n` (in avail order): its head and
    /// descriptors (addr, len, flags).
    fn shadow_request(&self, n: u16) -> (u16, Vec<(u64, u32, u16)>) {
        let s = self.shadow();
        let head = Self::u16_at(&self.be_read(s.avail_entry(n), 2));
        let mut out = Vec::new();
        let mut i = head;
        loop {
            let d = self.be_read(s.desc + 16 * u64::from(i), 16);
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes(d[12..14].try_into().unwrap());
            let next = u16::from_le_bytes(d[14..].try_into().unwrap());
            out.push((addr, len, flags));
            if flags & desc_flags::NEXT == 0 {
                return (head, out);
            }
            i = next;
        }
    }

    /// The backend marks shadow id `id` used with `len` (entry `n` of its used ring).
    fn be_use(&self, n: u16, id: u32, len: u32) {
        let s = self.shadow();
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&id.to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        self.be_write(s.used_entry(n), &e);
        self.be_write(s.used_idx(), &(n + 1).to_le_bytes());
    }

    fn fe_used(&self) -> (u16, Vec<(u32, u32)>) {
        let idx = Self::u16_at(&self.fe_read(FE_USED + 2, 2));
        let entries = (0..idx)
            .map(|i| {
                let e = self.fe_read(FE_USED + 4 + 8 * u64::from(i % NUM), 8);
                (
                    u32::from_le_bytes(e[..4].try_into().unwrap()),
                    u32::from_le_bytes(e[4..].try_into().unwrap()),
                )
            })
            .collect();
        (idx, entries)
    }
}

#[test]
fn the_backend_gets_shadow_addresses_and_reads_see_the_frontends() {
    let mut r = Rig::new();
    assert_eq!(r.write(reg::QUEUE_SEL, 1), Register::Forward(1));
    let shadow = r.dev.shadow(1);
    assert_eq!(
        r.write(reg::QUEUE_DESC_LOW, 0x1234_5000),
        Register::Forward(shadow.desc & 0xffff_ffff)
    );
    assert_eq!(
        r.write(reg::QUEUE_DESC_HIGH, 0x7),
        Register::Forward(shadow.desc >> 32)
    );
    assert_eq!(
        r.dev.on_read(u64::from(reg::QUEUE_DESC_LOW)),
        Register::Answer(0x1234_5000)
    );
    assert_eq!(
        r.dev.on_read(u64::from(reg::QUEUE_DESC_HIGH)),
        Register::Answer(7)
    );
    assert_eq!(
        r.write(reg::QUEUE_DEVICE_LOW, 0x9000),
        Register::Forward(shadow.used & 0xffff_ffff)
    );
    assert_eq!(
        r.dev.on_read(u64::from(reg::QUEUE_DEVICE_LOW)),
        Register::Answer(0x9000)
    );
    assert_eq!(r.dev.on_read(u64::from(reg::STATUS)), Register::Forward(0));
    assert!(shadow.desc >= BOUNCE.base && shadow.used + shadow.used_len() <= BOUNCE.end());
}

#[test]
fn a_queue_it_does_not_shadow_gets_no_frontend_address() {
    let mut r = Rig::new();
    r.write(reg::QUEUE_SEL, MAX_QUEUES as u64);
    assert_eq!(
        r.write(reg::QUEUE_DESC_LOW, 0x4001_0000),
        Register::Forward(0)
    );
    assert_eq!(r.write(reg::QUEUE_DRIVER_HIGH, 0x1), Register::Forward(0));
    assert_eq!(
        r.dev.on_read(u64::from(reg::QUEUE_DESC_LOW)),
        Register::Forward(0)
    );
}

#[test]
fn queue_num_max_is_clamped_to_what_the_shadow_holds() {
    let r = Rig::new();
    let off = u64::from(reg::QUEUE_NUM_MAX);
    assert_eq!(r.dev.after_read(off, 1024), u64::from(MAX_QUEUE_SIZE));
    assert_eq!(r.dev.after_read(off, 64), 64);
    assert_eq!(r.dev.after_read(u64::from(reg::MAGIC_VALUE), 1024), 1024);
}

#[test]
fn ready_checks_the_frontends_rings() {
    let mut r = Rig::new();
    assert_eq!(r.ready(0), Register::Forward(1));
    for (num, desc) in [
        (1u16, FE_DESC),
        (0, FE_DESC),
        (MAX_QUEUE_SIZE + 1, FE_DESC),
        (NUM, FE_DESC + 8),
        (NUM, 0x1000),
        (NUM, FE_RAM.ipa + FE_RAM.size - 16),
    ] {
        let mut r = Rig::new();
        r.write(reg::QUEUE_NUM, u64::from(num));
        r.write(reg::QUEUE_DESC_LOW, desc & 0xffff_ffff);
        r.write(reg::QUEUE_DRIVER_LOW, FE_AVAIL);
        r.write(reg::QUEUE_DEVICE_LOW, FE_USED);
        assert_eq!(
            r.write(reg::QUEUE_READY, 1),
            Register::Fail(CopyError::Ring { queue: 0 }),
            "num {num} desc {desc:#x}"
        );
    }
}

#[test]
fn a_request_moves_in_with_its_readable_bytes_and_back_with_exactly_len() {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(0x4002_0000, b"header-16-bytes!");
    r.fe_write(0x4003_0000, &[0xee; 64]);
    let head = r.post_chain(&[
        (0x4002_0000, 16, false),
        (0x4003_0000, 32, true),
        (0x4003_0020, 32, true),
    ]);
    assert_eq!(r.notify(), Ok(1));
    let (id, descs) = r.shadow_request(0);
    assert_eq!(descs.len(), 2, "collapsed to one readable and one writable");
    assert_eq!((descs[0].1, descs[0].2), (16, desc_flags::NEXT));
    assert_eq!((descs[1].1, descs[1].2), (64, desc_flags::WRITE));
    assert_eq!(r.be_read(descs[0].0, 16), b"header-16-bytes!");
    assert!(
        descs
            .iter()
            .all(|d| d.0 >= BOUNCE.base + RINGS_AREA && d.0 + u64::from(d.1) <= BOUNCE.end())
    );
    assert_eq!(Rig::u16_at(&r.be_read(r.shadow().avail_idx(), 2)), 1);
    // The backend writes 40 bytes and says so.
    r.be_write(descs[1].0, &[0x5a; 64]);
    r.be_use(0, u32::from(id), 40);
    let moved = r.complete().unwrap();
    assert_eq!((moved.completed, moved.interrupt), (1, true));
    assert_eq!(r.fe_used(), (1, vec![(u32::from(head), 40)]));
    assert_eq!(r.fe_read(0x4003_0000, 40), vec![0x5a; 40]);
    assert_eq!(
        r.fe_read(0x4003_0028, 24),
        vec![0xee; 24],
        "nothing past len is written"
    );
}

#[test]
fn a_writable_only_request_has_one_shadow_descriptor() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    let (_, descs) = r.shadow_request(0);
    assert_eq!(descs.len(), 1);
    assert_eq!((descs[0].1, descs[0].2), (8, desc_flags::WRITE));
}

#[test]
fn a_readable_only_request_completes_with_len_zero() {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(0x4002_0000, b"tx");
    let head = r.post_chain(&[(0x4002_0000, 2, false)]);
    r.notify().unwrap();
    let (id, descs) = r.shadow_request(0);
    assert_eq!(descs, vec![(descs[0].0, 2, 0)]);
    r.be_use(0, u32::from(id), 0);
    r.complete().unwrap();
    assert_eq!(r.fe_used(), (1, vec![(u32::from(head), 0)]));
}

#[test]
fn completions_may_come_out_of_order() {
    let mut r = Rig::new();
    r.ready(0);
    let a = r.post_chain(&[(0x4003_0000, 4, true)]);
    let b = r.post_chain(&[(0x4003_1000, 4, true)]);
    assert_eq!(r.notify(), Ok(2));
    let (ida, da) = r.shadow_request(0);
    let (idb, db) = r.shadow_request(1);
    r.be_write(db[0].0, b"BBBB");
    r.be_use(0, u32::from(idb), 4);
    r.complete().unwrap();
    r.be_write(da[0].0, b"AAAA");
    r.be_use(1, u32::from(ida), 4);
    r.complete().unwrap();
    assert_eq!(r.fe_used(), (2, vec![(u32::from(b), 4), (u32::from(a), 4)]));
    assert_eq!(r.fe_read(0x4003_0000, 4), b"AAAA");
    assert_eq!(r.fe_read(0x4003_1000, 4), b"BBBB");
}

#[test]
fn a_full_bounce_area_holds_requests_back_until_room_is_made() {
    let mut r = Rig::with_bounce(Region::new(BOUNCE.base, RINGS_AREA + 4 * 0x1000));
    r.ready(0);
    let a = r.post_chain(&[(0x4003_0000, 0x0c00, true)]);
    let b = r.post_chain(&[(0x4004_0000, 0x0800, true)]);
    assert_eq!(r.notify(), Ok(1), "only the first fits");
    let (ida, _) = r.shadow_request(0);
    assert_eq!(r.notify(), Ok(0), "still no room");
    r.be_use(0, u32::from(ida), 0x0c00);
    let moved = r.complete().unwrap();
    assert_eq!(
        (moved.completed, moved.posted),
        (1, 1),
        "the waiting one moves when room is made"
    );
    let (idb, _) = r.shadow_request(1);
    r.be_use(1, u32::from(idb), 1);
    r.complete().unwrap();
    assert_eq!(
        r.fe_used(),
        (2, vec![(u32::from(a), 0x0c00), (u32::from(b), 1)])
    );
}

#[test]
fn more_requests_than_shadow_slots_wait_too() {
    let mut r = Rig::new();
    r.ready(0);
    for i in 0..NUM {
        r.desc(
            i,
            0x4003_0000 + 0x100 * u64::from(i),
            4,
            desc_flags::WRITE,
            0,
        );
        r.publish(i);
    }
    assert_eq!(r.notify(), Ok(NUM / 2));
    let (id, _) = r.shadow_request(0);
    r.be_use(0, u32::from(id), 4);
    assert_eq!(r.complete().unwrap().posted, 1);
}

#[test]
fn a_request_larger_than_the_bounce_area_fails_the_device() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 0x9000, true)]);
    assert_eq!(
        r.notify(),
        Err(CopyError::TooBig {
            queue: 0,
            bytes: 0x9000
        })
    );
}

#[test]
fn no_interrupt_flag_and_event_idx_are_honoured() {
    let mut r = Rig::new();
    r.ready(0);
    r.fe_write(FE_AVAIL, &1u16.to_le_bytes());
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    let (id, _) = r.shadow_request(0);
    r.be_use(0, u32::from(id), 1);
    assert!(
        !r.complete().unwrap().interrupt,
        "VRING_AVAIL_F_NO_INTERRUPT"
    );

    let mut r = Rig::new();
    r.ready(feature::RING_EVENT_IDX);
    for i in 0..2u16 {
        r.post_chain(&[(0x4003_0000 + 0x100 * u64::from(i), 8, true)]);
    }
    r.notify().unwrap();
    // used_event = 1: interrupt when the used index passes 1.
    r.fe_write(FE_AVAIL + 4 + 2 * u64::from(NUM), &1u16.to_le_bytes());
    let (id0, _) = r.shadow_request(0);
    r.be_use(0, u32::from(id0), 1);
    assert!(
        !r.complete().unwrap().interrupt,
        "0 -> 1 does not pass used_event 1"
    );
    let (id1, _) = r.shadow_request(1);
    r.be_use(1, u32::from(id1), 1);
    assert!(r.complete().unwrap().interrupt, "1 -> 2 passes it");
    // Ferry asks the frontend to notify at its next avail entry.
    assert_eq!(
        Rig::u16_at(&r.fe_read(FE_USED + 4 + 8 * u64::from(NUM), 2)),
        2
    );
}

#[test]
fn the_backend_is_asked_to_notify_every_completion() {
    let mut r = Rig::new();
    r.ready(feature::RING_EVENT_IDX);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    let (id, _) = r.shadow_request(0);
    r.be_use(0, u32::from(id), 1);
    r.complete().unwrap();
    assert_eq!(Rig::u16_at(&r.be_read(r.shadow().used_event(), 2)), 1);
}

#[test]
fn a_device_reset_forgets_every_request() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    let (id, _) = r.shadow_request(0);
    assert_eq!(r.write(reg::STATUS, 0), Register::Forward(0));
    assert_eq!(r.dev.pools[0].in_use(), 0);
    r.be_use(0, u32::from(id), 1);
    assert_eq!(
        r.complete(),
        Ok(Moved::default()),
        "the queue is gone: nothing is looked at"
    );
    assert_eq!(r.notify(), Ok(0));
}

#[test]
fn queue_ready_zero_frees_the_queues_requests() {
    let mut r = Rig::new();
    r.ready(0);
    r.post_chain(&[(0x4003_0000, 8, true)]);
    r.notify().unwrap();
    r.write(reg::QUEUE_READY, 0);
    assert_eq!(r.dev.pools[0].in_use(), 0);
    assert_eq!(r.ready(0), Register::Forward(1), "set up again");
}

#[test]
fn nothing_posted_before_the_queue_is_ready() {
    let mut r = Rig::new();
    r.post_chain(&[(0x4003_0000, 8, true)]);
    assert_eq!(r.notify(), Ok(0));
}

#[test]
fn a_ring_outside_the_bounce_area_cannot_be_cleared() {
    let mut r = Rig::with_bounce(Region::new(0x5000_0000, RINGS_AREA + 4 * 0x1000));
    assert_eq!(r.ready(0), Register::Fail(CopyError::Memory { queue: 0 }));
}

#[test]
fn frontend_memory_views_refuse_what_is_not_ram() {
    let mem = Mem::default();
    let regions = [FE_RAM];
    let v = GuestView::new(&regions, &mem);
    assert_eq!(v.pa(FE_RAM.ipa, 16), Some(FE_RAM.pa));
    assert_eq!(
        v.pa(FE_RAM.ipa + FE_RAM.size - 1, 1),
        Some(FE_RAM.pa + FE_RAM.size - 1)
    );
    assert_eq!(v.pa(FE_RAM.ipa + FE_RAM.size - 1, 2), None);
    assert_eq!(v.pa(FE_RAM.ipa - 1, 1), None);
    assert_eq!(v.pa(u64::MAX, 2), None);
    assert!(v.write(0x1000, b"x").is_err());
    let _ = mem.read_u32(0);
}

#[test]
fn need_event_matches_the_spec() {
    use super::ring::need_event;
    assert!(need_event(0, 1, 0));
    assert!(!need_event(1, 1, 0));
    assert!(need_event(1, 2, 0));
    assert!(need_event(0xffff, 0, 0xfffe), "across the wrap");
    assert!(!need_event(5, 3, 2));
}

/// A queue whose requests wait long (receive buffers) cannot take another
/// queue's room: the transmit queue still moves.
#[test]
fn one_queue_cannot_starve_another() {
    let mut r = Rig::new();
    r.ready(0);
    // Queue 0 fills its share with buffers nobody completes.
    for i in 0..NUM {
        r.desc(
            i,
            0x4003_0000 + 0x1000 * u64::from(i),
            0x0800,
            desc_flags::WRITE,
            0,
        );
        r.publish(i);
    }
    assert_eq!(r.notify(), Ok(4), "8 KiB share, 2 KiB each");
    // Queue 1 gets its own share.
    let fe = GuestView::new(&r.fe_regions, &r.mem);
    let be = GuestView::new(&r.be_regions, &r.mem);
    r.dev.on_write(u64::from(reg::QUEUE_SEL), 1, &fe, &be);
    r.dev
        .on_write(u64::from(reg::QUEUE_NUM), u64::from(NUM), &fe, &be);
    for (off, v) in [
        (reg::QUEUE_DESC_LOW, 0x4006_0000u64),
        (reg::QUEUE_DRIVER_LOW, 0x4006_1000),
        (reg::QUEUE_DEVICE_LOW, 0x4006_2000),
    ] {
        r.dev.on_write(u64::from(off), v, &fe, &be);
    }
    assert_eq!(
        r.dev.on_write(u64::from(reg::QUEUE_READY), 1, &fe, &be),
        Register::Forward(1)
    );
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&0x4007_0000u64.to_le_bytes());
    d[8..12].copy_from_slice(&0x0800u32.to_le_bytes());
    fe.write(0x4006_0000, &d).unwrap();
    fe.set_u16(0x4006_1002, 1).unwrap();
    assert_eq!(r.dev.post(1, &fe, &be), Ok(1));
    assert!(r.dev.shadow(1).desc > r.dev.shadow(0).desc);
}
