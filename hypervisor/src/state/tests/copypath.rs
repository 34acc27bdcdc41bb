//! A copy-mode device on the fixture system: register rewriting through the
//! virtio path, QueueNotify moving requests to the backend, NOTIFY_FRONTEND
//! moving them back, and failures that name their cause.

use ferry_abi::hypercall::HypercallStatus;
use ferry_virtio_backend::spec::{desc_flags, reg};

use super::*;
use crate::state::copy::ring::GuestView;
use crate::state::copy::{CopyError, RINGS_AREA};
use crate::state::event::FailReason;
use crate::state::virtio::{self, Outcome};

/// The bounce area in 'be' (backend addresses).
const BOUNCE: Region = Region::new(0x4080_0000, RINGS_AREA + 0x8000);
const DESC: u64 = 0x4001_0000;
const AVAIL: u64 = 0x4001_1000;
const USED: u64 = 0x4001_2000;

fn copy_system() -> (System, Mem) {
    let (s, m) = system(Shape {
        bounce: Some(BOUNCE),
        ..Shape::default()
    });
    switch_on_all(&s);
    (s, m)
}

fn access(s: &System, mem: &Mem, a: MmioAccess) -> (Outcome, Effects) {
    let mut fx = Effects::new();
    (virtio::frontend_access(s, 0, 0, a, mem, 0, &mut fx), fx)
}

/// Completes whatever waits in slot 0 as the backend would (value `v`).
fn answer(s: &System, mem: &Mem, out: Outcome, v: u64) -> u64 {
    let Outcome::Wait(p) = out else {
        panic!("{out:?} was not forwarded")
    };
    let mut fx = Effects::new();
    virtio::complete(
        s,
        &s.partitions[1],
        (p.slot as u64, u64::from(p.seq), v),
        mem,
        0,
        &mut fx,
    )
    .unwrap();
    virtio::poll(s, &p, mem, 0, &mut fx).unwrap()
}

/// The forwarded record of the last synchronous access of vCPU 0.
fn forwarded(mem: &Mem) -> Ioreq {
    mem.slot(0)
}

fn write_reg(s: &System, mem: &Mem, off: u32, v: u64) {
    let (out, _) = access(s, mem, store(u64::from(off), 4, v));
    answer(s, mem, out, 0);
}

fn fe(s: &System, mem: &Mem) -> (Vec<GuestRegion>, Vec<GuestRegion>) {
    let _ = mem;
    (
        s.partitions[0].memory.clone(),
        s.partitions[1].memory.clone(),
    )
}

/// Sets up queue 0 (8 entries) through the virtio path.
fn ready(s: &System, mem: &Mem) {
    for (off, v) in [
        (reg::QUEUE_SEL, 0),
        (reg::QUEUE_NUM, 8),
        (reg::QUEUE_DESC_LOW, DESC),
        (reg::QUEUE_DRIVER_LOW, AVAIL),
        (reg::QUEUE_DEVICE_LOW, USED),
        (reg::QUEUE_READY, 1),
    ] {
        write_reg(s, mem, off, v);
    }
}

#[test]
fn the_backend_is_given_shadow_addresses_and_reads_see_the_frontends() {
    let (s, mem) = copy_system();
    let (out, _) = access(&s, &mem, store(u64::from(reg::QUEUE_DESC_LOW), 4, DESC));
    let rec = forwarded(&mem);
    assert_eq!(
        rec.data,
        BOUNCE.base & 0xffff_ffff,
        "the shadow table, not the frontend's"
    );
    answer(&s, &mem, out, 0);
    let (out, fx) = access(&s, &mem, load(u64::from(reg::QUEUE_DESC_LOW), 4));
    assert_eq!(out, Outcome::Done(DESC), "answered by Ferry");
    assert!(fx.is_empty());
}

#[test]
fn queue_num_max_is_clamped() {
    let (s, mem) = copy_system();
    let (out, _) = access(&s, &mem, load(u64::from(reg::QUEUE_NUM_MAX), 4));
    assert_eq!(answer(&s, &mem, out, 1024), 256);
}

