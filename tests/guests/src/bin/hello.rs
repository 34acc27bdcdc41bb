//! `hello`: says hello with what its DTB says, optionally waits `wait=<ms>` with a
//! heartbeat every 200 ms, then PSCI SYSTEM_OFF.
//!
//! Bootargs: `name=<text>` (default "unnamed"), `wait=<ms>` (default 0).
//! Log: `hello from <name> on vCPU 0, <N> vCPUs, memory [<a>, <b>)`, then
//! `<name>: <t> ms` heartbeats, `<name>: waited <ms> ms`, `<name>: SYSTEM_OFF`.
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, arch, fail, println, psci, time};

rt::entry!(main);

/// Milliseconds between heartbeat lines.
const HEARTBEAT_MS: u64 = 200;

fn main(boot: &'static Boot) -> ! {
    let name = boot
        .arg("name")
        .filter(|n| !n.is_empty())
        .unwrap_or("unnamed");
    let Some(mem) = boot.memory().first() else {
        fail!("hello: the DTB has no /memory")
    };
    println!(
        "hello from {name} on vCPU {}, {} vCPUs, memory [{:#x}, {:#x})",
        arch::vcpu_index(),
        boot.cpus().len(),
        mem.base,
        mem.end()
    );
    if let Some(ms) = boot.arg_u64("wait") {
        let start = time::ticks();
        let mut next = HEARTBEAT_MS;
        loop {
            let elapsed = time::ticks_to_ms(time::ticks().wrapping_sub(start));
            if elapsed >= ms {
                break;
            }
            if elapsed >= next {
                println!("{name}: {elapsed} ms");
                next = elapsed - elapsed % HEARTBEAT_MS + HEARTBEAT_MS;
            }
            core::hint::spin_loop();
        }
        println!("{name}: waited {ms} ms");
    }
    println!("{name}: SYSTEM_OFF");
    psci::system_off()
}
