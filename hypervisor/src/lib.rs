//! Ferry: a static partitioning hypervisor for aarch64 that ferries virtio between
//! partitions.
//!
//! Principles, in order:
//! 1. **Static.** One device tree describes the system; nothing is created or
//!    scheduled at run time. One vCPU per physical core, no scheduler.
//! 2. **Small and checked.** Ferry re-validates everything it is given (host device
//!    tree, config, guest accesses, backend answers) and refuses with a message that
//!    names the cause. Decisions live in plain Rust that is tested on the host;
//!    `unsafe` is confined to register and memory access, each with a `SAFETY:` line.
//! 3. **Never hang, never lose the reason.** Every failure ends in a log line that
//!    says why and, in a test run, a distinct exit code ([`exit::ExitCode`]).
//! 4. **Memory first.** The EL2 MMU and caches are on before any lock or atomic
//!    read-modify-write is used.
//!
//! Two layers (hypervisor/README.md): [`state`], the run-time state and every
//! decision on it, plain Rust tested on the host, returning effects; and the shell
//! (target only) that touches the hardware and applies them: `trap` and `fatal`
//! (exceptions at EL2), `guest_trap` (a guest's synchronous exceptions),
//! `sysreg_trap`, `inject` and `guest_view` (trapped system registers, exceptions
//! injected into guests, what a partition sees of its core), `irq` and `sgi`
//! (interrupts), `vcpu` (each core's vCPU loop), `apply`, `current`, `pages`,
//! `physgic`; boot: `start`, `smp`, `system`; `logger`, `panic`, `heap`, `cpu`,
//! `selftest`. Plain host-tested logic beside the state layer: [`vgic`], [`vuart`],
//! [`console_mux`], [`mmio`], [`esr`], [`sysregs`], [`stage2`], [`vpsci`],
//! [`policy`], [`exit`], [`el2map`].
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console_mux;
pub mod el2map;
pub mod esr;
pub mod exit;
pub mod mmio;
pub mod policy;
pub mod stage2;
pub mod state;
pub mod sysregs;
pub mod vgic;
pub mod vpsci;
pub mod vuart;

#[cfg(target_os = "none")]
mod apply;
#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod current;
#[cfg(target_os = "none")]
mod fatal;
#[cfg(target_os = "none")]
mod guest_trap;
#[cfg(target_os = "none")]
mod guest_view;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod inject;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod loader;
#[cfg(target_os = "none")]
mod logger;
#[cfg(target_os = "none")]
mod pages;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod physgic;
#[cfg(target_os = "none")]
mod restart;
#[cfg(target_os = "none")]
mod selftest;
#[cfg(target_os = "none")]
mod sgi;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
mod sysreg_trap;
#[cfg(target_os = "none")]
mod system;
#[cfg(target_os = "none")]
mod trap;
#[cfg(target_os = "none")]
mod vcpu;
