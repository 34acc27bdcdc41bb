//! `victim`: fills its RAM above its image with a pattern, waits, and checks nobody
//! changed it (e.g. a `trespass` partition writing to this partition's host address).
//!
//! The pattern covers the first `/memory` region from the end of the image (`.bss` and
//! stacks included) up to the DTB if the DTB lies in it, else to the region's end, at
//! most 16 MiB. Bootargs: `wait=<ms>` between writing and checking (default 1000).
//! Log: `victim: pattern written to [<a>, <b>)`, then `victim: memory intact (<n>
//! bytes)` and SYSTEM_OFF, or `victim: memory CORRUPTED at <addr> ...` and
//! SYSTEM_RESET.
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, fail, println, psci, time};

rt::entry!(main);

const MAX_FILL: u64 = 16 << 20;
const DEFAULT_WAIT_MS: u64 = 1000;

fn pattern(addr: u64) -> u64 {
    addr.rotate_left(17) ^ 0x5a5a_a5a5_0f0f_f0f0
}

fn main(boot: &'static Boot) -> ! {
    let Some(mem) = boot.memory().first().copied() else {
        fail!("victim: the DTB has no /memory")
    };
    let start = (rt::image_end() as u64 + 0xfff) & !0xfff;
    let mut end = mem.end().min(start.saturating_add(MAX_FILL));
    let dtb = boot.dtb_region();
    if (start..end).contains(&dtb.base) {
        end = dtb.base;
    }
    end &= !7;
    if start < mem.base || start >= end {
        fail!(
            "victim: nothing to fill: image ends at {start:#x}, memory [{:#x}, {:#x}), DTB at {:#x}",
            mem.base,
            mem.end(),
            dtb.base
        );
    }

    for a in (start..end).step_by(8) {
        // SAFETY: [start, end) is this partition's RAM above its image, below its DTB.
        unsafe { core::ptr::write_volatile(a as usize as *mut u64, pattern(a)) };
    }
    println!("victim: pattern written to [{start:#x}, {end:#x})");

    let wait = boot.arg_u64("wait").unwrap_or(DEFAULT_WAIT_MS);
    time::delay_ms(wait);

    let mut bad = 0u64;
    let mut first = None;
    for a in (start..end).step_by(8) {
        // SAFETY: as above.
        let got = unsafe { core::ptr::read_volatile(a as usize as *const u64) };
        if got != pattern(a) {
            bad += 1;
            first.get_or_insert((a, got));
        }
    }
    match first {
        None => {
            println!("victim: memory intact ({} bytes)", end - start);
            psci::system_off()
        }
        Some((a, got)) => {
            println!(
                "victim: memory CORRUPTED at {a:#x}: read {got:#x}, expected {:#x} \
                 ({bad} words differ)",
                pattern(a)
            );
            psci::system_reset()
        }
    }
}
