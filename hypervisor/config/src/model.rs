//! What a parsed config holds ([`Config`] and its parts).

use alloc::string::String;
use alloc::vec::Vec;

use ferry_abi::Region;

use crate::MAX_GUEST_DTB;

mod virtio;

pub use virtio::{
    DEFAULT_DEADLINE_MS, MAX_DEADLINE_MS, MAX_FRONTEND_VCPUS, MAX_VIRTIO_PER_BACKEND,
    MIN_BOUNCE_SIZE, NetUplink, Sharing, Storage, Transport, VIRTIO_WINDOW_SIZE, VirtioDevice,
    VirtioKind, default_mac,
};

/// A whole system config: the machine, Ferry's own memory, the partitions and
/// how a test run ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Root `model` (empty when absent).
    pub model: String,
    /// `/platform`: what the config assumes about the machine.
    pub platform: Platform,
    /// `/hypervisor`: Ferry's own RAM.
    pub hypervisor: Hypervisor,
    /// The children of `/partitions`, in device-tree order (not sorted by id).
    pub partitions: Vec<Partition>,
    /// `/exit-policy`, if present.
    pub exit: Option<ExitPolicy>,
    /// The children of `/virtio`, in device-tree order (empty without `/virtio`).
    pub virtio: Vec<VirtioDevice>,
}

impl Config {
    /// The partition whose `reg` (id) is `id`.
    pub fn partition(&self, id: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.id == id)
    }

    /// The virtio devices partition `backend` serves, in index order (which is
    /// [`VirtioDevice::backend_index`] order: 0, 1, ...).
    pub fn backend_devices(&self, backend: u32) -> Vec<&VirtioDevice> {
        let mut v: Vec<&VirtioDevice> = self
            .virtio
            .iter()
            .filter(|d| d.backend == backend)
            .collect();
        v.sort_by_key(|d| (d.backend_index, d.index));
        v
    }

    /// The virtio device partition `backend` serves as its device number
    /// `backend_index` (the IOREQ `device` field), if any.
    pub fn backend_device(&self, backend: u32, backend_index: u32) -> Option<&VirtioDevice> {
        self.virtio
            .iter()
            .find(|d| d.backend == backend && d.backend_index == backend_index)
    }

    /// The virtio devices partition `frontend` uses, in index order.
    pub fn frontend_devices(&self, frontend: u32) -> Vec<&VirtioDevice> {
        let mut v: Vec<&VirtioDevice> = self
            .virtio
            .iter()
            .filter(|d| d.frontend == frontend)
            .collect();
        v.sort_by_key(|d| d.index);
        v
    }

    /// The frontend guest range shared-mode device `d` shows its backend (at its
    /// `shared-memory`): its `shared-region`, else the frontend's first memory
    /// region. `None` in copy mode (the backend sees no frontend memory) or when
    /// the frontend has no memory region.
    pub fn shared_region(&self, d: &VirtioDevice) -> Option<Region> {
        if d.sharing != Sharing::Shared {
            return None;
        }
        d.shared_region.or_else(|| {
            self.partition(d.frontend)
                .and_then(|fe| fe.memory.first())
                .map(GuestRegion::guest)
        })
    }

    /// The passthrough device of `d`'s backend whose MMIO (`reg`) holds `d`'s
    /// `storage` transport, if `d` has one and such a device exists.
    pub fn storage_device(&self, d: &VirtioDevice) -> Option<&Device> {
        self.partition(d.backend)?.transport_device(d.storage?)
    }

    /// The switch segments of backend `backend`: the `segment` names of the
    /// `"net"` devices it serves, each once, in order of first appearance in
    /// [`Config::backend_devices`] order. A segment's position here is its id
    /// in the backend's guest DT (`segment`, `net-uplink-segment`).
    pub fn backend_segments(&self, backend: u32) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for d in self.backend_devices(backend) {
            if let (VirtioKind::Net, Some(s)) = (d.kind, d.segment.as_deref())
                && !v.contains(&s)
            {
                v.push(s);
            }
        }
        v
    }

    /// The id of segment `name` on backend `backend` (its position in
    /// [`Config::backend_segments`]), if a `"net"` device of that backend is
    /// in it.
    pub fn segment_id(&self, backend: u32, name: &str) -> Option<u32> {
        let at = self
            .backend_segments(backend)
            .iter()
            .position(|s| *s == name)?;
        u32::try_from(at).ok()
    }

    /// The first partition labelled `label`.
    pub fn partition_by_label(&self, label: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.label == label)
    }
}

