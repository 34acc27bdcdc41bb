//! virtio-net through the mock driver: frames both ways, link status, the
//! configuration space, every malformed-input policy, backpressure, ring wrap;
//! and the independent `virtio-drivers` net driver (see `net_interop`).

mod common;
mod driver_glue;
mod net_interop;

use common::*;
use ferry_virtio_backend::net::{
    Counters, ETH_HLEN, F_MAC, F_MRG_RXBUF, F_STATUS, FrameSink, HDR_F_NEEDS_CSUM, HDR_LEN,
    MAX_FRAME, Net, RX_QUEUE, RxDrop, RxOutcome, SinkFull, TX_QUEUE,
};
use ferry_virtio_backend::spec::desc_flags::{INDIRECT, NEXT, WRITE};
use ferry_virtio_backend::spec::{device_id, feature, reg};
use ferry_virtio_backend::{Error, Interrupt, Options};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// An embedder's sink that can be made full.
#[derive(Default)]
struct Port {
    frames: Vec<Vec<u8>>,
    full: bool,
}

impl FrameSink for Port {
    fn transmit(&mut self, frame: &[u8]) -> Result<(), SinkFull> {
        if self.full {
            return Err(SinkFull);
        }
        self.frames.push(frame.to_vec());
        Ok(())
    }
}

type D = Driver<Net<Port>>;

fn net() -> D {
    Driver::ready(Net::new(MAC, Port::default()), Options::new(), 2, 8)
}

/// A frame of `len` bytes whose content depends on `seed`.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

fn sent(d: &D) -> &[Vec<u8>] {
    &d.dev.model().sink().frames
}

fn counters(d: &D) -> Counters {
    *d.dev.model().counters()
}

/// Submits a transmit request: a zeroed header then `frame`, in two descriptors.
fn send(d: &mut D, frame: &[u8]) -> (u16, Result<usize, Error>) {
    send_with_header(d, [0; HDR_LEN], frame)
}

fn send_with_header(d: &mut D, hdr: [u8; HDR_LEN], frame: &[u8]) -> (u16, Result<usize, Error>) {
    let h = d.buf_with(&hdr);
    let f = d.buf_with(frame);
    let mut bufs = vec![(h, HDR_LEN as u32, false)];
    if !frame.is_empty() {
        bufs.push((f, frame.len() as u32, false));
    }
    d.submit(TX_QUEUE, &bufs)
}

/// Posts a receive buffer of `len` bytes (without kicking); returns (head, address).
fn post_rx(d: &mut D, len: u32) -> (u16, u64) {
    let a = d.buf(len);
    let h = d.add_chain(RX_QUEUE, &[(a, len, true)]);
    d.push_avail(RX_QUEUE, h);
    (h, a)
}

/// The header a received frame carries: zeroed, num_buffers = 1.
fn rx_header() -> Vec<u8> {
    let mut h = vec![0; HDR_LEN];
    h[10] = 1;
    h
}

/// Expects a device error from a kick of `q`, then checks that the device is inert.
fn expect_device_error(d: &mut D, q: u16, want: Error) {
    let before = sent(d).len();
    assert_eq!(d.kick(q), Err(want));
    assert!(d.needs_reset());
    assert_eq!(d.dev.last_error(), Some(want));
    assert!(d.notifies().contains(&Interrupt::ConfigChange));
    assert_eq!(
        d.dev.receive(&frame(60, 0)),
        RxOutcome::Dropped(RxDrop::NotLive)
    );
    // Inert until a reset: a kick serves nothing.
    assert_eq!(d.kick(TX_QUEUE), Err(Error::NotReady));
    assert_eq!(sent(d).len(), before);
}

