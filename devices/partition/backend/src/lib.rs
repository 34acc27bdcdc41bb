//! `ferry-backend`: the reference virtio backend partition — a bare-metal EL1 program,
//! built from the portable device library `ferry-virtio-backend`, that serves the
//! virtio devices its DTB lists to frontends in other partitions (docs/ioreq.md). It
//! stands where a target system has an RTOS (e.g. Zephyr) backend.
//!
//! Everything comes from `/ferry-backend` in its guest DTB ([`node`]): the IOREQ
//! request page, how Ferry signals it (a doorbell SPI, or polling), and one
//! `device@N` per device (type, where the frontend's memory appears here, a blk
//! device's RAM disk). It then ([`run`]):
//!
//! 1. builds each device ([`devices`]): blk over its RAM disk or over the physical
//!    virtio-blk device passed through to it (`disk`, `ferry_virtio_backend::storage`),
//!    console through Ferry ([`console`]: `CONSOLE_DEVICE_WRITE`/`READ`; as a
//!    loopback with the `loopback` test hook), rng over `RNDR` (FEAT_RNG; a CPU
//!    without it gets a DeviceID-0 placeholder), net as a port of the backend's
//!    learning switch ([`net`], [`switch`]), with the physical NIC passed through
//!    to it (`net-uplink`, `uplink`) as one more port;
//!    every device reaches frontend memory through a bounds-checked [`window`];
//! 2. checks the page's magic, enables the doorbell (or the poll timer), announces
//!    BACKEND_READY;
//! 3. loops: WFI; serves every new synchronous request ([`page`]) and completes it
//!    with IOREQ_COMPLETE; drains the posted QueueNotify ring and the overflow bits;
//!    takes typed console input (the page's `console_input` bits); moves frames
//!    between the switch, the uplink NIC and the net devices; raises
//!    NOTIFY_FRONTEND for devices that used buffers or changed config.
//!
//! [`Hooks`] let a test backend (tests/guests `vbe`) inject faults or use a
//! deterministic entropy stream while reusing this loop; the product binary
//! (`src/main.rs`) uses [`Standard`]. Pure logic (DT parsing, the page protocol, the
//! window) is unit-tested on the host.
#![cfg_attr(not(test), no_std)]

pub mod console;
pub mod devices;
pub mod dma;
pub mod entropy;
pub mod net;
pub mod node;
pub mod page;
pub mod status;
pub mod switch;
pub mod window;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod disk;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod hal;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod serve;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod uplink;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use serve::{Hooks, Standard, run};
