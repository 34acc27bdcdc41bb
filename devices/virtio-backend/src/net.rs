//! virtio-net (§5.1): one receive/transmit queue pair, a MAC address and a link
//! status from the embedder, no offloads. Frames out go to an embedder
//! [`FrameSink`]; frames in are pushed by the embedder with [`Device::receive`].
//!
//! Decisions (see also the crate README):
//! - **No VIRTIO_NET_F_MRG_RXBUF.** Without offloads no frame exceeds
//!   [`MAX_FRAME`], and without mergeable buffers Linux posts receive buffers of
//!   12 + 1518 bytes ("small" mode), so one frame always fits one buffer chain.
//!   Every received frame uses exactly one chain (`num_buffers` = 1), which the
//!   library's one-chain-per-request queue serves directly; a frame never has to
//!   be spread over, or rolled back from, several chains.
//! - **No offloads, no control queue, no MTU/MQ fields**: the driver computes
//!   checksums and segments; received frames carry a zeroed header.
//! - **MTU 1500**: VIRTIO_NET_F_MTU is not offered, so a guest that raises its MTU
//!   sends longer frames, which are dropped (`tx_too_long`).
//! - **The model keeps no received frame.** [`Device::receive`] either delivers the
//!   frame at once, drops it (counted, with a reason) or hands it back
//!   ([`RxOutcome::NoBuffer`]); queueing is the embedder's (e.g. a switch's
//!   per-port bounded queues).
//!
//! Malformed input, per case (never a panic, never a loop):
//!
//! | case | what happens |
//! | --- | --- |
//! | transmit chain with fewer than 12 readable bytes (no full header) | device error ([`Error::BufferTooShort`], DEVICE_NEEDS_RESET), as QEMU's `virtio_error` |
//! | transmit chain with writable descriptors | dropped, counted (`tx_writable`) |
//! | header flags set (NEEDS_CSUM without CSUM; DATA_VALID, RSC_INFO) or `gso_type` not NONE | dropped, counted (`tx_bad_header`) |
//! | frame above [`MAX_FRAME`] / below [`ETH_HLEN`] | dropped, counted (`tx_too_long` / `tx_too_short`); a long frame is not even read |
//! | transmit while the link is down | dropped, counted (`tx_link_down`) |
//! | receive chain with fewer than 12 writable bytes | device error ([`Error::BufferTooShort`]) |
//! | receive chain too small for the frame | frame dropped, counted (`rx_buffer_too_small`); the buffer stays in the ring for a smaller frame (as QEMU does) |
//! | ring / descriptor garbage (loops, bad indices, ...) | device error, found by the queue code |
//!
//! A dropped transmit request is still completed (used length 0, as every
//! transmit request).

use crate::device::{Completion, VirtioDevice, config_bytes};
use crate::spec::device_id;
use crate::{Device, Error, Request, Transport};

/// receiveq1: buffers the device fills with received frames.
pub const RX_QUEUE: u16 = 0;
/// transmitq1: frames the driver sends.
pub const TX_QUEUE: u16 = 1;

/// VIRTIO_NET_F_MAC: `mac` in the configuration space is valid.
pub const F_MAC: u64 = 1 << 5;
/// VIRTIO_NET_F_MRG_RXBUF: mergeable receive buffers (not offered).
pub const F_MRG_RXBUF: u64 = 1 << 15;
/// VIRTIO_NET_F_STATUS: `status` in the configuration space is valid.
pub const F_STATUS: u64 = 1 << 16;

/// `status` bit: the link is up.
pub const S_LINK_UP: u16 = 1;

/// Size of `struct virtio_net_hdr` with VIRTIO_F_VERSION_1 (it includes
/// `num_buffers`).
pub const HDR_LEN: usize = 12;
/// Length of an Ethernet header (destination, source, type): the shortest frame.
pub const ETH_HLEN: usize = 14;
/// The longest frame (without FCS) either way: 1514 (MTU 1500) plus a 4-byte
/// 802.1Q tag. Linux's receive buffers without MRG_RXBUF hold exactly this.
pub const MAX_FRAME: usize = 1518;

