//! The backend's network: each `net` device is a port of one learning L2
//! [`Switch`], and the physical NIC passed through as `net-uplink` (if any) is
//! one more (devices/partition/README.md, "Networking").
//!
//! - **Ports**: the net devices in device-index order are ports 0, 1, ...; the
//!   uplink is the next one ([`Plan`]). Ports of one `segment` are connected both
//!   ways; ports of different segments never reach each other. Each device's
//!   MAC is a static entry on its port: a frame from another port with that
//!   source is dropped as spoofed.
//! - **The switch** lives in a `static` ([`SWITCH`], a [`SwitchCell`]: about
//!   200 KB of `.bss`), reached only through [`SwitchCell::with`], which hands
//!   out `&mut Switch` for the length of a closure and refuses (returns `None`)
//!   while one is out. Two users exist, and they never nest:
//!   1. a device's transmit sink ([`PortSink`], inside the `net::Net` model)
//!      calls [`Switch::ingress`] for each frame the frontend transmits, while
//!      the loop serves that device's transmit queue;
//!   2. the loop itself, between serving rounds: it drains each port's egress
//!      queue into its device ([`drain`]: `Device::receive`, which serves only
//!      the receive queue and never reaches the sink) and moves frames between
//!      the switch and the uplink NIC.
//!
//!   A nested call (a bug) would get `None` and its frame would be counted as
//!   lost, never a deadlock or an aliased `&mut`.
//! - **Transmit** goes in rounds: a device passes at most [`TX_BUDGET`] frames
//!   to the switch per serving round; then its sink says `SinkFull`, the rest
//!   stays in its transmit ring (`Net::tx_waiting`) and is served in the next
//!   round, after the loop delivered what the switch queued. A burst from one
//!   frontend (a TCP window) so reaches a port's 16-frame queue in slices the
//!   receiver can take, instead of overflowing it; a port that never drains
//!   still stalls nobody (its frames are dropped as `full`), and a flooding
//!   frontend gets no more of each round than any other.
//! - **Receive**: a frame stays queued in the switch until its device takes it.
//!   `RxOutcome::NoBuffer` (no receive buffer posted) blocks the port until the
//!   frontend's next QueueNotify of its receive queue ([`PortSink::rx_blocked`]);
//!   `Dropped` (device not live, buffer too small, ...) pops and counts the frame
//!   (`undelivered`). A device reset discards the port's queue and the MACs
//!   learned on it.
//! - **Drops** are logged per port ([`DropLog`]): the first
//!   [`DropLog::FIRST`] at once, then at most one line a second while they go
//!   on, in the form [`DropsLine`] prints.

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use ferry_virtio_backend::net::{Counters, FrameSink, RxOutcome, SinkFull};

use crate::node::{BackendNode, MAX_DEVICES};
use crate::switch::{BindError, Mac, Policy, PortId, PortStats, Switch};

/// The switch, behind a flag that hands it out to one user at a time.
pub struct SwitchCell {
    busy: AtomicBool,
    switch: UnsafeCell<Switch>,
}

// SAFETY: the switch is only reached through `with`, which hands out at most one
// `&mut Switch` at a time (the `busy` flag, taken with an atomic swap).
unsafe impl Sync for SwitchCell {}

impl SwitchCell {
    /// An isolated switch (every port alone), all zero bytes: a `static` of it
    /// lands in `.bss`.
    pub const fn new() -> Self {
        SwitchCell {
            busy: AtomicBool::new(false),
            switch: UnsafeCell::new(Switch::new(Policy::ISOLATED)),
        }
    }

