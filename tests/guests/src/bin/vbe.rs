//! `vbe`: the test backend — the reference backend partition's serving loop
//! (`ferry_backend::run`, devices/partition/backend) with test [`Hooks`]:
//!
//! - rng devices draw from a deterministic xorshift64 stream (seed [`RNG_SEED`] ^
//!   device index; output = successive states little-endian), so a frontend can
//!   check every byte (vfe does);
//! - `mode=hang`: the first synchronous request is never completed (loops forever);
//! - `mode=crash`: serves 3 requests, then on the 4th reads `crash_addr` (default
//!   0x09010000, the PL031 no test partition is given): Ferry stops the partition;
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
//! - `start_delay_ms=<ms>`: waits that long before setting up (a slow-starting
//!   backend: frontend accesses meanwhile wait for its BACKEND_READY).
//!
//! Log (prefix `vbe:`): the backend's own lines, plus
//! `vbe: hang: leaving slot <s> seq <q> (offset <o>) unanswered`,
//! `vbe: crash: touching <addr> after 3 requests`,
//! `vbe: exec: calling frontend memory <fe> (here <be>) after 3 requests`,
//! `vbe: garbage: completing slot <s> with seq <q'> instead of <q>`.
#![no_std]
#![no_main]

use core::ptr;

use ferry_abi::ioreq::Ioreq;
use ferry_backend::entropy::{Entropy, XorShift};
use ferry_backend::node;
use ferry_backend::window::SharedWindow;
use ferry_backend::{Hooks, run};
use ferry_partition_rt::{self as rt, Boot, arch, fail, mmu, println, time};
use ferry_virtio_backend::Transport;

rt::entry!(main);

/// Seed of device `i`'s xorshift64 stream: `RNG_SEED ^ i` (vfe checks it).
const RNG_SEED: u64 = 0x0123_4567_89ab_cdef;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Hang,
    Crash,
    Garbage,
    Exec,
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
}

impl Hooks for TestHooks {
    fn entropy(&mut self, index: usize) -> Option<Entropy> {
        Some(Entropy::XorShift(XorShift::new(RNG_SEED ^ index as u64)))
    }

    fn on_request(&mut self, slot: usize, r: &Ioreq, served: u32) -> u32 {
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
            Mode::Crash if served == 3 => {
                let a = self.crash_addr;
                println!("vbe: crash: touching {a:#x} after 3 requests");
                // SAFETY: deliberately not this partition's: Ferry stops it here.
                let v = unsafe { ptr::read_volatile(a as *const u32) };
                fail!("vbe: crash: read of {a:#x} returned {v:#x}, not stopped");
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

    fn before_notify(&mut self, _index: usize, window: &mut SharedWindow) {
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
        m => fail!("vbe: mode={m}: expected ok, hang, crash, garbage or exec"),
    };
    println!("vbe: mode {}", boot.arg("mode").unwrap_or("ok"));
    let mut hooks = TestHooks {
        mode,
        crash_addr: boot.arg_hex("crash_addr").unwrap_or(0x0901_0000),
        stamp: boot.arg_hex("stamp"),
        exec: (mode == Mode::Exec).then(|| exec_target(boot)),
    };
    if let Some(ms) = boot.arg_u64("start_delay_ms") {
        println!("vbe: waiting {ms} ms before serving");
        time::delay_ms(ms);
    }
    run(boot, "vbe", &mut hooks)
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
