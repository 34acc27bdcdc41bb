//! The uplink: a physical virtio-net device passed through to the backend (QEMU's
//! `virtio-net-device` on virt), one more port of the switch ([`crate::net`]),
//! driven with the `virtio-drivers` crate's virtio-mmio transport and split
//! virtqueues over [`FerryHal`] (DMA through `dma-ranges`).
//!
//! - **Why not `VirtIONetRaw`**: without `alloc` the crate's net support is
//!   `VirtIONetRaw` (caller-provided buffers), but it keeps its transport to
//!   itself: the link status in the configuration space (and its change) cannot
//!   be read, and it negotiates indirect descriptors and EVENT_IDX. This driver
//!   builds the same few steps on the crate's queue and transport instead (as
//!   [`crate::disk`] does): features MAC, STATUS and VERSION_1 only (no offloads,
//!   no mergeable buffers, no event index), one descriptor per frame (the
//!   virtio-net header, zeroed, then the frame).
//! - **Receive**: [`QUEUE`] buffers of [`BUF_BYTES`] (a header plus the longest
//!   frame) stay posted; each frame the device fills is handed on
//!   ([`Uplink::receive`]: into the switch as the uplink port's ingress) and its
//!   buffer posted again at once.
//! - **Transmit**: [`QUEUE`] buffers; [`Uplink::send`] copies a frame into a
//!   free one and adds it to the transmit queue, or refuses while all are with
//!   the device (the frame then waits in the switch's queue for the uplink);
//!   [`Uplink::reclaim`] takes back the ones the device used.
//! - **Interrupt**: level, acknowledged in the device ([`Uplink::ack`]) before
//!   the GIC EOI; a configuration change re-reads the link status.
//! - A device that uses a buffer it was not given is broken: the driver stops
//!   touching that queue ([`Uplink::broken`]) rather than guessing.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceType, InterruptStatus, Transport};

use crate::hal::FerryHal;
use crate::net::{DropLog, Drops, DropsLine, SwitchCell, TX_BUDGET, now_ms};
use crate::switch::{MAX_FRAME, Mac, PortId, Switch};

/// Entries of each queue, and buffers of each direction.
pub const QUEUE: usize = 16;
/// Bytes of a buffer: the 12-byte header and the longest frame, rounded up.
pub const BUF_BYTES: usize = 1536;

const RX: u16 = 0;
const TX: u16 = 1;

const _: () = assert!(BUF_BYTES >= 12 + MAX_FRAME && QUEUE <= 32);

bitflags::bitflags! {
    /// The NIC's features this driver accepts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        /// VIRTIO_NET_F_MAC.
        const MAC = 1 << 5;
        /// VIRTIO_NET_F_STATUS.
        const STATUS = 1 << 16;
        /// VIRTIO_F_VERSION_1.
        const VERSION_1 = 1 << 32;
    }
}

type Buf = [u8; BUF_BYTES];

/// The receive and transmit buffers, in `.bss` (DMA through `dma-ranges`).
struct Buffers {
    rx: [Buf; QUEUE],
    tx: [Buf; QUEUE],
}

static mut BUFFERS: Buffers = Buffers {
    rx: [[0; BUF_BYTES]; QUEUE],
    tx: [[0; BUF_BYTES]; QUEUE],
};
static BUFFERS_TAKEN: AtomicBool = AtomicBool::new(false);

/// What the NIC did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Frames received.
    pub rx: u64,
    /// Receive buffers the device returned without a whole header.
    pub rx_bad: u64,
    /// Frames transmitted (added to the transmit queue).
    pub tx: u64,
}

/// The physical NIC.
pub struct Uplink {
    transport: MmioTransport<'static>,
    rx: VirtQueue<FerryHal, QUEUE>,
    tx: VirtQueue<FerryHal, QUEUE>,
    bufs: &'static mut Buffers,
    /// Header bytes before each frame: 12 with VERSION_1, 10 for a legacy device.
    hdr: usize,
    mac: Mac,
    /// The device reports its link (VIRTIO_NET_F_STATUS).
    has_status: bool,
    link_up: bool,
    /// Receive buffer posted under each token (head descriptor).
    rx_of: [Option<u8>; QUEUE],
    /// Transmit buffer and its used length under each token.
    tx_of: [Option<(u8, u16)>; QUEUE],
    /// Bit `i`: transmit buffer `i` is free.
    tx_free: u32,
    /// Frames added since the last [`Uplink::kick`].
    tx_added: bool,
    broken: bool,
    /// What it did.
    pub stats: UplinkStats,
}

