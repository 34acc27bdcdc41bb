//! The devices the reference backend serves, one [`Dev`] per `device@N`:
//!
//! - blk: `ferry_virtio_backend::blk::Blk` over the RAM disk at the node's `disk`
//!   (Ferry zeroed it and copied the config's `disk-image` to its start);
//! - console: through Ferry ([`ToFerry`]): what the driver transmits appears on
//!   Ferry's console as its own stream, typed input comes from Ferry's console
//!   multiplexer; with the `loopback` test hook ([`Echo`]) what the driver
//!   transmits comes back in its receive queue instead;
//! - rng: `ferry_virtio_backend::rng::Rng` over an [`Entropy`] source;
//! - net: `ferry_virtio_backend::net::Net`, a port of the backend's switch
//!   ([`crate::net`]): what the driver transmits goes into the switch through
//!   the port's [`PortSink`], frames the switch queues for the port are handed
//!   to the driver by [`Dev::net_deliver`];
//! - absent: a device the backend cannot offer (an rng without an entropy source).
//!   It answers as the virtio-mmio spec's placeholder: MagicValue, Version 2,
//!   DeviceID 0 ("no device"), so the frontend's driver skips it (Linux's
//!   virtio-mmio probe returns -ENODEV) instead of timing out on it.

use ferry_partition_rt::println;
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::Console;
use ferry_virtio_backend::net::{self, Net};
use ferry_virtio_backend::rng::Rng;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use ferry_virtio_backend::storage::StorageBlk;
use ferry_virtio_backend::{Device, Options, WriteEffect, spec};

use crate::console::{CONSOLE_RX, ConsoleOut};
pub use crate::console::{ECHO_BUF, Echo, ToFerry};
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
use crate::disk::PhysicalDisk;
use crate::entropy::Entropy;
use crate::net::{Drops, DropsLine, PortSink, drain};
use crate::switch::Switch;
use crate::window::SharedWindow;

/// One served device.
#[allow(clippy::large_enum_variant)] // one per device, built once, never moved
pub enum Dev {
    /// virtio-rng.
    Rng(Device<Rng<Entropy>, SharedWindow>),
    /// virtio-blk over a RAM disk.
    Blk(Device<Blk<'static>, SharedWindow>),
    /// virtio-blk over the physical disk.
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    Storage(Device<StorageBlk<'static, PhysicalDisk>, SharedWindow>),
    /// virtio-console (through Ferry, or the loopback).
    Console(Device<Console<ConsoleOut, CONSOLE_RX>, SharedWindow>),
    /// virtio-net: a port of the switch.
    Net(Device<Net<PortSink>, SharedWindow>),
    /// The placeholder (DeviceID 0).
    Absent,
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr, $absent:expr) => {
        match $self {
            Dev::Rng($d) => $e,
            Dev::Blk($d) => $e,
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            Dev::Storage($d) => $e,
            Dev::Console($d) => $e,
            Dev::Net($d) => $e,
            Dev::Absent => $absent,
        }
    };
}

impl Dev {
    /// A register read.
    pub fn mmio_read(&self, offset: u32, size: u8) -> u64 {
        each!(self, d => d.mmio_read(offset, size), absent_read(offset, size))
    }

    /// A register write. A net device's reset also empties its port
    /// ([`PortSink::reset`]).
    pub fn mmio_write(&mut self, offset: u32, size: u8, value: u64) -> WriteEffect {
        let effect = each!(self, d => d.mmio_write(offset, size, value), WriteEffect::None);
        if let (Dev::Net(d), WriteEffect::Reset) = (&mut *self, effect) {
            d.model_mut().sink_mut().reset();
        }
        effect
    }

