//! Memory probes: touching what is not the partition's (another partition's memory by
//! its host address, frontend memory a backend does not share, a request page from a
//! non-backend), and stage-1 translation tables placed inside emulated windows.

use ferry_backend::node;
use ferry_partition_rt::probe;
use ferry_partition_rt::{Boot, fail, gic, mmu, println, time};

use super::s1;
use super::util::{self, node_base, read64, virtio_window};

/// What a successful legitimate write stores (and then undoes).
const MARK: u64 = 0x600d_600d_600d_600d;

/// `probe=touch target=<hex> [access=read|write] [delay=<ms>]`: one access Ferry must
/// stop the partition at (its `fault-code`).
pub fn touch(boot: &Boot) -> ! {
    let Some(target) = boot.arg_hex("target") else {
        fail!("hostile: touch: needs target=<hex>")
    };
    if let Some(ms) = boot.arg_u64("delay") {
        time::delay_ms(ms);
    }
    access(target, boot.arg("access").unwrap_or("read"))
}

/// Reads or writes the word at `target`, which must stop the partition; says so if
/// it did not.
fn access(target: u64, how: &str) -> ! {
    println!("hostile: touching {target:#x} ({how})");
    if !target.is_multiple_of(8) || target >= 1 << 32 {
        fail!("hostile: target {target:#x} must be 8-byte aligned and below 4 GiB");
    }
    let v = match how {
        // SAFETY: deliberately not this partition's: Ferry must stop it here.
        "read" => unsafe { read64(target) },
        "write" => {
            // SAFETY: as above.
            unsafe { util::write64(target, MARK) };
            MARK
        }
        _ => fail!("hostile: access={how}: use read or write"),
    };
    fail!("hostile: {how} of {target:#x} was NOT stopped (value {v:#x})")
}

/// `probe=be-outside [target=past-window|<hex>] [access=read|write] [delay=<ms>]`: a
/// backend first writes and restores the last word of device 0's frontend window
/// (legitimate: the shared region), then touches `target`: by default the first byte
/// past the window (frontend memory the device does not share), or a hex address
/// (e.g. the frontend's host address). Ferry must stop it at that access.
pub fn be_outside(boot: &Boot) -> ! {
    let n = match node::parse(boot.fdt(), mmu::NORMAL_RAM) {
        Ok(n) => n,
        Err(e) => fail!("hostile: be-outside: {e}"),
    };
    let Some(m) = n.iter().next().map(|d| d.memory) else {
        fail!("hostile: be-outside: no device in /ferry-backend")
    };
    // Let the frontend write its pattern first: the legitimate write below lands in
    // its memory for a moment.
    time::delay_ms(boot.arg_u64("delay").unwrap_or(500));
    let last = m.be_addr + m.size - 8;
    // SAFETY: the last word of the frontend memory Ferry shares with this backend;
    // it is put back at once.
    let (old, back) = unsafe {
        let old = read64(last);
        util::write64(last, MARK);
        let back = read64(last);
        util::write64(last, old);
        (old, back)
    };
    if back != MARK {
        fail!(
            "hostile: be-outside: the shared window's last word {last:#x} read back {back:#x}, not {MARK:#x} (it held {old:#x})"
        );
    }
    println!(
        "hostile: be-outside: frontend memory [{:#x}, {:#x}) is shared at {:#x}: its last word is writable",
        m.fe_base,
        m.fe_base + m.size,
        m.be_addr
    );
    let target = match boot.arg("target").unwrap_or("past-window") {
        "past-window" => m.be_addr + m.size,
        t => util_hex(t),
    };
    access(target, boot.arg("access").unwrap_or("read"))
}

fn util_hex(s: &str) -> u64 {
    ferry_partition_rt::args::parse_hex(s)
        .unwrap_or_else(|| fail!("hostile: {s:?} is not a hex address"))
}

/// `probe=s1pt window=virtio|gicd|pl011`: points TTBR1_EL1 at the window and loads
/// through it, so the MMU's stage-1 walk reads its level-1 descriptor from the
/// window. A walk into an emulated window is a fault, never emulated as an MMIO
/// access (docs/partitions.md): Ferry must stop the partition (its `fault-code`).
/// Coming back is a failure, with what happened: an exception (an injected abort, or
/// a translation fault if the window was read as a descriptor) or a value.
pub fn s1pt(boot: &Boot) -> ! {
    let which = boot.arg("window").unwrap_or("virtio");
    let table = match which {
        "virtio" => virtio_window(boot),
        "gicd" => match gic::init(boot) {
            Ok((d, _, _)) => d as u64,
            Err(e) => fail!("hostile: s1pt: {e}"),
        },
        "pl011" => node_base(boot, "arm,pl011")
            .unwrap_or_else(|| fail!("hostile: s1pt: no arm,pl011 node (console = \"pl011\")")),
        w => fail!("hostile: s1pt: window={w}: use virtio, gicd or pl011"),
    };
    // The level-1 index of the load is 0, so the walk reads the descriptor at
    // `table` itself; the load's page offset is the table's, so an IPA made of
    // HPFAR_EL2's page and FAR_EL2's offset (which is the load's, not the walk's)
    // lands exactly on the window too.
    let va = s1::TTBR1_VA + (table & 0xfff);
    println!("hostile: s1pt: TTBR1_EL1 = {table:#x} ({which} window), loading from {va:#x}");
    let t0 = time::ticks();
    let (v, caught, n) = s1::with_ttbr1(table, || {
        probe::catch(|| {
            // SAFETY: the load translates through TTBR1 (the probe); nothing is
            // mapped there: Ferry must stop the partition at the walk.
            unsafe { read64(va) }
        })
    });
    let took_us = util::us(t0, time::ticks());
    match caught {
        Some(c) => fail!(
            "hostile: s1pt: a stage-1 walk through the {which} window was NOT stopped: it raised ESR_EL1 {:#x} (EC {:#x}, DFSC {:#x}; 0x05-0x07 would mean the window was read as a descriptor), FAR {:#x}, {n} exception(s), {took_us} us",
            c.esr,
            c.ec(),
            c.esr & 0x3f,
            c.far
        ),
        None => fail!(
            "hostile: s1pt: a stage-1 walk through the {which} window was NOT stopped: the load returned {v:#x} after {took_us} us"
        ),
    }
}
