//! A partition at run time: its vCPUs, virtual GIC, emulated devices, console
//! line and whether it has stopped.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use ferry_config::{FaultPolicy, GuestRegion, StopCodes};
use ferry_platform::Region;
use spin::Mutex;

use super::effect::{Effect, Effects};
use super::emul::EmulTable;
use super::ioreq::RequestPage;
use super::power::Vcpu;
use super::ratelimit::LogBudget;
use super::restart::RestartBudget;
use crate::vgic::Vgic;
use crate::vpsci::Power;
use crate::vuart::Pl011;

/// A partition's emulated PL011 console.
#[derive(Debug)]
pub struct EmulatedUart {
    /// Where the guest sees it.
    pub window: Region,
    /// Its interrupt (a level-triggered SPI of the partition's vGIC).
    pub intid: u32,
    /// The device model.
    pub device: Mutex<Pl011>,
}

/// Most bytes of one console line; a longer line is printed in pieces.
pub const CONSOLE_LINE: usize = 160;

/// Console output not yet printed (up to a newline): a partition's, or a
/// virtio console's (`hvc`).
#[derive(Debug)]
pub struct LineBuffer {
    bytes: [u8; CONSOLE_LINE],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    /// Empty.
    pub const fn new() -> LineBuffer {
        LineBuffer {
            bytes: [0; CONSOLE_LINE],
            len: 0,
        }
    }

    /// Forgets an unfinished line.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends output. Each complete line (or a full buffer) goes to
    /// `out(text, complete)`; carriage returns are dropped.
    pub fn write(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8], bool)) {
        for &b in bytes {
            if b == b'\n' || self.len == self.bytes.len() {
                out(&self.bytes[..self.len], b == b'\n');
                self.len = 0;
                if b == b'\n' {
                    continue;
                }
            }
            if b != b'\r' {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        }
    }

    /// Hands what it holds of an unfinished line (a prompt) to `out(text,
    /// false)`, leaving the line open for what follows.
    pub fn flush_partial(&mut self, out: &mut dyn FnMut(&[u8], bool)) {
        if self.len > 0 {
            out(&self.bytes[..self.len], false);
            self.len = 0;
        }
    }
}

/// What a partition is made of (see [`Partition::new`]).
pub struct PartitionParts {
    /// Index in the config (its `reg`).
    pub id: usize,
    /// Its label, for logs.
    pub label: String,
    /// VTTBR_EL2 value (VMID and stage-2 root).
    pub vttbr: u64,
    /// Guest RAM.
    pub memory: Vec<GuestRegion>,
    /// Its vCPUs.
    pub vcpus: Vec<Vcpu>,
    /// Exit codes of its stops.
    pub codes: StopCodes,
    /// Its virtual GIC.
    pub vgic: Vgic,
    /// Where it sees the GIC distributor.
    pub gicd: Region,
    /// Where its redistributor frames start: vCPU n at + n * 128 KiB.
    pub gicr_base: u64,
    /// Its emulated PL011, if its console is one.
    pub uart: Option<EmulatedUart>,
    /// Its IOREQ request page, if it is a virtio backend.
    pub ioreq: Option<RequestPage>,
    /// Its emulated MMIO regions.
    pub emulated: EmulTable,
    /// A backend's restart budget (`restart = "on-failure"`).
    pub restart: Option<RestartBudget>,
    /// `on-fault`: an access outside its memory and devices stops it or aborts.
    pub on_fault: FaultPolicy,
}

/// A partition as Ferry runs it.
#[derive(Debug)]
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
    pub ioreq: Option<RequestPage>,
    /// Its emulated MMIO regions: which device a trapped access goes to.
    pub emulated: EmulTable,
    /// Its budget of guest-triggered log lines.
    pub log_budget: LogBudget,
    /// A backend's restart budget (`restart = "on-failure"`).
    pub restart: Option<RestartBudget>,
    /// `on-fault`: an access outside its memory and devices stops it or aborts.
    pub on_fault: FaultPolicy,
    /// A restart was decided and not yet carried out (see [`super::system::System::stop`]).
    restarting: AtomicBool,
    /// How many times it has been restarted.
    generation: AtomicU32,
    stopped: AtomicBool,
    console: Mutex<LineBuffer>,
}