    /// Serves queue `q` until nothing is pending (bounded); logs device errors. A
    /// console's loopback echoes what it transmitted later in the same round
    /// ([`Dev::echo`], from the serving loop).
    pub fn serve(&mut self, log: &str, index: usize, q: u16) {
        if let (Dev::Net(d), net::RX_QUEUE) = (&mut *self, q) {
            // The driver posted receive buffers: the port's frames may go on.
            d.model_mut().sink_mut().rx_blocked = false;
        }
        each!(self, d => {
            if d.process_queue(q).is_err()
                && let Some(e) = d.last_error()
            {
                println!("{log}: device {index}: {e}");
            }
            let mut rounds = 0;
            while d.pending_queues() != 0 && rounds < 64 {
                if d.poll().is_err() {
                    if let Some(e) = d.last_error() {
                        println!("{log}: device {index}: {e}");
                    }
                    break;
                }
                rounds += 1;
            }
        }, ());
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        if let Dev::Storage(d) = self {
            depth_reached(log, index, d.model().in_flight());
        }
    }

    /// A loopback console's transmitted bytes not yet echoed (`None`: not a
    /// loopback console, or nothing waiting).
    pub fn console_pending(&mut self) -> Option<&[u8]> {
        let Dev::Console(d) = self else { return None };
        let ConsoleOut::Loopback(sink) = d.model_mut().sink_mut() else {
            return None;
        };
        (sink.len > 0).then_some(&sink.buf[..sink.len])
    }

    /// A console served through Ferry (`None` for anything else).
    pub fn to_ferry(&mut self) -> Option<&mut ToFerry> {
        let Dev::Console(d) = self else { return None };
        match d.model_mut().sink_mut() {
            ConsoleOut::Ferry(f) => Some(f),
            ConsoleOut::Loopback(_) => None,
        }
    }

    /// A console served through Ferry: hands typed input waiting in Ferry to the
    /// driver (never more than its receive FIFO holds), and reports output or
    /// input Ferry refused. Other devices: nothing.
    pub fn console_input(&mut self, log: &str, index: usize) {
        let Dev::Console(d) = self else { return };
        let ConsoleOut::Ferry(f) = d.model_mut().sink_mut() else {
            return;
        };
        if f.refused.0 > 0 {
            let (bytes, status) = core::mem::take(&mut f.refused);
            println!(
                "{log}: device {index}: console: CONSOLE_DEVICE_WRITE = {status}, {bytes} bytes lost"
            );
        }
        if !f.has_input() {
            return;
        }
        // The sink (inside the device) and the device's FIFO are both the
        // device's: take the sink's state out for the round.
        let mut sink = core::mem::replace(f, ToFerry::new(index, crate::console::NO_CALLS));
        let cell = core::cell::RefCell::new(&mut *d);
        let result = sink.pull(
            &mut || CONSOLE_RX - cell.borrow().model().rx_pending(),
            &mut |bytes| cell.borrow_mut().receive(bytes),
        );
        if let ConsoleOut::Ferry(f) = d.model_mut().sink_mut() {
            *f = sink;
        }
        if let Err(status) = result {
            println!("{log}: device {index}: console: CONSOLE_DEVICE_READ = {status}");
        }
    }

    /// A loopback console: pushes what it transmitted back into its receive queue (what the
    /// receive queue cannot take yet waits for the next round); logs the first
    /// rounds, then every 256th. Other devices: nothing.
    pub fn echo(&mut self, log: &str, index: usize) {
        let Dev::Console(d) = self else { return };
        let ConsoleOut::Loopback(sink) = d.model_mut().sink_mut() else {
            return;
        };
        if sink.got > 0 {
            sink.rounds += 1;
            if sink.rounds <= 8 || sink.rounds.is_multiple_of(256) {
                println!("{log}: device {index}: console got {} bytes", sink.got);
            }
            sink.got = 0;
        }
        if sink.dropped > 0 {
            println!(
                "{log}: device {index}: console dropped {} bytes",
                sink.dropped
            );
            sink.dropped = 0;
        }
        if sink.len == 0 {
            return;
        }
        let mut pending = [0u8; ECHO_BUF];
        let len = sink.len;
        pending[..len].copy_from_slice(&sink.buf[..len]);
        let n = d.receive(&pending[..len]);
        if let ConsoleOut::Loopback(sink) = d.model_mut().sink_mut() {
            sink.buf.copy_within(n..len, 0);
            sink.len = len - n;
        }
    }

