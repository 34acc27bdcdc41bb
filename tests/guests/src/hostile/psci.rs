//! PSCI and hypercall probes: CPU_ON with entry points outside the partition, two
//! vCPUs racing CPU_ON of a third, AFFINITY_INFO of CPUs that are not the
//! partition's, and HVC/SMC fuzz (every call must come back with the value the
//! model below expects, and Ferry's log must stay bounded: `max_ferry_lines`).

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use ferry_abi::hypercall as hc;
use ferry_abi::psci::function as f;
use ferry_partition_rt::psci::{self, affinity, ret};
use ferry_partition_rt::{Boot, arch, fail, println, time};

use super::util::{self, Conduit, IMMEDIATES, Rng};
use crate::check;

/// The context id vCPU 1 was started with (0: not yet).
static STARTED: AtomicU64 = AtomicU64::new(0);

fn report_start(ctx: u64) -> ! {
    STARTED.store(ctx, Ordering::Release);
    loop {
        arch::wfe();
    }
}

/// `probe=cpu-on-outside [other=<hex>]` (2 vCPUs): CPU_ON of vCPU 1 with entry points
/// outside the partition's RAM — 0, just below it, just past it, its last 2 bytes,
/// another partition's RAM by host address (`other`, default 0x48800000), Ferry's RAM
/// (0x41000000), the GIC distributor, the top of the address space, past 48 bits —
/// each must return INVALID_ADDRESS and leave vCPU 1 OFF; then a CPU_ON inside
/// succeeds and vCPU 1 runs with its context id.
pub fn cpu_on_outside(boot: &Boot) -> ! {
    let mem = *boot
        .memory()
        .first()
        .unwrap_or_else(|| fail!("hostile: no /memory"));
    let other = boot.arg_hex("other").unwrap_or(0x4880_0000);
    let entries = [
        (0, "0"),
        (mem.base - 4, "just below its RAM"),
        (mem.end(), "just past its RAM"),
        (mem.end() - 2, "its last 2 bytes"),
        (other, "another partition's RAM (host address)"),
        (0x4100_0000, "Ferry's RAM (host address)"),
        (0x0800_0000, "the GIC distributor"),
        (u64::MAX - 3, "the top of the address space"),
        (1 << 48, "past 48 bits"),
    ];
    for (fid, name) in [(f::CPU_ON, "CPU_ON"), (f::CPU_ON_32, "CPU_ON (SMC32)")] {
        for (entry, what) in entries {
            if fid == f::CPU_ON_32 && entry >> 32 != 0 {
                continue;
            }
            let r = psci::call(fid, 1, entry, 0x1234);
            check!(
                r == ret::INVALID_ADDRESS,
                "cpu-on-outside: {name}(1, {entry:#x}: {what}) = {r} ({}), expected INVALID_ADDRESS",
                psci::ret_name(r)
            );
            let a = psci::affinity_info(1);
            check!(
                a == affinity::OFF,
                "cpu-on-outside: vCPU 1 still OFF after {name} at {what} (AFFINITY_INFO {a})"
            );
        }
    }
    let r = psci::cpu_on(1, report_start, 0x600d);
    check!(
        r == ret::SUCCESS,
        "cpu-on-outside: CPU_ON(1) inside its RAM = {r}"
    );
    let d = time::Deadline::after_ms(2000);
    while STARTED.load(Ordering::Acquire) == 0 && !d.passed() {}
    let ctx = STARTED.load(Ordering::Acquire);
    check!(
        ctx == 0x600d,
        "cpu-on-outside: vCPU 1 ran with context {ctx:#x}, expected 0x600d"
    );
    println!(
        "hostile: cpu-on-outside: {} entry points refused, vCPU 1 OFF after each; a valid CPU_ON ran it",
        2 * entries.len() - 2
    );
    util::verdict("cpu-on-outside")
}

