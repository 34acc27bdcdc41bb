//! Descriptor chains: walking a split virtqueue's descriptor table (and indirect
//! tables) from a head index, with full validation, into a bounded snapshot.

use crate::Error;
use crate::spec::desc_flags;
use crate::transport::{self, Transport};

/// The most buffers one descriptor chain may have (direct and indirect together).
///
/// A chain is copied into a fixed array of this many [`Buffer`]s (16 bytes each)
/// on the stack while it is served. The block device advertises
/// `seg_max = MAX_CHAIN_LEN - 2` so that drivers stay within it.
pub const MAX_CHAIN_LEN: usize = 64;

/// Size of one split-virtqueue descriptor in bytes.
pub(crate) const DESC_SIZE: u64 = 16;

/// One buffer of a descriptor chain: a range of driver memory and its direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffer {
    /// Driver (guest-physical) address.
    pub addr: u64,
    /// Length in bytes; never zero.
    pub len: u32,
    /// Device-writable (otherwise device-readable).
    pub writable: bool,
}

/// A validated descriptor chain: every readable buffer before every writable one,
/// no zero lengths, no address wrap, each direction's total within `u32`, at most
/// [`MAX_CHAIN_LEN`] buffers.
///
/// The chain is a snapshot: the descriptors are read once, so a driver that
/// rewrites its descriptor table while the device serves the request cannot make
/// the device leave the validated buffers.
#[derive(Clone, Debug)]
pub struct Chain {
    head: u16,
    bufs: [Buffer; MAX_CHAIN_LEN],
    len: usize,
    readable: usize,
    readable_len: u32,
    writable_len: u32,
}

impl Chain {
    const fn new(head: u16) -> Self {
        Chain {
            head,
            bufs: [Buffer {
                addr: 0,
                len: 0,
                writable: false,
            }; MAX_CHAIN_LEN],
            len: 0,
            readable: 0,
            readable_len: 0,
            writable_len: 0,
        }
    }

    /// The head descriptor index: the id the used ring entry carries.
    pub fn head(&self) -> u16 {
        self.head
    }

    /// All buffers, readable ones first.
    pub fn buffers(&self) -> &[Buffer] {
        &self.bufs[..self.len]
    }

    /// The device-readable buffers.
    pub fn readable(&self) -> &[Buffer] {
        &self.bufs[..self.readable]
    }

    /// The device-writable buffers.
    pub fn writable(&self) -> &[Buffer] {
        &self.bufs[self.readable..self.len]
    }

    /// Total bytes in the readable buffers.
    pub fn readable_len(&self) -> u32 {
        self.readable_len
    }

    /// Total bytes in the writable buffers.
    pub fn writable_len(&self) -> u32 {
        self.writable_len
    }

    fn push(&mut self, addr: u64, len: u32, writable: bool) -> Result<(), Error> {
        if len == 0 {
            return Err(Error::ZeroLength);
        }
        if addr.checked_add(u64::from(len)).is_none() {
            return Err(Error::LengthOverflow);
        }
        if writable {
            self.writable_len = self
                .writable_len
                .checked_add(len)
                .ok_or(Error::LengthOverflow)?;
        } else {
            if self.len > self.readable {
                return Err(Error::ReadableAfterWritable);
            }
            self.readable_len = self
                .readable_len
                .checked_add(len)
                .ok_or(Error::LengthOverflow)?;
        }
        let slot = self.bufs.get_mut(self.len).ok_or(Error::ChainTooLong)?;
        *slot = Buffer {
            addr,
            len,
            writable,
        };
        self.len += 1;
        if !writable {
            self.readable += 1;
        }
        Ok(())
    }
}

/// One raw descriptor.
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn read_desc(t: &mut dyn Transport, table: u64, index: u32) -> Result<Desc, Error> {
    let addr = u64::from(index)
        .checked_mul(DESC_SIZE)
        .and_then(|o| table.checked_add(o))
        .ok_or(Error::Memory {
            addr: table,
            len: DESC_SIZE,
        })?;
    let mut b = [0u8; DESC_SIZE as usize];
    transport::read(t, addr, &mut b)?;
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        l0,
        l1,
        l2,
        l3,
        f0,
        f1,
        n0,
        n1,
    ] = b;
    Ok(Desc {
        addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        len: u32::from_le_bytes([l0, l1, l2, l3]),
        flags: u16::from_le_bytes([f0, f1]),
        next: u16::from_le_bytes([n0, n1]),
    })
}

/// Walks the chain starting at descriptor `head` of the table at `table`
/// (`queue_size` entries) and validates it. `indirect_ok`: the driver negotiated
/// VIRTIO_F_RING_INDIRECT_DESC (else an indirect descriptor is an error).
///
/// Public for transports that move requests themselves (a hypervisor's copy path
/// walks the driver's ring with this same validation).
///
/// Terminates after at most `MAX_CHAIN_LEN + 2` descriptor reads: every step either
/// adds a buffer (bounded by [`MAX_CHAIN_LEN`]) or enters the one allowed indirect
/// table; and a chain that revisits more descriptors than its table holds is a loop.
pub fn walk(
    t: &mut dyn Transport,
    table: u64,
    queue_size: u16,
    head: u16,
    indirect_ok: bool,
) -> Result<Chain, Error> {
    let mut chain = Chain::new(head);
    let mut table = table;
    let mut size = u32::from(queue_size);
    let mut index = u32::from(head);
    let mut visited = 0u32;
    let mut in_indirect = false;
    loop {
        if index >= size {
            return Err(Error::DescIndex { index, size });
        }
        visited += 1;
        if visited > size {
            return Err(Error::DescLoop);
        }
        let d = read_desc(t, table, index)?;
        if d.flags & desc_flags::INDIRECT != 0 {
            if !indirect_ok {
                return Err(Error::IndirectNotNegotiated);
            }
            if in_indirect
                || d.flags & desc_flags::NEXT != 0
                || d.len == 0
                || !u64::from(d.len).is_multiple_of(DESC_SIZE)
            {
                return Err(Error::BadIndirect);
            }
            table = d.addr;
            size = d.len / DESC_SIZE as u32;
            index = 0;
            visited = 0;
            in_indirect = true;
            continue;
        }
        chain.push(d.addr, d.len, d.flags & desc_flags::WRITE != 0)?;
        if d.flags & desc_flags::NEXT == 0 {
            return Ok(chain);
        }
        index = u32::from(d.next);
    }
}
