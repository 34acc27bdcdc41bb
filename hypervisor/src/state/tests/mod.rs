//! Host tests of the state layer, on a small system built in memory: a frontend
//! partition 'fe' (2 vCPUs, a PL011, one virtio device) and a backend 'be' (1 vCPU,
//! a request page with a doorbell). The counter runs at 1 kHz: one tick = 1 ms.

mod console;
mod copypath;
mod emul;
mod hvc;
mod idregs;
mod ioreq;
mod plan;
mod power;
mod ratelimit;
mod restart;
mod stop;
mod sysreg;
mod virtio;
mod wait;

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry_abi::ioreq::{self as abi, Ioreq};
use ferry_config::{GuestRegion, StopCodes};
use ferry_platform::Region;

use super::effect::{Effect, Effects};
use super::emul::{self as emul_mod, MmioAccess};
use super::event::Event;
use super::ioreq::{PageMemory, RequestPage};
use super::partition::{EmulatedUart, Partition, PartitionParts};
use super::power::Vcpu;
use super::system::System;
use super::virtio::{Route, RouteSpec};
use crate::policy::RunPolicy;
use crate::vgic::Vgic;
use crate::vuart::Pl011;

/// Counter ticks per second in the fixtures.
pub const HZ: u64 = 1000;
/// Where the fake request page of 'be' lives.
pub const PAGE: u64 = 0x10_0000;
/// The frontend's virtio window.
pub const WINDOW: u64 = 0x0a00_0000;
/// The frontend's PL011.
pub const UART: u64 = 0x0900_0000;
/// The GIC views.
pub const GICD: u64 = 0x0800_0000;
/// Redistributors.
pub const GICR: u64 = 0x080a_0000;
/// The virtio device's frontend INTID.
pub const FE_INTID: u32 = 48;
/// The backend's doorbell INTID.
pub const DOORBELL: u32 = 49;
/// The PL011's INTID.
pub const UART_INTID: u32 = 33;
/// Deadline of the virtio device.
pub const DEADLINE_MS: u32 = 100;

/// Request pages in a map, by page base.
#[derive(Default)]
pub struct Mem {
    pages: Mutex<BTreeMap<u64, Vec<u8>>>,
}

impl Mem {
    fn with_page<R>(&self, addr: u64, f: impl FnOnce(&mut [u8], usize) -> R) -> R {
        let mut pages = self.pages.lock().unwrap();
        let page = pages
            .entry(addr & !0xfff)
            .or_insert_with(|| vec![0; abi::PAGE_SIZE]);
        f(page, (addr & 0xfff) as usize)
    }

    /// The record at `offset` of the page at `base`.
    pub fn record(&self, base: u64, offset: usize) -> Ioreq {
        self.with_page(base, |p, _| {
            let mut b = [0u8; 32];
            b.copy_from_slice(&p[offset..offset + 32]);
            Ioreq::decode(&b)
        })
    }

    /// Sync slot `slot`'s record.
    pub fn slot(&self, slot: usize) -> Ioreq {
        self.record(PAGE, abi::sync_slot_offset(slot))
    }

    /// The 32-bit word at `offset` of the page.
    pub fn word(&self, offset: usize) -> u32 {
        self.read_u32(PAGE + offset as u64)
    }

    /// Sets the posted ring's tail (the backend consumed up to it).
    pub fn set_tail(&self, tail: u32) {
        self.write_u32(PAGE + abi::POSTED_TAIL_OFFSET as u64, tail);
    }
}

impl PageMemory for Mem {
    fn read_u32(&self, addr: u64) -> u32 {
        self.with_page(addr, |p, o| {
            u32::from_le_bytes(p[o..o + 4].try_into().unwrap())
        })
    }

    fn write_u32(&self, addr: u64, value: u32) {
        self.with_page(addr, |p, o| {
            p[o..o + 4].copy_from_slice(&value.to_le_bytes())
        });
    }

    fn write_bytes(&self, addr: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.with_page(addr + i as u64, |p, o| p[o] = b);
        }
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr + i as u64;
            *b = self.with_page(a, |p, o| p[o]);
        }
    }

    fn barrier(&self) {}
}

/// How to build the fixture system.
#[derive(Clone, Copy)]
pub struct Shape {
    /// The backend rings a doorbell (else it polls).
    pub doorbell: bool,
    /// The backend has a request page.
    pub page: bool,
    /// Frontend vCPUs.
    pub fe_vcpus: usize,
    /// Partitions the exit policy waits for.
    pub wait_for: &'static [usize],
    /// The device is in copy mode with this bounce area (backend addresses).
    pub bounce: Option<Region>,
    /// The backend restarts on failure: (restart-limit, restart-window-ms).
    pub restart: Option<(u32, u32)>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            doorbell: true,
            page: true,
            fe_vcpus: 2,
            wait_for: &[0],
            bounce: None,
            restart: None,
        }
    }
}

fn vcpus(first_core: usize, n: usize) -> Vec<Vcpu> {
    (0..n)
        .map(|i| Vcpu::new(first_core + i, 0x100 + (first_core + i) as u64))
        .collect()
}

fn codes(base: u32) -> StopCodes {
    StopCodes {
        system_off: 0,
        system_reset: base + 2,
        fault: base + 10,
    }
}

