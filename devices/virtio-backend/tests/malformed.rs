//! Malformed rings and descriptor chains, on purpose: each must end in
//! DEVICE_NEEDS_RESET with a configuration-change interrupt, never a panic or a
//! hang, and the device must recover after a reset.

mod common;

use common::*;
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::desc_flags::{INDIRECT, NEXT, WRITE};
use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::{Error, Interrupt, MAX_CHAIN_LEN, Options};

type Src = fn(&mut [u8]) -> usize;

fn fill(buf: &mut [u8]) -> usize {
    buf.fill(0x3c);
    buf.len()
}

fn dev(size: u16) -> Driver<Rng<Src>> {
    Driver::ready(Rng::new(fill as Src), Options::new(), 1, size)
}

/// Kicks queue 0 and checks the failure is a device error, then that the device
/// is inert until a reset and works after one.
fn expect_reset(d: &mut Driver<Rng<Src>>, want: impl Fn(&Error) -> bool) {
    let r = d.kick(0);
    match r {
        Err(ref e) if want(e) => {}
        other => panic!("unexpected result {other:?}"),
    }
    assert!(d.needs_reset());
    assert_eq!(d.dev.last_error(), r.err());
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS) & 2, 2);
    assert_eq!(d.notifies(), vec![Interrupt::ConfigChange]);
    assert_eq!(d.used_idx(0), 0);
    // Inert: further kicks change nothing and raise nothing.
    assert_eq!(d.kick(0), Err(Error::NotReady));
    assert_eq!(d.dev.process_queue(0), Err(Error::NotReady));
    assert!(d.notifies().is_empty());
    // Reset and a fresh setup work again.
    let f = d.device_features();
    assert!(d.negotiate(f));
    assert!(!d.needs_reset());
    d.setup_queue(0, 8);
    d.driver_ok();
    let a = d.buf(8);
    let (h, r) = d.submit(0, &[(a, 8, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(h), 8)]);
    assert_eq!(d.peek(a, 8), [0x3c; 8]);
}

#[test]
fn two_descriptor_loop() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 0, a, 8, WRITE | NEXT, 1);
    d.write_desc(0, 1, a, 8, WRITE | NEXT, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::DescLoop);
}

#[test]
fn self_loop() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 3, a, 8, WRITE | NEXT, 3);
    d.push_avail(0, 3);
    expect_reset(&mut d, |e| *e == Error::DescLoop);
}

#[test]
fn loop_in_a_large_queue_hits_the_chain_limit() {
    let mut d = dev(256);
    let a = d.buf(8);
    for i in 0..256u16 {
        d.write_desc(0, i, a, 8, WRITE | NEXT, (i + 1) % 256);
    }
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::ChainTooLong);
}

#[test]
fn chain_longer_than_the_limit() {
    let mut d = dev(256);
    let a = d.buf(8);
    let bufs = vec![(a, 8, true); MAX_CHAIN_LEN + 1];
    let h = d.add_chain(0, &bufs);
    d.push_avail(0, h);
    expect_reset(&mut d, |e| *e == Error::ChainTooLong);
}

#[test]
fn chain_at_the_limit_is_fine() {
    let mut d = dev(256);
    let a = d.buf(8);
    let bufs = vec![(a, 8, true); MAX_CHAIN_LEN];
    let (h, r) = d.submit(0, &bufs);
    assert_eq!(r, Ok(1));
    assert_eq!(
        d.take_used(0),
        vec![(u32::from(h), 8 * MAX_CHAIN_LEN as u32)]
    );
}

#[test]
fn head_index_out_of_range() {
    let mut d = dev(8);
    d.push_avail(0, 8);
    expect_reset(&mut d, |e| *e == Error::DescIndex { index: 8, size: 8 });
}

#[test]
fn next_index_out_of_range() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 0, a, 8, WRITE | NEXT, 0xffff);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| {
        matches!(e, Error::DescIndex { index: 0xffff, .. })
    });
}