    /// A physical disk: acknowledges its interrupt (it is level-sensitive: before
    /// the GIC EOI). Other devices: nothing.
    pub fn storage_ack(&mut self) {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        if let Dev::Storage(d) = self {
            d.model_mut().storage_mut().ack_interrupt();
        }
    }

    /// A physical disk's device: finishes every request the disk answered (logging
    /// its errors), then serves the queue again if a request waited for a buffer.
    /// Other devices: nothing.
    pub fn storage_answered(&mut self, log: &str, index: usize) {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        if let Dev::Storage(d) = self {
            while let Some(done) = d.model_mut().next_done() {
                if done.status != ferry_virtio_backend::blk::S_OK {
                    storage_error(log, index, &done);
                }
                if let Err(e) = d.complete(0, done.head) {
                    println!(
                        "{log}: device {index}: completing request {}: {e}",
                        done.head
                    );
                }
            }
            if let Some(r) = d.model_mut().storage_mut().take_report() {
                println!(
                    "{log}: device {index}: physical disk: {} KiB in {} requests, busy (a request outstanding) {} us of virtual time",
                    r.bytes / 1024,
                    r.requests,
                    ferry_partition_rt::time::ticks_to_us(r.busy_ticks)
                );
            }
            if d.model().waiting() {
                self.serve(log, index, 0);
            }
        }
        let _ = (log, index);
    }

    /// A net device: hands it the frames `sw` queued for its port, until none is
    /// left or it has no receive buffer (the port then waits for the driver's
    /// notify). Other devices: nothing.
    pub fn net_deliver(&mut self, sw: &mut Switch) {
        let Dev::Net(d) = self else { return };
        let sink = d.model().sink();
        if sink.rx_blocked || sw.queued(sink.port) == 0 {
            return;
        }
        let port = sink.port;
        let r = drain(sw, port, |frame| d.receive(frame));
        let sink = d.model_mut().sink_mut();
        sink.rx_blocked = r.blocked;
        sink.undelivered += r.dropped as u64;
    }

    /// A net device at the end of a serving round: a new transmit budget;
    /// returns whether transmit requests wait for it ([`Dev::net_resume`] in the
    /// next round). A device that failed meanwhile has nothing waiting (its
    /// requests go with its reset). Other devices: false.
    pub fn net_round_end(&mut self) -> bool {
        let Dev::Net(d) = self else { return false };
        d.model_mut().sink_mut().budget = crate::net::TX_BUDGET;
        d.is_live() && d.model().tx_waiting()
    }

    /// A net device whose transmit requests waited for a new budget: serves
    /// them. Other devices: nothing.
    pub fn net_resume(&mut self, log: &str, index: usize) {
        if let Dev::Net(d) = self
            && d.is_live()
            && d.model().tx_waiting()
        {
            self.serve(log, index, net::TX_QUEUE);
        }
    }

    /// A net device: its port's drops, if a log line is due at `now_ms`
    /// ([`crate::net::DropLog`]). Other devices: `None`.
    pub fn net_drops(&mut self, sw: &Switch, now_ms: u64) -> Option<DropsLine> {
        let Dev::Net(d) = self else { return None };
        let port = d.model().sink().port;
        let counters = *d.model().counters();
        let sink = d.model_mut().sink_mut();
        let drops = Drops::new(
            &sw.stats(port),
            Some(&counters),
            sink.undelivered + sink.lost,
        );
        sink.log
            .due(drops.total(), now_ms)
            .then_some(DropsLine(port, drops))
    }