#[test]
fn a_request_goes_to_the_backend_and_comes_back() {
    let (s, mem) = copy_system();
    ready(&s, &mem);
    let (fe_regions, be_regions) = fe(&s, &mem);
    let fev = GuestView::new(&fe_regions, &mem);
    let bev = GuestView::new(&be_regions, &mem);
    // One writable buffer of 16 bytes, head 0.
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&0x4003_0000u64.to_le_bytes());
    d[8..12].copy_from_slice(&16u32.to_le_bytes());
    d[12..14].copy_from_slice(&desc_flags::WRITE.to_le_bytes());
    fev.write(DESC, &d).unwrap();
    fev.set_u16(AVAIL + 4, 0).unwrap();
    fev.set_u16(AVAIL + 2, 1).unwrap();
    // The backend took the doorbells of the set-up accesses.
    s.partitions[1]
        .vgic
        .lock()
        .irq_mut(0, DOORBELL)
        .unwrap()
        .pending = false;
    let (out, fx) = access(&s, &mem, store(virtio::QUEUE_NOTIFY, 4, 0));
    assert_eq!(out, Outcome::Done(0), "posted: the frontend does not wait");
    assert_eq!(mem.word(abi::POSTED_HEAD_OFFSET), 1, "the backend is told");
    assert_eq!(kicks(&fx, 1, false), 1);
    let (_, fx) = access(&s, &mem, store(virtio::QUEUE_NOTIFY, 4, 0));
    assert_eq!(kicks(&fx, 1, false), 0, "its doorbell is still pending");
    // The backend serves the shadow request: 16 bytes into its buffer, used.
    let shadow = s.virtio[0].copy.as_ref().unwrap().lock().shadow(0);
    assert_eq!(bev.u16(shadow.avail_idx()).unwrap(), 1);
    let mut sd = [0u8; 16];
    bev.read(shadow.desc, &mut sd).unwrap();
    let addr = u64::from_le_bytes(sd[..8].try_into().unwrap());
    assert!(BOUNCE.contains(addr));
    bev.write(addr, b"0123456789abcdef").unwrap();
    let mut e = [0u8; 8];
    e[4..].copy_from_slice(&16u32.to_le_bytes());
    bev.write(shadow.used_entry(0), &e).unwrap();
    bev.set_u16(shadow.used_idx(), 1).unwrap();
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Ok(())
    );
    assert_eq!(kicks(&fx, 0, false), 1, "the frontend's interrupt");
    let mut got = [0u8; 16];
    fev.read(0x4003_0000, &mut got).unwrap();
    assert_eq!(&got, b"0123456789abcdef");
    assert_eq!(fev.u16(USED + 2).unwrap(), 1);
}

#[test]
fn a_hostile_descriptor_fails_the_device_with_its_cause() {
    let (s, mem) = copy_system();
    ready(&s, &mem);
    let (fe_regions, _) = fe(&s, &mem);
    let fev = GuestView::new(&fe_regions, &mem);
    let mut d = [0u8; 16];
    // A buffer in Ferry's own memory.
    d[..8].copy_from_slice(&0x7000_0000u64.to_le_bytes());
    d[8..12].copy_from_slice(&16u32.to_le_bytes());
    d[12..14].copy_from_slice(&desc_flags::WRITE.to_le_bytes());
    fev.write(DESC, &d).unwrap();
    fev.set_u16(AVAIL + 2, 1).unwrap();
    let (out, fx) = access(&s, &mem, store(virtio::QUEUE_NOTIFY, 4, 0));
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::Copy(CopyError::Buffer {
                queue: 0,
                addr: 0x7000_0000,
                len: 16
            })
        }
    ));
    assert!(lines(&s, &fx)[0].contains(
        "copy mode: queue 0: buffer [0x70000000, +0x10) is outside the frontend's memory"
    ));
    assert_eq!(
        mem.word(abi::POSTED_HEAD_OFFSET),
        0,
        "nothing reached the backend"
    );
}

#[test]
fn a_garbage_used_entry_fails_the_device_and_is_refused() {
    let (s, mem) = copy_system();
    ready(&s, &mem);
    let (_, be_regions) = fe(&s, &mem);
    let bev = GuestView::new(&be_regions, &mem);
    let shadow = s.virtio[0].copy.as_ref().unwrap().lock().shadow(0);
    bev.set_u16(shadow.used_idx(), 1).unwrap();
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Err(HypercallStatus::InvalidParameters)
    );
    assert!(s.virtio[0].has_failed());
}

#[test]
fn a_notify_with_nothing_used_still_interrupts_the_frontend() {
    let (s, mem) = copy_system();
    ready(&s, &mem);
    let mut fx = Effects::new();
    assert_eq!(
        virtio::notify_frontend(&s, &s.partitions[1], 0, &mem, &mut fx),
        Ok(())
    );
    assert_eq!(kicks(&fx, 0, false), 1, "e.g. a configuration change");
}

#[test]
fn a_bad_frontend_ring_fails_the_device_at_queue_ready() {
    let (s, mem) = copy_system();
    for (off, v) in [(reg::QUEUE_NUM, 8), (reg::QUEUE_DESC_LOW, 0x1000)] {
        write_reg(&s, &mem, off, v);
    }
    let (out, fx) = access(&s, &mem, store(u64::from(reg::QUEUE_READY), 4, 1));
    assert_eq!(out, Outcome::Done(u64::MAX));
    assert!(has(
        &fx,
        &Event::DeviceFailed {
            route: 0,
            why: FailReason::Copy(CopyError::Ring { queue: 0 })
        }
    ));
}