/// Header `flags`: VIRTIO_NET_HDR_F_NEEDS_CSUM.
pub const HDR_F_NEEDS_CSUM: u8 = 1;
/// Header `gso_type`: VIRTIO_NET_HDR_GSO_NONE.
pub const HDR_GSO_NONE: u8 = 0;

/// A [`FrameSink`] cannot take a frame now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkFull;

/// Where transmitted frames go (a switch port, a physical NIC, a loopback...).
///
/// Implemented for every `FnMut(&[u8]) -> Result<(), SinkFull>`.
pub trait FrameSink {
    /// Takes one Ethernet frame (no virtio header, no FCS; [`ETH_HLEN`] to
    /// [`MAX_FRAME`] bytes) the driver transmitted.
    ///
    /// `Err(SinkFull)` applies backpressure: the request stays in the transmit
    /// ring ([`Net::tx_waiting`]) and the embedder serves [`TX_QUEUE`] again when
    /// the sink has room. A sink that rather drops (a switch port whose queue is
    /// full) returns `Ok` and counts the drop itself.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), SinkFull>;
}

impl<F: FnMut(&[u8]) -> Result<(), SinkFull>> FrameSink for F {
    fn transmit(&mut self, frame: &[u8]) -> Result<(), SinkFull> {
        self(frame)
    }
}

/// What became of a frame given to [`Device::receive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written into a receive buffer and published to the driver.
    Delivered,
    /// No receive buffer is posted: the frame is still the caller's (queue it or
    /// drop it). The driver notifies [`RX_QUEUE`] when it posts buffers
    /// ([`WriteEffect::QueueNotify`](crate::WriteEffect::QueueNotify)): deliver
    /// kept frames then.
    NoBuffer,
    /// Dropped and counted, for this reason.
    Dropped(RxDrop),
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxDrop {
    /// Shorter than [`ETH_HLEN`] or longer than [`MAX_FRAME`].
    BadLength,
    /// The next receive buffer is too small for it (the buffer stays posted).
    BufferTooSmall,
    /// The link is down ([`Device::set_link`]).
    LinkDown,
    /// The device is not live: no driver (DRIVER_OK not set) or
    /// DEVICE_NEEDS_RESET, possibly just set while serving this frame.
    NotLive,
}

/// Frame counters, kept across device resets (the embedder may clear them with
/// [`Net::clear_counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to the sink.
    pub tx_frames: u64,
    /// Bytes of those frames (without the virtio header).
    pub tx_bytes: u64,
    /// Transmit requests with a header the device did not offer (flags, GSO).
    pub tx_bad_header: u64,
    /// Transmitted frames longer than [`MAX_FRAME`].
    pub tx_too_long: u64,
    /// Transmitted frames shorter than [`ETH_HLEN`].
    pub tx_too_short: u64,
    /// Transmit requests with device-writable descriptors.
    pub tx_writable: u64,
    /// Frames transmitted while the link was down.
    pub tx_link_down: u64,
    /// Frames delivered to the driver.
    pub rx_frames: u64,
    /// Bytes of those frames (without the virtio header).
    pub rx_bytes: u64,
    /// Frames given with a length outside [`ETH_HLEN`]..=[`MAX_FRAME`].
    pub rx_bad_length: u64,
    /// Frames larger than the next receive buffer.
    pub rx_buffer_too_small: u64,
    /// Frames received while the link was down.
    pub rx_link_down: u64,
    /// Frames received while the device was not live.
    pub rx_not_live: u64,
    /// Frames handed back for want of a receive buffer (not dropped here).
    pub rx_no_buffer: u64,
}

impl Counters {
    /// Transmit requests dropped, for any reason.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_bad_header
            + self.tx_too_long
            + self.tx_too_short
            + self.tx_writable
            + self.tx_link_down
    }

    /// Received frames dropped here, for any reason (not counting
    /// [`rx_no_buffer`](Self::rx_no_buffer)).
    pub fn rx_dropped(&self) -> u64 {
        self.rx_bad_length + self.rx_buffer_too_small + self.rx_link_down + self.rx_not_live
    }
}

