//! A learning Ethernet (L2) switch for the backend partition: pure logic, no hardware,
//! no unsafe, no alloc; tested on the host.
//!
//! Each virtio-net device the backend serves to a frontend partition is a **port**; a
//! physical NIC passed through to the backend (the uplink) is one more. The serving loop
//! hands every frame a port transmits to [`Switch::ingress`]; the switch copies it into
//! the egress queue of every port it goes to; each port's driver takes its frames with
//! [`Switch::front`] + [`Switch::pop`] when it has room (the frontend posted receive
//! buffers, the NIC has descriptors).
//!
//! # Decisions
//! - **Ports**: up to [`MAX_PORTS`] (8), named by [`PortId`] (`0..MAX_PORTS`); sets of
//!   ports are [`PortMask`]s. A port no policy entry mentions never sends or receives.
//! - **Frames**: Ethernet frames without the FCS, dst MAC at 0..6, src MAC at 6..12,
//!   [`MIN_FRAME`] (14) to [`MAX_FRAME`] (1518) bytes; others are dropped as malformed.
//! - **Policy** ([`Policy`], from the config): for each ingress port, the set of ports its
//!   frames may reach. It is **directional** (`from → to`; the config usually states
//!   links both ways, [`Policy::connect`]; a one-way link is honoured as written) and the
//!   only way a frame leaves the switch: a flood goes to the ingress port's reach only
//!   (narrowing a flood is not a drop); a frame that can reach no port at all (unicast
//!   to a MAC learned behind a forbidden port, or a flood from a port whose reach is
//!   empty) is dropped and counted in the **ingress** port's `dropped_policy`.
//! - **Learning**: a [`MAC_TABLE_SIZE`] (64) entry table maps a source MAC to the port
//!   it was last seen on. Only unicast, non-zero source MACs are learned (a
//!   multicast/broadcast source is forwarded, never learned), from any well-formed frame,
//!   including one the policy then drops (where a station is does not depend on whom it
//!   may reach). A MAC seen on another port moves there ([`TableStats::moves`]).
//! - **Ageing**: the caller supplies the clock (`now_ms`, monotonic ms); a dynamic entry
//!   not refreshed for more than the ageing time ([`DEFAULT_AGEING_MS`], 300 s as in
//!   802.1D; [`Switch::set_ageing_ms`]) is ignored, and freed lazily or by
//!   [`Switch::expire`]. A clock that goes backwards only makes entries younger.
//! - **Replacement** when the table is full: a free entry, else an expired one, else
//!   the least recently seen dynamic entry ([`TableStats::evicted`]). Static entries
//!   ([`Switch::add_static`]: e.g. the MAC the backend gives each frontend's device)
//!   never age, move or get evicted, and a frame from another port carrying a static
//!   MAC as its source is dropped as **spoofed** (a frontend cannot steal another's
//!   traffic by claiming its MAC). A table full of static entries learns nothing more.
//! - **Forwarding**: broadcast, multicast and unknown unicast are flooded to the ingress
//!   port's reach; unicast to a learned MAC goes to its port if the policy allows.
//!   A unicast frame whose destination is learned on its own ingress port goes nowhere
//!   and is counted in `dropped_local` (normal filtering behind an uplink; a frame is
//!   never sent back out of the port it came from).
//! - **Queues**: each port has a ring of `DEPTH` frame slots ([`DEFAULT_DEPTH`] = 16)
//!   of [`MAX_FRAME`] bytes each; the frame is copied into each destination's queue
//!   independently. A full queue refuses the copy (counted in that port's
//!   `dropped_full`), the other destinations still get theirs: a port that never
//!   drains cannot stall the others. If no destination took it the ingress port
//!   counts it in `dropped_congested`.
//! - **Memory**: `Switch<16>` is about 196 KB (8 × 16 × 1518 B of queues, a 1.5 KB MAC
//!   table, counters): keep it in a static (never on a stack). [`Switch::new`] is
//!   `const`, and `Switch::new(Policy::ISOLATED)` is all zero bytes so such a static
//!   lands in .bss; configure it at run time with [`Switch::set_policy`].
//!
//! # Counters
//! Per port ([`PortStats`]): every received frame is counted in `rx` and in exactly one
//! of `forwarded` (queued to at least one port) or a `dropped_*` ingress counter
//! ([`PortStats::rx_dropped`]); every copy for a port is counted in its `tx` or its
//! `dropped_full`.

