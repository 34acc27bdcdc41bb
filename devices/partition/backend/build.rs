//! Links the backend binary with the partition runtime's linker script (written and
//! put on the search path by ferry-partition-rt's build script).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Tferry-partition.x");
}
