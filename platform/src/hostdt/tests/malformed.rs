//! Malformed blobs: every one is an `Err` (or, for harmless damage, `Ok`), never
//! a panic or an out-of-bounds access, from both `copy_without_nops` and
//! `HostInfo::parse`.

use super::super::{DtError, HostInfo, MAX_DTB_SIZE, copy_without_nops};
use super::{
    Dt, OFF_RSVMAP, OFF_STRINGS, OFF_STRUCT, SIZE_STRINGS, SIZE_STRUCT, TOTALSIZE, VERSION,
    XorShift, hdr, inject, set_hdr,
};
use ferry_abi::dtb::{DtbError, MAX_DEPTH};

/// Runs both entry points on `blob`, and `parse` on the copy if there is one.
/// Returns the copy's result.
fn both(blob: &[u8]) -> Result<usize, DtbError> {
    let _ = HostInfo::parse(blob);
    let mut dst = vec![0u8; blob.len() + 64];
    let r = copy_without_nops(blob, &mut dst);
    if let Ok(n) = r {
        let _ = HostInfo::parse(&dst[..n]);
    }
    r
}

/// A version 17 blob: header, reservation block, `structure`, `strings`.
fn raw_blob(rsv: &[(u64, u64)], structure: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    for &(a, s) in rsv.iter().chain(&[(0, 0)]) {
        b.extend(a.to_be_bytes());
        b.extend(s.to_be_bytes());
    }
    let off_struct = b.len();
    b.extend(structure);
    let off_strings = b.len();
    b.extend(strings);
    let words = [
        0xd00d_feed,
        b.len() as u32,
        off_struct as u32,
        off_strings as u32,
        40,
        17,
        16,
        0,
        strings.len() as u32,
        structure.len() as u32,
    ];
    for (i, w) in words.into_iter().enumerate() {
        set_hdr(&mut b, i, w);
    }
    b
}

