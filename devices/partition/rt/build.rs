//! Writes the partition linker script, `ferry-partition.x`, with the link base of this
//! build into OUT_DIR and puts OUT_DIR on the linker's search path. A binary that uses
//! the runtime links with it by passing `-Tferry-partition.x` (its own build.rs:
//! `cargo:rustc-link-arg-bins=-Tferry-partition.x`).

use std::env;
use std::path::PathBuf;

fn main() {
    // `smoke`: QEMU loads an arm64 Image with text_offset 0 at RAM base + 2 MiB.
    let base: u64 = if env::var_os("CARGO_FEATURE_SMOKE").is_some() {
        0x4020_0000
    } else {
        0x4000_0000
    };
    let template = "link.x.in";
    println!("cargo:rerun-if-changed={template}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(template).expect("reading link.x.in");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out.join("ferry-partition.x"),
        text.replace("@BASE@", &format!("{base:#x}")),
    )
    .expect("writing ferry-partition.x");
    println!("cargo:rustc-link-search={}", out.display());
}