    /// Runs `f` with the switch; `None` (and `f` not run) if it is out already.
    pub fn with<R>(&self, f: impl FnOnce(&mut Switch) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: `busy` was false and is now ours: no other reference to the
        // switch exists until we clear it below (the program aborts on panic, so
        // `f` cannot unwind past the release).
        let r = f(unsafe { &mut *self.switch.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }
}

impl Default for SwitchCell {
    fn default() -> Self {
        SwitchCell::new()
    }
}

/// The backend's switch.
pub static SWITCH: SwitchCell = SwitchCell::new();

/// Frames a port (a device or the uplink) passes to the switch per serving
/// round: half a port's queue.
pub const TX_BUDGET: u16 = (crate::switch::DEFAULT_DEPTH / 2) as u16;

/// Milliseconds of the virtual counter (the switch's clock).
pub fn now_ms() -> u64 {
    use ferry_partition_rt::time;
    time::ticks_to_ms(time::ticks())
}

/// Which port each net device and the uplink are, and the switch's set-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Port of device `i` (`None`: not a net device).
    pub ports: [Option<PortId>; MAX_DEVICES],
    /// The uplink's port.
    pub uplink: Option<PortId>,
    /// Ports of one segment connected both ways.
    pub policy: Policy,
}

impl Plan {
    /// The plan for `node` (whose parser checked there is a port for every net
    /// device and the uplink).
    pub fn new(node: &BackendNode) -> Plan {
        let mut ports = [None; MAX_DEVICES];
        let mut segments = [None; crate::switch::MAX_PORTS];
        let mut next = 0;
        for d in node.iter() {
            if let (Some(net), Some(p)) = (d.net, PortId::new(next)) {
                ports[d.index] = Some(p);
                segments[next] = Some(net.segment);
                next += 1;
            }
        }
        let uplink = node.uplink.and_then(|u| {
            let p = PortId::new(next)?;
            segments[next] = Some(u.segment);
            Some(p)
        });
        let mut policy = Policy::ISOLATED;
        for (a, sa) in segments.iter().enumerate() {
            for (b, sb) in segments.iter().enumerate().skip(a + 1) {
                if let (Some(sa), Some(sb), Some(pa), Some(pb)) =
                    (sa, sb, PortId::new(a), PortId::new(b))
                    && sa == sb
                {
                    policy = policy.connect(pa, pb);
                }
            }
        }
        Plan {
            ports,
            uplink,
            policy,
        }
    }

    /// Sets `sw` up: the policy, and each net device's MAC static on its port.
    pub fn apply(&self, sw: &mut Switch, node: &BackendNode) -> Result<(), BindError> {
        sw.set_policy(self.policy);
        for d in node.iter() {
            if let (Some(net), Some(p)) = (d.net, self.ports[d.index]) {
                sw.add_static(net.mac, p)?;
            }
        }
        Ok(())
    }
}

/// A net device's transmit sink: its port on the switch, plus the port's state
/// kept with the device.
pub struct PortSink {
    /// The device's port.
    pub port: PortId,
    switch: &'static SwitchCell,
    /// The device had no receive buffer for the port's next frame: nothing is
    /// delivered until the frontend notifies its receive queue (or resets).
    pub rx_blocked: bool,
    /// Frames for the port the device dropped (not live, link down, buffer too
    /// small).
    pub undelivered: u64,
    /// Frames lost because the switch was out (never, unless the loop nests).
    pub lost: u64,
    /// Frames the device may still transmit this round ([`TX_BUDGET`]).
    pub budget: u16,
    /// When drops were last logged.
    pub log: DropLog,
}

impl PortSink {
    /// The sink of port `port` of `switch`.
    pub const fn new(port: PortId, switch: &'static SwitchCell) -> Self {
        PortSink {
            port,
            switch,
            rx_blocked: false,
            undelivered: 0,
            lost: 0,
            budget: TX_BUDGET,
            log: DropLog::new(),
        }
    }

    /// The device was reset: its queued frames and the MACs learned on its
    /// port are dropped (not counted), and receiving starts again.
    pub fn reset(&mut self) {
        let port = self.port;
        if self
            .switch
            .with(|sw| {
                sw.flush(port);
                sw.forget_port(port);
            })
            .is_none()
        {
            self.lost += 1;
        }
        self.rx_blocked = false;
    }
}

impl FrameSink for PortSink {
    /// Into the switch (a frame the switch cannot place is dropped and counted
    /// there); `SinkFull` once this round's budget is spent.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), SinkFull> {
        if self.budget == 0 {
            return Err(SinkFull);
        }
        self.budget -= 1;
        let (port, now) = (self.port, now_ms());
        if self
            .switch
            .with(|sw| sw.ingress(port, frame, now))
            .is_none()
        {
            self.lost += 1;
        }
        Ok(())
    }
}

