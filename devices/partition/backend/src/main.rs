//! `ferry-backend`: the reference virtio backend partition (see the library's docs).
//! Takes no bootargs: everything comes from `/ferry-backend` in its DTB.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod partition {
    use ferry_backend::{Standard, run};
    use ferry_partition_rt::{self as rt, Boot};

    rt::entry!(main);

    fn main(boot: &'static Boot) -> ! {
        run(boot, "ferry-backend", &mut Standard)
    }
}

/// On the host the binary has nothing to do (the library's tests run there).
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "ferry-backend is a bare-metal aarch64 partition image: build it with `make partitions`"
    );
    std::process::exit(2);
}
