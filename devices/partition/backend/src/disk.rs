//! The physical disk: a virtio-blk device passed through to the backend (QEMU's
//! `virtio-blk-device` on virt), driven with the `virtio-drivers` crate's
//! virtio-mmio transport and split virtqueue, as the [`Storage`] under
//! `ferry_virtio_backend::storage::StorageBlk`.
//!
//! - Interrupt-driven: requests are added to the physical queue and the device
//!   raises its SPI when it used some; [`PhysicalDisk::poll`] pops them in the order
//!   the device finished them.
//! - DMA: there is no SMMU, so the device uses host physical addresses. Ferry's
//!   `dma-ranges` ([`crate::dma`]) translate the backend's buffers (its `.bss`); the
//!   virtqueue lives in a static pool of this partition ([`crate::hal`]).
//! - `virtio-drivers`' own `VirtIOBlk` waits for each flush and keeps at most 16
//!   requests (5 without `alloc`'s indirect descriptors) in flight; this driver
//!   builds the three-part block requests itself on the crate's queue instead, so
//!   flushes are asynchronous and [`QUEUE_SIZE`] / 3 requests can be in flight.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use ferry_virtio_backend::blk::{BlkOp, S_IOERR, T_FLUSH, T_IN, T_OUT};
use ferry_virtio_backend::storage::{Buffer, Busy, Storage};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceType, Transport};

use crate::hal::FerryHal;
pub use crate::hal::set_dma_ranges;

/// Descriptors of the physical queue (3 per request).
pub const QUEUE_SIZE: usize = 64;
/// Buffers (requests in flight) of the backend's physical disks together.
pub const BUFFERS: usize = 16;
/// Tags [`PhysicalDisk`] keeps state for.
const TAGS: usize = QUEUE_SIZE / 3;

bitflags::bitflags! {
    /// The physical device's features this driver accepts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        /// VIRTIO_BLK_F_RO.
        const RO = 1 << 5;
        /// VIRTIO_BLK_F_FLUSH.
        const FLUSH = 1 << 9;
        /// VIRTIO_F_RING_EVENT_IDX.
        const EVENT_IDX = 1 << 29;
        /// VIRTIO_F_VERSION_1.
        const VERSION_1 = 1 << 32;
    }
}

/// The request buffers ([`BUFFERS`] of 64 KiB), page-aligned: a byte array alone
/// is placed at any address, and copies between misaligned buffers take the
/// byte-wise path (measured: 2.75 instructions a byte against ~0.5).
#[repr(C, align(4096))]
struct Buffers([Buffer; BUFFERS]);

/// The request buffers, handed out once.
static mut BUFS: Buffers = Buffers([[0; ferry_virtio_backend::storage::BUFFER_BYTES]; BUFFERS]);
static BUFS_TAKEN: AtomicBool = AtomicBool::new(false);

/// The request buffers, the first time only.
pub fn take_buffers() -> Option<&'static mut [Buffer]> {
    if BUFS_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    let bufs = &raw mut BUFS;
    // SAFETY: handed out once (the flag above); nothing else names BUFS.
    Some(unsafe { &mut (*bufs).0 })
}

/// A request with the physical device.
#[derive(Clone, Copy)]
struct InFlight {
    op: BlkOp,
    /// The data buffer (the model keeps it for us until [`PhysicalDisk::poll`]).
    data: *mut u8,
    len: usize,
}

/// The physical virtio-blk device behind a `StorageBlk`.
pub struct PhysicalDisk {
    transport: MmioTransport<'static>,
    queue: VirtQueue<FerryHal, QUEUE_SIZE>,
    capacity: u64,
    read_only: bool,
    flush: bool,
    headers: [[u8; 16]; TAGS],
    status: [[u8; 1]; TAGS],
    requests: [Option<InFlight>; TAGS],
    /// Physical queue token (head descriptor) → tag.
    tags: [u16; QUEUE_SIZE],
    /// A flush answered without the device (it has no write cache to flush).
    flushed: Option<u16>,
    /// What the disk did, for [`take_report`](PhysicalDisk::take_report).
    stats: DiskStats,
}

/// Bytes moved between two [`DiskStats`] reports.
pub const REPORT_BYTES: u64 = 64 << 20;

/// What the physical disk did: requests, bytes, and how long (counter ticks of
/// virtual time) at least one request was outstanding at it. Under QEMU's
/// `-icount ... sleep=off` the disk's own work happens outside virtual time, but
/// while every vCPU sleeps waiting for it the clock jumps ahead: the busy time holds
/// those jumps, so a benchmark can tell them from the time spent in the guests,
/// Ferry and the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Requests finished.
    pub requests: u64,
    /// Data bytes read and written.
    pub bytes: u64,
    /// Ticks with at least one request outstanding.
    pub busy_ticks: u64,
    /// Counter value when the disk last became busy (0: idle).
    busy_since: u64,
    /// `bytes` at the last report.
    reported: u64,
}

