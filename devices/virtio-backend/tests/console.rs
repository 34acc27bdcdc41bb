//! virtio-console transmit and receive through the mock driver.

mod common;

use common::*;
use ferry_virtio_backend::console::{Console, ConsoleSink, F_EMERG_WRITE, RX_QUEUE, TX_QUEUE};
use ferry_virtio_backend::spec::{device_id, reg};
use ferry_virtio_backend::{Error, Interrupt, Options};

/// A sink type of the embedder's own (not a closure).
#[derive(Default)]
struct VecSink(Vec<u8>);

impl ConsoleSink for VecSink {
    fn transmit(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

fn console() -> Driver<Console<VecSink, 16>> {
    Driver::ready(Console::new(VecSink::default()), Options::new(), 2, 8)
}

fn sent(d: &Driver<Console<VecSink, 16>>) -> &[u8] {
    &d.dev.model().sink().0
}

#[test]
fn identity_and_config() {
    let mut d = console();
    assert_eq!(d.read_reg(reg::DEVICE_ID), device_id::CONSOLE);
    assert_ne!(d.device_features() & F_EMERG_WRITE, 0);
    // max_nr_ports = 1.
    assert_eq!(d.dev.mmio_read(0x104, 4), 1);
    d.write_reg(reg::QUEUE_SEL, 2);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 0);
}

#[test]
fn transmit_goes_to_the_sink() {
    let mut d = console();
    let a = d.buf_with(b"hello, ");
    let b = d.buf_with(&[b'x'; 200]);
    let (head, r) = d.submit(TX_QUEUE, &[(a, 7, false), (b, 200, false)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(TX_QUEUE), vec![(u32::from(head), 0)]);
    let mut want = b"hello, ".to_vec();
    want.extend([b'x'; 200]);
    assert_eq!(sent(&d), &want[..]);
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
}

#[test]
fn receive_fills_posted_buffers() {
    let mut d = console();
    let a = d.buf(8);
    let b = d.buf(8);
    let ha = d.add_chain(RX_QUEUE, &[(a, 8, true)]);
    d.push_avail(RX_QUEUE, ha);
    let hb = d.add_chain(RX_QUEUE, &[(b, 8, true)]);
    d.push_avail(RX_QUEUE, hb);
    // Nothing to give yet: the buffers wait.
    assert_eq!(d.kick(RX_QUEUE), Ok(0));
    assert_eq!(d.used_idx(RX_QUEUE), 0);
    assert!(d.notifies().is_empty());
    assert_eq!(d.dev.receive(b"hello world!"), 12);
    assert_eq!(
        d.take_used(RX_QUEUE),
        vec![(u32::from(ha), 8), (u32::from(hb), 4)]
    );
    assert_eq!(d.peek(a, 8), b"hello wo");
    assert_eq!(&d.peek(b, 8)[..4], b"rld!");
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
    assert_eq!(d.dev.model().rx_pending(), 0);
}

#[test]
fn input_waits_for_buffers() {
    let mut d = console();
    assert_eq!(d.dev.receive(b"abc"), 3);
    assert_eq!(d.dev.model().rx_pending(), 3);
    let a = d.buf(2);
    let h = d.add_chain(RX_QUEUE, &[(a, 2, true)]);
    d.push_avail(RX_QUEUE, h);
    assert_eq!(d.kick(RX_QUEUE), Ok(1));
    assert_eq!(d.peek(a, 2), b"ab");
    assert_eq!(d.dev.model().rx_pending(), 1);
}

#[test]
fn fifo_is_bounded() {
    let mut d = console();
    assert_eq!(d.dev.receive(&[1; 10]), 10);
    assert_eq!(d.dev.receive(&[2; 10]), 6);
    assert_eq!(d.dev.receive(&[3; 10]), 0);
    assert_eq!(d.dev.model().rx_pending(), 16);
}

#[test]
fn read_only_receive_buffer_needs_reset() {
    let mut d = console();
    d.dev.receive(b"zz");
    let a = d.buf(4);
    let (_, r) = d.submit(RX_QUEUE, &[(a, 4, false)]);
    assert_eq!(r, Err(Error::BufferTooShort));
    assert!(d.needs_reset());
    assert_eq!(d.peek(a, 4), [0; 4]);
    // The device stays inert until reset (input is only queued).
    d.dev.receive(b"x");
    assert_eq!(d.used_idx(RX_QUEUE), 0);
    assert_eq!(d.dev.process_queue(TX_QUEUE), Err(Error::NotReady));
}

#[test]
fn writable_bytes_in_a_transmit_chain_are_ignored() {
    let mut d = console();
    let a = d.buf_with(b"ok");
    let w = d.buf(4);
    d.poke(w, b"WXYZ");
    let (_, r) = d.submit(TX_QUEUE, &[(a, 2, false), (w, 4, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(sent(&d), b"ok");
    assert_eq!(d.peek(w, 4), b"WXYZ");
}

#[test]
fn emergency_write() {
    let mut d = console();
    d.dev.mmio_write(0x108, 4, u64::from(b'!'));
    d.dev.mmio_write(0x100, 4, u64::from(b'?'));
    assert_eq!(sent(&d), b"!");
}

#[test]
fn closure_sink_and_reset_drops_input() {
    let mut out = Vec::new();
    {
        let sink = |b: &[u8]| out.extend_from_slice(b);
        let mut d = Driver::ready(Console::<_>::new(sink), Options::new(), 2, 8);
        let a = d.buf_with(b"via closure");
        assert_eq!(d.submit(TX_QUEUE, &[(a, 11, false)]).1, Ok(1));
        d.dev.receive(b"lost");
        d.set_status(0);
        assert_eq!(d.dev.model().rx_pending(), 0);
    }
    assert_eq!(out, b"via closure");
}
