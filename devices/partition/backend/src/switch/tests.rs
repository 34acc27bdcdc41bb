//! Host tests of the switch.
use super::*;
use std::collections::HashMap;

/// A switch with 4-frame queues (48 KB: fine on a test thread's stack).
type Small = Switch<4>;

fn p(i: usize) -> PortId {
    PortId::new(i).unwrap()
}

fn ports(list: &[usize]) -> PortMask {
    list.iter().fold(PortMask::EMPTY, |m, &i| m.with(p(i)))
}

/// A locally administered unicast MAC.
fn mac(n: u8) -> Mac {
    [0x02, 0, 0, 0, 0, n]
}

const MULTICAST: Mac = [0x01, 0x00, 0x5e, 0, 0, 1];

/// A `len`-byte IPv4 frame from `src` to `dst`, its payload starting with `tag`.
fn frame(dst: Mac, src: Mac, len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    if len >= MIN_FRAME {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
    }
    for (i, b) in f.iter_mut().enumerate().skip(MIN_FRAME) {
        *b = tag.wrapping_add(i as u8);
    }
    f
}

fn send(sw: &mut Small, port: usize, dst: Mac, src: Mac, now: u64) -> Forwarded {
    sw.ingress(p(port), &frame(dst, src, 64, 0), now)
}

/// Takes every frame queued for `port`.
fn drain(sw: &mut Small, port: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(f) = sw.front(p(port)) {
        out.push(f.to_vec());
        assert!(sw.pop(p(port)));
    }
    out
}

#[test]
fn policy_helpers() {
    assert_eq!(PortId::new(MAX_PORTS), None);
    assert_eq!(PortMask::from_bits(u32::MAX), PortMask::ALL);
    let mesh = Policy::mesh(ports(&[0, 1, 2]));
    assert_eq!(mesh.reach(p(1)), ports(&[0, 2]));
    assert_eq!(mesh.reach(p(3)), PortMask::EMPTY);
    assert!(mesh.is_symmetric());
    let one_way = Policy::ISOLATED.allow(p(0), p(1)).allow(p(2), p(2));
    assert!(!one_way.is_symmetric() && one_way.allows(p(0), p(1)) && !one_way.allows(p(1), p(0)));
    assert!(!one_way.allows(p(2), p(2)));
    let masks = Policy::from_masks([PortMask::ALL; MAX_PORTS]);
    assert!(!masks.reach(p(5)).contains(p(5)) && masks.reach(p(5)).len() == MAX_PORTS - 1);
    assert_eq!(
        Policy::ISOLATED.connect(p(0), p(3)),
        Policy::mesh(ports(&[0, 3]))
    );
}

#[test]
fn learning_and_ageing() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    assert_eq!(sw.ageing_ms(), DEFAULT_AGEING_MS);
    sw.set_ageing_ms(1000);
    assert_eq!(sw.learned(&mac(1), 0), None);
    send(&mut sw, 0, BROADCAST, mac(1), 100);
    assert_eq!(sw.learned(&mac(1), 100), Some(p(0)));
    assert_eq!(sw.learned(&mac(1), 1100), Some(p(0)));
    assert_eq!(sw.learned(&mac(1), 1101), None);
    // An aged MAC is unknown: a frame for it floods; seen again, it is learned again.
    let r = send(&mut sw, 1, mac(1), mac(2), 1101);
    assert!(r.flooded && r.to == ports(&[0, 2]));
    send(&mut sw, 0, BROADCAST, mac(1), 1200);
    assert_eq!(sw.learned(&mac(1), 2200), Some(p(0)));
    assert_eq!(sw.table_stats().aged, 1);
    // Refreshing keeps an entry alive; expire() frees the others.
    send(&mut sw, 0, BROADCAST, mac(1), 2000);
    assert_eq!(sw.expire(2500), 1); // mac(2), seen at 1101
    assert_eq!(sw.learned(&mac(1), 2500), Some(p(0)));
    assert_eq!(
        sw.table_stats(),
        TableStats {
            learned: 3,
            aged: 2,
            ..TableStats::default()
        }
    );
    // A clock that goes backwards does not age anything.
    assert_eq!(sw.learned(&mac(1), 0), Some(p(0)));
    sw.set_ageing_ms(DEFAULT_AGEING_MS);
    assert_eq!(sw.ageing_ms(), DEFAULT_AGEING_MS);
    sw.set_ageing_ms(0);
    assert_eq!(sw.ageing_ms(), 1);
}

