//! `vbe`: the test backend — the reference backend partition's serving loop
//! (`ferry_backend::run`, devices/partition/backend) with test [`Hooks`]:
//!
//! - rng devices draw from a deterministic xorshift64 stream (seed [`RNG_SEED`] ^
//!   device index; output = successive states little-endian), so a frontend can
//!   check every byte (vfe does);
//! - `mode=hang`: the first synchronous request is never completed (loops forever);
//! - `mode=crash`: serves 3 requests, then on the 4th reads `crash_addr` (default
//!   0x09010000, the PL031 no test partition is given): Ferry stops the partition;
//!   with `crash_console`, it crashes instead while serving a console transmit
//!   that holds `ferry-crash-backend` (the Linux restart scenario's trigger);
//!   with `crash_notify=<k>`, it crashes instead while serving the queue request
//!   whose notification is the k-th (before NOTIFY_FRONTEND); with `crash_once`,
//!   only its first run crashes (a run after Ferry restarted it, GENERATION > 0,
//!   serves normally);
//! - `mode=garbage`: completes every request with a wrong sequence number (seq +
//!   0x1000);
//! - `mode=exec`: serves 3 requests, then on the 4th writes a two-instruction
//!   function (`mov x0, #0xf00d; ret`) into its frontend's memory at frontend
//!   address `exec_at` (8-byte aligned; default the middle of device 0's frontend
//!   memory, page-aligned), through the `shared-memory` mapping, makes it visible to
//!   instruction fetch (DC CVAU, IC IVAU) and calls it. Ferry maps frontend memory
//!   execute-never at stage 2 (this runtime's stage 1 maps it executable), so the
//!   fetch is a stage-2 instruction abort and Ferry stops the partition; if the call
//!   returns, the frontend's memory was executed: `FAIL: vbe: exec: ...`;
//! - `stamp=<hex>`: a frontend address; just before each NOTIFY_FRONTEND the backend
//!   writes CNTVCT there (8 bytes, little-endian) through the device's window, so the
//!   frontend can time interrupt delivery alone (vbench's `notify-irq`);
//! - `mode=snoop`: serves 3 requests, then on the 4th reads and writes (`snoop_first=read`,
//!   the default, or `write` says which comes first) the word at `snoop_addr`
//!   (default 0x80400000: with `shared-memory = 0x80000000`, the middle of the
//!   frontend's memory in shared mode). In copy mode nothing of the frontend is
//!   mapped here, so the first access is a stage-2 abort and Ferry stops the
//!   partition; if both return: `FAIL: vbe: snoop: ... NOT stopped`;
//! - `mode=used`: serves normally, but corrupts its own used entries just before
//!   NOTIFY_FRONTEND: `used=<kind>,<kind>,...` (default `id,len`) gives device i
//!   the i-th kind: `id`: the last used entry of queue 0 names id + 2 (the next
//!   request slot's head: no request the backend holds while the frontend has one
//!   posted), `len`: it claims one byte more than the request's writable bytes
//!   (counted with the library's chain walker over the descriptor table), `ok` (or
//!   none): untouched. Each device is corrupted once. The used ring and descriptor
//!   table are the addresses the device's own queue registers were written with (in
//!   copy mode, Ferry's shadow rings in the bounce area), seen in the requests;
//! - `start_delay_ms=<ms>`: waits that long before setting up (a slow-starting
//!   backend: frontend accesses meanwhile wait for its BACKEND_READY);
//! - `mode=slow`: serves every synchronous request, but only `slow_ms` (default 90)
//!   after it arrived: with `slow_ms` just below the device's `deadline-ms`, a
//!   backend that keeps its frontend waiting as long as it may (the hostile suite's
//!   `hostile-slow-backend`: Ferry's wait budget must fail the device, and the
//!   frontend must take its own interrupts meanwhile).
//!
//! Log (prefix `vbe:`): the backend's own lines, plus
//! `vbe: hang: leaving slot <s> seq <q> (offset <o>) unanswered`,
//! `vbe: crash: touching <addr> after 3 requests`,
//! `vbe: exec: calling frontend memory <fe> (here <be>) after 3 requests`,
//! `vbe: garbage: completing slot <s> with seq <q'> instead of <q>`,
//! `vbe: snoop: reading and writing <addr> after 3 requests`,
//! `vbe: slow: answering every access after <ms> ms`,
//! `vbe: used: device <i> queue 0: used entry <e> names id <id'> instead of <id>`,
//! `vbe: used: device <i> queue 0: used entry <e> (id <id>) claims len <n>, the request has <w> writable bytes`.
#![no_std]
#![no_main]

