//! `irq-passthrough`: a passthrough device's physical SPI delivered through the GIC —
//! the PL031 RTC's alarm interrupt (QEMU virt: SPI 2, INTID 34, level-high).
//!
//! Under Ferry the partition owns the RTC (its MMIO and SPI are passed through):
//! Ferry routes the physical SPI to the core of the partition's vCPU 0 and forwards
//! it as a hardware-linked virtual interrupt, so the guest's EOI deactivates the
//! physical one. On plain QEMU (the `smoke` build) the same code drives the real GIC.
//!
//! The RTC is found in the guest DTB (`compatible = "arm,pl031"`: `reg`, and
//! `interrupts = <0 N 4>`) and identified by its PrimeCell IDs. GIC set-up:
//! GICD_CTLR = ARE | EnableGrp1, the redistributor woken, the CPU interface on; the
//! SPI gets Group 1, priority 0xa0, level, GICD_IROUTER = the target vCPU (vCPU 0
//! unless `vcpu=`), and is enabled in GICD_ISENABLER. The handler reads RTCMIS/RTCRIS/RTCDR, clears the alarm
//! (RTCICR = 1) *before* returning to the dispatcher's EOI (the line is level), and
//! for the first alarms re-arms the next one (RTCMR = RTCDR + 1).
//!
//! Checks:
//! 1. `alarms` (default 3) alarms, one second apart: each delivered exactly once
//!    (RTCMIS set at every delivery, so no delivery without an alarm behind it), never
//!    before RTCDR reached RTCMR, shown active in GICD_ISACTIVER while handled; no
//!    other INTID, none on a vCPU other than the target, no spurious IRQ exception,
//!    nothing more in the 1.5 s after the last; the SPI then neither pending nor
//!    active in GICD_ISPENDR/ISACTIVER (read by vCPU 0); x0-x17 and v0-v31 of the
//!    interrupted code intact (the main loop spins in `irq::register_check`);
//! 2. disabled in GICD_ICENABLER, an alarm that fires (RTCRIS = 1, line high) is not
//!    delivered, and GICD_ISPENDR shows the SPI pending;
//! 3. re-enabled in GICD_ISENABLER, that alarm is then delivered, once.
//!
//! Bootargs: `alarms=<n>` (default 3, 1..=16); `vcpu=<k>` (default 0): route the SPI
//! with GICD_IROUTER to vCPU k, which is started with CPU_ON and waits in WFI, and
//! require every delivery on vCPU k; `wfi` (only with vCPU 0 as the target): wait for
//! the alarms in WFI instead of spinning (a lost interrupt then hangs until the
//! watchdog instead of failing on the deadline, and registers are not checked).
//! Log: `irq-passthrough: PL031 at <addr>, SPI <n> (INTID <m>), level, routed to vCPU <k>`,
//! `irq-passthrough: <n> alarms taken at RTC second 1, 2, ... after arming (intervals
//! <ms> ms, ...), each once`,
//! `irq-passthrough: disabled in GICD: alarm fired, not delivered, GICD_ISPENDR shows it
//! pending; re-enabled: delivered once`,
//! `irq-passthrough: RTC alarm SPI <n> (INTID <m>) taken <k> times, each once` and
//! SYSTEM_OFF; failures `FAIL: irq-passthrough: ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ferry_partition_rt::gic::{self, gicd};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, psci, time};

rt::entry!(main);

