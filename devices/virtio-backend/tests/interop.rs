//! Interoperability with an independent driver implementation: the
//! `virtio-drivers` crate's blk, console and rng drivers (and its split-virtqueue
//! code) run against this library's devices on the host. Driver "physical"
//! addresses are host addresses (identity); the device's transport reaches them
//! only inside buffers the driver allocated or shared. The glue between the
//! two sides is `driver_glue` (shared with the net tests).
#![allow(missing_docs)]

mod driver_glue;

use std::cell::RefCell;
use std::rc::Rc;

use driver_glue::{Glue, TestHal, shared};
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::{Console, RX_QUEUE};
use ferry_virtio_backend::rng::Rng;
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::device::rng::VirtIORng;

#[test]
fn virtio_drivers_blk_round_trip() {
    let mut disk = vec![0u8; 128 * 512];
    {
        let dev = shared(Blk::new(&mut disk, b"interop-blk"));
        let mut blk = VirtIOBlk::<TestHal, _>::new(Glue(dev.clone())).expect("blk init");
        assert_eq!(blk.capacity(), 128);
        assert!(!blk.readonly());
        let data: Vec<u8> = (0..4 * 512).map(|i| (i * 31 % 251) as u8).collect();
        blk.write_blocks(7, &data).unwrap();
        let mut back = vec![0u8; 4 * 512];
        blk.read_blocks(7, &mut back).unwrap();
        assert_eq!(back, data);
        blk.flush().unwrap();
        let mut id = [0u8; 20];
        let n = blk.device_id(&mut id).unwrap();
        assert_eq!(&id[..n], b"interop-blk");
        // Past the end: the device answers IOERR, the driver reports an error.
        assert!(blk.read_blocks(128, &mut back[..512]).is_err());
        // Many requests through the 16-entry ring (indices wrap it many times).
        for i in 0..200usize {
            let block = [i as u8; 512];
            blk.write_blocks(i % 128, &block).unwrap();
            let mut b = [0u8; 512];
            blk.read_blocks(i % 128, &mut b).unwrap();
            assert_eq!(b, block);
        }
        let d = dev.borrow();
        assert!(!d.needs_reset());
        assert!(d.transport().interrupts > 0);
    }
    assert_eq!(disk[127 * 512], 127);
    assert_eq!(disk[71 * 512], 199);
}

#[test]
fn virtio_drivers_rng() {
    let mut n = 0u8;
    let dev = shared(Rng::new(move |b: &mut [u8]| {
        for x in b.iter_mut() {
            n = n.wrapping_add(1);
            *x = n;
        }
        b.len()
    }));
    let mut rng = VirtIORng::<TestHal, _>::new(Glue(dev.clone())).expect("rng init");
    let mut buf = [0u8; 300];
    assert_eq!(rng.request_entropy(&mut buf).unwrap(), 300);
    assert_eq!(buf[0], 1);
    assert_eq!(buf[299], 44);
    assert!(!dev.borrow().needs_reset());
}

#[test]
fn virtio_drivers_console() {
    let out = Rc::new(RefCell::new(Vec::new()));
    let sink = {
        let out = out.clone();
        move |b: &[u8]| out.borrow_mut().extend_from_slice(b)
    };
    let dev = shared(Console::<_>::new(sink));
    let mut con = VirtIOConsole::<TestHal, _>::new(Glue(dev.clone())).expect("console init");
    con.send_bytes(b"hello from the FE").unwrap();
    con.send(b'!').unwrap();
    assert_eq!(&out.borrow()[..], b"hello from the FE!");
    // Input from the backend side lands in the driver's posted receive buffer.
    assert_eq!(con.recv(true).unwrap(), None);
    assert_eq!(dev.borrow_mut().receive(b"hi"), 2);
    assert_eq!(con.recv(true).unwrap(), Some(b'h'));
    assert_eq!(con.recv(true).unwrap(), Some(b'i'));
    assert_eq!(con.recv(true).unwrap(), None);
    // Input before the driver re-posts a buffer waits in the FIFO.
    assert_eq!(dev.borrow_mut().receive(b"xyz"), 3);
    assert_eq!(con.recv(true).unwrap(), Some(b'x'));
    con.emergency_write(b'E').unwrap();
    assert_eq!(out.borrow().last(), Some(&b'E'));
    assert!(!dev.borrow().needs_reset());
    let _ = RX_QUEUE;
}
