//! A system for the state layer's virtio path, built as the host tests build
//! theirs (`hypervisor/src/state/tests/mod.rs`) but shaped by the fuzzer: a
//! frontend 'fe' (partition 0, 1 to 9 vCPUs: more than a device has sync slots)
//! and a backend 'be' (partition 1, one vCPU, a request page with or without a
//! doorbell, or none; restarted on failure or not; sequence numbers from 1 or
//! just below the 2^32 wrap), and one or two virtio devices from fe to be, each
//! in shared or copy mode. The counter runs at 1 kHz: one tick is 1 ms.
//!
//! [`Mem`] is the physical memory: pages made on first write. Ferry may read and
//! write only the request page and the two partitions' RAM; an access elsewhere
//! panics (a finding). The fuzzer, playing the guests, pokes memory directly.

use std::cell::RefCell;
use std::collections::BTreeMap;

use ferry_abi::ioreq;
use ferry_config::{GuestRegion, RestartPolicy, StopCodes};
use ferry_hypervisor::policy::RunPolicy;
use ferry_hypervisor::state::copy::RINGS_AREA;
use ferry_hypervisor::state::emul;
use ferry_hypervisor::state::ioreq::{PageMemory, RequestPage};
use ferry_hypervisor::state::partition::{Partition, PartitionParts};
use ferry_hypervisor::state::power::Vcpu;
use ferry_hypervisor::state::restart::RestartBudget;
use ferry_hypervisor::state::system::System;
use ferry_hypervisor::state::virtio::{Route, RouteSpec};
use ferry_hypervisor::vgic::Vgic;
use ferry_platform::Region;

/// Counter ticks per second.
pub const HZ: u64 = 1000;
/// The backend's request page (host physical).
pub const PAGE: u64 = 0x10_0000;
/// Where both partitions see their RAM.
pub const RAM_IPA: u64 = 0x4000_0000;
/// The frontend's RAM (host physical; identity-mapped).
pub const FE_RAM: u64 = 0x4000_0000;
/// The backend's RAM (host physical).
pub const BE_RAM: u64 = 0x5000_0000;
/// Size of each partition's RAM.
pub const RAM_SIZE: u64 = 0x100_0000;
/// The frontend's first virtio window; the second follows it.
pub const WINDOW: u64 = 0x0a00_0000;
/// Size of a virtio window.
pub const WINDOW_SIZE: u64 = 0x200;
/// The first device's frontend INTID; the second's is the next.
pub const FE_INTID: u32 = 48;
/// The backend's doorbell INTID.
pub const DOORBELL: u32 = 60;
/// The deadline of a synchronous access, in ms (= ticks).
pub const DEADLINE_MS: u32 = 100;
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;

/// Physical memory as Ferry reaches it through [`PageMemory`].
#[derive(Default)]
pub struct Mem {
    pages: RefCell<BTreeMap<u64, Box<[u8; 4096]>>>,
}

impl Mem {
    /// Whether Ferry may touch `[addr, addr + len)`: the request page or either
    /// partition's RAM.
    fn allowed(addr: u64, len: u64) -> bool {
        let end = addr.checked_add(len);
        [(PAGE, 4096), (FE_RAM, RAM_SIZE), (BE_RAM, RAM_SIZE)]
            .iter()
            .any(|&(base, size)| addr >= base && end.is_some_and(|e| e <= base + size))
    }

    fn check(addr: u64, len: u64, what: &str) {
        assert!(
            Mem::allowed(addr, len),
            "Ferry {what} [{addr:#x}, +{len:#x}): outside the request page and RAM"
        );
    }

    /// The guests' (and the test's) write: no checks.
    pub fn poke(&self, addr: u64, bytes: &[u8]) {
        let mut pages = self.pages.borrow_mut();
        for (i, &b) in bytes.iter().enumerate() {
            let a = addr.wrapping_add(i as u64);
            pages
                .entry(a & !0xfff)
                .or_insert_with(|| Box::new([0; 4096]))[(a & 0xfff) as usize] = b;
        }
    }

    /// The guests' read: no checks; unwritten memory reads as zero.
    pub fn peek(&self, addr: u64, buf: &mut [u8]) {
        let pages = self.pages.borrow();
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr.wrapping_add(i as u64);
            *b = pages
                .get(&(a & !0xfff))
                .map_or(0, |p| p[(a & 0xfff) as usize]);
        }
    }

    /// The 32-bit word at `addr`.
    pub fn word(&self, addr: u64) -> u32 {
        let mut b = [0; 4];
        self.peek(addr, &mut b);
        u32::from_le_bytes(b)
    }

    /// The record at `offset` of the request page.
    pub fn record(&self, offset: usize) -> ioreq::Ioreq {
        let mut b = [0u8; 32];
        self.peek(PAGE + offset as u64, &mut b);
        ioreq::Ioreq::decode(&b)
    }
}

impl PageMemory for Mem {
    fn read_u32(&self, addr: u64) -> u32 {
        Mem::check(addr, 4, "read");
        self.word(addr)
    }

    fn write_u32(&self, addr: u64, value: u32) {
        Mem::check(addr, 4, "wrote");
        self.poke(addr, &value.to_le_bytes());
    }

    fn write_bytes(&self, addr: u64, bytes: &[u8]) {
        Mem::check(addr, bytes.len() as u64, "wrote");
        self.poke(addr, bytes);
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        Mem::check(addr, buf.len() as u64, "read");
        self.peek(addr, buf);
    }

