//! Host tests of the ports: a minimal virtio-net driver per frontend, over a
//! [`SharedWindow`] into host memory, drives [`Dev::Net`] devices whose sinks
//! reach a switch of their own.
use super::*;
use crate::devices::Dev;
use crate::node::{self, DeviceNode, FrontendMemory, Kind, NetNode, PhysicalDevice, Uplink};
use crate::switch::{BROADCAST, MIN_FRAME, PortMask};
use ferry_virtio_backend::net::{HDR_LEN, Net, RX_QUEUE, TX_QUEUE};
use ferry_virtio_backend::spec::{desc_flags, feature, reg, status};
use ferry_virtio_backend::{Device, Options, WriteEffect};

const FE_BASE: u64 = 0x4000_0000;
const MEM: usize = 0x4_0000;
const QSIZE: u16 = 16;
/// Ring layout in frontend memory (per queue `q`: + q * 0x3000).
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
/// Buffers: 2 KiB each from here.
const BUFS: u64 = 0x1_0000;

fn mac(n: u8) -> Mac {
    [0x02, 0x46, 0x52, 0x59, 0x00, n]
}

fn p(i: usize) -> PortId {
    PortId::new(i).unwrap()
}

/// A `len`-byte frame from `src` to `dst`, its payload bytes `tag`.
fn frame(dst: Mac, src: Mac, len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![tag; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A switch of a test's own (never freed: the sinks hold `&'static`).
fn switch() -> &'static SwitchCell {
    Box::leak(Box::new(SwitchCell::new()))
}

/// One frontend: its memory, its device, the driver's ring state.
struct Fe {
    mem: Vec<u8>,
    dev: Dev,
    /// Per queue: descriptors handed out, avail idx, used entries seen.
    next_desc: [u16; 2],
    avail: [u16; 2],
    seen: [u16; 2],
}

impl Fe {
    /// A live device with MAC `mac` on `port`, both queues set up.
    fn new(sw: &'static SwitchCell, port: usize, mac: Mac) -> Box<Fe> {
        let mut fe = Box::new(Fe {
            mem: vec![0; MEM],
            dev: Dev::Absent,
            next_desc: [0; 2],
            avail: [0; 2],
            seen: [0; 2],
        });
        let memory = FrontendMemory {
            fe_base: FE_BASE,
            size: MEM as u64,
            be_addr: fe.mem.as_mut_ptr() as u64,
        };
        // SAFETY: the memory lives in the box as long as the device.
        let w = unsafe { crate::window::SharedWindow::new(memory) };
        let net = Net::new(mac, PortSink::new(p(port), sw));
        fe.dev = Dev::Net(Device::new(net, w, Options::new()));
        fe.start();
        fe
    }

    fn write_reg(&mut self, off: u32, v: u64) -> WriteEffect {
        self.dev.mmio_write(off, 4, v)
    }

    /// Reset, negotiate VERSION_1 | MAC | STATUS, both queues, DRIVER_OK.
    fn start(&mut self) {
        self.write_reg(reg::STATUS, 0);
        self.next_desc = [0; 2];
        self.avail = [0; 2];
        self.seen = [0; 2];
        self.mem[..BUFS as usize].fill(0);
        let s = status::ACKNOWLEDGE | status::DRIVER;
        self.write_reg(reg::STATUS, u64::from(s));
        let f = feature::VERSION_1 | ferry_virtio_backend::net::F_MAC;
        for (sel, half) in [(0, f as u32), (1, (f >> 32) as u32)] {
            self.write_reg(reg::DRIVER_FEATURES_SEL, sel);
            self.write_reg(reg::DRIVER_FEATURES, u64::from(half));
        }
        self.write_reg(reg::STATUS, u64::from(s | status::FEATURES_OK));
        for q in 0..2u16 {
            let base = FE_BASE + u64::from(q) * 0x3000;
            self.write_reg(reg::QUEUE_SEL, u64::from(q));
            self.write_reg(reg::QUEUE_NUM, u64::from(QSIZE));
            for (lo, a) in [
                (reg::QUEUE_DESC_LOW, base + DESC),
                (reg::QUEUE_DRIVER_LOW, base + AVAIL),
                (reg::QUEUE_DEVICE_LOW, base + USED),
            ] {
                self.write_reg(lo, a & 0xffff_ffff);
                self.write_reg(lo + 4, a >> 32);
            }
            self.write_reg(reg::QUEUE_READY, 1);
        }
        let s = s | status::FEATURES_OK | status::DRIVER_OK;
        self.write_reg(reg::STATUS, u64::from(s));
        assert!(self.live(), "device not live");
    }

    fn net(&mut self) -> &mut Device<Net<PortSink>, crate::window::SharedWindow> {
        match &mut self.dev {
            Dev::Net(d) => d,
            _ => unreachable!(),
        }
    }

    fn live(&mut self) -> bool {
        self.net().is_live()
    }

    fn off(addr: u64) -> usize {
        (addr - FE_BASE) as usize
    }

    fn put(&mut self, addr: u64, bytes: &[u8]) {
        let o = Self::off(addr);
        self.mem[o..o + bytes.len()].copy_from_slice(bytes);
    }

    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let o = Self::off(addr);
        self.mem[o..o + len].to_vec()
    }

    fn u16_at(&self, addr: u64) -> u16 {
        let b = self.get(addr, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    /// Posts one descriptor (`addr`, `len`, `flags`) on queue `q`; returns its
    /// index. The caller notifies.
    fn post(&mut self, q: u16, addr: u64, len: u32, flags: u16) -> u16 {
        let base = FE_BASE + u64::from(q) * 0x3000;
        let i = self.next_desc[usize::from(q)] % QSIZE;
        self.next_desc[usize::from(q)] += 1;
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        self.put(base + DESC + 16 * u64::from(i), &d);
        let a = self.avail[usize::from(q)];
        self.put(
            base + AVAIL + 4 + 2 * u64::from(a % QSIZE),
            &i.to_le_bytes(),
        );
        self.avail[usize::from(q)] = a.wrapping_add(1);
        self.put(base + AVAIL + 2, &a.wrapping_add(1).to_le_bytes());
        i
    }

    /// The buffer of descriptor `i` of queue `q`.
    fn buf(q: u16, i: u16) -> u64 {
        FE_BASE + BUFS + (u64::from(q) * u64::from(QSIZE) + u64::from(i)) * 0x800
    }

    /// QueueNotify(q), served as the loop does.
    fn notify(&mut self, q: u16) {
        if let WriteEffect::QueueNotify(q) = self.write_reg(reg::QUEUE_NOTIFY, u64::from(q)) {
            self.dev.serve("test", 0, q);
        }
    }

    /// Transmits `frame` behind a zero header.
    fn send(&mut self, frame: &[u8]) {
        self.send_all(&[frame.to_vec()]);
    }

    /// Posts every frame (at most a ring's worth), then notifies once.
    fn send_all(&mut self, frames: &[Vec<u8>]) {
        for frame in frames {
            let i = self.next_desc[1] % QSIZE;
            let at = Self::buf(TX_QUEUE, i);
            self.put(at, &[0; HDR_LEN]);
            self.put(at + HDR_LEN as u64, frame);
            self.post(TX_QUEUE, at, (HDR_LEN + frame.len()) as u32, 0);
        }
        self.notify(TX_QUEUE);
    }

    /// Posts `n` receive buffers of 12 + 1518 bytes and notifies.
    fn post_rx(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.next_desc[0] % QSIZE;
            self.post(RX_QUEUE, Self::buf(RX_QUEUE, i), 1530, desc_flags::WRITE);
        }
        self.notify(RX_QUEUE);
    }

    /// The frames received since the last call.
    fn received(&mut self) -> Vec<Vec<u8>> {
        let used = FE_BASE + USED;
        let idx = self.u16_at(used + 2);
        let mut out = Vec::new();
        while self.seen[0] != idx {
            let e = used + 4 + 8 * u64::from(self.seen[0] % QSIZE);
            let id = u16::from_le_bytes(self.get(e, 2).try_into().unwrap());
            let len = u32::from_le_bytes(self.get(e + 4, 4).try_into().unwrap()) as usize;
            let data = self.get(Self::buf(RX_QUEUE, id), len);
            out.push(data[HDR_LEN..].to_vec());
            self.seen[0] = self.seen[0].wrapping_add(1);
        }
        out
    }
}

/// Delivers what the switch holds for every device and ends the round, as the
/// loop does; returns whether transmit requests wait for the next one.
fn deliver(sw: &SwitchCell, fes: &mut [&mut Fe]) -> bool {
    sw.with(|s| {
        for fe in fes.iter_mut() {
            fe.dev.net_deliver(s);
        }
    })
    .unwrap();
    fes.iter_mut()
        .fold(false, |more, fe| fe.dev.net_round_end() | more)
}

/// The next round's start: transmit requests that waited are served.
fn resume(fes: &mut [&mut Fe]) {
    for fe in fes.iter_mut() {
        fe.dev.net_resume("test", 0);
    }
}

fn plan_of(segments: &[u32], uplink: Option<u32>) -> (BackendNode, Plan) {
    let mut devices: [Option<DeviceNode>; MAX_DEVICES] = Default::default();
    for (i, s) in segments.iter().enumerate() {
        devices[i] = Some(DeviceNode {
            index: i,
            kind: Kind::Net,
            memory: FrontendMemory {
                fe_base: FE_BASE,
                size: MEM as u64,
                be_addr: 0x8000_0000,
            },
            disk: None,
            storage: None,
            read_only: false,
            loopback: false,
            net: Some(NetNode {
                mac: mac(i as u8 + 1),
                segment: *s,
            }),
        });
    }
    let node = BackendNode {
        request_page: 0x0b00_0000,
        signal: node::Signal::Poll { interval_ms: 5 },
        devices,
        dma: crate::dma::DmaRanges::new(),
        uplink: uplink.map(|segment| Uplink {
            device: PhysicalDevice {
                addr: 0x0a00_3c00,
                spi: 46,
            },
            segment,
        }),
    };
    let plan = Plan::new(&node);
    (node, plan)
}

/// Three frontends: ports 0 and 1 in segment 1, port 2 alone in segment 2.
fn three() -> (&'static SwitchCell, Box<Fe>, Box<Fe>, Box<Fe>) {
    let sw = switch();
    let (node, plan) = plan_of(&[1, 1, 2], None);
    sw.with(|s| plan.apply(s, &node)).unwrap().unwrap();
    let a = Fe::new(sw, 0, mac(1));
    let b = Fe::new(sw, 1, mac(2));
    let c = Fe::new(sw, 2, mac(3));
    (sw, a, b, c)
}

fn drops(sw: &SwitchCell, fe: &mut Fe) -> Drops {
    let Dev::Net(d) = &mut fe.dev else {
        unreachable!()
    };
    let port = d.model().sink().port;
    let undelivered = d.model().sink().undelivered;
    let stats = sw.with(|s| s.stats(port)).unwrap();
    Drops::new(&stats, Some(d.model().counters()), undelivered)
}

#[test]
fn the_plan_connects_each_segment_and_the_uplink_is_the_last_port() {
    let (node, plan) = plan_of(&[7, 9, 7], Some(9));
    assert_eq!(plan.ports[..4], [Some(p(0)), Some(p(1)), Some(p(2)), None]);
    assert_eq!(plan.uplink, Some(p(3)));
    assert_eq!(plan.policy.reach(p(0)), PortMask::single(p(2)));
    assert_eq!(plan.policy.reach(p(1)), PortMask::single(p(3)));
    assert_eq!(plan.policy.reach(p(3)), PortMask::single(p(1)));
    assert!(plan.policy.is_symmetric());
    // The MACs are static: another port claiming one is spoofing.
    let sw = switch();
    sw.with(|s| plan.apply(s, &node)).unwrap().unwrap();
    let f = sw
        .with(|s| s.ingress(p(1), &frame(BROADCAST, mac(1), 60, 0), 0))
        .unwrap();
    assert_eq!(f.dropped, Some(crate::switch::DropReason::Spoofed));
    let (_, none) = plan_of(&[], None);
    assert_eq!(none.policy, Policy::ISOLATED);
}

#[test]
fn ports_of_one_segment_talk_and_the_other_segment_is_dropped_and_counted() {
    let (sw, mut a, mut b, mut c) = three();
    for fe in [&mut a, &mut b, &mut c] {
        fe.post_rx(4);
    }
    // A broadcast from port 0 reaches port 1 only.
    let hello = frame(BROADCAST, mac(1), 60, 0xa1);
    a.send(&hello);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), vec![hello]);
    assert!(a.received().is_empty() && c.received().is_empty());
    // Unicast back, to the now learned MAC.
    let reply = frame(mac(1), mac(2), 100, 0xb2);
    b.send(&reply);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(a.received(), vec![reply]);
    // Port 2 is separated: its broadcasts and its unicast to port 0 are dropped.
    for i in 0..3 {
        c.send(&frame(BROADCAST, mac(3), 60, i));
    }
    c.send(&frame(mac(1), mac(3), 60, 9));
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert!(a.received().is_empty() && b.received().is_empty());
    let d = drops(sw, &mut c);
    assert_eq!(d.policy, 4);
    assert_eq!(d.total(), 4);
    assert_eq!(
        DropsLine(p(2), d).to_string(),
        "net port 2: dropped 4 frames (policy 4, full 0, malformed 0, spoofed 0, undelivered 0)"
    );
    assert_eq!(drops(sw, &mut a).total(), 0);
    // The device's own report says the same, once.
    assert_eq!(
        sw.with(|s| c.dev.net_drops(s, 0))
            .unwrap()
            .map(|l| l.to_string()),
        Some(DropsLine(p(2), d).to_string())
    );
    assert!(sw.with(|s| c.dev.net_drops(s, 0)).unwrap().is_none());
}

#[test]
fn frames_wait_in_the_switch_until_the_driver_posts_receive_buffers() {
    let (sw, mut a, mut b, mut c) = three();
    b.post_rx(1);
    let frames: Vec<_> = (0..4).map(|i| frame(BROADCAST, mac(1), 64, i)).collect();
    for f in &frames {
        a.send(f);
    }
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), frames[..1]);
    let Dev::Net(d) = &b.dev else { unreachable!() };
    assert!(d.model().sink().rx_blocked);
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), 3);
    // Blocked: nothing is tried until the receive queue is notified.
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), 3);
    b.post_rx(8);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), frames[1..]);
    assert_eq!(drops(sw, &mut b).total(), 0);
}

#[test]
fn a_reset_empties_the_port() {
    let (sw, mut a, mut b, mut c) = three();
    for i in 0..3 {
        a.send(&frame(BROADCAST, mac(1), 64, i));
    }
    // Not delivered (no buffers), then the frontend resets its device.
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), 3);
    b.start();
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), 0);
    b.post_rx(2);
    let f = frame(BROADCAST, mac(1), 64, 7);
    a.send(&f);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), vec![f]);
}

#[test]
fn garbage_fails_only_its_own_device() {
    let (sw, mut a, mut b, mut c) = three();
    for fe in [&mut a, &mut b, &mut c] {
        fe.post_rx(8);
    }
    // Malformed transmits: dropped and counted, the device still works.
    let mut flagged = vec![0u8; HDR_LEN];
    flagged[1] = 1; // gso_type TCPV4
    flagged.extend(frame(BROADCAST, mac(2), 60, 0));
    let i = b.next_desc[1] % QSIZE;
    let at = Fe::buf(TX_QUEUE, i);
    b.put(at, &flagged);
    b.post(TX_QUEUE, at, flagged.len() as u32, 0);
    b.notify(TX_QUEUE);
    b.send(&[0xff; MIN_FRAME - 1]);
    b.send(&frame(BROADCAST, mac(2), 1519, 0));
    assert!(b.live());
    assert_eq!(drops(sw, &mut b).malformed, 3);
    // Spoofing port 0's MAC from port 1.
    b.send(&frame(BROADCAST, mac(1), 60, 0));
    assert_eq!(drops(sw, &mut b).spoofed, 1);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert!(a.received().is_empty());
    // Descriptor garbage: a buffer outside the window fails port 1's device.
    b.post(TX_QUEUE, FE_BASE + MEM as u64, 64, 0);
    if let WriteEffect::QueueNotify(q) = b.write_reg(reg::QUEUE_NOTIFY, 1) {
        // Served without `Dev::serve` (its log line needs Ferry's console).
        assert!(b.net().process_queue(q).is_err());
    }
    assert!(!b.live());
    // Port 0's broadcast is dropped at port 1 (undelivered), port 0 still works
    // with the others: here, it reaches no one else in its segment.
    let f = frame(BROADCAST, mac(1), 60, 5);
    a.send(&f);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(drops(sw, &mut b).undelivered, 1);
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), 0);
    // Port 1 recovers after a reset.
    b.start();
    b.post_rx(2);
    a.send(&f);
    deliver(sw, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), vec![f]);
}

#[test]
fn a_full_port_counts_its_losses_and_the_others_go_on() {
    let (sw, mut a, mut b, mut c) = three();
    let depth = sw.with(|s| s.depth()).unwrap();
    a.post_rx(1);
    c.post_rx(1);
    // Port 1 sends more to port 0 (its MAC is static there) than its queue
    // holds, one frame a round.
    for i in 0..depth + 4 {
        b.send(&frame(mac(1), mac(2), 60, i as u8));
        assert!(!deliver(sw, &mut [&mut a, &mut b, &mut c]));
    }
    assert_eq!(a.received().len(), 1, "its one buffer");
    let d = drops(sw, &mut a);
    assert_eq!((d.full, d.total()), (3, 3), "{d:?}");
    assert_eq!(
        drops(sw, &mut b).total(),
        0,
        "the sender lost nothing of its own"
    );
    // The other segment is not affected.
    let stats = sw.with(|s| s.stats(p(2))).unwrap();
    assert_eq!(stats.dropped_full, 0);
}

#[test]
fn a_burst_passes_in_rounds_without_drops() {
    let (sw, mut a, mut b, mut c) = three();
    b.post_rx(usize::from(QSIZE));
    let burst: Vec<_> = (0..12).map(|i| frame(mac(2), mac(1), 1514, i)).collect();
    a.send_all(&burst);
    let budget = usize::from(TX_BUDGET);
    assert_eq!(sw.with(|s| s.queued(p(1))).unwrap(), budget);
    assert!(deliver(sw, &mut [&mut a, &mut b, &mut c]), "the rest waits");
    assert_eq!(b.received(), burst[..budget]);
    resume(&mut [&mut a, &mut b, &mut c]);
    assert!(!deliver(sw, &mut [&mut a, &mut b, &mut c]));
    assert_eq!(b.received(), burst[budget..]);
    assert_eq!(drops(sw, &mut a).total() + drops(sw, &mut b).total(), 0);
}

#[test]
fn drop_lines_come_at_once_first_then_once_a_second() {
    let mut log = DropLog::new();
    assert!(!log.due(0, 0));
    assert!(log.due(1, 10));
    assert!(!log.due(1, 20), "nothing new");
    assert!(log.due(5, 20));
    assert!(log.due(8, 30));
    assert!(!log.due(9, 40), "after the first ones: once a second");
    assert!(!log.due(500, 1029));
    assert!(log.due(501, 1030));
    assert!(!log.due(502, 2029));
    assert!(log.due(502, 2030));
    // A burst from nothing is logged at once.
    let mut log = DropLog::new();
    assert!(log.due(1000, 5));
    assert!(!log.due(1001, 6));
}

#[test]
fn the_switch_is_handed_out_once_at_a_time() {
    let sw = switch();
    let nested = sw.with(|_| sw.with(|_| ()));
    assert_eq!(nested, Some(None));
    assert_eq!(sw.with(|_| 1), Some(1));
    // A sink whose frame comes while the switch is out counts it as lost.
    let mut sink = PortSink::new(p(0), sw);
    sw.with(|_| sink.transmit(&frame(BROADCAST, mac(1), 60, 0)))
        .unwrap()
        .unwrap();
    assert_eq!(sink.lost, 1);
    assert_eq!(MacAddr(mac(1)).to_string(), "02:46:52:59:00:01");
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Port 2 of segment 1 does random damage: garbage in its rings and
/// descriptors, malformed and spoofed frames, random register writes, resets.
/// Ports 0 and 1 of the same segment keep passing every frame, in order.
#[test]
fn a_frontend_sending_garbage_never_disturbs_the_others() {
    for seed in 1..=20u64 {
        let sw = switch();
        let (node, plan) = plan_of(&[1, 1, 1], None);
        sw.with(|s| plan.apply(s, &node)).unwrap().unwrap();
        let mut a = Fe::new(sw, 0, mac(1));
        let mut b = Fe::new(sw, 1, mac(2));
        let mut c = Fe::new(sw, 2, mac(3));
        b.post_rx(usize::from(QSIZE));
        c.post_rx(4);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut got = 0usize;
        for round in 0..300u32 {
            for _ in 0..rng.below(4) {
                garbage(&mut c, &mut rng);
            }
            let tag = round as u8;
            a.send(&frame(mac(2), mac(1), 60 + (round as usize % 1400), tag));
            deliver(sw, &mut [&mut a, &mut b, &mut c]);
            resume(&mut [&mut a, &mut b]);
            // c's waiting transmits, served without `Dev::serve` (whose error
            // line needs Ferry's console).
            let _ = c.net().process_queue(TX_QUEUE);
            let from_a: Vec<_> = b
                .received()
                .into_iter()
                .filter(|f| f[6..12] == mac(1))
                .collect();
            let n = b.seen[0].wrapping_sub(b.avail[0].wrapping_sub(QSIZE));
            b.post_rx(usize::from(n));
            assert_eq!(from_a.len(), 1, "seed {seed} round {round}");
            assert_eq!(from_a[0][14], tag, "seed {seed} round {round}");
            got += 1;
        }
        assert_eq!(got, 300);
        // Every frame of a's was forwarded (its own queue may overflow: a posts
        // no receive buffers while c floods).
        let stats = sw.with(|s| s.stats(p(0))).unwrap();
        assert_eq!((stats.rx, stats.rx_dropped()), (300, 0), "seed {seed}");
    }
}

/// One random misdeed of frontend `c`.
fn garbage(c: &mut Fe, rng: &mut Rng) {
    let q = rng.below(3) as u16;
    match rng.below(6) {
        // Random bytes in its rings, then a notify.
        0 => {
            let at = FE_BASE + DESC + rng.below(0x6000);
            let bytes: Vec<u8> = (0..rng.below(16) + 1).map(|_| rng.next() as u8).collect();
            c.put(at, &bytes);
            c_notify(c, q);
        }
        // A descriptor with a random address, length and flags.
        1 => {
            let addr = match rng.below(3) {
                0 => rng.next(),
                1 => FE_BASE + rng.below(MEM as u64 + 0x100),
                _ => Fe::buf(q, rng.below(u64::from(QSIZE)) as u16),
            };
            let len = rng.below(4000) as u32;
            let flags = rng.below(8) as u16;
            c.post(q.min(1), addr, len, flags);
            c_notify(c, q);
        }
        // A frame with a random header, length and addresses (often spoofed).
        2 => {
            let len = rng.below(1600) as usize + 1;
            let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 12 && rng.below(2) == 0 {
                f[6..12].copy_from_slice(&mac(rng.below(3) as u8 + 1));
            }
            let hdr: Vec<u8> = (0..HDR_LEN)
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.next() as u8
                    } else {
                        0
                    }
                })
                .collect();
            let i = c.next_desc[1] % QSIZE;
            let at = Fe::buf(TX_QUEUE, i);
            c.put(at, &hdr);
            c.put(at + HDR_LEN as u64, &f);
            c.post(TX_QUEUE, at, (HDR_LEN + len) as u32, 0);
            c_notify(c, TX_QUEUE);
        }
        // A random register write.
        3 => {
            let off = [
                reg::STATUS,
                reg::QUEUE_SEL,
                reg::QUEUE_NUM,
                reg::QUEUE_READY,
                reg::QUEUE_RESET,
                reg::QUEUE_DESC_LOW,
                reg::INTERRUPT_ACK,
                0x100,
            ][rng.below(8) as usize];
            let v = rng.below(0x100);
            if let WriteEffect::QueueNotify(q) = c.write_reg(off, v) {
                let _ = c.net().process_queue(q);
            }
        }
        // Receive buffers of random sizes.
        4 => {
            let i = c.next_desc[0] % QSIZE;
            let len = rng.below(2000) as u32;
            c.post(RX_QUEUE, Fe::buf(RX_QUEUE, i), len, desc_flags::WRITE);
            c_notify(c, RX_QUEUE);
        }
        // A reset and a fresh start.
        _ => {
            c.start();
            c.post_rx(2);
        }
    }
}

/// QueueNotify(q) of `c`, served without `Dev::serve` (see above).
fn c_notify(c: &mut Fe, q: u16) {
    if let WriteEffect::QueueNotify(q) = c.write_reg(reg::QUEUE_NOTIFY, u64::from(q)) {
        if q == RX_QUEUE {
            c.net().model_mut().sink_mut().rx_blocked = false;
        }
        let _ = c.net().process_queue(q);
    }
}

/// Transmit requests that wait for the next round's budget are forgotten when
/// their device fails meanwhile: the loop does not spin on them.
#[test]
fn a_failed_device_has_nothing_waiting() {
    let (sw, mut a, mut b, mut c) = three();
    b.post_rx(usize::from(QSIZE));
    let burst: Vec<_> = (0..12).map(|i| frame(mac(2), mac(1), 60, i)).collect();
    a.send_all(&burst);
    // a's receive buffer is too short for a header: delivering to it fails it.
    a.post(RX_QUEUE, Fe::buf(RX_QUEUE, 0), 4, desc_flags::WRITE);
    let _ = a.write_reg(reg::QUEUE_NOTIFY, u64::from(RX_QUEUE));
    b.send(&frame(mac(1), mac(2), 60, 0));
    assert!(!deliver(sw, &mut [&mut a, &mut b, &mut c]));
    assert!(!a.live());
    // Nothing to resume (and nothing to log: that would need Ferry's console).
    resume(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(b.received(), burst[..usize::from(TX_BUDGET)]);
}
