//! Copy mode: the backend never sees frontend memory. Ferry keeps a *shadow*
//! virtqueue per frontend queue in the device's bounce area (backend memory):
//! on the frontend's QueueNotify it walks the frontend's split ring with full
//! validation (the device library's walker), copies the device-readable bytes
//! into the bounce area (its data part split evenly between the queues) and
//! posts a shadow request of at most two descriptors
//! (readable, writable); when the backend marks a shadow request used, Ferry
//! copies exactly the `len` bytes it wrote back into the frontend's writable
//! buffers (as validated when posted: a descriptor table is read once per
//! request), fills the frontend's used ring and says whether the frontend wants
//! an interrupt. A full bounce area holds requests back; none is dropped.
//!
//! The frontend's queue registers are kept here and the backend is given the
//! shadow rings' addresses instead ([`CopyDevice::on_write`]); reads of them are
//! answered from here. The backend translates "frontend" addresses with offset 0
//! (its `frontend-memory` is the bounce area), so the same backend serves both
//! modes unchanged.

mod engine;
mod pool;
pub mod ring;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use ferry_platform::Region;
use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::{Buffer, Error as WalkError};

pub use engine::Moved;
use pool::{Pool, Run};
use ring::Rings;

/// Frontend queues a copy-mode device may use.
pub const MAX_QUEUES: usize = 4;
/// Largest queue a copy-mode device offers (QueueNumMax is clamped to it).
pub const MAX_QUEUE_SIZE: u16 = 256;
/// Bounce bytes per queue for its shadow rings (descriptor table, available and
/// used ring of [`MAX_QUEUE_SIZE`] entries).
pub const QUEUE_AREA: u64 = 0x2000;
/// Offsets of the shadow rings in a queue's area.
const SHADOW_AVAIL: u64 = 16 * MAX_QUEUE_SIZE as u64;
const SHADOW_USED: u64 = (SHADOW_AVAIL + 6 + 2 * MAX_QUEUE_SIZE as u64).next_multiple_of(4);
const _: () = assert!(SHADOW_USED + 6 + 8 * MAX_QUEUE_SIZE as u64 <= QUEUE_AREA);
/// Bytes of bounce area before its data pool.
pub const RINGS_AREA: u64 = QUEUE_AREA * MAX_QUEUES as u64;

/// Why a copy-mode device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyError {
    /// A frontend descriptor chain failed validation.
    Chain {
        /// The queue.
        queue: u16,
        /// The chain's head.
        head: u16,
        /// What the walker found.
        error: WalkError,
    },
    /// A frontend buffer outside the frontend's RAM.
    Buffer {
        /// The queue.
        queue: u16,
        /// The buffer's address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The frontend's avail.idx moved by more than the queue size.
    AvailJump {
        /// The queue.
        queue: u16,
        /// Where Ferry was.
        last: u16,
        /// What the frontend wrote.
        idx: u16,
    },
    /// A frontend ring outside its RAM, misaligned, or a bad queue size.
    Ring {
        /// The queue.
        queue: u16,
    },
    /// A request larger than the bounce area could ever hold.
    TooBig {
        /// The queue.
        queue: u16,
        /// Its bytes.
        bytes: u64,
    },
    /// The backend's used.idx moved by more than it had outstanding.
    UsedJump {
        /// The queue.
        queue: u16,
        /// Where Ferry was.
        last: u16,
        /// What the backend wrote.
        idx: u16,
    },
    /// A used entry naming no outstanding request.
    NotOutstanding {
        /// The queue.
        queue: u16,
        /// The id the backend gave.
        id: u32,
    },
    /// A used entry claiming more bytes than the request's writable buffers.
    UsedTooLong {
        /// The queue.
        queue: u16,
        /// The id.
        id: u32,
        /// The length claimed.
        len: u32,
        /// The writable bytes the request had.
        writable: u32,
    },
    /// Ferry could not reach the frontend's ring or the bounce area.
    Memory {
        /// The queue.
        queue: u16,
    },
}

impl core::fmt::Display for CopyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CopyError::Chain { queue, head, error } => {
                write!(f, "queue {queue}: descriptor chain at {head}: {error}")
            }
            CopyError::Buffer { queue, addr, len } => write!(
                f,
                "queue {queue}: buffer [{addr:#x}, +{len:#x}) is outside the frontend's memory"
            ),
            CopyError::AvailJump { queue, last, idx } => write!(
                f,
                "queue {queue}: avail.idx jumped from {last} to {idx}, more than the queue holds"
            ),
            CopyError::Ring { queue } => write!(
                f,
                "queue {queue}: its rings are outside the frontend's memory, misaligned, or its size is not a power of 2 in 2..={MAX_QUEUE_SIZE}"
            ),
            CopyError::TooBig { queue, bytes } => write!(
                f,
                "queue {queue}: a request of {bytes} bytes is larger than the bounce area"
            ),
            CopyError::UsedJump { queue, last, idx } => write!(
                f,
                "queue {queue}: the backend's used.idx jumped from {last} to {idx}, beyond what it was given"
            ),
            CopyError::NotOutstanding { queue, id } => write!(
                f,
                "queue {queue}: the backend used id {id}, which names no outstanding request"
            ),
            CopyError::UsedTooLong {
                queue,
                id,
                len,
                writable,
            } => write!(
                f,
                "queue {queue}: the backend used id {id} with len {len}, the request had {writable} writable bytes"
            ),
            CopyError::Memory { queue } => write!(
                f,
                "queue {queue}: Ferry could not reach a ring or the bounce area"
            ),
        }
    }
}

