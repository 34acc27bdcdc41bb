//! Probes run by a hostile *frontend* against its virtio-mmio window: accesses the
//! data-abort syndrome cannot describe (exclusives, pairs, writeback, SIMD, LSE
//! atomics, DC ZVA, FEAT_MOPS), unaligned ones, cache maintenance, and a QueueNotify
//! storm.
//!
//! Policy (docs/ioreq.md): an access the syndrome does not describe gets a
//! synchronous external abort injected (the probe catches EC 0x25, DFSC 0x10, FAR in
//! the window); one it describes is forwarded like any other. To reach the window at
//! all, accesses that Device memory forbids at stage 1 (unaligned ones, DC ZVA) run
//! with the window's 2 MiB remapped Normal in this partition's own stage 1
//! ([`super::s1::Remap`]) — a guest may map its window however it likes.

use ferry_partition_rt::probe::{self, Caught, EC_DATA_ABORT_SAME};
use ferry_partition_rt::{Boot, fail, println, time};

use super::s1::Remap;
use super::util::{self, read32, virtio_window};
use crate::check;

/// virtio-mmio MagicValue ("virt").
const MAGIC: u32 = 0x7472_6976;
/// virtio-mmio Status, and its DEVICE_NEEDS_RESET bit.
const STATUS: u64 = 0x70;
const NEEDS_RESET: u32 = 0x40;

/// What an exotic access must get.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// An external abort (the syndrome cannot describe it).
    Abort,
    /// An external abort or a completed access (the syndrome may describe it).
    AbortOrValue,
    /// An external abort or nothing at all (cache maintenance).
    AbortOrNothing,
    /// A completed load of MagicValue (a load the syndrome describes).
    Magic,
    /// An external abort, or a store-exclusive that failed without storing (status
    /// 1: the exclusive monitor was not set, so it need not access memory at all).
    AbortOrStoreFailed,
    /// A FEAT_MOPS sequence: an external abort first; its other steps may raise
    /// more (MOPS exceptions once a step was skipped).
    MopsAbort,
}

/// One exotic access at an offset in the window; returns what a load got.
struct Op {
    name: &'static str,
    offset: u64,
    expect: Expect,
    run: fn(u64) -> u64,
}

macro_rules! op {
    ($name:literal, $off:expr, $expect:ident, $($asm:tt)*) => {
        Op {
            name: $name,
            offset: $off,
            expect: Expect::$expect,
            run: |a| {
                let v: u64;
                // SAFETY: an access to this partition's own virtio window (the
                // probe): Ferry answers it or injects an abort, which `catch` skips.
                unsafe {
                    core::arch::asm!($($asm)*, a = inout(reg) a => _, v = out(reg) v,
                        t = out(reg) _, out("v0") _, options(nostack))
                };
                v
            },
        }
    };
}

