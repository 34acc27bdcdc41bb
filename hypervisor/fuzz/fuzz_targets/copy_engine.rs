//! `copy_engine`: the copy path (`ferry_hypervisor::state::copy::CopyDevice`)
//! between a frontend and a backend that libFuzzer's bytes drive, checked after
//! every call against the model in hypervisor/src/state/copy/tests/fuzz.rs (the
//! same harness `cargo test` runs with a seeded PRNG). A panic is a finding: a
//! model mismatch, a write outside what Ferry may write, or a panic in Ferry.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/state/copy/tests/fuzz.rs"]
mod harness;

/// The input's bytes as choices: 1, 2, 4 or 8 of them a choice, as its range
/// needs; zeros once they run out (and the scenario ends).
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl harness::Source for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let width = match n {
            0..=0x100 => 1,
            0x101..=0x1_0000 => 2,
            0x1_0001..=0x1_0000_0000 => 4,
            _ => 8,
        };
        let end = (self.at + width).min(self.data.len());
        let mut b = [0u8; 8];
        b[..end - self.at].copy_from_slice(&self.data[self.at..end]);
        self.at = end;
        u64::from_le_bytes(b) % n
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut src = Bytes { data, at: 0 };
    let mut s = harness::Scenario::new(&mut src);
    s.known_bugs_from_env();
    s.run(usize::MAX);
});
