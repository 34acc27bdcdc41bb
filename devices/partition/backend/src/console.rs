//! Where a virtio console's bytes go and come from ([`ConsoleOut`], the sink of
//! `ferry_virtio_backend::console::Console`):
//!
//! - through Ferry (the normal case): what the frontend transmits goes out with
//!   `CONSOLE_DEVICE_WRITE` and appears on Ferry's console as the console's own
//!   stream (`[linux:hvc0] ...`); typed input that Ferry's console multiplexer
//!   focused on it is announced by the request page's `console_input` bit and
//!   taken with `CONSOLE_DEVICE_READ` ([`ToFerry::pull`]), never more than the
//!   device's receive FIFO holds (a read's leftovers wait here);
//! - the `loopback` test hook ([`Echo`]): what the frontend transmits comes back
//!   in its receive queue, and nothing goes through Ferry.
//!
//! The hypercalls are function pointers ([`FerryCalls`]) so the logic is
//! host-tested.

use ferry_abi::hypercall::CONSOLE_WRITE_MAX;
use ferry_virtio_backend::console::ConsoleSink;

/// Bytes the receive FIFO of every console holds (the device library's `RX`).
pub const CONSOLE_RX: usize = 256;

/// Bytes a console's loopback holds at most (more in one round are dropped and
/// counted).
pub const ECHO_BUF: usize = 512;

/// The loopback: a buffer of what the driver transmitted, echoed later in the
/// same round (`Dev::echo`).
pub struct Echo {
    pub(crate) buf: [u8; ECHO_BUF],
    pub(crate) len: usize,
    /// Bytes transmitted since the last log line.
    pub(crate) got: usize,
    /// Transmit rounds seen.
    pub(crate) rounds: u32,
    pub(crate) dropped: usize,
}

impl Echo {
    /// Empty.
    pub const fn new() -> Self {
        Echo {
            buf: [0; ECHO_BUF],
            len: 0,
            got: 0,
            rounds: 0,
            dropped: 0,
        }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Echo::new()
    }
}

impl ConsoleSink for Echo {
    fn transmit(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(ECHO_BUF - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self.got += bytes.len();
        self.dropped += bytes.len() - n;
    }
}

/// What Ferry answers `CONSOLE_DEVICE_READ` with: up to [`CONSOLE_WRITE_MAX`]
/// bytes (count, bytes), or a negative status.
pub type ReadResult = Result<(usize, [u8; CONSOLE_WRITE_MAX]), i64>;

/// The two hypercalls, as plain functions of the device number.
#[derive(Clone, Copy)]
pub struct FerryCalls {
    /// `CONSOLE_DEVICE_WRITE(device, bytes)` (at most [`CONSOLE_WRITE_MAX`]
    /// bytes): bytes taken, or a negative status.
    pub write: fn(usize, &[u8]) -> i64,
    /// `CONSOLE_DEVICE_READ(device)`.
    pub read: fn(usize) -> ReadResult,
}

fn refuse_write(_: usize, _: &[u8]) -> i64 {
    -1
}

fn refuse_read(_: usize) -> ReadResult {
    Err(-1)
}

/// Calls that refuse everything (NOT_SUPPORTED): a placeholder.
pub const NO_CALLS: FerryCalls = FerryCalls {
    write: refuse_write,
    read: refuse_read,
};

/// A console served through Ferry.
pub struct ToFerry {
    /// The device number (among this backend's devices).
    pub index: usize,
    calls: FerryCalls,
    /// Ferry said input waits (`console_input`) and a read has not yet come back
    /// empty.
    pending: bool,
    /// Bytes read from Ferry the receive FIFO had no room for yet.
    held: [u8; CONSOLE_WRITE_MAX],
    held_len: usize,
    /// Bytes Ferry refused since the last report, and the status it gave.
    pub(crate) refused: (usize, i64),
}

impl ToFerry {
    /// Console device `index`, reaching Ferry through `calls`.
    pub const fn new(index: usize, calls: FerryCalls) -> Self {
        ToFerry {
            index,
            calls,
            pending: false,
            held: [0; CONSOLE_WRITE_MAX],
            held_len: 0,
            refused: (0, 0),
        }
    }

