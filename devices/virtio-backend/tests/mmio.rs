//! Register interface and status state machine, driven by the mock driver.

mod common;

use common::*;
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::{self, feature, reg, status};
use ferry_virtio_backend::{Error, Interrupt, Options, WriteEffect};

type Src = fn(&mut [u8]) -> usize;

fn ones(buf: &mut [u8]) -> usize {
    buf.fill(0xa5);
    buf.len()
}

fn rng() -> Rng<Src> {
    Rng::new(ones as Src)
}

const AD: u8 = status::ACKNOWLEDGE | status::DRIVER;

#[test]
fn identity_registers_before_any_setup() {
    let d = Driver::new(rng(), Options::new());
    assert_eq!(d.read_reg(reg::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(d.read_reg(reg::VERSION), 2);
    assert_eq!(d.read_reg(reg::DEVICE_ID), spec::device_id::RNG);
    assert_eq!(d.read_reg(reg::VENDOR_ID), Options::new().vendor_id);
    assert_eq!(d.read_reg(reg::STATUS), 0);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 256);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 0);
    assert_eq!(d.read_reg(reg::CONFIG_GENERATION), 0);
    // No shared memory regions.
    assert_eq!(d.read_reg(reg::SHM_LEN_LOW), u32::MAX);
    assert_eq!(d.read_reg(reg::SHM_LEN_HIGH), u32::MAX);
}

#[test]
fn odd_sized_or_misaligned_register_accesses_read_zero_and_are_ignored() {
    let mut d = Driver::new(rng(), Options::new());
    assert_eq!(d.dev.mmio_read(reg::MAGIC_VALUE, 2), 0);
    assert_eq!(d.dev.mmio_read(reg::MAGIC_VALUE + 1, 4), 0);
    assert_eq!(d.dev.mmio_read(reg::MAGIC_VALUE, 8), 0);
    assert_eq!(d.dev.mmio_read(0x1fc, 4), 0);
    assert_eq!(d.dev.mmio_write(reg::STATUS, 1, 1), WriteEffect::None);
    assert_eq!(d.dev.mmio_write(reg::STATUS + 2, 4, 1), WriteEffect::None);
    assert_eq!(d.status(), 0);
    // Unknown registers and read-only ones ignore writes.
    d.write_reg(0x0f0, 7);
    d.write_reg(reg::MAGIC_VALUE, 0);
    assert_eq!(d.read_reg(reg::MAGIC_VALUE), 0x7472_6976);
}

#[test]
fn queue_num_max_is_zero_for_missing_queues() {
    let mut d = Driver::new(rng(), Options::new());
    d.write_reg(reg::QUEUE_SEL, 1);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 0);
    d.write_reg(reg::QUEUE_SEL, 0xffff_ffff);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 0);
    d.write_reg(reg::QUEUE_READY, 1);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert!(!d.needs_reset());
}

#[test]
fn queue_num_max_honours_options_and_rounds_to_power_of_two() {
    let mut o = Options::new();
    o.queue_size_max = 100;
    let d = Driver::new(rng(), o);
    assert_eq!(d.read_reg(reg::QUEUE_NUM_MAX), 64);
}

#[test]
fn offered_features() {
    let mut d = Driver::new(rng(), Options::new());
    let f = d.device_features();
    assert_ne!(f & feature::VERSION_1, 0);
    assert_ne!(f & feature::RING_EVENT_IDX, 0);
    assert_ne!(f & feature::RING_INDIRECT_DESC, 0);
    assert_eq!(f & feature::RING_RESET, 0);
    d.write_reg(reg::DEVICE_FEATURES_SEL, 2);
    assert_eq!(d.read_reg(reg::DEVICE_FEATURES), 0);
    let mut o = Options::new();
    o.event_idx = false;
    o.indirect_desc = false;
    o.ring_reset = true;
    o.access_platform = true;
    let mut d = Driver::new(rng(), o);
    let f = d.device_features();
    assert_eq!(
        f & (feature::RING_EVENT_IDX | feature::RING_INDIRECT_DESC),
        0
    );
    assert_ne!(f & feature::RING_RESET, 0);
    assert_ne!(f & feature::ACCESS_PLATFORM, 0);
}

#[test]
fn features_ok_refused_without_version_1() {
    let mut d = Driver::new(rng(), Options::new());
    assert!(!d.negotiate(feature::RING_EVENT_IDX));
    assert_eq!(d.status(), AD);
    // DRIVER_OK is refused too while FEATURES_OK is not set.
    d.set_status(AD | status::FEATURES_OK | status::DRIVER_OK);
    assert_eq!(d.status(), AD);
    assert!(!d.dev.is_live());
}

