//! `irq-foreign`: a partition cannot see or touch an SPI it does not own.
//!
//! `role=probe` (default), in a partition that does NOT own SPI `spi`: sets up its
//! GIC, checks GICD_TYPER reports INTID 32 + `spi` among its lines, unmasks IRQs,
//! waits `delay` ms (default 200, so the owner has set its SPI up), then reads the
//! SPI's enable, pending, active, priority, config and routing (all must read 0),
//! writes them all — GICD_ISENABLER, ISPENDR, ISACTIVER, IPRIORITYR (0xa0), ICFGR
//! (edge), IROUTER (0xff_80ff_ffff) — and reads them back through the set and clear
//! views: every one must still read 0, GICD_TYPER must be unchanged, and no IRQ may
//! arrive in the next 50 ms.
//! Log: `irq-foreign: SPI <spi> is not visible: ok`; else one line per register that
//! took a write and `FAIL: irq-foreign: SPI <spi> (INTID <n>) is VISIBLE ...`.
//!
//! `role=owner`, in the partition that owns it (a passthrough device with that SPI):
//! sets its SPI up — priority 0xa0, level, routed to its vCPU 0, enabled — and checks
//! it reads back so; waits `wait` ms (default 1000) while the probe does its worst,
//! then checks it again: still enabled, priority 0xa0, level, same routing, NOT
//! pending (the probe's ISPENDR write) and not active.
//! Log: `irq-foreign: owner's SPI unaffected`; else `FAIL: irq-foreign: owner: ...`.
//!
//! Bootargs: `role=probe|owner`, `spi=<n>` (default 2: the PL031 RTC on QEMU virt),
//! `delay=<ms>`, `wait=<ms>`. Both end with SYSTEM_OFF, or SYSTEM_RESET on failure.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use ferry_partition_rt::gic::{self, gicd};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, psci, time};

rt::entry!(main);

/// IRQs taken, and the last INTID.
static IRQS: AtomicU32 = AtomicU32::new(0);
static LAST_IRQ: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    IRQS.fetch_add(1, Ordering::AcqRel);
    LAST_IRQ.store(intid, Ordering::Relaxed);
}

/// What the distributor shows of one INTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    enabled: bool,
    pending: bool,
    active: bool,
    priority: u8,
    config: u32,
    router: u64,
}

fn state(intid: u32) -> State {
    State {
        enabled: gic::dist_bit(gicd::ISENABLER, intid),
        pending: gic::dist_bit(gicd::ISPENDR, intid),
        active: gic::dist_bit(gicd::ISACTIVER, intid),
        priority: gic::dist_priority(intid),
        config: gic::dist_config(intid),
        router: gic::dist_router(intid),
    }
}

