//! The data part of a bounce area: contiguous runs of fixed-size chunks, handed
//! out first-fit and given back in any order (requests complete out of order).

use alloc::vec;
use alloc::vec::Vec;

/// Bytes per chunk.
pub const CHUNK: u32 = 256;

/// A pool of `chunks` chunks; a bit per chunk says it is in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    used: Vec<u64>,
    chunks: u32,
}

/// A run of chunks: the first and how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Index of the first chunk.
    pub first: u32,
    /// Number of chunks (at least 1).
    pub count: u32,
}

impl Run {
    /// Byte offset of the run in the pool.
    pub fn offset(&self) -> u64 {
        u64::from(self.first) * u64::from(CHUNK)
    }
}

impl Pool {
    /// A pool for `bytes` bytes (whole chunks only), all free.
    pub fn new(bytes: u64) -> Pool {
        let chunks = u32::try_from(bytes / u64::from(CHUNK)).unwrap_or(u32::MAX);
        Pool {
            used: vec![0; chunks.div_ceil(64) as usize],
            chunks,
        }
    }

    /// Chunks `bytes` bytes need (a zero-length request still takes one).
    pub fn chunks_for(bytes: u64) -> u64 {
        bytes.div_ceil(u64::from(CHUNK)).max(1)
    }

    /// Whether `bytes` could ever fit (in an empty pool).
    pub fn could_fit(&self, bytes: u64) -> bool {
        Self::chunks_for(bytes) <= u64::from(self.chunks)
    }

    fn is_used(&self, chunk: u32) -> bool {
        self.used[(chunk / 64) as usize] >> (chunk % 64) & 1 == 1
    }

    fn set(&mut self, run: Run, used: bool) {
        for c in run.first..run.first + run.count {
            let word = &mut self.used[(c / 64) as usize];
            if used {
                *word |= 1 << (c % 64);
            } else {
                *word &= !(1 << (c % 64));
            }
        }
    }

    /// Takes the first free run that holds `bytes`; `None` if there is none now.
    pub fn alloc(&mut self, bytes: u64) -> Option<Run> {
        let need = u32::try_from(Self::chunks_for(bytes)).ok()?;
        let mut start = 0;
        let mut len = 0;
        for c in 0..self.chunks {
            if self.is_used(c) {
                len = 0;
                start = c + 1;
                continue;
            }
            len += 1;
            if len == need {
                let run = Run {
                    first: start,
                    count: need,
                };
                self.set(run, true);
                return Some(run);
            }
        }
        None
    }

    /// Gives `run` back.
    pub fn free(&mut self, run: Run) {
        self.set(run, false);
    }

    /// Gives everything back.
    pub fn clear(&mut self) {
        self.used.fill(0);
    }

    /// Chunks in use.
    #[cfg(test)]
    pub fn in_use(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_free_in_any_order() {
        let mut p = Pool::new(u64::from(CHUNK) * 8);
        let a = p.alloc(1).unwrap();
        let b = p.alloc(u64::from(CHUNK) * 2).unwrap();
        let c = p.alloc(u64::from(CHUNK) + 1).unwrap();
        assert_eq!((a.first, b.first, c.first), (0, 1, 3));
        assert_eq!(p.in_use(), 5);
        p.free(b);
        let d = p.alloc(u64::from(CHUNK) * 2).unwrap();
        assert_eq!(d.first, 1, "the hole is reused");
        p.free(a);
        p.free(c);
        p.free(d);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn a_full_pool_says_no_until_something_is_freed() {
        let mut p = Pool::new(u64::from(CHUNK) * 4);
        let a = p.alloc(u64::from(CHUNK) * 3).unwrap();
        assert_eq!(p.alloc(u64::from(CHUNK) * 2), None);
        assert!(p.could_fit(u64::from(CHUNK) * 2));
        p.free(a);
        assert!(p.alloc(u64::from(CHUNK) * 2).is_some());
    }

    #[test]
    fn fragmentation_is_respected() {
        let mut p = Pool::new(u64::from(CHUNK) * 4);
        let runs: Vec<Run> = (0..4).map(|_| p.alloc(1).unwrap()).collect();
        p.free(runs[0]);
        p.free(runs[2]);
        assert_eq!(p.alloc(u64::from(CHUNK) * 2), None, "two holes of one");
        p.free(runs[1]);
        assert_eq!(p.alloc(u64::from(CHUNK) * 3).map(|r| r.first), Some(0));
    }

    #[test]
    fn too_big_never_fits() {
        let p = Pool::new(u64::from(CHUNK) * 4);
        assert!(!p.could_fit(u64::from(CHUNK) * 4 + 1));
        assert!(!p.could_fit(u64::MAX));
        let mut p = p;
        assert_eq!(p.alloc(u64::MAX), None);
    }

    #[test]
    fn sizes_that_are_not_whole_chunks_round() {
        let p = Pool::new(u64::from(CHUNK) * 3 + 100);
        assert!(!p.could_fit(u64::from(CHUNK) * 3 + 1));
        assert_eq!(Pool::chunks_for(0), 1);
        assert_eq!(Pool::chunks_for(u64::from(CHUNK)), 1);
        assert_eq!(Pool::chunks_for(u64::from(CHUNK) + 1), 2);
        let mut empty = Pool::new(0);
        assert_eq!(empty.alloc(1), None);
    }

    #[test]
    fn clear_frees_everything() {
        let mut p = Pool::new(u64::from(CHUNK) * 70);
        for _ in 0..70 {
            p.alloc(1).unwrap();
        }
        assert_eq!(p.in_use(), 70);
        p.clear();
        assert_eq!(p.in_use(), 0);
    }
}
