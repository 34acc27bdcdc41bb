//! Every layout and number shared across a trust boundary, defined once.
//!
//! - [`pack`]: the image pack the `ferry` tool writes behind the hypervisor image
//!   and the hypervisor verifies at boot (config, guest images, guest DTBs).
//! - [`hypercall`]: Ferry's hypercall numbers (SMCCC vendor-specific hypervisor
//!   service range, `HVC #0`) and return codes ([`hypercall::HypercallStatus`]).
//! - [`psci`]: PSCI function numbers and return codes ([`psci::PsciRet`]), as
//!   Ferry calls firmware, serves partitions and the partition runtime calls it.
//! - [`ioreq`]: the IOREQ record and request page through which a frontend's
//!   virtio-mmio accesses reach its backend.
//! - [`dtb`]: the flattened device-tree format, checked, and the one routine that
//!   copies a DTB without FDT_NOP tokens before it is parsed (host, config and
//!   guest DTBs alike).
//! - [`Region`] and [`MAX_CPUS`]: the address range and CPU bound the config, the
//!   host device tree and EL2 share.
//!
//! Each `#[repr(C)]` layout has a compile-time size assertion and is read and
//! written field by field in little-endian, so neither side depends on the other's
//! compiler. Documented in docs/pack.md and docs/hypercalls.md.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod crc32;
pub mod dtb;
pub mod hypercall;
pub mod ioreq;
pub mod pack;
pub mod psci;
pub mod region;

pub use region::Region;

/// The most CPUs Ferry brings up. A host device tree or a config with more is
/// refused with an error naming the count (SynQuacer has 24 cores; raise this for
/// bigger parts).
pub const MAX_CPUS: usize = 32;