#[test]
fn avail_idx_far_ahead() {
    let mut d = dev(8);
    d.set_avail_idx(0, 9);
    expect_reset(&mut d, |e| {
        *e == Error::AvailIdxJump {
            queue: 0,
            last: 0,
            idx: 9,
        }
    });
}

#[test]
fn avail_idx_behind() {
    // A driver that moves avail.idx backwards looks 65535 entries ahead.
    let mut d = dev(8);
    d.set_avail_idx(0, 0xffff);
    expect_reset(&mut d, |e| matches!(e, Error::AvailIdxJump { .. }));
}

#[test]
fn buffer_outside_the_window() {
    let mut d = dev(8);
    d.write_desc(0, 0, 0x1000, 8, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| matches!(e, Error::Memory { addr: 0x1000, .. }));
}

#[test]
fn buffer_running_off_the_end_of_the_window() {
    let mut d = dev(8);
    let end = BASE + MEM_SIZE as u64;
    d.write_desc(0, 0, end - 8, 16, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| matches!(e, Error::Memory { .. }));
}

#[test]
fn buffer_wrapping_the_address_space() {
    let mut d = dev(8);
    d.write_desc(0, 0, u64::MAX - 3, 8, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::LengthOverflow);
}

#[test]
fn total_length_overflow() {
    let mut d = dev(8);
    d.write_desc(0, 0, BASE, 0x8000_0000, WRITE | NEXT, 1);
    d.write_desc(0, 1, BASE, 0x8000_0000, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::LengthOverflow);
}

#[test]
fn zero_length_descriptor() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 0, a, 8, WRITE | NEXT, 1);
    d.write_desc(0, 1, a, 0, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::ZeroLength);
}

#[test]
fn readable_after_writable() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 0, a, 8, WRITE | NEXT, 1);
    d.write_desc(0, 1, a, 8, 0, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::ReadableAfterWritable);
}

#[test]
fn write_into_read_only_descriptors_only() {
    let mut d = dev(8);
    let a = d.buf(8);
    d.write_desc(0, 0, a, 8, 0, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| *e == Error::BufferTooShort);
    assert_eq!(d.peek(a, 8), [0; 8]);
}

fn indirect_case(
    setup: impl FnOnce(&mut Driver<Rng<Src>>, u64, u64),
    want: impl Fn(&Error) -> bool,
) {
    let mut d = dev(8);
    let a = d.buf(8);
    let table = d.alloc(16 * 8, 16);
    setup(&mut d, table, a);
    d.push_avail(0, 0);
    expect_reset(&mut d, want);
}

#[test]
fn nested_indirect() {
    indirect_case(
        |d, t, _| {
            d.write_desc_at(t, 0, t, 32, INDIRECT, 0);
            d.write_desc(0, 0, t, 32, INDIRECT, 0);
        },
        |e| *e == Error::BadIndirect,
    );
}

#[test]
fn indirect_with_next() {
    indirect_case(
        |d, t, a| {
            d.write_desc_at(t, 0, a, 8, WRITE, 0);
            d.write_desc(0, 0, t, 16, INDIRECT | NEXT, 1);
            d.write_desc(0, 1, a, 8, WRITE, 0);
        },
        |e| *e == Error::BadIndirect,
    );
}

#[test]
fn indirect_table_length_not_a_multiple_of_16() {
    indirect_case(
        |d, t, a| {
            d.write_desc_at(t, 0, a, 8, WRITE, 0);
            d.write_desc(0, 0, t, 17, INDIRECT, 0);
        },
        |e| *e == Error::BadIndirect,
    );
}

#[test]
fn indirect_table_length_zero() {
    indirect_case(
        |d, t, _| d.write_desc(0, 0, t, 0, INDIRECT, 0),
        |e| *e == Error::BadIndirect,
    );
}

#[test]
fn indirect_table_outside_the_window() {
    indirect_case(
        |d, _, _| d.write_desc(0, 0, 0x10, 64, INDIRECT, 0),
        |e| matches!(e, Error::Memory { .. }),
    );
}