#[test]
fn unicast_to_learned_mac() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    send(&mut sw, 1, BROADCAST, mac(2), 0);
    drain(&mut sw, 0);
    drain(&mut sw, 2);
    let f = frame(mac(2), mac(1), 100, 7);
    let r = sw.ingress(p(0), &f, 5);
    assert_eq!(
        r,
        Forwarded {
            to: ports(&[1]),
            full: PortMask::EMPTY,
            flooded: false,
            dropped: None
        }
    );
    assert_eq!(drain(&mut sw, 1), vec![f]);
    assert_eq!(sw.pending(), PortMask::EMPTY);
    let (s0, s1) = (sw.stats(p(0)), sw.stats(p(1)));
    assert_eq!((s0.rx, s0.rx_bytes, s0.forwarded, s0.tx), (1, 100, 1, 1));
    assert_eq!((s1.rx, s1.forwarded, s1.tx, s1.tx_bytes), (1, 1, 1, 100));
    assert_eq!(sw.stats(p(2)).tx, 1);
}

#[test]
fn flood_stays_within_policy() {
    // 0 is a hub for 1 and 2; 3 reaches nobody; 4 reaches 0 one way.
    let policy = Policy::ISOLATED
        .connect(p(0), p(1))
        .connect(p(0), p(2))
        .allow(p(4), p(0));
    let mut sw = Small::new(policy);
    let r = send(&mut sw, 0, mac(9), mac(1), 0);
    assert!(r.flooded && r.to == ports(&[1, 2]));
    assert_eq!(send(&mut sw, 1, BROADCAST, mac(2), 0).to, ports(&[0]));
    assert_eq!(send(&mut sw, 2, MULTICAST, mac(3), 0).to, ports(&[0]));
    assert_eq!(send(&mut sw, 4, BROADCAST, mac(5), 0).to, ports(&[0]));
    let r = send(&mut sw, 3, BROADCAST, mac(4), 0);
    assert_eq!(r.dropped, Some(DropReason::Policy));
    assert!(r.flooded && r.to.is_empty());
    assert_eq!(sw.stats(p(3)).dropped_policy, 1);
    assert_eq!(sw.pending(), ports(&[0, 1, 2]));
    assert_eq!(
        (sw.queued(p(0)), sw.queued(p(3)), sw.queued(p(4))),
        (3, 0, 0)
    );
    // Nothing goes back to 4: its traffic is one-way.
    assert_eq!(
        send(&mut sw, 0, mac(5), mac(1), 1).dropped,
        Some(DropReason::Policy)
    );
    assert_eq!(sw.stats(p(0)).dropped_policy, 1);
}

#[test]
fn separated_ports_drop_and_count() {
    let policy = Policy::ISOLATED.connect(p(0), p(1)).connect(p(0), p(2));
    let mut sw = Small::new(policy);
    send(&mut sw, 2, BROADCAST, mac(3), 0);
    send(&mut sw, 1, BROADCAST, mac(2), 0);
    drain(&mut sw, 0);
    for i in 0..3 {
        assert_eq!(
            send(&mut sw, 1, mac(3), mac(2), i).dropped,
            Some(DropReason::Policy)
        );
    }
    assert_eq!(
        send(&mut sw, 2, mac(2), mac(3), 9).dropped,
        Some(DropReason::Policy)
    );
    let (s1, s2) = (sw.stats(p(1)), sw.stats(p(2)));
    assert_eq!(
        (s1.rx, s1.forwarded, s1.dropped_policy, s1.tx),
        (4, 1, 3, 0)
    );
    assert_eq!(
        (s2.rx, s2.forwarded, s2.dropped_policy, s2.tx),
        (2, 1, 1, 0)
    );
    assert_eq!(sw.pending(), PortMask::EMPTY);
    // Through the hub they still talk.
    assert_eq!(send(&mut sw, 0, mac(3), mac(1), 10).to, ports(&[2]));
}

