//! `vfe-net-hostile`: a bare-metal virtio-net frontend that is its own, hostile, driver
//! (the `net-fe-hostile` scenario; docs/linux.md "Networking"). It drives the first
//! `compatible = "virtio,mmio"` device of its DTB (a `"net"` device: a port of the
//! backend's switch) by hand — the virtio-mmio registers of the device library's
//! `spec::reg`, its own split virtqueues (receive queue 0, transmit queue 1, 16 entries
//! each) in its own RAM — and sends malformed frames and descriptor garbage on it while
//! other partitions use the same switch. Every check it makes is on its own port; the
//! scenario checks that the others keep working.
//!
//! 1. **Set-up** (reset, ACKNOWLEDGE, DRIVER, VERSION_1 | MAC | STATUS, FEATURES_OK,
//!    both queues, 8 receive buffers of 2 KiB, DRIVER_OK; Status must read 0xf), the
//!    MAC from the configuration space, then a **probe**: an ARP request "who has `gw`
//!    (10.0.2.2), tell `ip` (10.0.2.77)" must be answered (QEMU's user network behind
//!    the backend's uplink answers for its gateway) within 2 s (5 tries).
//! 2. **Malformed frames**, one transmit request each; each must be completed (used
//!    length 0) with the device still live (Status 0xf): `oversized` (a 1519-byte
//!    frame, one above the largest), `jumbo` (9000 bytes), `runt` (10 bytes), `empty`
//!    (a header, no frame), `gso` (a header with gso_type TCPV4, not negotiated),
//!    `csum` (NEEDS_CSUM, not negotiated), `writable` (a device-writable descriptor in
//!    the chain); and once, `spoof`: a well-formed frame whose source is `spoof=` (the
//!    MAC of another partition's port; the switch must drop it). Then a probe whose
//!    request is split over three descriptors (header, 20 bytes, the rest).
//! 3. **Rounds** until `fail_at_ms` (default 10000) after the start: the malformed
//!    frames again, a flood of `flood` (32) broadcast ARP requests for 10.0.2.250
//!    (nobody answers), a MAC flood (`macs`, 128 frames, each from another unicast
//!    source MAC: the switch's 64-entry table churns), a probe, a pause of `pause_ms`
//!    (1000) while receiving.
//! 4. **Descriptor garbage**, each on a freshly set-up device, which must fail it:
//!    Status DEVICE_NEEDS_RESET (0x4f) and a configuration-change interrupt
//!    (InterruptStatus bit 1, the SPI) within 2 s; then a reset (Status 0), a new
//!    set-up and a probe must work again: `header` (a transmit chain of 8 readable
//!    bytes: no whole virtio-net header), `loop` (two descriptors naming each other),
//!    `index` (a next index beyond the table), `memory` (a buffer at `outside`,
//!    default 0x70000000, outside this partition's RAM), `avail` (avail.idx 17 ahead),
//!    `rx-short` (receive buffers of 8 bytes, too short for a header, and a probe whose
//!    answer lands there).
//! 5. Rounds again until `duration_ms` (default 30000); a last probe; the totals
//!    (`... frames received: <n> for this port, <b> broadcast/multicast, <f> unicast for
//!    other MACs`: the last are other stations' frames flooded here while the MAC flood
//!    evicted their entries from the switch's table, reported with the first one's
//!    addresses, not judged); Status 0xf; SYSTEM_OFF.
//!
//! Bootargs: `gw=` (10.0.2.2), `ip=` (10.0.2.77), `spoof=<mac>` (none: no spoof frame),
//! `fail_at_ms=`, `duration_ms=`, `pause_ms=`, `flood=`, `macs=`, `outside=<hex>`,
//! `timeout_ms=` (a virtual-timer watchdog, default 300000).
//!
//! Log: `vfe-net-hostile: virtio-net at <w> (SPI <n>), MAC <m>, features <f>`,
//! `vfe-net-hostile: probe ok: <gw> is at <mac> (<how>)`, per malformed kind in the first
//! round `vfe-net-hostile: <kind>: completed (used length 0), device live`,
//! `vfe-net-hostile: round <r>: <k> malformed, <n> flooded, <m> source MACs, probe ok`,
//! per garbage kind `vfe-net-hostile: <kind> (<what>): Status 0x4f (DEVICE_NEEDS_RESET),
//! InterruptStatus 0x2, configuration-change interrupt`, `vfe-net-hostile: <kind>: reset,
//! set up again, probe ok`, `vfe-net-hostile: done: ...`, `vfe-net-hostile: SYSTEM_OFF`.
//! Failure: `FAIL: vfe-net-hostile: ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, fail, irq, println, psci, time, vtimer};
use ferry_virtio_backend::spec::{self, desc_flags, device_id, feature, reg, status};

