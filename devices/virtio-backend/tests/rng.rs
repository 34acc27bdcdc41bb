//! virtio-rng through the mock driver.

mod common;

use common::*;
use ferry_virtio_backend::rng::{EntropySource, Rng};
use ferry_virtio_backend::{Error, Options};

/// A counting source that can run dry.
struct Counter {
    next: u8,
    budget: usize,
}

impl EntropySource for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.budget);
        for b in &mut buf[..n] {
            *b = self.next;
            self.next = self.next.wrapping_add(1);
        }
        self.budget -= n;
        n
    }
}

fn rng(budget: usize) -> Driver<Rng<Counter>> {
    Driver::ready(Rng::new(Counter { next: 0, budget }), Options::new(), 1, 8)
}

#[test]
fn fills_requests() {
    let mut d = rng(usize::MAX);
    let a = d.buf(100);
    let b = d.buf(64);
    let c = d.buf(1);
    let ha = d.add_chain(0, &[(a, 100, true)]);
    d.push_avail(0, ha);
    let hb = d.add_chain(0, &[(b, 30, true), (b + 30, 34, true)]);
    d.push_avail(0, hb);
    let hc = d.add_chain(0, &[(c, 1, true)]);
    d.push_avail(0, hc);
    assert_eq!(d.kick(0), Ok(3));
    assert_eq!(
        d.take_used(0),
        vec![
            (u32::from(ha), 100),
            (u32::from(hb), 64),
            (u32::from(hc), 1)
        ]
    );
    let want: Vec<u8> = (0..165u32).map(|i| i as u8).collect();
    let mut got = d.peek(a, 100);
    got.extend(d.peek(b, 64));
    got.extend(d.peek(c, 1));
    assert_eq!(got, want);
}

#[test]
fn partial_then_dry_then_refilled() {
    let mut d = rng(40);
    let a = d.buf(100);
    let (h, r) = d.submit(0, &[(a, 100, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(h), 40)]);
    // Dry: the request waits.
    let b = d.buf(16);
    let (hb, r) = d.submit(0, &[(b, 16, true)]);
    assert_eq!(r, Ok(0));
    assert!(d.take_used(0).is_empty());
    d.dev.model_mut().source_mut().budget = 1000;
    assert_eq!(d.dev.process_queue(0), Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(hb), 16)]);
    assert!(!d.needs_reset());
}

#[test]
fn read_only_request_needs_reset() {
    let mut d = rng(usize::MAX);
    let a = d.buf(16);
    let (_, r) = d.submit(0, &[(a, 16, false)]);
    assert_eq!(r, Err(Error::BufferTooShort));
    assert!(d.needs_reset());
    assert_eq!(d.peek(a, 16), [0; 16]);
}

#[test]
fn readable_prefix_is_ignored() {
    let mut d = rng(usize::MAX);
    let a = d.buf_with(&[7; 8]);
    let b = d.buf(8);
    let (_, r) = d.submit(0, &[(a, 8, false), (b, 8, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.peek(a, 8), [7; 8]);
    assert_eq!(d.peek(b, 8), (0..8).collect::<Vec<u8>>());
}

#[test]
fn closure_source_that_overclaims_is_clamped() {
    let src = |buf: &mut [u8]| {
        buf.fill(0x42);
        buf.len() + 1000
    };
    let mut d = Driver::ready(Rng::new(src), Options::new(), 1, 8);
    let a = d.buf(70);
    let (h, r) = d.submit(0, &[(a, 70, true)]);
    assert_eq!(r, Ok(1));
    assert_eq!(d.take_used(0), vec![(u32::from(h), 70)]);
    assert_eq!(d.peek(a, 70), vec![0x42; 70]);
}
