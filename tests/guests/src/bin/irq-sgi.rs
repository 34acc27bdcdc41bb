//! `irq-sgi`: SGIs between the two vCPUs of a partition (ICC_SGI1R_EL1).
//!
//! vCPU 0 sets up the distributor, its redistributor and CPU interface, starts vCPU 1
//! (PSCI CPU_ON), which sets up its own; each enables SGIs 0-15 (priority 0x80) and
//! unmasks IRQs; vCPU 1 then idles in WFI, doing everything from its handler. Then:
//! 1. `rounds` (default 100) ping-pongs: vCPU 0 sends SGI 1 to vCPU 1 (TargetList bit
//!    1, Aff3..Aff1 = 0), whose handler answers SGI 2 to vCPU 0; vCPU 0 waits for each
//!    answer before the next ping;
//! 2. broadcast (IRM = 1, "all but self") from vCPU 0: SGI 3 reaches vCPU 1 only;
//!    vCPU 1, asked with SGI 8, broadcasts SGI 9, which reaches vCPU 0 only;
//! 3. self-targeted: vCPU 0 sends SGI 5 to itself; vCPU 1, asked with SGI 10, sends
//!    SGI 6 to itself;
//! 4. multicast: vCPU 0 sends SGI 7 with TargetList 0b11: both get it once;
//! 5. after 50 ms of quiet, every (vCPU, SGI) count must be exact and no other INTID
//!    seen; the redistributors are vCPU n's at GICR + n * 0x20000, GICR_TYPER.Last on
//!    the last one only.
//!
//! Bootargs: `rounds=<n>` (default 100).
//! Log: `irq-sgi: vCPU 1 up, SGIs 0-15 enabled on both`, `irq-sgi: <n> round trips,
//! mean <t> us`, `irq-sgi: broadcast, self and multicast SGIs ok`,
//! `irq-sgi: <n> round trips ok`, then SYSTEM_OFF; failures `FAIL: irq-sgi: ...` and
//! SYSTEM_RESET.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_partition_rt::gic::{self, SgiTarget};
use ferry_partition_rt::psci::{self, ret, ret_name};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, time};

rt::entry!(main);

const SGI_PING: u32 = 1;
const SGI_PONG: u32 = 2;
const SGI_BCAST0: u32 = 3;
const SGI_SELF0: u32 = 5;
const SGI_SELF1: u32 = 6;
const SGI_MULTI: u32 = 7;
const CMD_BCAST: u32 = 8;
const SGI_BCAST1: u32 = 9;
const CMD_SELF: u32 = 10;

/// Per-step deadline.
const STEP_MS: u64 = 1000;

/// COUNTS[vCPU][SGI]: SGIs taken.
static COUNTS: [[AtomicU32; 16]; 2] = [const { [const { AtomicU32::new(0) }; 16] }; 2];
/// IRQs of non-SGI INTIDs per vCPU, and the last such INTID.
static OTHER: [AtomicU32; 2] = [const { AtomicU32::new(0) }; 2];
static OTHER_ID: AtomicU32 = AtomicU32::new(0);
/// vCPU 1: set up and unmasked.
static READY: AtomicU32 = AtomicU32::new(0);
/// The two vCPUs' MPIDRs (from the DT).
static MPIDR: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

fn count(vcpu: usize, sgi: u32) -> u32 {
    COUNTS[vcpu][sgi as usize].load(Ordering::Acquire)
}

fn handler(intid: u32) {
    let me = arch::vcpu_index().min(1);
    if intid >= 16 {
        OTHER[me].fetch_add(1, Ordering::Relaxed);
        OTHER_ID.store(intid, Ordering::Relaxed);
        return;
    }
    COUNTS[me][intid as usize].fetch_add(1, Ordering::AcqRel);
    if me == 1 {
        let v0 = MPIDR[0].load(Ordering::Relaxed);
        let v1 = MPIDR[1].load(Ordering::Relaxed);
        match intid {
            SGI_PING => gic::send_sgi(SGI_PONG, SgiTarget::one(v0)),
            CMD_BCAST => gic::send_sgi(SGI_BCAST1, SgiTarget::AllButSelf),
            CMD_SELF => gic::send_sgi(SGI_SELF1, SgiTarget::one(v1)),
            _ => {}
        }
    }
}

