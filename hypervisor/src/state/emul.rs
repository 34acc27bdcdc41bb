//! Each partition's table of emulated MMIO regions, and the handlers behind them.
//!
//! A trapped data abort is looked up here by guest address; the handler gets an
//! access descriptor ([`MmioAccess`]: offset in the region, size, the value a store
//! writes) and answers with the value a load gets plus effects. The virtual GIC's
//! distributor and redistributors, the emulated PL011 and the virtio windows are
//! the entries (Bao's per-VM emulated-region list).

use alloc::vec::Vec;
use core::fmt;

use ferry_platform::Region;

use super::effect::{Effect, Effects};
use super::partition::{EmulatedUart, Partition};
use crate::vgic::{self, Vgic};

/// One decoded guest access to an emulated region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Offset from the region's base.
    pub offset: u64,
    /// Bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// The value a store writes (cut to `size`); `None` for a load.
    pub write: Option<u64>,
}

/// What an emulated region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// A virtio-mmio window: the route with this index in the system's routes.
    Virtio(usize),
    /// The GIC distributor.
    Gicd,
    /// The redistributors, one 128 KiB view per vCPU.
    Gicr,
    /// The emulated PL011 console.
    Pl011,
}

/// What happens to an access the syndrome does not describe (no ISV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecodable {
    /// An external abort is injected into the guest (a driver's bug, the device
    /// does not matter to the partition's survival).
    InjectAbort,
    /// The partition stops (its interrupt controller or console is unusable).
    Stop,
}

impl Device {
    /// How an undecodable access to this device is answered.
    pub fn on_undecodable(self) -> Undecodable {
        match self {
            Device::Virtio(_) => Undecodable::InjectAbort,
            Device::Gicd | Device::Gicr | Device::Pl011 => Undecodable::Stop,
        }
    }
}

/// One entry of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emulated {
    /// Where the guest sees it.
    pub window: Region,
    /// What it is.
    pub device: Device,
}

/// Why a region cannot join a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmulError {
    /// Zero size, or it runs past the end of the address space.
    Empty(Region),
    /// It shares bytes with an entry already there.
    Overlap(Emulated, Region),
}

impl fmt::Display for EmulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulError::Empty(r) => write!(
                f,
                "emulated region [{:#x}, +{:#x}) is empty or wraps",
                r.base, r.size
            ),
            EmulError::Overlap(old, r) => write!(
                f,
                "emulated region [{:#x}, +{:#x}) overlaps the {:?} at [{:#x}, +{:#x})",
                r.base, r.size, old.device, old.window.base, old.window.size
            ),
        }
    }
}

/// A partition's emulated regions, disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmulTable {
    regions: Vec<Emulated>,
}

impl EmulTable {
    /// An empty table.
    pub const fn new() -> EmulTable {
        EmulTable {
            regions: Vec::new(),
        }
    }

    /// Adds `device` at `window`; refused if the window is empty, wraps, or
    /// overlaps an entry.
    pub fn add(&mut self, window: Region, device: Device) -> Result<(), EmulError> {
        if window.size == 0 || window.base.checked_add(window.size).is_none() {
            return Err(EmulError::Empty(window));
        }
        if let Some(old) = self.regions.iter().find(|e| e.window.overlaps(&window)) {
            return Err(EmulError::Overlap(*old, window));
        }
        self.regions.push(Emulated { window, device });
        Ok(())
    }

    /// The device at guest address `ipa` and the offset into its window.
    pub fn find(&self, ipa: u64) -> Option<(Device, u64)> {
        self.regions
            .iter()
            .find(|e| e.window.contains(ipa))
            .map(|e| (e.device, ipa - e.window.base))
    }

    /// The entries, in the order they were added.
    pub fn regions(&self) -> &[Emulated] {
        &self.regions
    }
}

/// The regions every partition has: its GIC distributor at `gicd` and its
/// `vcpus` redistributor views from `gicr_base`, its PL011 window if it has one,
/// and a virtio window per `(route, window)` it is the frontend of.
pub fn partition_table(
    gicd: u64,
    gicr_base: u64,
    vcpus: usize,
    uart: Option<Region>,
    virtio: impl IntoIterator<Item = (usize, Region)>,
) -> Result<EmulTable, EmulError> {
    let mut table = EmulTable::new();
    for (route, window) in virtio {
        table.add(window, Device::Virtio(route))?;
    }
    table.add(Region::new(gicd, vgic::DIST_SIZE), Device::Gicd)?;
    table.add(
        Region::new(gicr_base, vgic::REDIST_STRIDE * vcpus as u64),
        Device::Gicr,
    )?;
    if let Some(window) = uart {
        table.add(window, Device::Pl011)?;
    }
    Ok(table)
}

/// An access by `vcpu` to the partition's emulated PL011; complete console lines
/// go to `out(text, complete)`. Returns the value a load gets.
pub fn uart(
    partition: &Partition,
    uart: &EmulatedUart,
    vcpu: usize,
    access: MmioAccess,
    out: &mut dyn FnMut(&[u8], bool),
    fx: &mut Effects,
) -> u64 {
    let (read, level) = {
        let mut device = uart.device.lock();
        let read = match access.write {
            Some(v) => {
                device.write(access.offset, access.size, v, &mut |b| {
                    partition.console_write(&[b], out)
                });
                0
            }
            None => device.read(access.offset, access.size),
        };
        (read, device.irq_level())
    };
    partition.uart_irq(uart, level, vcpu, fx);
    read
}

/// Whether a load at `offset` of `device` shows pending or active state, which
/// other cores' list registers hold (the shell collects them first).
pub fn gic_reads_lr_state(device: Device, offset: u64, access: MmioAccess) -> bool {
    match device {
        Device::Gicd => access.write.is_none() && vgic::regs::reads_lr_state(true, offset),
        Device::Gicr => {
            access.write.is_none()
                && vgic::regs::reads_lr_state(false, offset % vgic::REDIST_STRIDE)
        }
        _ => false,
    }
}

/// An access by `vcpu` of `partition` to its GIC distributor or redistributors
/// (`device`), on its locked model `gic`. Returns the value a load gets.
pub fn gic(
    partition: &Partition,
    gic: &mut Vgic,
    vcpu: usize,
    device: Device,
    access: MmioAccess,
    fx: &mut Effects,
) -> u64 {
    let MmioAccess {
        offset,
        size,
        write,
    } = access;
    let (read, update) = if device == Device::Gicd {
        vgic::regs::dist(gic, offset, size, write)
    } else {
        let target = (offset / vgic::REDIST_STRIDE) as usize;
        vgic::regs::redist(gic, target, offset % vgic::REDIST_STRIDE, size, write)
    };
    // A passthrough SPI re-routed by the guest: the physical one follows it to the
    // core of its new vCPU (acknowledge and deactivation stay on one core).
    if device == Device::Gicd && write.is_some() && (0x6100..0x7fe0).contains(&offset) {
        let intid = (offset - 0x6100) as u32 / 8 + vgic::PRIVATE;
        if gic.irq(vcpu, intid).is_some_and(|irq| irq.hw) {
            fx.push(Effect::RouteSpi {
                intid,
                partition: partition.id,
                vcpu: gic.spi_target(intid),
            });
        }
    }
    partition.update_vcpus(update, vcpu, fx);
    read
}
