//! Glue between the independent `virtio-drivers` driver side and this
//! library's device side, shared by the interoperability tests
//! (`tests/interop.rs` and `tests/net.rs`'s `net_interop`) and generic over the
//! device model.
//!
//! Driver "physical" addresses are host addresses (identity); the device's
//! transport ([`HostMem`]) reaches them only inside buffers the driver
//! allocated or shared through [`TestHal`]. [`Glue`] implements
//! `virtio_drivers`' transport as virtio-mmio v2 register accesses forwarded to
//! the device (what a hypervisor's trap path does); notifies are served
//! synchronously.
// Each test crate that includes this module uses a part of it.
#![allow(dead_code, missing_docs)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Mutex;

use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::{
    Device, Interrupt, MemError, Options, Transport, VirtioDevice, WriteEffect,
};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

const PAGE: usize = 4096;

/// Host memory ranges the driver gave the device: (start, len).
static REGIONS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn allow(start: u64, len: u64) {
    REGIONS.lock().unwrap().push((start, len));
}

fn disallow(start: u64) {
    let mut r = REGIONS.lock().unwrap();
    if let Some(i) = r.iter().position(|&(s, _)| s == start) {
        r.swap_remove(i);
    }
}

fn allowed(addr: u64, len: usize) -> bool {
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    REGIONS
        .lock()
        .unwrap()
        .iter()
        .any(|&(s, l)| addr >= s && end <= s + l)
}

/// virtio-drivers' HAL: heap DMA memory, identity "physical" addresses; every
/// allocation or share opens a region of [`REGIONS`] to the device.
pub struct TestHal;

// SAFETY: DMA memory is page-aligned zeroed heap memory, identity "physical"
// addresses, freed with the layout it was allocated with.
unsafe impl Hal for TestHal {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = Layout::from_size_align(pages * PAGE, PAGE).unwrap();
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("dma_alloc");
        allow(p.as_ptr() as u64, (pages * PAGE) as u64);
        (p.as_ptr() as u64, p)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        disallow(paddr);
        let layout = Layout::from_size_align(pages * PAGE, PAGE).unwrap();
        // SAFETY: allocated by dma_alloc with this layout.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(_: PhysAddr, _: usize) -> NonNull<u8> {
        unreachable!("no MMIO through the HAL in these tests")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
        let a = buffer.as_ptr() as *mut u8 as u64;
        allow(a, buffer.len() as u64);
        a
    }

    unsafe fn unshare(paddr: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {
        disallow(paddr);
    }
}

/// The device's transport: host memory, only inside allowed regions.
#[derive(Default)]
pub struct HostMem {
    /// Interrupts the device raised (`Transport::notify` calls).
    pub interrupts: usize,
}

impl Transport for HostMem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        if !allowed(addr, buf.len()) {
            return Err(MemError);
        }
        // SAFETY: inside a live region the driver allocated or shared.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        if !allowed(addr, data.len()) {
            return Err(MemError);
        }
        // SAFETY: inside a live region the driver allocated or shared for the
        // device's use.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    fn notify(&mut self, _: Interrupt) {
        self.interrupts += 1;
    }
}

pub type Shared<D> = Rc<RefCell<Device<D, HostMem>>>;

/// virtio-drivers' transport, implemented as virtio-mmio v2 register accesses
/// forwarded to the device (what a hypervisor's trap path does). Notifies are
/// served synchronously.
pub struct Glue<D: VirtioDevice>(pub Shared<D>);

impl<D: VirtioDevice> Glue<D> {
    fn rd(&self, off: u32) -> u32 {
        self.0.borrow().mmio_read(off, 4) as u32
    }
    fn wr(&mut self, off: u32, v: u32) -> WriteEffect {
        self.0.borrow_mut().mmio_write(off, 4, u64::from(v))
    }
}

impl<D: VirtioDevice> virtio_drivers::transport::Transport for Glue<D> {
    fn device_type(&self) -> DeviceType {
        DeviceType::try_from(self.rd(reg::DEVICE_ID)).unwrap()
    }

    fn read_device_features(&mut self) -> u64 {
        self.wr(reg::DEVICE_FEATURES_SEL, 0);
        let lo = self.rd(reg::DEVICE_FEATURES);
        self.wr(reg::DEVICE_FEATURES_SEL, 1);
        u64::from(lo) | u64::from(self.rd(reg::DEVICE_FEATURES)) << 32
    }

