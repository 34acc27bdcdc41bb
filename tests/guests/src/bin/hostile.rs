//! `hostile`: the hostile-partition probe suite's test guest (tests/hostile/README.md).
//! `probe=<name>` picks what it does; each probe checks that Ferry handles it per
//! policy (an injected abort it catches with `ferry_partition_rt::probe::catch`, a
//! refused call, a stop of this partition at the offending access) and ends with
//! `hostile: <probe>: all <n> checks passed` and SYSTEM_OFF, or `FAIL: hostile: ...`
//! and SYSTEM_RESET; a probe Ferry must stop prints what it touches and, if it comes
//! back, `... NOT stopped` and SYSTEM_RESET.
//!
//! | probe | what | module |
//! |---|---|---|
//! | `touch` | one access Ferry must stop (`target=`, `access=`) | [`hostile::mem`] |
//! | `be-outside` | a backend touches frontend memory it does not share | [`hostile::mem`] |
//! | `s1pt` | stage-1 tables inside an emulated window (`window=`) | [`hostile::mem`] |
//! | `sgi1r-fuzz`, `irouter-fuzz` | SGI and routing fuzz | [`hostile::gic`] |
//! | `gicr-range`, `ispendr`, `gic-wrong-size`, `gic-undecodable` | vGIC registers | [`hostile::gicregs`] |
//! | `cpu-on-outside`, `cpu-on-race`, `affinity-foreign`, `call-fuzz` | PSCI, hypercalls | [`hostile::psci`] |
//! | `notify-storm`, `complete-fuzz`, `be-echo` | a hostile backend | [`hostile::ioreq`] |
//! | `console-fuzz` | a backend misusing the virtio console calls | [`hostile::console`] |
//! | `window`, `queue-notify-storm` | a hostile frontend | [`hostile::window`] |
//! | `peer-echo`, `peer-slow` | the victim frontends of hostile backends | [`hostile::peer`] |
#![no_std]
#![no_main]

use ferry_partition_rt::{self as rt, Boot, fail, println};

#[path = "../hostile/mod.rs"]
mod hostile;

use hostile::{console, gic, gicregs, ioreq, mem, peer, psci, window};

rt::entry!(main);

fn main(boot: &'static Boot) -> ! {
    let probe = boot.arg("probe").unwrap_or("");
    println!("hostile: probe {probe} ({})", boot.bootargs());
    match probe {
        "touch" => mem::touch(boot),
        "be-outside" => mem::be_outside(boot),
        "s1pt" => mem::s1pt(boot),
        "sgi1r-fuzz" => gic::sgi1r_fuzz(boot),
        "irouter-fuzz" => gic::irouter_fuzz(boot),
        "gicr-range" => gicregs::gicr_range(boot),
        "ispendr" => gicregs::ispendr(boot),
        "gic-wrong-size" => gicregs::wrong_size(boot),
        "gic-undecodable" => gicregs::undecodable(boot),
        "cpu-on-outside" => psci::cpu_on_outside(boot),
        "cpu-on-race" => psci::cpu_on_race(boot),
        "affinity-foreign" => psci::affinity_foreign(boot),
        "call-fuzz" => psci::call_fuzz(boot),
        "notify-storm" => ioreq::notify_storm(boot),
        "complete-fuzz" => ioreq::complete_fuzz(boot),
        "be-echo" => ioreq::be_echo(boot),
        "console-fuzz" => console::console_fuzz(boot),
        "window" => window::window(boot),
        "queue-notify-storm" => window::queue_notify_storm(boot),
        "peer-echo" => peer::echo(boot),
        "peer-slow" => peer::slow(boot),
        p => fail!("hostile: probe={p:?}: no such probe (see tests/hostile/README.md)"),
    }
}
