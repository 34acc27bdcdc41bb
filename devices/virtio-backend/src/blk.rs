//! virtio-blk (§5.2): a RAM disk over a caller-supplied byte slice.

use crate::device::{Completion, VirtioDevice, config_bytes};
use crate::spec::device_id;
use crate::{Error, MAX_CHAIN_LEN, Request};

/// Sector size: the unit of `capacity` and of the request `sector` field.
pub const SECTOR_SIZE: usize = 512;
/// Length of the GET_ID answer.
pub const ID_BYTES: usize = 20;

/// VIRTIO_BLK_F_SEG_MAX: `seg_max` in the configuration.
pub const F_SEG_MAX: u64 = 1 << 2;
/// VIRTIO_BLK_F_RO: the disk is read-only.
pub const F_RO: u64 = 1 << 5;
/// VIRTIO_BLK_F_BLK_SIZE: `blk_size` in the configuration.
pub const F_BLK_SIZE: u64 = 1 << 6;
/// VIRTIO_BLK_F_FLUSH: the FLUSH command.
pub const F_FLUSH: u64 = 1 << 9;

/// Request type: read.
pub const T_IN: u32 = 0;
/// Request type: write.
pub const T_OUT: u32 = 1;
/// Request type: flush.
pub const T_FLUSH: u32 = 4;
/// Request type: device id string.
pub const T_GET_ID: u32 = 8;

/// Status: success.
pub const S_OK: u8 = 0;
/// Status: the request failed (bad sector, bad length, read-only, malformed).
pub const S_IOERR: u8 = 1;
/// Status: request type not supported.
pub const S_UNSUPP: u8 = 2;

/// Size of the request header (`type`, `reserved`/`ioprio`, `sector`).
const HEADER: u32 = 16;

/// A virtio-blk device serving a RAM disk: one request queue; IN, OUT, FLUSH and
/// GET_ID.
///
/// Every request's status byte is the last writable byte of its chain. A request
/// with no writable byte cannot be answered and is a device error; every other bad
/// request gets `S_IOERR` (or `S_UNSUPP` for an unknown type):
/// - the readable part must be the 16-byte header for IN, FLUSH and GET_ID, and
///   header + data for OUT; OUT and FLUSH must have exactly the status byte writable;
/// - IN and OUT data must be whole sectors inside the disk (checked arithmetic);
/// - OUT on a read-only disk fails.
pub struct Blk<'a> {
    disk: &'a mut [u8],
    id: [u8; ID_BYTES],
    read_only: bool,
}

impl<'a> Blk<'a> {
    /// A disk over `disk` (capacity `disk.len() / 512` sectors; a partial last
    /// sector is not used) answering GET_ID with `id` (truncated to 20 bytes,
    /// zero-padded).
    pub const fn new(disk: &'a mut [u8], id: &[u8]) -> Self {
        let mut buf = [0u8; ID_BYTES];
        let mut i = 0;
        while i < ID_BYTES && i < id.len() {
            buf[i] = id[i];
            i += 1;
        }
        Blk {
            disk,
            id: buf,
            read_only: false,
        }
    }

    /// The same disk, read-only (VIRTIO_BLK_F_RO offered, writes fail).
    pub const fn read_only(mut self, ro: bool) -> Self {
        self.read_only = ro;
        self
    }

    /// Capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        (self.disk.len() / SECTOR_SIZE) as u64
    }

    /// The disk contents.
    pub fn disk(&self) -> &[u8] {
        self.disk
    }

    /// The disk contents, mutably.
    pub fn disk_mut(&mut self) -> &mut [u8] {
        self.disk
    }

    /// The byte range of a checked request.
    fn range(sector: u64, len: u32) -> core::ops::Range<usize> {
        let start = sector as usize * SECTOR_SIZE;
        start..start + len as usize
    }

    /// Serves the request; returns its status. `Err` only for memory errors.
    fn serve(&mut self, req: &mut Request<'_>) -> Result<u8, Error> {
        let op = match BlkOp::parse(req, self.capacity(), self.read_only)? {
            Ok(op) => op,
            Err(status) => return Ok(status),
        };
        match op {
            BlkOp::Read { sector, len } => {
                req.write(&self.disk[Self::range(sector, len)])?;
            }
            BlkOp::Write { sector, len } => {
                req.read(&mut self.disk[Self::range(sector, len)])?;
            }
            // A RAM disk has nothing to flush.
            BlkOp::Flush => {}
            BlkOp::GetId { len } => {
                req.write(&self.id[..len as usize])?;
            }
        }
        Ok(S_OK)
    }
}

