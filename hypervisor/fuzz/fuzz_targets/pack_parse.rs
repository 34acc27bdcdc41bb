//! `pack_parse`: the pack parser (`ferry_abi::pack`), which Ferry runs at boot on
//! whatever follows its image.
//!
//! Input: one flags byte, then the pack. The checksums would stop almost every
//! mutation at the header, so flag bit 0 recomputes them (every payload's whose
//! entry lies in the input, the entry table's, the header's) and bit 1 sets
//! `total_size` to the input's length: the parser's structural checks then see
//! the fuzzer's bytes. Without the flags the bytes are parsed as they are.
//!
//! Checked: parsing never panics; a pack it accepts has what `Pack::parse`
//! promises (its size, payloads aligned, in order, in bounds, with their CRCs,
//! the config and only the config for the system, no duplicates), `items` and
//! `find` agree, and writing the items again gives a pack that parses to the
//! same items.
#![no_main]

use std::collections::BTreeSet;

use ferry_abi::crc32;
use ferry_abi::pack::{self, ALIGN, Entry, Header, Item, Kind, MAX_ENTRIES, Pack, Payload, SYSTEM};
use libfuzzer_sys::fuzz_target;

/// Flag bit: recompute the checksums.
const FIX_CRCS: u8 = 1;
/// Flag bit: `total_size` = the input's length.
const FIX_TOTAL: u8 = 2;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let mut bytes = bytes.to_vec();
    fix_up(&mut bytes, flags);
    let total = Pack::total_size(&bytes);
    match Pack::parse(&bytes) {
        Ok(p) => check(&p, &bytes, total.expect("a parsed pack has a total size")),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

/// Rewrites what the flags ask for, the way `pack::write` computes it.
fn fix_up(b: &mut [u8], flags: u8) {
    if b.len() < 64 {
        return;
    }
    let head: [u8; 64] = b[..64].try_into().unwrap();
    let mut h = Header::decode(&head);
    if flags & FIX_TOTAL != 0 {
        h.total_size = b.len() as u64;
    }
    if flags & FIX_CRCS != 0 {
        let count = h.entry_count.min(MAX_ENTRIES) as usize;
        let table_end = (64 + 64 * count).min(b.len() / 64 * 64);
        for at in (64..table_end).step_by(64) {
            let mut e = Entry::decode(b[at..at + 64].try_into().unwrap());
            let end = e.offset.checked_add(e.size);
            if let Some(payload) = end.and_then(|end| b.get(e.offset as usize..end as usize)) {
                e.crc = crc32::checksum(payload);
                b[at..at + 64].copy_from_slice(&e.encode());
            }
        }
        h.entries_crc = crc32::checksum(&b[64..table_end]);
        h.header_crc = h.compute_crc();
    }
    b[..64].copy_from_slice(&h.encode());
}

/// What an accepted pack must be.
fn check(p: &Pack<'_>, bytes: &[u8], total: u64) {
    assert_eq!(p.bytes().len() as u64, total, "the pack is total_size long");
    assert_eq!(
        p.bytes().as_ptr(),
        bytes.as_ptr(),
        "the pack starts the input"
    );
    let base = bytes.as_ptr() as usize;
    let mut seen = BTreeSet::new();
    let mut previous_end = 64;
    let items: Vec<Item<'_>> = p.items().collect();
    for item in &items {
        let at = (item.data.as_ptr() as usize - base) as u64;
        let end = at + item.data.len() as u64;
        assert!(
            at.is_multiple_of(ALIGN),
            "payload at {at:#x} is not aligned"
        );
        assert!(
            at >= previous_end,
            "payload at {at:#x} overlaps the one before"
        );
        assert!(end <= total, "payload [{at:#x}, {end:#x}) past the pack");
        previous_end = end;
        assert_eq!(item.kind == Kind::Config, item.partition == SYSTEM);
        assert!(
            seen.insert((item.kind as u32, item.partition)),
            "{:?} of {} twice",
            item.kind,
            item.partition
        );
        assert_eq!(p.find(item.kind, item.partition), Some(*item));
        let _ = (item.kind.name(), pack::item_name(item.name));
    }
    round_trip(&items);
}

/// Writes `items` as a new pack and parses it back.
fn round_trip(items: &[Item<'_>]) {
    let payloads: Vec<Payload<'_>> = items
        .iter()
        .map(|i| Payload {
            kind: i.kind,
            partition: i.partition,
            name: i.name,
            data: i.data,
        })
        .collect();
    let mut out = vec![0xa5u8; pack::packed_size(&payloads) as usize];
    let n = pack::write(&mut out, &payloads).expect("a parsed pack's items can be written");
    let again = Pack::parse(&out[..n]).expect("a written pack parses");
    let again: Vec<Item<'_>> = again.items().collect();
    assert_eq!(again.len(), items.len());
    for (a, b) in again.iter().zip(items) {
        assert_eq!((a.kind, a.partition, a.data), (b.kind, b.partition, b.data));
        assert_eq!(a.name, cut(b.name), "names are cut to 31 bytes");
    }
}

/// `name` cut to 31 bytes at a character boundary, as `pack::write` does.
fn cut(name: &str) -> &str {
    let mut len = name.len().min(31);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    &name[..len]
}
