//! Every layout and number shared across a trust boundary, defined once.
//!
//! - [`pack`]: the image pack the `ferry` tool writes behind the hypervisor image
//!   and the hypervisor verifies at boot (config, guest images, guest DTBs).
//! - [`hypercall`]: Ferry's hypercall numbers (SMCCC vendor-specific hypervisor
//!   service range, `HVC #0`) and return codes.
//! - [`ioreq`]: the IOREQ record and request page through which a frontend's
//!   virtio-mmio accesses reach its backend.
//!
//! Each `#[repr(C)]` layout has a compile-time size assertion and is read and
//! written field by field in little-endian, so neither side depends on the other's
//! compiler. Documented in docs/pack.md and docs/hypercalls.md.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod crc32;
pub mod hypercall;
pub mod ioreq;
pub mod pack;
