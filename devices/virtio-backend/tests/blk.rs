//! virtio-blk round trips and bad requests through the mock driver.

mod common;

use common::*;
use ferry_virtio_backend::blk::{self, Blk};
use ferry_virtio_backend::spec::{desc_flags, feature};
use ferry_virtio_backend::{Error, Interrupt, Options};

const SECTORS: usize = 64;

fn header(ty: u32, sector: u64) -> Vec<u8> {
    let mut h = ty.to_le_bytes().to_vec();
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&sector.to_le_bytes());
    h
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

fn with_disk(f: impl FnOnce(&mut Driver<Blk<'_>>)) -> Vec<u8> {
    let mut disk = vec![0u8; SECTORS * 512];
    {
        let mut d = Driver::ready(Blk::new(&mut disk, b"ferry-disk-0"), Options::new(), 1, 16);
        f(&mut d);
    }
    disk
}

/// Submits header + `out` data (readable) and `in_len` data bytes + status
/// (writable); returns (status, data read, used len).
fn request(d: &mut Driver<Blk<'_>>, hdr: &[u8], out: &[u8], in_len: u32) -> (u8, Vec<u8>, u32) {
    let h = d.buf_with(hdr);
    let mut bufs = vec![(h, hdr.len() as u32, false)];
    if !out.is_empty() {
        let o = d.buf_with(out);
        bufs.push((o, out.len() as u32, false));
    }
    let i = d.buf(in_len.max(1));
    if in_len > 0 {
        bufs.push((i, in_len, true));
    }
    let s = d.buf(1);
    d.poke(s, &[0xff]);
    bufs.push((s, 1, true));
    let (head, r) = d.submit(0, &bufs);
    assert_eq!(r, Ok(1), "request not served");
    let used = d.take_used(0);
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].0, u32::from(head));
    (d.peek(s, 1)[0], d.peek(i, in_len as usize), used[0].1)
}

#[test]
fn write_then_read_round_trip() {
    let data = pattern(3 * 512, 0x5a);
    let disk = with_disk(|d| {
        assert_eq!(
            request(d, &header(blk::T_OUT, 5), &data, 0),
            (blk::S_OK, vec![], 1)
        );
        let (st, back, used) = request(d, &header(blk::T_IN, 5), &[], 3 * 512);
        assert_eq!(st, blk::S_OK);
        assert_eq!(back, data);
        assert_eq!(used, 3 * 512 + 1);
    });
    assert_eq!(&disk[5 * 512..8 * 512], &data[..]);
    assert!(disk[..5 * 512].iter().all(|&b| b == 0));
    assert!(disk[8 * 512..].iter().all(|&b| b == 0));
}

#[test]
fn data_split_across_many_descriptors() {
    let data = pattern(4 * 512, 3);
    let disk = with_disk(|d| {
        let h = d.buf_with(&header(blk::T_OUT, 10));
        let mut bufs = vec![(h, 16, false)];
        // Odd-sized pieces: 100 + 900 + 1 + 1047.
        let mut off = 0;
        for len in [100usize, 900, 1, 1047] {
            let a = d.buf_with(&data[off..off + len]);
            bufs.push((a, len as u32, false));
            off += len;
        }
        let s = d.buf(1);
        bufs.push((s, 1, true));
        assert_eq!(d.submit(0, &bufs).1, Ok(1));
        assert_eq!(d.peek(s, 1)[0], blk::S_OK);
        // Read back into 3 writable pieces, the status in the last one's tail.
        let h = d.buf_with(&header(blk::T_IN, 10));
        let p: Vec<u64> = [1000u32, 48, 1001].iter().map(|&l| d.buf(l)).collect();
        let bufs = [
            (h, 16, false),
            (p[0], 1000, true),
            (p[1], 48, true),
            (p[2], 1001, true),
        ];
        assert_eq!(d.submit(0, &bufs).1, Ok(1));
        let mut back = d.peek(p[0], 1000);
        back.extend(d.peek(p[1], 48));
        back.extend(d.peek(p[2], 1001));
        assert_eq!(back[2048], blk::S_OK);
        assert_eq!(&back[..2048], &data[..]);
    });
    assert_eq!(&disk[10 * 512..14 * 512], &data[..]);
}

