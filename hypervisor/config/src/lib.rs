//! Ferry's system config: one device tree, read by the host tool and by Ferry at EL2.
//!
//! The schema is docs/config.md. Two steps, both used on both sides so that
//! `ferry check` and Ferry's boot log print the very same messages:
//!
//! 1. [`parse`] turns the config DTB into a [`Config`]. It first copies the blob
//!    without FDT_NOP tokens ([`ferry_abi::dtb::copy_without_nops`], which
//!    also validates every token), then reads it with the `fdt` crate. Structural
//!    problems (a missing node or property, malformed cells, an unknown
//!    `compatible`, node or property) are all collected and returned together.
//! 2. [`validate`] checks a parsed [`Config`] against every rule of docs/config.md
//!    "Checks" (overlaps, alignment, CPUs, devices, images, ...) and returns every
//!    problem found, in a deterministic order.
//!
//! Each problem is a [`ConfigError`] naming the node path and property.
//!
//! The crate is `no_std` + `alloc`, has no `unsafe`, and never panics on any input.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod cells;
mod error;
mod model;
mod parse;
mod tree;
mod validate;

pub use error::ConfigError;
pub use ferry_abi::Region;
pub use model::{
    Config, Console, DEFAULT_DEADLINE_MS, DEFAULT_RESTART_LIMIT, DEFAULT_RESTART_WINDOW_MS,
    DMA_PROPERTY, Device, ExitPolicy, FaultPolicy, GuestRegion, Hypervisor, IoreqPage, IoreqSignal,
    MAX_DEADLINE_MS, MAX_FRONTEND_VCPUS, MAX_IOREQ_POLL_MS, MAX_VIRTIO_PER_BACKEND,
    MIN_BOUNCE_SIZE, MIN_IOREQ_POLL_MS, NetUplink, Node, Partition, Platform, Property,
    RestartPolicy, Sharing, StopCodes, Storage, Transport, VIRTIO_WINDOW_SIZE, VirtioDevice,
    VirtioKind, default_mac,
};
pub use parse::parse;
pub use validate::{Images, validate};

/// Room reserved for a partition's generated guest DTB at its `dtb-address`
/// (64 KiB): the default `dtb-address` is the last 64 KiB of the first memory
/// region, and `ferry pack` refuses a guest DTB that does not fit.
pub const MAX_GUEST_DTB: u64 = 64 * 1024;

/// The `compatible` a config's root node must carry.
pub const COMPATIBLE: &str = "ferry,config-v1";

/// Granule of every memory region and MMIO range (4 KiB): stage 2 maps whole pages.
pub const PAGE_SIZE: u64 = 4096;

/// Largest SPI number (`interrupts = <0 N flags>`): INTID `N + 32` must stay below 1020.
pub const MAX_SPI: u32 = 987;

/// Name of the fixed clock node the guest DTB generator adds beside an emulated
/// PL011 console (its `uartclk` and `apb_pclk`).
pub const PL011_CLOCK_NODE: &str = "apb-pclk";

/// Name of the node of an emulated PL011 console at guest address `base` in the
/// generated guest DTB: `pl011@<base in hex>`.
pub fn pl011_node_name(base: u64) -> alloc::string::String {
    alloc::format!("pl011@{base:x}")
}
