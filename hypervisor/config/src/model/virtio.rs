//! The virtio part of a parsed config: [`VirtioDevice`] (a child of `/virtio`)
//! and its parts.

use alloc::string::String;

use ferry_abi::Region;

/// What a virtio device's backend serves (`type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioKind {
    /// `"blk"`: a block device (virtio device ID 2).
    Blk,
    /// `"console"`: a console (virtio device ID 3).
    Console,
    /// `"rng"`: an entropy source (virtio device ID 4).
    Rng,
    /// `"net"`: a network device (virtio device ID 1), a port of its backend's
    /// switch in its `segment`.
    Net,
}

impl VirtioKind {
    /// The value as written in the config.
    pub const fn name(self) -> &'static str {
        match self {
            VirtioKind::Blk => "blk",
            VirtioKind::Console => "console",
            VirtioKind::Rng => "rng",
            VirtioKind::Net => "net",
        }
    }

    /// The virtio device ID (virtio 1.2, 5).
    pub const fn device_id(self) -> u32 {
        match self {
            VirtioKind::Blk => 2,
            VirtioKind::Console => 3,
            VirtioKind::Rng => 4,
            VirtioKind::Net => 1,
        }
    }

    /// The kind a config value names, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            VirtioKind::Blk,
            VirtioKind::Console,
            VirtioKind::Rng,
            VirtioKind::Net,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// How a virtio backend reaches the frontend's buffers (`sharing`; docs/ioreq.md,
/// "Sharing modes").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sharing {
    /// `"shared"` (the default): the frontend's shared region (`shared-region`,
    /// default its first memory region) is mapped read/write, never executable,
    /// into the backend at `shared-memory`: the backend is trusted with it.
    #[default]
    Shared,
    /// `"copy"`: the backend gets no mapping of frontend memory; Ferry copies
    /// the buffers the frontend posts through the device's `bounce` area in the
    /// backend's own memory.
    Copy,
}

impl Sharing {
    /// The value as written in the config.
    pub const fn name(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Copy => "copy",
        }
    }

    /// The mode a config value names, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        [Sharing::Shared, Sharing::Copy]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Smallest `bounce` area of a copy-mode device (64 KiB): room for the shadow
/// virtqueues and the buffers in flight.
pub const MIN_BOUNCE_SIZE: u64 = 64 * 1024;

/// The longest `deadline-ms` of a virtio device: a frontend's synchronous access
/// never waits longer for its backend.
pub const MAX_DEADLINE_MS: u32 = 10_000;

/// Default `deadline-ms` of a virtio device.
pub const DEFAULT_DEADLINE_MS: u32 = 100;

/// Size of a virtio-mmio window (`window` size).
pub const VIRTIO_WINDOW_SIZE: u64 = 0x200;

/// Most virtio devices one backend serves, and most vCPUs of a frontend: IOREQ
/// sync slot = the device's number on its backend
/// ([`VirtioDevice::backend_index`]) * 8 + vCPU, and a request page has 64.
pub const MAX_VIRTIO_PER_BACKEND: usize = ferry_abi::ioreq::MAX_DEVICES;

/// Most vCPUs of a virtio frontend (see [`MAX_VIRTIO_PER_BACKEND`]).
pub const MAX_FRONTEND_VCPUS: usize = ferry_abi::ioreq::SLOTS_PER_DEVICE;