#[test]
fn flush_and_get_id() {
    with_disk(|d| {
        assert_eq!(request(d, &header(blk::T_FLUSH, 0), &[], 0).0, blk::S_OK);
        let (st, id, used) = request(d, &header(blk::T_GET_ID, 0), &[], 20);
        assert_eq!(st, blk::S_OK);
        let mut want = b"ferry-disk-0".to_vec();
        want.resize(20, 0);
        assert_eq!(id, want);
        assert_eq!(used, 21);
    });
}

#[test]
fn get_id_is_truncated_to_20_bytes() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::ready(
        Blk::new(&mut disk, b"0123456789abcdefghijKLMN"),
        Options::new(),
        1,
        8,
    );
    let (st, id, _) = request(&mut d, &header(blk::T_GET_ID, 0), &[], 20);
    assert_eq!(st, blk::S_OK);
    assert_eq!(id, b"0123456789abcdefghij");
}

#[test]
fn unsupported_type() {
    with_disk(|d| {
        for ty in [2, 11, 13, 0xdead] {
            assert_eq!(request(d, &header(ty, 0), &[], 0).0, blk::S_UNSUPP);
        }
    });
}

#[test]
fn out_of_range_sectors_fail_with_ioerr() {
    let disk = with_disk(|d| {
        let last = SECTORS as u64 - 1;
        // The last sector is fine, one past it is not.
        assert_eq!(request(d, &header(blk::T_IN, last), &[], 512).0, blk::S_OK);
        assert_eq!(
            request(d, &header(blk::T_IN, last), &[], 1024).0,
            blk::S_IOERR
        );
        assert_eq!(
            request(d, &header(blk::T_IN, SECTORS as u64), &[], 512).0,
            blk::S_IOERR
        );
        assert_eq!(
            request(d, &header(blk::T_IN, u64::MAX), &[], 512).0,
            blk::S_IOERR
        );
        assert_eq!(
            request(d, &header(blk::T_IN, u64::MAX / 512 + 1), &[], 512).0,
            blk::S_IOERR
        );
        let big = vec![1u8; 512 * 2];
        assert_eq!(
            request(d, &header(blk::T_OUT, last), &big, 0).0,
            blk::S_IOERR
        );
        assert_eq!(
            request(d, &header(blk::T_OUT, u64::MAX), &big, 0).0,
            blk::S_IOERR
        );
        // Oversized: more data than the whole disk.
        let huge = vec![1u8; 512 * (SECTORS + 1)];
        assert_eq!(request(d, &header(blk::T_OUT, 0), &huge, 0).0, blk::S_IOERR);
    });
    assert!(
        disk.iter().all(|&b| b == 0),
        "a failed write touched the disk"
    );
}

#[test]
fn partial_sectors_fail_with_ioerr() {
    let disk = with_disk(|d| {
        assert_eq!(request(d, &header(blk::T_IN, 0), &[], 511).0, blk::S_IOERR);
        assert_eq!(
            request(d, &header(blk::T_OUT, 0), &[1; 513], 0).0,
            blk::S_IOERR
        );
    });
    assert!(disk.iter().all(|&b| b == 0));
}

#[test]
fn undersized_header_fails_with_ioerr() {
    with_disk(|d| {
        let h = header(blk::T_IN, 0);
        assert_eq!(request(d, &h[..8], &[], 0).0, blk::S_IOERR);
        assert!(!d.needs_reset());
    });
}