/// Reset, renegotiate, set the queues up again and check frames flow both ways.
fn recover(d: &mut D) {
    let f = d.device_features();
    assert!(d.negotiate(f));
    d.setup_queue(RX_QUEUE, 8);
    d.setup_queue(TX_QUEUE, 8);
    d.driver_ok();
    let before = sent(d).len();
    assert_eq!(send(d, &frame(64, 9)).1, Ok(1));
    assert_eq!(sent(d).len(), before + 1);
    let (h, a) = post_rx(d, 1530);
    assert_eq!(d.dev.receive(&frame(64, 8)), RxOutcome::Delivered);
    assert_eq!(d.take_used(RX_QUEUE), vec![(u32::from(h), 76)]);
    assert_eq!(d.peek(a + 12, 64), frame(64, 8));
}

#[test]
fn identity_features_and_configuration() {
    let mut d = net();
    assert_eq!(d.read_reg(reg::DEVICE_ID), device_id::NET);
    let f = d.device_features();
    assert_eq!(
        f & (F_MAC | F_STATUS | feature::VERSION_1),
        F_MAC | F_STATUS | feature::VERSION_1
    );
    // No mergeable buffers, no offloads (bits 0..=14 but MAC), no control queue.
    assert_eq!(f & F_MRG_RXBUF, 0);
    assert_eq!(
        f & 0xffff_ffff & !(F_MAC | F_STATUS),
        feature::RING_EVENT_IDX | feature::RING_INDIRECT_DESC
    );
    // mac[6] byte by byte and as wider reads, then status = LINK_UP.
    let mac: Vec<u8> = (0..6)
        .map(|i| d.dev.mmio_read(0x100 + i, 1) as u8)
        .collect();
    assert_eq!(mac, MAC);
    assert_eq!(d.dev.mmio_read(0x100, 4), 0x1200_5452);
    assert_eq!(d.dev.mmio_read(0x104, 2), 0x5634);
    assert_eq!(d.dev.mmio_read(0x106, 2), 1);
    // max_virtqueue_pairs / mtu not offered.
    assert_eq!(d.dev.mmio_read(0x108, 4), 0);
    // Writes to the configuration are ignored.
    d.dev.mmio_write(0x100, 4, 0);
    assert_eq!(d.dev.mmio_read(0x100, 1), 0x52);
    assert_eq!(d.dev.model().mac(), MAC);
    // Two queues, no control queue.
    d.write_reg(reg::QUEUE_SEL, 2);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 0);
}

#[test]
fn transmit_in_any_descriptor_layout() {
    let mut d = net();
    // Header and frame in separate descriptors.
    let (h1, r) = send(&mut d, &frame(60, 1));
    assert_eq!(r, Ok(1));
    // Header and frame in one descriptor (Linux with VERSION_1 pushes the header).
    let mut one = vec![0u8; HDR_LEN];
    one.extend(frame(1514, 2));
    let a = d.buf_with(&one);
    let (h2, r) = d.submit(TX_QUEUE, &[(a, one.len() as u32, false)]);
    assert_eq!(r, Ok(1));
    // Header split, frame in three pieces.
    let f = frame(300, 3);
    let b = d.buf_with(&one[..HDR_LEN]);
    let c = d.buf_with(&f);
    let bufs = [
        (b, 5, false),
        (b + 5, 7, false),
        (c, 100, false),
        (c + 100, 150, false),
        (c + 250, 50, false),
    ];
    let (h3, r) = d.submit(TX_QUEUE, &bufs);
    assert_eq!(r, Ok(1));
    assert_eq!(sent(&d), [frame(60, 1), frame(1514, 2), f]);
    let want: Vec<_> = [h1, h2, h3].iter().map(|&h| (u32::from(h), 0)).collect();
    assert_eq!(d.take_used(TX_QUEUE), want);
    let c = counters(&d);
    assert_eq!(
        (c.tx_frames, c.tx_bytes, c.tx_dropped()),
        (3, 60 + 1514 + 300, 0)
    );
    assert!(d.notifies().iter().all(|&n| n == Interrupt::UsedBuffer));
}