#[test]
fn features_ok_refused_with_unoffered_features() {
    let mut d = Driver::new(rng(), Options::new());
    assert!(!d.negotiate(VERSION_1 | 1 << 50));
    assert!(!d.negotiate(VERSION_1 | feature::RING_RESET));
    assert!(d.negotiate(VERSION_1));
}

#[test]
fn features_ok_needs_acknowledge_and_driver() {
    let mut d = Driver::new(rng(), Options::new());
    d.set_status(status::ACKNOWLEDGE);
    d.write_features(VERSION_1);
    d.set_status(status::ACKNOWLEDGE | status::FEATURES_OK);
    assert_eq!(d.status(), status::ACKNOWLEDGE);
}

#[test]
fn driver_ok_refused_without_features_ok() {
    let mut d = Driver::new(rng(), Options::new());
    d.set_status(AD);
    d.write_features(VERSION_1);
    d.set_status(AD | status::DRIVER_OK);
    assert_eq!(d.status(), AD);
}

#[test]
fn features_are_frozen_after_features_ok() {
    let mut d = Driver::new(rng(), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.write_features(VERSION_1 | feature::RING_EVENT_IDX);
    assert_eq!(d.dev.driver_features(), VERSION_1);
}

#[test]
fn status_bits_are_only_cleared_by_reset() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    let s = d.status();
    d.set_status(status::ACKNOWLEDGE);
    assert_eq!(d.status(), s);
    // The driver cannot set DEVICE_NEEDS_RESET itself.
    d.set_status(s | status::DEVICE_NEEDS_RESET);
    assert_eq!(d.status(), s);
    // FAILED can be added.
    d.set_status(s | status::FAILED);
    assert_eq!(d.status(), s | status::FAILED);
}

#[test]
fn reset_clears_status_queues_and_interrupts() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    let a = d.buf(16);
    let (_, r) = d.submit(0, &[(a, 16, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 1);
    assert_eq!(d.write_reg(reg::STATUS, 0), WriteEffect::Reset);
    assert_eq!(d.status(), 0);
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 0);
    d.write_reg(reg::QUEUE_SEL, 0);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert_eq!(d.read_reg(reg::QUEUE_NUM), 0);
    assert_eq!(d.read_reg(reg::QUEUE_DESC_LOW), 0);
    assert_eq!(d.dev.driver_features(), 0);
    // A notify after reset does nothing.
    assert_eq!(d.write_reg(reg::QUEUE_NOTIFY, 0), WriteEffect::None);
    // A fresh setup starts its rings at index 0 again.
    assert!(d.negotiate(VERSION_1));
    d.setup_queue(0, 4);
    d.driver_ok();
    let b = d.buf(8);
    let (head, r) = d.submit(0, &[(b, 8, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(head), 8)]);
    assert_eq!(d.used_idx(0), 1);
}