core::arch::global_asm!(
    ".section .text.hostile_entry_b, \"ax\"",
    ".global hostile_entry_b",
    ".balign 8",
    // Racer 1's entry point: marks the context id, then the runtime's entry.
    "hostile_entry_b:",
    "orr x0, x0, #(1 << 62)",
    "b __rt_secondary_entry",
);

unsafe extern "C" {
    fn hostile_entry_b();
}

/// Racer 1's mark on the context id (set by [`hostile_entry_b`]).
const VIA_B: u64 = 1 << 62;

/// Round `r`: GO = r (vCPU 0) -> READY = r (vCPU 1) -> FIRE = r: both call at once.
static GO: AtomicU64 = AtomicU64::new(0);
static READY: AtomicU64 = AtomicU64::new(0);
static FIRE: AtomicU64 = AtomicU64::new(0);
static RES: [AtomicI64; 2] = [const { AtomicI64::new(0) }; 2];
static DONE: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static SEEN_CTX: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);

/// The target: records how it was started and, once both racers' calls of this
/// round returned (so a late CPU_ON cannot find it off again), switches itself off.
fn target(ctx: u64) -> ! {
    SEEN_CTX.store(ctx, Ordering::Relaxed);
    SEEN.fetch_add(1, Ordering::Release);
    let round = ctx & 0xffff_ffff;
    let d = time::Deadline::after_ms(5000);
    while round != 0 && DONE.iter().any(|d| d.load(Ordering::Acquire) != round) && !d.passed() {
        core::hint::spin_loop();
    }
    let r = psci::cpu_off();
    fail!("hostile: cpu-on-race: CPU_OFF of the target returned {r}")
}

/// Racer `me`'s CPU_ON of vCPU 2 in round `r`: racer 0 through the runtime's entry,
/// racer 1 through [`hostile_entry_b`].
fn race(me: usize, r: u64) -> i64 {
    let ctx = (me as u64) << 32 | r;
    let entry = if me == 0 {
        psci::secondary_entry()
    } else {
        hostile_entry_b as *const () as usize as u64
    };
    psci::cpu_on_raw(2, entry, ctx)
}

fn racer1(_: u64) -> ! {
    let mut last = 0;
    loop {
        let r = GO.load(Ordering::Acquire);
        if r == last {
            continue;
        }
        last = r;
        READY.store(r, Ordering::Release);
        while FIRE.load(Ordering::Acquire) != r {}
        RES[1].store(race(1, r), Ordering::Relaxed);
        DONE[1].store(r, Ordering::Release);
    }
}

fn wait_off(vcpu: u64) -> bool {
    let d = time::Deadline::after_ms(5000);
    while psci::affinity_info(vcpu) != affinity::OFF {
        if d.passed() {
            return false;
        }
    }
    true
}