/// PL031 register offsets.
mod pl031 {
    /// Data (the counter, seconds; read-only).
    pub const DR: usize = 0x000;
    /// Match.
    pub const MR: usize = 0x004;
    /// Load.
    #[allow(dead_code)]
    pub const LR: usize = 0x008;
    /// Control (bit 0: start).
    pub const CR: usize = 0x00c;
    /// Interrupt mask set/clear (bit 0: alarm interrupt enabled).
    pub const IMSC: usize = 0x010;
    /// Raw interrupt status.
    pub const RIS: usize = 0x014;
    /// Masked interrupt status.
    pub const MIS: usize = 0x018;
    /// Interrupt clear (write 1).
    pub const ICR: usize = 0x01c;
    /// PeriphID0..3, then PCellID0..3, one byte per word.
    pub const PERIPH_ID: usize = 0xfe0;
    /// PL031's PeriphID0..3 (the revision nibble of PeriphID2 masked) and PCellID0..3.
    pub const IDS: [u32; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
}

/// Most deliveries recorded.
const MAX_TAKEN: usize = 32;

static RTC: AtomicUsize = AtomicUsize::new(0);
static INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// Alarms the handler still re-arms.
static REARM: AtomicU32 = AtomicU32::new(0);
/// The match value of the alarm armed last.
static ARMED_MR: AtomicU32 = AtomicU32::new(0);

/// Deliveries of the RTC's INTID.
static TAKEN: AtomicU32 = AtomicU32::new(0);
/// Per delivery: CNTVCT at handler entry, RTCDR.
static AT: [AtomicU64; MAX_TAKEN] = [const { AtomicU64::new(0) }; MAX_TAKEN];
static DR_AT: [AtomicU32; MAX_TAKEN] = [const { AtomicU32::new(0) }; MAX_TAKEN];
/// Deliveries that found RTCMIS clear: no alarm behind them (a duplicate).
static BOGUS: AtomicU32 = AtomicU32::new(0);
/// Deliveries during which GICD_ISACTIVER did not show the SPI active.
static NOT_ACTIVE: AtomicU32 = AtomicU32::new(0);
/// Deliveries with RTCDR still below the armed RTCMR.
static EARLY: AtomicU32 = AtomicU32::new(0);
/// Interrupts of other INTIDs, and the last such INTID.
static STRAY: AtomicU32 = AtomicU32::new(0);
static STRAY_ID: AtomicU32 = AtomicU32::new(0);
/// The vCPU the SPI is routed to; deliveries on another vCPU, and the last one's.
static TARGET: AtomicUsize = AtomicUsize::new(0);
static WRONG_VCPU: AtomicU32 = AtomicU32::new(0);
static WRONG_VCPU_ID: AtomicUsize = AtomicUsize::new(0);
/// The target vCPU (when not vCPU 0) is set up and unmasked.
static READY: AtomicU32 = AtomicU32::new(0);

fn rtc_read(off: usize) -> u32 {
    gic::read32(RTC.load(Ordering::Relaxed) + off)
}

fn rtc_write(off: usize, v: u32) {
    gic::write32(RTC.load(Ordering::Relaxed) + off, v);
}

/// Arms the alarm for the next second: RTCMR = RTCDR + 1, interrupt unmasked.
fn arm() -> u32 {
    let mr = rtc_read(pl031::DR).wrapping_add(1);
    ARMED_MR.store(mr, Ordering::Relaxed);
    rtc_write(pl031::MR, mr);
    rtc_write(pl031::IMSC, 1);
    mr
}

fn handler(intid: u32) {
    if intid != INTID.load(Ordering::Relaxed) {
        STRAY.fetch_add(1, Ordering::Relaxed);
        STRAY_ID.store(intid, Ordering::Relaxed);
        return;
    }
    let now = time::ticks();
    let me = arch::vcpu_index();
    if me != TARGET.load(Ordering::Relaxed) {
        WRONG_VCPU.fetch_add(1, Ordering::Relaxed);
        WRONG_VCPU_ID.store(me, Ordering::Relaxed);
    }
    let mis = rtc_read(pl031::MIS);
    let dr = rtc_read(pl031::DR);
    // Acknowledged and not yet ended: the distributor must show it active.
    if !gic::dist_bit(gicd::ISACTIVER, intid) {
        NOT_ACTIVE.fetch_add(1, Ordering::Relaxed);
    }
    // Level-triggered: the line must drop before the dispatcher's EOI, or the
    // interrupt is taken again at once.
    rtc_write(pl031::ICR, 1);
    if mis & 1 == 0 {
        BOGUS.fetch_add(1, Ordering::Relaxed);
    }
    if (dr.wrapping_sub(ARMED_MR.load(Ordering::Relaxed)) as i32) < 0 {
        EARLY.fetch_add(1, Ordering::Relaxed);
    }
    let n = TAKEN.load(Ordering::Relaxed) as usize;
    if n < MAX_TAKEN {
        AT[n].store(now, Ordering::Relaxed);
        DR_AT[n].store(dr, Ordering::Relaxed);
    }
    if mis & 1 != 0 {
        let left = REARM.load(Ordering::Relaxed);
        if left > 0 {
            REARM.store(left - 1, Ordering::Relaxed);
            arm();
        }
    }
    TAKEN.store(n as u32 + 1, Ordering::Release);
}

/// Where the RTC is and which SPI it has, from the DTB: (base, SPI).
fn find_rtc(boot: &Boot) -> (usize, u32) {
    let fdt = boot.fdt();
    let Some(node) = fdt.find_compatible(&["arm,pl031"]) else {
        fail!("irq-passthrough: the DTB has no arm,pl031 node (the RTC is not passed through)");
    };
    let root = fdt.find_node("/");
    let cells = |name: &str, default: usize| {
        root.as_ref()
            .and_then(|r| r.property(name))
            .and_then(|p| p.as_usize())
            .unwrap_or(default)
    };
    let (ac, sc) = (cells("#address-cells", 2), cells("#size-cells", 1));
    let words = |value: &[u8]| -> [u32; 8] {
        let mut w = [0u32; 8];
        for (i, c) in value.chunks_exact(4).take(8).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        w
    };
    let Some(reg) = node.property("reg") else {
        fail!("irq-passthrough: {} has no reg", node.name);
    };
    if !(1..=2).contains(&ac) || !(1..=2).contains(&sc) || reg.value.len() < 4 * (ac + sc) {
        fail!(
            "irq-passthrough: {}: reg of {} bytes with #address-cells {ac}, #size-cells {sc}",
            node.name,
            reg.value.len()
        );
    }
    let w = words(reg.value);
    let base = if ac == 2 {
        (w[0] as u64) << 32 | w[1] as u64
    } else {
        w[0] as u64
    };
    if base == 0 || base >= 1 << 32 || base & 0xfff != 0 {
        fail!(
            "irq-passthrough: {}: reg base {base:#x} unusable",
            node.name
        );
    }
    let Some(ints) = node.property("interrupts") else {
        fail!("irq-passthrough: {} has no interrupts", node.name);
    };
    let i = words(ints.value);
    if ints.value.len() < 12 || i[0] != 0 || i[1] > 987 || i[2] & 0xf != 4 {
        fail!(
            "irq-passthrough: {}: interrupts = <{:#x} {:#x} {:#x}> ({} bytes), expected \
             <0 N 4> (an SPI, level-high)",
            node.name,
            i[0],
            i[1],
            i[2],
            ints.value.len()
        );
    }
    (base as usize, i[1])
}

fn gic_state(intid: u32) -> (bool, bool, bool) {
    (
        gic::dist_bit(gicd::ISENABLER, intid),
        gic::dist_bit(gicd::ISPENDR, intid),
        gic::dist_bit(gicd::ISACTIVER, intid),
    )
}

/// A one-line picture of the RTC and the SPI for failure messages.
struct Diag(u32);

impl core::fmt::Display for Diag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (en, pend, act) = gic_state(self.0);
        write!(
            f,
            "RTCDR={} RTCMR={} RTCIMSC={:#x} RTCRIS={:#x} RTCMIS={:#x}; GICD enabled {} \
             pending {} active {} router {:#x}; ICC_RPR_EL1={:#x}; taken {}, without alarm \
             {}, early {}, other INTIDs {} (last {}), on another vCPU {}, spurious IRQs {}",
            rtc_read(pl031::DR),
            rtc_read(pl031::MR),
            rtc_read(pl031::IMSC),
            rtc_read(pl031::RIS),
            rtc_read(pl031::MIS),
            en as u8,
            pend as u8,
            act as u8,
            gic::dist_router(self.0),
            gic::icc_rpr(),
            TAKEN.load(Ordering::Acquire),
            BOGUS.load(Ordering::Relaxed),
            EARLY.load(Ordering::Relaxed),
            STRAY.load(Ordering::Relaxed),
            STRAY_ID.load(Ordering::Relaxed),
            WRONG_VCPU.load(Ordering::Relaxed),
            gic::spurious_count(TARGET.load(Ordering::Relaxed)),
        )
    }
}