#[test]
fn a_port_that_never_drains_does_not_stall_the_others() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    send(&mut sw, 2, mac(1), mac(3), 0); // port 2 learned; its queue stays empty
    drain(&mut sw, 0);
    drain(&mut sw, 1);
    let mut got = Vec::new();
    for i in 0..10u8 {
        let r = sw.ingress(p(0), &frame(BROADCAST, mac(1), 60, i), u64::from(i));
        assert_eq!(r.to, if i < 4 { ports(&[1, 2]) } else { ports(&[1]) });
        assert_eq!(r.full, if i < 4 { PortMask::EMPTY } else { ports(&[2]) });
        got.extend(drain(&mut sw, 1));
    }
    let tags: Vec<u8> = got
        .iter()
        .map(|f| f[MIN_FRAME].wrapping_sub(MIN_FRAME as u8))
        .collect();
    assert_eq!(tags, (0..10).collect::<Vec<_>>());
    assert_eq!(sw.queued(p(2)), 4);
    let s2 = sw.stats(p(2));
    assert_eq!((s2.tx, s2.dropped_full), (4, 6));
    assert_eq!(sw.stats(p(0)).forwarded, 10);
    // Unicast to the stalled port alone: dropped, counted on both sides.
    let r = send(&mut sw, 0, mac(3), mac(1), 20);
    assert_eq!(
        (r.to, r.full, r.dropped),
        (PortMask::EMPTY, ports(&[2]), Some(DropReason::Full))
    );
    assert_eq!(
        (
            sw.stats(p(0)).dropped_congested,
            sw.stats(p(2)).dropped_full
        ),
        (1, 7)
    );
    // Once it drains it gets frames again, oldest first.
    assert_eq!(drain(&mut sw, 2).len(), 4);
    assert_eq!(send(&mut sw, 0, mac(3), mac(1), 21).to, ports(&[2]));
}

#[test]
fn mac_moves_between_ports() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    send(&mut sw, 0, BROADCAST, mac(1), 0);
    send(&mut sw, 1, BROADCAST, mac(1), 1);
    assert_eq!(sw.learned(&mac(1), 1), Some(p(1)));
    assert_eq!(send(&mut sw, 2, mac(1), mac(3), 2).to, ports(&[1]));
    send(&mut sw, 1, BROADCAST, mac(1), 3);
    let t = sw.table_stats();
    assert_eq!((t.learned, t.moves), (2, 1));
}

#[test]
fn full_table_replaces_the_least_recently_seen() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1])));
    sw.set_ageing_ms(10_000);
    for i in 0..MAC_TABLE_SIZE as u8 {
        sw.ingress(p(0), &frame(BROADCAST, mac(i), 60, 0), u64::from(i));
        drain(&mut sw, 1);
    }
    send(&mut sw, 0, BROADCAST, mac(0), 100); // refreshes mac(0): mac(1) is now the oldest
    drain(&mut sw, 1);
    send(&mut sw, 1, BROADCAST, mac(200), 101);
    assert_eq!(sw.learned(&mac(1), 101), None);
    assert_eq!(sw.learned(&mac(0), 101), Some(p(0)));
    assert_eq!(sw.learned(&mac(200), 101), Some(p(1)));
    assert_eq!(sw.table_stats().evicted, 1);
    // An expired entry is reused before any live one is evicted.
    send(&mut sw, 0, BROADCAST, mac(2), 10_050); // aged, learned again in place
    send(&mut sw, 1, BROADCAST, mac(201), 10_060); // mac(3)..: expired at 10_060
    assert_eq!(sw.learned(&mac(201), 10_060), Some(p(1)));
    assert_eq!(sw.learned(&mac(0), 10_060), Some(p(0)));
    assert_eq!(sw.learned(&mac(2), 10_060), Some(p(0)));
    let t = sw.table_stats();
    assert_eq!(
        (t.evicted, t.aged, t.learned),
        (1, 2, MAC_TABLE_SIZE as u64 + 3)
    );
}

