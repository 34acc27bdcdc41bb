//! Partitions at run time: their vCPUs' power states, stage-2 root, console line,
//! and what happens when one stops.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use ferry_config::{GuestRegion, StopCodes};
use ferry_platform::Region;
use spin::{Mutex, Once};

use crate::vgic::Vgic;
use crate::vuart::Pl011;

/// A partition's emulated PL011 console.
pub struct EmulatedUart {
    /// Where the guest sees it.
    pub window: Region,
    /// Its interrupt (a level-triggered SPI of the partition's vGIC).
    pub intid: u32,
    /// The device model.
    pub device: Mutex<Pl011>,
}

use crate::policy::{RunPolicy, StopKind};
use crate::vpsci::Power;
use crate::{exit, irq, vcpu};

/// One vCPU: the physical core it runs on and its PSCI power state.
pub struct Vcpu {
    /// Ferry's logical index of the physical core it runs on.
    pub core: usize,
    /// The MPIDR of the physical core it runs on (for SGIs).
    pub core_mpidr: u64,
    state: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
}

impl Vcpu {
    /// A vCPU on core `core` (logical index) with `core_mpidr`, off.
    pub fn new(core: usize, core_mpidr: u64) -> Vcpu {
        Vcpu {
            core,
            core_mpidr,
            state: AtomicU8::new(Power::Off as u8),
            entry: AtomicU64::new(0),
            context: AtomicU64::new(0),
        }
    }

    /// The power state.
    pub fn power(&self) -> Power {
        match self.state.load(Ordering::Acquire) {
            s if s == Power::On as u8 => Power::On,
            s if s == Power::OnPending as u8 => Power::OnPending,
            _ => Power::Off,
        }
    }