/// Fails unless nothing went wrong so far.
fn check_clean(intid: u32, when: &str) {
    let bogus = BOGUS.load(Ordering::Relaxed);
    let early = EARLY.load(Ordering::Relaxed);
    let not_active = NOT_ACTIVE.load(Ordering::Relaxed);
    let stray = STRAY.load(Ordering::Relaxed);
    let wrong = WRONG_VCPU.load(Ordering::Relaxed);
    let spurious: u32 = (0..rt::MAX_VCPUS).map(gic::spurious_count).sum();
    if bogus != 0 || early != 0 || not_active != 0 || stray != 0 || wrong != 0 || spurious != 0 {
        fail!(
            "irq-passthrough: {when}: {bogus} deliveries without an alarm (RTCMIS clear: \
             taken twice?), {early} before RTCDR reached RTCMR, {not_active} not shown \
             active in GICD_ISACTIVER while handled, {stray} of other INTIDs, \
             {wrong} on a vCPU other than {} (last on vCPU {}), {spurious} spurious IRQ \
             exceptions ({})",
            TARGET.load(Ordering::Relaxed),
            WRONG_VCPU_ID.load(Ordering::Relaxed),
            Diag(intid)
        );
    }
}

fn main(boot: &'static Boot) -> ! {
    let alarms = boot.arg_u64("alarms").unwrap_or(3);
    if !(1..=16).contains(&alarms) {
        fail!("irq-passthrough: alarms={alarms}: use 1..=16");
    }
    let alarms = alarms as u32;
    let use_wfi = boot.arg("wfi").is_some();
    let target = boot.arg_u64("vcpu").unwrap_or(0) as usize;
    let cpus = boot.cpus();
    if target >= cpus.len().min(rt::MAX_VCPUS) {
        fail!(
            "irq-passthrough: vcpu={target}: the guest has {} vCPUs",
            cpus.len()
        );
    }
    TARGET.store(target, Ordering::Relaxed);
    let (base, spi) = find_rtc(boot);
    let intid = 32 + spi;
    RTC.store(base, Ordering::Relaxed);
    INTID.store(intid, Ordering::Relaxed);

    // Is it a PL031, and reachable?
    let mut ids = [0u32; 8];
    for (k, id) in ids.iter_mut().enumerate() {
        *id = rtc_read(pl031::PERIPH_ID + 4 * k) & 0xff;
    }
    let mut want = pl031::IDS;
    ids[2] &= 0x0f; // PeriphID2's revision nibble
    want[2] &= 0x0f;
    if ids != want {
        fail!("irq-passthrough: {base:#x} has PrimeCell IDs {ids:#x?}, not a PL031's {want:#x?}");
    }
    // Quiet: alarm interrupt masked and cleared, counter running.
    rtc_write(pl031::IMSC, 0);
    rtc_write(pl031::ICR, 1);
    if rtc_read(pl031::CR) & 1 == 0 {
        rtc_write(pl031::CR, 1);
    }
    let dr0 = rtc_read(pl031::DR);
    time::delay_ms(1100);
    let dr1 = rtc_read(pl031::DR);
    if dr1 == dr0 {
        fail!("irq-passthrough: RTCDR stayed {dr0} for 1.1 s: the RTC does not count");
    }

    if let Err(e) = gic::init(boot) {
        fail!("irq-passthrough: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("irq-passthrough: GIC distributor: {e}");
    }
    if let Err(e) = gic::cpu_init() {
        fail!("irq-passthrough: GIC redistributor / CPU interface: {e}");
    }
    let lines = gic::dist_lines();
    if intid >= lines {
        fail!("irq-passthrough: GICD_TYPER reports {lines} INTIDs, not SPI {spi} (INTID {intid})");
    }
    gic::set_handler(handler);
    if target != 0 {
        let r = psci::cpu_on(cpus[target], secondary, 0);
        if r != psci::ret::SUCCESS {
            fail!(
                "irq-passthrough: CPU_ON({:#x}) = {r} ({})",
                cpus[target],
                psci::ret_name(r)
            );
        }
        let d = time::Deadline::after_ms(5000);
        while READY.load(Ordering::Acquire) == 0 {
            if d.passed() {
                fail!("irq-passthrough: vCPU {target} not set up within 5000 ms");
            }
            core::hint::spin_loop();
        }
    }

    // Before enabling: the line is low, so nothing may be pending or active.
    let (_, pend, act) = gic_state(intid);
    if pend || act {
        fail!(
            "irq-passthrough: INTID {intid} is pending {} / active {} before anything was \
             armed ({})",
            pend as u8,
            act as u8,
            Diag(intid)
        );
    }
    const PRIORITY: u8 = 0xa0;
    let router = gic::router_for(cpus[target]);
    // Group 1 (the GIC driver's dist_init leaves SPIs' groups alone; reset is Group 0
    // on a GIC without security, which would signal an FIQ nobody enabled).
    let group = gic::gicd_base() + gicd::IGROUPR + 4 * (intid as usize / 32);
    gic::write32(group, gic::read32(group) | 1 << (intid % 32));
    gic::set_dist_priority(intid, PRIORITY);
    gic::set_dist_config(intid, false);
    gic::set_dist_router(intid, router);
    gic::dist_write_bit(gicd::ISENABLER, intid);
    let (prio, cfg, rt_, en) = (
        gic::dist_priority(intid),
        gic::dist_config(intid),
        gic::dist_router(intid),
        gic::dist_bit(gicd::ISENABLER, intid),
    );
    let grp1 = gic::dist_bit(gicd::IGROUPR, intid);
    if prio != PRIORITY || cfg & 0b10 != 0 || rt_ != router || !en || !grp1 {
        fail!(
            "irq-passthrough: INTID {intid} reads priority {prio:#x}, config {cfg:#b}, router \
             {rt_:#x}, enabled {}, group {} after setting {PRIORITY:#x}, level, {router:#x}, \
             enabled, Group 1",
            en as u8,
            grp1 as u8
        );
    }
    println!(
        "irq-passthrough: PL031 at {base:#x}, SPI {spi} (INTID {intid}), level, routed to vCPU \
         {target}"
    );

    // 1. `alarms` alarms, the handler re-arming all but the last.
    REARM.store(alarms - 1, Ordering::Relaxed);
    let deadline_ms = 1000 * alarms as u64 + 2000;
    let deadline = time::Deadline::after_ms(deadline_ms);
    let first_mr = arm();
    irq::enable();
    let mut clobbered = 0;
    while TAKEN.load(Ordering::Acquire) < alarms {
        if deadline.passed() {
            irq::disable();
            fail!(
                "irq-passthrough: only {} of {alarms} RTC alarms delivered within {deadline_ms} \
                 ms ({})",
                TAKEN.load(Ordering::Acquire),
                Diag(intid)
            );
        }
        // (With another target vCPU nothing would wake this one from WFI.)
        if use_wfi && target == 0 {
            irq::wfi();
        } else {
            clobbered += irq::register_check(20_000);
        }
    }
    // Nothing more: the last alarm was not re-armed.
    let quiet = time::Deadline::after_ms(1500);
    while !quiet.passed() {
        clobbered += irq::register_check(20_000);
    }
    irq::disable();
    let n = TAKEN.load(Ordering::Acquire);
    if n != alarms {
        fail!(
            "irq-passthrough: {n} deliveries for {alarms} alarms (an alarm taken more than \
             once?) ({})",
            Diag(intid)
        );
    }
    check_clean(intid, "alarms");
    if clobbered != 0 {
        fail!(
            "irq-passthrough: {clobbered} times a register of the interrupted code changed \
             across an IRQ"
        );
    }
    let (_, pend, act) = gic_state(intid);
    if pend || act || rtc_read(pl031::RIS) & 1 != 0 {
        fail!(
            "irq-passthrough: after {alarms} alarms, all handled: still pending {} / active {} \
             ({})",
            pend as u8,
            act as u8,
            Diag(intid)
        );
    }
    {
        let mut line = Line::new();
        for (k, dr) in DR_AT.iter().take(alarms as usize).enumerate() {
            let dr = dr.load(Ordering::Relaxed);
            line.push_fmt(format_args!(
                "{}{}",
                if k == 0 { "" } else { ", " },
                dr.wrapping_sub(first_mr) as i32 + 1
            ));
        }
        let mut ivs = Line::new();
        for k in 1..alarms as usize {
            let iv = AT[k].load(Ordering::Relaxed) - AT[k - 1].load(Ordering::Relaxed);
            ivs.push_fmt(format_args!(
                "{}{} ms",
                if k == 1 { "" } else { ", " },
                time::ticks_to_ms(iv)
            ));
        }
        println!(
            "irq-passthrough: {alarms} alarms taken at RTC second {} after arming (intervals \
             {}), each once",
            line.as_str(),
            if alarms > 1 { ivs.as_str() } else { "-" }
        );
    }

    // 2. Disabled in the distributor: the alarm fires but is not delivered.
    gic::dist_write_bit(gicd::ICENABLER, intid);
    if gic::dist_bit(gicd::ISENABLER, intid) {
        fail!("irq-passthrough: INTID {intid} still enabled after GICD_ICENABLER");
    }
    irq::enable();
    let d = time::Deadline::after_ms(3000);
    arm();
    while rtc_read(pl031::RIS) & 1 == 0 {
        if d.passed() {
            irq::disable();
            fail!(
                "irq-passthrough: with INTID {intid} disabled, the alarm did not fire within \
                 3 s ({})",
                Diag(intid)
            );
        }
        core::hint::spin_loop();
    }
    // Time for a (wrong) delivery to arrive.
    time::delay_ms(300);
    irq::disable();
    let n = TAKEN.load(Ordering::Acquire);
    if n != alarms {
        fail!(
            "irq-passthrough: INTID {intid} delivered while disabled in GICD_ICENABLER ({})",
            Diag(intid)
        );
    }
    let (_, pend, act) = gic_state(intid);
    if !pend || act {
        fail!(
            "irq-passthrough: disabled INTID {intid} with its line high (RTCMIS = {:#x}) reads \
             pending {} / active {} in GICD_ISPENDR/ISACTIVER, expected pending and not \
             active ({})",
            rtc_read(pl031::MIS),
            pend as u8,
            act as u8,
            Diag(intid)
        );
    }

    // 3. Re-enabled: delivered now, once.
    gic::dist_write_bit(gicd::ISENABLER, intid);
    irq::enable();
    let d = time::Deadline::after_ms(500);
    while TAKEN.load(Ordering::Acquire) == alarms {
        if d.passed() {
            irq::disable();
            fail!(
                "irq-passthrough: re-enabled INTID {intid} not delivered within 500 ms ({})",
                Diag(intid)
            );
        }
        core::hint::spin_loop();
    }
    time::delay_ms(300);
    irq::disable();
    let total = TAKEN.load(Ordering::Acquire);
    if total != alarms + 1 {
        fail!(
            "irq-passthrough: re-enabled INTID {intid} delivered {} times, expected once ({})",
            total - alarms,
            Diag(intid)
        );
    }
    check_clean(intid, "re-enabled");
    let (_, pend, act) = gic_state(intid);
    if pend || act {
        fail!(
            "irq-passthrough: after the re-enabled delivery, INTID {intid} still pending {} / \
             active {} ({})",
            pend as u8,
            act as u8,
            Diag(intid)
        );
    }
    println!(
        "irq-passthrough: disabled in GICD: alarm fired, not delivered, GICD_ISPENDR shows it \
         pending; re-enabled: delivered once"
    );

    rtc_write(pl031::IMSC, 0);
    rtc_write(pl031::ICR, 1);
    gic::dist_write_bit(gicd::ICENABLER, intid);
    println!("irq-passthrough: RTC alarm SPI {spi} (INTID {intid}) taken {total} times, each once");
    psci::system_off()
}

/// The target vCPU when it is not vCPU 0: its redistributor and CPU interface, then
/// IRQs unmasked, waiting in WFI (the shared handler takes the alarms).
fn secondary(_context: u64) -> ! {
    if let Err(e) = gic::cpu_init() {
        fail!(
            "irq-passthrough: vCPU {}: GIC redistributor / CPU interface: {e}",
            arch::vcpu_index()
        );
    }
    irq::enable();
    READY.store(1, Ordering::Release);
    loop {
        irq::wfi();
    }
}

/// A small fixed-size text buffer.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }

    fn push_fmt(&mut self, args: core::fmt::Arguments<'_>) {
        let _ = core::fmt::Write::write_fmt(self, args);
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