/// State of the one received frame being delivered (only inside
/// [`Device::receive`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rx {
    Idle,
    /// `frame[..len]` waits for a receive buffer.
    Staged(usize),
    Delivered,
    TooSmall,
}

/// A virtio network device with one queue pair (see the [module](self) docs).
///
/// Holds one frame buffer of [`MAX_FRAME`] bytes, used by a transmit request while
/// it is served and by a received frame during [`Device::receive`] (never both at
/// once).
pub struct Net<S> {
    sink: S,
    mac: [u8; 6],
    link_up: bool,
    tx_waiting: bool,
    rx: Rx,
    frame: [u8; MAX_FRAME],
    counters: Counters,
}

impl<S: FrameSink> Net<S> {
    /// A device with MAC address `mac`, link up, transmitting into `sink`.
    pub const fn new(mac: [u8; 6], sink: S) -> Self {
        Net {
            sink,
            mac,
            link_up: true,
            tx_waiting: false,
            rx: Rx::Idle,
            frame: [0; MAX_FRAME],
            counters: Counters {
                tx_frames: 0,
                tx_bytes: 0,
                tx_bad_header: 0,
                tx_too_long: 0,
                tx_too_short: 0,
                tx_writable: 0,
                tx_link_down: 0,
                rx_frames: 0,
                rx_bytes: 0,
                rx_bad_length: 0,
                rx_buffer_too_small: 0,
                rx_link_down: 0,
                rx_not_live: 0,
                rx_no_buffer: 0,
            },
        }
    }

    /// The MAC address offered to the driver.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Sets every counter to zero.
    pub fn clear_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// A transmit request waits in the ring because the sink was full: serve
    /// [`TX_QUEUE`] again when it has room.
    pub fn tx_waiting(&self) -> bool {
        self.tx_waiting
    }

    /// Serves one transmit request: checks it, hands the frame to the sink.
    fn transmit(&mut self, req: &mut Request<'_>) -> Result<Completion, Error> {
        let mut hdr = [0u8; HDR_LEN];
        // No full header: the request is garbage (QEMU: "virtio-net header
        // incorrect", the device is broken).
        req.read_exact(&mut hdr)?;
        let len = req.remaining_read() as usize;
        let c = &mut self.counters;
        let drop = if req.writable_len() != 0 {
            Some(&mut c.tx_writable)
        } else if hdr[0] != 0 || hdr[1] != HDR_GSO_NONE {
            Some(&mut c.tx_bad_header)
        } else if len > MAX_FRAME {
            Some(&mut c.tx_too_long)
        } else if len < ETH_HLEN {
            Some(&mut c.tx_too_short)
        } else if !self.link_up {
            Some(&mut c.tx_link_down)
        } else {
            None
        };
        if let Some(counter) = drop {
            *counter += 1;
            return Ok(Completion::Done);
        }
        req.read_exact(&mut self.frame[..len])?;
        if self.sink.transmit(&self.frame[..len]).is_err() {
            self.tx_waiting = true;
            return Ok(Completion::Defer);
        }
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += len as u64;
        Ok(Completion::Done)
    }

    /// Serves one receive buffer with the staged frame, if there is one.
    fn fill_rx(&mut self, req: &mut Request<'_>) -> Result<Completion, Error> {
        // A buffer that cannot even take a header is no receive buffer.
        if (req.writable_len() as usize) < HDR_LEN {
            return Err(Error::BufferTooShort);
        }
        let Rx::Staged(len) = self.rx else {
            return Ok(Completion::Defer);
        };
        if req.writable_len() as usize - HDR_LEN < len {
            // Not truncated: dropped, and the buffer stays for a smaller frame.
            self.rx = Rx::TooSmall;
            self.counters.rx_buffer_too_small += 1;
            return Ok(Completion::Defer);
        }
        let mut hdr = [0u8; HDR_LEN];
        // num_buffers = 1: one chain per frame (no MRG_RXBUF).
        hdr[10..12].copy_from_slice(&1u16.to_le_bytes());
        req.write_all(&hdr)?;
        req.write_all(&self.frame[..len])?;
        self.rx = Rx::Delivered;
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += len as u64;
        Ok(Completion::Done)
    }
}