/// The frontend partition (id 0).
pub fn frontend(n: usize) -> Partition {
    let spis = [(FE_INTID, false), (UART_INTID, false)];
    let window = Region::new(UART, crate::vuart::WINDOW);
    let emulated = emul_mod::partition_table(
        GICD,
        GICR,
        n,
        Some(window),
        [(0, Region::new(WINDOW, 0x200))],
    )
    .unwrap();
    Partition::new(PartitionParts {
        id: 0,
        label: "fe".into(),
        vttbr: 1 << 48,
        memory: vec![GuestRegion {
            ipa: 0x4000_0000,
            pa: 0x4000_0000,
            size: 0x100_0000,
        }],
        vcpus: vcpus(0, n),
        codes: codes(0),
        vgic: Vgic::new(n, 256, &spis),
        gicd: Region::new(GICD, 0x1_0000),
        gicr_base: GICR,
        uart: Some(EmulatedUart {
            window,
            intid: UART_INTID,
            device: spin::Mutex::new(Pl011::new()),
        }),
        ioreq: None,
        emulated,
        restart: None,
        on_fault: Default::default(),
    })
}

/// The backend partition (id 1), its page written through `mem`.
pub fn backend(shape: Shape, mem: &Mem, first_core: usize) -> Partition {
    let doorbell = shape.doorbell.then_some(DOORBELL);
    let page = shape
        .page
        .then(|| RequestPage::new(PAGE, doorbell, 0, HZ, mem));
    let spis: Vec<(u32, bool)> = doorbell.iter().map(|&d| (d, false)).collect();
    Partition::new(PartitionParts {
        id: 1,
        label: "be".into(),
        vttbr: 2 << 48,
        memory: vec![GuestRegion {
            ipa: 0x4000_0000,
            pa: 0x5000_0000,
            size: 0x100_0000,
        }],
        vcpus: vcpus(first_core, 1),
        codes: codes(20),
        vgic: Vgic::new(1, 256, &spis),
        gicd: Region::new(GICD, 0x1_0000),
        gicr_base: GICR,
        uart: None,
        ioreq: page,
        emulated: emul_mod::partition_table(GICD, GICR, 1, None, []).unwrap(),
        restart: shape.restart.map(|(limit, window_ms)| {
            crate::state::restart::RestartBudget::new(
                ferry_config::RestartPolicy { limit, window_ms },
                HZ,
            )
        }),
        on_fault: Default::default(),
    })
}

/// The fixture system: 'fe' and 'be', one virtio device from fe to be.
pub fn system(shape: Shape) -> (System, Mem) {
    let mem = Mem::default();
    let fe = frontend(shape.fe_vcpus);
    let be = backend(shape, &mem, shape.fe_vcpus);
    let mut cores = vec![None; shape.fe_vcpus + 2];
    for (v, core) in cores.iter_mut().take(shape.fe_vcpus).enumerate() {
        *core = Some((0, v));
    }
    cores[shape.fe_vcpus] = Some((1, 0));
    let route = Route::new(
        RouteSpec {
            index: 0,
            backend_index: 0,
            window: Region::new(WINDOW, 0x200),
            frontend: 0,
            backend: 1,
            fe_intid: FE_INTID,
            deadline_ms: DEADLINE_MS,
            bounce: shape.bounce,
        },
        HZ,
    );
    let system = System::new(
        vec![fe, be],
        cores,
        0,
        vec![route],
        RunPolicy::new(2, shape.wait_for),
    );
    (system, mem)
}

/// The default fixture, with every vCPU of 'fe' and 'be' on and the frontend's
/// virtio interrupt and the backend's doorbell enabled.
pub fn running() -> (System, Mem) {
    let (s, m) = system(Shape::default());
    switch_on_all(&s);
    (s, m)
}

/// Switches every vCPU on and enables the interesting interrupts.
pub fn switch_on_all(s: &System) {
    for p in &s.partitions {
        for v in &p.vcpus {
            v.request_on(0x4000_0000, 0);
            v.take_start();
        }
        let mut gic = p.vgic.lock();
        gic.enabled = true;
        for intid in [FE_INTID, DOORBELL, UART_INTID] {
            if let Some(irq) = gic.irq_mut(0, intid) {
                irq.enabled = true;
            }
        }
    }
}

/// A load of `size` bytes at `offset`.
pub fn load(offset: u64, size: u8) -> MmioAccess {
    MmioAccess {
        offset,
        size,
        write: None,
    }
}

/// A store of `value`.
pub fn store(offset: u64, size: u8, value: u64) -> MmioAccess {
    MmioAccess {
        offset,
        size,
        write: Some(value),
    }
}

/// The kick masks of `kind` ("vgic" or "stop") for `partition` in `fx`.
pub fn kicks(fx: &Effects, partition: usize, stop: bool) -> u64 {
    fx.iter()
        .map(|e| match *e {
            Effect::KickVgic {
                partition: p,
                vcpus,
            } if !stop && p == partition => vcpus,
            Effect::KickStop {
                partition: p,
                vcpus,
            } if stop && p == partition => vcpus,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The events in `fx`, shown as the log writes them.
pub fn lines(s: &System, fx: &Effects) -> Vec<String> {
    fx.events().map(|e| e.shown(s).to_string()).collect()
}

/// Whether `fx` holds `event`.
pub fn has(fx: &Effects, event: &Event) -> bool {
    fx.events().any(|e| e == event)
}
