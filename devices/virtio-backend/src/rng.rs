//! virtio-rng (§5.4): fills the driver's buffers from an embedder entropy source.

use crate::device::{Completion, VirtioDevice};
use crate::spec::device_id;
use crate::{Error, Request};

/// The request queue.
pub const REQUEST_QUEUE: u16 = 0;

/// Where random bytes come from (a TRNG, RNDR, a DRBG seeded by one...).
///
/// Implemented for every `FnMut(&mut [u8]) -> usize`.
pub trait EntropySource {
    /// Fills up to `buf.len()` bytes of `buf`; returns how many (0: none available
    /// now).
    fn fill(&mut self, buf: &mut [u8]) -> usize;
}

impl<F: FnMut(&mut [u8]) -> usize> EntropySource for F {
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        self(buf)
    }
}

/// A virtio entropy device.
///
/// Each request must have a writable part (a chain without one is a device error;
/// readable buffers are ignored). It is filled from the source in 64-byte chunks
/// until full or the source runs dry; a request for which the source has nothing
/// at all waits in the ring ([`Completion::Defer`]): serve the queue again when it
/// has.
pub struct Rng<E> {
    source: E,
}

impl<E: EntropySource> Rng<E> {
    /// An entropy device drawing from `source`.
    pub const fn new(source: E) -> Self {
        Rng { source }
    }

    /// The source.
    pub fn source_mut(&mut self) -> &mut E {
        &mut self.source
    }
}

impl<E: EntropySource> VirtioDevice for Rng<E> {
    fn device_id(&self) -> u32 {
        device_id::RNG
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn features(&self) -> u64 {
        0
    }

    /// virtio-rng has no configuration space.
    fn config_read(&self, _offset: u32, buf: &mut [u8]) {
        buf.fill(0);
    }

    fn process(&mut self, _queue: u16, req: &mut Request<'_>) -> Result<Completion, Error> {
        if req.writable_len() == 0 {
            return Err(Error::BufferTooShort);
        }
        let mut chunk = [0u8; 64];
        while req.remaining_write() > 0 {
            let want = (req.remaining_write() as usize).min(chunk.len());
            // A source that claims more than it was given is clamped.
            let n = self.source.fill(&mut chunk[..want]).min(want);
            if n == 0 {
                break;
            }
            req.write_all(&chunk[..n])?;
        }
        if req.used_len() == 0 {
            return Ok(Completion::Defer);
        }
        Ok(Completion::Done)
    }
}
