//! The virtio *peers* of hostile backends: frontends that are the victims of their
//! scenario and check their own memory and progress while driving the device.
//!
//! - `peer-echo` drives [`super::ioreq::be_echo`]'s echo device: every value written
//!   must read back as written XOR the vCPU's mark, every access must complete well
//!   within the deadline, and the end-of-run test of the backend's mode must end as
//!   Ferry's policy says (a raced read gets one of the racers' values; a stale
//!   completion is refused, so the read fails the device and reads all-ones);
//! - `peer-slow` reads a register of a backend that answers just before the deadline
//!   (`vbe mode=slow`) with its virtual timer ticking every millisecond: ticks must
//!   keep coming while an access is outstanding, and the device must be failed
//!   within a bounded number of accesses (Ferry's slow-backend budget).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ferry_partition_rt::{self as rt, Boot, fail, println, psci, time};

use super::ioreq::{RACE_OFFSET, RACE_VALUE, STALE_OFFSET, echo_mark};
use super::util::{self, read32, virtio_windows, write32};
use super::watch::{Pattern, Ticker};
use crate::check;

/// virtio-mmio Status and DEVICE_NEEDS_RESET.
const STATUS: u64 = 0x70;
const NEEDS_RESET: u32 = 0x40;

/// Writes the memory pattern (the first thing every peer does).
fn pattern(boot: &Boot) -> Pattern {
    let p = Pattern::range(boot, rt::image_end() as u64, u64::MAX)
        .unwrap_or_else(|e| fail!("hostile: peer: {e}"));
    p.fill();
    p
}

/// Checks the pattern (the last thing every peer does).
fn check_pattern(p: &Pattern) {
    match p.check() {
        Ok(bytes) => println!("hostile: peer: memory intact ({bytes} bytes)"),
        Err(c) => {
            check!(
                false,
                "peer: memory changed at {:#x}: read {:#x} ({} words differ)",
                c.addr,
                c.got,
                c.words
            );
        }
    }
}

/// Worst access time, in counter ticks, over both vCPUs.
static WORST: AtomicU64 = AtomicU64::new(0);
static VCPU1_DONE: AtomicBool = AtomicBool::new(false);
static VCPU1_BAD: AtomicU64 = AtomicU64::new(0);

/// `pairs` echo write/read pairs on the device at `w` from this vCPU; returns how
/// many read back wrong (the first few are printed).
fn echo_pairs(w: u64, pairs: u64, notify: bool) -> u64 {
    let v = rt::arch::vcpu_index() as u64;
    let mut bad = 0;
    for i in 0..pairs {
        let reg = w + 0x100 + 4 * (i % 60);
        let val = (i.wrapping_mul(0x9e37_79b9) ^ v << 28 ^ w) as u32;
        let t0 = time::ticks();
        // SAFETY: this partition's own virtio window.
        let got = unsafe {
            write32(reg, val);
            read32(reg)
        };
        WORST.fetch_max((time::ticks() - t0) / 2, Ordering::Relaxed);
        if notify {
            // SAFETY: QueueNotify of the same device (posted).
            unsafe { write32(w + 0x50, (i & 3) as u32) };
        }
        if got != val ^ echo_mark(v) {
            bad += 1;
            if bad <= 5 {
                println!(
                    "hostile: peer-echo: vCPU {v} device {w:#x} pair {i}: wrote {val:#x}, read {got:#x}, expected {:#x}",
                    val ^ echo_mark(v)
                );
            }
        }
    }
    bad
}

fn echo_vcpu1(arg: u64) -> ! {
    let (w, pairs) = (arg & 0xffff_ffff, arg >> 32);
    VCPU1_BAD.store(echo_pairs(w, pairs, false), Ordering::Relaxed);
    VCPU1_DONE.store(true, Ordering::Release);
    loop {
        rt::arch::wfe();
    }
}

/// Reads `off` of the device at `w` (the end-of-run test), then — once the failure
/// has surely been recorded — its Status, which Ferry then answers itself.
fn end_read(w: u64, off: u64) -> (u32, u32) {
    // SAFETY: this partition's own virtio window.
    let v = unsafe { read32(w + off) };
    time::delay_ms(20);
    // SAFETY: as above.
    (v, unsafe { read32(w + STATUS) })
}

