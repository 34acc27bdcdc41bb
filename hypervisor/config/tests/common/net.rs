//! The network fixture of the net tests: three frontends and a backend with an
//! uplink (`lan()`), and helpers to edit and check it.

use std::collections::HashMap;

use super::*;

pub const BE: &str = "partitions/partition@3";
pub const BE_PATH: &str = "/partitions/partition@3";
pub const D0: &str = "virtio/device@0";
pub const D1: &str = "virtio/device@1";
pub const D2: &str = "virtio/device@2";
/// The backend's passthrough device holding QEMU virt's virtio-mmio transports.
pub const TRANSPORTS: &str = "partitions/partition@3/passthrough/virtio-transports@a003000";
pub const TRANSPORTS_PATH: &str = "/partitions/partition@3/passthrough/virtio-transports@a003000";

/// The page of QEMU virt's virtio-mmio transports, [0x0a003000, 0x0a004000), with
/// SPIs 40..47, as a passthrough DMA master accepted unconfined.
pub fn transports() -> N {
    let spis: Vec<u32> = (40..48).flat_map(|n| [0, n, 1]).collect();
    N::new("virtio-transports@a003000")
        .p("compatible", s("virtio,mmio"))
        .p("reg", u64s(&[0x0a00_3000, 0x1000]))
        .p("interrupts", cells(&spis))
        .p("dma", s("unconfined"))
        .p("dma-coherent", vec![])
}

/// A partition `label` with id `id` on CPU `id`: 8 MiB at guest 0x40000000,
/// host 0x48000000 + id * 8 MiB, image `<label>.bin`.
pub fn partition(id: u32, label: &str) -> N {
    N::new(&format!("partition@{id}"))
        .p("reg", cells(&[id]))
        .p("label", s(label))
        .p("cpus", cells(&[id]))
        .p(
            "memory",
            u64s(&[
                0x4000_0000,
                0x4800_0000 + u64::from(id) * 0x80_0000,
                0x80_0000,
            ]),
        )
        .p("image", s(&format!("{label}.bin")))
        .p("load-address", u64s(&[0x4000_0000]))
}

/// A transport value (`net-uplink`, `storage`): 2 address cells, 1 SPI cell.
pub fn transport(address: u64, spi: u32) -> Vec<u8> {
    let mut v = u64s(&[address]);
    v.extend(cells(&[spi]));
    v
}

/// Net device `index` of `frontend` served by "be" in `segment`: window
/// 0x0a000000 (each frontend its own), SPI 16 + index, the frontend's memory at
/// be's 0x80000000 + index * 8 MiB.
pub fn net(index: u32, frontend: &str, segment: &str) -> N {
    N::new(&format!("device@{index}"))
        .p("reg", cells(&[index]))
        .p("type", s("net"))
        .p("frontend", s(frontend))
        .p("backend", s("be"))
        .p("window", u64s(&[0x0a00_0000, 0x200]))
        .p("spi", cells(&[16 + index]))
        .p(
            "shared-memory",
            u64s(&[0x8000_0000 + u64::from(index) * 0x80_0000]),
        )
        .p("segment", s(segment))
}

/// The reference system: frontends a and b on segment "lan", c alone on
/// "alone", all served by "be" (a backend with request page 0x0b000000 and
/// SPI 100), which owns QEMU virt's transports and has an uplink on "lan" at
/// 0x0a003c00 (SPI 46). a's device has mac 02:00:00:00:00:0a; the others the
/// default.
pub fn lan() -> N {
    let be = partition(3, "be")
        .p("ioreq-page", u64s(&[0x0b00_0000]))
        .p("ioreq-spi", cells(&[100]))
        .p("net-uplink", transport(0x0a00_3c00, 46))
        .p("net-uplink-segment", s("lan"))
        .c(N::new("passthrough")
            .p("#address-cells", cells(&[2]))
            .p("#size-cells", cells(&[2]))
            .c(transports()));
    N::new("")
        .p("compatible", s("ferry,config-v1"))
        .p("#address-cells", cells(&[2]))
        .p("#size-cells", cells(&[2]))
        .c(N::new("platform")
            .p("board", s("qemu-virt"))
            .p("memory", u64s(&[0x4000_0000, 0x4000_0000]))
            .p("cpus", cells(&[4]))
            .p("gic-distributor", u64s(&[0x0800_0000, 0x1_0000]))
            .p("gic-redistributors", u64s(&[0x080a_0000, 0xf6_0000]))
            .p("console", u64s(&[0x0900_0000, 0x1000])))
        .c(N::new("hypervisor").p("memory", u64s(&[0x4000_0000, 0x200_0000])))
        .c(N::new("partitions")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(partition(0, "a"))
            .c(partition(1, "b"))
            .c(partition(2, "c"))
            .c(be))
        .c(N::new("virtio")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(net(0, "a", "lan").p("mac", vec![2, 0, 0, 0, 0, 0x0a]))
            .c(net(1, "b", "lan"))
            .c(net(2, "c", "alone")))
        .c(N::new("exit-policy").p("wait-for", s("a")))
}

/// Every image of `lan()`, 0x1000 bytes.
pub fn files() -> Files {
    Files(
        ["a.bin", "b.bin", "c.bin", "be.bin"]
            .into_iter()
            .map(|n| (n.to_string(), 0x1000))
            .collect::<HashMap<_, _>>(),
    )
}

pub fn check(t: &N) -> Vec<String> {
    problems_with(t, &files())
}

pub fn edit(f: impl FnOnce(&mut N)) -> Vec<String> {
    let mut t = lan();
    f(&mut t);
    check(&t)
}