#[test]
fn transmit_through_an_indirect_table() {
    let mut d = net();
    let hdr = d.buf_with(&[0; HDR_LEN]);
    let f = d.buf_with(&frame(100, 4));
    let table = d.alloc(32, 16);
    d.write_desc_at(table, 0, hdr, HDR_LEN as u32, NEXT, 1);
    d.write_desc_at(table, 1, f, 100, 0, 0);
    d.write_desc(TX_QUEUE, 0, table, 32, INDIRECT, 0);
    d.push_avail(TX_QUEUE, 0);
    assert_eq!(d.kick(TX_QUEUE), Ok(1));
    assert_eq!(sent(&d), [frame(100, 4)]);
}

#[test]
fn receive_fills_posted_buffers() {
    let mut d = net();
    let (h1, a1) = post_rx(&mut d, 1530);
    // A chain of several writable descriptors: header alone, frame split.
    let b = d.buf(1530);
    let h2 = d.add_chain(
        RX_QUEUE,
        &[(b, 12, true), (b + 12, 18, true), (b + 30, 1500, true)],
    );
    d.push_avail(RX_QUEUE, h2);
    // The driver's kick finds no frame: the buffers wait.
    assert_eq!(d.kick(RX_QUEUE), Ok(0));
    assert!(d.notifies().is_empty());
    assert_eq!(d.dev.receive(&frame(1518, 5)), RxOutcome::Delivered);
    assert_eq!(d.dev.receive(&frame(ETH_HLEN, 6)), RxOutcome::Delivered);
    assert_eq!(
        d.take_used(RX_QUEUE),
        vec![(u32::from(h1), 1530), (u32::from(h2), 26)]
    );
    assert_eq!(d.peek(a1, HDR_LEN), rx_header());
    assert_eq!(d.peek(a1 + 12, 1518), frame(1518, 5));
    assert_eq!(d.peek(b, HDR_LEN), rx_header());
    assert_eq!(d.peek(b + 12, 14), frame(14, 6));
    // Event-idx: the driver's used_event (0) asked for the first one only.
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
    let c = counters(&d);
    assert_eq!((c.rx_frames, c.rx_bytes, c.rx_dropped()), (2, 1532, 0));
}

#[test]
fn no_buffer_hands_the_frame_back_and_arms_the_notification() {
    let mut d = net();
    assert_eq!(d.dev.receive(&frame(60, 1)), RxOutcome::NoBuffer);
    assert_eq!(d.dev.receive(&frame(60, 2)), RxOutcome::NoBuffer);
    assert_eq!(counters(&d).rx_no_buffer, 2);
    assert_eq!(counters(&d).rx_dropped(), 0);
    // With event-idx the device asked to hear about the next buffer (avail_event).
    let q = d.queues[usize::from(RX_QUEUE)].clone();
    assert_eq!(d.peek_u16(q.used + 4 + 8 * u64::from(q.size)), 0);
    // Nothing was kept: a buffer posted now stays empty until the next frame.
    let (h, a) = post_rx(&mut d, 1530);
    assert_eq!(d.kick(RX_QUEUE), Ok(0));
    assert_eq!(d.used_idx(RX_QUEUE), 0);
    assert_eq!(d.dev.receive(&frame(60, 3)), RxOutcome::Delivered);
    assert_eq!(d.take_used(RX_QUEUE), vec![(u32::from(h), 72)]);
    assert_eq!(d.peek(a + 12, 60), frame(60, 3));
}