use core::ptr;
use core::sync::atomic::{Ordering, fence};

use ferry_abi::hypercall::GENERATION;
use ferry_abi::ioreq::{self, Ioreq};
use ferry_backend::entropy::{Entropy, XorShift};
use ferry_backend::node::{self, MAX_DEVICES};
use ferry_backend::window::SharedWindow;
use ferry_backend::{Hooks, run};
use ferry_partition_rt::{self as rt, Boot, arch, fail, mmu, println, time};
use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::{Transport, walk_chain};

rt::entry!(main);

/// What a console transmits to make `mode=crash crash_console` crash.
const CRASH_LINE: &str = "ferry-crash-backend";

/// Seed of device `i`'s xorshift64 stream: `RNG_SEED ^ i` (vfe checks it).
const RNG_SEED: u64 = 0x0123_4567_89ab_cdef;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Hang,
    Crash,
    Garbage,
    Exec,
    Snoop,
    Used,
    Slow,
}

/// What `mode=snoop` writes.
const SNOOP_MARK: u32 = 0x5e0b_5e0b;

/// What `mode=used` does to a device's used entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BadUsed {
    Ok,
    /// An id naming no request the backend was given.
    Id,
    /// A len one byte beyond the request's writable bytes.
    Len,
}

/// A device's queue 0 as its register writes set it up (what the library was told:
/// in copy mode, Ferry's shadow rings).
#[derive(Clone, Copy, Default)]
struct SeenQueue {
    sel: u32,
    num: u16,
    desc: u64,
    used: u64,
}

/// What `mode=exec` writes and calls: `mov x0, #EXEC_MAGIC; ret`.
const EXEC_MAGIC: u32 = 0xf00d;
const EXEC_CODE: [u32; 2] = [0xd280_0000 | EXEC_MAGIC << 5, 0xd65f_03c0];

/// Where `mode=exec` puts [`EXEC_CODE`]: a frontend address and the same byte in
/// this partition.
#[derive(Clone, Copy)]
struct ExecTarget {
    fe: u64,
    be: u64,
}

struct TestHooks {
    mode: Mode,
    crash_addr: u64,
    stamp: Option<u64>,
    exec: Option<ExecTarget>,
    snoop_addr: u64,
    snoop_write_first: bool,
    slow_ms: u64,
    used: [BadUsed; MAX_DEVICES],
    queues: [SeenQueue; MAX_DEVICES],
    corrupted: [bool; MAX_DEVICES],
    /// `crash_notify=<k>`: crash at the k-th NOTIFY_FRONTEND instead (0: no).
    crash_notify: u64,
    /// `crash_console`: crash instead when a console transmits [`CRASH_LINE`].
    crash_console: bool,
    notifies: u64,
}

impl TestHooks {
    /// `mode=crash`: touches `crash_addr` (Ferry stops the partition here).
    fn crash(&self, after: &str) -> ! {
        let a = self.crash_addr;
        println!("vbe: crash: touching {a:#x} after {after}");
        // SAFETY: deliberately not this partition's: Ferry stops it here.
        let v = unsafe { ptr::read_volatile(a as *const u32) };
        fail!("vbe: crash: read of {a:#x} returned {v:#x}, not stopped");
    }
}

impl Hooks for TestHooks {
    fn entropy(&mut self, index: usize) -> Option<Entropy> {
        Some(Entropy::XorShift(XorShift::new(RNG_SEED ^ index as u64)))
    }