    /// Ferry's `console_input` bit for this device was set: input waits.
    pub fn input_waiting(&mut self) {
        self.pending = true;
    }

    /// Whether input waits in Ferry or here.
    pub fn has_input(&self) -> bool {
        self.pending || self.held_len > 0
    }

    /// Hands typed input to `receive` (the device's receive FIFO: it returns how
    /// many bytes it took, at most `room` of them), reading from Ferry only while
    /// nothing is held here and `room()` is not 0, until Ferry has no more. A
    /// refused read ends the input (its status is returned).
    pub fn pull(
        &mut self,
        room: &mut dyn FnMut() -> usize,
        receive: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Result<(), i64> {
        loop {
            if self.held_len > 0 {
                let n = receive(&self.held[..self.held_len]).min(self.held_len);
                self.held.copy_within(n..self.held_len, 0);
                self.held_len -= n;
                if self.held_len > 0 {
                    return Ok(());
                }
            }
            if !self.pending || room() == 0 {
                return Ok(());
            }
            let (n, bytes) = match (self.calls.read)(self.index) {
                Ok((0, _)) => {
                    self.pending = false;
                    return Ok(());
                }
                Ok((n, bytes)) => (n.min(CONSOLE_WRITE_MAX), bytes),
                Err(status) => {
                    self.pending = false;
                    return Err(status);
                }
            };
            self.held[..n].copy_from_slice(&bytes[..n]);
            self.held_len = n;
        }
    }
}

impl ConsoleSink for ToFerry {
    fn transmit(&mut self, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(CONSOLE_WRITE_MAX).enumerate() {
            let taken = (self.calls.write)(self.index, chunk);
            if taken != chunk.len() as i64 {
                // Refused (or cut short: Ferry takes a whole valid chunk).
                let took = taken.clamp(0, chunk.len() as i64) as usize;
                let lost = bytes.len() - i * CONSOLE_WRITE_MAX - took;
                self.refused = (self.refused.0 + lost, taken.min(0));
                return;
            }
        }
    }
}

/// Where a console's transmitted bytes go.
#[allow(clippy::large_enum_variant)] // one per console, built once, never moved
pub enum ConsoleOut {
    /// Ferry's console, with input from Ferry's multiplexer.
    Ferry(ToFerry),
    /// The `loopback` test hook.
    Loopback(Echo),
}

impl ConsoleSink for ConsoleOut {
    fn transmit(&mut self, bytes: &[u8]) {
        match self {
            ConsoleOut::Ferry(f) => f.transmit(bytes),
            ConsoleOut::Loopback(e) => e.transmit(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static WRITTEN: RefCell<Vec<(usize, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
        static TYPED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        static READS: RefCell<usize> = const { RefCell::new(0) };
    }

    fn write_ok(index: usize, bytes: &[u8]) -> i64 {
        WRITTEN.with(|w| w.borrow_mut().push((index, bytes.to_vec())));
        bytes.len() as i64
    }

    fn write_refused(_: usize, _: &[u8]) -> i64 {
        -2
    }

    /// Ferry holding `TYPED`: up to 24 bytes a read.
    fn read_typed(_: usize) -> ReadResult {
        READS.with(|r| *r.borrow_mut() += 1);
        TYPED.with(|t| {
            let mut t = t.borrow_mut();
            let n = t.len().min(CONSOLE_WRITE_MAX);
            let mut out = [0; CONSOLE_WRITE_MAX];
            out[..n].copy_from_slice(&t[..n]);
            t.drain(..n);
            Ok((n, out))
        })
    }

    fn read_refused(_: usize) -> ReadResult {
        Err(-2)
    }

    fn calls() -> FerryCalls {
        FerryCalls {
            write: write_ok,
            read: read_typed,
        }
    }

    #[test]
    fn output_goes_to_ferry_in_chunks_of_24() {
        WRITTEN.with(|w| w.borrow_mut().clear());
        let mut out = ConsoleOut::Ferry(ToFerry::new(3, calls()));
        let text: Vec<u8> = (0..60u8).collect();
        out.transmit(&text);
        let written = WRITTEN.with(|w| w.borrow().clone());
        let lens: Vec<(usize, usize)> = written.iter().map(|(i, b)| (*i, b.len())).collect();
        assert_eq!(lens, [(3, 24), (3, 24), (3, 12)]);
        let all: Vec<u8> = written.into_iter().flat_map(|(_, b)| b).collect();
        assert_eq!(all, text);
    }

    #[test]
    fn refused_output_is_counted_not_retried() {
        let mut f = ToFerry::new(
            0,
            FerryCalls {
                write: write_refused,
                read: read_typed,
            },
        );
        f.transmit(b"0123456789012345678901234567890");
        assert_eq!(f.refused, (31, -2));
    }

    #[test]
    fn the_loopback_echoes_locally() {
        WRITTEN.with(|w| w.borrow_mut().clear());
        let mut out = ConsoleOut::Loopback(Echo::new());
        out.transmit(b"ping");
        let ConsoleOut::Loopback(e) = &out else {
            unreachable!()
        };
        assert_eq!(&e.buf[..e.len], b"ping");
        assert!(WRITTEN.with(|w| w.borrow().is_empty()), "nothing to Ferry");
    }

    /// A receive FIFO of `cap` bytes.
    struct Fifo {
        cap: usize,
        got: Vec<u8>,
    }

    impl Fifo {
        fn room(&self) -> usize {
            self.cap - self.got.len()
        }

        fn take(&mut self, b: &[u8]) -> usize {
            let n = b.len().min(self.room());
            self.got.extend_from_slice(&b[..n]);
            n
        }
    }

    fn pull(f: &mut ToFerry, fifo: &RefCell<Fifo>) -> Result<(), i64> {
        f.pull(&mut || fifo.borrow().room(), &mut |b| {
            fifo.borrow_mut().take(b)
        })
    }

    #[test]
    fn input_is_read_until_ferry_has_no_more() {
        TYPED.with(|t| *t.borrow_mut() = (0..50u8).collect());
        READS.with(|r| *r.borrow_mut() = 0);
        let mut f = ToFerry::new(0, calls());
        let fifo = RefCell::new(Fifo {
            cap: CONSOLE_RX,
            got: vec![],
        });
        assert_eq!(pull(&mut f, &fifo), Ok(()));
        assert!(
            fifo.borrow().got.is_empty(),
            "no console_input bit: no read"
        );
        assert_eq!(READS.with(|r| *r.borrow()), 0);
        f.input_waiting();
        assert_eq!(pull(&mut f, &fifo), Ok(()));
        assert_eq!(fifo.borrow().got, (0..50u8).collect::<Vec<_>>());
        assert_eq!(READS.with(|r| *r.borrow()), 4, "24 + 24 + 2, then 0");
        assert!(!f.has_input());
    }

    #[test]
    fn never_more_than_the_fifo_holds_and_leftovers_are_kept() {
        TYPED.with(|t| *t.borrow_mut() = (0..40u8).collect());
        let mut f = ToFerry::new(0, calls());
        let fifo = RefCell::new(Fifo {
            cap: 10,
            got: vec![],
        });
        f.input_waiting();
        pull(&mut f, &fifo).unwrap();
        assert_eq!(fifo.borrow().got, (0..10u8).collect::<Vec<_>>());
        assert!(f.has_input(), "14 held, 16 still in Ferry");
        assert_eq!(TYPED.with(|t| t.borrow().len()), 16, "one read only");
        // The driver drains the FIFO; the rest follows in order.
        for _ in 0..4 {
            fifo.borrow_mut().cap += 10;
            pull(&mut f, &fifo).unwrap();
        }
        assert_eq!(fifo.borrow().got, (0..40u8).collect::<Vec<_>>());
        assert!(!f.has_input());
    }

    #[test]
    fn a_refused_read_ends_the_input() {
        let mut f = ToFerry::new(
            5,
            FerryCalls {
                write: write_ok,
                read: read_refused,
            },
        );
        let fifo = RefCell::new(Fifo {
            cap: 10,
            got: vec![],
        });
        f.input_waiting();
        assert_eq!(pull(&mut f, &fifo), Err(-2));
        assert!(!f.has_input());
        assert_eq!(pull(&mut f, &fifo), Ok(()), "not asked again");
    }
}