/// `probe=cpu-on-race [rounds=<n>] [jitter=<n>]` (3 vCPUs): vCPUs 0 and 1 race CPU_ON of vCPU 2,
/// released together each round (vCPU 0 after a random delay of up to `jitter`
/// spins, default 10000), with different entry points and context ids.
/// Exactly one must get SUCCESS, the other ALREADY_ON or ON_PENDING, and vCPU 2 must
/// start at the winner's entry point with the winner's context id (the two are one
/// decision); it then turns itself off for the next round.
pub fn cpu_on_race(boot: &Boot) -> ! {
    let rounds = boot.arg_u64("rounds").unwrap_or(200);
    let jitter = boot.arg_u64("jitter").unwrap_or(10_000).max(1);
    let mut rng = Rng::new(0x4ace);
    // Registers `target` as vCPU 2's function (both entries end up there).
    if psci::cpu_on(2, target, 0) != ret::SUCCESS || !wait_off(2) {
        fail!("hostile: cpu-on-race: vCPU 2 did not start and stop once");
    }
    if psci::cpu_on(1, racer1, 0) != ret::SUCCESS {
        fail!("hostile: cpu-on-race: CPU_ON(1) failed");
    }
    let mut wins = [0u64; 2];
    for r in 1..=rounds {
        let seen = SEEN.load(Ordering::Acquire);
        GO.store(r, Ordering::Release);
        let d = time::Deadline::after_ms(5000);
        while READY.load(Ordering::Acquire) != r && !d.passed() {}
        FIRE.store(r, Ordering::Release);
        // vCPU 1 sees FIRE a moment later: a random head start of its own moves the
        // two calls across each other, so both win rounds and some collide exactly.
        for _ in 0..rng.below(jitter) {
            core::hint::spin_loop();
        }
        let mine = race(0, r);
        DONE[0].store(r, Ordering::Release);
        while DONE[1].load(Ordering::Acquire) != r && !d.passed() {}
        while SEEN.load(Ordering::Acquire) == seen && !d.passed() {}
        let theirs = RES[1].load(Ordering::Relaxed);
        let ctx = SEEN_CTX.load(Ordering::Relaxed);
        let loser = |x: i64| x == ret::ALREADY_ON || x == ret::ON_PENDING;
        let winner = match (mine, theirs) {
            (ret::SUCCESS, t) if loser(t) => Some(0),
            (m, ret::SUCCESS) if loser(m) => Some(1),
            _ => None,
        };
        let expect = winner.map(|w| (w as u64) << 32 | r | if w == 1 { VIA_B } else { 0 });
        let ok = check!(
            winner.is_some() && SEEN.load(Ordering::Acquire) == seen + 1 && Some(ctx) == expect,
            "cpu-on-race: round {r}: CPU_ON returned {mine} to vCPU 0 and {theirs} to vCPU 1; vCPU 2 started {} time(s) with context {ctx:#x} (the winner's would be {expect:x?})",
            SEEN.load(Ordering::Acquire) - seen
        );
        if !ok || !wait_off(2) {
            break;
        }
        if let Some(w) = winner {
            wins[w] += 1;
        }
    }
    if wins[0] + wins[1] == rounds {
        println!(
            "hostile: cpu-on-race: {rounds} rounds: vCPU 0 won {}, vCPU 1 won {}, every start at the winner's entry with its context",
            wins[0], wins[1]
        );
    }
    util::verdict("cpu-on-race")
}

/// `probe=affinity-foreign [count=<n>]` (1 vCPU): AFFINITY_INFO over HVC and SMC,
/// 32- and 64-bit, of MPIDRs that are not its vCPU's — the other cores' indices,
/// higher affinity levels, flag bits, random ones — at levels 0-3 and beyond: each
/// must be INVALID_PARAMETERS, whatever the CPUs behind them do; its own vCPU (level
/// 0) is ON.
pub fn affinity_foreign(boot: &Boot) -> ! {
    let count = boot.arg_u64("count").unwrap_or(2000);
    let mut rng = Rng::new(0xaff);
    let fixed = [
        1,
        2,
        3,
        4,
        0xff,
        0x100,
        0x1_0000,
        0x1_0000_0000,
        0x8000_0000,
        0x8000_0001,
        u64::MAX,
    ];
    let mut n = 0;
    for i in 0..count as usize + fixed.len() * 4 {
        let (target, level) = match fixed.get(i / 4) {
            Some(&t) => (t, (i % 4) as u64),
            None => (
                rng.next() >> rng.below(64),
                [0, 1, 2, 3, 7, u64::MAX][rng.below(6) as usize],
            ),
        };
        let (fid, conduit) = match rng.below(4) {
            0 => (f::AFFINITY_INFO, Conduit::Hvc(0)),
            1 => (f::AFFINITY_INFO_32, Conduit::Hvc(0)),
            2 => (f::AFFINITY_INFO, Conduit::Smc(0)),
            _ => (f::AFFINITY_INFO_32, Conduit::Smc(0)),
        };
        let x = util::call(conduit, [u64::from(fid), target, level, 0, 0])[0];
        let r = if fid == f::AFFINITY_INFO_32 {
            x as u32 as i32 as i64
        } else {
            x as i64
        };
        let (t, l) = if fid == f::AFFINITY_INFO_32 {
            (target & 0xffff_ffff, level & 0xffff_ffff)
        } else {
            (target, level)
        };
        let own = t == 0;
        let ok = match (own, l) {
            (true, 0) => r == affinity::ON,
            (true, _) => r == affinity::ON || r == ret::INVALID_PARAMETERS,
            (false, _) => r == ret::INVALID_PARAMETERS,
        };
        if !check!(
            ok,
            "affinity-foreign: {fid:#x} via {conduit:?} (target {target:#x}, level {level:#x}) = {r}"
        ) {
            break;
        }
        n += 1;
    }
    println!(
        "hostile: affinity-foreign: {n} AFFINITY_INFO calls: INVALID_PARAMETERS for every CPU not its own"
    );
    util::verdict("affinity-foreign")
}