#[test]
fn queue_registers_read_back_before_driver_ok() {
    let mut d = Driver::new(rng(), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.write_reg(reg::QUEUE_SEL, 0);
    d.write_reg(reg::QUEUE_NUM, 16);
    d.write_reg(reg::QUEUE_DESC_LOW, 0x4000_1000);
    d.write_reg(reg::QUEUE_DESC_HIGH, 0x12);
    assert_eq!(d.read_reg(reg::QUEUE_NUM), 16);
    assert_eq!(d.read_reg(reg::QUEUE_DESC_LOW), 0x4000_1000);
    assert_eq!(d.read_reg(reg::QUEUE_DESC_HIGH), 0x12);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert_eq!(d.status(), AD | status::FEATURES_OK);
}

#[test]
fn no_buffers_consumed_before_driver_ok() {
    let mut d = Driver::new(rng(), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.setup_queue(0, 8);
    let a = d.buf(16);
    let (_, r) = d.submit(0, &[(a, 16, true)]);
    assert_eq!(r, Err(Error::NotReady));
    assert_eq!(d.dev.process_queue(0), Err(Error::NotReady));
    assert_eq!(d.used_idx(0), 0);
    assert!(d.notifies().is_empty());
    d.driver_ok();
    assert_eq!(d.kick(0), Ok(1));
    assert_eq!(d.peek(a, 16), vec![0xa5; 16]);
    assert_eq!(d.notifies(), vec![Interrupt::UsedBuffer]);
}

#[test]
fn ready_queue_configuration_is_frozen() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    let desc = d.queues[0].desc;
    d.write_reg(reg::QUEUE_NUM, 4);
    d.write_reg(reg::QUEUE_DESC_LOW, 0);
    assert_eq!(d.read_reg(reg::QUEUE_NUM), 8);
    assert_eq!(d.read_reg(reg::QUEUE_DESC_LOW), desc as u32);
    // QueueReady = 0 disables it; notifies are then ignored.
    d.write_reg(reg::QUEUE_READY, 0);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert_eq!(d.write_reg(reg::QUEUE_NOTIFY, 0), WriteEffect::None);
    assert_eq!(d.dev.process_queue(0), Err(Error::QueueNotReady(0)));
    assert!(!d.needs_reset());
}

fn bad_queue(size: u16, desc: u64, avail: u64, used: u64) -> Driver<Rng<Src>> {
    let mut d = Driver::new(rng(), Options::new());
    assert!(d.negotiate(VERSION_1));
    d.setup_queue_at(0, size, desc, avail, used);
    d
}

#[test]
fn bad_queue_setups_need_reset() {
    let ok = (BASE + 0x1000, BASE + 0x2000, BASE + 0x3000);
    for (size, (desc, avail, used)) in [
        (0, ok),
        (3, ok),
        (512, ok),
        (8, (BASE + 0x1008, ok.1, ok.2)),
        (8, (ok.0, BASE + 0x2001, ok.2)),
        (8, (ok.0, ok.1, BASE + 0x3002)),
        // Rings outside (or running off the end of) the window.
        (8, (0x1000, ok.1, ok.2)),
        (8, (ok.0, BASE + MEM_SIZE as u64 - 8, ok.2)),
        (8, (ok.0, ok.1, BASE + MEM_SIZE as u64 - 16)),
        (8, (!15u64, ok.1, ok.2)),
    ] {
        let mut d = bad_queue(size, desc, avail, used);
        assert!(
            d.needs_reset(),
            "size {size} desc {desc:#x} avail {avail:#x} used {used:#x}"
        );
        assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
        assert_eq!(d.read_reg(reg::INTERRUPT_STATUS) & 2, 2);
        assert_eq!(d.notifies(), vec![Interrupt::ConfigChange]);
        assert!(d.dev.last_error().is_some());
        // Recovery: reset and a good setup.
        assert!(d.negotiate(VERSION_1));
        assert!(!d.needs_reset());
        d.setup_queue(0, 8);
        d.driver_ok();
        assert!(d.dev.is_live());
    }
}

#[test]
fn interrupt_ack_clears_bits() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    let a = d.buf(4);
    d.submit(0, &[(a, 4, true)]).1.unwrap();
    d.dev.config_changed();
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 3);
    assert_eq!(d.read_reg(reg::CONFIG_GENERATION), 1);
    d.write_reg(reg::INTERRUPT_ACK, 1);
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 2);
    d.write_reg(reg::INTERRUPT_ACK, 2);
    assert_eq!(d.read_reg(reg::INTERRUPT_STATUS), 0);
    assert_eq!(
        d.notifies(),
        vec![Interrupt::UsedBuffer, Interrupt::ConfigChange]
    );
}

#[test]
fn queue_reset_when_negotiated() {
    let mut o = Options::new();
    o.ring_reset = true;
    let mut d = Driver::new(rng(), o);
    assert!(d.negotiate(VERSION_1 | feature::RING_RESET));
    d.setup_queue(0, 8);
    d.driver_ok();
    let a = d.buf(4);
    d.submit(0, &[(a, 4, true)]).1.unwrap();
    d.write_reg(reg::QUEUE_RESET, 1);
    assert_eq!(d.read_reg(reg::QUEUE_RESET), 0);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 0);
    assert_eq!(d.read_reg(reg::QUEUE_NUM), 0);
    // Set up again on fresh rings while the device stays live.
    d.setup_queue(0, 4);
    let (head, r) = d.submit(0, &[(a, 4, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(head), 4)]);
}

#[test]
fn queue_reset_ignored_without_the_feature() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    d.write_reg(reg::QUEUE_RESET, 1);
    assert_eq!(d.read_reg(reg::QUEUE_READY), 1);
}