/// Whether `inner` lies wholly inside `outer` (neither wrapping past 2^64).
pub(crate) fn holds(outer: &Region, inner: &Region) -> bool {
    match (
        outer.base.checked_add(outer.size),
        inner.base.checked_add(inner.size),
    ) {
        (Some(oe), Some(ie)) => inner.base >= outer.base && ie <= oe && inner.size != 0,
        _ => false,
    }
}

/// `/platform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `board`: the Ferry build the config is for, e.g. `qemu-virt`.
    pub board: String,
    /// `memory`: host RAM ranges.
    pub memory: Vec<Region>,
    /// `cpus`: physical CPUs `0..cpus` (host `/cpus` order).
    pub cpus: u32,
    /// `gic-distributor`.
    pub gicd: Region,
    /// `gic-redistributors`.
    pub gicr: Region,
    /// `console`: Ferry's console UART, never passed through. A partition with
    /// `console = "pl011"` sees its emulated PL011 at this same address.
    pub console: Region,
    /// `console-spi`: the SPI of the emulated PL011 consoles (virt's UART: 1);
    /// needed when a partition has `console = "pl011"`.
    pub console_spi: Option<u32>,
}

/// `/hypervisor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hypervisor {
    /// `memory`: Ferry's image, pack and heap. No partition may touch it.
    pub memory: Region,
}

/// One guest RAM region of a partition: `size` bytes at guest address `ipa`,
/// backed by host memory at `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRegion {
    /// Guest (intermediate physical) address.
    pub ipa: u64,
    /// Host physical address.
    pub pa: u64,
    /// Size in bytes.
    pub size: u64,
}

impl GuestRegion {
    /// The guest-side range.
    pub const fn guest(&self) -> Region {
        Region::new(self.ipa, self.size)
    }

    /// The host-side range.
    pub const fn host(&self) -> Region {
        Region::new(self.pa, self.size)
    }
}

/// One property of a device node, as written in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Property name.
    pub name: String,
    /// Raw value (big-endian cells, NUL-terminated strings, ...).
    pub value: Vec<u8>,
}

/// A device-tree node below a passthrough device, copied as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Node name with unit address, e.g. `clock@0`.
    pub name: String,
    /// All its properties, in order.
    pub properties: Vec<Property>,
    /// Its child nodes, in order.
    pub children: Vec<Node>,
}

/// A passthrough device: a child of a partition's `passthrough` node. Its MMIO is
/// identity-mapped into the partition, its SPIs are routed to it, and the node is
/// copied into the guest DT (`interrupt-parent` pointing at the guest GIC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Node path in the config, e.g. `/partitions/partition@0/passthrough/serial@9040000`.
    pub path: String,
    /// Node name, e.g. `serial@9040000`.
    pub name: String,
    /// `reg`: MMIO ranges (2 + 2 cells each). Empty without `reg`.
    pub reg: Vec<Region>,
    /// SPI numbers as written in `interrupts` (INTID = spi + 32), in order.
    pub spis: Vec<u32>,
    /// Every `interrupts` specifier as written: (type, number, flags); type 0 is
    /// an SPI. [`validate`](crate::validate) refuses any other type.
    pub interrupts: Vec<[u32; 3]>,
    /// Every property of the node, in order, as written (`reg` and `interrupts` too).
    pub properties: Vec<Property>,
    /// Child nodes, copied as written.
    pub children: Vec<Node>,
}

impl Device {
    /// The value of property `name`, if the node has it.
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// Why the device is a DMA master (it reads and writes memory by itself,
    /// which stage 2 does not confine: only an SMMU would), if its node says so:
    /// a `virtio,mmio` compatible, `dma-coherent` or `iommus`.
    pub fn dma_master(&self) -> Option<&'static str> {
        let compatible = self.property("compatible").unwrap_or_default();
        if compatible.split(|&b| b == 0).any(|c| c == b"virtio,mmio") {
            Some("compatible \"virtio,mmio\": a virtio device reads and writes its driver's memory")
        } else if self.property("dma-coherent").is_some() {
            Some("it has dma-coherent")
        } else if self.property("iommus").is_some() {
            Some("it has iommus")
        } else {
            None
        }
    }

    /// Whether the config accepts the device's DMA unconfined: `dma = "unconfined"`
    /// (Ferry's property; not copied into the guest's device tree).
    pub fn dma_unconfined(&self) -> bool {
        self.property(DMA_PROPERTY) == Some(b"unconfined\0")
    }
}

/// Ferry's property of a passthrough device that accepts it as an unconfined
/// DMA master: `dma = "unconfined"`.
pub const DMA_PROPERTY: &str = "dma";

