//! Interrupt probes against the vGIC: ICC_SGI1R_EL1 and GICD_IROUTER fuzz, pending
//! hardware-linked interrupts by hand, redistributor frames beyond the partition's
//! vCPUs, wrong-sized register accesses, and accesses the syndrome cannot describe.
//!
//! Several use the PL031 RTC passed through to the partition (QEMU virt: SPI 2,
//! INTID 34, level): its alarm is a real hardware interrupt the probe can raise at
//! will (RTCMR = RTCDR fires at once, RTCMR = RTCDR + 1 within a second) and clear
//! (RTCICR).

use core::sync::atomic::{AtomicU32, Ordering};

use ferry_partition_rt::gic::{self, gicd};
use ferry_partition_rt::{Boot, arch, fail, irq, println, psci, time};

use super::util::{self, Rng, read64, write64};
use crate::check;

/// SGIs taken, per (vCPU, INTID).
static SGI: [[AtomicU32; 16]; 2] = [const { [const { AtomicU32::new(0) }; 16] }; 2];
/// RTC alarms taken per vCPU with RTCMIS set (real), and without (phantom).
pub(super) static RTC_REAL: [AtomicU32; 2] = [const { AtomicU32::new(0) }; 2];
pub(super) static RTC_PHANTOM: [AtomicU32; 2] = [const { AtomicU32::new(0) }; 2];
/// Anything else.
pub(super) static STRAY: AtomicU32 = AtomicU32::new(0);
/// The RTC's base and INTID (0: none).
static RTC_BASE: AtomicU32 = AtomicU32::new(0);
pub(super) static RTC_INTID: AtomicU32 = AtomicU32::new(0);

/// PL031 registers.
mod pl031 {
    pub const DR: u64 = 0x000;
    pub const MR: u64 = 0x004;
    pub const IMSC: u64 = 0x010;
    pub const MIS: u64 = 0x018;
    pub const ICR: u64 = 0x01c;
}

fn rtc(off: u64) -> u64 {
    u64::from(RTC_BASE.load(Ordering::Relaxed)) + off
}