#[test]
fn config_space_reads_of_every_width() {
    let mut disk = vec![0u8; 512 * 0x1_0003];
    let d = Driver::new(Blk::new(&mut disk, b"id"), Options::new());
    let cap = 0x1_0003u64;
    assert_eq!(d.dev.mmio_read(reg::CONFIG, 8), cap);
    assert_eq!(d.dev.mmio_read(reg::CONFIG, 4), cap & 0xffff_ffff);
    assert_eq!(d.dev.mmio_read(reg::CONFIG + 4, 4), cap >> 32);
    assert_eq!(d.dev.mmio_read(reg::CONFIG, 2), 3);
    assert_eq!(d.dev.mmio_read(reg::CONFIG + 2, 1), 1);
    // blk_size at 20.
    assert_eq!(d.dev.mmio_read(reg::CONFIG + 20, 4), 512);
    // Past the configuration: zero. Bad widths: zero.
    assert_eq!(d.dev.mmio_read(reg::CONFIG + 0x80, 4), 0);
    assert_eq!(d.dev.mmio_read(reg::CONFIG, 3), 0);
    assert_eq!(d.dev.mmio_read(u32::MAX - 1, 4), 0);
}

#[test]
fn config_writes_to_read_only_fields_are_ignored() {
    let mut disk = vec![0u8; 4096];
    let mut d = Driver::new(Blk::new(&mut disk, b"id"), Options::new());
    d.dev.mmio_write(reg::CONFIG, 8, 0);
    d.dev.mmio_write(reg::CONFIG, 3, 0);
    assert_eq!(d.dev.mmio_read(reg::CONFIG, 8), 8);
}

#[test]
fn notify_of_missing_queue_is_ignored() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    assert_eq!(d.write_reg(reg::QUEUE_NOTIFY, 5), WriteEffect::None);
    assert_eq!(d.write_reg(reg::QUEUE_NOTIFY, 0x1_0000), WriteEffect::None);
    assert_eq!(d.dev.process_queue(5), Err(Error::InvalidQueue(5)));
    assert!(!d.needs_reset());
}

#[test]
fn poll_serves_pending_queues() {
    let mut d = Driver::ready(rng(), Options::new(), 1, 8);
    let a = d.buf(4);
    let h = d.add_chain(0, &[(a, 4, true)]);
    d.push_avail(0, h);
    assert_eq!(
        d.write_reg(reg::QUEUE_NOTIFY, 0),
        WriteEffect::QueueNotify(0)
    );
    assert_eq!(d.dev.pending_queues(), 1);
    assert_eq!(d.dev.poll(), Ok(1));
    assert_eq!(d.dev.pending_queues(), 0);
    assert_eq!(d.dev.poll(), Ok(0));
}

#[test]
fn a_pass_is_bounded_by_the_queue_size() {
    // 8 requests in a 4-entry queue cannot be in flight at once, but a driver can
    // refill while the device serves; a pass still stops after `QueueNum` requests.
    let mut d = Driver::ready(rng(), Options::new(), 1, 4);
    let a = d.buf(4);
    for _ in 0..4 {
        let h = d.add_chain(0, &[(a, 4, true)]);
        d.push_avail(0, h);
    }
    assert_eq!(d.kick(0), Ok(4));
    assert_eq!(d.dev.pending_queues(), 1);
    assert_eq!(d.dev.poll(), Ok(0));
    assert_eq!(d.dev.pending_queues(), 0);
}

/// A transport with no memory at all.
struct NoMem;

impl ferry_virtio_backend::Transport for NoMem {
    fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), ferry_virtio_backend::MemError> {
        Err(ferry_virtio_backend::MemError)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), ferry_virtio_backend::MemError> {
        Err(ferry_virtio_backend::MemError)
    }
    fn notify(&mut self, _: Interrupt) {}
}

/// Static configuration: a whole device can be built in a const context (e.g. a
/// `static` in an RTOS image).
const STATIC_DEV: ferry_virtio_backend::Device<Rng<Src>, NoMem> =
    ferry_virtio_backend::Device::new(Rng::new(ones as Src), NoMem, Options::new());

#[test]
fn devices_can_be_built_in_const_context() {
    let mut d = STATIC_DEV;
    assert_eq!(
        d.mmio_read(reg::DEVICE_ID, 4),
        u64::from(spec::device_id::RNG)
    );
    // A transport that refuses everything: queue setup fails cleanly.
    d.mmio_write(reg::STATUS, 4, 3);
    d.mmio_write(reg::DRIVER_FEATURES_SEL, 4, 1);
    d.mmio_write(reg::DRIVER_FEATURES, 4, 1);
    d.mmio_write(reg::STATUS, 4, 11);
    d.mmio_write(reg::QUEUE_NUM, 4, 8);
    d.mmio_write(reg::QUEUE_READY, 4, 1);
    assert!(d.needs_reset());
    assert!(matches!(d.last_error(), Some(Error::Memory { .. })));
}
