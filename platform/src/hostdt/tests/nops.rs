//! FDT_NOP tokens: what `fdt` 0.1.5 does with them, and that
//! `copy_without_nops` + `HostInfo::parse` sees through them.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::super::{DtError, HostInfo, copy_without_nops};
use super::{Dt, inject, nop_out_node, tokens};
use ferry_abi::dtb::Token;

/// Where NOPs go: `(name, count(i, previous token, token))`.
type Placement = (&'static str, fn(usize, Option<Token>, Token) -> usize);

/// NOP placements, each a function of (index, previous token, token).
const PLACEMENTS: [Placement; 8] = [
    ("between properties", |_, p, t| {
        usize::from(matches!((p, t), (Some(Token::Prop(..)), Token::Prop(..))))
    }),
    ("after the root's BEGIN_NODE", |i, _, _| usize::from(i == 1)),
    ("before every BEGIN_NODE but the root's", |i, _, t| {
        usize::from(i > 0 && matches!(t, Token::Begin(_)))
    }),
    ("before every END_NODE", |_, _, t| {
        usize::from(t == Token::EndNode)
    }),
    ("a run of 5 before FDT_END", |_, _, t| {
        5 * usize::from(t == Token::End)
    }),
    ("a run of 3 before the root", |i, _, _| {
        3 * usize::from(i == 0)
    }),
    ("before the first property of each node", |_, p, t| {
        usize::from(matches!((p, t), (Some(Token::Begin(_)), Token::Prop(..))))
    }),
    ("runs of 1 to 3 before every token", |i, _, _| 1 + i % 3),
];

/// What a call into `fdt` 0.1.5 did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome<T> {
    Returned(T),
    Panicked,
}

thread_local! {
    /// Set while `run` expects a panic from fdt, to keep its message out of the output.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic (whose message is not printed).
fn run<T>(f: impl FnOnce() -> T) -> Outcome<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    match r {
        Ok(v) => Outcome::Returned(v),
        Err(_) => Outcome::Panicked,
    }
}

/// `fdt` 0.1.5 on `blob`: found `/psci`? found `/chosen`? `all_nodes().count()`,
/// `cpus().count()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    psci: Outcome<bool>,
    chosen: Outcome<bool>,
    all_nodes: Outcome<usize>,
    cpus: Outcome<usize>,
}

fn fdt_sees(blob: &[u8]) -> Seen {
    let fdt = fdt::Fdt::new(blob).unwrap();
    Seen {
        psci: run(|| fdt.find_node("/psci").is_some()),
        chosen: run(|| fdt.find_node("/chosen").is_some()),
        all_nodes: run(|| fdt.all_nodes().count()),
        cpus: run(|| fdt.cpus().count()),
    }
}

/// NOP-free copy of `blob`.
fn copy(blob: &[u8]) -> Vec<u8> {
    let mut dst = vec![0u8; blob.len()];
    let n = copy_without_nops(blob, &mut dst).unwrap();
    dst.truncate(n);
    dst
}

#[test]
fn fdt_0_1_5_misparses_nops() {
    let orig = Dt::virt().build();
    let nodes = tokens(&orig)
        .iter()
        .filter(|t| matches!(t.1, Token::Begin(_)))
        .count();
    use Outcome::{Panicked, Returned};
    let good = Seen {
        psci: Returned(true),
        chosen: Returned(true),
        all_nodes: Returned(nodes),
        cpus: Returned(4),
    };
    assert_eq!(fdt_sees(&orig), good);

    // What fdt 0.1.5 does with NOPs at each placement (as observed; asserted so
    // that a fixed fdt makes this test fail and the workaround can be reviewed).
    let lost = |all_nodes| Seen {
        psci: Returned(false),
        chosen: Returned(false),
        all_nodes: Returned(all_nodes),
        cpus: Panicked,
    };
    let expected = [
        // A NOP ends find_node's property loop, then it wants END_NODE: nothing
        // below / is found, cpus() panics ("/cpus is a required node"), and
        // all_nodes() stops after the root.
        lost(1),
        // Right after the root's BEGIN_NODE: skipped (skip_nops before the props).
        good,
        // Between siblings: find_node's child loop ends at the NOP, so only the
        // first child of / can be found; all_nodes() copes.
        lost(nodes),
        // Before END_NODE: find_node copes, all_nodes() stops after 2 nodes.
        Seen {
            all_nodes: Returned(2),
            ..good
        },
        // Before FDT_END, before the root: harmless.
        good,
        good,
        // Before a node's first property: find_node panics while skipping a
        // sibling (its "bad node" assert), and so does cpus().
        Seen {
            psci: Panicked,
            chosen: Panicked,
            all_nodes: Returned(nodes),
            cpus: Panicked,
        },
        lost(1),
    ];
    for ((name, count), want) in PLACEMENTS.iter().zip(expected) {
        let blob = inject(&orig, count);
        assert_eq!(fdt_sees(&blob), want, "NOPs {name}");
        assert_eq!(fdt_sees(&copy(&blob)), good, "NOPs {name}, copied");
    }

    // QEMU's way (libfdt fdt_nop_node): a deleted node becomes NOPs in place. Any
    // find_node that must skip its parent then fails an assert inside fdt ("bad
    // node": FDT_BEGIN_NODE of the next sibling where END_NODE was expected), as
    // find_node("/chosen") does on QEMU's own imx8mp-evk DTB.
    let mut dt = Dt::imx();
    dt.reserved
        .insert(0, ("deleted@a0000000", Some((0xa000_0000, 0x1000)), None));
    let mut blob = dt.build();
    nop_out_node(&mut blob, "deleted@a0000000");
    let seen = fdt_sees(&blob);
    assert_eq!(seen.chosen, Panicked);
    assert_eq!(seen.psci, Panicked);
    assert_eq!(seen.cpus, Panicked);
    let copied = copy(&blob);
    assert_eq!(fdt_sees(&copied).chosen, Returned(true));
    assert_eq!(
        HostInfo::parse(&copied).unwrap(),
        HostInfo::parse(&Dt::imx().build()).unwrap()
    );
}