    /// Off -> OnPending with the entry point and x0; false if it was not off.
    pub fn request_on(&self, entry: u64, context: u64) -> bool {
        // Entry and context are published before the state that makes them valid.
        self.entry.store(entry, Ordering::Relaxed);
        self.context.store(context, Ordering::Relaxed);
        self.state
            .compare_exchange(
                Power::Off as u8,
                Power::OnPending as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// OnPending -> On: returns (entry, x0) for the core to start the vCPU with.
    pub fn take_start(&self) -> Option<(u64, u64)> {
        self.state
            .compare_exchange(
                Power::OnPending as u8,
                Power::On as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()
            .map(|_| {
                (
                    self.entry.load(Ordering::Relaxed),
                    self.context.load(Ordering::Relaxed),
                )
            })
    }

    /// On -> Off (PSCI CPU_OFF).
    pub fn set_off(&self) {
        self.state.store(Power::Off as u8, Ordering::Release);
    }
}

/// A partition as Ferry runs it.
pub struct Partition {
    /// Index in the config (its `reg`).
    pub id: usize,
    /// Its label, for logs.
    pub label: String,
    /// VTTBR_EL2 value (VMID and stage-2 root).
    pub vttbr: u64,
    /// Guest RAM, for checking addresses the guest hands over.
    pub memory: Vec<GuestRegion>,
    /// Its vCPUs.
    pub vcpus: Vec<Vcpu>,
    /// Exit codes of its stops.
    pub codes: StopCodes,
    /// Its virtual GIC.
    pub vgic: Mutex<Vgic>,
    /// Where it sees the GIC distributor (emulated).
    pub gicd: Region,
    /// Where its redistributor frames start (emulated): vCPU n at + n * 128 KiB.
    pub gicr_base: u64,
    /// Its emulated PL011, if its console is one.
    pub uart: Option<EmulatedUart>,
    /// Its IOREQ request page, if it is a virtio backend.
    pub ioreq: Option<crate::virtio::RequestPage>,
    stopped: AtomicBool,
    console: Mutex<ConsoleLine>,
}

/// The partition's console output not yet printed (up to a newline).
struct ConsoleLine {
    bytes: [u8; 160],
    len: usize,
}

impl Partition {
    /// A partition, not yet stopped.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        label: String,
        vttbr: u64,
        memory: Vec<GuestRegion>,
        vcpus: Vec<Vcpu>,
        codes: StopCodes,
        gic: (Vgic, Region, u64),
        uart: Option<EmulatedUart>,
        ioreq: Option<crate::virtio::RequestPage>,
    ) -> Partition {
        Partition {
            id,
            label,
            vttbr,
            memory,
            vcpus,
            codes,
            vgic: Mutex::new(gic.0),
            gicd: gic.1,
            gicr_base: gic.2,
            uart,
            ioreq,
            stopped: AtomicBool::new(false),
            console: Mutex::new(ConsoleLine {
                bytes: [0; 160],
                len: 0,
            }),
        }
    }

    /// Whether the partition has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Makes the cores of the vCPUs in `mask` (bit n = vCPU n) other than `me` look
    /// at their list registers; `me` does so on its way back to the guest.
    pub fn update_vcpus(&self, mask: u64, me: usize) {
        for (i, v) in self.vcpus.iter().enumerate() {
            if i != me && mask >> i & 1 == 1 && v.power() != Power::Off {
                irq::kick_vgic(v.core_mpidr);
            }
        }
    }

    /// Prints what the console holds of an unfinished line (a prompt), leaving the
    /// line open for what follows.
    pub fn flush_partial_line(&self) {
        let mut line = self.console.lock();
        if line.len > 0 {
            crate::logger::guest_text(self.id, &self.label, &line.bytes[..line.len], false);
            line.len = 0;
        }
    }

    /// Sets the emulated UART's interrupt line to its device's level and wakes the
    /// vCPU that takes it. Call after every access or input.
    pub fn uart_irq(&self, uart: &EmulatedUart, level: bool, me: usize) {
        let target = self.vgic.lock().set_level(uart.intid, level);
        if let Some(target) = target {
            self.update_vcpus(1 << target, me);
        }
    }

    /// Whether `[ipa, ipa + len)` lies in the partition's RAM.
    pub fn contains_ipa(&self, ipa: u64, len: u64) -> bool {
        self.memory.iter().any(|r| {
            ipa >= r.ipa
                && ipa
                    .checked_add(len)
                    .is_some_and(|end| end <= r.ipa + r.size)
        })
    }

    /// Appends console output; each complete line is printed as `[label] line`.
    pub fn console_write(&self, bytes: &[u8]) {
        let mut line = self.console.lock();
        for &b in bytes {
            if b == b'\n' || line.len == line.bytes.len() {
                crate::logger::guest_text(
                    self.id,
                    &self.label,
                    &line.bytes[..line.len],
                    b == b'\n',
                );
                line.len = 0;
                if b == b'\n' {
                    continue;
                }
            }
            if b != b'\r' {
                let at = line.len;
                line.bytes[at] = b;
                line.len += 1;
            }
        }
    }
}

/// Everything Ferry runs: the partitions, which core runs which vCPU, the policy.
pub struct System {
    /// The partitions, by id.
    pub partitions: Vec<Partition>,
    /// For each physical core: (partition, vCPU) it runs, if any.
    pub cores: Vec<Option<(usize, usize)>>,
    /// VTCR_EL2, the same for every partition.
    pub vtcr: u64,
    /// The routed virtio devices, by index.
    pub virtio: crate::virtio::Routes,
    policy: Mutex<RunPolicy>,
}

impl System {
    /// Puts the system together.
    pub fn new(
        partitions: Vec<Partition>,
        cores: Vec<Option<(usize, usize)>>,
        vtcr: u64,
        virtio: crate::virtio::Routes,
        policy: RunPolicy,
    ) -> System {
        System {
            partitions,
            cores,
            vtcr,
            virtio,
            policy: Mutex::new(policy),
        }
    }
}

/// The running system, once the primary has set it up.
pub static SYSTEM: Once<System> = Once::new();

/// The partition and vCPU the calling core runs.
pub fn current() -> Option<(&'static System, &'static Partition, usize)> {
    let system = SYSTEM.get()?;
    let (p, v) = (*system.cores.get(crate::cpu::index())?)?;
    Some((system, &system.partitions[p], v))
}

/// Stops `partition` (from one of its own vCPUs, on this core): logs why, makes its
/// other vCPUs leave the guest, applies the exit policy, and parks this core.
pub fn stop(
    system: &'static System,
    partition: &'static Partition,
    vcpu: usize,
    kind: StopKind,
    reason: core::fmt::Arguments<'_>,
) -> ! {
    if !partition.stopped.swap(true, Ordering::AcqRel) {
        let code = match kind {
            StopKind::SystemOff => partition.codes.system_off,
            StopKind::SystemReset => partition.codes.system_reset,
            StopKind::Fault => partition.codes.fault,
        };
        let level = if kind == StopKind::Fault {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        log::log!(
            level,
            "partition '{}' stopped ({}, code {code}) by vCPU {vcpu}: {reason}",
            partition.label,
            kind.name()
        );
        // Running vCPUs take the kick as an interrupt and leave the guest; vCPUs
        // waiting for CPU_ON wake from WFI and see the stop.
        for (i, other) in partition.vcpus.iter().enumerate() {
            if i != vcpu {
                irq::kick(other.core_mpidr);
            }
        }
        crate::virtio::backend_stopped(system, partition.id);
        let end = system.policy.lock().stopped(partition.id, code);
        if let Some(code) = end {
            for p in system.partitions.iter().filter(|p| !p.is_stopped()) {
                log::info!(
                    "partition '{}' is still running at the end of the run",
                    p.label
                );
            }
            exit::end_with(
                code,
                format_args!(
                    "partition '{}' stopped; the exit policy ends the run",
                    partition.label
                ),
            );
        }
    }
    vcpu::park()
}

/// The console input multiplexer and the partition input goes to.
static MUX: Mutex<(crate::console_mux::Mux, Option<usize>)> =
    Mutex::new((crate::console_mux::Mux::new(), None));

/// Whether the partition typed input goes to has room for another byte. The
/// console is read only then, so input waits in the physical UART instead of being
/// dropped when a guest reads slowly (or has its FIFO off: one byte deep).
pub fn console_input_room() -> bool {
    let Some(system) = SYSTEM.get() else {
        return false;
    };
    let focus = MUX.lock().1;
    match focus
        .and_then(|n| system.partitions.get(n))
        .and_then(|p| p.uart.as_ref())
    {
        Some(uart) => uart.device.lock().rx_space() > 0,
        // No focus yet: the first byte picks one.
        None => true,
    }
}

/// Routes bytes typed on the physical console to the focused partition's emulated
/// UART (see `console_mux`). Called by the core that polls the console.
pub fn console_input(byte: u8) {
    let Some(system) = SYSTEM.get() else { return };
    let takes = |n: usize| {
        system
            .partitions
            .get(n)
            .is_some_and(|p| p.uart.is_some() && !p.is_stopped())
    };
    let mut mux = MUX.lock();
    if mux.1.is_none() {
        mux.1 = (0..system.partitions.len()).find(|&n| takes(n));
    }
    match mux.0.feed(byte, takes) {
        crate::console_mux::Action::Deliver(b) => {
            let Some(p) = mux.1.and_then(|n| system.partitions.get(n)) else {
                return;
            };
            if let Some(uart) = &p.uart {
                let level = {
                    let mut device = uart.device.lock();
                    device.receive(b);
                    device.irq_level()
                };
                p.uart_irq(uart, level, usize::MAX);
            }
        }
        crate::console_mux::Action::Focus(n) => {
            mux.1 = Some(n);
            log::info!(
                "console: input goes to partition '{}'",
                system.partitions[n].label
            );
        }
        crate::console_mux::Action::BadEscape(_) => {
            log::info!(
                "console: Ctrl-\\ then the number of a partition with a PL011 console switches input"
            );
        }
        crate::console_mux::Action::Nothing => {}
    }
}

/// Shows unfinished console lines of partitions that take input (their prompts).
pub fn flush_partial_lines() {
    if let Some(system) = SYSTEM.get() {
        for p in system.partitions.iter().filter(|p| p.uart.is_some()) {
            p.flush_partial_line();
        }
    }
}