#[test]
fn link_down_and_up() {
    let mut d = net();
    let generation = d.read_reg(reg::CONFIG_GENERATION);
    d.dev.set_link(false);
    assert!(!d.dev.model().link_up());
    assert_eq!(d.dev.mmio_read(0x106, 2), 0);
    assert_eq!(d.notifies(), vec![Interrupt::ConfigChange]);
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS) & 2, 2);
    assert_ne!(d.read_reg(reg::CONFIG_GENERATION), generation);
    // No change, no interrupt.
    d.dev.set_link(false);
    assert!(d.notifies().is_empty());
    // Frames are dropped both ways; the transmit request is still completed.
    let (h, r) = send(&mut d, &frame(60, 1));
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(TX_QUEUE), vec![(u32::from(h), 0)]);
    post_rx(&mut d, 1530);
    assert_eq!(
        d.dev.receive(&frame(60, 2)),
        RxOutcome::Dropped(RxDrop::LinkDown)
    );
    assert!(sent(&d).is_empty());
    let c = counters(&d);
    assert_eq!((c.tx_link_down, c.rx_link_down), (1, 1));
    d.notifies();
    d.dev.set_link(true);
    assert_eq!(d.dev.mmio_read(0x106, 2), 1);
    assert_eq!(d.notifies(), vec![Interrupt::ConfigChange]);
    assert_eq!(d.dev.receive(&frame(60, 3)), RxOutcome::Delivered);
    assert_eq!(send(&mut d, &frame(60, 4)).1, Ok(1));
    assert_eq!(sent(&d), [frame(60, 4)]);
}

#[test]
fn transmit_length_limits() {
    let mut d = net();
    assert_eq!(send(&mut d, &frame(MAX_FRAME, 1)).1, Ok(1));
    assert_eq!(send(&mut d, &frame(ETH_HLEN, 2)).1, Ok(1));
    // Too long, too short, header only: dropped, completed with 0.
    assert_eq!(send(&mut d, &frame(MAX_FRAME + 1, 3)).1, Ok(1));
    assert_eq!(send(&mut d, &frame(ETH_HLEN - 1, 4)).1, Ok(1));
    assert_eq!(send(&mut d, &[]).1, Ok(1));
    assert_eq!(sent(&d), [frame(MAX_FRAME, 1), frame(ETH_HLEN, 2)]);
    assert!(d.take_used(TX_QUEUE).iter().all(|&(_, len)| len == 0));
    let c = counters(&d);
    assert_eq!((c.tx_frames, c.tx_too_long, c.tx_too_short), (2, 1, 2));
    assert!(!d.needs_reset());
}

#[test]
fn oversized_frame_is_not_even_read() {
    let mut d = net();
    let h = d.buf_with(&[0; HDR_LEN]);
    // 64 KiB "frame" of which only the first page exists: never touched.
    let (_, r) = d.submit(
        TX_QUEUE,
        &[
            (h, 12, false),
            (BASE + MEM_SIZE as u64 - 4096, 0x1_0000, false),
        ],
    );
    assert_eq!(r, Ok(1));
    assert_eq!(counters(&d).tx_too_long, 1);
    assert!(!d.needs_reset());
}

#[test]
fn truncated_header_is_a_device_error() {
    let mut d = net();
    let h = d.buf_with(&[0; HDR_LEN]);
    assert_eq!(
        d.submit(TX_QUEUE, &[(h, 11, false)]).1,
        Err(Error::BufferTooShort)
    );
    assert!(d.needs_reset());
    assert_eq!(d.dev.last_error(), Some(Error::BufferTooShort));
    assert_eq!(d.used_idx(TX_QUEUE), 0);
    // Only writable buffers: no header either.
    recover(&mut d);
    let w = d.buf(64);
    let head = d.add_chain(TX_QUEUE, &[(w, 64, true)]);
    d.push_avail(TX_QUEUE, head);
    expect_device_error(&mut d, TX_QUEUE, Error::BufferTooShort);
    assert_eq!(d.peek(w, 64), [0; 64]);
    recover(&mut d);
}

