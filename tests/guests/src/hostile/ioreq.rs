//! Probes run by a hostile *backend* (a partition with a request page): notify
//! storms, IOREQ_COMPLETE fuzz, and a raw "echo" backend (no device library) that
//! serves [`super::peer`]'s frontend while it races completions from two vCPUs,
//! scribbles over its request page, or checks sequence numbers across the 2^32 wrap.
//!
//! The echo device: a 4-byte write at offset `o` in `0x100..0x1f0` stores the value
//! for the writing frontend vCPU `v`; a 4-byte read there returns it XOR
//! [`echo_mark`]`(v)`; other reads return 0. A read of [`RACE_OFFSET`] or
//! [`STALE_OFFSET`] starts the end-of-run test of the mode (see [`be_echo`]).

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use ferry_abi::hypercall as hc;
use ferry_abi::ioreq::{self, Ioreq, SYNC_SLOTS};
use ferry_backend::node::{self, BackendNode};
use ferry_backend::page::{RequestPage, SyncSlots, barrier, newer};
use ferry_partition_rt::{Boot, arch, fail, mmu, println, psci, time};

use super::util::{self, Rng, hypercall};
use crate::check;

/// What an echo read returns on top of the value written: `0xa5a5_0000 | vcpu`.
pub const fn echo_mark(vcpu: u64) -> u32 {
    0xa5a5_0000 | vcpu as u32
}

/// Reading it starts the double-completion race (`mode=race`).
pub const RACE_OFFSET: u64 = 0x1fc;
/// Reading it starts the stale-completion test (`mode=seqwrap`).
pub const STALE_OFFSET: u64 = 0x1f8;
/// What racer vCPU `k` completes the raced read with.
pub const RACE_VALUE: [u64; 2] = [0x1111_0000, 0x2222_0000];

fn backend_node(boot: &Boot) -> BackendNode {
    match node::parse(boot.fdt(), mmu::NORMAL_RAM) {
        Ok(n) => n,
        Err(e) => fail!("hostile: /ferry-backend: {e}"),
    }
}

/// `probe=notify-storm [device=<n>] [delay=<ms>] [storm-ms=<ms>]`: after `delay`
/// (default 400), calls NOTIFY_FRONTEND(`device`) back to back for `storm-ms`
/// (default 2500). Each must return 0 (the device is healthy) and come back quickly
/// (a storm costs the sender); the frontend, a victim, measures its own progress.
pub fn notify_storm(boot: &Boot) -> ! {
    let n = backend_node(boot);
    let device = boot.arg_u64("device").unwrap_or(0);
    if n.iter().all(|d| d.index as u64 != device) {
        fail!("hostile: notify-storm: device {device} is not this backend's");
    }
    time::delay_ms(boot.arg_u64("delay").unwrap_or(400));
    let storm = boot.arg_u64("storm-ms").unwrap_or(2500);
    let d = time::Deadline::after_ms(storm);
    let (mut calls, mut refused, mut worst) = (0u64, 0u64, 0u64);
    while !d.passed() {
        let t = time::ticks();
        let r = hypercall(hc::NOTIFY_FRONTEND, device, 0, 0);
        worst = worst.max(time::ticks() - t);
        calls += 1;
        if r != 0 {
            refused += 1;
        }
    }
    let worst_us = util::us(0, worst);
    println!(
        "hostile: notify-storm: {calls} NOTIFY_FRONTEND({device}) in {storm} ms ({} a ms), {refused} refused, slowest {worst_us} us",
        calls / storm.max(1)
    );
    check!(
        refused == 0,
        "notify-storm: every notify accepted ({refused} refused)"
    );
    check!(
        worst_us < 100_000,
        "notify-storm: no notify took long (slowest {worst_us} us)"
    );
    util::verdict("notify-storm")
}