impl PhysicalDisk {
    /// Sets up the virtio-blk device at `addr` (0x200 bytes of identity-mapped
    /// passthrough MMIO): features, its one queue, DRIVER_OK.
    ///
    /// # Safety
    /// `addr` must be a virtio-mmio device's registers that nothing else drives,
    /// mapped as device memory for the program's life.
    pub unsafe fn new(addr: u64) -> Result<Self, &'static str> {
        let header = NonNull::new(addr as *mut _).ok_or("address 0")?;
        // SAFETY: the caller's promise.
        let mut t = unsafe { MmioTransport::new(header, 0x200) }
            .map_err(|_| "no virtio-mmio device there (bad magic or version)")?;
        if t.device_type() != DeviceType::Block {
            return Err("the virtio-mmio device there is not a block device");
        }
        let want = Features::RO | Features::FLUSH | Features::EVENT_IDX | Features::VERSION_1;
        let got = t.begin_init(want);
        let lo: u32 = t.read_config_space(0).map_err(|_| "capacity unreadable")?;
        let hi: u32 = t.read_config_space(4).map_err(|_| "capacity unreadable")?;
        let queue = VirtQueue::new(&mut t, 0, false, got.contains(Features::EVENT_IDX))
            .map_err(|_| "its queue 0 is too small or in use")?;
        t.finish_init();
        Ok(PhysicalDisk {
            transport: t,
            queue,
            capacity: u64::from(lo) | (u64::from(hi) << 32),
            read_only: got.contains(Features::RO),
            flush: got.contains(Features::FLUSH),
            headers: [[0; 16]; TAGS],
            status: [[0; 1]; TAGS],
            requests: [None; TAGS],
            tags: [0; QUEUE_SIZE],
            flushed: None,
            stats: DiskStats::default(),
        })
    }

    /// Whether the device takes FLUSH (without it, it has no volatile cache).
    pub fn has_flush(&self) -> bool {
        self.flush
    }

    /// The statistics since the last report, once [`REPORT_BYTES`] more were moved.
    pub fn take_report(&mut self) -> Option<DiskStats> {
        if self.stats.bytes - self.stats.reported < REPORT_BYTES {
            return None;
        }
        let r = self.stats;
        self.stats = DiskStats {
            busy_since: r.busy_since,
            reported: 0,
            ..DiskStats::default()
        };
        Some(r)
    }

    /// Acknowledges the device's interrupt (before the GIC EOI: it is level).
    pub fn ack_interrupt(&mut self) {
        self.transport.ack_interrupt();
    }
}

impl Storage for PhysicalDisk {
    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn submit(&mut self, tag: u16, op: BlkOp, buf: &mut [u8]) -> Result<(), Busy> {
        let t = usize::from(tag);
        if t >= TAGS || self.requests[t].is_some() {
            return Err(Busy);
        }
        let (ty, sector, len) = match op {
            BlkOp::Read { sector, len } => (T_IN, sector, len as usize),
            BlkOp::Write { sector, len } => (T_OUT, sector, len as usize),
            BlkOp::Flush if !self.flush => {
                if self.flushed.is_some() {
                    return Err(Busy);
                }
                self.flushed = Some(tag);
                return Ok(());
            }
            BlkOp::Flush => (T_FLUSH, 0, 0),
            BlkOp::GetId { .. } => return Err(Busy),
        };
        let data = buf.get_mut(..len).ok_or(Busy)?;
        self.headers[t][..4].copy_from_slice(&ty.to_le_bytes());
        self.headers[t][8..].copy_from_slice(&sector.to_le_bytes());
        self.status[t] = [S_IOERR];
        let header = &self.headers[t][..];
        let status = &mut self.status[t][..];
        // SAFETY: the header and status live in `self`, which does not move while
        // the serving loop runs; the data buffer is the model's and it does not
        // touch it before `poll` reports this tag; all are popped with the same
        // buffers in `poll`.
        let token = unsafe {
            match op {
                BlkOp::Read { .. } => self.queue.add(&[header], &mut [data, status]),
                BlkOp::Write { .. } => self.queue.add(&[header, data], &mut [status]),
                _ => self.queue.add(&[header], &mut [status]),
            }
        }
        .map_err(|_| Busy)?;
        if self.queue.should_notify() {
            self.transport.notify(0);
        }
        self.tags[usize::from(token) % QUEUE_SIZE] = tag;
        if self.requests.iter().all(Option::is_none) {
            self.stats.busy_since = ferry_partition_rt::time::ticks().max(1);
        }
        self.requests[t] = Some(InFlight {
            op,
            data: buf.as_mut_ptr(),
            len,
        });
        Ok(())
    }

    fn poll(&mut self) -> Option<(u16, u8)> {
        if let Some(tag) = self.flushed.take() {
            return Some((tag, ferry_virtio_backend::blk::S_OK));
        }
        let token = self.queue.peek_used()?;
        let tag = self.tags[usize::from(token) % QUEUE_SIZE];
        let t = usize::from(tag);
        let Some(r) = self.requests.get_mut(t).and_then(Option::take) else {
            // Not ours: nothing sensible to pop it with. Stop here (the queue is
            // stuck; the device is broken).
            return None;
        };
        // SAFETY: `data` is the model's buffer given to `submit` for this tag, still
        // unused by the model.
        let data = unsafe { core::slice::from_raw_parts_mut(r.data, r.len) };
        let header = &self.headers[t][..];
        let status = &mut self.status[t][..];
        // SAFETY: the same buffers `submit` added under this token.
        let popped = unsafe {
            match r.op {
                BlkOp::Read { .. } => self.queue.pop_used(token, &[header], &mut [data, status]),
                BlkOp::Write { .. } => self.queue.pop_used(token, &[header, data], &mut [status]),
                _ => self.queue.pop_used(token, &[header], &mut [status]),
            }
        };
        let s = if popped.is_ok() {
            self.status[t][0]
        } else {
            S_IOERR
        };
        self.stats.requests += 1;
        if matches!(r.op, BlkOp::Read { .. } | BlkOp::Write { .. }) {
            self.stats.bytes += r.len as u64;
        }
        if self.requests.iter().all(Option::is_none) && self.stats.busy_since != 0 {
            let now = ferry_partition_rt::time::ticks();
            self.stats.busy_ticks += now.saturating_sub(self.stats.busy_since);
            self.stats.busy_since = 0;
        }
        Some((tag, s))
    }
}