/// What an access outside a partition's memory and devices gets (`on-fault`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultPolicy {
    /// `"stop"` (the default): the partition stops (fail-stop, its `fault-code`).
    #[default]
    Stop,
    /// `"abort"`: what hardware would give: a synchronous external abort injected
    /// into the guest at the vector for the EL and state it came from, logged.
    Abort,
}

impl FaultPolicy {
    /// The policy named `name` in a config.
    pub fn from_name(name: &str) -> Option<FaultPolicy> {
        match name {
            "stop" => Some(FaultPolicy::Stop),
            "abort" => Some(FaultPolicy::Abort),
            _ => None,
        }
    }
}

/// Exit codes of a partition's stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopCodes {
    /// `system-off-code`: PSCI SYSTEM_OFF (default 0).
    pub system_off: u32,
    /// `system-reset-code`: PSCI SYSTEM_RESET (default 2).
    pub system_reset: u32,
    /// `fault-code`: a fault that stops the partition (default 10).
    pub fault: u32,
}

impl Default for StopCodes {
    fn default() -> Self {
        Self {
            system_off: 0,
            system_reset: 2,
            fault: 10,
        }
    }
}

/// A partition's console (`console`): what its guest writes to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Console {
    /// `"hypercall"` (the default): the `CONSOLE_WRITE` hypercall only.
    #[default]
    Hypercall,
    /// `"pl011"`: an emulated PL011 UART at the `/platform` `console` address with
    /// SPI `/platform` `console-spi` (the host UART is not mapped: accesses trap),
    /// besides the hypercall.
    Pl011,
}

impl Console {
    /// The value as written in the config.
    pub const fn name(self) -> &'static str {
        match self {
            Console::Hypercall => "hypercall",
            Console::Pl011 => "pl011",
        }
    }

    /// The console a config value names, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        [Console::Hypercall, Console::Pl011]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// One partition (a child of `/partitions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// `reg`: the id (0, 1, 2 ... without gaps); VMID = id + 1.
    pub id: u32,
    /// Node path, e.g. `/partitions/partition@0`.
    pub path: String,
    /// `label`: unique; used in logs and in `exit-policy`.
    pub label: String,
    /// `cpus`: physical CPUs; vCPU `i` runs on `cpus[i]`, vCPU 0 boots.
    pub cpus: Vec<u32>,
    /// `memory`: guest RAM regions, in order.
    pub memory: Vec<GuestRegion>,
    /// `image`: file name of the raw image.
    pub image: String,
    /// `load-address`: guest address the image is copied to.
    pub load_address: u64,
    /// `entry` (default: `load-address`).
    pub entry: u64,
    /// `bootargs`: the guest's `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `initrd`: file name of the initrd.
    pub initrd: Option<String>,
    /// `initrd-address` as written; [`Partition::initrd_address_for`] resolves the default.
    pub initrd_address: Option<u64>,
    /// `dtb-address` (default: the last [`MAX_GUEST_DTB`] bytes of the first region).
    pub dtb_address: u64,
    /// The children of `passthrough`, in order.
    pub devices: Vec<Device>,
    /// `console` (default [`Console::Hypercall`]).
    pub console: Console,
    /// Exit codes of its stops.
    pub codes: StopCodes,
    /// `on-fault`: what an access outside its memory and devices gets.
    pub on_fault: FaultPolicy,
    /// `ioreq-page` with `ioreq-spi` or `ioreq-poll-ms`: set on a virtio backend
    /// partition.
    pub ioreq: Option<IoreqPage>,
    /// `net-uplink` with `net-uplink-segment` (a backend only): the physical
    /// virtio-net device its switch uses as the uplink of one segment.
    pub net_uplink: Option<NetUplink>,
}

impl Partition {
    /// The passthrough device whose MMIO (`reg`) holds transport `t`, if any.
    pub fn transport_device(&self, t: Transport) -> Option<&Device> {
        let r = t.region();
        self.devices
            .iter()
            .find(|dev| dev.reg.iter().any(|m| holds(m, &r)))
    }

    /// The host address backing guest address `ipa`, if a region holds it.
    pub fn ipa_to_pa(&self, ipa: u64) -> Option<u64> {
        self.memory
            .iter()
            .find(|r| r.guest().contains(ipa))
            .map(|r| r.pa.wrapping_add(ipa - r.ipa))
    }

    /// Whether `[ipa, ipa + len)` lies inside one guest region (`len == 0`:
    /// whether `ipa` does). A range spanning two adjacent regions is not.
    pub fn contains_ipa(&self, ipa: u64, len: u64) -> bool {
        let Some(end) = ipa.checked_add(len.max(1)) else {
            return false;
        };
        self.memory
            .iter()
            .any(|r| ipa >= r.ipa && r.ipa.checked_add(r.size).is_some_and(|e| end <= e))
    }

