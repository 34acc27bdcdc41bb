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
//! - `stamp=<hex>`: a frontend address; just before each NOTIFY_FRONTEND the backend
//!   writes CNTVCT there (8 bytes, little-endian) through the device's window, so the
//!   frontend can time interrupt delivery alone (vbench's `notify-irq`);
//! - `start_delay_ms=<ms>`: waits that long before setting up (a slow-starting
//!   backend: frontend accesses meanwhile wait for its BACKEND_READY).
//!
//! Log (prefix `vbe:`): the backend's own lines, plus
//! `vbe: hang: leaving slot <s> seq <q> (offset <o>) unanswered`,
//! `vbe: crash: touching <addr> after 3 requests`,
//! `vbe: garbage: completing slot <s> with seq <q'> instead of <q>`.
#![no_std]
#![no_main]

use core::ptr;

use ferry_abi::ioreq::Ioreq;
use ferry_backend::entropy::{Entropy, XorShift};
use ferry_backend::window::SharedWindow;
use ferry_backend::{Hooks, run};
use ferry_partition_rt::{self as rt, Boot, arch, fail, println, time};
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
}

struct TestHooks {
    mode: Mode,
    crash_addr: u64,
    stamp: Option<u64>,
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
        m => fail!("vbe: mode={m}: expected ok, hang, crash or garbage"),
    };
    println!("vbe: mode {}", boot.arg("mode").unwrap_or("ok"));
    let mut hooks = TestHooks {
        mode,
        crash_addr: boot.arg_hex("crash_addr").unwrap_or(0x0901_0000),
        stamp: boot.arg_hex("stamp"),
    };
    if let Some(ms) = boot.arg_u64("start_delay_ms") {
        println!("vbe: waiting {ms} ms before serving");
        time::delay_ms(ms);
    }
    run(boot, "vbe", &mut hooks)
}
