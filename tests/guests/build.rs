//! Writes the runtime's linker script with the link base for this build and passes it
//! to the linker of every guest binary.

use std::env;
use std::path::PathBuf;

fn main() {
    // `smoke`: QEMU loads an arm64 Image with text_offset 0 at RAM base + 2 MiB.
    let base: u64 = if env::var_os("CARGO_FEATURE_SMOKE").is_some() {
        0x4020_0000
    } else {
        0x4000_0000
    };
    let template = "rt/link.x.in";
    println!("cargo:rerun-if-changed={template}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(template).expect("reading rt/link.x.in");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("link.x");
    std::fs::write(&out, text.replace("@BASE@", &format!("{base:#x}"))).expect("writing link.x");
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
}
