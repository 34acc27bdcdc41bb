//! vGIC register probes: redistributor frames beyond the partition's vCPUs, pending
//! a hardware-linked interrupt by hand, wrong-sized accesses, and accesses the
//! syndrome cannot describe.

use core::sync::atomic::Ordering;

use ferry_partition_rt::gic::{self, VTIMER_INTID, gicd, gicr};
use ferry_partition_rt::{Boot, fail, println, probe, time};

use super::gic::{RTC_INTID, RTC_PHANTOM, RTC_REAL, STRAY, rtc_delivery, setup};
use super::util::{self, read64, write64};
use super::watch::Ticker;
use crate::check;

/// `probe=gicr-range [frame=<n>] [delay=<ms>]`: checks its own redistributor frames
/// (affinity n in frame n, Last on the last), then writes GICR_ICENABLER0 (the
/// virtual timer's bit) in frame `n` (default: the first past its vCPUs; under a
/// pass-through GIC that would be another core's redistributor). Ferry must stop the
/// partition (its `fault-code`).
pub fn gicr_range(boot: &Boot) -> ! {
    let gicr_base = match gic::init(boot) {
        Ok((_, r, _)) => r as u64,
        Err(e) => fail!("hostile: gicr-range: {e}"),
    };
    let vcpus = boot.cpus().len() as u64;
    for n in 0..vcpus {
        // SAFETY: the partition's own (emulated) redistributor.
        let typer = unsafe { read64(gicr_base + n * gicr::STRIDE as u64 + gicr::TYPER as u64) };
        let last = typer & gicr::TYPER_LAST != 0;
        if typer >> 32 != n || last != (n + 1 == vcpus) {
            fail!("hostile: gicr-range: frame {n}: GICR_TYPER {typer:#x}");
        }
    }
    time::delay_ms(boot.arg_u64("delay").unwrap_or(300));
    let frame = boot.arg_u64("frame").unwrap_or(vcpus);
    let target = gicr_base + frame * gicr::STRIDE as u64 + gicr::ICENABLER0 as u64;
    println!(
        "hostile: gicr-range: {vcpus} frame(s) ok; writing GICR_ICENABLER0 of frame {frame} at {target:#x}"
    );
    // SAFETY: deliberately past the partition's redistributors: Ferry stops it here.
    unsafe { util::write32(target, 1 << VTIMER_INTID) };
    fail!("hostile: gicr-range: the write to frame {frame} ({target:#x}) was NOT stopped")
}

/// `probe=ispendr what=vtimer|spi`: pends a hardware-linked interrupt through the
/// vGIC with no hardware event behind it, thousands of times (with clear-pending and
/// set/clear-active writes mixed in), and checks the real one still works after:
/// - `vtimer`: the virtual timer (PPI 27) ticking every millisecond: at least half
///   the tick rate of the 300 ms before during the 1 s of pending and in the 500 ms
///   after, PPI 27 neither stuck active nor pending once stopped;
/// - `spi`: the passthrough RTC's SPI: one alarm taken before, then 2000 pends, then
///   3 alarms each taken exactly once, the SPI not stuck active.
pub fn ispendr(boot: &Boot) -> ! {
    match boot.arg("what").unwrap_or("vtimer") {
        "vtimer" => ispendr_vtimer(boot),
        "spi" => ispendr_spi(boot),
        w => fail!("hostile: ispendr: what={w}: use vtimer or spi"),
    }
}

fn ispendr_vtimer(boot: &Boot) -> ! {
    if let Err(e) = Ticker::gic_setup(boot, true) {
        fail!("hostile: ispendr: GIC set-up: {e}");
    }
    Ticker::start(1000);
    time::delay_ms(300);
    let s0 = Ticker::stats();
    check!(s0.ticks > 0, "ispendr: the timer ticks at all (300 ms)");
    // Ticks a millisecond, in thousandths: under TCG a loaded host drops ticks, so
    // the phases below are judged against this rate, not against the period.
    let base = (s0.ticks * 1000 / 300).max(1);
    Ticker::reset();
    let rd = gic::redist() as u64;
    let pend = |r: usize| rd + r as u64;
    let d = time::Deadline::after_ms(1000);
    let mut n = 0u64;
    while !d.passed() {
        // SAFETY: this vCPU's own (emulated) redistributor.
        unsafe {
            util::write32(pend(gicr::ISPENDR0), 1 << VTIMER_INTID);
            if n.is_multiple_of(3) {
                util::write32(pend(gicr::ICPENDR0), 1 << VTIMER_INTID);
            }
            if n.is_multiple_of(7) {
                util::write32(pend(gicr::ISACTIVER0), 1 << VTIMER_INTID);
            }
            if n.is_multiple_of(11) {
                util::write32(pend(gicr::ICACTIVER0), 1 << VTIMER_INTID);
            }
        }
        n += 1;
    }
    let s1 = Ticker::stats();
    Ticker::reset();
    time::delay_ms(500);
    let s2 = Ticker::stats();
    Ticker::stop();
    time::delay_ms(5);
    let active = gic::private_active() >> VTIMER_INTID & 1;
    let pending = gic::private_pending() >> VTIMER_INTID & 1;
    println!(
        "hostile: ispendr: {n} pends of PPI 27 in 1 s: {} real ticks, {} taken without the timer's condition; after: {} ticks in 500 ms, lateness max {} us",
        s1.ticks, s1.phantom, s2.ticks, s2.late_max_us
    );
    check!(
        s1.ticks * 1000 * 2 >= base * 1000,
        "ispendr: the timer kept ticking while pended by hand ({} ticks in 1000 ms, at least half the {}.{:03} a ms before)",
        s1.ticks,
        base / 1000,
        base % 1000
    );
    check!(
        s2.ticks * 1000 * 2 >= base * 500,
        "ispendr: the timer works after ({} ticks in 500 ms, at least half the rate before)",
        s2.ticks
    );
    check!(
        active == 0 && pending == 0,
        "ispendr: PPI 27 neither active ({active}) nor pending ({pending}) once stopped"
    );
    check!(
        s1.stray + s2.stray == 0,
        "ispendr: no other interrupt ({} stray)",
        s1.stray + s2.stray
    );
    util::verdict("ispendr")
}

