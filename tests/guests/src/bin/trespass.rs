//! `trespass`: touches a guest address outside its memory and devices; Ferry must stop
//! the partition at the access (the run's exit code is then this partition's
//! `fault-code`). If the access returns, it says so and ends with SYSTEM_RESET.
//!
//! Bootargs: `target=<hex>` (4-byte aligned, below 4 GiB: the guest's stage-1 map
//! covers 4 GiB), `access=read|write` (default read; a write stores 0x7e57_7e57),
//! `delay=<ms>` before the access (default 0).
//! Log: `trespass: touching <addr> (<access>)`, and only if Ferry failed:
//! `trespass: access was NOT stopped (...)`.
//!
//! `expect=abort` (a partition with `on-fault = "abort"`): the access must come
//! back as a synchronous external abort at this partition's own vector (caught with
//! `probe::catch`: EC 0x25, a data abort from EL1; DFSC 0x10; FAR = the target; WnR
//! = the access), after which it carries on: it reads its own memory, makes the
//! access once more (a second abort), and powers off. Log: `trespass: synchronous
//! external abort at <pc>: ESR_EL1 <esr>, FAR <far>; carrying on`, `trespass: 2
//! aborts, then SYSTEM_OFF`.
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, fail, println, probe, psci, time};

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
    if boot.arg("expect") == Some("abort") {
        expect_abort(target, access == "write");
    }
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

/// Touches `target` (a write if `write`), expecting an injected abort each time.
fn touch(target: u64, write: bool) -> probe::Caught {
    let p = target as usize as *mut u32;
    let ((), caught, n) = probe::catch(|| {
        if write {
            // SAFETY: outside this partition: Ferry injects an abort instead.
            unsafe { core::ptr::write_volatile(p, TRESPASS_VALUE) };
        } else {
            // SAFETY: as above.
            let _ = unsafe { core::ptr::read_volatile(p) };
        }
    });
    match caught {
        Some(c) if n == 1 => c,
        _ => fail!("trespass: expected one abort from touching {target:#x}, caught {n}"),
    }
}

/// `expect=abort`: the access aborts at this partition's vector; it carries on.
fn expect_abort(target: u64, write: bool) -> ! {
    let c = touch(target, write);
    let (ec, dfsc, wnr) = (c.ec(), c.esr & 0x3f, c.esr >> 6 & 1 == 1);
    if ec != probe::EC_DATA_ABORT_SAME || dfsc != 0x10 || c.far != target || wnr != write {
        fail!(
            "trespass: expected a synchronous external abort (EC 0x25, DFSC 0x10, FAR {target:#x}, WnR {write}), got ESR_EL1 {:#x}, FAR {:#x}",
            c.esr,
            c.far
        );
    }
    println!(
        "trespass: synchronous external abort at {:#x}: ESR_EL1 {:#x}, FAR {:#x}; carrying on",
        c.elr, c.esr, c.far
    );
    // Its own memory still works, and the next access aborts the same way.
    let here = rt::image_end() as u64;
    // SAFETY: this partition's RAM just above its image.
    let _ = unsafe { core::ptr::read_volatile(here as *const u32) };
    touch(target, write);
    println!("trespass: 2 aborts, then SYSTEM_OFF");
    psci::system_off()
}
