//! virtio-console (§5.3): one port, no multiport; bytes out go to an embedder
//! sink, bytes in are pushed by the embedder.

use crate::device::{Completion, VirtioDevice, config_bytes};
use crate::spec::device_id;
use crate::{Device, Error, Request, Transport};

/// receiveq0: buffers the device fills with input.
pub const RX_QUEUE: u16 = 0;
/// transmitq0: buffers the driver sends.
pub const TX_QUEUE: u16 = 1;

/// VIRTIO_CONSOLE_F_EMERG_WRITE: the `emerg_wr` configuration field.
pub const F_EMERG_WRITE: u64 = 1 << 2;

/// Where transmitted bytes go (a UART, a log, a socket...).
///
/// Implemented for every `FnMut(&[u8])`.
pub trait ConsoleSink {
    /// Takes bytes the driver transmitted, in order.
    fn transmit(&mut self, bytes: &[u8]);
}

impl<F: FnMut(&[u8])> ConsoleSink for F {
    fn transmit(&mut self, bytes: &[u8]) {
        self(bytes)
    }
}

/// A single-port virtio console with an `RX`-byte input FIFO.
///
/// Transmit buffers (readable) go to the sink in chunks; writable descriptors in a
/// transmit chain are ignored. Receive buffers must be writable (a chain without a
/// writable byte is a device error) and are filled with as much pending input as
/// fits; with no input pending they wait in the ring ([`Completion::Defer`]).
/// Writing the `emerg_wr` configuration field sends one byte to the sink.
pub struct Console<S, const RX: usize = 256> {
    sink: S,
    fifo: [u8; RX],
    head: usize,
    len: usize,
}

impl<S: ConsoleSink, const RX: usize> Console<S, RX> {
    /// A console transmitting into `sink`.
    pub const fn new(sink: S) -> Self {
        Console {
            sink,
            fifo: [0; RX],
            head: 0,
            len: 0,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Queues input for the driver; returns how many bytes fit in the FIFO. Then
    /// serve [`RX_QUEUE`] (or use [`Device::receive`], which does both).
    pub fn push_rx(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(RX - self.len);
        for &b in &bytes[..n] {
            self.fifo[(self.head + self.len) % RX] = b;
            self.len += 1;
        }
        n
    }

    /// Input bytes not yet given to the driver.
    pub fn rx_pending(&self) -> usize {
        self.len
    }

    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for o in &mut out[..n] {
            *o = self.fifo[self.head];
            self.head = (self.head + 1) % RX;
            self.len -= 1;
        }
        n
    }

    fn receive(&mut self, req: &mut Request<'_>) -> Result<Completion, Error> {
        if req.writable_len() == 0 {
            return Err(Error::BufferTooShort);
        }
        if self.len == 0 {
            return Ok(Completion::Defer);
        }
        let mut chunk = [0u8; 64];
        while req.remaining_write() > 0 && self.len > 0 {
            let want = (req.remaining_write() as usize).min(chunk.len());
            // Peek first so that a failed write loses no input.
            let n = self.peek(&mut chunk[..want]);
            req.write_all(&chunk[..n])?;
            self.pop_into(&mut chunk[..n]);
        }
        Ok(Completion::Done)
    }

    fn peek(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.fifo[(self.head + i) % RX];
        }
        n
    }

    fn transmit(&mut self, req: &mut Request<'_>) -> Result<Completion, Error> {
        let mut chunk = [0u8; 64];
        loop {
            let n = req.read(&mut chunk)?;
            if n == 0 {
                return Ok(Completion::Done);
            }
            self.sink.transmit(&chunk[..n]);
        }
    }
}

impl<S: ConsoleSink, const RX: usize> VirtioDevice for Console<S, RX> {
    fn device_id(&self) -> u32 {
        device_id::CONSOLE
    }

    fn num_queues(&self) -> u16 {
        2
    }

    fn features(&self) -> u64 {
        F_EMERG_WRITE
    }

    /// `struct virtio_console_config`: cols, rows (u16, 0: VIRTIO_CONSOLE_F_SIZE is
    /// not offered), max_nr_ports (u32, 1), emerg_wr (u32, reads 0).
    fn config_read(&self, offset: u32, buf: &mut [u8]) {
        let mut c = [0u8; 12];
        c[4..8].copy_from_slice(&1u32.to_le_bytes());
        config_bytes(&c, offset, buf);
    }

    fn config_write(&mut self, offset: u32, data: &[u8]) {
        // emerg_wr: one character.
        if let (8, Some(&b)) = (offset, data.first()) {
            self.sink.transmit(&[b]);
        }
    }

    fn reset(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    fn process(&mut self, queue: u16, req: &mut Request<'_>) -> Result<Completion, Error> {
        match queue {
            RX_QUEUE => self.receive(req),
            _ => self.transmit(req),
        }
    }
}

impl<S: ConsoleSink, const RX: usize, T: Transport> Device<Console<S, RX>, T> {
    /// Pushes input to the driver: queues what fits in the FIFO and, if the device
    /// is live, fills the driver's receive buffers with it. Returns how many bytes
    /// were accepted (the rest is the caller's to retry).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let n = self.model_mut().push_rx(bytes);
        if self.is_live() {
            // Errors are recorded in the device (DEVICE_NEEDS_RESET).
            let _ = self.process_queue(RX_QUEUE);
        }
        n
    }
}