/// One virtio device (a child of `/virtio`): a virtio-mmio window in the
/// frontend whose accesses Ferry forwards to the backend (docs/ioreq.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioDevice {
    /// `reg`: the index, 0..n-1 over all devices without gaps; orders a
    /// backend's devices.
    pub index: u32,
    /// Computed by [`parse`](crate::parse): the device's position among the
    /// devices of the same backend in `reg` order (0, 1, ...): the IOREQ
    /// `device` field, and `N` of `device@N` in the backend's guest DTB.
    pub backend_index: u32,
    /// Node path, e.g. `/virtio/device@0`.
    pub path: String,
    /// `type`.
    pub kind: VirtioKind,
    /// `frontend`, resolved from its label: the frontend partition's id.
    pub frontend: u32,
    /// `backend`, resolved from its label: the backend partition's id.
    pub backend: u32,
    /// `window`: the virtio-mmio window, a frontend guest address range (0x200 bytes).
    pub window: Region,
    /// `spi`: the device's interrupt in the frontend.
    pub spi: u32,
    /// `sharing` (default [`Sharing::Shared`]).
    pub sharing: Sharing,
    /// `shared-memory`: backend guest address where the frontend's shared region
    /// ([`Config::shared_region`](crate::Config::shared_region)) is mapped. `Some` exactly in shared mode
    /// ([`parse`](crate::parse) requires it there and refuses it in copy mode).
    pub shared_memory: Option<u64>,
    /// `shared-region` as written: the frontend guest range the backend may see
    /// (shared mode only; inside one of the frontend's memory regions). `None`:
    /// the frontend's first memory region ([`Config::shared_region`](crate::Config::shared_region) resolves it).
    pub shared_region: Option<Region>,
    /// `bounce`: the bounce area of a copy-mode device, a backend guest range
    /// inside one of the backend's memory regions. `Some` exactly in copy mode.
    pub bounce: Option<Region>,
    /// `deadline-ms` (default [`DEFAULT_DEADLINE_MS`]).
    pub deadline_ms: u32,
    /// `disk`: where a blk device's RAM disk lives in the **backend**'s guest
    /// memory (a `"blk"` device has exactly one of `disk` and `storage`; other
    /// types have neither). Ferry zeroes it and copies `disk-image` (if any) to
    /// its start at boot.
    pub disk: Option<Region>,
    /// `disk-image`: file name of a blk device's RAM disk image, packed for the
    /// backend and loaded at the start of `disk` (only with `disk`).
    pub disk_image: Option<String>,
    /// `storage`: the physical virtio-blk transport a blk device serves instead
    /// of a RAM disk (exactly one of `disk` and `storage`), passed through to
    /// the backend.
    pub storage: Option<Transport>,
    /// `read-only` (a flag, `"blk"` only): the device is offered read-only
    /// (VIRTIO_BLK_F_RO) and its writes fail.
    pub read_only: bool,
    /// `loopback;` (a `"console"` device only; default false): the test hook
    /// under which the backend echoes what the frontend transmits back into its
    /// receive queue and nothing goes through Ferry. Without it, a console's
    /// output is Ferry's labelled stream (`[<frontend>:hvc<n>]`) and its input
    /// comes from Ferry's console multiplexer (docs/config.md, "Console").
    pub loopback: bool,
    /// `mac` as written (a `"net"` device only): the device's MAC address.
    /// `None`: the default, [`default_mac`] of its `reg`
    /// ([`VirtioDevice::resolved_mac`] resolves it).
    pub mac: Option<[u8; 6]>,
    /// `segment` (a `"net"` device only, required there): the name of the
    /// switch segment of the device's port in its backend. Ports in one segment
    /// reach each other; ports in different segments never do.
    pub segment: Option<String>,
}

impl VirtioDevice {
    /// The MAC address of a `"net"` device: its `mac`, else [`default_mac`] of
    /// its `reg`. `None` for other types.
    pub fn resolved_mac(&self) -> Option<[u8; 6]> {
        (self.kind == VirtioKind::Net).then(|| self.mac.unwrap_or(default_mac(self.index)))
    }
}

/// The MAC address of a `"net"` device without `mac`: `02:46:52:59:00:NN`
/// ("FRY", locally administered, unicast) with `NN` = its `reg` (the low byte:
/// a valid config has fewer than 256 devices, at most 8 per backend on at most
/// 31 backends).
pub const fn default_mac(index: u32) -> [u8; 6] {
    [0x02, 0x46, 0x52, 0x59, 0x00, index as u8]
}

/// A physical virtio-mmio transport that a backend drives: `storage = <addr-hi
/// addr-lo spi>` of a blk device (a virtio-blk device it serves the blk device
/// from) or `net-uplink` of a backend partition (the virtio-net device of its
/// switch's uplink). [`VIRTIO_WINDOW_SIZE`] bytes at host address `address`,
/// with interrupt `spi`, in the MMIO of one of the backend's passthrough
/// devices ([`Partition::transport_device`](crate::Partition::transport_device)),
/// identity-mapped, so `address` is also its guest address in the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// Host address of the transport (0x200-aligned).
    pub address: u64,
    /// Its SPI: one of the passthrough device's `interrupts`.
    pub spi: u32,
}

/// A blk device's `storage`: the physical virtio-blk [`Transport`] it is served
/// from.
pub type Storage = Transport;

impl Transport {
    /// The transport's MMIO range: [`VIRTIO_WINDOW_SIZE`] bytes at `address`.
    pub const fn region(&self) -> Region {
        Region::new(self.address, VIRTIO_WINDOW_SIZE)
    }
}

/// A backend partition's uplink (`net-uplink` with `net-uplink-segment`): a
/// physical virtio-net device it drives as one more port of its switch, in
/// `segment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetUplink {
    /// `net-uplink = <addr-hi addr-lo spi>`: the physical virtio-mmio transport.
    pub transport: Transport,
    /// `net-uplink-segment`: the segment of the uplink's port, one that a
    /// `"net"` device of this backend uses.
    pub segment: String,
}