impl Uplink {
    /// Sets up the virtio-net device at `addr` (0x200 bytes of identity-mapped
    /// passthrough MMIO): features, both queues, every receive buffer posted,
    /// DRIVER_OK. An error from the second call on (one uplink per backend).
    ///
    /// # Safety
    /// `addr` must be a virtio-mmio device's registers that nothing else drives,
    /// mapped as device memory for the program's life.
    pub unsafe fn new(addr: u64) -> Result<Self, &'static str> {
        let header = NonNull::new(addr as *mut _).ok_or("address 0")?;
        // SAFETY: the caller's promise.
        let mut t = unsafe { MmioTransport::new(header, 0x200) }
            .map_err(|_| "no virtio-mmio device there (bad magic or version)")?;
        if t.device_type() != DeviceType::Network {
            return Err("the virtio-mmio device there is not a network device");
        }
        if BUFFERS_TAKEN.swap(true, Ordering::AcqRel) {
            return Err("only one uplink per backend");
        }
        let got = t.begin_init(Features::MAC | Features::STATUS | Features::VERSION_1);
        let mac = t
            .read_consistent(|| {
                let mut m = [0u8; 6];
                for (i, b) in m.iter_mut().enumerate() {
                    *b = t.read_config_space::<u8>(i)?;
                }
                Ok(m)
            })
            .map_err(|_| "its MAC is unreadable")?;
        let tx = VirtQueue::new(&mut t, TX, false, false)
            .map_err(|_| "its transmit queue is too small or in use")?;
        let rx = VirtQueue::new(&mut t, RX, false, false)
            .map_err(|_| "its receive queue is too small or in use")?;
        t.finish_init();
        let bufs = &raw mut BUFFERS;
        let mut up = Uplink {
            transport: t,
            rx,
            tx,
            // SAFETY: handed out once (the flag above); nothing else names BUFFERS.
            bufs: unsafe { &mut *bufs },
            hdr: if got.contains(Features::VERSION_1) {
                12
            } else {
                10
            },
            mac,
            has_status: got.contains(Features::STATUS),
            link_up: true,
            rx_of: [None; QUEUE],
            tx_of: [None; QUEUE],
            tx_free: (1 << QUEUE) - 1,
            tx_added: false,
            broken: false,
            stats: UplinkStats::default(),
        };
        up.read_link();
        for i in 0..QUEUE {
            up.post_rx(i);
        }
        up.transport.notify(RX);
        Ok(up)
    }

    /// The device's MAC address.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Whether the link is up (always, for a device without a status field).
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Whether the device reports its link.
    pub fn has_status(&self) -> bool {
        self.has_status
    }

    /// Whether the device used a buffer it was not given (the driver stopped).
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Re-reads the link status; returns whether it changed.
    fn read_link(&mut self) -> bool {
        if !self.has_status {
            return false;
        }
        let up = self
            .transport
            .read_config_space::<u16>(6)
            .map_or(true, |s| s & 1 != 0);
        let changed = up != self.link_up;
        self.link_up = up;
        changed
    }

    /// Acknowledges the device's interrupt (before the GIC EOI: it is level);
    /// returns whether the link status changed.
    pub fn ack(&mut self) -> bool {
        let why = self.transport.ack_interrupt();
        why.contains(InterruptStatus::DEVICE_CONFIGURATION_INTERRUPT) && self.read_link()
    }

    /// Posts receive buffer `i` (not notified).
    fn post_rx(&mut self, i: usize) {
        let buf = &mut self.bufs.rx[i][..];
        // SAFETY: the buffer is the driver's own static memory and is not touched
        // again until `receive` pops it under the token recorded here.
        match unsafe { self.rx.add(&[], &mut [buf]) } {
            Ok(token) => self.rx_of[usize::from(token) % QUEUE] = Some(i as u8),
            Err(_) => self.broken = true,
        }
    }

    /// Hands up to `max` frames the device received to `ingress` and posts their
    /// buffers again; returns whether more are waiting.
    pub fn receive(&mut self, max: usize, mut ingress: impl FnMut(&[u8])) -> bool {
        let mut n = 0;
        while !self.broken && n < max {
            let Some(token) = self.rx.peek_used() else {
                return false;
            };
            let Some(i) = self
                .rx_of
                .get_mut(usize::from(token))
                .and_then(Option::take)
            else {
                self.broken = true;
                break;
            };
            let i = usize::from(i);
            let buf = &mut self.bufs.rx[i][..];
            // SAFETY: the buffer posted under this token.
            let used = unsafe { self.rx.pop_used(token, &[], &mut [buf]) };
            match used.map(|l| l as usize) {
                Ok(len) if len >= self.hdr => {
                    self.stats.rx += 1;
                    ingress(&self.bufs.rx[i][self.hdr..len.min(BUF_BYTES)]);
                }
                Ok(_) => self.stats.rx_bad += 1,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
            self.post_rx(i);
            n += 1;
        }
        if n > 0 && self.rx.should_notify() {
            self.transport.notify(RX);
        }
        !self.broken && self.rx.can_pop()
    }

    /// Takes back the transmit buffers the device used.
    pub fn reclaim(&mut self) {
        while !self.broken {
            let Some(token) = self.tx.peek_used() else {
                return;
            };
            let Some((i, len)) = self
                .tx_of
                .get_mut(usize::from(token))
                .and_then(Option::take)
            else {
                self.broken = true;
                return;
            };
            let buf = &self.bufs.tx[usize::from(i)][..usize::from(len)];
            // SAFETY: the buffer added under this token, with its length.
            if unsafe { self.tx.pop_used(token, &[buf], &mut []) }.is_err() {
                self.broken = true;
                return;
            }
            self.tx_free |= 1 << i;
        }
    }

    /// Adds `frame` (at most [`MAX_FRAME`] bytes) to the transmit queue behind a
    /// zeroed header; `false` if no transmit buffer is free (or the device is
    /// broken). Call [`Uplink::kick`] after a batch.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        if self.broken || self.tx_free == 0 || frame.len() > MAX_FRAME {
            return false;
        }
        let i = self.tx_free.trailing_zeros() as usize;
        let len = self.hdr + frame.len();
        let buf = &mut self.bufs.tx[i];
        buf[..self.hdr].fill(0);
        buf[self.hdr..len].copy_from_slice(frame);
        let buf = &buf[..len];
        // SAFETY: the buffer is not written again until `reclaim` pops it under
        // the token recorded here.
        match unsafe { self.tx.add(&[buf], &mut []) } {
            Ok(token) => {
                self.tx_of[usize::from(token) % QUEUE] = Some((i as u8, len as u16));
                self.tx_free &= !(1 << i);
                self.tx_added = true;
                self.stats.tx += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Tells the device about frames added by [`Uplink::send`] (if any, and
    /// unless it said it needs no notification).
    pub fn kick(&mut self) {
        if core::mem::take(&mut self.tx_added) && self.tx.should_notify() {
            self.transport.notify(TX);
        }
    }
}

/// The uplink as a port of the switch: the NIC, its port, its drop log.
pub struct UplinkPort {
    /// The NIC.
    pub nic: Uplink,
    /// Its port.
    pub port: PortId,
    /// When its drops were last logged.
    pub log: DropLog,
    /// The NIC was found broken and logged.
    stopped: bool,
}

impl UplinkPort {
    /// `nic` as port `port`.
    pub fn new(nic: Uplink, port: PortId) -> Self {
        UplinkPort {
            nic,
            port,
            log: DropLog::new(),
            stopped: false,
        }
    }

    /// One round: takes back used transmit buffers, puts up to [`TX_BUDGET`]
    /// frames the NIC received into `switch` (ingress on the uplink's port),
    /// transmits what the switch queued for the port while the NIC has buffers
    /// (the rest waits there). Returns whether received frames still wait.
    pub fn service(&mut self, switch: &SwitchCell) -> bool {
        let (nic, port, now) = (&mut self.nic, self.port, now_ms());
        nic.reclaim();
        let more = switch.with(|sw| {
            let more = nic.receive(usize::from(TX_BUDGET), |frame| {
                sw.ingress(port, frame, now);
            });
            while let Some(frame) = sw.front(port) {
                if !nic.send(frame) {
                    break;
                }
                sw.pop(port);
            }
            more
        });
        nic.kick();
        more.unwrap_or(false)
    }

    /// Whether the NIC just turned out broken (once).
    pub fn newly_broken(&mut self) -> bool {
        let newly = self.nic.broken() && !self.stopped;
        self.stopped |= newly;
        newly
    }

    /// The port's drops, if a log line is due at `now_ms`.
    pub fn drops(&mut self, sw: &Switch, now_ms: u64) -> Option<DropsLine> {
        let stats = sw.stats(self.port);
        let mut drops = Drops::new(&stats, None, 0);
        drops.malformed += self.nic.stats.rx_bad;
        self.log
            .due(drops.total(), now_ms)
            .then_some(DropsLine(self.port, drops))
    }
}