/// The per-vCPU part of the set-up: redistributor, CPU interface, SGIs on.
fn setup_this_vcpu() {
    let me = arch::vcpu_index();
    if let Err(e) = gic::cpu_init() {
        fail!("irq-sgi: vCPU {me}: GIC redistributor / CPU interface: {e}");
    }
    for sgi in 0..16 {
        gic::set_private_priority(sgi, 0x80);
    }
    gic::enable_private(0xffff);
    let en = gic::private_enabled();
    if en & 0xffff != 0xffff {
        fail!("irq-sgi: vCPU {me}: GICR_ISENABLER0 = {en:#x} after enabling SGIs 0-15");
    }
}

fn secondary(_context: u64) -> ! {
    setup_this_vcpu();
    irq::enable();
    READY.store(1, Ordering::Release);
    arch::sev();
    loop {
        irq::wfi();
    }
}

/// Waits until `cond` holds, or fails with `what`.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let d = time::Deadline::after_ms(STEP_MS);
    while !cond() {
        if d.passed() {
            fail!(
                "irq-sgi: {what}: not within {STEP_MS} ms (vCPU 0 GICR_ISPENDR0={:#x}, \
                 vCPU 1 GICR_ISPENDR0={:#x})",
                gic::read32(gic::redist_of(0) + gic::gicr::ISPENDR0),
                gic::read32(gic::redist_of(1) + gic::gicr::ISPENDR0)
            );
        }
        core::hint::spin_loop();
    }
}