fn ispendr_spi(boot: &Boot) -> ! {
    setup(boot, true);
    let id = RTC_INTID.load(Ordering::Relaxed);
    let (who, n) = rtc_delivery(1500);
    check!(
        who == 0b01 && n == 1,
        "ispendr: an RTC alarm before: taken {n} time(s) by vCPUs {who:#b}"
    );
    for i in 0..2000u32 {
        gic::dist_write_bit(gicd::ISPENDR, id);
        if i % 3 == 0 {
            gic::dist_write_bit(gicd::ICPENDR, id);
        }
        if i % 7 == 0 {
            gic::dist_write_bit(gicd::ISACTIVER, id);
        }
        if i % 11 == 0 {
            gic::dist_write_bit(gicd::ICACTIVER, id);
        }
    }
    time::delay_ms(20);
    let phantom = RTC_PHANTOM[0].load(Ordering::Relaxed);
    let mut real = [0u32; 3];
    for (k, r) in real.iter_mut().enumerate() {
        let (who, n) = rtc_delivery(1500);
        *r = n;
        check!(
            who == 0b01 && n == 1,
            "ispendr: RTC alarm {} after the pends: taken {n} time(s) by vCPUs {who:#b}",
            k + 1
        );
    }
    time::delay_ms(20);
    check!(
        !gic::dist_bit(gicd::ISACTIVER, id),
        "ispendr: INTID {id} not stuck active"
    );
    check!(
        STRAY.load(Ordering::Relaxed) == 0,
        "ispendr: no other interrupt"
    );
    println!(
        "hostile: ispendr: 2000 pends of INTID {id}: {phantom} taken without an alarm; then alarms taken {real:?} time(s), {} in all",
        RTC_REAL[0].load(Ordering::Relaxed)
    );
    util::verdict("ispendr")
}