fn handler(intid: u32) {
    let v = arch::vcpu_index().min(1);
    if intid < 16 {
        SGI[v][intid as usize].fetch_add(1, Ordering::Relaxed);
    } else if intid == RTC_INTID.load(Ordering::Relaxed) {
        // SAFETY: the partition's own passthrough RTC.
        let mis = unsafe { util::read32(rtc(pl031::MIS)) };
        if mis & 1 == 1 {
            // SAFETY: as above; clears the alarm (the line is level) before the EOI.
            unsafe { util::write32(rtc(pl031::ICR), 1) };
            RTC_REAL[v].fetch_add(1, Ordering::Relaxed);
        } else {
            RTC_PHANTOM[v].fetch_add(1, Ordering::Relaxed);
        }
    } else {
        STRAY.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sets up the GIC on vCPU 0 (distributor too) with every SGI enabled, the handler
/// installed and IRQs unmasked; `rtc`: also finds the passthrough PL031 and enables
/// its SPI (level, priority 0xa0, routed to vCPU 0).
pub(super) fn setup(boot: &Boot, rtc_too: bool) {
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("hostile: GIC set-up: {e}");
    }
    if rtc_too {
        let Some(node) = boot.fdt().find_compatible(&["arm,pl031"]) else {
            fail!("hostile: no arm,pl031 node: the config must pass the RTC through")
        };
        let base = util::node_base(boot, "arm,pl031").unwrap_or(0);
        let spi = node
            .property("interrupts")
            .and_then(|p| p.value.get(4..8))
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
            .unwrap_or_else(|| fail!("hostile: the RTC node has no interrupts"));
        RTC_BASE.store(base as u32, Ordering::Relaxed);
        RTC_INTID.store(spi + 32, Ordering::Relaxed);
        let id = spi + 32;
        gic::set_dist_config(id, false);
        gic::set_dist_priority(id, 0xa0);
        gic::set_dist_router(id, gic::router_for(0));
        gic::dist_write_bit(gic::gicd::ISENABLER, id);
        println!("hostile: PL031 at {base:#x}, INTID {id}");
    }
    gic::set_handler(handler);
    for sgi in 0..16 {
        gic::set_private_priority(sgi, 0x80);
    }
    gic::enable_private(0xffff);
    irq::enable();
}

/// vCPU 1: GIC up, every SGI enabled, IRQs on, waits for interrupts forever.
fn secondary(_: u64) -> ! {
    if let Err(e) = gic::cpu_init() {
        fail!("hostile: vCPU 1 GIC set-up: {e}");
    }
    for sgi in 0..16 {
        gic::set_private_priority(sgi, 0x80);
    }
    gic::enable_private(0xffff);
    irq::enable();
    loop {
        irq::wfi();
    }
}

/// Starts vCPU 1 (see [`secondary`]) and waits until its redistributor is set up.
pub(super) fn start_vcpu1() {
    let r = psci::cpu_on(1, secondary, 0);
    if r != psci::ret::SUCCESS {
        fail!("hostile: CPU_ON(1) = {r}");
    }
    let d = time::Deadline::after_ms(2000);
    while gic::redist_of(1) == 0 {
        if d.passed() {
            fail!("hostile: vCPU 1 did not come up");
        }
    }
    time::delay_ms(5);
}

fn sgi_total() -> u32 {
    SGI.iter()
        .flatten()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
}

/// The vCPUs (bit n = vCPU n, of `vcpus`) an ICC_SGI1R_EL1 value written by vCPU 0
/// names, as the architecture says for a partition whose vCPU n has MPIDR n.
fn sgi_targets(v: u64, vcpus: u64) -> u64 {
    if v >> 40 & 1 == 1 {
        return ((1 << vcpus) - 1) & !1;
    }
    let upper = (v >> 16 & 0xff) | (v >> 32 & 0xff) | (v >> 48 & 0xff);
    if upper != 0 {
        return 0;
    }
    let rs = v >> 44 & 0xf;
    (0..16)
        .filter(|b| v >> b & 1 == 1)
        .map(|b| rs * 16 + b)
        .filter(|&t| t < vcpus)
        .fold(0, |m, t| m | 1 << t)
}

/// `probe=sgi1r-fuzz [count=<n>] [seed=<hex>]` (2 vCPUs): vCPU 0 writes `n` random
/// ICC_SGI1R_EL1 values (target lists, Aff1-3, RS, IRM, RES0 bits); each must reach
/// exactly the vCPUs the architecture names within this partition — each once —
/// and nothing else (a victim beside it counts stray SGIs).
pub fn sgi1r_fuzz(boot: &Boot) -> ! {
    let count = boot.arg_u64("count").unwrap_or(2000);
    let mut rng = Rng::new(boot.arg_hex("seed").unwrap_or(0x5a1));
    setup(boot, false);
    start_vcpu1();
    let (mut delivered, mut nobody) = (0u64, 0u64);
    for i in 0..count {
        let mut v = rng.below(16) << 24;
        v |= if rng.one_in(4) {
            rng.below(4)
        } else {
            rng.next() & 0xffff
        };
        if rng.one_in(4) {
            v |= (rng.next() & 0xff) << 16;
        }
        if rng.one_in(8) {
            v |= (rng.next() & 0xff) << 32;
        }
        if rng.one_in(8) {
            v |= (rng.next() & 0xff) << 48;
        }
        if rng.one_in(4) {
            v |= (rng.next() & 0xf) << 44;
        }
        if rng.one_in(8) {
            v |= 1 << 40;
        }
        if rng.one_in(4) {
            // RES0 fields: 31:28, 43:41, 63:56.
            v |= rng.next() & (0xf << 28 | 0x7 << 41 | 0xff << 56);
        }
        let targets = sgi_targets(v, 2);
        let intid = (v >> 24 & 0xf) as usize;
        let before: [u32; 2] = [0, 1].map(|t| SGI[t][intid].load(Ordering::Relaxed));
        let total = sgi_total();
        gic::write_sgi1r(v);
        let d = time::Deadline::after_ms(200);
        let arrived = |t: usize| SGI[t][intid].load(Ordering::Relaxed) > before[t];
        while (0..2).any(|t| targets >> t & 1 == 1 && !arrived(t)) && !d.passed() {}
        // A short grace for an SGI that should not come at all.
        if targets == 0 {
            time::delay_ms(1);
        }
        let got = sgi_total() - total;
        let ok = check!(
            (0..2).all(|t| (targets >> t & 1 == 1) == arrived(t)) && got == targets.count_ones(),
            "sgi1r-fuzz: #{i} ICC_SGI1R_EL1 = {v:#x} names vCPUs {targets:#b}; {got} SGIs arrived (vCPU 0 {}, vCPU 1 {})",
            SGI[0][intid].load(Ordering::Relaxed) - before[0],
            SGI[1][intid].load(Ordering::Relaxed) - before[1]
        );
        if !ok {
            break;
        }
        if targets == 0 {
            nobody += 1;
        } else {
            delivered += 1;
        }
    }
    let total = sgi_total();
    time::delay_ms(100);
    check!(
        sgi_total() == total && STRAY.load(Ordering::Relaxed) == 0,
        "sgi1r-fuzz: nothing more arrived in the 100 ms after ({} more SGIs, {} other interrupts)",
        sgi_total() - total,
        STRAY.load(Ordering::Relaxed)
    );
    println!(
        "hostile: sgi1r-fuzz: {count} values: {delivered} delivered exactly as named, {nobody} named no vCPU here and reached none"
    );
    util::verdict("sgi1r-fuzz")
}

/// Makes the RTC alarm fire: RTCMR = RTCDR (at once), falling back to RTCDR + 1
/// (within a second) if nothing latched in 20 ms.
fn rtc_fire() {
    // SAFETY: the partition's own passthrough RTC.
    unsafe {
        util::write32(rtc(pl031::IMSC), 1);
        let dr = util::read32(rtc(pl031::DR));
        util::write32(rtc(pl031::MR), dr);
    }
}

/// Real RTC alarms taken on vCPU 0 and 1.
fn rtc_real() -> [u32; 2] {
    [0, 1].map(|v| RTC_REAL[v].load(Ordering::Relaxed))
}

/// Fires the alarm and waits up to `ms` for a delivery; returns which vCPUs took it
/// (bit n: vCPU n) and how many times in all.
pub(super) fn rtc_delivery(ms: u64) -> (u32, u32) {
    let before = rtc_real();
    let t0 = time::ticks();
    rtc_fire();
    let mut refired = false;
    loop {
        let now = rtc_real();
        if (0..2).any(|v| now[v] > before[v]) {
            // Let a duplicate delivery show up.
            time::delay_ms(20);
            let now = rtc_real();
            let who = (0..2).fold(0, |m, v| m | u32::from(now[v] > before[v]) << v);
            return (who, (0..2).map(|v| now[v] - before[v]).sum());
        }
        let elapsed = time::ticks_to_ms(time::ticks() - t0);
        if elapsed > ms {
            return (0, 0);
        }
        if !refired && elapsed > 20 {
            // SAFETY: the partition's own RTC: the next second instead.
            unsafe {
                let dr = util::read32(rtc(pl031::DR));
                util::write32(rtc(pl031::MR), dr.wrapping_add(1));
            }
            refired = true;
        }
    }
}

/// GICD_IROUTER's defined bits: Aff3 (39:32), IRM (31), Aff2, Aff1, Aff0 (23:0).
const IROUTER_BITS: u64 = 0xff_0000_80ff_ffff;

/// `probe=irouter-fuzz [count=<n>] [seed=<hex>]` (2 vCPUs, the PL031 passed
/// through): `n` random GICD_IROUTER writes — 64-bit or one half at a time — for
/// its RTC's SPI and for SPIs it does not own, with affinities of its own vCPUs, of
/// other partitions' cores, invalid ones and RES0 bits. An SPI it does not own must
/// read 0 and ignore every write; its own must read back the defined bits written.
/// Then the RTC alarm, re-routed between vCPU 1 and vCPU 0 right after each delivery
/// (16 times), then routed to vCPU 1, to vCPU 0, with IRM, and to vCPUs the
/// partition does not have (Aff0 2 and 3, Aff1 1: where other partitions' cores
/// are), must each be taken once, on the vCPU named (for one that does not exist: by
/// vCPU 0 or, once re-routed to vCPU 1, there), never elsewhere (a victim beside it
/// counts stray interrupts).
pub fn irouter_fuzz(boot: &Boot) -> ! {
    let count = boot.arg_u64("count").unwrap_or(3000);
    let mut rng = Rng::new(boot.arg_hex("seed").unwrap_or(0x1e0));
    setup(boot, true);
    start_vcpu1();
    let own = RTC_INTID.load(Ordering::Relaxed);
    let lines = gic::dist_lines().min(1020);
    let mut model = gic::dist_router(own);
    for i in 0..count {
        let intid = if rng.one_in(2) {
            own
        } else {
            32 + rng.below(u64::from(lines - 32)) as u32
        };
        let aff0 = [0, 1, 2, 3, 4, 0x7f, 0xff, rng.next() & 0xff][rng.below(8) as usize];
        let mut v = aff0;
        if rng.one_in(4) {
            v |= (rng.next() & 0xff) << 8;
        }
        if rng.one_in(6) {
            v |= (rng.next() & 0xff) << 16;
        }
        if rng.one_in(6) {
            v |= (rng.next() & 0xff) << 32;
        }
        if rng.one_in(6) {
            v |= 1 << 31;
        }
        if rng.one_in(4) {
            v |= rng.next() & !IROUTER_BITS;
        }
        let reg = gic::gicd_base() as u64 + gicd::IROUTER as u64 + 8 * u64::from(intid);
        let kind = rng.below(3);
        // SAFETY: a distributor register (emulated by Ferry).
        unsafe {
            match kind {
                0 => write64(reg, v),
                1 => util::write32(reg, v as u32),
                _ => util::write32(reg + 4, (v >> 32) as u32),
            }
        }
        let expect = match kind {
            _ if intid != own => 0,
            0 => v & IROUTER_BITS,
            1 => model & !0xffff_ffff | v & IROUTER_BITS & 0xffff_ffff,
            _ => model & 0xffff_ffff | v & IROUTER_BITS & !0xffff_ffff,
        };
        // SAFETY: as above.
        let (full, lo, hi) = unsafe {
            (
                read64(reg),
                util::read32(reg) as u64,
                util::read32(reg + 4) as u64,
            )
        };
        if intid == own {
            model = expect;
        }
        let how = ["64-bit", "low half", "high half"][kind as usize];
        if !check!(
            full == expect && lo | hi << 32 == full,
            "irouter-fuzz: #{i} GICD_IROUTER({intid}) written with {v:#x} ({how}) reads {full:#x} ({lo:#x}, {hi:#x}), expected {expect:#x}"
        ) {
            break;
        }
    }
    // The exact value of a full 64-bit write reads back, for the RTC's SPI.
    for v in [0x1, 0x8000_0000, 0x3, 0x01_0000_0100, 0xffff_ffff_ffff_ffff] {
        gic::set_dist_router(own, v);
        let got = gic::dist_router(own);
        check!(
            got == v & IROUTER_BITS,
            "irouter-fuzz: IROUTER({own}) = {v:#x} reads back {got:#x}, expected {:#x}",
            v & IROUTER_BITS
        );
    }
    // Ping-pong: the alarm handled on one vCPU, then at once re-routed to the other
    // and raised again (the first may still sit in the old vCPU's list register as
    // far as Ferry knows): each must be taken once, where routed, without delay.
    for k in 0..16u32 {
        let to = u64::from(1 - k % 2);
        gic::set_dist_router(own, to);
        let (who, n) = rtc_delivery(1500);
        check!(
            who == 1 << to && n == 1,
            "irouter-fuzz: ping-pong {k}: RTC alarm routed to vCPU {to}: taken {n} time(s) by vCPUs {who:#b}"
        );
    }
    // Deliveries.
    let routes: [(u64, &str, u32); 6] = [
        (1, "vCPU 1", 0b10),
        (0, "vCPU 0", 0b01),
        (1 << 31, "IRM (any vCPU)", 0b11),
        (2, "Aff0 2 (no such vCPU here)", 0b01),
        (3, "Aff0 3 (no such vCPU here)", 0b01),
        (0x100, "Aff1 1 (no such vCPU here)", 0b01),
    ];
    for (route, what, allowed) in routes {
        gic::set_dist_router(own, route);
        let (who, n) = rtc_delivery(1500);
        let (who, n, late) = if who == 0 && allowed == 0b01 && route != 0 {
            // Not delivered while routed nowhere: it must arrive once re-routed.
            gic::set_dist_router(own, 1);
            let t = time::Deadline::after_ms(500);
            let before = rtc_real();
            while rtc_real() == before && !t.passed() {}
            time::delay_ms(20);
            let now = rtc_real();
            let who = (0..2).fold(0, |m, v| m | u32::from(now[v] > before[v]) << v);
            (who, (0..2).map(|v| now[v] - before[v]).sum(), true)
        } else {
            (who, n, false)
        };
        let ok = if late {
            who == 0b10
        } else {
            who & !allowed == 0
        };
        check!(
            ok && n == 1,
            "irouter-fuzz: RTC alarm routed to {what}: taken {n} time(s) by vCPUs {who:#b}{}",
            if late {
                " once re-routed to vCPU 1"
            } else {
                ""
            }
        );
        println!(
            "hostile: irouter-fuzz: alarm routed to {what}: taken by vCPUs {who:#b}{}",
            if late {
                " after re-routing to vCPU 1"
            } else {
                ""
            }
        );
    }
    check!(
        STRAY.load(Ordering::Relaxed) == 0
            && RTC_PHANTOM.iter().all(|p| p.load(Ordering::Relaxed) == 0),
        "irouter-fuzz: no other interrupt, no RTC interrupt without an alarm ({} stray, {} phantom)",
        STRAY.load(Ordering::Relaxed),
        RTC_PHANTOM
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .sum::<u32>()
    );
    util::verdict("irouter-fuzz")
}