#[test]
fn loop_inside_an_indirect_table() {
    indirect_case(
        |d, t, a| {
            d.write_desc_at(t, 0, a, 8, WRITE | NEXT, 1);
            d.write_desc_at(t, 1, a, 8, WRITE | NEXT, 0);
            d.write_desc(0, 0, t, 32, INDIRECT, 0);
        },
        |e| *e == Error::DescLoop,
    );
}

#[test]
fn next_outside_an_indirect_table() {
    indirect_case(
        |d, t, a| {
            d.write_desc_at(t, 0, a, 8, WRITE | NEXT, 2);
            d.write_desc(0, 0, t, 32, INDIRECT, 0);
        },
        |e| *e == Error::DescIndex { index: 2, size: 2 },
    );
}

#[test]
fn huge_indirect_table_is_still_bounded() {
    // A table "length" of 4 GiB whose entries loop: loop detection alone (visits >
    // table size) would take 2^28 reads; the chain limit stops the walk first.
    indirect_case(
        |d, t, a| {
            for i in 0..8u16 {
                d.write_desc_at(t, i, a, 8, WRITE | NEXT, (i + 1) % 8);
            }
            d.write_desc(0, 0, t, 0xffff_fff0, INDIRECT, 0);
        },
        |e| *e == Error::ChainTooLong,
    );
}

#[test]
fn direct_descriptors_before_an_indirect_table() {
    let mut d = dev(8);
    let a = d.buf(4);
    let b = d.buf(4);
    let t = d.alloc(16, 16);
    d.write_desc_at(t, 0, b, 4, WRITE, 0);
    d.write_desc(0, 0, a, 4, WRITE | NEXT, 1);
    d.write_desc(0, 1, t, 16, INDIRECT, 0);
    d.push_avail(0, 0);
    assert_eq!(d.kick(0), Ok(1));
    assert_eq!(d.take_used(0), vec![(0, 8)]);
    assert_eq!(d.peek(b, 4), [0x3c; 4]);
}

#[test]
fn good_requests_before_a_bad_one_are_published() {
    let mut d = dev(8);
    let a = d.buf(8);
    let h = d.add_chain(0, &[(a, 8, true)]);
    d.push_avail(0, h);
    d.push_avail(0, 200);
    assert!(matches!(d.kick(0), Err(Error::DescIndex { .. })));
    assert!(d.needs_reset());
    assert_eq!(d.take_used(0), vec![(u32::from(h), 8)]);
}

#[test]
fn transport_refusals_are_not_panics_in_any_register_sequence() {
    // A queue whose rings sit at the very end of the window: set up fine, then the
    // driver claims a buffer that straddles the end.
    let mut d = Driver::new(Rng::new(fill as Src), Options::new());
    let f = d.device_features();
    assert!(d.negotiate(f));
    let end = BASE + MEM_SIZE as u64;
    d.setup_queue_at(0, 2, end - 0x100, end - 0x80, end - 0x40);
    assert!(!d.needs_reset());
    d.driver_ok();
    d.write_desc(0, 0, end - 1, 2, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| matches!(e, Error::Memory { .. }));
}

#[test]
fn write_into_memory_the_transport_keeps_read_only() {
    // The descriptor says writable, the transport says no.
    let mut d = dev(8);
    let a = d.buf(8);
    d.mem().read_only = Some((a, a + 8));
    d.write_desc(0, 0, a, 8, WRITE, 0);
    d.push_avail(0, 0);
    expect_reset(&mut d, |e| matches!(e, Error::Memory { .. }));
}

#[test]
fn read_only_used_ring_is_refused_at_queue_ready() {
    let mut d = Driver::new(Rng::new(fill as Src), Options::new());
    let f = d.device_features();
    assert!(d.negotiate(f));
    let used = BASE + 0x3000;
    d.mem().read_only = Some((used, used + 0x100));
    d.setup_queue_at(0, 8, BASE + 0x1000, BASE + 0x2000, used);
    assert!(d.needs_reset());
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert!(matches!(d.dev.last_error(), Some(Error::Memory { .. })));
}
