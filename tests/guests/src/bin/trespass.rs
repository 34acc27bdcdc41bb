//! `trespass`: touches a guest address outside its memory and devices; Ferry must stop
//! the partition at the access (the run's exit code is then this partition's
//! `fault-code`). If the access returns, it says so and ends with SYSTEM_RESET.
//!
//! Bootargs: `target=<hex>` (4-byte aligned, below 4 GiB: the guest's stage-1 map
//! covers 4 GiB), `access=read|write` (default read; a write stores 0x7e57_7e57),
//! `delay=<ms>` before the access (default 0).
//! Log: `trespass: touching <addr> (<access>)`, and only if Ferry failed:
//! `trespass: access was NOT stopped (...)`.
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, fail, println, psci, time};

rt::entry!(main);

/// What a write access stores.
const TRESPASS_VALUE: u32 = 0x7e57_7e57;

fn main(boot: &'static Boot) -> ! {
    let Some(target) = boot.arg_hex("target") else {
        fail!("trespass: bootargs need target=<hex>")
    };
    let access = boot.arg("access").unwrap_or("read");
    if access != "read" && access != "write" {
        fail!("trespass: access={access:?}: use read or write");
    }
    if target % 4 != 0 || target >= 1 << 32 {
        fail!("trespass: target {target:#x} must be 4-byte aligned and below 4 GiB");
    }
    if let Some(ms) = boot.arg_u64("delay").filter(|&ms| ms > 0) {
        println!("trespass: waiting {ms} ms");
        time::delay_ms(ms);
    }
    println!("trespass: touching {target:#x} ({access})");
    let p = target as usize as *mut u32;
    if access == "read" {
        // SAFETY: deliberately outside this partition: Ferry must stop it here.
        let v = unsafe { core::ptr::read_volatile(p) };
        println!("trespass: access was NOT stopped (read {v:#x} from {target:#x})");
    } else {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(p, TRESPASS_VALUE) };
        println!("trespass: access was NOT stopped (wrote {TRESPASS_VALUE:#x} to {target:#x})");
    }
    psci::system_reset()
}
