//! Host tests of [`copy_without_nops`] and [`total_size`] on hand-built blobs (the
//! platform crate tests the same routine against QEMU-like host DTBs, malformed
//! and mutated blobs, in `platform/src/hostdt/tests`).

use super::*;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A DTB by hand: / { model = "m"; cpus { cpu@0 { reg = <0>; }; cpu@1 { reg = <1>; }; };
/// chosen { bootargs = "name=x"; }; }, with NOPs sprinkled in if `nops`.
fn blob(nops: bool) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut name_off = |s: &str| {
        let at = strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        at
    };
    let (model, addr_cells, size_cells, reg, bootargs) = (
        name_off("model"),
        name_off("#address-cells"),
        name_off("#size-cells"),
        name_off("reg"),
        name_off("bootargs"),
    );
    let mut s: Vec<u8> = Vec::new();
    let w = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
    let node = |s: &mut Vec<u8>, name: &str| {
        s.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
        s.extend_from_slice(name.as_bytes());
        s.push(0);
        while !s.len().is_multiple_of(4) {
            s.push(0);
        }
    };
    let prop = |s: &mut Vec<u8>, off: u32, val: &[u8]| {
        s.extend_from_slice(&FDT_PROP.to_be_bytes());
        s.extend_from_slice(&(val.len() as u32).to_be_bytes());
        s.extend_from_slice(&off.to_be_bytes());
        s.extend_from_slice(val);
        while !s.len().is_multiple_of(4) {
            s.push(0);
        }
    };
    let nop = |s: &mut Vec<u8>| {
        if nops {
            s.extend_from_slice(&FDT_NOP.to_be_bytes());
        }
    };
    node(&mut s, "");
    nop(&mut s);
    prop(&mut s, model, b"m\0");
    prop(&mut s, addr_cells, &2u32.to_be_bytes());
    prop(&mut s, size_cells, &2u32.to_be_bytes());
    nop(&mut s);
    node(&mut s, "cpus");
    prop(&mut s, addr_cells, &1u32.to_be_bytes());
    prop(&mut s, size_cells, &0u32.to_be_bytes());
    nop(&mut s);
    for i in 0..2u32 {
        node(&mut s, &format!("cpu@{i}"));
        nop(&mut s);
        prop(&mut s, reg, &i.to_be_bytes());
        w(&mut s, FDT_END_NODE);
    }
    w(&mut s, FDT_END_NODE);
    nop(&mut s);
    node(&mut s, "memory@40000000");
    prop(
        &mut s,
        reg,
        &[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0],
    );
    w(&mut s, FDT_END_NODE);
    node(&mut s, "chosen");
    prop(&mut s, bootargs, b"name=x wait=5\0");
    w(&mut s, FDT_END_NODE);
    nop(&mut s);
    w(&mut s, FDT_END_NODE);
    w(&mut s, FDT_END);

    let rsv = [0u8; 16];
    let off_rsv = HEADER_SIZE;
    let off_struct = off_rsv + rsv.len();
    let off_strings = off_struct + s.len();
    let total = off_strings + strings.len();
    let mut b = vec![0u8; total];
    put32(&mut b, 0, FDT_MAGIC);
    put32(&mut b, 4, total as u32);
    put32(&mut b, 8, off_struct as u32);
    put32(&mut b, 12, off_strings as u32);
    put32(&mut b, 16, off_rsv as u32);
    put32(&mut b, 20, 17);
    put32(&mut b, 24, 16);
    put32(&mut b, 32, strings.len() as u32);
    put32(&mut b, 36, s.len() as u32);
    b[off_struct..off_strings].copy_from_slice(&s);
    b[off_strings..].copy_from_slice(&strings);
    b
}

#[test]
fn nops_removed_and_fdt_parses() {
    let with = blob(true);
    let without = blob(false);
    let mut out = vec![0u8; 4096];
    let n = copy_without_nops(&with, &mut out).unwrap();
    assert_eq!(n, without.len());
    assert_eq!(&out[..n], &without[..]);
    let fdt = fdt::Fdt::new(&out[..n]).unwrap();
    assert_eq!(fdt.cpus().count(), 2);
    assert_eq!(fdt.chosen().bootargs(), Some("name=x wait=5"));
}

#[test]
fn nop_free_blob_copies_unchanged() {
    let b = blob(false);
    let mut out = vec![0u8; 4096];
    let n = copy_without_nops(&b, &mut out).unwrap();
    assert_eq!(&out[..n], &b[..]);
}

#[test]
fn bad_inputs_are_errors() {
    let mut out = vec![0u8; 4096];
    assert!(copy_without_nops(&[0u8; 64], &mut out).is_err());
    let b = blob(true);
    assert!(copy_without_nops(&b[..b.len() - 8], &mut out).is_err());
    assert!(matches!(
        copy_without_nops(&b, &mut out[..64]),
        Err(DtbError::DstTooSmall { available: 64, .. })
    ));
    let mut bad = b.clone();
    bad[HEADER_SIZE + 16 + 3] = 7; // first structure token
    assert_eq!(
        copy_without_nops(&bad, &mut out),
        Err(DtbError::UnknownToken {
            offset: HEADER_SIZE + 16,
            token: 7
        })
    );
}

#[test]
fn total_size_reads_and_checks_the_header() {
    let b = blob(false);
    assert_eq!(total_size(&b[..HEADER_SIZE]), Ok(b.len()));
    assert_eq!(
        total_size(&b[..8]),
        Err(DtbError::Truncated {
            needed: HEADER_SIZE,
            available: 8
        })
    );
    assert_eq!(
        total_size(&[0u8; HEADER_SIZE]),
        Err(DtbError::BadMagic { found: 0 })
    );
    let mut h = b[..HEADER_SIZE].to_vec();
    put32(&mut h, 4, (MAX_DTB_SIZE + 1) as u32);
    assert_eq!(
        total_size(&h),
        Err(DtbError::TooLarge {
            totalsize: MAX_DTB_SIZE + 1
        })
    );
    put32(&mut h, 4, 39);
    assert!(matches!(
        total_size(&h),
        Err(DtbError::BadHeader {
            field: "totalsize",
            ..
        })
    ));
    put32(&mut h, 4, 64);
    put32(&mut h, 20, 15);
    assert!(matches!(
        total_size(&h),
        Err(DtbError::UnsupportedVersion { version: 15, .. })
    ));
}