/// `probe=gic-wrong-size what=priority|other` (the PL031 passed through: it owns
/// SPI 2, INTID 34): register accesses of a size the GICv3 architecture does not
/// define for the register, each inside `probe::catch` (an injected abort is an
/// acceptable refusal): none may change state the access does not address — above
/// all no SPI. `priority`:
/// 1. an 8-byte store to GICR_IPRIORITYR7 (INTIDs 28-31; the next word would be
///    INTIDs 32-35): INTID 34's priority (0xa0) unchanged;
/// 2. an 8-byte load there: its upper half shows no SPI priority;
/// 3. an 8-byte store to GICD_IPRIORITYR at INTID 28: INTID 34 unchanged.
///
/// `other`:
/// 1. a byte store of 0x04 to GICD_ISENABLER1 + 1 (INTIDs 40-47): INTID 34 stays
///    disabled;
/// 2. a byte store of 0 to GICD_CTLR: EnableGrp1 stays set;
/// 3. a halfword store of ProcessorSleep to GICR_WAKER: the redistributor stays awake.
pub fn wrong_size(boot: &Boot) -> ! {
    setup(boot, true);
    let id = RTC_INTID.load(Ordering::Relaxed);
    if !(32..36).contains(&id) {
        fail!("hostile: gic-wrong-size: the RTC's INTID {id} is not in 32..36");
    }
    let d = gic::gicd_base() as u64;
    let rd = gic::redist() as u64;
    let what = boot.arg("what").unwrap_or("priority");
    if what != "priority" && what != "other" {
        fail!("hostile: gic-wrong-size: what={what}: use priority or other");
    }
    gic::dist_write_bit(gicd::ICENABLER, id);
    gic::set_dist_priority(id, 0xa0);
    let ppi = rd + gicr::IPRIORITYR as u64 + 28;
    // SAFETY: this vCPU's own redistributor.
    unsafe { util::write32(ppi, 0x8080_8080) };
    let mut refused = 0;
    let mut caught = |what: &str, f: &dyn Fn()| {
        let ((), c, _) = probe::catch(f);
        if let Some(c) = c {
            refused += 1;
            println!(
                "hostile: gic-wrong-size: {what}: refused with ESR_EL1 {:#x}",
                c.esr
            );
        }
    };
    // SAFETY (all below): the partition's own, emulated, GIC registers.
    if what == "priority" {
        caught("8-byte GICR_IPRIORITYR7 store", &|| unsafe {
            write64(ppi, 0x1111_1111_1111_1111)
        });
        let p = gic::dist_priority(id);
        check!(
            p == 0xa0,
            "gic-wrong-size: 8-byte GICR_IPRIORITYR store left INTID {id}'s priority 0xa0 (reads {p:#x})"
        );
        // SAFETY: as above.
        let ppis = unsafe { util::read32(ppi) };
        println!(
            "hostile: gic-wrong-size: PPIs 28-31 priorities after it: {ppis:#010x} (were 0x80808080)"
        );
        let wide = core::cell::Cell::new(0u64);
        // SAFETY: as above.
        caught("8-byte GICR_IPRIORITYR7 load", &|| {
            wide.set(unsafe { read64(ppi) })
        });
        let wide = wide.get();
        check!(
            wide >> 32 == 0,
            "gic-wrong-size: an 8-byte GICR_IPRIORITYR7 load shows no SPI priority (upper half {:#x})",
            wide >> 32
        );
        // SAFETY: as above (its own emulated GIC registers).
        caught("8-byte GICD_IPRIORITYR store at INTID 28", &|| unsafe {
            write64(d + gicd::IPRIORITYR as u64 + 28, 0x2222_2222_2222_2222)
        });
        let p = gic::dist_priority(id);
        check!(
            p == 0xa0,
            "gic-wrong-size: 8-byte GICD_IPRIORITYR store left INTID {id} at 0xa0 (reads {p:#x})"
        );
    } else {
        // SAFETY: as above (its own emulated GIC registers).
        caught("byte GICD_ISENABLER1+1 store", &|| unsafe {
            util::write8(d + gicd::ISENABLER as u64 + 5, 0x04)
        });
        check!(
            !gic::dist_bit(gicd::ISENABLER, id),
            "gic-wrong-size: a byte store to GICD_ISENABLER1 + 1 (INTIDs 40-47) left INTID {id} disabled"
        );
        // SAFETY: as above (its own emulated GIC registers).
        caught("byte GICD_CTLR store", &|| unsafe {
            util::write8(d + gicd::CTLR as u64, 0)
        });
        let ctlr = gic::read32(d as usize + gicd::CTLR);
        check!(
            ctlr & gicd::CTLR_ENABLE_GRP1 != 0,
            "gic-wrong-size: a byte store of 0 to GICD_CTLR left EnableGrp1 set (reads {ctlr:#x})"
        );
        // SAFETY: as above (its own emulated GIC registers).
        caught("halfword GICR_WAKER store", &|| unsafe {
            util::write16(rd + gicr::WAKER as u64, gicr::WAKER_PROCESSOR_SLEEP as u16)
        });
        let waker = gic::read32(rd as usize + gicr::WAKER);
        check!(
            waker & gicr::WAKER_PROCESSOR_SLEEP == 0,
            "gic-wrong-size: a halfword store to GICR_WAKER left the redistributor awake (reads {waker:#x})"
        );
    }
    println!(
        "hostile: gic-wrong-size: {what}: {refused} of 3 accesses refused with an abort, the rest ignored"
    );
    util::verdict("gic-wrong-size")
}

/// `probe=gic-undecodable`: an LDP from the distributor (a pair: the syndrome cannot
/// describe it). Ferry must stop the partition (its `fault-code`): the GIC is not a
/// device a partition can go on without.
pub fn undecodable(boot: &Boot) -> ! {
    let d = match gic::init(boot) {
        Ok((d, _, _)) => d as u64,
        Err(e) => fail!("hostile: gic-undecodable: {e}"),
    };
    println!("hostile: gic-undecodable: LDP from GICD_CTLR at {d:#x}");
    let (a, b): (u64, u64);
    // SAFETY: the partition's own (emulated) distributor: Ferry stops it here.
    unsafe {
        core::arch::asm!("ldp {a}, {b}, [{p}]", p = in(reg) d, a = out(reg) a, b = out(reg) b,
            options(nostack))
    };
    fail!("hostile: gic-undecodable: the LDP was NOT stopped (read {a:#x}, {b:#x})")
}
