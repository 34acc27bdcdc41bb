//! Log lines the state layer asks for, as typed values: tests check what happened
//! by value, and the text is written in one place ([`Shown`]).

use core::fmt;

use ferry_abi::hypercall::BACKEND_START_MS;

use super::system::System;
use crate::esr;
use crate::policy::StopKind;

/// Why a partition stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// PSCI SYSTEM_OFF.
    SystemOff,
    /// PSCI SYSTEM_RESET.
    SystemReset,
    /// A stage-2 abort outside its memory and devices.
    Stage2Abort {
        /// The faulting guest address, if it can be known.
        ipa: Option<u64>,
        /// ESR_EL2.
        esr: u64,
        /// The guest PC.
        pc: u64,
    },
    /// An access to the GIC or the console the syndrome does not describe.
    Undecodable {
        /// The guest address.
        ipa: u64,
        /// ESR_EL2.
        esr: u64,
        /// The guest PC.
        pc: u64,
    },
    /// An exception class Ferry does not handle.
    UnhandledClass {
        /// ESR_EL2.
        esr: u64,
        /// The guest PC.
        pc: u64,
    },
    /// Ferry stopped a backend that restarts on failure because one of its
    /// devices failed (a missed deadline, garbage, ...: logged before).
    DeviceFailed {
        /// Index into the system's routes.
        route: usize,
    },
    /// An SError from the guest.
    SError {
        /// ESR_EL2.
        esr: u64,
        /// The guest PC.
        pc: u64,
    },
}

/// Why a virtio device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Its backend has no request page.
    NoRequestPage,
    /// Its backend partition stopped.
    BackendStopped,
    /// Its backend stopped while an access waited.
    StoppedWhileWaiting,
    /// No IOREQ slot for this device and vCPU.
    NoSlot,
    /// The backend did not announce BACKEND_READY within its start-up allowance.
    NotStarted,
    /// The backend missed the deadline of an access.
    Deadline {
        /// The register offset.
        offset: u64,
        /// A write (else a read).
        write: bool,
        /// The deadline.
        ms: u32,
    },
    /// The backend kept its frontends waiting beyond the slow-backend budget.
    TooSlow {
        /// Waiting owed beyond the allowance, in milliseconds.
        owed_ms: u64,
        /// The budget, in milliseconds.
        budget_ms: u64,
    },
    /// The copy path refused a ring (frontend or backend).
    Copy(crate::state::copy::CopyError),
    /// A completion that names nothing pending.
    Garbage {
        /// The slot named.
        slot: usize,
        /// The sequence number given.
        seq: u64,
        /// The sequence number pending (0: none).
        waiting: u32,
    },
}