/// A block request checked against the disk it is for: what to do. The data of a
/// write follows the request's read cursor; the data of a read and a GET_ID answer
/// go at its write cursor; the status byte is the last writable byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkOp {
    /// Read `len` bytes (whole sectors, inside the disk) at `sector`.
    Read {
        /// First sector.
        sector: u64,
        /// Bytes.
        len: u32,
    },
    /// Write `len` bytes (whole sectors, inside the disk) at `sector`.
    Write {
        /// First sector.
        sector: u64,
        /// Bytes.
        len: u32,
    },
    /// Make every completed write durable.
    Flush,
    /// The device id string: `len` bytes (at most [`ID_BYTES`]).
    GetId {
        /// Bytes to write.
        len: u32,
    },
}

impl BlkOp {
    /// Reads the 16-byte header of `req` and checks the request against a disk of
    /// `capacity` sectors (§5.2.6):
    /// - the readable part must be the header for IN, FLUSH and GET_ID, and header +
    ///   data for OUT; OUT and FLUSH must have exactly the status byte writable;
    /// - IN and OUT data must be whole sectors inside the disk (checked arithmetic);
    /// - OUT on a read-only disk fails.
    ///
    /// `Ok(Err(status))`: answer with that status at once (`S_IOERR`, or `S_UNSUPP`
    /// for an unknown type). `Err`: the request cannot be answered at all (no
    /// status byte: [`Error::BufferTooShort`]) or driver memory failed.
    pub fn parse(
        req: &mut Request<'_>,
        capacity: u64,
        read_only: bool,
    ) -> Result<Result<BlkOp, u8>, Error> {
        let Some(status_at) = req.writable_len().checked_sub(1) else {
            return Err(Error::BufferTooShort);
        };
        let mut hdr = [0u8; HEADER as usize];
        if req.read_exact(&mut hdr).is_err() {
            return Ok(Err(S_IOERR));
        }
        let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = hdr;
        let ty = u32::from_le_bytes([t0, t1, t2, t3]);
        let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        let readable = req.readable_len();
        let inside = |len: u32| {
            (len as usize).is_multiple_of(SECTOR_SIZE)
                && sector
                    .checked_add(u64::from(len) / SECTOR_SIZE as u64)
                    .is_some_and(|end| end <= capacity)
        };
        let op = match ty {
            T_IN if readable == HEADER && inside(status_at) => BlkOp::Read {
                sector,
                len: status_at,
            },
            T_OUT if status_at == 0 && !read_only && inside(readable - HEADER) => BlkOp::Write {
                sector,
                len: readable - HEADER,
            },
            T_FLUSH if readable == HEADER && status_at == 0 => BlkOp::Flush,
            T_GET_ID if readable == HEADER => BlkOp::GetId {
                len: status_at.min(ID_BYTES as u32),
            },
            T_IN | T_OUT | T_FLUSH | T_GET_ID => return Ok(Err(S_IOERR)),
            _ => return Ok(Err(S_UNSUPP)),
        };
        Ok(Ok(op))
    }
}

/// Writes the status byte (the last writable byte) of a block request.
pub fn write_status(req: &mut Request<'_>, status: u8) -> Result<(), Error> {
    let Some(at) = req.writable_len().checked_sub(1) else {
        return Err(Error::BufferTooShort);
    };
    req.write_at(at, &[status])
}

impl VirtioDevice for Blk<'_> {
    fn device_id(&self) -> u32 {
        device_id::BLOCK
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { F_RO } else { 0 };
        F_SEG_MAX | F_BLK_SIZE | F_FLUSH | ro
    }

    /// `struct virtio_blk_config`: capacity (u64), size_max (u32, not offered),
    /// seg_max (u32), geometry (4 bytes, not offered), blk_size (u32).
    fn config_read(&self, offset: u32, buf: &mut [u8]) {
        let mut c = [0u8; 24];
        c[0..8].copy_from_slice(&self.capacity().to_le_bytes());
        c[12..16].copy_from_slice(&(MAX_CHAIN_LEN as u32 - 2).to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        config_bytes(&c, offset, buf);
    }

    fn process(&mut self, _queue: u16, req: &mut Request<'_>) -> Result<Completion, Error> {
        let status = self.serve(req)?;
        write_status(req, status)?;
        Ok(Completion::Done)
    }
}