mod table;

pub use table::{BindError, MAC_TABLE_SIZE, TableStats};
use table::{Learn, MacTable};

/// Most ports a switch has.
pub const MAX_PORTS: usize = 8;
/// Shortest frame: the Ethernet header (dst, src, ethertype).
pub const MIN_FRAME: usize = 14;
/// Longest frame: 1500 bytes of payload, a VLAN tag, the header (no FCS).
pub const MAX_FRAME: usize = 1518;
/// Frames each egress queue holds by default.
pub const DEFAULT_DEPTH: usize = 16;
/// How long a learned MAC lives without being seen (802.1D's default, 300 s).
pub const DEFAULT_AGEING_MS: u64 = 300_000;

const _: () = assert!(MAX_PORTS <= 32 && MAX_FRAME <= u16::MAX as usize);

/// A MAC address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// Whether `mac` is a group (multicast or broadcast) address: bit 0 of its first octet.
pub const fn is_multicast(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// A port of the switch: an index below [`MAX_PORTS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(u8);

impl PortId {
    /// Port `index`, if it is below [`MAX_PORTS`].
    pub const fn new(index: usize) -> Option<PortId> {
        if index < MAX_PORTS {
            Some(PortId(index as u8))
        } else {
            None
        }
    }

    /// The port's index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of ports: bit `i` is port `i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortMask(u32);

impl PortMask {
    /// No port.
    pub const EMPTY: PortMask = PortMask(0);
    /// Every port.
    pub const ALL: PortMask = PortMask(((1u64 << MAX_PORTS) - 1) as u32);

    /// The set with bits `bits` (bits of ports `>= MAX_PORTS` are ignored).
    pub const fn from_bits(bits: u32) -> PortMask {
        PortMask(bits & Self::ALL.0)
    }

    /// The set's bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set of `port` alone.
    pub const fn single(port: PortId) -> PortMask {
        PortMask(1 << port.0)
    }

    /// Whether `port` is in the set.
    pub const fn contains(self, port: PortId) -> bool {
        self.0 & (1 << port.0) != 0
    }

    /// The set with `port` added.
    pub const fn with(self, port: PortId) -> PortMask {
        PortMask(self.0 | 1 << port.0)
    }

    /// The set without `port`.
    pub const fn without(self, port: PortId) -> PortMask {
        PortMask(self.0 & !(1 << port.0))
    }

    /// The ports in both sets.
    pub const fn intersect(self, other: PortMask) -> PortMask {
        PortMask(self.0 & other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many ports are in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The ports in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = PortId> {
        (0..MAX_PORTS as u8)
            .filter(move |i| self.0 & 1 << i != 0)
            .map(PortId)
    }
}

/// Which ports each port's frames may reach (see the module docs: directional; a
/// port never reaches itself). The backend builds it from its DTB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    reach: [PortMask; MAX_PORTS],
}

impl Policy {
    /// No port reaches any other.
    pub const ISOLATED: Policy = Policy {
        reach: [PortMask::EMPTY; MAX_PORTS],
    };

    /// The policy where port `i`'s frames may reach `reach[i]` (its own bit is ignored).
    pub const fn from_masks(reach: [PortMask; MAX_PORTS]) -> Policy {
        let mut policy = Policy { reach };
        let mut i = 0;
        while i < MAX_PORTS {
            policy.reach[i] = PortMask::from_bits(reach[i].0 & !(1 << i));
            i += 1;
        }
        policy
    }

    /// Every port in `ports` reaches every other one in `ports`.
    pub const fn mesh(ports: PortMask) -> Policy {
        let mut reach = [PortMask::EMPTY; MAX_PORTS];
        let mut i = 0;
        while i < MAX_PORTS {
            if ports.0 & 1 << i != 0 {
                reach[i] = ports;
            }
            i += 1;
        }
        Policy::from_masks(reach)
    }

    /// This policy plus `from → to` (one direction).
    pub const fn allow(mut self, from: PortId, to: PortId) -> Policy {
        if from.0 != to.0 {
            self.reach[from.index()] = self.reach[from.index()].with(to);
        }
        self
    }

    /// This policy plus `a → b` and `b → a`.
    pub const fn connect(self, a: PortId, b: PortId) -> Policy {
        self.allow(a, b).allow(b, a)
    }

    /// The ports `from`'s frames may reach (never `from` itself).
    pub const fn reach(&self, from: PortId) -> PortMask {
        self.reach[from.index()]
    }

    /// Whether `from`'s frames may reach `to`.
    pub const fn allows(&self, from: PortId, to: PortId) -> bool {
        self.reach(from).contains(to)
    }

    /// Whether every allowed direction is allowed the other way too.
    pub fn is_symmetric(&self) -> bool {
        PortMask::ALL
            .iter()
            .all(|a| self.reach(a).iter().all(|b| self.allows(b, a)))
    }
}

/// One port's counters (see the module docs for how they add up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received on the port (well-formed or not).
    pub rx: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Received frames queued to at least one port.
    pub forwarded: u64,
    /// Received frames shorter than [`MIN_FRAME`] or longer than [`MAX_FRAME`].
    pub dropped_malformed: u64,
    /// Received frames the policy kept from every port they were for.
    pub dropped_policy: u64,
    /// Received unicast frames for a MAC learned on this same port.
    pub dropped_local: u64,
    /// Received frames whose source is another port's static MAC.
    pub dropped_spoofed: u64,
    /// Received frames every destination of which had a full queue.
    pub dropped_congested: u64,
    /// Frames queued to this port.
    pub tx: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames for this port refused because its queue was full.
    pub dropped_full: u64,
}

impl PortStats {
    const ZERO: PortStats = PortStats {
        rx: 0,
        rx_bytes: 0,
        forwarded: 0,
        dropped_malformed: 0,
        dropped_policy: 0,
        dropped_local: 0,
        dropped_spoofed: 0,
        dropped_congested: 0,
        tx: 0,
        tx_bytes: 0,
        dropped_full: 0,
    };

    /// Received frames dropped for any reason: `rx == forwarded + rx_dropped()`.
    pub const fn rx_dropped(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_policy
            + self.dropped_local
            + self.dropped_spoofed
            + self.dropped_congested
    }
}

/// Why a received frame reached no port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Too short or too long.
    Malformed,
    /// The policy forbids every destination.
    Policy,
    /// The destination is on the ingress port.
    Local,
    /// The source is another port's static MAC.
    Spoofed,
    /// Every destination's queue was full.
    Full,
}

/// What [`Switch::ingress`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The ports a copy was queued to.
    pub to: PortMask,
    /// Destinations whose queue was full (counted in their `dropped_full`).
    pub full: PortMask,
    /// Whether the frame was flooded (broadcast, multicast, unknown unicast).
    pub flooded: bool,
    /// Why the frame reached no port; `None` iff `to` is not empty.
    pub dropped: Option<DropReason>,
}