/// `probe=complete-fuzz [count=<n>] [seed=<hex>]`: a backend whose frontend never
/// accesses its device calls IOREQ_COMPLETE with random slots (its device's, other
/// devices', out of range), sequence numbers and values, mixed with NOTIFY_FRONTEND
/// of random device numbers and BACKEND_READY. Nothing is pending, so every
/// completion must be INVALID_PARAMETERS (the first one naming its device's slot
/// fails the device, after which NOTIFY_FRONTEND of it is refused too); Ferry logs
/// the refusals within its budget (`max_ferry_lines`).
pub fn complete_fuzz(boot: &Boot) -> ! {
    let n = backend_node(boot);
    let devices = n.iter().count() as u64;
    let count = boot.arg_u64("count").unwrap_or(20_000);
    let mut rng = Rng::new(boot.arg_hex("seed").unwrap_or(0xc0de));
    let mut failed = false;
    let (mut completes, mut bad) = (0u64, 0u64);
    let t0 = time::ticks();
    for i in 0..count {
        let (what, got, want) = match rng.below(8) {
            0 => {
                let d = rng.below(devices + 2);
                let want = if d < devices && !failed {
                    0
                } else {
                    hc::INVALID_PARAMETERS
                };
                (
                    "NOTIFY_FRONTEND",
                    hypercall(hc::NOTIFY_FRONTEND, d, 0, 0),
                    want,
                )
            }
            1 => ("BACKEND_READY", hypercall(hc::BACKEND_READY, 0, 0, 0), 0),
            _ => {
                let slot = match rng.below(4) {
                    0 => rng.below(devices * ioreq::SLOTS_PER_DEVICE as u64),
                    1 => rng.below(SYNC_SLOTS as u64),
                    2 => SYNC_SLOTS as u64 + rng.below(1 << 20),
                    _ => rng.next(),
                };
                let seq = [0, 1, rng.next() & 0xffff_ffff, rng.next()][rng.below(4) as usize];
                completes += 1;
                let got = hypercall(hc::IOREQ_COMPLETE, slot, seq, rng.next());
                if slot < devices * ioreq::SLOTS_PER_DEVICE as u64 {
                    failed = true;
                }
                ("IOREQ_COMPLETE", got, hc::INVALID_PARAMETERS)
            }
        };
        if got != want {
            bad += 1;
            if bad <= 10 {
                check!(false, "complete-fuzz: #{i} {what} = {got}, expected {want}");
            }
        }
    }
    let ms = time::ticks_to_ms(time::ticks() - t0);
    check!(bad == 0, "complete-fuzz: {bad} results off the model");
    println!(
        "hostile: complete-fuzz: {count} calls in {ms} ms ({completes} IOREQ_COMPLETE), all refused as they must be"
    );
    util::verdict("complete-fuzz")
}

/// The echo backend's shared state (both vCPUs).
static REGS: [[AtomicU32; 60]; 8] = [const { [const { AtomicU32::new(0) }; 60] }; 8];
static RACE_SEQ: AtomicU64 = AtomicU64::new(0);
static RACE_READY: AtomicBool = AtomicBool::new(false);
static RACE_ACK: AtomicBool = AtomicBool::new(false);
static RACE_FIRE: AtomicBool = AtomicBool::new(false);
static RACE_RES: [AtomicI64; 2] = [const { AtomicI64::new(1) }; 2];
static FOREIGN: AtomicU64 = AtomicU64::new(0);
static SERVED: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// The echo backend's mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Race,
    Scribble,
    SeqWrap,
}

/// What an echo request gets (reads) or does (writes).
fn echo(r: &Ioreq) -> u64 {
    let v = u64::from(r.vcpu).min(7) as usize;
    let i = (r.offset.wrapping_sub(0x100) / 4) as usize;
    let inside = (0x100..0x1f0).contains(&r.offset) && r.size == 4;
    if r.dir == ioreq::dir::WRITE {
        if inside {
            REGS[v][i].store(r.data as u32, Ordering::Relaxed);
        }
        return 0;
    }
    if inside {
        u64::from(REGS[v][i].load(Ordering::Relaxed) ^ echo_mark(v as u64))
    } else {
        0
    }
}