/// Function ids the fuzz never calls: they end or suspend the caller (CPU_OFF,
/// SYSTEM_OFF, SYSTEM_RESET, SYSTEM_RESET2, CPU_SUSPEND, SYSTEM_SUSPEND) or print
/// (CONSOLE_WRITE).
fn excluded(fid: u32) -> bool {
    matches!(
        fid & !0x4000_0000,
        0x8400_0001 | 0x8400_0002 | 0x8400_0008 | 0x8400_0009 | 0x8400_000e | 0x8400_0012
    ) || fid == hc::CONSOLE_WRITE
}

/// What a 1-vCPU partition without a request page gets for a call: the model of
/// Ferry's PSCI (docs/hypercalls.md). `None`: anything (not modelled).
fn expected(fid: u32, x: [u64; 5]) -> i64 {
    let smc32 = !f::is_smc64(fid);
    let arg = |i: usize| if smc32 { x[i] & 0xffff_ffff } else { x[i] };
    match fid {
        f::VERSION => 0x1_0001,
        f::MIGRATE_INFO_TYPE => 2,
        f::FEATURES => {
            let implemented = [
                f::VERSION,
                f::FEATURES,
                f::CPU_ON,
                f::CPU_ON_32,
                f::CPU_OFF,
                f::AFFINITY_INFO,
                f::AFFINITY_INFO_32,
                f::MIGRATE_INFO_TYPE,
                f::SYSTEM_OFF,
                f::SYSTEM_RESET,
            ];
            if implemented.contains(&(arg(1) as u32)) {
                0
            } else {
                ret::NOT_SUPPORTED
            }
        }
        f::CPU_ON | f::CPU_ON_32 if arg(1) == 0 => ret::ALREADY_ON,
        f::CPU_ON | f::CPU_ON_32 => ret::INVALID_PARAMETERS,
        f::AFFINITY_INFO | f::AFFINITY_INFO_32 if arg(1) == 0 && arg(2) == 0 => affinity::ON,
        f::AFFINITY_INFO | f::AFFINITY_INFO_32 => ret::INVALID_PARAMETERS,
        hc::VERSION => hc::ABI_VERSION as i64,
        // Never restarted: its first run.
        hc::GENERATION => 0,
        hc::IOREQ_COMPLETE
        | hc::BACKEND_READY
        | hc::CONSOLE_DEVICE_WRITE
        | hc::CONSOLE_DEVICE_READ => hc::NOT_SUPPORTED,
        hc::NOTIFY_FRONTEND => hc::INVALID_PARAMETERS,
        _ => ret::NOT_SUPPORTED,
    }
}