#[test]
fn malformed_frames() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1])));
    for len in [0, 1, MIN_FRAME - 1, MAX_FRAME + 1, 9000] {
        let r = sw.ingress(p(0), &frame(BROADCAST, mac(1), len.max(12), 0)[..len], 0);
        assert_eq!(
            (r.to, r.dropped),
            (PortMask::EMPTY, Some(DropReason::Malformed))
        );
    }
    assert_eq!(sw.learned(&mac(1), 0), None);
    for len in [MIN_FRAME, MAX_FRAME] {
        let f = frame(BROADCAST, mac(1), len, 3);
        assert_eq!(sw.ingress(p(0), &f, 0).to, ports(&[1]));
        assert_eq!(drain(&mut sw, 1), vec![f]);
    }
    let s = sw.stats(p(0));
    assert_eq!((s.rx, s.dropped_malformed, s.forwarded), (7, 5, 2));
    assert_eq!(
        s.rx_bytes,
        (MIN_FRAME - 1 + MAX_FRAME + 1 + 9000 + 1 + MIN_FRAME + MAX_FRAME) as u64
    );
}

#[test]
fn group_and_zero_sources_are_not_learned() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1])));
    for src in [MULTICAST, BROADCAST, [0; 6]] {
        assert_eq!(send(&mut sw, 0, mac(7), src, 0).to, ports(&[1]));
        assert_eq!(sw.learned(&src, 0), None);
    }
    assert_eq!(sw.table_stats().learned, 0);
    assert_eq!(sw.add_static(MULTICAST, p(0)), Err(BindError::NotUnicast));
    assert_eq!(sw.add_static([0; 6], p(0)), Err(BindError::NotUnicast));
}

#[test]
fn never_back_out_of_the_ingress_port() {
    // Port 0 is an uplink with two stations behind it.
    let mut sw = Small::new(Policy::from_masks([PortMask::ALL; MAX_PORTS]));
    send(&mut sw, 0, BROADCAST, mac(1), 0);
    send(&mut sw, 0, BROADCAST, mac(2), 0);
    assert!(!sw.pending().contains(p(0)));
    let r = send(&mut sw, 0, mac(2), mac(1), 1);
    assert_eq!(
        (r.to, r.dropped),
        (PortMask::EMPTY, Some(DropReason::Local))
    );
    // A frame to itself too.
    assert_eq!(
        send(&mut sw, 0, mac(1), mac(1), 1).dropped,
        Some(DropReason::Local)
    );
    let s = sw.stats(p(0));
    assert_eq!((s.rx, s.forwarded, s.dropped_local, s.tx), (4, 2, 2, 0));
}

#[test]
fn static_entries_pin_a_mac_to_its_port() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    sw.set_ageing_ms(10);
    send(&mut sw, 2, BROADCAST, mac(1), 0);
    sw.add_static(mac(1), p(1)).unwrap();
    assert_eq!(sw.learned(&mac(1), u64::MAX), Some(p(1)));
    let r = send(&mut sw, 2, mac(9), mac(1), 50);
    assert_eq!(r.dropped, Some(DropReason::Spoofed));
    assert_eq!(sw.stats(p(2)).dropped_spoofed, 1);
    assert_eq!(send(&mut sw, 1, BROADCAST, mac(1), 60).to, ports(&[0, 2]));
    assert_eq!(send(&mut sw, 0, mac(1), mac(5), 70).to, ports(&[1]));
    assert_eq!(sw.expire(1000), 1); // mac(5), never the static one
    assert_eq!(sw.forget_port(p(1)), 0);
    // A table of static entries only learns nothing more.
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1])));
    for i in 0..MAC_TABLE_SIZE as u8 {
        sw.add_static(mac(i), p(0)).unwrap();
    }
    assert_eq!(sw.add_static(mac(100), p(0)), Err(BindError::TableFull));
    assert_eq!(send(&mut sw, 1, BROADCAST, mac(100), 0).to, ports(&[0]));
    assert_eq!(
        (sw.learned(&mac(100), 0), sw.table_stats().refused),
        (None, 1)
    );
}

