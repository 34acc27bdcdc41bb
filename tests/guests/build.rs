//! Links every guest binary with the partition runtime's linker script (written by
//! ferry-partition-rt's build script, which also puts it on the search path).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Tferry-partition.x");
}