/// A request the backend holds: where it came from and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outstanding {
    /// The frontend chain's head: the id its used entry carries.
    fe_head: u16,
    /// Its bounce bytes: readable, then writable.
    run: Run,
    readable_len: u32,
    writable_len: u32,
    /// The frontend's writable buffers, as validated when it was posted.
    writable: Vec<Buffer>,
}

/// One frontend queue and its shadow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Queue {
    /// The frontend's ring addresses and size, as it wrote them.
    fe: Rings,
    ready: bool,
    /// Next frontend avail index to take.
    last_avail: u16,
    /// Next frontend used index to fill.
    fe_used: u16,
    /// Next shadow avail index to fill.
    shadow_avail: u16,
    /// Next shadow used index to look at.
    shadow_used: u16,
    /// Request slot k uses shadow descriptors 2k and 2k + 1.
    slots: Vec<Option<Outstanding>>,
}

/// A copy-mode device's state: the frontend's queue registers and each queue's
/// shadow in the bounce area.
#[derive(Clone, Debug)]
pub struct CopyDevice {
    /// The bounce area as the backend addresses it.
    bounce: Region,
    queue_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queues: [Queue; MAX_QUEUES],
    /// The data area, split evenly between the queues: a queue whose requests
    /// wait long (a console's receive buffers) cannot starve another.
    pools: [Pool; MAX_QUEUES],
}

/// What becomes of a frontend register access to a copy-mode device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// Forward it to the backend; a write carries this value.
    Forward(u64),
    /// Ferry answers the read with this value; nothing is forwarded.
    Answer(u64),
    /// The device fails.
    Fail(CopyError),
}

impl CopyDevice {
    /// A device whose bounce area is `bounce` (backend addresses; the config asks
    /// for at least 64 KiB: [`RINGS_AREA`] plus a share for each queue).
    pub fn new(bounce: Region) -> CopyDevice {
        CopyDevice {
            bounce,
            queue_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queues: Default::default(),
            pools: core::array::from_fn(|_| Pool::new(Self::share(bounce))),
        }
    }

    /// The shadow rings of queue `q` (backend addresses).
    pub fn shadow(&self, q: usize) -> Rings {
        let base = self.bounce.base + QUEUE_AREA * q as u64;
        Rings {
            desc: base,
            avail: base + SHADOW_AVAIL,
            used: base + SHADOW_USED,
            num: self.queues.get(q).map_or(0, |queue| queue.fe.num),
        }
    }

    /// Bytes of data area each queue gets.
    fn share(bounce: Region) -> u64 {
        bounce.size.saturating_sub(RINGS_AREA) / MAX_QUEUES as u64
    }

    /// Where queue `q`'s data area starts (backend address).
    fn pool_base(&self, q: usize) -> u64 {
        self.bounce.base + RINGS_AREA + Self::share(self.bounce) * q as u64
    }

    fn negotiated(&self, feature: u64) -> bool {
        self.driver_features & feature != 0
    }

    /// Clamps what the backend answers to a forwarded read.
    pub fn after_read(&self, offset: u64, value: u64) -> u64 {
        if offset == u64::from(reg::QUEUE_NUM_MAX) {
            value.min(u64::from(MAX_QUEUE_SIZE))
        } else {
            value
        }
    }

    /// Reads of the queue address registers are answered from the frontend's
    /// values; everything else is forwarded.
    pub fn on_read(&self, offset: u64) -> Register {
        let Some(q) = self.queues.get(self.queue_sel as usize) else {
            return Register::Forward(0);
        };
        let half = |v: u64, high: bool| if high { v >> 32 } else { v & 0xffff_ffff };
        let value = match u32::try_from(offset).unwrap_or(u32::MAX) {
            reg::QUEUE_DESC_LOW => half(q.fe.desc, false),
            reg::QUEUE_DESC_HIGH => half(q.fe.desc, true),
            reg::QUEUE_DRIVER_LOW => half(q.fe.avail, false),
            reg::QUEUE_DRIVER_HIGH => half(q.fe.avail, true),
            reg::QUEUE_DEVICE_LOW => half(q.fe.used, false),
            reg::QUEUE_DEVICE_HIGH => half(q.fe.used, true),
            _ => return Register::Forward(0),
        };
        Register::Answer(value)
    }
}