    fn barrier(&self) {}
}

/// The system's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Frontend vCPUs (1 to 9).
    pub fe_vcpus: usize,
    /// The backend has a request page.
    pub page: bool,
    /// The backend has a doorbell (else it polls).
    pub doorbell: bool,
    /// Each device: `Some(copy mode)`, `None` for no device (device 0 always is).
    pub devices: [Option<bool>; 2],
    /// The second device's number among the backend's devices (its sync slots):
    /// 1, or 8 for a number with no slots.
    pub second_index: usize,
    /// The backend restarts on failure: (restart-limit, restart-window-ms).
    pub restart: Option<(u32, u32)>,
    /// Every sync slot's first sequence number (near 2^32: the wrap).
    pub first_seq: Option<u32>,
}

impl Shape {
    /// A shape from three bytes of fuzzer input.
    pub fn from_bytes([a, b, c]: [u8; 3]) -> Shape {
        Shape {
            fe_vcpus: usize::from(a % 9) + 1,
            page: a & 0x10 == 0 || a & 0x20 == 0,
            doorbell: a & 0x40 == 0,
            devices: [Some(b & 1 != 0), (b & 2 != 0).then_some(b & 4 != 0)],
            second_index: if b & 0x18 == 0x18 { 8 } else { 1 },
            restart: (c & 1 != 0).then_some((u32::from(c >> 1 & 3), u32::from(c >> 3) * 100)),
            first_seq: (c & 0x80 != 0).then_some(u32::MAX - 2),
        }
    }
}

fn codes(base: u32) -> StopCodes {
    StopCodes {
        system_off: 0,
        system_reset: base + 2,
        fault: base + 10,
    }
}

fn parts(id: usize, pa: u64, vcpus: Vec<Vcpu>, spis: &[(u32, bool)]) -> PartitionParts {
    let n = vcpus.len();
    PartitionParts {
        id,
        label: ["fe", "be"][id].into(),
        vttbr: (id as u64 + 1) << 48,
        memory: vec![GuestRegion {
            ipa: RAM_IPA,
            pa,
            size: RAM_SIZE,
        }],
        vcpus,
        codes: codes(20 * id as u32),
        vgic: Vgic::new(n, 256, spis),
        gicd: Region::new(GICD, 0x1_0000),
        gicr_base: GICR,
        uart: None,
        ioreq: None,
        emulated: emul::EmulTable::new(),
        restart: None,
        on_fault: Default::default(),
    }
}

/// The routes of `shape`.
fn routes(shape: &Shape) -> Vec<Route> {
    let bounce = Region::new(RAM_IPA + 0x80_0000, RINGS_AREA + 0x8000);
    (0..2)
        .filter_map(|i| Some((i, shape.devices[i]?)))
        .map(|(i, copy)| {
            let spec = RouteSpec {
                index: i,
                backend_index: if i == 0 { 0 } else { shape.second_index },
                window: Region::new(WINDOW + WINDOW_SIZE * i as u64, WINDOW_SIZE),
                frontend: 0,
                backend: 1,
                fe_intid: FE_INTID + i as u32,
                deadline_ms: DEADLINE_MS,
                bounce: copy
                    .then_some(Region::new(bounce.base + 0x10_0000 * i as u64, bounce.size)),
            };
            Route::new(spec, HZ)
        })
        .collect()
}

/// The system of `shape`, every vCPU on and the interesting interrupts enabled.
pub fn system(shape: &Shape, mem: &Mem) -> System {
    let routes = routes(shape);
    let n = shape.fe_vcpus;
    let windows: Vec<(usize, Region)> = routes
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r.window))
        .collect();
    let fe_spis: Vec<(u32, bool)> = routes.iter().map(|r| (r.fe_intid, false)).collect();
    let mut fe = parts(
        0,
        FE_RAM,
        (0..n).map(|c| Vcpu::new(c, c as u64)).collect(),
        &fe_spis,
    );
    fe.emulated = emul::partition_table(GICD, GICR, n, None, windows).expect("no overlaps");
    let doorbell = shape.doorbell.then_some(DOORBELL);
    let be_spis: Vec<(u32, bool)> = doorbell.iter().map(|&d| (d, false)).collect();
    let mut be = parts(1, BE_RAM, vec![Vcpu::new(n, n as u64)], &be_spis);
    be.ioreq = shape
        .page
        .then(|| RequestPage::new(PAGE, doorbell, 0, HZ, mem));
    if let (Some(page), Some(first)) = (&be.ioreq, shape.first_seq) {
        page.start_seqs_at(first);
    }
    be.restart = shape
        .restart
        .map(|(limit, window_ms)| RestartBudget::new(RestartPolicy { limit, window_ms }, HZ));
    be.emulated = emul::partition_table(GICD, GICR, 1, None, []).expect("no overlaps");
    let mut cores = vec![None; n + 1];
    for (v, core) in cores.iter_mut().take(n).enumerate() {
        *core = Some((0, v));
    }
    cores[n] = Some((1, 0));
    let partitions = vec![Partition::new(fe), Partition::new(be)];
    let s = System::new(partitions, cores, 0, routes, RunPolicy::new(2, &[0]));
    for p in &s.partitions {
        for v in &p.vcpus {
            v.request_on(RAM_IPA, 0);
            v.take_start();
        }
        let mut gic = p.vgic.lock();
        gic.enabled = true;
        for s in gic.spis.iter_mut() {
            s.irq.enabled = true;
        }
    }
    s
}