    fn on_request(&mut self, slot: usize, r: &Ioreq, served: u32) -> u32 {
        if self.mode == Mode::Used {
            self.track(slot, r);
        }
        match self.mode {
            Mode::Hang => {
                println!(
                    "vbe: hang: leaving slot {slot} seq {} (offset {:#x}) unanswered",
                    r.seq, r.offset
                );
                loop {
                    arch::wfe();
                }
            }
            Mode::Crash if served == 3 && self.crash_notify == 0 && !self.crash_console => {
                self.crash("3 requests")
            }
            Mode::Exec if served == 3 => {
                let Some(ExecTarget { fe, be }) = self.exec else {
                    fail!("vbe: exec: no target");
                };
                println!(
                    "vbe: exec: calling frontend memory {fe:#x} (here {be:#x}) after 3 requests"
                );
                // SAFETY: `be` is 8-byte aligned inside the frontend window Ferry maps
                // here (`exec_target`); the frontend does not use it. Ferry must stop
                // this partition at the fetch.
                let v = unsafe { call_code_at(be) };
                fail!(
                    "vbe: exec: frontend memory {fe:#x} (here {be:#x}) was executed (returned {v:#x}), NOT stopped"
                );
            }
            Mode::Snoop if served == 3 => {
                let a = self.snoop_addr;
                println!("vbe: snoop: reading and writing {a:#x} after 3 requests");
                let p = a as usize as *mut u32;
                // SAFETY: deliberately not this partition's memory (where shared mode
                // maps the frontend's): Ferry must stop it at the first access.
                let (read, back) = unsafe {
                    if self.snoop_write_first {
                        ptr::write_volatile(p, SNOOP_MARK);
                    }
                    let read = ptr::read_volatile(p);
                    ptr::write_volatile(p, SNOOP_MARK);
                    (read, ptr::read_volatile(p))
                };
                fail!(
                    "vbe: snoop: {a:#x} read {read:#x}, wrote {SNOOP_MARK:#x}, read back {back:#x}: NOT stopped"
                );
            }
            Mode::Slow => {
                // Just before the deadline, counted from when Ferry published it.
                time::delay_ms(self.slow_ms);
                r.seq
            }
            Mode::Garbage => {
                let bad = r.seq.wrapping_add(0x1000);
                println!(
                    "vbe: garbage: completing slot {slot} with seq {bad} instead of {}",
                    r.seq
                );
                bad
            }
            _ => r.seq,
        }
    }

    fn on_console(&mut self, _index: usize, bytes: &[u8]) {
        let line = CRASH_LINE.as_bytes();
        if self.mode == Mode::Crash
            && self.crash_console
            && bytes.windows(line.len()).any(|w| w == line)
        {
            self.crash("its console transmitted the crash line");
        }
    }

    fn before_notify(&mut self, index: usize, window: &mut SharedWindow) {
        self.notifies += 1;
        if self.mode == Mode::Crash && self.notifies == self.crash_notify {
            self.crash("serving a queue request, before its notification");
        }
        if self.mode == Mode::Used {
            self.corrupt_used(index, window);
        }
        if let Some(at) = self.stamp {
            let now = arch::cntvct();
            if window.write(at, &now.to_le_bytes()).is_err() {
                fail!("vbe: stamp={at:#x} is outside the frontend window");
            }
        }
    }
}

