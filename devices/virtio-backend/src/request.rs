//! A request being served: sequential and positioned access to the buffers of a
//! validated chain, through the transport.

use crate::Error;
use crate::chain::{Buffer, Chain};
use crate::transport::{self, Transport};

/// One request (descriptor chain) handed to a device model.
///
/// Readable bytes are read in order with [`read`](Self::read) /
/// [`read_exact`](Self::read_exact); writable bytes are written in order with
/// [`write`](Self::write) / [`write_all`](Self::write_all) or at an offset with
/// [`write_at`](Self::write_at). The used length reported to the driver is the
/// number of bytes written contiguously from the start of the writable part
/// ([`used_len`](Self::used_len)), as the spec requires (§2.7.8.2).
pub struct Request<'a> {
    chain: &'a Chain,
    mem: &'a mut dyn Transport,
    rpos: u32,
    wpos: u32,
    used: u32,
}

impl<'a> Request<'a> {
    pub(crate) fn new(chain: &'a Chain, mem: &'a mut dyn Transport) -> Self {
        Request {
            chain,
            mem,
            rpos: 0,
            wpos: 0,
            used: 0,
        }
    }

    /// The validated chain this request consists of.
    pub fn chain(&self) -> &Chain {
        self.chain
    }

    /// The head descriptor index.
    pub fn head(&self) -> u16 {
        self.chain.head()
    }

    /// Total readable bytes.
    pub fn readable_len(&self) -> u32 {
        self.chain.readable_len()
    }

    /// Total writable bytes.
    pub fn writable_len(&self) -> u32 {
        self.chain.writable_len()
    }

    /// Readable bytes not yet consumed by [`read`](Self::read).
    pub fn remaining_read(&self) -> u32 {
        self.readable_len() - self.rpos
    }

    /// Writable bytes after the write cursor.
    pub fn remaining_write(&self) -> u32 {
        self.writable_len() - self.wpos
    }

    /// Bytes written contiguously from the start of the writable part: the length
    /// the used ring entry will carry.
    pub fn used_len(&self) -> u32 {
        self.used
    }

    /// Reads up to `buf.len()` of the next readable bytes; returns how many (0 at
    /// the end of the readable part).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = clamp(buf.len(), self.remaining_read());
        copy(
            self.mem,
            self.chain.readable(),
            self.rpos,
            Dir::Out(&mut buf[..n]),
        )?;
        self.rpos += n as u32;
        Ok(n)
    }

    /// Reads exactly `buf.len()` bytes; [`Error::BufferTooShort`] (and nothing
    /// consumed) if fewer remain.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() > self.remaining_read() as usize {
            return Err(Error::BufferTooShort);
        }
        self.read(buf).map(|_| ())
    }

    /// Writes as much of `data` as fits at the write cursor; returns how many bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        let n = clamp(data.len(), self.remaining_write());
        let at = self.wpos;
        self.write_at(at, &data[..n])?;
        self.wpos += n as u32;
        Ok(n)
    }

    /// Writes all of `data` at the write cursor; [`Error::BufferTooShort`] (and
    /// nothing written) if it does not fit.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() > self.remaining_write() as usize {
            return Err(Error::BufferTooShort);
        }
        self.write(data).map(|_| ())
    }

    /// Writes `data` at byte `offset` of the writable part without moving the write
    /// cursor; [`Error::BufferTooShort`] if it does not fit.
    pub fn write_at(&mut self, offset: u32, data: &[u8]) -> Result<(), Error> {
        let end = u64::from(offset) + data.len() as u64;
        if end > u64::from(self.writable_len()) {
            return Err(Error::BufferTooShort);
        }
        copy(self.mem, self.chain.writable(), offset, Dir::In(data))?;
        if offset <= self.used {
            self.used = self.used.max(end as u32);
        }
        Ok(())
    }
}

fn clamp(len: usize, remaining: u32) -> usize {
    len.min(remaining as usize)
}

enum Dir<'b> {
    /// From driver memory into this buffer.
    Out(&'b mut [u8]),
    /// From this buffer into driver memory.
    In(&'b [u8]),
}

/// Copies between a local buffer and the byte range starting at `offset` of the
/// concatenation of `bufs`. The caller has checked that the range fits.
fn copy(
    mem: &mut dyn Transport,
    bufs: &[Buffer],
    offset: u32,
    mut dir: Dir<'_>,
) -> Result<(), Error> {
    let total = match &dir {
        Dir::Out(b) => b.len(),
        Dir::In(b) => b.len(),
    };
    let mut skip = u64::from(offset);
    let mut done = 0usize;
    for b in bufs {
        if done == total {
            break;
        }
        let blen = u64::from(b.len);
        if skip >= blen {
            skip -= blen;
            continue;
        }
        let n = ((blen - skip) as usize).min(total - done);
        let addr = b.addr + skip;
        match &mut dir {
            Dir::Out(buf) => transport::read(mem, addr, &mut buf[done..done + n])?,
            Dir::In(data) => transport::write(mem, addr, &data[done..done + n])?,
        }
        done += n;
        skip = 0;
    }
    Ok(())
}