#[test]
fn headers_with_unoffered_flags_or_gso_are_dropped() {
    let mut d = net();
    for (flags, gso) in [
        (HDR_F_NEEDS_CSUM, 0),
        (2, 0),
        (4, 0),
        (0, 1),
        (0, 3),
        (0, 4),
        (0, 0x81),
    ] {
        let mut hdr = [0u8; HDR_LEN];
        hdr[0] = flags;
        hdr[1] = gso;
        assert_eq!(send_with_header(&mut d, hdr, &frame(60, gso)).1, Ok(1));
    }
    assert!(sent(&d).is_empty());
    assert_eq!(counters(&d).tx_bad_header, 7);
    // The other fields are ignored without GSO/NEEDS_CSUM (num_buffers too).
    let mut hdr = [0xffu8; HDR_LEN];
    hdr[..2].fill(0);
    assert_eq!(send_with_header(&mut d, hdr, &frame(60, 0)).1, Ok(1));
    assert_eq!(sent(&d).len(), 1);
}

#[test]
fn writable_buffer_in_a_transmit_chain_is_dropped() {
    let mut d = net();
    let h = d.buf_with(&[0; HDR_LEN]);
    let f = d.buf_with(&frame(60, 1));
    let w = d.buf_with(b"WXYZ");
    let (head, r) = d.submit(TX_QUEUE, &[(h, 12, false), (f, 60, false), (w, 4, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(TX_QUEUE), vec![(u32::from(head), 0)]);
    assert!(sent(&d).is_empty());
    assert_eq!(d.peek(w, 4), b"WXYZ");
    assert_eq!(counters(&d).tx_writable, 1);
    assert!(!d.needs_reset());
}

#[test]
fn receive_buffer_too_small_drops_the_frame_and_keeps_the_buffer() {
    let mut d = net();
    let (h, a) = post_rx(&mut d, 100);
    assert_eq!(
        d.dev.receive(&frame(89, 1)),
        RxOutcome::Dropped(RxDrop::BufferTooSmall)
    );
    assert_eq!(d.used_idx(RX_QUEUE), 0);
    assert_eq!(d.peek(a, 100), [0; 100]);
    // A frame that fits exactly uses the same buffer.
    assert_eq!(d.dev.receive(&frame(88, 2)), RxOutcome::Delivered);
    assert_eq!(d.take_used(RX_QUEUE), vec![(u32::from(h), 100)]);
    assert_eq!(d.peek(a + 12, 88), frame(88, 2));
    assert_eq!(counters(&d).rx_buffer_too_small, 1);
    assert!(!d.needs_reset());
}

#[test]
fn receive_buffer_without_room_for_a_header_is_a_device_error() {
    let mut d = net();
    post_rx(&mut d, 11);
    expect_device_error(&mut d, RX_QUEUE, Error::BufferTooShort);
    recover(&mut d);
    // A readable-only receive chain.
    let a = d.buf(1530);
    let h = d.add_chain(RX_QUEUE, &[(a, 1530, false)]);
    d.push_avail(RX_QUEUE, h);
    expect_device_error(&mut d, RX_QUEUE, Error::BufferTooShort);
    recover(&mut d);
}

#[test]
fn readable_prefix_of_a_receive_chain_is_ignored() {
    let mut d = net();
    let r = d.buf_with(b"read-only");
    let w = d.buf(1530);
    let h = d.add_chain(RX_QUEUE, &[(r, 9, false), (w, 1530, true)]);
    d.push_avail(RX_QUEUE, h);
    assert_eq!(d.dev.receive(&frame(60, 1)), RxOutcome::Delivered);
    assert_eq!(d.take_used(RX_QUEUE), vec![(u32::from(h), 72)]);
    assert_eq!(d.peek(r, 9), b"read-only");
    assert_eq!(d.peek(w + 12, 60), frame(60, 1));
}

#[test]
fn embedder_frames_of_bad_length_or_without_a_driver_are_dropped() {
    let mut d = Driver::new(Net::new(MAC, Port::default()), Options::new());
    assert_eq!(
        d.dev.receive(&frame(60, 0)),
        RxOutcome::Dropped(RxDrop::NotLive)
    );
    let mut d = net();
    post_rx(&mut d, 2048);
    assert_eq!(
        d.dev.receive(&frame(13, 0)),
        RxOutcome::Dropped(RxDrop::BadLength)
    );
    assert_eq!(
        d.dev.receive(&frame(1519, 0)),
        RxOutcome::Dropped(RxDrop::BadLength)
    );
    assert_eq!(d.dev.receive(&[]), RxOutcome::Dropped(RxDrop::BadLength));
    assert_eq!(d.used_idx(RX_QUEUE), 0);
    assert_eq!(counters(&d).rx_bad_length, 3);
}

#[test]
fn descriptor_garbage_is_a_device_error() {
    let mut d = net();
    let a = d.buf(64);
    // A loop in the transmit queue.
    d.write_desc(TX_QUEUE, 0, a, 64, NEXT, 1);
    d.write_desc(TX_QUEUE, 1, a, 64, NEXT, 0);
    d.push_avail(TX_QUEUE, 0);
    expect_device_error(&mut d, TX_QUEUE, Error::DescLoop);
    recover(&mut d);
    // A head outside the table.
    d.push_avail(TX_QUEUE, 8);
    expect_device_error(&mut d, TX_QUEUE, Error::DescIndex { index: 8, size: 8 });
    recover(&mut d);
    // A next index outside the receive table, found when a frame arrives.
    d.write_desc(RX_QUEUE, 3, a, 64, WRITE | NEXT, 200);
    d.push_avail(RX_QUEUE, 3);
    assert_eq!(
        d.dev.receive(&frame(60, 0)),
        RxOutcome::Dropped(RxDrop::NotLive)
    );
    assert!(d.needs_reset());
    assert_eq!(
        d.dev.last_error(),
        Some(Error::DescIndex {
            index: 200,
            size: 8
        })
    );
    // Two frames offered to the inert device before, this one now.
    assert_eq!(counters(&d).rx_not_live, 3);
    recover(&mut d);
    // avail.idx far ahead.
    d.set_avail_idx(RX_QUEUE, 100);
    expect_device_error(
        &mut d,
        RX_QUEUE,
        Error::AvailIdxJump {
            queue: 0,
            last: 1,
            idx: 100,
        },
    );
}

#[test]
fn full_sink_applies_backpressure() {
    let mut d = net();
    d.dev.model_mut().sink_mut().full = true;
    let (h1, r) = send(&mut d, &frame(60, 1));
    assert_eq!(r, Ok(0));
    let (h2, _) = send(&mut d, &frame(61, 2));
    assert!(d.dev.model().tx_waiting());
    assert_eq!(d.used_idx(TX_QUEUE), 0);
    d.dev.model_mut().sink_mut().full = false;
    assert_eq!(d.dev.process_queue(TX_QUEUE), Ok(2));
    assert!(!d.dev.model().tx_waiting());
    assert_eq!(sent(&d), [frame(60, 1), frame(61, 2)]);
    assert_eq!(
        d.take_used(TX_QUEUE),
        vec![(u32::from(h1), 0), (u32::from(h2), 0)]
    );
    // A reset forgets the waiting request.
    d.dev.model_mut().sink_mut().full = true;
    assert_eq!(send(&mut d, &frame(60, 3)).1, Ok(0));
    assert!(d.dev.model().tx_waiting());
    d.set_status(0);
    assert!(!d.dev.model().tx_waiting());
}

#[test]
fn counters_survive_a_reset_until_cleared() {
    let mut d = net();
    assert_eq!(send(&mut d, &frame(60, 1)).1, Ok(1));
    assert_eq!(send(&mut d, &frame(10, 1)).1, Ok(1));
    d.dev.set_link(false);
    d.set_status(0);
    assert_eq!((counters(&d).tx_frames, counters(&d).tx_too_short), (1, 1));
    assert!(!d.dev.model().link_up());
    d.dev.model_mut().clear_counters();
    assert_eq!(counters(&d), Counters::default());
}

#[test]
fn many_frames_wrap_the_ring_indices() {
    let mut d = Driver::ready(Net::new(MAC, Port::default()), Options::new(), 2, 4);
    let hdr = d.buf_with(&[0; HDR_LEN]);
    let f = d.buf(1518);
    let rx = d.buf(1530);
    // Past 65535 in both directions, with the used ring checked every time.
    for i in 0..65_600u32 {
        let len = 14 + (i as usize * 13) % 1505;
        let seed = i as u8;
        if i % 4096 == 0 {
            d.poke(f, &frame(len, seed));
        }
        let head = d.add_chain(TX_QUEUE, &[(hdr, 12, false), (f, len as u32, false)]);
        d.push_avail(TX_QUEUE, head);
        assert_eq!(d.kick(TX_QUEUE), Ok(1));
        assert_eq!(d.take_used(TX_QUEUE), vec![(u32::from(head), 0)]);
        let head = d.add_chain(RX_QUEUE, &[(rx, 1530, true)]);
        d.push_avail(RX_QUEUE, head);
        let out = frame(len, seed);
        assert_eq!(d.dev.receive(&out), RxOutcome::Delivered);
        assert_eq!(
            d.take_used(RX_QUEUE),
            vec![(u32::from(head), 12 + len as u32)]
        );
        if i % 4096 == 0 {
            assert_eq!(d.dev.model().sink().frames.last(), Some(&out));
            assert_eq!(d.peek(rx + 12, len), out);
        }
        d.dev.model_mut().sink_mut().frames.clear();
    }
    assert_eq!(d.used_idx(TX_QUEUE), (65_600u32 % 65_536) as u16);
    let c = counters(&d);
    assert_eq!(
        (c.tx_frames, c.rx_frames, c.tx_dropped(), c.rx_dropped()),
        (65_600, 65_600, 0, 0)
    );
    assert!(!d.needs_reset());
}

#[test]
fn a_burst_fills_the_whole_ring_in_one_pass() {
    let mut d = net();
    let hdr = d.buf_with(&[0; HDR_LEN]);
    let mut heads = Vec::new();
    for i in 0..4u8 {
        let f = d.buf_with(&frame(100 + usize::from(i), i));
        let h = d.add_chain(
            TX_QUEUE,
            &[(hdr, 12, false), (f, 100 + u32::from(i), false)],
        );
        d.push_avail(TX_QUEUE, h);
        heads.push((u32::from(h), 0));
    }
    assert_eq!(d.kick(TX_QUEUE), Ok(4));
    assert_eq!(d.take_used(TX_QUEUE), heads);
    assert_eq!(sent(&d).len(), 4);
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
    // Eight receive buffers, eight frames, then the ninth is handed back.
    for _ in 0..8 {
        post_rx(&mut d, 1530);
    }
    for i in 0..8 {
        assert_eq!(d.dev.receive(&frame(60, i)), RxOutcome::Delivered);
    }
    assert_eq!(d.dev.receive(&frame(60, 8)), RxOutcome::NoBuffer);
    assert_eq!(d.take_used(RX_QUEUE).len(), 8);
}

#[test]
fn closure_sink() {
    let mut out = Vec::new();
    {
        let sink = |f: &[u8]| -> Result<(), SinkFull> {
            out.push(f.len());
            Ok(())
        };
        let mut d = Driver::ready(Net::new(MAC, sink), Options::new(), 2, 8);
        let h = d.buf_with(&[0; HDR_LEN]);
        let f = d.buf_with(&frame(99, 0));
        assert_eq!(
            d.submit(TX_QUEUE, &[(h, 12, false), (f, 99, false)]).1,
            Ok(1)
        );
    }
    assert_eq!(out, [99]);
}