/// What [`drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Frames delivered.
    pub delivered: usize,
    /// Frames the device dropped (popped and gone).
    pub dropped: usize,
    /// The device had no receive buffer: the rest stays queued.
    pub blocked: bool,
}

/// Hands the frames queued for `port` to `deliver` (a device's `receive`) in
/// order, until none is left or it has no buffer. Bounded by the queue's depth.
pub fn drain(
    sw: &mut Switch,
    port: PortId,
    mut deliver: impl FnMut(&[u8]) -> RxOutcome,
) -> Drained {
    let mut d = Drained::default();
    while let Some(frame) = sw.front(port) {
        match deliver(frame) {
            RxOutcome::Delivered => d.delivered += 1,
            RxOutcome::Dropped(_) => d.dropped += 1,
            RxOutcome::NoBuffer => {
                d.blocked = true;
                break;
            }
        }
        sw.pop(port);
    }
    d
}

/// A port's dropped frames, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Frames from the port that the policy kept from every destination.
    pub policy: u64,
    /// Frames for the port lost because its queue was full.
    pub full: u64,
    /// Frames from the port that were malformed: refused by its device (bad
    /// header, too long or short, writable descriptors) or by the switch.
    pub malformed: u64,
    /// Frames from the port with another port's MAC as their source.
    pub spoofed: u64,
    /// Frames for the port its device (or NIC) did not take: not live, link
    /// down, buffer too small.
    pub undelivered: u64,
}

impl Drops {
    /// The drops of a port from the switch's counters `stats`, the device's
    /// (`None` for the uplink) and the frames it did not take.
    pub fn new(stats: &PortStats, device: Option<&Counters>, undelivered: u64) -> Drops {
        let refused = device.map_or(0, |c| {
            c.tx_bad_header + c.tx_too_long + c.tx_too_short + c.tx_writable
        });
        Drops {
            policy: stats.dropped_policy,
            full: stats.dropped_full,
            malformed: stats.dropped_malformed + refused,
            spoofed: stats.dropped_spoofed,
            undelivered,
        }
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.policy + self.full + self.malformed + self.spoofed + self.undelivered
    }
}

/// The log line of port `port`'s drops:
/// `net port 2: dropped 5 frames (policy 5, full 0, malformed 0, spoofed 0, undelivered 0)`.
pub struct DropsLine(pub PortId, pub Drops);

impl fmt::Display for DropsLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DropsLine(port, d) = self;
        write!(
            f,
            "net port {}: dropped {} frames (policy {}, full {}, malformed {}, spoofed {}, undelivered {})",
            port.index(),
            d.total(),
            d.policy,
            d.full,
            d.malformed,
            d.spoofed,
            d.undelivered
        )
    }
}

/// When a port's drops are logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropLog {
    /// The total last logged.
    logged: u64,
    /// When (ms).
    at_ms: u64,
}

impl DropLog {
    /// Drops logged at once, one line each time the total grows.
    pub const FIRST: u64 = 8;
    /// After those, at most one line per this many ms.
    pub const INTERVAL_MS: u64 = 1000;

    /// Nothing logged yet.
    pub const fn new() -> Self {
        DropLog {
            logged: 0,
            at_ms: 0,
        }
    }

    /// Whether a line with `total` is due at `now_ms` (and if so, records it).
    pub fn due(&mut self, total: u64, now_ms: u64) -> bool {
        if total <= self.logged {
            return false;
        }
        let due = total <= Self::FIRST
            || self.logged < Self::FIRST
            || now_ms.saturating_sub(self.at_ms) >= Self::INTERVAL_MS;
        if due {
            (self.logged, self.at_ms) = (total, now_ms);
        }
        due
    }
}

/// A MAC as `02:46:52:59:00:01`.
pub struct MacAddr(pub Mac);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests;
