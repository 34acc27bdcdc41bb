//! `host_dt`: the host device tree as Ferry reads it at boot (`start.rs`
//! `read_host_dt`): `dtb::total_size` on the header, `copy_without_nops` into a
//! 2 MiB buffer, `HostInfo::parse` on the copy; and `HostInfo::parse` on the raw
//! bytes too, which must refuse NOPs rather than misread them.
//!
//! Input: a DTB (the seeds are QEMU's virt and imx8mp-evk trees, NOPs included).
//!
//! Checked: nothing panics; the NOP-free copy is a fixed point (copying it again
//! gives the same bytes) and has no NOPs; a tree `parse` accepts has what
//! `HostInfo` promises: 1 to `MAX_CPUS` CPUs, at least one RAM region, no empty
//! region, 1 to `MAX_GICR_REGIONS` redistributor regions; `bootarg` finds the
//! last `key=value` word.
#![no_main]

use std::cell::RefCell;

use ferry_abi::dtb::{self, Header, MAX_DTB_SIZE, Token, Walker};
use ferry_platform::MAX_CPUS;
use ferry_platform::hostdt::{self, HostInfo, MAX_GICR_REGIONS};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// Ferry's `DT_COPY` and a second buffer for the fixed-point check, reused so
    /// that an input does not pay for zeroing 4 MiB.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> =
        RefCell::new((vec![0; MAX_DTB_SIZE], vec![0; MAX_DTB_SIZE]));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = HostInfo::parse(data) {
        check(&info);
    }
    // `blob_at`: the header bounds the blob (which must be readable that far).
    let Ok(total) = dtb::total_size(data) else {
        return;
    };
    let blob = &data[..total.min(data.len())];
    BUFFERS.with_borrow_mut(|(copy, again)| {
        let len = match hostdt::copy_without_nops(blob, copy) {
            Ok(len) => len,
            Err(e) => return drop(e.to_string()),
        };
        let copy = &copy[..len];
        assert_no_nops(copy);
        let len2 = hostdt::copy_without_nops(copy, again).expect("the copy copies");
        assert_eq!(
            &again[..len2],
            copy,
            "copying a NOP-free copy changes nothing"
        );
        match HostInfo::parse(copy) {
            Ok(info) => check(&info),
            Err(e) => drop(e.to_string()),
        }
    });
});

/// The copy's structure block holds no FDT_NOP token.
fn assert_no_nops(copy: &[u8]) {
    let h = Header::read(copy).expect("the copy has a good header");
    let mut walk = Walker::new(copy, &h);
    while let Some(item) = walk.next_item().expect("the copy walks") {
        assert!(
            item.token != Token::Nop,
            "a NOP at {} in the copy",
            item.offset
        );
    }
}

/// What a parsed `HostInfo` promises.
fn check(info: &HostInfo<'_>) {
    let cpus = info.cpus().len();
    assert!((1..=MAX_CPUS).contains(&cpus), "{cpus} CPUs");
    assert!(!info.memory().is_empty(), "no RAM");
    for r in info.memory().iter().chain(info.reserved()) {
        assert_ne!(r.size, 0, "an empty region {r:?} is left out");
    }
    let gicr = info.gicr().len();
    assert!(
        (1..=MAX_GICR_REGIONS).contains(&gicr),
        "{gicr} GICR regions"
    );
    let words: Vec<&str> = info.bootargs.split_ascii_whitespace().collect();
    for word in words.iter().take(4) {
        let key = word.split_once('=').map_or(*word, |(k, _)| k);
        let expected = words.iter().rev().find_map(|w| match w.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if *w == key => Some(""),
            _ => None,
        });
        assert_eq!(info.bootarg(key), expected, "bootarg({key:?})");
    }
}