fn setup(boot: &Boot) {
    if let Err(e) = gic::init(boot) {
        fail!("irq-foreign: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("irq-foreign: GIC distributor: {e}");
    }
    if let Err(e) = gic::cpu_init() {
        fail!("irq-foreign: GIC redistributor / CPU interface: {e}");
    }
    gic::set_handler(handler);
}

fn main(boot: &'static Boot) -> ! {
    let spi = boot.arg_u64("spi").unwrap_or(2);
    if spi > 987 {
        fail!("irq-foreign: spi={spi}: SPIs are 0..=987");
    }
    let intid = 32 + spi as u32;
    match boot.arg("role").unwrap_or("probe") {
        "probe" => probe(boot, spi, intid),
        "owner" => owner(boot, spi, intid),
        other => fail!("irq-foreign: role={other:?}: use probe or owner"),
    }
}

fn probe(boot: &Boot, spi: u64, intid: u32) -> ! {
    setup(boot);
    let typer = gic::dist_typer();
    let lines = gic::dist_lines();
    if intid >= lines {
        fail!(
            "irq-foreign: GICD_TYPER = {typer:#x} reports {lines} INTIDs: SPI {spi} (INTID \
             {intid}) is beyond them, so this test would prove nothing"
        );
    }
    irq::enable();
    time::delay_ms(boot.arg_u64("delay").unwrap_or(200));

    let before = state(intid);
    let zero = State {
        enabled: false,
        pending: false,
        active: false,
        priority: 0,
        config: 0,
        router: 0,
    };
    if before != zero {
        fail!(
            "irq-foreign: SPI {spi} (INTID {intid}) reads {before:x?} before any write, expected all 0"
        );
    }

    const PRIORITY: u8 = 0xa0;
    const ROUTER: u64 = 0xff_80ff_ffff; // Aff3..Aff0 all ones, IRM
    gic::set_dist_priority(intid, PRIORITY);
    gic::set_dist_config(intid, true);
    gic::set_dist_router(intid, ROUTER);
    gic::dist_write_bit(gicd::ISENABLER, intid);
    gic::dist_write_bit(gicd::ISPENDR, intid);
    gic::dist_write_bit(gicd::ISACTIVER, intid);

    let mut visible = 0;
    let mut check = |what: &str, value: u64| {
        if value != 0 {
            println!("irq-foreign: after the writes, {what} of INTID {intid} reads {value:#x}");
            visible += 1;
        }
    };
    check(
        "GICD_ISENABLER",
        gic::dist_bit(gicd::ISENABLER, intid) as u64,
    );
    check(
        "GICD_ICENABLER",
        gic::dist_bit(gicd::ICENABLER, intid) as u64,
    );
    check("GICD_ISPENDR", gic::dist_bit(gicd::ISPENDR, intid) as u64);
    check("GICD_ICPENDR", gic::dist_bit(gicd::ICPENDR, intid) as u64);
    check(
        "GICD_ISACTIVER",
        gic::dist_bit(gicd::ISACTIVER, intid) as u64,
    );
    check(
        "GICD_ICACTIVER",
        gic::dist_bit(gicd::ICACTIVER, intid) as u64,
    );
    check("GICD_IPRIORITYR", gic::dist_priority(intid) as u64);
    check("GICD_ICFGR", gic::dist_config(intid) as u64);
    check("GICD_IROUTER", gic::dist_router(intid));

    time::delay_ms(50);
    irq::disable();
    let irqs = IRQS.load(Ordering::Acquire);

    // Undo (matters only where the writes took effect, e.g. without a hypervisor).
    gic::dist_write_bit(gicd::ICENABLER, intid);
    gic::dist_write_bit(gicd::ICPENDR, intid);
    gic::dist_write_bit(gicd::ICACTIVER, intid);
    gic::set_dist_priority(intid, 0);
    gic::set_dist_config(intid, false);
    gic::set_dist_router(intid, 0);

    if visible != 0 {
        fail!(
            "irq-foreign: SPI {spi} (INTID {intid}) is VISIBLE to a partition that does not \
             own it: {visible} registers took the writes"
        );
    }
    if irqs != 0 {
        fail!(
            "irq-foreign: {irqs} IRQs arrived after pending a foreign SPI (last INTID {})",
            LAST_IRQ.load(Ordering::Relaxed)
        );
    }
    let typer_after = gic::dist_typer();
    if typer_after != typer {
        fail!("irq-foreign: GICD_TYPER changed from {typer:#x} to {typer_after:#x}");
    }
    println!("irq-foreign: SPI {spi} is not visible: ok");
    psci::system_off()
}

fn owner(boot: &Boot, spi: u64, intid: u32) -> ! {
    setup(boot);
    let lines = gic::dist_lines();
    if intid >= lines {
        fail!(
            "irq-foreign: owner: GICD_TYPER reports {lines} INTIDs, not SPI {spi} (INTID {intid})"
        );
    }
    const PRIORITY: u8 = 0xa0;
    let router = gic::router_for(arch::mpidr());
    gic::set_dist_priority(intid, PRIORITY);
    gic::set_dist_config(intid, false);
    gic::set_dist_router(intid, router);
    gic::dist_write_bit(gicd::ISENABLER, intid);
    let want = State {
        enabled: true,
        pending: false,
        active: false,
        priority: PRIORITY,
        config: 0,
        router,
    };
    let now = state(intid);
    if now != want {
        fail!(
            "irq-foreign: owner: its own SPI {spi} (INTID {intid}) reads {now:x?} right after \
             being set up as {want:x?}"
        );
    }
    time::delay_ms(boot.arg_u64("wait").unwrap_or(1000));
    let later = state(intid);
    gic::dist_write_bit(gicd::ICENABLER, intid);
    if later != want {
        fail!(
            "irq-foreign: owner: SPI {spi} (INTID {intid}) changed behind its back: reads \
             {later:x?}, set up as {want:x?}"
        );
    }
    println!("irq-foreign: owner's SPI unaffected");
    psci::system_off()
}