fn main(boot: &'static Boot) -> ! {
    let mode = match boot.arg("mode").unwrap_or("ok") {
        "ok" => Mode::Ok,
        "hang" => Mode::Hang,
        "crash" => Mode::Crash,
        "garbage" => Mode::Garbage,
        "exec" => Mode::Exec,
        "snoop" => Mode::Snoop,
        "used" => Mode::Used,
        "slow" => Mode::Slow,
        m => fail!("vbe: mode={m}: expected ok, hang, crash, garbage, exec, snoop, used or slow"),
    };
    println!("vbe: mode {}", boot.arg("mode").unwrap_or("ok"));
    let mut hooks = TestHooks {
        mode,
        crash_addr: boot.arg_hex("crash_addr").unwrap_or(0x0901_0000),
        stamp: boot.arg_hex("stamp"),
        exec: (mode == Mode::Exec).then(|| exec_target(boot)),
        snoop_addr: boot.arg_hex("snoop_addr").unwrap_or(0x8040_0000),
        snoop_write_first: match boot.arg("snoop_first").unwrap_or("read") {
            "read" => false,
            "write" => true,
            f => fail!("vbe: snoop_first={f}: expected read or write"),
        },
        slow_ms: boot.arg_u64("slow_ms").unwrap_or(90),
        used: bad_used(boot),
        queues: [SeenQueue::default(); MAX_DEVICES],
        corrupted: [false; MAX_DEVICES],
        crash_notify: boot.arg_u64("crash_notify").unwrap_or(0),
        crash_console: boot.arg("crash_console").is_some(),
        notifies: 0,
    };
    // `crash_once`: only the first run crashes (after Ferry restarts the
    // partition, GENERATION is 1 and it serves normally).
    let generation = arch::hvc(u64::from(GENERATION), 0, 0, 0, 0)[0];
    if generation > 0 {
        println!("vbe: generation {generation} (restarted by Ferry)");
        if boot.arg("crash_once").is_some() && hooks.mode == Mode::Crash {
            hooks.mode = Mode::Ok;
        }
    }
    if mode == Mode::Snoop && !hooks.snoop_addr.is_multiple_of(4) {
        fail!(
            "vbe: snoop_addr={:#x}: not 4-byte aligned",
            hooks.snoop_addr
        );
    }
    if mode == Mode::Slow {
        println!(
            "vbe: slow: answering every access after {} ms",
            hooks.slow_ms
        );
    }
    if let Some(ms) = boot.arg_u64("start_delay_ms") {
        println!("vbe: waiting {ms} ms before serving");
        time::delay_ms(ms);
    }
    run(boot, "vbe", &mut hooks)
}

/// `mode=used`'s `used=` list (default `id,len`).
fn bad_used(boot: &Boot) -> [BadUsed; MAX_DEVICES] {
    let mut kinds = [BadUsed::Ok; MAX_DEVICES];
    let list = boot.arg("used").unwrap_or("id,len");
    for (i, k) in list.split(',').enumerate() {
        let Some(slot) = kinds.get_mut(i) else {
            fail!("vbe: used={list}: more than {MAX_DEVICES} devices");
        };
        *slot = match k {
            "ok" => BadUsed::Ok,
            "id" => BadUsed::Id,
            "len" => BadUsed::Len,
            _ => fail!("vbe: used={list}: {k:?} is not id, len or ok"),
        };
    }
    kinds
}

impl TestHooks {
    /// `mode=used`: follows the register writes that set up each device's queue 0.
    fn track(&mut self, slot: usize, r: &Ioreq) {
        let Some(q) = self.queues.get_mut(ioreq::slot_device(slot)) else {
            return;
        };
        if r.dir != ioreq::dir::WRITE || r.size != 4 {
            return;
        }
        let v = r.data & 0xffff_ffff;
        let lo = |old: u64| old & !0xffff_ffff | v;
        let hi = |old: u64| old & 0xffff_ffff | v << 32;
        match u32::try_from(r.offset).unwrap_or(u32::MAX) {
            reg::STATUS if v == 0 => *q = SeenQueue::default(),
            reg::QUEUE_SEL => q.sel = v as u32,
            _ if q.sel != 0 => {}
            reg::QUEUE_NUM => q.num = v as u16,
            reg::QUEUE_DESC_LOW => q.desc = lo(q.desc),
            reg::QUEUE_DESC_HIGH => q.desc = hi(q.desc),
            reg::QUEUE_DEVICE_LOW => q.used = lo(q.used),
            reg::QUEUE_DEVICE_HIGH => q.used = hi(q.used),
            _ => {}
        }
    }

