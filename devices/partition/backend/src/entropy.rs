//! Entropy sources for virtio-rng devices.
//!
//! - [`Entropy::Rndr`]: the CPU's random number instruction (FEAT_RNG, `RNDR`), the
//!   one hardware source the reference backend knows. Boards without FEAT_RNG (the
//!   Cortex-A53 of the i.MX8M, QEMU's `cortex-a53`) need a driver for their own TRNG;
//!   until one exists the backend offers no rng device there (see `devices`).
//! - [`Entropy::XorShift`]: a deterministic xorshift64 stream, for tests that check
//!   the bytes end to end. Not entropy: never offered by the product binary.

use ferry_virtio_backend::rng::EntropySource;

/// Where an rng device's bytes come from.
pub enum Entropy {
    /// `RNDR` (FEAT_RNG).
    Rndr,
    /// A deterministic test stream.
    XorShift(XorShift),
}

impl Entropy {
    /// `RNDR` if this CPU implements FEAT_RNG.
    pub fn hardware() -> Option<Entropy> {
        rndr_implemented().then_some(Entropy::Rndr)
    }
}

impl EntropySource for Entropy {
    fn fill(&mut self, out: &mut [u8]) -> usize {
        match self {
            Entropy::Rndr => fill_rndr(out),
            Entropy::XorShift(x) => x.fill(out),
        }
    }
}

/// ID_AA64ISAR0_EL1.RNDR (bits 63:60) is non-zero.
pub fn rndr_implemented() -> bool {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let isar0: u64;
        // SAFETY: reads an ID register (allowed at EL1).
        unsafe {
            core::arch::asm!("mrs {}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack))
        };
        isar0 >> 60 != 0
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        false
    }
}

/// One `RNDR` value, or `None` when the instruction reports failure (NZCV = 0b0100:
/// the hardware could not produce one in time).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn rndr() -> Option<u64> {
    let (v, ok): (u64, u64);
    // SAFETY: RNDR (s3_3_c2_c4_0) only writes its register and the flags; called only
    // once `rndr_implemented` said so.
    unsafe {
        core::arch::asm!(
            "mrs {v}, s3_3_c2_c4_0",
            "cset {ok}, ne",
            v = out(reg) v,
            ok = out(reg) ok,
            options(nomem, nostack)
        )
    };
    (ok != 0).then_some(v)
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
fn rndr() -> Option<u64> {
    None
}

/// Fills `out` from `RNDR`; stops early (returns fewer bytes) after 16 failed tries
/// in a row, so the device answers with what it has instead of spinning.
fn fill_rndr(out: &mut [u8]) -> usize {
    let mut done = 0;
    let mut failures = 0;
    while done < out.len() {
        let Some(v) = rndr() else {
            failures += 1;
            if failures == 16 {
                break;
            }
            continue;
        };
        failures = 0;
        let n = (out.len() - done).min(8);
        out[done..done + n].copy_from_slice(&v.to_le_bytes()[..n]);
        done += n;
    }
    done
}

/// xorshift64 (13, 7, 17): each state's 8 bytes little-endian, in order.
pub struct XorShift {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl XorShift {
    /// A stream from `seed` (non-zero).
    pub const fn new(seed: u64) -> Self {
        XorShift {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) -> usize {
        for b in out.iter_mut() {
            if self.used == 8 {
                let mut x = self.state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.state = x;
                self.buf = x.to_le_bytes();
                self.used = 0;
            }
            *b = self.buf[self.used];
            self.used += 1;
        }
        out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_the_documented_stream_whatever_the_chunking() {
        let mut whole = [0u8; 24];
        Entropy::XorShift(XorShift::new(1)).fill(&mut whole);
        let mut x = 1u64;
        let mut expect = Vec::new();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            expect.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!(whole.as_slice(), expect.as_slice());
        let mut parts = XorShift::new(1);
        let mut got = Vec::new();
        for n in [3, 7, 1, 13] {
            let mut b = vec![0u8; n];
            assert_eq!(parts.fill(&mut b), n);
            got.extend(b);
        }
        assert_eq!(got, expect);
    }

    #[test]
    fn no_hardware_source_on_the_host() {
        assert!(Entropy::hardware().is_none());
        assert_eq!(fill_rndr(&mut [0u8; 8]), 0);
    }
}
