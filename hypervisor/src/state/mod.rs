//! The EL2 core's run-time state and decisions, in plain Rust that builds and
//! tests on the host. Nothing here touches hardware: functions take the time
//! (counter values), the request pages' memory ([`ioreq::PageMemory`]) and a sink
//! for console text as arguments, and return what the hardware must do as
//! [`effect::Effects`]; the target-only shell (`apply`, `guest_trap`, `irq`,
//! `vcpu`) applies them.
//!
//! - [`system`]: the system (partitions, cores, routes, exit policy) and stops.
//! - [`partition`]: a partition: vCPUs, vGIC, console line, emulated devices.
//! - [`power`]: the vCPU power state machine and the PSCI calls.
//! - [`emul`]: the table of emulated MMIO regions and the GIC and PL011 handlers.
//! - [`virtio`]: the virtio path: forwarding, completions, device failure.
//! - [`ioreq`]: a backend's request page and its slot bookkeeping.
//! - [`wait`]: a frontend vCPU's synchronous access while its backend answers.
//! - [`console`]: where typed console input goes.
//! - [`hvc`]: virtio consoles served through Ferry (CONSOLE_DEVICE_WRITE/READ).
//! - [`effect`], [`event`]: what the shell does, and the log lines it writes.
//! - [`ratelimit`]: each partition's budget of log lines its guest can trigger.
//! - [`restart`]: a backend's restart budget.
//! - [`sysreg`], [`idregs`]: trapped system register accesses and what the ID
//!   registers advertise to partitions.
#![forbid(unsafe_code)]

pub mod console;
pub mod copy;
pub mod copypath;
pub mod effect;
pub mod emul;
pub mod event;
pub mod hvc;
pub mod idregs;
pub mod ioreq;
pub mod partition;
pub mod plan;
pub mod power;
pub mod ratelimit;
pub mod restart;
pub mod sysreg;
pub mod system;
pub mod virtio;
pub mod wait;

#[cfg(test)]
mod tests;
