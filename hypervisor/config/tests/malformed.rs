//! Malformed input never panics: truncated blobs, random byte mutations, random
//! property values, extreme numbers (tests build with overflow checks on).

mod common;

use common::*;

/// xorshift64*: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses and, if that works, validates (with and without files).
fn run(dtb: &[u8]) -> bool {
    match ferry_config::parse(dtb) {
        Ok(c) => {
            let _ = ferry_config::validate(&c, &Files::good());
            let _ = ferry_config::validate(&c, &Files(Default::default()));
            let _ = ferry_config::validate(&c, &Files::good().with("alpha.bin", u64::MAX));
            let _ = ferry_config::validate(&c, &Files::good().with("beta.cpio", u64::MAX));
            true
        }
        Err(e) => {
            assert!(!e.is_empty());
            false
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    for dtb in [good().dtb(), with_nops(&good().dtb())] {
        for len in 0..dtb.len() {
            assert!(!run(&dtb[..len]), "prefix of {len} bytes accepted");
        }
        assert!(run(&dtb));
    }
}

#[test]
fn random_byte_mutations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for base in [good().dtb(), with_nops(&good().dtb())] {
        for _ in 0..20_000 {
            let mut dtb = base.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(dtb.len());
                dtb[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => dtb[at] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            accepted += usize::from(run(&dtb));
        }
    }
    // Some mutations land in values and still parse: the validator saw them too.
    assert!(accepted > 100, "only {accepted} mutants parsed");
}

/// Every property of the tree, as paths into it.
fn props(n: &N, path: &str, out: &mut Vec<(String, String)>) {
    for (name, _) in &n.props {
        out.push((path.to_string(), name.clone()));
    }
    for c in &n.children {
        props(c, &format!("{path}/{}", c.name), out);
    }
}

#[test]
fn random_property_values() {
    let mut all = vec![];
    props(&good(), "", &mut all);
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let mut t = good();
        for _ in 0..1 + rng.below(3) {
            let (path, name) = &all[rng.below(all.len())];
            let len = [0, 1, 4, 8, 12, 16, 24, 48, rng.below(64)][rng.below(9)];
            let value: Vec<u8> = (0..len)
                .map(|_| match rng.below(3) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next() as u8,
                })
                .collect();
            t.at(path).set(name, value);
        }
        run(&t.dtb());
    }
}

#[test]
fn extreme_numbers() {
    for fill in [0u8, 0xff, 0x80] {
        let mut t = good();
        let mut all = vec![];
        props(&t, "", &mut all);
        for (path, name) in &all {
            let node = t.at(path);
            let v = &mut node.props.iter_mut().find(|(n, _)| n == name).unwrap().1;
            let is_string =
                v.last() == Some(&0) && v.iter().filter(|&&b| b != 0).all(u8::is_ascii_graphic);
            if !is_string && !name.starts_with('#') {
                v.iter_mut().for_each(|b| *b = fill);
            }
        }
        run(&t.dtb());
    }
}

#[test]
fn overlapping_blocks_need_a_bigger_copy() {
    // A forged header whose strings block covers the whole blob: the NOP-free
    // copy is bigger than the blob, and parse retries with the size it needs.
    let mut dtb = good().dtb();
    let total = dtb.len() as u32;
    let off_strings = u32::from_be_bytes(dtb[12..16].try_into().unwrap());
    let size_strings = u32::from_be_bytes(dtb[32..36].try_into().unwrap());
    let new_off = 40u32;
    dtb[12..16].copy_from_slice(&new_off.to_be_bytes());
    dtb[32..36].copy_from_slice(&(total - new_off).to_be_bytes());
    // Name offsets move with the block: keep them pointing at the same strings.
    let shift = off_strings - new_off;
    let off_struct = u32::from_be_bytes(dtb[8..12].try_into().unwrap()) as usize;
    let size_struct = u32::from_be_bytes(dtb[36..40].try_into().unwrap()) as usize;
    let mut at = off_struct;
    while at < off_struct + size_struct {
        let tok = u32::from_be_bytes(dtb[at..at + 4].try_into().unwrap());
        at += match tok {
            1 => (4 + dtb[at + 4..].iter().position(|&b| b == 0).unwrap() + 1 + 3) & !3,
            3 => {
                let len = u32::from_be_bytes(dtb[at + 4..at + 8].try_into().unwrap()) as usize;
                let nameoff = u32::from_be_bytes(dtb[at + 8..at + 12].try_into().unwrap());
                dtb[at + 8..at + 12].copy_from_slice(&(nameoff + shift).to_be_bytes());
                (12 + len + 3) & !3
            }
            _ => 4,
        };
    }
    assert!(size_strings < total - new_off);
    assert_eq!(
        ferry_config::parse(&dtb),
        ferry_config::parse(&good().dtb())
    );
}
