//! Links the EL2 image with boot/link.ld and the chosen board's board.ld.

use std::env;
use std::path::PathBuf;

const BOARDS: &[&str] = &["qemu-virt", "imx8mp-evk"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest
        .parent()
        .expect("hypervisor/ sits in the workspace root");
    let chosen: Vec<&str> = BOARDS
        .iter()
        .copied()
        .filter(|b| {
            env::var_os(format!(
                "CARGO_FEATURE_{}",
                b.replace('-', "_").to_uppercase()
            ))
            .is_some()
        })
        .collect();
    let board = match chosen.as_slice() {
        [one] => *one,
        _ => panic!(
            "build ferry-hypervisor with exactly one board feature of {BOARDS:?}, got {chosen:?}"
        ),
    };
    let link = root.join("boot/link.ld");
    let board_dir = root.join("platform/boards").join(board);
    println!("cargo:rerun-if-changed={}", link.display());
    println!(
        "cargo:rerun-if-changed={}",
        board_dir.join("board.ld").display()
    );
    println!("cargo:rustc-link-arg-bins=-T{}", link.display());
    println!("cargo:rustc-link-arg-bins=-L{}", board_dir.display());
}