    /// The device's transport (`None` for the placeholder).
    pub fn window(&mut self) -> Option<&mut SharedWindow> {
        each!(self, d => Some(d.transport_mut()), None)
    }

    /// Takes the interrupt causes raised since the last call.
    pub fn take_causes(&mut self) -> u64 {
        self.window().map_or(0, SharedWindow::take_causes)
    }

    /// A name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Dev::Rng(_) => "rng",
            Dev::Blk(_) => "blk",
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            Dev::Storage(_) => "blk (physical disk)",
            Dev::Console(d) => match d.model().sink() {
                ConsoleOut::Ferry(_) => "console",
                ConsoleOut::Loopback(_) => "console (loopback)",
            },
            Dev::Net(_) => "net",
            Dev::Absent => "absent",
        }
    }
}

/// The most requests a physical disk had in flight so far.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
static MOST_IN_FLIGHT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Logs each new high of requests in flight at the physical disk that is a power
/// of two (how deep the queue really gets).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn depth_reached(log: &str, index: usize, n: usize) {
    use core::sync::atomic::Ordering;
    let most = MOST_IN_FLIGHT.load(Ordering::Relaxed);
    if n > most {
        MOST_IN_FLIGHT.store(n, Ordering::Relaxed);
        if n.is_power_of_two() && n > 1 {
            println!("{log}: device {index}: {n} requests in flight at the physical disk");
        }
    }
}

/// Storage errors logged so far (the first [`STORAGE_ERRORS_LOGGED`], then every
/// 1024th with the count: a failing disk does not flood the console).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
static STORAGE_ERRORS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// Storage errors logged one by one.
pub const STORAGE_ERRORS_LOGGED: u32 = 16;

/// Logs a request the physical disk failed (the frontend gets VIRTIO_BLK_S_IOERR).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn storage_error(log: &str, index: usize, done: &ferry_virtio_backend::storage::Done) {
    use ferry_virtio_backend::blk::BlkOp;
    let n = STORAGE_ERRORS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
    if n > STORAGE_ERRORS_LOGGED && !n.is_multiple_of(1024) {
        return;
    }
    let (what, at) = match done.op {
        BlkOp::Read { sector, len } => ("read", Some((sector, len / 512))),
        BlkOp::Write { sector, len } => ("write", Some((sector, len / 512))),
        BlkOp::Flush => ("flush", None),
        BlkOp::GetId { .. } => ("get-id", None),
    };
    match at {
        Some((sector, count)) => println!(
            "{log}: device {index}: storage error: {what} of {count} sectors at sector {sector} failed (status {}): VIRTIO_BLK_S_IOERR to the frontend ({n} so far)",
            done.status
        ),
        None => println!(
            "{log}: device {index}: storage error: {what} failed (status {}): VIRTIO_BLK_S_IOERR to the frontend ({n} so far)",
            done.status
        ),
    }
}

/// The placeholder's registers: MagicValue, Version 2, DeviceID 0, VendorID;
/// everything else reads 0.
fn absent_read(offset: u32, size: u8) -> u64 {
    if size != 4 {
        return 0;
    }
    u64::from(match offset {
        spec::reg::MAGIC_VALUE => spec::MAGIC,
        spec::reg::VERSION => spec::MMIO_VERSION,
        spec::reg::VENDOR_ID => Options::new().vendor_id,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_says_no_device() {
        let mut d = Dev::Absent;
        assert_eq!(d.mmio_read(0x000, 4), 0x7472_6976);
        assert_eq!(d.mmio_read(0x004, 4), 2);
        assert_eq!(d.mmio_read(0x008, 4), 0, "DeviceID 0: no device");
        assert_eq!(d.mmio_read(0x070, 4), 0);
        assert_eq!(d.mmio_read(0x000, 1), 0);
        assert!(matches!(d.mmio_write(0x070, 4, 0xf), WriteEffect::None));
        assert_eq!(d.take_causes(), 0);
        assert_eq!(d.kind(), "absent");
    }
}