    /// Where an initrd of `initrd_size` bytes goes: `initrd-address` if set, else
    /// just below the guest DTB, 4 KiB-aligned down (0 if it does not fit below).
    pub fn initrd_address_for(&self, initrd_size: u64) -> u64 {
        self.initrd_address
            .unwrap_or_else(|| self.dtb_address.saturating_sub(initrd_size) & !0xfff)
    }

    /// The guest range reserved for its guest DTB: [`MAX_GUEST_DTB`] bytes at
    /// `dtb-address`.
    pub const fn dtb_region(&self) -> Region {
        Region::new(self.dtb_address, MAX_GUEST_DTB)
    }

    /// The default `dtb-address` for guest regions `memory`: the last
    /// [`MAX_GUEST_DTB`] bytes of the first region (0 without regions).
    pub fn default_dtb_address(memory: &[GuestRegion]) -> u64 {
        memory.first().map_or(0, |r| {
            r.ipa.saturating_add(r.size).saturating_sub(MAX_GUEST_DTB)
        })
    }
}

/// `/exit-policy`: how a test run ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitPolicy {
    /// `wait-for`, resolved from labels to partition ids, in order.
    pub wait_for: Vec<u32>,
    /// `watchdog-ms`: end the run with code 7 after this long.
    pub watchdog_ms: Option<u32>,
}

/// How a backend learns of a new request on its IOREQ page: exactly one of
/// `ioreq-spi` and `ioreq-poll-ms` of its partition node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoreqSignal {
    /// `ioreq-spi = <spi>`: Ferry raises this virtual SPI (the doorbell, edge)
    /// in the backend for each new request.
    Spi(u32),
    /// `ioreq-poll-ms = <interval_ms>`: Ferry raises no doorbell; the backend
    /// polls its request page every `interval_ms` milliseconds
    /// ([`MIN_IOREQ_POLL_MS`]..=[`MAX_IOREQ_POLL_MS`]).
    Poll {
        /// The polling interval in milliseconds.
        interval_ms: u32,
    },
}

/// Smallest `ioreq-poll-ms`.
pub const MIN_IOREQ_POLL_MS: u32 = 1;

/// Largest `ioreq-poll-ms`.
pub const MAX_IOREQ_POLL_MS: u32 = 1000;

/// A backend partition's IOREQ request page (docs/ioreq.md): `ioreq-page` and
/// `ioreq-spi` or `ioreq-poll-ms` of its partition node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoreqPage {
    /// `ioreq-page`: guest address (in the backend) of the 4 KiB request page.
    pub page: u64,
    /// `ioreq-spi` or `ioreq-poll-ms`: how the backend learns of a new request.
    pub signal: IoreqSignal,
    /// `ioreq-first-seq` (a test hook, default 1): the sequence number each sync
    /// slot starts at, so that a scenario can cross the wrap at 2^32.
    pub first_seq: u32,
    /// `restart = "on-failure"` (else `None`): the backend is restarted when it
    /// fails, within `restart-limit` restarts per `restart-window-ms`.
    pub restart: Option<RestartPolicy>,
}

/// A backend's restart policy (`restart = "on-failure"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// `restart-limit` (default [`DEFAULT_RESTART_LIMIT`]): at most this many
    /// restarts within the window; one more failure leaves it stopped.
    pub limit: u32,
    /// `restart-window-ms` (default [`DEFAULT_RESTART_WINDOW_MS`]).
    pub window_ms: u32,
}

/// Default `restart-limit`.
pub const DEFAULT_RESTART_LIMIT: u32 = 3;
/// Default `restart-window-ms`.
pub const DEFAULT_RESTART_WINDOW_MS: u32 = 60_000;

impl IoreqPage {
    /// The guest range of the request page.
    pub const fn region(&self) -> Region {
        Region::new(self.page, crate::PAGE_SIZE)
    }

    /// The doorbell SPI (`ioreq-spi`), or `None` for a polling backend.
    pub const fn spi(&self) -> Option<u32> {
        match self.signal {
            IoreqSignal::Spi(spi) => Some(spi),
            IoreqSignal::Poll { .. } => None,
        }
    }

    /// The polling interval in ms (`ioreq-poll-ms`), or `None` for a backend
    /// signalled by its doorbell SPI.
    pub const fn poll_ms(&self) -> Option<u32> {
        match self.signal {
            IoreqSignal::Spi(_) => None,
            IoreqSignal::Poll { interval_ms } => Some(interval_ms),
        }
    }
}