/// A port's egress queue: a ring of `DEPTH` frame slots.
struct Queue<const DEPTH: usize> {
    frames: [[u8; MAX_FRAME]; DEPTH],
    lens: [u16; DEPTH],
    head: usize,
    len: usize,
}

impl<const DEPTH: usize> Queue<DEPTH> {
    const EMPTY: Self = Queue {
        frames: [[0; MAX_FRAME]; DEPTH],
        lens: [0; DEPTH],
        head: 0,
        len: 0,
    };

    /// Copies `frame` (at most MAX_FRAME bytes) in; false if the queue is full.
    fn push(&mut self, frame: &[u8]) -> bool {
        if self.len == DEPTH {
            return false;
        }
        let slot = (self.head + self.len) % DEPTH;
        self.frames[slot][..frame.len()].copy_from_slice(frame);
        self.lens[slot] = frame.len() as u16;
        self.len += 1;
        true
    }

    fn front(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.frames[self.head][..usize::from(self.lens[self.head])])
    }

    fn pop(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        self.head = (self.head + 1) % DEPTH;
        self.len -= 1;
        true
    }
}

/// The switch: policy, MAC table, one egress queue of `DEPTH` frames per port, counters.
pub struct Switch<const DEPTH: usize = DEFAULT_DEPTH> {
    policy: Policy,
    table: MacTable,
    queues: [Queue<DEPTH>; MAX_PORTS],
    stats: [PortStats; MAX_PORTS],
}