#[test]
fn queue_helpers() {
    let mut sw = Small::new(Policy::mesh(ports(&[0, 1, 2])));
    assert_eq!(sw.depth(), 4);
    let f = frame(BROADCAST, mac(1), 80, 1);
    sw.ingress(p(0), &f, 0);
    sw.ingress(p(0), &f, 0);
    let mut small = [0; 79];
    assert_eq!(sw.pop_into(p(1), &mut small), None);
    let mut buf = [0; MAX_FRAME];
    assert_eq!(sw.pop_into(p(1), &mut buf), Some(80));
    assert_eq!(&buf[..80], &f[..]);
    assert_eq!(
        (sw.queued(p(1)), sw.flush(p(1)), sw.queued(p(1))),
        (1, 1, 0)
    );
    assert!(!sw.pop(p(1)) && sw.front(p(1)).is_none());
    assert_eq!(sw.pending(), ports(&[2]));
    assert_eq!((sw.forget_port(p(0)), sw.learned(&mac(1), 0)), (1, None));
    sw.set_policy(Policy::ISOLATED);
    assert_eq!(*sw.policy(), Policy::ISOLATED);
    assert_eq!(
        send(&mut sw, 2, BROADCAST, mac(2), 0).dropped,
        Some(DropReason::Policy)
    );
    assert_eq!(sw.queued(p(2)), 2);
}

/// xorshift64: deterministic pseudo-random numbers.
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

/// What the switch must do with one frame, from a simple model of the table (no
/// eviction: fewer MACs than entries): the destinations it must try, or the drop.
fn expected(
    model: &mut HashMap<Mac, (PortId, u64)>,
    policy: &Policy,
    (port, f, now): (PortId, &[u8], u64),
) -> Result<PortMask, DropReason> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&f.len()) {
        return Err(DropReason::Malformed);
    }
    let (dst, src): (Mac, Mac) = (f[..6].try_into().unwrap(), f[6..12].try_into().unwrap());
    if learnable(&src) {
        model.insert(src, (port, now));
    }
    let reach = policy.reach(port);
    let dests = match model.get(&dst) {
        Some(&(to, seen)) if !is_multicast(&dst) && now - seen <= 2000 => {
            if to == port {
                return Err(DropReason::Local);
            }
            reach.intersect(PortMask::single(to))
        }
        _ => reach,
    };
    if dests.is_empty() {
        Err(DropReason::Policy)
    } else {
        Ok(dests)
    }
}

