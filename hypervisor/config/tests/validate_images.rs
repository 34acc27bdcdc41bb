//! `validate`: passthrough devices, images, the guest DTB window and the initrd;
//! each bad variant gives exactly the expected messages.

mod common;

use common::*;

const NONE: [&str; 0] = [];

fn second_device(t: &mut N, name: &str, reg: &[u64], interrupts: &[u32]) {
    t.at(P1).children.push(
        N::new("passthrough")
            .p("#address-cells", cells(&[2]))
            .p("#size-cells", cells(&[2]))
            .c(N::new(name)
                .p("reg", u64s(reg))
                .p("interrupts", cells(interrupts))),
    );
}

#[test]
fn mmio_given_to_two_partitions() {
    let p = after(|t| second_device(t, "uart@9040000", &[0x0904_0000, 0x2000], &[0, 9, 4]));
    assert_eq!(
        p,
        [
            "/partitions/partition@1/passthrough/uart@9040000: reg: [0x9040000, 0x9042000) is also given to /partitions/partition@0/passthrough/serial@9040000 reg [0x9040000, 0x9041000)"
        ]
    );
}

#[test]
fn mmio_overlapping_ram_console_or_gic() {
    let p = after(|t| {
        let reg = [
            0x4100_0000,
            0x1000,
            0x0900_0000,
            0x1000,
            0x080a_0000,
            0x2_0000,
        ];
        second_device(t, "dev@41000000", &reg, &[0, 9, 4]);
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1/passthrough/dev@41000000: reg: [0x41000000, 0x41001000) overlaps /platform memory [0x40000000, 0x80000000)",
            "/partitions/partition@1/passthrough/dev@41000000: reg: [0x9000000, 0x9001000) overlaps /platform console [0x9000000, 0x9001000)",
            "/partitions/partition@1/passthrough/dev@41000000: reg: [0x80a0000, 0x80c0000) overlaps /platform gic-redistributors [0x80a0000, 0x9000000)",
        ]
    );
}

#[test]
fn spi_given_to_two_partitions() {
    let p = after(|t| {
        second_device(
            t,
            "uart@9050000",
            &[0x0905_0000, 0x1000],
            &[0, 9, 4, 0, 8, 4],
        )
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1/passthrough/uart@9050000: interrupts: SPI 8 is also given to /partitions/partition@0/passthrough/serial@9040000"
        ]
    );
    // Two devices of one partition may share an SPI.
    let mut t = good();
    t.at(&format!("{P0}/passthrough")).children.push(
        N::new("uart@9050000")
            .p("reg", u64s(&[0x0905_0000, 0x1000]))
            .p("interrupts", cells(&[0, 8, 4])),
    );
    assert_eq!(problems(&t), NONE);
}

#[test]
fn interrupts_that_are_not_spis() {
    let p = after(|t| {
        t.at(SERIAL)
            .set("interrupts", cells(&[1, 13, 0xf08, 0, 988, 4]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0/passthrough/serial@9040000: interrupts: <1 13 0xf08> is not an SPI (only SPIs, type 0, can be passed through)",
            "/partitions/partition@0/passthrough/serial@9040000: interrupts: SPI 988 is out of range (0 to 987)",
        ]
    );
}

#[test]
fn device_name_clashing_with_generated_nodes() {
    let p = after(|t| {
        t.at(SERIAL).name = "timer@9040000".into();
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0/passthrough/timer@9040000: node name \"timer@9040000\" clashes with a node Ferry generates in the guest device tree"
        ]
    );
}

#[test]
fn missing_image() {
    let p = problems_with(&good(), &Files::good().without("beta.bin"));
    assert_eq!(
        p,
        ["/partitions/partition@1: image: \"beta.bin\" is missing"]
    );
}

#[test]
fn missing_initrd() {
    let p = problems_with(&good(), &Files::good().without("beta.cpio"));
    assert_eq!(
        p,
        ["/partitions/partition@1: initrd: \"beta.cpio\" is missing"]
    );
}

#[test]
fn load_address_and_entry_outside_guest_memory() {
    let p = after(|t| {
        t.at(P0)
            .set("load-address", u64s(&[0x3000_0000]))
            .set("entry", u64s(&[0x4080_0000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: load-address: 0x30000000 is outside guest memory",
            "/partitions/partition@0: entry: 0x40800000 is outside guest memory",
        ]
    );
}

#[test]
fn image_that_does_not_fit() {
    let p = problems_with(&good(), &Files::good().with("alpha.bin", 0x80_0001));
    assert_eq!(
        p,
        [
            "/partitions/partition@0: image: \"alpha.bin\" (0x800001 bytes at 0x40000000) does not fit in guest memory"
        ]
    );
}

#[test]
fn image_overlapping_the_dtb() {
    let p = problems_with(&good(), &Files::good().with("alpha.bin", 0x7f_0001));
    assert_eq!(
        p,
        [
            "/partitions/partition@0: image: \"alpha.bin\" at [0x40000000, 0x407f0001) overlaps the guest DTB [0x407f0000, 0x40800000)"
        ]
    );
}

#[test]
fn dtb_outside_guest_memory_or_misaligned() {
    let p = after(|t| {
        t.at(P0).set("dtb-address", u64s(&[0x407f_8000]));
        t.at(P1).set("dtb-address", u64s(&[0x4010_0004]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: dtb-address: [0x407f8000, 0x40808000) (room for the guest DTB) is outside guest memory",
            "/partitions/partition@1: dtb-address: 0x40100004 is not 8-byte aligned",
        ]
    );
}

#[test]
fn initrd_outside_guest_memory() {
    let p = after(|t| {
        t.at(P1).set("initrd-address", u64s(&[0x407f_f000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: initrd-address: \"beta.cpio\" at [0x407ff000, 0x4080f000) is outside guest memory"
        ]
    );
    // The default placement, with an initrd too big for the region.
    let p = problems_with(&good(), &Files::good().with("beta.cpio", 0x100_0000));
    assert_eq!(
        p,
        [
            "/partitions/partition@1: initrd: \"beta.cpio\" at [0x3f7f0000, 0x407f0000) (placed just below the guest DTB) is outside guest memory"
        ]
    );
}

#[test]
fn initrd_overlapping_image_or_dtb() {
    let p = after(|t| {
        t.at(P1).set("initrd-address", u64s(&[0x4000_0000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: initrd-address: \"beta.cpio\" at [0x40000000, 0x40010000) overlaps the image [0x40000000, 0x40001000)"
        ]
    );
    let p = after(|t| {
        t.at(P1).set("initrd-address", u64s(&[0x407e_8000]));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@1: initrd-address: \"beta.cpio\" at [0x407e8000, 0x407f8000) overlaps the guest DTB [0x407f0000, 0x40800000)"
        ]
    );
}