impl<S: FrameSink> VirtioDevice for Net<S> {
    fn device_id(&self) -> u32 {
        device_id::NET
    }

    fn num_queues(&self) -> u16 {
        2
    }

    fn features(&self) -> u64 {
        F_MAC | F_STATUS
    }

    /// `struct virtio_net_config`: `mac` (6 bytes), `status` (u16); `max_virtqueue_pairs`
    /// and `mtu` are not offered (read 0).
    fn config_read(&self, offset: u32, buf: &mut [u8]) {
        let mut c = [0u8; 8];
        c[..6].copy_from_slice(&self.mac);
        let status = if self.link_up { S_LINK_UP } else { 0 };
        c[6..8].copy_from_slice(&status.to_le_bytes());
        config_bytes(&c, offset, buf);
    }

    /// Counters and the link state are the embedder's and survive a reset.
    fn reset(&mut self) {
        self.tx_waiting = false;
        self.rx = Rx::Idle;
    }

    fn queue_reset(&mut self, queue: u16) {
        if queue == TX_QUEUE {
            self.tx_waiting = false;
        }
    }

    fn process(&mut self, queue: u16, req: &mut Request<'_>) -> Result<Completion, Error> {
        match queue {
            RX_QUEUE => self.fill_rx(req),
            _ => {
                self.tx_waiting = false;
                self.transmit(req)
            }
        }
    }
}

impl<S: FrameSink, T: Transport> Device<Net<S>, T> {
    /// Delivers one received Ethernet frame (no FCS) to the driver: into the next
    /// posted receive buffer, after a zeroed 12-byte header with `num_buffers` 1.
    /// Nothing is kept: see [`RxOutcome`] for what the caller still owns.
    pub fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        let (live, link) = (self.is_live(), self.model().link_up);
        let c = &mut self.model_mut().counters;
        let drop = if !(ETH_HLEN..=MAX_FRAME).contains(&frame.len()) {
            Some((&mut c.rx_bad_length, RxDrop::BadLength))
        } else if !link {
            Some((&mut c.rx_link_down, RxDrop::LinkDown))
        } else if !live {
            Some((&mut c.rx_not_live, RxDrop::NotLive))
        } else {
            None
        };
        if let Some((counter, why)) = drop {
            *counter += 1;
            return RxOutcome::Dropped(why);
        }
        let net = self.model_mut();
        net.frame[..frame.len()].copy_from_slice(frame);
        net.rx = Rx::Staged(frame.len());
        // A device error is recorded in the device (DEVICE_NEEDS_RESET).
        let _ = self.process_queue(RX_QUEUE);
        let live = self.is_live();
        let net = self.model_mut();
        let rx = core::mem::replace(&mut net.rx, Rx::Idle);
        match rx {
            Rx::Delivered => RxOutcome::Delivered,
            Rx::TooSmall => RxOutcome::Dropped(RxDrop::BufferTooSmall),
            Rx::Staged(_) | Rx::Idle if !live => {
                net.counters.rx_not_live += 1;
                RxOutcome::Dropped(RxDrop::NotLive)
            }
            Rx::Staged(_) | Rx::Idle => {
                net.counters.rx_no_buffer += 1;
                RxOutcome::NoBuffer
            }
        }
    }

    /// Sets the link up or down. A change shows in the `status` configuration
    /// field and raises a configuration-change interrupt. While the link is down,
    /// frames are dropped both ways (counted).
    pub fn set_link(&mut self, up: bool) {
        if self.model().link_up != up {
            self.model_mut().link_up = up;
            self.config_changed();
        }
    }
}
