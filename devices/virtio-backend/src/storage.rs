//! virtio-blk (§5.2) over asynchronous storage: a disk the embedder drives (a
//! physical disk controller, a virtio-blk device passed through to the backend),
//! with many requests in flight and answers in any order.
//!
//! The model copies each request through one of a fixed set of buffers the
//! embedder supplies (its DMA-able memory): a write's data is copied in before
//! the storage sees it, a read's data is copied out when the storage finished.
//! The embedder:
//! 1. serves the queue as usual ([`Device::process_queue`](crate::Device::process_queue));
//!    each request becomes one [`Storage::submit`] and stays
//!    [`Pending`](crate::Completion::Pending);
//! 2. when the storage signals (its interrupt), calls [`StorageBlk::next_done`]
//!    until `None` and [`Device::complete`](crate::Device::complete) for each,
//!    logging failures ([`Done::status`]);
//! 3. then serves the queue again if [`StorageBlk::waiting`]: a request that found
//!    no free buffer or a full storage queue waits in the available ring.

use crate::blk::{BlkOp, ID_BYTES, S_IOERR, S_OK, SECTOR_SIZE, write_status};
use crate::device::{Completion, VirtioDevice, config_bytes};
use crate::spec::device_id;
use crate::{Error, Request};

/// Bytes one request carries at most: the size of each buffer. The device offers
/// `size_max` = [`SEGMENT_BYTES`] and `seg_max` = `BUFFER_BYTES / SEGMENT_BYTES`, so
/// a driver's requests fit (a larger one gets `S_IOERR`).
pub const BUFFER_BYTES: usize = 64 * 1024;
/// `size_max`: the largest segment (descriptor) a driver may use.
pub const SEGMENT_BYTES: usize = 4096;
/// Most requests in flight (buffers) one device uses.
pub const MAX_IN_FLIGHT: usize = 64;

/// VIRTIO_BLK_F_SIZE_MAX.
const F_SIZE_MAX: u64 = 1 << 1;

/// One buffer of [`BUFFER_BYTES`].
pub type Buffer = [u8; BUFFER_BYTES];

/// The storage could not take an operation now (its queue is full): try later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// What the embedder's disk driver does for [`StorageBlk`].
pub trait Storage {
    /// Capacity in 512-byte sectors.
    fn capacity(&self) -> u64;

    /// Whether the disk refuses writes.
    fn read_only(&self) -> bool;

    /// Starts `op` under `tag` with `buf` (a write's data is in it; a read fills
    /// it; a flush does not use it). The storage may use `buf` until it reports
    /// `tag` from [`poll`](Self::poll): the model does not touch it before.
    fn submit(&mut self, tag: u16, op: BlkOp, buf: &mut [u8]) -> Result<(), Busy>;

    /// One finished operation: its tag and the storage's status (a virtio-blk
    /// status byte: [`S_OK`] or an error).
    fn poll(&mut self) -> Option<(u16, u8)>;
}

/// A finished request, for the embedder to complete and log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// The chain head: [`Device::complete`](crate::Device::complete)'s argument.
    pub head: u16,
    /// What it was.
    pub op: BlkOp,
    /// The storage's status ([`S_OK`] or the error it gave).
    pub status: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    /// With the storage for the request at `head`.
    Submitted {
        head: u16,
        op: BlkOp,
    },
    /// With the storage, but its request was dropped by a device reset: the
    /// buffer is free once the storage gives it back.
    Stale,
    /// Finished; waits for [`VirtioDevice::finish`].
    Done {
        head: u16,
        op: BlkOp,
        status: u8,
    },
}

/// virtio-blk over [`Storage`]: one request queue; IN, OUT, FLUSH and GET_ID.
/// Requests are checked as by [`BlkOp::parse`]; GET_ID is answered at once.
pub struct StorageBlk<'a, S> {
    storage: S,
    bufs: &'a mut [Buffer],
    slots: [Slot; MAX_IN_FLIGHT],
    id: [u8; ID_BYTES],
    read_only: bool,
    waiting: bool,
}

impl<'a, S: Storage> StorageBlk<'a, S> {
    /// A device over `storage` with `bufs` as its buffers (at most
    /// [`MAX_IN_FLIGHT`] are used: the queue depth), answering GET_ID with `id`;
    /// `read_only` also refuses writes the storage would take.
    pub fn new(storage: S, bufs: &'a mut [Buffer], id: &[u8], read_only: bool) -> Self {
        let mut buf = [0u8; ID_BYTES];
        let n = id.len().min(ID_BYTES);
        buf[..n].copy_from_slice(&id[..n]);
        StorageBlk {
            read_only: read_only || storage.read_only(),
            storage,
            bufs,
            slots: [Slot::Free; MAX_IN_FLIGHT],
            id: buf,
            waiting: false,
        }
    }

    /// Requests that can be in flight at once.
    pub fn depth(&self) -> usize {
        self.bufs.len().min(MAX_IN_FLIGHT)
    }