impl Partition {
    /// A partition from its parts, not stopped.
    pub fn new(parts: PartitionParts) -> Partition {
        Partition {
            id: parts.id,
            label: parts.label,
            vttbr: parts.vttbr,
            memory: parts.memory,
            vcpus: parts.vcpus,
            codes: parts.codes,
            vgic: Mutex::new(parts.vgic),
            gicd: parts.gicd,
            gicr_base: parts.gicr_base,
            uart: parts.uart,
            ioreq: parts.ioreq,
            emulated: parts.emulated,
            log_budget: LogBudget::new(),
            restart: parts.restart,
            on_fault: parts.on_fault,
            restarting: AtomicBool::new(false),
            generation: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
            console: Mutex::new(LineBuffer::new()),
        }
    }

    /// Whether the partition has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Marks the partition stopped; true for the first caller only.
    pub fn mark_stopped(&self) -> bool {
        !self.stopped.swap(true, Ordering::AcqRel)
    }

    /// Marks a stopped partition to be restarted (its vCPU 0's core does it).
    pub fn request_restart(&self) {
        self.restarting.store(true, Ordering::Release);
    }

    /// Whether a restart is decided and not yet carried out.
    pub fn restart_pending(&self) -> bool {
        self.restarting.load(Ordering::Acquire)
    }

    /// A restarted partition runs again: a new generation, not stopped. Returns
    /// the new generation (1 after the first restart).
    pub fn restarted(&self) -> u32 {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.restarting.store(false, Ordering::Release);
        self.stopped.store(false, Ordering::Release);
        generation
    }

    /// How many times it has been restarted.
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets an unfinished console line (a restart starts a new one).
    pub fn clear_console_line(&self) {
        self.console.lock().clear();
    }

    /// Asks the cores of the vCPUs in `mask` (bit n = vCPU n) other than `me` that
    /// are not off to look at their list registers; `me` does so on its way back
    /// to the guest (`usize::MAX`: no vCPU of this partition is the caller).
    pub fn update_vcpus(&self, mask: u64, me: usize, fx: &mut Effects) {
        let mut kick = 0;
        for (i, v) in self.vcpus.iter().enumerate() {
            if i != me && mask >> i & 1 == 1 && v.power() != Power::Off {
                kick |= 1 << i;
            }
        }
        fx.push(Effect::KickVgic {
            partition: self.id,
            vcpus: kick,
        });
    }

    /// Raises the edge interrupt `intid` (an SPI, or a private one of vCPU 0) and
    /// wakes the vCPU that takes it.
    pub fn raise(&self, intid: u32, me: usize, fx: &mut Effects) {
        let target = self.vgic.lock().raise(0, intid);
        if let Some(target) = target {
            self.update_vcpus(1 << target, me, fx);
        }
    }

    /// Sets the emulated UART's interrupt line to `level` and wakes the vCPU that
    /// takes it. Call after every access or input.
    pub fn uart_irq(&self, uart: &EmulatedUart, level: bool, me: usize, fx: &mut Effects) {
        let target = self.vgic.lock().set_level(uart.intid, level);
        if let Some(target) = target {
            self.update_vcpus(1 << target, me, fx);
        }
    }

    /// Whether `[ipa, ipa + len)` lies in the partition's RAM.
    pub fn contains_ipa(&self, ipa: u64, len: u64) -> bool {
        self.memory.iter().any(|r| {
            ipa >= r.ipa
                && ipa
                    .checked_add(len)
                    .is_some_and(|end| r.ipa.checked_add(r.size).is_some_and(|e| end <= e))
        })
    }

    /// Appends console output. Each complete line (or a full buffer) goes to
    /// `out(text, complete)`; carriage returns are dropped.
    pub fn console_write(&self, bytes: &[u8], out: &mut dyn FnMut(&[u8], bool)) {
        self.console.lock().write(bytes, out);
    }

    /// Hands what the console holds of an unfinished line (a prompt) to
    /// `out(text, false)`, leaving the line open for what follows.
    pub fn flush_partial_line(&self, out: &mut dyn FnMut(&[u8], bool)) {
        self.console.lock().flush_partial(out);
    }
}
