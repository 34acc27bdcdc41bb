//! The library's one error type.

use core::fmt;

/// Everything that can go wrong while serving a device.
///
/// Errors found while walking a virtqueue or serving a request are *device errors*:
/// [`Device`](crate::Device) records them ([`Device::last_error`](crate::Device::last_error)),
/// sets DEVICE_NEEDS_RESET and raises a configuration-change interrupt. None of them
/// is ever a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The transport refused an access to driver memory (outside what the device
    /// may reach, or an address that wraps).
    Memory {
        /// Driver (guest-physical) address of the access.
        addr: u64,
        /// Length of the access in bytes.
        len: u64,
    },
    /// The device is not live: DRIVER_OK is not set or DEVICE_NEEDS_RESET is.
    NotReady,
    /// No such queue.
    InvalidQueue(u16),
    /// The queue exists but the driver has not made it ready.
    QueueNotReady(u16),
    /// The driver made a queue ready with a bad size (zero, not a power of two,
    /// above `QueueNumMax`), misaligned ring addresses, or a ring that wraps the
    /// address space. (A ring the transport cannot reach is [`Error::Memory`].)
    QueueConfig(u16),
    /// `avail.idx` ran more than the queue size ahead of the device.
    AvailIdxJump {
        /// The queue.
        queue: u16,
        /// The device's next available index.
        last: u16,
        /// The `avail.idx` the driver published.
        idx: u16,
    },
    /// A descriptor index at or beyond the size of its table.
    DescIndex {
        /// The index found.
        index: u32,
        /// The table size.
        size: u32,
    },
    /// A descriptor chain visits more descriptors than its table holds: a loop.
    DescLoop,
    /// A chain with more than [`MAX_CHAIN_LEN`](crate::MAX_CHAIN_LEN) buffers.
    ChainTooLong,
    /// A descriptor with length zero.
    ZeroLength,
    /// A device-readable descriptor after a device-writable one.
    ReadableAfterWritable,
    /// The readable or writable part of a chain exceeds `u32::MAX` bytes, or a
    /// buffer wraps the address space.
    LengthOverflow,
    /// An indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC negotiated.
    IndirectNotNegotiated,
    /// An indirect table inside an indirect table, an indirect descriptor with NEXT,
    /// or a table length that is zero or not a multiple of 16.
    BadIndirect,
    /// A request chain is shorter than the device needs (for example a block request
    /// without room for its status byte) or lacks the buffers of the right direction.
    BufferTooShort,
    /// A device-specific request the device cannot even answer with an error status.
    BadRequest,
    /// [`Device::complete`](crate::Device::complete) for a queue with no request
    /// taken and unfinished (e.g. a late answer after a device reset), or a model
    /// that does not finish requests later.
    NotPending {
        /// The queue.
        queue: u16,
        /// The chain head given.
        head: u16,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Memory { addr, len } => {
                write!(f, "driver memory {addr:#x}+{len:#x} is not accessible")
            }
            Error::NotReady => f.write_str("device not live (no DRIVER_OK, or needs reset)"),
            Error::InvalidQueue(q) => write!(f, "queue {q} does not exist"),
            Error::QueueNotReady(q) => write!(f, "queue {q} is not ready"),
            Error::QueueConfig(q) => write!(f, "queue {q}: bad size, alignment or ring address"),
            Error::AvailIdxJump { queue, last, idx } => {
                write!(f, "queue {queue}: avail.idx {idx} too far ahead of {last}")
            }
            Error::DescIndex { index, size } => {
                write!(f, "descriptor index {index} outside a table of {size}")
            }
            Error::DescLoop => f.write_str("descriptor chain loops"),
            Error::ChainTooLong => f.write_str("descriptor chain too long"),
            Error::ZeroLength => f.write_str("zero-length descriptor"),
            Error::ReadableAfterWritable => f.write_str("readable descriptor after a writable one"),
            Error::LengthOverflow => f.write_str("descriptor chain length overflows"),
            Error::IndirectNotNegotiated => {
                f.write_str("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC")
            }
            Error::BadIndirect => f.write_str("malformed indirect descriptor"),
            Error::BufferTooShort => f.write_str("request buffers too short"),
            Error::BadRequest => f.write_str("malformed request"),
            Error::NotPending { queue, head } => {
                write!(
                    f,
                    "queue {queue}: no unfinished request to complete (head {head})"
                )
            }
        }
    }
}

impl core::error::Error for Error {}