/// One log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Lines a partition triggered over its log budget were dropped.
    Suppressed {
        /// The partition.
        partition: usize,
        /// How many.
        lines: u32,
    },
    /// A partition stopped.
    Stopped {
        /// The partition.
        partition: usize,
        /// The vCPU that stopped it.
        vcpu: usize,
        /// How.
        kind: StopKind,
        /// Its stop code.
        code: u32,
        /// Why.
        reason: StopReason,
    },
    /// An access outside the partition's memory and devices, with `on-fault =
    /// "abort"`: a synchronous external abort was injected.
    AbortInjected {
        /// The partition.
        partition: usize,
        /// Its vCPU.
        vcpu: usize,
        /// What happened (the stop it would have been).
        abort: StopReason,
    },
    /// A failed backend is to be restarted (restart `nth` since the start).
    Restarting {
        /// The partition.
        partition: usize,
        /// How many restarts, this one included.
        nth: u32,
    },
    /// A failed backend had its `limit` restarts within the window: it stays
    /// stopped.
    RestartGivenUp {
        /// The partition.
        partition: usize,
        /// `restart-limit`.
        limit: u32,
        /// `restart-window-ms`.
        window_ms: u32,
    },
    /// A backend runs again from its packed image.
    Restarted {
        /// The partition.
        partition: usize,
        /// Its generation (1 after the first restart).
        generation: u32,
        /// Microseconds the reload took.
        us: u64,
    },
    /// At the end of the run, a partition that had not stopped.
    StillRunning {
        /// The partition.
        partition: usize,
    },
    /// A virtio device failed.
    DeviceFailed {
        /// Index into the system's routes.
        route: usize,
        /// Why.
        why: FailReason,
    },
    /// IOREQ_COMPLETE for a slot that is none of the backend's devices'.
    ForeignSlot {
        /// The backend.
        backend: usize,
        /// The slot it named.
        slot: u64,
    },
    /// A backend started serving.
    BackendServes {
        /// The backend.
        backend: usize,
        /// Milliseconds after its start.
        ms: u64,
    },
    /// CPU_ON named a vCPU the partition does not have.
    CpuOnRefused {
        /// The partition.
        partition: usize,
        /// The calling vCPU.
        vcpu: usize,
        /// The MPIDR it named.
        target: u64,
    },
    /// A vCPU switched itself off (CPU_OFF).
    VcpuOff {
        /// The partition.
        partition: usize,
        /// The vCPU.
        vcpu: usize,
    },
    /// The consoles: focus switches, dropped input, refused virtio console calls.
    Console(super::console::ConsoleEvent),
    /// A virtio access the syndrome does not describe: an abort was injected.
    VirtioUndecodable {
        /// The frontend partition.
        partition: usize,
        /// Its vCPU.
        vcpu: usize,
        /// Index into the system's routes.
        route: usize,
        /// The guest address.
        ipa: u64,
        /// ESR_EL2.
        esr: u64,
        /// The guest PC.
        pc: u64,
    },
    /// A trapped system register access or instruction that partitions do not
    /// get: UNDEFINED was injected (`sysreg`).
    SysRegUndefined {
        /// The partition.
        partition: usize,
        /// Its vCPU.
        vcpu: usize,
        /// What was made UNDEFINED.
        what: super::sysreg::Undefined,
        /// The guest PC.
        pc: u64,
    },
}

impl Event {
    /// The partition whose guest triggered this line at will (a refused call, a
    /// bad completion, an undecodable access): such lines are rate-limited per
    /// partition (`ratelimit`). `None`: a line Ferry writes at most once per cause.
    pub fn offender(&self) -> Option<usize> {
        match *self {
            Event::ForeignSlot { backend, .. } => Some(backend),
            Event::CpuOnRefused { partition, .. }
            | Event::VirtioUndecodable { partition, .. }
            | Event::SysRegUndefined { partition, .. }
            | Event::AbortInjected { partition, .. } => Some(partition),
            Event::Console(e) => e.offender(),
            Event::Stopped { .. }
            | Event::VcpuOff { .. }
            | Event::StillRunning { .. }
            | Event::DeviceFailed { .. }
            | Event::BackendServes { .. }
            | Event::Restarting { .. }
            | Event::RestartGivenUp { .. }
            | Event::Restarted { .. }
            | Event::Suppressed { .. } => None,
        }
    }

    /// The log level it is written at.
    pub fn level(&self) -> log::Level {
        match self {
            Event::Stopped {
                kind: StopKind::Fault,
                ..
            }
            | Event::DeviceFailed { .. }
            | Event::ForeignSlot { .. }
            | Event::VirtioUndecodable { .. }
            | Event::SysRegUndefined { .. }
            | Event::RestartGivenUp { .. }
            | Event::Restarting { .. }
            | Event::AbortInjected { .. }
            | Event::Suppressed { .. } => log::Level::Warn,
            Event::VcpuOff { .. } => log::Level::Debug,
            Event::Console(e) => e.level(),
            _ => log::Level::Info,
        }
    }

    /// The event with the system's names, ready to print.
    pub fn shown<'a>(&'a self, system: &'a System) -> Shown<'a> {
        Shown {
            event: self,
            system,
        }
    }
}

/// An [`Event`] with partition labels and device numbers resolved.
pub struct Shown<'a> {
    event: &'a Event,
    system: &'a System,
}