/// One random run among 4 ports; returns (frames delivered, unicast frames forwarded,
/// the ports' counters summed).
fn random_run(seed: u64) -> (u64, u64, PortStats) {
    let mut rng = Rng(seed);
    let reach = core::array::from_fn(|_| PortMask::from_bits(rng.below(16) as u32));
    let policy = Policy::from_masks(reach);
    let mut sw = Small::new(policy);
    sw.set_ageing_ms(2000);
    let macs: Vec<Mac> = (0..10).map(mac).chain([BROADCAST, MULTICAST]).collect();
    let (mut model, mut now, mut delivered) = (HashMap::new(), 0, 0);
    let (mut sent_to, mut refused, mut unicast) = (0, 0, 0);
    let (mut last_seq, slow) = ([None; 4], rng.below(4) as usize);
    for seq in 0..3000u32 {
        now += rng.below(40);
        let port = p(rng.below(4) as usize);
        let len = match rng.below(20) {
            0 => rng.below(MIN_FRAME as u64) as usize,
            1 => MAX_FRAME + 1 + rng.below(100) as usize,
            _ => MIN_FRAME + 5 + rng.below((MAX_FRAME - MIN_FRAME - 4) as u64) as usize,
        };
        let (dst, src) = (macs[rng.below(12) as usize], macs[rng.below(12) as usize]);
        let mut f = frame(dst, src, len.max(MIN_FRAME + 5), 0);
        f[MIN_FRAME] = port.0;
        f[MIN_FRAME + 1..MIN_FRAME + 5].copy_from_slice(&seq.to_le_bytes());
        f.truncate(len);
        let want = expected(&mut model, &policy, (port, &f, now));
        let r = sw.ingress(port, &f, now);
        assert!(
            policy.reach(port).bits() & r.to.bits() == r.to.bits(),
            "{r:?}"
        );
        assert!(!r.to.contains(port) && r.to.intersect(r.full).is_empty());
        assert_eq!(r.dropped.is_none(), !r.to.is_empty());
        match want {
            Ok(dests) => assert_eq!(r.to.bits() | r.full.bits(), dests.bits(), "{seq}"),
            Err(reason) => assert_eq!(
                (r.dropped, r.to, r.full),
                (Some(reason), r.to, PortMask::EMPTY)
            ),
        }
        (sent_to, refused) = (sent_to + r.to.len() as u64, refused + r.full.len() as u64);
        unicast += u64::from(!r.flooded && r.dropped.is_none());
        // Each port's driver takes a few frames, sometimes none; one port is slow.
        for (i, last) in last_seq.iter_mut().enumerate() {
            let n = if i == slow {
                u64::from(rng.below(8) == 0)
            } else {
                rng.below(3)
            };
            for _ in 0..n {
                let Some(g) = sw.front(p(i)) else { break };
                let from = p(usize::from(g[MIN_FRAME]));
                assert!(
                    policy.allows(from, p(i)),
                    "{from:?} reached {i} against the policy"
                );
                let s = u32::from_le_bytes(g[MIN_FRAME + 1..MIN_FRAME + 5].try_into().unwrap());
                assert!(last.is_none_or(|l| l < s), "out of order");
                *last = Some(s);
                sw.pop(p(i));
                delivered += 1;
            }
        }
    }
    let all = || PortMask::ALL.iter().map(|i| sw.stats(i));
    assert!(all().all(|s| s.rx == s.forwarded + s.rx_dropped()));
    assert_eq!(all().map(|s| s.rx).sum::<u64>(), 3000);
    assert_eq!(all().map(|s| s.tx).sum::<u64>(), sent_to);
    assert_eq!(all().map(|s| s.dropped_full).sum::<u64>(), refused);
    let queued: u64 = PortMask::ALL.iter().map(|i| sw.queued(i) as u64).sum();
    assert_eq!(sent_to, delivered + queued);
    assert!(PortMask::ALL.iter().all(|i| sw.queued(i) <= sw.depth()));
    let sum = all().fold(PortStats::default(), |a, s| PortStats {
        dropped_malformed: a.dropped_malformed + s.dropped_malformed,
        dropped_policy: a.dropped_policy + s.dropped_policy,
        dropped_local: a.dropped_local + s.dropped_local,
        dropped_congested: a.dropped_congested + s.dropped_congested,
        dropped_full: a.dropped_full + s.dropped_full,
        ..a
    });
    (delivered, unicast, sum)
}

#[test]
fn random_traffic_keeps_the_invariants() {
    let (mut delivered, mut unicast, mut drops) = (0, 0, Vec::new());
    for seed in 1..=20u64 {
        let (d, u, s) = random_run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        (delivered, unicast) = (delivered + d, unicast + u);
        drops.push(s);
    }
    assert!(
        delivered > 10_000 && unicast > 1000,
        "{delivered} {unicast}"
    );
    // Every path was taken somewhere.
    let some = |f: fn(&PortStats) -> u64| drops.iter().map(f).sum::<u64>() > 100;
    assert!(some(|s| s.dropped_malformed) && some(|s| s.dropped_policy));
    assert!(some(|s| s.dropped_local) && some(|s| s.dropped_full));
    assert!(drops.iter().map(|s| s.dropped_congested).sum::<u64>() > 0);
}