#[test]
fn wrong_directions_fail_with_ioerr() {
    let disk = with_disk(|d| {
        // IN whose data buffer is device-readable: the device may not write it.
        let (st, _, _) = request(d, &header(blk::T_IN, 0), &[0x11; 512], 0);
        assert_eq!(st, blk::S_IOERR);
        // OUT whose data buffer is device-writable.
        let (st, _, _) = request(d, &header(blk::T_OUT, 0), &[], 512);
        assert_eq!(st, blk::S_IOERR);
        // FLUSH with extra writable bytes.
        let (st, _, _) = request(d, &header(blk::T_FLUSH, 0), &[], 16);
        assert_eq!(st, blk::S_IOERR);
        assert!(!d.needs_reset());
    });
    assert!(disk.iter().all(|&b| b == 0));
}

#[test]
fn missing_status_descriptor_needs_reset() {
    with_disk(|d| {
        let h = d.buf_with(&header(blk::T_FLUSH, 0));
        let (_, r) = d.submit(0, &[(h, 16, false)]);
        assert_eq!(r, Err(Error::BufferTooShort));
        assert!(d.needs_reset());
        assert_eq!(d.notifies(), vec![Interrupt::ConfigChange]);
        assert_eq!(d.used_idx(0), 0);
    });
}

#[test]
fn read_only_disk_refuses_writes() {
    let mut disk = vec![0u8; 4096];
    {
        let mut d = Driver::ready(
            Blk::new(&mut disk, b"ro").read_only(true),
            Options::new(),
            1,
            8,
        );
        assert_ne!(d.device_features() & blk::F_RO, 0);
        assert_eq!(
            request(&mut d, &header(blk::T_OUT, 0), &[9; 512], 0).0,
            blk::S_IOERR
        );
        assert_eq!(
            request(&mut d, &header(blk::T_IN, 0), &[], 512).0,
            blk::S_OK
        );
    }
    assert!(disk.iter().all(|&b| b == 0));
}

#[test]
fn indirect_descriptors() {
    let data = pattern(1024, 9);
    let disk = with_disk(|d| {
        let h = d.buf_with(&header(blk::T_OUT, 2));
        let a = d.buf_with(&data[..300]);
        let b = d.buf_with(&data[300..]);
        let s = d.buf(1);
        let table = d.alloc(4 * 16, 16);
        d.write_desc_at(table, 0, h, 16, desc_flags::NEXT, 1);
        d.write_desc_at(table, 1, a, 300, desc_flags::NEXT, 2);
        d.write_desc_at(table, 2, b, 724, desc_flags::NEXT, 3);
        d.write_desc_at(table, 3, s, 1, desc_flags::WRITE, 0);
        d.write_desc(0, 0, table, 64, desc_flags::INDIRECT, 0);
        d.push_avail(0, 0);
        assert_eq!(d.kick(0), Ok(1));
        assert_eq!(d.peek(s, 1)[0], blk::S_OK);
        assert_eq!(d.take_used(0), vec![(0, 1)]);
    });
    assert_eq!(&disk[1024..2048], &data[..]);
}

#[test]
fn indirect_without_negotiation_needs_reset() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::new(Blk::new(&mut disk, b""), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.setup_queue(0, 8);
    d.driver_ok();
    let table = d.alloc(32, 16);
    let h = d.buf_with(&header(blk::T_FLUSH, 0));
    let s = d.buf(1);
    d.write_desc_at(table, 0, h, 16, desc_flags::NEXT, 1);
    d.write_desc_at(table, 1, s, 1, desc_flags::WRITE, 0);
    d.write_desc(0, 0, table, 32, desc_flags::INDIRECT, 0);
    d.push_avail(0, 0);
    assert_eq!(d.kick(0), Err(Error::IndirectNotNegotiated));
    assert!(d.needs_reset());
}

#[test]
fn batch_of_requests_one_interrupt() {
    with_disk(|d| {
        let mut heads = Vec::new();
        let mut stats = Vec::new();
        for i in 0..5u64 {
            let h = d.buf_with(&header(blk::T_OUT, i));
            let a = d.buf_with(&[i as u8 + 1; 512]);
            let s = d.buf(1);
            heads.push(d.add_chain(0, &[(h, 16, false), (a, 512, false), (s, 1, true)]));
            d.push_avail(0, *heads.last().unwrap());
            stats.push(s);
        }
        assert_eq!(d.kick(0), Ok(5));
        let used = d.take_used(0);
        assert_eq!(used.iter().map(|u| u.0 as u16).collect::<Vec<_>>(), heads);
        assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
        for s in stats {
            assert_eq!(d.peek(s, 1)[0], blk::S_OK);
        }
    });
}

