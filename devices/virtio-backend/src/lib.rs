//! A portable virtio device library: the backend side of a virtio device, for an
//! RTOS, a unikernel or a bare-metal partition.
//!
//! - `no_std`, no allocation, no `unsafe`: driver (frontend) memory is reached only
//!   through the [`Transport`] trait, the one hypervisor-specific boundary.
//! - Virtio-mmio v2 register semantics (virtio 1.2 §4.2.2, modern only,
//!   VIRTIO_F_VERSION_1 required): [`Device::mmio_read`] / [`Device::mmio_write`]
//!   take the driver's trapped register accesses, whoever traps them.
//! - Device-side split virtqueues with full validation ([`Chain`]): a malformed ring
//!   or descriptor puts the device in DEVICE_NEEDS_RESET and raises a
//!   configuration-change interrupt; nothing the driver writes can make the library
//!   panic or loop without bound.
//! - Devices: [`blk::Blk`] (RAM disk), [`console::Console`], [`rng::Rng`]; more by
//!   implementing [`VirtioDevice`].
//!
//! Embedding, in short:
//!
//! ```
//! use ferry_virtio_backend::{rng::Rng, Device, Interrupt, MemError, Options, Transport, WriteEffect};
//!
//! /// Driver memory shared with this partition at an offset (here: a local array).
//! struct Window { base: u64, mem: [u8; 4096] }
//!
//! impl Transport for Window {
//!     fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
//!         let off = addr.checked_sub(self.base).ok_or(MemError)? as usize;
//!         buf.copy_from_slice(self.mem.get(off..off + buf.len()).ok_or(MemError)?);
//!         Ok(())
//!     }
//!     fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
//!         let off = addr.checked_sub(self.base).ok_or(MemError)? as usize;
//!         self.mem.get_mut(off..off + data.len()).ok_or(MemError)?.copy_from_slice(data);
//!         Ok(())
//!     }
//!     fn notify(&mut self, _cause: Interrupt) { /* hypercall: raise the FE's SPI */ }
//! }
//!
//! let mut counter = 0u8;
//! let source = move |buf: &mut [u8]| { buf.fill({ counter += 1; counter }); buf.len() };
//! let window = Window { base: 0x4000_0000, mem: [0; 4096] };
//! let mut dev = Device::new(Rng::new(source), window, Options::new());
//!
//! // For each forwarded access (e.g. an IOREQ record):
//! assert_eq!(dev.mmio_read(0x000, 4), 0x7472_6976); // MagicValue
//! if let WriteEffect::QueueNotify(q) = dev.mmio_write(0x050, 4, 0) {
//!     let _ = dev.process_queue(q);
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]

mod chain;
mod device;
mod error;
mod mmio;
mod queue;
mod request;
mod transport;

pub mod blk;
pub mod console;
pub mod net;
pub mod rng;
pub mod spec;
pub mod storage;

pub use chain::{Buffer, Chain, MAX_CHAIN_LEN, walk as walk_chain};
pub use device::{Completion, Options, VirtioDevice, config_bytes};
pub use error::Error;
pub use mmio::{Device, MAX_QUEUES, WriteEffect};
pub use request::Request;
pub use transport::{Interrupt, MemError, Transport};