/// Whether a Status read is Ferry's answer for a failed device: the last Status
/// written (none here: 0) with DEVICE_NEEDS_RESET.
fn needs_reset(st: u32) -> bool {
    st == NEEDS_RESET
}

/// `probe=peer-echo [pairs=<n>,<m>,...] [vcpus=2] [notify] [end=race|stale|none]
/// [max-access-ms=<ms>]`: per device (DT order), `pairs` echo pairs (default 40);
/// with `vcpus=2`, vCPU 1 runs as many on device 0 at the same time; with `notify`,
/// a QueueNotify after each pair. Then, on the last device, `end`: `race` reads
/// [`RACE_OFFSET`] (one of [`RACE_VALUE`] must come back; the loser's completion
/// fails the device: Status shows DEVICE_NEEDS_RESET); `stale` reads
/// [`STALE_OFFSET`] on every device (the backend completes it with a stale
/// sequence number: all-ones, DEVICE_NEEDS_RESET). Every access must take less than
/// `max-access-ms` (default 500), no pair may read back wrong, memory stays intact.
pub fn echo(boot: &Boot) -> ! {
    let pat = pattern(boot);
    let (windows, n) = virtio_windows(boot);
    if n == 0 {
        fail!("hostile: peer-echo: no virtio device");
    }
    let mut pairs = [40u64; 8];
    if let Some(list) = boot.arg("pairs") {
        for (i, p) in list.split(',').enumerate().take(8) {
            pairs[i] = rt::args::parse_u64(p).unwrap_or_else(|| fail!("hostile: pairs={list}"));
        }
    }
    let notify = boot.arg("notify").is_some();
    let end = boot.arg("end").unwrap_or("none");
    // The backend announces BACKEND_READY on its own time: let it.
    time::delay_ms(boot.arg_u64("delay").unwrap_or(200));
    if boot.arg_u64("vcpus") == Some(2) {
        let r = psci::cpu_on(1, echo_vcpu1, windows[0] | pairs[0] << 32);
        if r != psci::ret::SUCCESS {
            fail!("hostile: peer-echo: CPU_ON(1) = {r}");
        }
    } else {
        VCPU1_DONE.store(true, Ordering::Release);
    }
    let mut bad = 0;
    for (d, &w) in windows[..n].iter().enumerate() {
        bad += echo_pairs(w, pairs[d], notify);
    }
    let d = time::Deadline::after_ms(10_000);
    while !VCPU1_DONE.load(Ordering::Acquire) && !d.passed() {
        core::hint::spin_loop()
    }
    bad += VCPU1_BAD.load(Ordering::Relaxed);
    let total: u64 = pairs[..n].iter().sum();
    let worst_ms = time::ticks_to_ms(WORST.load(Ordering::Relaxed));
    println!(
        "hostile: peer-echo: {total} echo pairs on {n} device(s){}, {bad} wrong, slowest access {worst_ms} ms",
        if VCPU1_BAD.load(Ordering::Relaxed) == 0 && boot.arg_u64("vcpus") == Some(2) {
            " plus vCPU 1's"
        } else {
            ""
        }
    );
    check!(
        bad == 0,
        "peer-echo: every echo read back as written ({bad} wrong)"
    );
    let max = boot.arg_u64("max-access-ms").unwrap_or(500);
    check!(
        worst_ms < max,
        "peer-echo: every access completed within {max} ms (slowest {worst_ms} ms)"
    );
    match end {
        "race" => {
            let (v, st) = end_read(windows[n - 1], RACE_OFFSET);
            println!("hostile: peer-echo: raced read returned {v:#x}, then Status {st:#x}");
            check!(
                RACE_VALUE.contains(&u64::from(v)),
                "peer-echo: the raced read got one racer's value ({v:#x})"
            );
            check!(
                needs_reset(st),
                "peer-echo: the refused second completion failed the device (Status {st:#x}, expected DEVICE_NEEDS_RESET alone)"
            );
        }
        "stale" => {
            for &w in &windows[..n] {
                let (v, st) = end_read(w, STALE_OFFSET);
                println!(
                    "hostile: peer-echo: device {w:#x}: read completed with a stale sequence number returned {v:#x}, then Status {st:#x}"
                );
                check!(
                    v == u32::MAX && needs_reset(st),
                    "peer-echo: device {w:#x}: a stale completion was not taken (read {v:#x}, Status {st:#x})"
                );
            }
        }
        "none" => {}
        e => fail!("hostile: peer-echo: end={e}: use race, stale or none"),
    }
    check_pattern(&pat);
    util::verdict("peer-echo")
}