    fn write_driver_features(&mut self, f: u64) {
        self.wr(reg::DRIVER_FEATURES_SEL, 0);
        self.wr(reg::DRIVER_FEATURES, f as u32);
        self.wr(reg::DRIVER_FEATURES_SEL, 1);
        self.wr(reg::DRIVER_FEATURES, (f >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.wr(reg::QUEUE_SEL, queue.into());
        self.rd(reg::QUEUE_NUM_MAX)
    }

    fn notify(&mut self, queue: u16) {
        if let WriteEffect::QueueNotify(q) = self.wr(reg::QUEUE_NOTIFY, queue.into()) {
            // A failure would leave the driver spinning: fail the test instead.
            self.0.borrow_mut().process_queue(q).expect("device error");
        }
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.rd(reg::STATUS))
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.wr(reg::STATUS, status.bits());
    }

    fn set_guest_page_size(&mut self, _: u32) {}

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        desc: PhysAddr,
        driver: PhysAddr,
        device: PhysAddr,
    ) {
        self.wr(reg::QUEUE_SEL, queue.into());
        self.wr(reg::QUEUE_NUM, size);
        for (lo, addr) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, driver),
            (reg::QUEUE_DEVICE_LOW, device),
        ] {
            self.wr(lo, addr as u32);
            self.wr(lo + 4, (addr >> 32) as u32);
        }
        self.wr(reg::QUEUE_READY, 1);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.wr(reg::QUEUE_SEL, queue.into());
        self.wr(reg::QUEUE_READY, 0);
        assert_eq!(self.rd(reg::QUEUE_READY), 0);
        for r in [
            reg::QUEUE_NUM,
            reg::QUEUE_DESC_LOW,
            reg::QUEUE_DESC_HIGH,
            reg::QUEUE_DRIVER_LOW,
            reg::QUEUE_DRIVER_HIGH,
            reg::QUEUE_DEVICE_LOW,
            reg::QUEUE_DEVICE_HIGH,
        ] {
            self.wr(r, 0);
        }
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.wr(reg::QUEUE_SEL, queue.into());
        self.rd(reg::QUEUE_READY) != 0
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let s = self.rd(reg::INTERRUPT_STATUS);
        if s != 0 {
            self.wr(reg::INTERRUPT_ACK, s);
        }
        InterruptStatus::from_bits_truncate(s)
    }

    fn read_config_generation(&self) -> u32 {
        self.rd(reg::CONFIG_GENERATION)
    }

    fn read_config_space<T: FromBytes + IntoBytes>(
        &self,
        offset: usize,
    ) -> virtio_drivers::Result<T> {
        let n = size_of::<T>();
        let mut bytes = vec![0u8; n];
        let dev = self.0.borrow();
        if matches!(n, 1 | 2 | 4 | 8) {
            let v = dev.mmio_read(reg::CONFIG + offset as u32, n as u8);
            bytes.copy_from_slice(&v.to_le_bytes()[..n]);
        } else {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = dev.mmio_read(reg::CONFIG + (offset + i) as u32, 1) as u8;
            }
        }
        Ok(T::read_from_bytes(&bytes).unwrap())
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> virtio_drivers::Result<()> {
        let bytes = value.as_bytes();
        let mut dev = self.0.borrow_mut();
        if matches!(bytes.len(), 1 | 2 | 4 | 8) {
            let mut v = [0u8; 8];
            v[..bytes.len()].copy_from_slice(bytes);
            dev.mmio_write(
                reg::CONFIG + offset as u32,
                bytes.len() as u8,
                u64::from_le_bytes(v),
            );
        } else {
            for (i, &b) in bytes.iter().enumerate() {
                dev.mmio_write(reg::CONFIG + (offset + i) as u32, 1, u64::from(b));
            }
        }
        Ok(())
    }
}

/// A device over `model` with default options, shareable between a test and
/// its driver's [`Glue`].
pub fn shared<D: VirtioDevice>(model: D) -> Shared<D> {
    Rc::new(RefCell::new(Device::new(
        model,
        HostMem::default(),
        Options::new(),
    )))
}