rt::entry!(main);

const RXQ: u16 = 0;
const TXQ: u16 = 1;
/// Entries of each queue.
const QSIZE: u16 = 16;
/// Receive buffers posted (descriptors 0..RX_BUFS of the receive table).
const RX_BUFS: u16 = 8;
/// Bytes of each receive and transmit buffer slot.
const BUF_LEN: usize = 2048;
/// `struct virtio_net_hdr` with VERSION_1.
const HDR: usize = 12;

/// Where things are, from the start of the area (this guest's RAM past its image).
const RX_DESC: usize = 0x0000;
const RX_AVAIL: usize = 0x1000;
const RX_USED: usize = 0x2000;
const TX_DESC: usize = 0x3000;
const TX_AVAIL: usize = 0x4000;
const TX_USED: usize = 0x5000;
const RX_BUF: usize = 0x8000;
const TX_BUF: usize = 0x1_0000;
const BIG: usize = 0x1_8000;
const AREA: usize = 0x1_c000;

const F_MAC: u32 = 1 << 5;
const F_STATUS: u32 = 1 << 16;

const LIVE: u32 =
    (status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK) as u32;
const NEEDS_RESET: u32 = status::DEVICE_NEEDS_RESET as u32;

const ETH_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

// ---------------------------------------------------------------------------------
// Watchdog and interrupts.

static TIMEOUT_MS: AtomicU32 = AtomicU32::new(300_000);
static DEV_IRQS: AtomicU32 = AtomicU32::new(0);
static OTHER_IRQS: AtomicU32 = AtomicU32::new(0);
static SPI: AtomicU32 = AtomicU32::new(u32::MAX);

