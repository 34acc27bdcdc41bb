//! The `ferry` host tool as a library: what the `ferry` binary's commands do,
//! callable from tests.
//!
//! - [`load`]: reading a config (`.dts` through `dtc`, or a `.dtb`), finding the
//!   files it names, and checking it with `ferry-config` ([`load::check`]);
//! - [`dtb`]: generating a partition's guest device tree;
//! - [`pack`]: the packed image (hypervisor Image + pack), see docs/pack.md.

pub mod assemble;
pub mod dtb;
pub mod load;
pub mod pack;