impl Shown<'_> {
    fn device_failed(
        &self,
        f: &mut fmt::Formatter<'_>,
        route: usize,
        why: FailReason,
    ) -> fmt::Result {
        let (index, fe, be) = self
            .system
            .virtio
            .get(route)
            .map_or((route, 0, 0), |r| (r.index, r.frontend, r.backend));
        write!(
            f,
            "virtio device {index} (frontend '{}', backend '{}') failed: {why}; the frontend sees DEVICE_NEEDS_RESET",
            self.label(fe),
            self.label(be)
        )
    }

    /// The lines of a backend's restart.
    fn restart_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.event {
            Event::Restarting { partition, nth } => write!(
                f,
                "partition '{}' restarts (restart {nth}): its devices come back once its frontends reset them",
                self.label(partition)
            ),
            Event::RestartGivenUp {
                partition,
                limit,
                window_ms,
            } => write!(
                f,
                "partition '{}' is not restarted: it already had {limit} restarts within {window_ms} ms (restart-limit); it stays stopped, its devices failed",
                self.label(partition)
            ),
            Event::Restarted {
                partition,
                generation,
                us,
            } => write!(
                f,
                "partition '{}' restarted from its packed image (generation {generation}, reloaded in {us} us)",
                self.label(partition)
            ),
            _ => Ok(()),
        }
    }

    /// The lines of the virtio path.
    fn virtio_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.event {
            Event::DeviceFailed { route, why } => self.device_failed(f, route, why),
            Event::ForeignSlot { backend, slot } => write!(
                f,
                "backend '{}': IOREQ_COMPLETE for slot {slot}, which is not one of its devices'",
                self.label(backend)
            ),
            Event::BackendServes { backend, ms } => write!(
                f,
                "backend '{}' serves ({ms} ms after its start)",
                self.label(backend)
            ),
            Event::VirtioUndecodable {
                partition,
                vcpu,
                route,
                ipa,
                esr,
                pc,
            } => write!(
                f,
                "partition '{}' vCPU {vcpu}: an access to virtio device {} at IPA {ipa:#x} that cannot be decoded (ESR_EL2 {esr:#x}, PC {pc:#x}): abort injected",
                self.label(partition),
                self.system.virtio.get(route).map_or(route, |r| r.index)
            ),
            _ => Ok(()),
        }
    }

    /// Lines about what a guest did (rate-limited ones and their summary).
    fn guest_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.event {
            Event::Suppressed { partition, lines } => write!(
                f,
                "partition '{}': {lines} guest-triggered log lines suppressed (at most {} a second after a burst of {})",
                self.label(partition),
                super::ratelimit::PER_SECOND,
                super::ratelimit::BURST
            ),
            Event::AbortInjected {
                partition,
                vcpu,
                abort,
            } => write!(
                f,
                "partition '{}' vCPU {vcpu}: {abort}: a synchronous external abort injected (on-fault = \"abort\")",
                self.label(partition)
            ),
            Event::CpuOnRefused {
                partition,
                vcpu,
                target,
            } => write!(
                f,
                "partition '{}' vCPU {vcpu}: CPU_ON({target:#x}) refused: it has no such vCPU",
                self.label(partition)
            ),
            _ => Ok(()),
        }
    }

    fn label(&self, partition: usize) -> &str {
        self.system
            .partitions
            .get(partition)
            .map_or("?", |p| p.label.as_str())
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StopReason::SystemOff => write!(f, "PSCI SYSTEM_OFF"),
            StopReason::SystemReset => write!(f, "PSCI SYSTEM_RESET"),
            StopReason::Stage2Abort { ipa, esr, pc } => {
                let data = esr::class(esr) == esr::ec::DATA_ABORT_LOWER;
                let what = if data { "data" } else { "instruction" };
                let access = if data && esr & (1 << 6) != 0 {
                    "write"
                } else {
                    "access"
                };
                let status = esr::abort_status_name(esr).unwrap_or("?");
                let walk = esr & (1 << 7) != 0;
                let (kind, why) = if walk {
                    (
                        "stage-2",
                        "during its own stage-1 table walk: its page tables must lie in its RAM",
                    )
                } else if status.starts_with("permission") {
                    (
                        "stage-2",
                        "that its mapping there does not permit (e.g. execute-never shared memory)",
                    )
                } else if status.starts_with("synchronous external") {
                    ("external", "that the memory system refused (a bus error)")
                } else {
                    ("stage-2", "outside its memory and devices")
                };
                match ipa {
                    Some(ipa) => write!(f, "{kind} {what} abort: {access} at IPA {ipa:#x} {why}")?,
                    None => write!(
                        f,
                        "stage-2 {what} abort: {access} at an IPA the syndrome does not give"
                    )?,
                }
                write!(f, " (ESR_EL2 {esr:#x}, PC {pc:#x}, {status})")
            }
            StopReason::Undecodable { ipa, esr, pc } => write!(
                f,
                "an access to the GIC at IPA {ipa:#x} that cannot be emulated (ESR_EL2 {esr:#x}: no syndrome; PC {pc:#x})"
            ),
            StopReason::UnhandledClass { esr, pc } => {
                let ec = esr::class(esr);
                write!(
                    f,
                    "unhandled exception class {ec:#04x} ({}), ESR_EL2 {esr:#x}, PC {pc:#x}",
                    esr::class_name(ec)
                )
            }
            StopReason::SError { esr, pc } => write!(f, "SError (ESR_EL2 {esr:#x}, PC {pc:#x})"),
            StopReason::DeviceFailed { route } => {
                write!(
                    f,
                    "a virtio device it serves failed (route {route}, see above)"
                )
            }
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FailReason::NoRequestPage => write!(f, "the backend has no request page"),
            FailReason::BackendStopped => write!(f, "the backend partition stopped"),
            FailReason::StoppedWhileWaiting => {
                write!(f, "the backend partition stopped while an access waited")
            }
            FailReason::NoSlot => write!(
                f,
                "no IOREQ slot: at most 8 devices per backend and 8 frontend vCPUs are routed"
            ),
            FailReason::NotStarted => write!(
                f,
                "the backend did not start serving (BACKEND_READY) within {BACKEND_START_MS} ms of its start"
            ),
            FailReason::Deadline { offset, write, ms } => write!(
                f,
                "the backend did not complete a {} of offset {offset:#x} within {ms} ms",
                if write { "write" } else { "read" }
            ),
            FailReason::TooSlow { owed_ms, budget_ms } => write!(
                f,
                "the backend kept the frontend waiting more than half of the time: \
                 {owed_ms} ms owed, over the budget of {budget_ms} ms"
            ),
            FailReason::Copy(e) => write!(f, "copy mode: {e}"),
            FailReason::Garbage { slot, seq, waiting } => write!(
                f,
                "a completion for slot {slot} with sequence number {seq}, but {waiting} is pending (0: none)"
            ),
        }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.event {
            Event::Stopped {
                partition,
                vcpu,
                kind,
                code,
                reason,
            } => {
                let label = self.label(partition);
                write!(
                    f,
                    "partition '{label}' stopped ({}, code {code}) by ",
                    kind.name()
                )?;
                match vcpu {
                    super::system::BY_FERRY => write!(f, "Ferry: {reason}"),
                    _ => write!(f, "vCPU {vcpu}: {reason}"),
                }
            }
            Event::Restarting { .. } | Event::RestartGivenUp { .. } | Event::Restarted { .. } => {
                self.restart_line(f)
            }
            Event::Suppressed { .. } | Event::AbortInjected { .. } | Event::CpuOnRefused { .. } => {
                self.guest_line(f)
            }
            Event::StillRunning { partition } => write!(
                f,
                "partition '{}' is still running at the end of the run",
                self.label(partition)
            ),
            Event::DeviceFailed { .. }
            | Event::ForeignSlot { .. }
            | Event::BackendServes { .. }
            | Event::VirtioUndecodable { .. } => self.virtio_line(f),
            Event::VcpuOff { partition, vcpu } => {
                write!(f, "partition '{}' vCPU {vcpu} off", self.label(partition))
            }
            Event::Console(e) => e.show(self.system, f),
            Event::SysRegUndefined {
                partition,
                vcpu,
                what,
                pc,
            } => write!(
                f,
                "partition '{}' vCPU {vcpu}: {what} at PC {pc:#x} is not available to partitions: UNDEFINED injected",
                self.label(partition)
            ),
        }
    }
}
