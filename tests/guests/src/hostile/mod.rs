//! The hostile suite's probes (tests/hostile/README.md), one module per area; the
//! `hostile` binary picks one with `probe=<name>`.

pub mod console;
pub mod gic;
pub mod gicregs;
pub mod ioreq;
pub mod mem;
pub mod peer;
pub mod psci;
pub mod s1;
pub mod util;
// Shared with `victim`, which uses other parts of it.
#[allow(dead_code)]
pub mod watch;
pub mod window;
