//! A partition's `console` ("hypercall" | "pl011") and `/platform` `console-spi`:
//! parsing, defaults, and every rule of an emulated PL011 console.

mod common;

use common::*;
use ferry_config::{Console, PL011_CLOCK_NODE, pl011_node_name};

const NONE: [&str; 0] = [];

/// `good()` with `/platform console-spi = <1>` and alpha's console a PL011.
fn pl011() -> N {
    let mut t = good();
    t.at("platform").set("console-spi", cells(&[1]));
    t.at(P0).set("console", s("pl011"));
    t
}

#[test]
fn default_is_hypercall_and_no_spi() {
    let c = parsed(&good());
    assert_eq!(c.platform.console_spi, None);
    assert!(c.partitions.iter().all(|p| p.console == Console::Hypercall));
    assert_eq!(Console::default(), Console::Hypercall);
}

#[test]
fn pl011_console_parses_and_validates() {
    let t = pl011();
    let c = parsed(&t);
    assert_eq!(c.platform.console_spi, Some(1));
    assert_eq!(c.partitions[0].console, Console::Pl011);
    assert_eq!(c.partitions[1].console, Console::Hypercall);
    assert_eq!(problems(&t), NONE);

    // "hypercall" written out is the default; several partitions may each have a PL011.
    let mut t = pl011();
    t.at(P1).set("console", s("hypercall"));
    assert_eq!(parsed(&t).partitions[1].console, Console::Hypercall);
    t.at(P1).set("console", s("pl011"));
    assert_eq!(parsed(&t).partitions[1].console, Console::Pl011);
    assert_eq!(problems(&t), NONE);
}

#[test]
fn names_round_trip() {
    for c in [Console::Hypercall, Console::Pl011] {
        assert_eq!(Console::from_name(c.name()), Some(c));
    }
    assert_eq!(Console::from_name("PL011"), None);
    assert_eq!(pl011_node_name(0x0900_0000), "pl011@9000000");
    assert_eq!(PL011_CLOCK_NODE, "apb-pclk");
}

#[test]
fn unknown_console_kind_is_refused() {
    let p = after(|t| {
        t.at(P0).set("console", s("uart"));
    });
    assert_eq!(
        p,
        [
            "/partitions/partition@0: console: \"uart\" is not a console (expected \"hypercall\" or \"pl011\")"
        ]
    );
    let p = after(|t| {
        t.at(P0).set("console", cells(&[1]));
    });
    assert_eq!(
        p,
        ["/partitions/partition@0: console: must be one NUL-terminated UTF-8 string"]
    );
}

#[test]
fn malformed_console_spi_is_refused() {
    let p = after(|t| {
        t.at("platform").set("console-spi", u64s(&[1]));
    });
    assert_eq!(
        p,
        ["/platform: console-spi: must be one 32-bit cell (found 8 bytes)"]
    );
    let p = after(|t| {
        t.at("platform").set("console-spi", cells(&[988]));
    });
    assert_eq!(
        p,
        ["/platform: console-spi: SPI 988 is out of range (0 to 987)"]
    );
}

#[test]
fn pl011_needs_console_spi() {
    let mut t = pl011();
    t.at("platform").remove("console-spi");
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@0: console: \"pl011\" needs /platform console-spi (the emulated UART's SPI)"
        ]
    );
}

#[test]
fn console_spi_is_never_passed_through() {
    // Reserved as soon as it is declared, whichever console the partitions use.
    let mut t = good();
    t.at("platform").set("console-spi", cells(&[8]));
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@0/passthrough/serial@9040000: interrupts: SPI 8 is /platform console-spi (the emulated PL011 consoles' interrupt)"
        ]
    );
}

#[test]
fn pl011_must_not_overlap_guest_memory() {
    let mut t = pl011();
    t.at(P0).set(
        "memory",
        u64s(&[
            0x4000_0000,
            0x4800_0000,
            0x80_0000,
            0x0800_0000,
            0x4a00_0000,
            0x200_0000,
        ]),
    );
    let p = problems(&t);
    assert!(
        p.contains(
            &"/partitions/partition@0: console: the emulated PL011 at [0x9000000, 0x9001000) overlaps guest memory [0x8000000, 0xa000000)"
                .to_string()
        ),
        "{p:#?}"
    );
}

#[test]
fn generated_node_names_are_reserved() {
    let mut t = pl011();
    let passthrough = t.at(P0).at("passthrough");
    passthrough.children.push(
        N::new("apb-pclk")
            .p("compatible", s("fixed-clock"))
            .p("#clock-cells", cells(&[0]))
            .p("clock-frequency", cells(&[24_000_000])),
    );
    passthrough.children.push(
        N::new("pl011@9000000")
            .p("compatible", s("arm,pl011"))
            .p("reg", u64s(&[0x0905_0000, 0x1000])),
    );
    assert_eq!(
        problems(&t),
        [
            "/partitions/partition@0/passthrough/apb-pclk: node name \"apb-pclk\" clashes with a node Ferry generates for the emulated PL011 console",
            "/partitions/partition@0/passthrough/pl011@9000000: node name \"pl011@9000000\" clashes with a node Ferry generates for the emulated PL011 console",
        ]
    );
    // Without an emulated console the names are free.
    t.at(P0).remove("console");
    assert_eq!(problems(&t), NONE);
}