fn handler(intid: u32) {
    if intid == VTIMER_INTID {
        vtimer::stop();
        fail!(
            "vfe-net-hostile: timed out after {} ms",
            TIMEOUT_MS.load(Ordering::Relaxed)
        );
    }
    if intid == SPI.load(Ordering::Relaxed) + 32 {
        DEV_IRQS.fetch_add(1, Ordering::Relaxed);
    } else {
        OTHER_IRQS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Orders ring writes before what follows.
fn dsb() {
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

// ---------------------------------------------------------------------------------
// Frames.

/// A MAC address as `02:46:52:59:00:00`.
struct MacFmt([u8; 6]);

impl core::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An IPv4 address as `10.0.2.2`.
struct IpFmt([u8; 4]);

impl core::fmt::Display for IpFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.0;
        write!(f, "{}.{}.{}.{}", a[0], a[1], a[2], a[3])
    }
}

fn parse_ip(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for o in out.iter_mut() {
        *o = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for o in out.iter_mut() {
        *o = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// An ARP request (Ethernet `src` to `dst`), padded to 60 bytes: "who has `tpa`, tell
/// `spa` (at `sha`)". Returns its length.
fn arp_request(
    f: &mut [u8],
    dst: [u8; 6],
    src: [u8; 6],
    sha: [u8; 6],
    spa: [u8; 4],
    tpa: [u8; 4],
) -> usize {
    f[..60].fill(0);
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETH_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa);
    f[38..42].copy_from_slice(&tpa);
    60
}

// ---------------------------------------------------------------------------------
// The device.

struct Nic {
    base: usize,
    spi: u32,
    area: usize,
    mac: [u8; 6],
    features: u32,
    ip: [u8; 4],
    gw: [u8; 4],
    gw_mac: [u8; 6],
    rx_avail: u16,
    rx_used: u16,
    tx_avail: u16,
    tx_used: u16,
    /// Receive buffers of 8 bytes (the `rx-short` kind).
    rx_short: bool,
    /// An ARP reply from `gw` to this port came in.
    answered: bool,
    rx_mine: u64,
    rx_group: u64,
    rx_foreign: u64,
    tx_requests: u64,
    /// Device interrupts taken when the last reset was done.
    irqs_at_reset: u32,
    /// Destination and source MAC of the first unicast frame for another MAC.
    first_foreign: [u8; 12],
}

impl Nic {
    fn rd(&self, off: u32) -> u32 {
        // SAFETY: a 4-byte register of the virtio-mmio window (one LDR: Ferry decodes
        // it from the syndrome).
        unsafe { ptr::read_volatile((self.base + off as usize) as *const u32) }
    }

    fn wr(&self, off: u32, v: u32) {
        // SAFETY: as in `rd`.
        unsafe { ptr::write_volatile((self.base + off as usize) as *mut u32, v) }
    }

    fn config_u8(&self, off: u32) -> u8 {
        // SAFETY: a byte of the device's configuration space (one LDRB).
        unsafe { ptr::read_volatile((self.base + (reg::CONFIG + off) as usize) as *const u8) }
    }

    fn at(&self, off: usize) -> usize {
        self.area + off
    }

    fn w16(&self, off: usize, v: u16) {
        // SAFETY: an aligned u16 inside the area (this guest's RAM).
        unsafe { ptr::write_volatile(self.at(off) as *mut u16, v) }
    }

    fn r16(&self, off: usize) -> u16 {
        // SAFETY: as in `w16`.
        unsafe { ptr::read_volatile(self.at(off) as *const u16) }
    }

    fn r32(&self, off: usize) -> u32 {
        // SAFETY: an aligned u32 inside the area.
        unsafe { ptr::read_volatile(self.at(off) as *const u32) }
    }

    fn bytes(&self, off: usize, len: usize) -> &'static mut [u8] {
        // SAFETY: [off, off + len) is inside the area, this guest's own RAM, which
        // only this one vCPU uses; the device writes only receive buffers it was given
        // (read after their used entries).
        unsafe { core::slice::from_raw_parts_mut(self.at(off) as *mut u8, len) }
    }

    /// Descriptor `i` of the table at `table`.
    fn desc(&self, table: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.bytes(table + 16 * usize::from(i), 16);
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
    }

    /// Reset, then the whole set-up; Status must end at 0xf.
    fn set_up(&mut self) {
        let (magic, version, id) = (
            self.rd(reg::MAGIC_VALUE),
            self.rd(reg::VERSION),
            self.rd(reg::DEVICE_ID),
        );
        if magic != spec::MAGIC || version != spec::MMIO_VERSION || id != device_id::NET {
            fail!(
                "vfe-net-hostile: device at {:#x}: MagicValue {magic:#x}, Version {version}, DeviceID {id} (expected {:#x}, 2, net 1)",
                self.base,
                spec::MAGIC
            );
        }
        self.wr(reg::STATUS, 0);
        let s = self.rd(reg::STATUS);
        if s != 0 {
            fail!("vfe-net-hostile: Status {s:#x} after the reset, expected 0");
        }
        // Interrupts of the device's earlier life came before this read returned.
        self.irqs_at_reset = DEV_IRQS.load(Ordering::Relaxed);
        self.bytes(0, RX_BUF).fill(0);
        let ack = u32::from(status::ACKNOWLEDGE);
        let driver = ack | u32::from(status::DRIVER);
        let features_ok = driver | u32::from(status::FEATURES_OK);
        self.wr(reg::STATUS, ack);
        self.wr(reg::STATUS, driver);
        self.wr(reg::DEVICE_FEATURES_SEL, 1);
        let hi = self.rd(reg::DEVICE_FEATURES);
        self.wr(reg::DEVICE_FEATURES_SEL, 0);
        let lo = self.rd(reg::DEVICE_FEATURES);
        let version_1 = (feature::VERSION_1 >> 32) as u32;
        if hi & version_1 == 0 || lo & F_MAC == 0 {
            fail!("vfe-net-hostile: DeviceFeatures {hi:#x}:{lo:#x} lack VERSION_1 or MAC");
        }
        self.features = lo & (F_MAC | F_STATUS);
        self.wr(reg::DRIVER_FEATURES_SEL, 1);
        self.wr(reg::DRIVER_FEATURES, version_1);
        self.wr(reg::DRIVER_FEATURES_SEL, 0);
        self.wr(reg::DRIVER_FEATURES, self.features);
        self.wr(reg::STATUS, features_ok);
        let s = self.rd(reg::STATUS);
        if s != features_ok {
            fail!("vfe-net-hostile: Status {s:#x} after FEATURES_OK");
        }
        for (q, desc, avail, used) in [
            (RXQ, RX_DESC, RX_AVAIL, RX_USED),
            (TXQ, TX_DESC, TX_AVAIL, TX_USED),
        ] {
            self.wr(reg::QUEUE_SEL, u32::from(q));
            let max = self.rd(reg::QUEUE_NUM_MAX);
            let ready = self.rd(reg::QUEUE_READY);
            if max < u32::from(QSIZE) || ready != 0 {
                fail!(
                    "vfe-net-hostile: queue {q}: QueueNumMax {max} (need {QSIZE}), QueueReady {ready}"
                );
            }
            self.wr(reg::QUEUE_NUM, u32::from(QSIZE));
            for (low, off) in [
                (reg::QUEUE_DESC_LOW, desc),
                (reg::QUEUE_DRIVER_LOW, avail),
                (reg::QUEUE_DEVICE_LOW, used),
            ] {
                let a = self.at(off) as u64;
                self.wr(low, a as u32);
                self.wr(low + 4, (a >> 32) as u32);
            }
            self.wr(reg::QUEUE_READY, 1);
        }
        for i in 0..6 {
            self.mac[i as usize] = self.config_u8(i);
        }
        self.rx_avail = 0;
        self.rx_used = 0;
        self.tx_avail = 0;
        self.tx_used = 0;
        for id in 0..RX_BUFS {
            self.post_rx(id);
        }
        dsb();
        self.wr(reg::STATUS, LIVE);
        let s = self.rd(reg::STATUS);
        if s != LIVE {
            fail!("vfe-net-hostile: Status {s:#x} after DRIVER_OK, expected {LIVE:#x}");
        }
        self.wr(reg::QUEUE_NOTIFY, u32::from(RXQ));
    }

    /// Makes receive buffer `id` available.
    fn post_rx(&mut self, id: u16) {
        let len = if self.rx_short { 8 } else { BUF_LEN as u32 };
        let addr = self.at(RX_BUF + BUF_LEN * usize::from(id)) as u64;
        self.desc(RX_DESC, id, addr, len, desc_flags::WRITE, 0);
        self.w16(RX_AVAIL + 4 + 2 * usize::from(self.rx_avail % QSIZE), id);
        dsb();
        self.rx_avail = self.rx_avail.wrapping_add(1);
        self.w16(RX_AVAIL + 2, self.rx_avail);
    }

    /// Takes every received frame (counting it, noting an ARP reply from the
    /// gateway) and gives its buffer back.
    fn poll_rx(&mut self) {
        let mut reposted = false;
        while self.r16(RX_USED + 2) != self.rx_used {
            let slot = RX_USED + 4 + 8 * usize::from(self.rx_used % QSIZE);
            let (id, len) = (self.r32(slot), self.r32(slot + 4) as usize);
            self.rx_used = self.rx_used.wrapping_add(1);
            if id >= u32::from(RX_BUFS) || len > BUF_LEN || self.rx_short {
                fail!(
                    "vfe-net-hostile: receive used entry (id {id}, len {len}): not a buffer this driver posted"
                );
            }
            let id = id as u16;
            let buf = self.bytes(RX_BUF + BUF_LEN * usize::from(id), BUF_LEN);
            if len >= HDR + 14 {
                let f = &buf[HDR..len];
                let dst = [f[0], f[1], f[2], f[3], f[4], f[5]];
                if dst == self.mac {
                    self.rx_mine += 1;
                    if f.len() >= 42
                        && f[12..14] == ETH_ARP.to_be_bytes()
                        && f[20..22] == 2u16.to_be_bytes()
                        && f[28..32] == self.gw
                        && f[38..42] == self.ip
                    {
                        self.gw_mac.copy_from_slice(&f[22..28]);
                        self.answered = true;
                    }
                } else if dst[0] & 1 != 0 {
                    self.rx_group += 1;
                } else {
                    if self.rx_foreign == 0 {
                        self.first_foreign.copy_from_slice(&f[..12]);
                    }
                    self.rx_foreign += 1;
                }
            }
            self.post_rx(id);
            reposted = true;
        }
        if reposted {
            dsb();
            self.wr(reg::QUEUE_NOTIFY, u32::from(RXQ));
            let is = self.rd(reg::INTERRUPT_STATUS);
            if is != 0 {
                self.wr(reg::INTERRUPT_ACK, is);
            }
        }
    }

    /// Receives for `ms` milliseconds.
    fn idle(&mut self, ms: u64) {
        let d = time::Deadline::after_ms(ms);
        while !d.passed() {
            self.poll_rx();
            time::delay_ms(1);
        }
    }

    /// Publishes the transmit chain at descriptor `head`; `avail_ahead` moves
    /// avail.idx further than one (garbage). Notifies.
    fn publish_tx(&mut self, head: u16, avail_ahead: u16) {
        self.w16(TX_AVAIL + 4 + 2 * usize::from(self.tx_avail % QSIZE), head);
        dsb();
        self.tx_avail = self.tx_avail.wrapping_add(1 + avail_ahead);
        self.w16(TX_AVAIL + 2, self.tx_avail);
        dsb();
        self.tx_requests += 1;
        self.wr(reg::QUEUE_NOTIFY, u32::from(TXQ));
    }

    /// Sends the chain of `descs` (address, length, writable) from descriptor 0 and
    /// waits for its completion: used id 0, length 0, the device live.
    fn send(&mut self, what: &str, descs: &[(u64, u32, bool)]) {
        for (i, &(addr, len, writable)) in descs.iter().enumerate() {
            let i = i as u16;
            let mut flags = if writable { desc_flags::WRITE } else { 0 };
            if usize::from(i) + 1 < descs.len() {
                flags |= desc_flags::NEXT;
            }
            self.desc(TX_DESC, i, addr, len, flags, i + 1);
        }
        self.publish_tx(0, 0);
        let d = time::Deadline::after_ms(2000);
        while self.r16(TX_USED + 2) == self.tx_used {
            if d.passed() {
                fail!(
                    "vfe-net-hostile: {what}: transmit request not completed within 2 s (Status {:#x})",
                    self.rd(reg::STATUS)
                );
            }
            self.poll_rx();
        }
        let slot = TX_USED + 4 + 8 * usize::from(self.tx_used % QSIZE);
        let (id, len) = (self.r32(slot), self.r32(slot + 4));
        self.tx_used = self.tx_used.wrapping_add(1);
        let s = self.rd(reg::STATUS);
        if id != 0 || len != 0 || s != LIVE {
            fail!(
                "vfe-net-hostile: {what}: used entry (id {id}, len {len}), Status {s:#x}; expected (id 0, len 0), {LIVE:#x}"
            );
        }
    }

    /// Transmit buffer slot `i`.
    fn tx_slot(&self, i: usize) -> (u64, &'static mut [u8]) {
        let off = TX_BUF + BUF_LEN * i;
        (self.at(off) as u64, self.bytes(off, BUF_LEN))
    }

    /// A header (zero but `flags`, `gso_type`) and an ARP request from `src` in slot
    /// 0; returns the address and the length of header + frame.
    fn arp_in_slot(&self, src: [u8; 6], tpa: [u8; 4], flags: u8, gso: u8) -> (u64, u32) {
        let (addr, b) = self.tx_slot(0);
        b[..HDR].fill(0);
        b[0] = flags;
        b[1] = gso;
        if gso != 0 {
            b[2..4].copy_from_slice(&54u16.to_le_bytes()); // hdr_len
            b[4..6].copy_from_slice(&1448u16.to_le_bytes()); // gso_size
        }
        if flags != 0 {
            b[6..8].copy_from_slice(&14u16.to_le_bytes()); // csum_start
            b[8..10].copy_from_slice(&16u16.to_le_bytes()); // csum_offset
        }
        let n = arp_request(&mut b[HDR..], BROADCAST, src, src, self.ip, tpa);
        (addr, (HDR + n) as u32)
    }

    /// The ARP request for the gateway must be answered: 5 tries of 2 s; `split`
    /// sends it over three descriptors.
    fn probe(&mut self, split: bool) {
        for _ in 0..5 {
            self.answered = false;
            let (addr, len) = self.arp_in_slot(self.mac, self.gw, 0, 0);
            if split {
                let h = HDR as u32;
                self.send(
                    "probe",
                    &[
                        (addr, h, false),
                        (addr + u64::from(h), 20, false),
                        (addr + u64::from(h) + 20, len - h - 20, false),
                    ],
                );
            } else {
                self.send("probe", &[(addr, len, false)]);
            }
            let d = time::Deadline::after_ms(2000);
            while !d.passed() && !self.answered {
                self.poll_rx();
            }
            if self.answered {
                return;
            }
        }
        fail!(
            "vfe-net-hostile: no ARP reply from {} in 5 tries (Status {:#x}, {} frames received)",
            IpFmt(self.gw),
            self.rd(reg::STATUS),
            self.rx_mine + self.rx_group + self.rx_foreign
        );
    }

    /// The malformed transmit requests, each dropped by the device and completed;
    /// returns how many.
    fn malformed(&mut self, say: bool) -> u32 {
        let mut n = 0;
        let src = self.mac;
        let mut sent = |nic: &mut Nic, what: &str, descs: &[(u64, u32, bool)]| {
            nic.send(what, descs);
            n += 1;
            if say {
                println!("vfe-net-hostile: {what}: completed (used length 0), device live");
            }
        };
        // Oversized: a valid Ethernet header, then zeros up to 1519 bytes (one
        // above the largest frame) and 9000 (a jumbo frame; the buffer is BIG).
        let (addr, _) = self.arp_in_slot(src, [10, 0, 2, 250], 0, 0);
        let (_, b) = self.tx_slot(0);
        b[HDR + 60..HDR + 1519].fill(0);
        sent(
            self,
            "oversized (a 1519-byte frame)",
            &[(addr, (HDR + 1519) as u32, false)],
        );
        let big = self.bytes(BIG, 0x4000);
        big[..HDR + 9000].fill(0);
        big[HDR..HDR + 6].copy_from_slice(&BROADCAST);
        big[HDR + 6..HDR + 12].copy_from_slice(&src);
        let big_addr = self.at(BIG) as u64;
        sent(
            self,
            "jumbo (a 9000-byte frame)",
            &[(big_addr, (HDR + 9000) as u32, false)],
        );
        let (addr, _) = self.arp_in_slot(src, [10, 0, 2, 250], 0, 0);
        sent(
            self,
            "runt (a 10-byte frame)",
            &[(addr, (HDR + 10) as u32, false)],
        );
        sent(
            self,
            "empty (a header, no frame)",
            &[(addr, HDR as u32, false)],
        );
        let (addr, len) = self.arp_in_slot(src, [10, 0, 2, 250], 0, 1);
        sent(
            self,
            "gso (gso_type TCPV4, not negotiated)",
            &[(addr, len, false)],
        );
        let (addr, len) = self.arp_in_slot(src, [10, 0, 2, 250], 1, 0);
        sent(
            self,
            "csum (NEEDS_CSUM, not negotiated)",
            &[(addr, len, false)],
        );
        let (addr, len) = self.arp_in_slot(src, [10, 0, 2, 250], 0, 0);
        let (waddr, _) = self.tx_slot(1);
        sent(
            self,
            "writable (a device-writable descriptor in a transmit chain)",
            &[(addr, len, false), (waddr, 64, true)],
        );
        n
    }

    /// `count` broadcast ARP requests for 10.0.2.250; `macs` frames from as many
    /// source MACs (02:ee:00:00:r:i).
    fn floods(&mut self, count: u32, macs: u32, round: u32) {
        for _ in 0..count {
            let (addr, len) = self.arp_in_slot(self.mac, [10, 0, 2, 250], 0, 0);
            self.send("flood", &[(addr, len, false)]);
        }
        for i in 0..macs {
            let src = [0x02, 0xee, 0, 0, round as u8, i as u8];
            let (addr, len) = self.arp_in_slot(src, [10, 0, 2, 250], 0, 0);
            self.send("MAC flood", &[(addr, len, false)]);
        }
    }

    /// Waits up to 2 s for DEVICE_NEEDS_RESET and a configuration-change interrupt
    /// (nudging the `rx-short` kind with probes' requests).
    fn expect_failed(&mut self, kind: &str, what: &str, irqs_before: u32) {
        let d = time::Deadline::after_ms(if kind == "rx-short" { 10_000 } else { 2000 });
        let mut next_nudge = time::Deadline::after_ms(0);
        loop {
            let s = self.rd(reg::STATUS);
            if s & NEEDS_RESET != 0 {
                break;
            }
            if d.passed() {
                fail!(
                    "vfe-net-hostile: {kind} ({what}): Status {s:#x}: the device was not failed (no DEVICE_NEEDS_RESET)"
                );
            }
            if kind == "rx-short" && next_nudge.passed() {
                // An ARP request for the gateway, not waited for: its answer is the
                // frame that must meet a receive buffer of 8 bytes.
                let (addr, len) = self.arp_in_slot(self.mac, self.gw, 0, 0);
                self.desc(TX_DESC, 0, addr, len, 0, 0);
                self.publish_tx(0, 0);
                next_nudge = time::Deadline::after_ms(500);
            }
            time::delay_ms(1);
        }
        let s = self.rd(reg::STATUS);
        let is = self.rd(reg::INTERRUPT_STATUS);
        let d = time::Deadline::after_ms(1000);
        while DEV_IRQS.load(Ordering::Relaxed) == irqs_before {
            if d.passed() {
                fail!(
                    "vfe-net-hostile: {kind} ({what}): Status {s:#x} but no interrupt (SPI {}) within 1 s",
                    self.spi
                );
            }
            core::hint::spin_loop();
        }
        if s != LIVE | NEEDS_RESET || is & spec::INT_CONFIG_CHANGE == 0 {
            fail!(
                "vfe-net-hostile: {kind} ({what}): Status {s:#x}, InterruptStatus {is:#x} (expected {:#x}, bit 1 set)",
                LIVE | NEEDS_RESET
            );
        }
        println!(
            "vfe-net-hostile: {kind} ({what}): Status {s:#x} (DEVICE_NEEDS_RESET), InterruptStatus {is:#x}, configuration-change interrupt"
        );
    }

    /// One kind of descriptor garbage on a fresh device, then the recovery.
    fn garbage(&mut self, kind: &str, outside: u64) {
        self.rx_short = kind == "rx-short";
        self.set_up();
        // (rx-short may fail as soon as the set-up's receive notify lets a frame in.)
        let before = self.irqs_at_reset;
        let (addr, len) = self.arp_in_slot(self.mac, [10, 0, 2, 250], 0, 0);
        let n = desc_flags::NEXT;
        let what = match kind {
            "header" => {
                self.desc(TX_DESC, 0, addr, 8, 0, 0);
                self.publish_tx(0, 0);
                "a transmit chain of 8 bytes, no whole header"
            }
            "loop" => {
                self.desc(TX_DESC, 0, addr, 20, n, 1);
                self.desc(TX_DESC, 1, addr + 20, 20, n, 0);
                self.publish_tx(0, 0);
                "a descriptor loop"
            }
            "index" => {
                self.desc(TX_DESC, 0, addr, HDR as u32, n, QSIZE);
                self.publish_tx(0, 0);
                "a next index beyond the table"
            }
            "memory" => {
                self.desc(TX_DESC, 0, outside, len, 0, 0);
                self.publish_tx(0, 0);
                "a buffer outside this partition's RAM"
            }
            "avail" => {
                self.desc(TX_DESC, 0, addr, len, 0, 0);
                self.publish_tx(0, QSIZE);
                "avail.idx 17 ahead"
            }
            "rx-short" => "receive buffers of 8 bytes, no room for a header",
            _ => fail!("vfe-net-hostile: no garbage kind {kind}"),
        };
        self.expect_failed(kind, what, before);
        self.rx_short = false;
        self.set_up();
        self.probe(false);
        println!("vfe-net-hostile: {kind}: reset, set up again, probe ok");
    }

    /// A round: the malformed frames, the floods, a probe, a pause.
    fn round(&mut self, r: u32, flood: u32, macs: u32, pause_ms: u64) {
        let k = self.malformed(false);
        self.floods(flood, macs, r);
        self.probe(false);
        println!(
            "vfe-net-hostile: round {r}: {k} malformed, {flood} flooded, {macs} source MACs, probe ok"
        );
        self.idle(pause_ms);
    }
}

fn be_cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn main(boot: &'static Boot) -> ! {
    let t0 = time::ticks();
    let since_ms = || time::ticks_to_ms(time::ticks() - t0);
    let timeout_ms = boot.arg_u64("timeout_ms").unwrap_or(300_000);
    TIMEOUT_MS.store(timeout_ms as u32, Ordering::Relaxed);
    let gw = boot.arg("gw").map_or(Some([10, 0, 2, 2]), parse_ip);
    let ip = boot.arg("ip").map_or(Some([10, 0, 2, 77]), parse_ip);
    let (Some(gw), Some(ip)) = (gw, ip) else {
        fail!("vfe-net-hostile: gw= or ip= is not an IPv4 address");
    };
    let spoof = match boot.arg("spoof") {
        Some(s) => match parse_mac(s) {
            Some(m) => Some(m),
            None => fail!("vfe-net-hostile: spoof={s} is not a MAC address"),
        },
        None => None,
    };
    let fail_at_ms = boot.arg_u64("fail_at_ms").unwrap_or(10_000);
    let duration_ms = boot.arg_u64("duration_ms").unwrap_or(30_000);
    let pause_ms = boot.arg_u64("pause_ms").unwrap_or(1000);
    let flood = boot.arg_u64("flood").unwrap_or(32) as u32;
    let macs = boot.arg_u64("macs").unwrap_or(128).min(256) as u32;
    let outside = boot.arg_hex("outside").unwrap_or(0x7000_0000);

    let Some(node) = boot.fdt().all_nodes().find(|n| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
    }) else {
        fail!("vfe-net-hostile: no virtio,mmio node in the DTB");
    };
    let Some(base) = node.reg().and_then(|mut r| r.next()) else {
        fail!("vfe-net-hostile: {}: no reg", node.name);
    };
    let Some(spi) = node
        .property("interrupts")
        .and_then(|p| be_cells(p.value).nth(1))
        .filter(|&s| s < 988)
    else {
        fail!("vfe-net-hostile: {}: no SPI in interrupts", node.name);
    };
    SPI.store(spi, Ordering::Relaxed);
    let area = (rt::image_end() + 0xfff) & !0xfff;
    let Some(mem) = boot.memory().first().copied() else {
        fail!("vfe-net-hostile: the DTB has no /memory");
    };
    if (area + AREA) as u64 > boot.dtb_region().base.min(mem.end()) {
        fail!("vfe-net-hostile: no room for {AREA:#x} bytes of rings and buffers at {area:#x}");
    }

    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vfe-net-hostile: GIC set-up: {e:?}");
    }
    gic::set_handler(handler);
    gic::set_private_priority(VTIMER_INTID, 0x80);
    gic::enable_private(1 << VTIMER_INTID);
    let intid = spi + 32;
    gic::set_dist_config(intid, true);
    gic::set_dist_priority(intid, 0xa0);
    gic::set_dist_router(intid, gic::router_for(ferry_partition_rt::arch::mpidr()));
    gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    // CNTV_CVAL: with -cpu max (1 GHz) minutes overflow the 32-bit TVAL.
    vtimer::arm_at(time::ticks() + time::ms_to_ticks(timeout_ms));
    irq::enable();

    let mut nic = Nic {
        base: base.starting_address as usize,
        spi,
        area,
        mac: [0; 6],
        features: 0,
        ip,
        gw,
        gw_mac: [0; 6],
        rx_avail: 0,
        rx_used: 0,
        tx_avail: 0,
        tx_used: 0,
        rx_short: false,
        answered: false,
        rx_mine: 0,
        rx_group: 0,
        rx_foreign: 0,
        tx_requests: 0,
        irqs_at_reset: 0,
        first_foreign: [0; 12],
    };
    nic.set_up();
    println!(
        "vfe-net-hostile: virtio-net at {:#x} (SPI {spi}), MAC {}, features {:#x}, rings and buffers at {area:#x}",
        nic.base,
        MacFmt(nic.mac),
        nic.features
    );
    nic.probe(false);
    println!(
        "vfe-net-hostile: probe ok: {} is at {} (ARP request from {} at {})",
        IpFmt(gw),
        MacFmt(nic.gw_mac),
        IpFmt(ip),
        MacFmt(nic.mac)
    );

    // 2. Each malformed kind once, loudly; the spoof; a split probe.
    let mut malformed = nic.malformed(true);
    if let Some(victim) = spoof {
        let (addr, len) = nic.arp_in_slot(victim, [10, 0, 2, 250], 0, 0);
        nic.send("spoof", &[(addr, len, false)]);
        println!(
            "vfe-net-hostile: spoof (a frame from {}, another port's MAC): completed (used length 0), device live",
            MacFmt(victim)
        );
    }
    nic.probe(true);
    println!("vfe-net-hostile: probe ok (split over three descriptors)");

    // 3. Rounds until fail_at_ms.
    let mut r = 0;
    while since_ms() < fail_at_ms {
        r += 1;
        nic.round(r, flood, macs, pause_ms);
        malformed += 7;
    }

    // 4. Descriptor garbage, each kind on a fresh device.
    for kind in ["header", "loop", "index", "memory", "avail", "rx-short"] {
        nic.garbage(kind, outside);
    }

    // 5. Rounds until duration_ms, a last probe, the totals.
    while since_ms() < duration_ms {
        r += 1;
        nic.round(r, flood, macs, pause_ms);
        malformed += 7;
    }
    nic.probe(false);
    let s = nic.rd(reg::STATUS);
    if s != LIVE {
        fail!("vfe-net-hostile: Status {s:#x} at the end, expected {LIVE:#x}");
    }
    vtimer::stop();
    let other = OTHER_IRQS.load(Ordering::Relaxed);
    if other != 0 {
        fail!("vfe-net-hostile: {other} interrupts of no device");
    }
    println!(
        "vfe-net-hostile: done: {r} rounds, {malformed} malformed frames, 6 kinds of descriptor garbage, {} transmit requests, {} device interrupts in {} ms; Status {s:#x}",
        nic.tx_requests,
        DEV_IRQS.load(Ordering::Relaxed),
        since_ms()
    );
    println!(
        "vfe-net-hostile: frames received: {} for this port, {} broadcast/multicast, {} unicast for other MACs",
        nic.rx_mine, nic.rx_group, nic.rx_foreign
    );
    if nic.rx_foreign != 0 {
        let f = nic.first_foreign;
        println!(
            "vfe-net-hostile: the first unicast frame for another MAC: {} to {} (flooded: the switch did not know where its destination was)",
            MacFmt([f[6], f[7], f[8], f[9], f[10], f[11]]),
            MacFmt([f[0], f[1], f[2], f[3], f[4], f[5]])
        );
    }
    println!("vfe-net-hostile: SYSTEM_OFF");
    psci::system_off()
}