#[test]
fn copy_then_parse_equals_original() {
    for dt in [Dt::virt(), Dt::imx()] {
        let orig = dt.build();
        let want = HostInfo::parse(&orig).unwrap();
        // vm-fdt lays a DTB out as copy_without_nops does: a NOP-free blob copies
        // to itself byte for byte.
        assert_eq!(copy(&orig), orig);
        for (name, count) in PLACEMENTS {
            let blob = inject(&orig, count);
            assert!(blob.len() > orig.len(), "{name}");
            assert!(
                matches!(HostInfo::parse(&blob), Err(DtError::Nop { .. })),
                "{name}"
            );
            let copied = copy(&blob);
            assert_eq!(copied, orig, "NOPs {name}");
            assert_eq!(HostInfo::parse(&copied).unwrap(), want, "NOPs {name}");
        }
    }
}

#[test]
fn qemu_style_deleted_nodes_are_dropped() {
    let mut dt = Dt::imx();
    let plain = dt.build();
    let want = HostInfo::parse(&plain).unwrap();
    // A node QEMU deletes becomes NOPs: the result must equal a tree without it.
    dt.reserved
        .push(("deleted@a0000000", Some((0xa000_0000, 0x1000)), None));
    let mut blob = dt.build();
    nop_out_node(&mut blob, "deleted@a0000000");
    nop_out_node(&mut blob, "serial@30890000");
    assert_eq!(HostInfo::parse(&copy(&blob)).unwrap(), want);
}

#[test]
fn fixture_contents() {
    let blob = Dt::virt().build();
    let h = HostInfo::parse(&blob).unwrap();
    assert_eq!(h.model, "linux,dummy-virt");
    assert_eq!(h.bootargs, "console=ttyAMA0 ferry.selftest=panic quiet");
    assert_eq!(h.memory(), [crate::Region::new(0x4000_0000, 0x800_0000)]);
    assert_eq!(h.reserved(), []);
    let mpidrs: Vec<_> = h.cpus().iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert!(h.cpus().iter().all(|c| c.enable_method_psci));
    assert_eq!(h.psci, crate::psci::Method::Smc);
    assert_eq!(h.gic.gicd, crate::Region::new(0x0800_0000, 0x1_0000));
    assert_eq!(h.gicr(), [crate::Region::new(0x080a_0000, 0xf6_0000)]);

    let blob = Dt::imx().build();
    let h = HostInfo::parse(&blob).unwrap();
    assert_eq!(h.model, "NXP i.MX8MPlus EVK board");
    assert_eq!(
        h.memory(),
        [
            crate::Region::new(0x4000_0000, 0xc000_0000),
            crate::Region::new(0x1_0000_0000, 0xc000_0000)
        ]
    );
    // /memreserve/ first, then the enabled /reserved-memory children with `reg`.
    assert_eq!(
        h.reserved(),
        [
            crate::Region::new(0x5000_0000, 0x1_0000),
            crate::Region::new(0x942f_0000, 0x8000),
            crate::Region::new(0x942f_8000, 0x8000),
            crate::Region::new(0x9430_0000, 0x10_0000),
        ]
    );
    assert_eq!(h.cpu_count, 4);
    assert_eq!(h.gic.gicd, crate::Region::new(0x3880_0000, 0x1_0000));
    assert_eq!(h.gicr(), [crate::Region::new(0x3888_0000, 0xc_0000)]);
    assert_eq!(h.bootarg("ferry.log"), Some("debug"));
    assert_eq!(h.bootarg("earlycon"), Some(""));
    assert_eq!(h.bootarg("console"), Some("ttymxc1,115200"));
    assert_eq!(h.bootarg("ferry"), None);
}