/// `probe=call-fuzz conduit=hvc|smc [ids=all|psci] [count=<n>] [seed=<hex>]` (1 vCPU,
/// no request page): `n` SMCCC calls with random function ids — PSCI and Ferry's
/// ranges, the SMCCC architecture range, random ones, x0 beyond 32 bits — random
/// arguments and immediates (HVC: non-zero is not SMCCC and must return
/// NOT_SUPPORTED; SMC: any is served). Every result must match the model
/// ([`expected`]); with `ids=psci` a quarter are CPU_ONs of vCPUs it does not have
/// (refused and logged: the log must stay bounded).
pub fn call_fuzz(boot: &Boot) -> ! {
    let count = boot.arg_u64("count").unwrap_or(20_000);
    let smc = match boot.arg("conduit").unwrap_or("hvc") {
        "hvc" => false,
        "smc" => true,
        c => fail!("hostile: call-fuzz: conduit={c}: use hvc or smc"),
    };
    let psci_only = boot.arg("ids") == Some("psci");
    let mut rng = Rng::new(boot.arg_hex("seed").unwrap_or(0xf022));
    let (mut modelled, mut refused_cpu_on, mut bad) = (0u64, 0u64, 0u64);
    let t0 = time::ticks();
    for i in 0..count {
        let base = if psci_only {
            [0x8400_0000u32, 0xc400_0000][rng.below(2) as usize] | rng.below(0x20) as u32
        } else {
            match rng.below(8) {
                0 | 1 => {
                    [0x8400_0000u32, 0xc400_0000][rng.below(2) as usize] | rng.below(0x20) as u32
                }
                2 | 3 => {
                    [0x8600_0000u32, 0xc600_0000][rng.below(2) as usize] | rng.below(0x40) as u32
                }
                4 => 0x8000_0000 | rng.below(0x10) as u32,
                5 => [
                    f::CPU_ON_32,
                    f::AFFINITY_INFO,
                    f::FEATURES,
                    hc::NOTIFY_FRONTEND,
                ][rng.below(4) as usize],
                _ => rng.next() as u32,
            }
        };
        let fid = if psci_only && rng.one_in(4) {
            f::CPU_ON
        } else {
            base
        };
        if excluded(fid) {
            continue;
        }
        let mut x = [
            u64::from(fid),
            rng.next(),
            rng.next(),
            rng.next(),
            rng.next(),
        ];
        if fid == f::CPU_ON || fid == f::CPU_ON_32 {
            // Never a target it has (vCPU 0 is itself; ALREADY_ON is modelled).
            x[1] = if rng.one_in(8) {
                0
            } else {
                1 + rng.below(0x1_0000)
            };
        }
        if rng.one_in(4) {
            x[1] &= 0xff;
        }
        let wide = !psci_only && rng.one_in(16);
        if wide {
            x[0] |= (rng.next() | 1) << 32;
        }
        let imm = if rng.one_in(4) {
            IMMEDIATES[rng.below(4) as usize]
        } else {
            0
        };
        let conduit = if smc {
            Conduit::Smc(imm)
        } else {
            Conduit::Hvc(imm)
        };
        let r0 = util::call(conduit, x)[0];
        let want = if wide || matches!(conduit, Conduit::Hvc(1..)) {
            ret::NOT_SUPPORTED
        } else {
            expected(fid, x)
        };
        // 32-bit calls may return a 32-bit value.
        let ok = r0 as i64 == want || (!f::is_smc64(fid) && r0 as u32 as i32 as i64 == want);
        modelled += 1;
        if want == ret::INVALID_PARAMETERS && (fid == f::CPU_ON || fid == f::CPU_ON_32) {
            refused_cpu_on += 1;
        }
        if !ok {
            bad += 1;
            if bad <= 10 {
                check!(
                    false,
                    "call-fuzz: #{i} {conduit:?} x0 {:#x} x1 {:#x} x2 {:#x} = {:#x}, expected {want}",
                    x[0],
                    x[1],
                    x[2],
                    r0
                );
            }
        }
    }
    let ms = time::ticks_to_ms(time::ticks() - t0);
    check!(
        bad == 0,
        "call-fuzz: {bad} of {modelled} results off the model"
    );
    println!(
        "hostile: call-fuzz: {modelled} {} calls in {ms} ms, each as modelled; {refused_cpu_on} refused CPU_ONs",
        if smc { "SMC" } else { "HVC" }
    );
    util::verdict("call-fuzz")
}
