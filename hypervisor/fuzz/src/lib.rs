//! What more than one fuzz target needs, or what keeps a target's file short:
//! [`fixture`], a small system of the state layer (a frontend, a backend with a
//! request page, virtio routes in shared or copy mode) over fake physical memory
//! that checks where Ferry reads and writes.
//!
//! The targets are in `fuzz_targets/`; docs/fuzzing.md says what each drives.

pub mod fixture;