/// `probe=be-echo mode=echo|race|scribble|seqwrap [first-seq=<hex>]
/// [reader=library|consistent]`: the echo backend (polling its request page, no
/// doorbell; reading requests with the reference backend's reader or a torn-proof
/// one, [`CONSISTENT`]), for the frontend `hostile probe=peer-echo`:
/// - `echo` (the default): serves, nothing else;
/// - `race` (2 vCPUs; frontend vCPU k's slot served by vCPU k): every fourth request
///   each vCPU also completes a random slot of no device it serves (refused:
///   INVALID_PARAMETERS, logged within budget) while the other completes for real;
///   at [`RACE_OFFSET`] both vCPUs complete the one pending read at once with the
///   same sequence number and values [`RACE_VALUE`]: exactly one must succeed;
/// - `scribble`: between requests it overwrites its request page's header, posted
///   ring and idle sync slots with garbage (and the pending slot's record, after
///   reading it): Ferry keeps its own books, so every access must still complete
///   correctly (the frontend checks);
/// - `seqwrap` (`ioreq-first-seq` in the config, `first-seq` here): every request's
///   sequence number must follow the last (+1 per slot, never 0, across the 2^32
///   wrap); at [`STALE_OFFSET`] it completes the read with the previous sequence
///   number, which must be refused.
pub fn be_echo(boot: &Boot) -> ! {
    let mode = match boot.arg("mode").unwrap_or("echo") {
        "echo" => Mode::Echo,
        "race" => Mode::Race,
        "scribble" => Mode::Scribble,
        "seqwrap" => Mode::SeqWrap,
        m => fail!("hostile: be-echo: mode={m}: use echo, race, scribble or seqwrap"),
    };
    let n = backend_node(boot);
    // SAFETY: the request page Ferry maps here (Normal, per the runtime's map).
    let page = unsafe { RequestPage::new(n.request_page as usize) };
    if page.magic() != ioreq::PAGE_MAGIC {
        fail!("hostile: be-echo: request page magic {:#x}", page.magic());
    }
    let first_seq = boot.arg_hex("first-seq").map(|s| s as u32);
    CONSISTENT.store(
        match boot.arg("reader").unwrap_or("library") {
            "library" => false,
            "consistent" => true,
            r => fail!("hostile: be-echo: reader={r}: use library or consistent"),
        },
        Ordering::Relaxed,
    );
    println!(
        "hostile: be-echo: {mode:?}, request page {:#x}, {} device(s)",
        n.request_page,
        n.iter().count()
    );
    if mode == Mode::Race {
        let r = psci::cpu_on(1, serve_secondary, n.request_page);
        if r != psci::ret::SUCCESS {
            fail!("hostile: be-echo: CPU_ON(1) = {r}");
        }
    }
    if hypercall(hc::BACKEND_READY, 0, 0, 0) != 0 {
        fail!("hostile: be-echo: BACKEND_READY refused");
    }
    serve(&page, n.request_page, 0, mode, first_seq, n.iter().count())
}

fn serve_secondary(base: u64) -> ! {
    // SAFETY: as in `be_echo`.
    let page = unsafe { RequestPage::new(base as usize) };
    serve(&page, base, 1, Mode::Race, None, 1)
}

