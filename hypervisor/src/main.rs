//! The `ferry` EL2 image. Everything lives in the `ferry_hypervisor` library; boot
//! code enters it through `ferry_primary_entry`.
#![cfg_attr(target_os = "none", no_std, no_main)]

use ferry_hypervisor as _;

/// On the host the image has nothing to do: it only exists for EL2.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "ferry runs at EL2 on aarch64: build the image with `make` and boot it with `make run`"
    );
    std::process::exit(2);
}
