//! A virtio console device's `loopback;` test hook: parsing, the default, and
//! the rules (a flag, on a `"console"` device only).

mod common;

use common::*;

const NONE: [&str; 0] = [];
const D0: &str = "virtio/device@0";

/// `good()` with beta a backend (request page at 0x0b000000, SPI 100) serving
/// alpha one device of type `kind` at 0x0a003e00 (SPI 47).
fn one(kind: &str) -> N {
    let mut t = good();
    t.at(P1)
        .set("ioreq-page", u64s(&[0x0b00_0000]))
        .set("ioreq-spi", cells(&[100]));
    t.children.push(
        N::new("virtio")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(N::new("device@0")
                .p("reg", cells(&[0]))
                .p("type", s(kind))
                .p("frontend", s("alpha"))
                .p("backend", s("beta"))
                .p("window", u64s(&[0x0a00_3e00, 0x200]))
                .p("spi", cells(&[47]))
                .p("shared-memory", u64s(&[0x8000_0000]))),
    );
    t
}

#[test]
fn a_console_is_real_unless_it_says_loopback() {
    let t = one("console");
    assert_eq!(problems(&t), NONE);
    assert!(
        !parsed(&t).virtio[0].loopback,
        "the default: a real console"
    );
    let mut t = one("console");
    t.at(D0).set("loopback", vec![]);
    assert_eq!(problems(&t), NONE);
    assert!(parsed(&t).virtio[0].loopback);
}

#[test]
fn loopback_is_a_flag() {
    let mut t = one("console");
    t.at(D0).set("loopback", cells(&[1]));
    assert_eq!(
        problems(&t),
        ["/virtio/device@0: loopback: must be empty (a flag: write `loopback;`) (found 4 bytes)"]
    );
}

#[test]
fn loopback_is_only_for_a_console() {
    for kind in ["rng", "blk"] {
        let mut t = one(kind);
        t.at(D0).set("loopback", vec![]);
        if kind == "blk" {
            t.at(D0).set("disk", u64s(&[0x4040_0000, 0x10_0000]));
        }
        assert_eq!(
            problems(&t),
            [format!(
                "/virtio/device@0: loopback: is only for type \"console\" (this device is \"{kind}\")"
            )],
        );
    }
}

#[test]
fn loopback_survives_nop_tokens() {
    let mut t = one("console");
    t.at(D0).set("loopback", vec![]);
    let dtb = with_nops(&t.dtb());
    let c = ferry_config::parse(&dtb).expect("parses");
    assert!(c.virtio[0].loopback);
}
