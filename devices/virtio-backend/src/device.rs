//! What a device type implements ([`VirtioDevice`]) and the static options of a
//! device instance ([`Options`]).

use crate::{Error, Request};

/// What serving one request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The request is finished: it goes to the used ring with
    /// [`Request::used_len`] bytes written.
    Done,
    /// The device cannot serve this request now (e.g. a console receive buffer and
    /// no input yet). It stays in the available ring and the queue is not walked
    /// further; the embedder calls [`Device::process_queue`](crate::Device::process_queue)
    /// again when the device has something to give. The model must not have written
    /// anything it cares about.
    Defer,
    /// The model took the request and finishes it later (e.g. once a physical
    /// device answered): it leaves the available ring now and the walk goes on; its
    /// used entry waits for [`Device::complete`](crate::Device::complete), which
    /// calls [`VirtioDevice::finish`]. Requests may finish in any order.
    Pending,
}

/// A virtio device type (blk, console, rng, ...) behind the generic virtio-mmio
/// front end [`Device`](crate::Device).
///
/// The model knows nothing about registers, rings or the transport: it describes
/// itself (id, queues, features, configuration space) and serves one validated
/// request at a time.
pub trait VirtioDevice {
    /// The virtio device type (see [`spec::device_id`](crate::spec::device_id)).
    fn device_id(&self) -> u32;

    /// Number of virtqueues, at most [`MAX_QUEUES`](crate::MAX_QUEUES).
    fn num_queues(&self) -> u16;

    /// The largest size the driver may give `queue` (a power of two ≤ 32768).
    fn queue_max_size(&self, _queue: u16) -> u16 {
        256
    }

    /// Device-specific feature bits offered to the driver. The transport bits
    /// (VERSION_1, EVENT_IDX, INDIRECT_DESC, ...) are added by `Device` from its
    /// [`Options`].
    fn features(&self) -> u64;

    /// Called when the driver sets FEATURES_OK with `features` (already checked to
    /// be a subset of the offered ones, with VERSION_1). Return `false` to refuse
    /// the combination.
    fn negotiate(&mut self, _features: u64) -> bool {
        true
    }

    /// Fills `buf` (1 to 8 bytes) from the device-specific configuration space at
    /// `offset` (relative to 0x100). Bytes past the end of the configuration read as
    /// zero; [`config_bytes`] does that for a configuration held as a byte image.
    fn config_read(&self, offset: u32, buf: &mut [u8]);

    /// A driver write to the configuration space (most fields are read-only:
    /// ignoring the write is the default).
    fn config_write(&mut self, _offset: u32, _data: &[u8]) {}

    /// The driver reset the device (status 0): drop in-flight state.
    fn reset(&mut self) {}

    /// Queue `queue` was reset on its own (`QueueReset`, or `QueueReady` written
    /// 0): drop the requests of that queue still in flight
    /// ([`Completion::Pending`]); their answers must never reach the queue again.
    fn queue_reset(&mut self, _queue: u16) {}

    /// Serves one request from `queue`. `Err` is a device error: the device is put
    /// in DEVICE_NEEDS_RESET. Malformed requests that can be answered (e.g. a block
    /// request with a bad sector) should be answered with an error status instead.
    fn process(&mut self, queue: u16, req: &mut Request<'_>) -> Result<Completion, Error>;

    /// Finishes a request [`process`](Self::process) left
    /// [`Pending`](Completion::Pending): writes its answer (data, status) into `req`,
    /// the same chain walked again from its head. `Err` is a device error. The
    /// default refuses: a model that never returns `Pending` never gets here.
    fn finish(&mut self, queue: u16, _req: &mut Request<'_>) -> Result<(), Error> {
        Err(Error::NotPending {
            queue,
            head: u16::MAX,
        })
    }
}

/// Copies `buf.len()` bytes at `offset` of a configuration image into `buf`,
/// zero-filling whatever lies past its end.
pub fn config_bytes(image: &[u8], offset: u32, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| image.get(o))
            .copied()
            .unwrap_or(0);
    }
}

/// Static options of one device instance, supplied by the embedder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `VendorID` register value.
    pub vendor_id: u32,
    /// Offer VIRTIO_F_RING_EVENT_IDX.
    pub event_idx: bool,
    /// Offer VIRTIO_F_RING_INDIRECT_DESC.
    pub indirect_desc: bool,
    /// Offer VIRTIO_F_RING_RESET (per-queue reset through `QueueReset`).
    pub ring_reset: bool,
    /// Offer VIRTIO_F_ACCESS_PLATFORM (the transport translates or restricts
    /// driver addresses; the library does nothing different).
    pub access_platform: bool,
    /// Upper bound for every queue's `QueueNumMax` (the model's own bound also
    /// applies); a power of two.
    pub queue_size_max: u16,
}

impl Options {
    /// Vendor "FRRY" (little-endian), event-idx and indirect descriptors offered,
    /// no ring reset, no ACCESS_PLATFORM, queues of at most 256.
    pub const fn new() -> Self {
        Options {
            vendor_id: 0x5952_5246,
            event_idx: true,
            indirect_desc: true,
            ring_reset: false,
            access_platform: false,
            queue_size_max: 256,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}