fn main(boot: &'static Boot) -> ! {
    let rounds = boot.arg_u64("rounds").unwrap_or(100) as u32;
    let cpus = boot.cpus();
    if cpus.len() != 2 {
        fail!(
            "irq-sgi: needs exactly 2 vCPUs, the DT lists {}",
            cpus.len()
        );
    }
    let me = arch::mpidr_affinity(arch::mpidr());
    if me != cpus[0] || arch::vcpu_index() != 0 {
        fail!(
            "irq-sgi: main runs on MPIDR {me:#x}, expected the DT's first CPU {:#x}",
            cpus[0]
        );
    }
    MPIDR[0].store(cpus[0], Ordering::Relaxed);
    MPIDR[1].store(cpus[1], Ordering::Relaxed);

    if let Err(e) = gic::init(boot) {
        fail!("irq-sgi: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("irq-sgi: GIC distributor: {e}");
    }
    gic::set_handler(handler);
    setup_this_vcpu();
    irq::enable();

    let r = psci::cpu_on(cpus[1], secondary, 0);
    if r != ret::SUCCESS {
        fail!("irq-sgi: CPU_ON({:#x}) = {r} ({})", cpus[1], ret_name(r));
    }
    let d = time::Deadline::after_ms(5000);
    while READY.load(Ordering::Acquire) == 0 {
        if d.passed() {
            fail!("irq-sgi: vCPU 1 not set up within 5000 ms");
        }
        core::hint::spin_loop();
    }
    check_layout();
    println!("irq-sgi: vCPU 1 up, SGIs 0-15 enabled on both");

    // 1. Ping-pong.
    let v1 = SgiTarget::one(cpus[1]);
    let start = time::ticks();
    for round in 1..=rounds {
        gic::send_sgi(SGI_PING, v1);
        let d = time::Deadline::after_ms(STEP_MS);
        while count(0, SGI_PONG) < round {
            if d.passed() {
                fail!(
                    "irq-sgi: round {round}: no answer within {STEP_MS} ms (vCPU 1 took {} \
                     pings, vCPU 0 {} pongs; vCPU 1 GICR_ISPENDR0={:#x})",
                    count(1, SGI_PING),
                    count(0, SGI_PONG),
                    gic::read32(gic::redist_of(1) + gic::gicr::ISPENDR0)
                );
            }
            core::hint::spin_loop();
        }
    }
    let total = time::ticks() - start;
    println!(
        "irq-sgi: {rounds} round trips, mean {} us",
        total * 1_000_000 / time::freq() / rounds.max(1) as u64
    );

    // 2. Broadcasts, both ways.
    gic::send_sgi(SGI_BCAST0, SgiTarget::AllButSelf);
    wait_for("broadcast SGI 3 from vCPU 0 reaching vCPU 1", || {
        count(1, SGI_BCAST0) >= 1
    });
    gic::send_sgi(CMD_BCAST, v1);
    wait_for("broadcast SGI 9 from vCPU 1 reaching vCPU 0", || {
        count(0, SGI_BCAST1) >= 1
    });
    // 3. Self-targeted, both vCPUs.
    gic::send_sgi(SGI_SELF0, SgiTarget::one(cpus[0]));
    wait_for("SGI 5 from vCPU 0 to itself", || count(0, SGI_SELF0) >= 1);
    gic::send_sgi(CMD_SELF, v1);
    wait_for("SGI 6 from vCPU 1 to itself", || count(1, SGI_SELF1) >= 1);
    // 4. One SGI to both (cpus[0] and cpus[1] share Aff3..Aff1 and 16-range).
    let same_cluster = cpus[0] >> 4 == cpus[1] >> 4;
    let list = (1u16 << (cpus[0] & 0xf)) | (1u16 << (cpus[1] & 0xf));
    if same_cluster {
        gic::send_sgi(
            SGI_MULTI,
            SgiTarget::List {
                mpidr: cpus[0],
                list,
            },
        );
    } else {
        gic::send_sgi(SGI_MULTI, SgiTarget::one(cpus[0]));
        gic::send_sgi(SGI_MULTI, SgiTarget::one(cpus[1]));
    }
    wait_for("SGI 7 to both vCPUs", || {
        count(0, SGI_MULTI) >= 1 && count(1, SGI_MULTI) >= 1
    });

    // 5. Quiet, then exact counts.
    time::delay_ms(50);
    let mut expected = [[0u32; 16]; 2];
    expected[0][SGI_PONG as usize] = rounds;
    expected[0][SGI_BCAST1 as usize] = 1;
    expected[0][SGI_SELF0 as usize] = 1;
    expected[0][SGI_MULTI as usize] = 1;
    expected[1][SGI_PING as usize] = rounds;
    expected[1][SGI_BCAST0 as usize] = 1;
    expected[1][CMD_BCAST as usize] = 1;
    expected[1][SGI_SELF1 as usize] = 1;
    expected[1][CMD_SELF as usize] = 1;
    expected[1][SGI_MULTI as usize] = 1;
    let mut bad = 0;
    for (v, row) in expected.iter().enumerate() {
        for (sgi, &want) in row.iter().enumerate() {
            let got = count(v, sgi as u32);
            if got != want {
                println!("irq-sgi: vCPU {v} took SGI {sgi} {got} times, expected {want}");
                bad += 1;
            }
        }
        let other = OTHER[v].load(Ordering::Relaxed);
        if other != 0 {
            println!(
                "irq-sgi: vCPU {v} took {other} interrupts of other INTIDs (last {})",
                OTHER_ID.load(Ordering::Relaxed)
            );
            bad += 1;
        }
    }
    if bad != 0 {
        fail!("irq-sgi: {bad} SGI counts wrong");
    }
    println!("irq-sgi: broadcast, self and multicast SGIs ok");
    irq::disable();
    println!("irq-sgi: {rounds} round trips ok");
    psci::system_off()
}

/// vCPU n's redistributor at GICR + n * 0x20000; GICR_TYPER.Last on the last one only.
fn check_layout() {
    let base = gic::gicr_base();
    for v in 0..2 {
        let rd = gic::redist_of(v);
        let want = base + v * gic::gicr::STRIDE;
        if rd != want {
            fail!("irq-sgi: vCPU {v}'s redistributor is at {rd:#x}, expected {want:#x}");
        }
        let typer = gic::read64(rd + gic::gicr::TYPER);
        let last = typer & gic::gicr::TYPER_LAST != 0;
        if last != (v == 1) {
            fail!(
                "irq-sgi: vCPU {v}'s GICR_TYPER = {typer:#x}: Last is {last}, expected {}",
                v == 1
            );
        }
    }
}