    /// `mode=used`: rewrites device `index`'s last used entry of queue 0 (once),
    /// after the library wrote it and before NOTIFY_FRONTEND.
    fn corrupt_used(&mut self, index: usize, window: &mut SharedWindow) {
        let kind = self.used.get(index).copied().unwrap_or(BadUsed::Ok);
        let q = self.queues[index];
        if kind == BadUsed::Ok || self.corrupted[index] || q.num == 0 || q.used == 0 {
            return;
        }
        let mut idx = [0u8; 2];
        if window.read(q.used + 2, &mut idx).is_err() {
            fail!(
                "vbe: used: device {index}: used ring {:#x} is outside the window",
                q.used
            );
        }
        let idx = u16::from_le_bytes(idx);
        if idx == 0 {
            return;
        }
        let entry = idx.wrapping_sub(1) % q.num;
        let at = q.used + 4 + 8 * u64::from(entry);
        let mut elem = [0u8; 8];
        if window.read(at, &mut elem).is_err() {
            fail!("vbe: used: device {index}: used entry at {at:#x} is outside the window");
        }
        let id = u32::from_le_bytes([elem[0], elem[1], elem[2], elem[3]]);
        match kind {
            BadUsed::Ok => return,
            BadUsed::Id => {
                let bad = id.wrapping_add(2);
                elem[..4].copy_from_slice(&bad.to_le_bytes());
                println!(
                    "vbe: used: device {index} queue 0: used entry {entry} names id {bad} instead of {id}"
                );
            }
            BadUsed::Len => {
                let head = u16::try_from(id).unwrap_or(u16::MAX);
                let writable = match walk_chain(window, q.desc, q.num, head, false) {
                    Ok(c) => c.writable_len(),
                    Err(e) => fail!("vbe: used: device {index}: request {id}: {e}"),
                };
                let bad = writable.saturating_add(1);
                elem[4..].copy_from_slice(&bad.to_le_bytes());
                println!(
                    "vbe: used: device {index} queue 0: used entry {entry} (id {id}) claims len {bad}, the request has {writable} writable bytes"
                );
            }
        }
        if window.write(at, &elem).is_err() {
            fail!("vbe: used: device {index}: used entry at {at:#x} is outside the window");
        }
        // The entry before NOTIFY_FRONTEND, which makes Ferry read it.
        fence(Ordering::SeqCst);
        self.corrupted[index] = true;
    }
}

/// `mode=exec`'s target: frontend address `exec_at` (default the middle of device
/// 0's frontend memory, page-aligned), which must be 8-byte aligned with
/// [`EXEC_CODE`] inside the window.
fn exec_target(boot: &Boot) -> ExecTarget {
    let n = match node::parse(boot.fdt(), mmu::NORMAL_RAM) {
        Ok(n) => n,
        Err(e) => fail!("vbe: exec: {e}"),
    };
    let Some(m) = n.iter().next().map(|d| d.memory) else {
        fail!("vbe: exec: no device in /ferry-backend");
    };
    let fe = boot
        .arg_hex("exec_at")
        .unwrap_or((m.fe_base + m.size / 2) & !0xfff);
    let len = size_of_val(&EXEC_CODE) as u64;
    let inside = fe >= m.fe_base && fe.checked_add(len).is_some_and(|e| e <= m.fe_base + m.size);
    if !fe.is_multiple_of(8) || !inside {
        fail!(
            "vbe: exec_at={fe:#x}: not 8-byte aligned inside the frontend memory [{:#x}, {:#x})",
            m.fe_base,
            m.fe_base + m.size
        );
    }
    ExecTarget {
        fe,
        be: m.be_addr + (fe - m.fe_base),
    }
}

/// Writes [`EXEC_CODE`] at `addr`, makes it visible to instruction fetch and calls
/// it; returns its x0.
///
/// # Safety
/// `addr` is 8-byte aligned, mapped Normal and writable here, and nothing else uses
/// its 8 bytes.
unsafe fn call_code_at(addr: u64) -> u64 {
    let p = addr as usize as *mut u32;
    for (i, &insn) in EXEC_CODE.iter().enumerate() {
        // SAFETY: per the contract.
        unsafe { ptr::write_volatile(p.add(i), insn) };
    }
    // The two words share a cache line (8-byte aligned): clean it to the point of
    // unification, invalidate the instruction cache there.
    // SAFETY: cache maintenance of a mapped address; no memory is changed.
    unsafe {
        core::arch::asm!(
            "dc cvau, {a}",
            "dsb ish",
            "ic ivau, {a}",
            "dsb ish",
            "isb",
            a = in(reg) addr,
            options(nostack, preserves_flags)
        )
    };
    // SAFETY: `addr` now holds a complete AAPCS64 function (`mov x0, #imm; ret`).
    let f = unsafe { core::mem::transmute::<usize, extern "C" fn() -> u64>(addr as usize) };
    f()
}
