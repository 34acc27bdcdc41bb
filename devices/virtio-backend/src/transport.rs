//! The one boundary to the hypervisor: how the device reaches driver memory and
//! raises interrupts in the driver.

use crate::Error;

/// A driver memory access the transport refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemError;

/// Why the device interrupts the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// New entries in a used ring (`InterruptStatus` bit 0).
    UsedBuffer,
    /// The configuration space or the device status changed, e.g. the device set
    /// DEVICE_NEEDS_RESET (`InterruptStatus` bit 1).
    ConfigChange,
}

/// How the device reaches the driver (FE): the only hypervisor-specific part.
///
/// Addresses are the driver's (guest-physical) addresses, exactly as they appear in
/// the virtqueue registers and descriptors. A shared-memory transport translates
/// them by offset into a window mapped into the backend and bounds-checks them; a
/// copy transport serves them from a shadow copy. The library does not care which:
/// it touches driver memory only through this trait, and treats every `Err` as a
/// device error (DEVICE_NEEDS_RESET), never a panic.
///
/// The transport must not panic on any address or length: an access that is not
/// entirely inside what the device may reach returns `Err(MemError)`.
pub trait Transport {
    /// Reads `buf.len()` bytes of driver memory at `addr`; `Err` if any byte is
    /// outside what the device may access.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Writes `data` to driver memory at `addr`; `Err` if any byte is outside what
    /// the device may access.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError>;
    /// Raises an interrupt in the driver (for virtio-mmio: the device's SPI). The
    /// device has already set the matching `InterruptStatus` bit.
    fn notify(&mut self, cause: Interrupt);
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        (**self).write(addr, data)
    }
    fn notify(&mut self, cause: Interrupt) {
        (**self).notify(cause)
    }
}

/// Reads into `buf`, mapping a refusal to [`Error::Memory`].
pub(crate) fn read(t: &mut dyn Transport, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
    t.read(addr, buf).map_err(|_| mem_error(addr, buf.len()))
}

/// Writes `data`, mapping a refusal to [`Error::Memory`].
pub(crate) fn write(t: &mut dyn Transport, addr: u64, data: &[u8]) -> Result<(), Error> {
    t.write(addr, data).map_err(|_| mem_error(addr, data.len()))
}

/// Reads a little-endian `u16`.
pub(crate) fn read_u16(t: &mut dyn Transport, addr: u64) -> Result<u16, Error> {
    let mut b = [0; 2];
    read(t, addr, &mut b)?;
    Ok(u16::from_le_bytes(b))
}

/// Writes a little-endian `u16`.
pub(crate) fn write_u16(t: &mut dyn Transport, addr: u64, v: u16) -> Result<(), Error> {
    write(t, addr, &v.to_le_bytes())
}

fn mem_error(addr: u64, len: usize) -> Error {
    Error::Memory {
        addr,
        len: len as u64,
    }
}
