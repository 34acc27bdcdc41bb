//! virtio-net against an independent driver: the `virtio-drivers` crate's
//! `VirtIONet` / `VirtIONetRaw` on the host, through the virtio-mmio register
//! glue in `driver_glue` (shared with `tests/interop.rs`). Driver "physical"
//! addresses are host addresses; the device's transport reaches only buffers
//! the driver allocated or shared.
#![allow(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use crate::driver_glue::{Glue, Shared, TestHal, shared};
use ferry_virtio_backend::net::{MAX_FRAME, Net, RxDrop, RxOutcome, SinkFull};
use ferry_virtio_backend::spec::reg;
use virtio_drivers::device::net::{TxBuffer, VirtIONet, VirtIONetRaw};
use virtio_drivers::transport::InterruptStatus;

const MAC: [u8; 6] = [0x02, 0xf0, 0x0d, 0x00, 0x00, 0x01];

type Frames = Rc<RefCell<Vec<Vec<u8>>>>;
type Sink = Box<dyn FnMut(&[u8]) -> Result<(), SinkFull>>;

/// A device whose transmitted frames land in the returned list.
fn device() -> (Shared<Net<Sink>>, Frames) {
    let frames = Frames::default();
    let out = frames.clone();
    let sink: Sink = Box::new(move |f: &[u8]| {
        out.borrow_mut().push(f.to_vec());
        Ok(())
    });
    (shared(Net::new(MAC, sink)), frames)
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(3) ^ seed).collect()
}

#[test]
fn virtio_drivers_net_round_trips() {
    let (dev, sent) = device();
    let mut net = VirtIONet::<TestHal, _, 16>::new(Glue(dev.clone()), 2048).expect("net init");
    assert_eq!(net.mac_address(), MAC);
    // Many frames both ways through 16-entry rings (the indices wrap them).
    for i in 0..300usize {
        let out = frame(14 + i * 5 % 1505, i as u8);
        net.send(TxBuffer::from(&out)).unwrap();
        assert_eq!(sent.borrow().last(), Some(&out));
        let back = frame(60 + i % 1458, !(i as u8));
        assert_eq!(dev.borrow_mut().receive(&back), RxOutcome::Delivered);
        let rx = net.receive().expect("frame");
        assert_eq!(rx.packet(), &back[..]);
        net.recycle_rx_buffer(rx).unwrap();
    }
    // Sixteen posted buffers: the seventeenth frame is handed back.
    for i in 0..16 {
        assert_eq!(
            dev.borrow_mut().receive(&frame(64, i)),
            RxOutcome::Delivered
        );
    }
    assert_eq!(
        dev.borrow_mut().receive(&frame(64, 16)),
        RxOutcome::NoBuffer
    );
    // The driver re-posts one buffer (it notifies: the device asked), then the
    // kept frame goes through.
    let rx = net.receive().unwrap();
    assert_eq!(rx.packet(), &frame(64, 0)[..]);
    net.recycle_rx_buffer(rx).unwrap();
    assert_eq!(
        dev.borrow_mut().receive(&frame(64, 16)),
        RxOutcome::Delivered
    );
    // An empty frame (header only) is dropped, and still completed.
    net.send(TxBuffer::from(&[])).unwrap();
    let d = dev.borrow();
    let c = d.model().counters();
    assert_eq!((c.tx_frames, c.tx_too_short, c.rx_frames), (300, 1, 317));
    assert!(!d.needs_reset());
}

#[test]
fn virtio_drivers_raw_link_status_and_small_buffers() {
    let (dev, _) = device();
    let mut net = VirtIONetRaw::<TestHal, _, 8>::new(Glue(dev.clone())).expect("net init");
    assert!(net.ack_interrupt().is_empty());
    dev.borrow_mut().set_link(false);
    assert_eq!(dev.borrow().mmio_read(reg::CONFIG + 6, 2), 0);
    assert!(
        net.ack_interrupt()
            .contains(InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT)
    );
    assert_eq!(
        dev.borrow_mut().receive(&frame(60, 0)),
        RxOutcome::Dropped(RxDrop::LinkDown)
    );
    dev.borrow_mut().set_link(true);
    assert!(
        net.ack_interrupt()
            .contains(InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT)
    );
    // virtio-drivers' smallest receive buffer (1526) holds 1514, not 1518 bytes.
    let mut buf = vec![0u8; 1526];
    // SAFETY: `buf` is not touched until the request completed.
    let token = unsafe { net.receive_begin(&mut buf) }.unwrap();
    let big = frame(MAX_FRAME, 1);
    assert_eq!(
        dev.borrow_mut().receive(&big),
        RxOutcome::Dropped(RxDrop::BufferTooSmall)
    );
    assert_eq!(net.poll_receive(), None);
    let fits = frame(1514, 2);
    assert_eq!(dev.borrow_mut().receive(&fits), RxOutcome::Delivered);
    assert_eq!(net.poll_receive(), Some(token));
    // SAFETY: the same buffer as given to receive_begin.
    let (hdr, len) = unsafe { net.receive_complete(token, &mut buf) }.unwrap();
    assert_eq!((hdr, len), (12, 1514));
    assert_eq!(&buf[12..], &fits[..]);
    assert_eq!(dev.borrow().model().counters().rx_buffer_too_small, 1);
}