/// Serves the echo device from vCPU `me` (the page at `base`) until the end-of-run
/// test.
fn serve(
    page: &RequestPage,
    base: u64,
    me: usize,
    mode: Mode,
    first: Option<u32>,
    devices: usize,
) -> ! {
    let mut slots = SyncSlots::new();
    let mut seen: [Option<u32>; SYNC_SLOTS] = [None; SYNC_SLOTS];
    let mut rng = Rng::new(0x5c21 + me as u64);
    let mut last: [Option<u32>; SYNC_SLOTS] = [None; SYNC_SLOTS];
    let mine = |s: usize| match mode {
        Mode::Race => s % ioreq::SLOTS_PER_DEVICE == me && s < ioreq::SLOTS_PER_DEVICE,
        _ => s < devices * ioreq::SLOTS_PER_DEVICE,
    };
    loop {
        if mode == Mode::Race && me == 1 && RACE_READY.load(Ordering::Acquire) {
            race(me);
        }
        for slot in (0..SYNC_SLOTS).filter(|&s| mine(s)) {
            let taken = if CONSISTENT.load(Ordering::Relaxed) {
                take_consistent(base, slot, &mut seen[slot])
            } else {
                slots.take(page, slot)
            };
            let Some(r) = taken else {
                continue;
            };
            if mode == Mode::SeqWrap {
                check_seq(slot, &r, &last[slot], first);
                let prev = last[slot].replace(r.seq);
                if r.offset == STALE_OFFSET && r.dir == ioreq::dir::READ {
                    stale(slot, &r, prev.unwrap_or(r.seq.wrapping_sub(1)), devices);
                    continue;
                }
            }
            if mode == Mode::Race && r.offset == RACE_OFFSET && r.dir == ioreq::dir::READ {
                RACE_SEQ.store(u64::from(r.seq) | (slot as u64) << 32, Ordering::Relaxed);
                RACE_READY.store(true, Ordering::Release);
                race(me);
            }
            let value = echo(&r);
            if mode == Mode::Scribble {
                scribble(base, slot, &mut rng);
            }
            let got = hypercall(hc::IOREQ_COMPLETE, slot as u64, u64::from(r.seq), value);
            if got != 0 {
                fail!(
                    "hostile: be-echo: IOREQ_COMPLETE(slot {slot}, seq {}) of a pending request = {got}",
                    r.seq
                );
            }
            let served = SERVED[me].fetch_add(1, Ordering::Relaxed) + 1;
            if mode == Mode::Race && served.is_multiple_of(4) {
                let foreign = ioreq::SLOTS_PER_DEVICE as u64 + rng.below(56);
                let got = hypercall(hc::IOREQ_COMPLETE, foreign, rng.next() & 0xffff_ffff, 0);
                FOREIGN.fetch_add(1, Ordering::Relaxed);
                if got != hc::INVALID_PARAMETERS {
                    fail!("hostile: be-echo: IOREQ_COMPLETE of foreign slot {foreign} = {got}");
                }
            }
        }
        barrier();
    }
}

/// `mode=seqwrap`: each request's sequence number follows the slot's last one.
fn check_seq(slot: usize, r: &Ioreq, last: &Option<u32>, first: Option<u32>) {
    let want = match *last {
        None => first.unwrap_or(r.seq),
        Some(0xffff_ffff) => 1,
        Some(l) => l + 1,
    };
    if r.seq < last.unwrap_or(0) {
        WRAPS.fetch_add(1, Ordering::Relaxed);
        println!(
            "hostile: be-echo: slot {slot}: sequence wrapped from {:#x} to {:#x}",
            last.unwrap_or(0),
            r.seq
        );
    }
    if r.seq == 0 || r.seq != want {
        fail!(
            "hostile: be-echo: slot {slot}: sequence number {:#x} after {last:x?}, expected {want:#x} (never 0)",
            r.seq
        );
    }
}

/// Sequence-number wraps seen (`mode=seqwrap`).
static WRAPS: AtomicU32 = AtomicU32::new(0);
/// Stale-completion tests done (`mode=seqwrap`).
static STALE_DONE: AtomicU64 = AtomicU64::new(0);

/// `mode=seqwrap` at [`STALE_OFFSET`]: completes with the previous sequence number,
/// which Ferry must refuse; once every one of the `devices` had its test, ends.
fn stale(slot: usize, r: &Ioreq, prev: u32, devices: usize) {
    let got = hypercall(hc::IOREQ_COMPLETE, slot as u64, u64::from(prev), 0x57a1e);
    println!(
        "hostile: be-echo: slot {slot}: request {:#x} completed with the previous sequence number {prev:#x}: {got}",
        r.seq
    );
    check!(
        got == hc::INVALID_PARAMETERS,
        "be-echo: a stale completion (seq {prev:#x} for request {:#x}) refused",
        r.seq
    );
    if STALE_DONE.fetch_add(1, Ordering::Relaxed) + 1 == devices as u64 {
        let w = WRAPS.load(Ordering::Relaxed);
        check!(
            w >= 1,
            "be-echo: the sequence numbers wrapped ({w} wraps seen)"
        );
        util::verdict("be-echo")
    }
}