impl<const DEPTH: usize> Switch<DEPTH> {
    /// A switch with `policy`, an empty MAC table, the default ageing time and empty
    /// queues. `Switch::new(Policy::ISOLATED)` is all zero bytes (a static in .bss).
    pub const fn new(policy: Policy) -> Self {
        const { assert!(DEPTH > 0, "an egress queue holds at least one frame") };
        Switch {
            policy,
            table: MacTable::EMPTY,
            queues: [const { Queue::EMPTY }; MAX_PORTS],
            stats: [PortStats::ZERO; MAX_PORTS],
        }
    }

    /// The policy.
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy; frames already queued stay, learned MACs stay.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// How long a learned MAC lives without being seen, in ms.
    pub fn ageing_ms(&self) -> u64 {
        self.table.ageing_ms()
    }

    /// Sets the ageing time (at least 1 ms; `u64::MAX`: learned MACs never age).
    pub fn set_ageing_ms(&mut self, ms: u64) {
        self.table.set_ageing_ms(ms);
    }

    /// Binds `mac` to `port` for good (see the module docs: never ages, moves or gets
    /// evicted; the same source from another port is dropped as spoofed). Replaces a
    /// learned or static entry for `mac`; fails if `mac` is not a unicast address or
    /// the table holds only static entries.
    pub fn add_static(&mut self, mac: Mac, port: PortId) -> Result<(), BindError> {
        if !learnable(&mac) {
            return Err(BindError::NotUnicast);
        }
        self.table.add_static(mac, port)
    }

    /// The port `mac` is learned (or statically bound) on at time `now_ms`.
    pub fn learned(&self, mac: &Mac, now_ms: u64) -> Option<PortId> {
        self.table.lookup(mac, now_ms)
    }