#[test]
fn ring_indices_wrap_around_u16() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::ready(Blk::new(&mut disk, b""), Options::new(), 1, 4);
    let h = d.buf_with(&header(blk::T_FLUSH, 0));
    let s = d.buf(1);
    for i in 0..70_000u32 {
        let head = d.add_chain(0, &[(h, 16, false), (s, 1, true)]);
        d.push_avail(0, head);
        assert_eq!(d.kick(0), Ok(1), "request {i}");
        assert_eq!(d.take_used(0), vec![(u32::from(head), 1)]);
    }
    assert_eq!(d.used_idx(0), (70_000u32 % 65536) as u16);
}

#[test]
fn event_idx_suppresses_and_requests_notifications() {
    with_disk(|d| {
        assert_ne!(d.dev.driver_features() & feature::RING_EVENT_IDX, 0);
        let q = d.queues[0].clone();
        let used_event = q.avail + 4 + 2 * u64::from(q.size);
        let avail_event = q.used + 4 + 8 * u64::from(q.size);
        let h = d.buf_with(&header(blk::T_FLUSH, 0));
        let s = d.buf(1);
        // The first publication always notifies.
        d.submit(0, &[(h, 16, false), (s, 1, true)]).1.unwrap();
        assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
        // The device asks to be notified for the next buffer.
        assert_eq!(d.peek_u16(avail_event), 1);
        // used_event = 5: no interrupt for used idx 1 -> 2.
        d.poke_u16(used_event, 5);
        d.submit(0, &[(h, 16, false), (s, 1, true)]).1.unwrap();
        assert!(d.notifies().is_empty());
        assert_eq!(d.peek_u16(avail_event), 2);
        // Three more in one pass (used idx 2 -> 5): entry 5 is not published yet.
        for _ in 0..3 {
            let head = d.add_chain(0, &[(h, 16, false), (s, 1, true)]);
            d.push_avail(0, head);
        }
        d.kick(0).unwrap();
        assert!(d.notifies().is_empty());
        // Publishing entry 5 (used idx 5 -> 6) notifies.
        d.submit(0, &[(h, 16, false), (s, 1, true)]).1.unwrap();
        assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
        assert_eq!(d.used_idx(0), 6);
    });
}

#[test]
fn no_interrupt_flag_without_event_idx() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::new(Blk::new(&mut disk, b""), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.setup_queue(0, 8);
    d.driver_ok();
    let avail = d.queues[0].avail;
    d.poke_u16(avail, 1); // VIRTQ_AVAIL_F_NO_INTERRUPT
    let h = d.buf_with(&header(blk::T_FLUSH, 0));
    let s = d.buf(1);
    d.submit(0, &[(h, 16, false), (s, 1, true)]).1.unwrap();
    assert!(d.notifies().is_empty());
    assert_eq!(d.used_idx(0), 1);
    d.poke_u16(avail, 0);
    d.submit(0, &[(h, 16, false), (s, 1, true)]).1.unwrap();
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
}

#[test]
fn capacity_and_features() {
    let mut disk = vec![0u8; 512 * 10 + 100];
    let mut d = Driver::new(Blk::new(&mut disk, b""), Options::new());
    assert_eq!(d.dev.mmio_read(0x100, 8), 10);
    let f = d.device_features();
    assert_ne!(f & blk::F_FLUSH, 0);
    assert_ne!(f & blk::F_SEG_MAX, 0);
    assert_eq!(f & blk::F_RO, 0);
    // seg_max keeps a whole request within the chain limit.
    assert_eq!(
        d.dev.mmio_read(0x10c, 4),
        ferry_virtio_backend::MAX_CHAIN_LEN as u64 - 2
    );
}