/// `probe=peer-slow [accesses=<n>] [max-late-us=<l>] [delay=<ms>]`: ticks every
/// millisecond and reads Status up to `n` times (default 30) from a backend that
/// answers each access just before the deadline. Every access that takes 20 ms or
/// more must see at least half the ticks its duration holds (the vCPU takes its own
/// interrupts while it waits); the worst tick lateness must stay below `max-late-us`
/// (default 20000); Status must show DEVICE_NEEDS_RESET within the `n` accesses
/// (Ferry's budget fails a backend that keeps its frontend waiting).
pub fn slow(boot: &Boot) -> ! {
    let pat = pattern(boot);
    let (windows, n) = virtio_windows(boot);
    if n == 0 {
        fail!("hostile: peer-slow: no virtio device");
    }
    let w = windows[0];
    if let Err(e) = Ticker::gic_setup(boot, true) {
        fail!("hostile: peer-slow: GIC set-up: {e}");
    }
    Ticker::start(1000);
    time::delay_ms(boot.arg_u64("delay").unwrap_or(300));
    Ticker::reset();
    let accesses = boot.arg_u64("accesses").unwrap_or(30);
    let (mut failed_at, mut slow, mut starved, mut waited_ms) = (None, 0u64, 0u64, 0u64);
    for i in 0..accesses {
        let k0 = Ticker::ticks();
        let t0 = time::ticks();
        // SAFETY: this partition's own virtio window.
        let st = unsafe { read32(w + STATUS) };
        let ms = time::ticks_to_ms(time::ticks() - t0);
        let ticks = Ticker::ticks() - k0;
        waited_ms += ms;
        if ms >= 20 {
            slow += 1;
            if ticks * 2 < ms {
                starved += 1;
            }
            if slow <= 3 || ticks * 2 < ms {
                println!(
                    "hostile: peer-slow: access {i}: Status read took {ms} ms, {ticks} timer ticks meanwhile"
                );
            }
        }
        if st & NEEDS_RESET != 0 {
            // The read that saw the failure may have been cut short (all-ones);
            // the next one is Ferry's own answer.
            time::delay_ms(5);
            // SAFETY: as above.
            let again = unsafe { read32(w + STATUS) };
            failed_at = Some(i);
            println!(
                "hostile: peer-slow: access {i}: Status {st:#x}, then {again:#x}: DEVICE_NEEDS_RESET after {waited_ms} ms of waiting"
            );
            check!(
                needs_reset(again),
                "peer-slow: the failed device's Status is DEVICE_NEEDS_RESET alone ({again:#x})"
            );
            break;
        }
    }
    Ticker::stop();
    let s = Ticker::stats();
    println!(
        "hostile: peer-slow: {slow} slow accesses, {starved} without ticks; {} ticks, lateness max {} us, mean {} us",
        s.ticks, s.late_max_us, s.late_mean_us
    );
    check!(
        slow > 0,
        "peer-slow: the backend was slow at all (no access took 20 ms)"
    );
    check!(
        starved == 0,
        "peer-slow: ticks kept coming while an access was outstanding ({starved} of {slow} slow accesses without)"
    );
    let max_late = boot.arg_u64("max-late-us").unwrap_or(20_000);
    check!(
        s.late_max_us < max_late,
        "peer-slow: worst tick lateness {} us below {max_late} us",
        s.late_max_us
    );
    check!(
        failed_at.is_some(),
        "peer-slow: the device was failed within {accesses} accesses ({waited_ms} ms waited)"
    );
    check_pattern(&pat);
    util::verdict("peer-slow")
}