fn w(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn begin(name: &str) -> Vec<u8> {
    let mut v = w(1);
    v.extend(name.as_bytes());
    v.push(0);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

fn prop(nameoff: u32, value: &[u8]) -> Vec<u8> {
    let mut v = w(3);
    v.extend(w(value.len() as u32));
    v.extend(w(nameoff));
    v.extend(value);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

const END_NODE: u32 = 2;
const END: u32 = 9;
const STRINGS: &[u8] = b"model\0";

fn structure(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn structure_err(parts: &[Vec<u8>]) -> DtbError {
    both(&raw_blob(&[], &structure(parts), STRINGS)).unwrap_err()
}

#[test]
fn minimal_blob_is_valid_but_has_nothing() {
    let s = structure(&[begin(""), prop(0, b"m\0"), w(END_NODE), w(END)]);
    let blob = raw_blob(&[], &s, STRINGS);
    assert_eq!(both(&blob), Ok(blob.len()));
    assert_eq!(HostInfo::parse(&blob), Err(DtError::NoMemory));
}

#[test]
fn structure_errors() {
    let cause = |e: DtbError| match e {
        DtbError::Structure { cause, .. } => cause,
        e => panic!("{e:?}"),
    };
    let root = || begin("");
    let end_node = || w(END_NODE);
    let end = || w(END);
    // Missing FDT_END.
    let e = structure_err(&[root(), end_node()]);
    assert_eq!(cause(e), "the block ends without an FDT_END token");
    // Unterminated node name: runs to the end of the block.
    let mut name = w(1);
    name.extend(b"abcdefg");
    let e = structure_err(&[name]);
    assert_eq!(cause(e), "node name has no NUL before the end of the block");
    // A PROP whose length runs past the block.
    let mut p = prop(0, b"xy\0\0");
    p[4..8].copy_from_slice(&1000u32.to_be_bytes());
    let e = structure_err(&[root(), p, end_node(), end()]);
    assert_eq!(cause(e), "property value runs past the end of the block");
    let mut p = prop(0, b"xy\0\0");
    p[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        both(&raw_blob(
            &[],
            &structure(&[root(), p, end_node(), end()]),
            STRINGS
        ))
        .is_err()
    );
    // Property name offset outside the strings block / not NUL-terminated.
    let e = structure_err(&[root(), prop(99, b""), end_node(), end()]);
    assert_eq!(
        cause(e),
        "property name offset is outside the strings block"
    );
    let blob = raw_blob(
        &[],
        &structure(&[root(), prop(0, b""), end_node(), end()]),
        b"mod",
    );
    let e = both(&blob).unwrap_err();
    assert_eq!(
        cause(e),
        "property name has no NUL inside the strings block"
    );
    // Unbalanced and misplaced tokens.
    let e = structure_err(&[root(), end_node(), end_node(), end()]);
    assert_eq!(cause(e), "FDT_END_NODE without a matching FDT_BEGIN_NODE");
    let e = structure_err(&[root(), end()]);
    assert_eq!(cause(e), "FDT_END inside an unclosed node");
    let e = structure_err(&[end()]);
    assert_eq!(cause(e), "FDT_END before any node");
    let e = structure_err(&[prop(0, b""), end()]);
    assert_eq!(cause(e), "FDT_PROP outside any node");
    let e = structure_err(&[
        root(),
        begin("a"),
        end_node(),
        prop(0, b""),
        end_node(),
        end(),
    ]);
    assert_eq!(cause(e), "FDT_PROP after a child node");
    let e = structure_err(&[root(), end_node(), root(), end_node(), end()]);
    assert_eq!(cause(e), "a second root node follows the first");
    let e = structure_err(&[begin("x"), end_node(), end()]);
    assert_eq!(cause(e), "root node name is not empty");
    let mut bad_utf8 = begin("ab");
    bad_utf8[4] = 0xff;
    let e = structure_err(&[root(), bad_utf8, end_node(), end_node(), end()]);
    assert_eq!(cause(e), "node name is not UTF-8");
    let e = structure_err(&[root(), w(0x77), end_node(), end()]);
    assert!(
        matches!(e, DtbError::UnknownToken { token: 0x77, .. }),
        "{e:?}"
    );
    // Nesting deeper than MAX_DEPTH.
    let mut parts = vec![root()];
    parts.extend((1..=MAX_DEPTH).map(|i| begin(&format!("n{i}"))));
    parts.extend((0..=MAX_DEPTH).map(|_| end_node()));
    parts.push(end());
    let e = structure_err(&parts);
    assert_eq!(cause(e), "nodes nest deeper than 16 levels (MAX_DEPTH)");
    let nop = raw_blob(&[], &structure(&[root(), w(4), end_node(), end()]), STRINGS);
    assert!(matches!(
        HostInfo::parse(&nop),
        Err(DtError::Nop { offset: 64 })
    ));
}

#[test]
fn header_errors() {
    let good = Dt::virt().build();
    let patched = |i: usize, v: u32| {
        let mut b = good.clone();
        set_hdr(&mut b, i, v);
        both(&b)
    };
    assert!(matches!(
        patched(0, 0xfeed_d00d),
        Err(DtbError::BadMagic { found: 0xfeed_d00d })
    ));
    let len = good.len();
    assert_eq!(
        patched(TOTALSIZE, len as u32 + 1),
        Err(DtbError::Truncated {
            needed: len + 1,
            available: len
        })
    );
    let big = MAX_DTB_SIZE as u32 + 1;
    assert_eq!(
        patched(TOTALSIZE, big),
        Err(DtbError::TooLarge {
            totalsize: big as usize
        })
    );
    let bad_header = |r: Result<usize, DtbError>, f: &str| match r {
        Err(DtbError::BadHeader { field, .. }) => assert_eq!(field, f),
        r => panic!("{r:?}"),
    };
    bad_header(patched(TOTALSIZE, 20), "totalsize");
    bad_header(patched(OFF_STRUCT, len as u32), "off_dt_struct");
    bad_header(patched(OFF_STRUCT, 2), "off_dt_struct");
    bad_header(patched(OFF_STRUCT, 42), "off_dt_struct");
    bad_header(patched(SIZE_STRUCT, len as u32), "off_dt_struct");
    bad_header(patched(SIZE_STRUCT, u32::MAX), "off_dt_struct");
    bad_header(patched(OFF_STRINGS, u32::MAX), "off_dt_strings");
    bad_header(patched(SIZE_STRINGS, len as u32), "off_dt_strings");
    bad_header(patched(OFF_RSVMAP, 44), "off_mem_rsvmap");
    bad_header(patched(OFF_RSVMAP, 8), "off_mem_rsvmap");
    bad_header(patched(OFF_RSVMAP, len as u32), "off_mem_rsvmap");
    assert!(matches!(
        patched(VERSION, 15),
        Err(DtbError::UnsupportedVersion { version: 15, .. })
    ));
    assert!(matches!(
        patched(6, 18),
        Err(DtbError::UnsupportedVersion {
            last_comp_version: 18,
            ..
        })
    ));
    // A structure block that ends early cuts FDT_END off.
    let e = patched(SIZE_STRUCT, hdr(&good, SIZE_STRUCT) - 4);
    assert!(matches!(e, Err(DtbError::Structure { .. })), "{e:?}");
    // A reservation block with no terminator before the end of the blob.
    let mut b = raw_blob(&[], &[], b"");
    let n = b.len();
    b[n - 8..].fill(0xff);
    assert!(matches!(both(&b), Err(DtbError::MemReserve { .. })));
    // Too short for a header at all.
    for n in 0..40 {
        assert!(matches!(both(&good[..n]), Err(DtbError::Truncated { .. })));
    }
}

#[test]
fn version_16_blobs_are_copied_to_version_17() {
    let good = Dt::imx().build();
    let mut v16 = good.clone();
    set_hdr(&mut v16, VERSION, 16);
    set_hdr(&mut v16, SIZE_STRUCT, 0xdead_beef); // not a field in version 16
    let e = HostInfo::parse(&v16).unwrap_err();
    assert_eq!(
        e,
        DtError::Format(DtbError::UnsupportedVersion {
            version: 16,
            last_comp_version: 16
        })
    );
    let mut dst = vec![0u8; good.len()];
    let n = copy_without_nops(&v16, &mut dst).unwrap();
    assert_eq!(&dst[..n], &good[..]);
}

#[test]
fn too_small_dst() {
    let blob = inject(&Dt::imx().build(), |i, _, _| i % 2);
    let mut big = vec![0u8; blob.len()];
    let needed = copy_without_nops(&blob, &mut big).unwrap();
    for len in [0, 1, 39, 40, needed / 2, needed - 1] {
        let mut dst = vec![0xaa; len];
        let e = copy_without_nops(&blob, &mut dst);
        assert_eq!(
            e,
            Err(DtbError::DstTooSmall {
                needed,
                available: len
            })
        );
        assert!(
            dst.iter().all(|&b| b == 0xaa),
            "dst written before the size check"
        );
    }
    let mut dst = vec![0u8; needed];
    assert_eq!(copy_without_nops(&blob, &mut dst), Ok(needed));
    assert_eq!(dst, &big[..needed]);
}

#[test]
fn truncated_at_every_length() {
    let blob = inject(&Dt::imx().build(), |i, _, _| usize::from(i % 3 == 0));
    for n in 0..blob.len() {
        // As is: the header's totalsize no longer fits.
        assert!(both(&blob[..n]).is_err(), "prefix {n}");
        // With a header made to agree with the shorter length, so the walk runs
        // into the cut instead.
        if n >= 40 {
            let mut b = blob[..n].to_vec();
            set_hdr(&mut b, TOTALSIZE, n as u32);
            let off_struct = hdr(&b, OFF_STRUCT) as usize;
            let struct_size = (hdr(&b, SIZE_STRUCT) as usize).min(n.saturating_sub(off_struct));
            set_hdr(&mut b, SIZE_STRUCT, struct_size as u32);
            let off_strings = (hdr(&b, OFF_STRINGS) as usize).min(n);
            set_hdr(&mut b, OFF_STRINGS, off_strings as u32);
            let size_strings = (hdr(&b, SIZE_STRINGS) as usize).min(n - off_strings);
            set_hdr(&mut b, SIZE_STRINGS, size_strings as u32);
            let r = both(&b);
            assert!(
                r.is_err() || n == blob.len(),
                "consistent prefix {n}: {r:?}"
            );
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let bases = [
        inject(&Dt::imx().build(), |i, _, _| usize::from(i % 4 == 1)),
        inject(&Dt::virt().build(), |i, _, _| i % 2),
    ];
    let mut ok = 0;
    for round in 0..6000 {
        let mut b = bases[round % 2].clone();
        let header_only = round % 5 == 0;
        for _ in 0..1 + rng.below(4) {
            let at = if header_only {
                rng.below(40)
            } else {
                rng.below(b.len())
            };
            match rng.below(3) {
                0 => b[at] ^= 1 << rng.below(8),
                1 => b[at] = rng.next() as u8,
                // A small token-like word at a word boundary.
                _ => {
                    let at = (at & !3).min(b.len() - 4);
                    b[at..at + 4].copy_from_slice(&(rng.below(11) as u32).to_be_bytes());
                }
            }
        }
        if both(&b).is_ok() {
            ok += 1;
        }
    }
    // Most mutations hit property values and names and are harmless.
    assert!(ok > 100, "{ok}");
}