    /// Frees the learned entries older than the ageing time; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        self.table.expire(now_ms)
    }

    /// Forgets the MACs learned on `port` (not its static ones), e.g. when its
    /// frontend resets the device; returns how many.
    pub fn forget_port(&mut self, port: PortId) -> usize {
        self.table.forget_port(port)
    }

    /// The MAC table's counters.
    pub fn table_stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Takes `frame`, received on `port` at `now_ms`: learns its source, copies it into
    /// the egress queue of each port it goes to, counts it (see the module docs).
    pub fn ingress(&mut self, port: PortId, frame: &[u8], now_ms: u64) -> Forwarded {
        let stats = &mut self.stats[port.index()];
        stats.rx += 1;
        stats.rx_bytes += frame.len() as u64;
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return self.drop(port, DropReason::Malformed, false);
        }
        let mac = |at: usize| -> Mac { core::array::from_fn(|i| frame[at + i]) };
        let (dst, src) = (mac(0), mac(6));
        if learnable(&src) && self.table.learn(src, port, now_ms) == Learn::Spoofed {
            return self.drop(port, DropReason::Spoofed, false);
        }
        let reach = self.policy.reach(port);
        let (dests, flooded) = match self.table.lookup(&dst, now_ms) {
            _ if is_multicast(&dst) => (reach, true),
            None => (reach, true),
            Some(to) if to == port => return self.drop(port, DropReason::Local, false),
            Some(to) => (reach.intersect(PortMask::single(to)), false),
        };
        if dests.is_empty() {
            return self.drop(port, DropReason::Policy, flooded);
        }
        let (mut to, mut full) = (PortMask::EMPTY, PortMask::EMPTY);
        for d in dests.iter() {
            let stats = &mut self.stats[d.index()];
            if self.queues[d.index()].push(frame) {
                stats.tx += 1;
                stats.tx_bytes += frame.len() as u64;
                to = to.with(d);
            } else {
                stats.dropped_full += 1;
                full = full.with(d);
            }
        }
        if to.is_empty() {
            return Forwarded {
                full,
                ..self.drop(port, DropReason::Full, flooded)
            };
        }
        self.stats[port.index()].forwarded += 1;
        Forwarded {
            to,
            full,
            flooded,
            dropped: None,
        }
    }

    /// Counts a received frame dropped for `reason` on `port`.
    fn drop(&mut self, port: PortId, reason: DropReason, flooded: bool) -> Forwarded {
        let stats = &mut self.stats[port.index()];
        *match reason {
            DropReason::Malformed => &mut stats.dropped_malformed,
            DropReason::Policy => &mut stats.dropped_policy,
            DropReason::Local => &mut stats.dropped_local,
            DropReason::Spoofed => &mut stats.dropped_spoofed,
            DropReason::Full => &mut stats.dropped_congested,
        } += 1;
        Forwarded {
            to: PortMask::EMPTY,
            full: PortMask::EMPTY,
            flooded,
            dropped: Some(reason),
        }
    }

    /// The next frame queued for `port`, if any (it stays queued until [`Self::pop`]).
    pub fn front(&self, port: PortId) -> Option<&[u8]> {
        self.queues[port.index()].front()
    }

    /// Removes the next frame queued for `port`; false if there is none.
    pub fn pop(&mut self, port: PortId) -> bool {
        self.queues[port.index()].pop()
    }

    /// Copies the next frame queued for `port` into `buf` and removes it: its length,
    /// or `None` if there is none or it does not fit (it then stays queued).
    pub fn pop_into(&mut self, port: PortId, buf: &mut [u8]) -> Option<usize> {
        let frame = self.front(port)?;
        let n = frame.len();
        buf.get_mut(..n)?.copy_from_slice(frame);
        self.pop(port);
        Some(n)
    }

    /// How many frames are queued for `port`.
    pub fn queued(&self, port: PortId) -> usize {
        self.queues[port.index()].len
    }

    /// How many frames each queue holds.
    pub const fn depth(&self) -> usize {
        DEPTH
    }

    /// The ports with queued frames.
    pub fn pending(&self) -> PortMask {
        PortMask::ALL
            .iter()
            .filter(|&p| self.queued(p) > 0)
            .fold(PortMask::EMPTY, PortMask::with)
    }

    /// Discards the frames queued for `port` (e.g. its frontend reset the device);
    /// returns how many. Not counted as drops.
    pub fn flush(&mut self, port: PortId) -> usize {
        let q = &mut self.queues[port.index()];
        let n = q.len;
        (q.head, q.len) = (0, 0);
        n
    }

    /// `port`'s counters.
    pub fn stats(&self, port: PortId) -> PortStats {
        self.stats[port.index()]
    }
}

/// Whether a source MAC may be learned: unicast and not all zeros.
fn learnable(mac: &Mac) -> bool {
    !is_multicast(mac) && *mac != [0; 6]
}

#[cfg(test)]
mod tests;
