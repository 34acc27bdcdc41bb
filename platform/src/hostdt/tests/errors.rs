//! Each discovery rule and error of `HostInfo::parse`, and the error texts.

use super::super::{
    Cpu, DtError, DtbError, FixedStr, HostInfo, MAX_MEMORY_REGIONS, MAX_RESERVED_REGIONS, NodePath,
    blob_at,
};
use super::{Dt, Gic};
use crate::{MAX_CPUS, Region};

/// Parses `dt` and hands the result to `check` (the blob must outlive it).
fn parsed<T>(dt: &Dt, check: impl FnOnce(Result<HostInfo<'_>, DtError>) -> T) -> T {
    let blob = dt.build();
    check(HostInfo::parse(&blob))
}

/// The error `dt` gives, and its text.
fn error(dt: &Dt) -> (DtError, String) {
    let e = parsed(dt, |r| r.unwrap_err());
    (e, e.to_string())
}

fn path(s: &str) -> NodePath {
    NodePath::new(s)
}

fn v3(regs: Vec<(u64, u64)>, redist: Option<u32>) -> Gic {
    Gic::V3 {
        regs,
        redist,
        status: None,
    }
}

#[test]
fn psci_errors() {
    let mut dt = Dt::virt();
    dt.psci = Some(Some("hvc"));
    assert_eq!(
        error(&dt),
        (
            DtError::PsciHvc {
                node: path("/psci")
            },
            "/psci: property `method` is \"hvc\": PSCI through HVC cannot reach firmware from \
             EL2 (the host DT must say method = \"smc\")"
                .into()
        )
    );
    dt.psci = Some(Some("spin"));
    let (e, text) = error(&dt);
    assert_eq!(
        e,
        DtError::PsciMethod {
            node: path("/psci"),
            value: FixedStr::new("spin")
        }
    );
    assert!(
        text.starts_with("/psci: property `method` is \"spin\""),
        "{text}"
    );
    dt.psci = Some(None);
    let (e, text) = error(&dt);
    assert_eq!(
        e,
        DtError::MissingProperty {
            node: path("/psci"),
            property: "method"
        }
    );
    assert_eq!(text, "/psci: property `method` is missing");
    dt.psci = None;
    let (e, text) = error(&dt);
    assert_eq!(e, DtError::NoPsci);
    assert!(text.starts_with("no /psci node"), "{text}");
}

#[test]
fn gic_errors() {
    let mut dt = Dt::virt();
    dt.gic = Gic::V2;
    assert_eq!(
        error(&dt),
        (
            DtError::NoGicV3 {
                found: Some("arm,cortex-a15-gic")
            },
            "no node compatible with \"arm,gic-v3\": Ferry needs a GICv3 (found \
             \"arm,cortex-a15-gic\"; on QEMU use -M virt,gic-version=3)"
                .into()
        )
    );
    dt.gic = Gic::None;
    assert_eq!(error(&dt).0, DtError::NoGicV3 { found: None });
    let regs = vec![(0x800_0000, 0x1_0000), (0x80a_0000, 0xf6_0000)];
    dt.gic = Gic::V3 {
        regs: regs.clone(),
        redist: None,
        status: Some("disabled"),
    };
    assert_eq!(error(&dt).0, DtError::NoGicV3 { found: None });

    let node = path("/interrupt-controller@8000000");
    dt.gic = v3(regs.clone(), Some(0));
    let (e, text) = error(&dt);
    assert!(matches!(
        e,
        DtError::Property {
            property: "#redistributor-regions",
            ..
        }
    ));
    assert!(text.starts_with("/interrupt-controller@8000000: property `#redistributor-regions`"));
    dt.gic = v3(regs.clone(), Some(5));
    let (e, text) = error(&dt);
    assert!(matches!(e, DtError::TooManyRegions { max: 4, .. }), "{e:?}");
    assert!(text.contains("at most 4 (MAX_GICR_REGIONS)"), "{text}");
    dt.gic = v3(regs.clone(), Some(2));
    let (e, text) = error(&dt);
    assert!(matches!(e, DtError::Property { node: n, property: "reg", .. } if n == node));
    assert!(
        text.starts_with("/interrupt-controller@8000000: property `reg` has fewer"),
        "{text}"
    );

    // Two redistributor regions.
    let mut regs4 = regs.clone();
    regs4.push((0x1_0000_0000, 0x20_0000));
    dt.gic = v3(regs4, Some(2));
    parsed(&dt, |r| {
        let h = r.unwrap();
        assert_eq!(h.gic.gicr_count, 2);
        assert_eq!(h.gicr()[1], Region::new(0x1_0000_0000, 0x20_0000));
    });
}

#[test]
fn gic_under_a_bus_is_translated() {
    let mut dt = Dt::imx();
    // soc@0 maps its 1-cell bus address 0 to CPU address 0x1_0000_0000.
    dt.soc_ranges = Some(vec![0, 1, 0, 0x4000_0000]);
    parsed(&dt, |r| {
        let h = r.unwrap();
        assert_eq!(h.gic.gicd, Region::new(0x1_3880_0000, 0x1_0000));
        assert_eq!(h.gicr(), [Region::new(0x1_3888_0000, 0xc_0000)]);
    });
    dt.soc_ranges = Some(vec![0x4000_0000, 0, 0x4000_0000, 0x1000]);
    let (e, text) = error(&dt);
    let node = path("/soc@0/interrupt-controller@38800000");
    assert!(matches!(e, DtError::Property { node: n, property: "reg", .. } if n == node));
    assert!(text.contains("outside every `ranges` entry"), "{text}");
    dt.soc_ranges = Some(vec![0, 0, 0]);
    let (e, text) = error(&dt);
    assert!(
        matches!(
            e,
            DtError::Property {
                property: "ranges",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(text.starts_with("/soc@0: property `ranges`"), "{text}");
}

#[test]
fn memory_rules_and_errors() {
    let mut dt = Dt::virt();
    let node = path("/memory@40000000");
    dt.memory[0].1 = (0..9)
        .map(|i| (0x4000_0000 + i * 0x100_0000, 0x100_0000))
        .collect();
    let (e, text) = error(&dt);
    assert!(
        matches!(e, DtError::TooManyRegions { node: n, max: MAX_MEMORY_REGIONS, .. } if n == node)
    );
    assert_eq!(
        text,
        "/memory@40000000: property `reg`: more than 8 memory regions, Ferry keeps at most 8 \
         (MAX_MEMORY_REGIONS)"
    );
    // Zero-sized entries are left out; a second node adds to the first.
    dt.memory[0].1 = vec![(0x4000_0000, 0), (0x4000_0000, 0x1000)];
    dt.memory
        .push((0x8000_0000, vec![(0x8000_0000, 0x2000)], None));
    dt.memory
        .push((0x9000_0000, vec![(0x9000_0000, 0x2000)], Some("disabled")));
    parsed(&dt, |r| {
        let want = [
            Region::new(0x4000_0000, 0x1000),
            Region::new(0x8000_0000, 0x2000),
        ];
        assert_eq!(r.unwrap().memory(), want);
    });
    dt.memory = vec![(0x4000_0000, vec![(0x4000_0000, 0x1000)], Some("disabled"))];
    assert_eq!(
        error(&dt),
        (DtError::NoMemory, DtError::NoMemory.to_string())
    );
    dt.memory = vec![];
    assert_eq!(error(&dt).0, DtError::NoMemory);

    // Cells: 1-cell root, then unsupported ones.
    let mut dt = Dt::virt();
    dt.root_cells = (1, 1);
    dt.memory = vec![(0x4000_0000, vec![(0x4000_0000, 0x1000_0000)], None)];
    parsed(&dt, |r| {
        assert_eq!(r.unwrap().memory(), [Region::new(0x4000_0000, 0x1000_0000)])
    });
    dt.root_cells = (3, 2);
    let (e, text) = error(&dt);
    let want = DtError::Cells {
        node,
        property: "reg",
        which: "#address-cells",
        value: 3,
        allowed: "1 or 2",
    };
    assert_eq!(e, want);
    assert!(
        text.starts_with("/memory@40000000: property `reg`: #address-cells = 3"),
        "{text}"
    );
}

#[test]
fn reserved_rules_and_errors() {
    let mut dt = Dt::imx();
    dt.memreserve = (0..10)
        .map(|i| (0x5000_0000 + i * 0x1_0000, 0x1000))
        .collect();
    // 10 memreserve + 3 enabled reserved-memory children fit in 16...
    parsed(&dt, |r| assert_eq!(r.unwrap().reserved_count, 13));
    // ...4 more do not.
    let names = ["a@1", "b@2", "c@3", "d@4"];
    for (i, n) in names.into_iter().enumerate() {
        dt.reserved
            .push((n, Some((0xa000_0000 + i as u64 * 0x1000, 0x1000)), None));
    }
    let (e, text) = error(&dt);
    let node = path("/reserved-memory/d@4");
    assert!(
        matches!(e, DtError::TooManyRegions { node: n, max: MAX_RESERVED_REGIONS, .. } if n == node)
    );
    assert!(
        text.starts_with("/reserved-memory/d@4: property `reg`: more than 16"),
        "{text}"
    );
    dt.reserved.clear();
    dt.memreserve = (0..17)
        .map(|i| (0x5000_0000 + i * 0x1_0000, 0x1000))
        .collect();
    let (e, text) = error(&dt);
    assert!(
        matches!(e, DtError::TooManyRegions { property: "", .. }),
        "{e:?}"
    );
    assert!(
        text.starts_with("/memreserve/: more than 16 reserved regions"),
        "{text}"
    );
}

#[test]
fn cpu_rules_and_errors() {
    let mut dt = Dt::virt();
    dt.cpus = (0..40).map(|i| (i, Some("psci"), None)).collect();
    assert_eq!(
        error(&dt),
        (
            DtError::TooManyCpus {
                node: path("/cpus"),
                count: 40
            },
            "/cpus: 40 CPUs found, Ferry supports at most 32 (MAX_CPUS)".into()
        )
    );
    dt.cpus.truncate(MAX_CPUS);
    parsed(&dt, |r| assert_eq!(r.unwrap().cpus().len(), MAX_CPUS));

    // Disabled CPUs are left out; other enable-methods are listed; 2-cell reg.
    dt.cpu_cells = 2;
    dt.cpus = vec![
        (0x1_0000_0000, Some("psci"), None),
        (0x100, Some("spin-table"), Some("okay")),
        (0x200, None, Some("disabled")),
        (0x300, Some("psci"), Some("fail")),
        (0x101, Some("psci"), None),
    ];
    parsed(&dt, |r| {
        let h = r.unwrap();
        let want = [
            Cpu {
                mpidr: 0x1_0000_0000,
                enable_method_psci: true,
            },
            Cpu {
                mpidr: 0x100,
                enable_method_psci: false,
            },
            Cpu {
                mpidr: 0x101,
                enable_method_psci: true,
            },
        ];
        assert_eq!(h.cpus(), want);
    });
    dt.cpus = vec![(0, Some("psci"), Some("disabled"))];
    let (e, text) = error(&dt);
    assert_eq!(e, DtError::NoCpus);
    assert!(text.starts_with("/cpus: no CPU"), "{text}");
    dt.cpus.clear();
    assert_eq!(error(&dt).0, DtError::NoCpus);
    dt.cpu_cells = 3;
    dt.cpus = vec![(0, Some("psci"), None)];
    let (e, text) = error(&dt);
    assert!(matches!(e, DtError::Cells { value: 3, .. }), "{e:?}");
    assert!(
        text.starts_with("/cpus/cpu@0: property `reg`: #address-cells = 3"),
        "{text}"
    );
}

#[test]
fn strings_and_bootargs() {
    let mut dt = Dt::virt();
    dt.model = None;
    dt.bootargs = None;
    parsed(&dt, |r| {
        let h = r.unwrap();
        assert_eq!((h.model, h.bootargs), ("", ""));
        assert_eq!(h.bootarg("ferry.selftest"), None);
    });
    dt.bootargs = Some("  a=1 ferry.selftest=panic\tb ferry.selftest=off=x c= ");
    parsed(&dt, |r| {
        let h = r.unwrap();
        assert_eq!(h.bootarg("ferry.selftest"), Some("off=x"));
        assert_eq!(h.bootarg("a"), Some("1"));
        assert_eq!(h.bootarg("b"), Some(""));
        assert_eq!(h.bootarg("c"), Some(""));
        assert_eq!(h.bootarg("d"), None);
    });
    // A bootargs value without its NUL terminator.
    let mut blob = Dt::virt().build();
    let at = blob.windows(5).position(|w| w == b"quiet").unwrap() + 5;
    blob[at] = b'!';
    let e = HostInfo::parse(&blob).unwrap_err();
    assert!(
        matches!(
            e,
            DtError::Property {
                property: "bootargs",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("/chosen: property `bootargs` is not"),
        "{e}"
    );
}

#[test]
fn fixed_str_cuts_at_char_boundaries() {
    let long = "/soc@0/bus@30800000/spba-bus@30800000/serial@30890000/very-long-child@0";
    let p = NodePath::new(long);
    assert!(p.is_truncated());
    assert_eq!(p.as_str(), &long[..64]);
    assert_eq!(p.to_string(), format!("{}...", &long[..64]));
    let s = FixedStr::<4>::new("abcé");
    assert_eq!((s.as_str(), s.is_truncated()), ("abc", true));
    let s = FixedStr::<16>::from_lossy(b"hv\xffc");
    assert_eq!(s.to_string(), "hv...");
    assert_eq!(
        NodePath::new("/").join("cpus").join("cpu@0").as_str(),
        "/cpus/cpu@0"
    );
    assert_eq!(NodePath::new("/a"), NodePath::new("/a"));
}

#[test]
fn blob_at_reads_the_header() {
    let blob: &'static [u8] = Box::leak(Dt::virt().build().into_boxed_slice());
    // SAFETY: `blob` is a leaked, never-freed allocation of `totalsize` bytes.
    let got = unsafe { blob_at(blob.as_ptr() as usize) }.unwrap();
    assert_eq!(got, blob);
    // SAFETY: address 0 is refused before any read.
    assert_eq!(unsafe { blob_at(0) }, Err(DtError::NullAddress));
    let bad: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
    // SAFETY: 64 readable bytes, more than the 40-byte header read on bad magic.
    let e = unsafe { blob_at(bad.as_ptr() as usize) };
    assert_eq!(e, Err(DtError::Format(DtbError::BadMagic { found: 0 })));
    bad[..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());
    bad[4..8].copy_from_slice(&(4u32 << 20).to_be_bytes());
    bad[20..24].copy_from_slice(&17u32.to_be_bytes());
    // SAFETY: as above; totalsize is refused before the second read.
    let e = unsafe { blob_at(bad.as_ptr() as usize) };
    assert_eq!(
        e,
        Err(DtError::Format(DtbError::TooLarge { totalsize: 4 << 20 }))
    );
    bad[4..8].copy_from_slice(&39u32.to_be_bytes());
    // SAFETY: as above; totalsize is refused before the second read.
    let e = unsafe { blob_at(bad.as_ptr() as usize) }.unwrap_err();
    assert!(
        matches!(
            e,
            DtError::Format(DtbError::BadHeader {
                field: "totalsize",
                ..
            })
        ),
        "{e:?}"
    );
    // A format error reads the same wrapped or not.
    let DtError::Format(inner) = e else {
        unreachable!()
    };
    assert_eq!(e.to_string(), inner.to_string());
    assert_eq!(DtError::from(inner), e);
}
