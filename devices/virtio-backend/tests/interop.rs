//! Interoperability with an independent driver implementation: the
//! `virtio-drivers` crate's blk, console and rng drivers (and its split-virtqueue
//! code) run against this library's devices on the host. Driver "physical"
//! addresses are host addresses (identity); the device's transport reaches them
//! only inside buffers the driver allocated or shared.
#![allow(missing_docs)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Mutex;

use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::{Console, RX_QUEUE};
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::{
    Device, Interrupt, MemError, Options, Transport, VirtioDevice, WriteEffect,
};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::device::rng::VirtIORng;
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

struct TestHal;

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
struct HostMem {
    interrupts: usize,
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
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    fn notify(&mut self, _: Interrupt) {
        self.interrupts += 1;
    }
}

type Shared<D> = Rc<RefCell<Device<D, HostMem>>>;

/// virtio-drivers' transport, implemented as virtio-mmio v2 register accesses
/// forwarded to the device (what a hypervisor's trap path does). Notifies are
/// served synchronously.
struct Glue<D: VirtioDevice>(Shared<D>);

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

fn shared<D: VirtioDevice>(model: D) -> Shared<D> {
    Rc::new(RefCell::new(Device::new(
        model,
        HostMem::default(),
        Options::new(),
    )))
}

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