/// `mode=race`: both vCPUs complete the raced read at once; vCPU 0 judges.
fn race(me: usize) -> ! {
    if me == 1 {
        RACE_ACK.store(true, Ordering::Release);
        while !RACE_FIRE.load(Ordering::Acquire) {
            core::hint::spin_loop()
        }
    } else {
        let d = time::Deadline::after_ms(5000);
        while !RACE_ACK.load(Ordering::Acquire) && !d.passed() {
            core::hint::spin_loop()
        }
        RACE_FIRE.store(true, Ordering::Release);
    }
    let s = RACE_SEQ.load(Ordering::Relaxed);
    let got = hypercall(hc::IOREQ_COMPLETE, s >> 32, s & 0xffff_ffff, RACE_VALUE[me]);
    RACE_RES[me].store(got, Ordering::Release);
    if me == 1 {
        loop {
            arch::wfe();
        }
    }
    let d = time::Deadline::after_ms(5000);
    while RACE_RES[1].load(Ordering::Acquire) == 1 && !d.passed() {}
    let res = [0, 1].map(|k| RACE_RES[k].load(Ordering::Acquire));
    println!(
        "hostile: be-echo: race: both vCPUs completed slot {} seq {:#x}: vCPU 0 got {}, vCPU 1 got {}; {} foreign completions refused, {}+{} requests served",
        s >> 32,
        s & 0xffff_ffff,
        res[0],
        res[1],
        FOREIGN.load(Ordering::Relaxed),
        SERVED[0].load(Ordering::Relaxed),
        SERVED[1].load(Ordering::Relaxed)
    );
    let one = |a: i64, b: i64| a == 0 && b == hc::INVALID_PARAMETERS;
    check!(
        one(res[0], res[1]) || one(res[1], res[0]),
        "be-echo: race: exactly one of two simultaneous completions accepted ({res:?})"
    );
    util::verdict("be-echo")
}

/// `mode=scribble`: garbage over the request page: the header (magic, version,
/// counts, posted head and tail, overflow bits), the posted ring, every record of a
/// slot it does not serve, and the record of `slot` (just taken, not yet completed)
/// except its sequence number and state. Only what the backend itself reads to find
/// new requests is left alone.
fn scribble(base: u64, slot: usize, rng: &mut Rng) {
    for _ in 0..8 {
        let off = match rng.below(4) {
            0 => rng.below(64 / 4) * 4,
            1 => ioreq::POSTED_OFFSET as u64 + rng.below((ioreq::POSTED_SLOTS * 32 / 4) as u64) * 4,
            2 => {
                ioreq::sync_slot_offset(slot) as u64 + [0, 4, 8, 12, 24, 28][rng.below(6) as usize]
            }
            _ => ioreq::sync_slot_offset(8 + rng.below(56) as usize) as u64 + rng.below(8) * 4,
        };
        // SAFETY: a word of this backend's request page.
        unsafe { util::write32(base + off, rng.next() as u32) };
    }
}

/// Whether the echo backend reads requests with [`take_consistent`] instead of the
/// reference backend's `SyncSlots::take` (bootarg `reader=consistent`; default
/// `reader=library`). The library's reader checks the state byte, then reads the
/// record: a request Ferry republishes in between (the backend completed the last
/// one, Ferry has not marked it DONE yet, the frontend's next access arrives) is
/// read with the new sequence number and state but the old offset and data.
static CONSISTENT: AtomicBool = AtomicBool::new(false);

/// The new request in `slot` of the page at `base`, read so that it cannot be torn:
/// the sequence-and-state word before and after the rest of the record must agree
/// (Ferry writes the body, then the state; a request republished between the reads
/// changes the sequence number), else the read is retried.
fn take_consistent(base: u64, slot: usize, last: &mut Option<u32>) -> Option<Ioreq> {
    let at = base + ioreq::sync_slot_offset(slot) as u64;
    let word = |i: u64| {
        // SAFETY: 8-byte aligned words of a record inside the request page.
        unsafe { core::ptr::read_volatile((at + 8 * i) as *const u64) }
    };
    loop {
        let w2 = word(2);
        barrier();
        let (w0, w1, w3) = (word(0), word(1), word(3));
        barrier();
        if word(2) != w2 {
            continue;
        }
        let mut b = [0u8; 32];
        for (i, w) in [w0, w1, w2, w3].into_iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let r = Ioreq::decode(&b);
        if r.state != ioreq::state::READY || !newer(*last, r.seq) {
            return None;
        }
        *last = Some(r.seq);
        return Some(r);
    }
}