    /// Requests with the storage now.
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Submitted { .. } | Slot::Stale))
            .count()
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably (e.g. to acknowledge its interrupt).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// A request waits in the available ring for a buffer or room in the storage:
    /// serve the queue again after [`next_done`](Self::next_done) freed some.
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// Takes the storage's next finished operation for a live request (answers for
    /// requests a reset dropped free their buffer and are skipped).
    pub fn next_done(&mut self) -> Option<Done> {
        loop {
            let (tag, status) = self.storage.poll()?;
            let Some(slot) = self.slots.get_mut(usize::from(tag)) else {
                continue;
            };
            match *slot {
                Slot::Submitted { head, op } => {
                    *slot = Slot::Done { head, op, status };
                    return Some(Done { head, op, status });
                }
                Slot::Stale => *slot = Slot::Free,
                // A tag the storage was not given: ignore it.
                Slot::Free | Slot::Done { .. } => {}
            }
        }
    }

    /// Drops the requests in flight: buffers with the storage stay with it until
    /// it answers (then [`next_done`](Self::next_done) frees them silently);
    /// answered ones are freed now.
    fn drop_in_flight(&mut self) {
        for s in &mut self.slots {
            *s = match *s {
                Slot::Submitted { .. } | Slot::Stale => Slot::Stale,
                Slot::Free | Slot::Done { .. } => Slot::Free,
            };
        }
        self.waiting = false;
    }

    /// Copies the write's data in and hands `op` to the storage in a free slot.
    fn start(&mut self, req: &mut Request<'_>, op: BlkOp) -> Result<Completion, Error> {
        // A chain the driver made available again while the device still holds it
        // (a driver error): two answers for one head could not be told apart.
        let head = req.head();
        let held = self.slots.iter().any(|s| {
            matches!(s, Slot::Submitted { head: h, .. } | Slot::Done { head: h, .. } if *h == head)
        });
        if held {
            return Err(Error::BadRequest);
        }
        let depth = self.depth();
        let Some(tag) = self.slots[..depth].iter().position(|s| *s == Slot::Free) else {
            self.waiting = true;
            return Ok(Completion::Defer);
        };
        let buf = &mut self.bufs[tag];
        if let BlkOp::Write { len, .. } = op {
            req.read(&mut buf[..len as usize])?;
        }
        if self.storage.submit(tag as u16, op, buf).is_err() {
            self.waiting = true;
            return Ok(Completion::Defer);
        }
        self.slots[tag] = Slot::Submitted {
            head: req.head(),
            op,
        };
        Ok(Completion::Pending)
    }
}

impl<S: Storage> VirtioDevice for StorageBlk<'_, S> {
    fn device_id(&self) -> u32 {
        device_id::BLOCK
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { crate::blk::F_RO } else { 0 };
        F_SIZE_MAX | crate::blk::F_SEG_MAX | crate::blk::F_BLK_SIZE | crate::blk::F_FLUSH | ro
    }

    /// `struct virtio_blk_config`: capacity, size_max, seg_max, geometry (not
    /// offered), blk_size.
    fn config_read(&self, offset: u32, buf: &mut [u8]) {
        let mut c = [0u8; 24];
        c[0..8].copy_from_slice(&self.storage.capacity().to_le_bytes());
        c[8..12].copy_from_slice(&(SEGMENT_BYTES as u32).to_le_bytes());
        c[12..16].copy_from_slice(&((BUFFER_BYTES / SEGMENT_BYTES) as u32).to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        config_bytes(&c, offset, buf);
    }

    /// Buffers with the storage stay with it until it answers; answered ones are
    /// dropped.
    fn reset(&mut self) {
        self.drop_in_flight();
    }

    /// The one queue's requests in flight are dropped as by a device reset.
    fn queue_reset(&mut self, _queue: u16) {
        self.drop_in_flight();
    }

    fn process(&mut self, _queue: u16, req: &mut Request<'_>) -> Result<Completion, Error> {
        self.waiting = false;
        let status = match BlkOp::parse(req, self.storage.capacity(), self.read_only)? {
            Ok(BlkOp::GetId { len }) => {
                req.write(&self.id[..len as usize])?;
                S_OK
            }
            // Nothing to move: no need to bother the storage.
            Ok(BlkOp::Read { len: 0, .. } | BlkOp::Write { len: 0, .. }) => S_OK,
            // Larger than the configuration allows (size_max x seg_max).
            Ok(BlkOp::Read { len, .. } | BlkOp::Write { len, .. })
                if len as usize > BUFFER_BYTES =>
            {
                S_IOERR
            }
            Ok(op) => return self.start(req, op),
            Err(status) => status,
        };
        write_status(req, status)?;
        Ok(Completion::Done)
    }

    fn finish(&mut self, queue: u16, req: &mut Request<'_>) -> Result<(), Error> {
        let head = req.head();
        let tag = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Done { head: h, .. } if *h == head))
            .ok_or(Error::NotPending { queue, head })?;
        let Slot::Done { op, status, .. } = self.slots[tag] else {
            return Err(Error::NotPending { queue, head });
        };
        self.slots[tag] = Slot::Free;
        // The chain was walked again: it must still be the request it was.
        let status = match op {
            BlkOp::Read { len, .. } if req.writable_len() != len + 1 => S_IOERR,
            BlkOp::Read { len, .. } if status == S_OK => {
                req.write(&self.bufs[tag][..len as usize])?;
                S_OK
            }
            _ if status == S_OK => S_OK,
            _ => S_IOERR,
        };
        write_status(req, status)
    }
}