const UNALIGNED: &[Op] = &[
    op!(
        "LDR W at +0x2",
        0x2,
        AbortOrValue,
        "ldr {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
    op!(
        "LDR X at +0x4",
        0x4,
        AbortOrValue,
        "ldr {v}, [{a}]",
        "mov {t}, xzr"
    ),
    op!(
        "LDRH at +0x1",
        0x1,
        AbortOrValue,
        "ldrh {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
    op!(
        "LDR W at +0x1fe (past the window's end)",
        0x1fe,
        AbortOrValue,
        "ldr {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
    op!(
        "STR W at +0x101",
        0x101,
        AbortOrValue,
        "mov {v}, xzr",
        "str {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
];

const EXCLUSIVE: &[Op] = &[
    op!("LDXR W", 0, Abort, "ldxr {v:w}, [{a}]", "mov {t}, xzr"),
    op!("LDAXR X", 0, Abort, "ldaxr {v}, [{a}]", "mov {t}, xzr"),
    op!(
        "STXR W",
        0x100,
        AbortOrStoreFailed,
        "mov {v}, xzr",
        "stxr {t:w}, {v:w}, [{a}]",
        "mov {v}, {t}"
    ),
    op!(
        "STLXR W",
        0x100,
        AbortOrStoreFailed,
        "mov {v}, xzr",
        "stlxr {t:w}, {v:w}, [{a}]",
        "mov {v}, {t}"
    ),
    op!("LDXP X", 0, Abort, "ldxp {v}, {t}, [{a}]"),
];

const PAIR: &[Op] = &[
    op!("LDP W", 0, Abort, "ldp {v:w}, {t:w}, [{a}]"),
    op!("LDP X", 0, Abort, "ldp {v}, {t}, [{a}]"),
    op!(
        "STP W",
        0x100,
        Abort,
        "mov {v}, xzr",
        "stp {v:w}, {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
    op!(
        "LDR X post-index",
        0,
        Abort,
        "ldr {v}, [{a}], #8",
        "mov {t}, xzr"
    ),
    op!(
        "LDR W pre-index",
        0,
        Abort,
        "ldr {v:w}, [{a}, #0]!",
        "mov {t}, xzr"
    ),
    op!(
        "LDR Q (SIMD)",
        0,
        Abort,
        "ldr q0, [{a}]",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
    op!(
        "ST1 {v0.4S} (SIMD)",
        0x100,
        Abort,
        "movi v0.4s, #0",
        "st1 {{v0.4s}}, [{a}]",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
];

const ATOMIC: &[Op] = &[
    op!(
        "LDADD W",
        0x100,
        Abort,
        ".arch_extension lse",
        "mov {t}, #1",
        "ldadd {t:w}, {v:w}, [{a}]"
    ),
    op!(
        "STADD W",
        0x100,
        Abort,
        ".arch_extension lse",
        "mov {t}, #1",
        "stadd {t:w}, [{a}]",
        "mov {v}, xzr"
    ),
    op!(
        "SWP W",
        0x100,
        Abort,
        ".arch_extension lse",
        "mov {t}, xzr",
        "swp {t:w}, {v:w}, [{a}]"
    ),
    op!(
        "CAS W",
        0x100,
        Abort,
        ".arch_extension lse",
        "mov {v}, xzr",
        "mov {t}, xzr",
        "cas {v:w}, {t:w}, [{a}]"
    ),
    op!(
        "LDAPR W (RCpc acquire: describable)",
        0,
        Magic,
        ".arch_extension rcpc",
        "ldapr {v:w}, [{a}]",
        "mov {t}, xzr"
    ),
];

const CACHE: &[Op] = &[
    op!(
        "DC ZVA",
        0x100,
        Abort,
        "dc zva, {a}",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
    op!(
        "DC CIVAC",
        0,
        AbortOrNothing,
        "dc civac, {a}",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
    op!(
        "DC CVAC",
        0,
        AbortOrNothing,
        "dc cvac, {a}",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
    op!(
        "DC IVAC",
        0,
        AbortOrNothing,
        "dc ivac, {a}",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
    op!(
        "DC CVAU",
        0,
        AbortOrNothing,
        "dc cvau, {a}",
        "mov {v}, xzr",
        "mov {t}, xzr"
    ),
];

/// A RAM buffer for the FEAT_MOPS copies.
static mut MOPS_BUF: [u64; 4] = [0; 4];

const MOPS: &[Op] = &[
    op!(
        "SETP/SETM/SETE 16 bytes",
        0x100,
        MopsAbort,
        ".arch_extension mops",
        "mov {t}, #16",
        "mov {v}, xzr",
        "setp [{a}]!, {t}!, {v}",
        "setm [{a}]!, {t}!, {v}",
        "sete [{a}]!, {t}!, {v}"
    ),
    op!("CPYFP/CPYFM/CPYFE 16 bytes from the window", 0, MopsAbort,
        ".arch_extension mops", "adrp {v}, {buf}", "add {v}, {v}, :lo12:{buf}", "mov {t}, #16",
        "cpyfp [{v}]!, [{a}]!, {t}!", "cpyfm [{v}]!, [{a}]!, {t}!", "cpyfe [{v}]!, [{a}]!, {t}!",
        buf = sym MOPS_BUF),
    op!("CPYFP/CPYFM/CPYFE 16 bytes into the window", 0x100, MopsAbort,
        ".arch_extension mops", "adrp {v}, {buf}", "add {v}, {v}, :lo12:{buf}", "mov {t}, #16",
        "cpyfp [{a}]!, [{v}]!, {t}!", "cpyfm [{a}]!, [{v}]!, {t}!", "cpyfe [{a}]!, [{v}]!, {t}!",
        buf = sym MOPS_BUF),
];

/// Whether an exception is the external abort Ferry injects for an access in the
/// window at `w`.
fn is_window_abort(c: &Caught, w: u64) -> bool {
    c.ec() == EC_DATA_ABORT_SAME && c.esr & 0x3f == 0x10 && (w..w + 0x200).contains(&c.far)
}

/// `probe=window kinds=<kind>,... [repeat=<n>]`: each kind's accesses
/// (`unaligned`, `exclusive`, `pair`, `atomic` and `mops` need `-cpu max`, `cache`),
/// `repeat` times each (default 1; many undecodable accesses exercise Ferry's log
/// budget), with the window remapped Normal at stage 1; each must get what its
/// [`Expect`] allows. Before and after, plain loads read MagicValue, Version 2 and
/// a DeviceID, and Status never shows DEVICE_NEEDS_RESET: the device survives.
pub fn window(boot: &Boot) -> ! {
    let w = virtio_window(boot);
    let repeat = boot.arg_u64("repeat").unwrap_or(1).max(1);
    let health = |when: &str| {
        // SAFETY: this partition's own virtio window, mapped Device: plain loads.
        let (m, v, id, st) =
            unsafe { (read32(w), read32(w + 4), read32(w + 8), read32(w + STATUS)) };
        check!(
            m == MAGIC && v == 2 && id != 0 && id != u32::MAX && st & NEEDS_RESET == 0,
            "window: device healthy {when}: MagicValue {m:#x}, Version {v}, DeviceID {id}, Status {st:#x}"
        );
    };
    health("before");
    let kinds = boot
        .arg("kinds")
        .unwrap_or("unaligned,exclusive,pair,cache");
    let (mut aborts, mut total) = (0u32, 0u32);
    {
        let _normal = Remap::install(w);
        for kind in kinds.split(',') {
            let ops = match kind {
                "unaligned" => UNALIGNED,
                "exclusive" => EXCLUSIVE,
                "pair" => PAIR,
                "atomic" => ATOMIC,
                "cache" => CACHE,
                "mops" => MOPS,
                k => fail!(
                    "hostile: window: kind {k:?}: use unaligned, exclusive, pair, atomic, cache or mops"
                ),
            };
            for op in ops {
                for _ in 0..repeat {
                    let t0 = time::ticks();
                    let (v, c, n) = probe::catch(|| (op.run)(w + op.offset));
                    let us = util::us(t0, time::ticks());
                    total += 1;
                    aborts += u32::from(c.is_some_and(|c| is_window_abort(&c, w)));
                    judge(op, w, v, c, n, us, repeat == 1);
                }
            }
        }
    }
    health("after");
    println!(
        "hostile: window: {total} accesses of kinds {kinds}: {aborts} external aborts injected, the rest served or ignored"
    );
    util::verdict("window")
}

fn judge(op: &Op, w: u64, v: u64, c: Option<Caught>, n: u32, us: u64, say: bool) {
    let abort = c.is_some_and(|c| is_window_abort(&c, w));
    let got = |f: &mut core::fmt::Formatter<'_>| -> core::fmt::Result {
        match c {
            Some(c) => write!(
                f,
                "ESR_EL1 {:#x} (EC {:#x}) FAR {:#x}, {n} exception(s)",
                c.esr,
                c.ec(),
                c.far
            ),
            None => write!(f, "no exception, value {v:#x}"),
        }
    };
    let desc = Show(&got);
    let ok = match op.expect {
        Expect::Abort => abort && n == 1,
        Expect::AbortOrValue => c.is_none() || (abort && n == 1),
        Expect::AbortOrNothing => c.is_none() || (abort && n == 1),
        Expect::Magic => c.is_none() && v as u32 == MAGIC,
        Expect::AbortOrStoreFailed => (c.is_none() && v == 1) || (abort && n == 1),
        Expect::MopsAbort => abort && n <= 3,
    };
    check!(
        ok && us < 100_000,
        "window: {} at +{:#x}: {desc} in {us} us (expected {:?})",
        op.name,
        op.offset,
        op.expect
    );
    if say {
        println!("hostile: window: {} at +{:#x}: {desc}", op.name, op.offset);
    }
}

/// Formats through a closure.
struct Show<'a>(&'a dyn Fn(&mut core::fmt::Formatter<'_>) -> core::fmt::Result);

impl core::fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (self.0)(f)
    }
}

/// `probe=queue-notify-storm [delay=<ms>] [storm-ms=<ms>]`: after `delay` (default
/// 400) writes QueueNotify (queues 0-3) back to back for `storm-ms` (default 2500).
/// The writes are posted: each must come back at once (the ring fills, then
/// coalesces into overflow bits) whatever the backend, a victim, does.
pub fn queue_notify_storm(boot: &Boot) -> ! {
    let w = virtio_window(boot);
    time::delay_ms(boot.arg_u64("delay").unwrap_or(400));
    let storm = boot.arg_u64("storm-ms").unwrap_or(2500);
    let d = time::Deadline::after_ms(storm);
    let (mut writes, mut worst) = (0u64, 0u64);
    while !d.passed() {
        let t = time::ticks();
        // SAFETY: QueueNotify of this partition's own virtio device.
        unsafe { util::write32(w + 0x50, (writes & 3) as u32) };
        worst = worst.max(time::ticks() - t);
        writes += 1;
    }
    let worst_us = util::us(0, worst);
    println!(
        "hostile: queue-notify-storm: {writes} QueueNotify writes in {storm} ms ({} a ms), slowest {worst_us} us",
        writes / storm.max(1)
    );
    check!(
        worst_us < 100_000,
        "queue-notify-storm: every posted write came back at once (slowest {worst_us} us)"
    );
    util::verdict("queue-notify-storm")
}
