//! `virtio_backend_device`: the portable device library (`ferry-virtio-backend`):
//! a blk, console or rng `Device` over 64 KiB of driver memory, driven by a
//! driver that is sometimes well-behaved (feature negotiation, queues laid out
//! and made ready, descriptor chains and avail entries) and sometimes not (any
//! register access of any size, any bytes anywhere, notifies of anything).
//!
//! Input (structured, `arbitrary`): the device type and its options, then a
//! sequence of driver steps.
//!
//! Checked after every step: nothing panics; MagicValue reads "virt"; DRIVER_OK
//! only with FEATURES_OK, FEATURES_OK only with VERSION_1 and offered features;
//! a register write touches driver memory only to start a used ring (QueueReady);
//! serving a queue that is not served (`NotReady`, `InvalidQueue`,
//! `QueueNotReady`) touches nothing, any other error sets DEVICE_NEEDS_RESET
//! with a configuration-change interrupt, and a pass that completes `n` requests
//! publishes used.idx advanced by exactly `n` (and writes no used.idx otherwise).
#![no_main]

use arbitrary::Arbitrary;
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::Console;
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::{self, feature, reg, status};
use ferry_virtio_backend::{
    Device, Error, Interrupt, MAX_QUEUES, MemError, Options, Transport, VirtioDevice, WriteEffect,
};
use libfuzzer_sys::fuzz_target;

/// Driver memory: `MEM` bytes at `BASE`.
const BASE: u64 = 0x4000_0000;
const MEM: usize = 0x1_0000;

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    options: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A register read of any offset and size.
    Read { offset: u16, size: u8 },
    /// A register write of any offset, size and value.
    Write { offset: u16, size: u8, value: u64 },
    /// Reset, ACKNOWLEDGE, DRIVER, `features` (with VERSION_1), FEATURES_OK, DRIVER_OK.
    Negotiate { features: u64, ok: bool },
    /// Queue `queue` with 2^`log` entries, its rings at these offsets, made ready.
    SetUp {
        queue: u8,
        log: u8,
        desc: u16,
        avail: u16,
        used: u16,
    },
    /// Descriptor `index` of queue `queue`'s table (as the driver laid it out).
    Desc {
        queue: u8,
        index: u16,
        addr: u16,
        len: u32,
        flags: u8,
        next: u16,
        wild: Option<u64>,
    },
    /// An avail entry, and avail.idx moved by `publish`.
    Avail { queue: u8, head: u16, publish: u8 },
    /// Any bytes anywhere in driver memory.
    Poke { offset: u16, bytes: Vec<u8> },
    /// QueueNotify, then serving the queue if the device asks.
    Kick { queue: u8 },
    /// `process_queue` of any queue number, notified or not.
    Process { queue: u16 },
    /// `poll`: every notified queue.
    Poll,
    /// Console input.
    Receive { bytes: Vec<u8> },
    /// The device's configuration changed.
    ConfigChanged,
}

/// One transport access, as the harness logs it.
#[derive(Clone, Copy, Debug)]
struct Access {
    addr: u64,
    len: usize,
    write: bool,
    /// The first two bytes written.
    head: u16,
}

/// Driver memory with a log of the device's accesses.
struct Mem {
    bytes: Vec<u8>,
    log: Vec<Access>,
    notifies: Vec<Interrupt>,
}

impl Mem {
    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, MemError> {
        let off = usize::try_from(addr.checked_sub(BASE).ok_or(MemError)?).map_err(|_| MemError)?;
        let end = off.checked_add(len).ok_or(MemError)?;
        (end <= self.bytes.len())
            .then_some(off..end)
            .ok_or(MemError)
    }
}

impl Transport for Mem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.log.push(Access {
            addr,
            len: buf.len(),
            write: false,
            head: 0,
        });
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let head = u16::from_le_bytes([
            data.first().copied().unwrap_or(0),
            data.get(1).copied().unwrap_or(0),
        ]);
        self.log.push(Access {
            addr,
            len: data.len(),
            write: true,
            head,
        });
        let r = self.range(addr, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn notify(&mut self, cause: Interrupt) {
        self.notifies.push(cause);
    }
}

/// The driver's view of a queue it set up.
#[derive(Clone, Copy, Debug, Default)]
struct DQueue {
    size: u16,
    desc: u64,
    avail: u64,
    avail_idx: u16,
}

/// The driver and what the harness expects of the device.
struct Driver<D: VirtioDevice> {
    dev: Device<D, Mem>,
    queues: [DQueue; MAX_QUEUES],
    /// Each queue: its used ring and the used.idx the device will publish next
    /// (`None`: not known, the queue is not ready or a pass failed half-way).
    used: [Option<(u64, u16)>; MAX_QUEUES],
    /// Each queue was ready after the last step.
    was_ready: [bool; MAX_QUEUES],
    receive: Receive<D>,
}

const SIZES: [u8; 4] = [1, 2, 4, 8];

fuzz_target!(|input: Input| {
    let o = input.options;
    let options = Options {
        event_idx: o & 1 != 0,
        indirect_desc: o & 2 != 0,
        ring_reset: o & 4 != 0,
        queue_size_max: 1 << (o >> 4).min(15),
        ..Options::new()
    };
    let steps = &input.steps[..input.steps.len().min(256)];
    match input.kind % 3 {
        0 => {
            let mut disk = vec![0u8; 16 * 512];
            let blk = Blk::new(&mut disk, b"fuzz").read_only(o & 8 != 0);
            run(blk, options, steps, |_, _| {});
        }
        1 => {
            let console = Console::<_, 64>::new(|_: &[u8]| {});
            run(console, options, steps, |d, bytes| {
                d.receive(bytes);
            });
        }
        _ => {
            let mut n = 0u8;
            let source = move |b: &mut [u8]| {
                b.fill({
                    n = n.wrapping_add(1);
                    n
                });
                b.len() / 2 + 1
            };
            run(Rng::new(source), options, steps, |_, _| {})
        }
    }
});

/// Console input: `Device::receive` for a console, nothing for other devices.
type Receive<D> = fn(&mut Device<D, Mem>, &[u8]);

fn run<D: VirtioDevice>(model: D, options: Options, steps: &[Step], receive: Receive<D>) {
    let mem = Mem {
        bytes: vec![0; MEM],
        log: Vec::new(),
        notifies: Vec::new(),
    };
    let mut d = Driver {
        dev: Device::new(model, mem, options),
        queues: [DQueue::default(); MAX_QUEUES],
        used: [None; MAX_QUEUES],
        was_ready: [false; MAX_QUEUES],
        receive,
    };
    for step in steps {
        d.dev.transport_mut().log.clear();
        d.step(step);
        d.check_state();
        d.track_used();
    }
}

impl<D: VirtioDevice> Driver<D> {
    fn read_reg(&self, offset: u32) -> u32 {
        self.dev.mmio_read(offset, 4) as u32
    }

    fn write_reg(&mut self, offset: u32, value: u32) -> WriteEffect {
        self.dev.mmio_write(offset, 4, u64::from(value))
    }

    /// Reads queue `q`'s register at `offset` without changing QueueSel.
    fn queue_reg(&mut self, q: u16, offset: u32) -> u32 {
        let sel = self.read_reg(reg::QUEUE_SEL);
        self.write_reg(reg::QUEUE_SEL, u32::from(q));
        let v = self.read_reg(offset);
        self.write_reg(reg::QUEUE_SEL, sel);
        v
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Read { offset, size } => {
                let _ = self
                    .dev
                    .mmio_read(u32::from(offset), SIZES[usize::from(size % 4)]);
            }
            Step::Write {
                offset,
                size,
                value,
            } => self.write(u32::from(offset), size, value),
            Step::Negotiate { features, ok } => self.negotiate(features, ok),
            Step::SetUp {
                queue,
                log,
                desc,
                avail,
                used,
            } => self.set_up(
                u16::from(queue) % MAX_QUEUES as u16,
                log,
                (desc, avail, used),
            ),
            Step::Desc {
                queue,
                index,
                addr,
                len,
                flags,
                next,
                wild,
            } => {
                let q = self.queues[usize::from(queue) % MAX_QUEUES];
                let index = index % q.size.max(1);
                let addr = wild.unwrap_or(BASE + u64::from(addr));
                let mut b = [0u8; 16];
                b[0..8].copy_from_slice(&addr.to_le_bytes());
                b[8..12].copy_from_slice(&len.to_le_bytes());
                b[12..14].copy_from_slice(&u16::from(flags % 8).to_le_bytes());
                b[14..16].copy_from_slice(&(next % q.size.max(1)).to_le_bytes());
                self.poke(q.desc + 16 * u64::from(index), &b);
            }
            Step::Avail {
                queue,
                head,
                publish,
            } => {
                let i = usize::from(queue) % MAX_QUEUES;
                let q = self.queues[i];
                let slot = q.avail + 4 + 2 * u64::from(q.avail_idx % q.size.max(1));
                self.poke(slot, &(head % q.size.max(1)).to_le_bytes());
                let idx = q.avail_idx.wrapping_add(u16::from(publish % 4));
                self.poke(q.avail + 2, &idx.to_le_bytes());
                self.queues[i].avail_idx = idx;
            }
            Step::Poke { offset, ref bytes } => self.poke(BASE + u64::from(offset), bytes),
            Step::Kick { queue } => {
                if let WriteEffect::QueueNotify(q) =
                    self.write_reg(reg::QUEUE_NOTIFY, u32::from(queue))
                {
                    self.process(q);
                }
            }
            Step::Process { queue } => self.process(queue),
            Step::Poll => {
                let result = self.dev.poll();
                self.check_result(result);
            }
            Step::Receive { ref bytes } => (self.receive)(&mut self.dev, bytes),
            Step::ConfigChanged => self.dev.config_changed(),
        }
    }

    /// A register write; only QueueReady may touch memory: the used ring's header.
    fn write(&mut self, offset: u32, size: u8, value: u64) {
        let _ = self
            .dev
            .mmio_write(offset, SIZES[usize::from(size % 4)], value);
        let log = std::mem::take(&mut self.dev.transport_mut().log);
        let ready = offset == reg::QUEUE_READY && size % 4 == 2;
        for a in log.iter().filter(|a| a.write) {
            assert!(
                ready && a.len == 4,
                "register write {offset:#x} wrote memory: {a:?}"
            );
        }
    }

    fn negotiate(&mut self, features: u64, ok: bool) {
        self.write_reg(reg::STATUS, 0);
        self.write_reg(reg::STATUS, u32::from(status::ACKNOWLEDGE));
        self.write_reg(reg::STATUS, u32::from(status::ACKNOWLEDGE | status::DRIVER));
        let offered = self.dev.device_features();
        let f = if ok {
            features & offered | feature::VERSION_1
        } else {
            features
        };
        for (sel, word) in [(0, f as u32), (1, (f >> 32) as u32)] {
            self.write_reg(reg::DRIVER_FEATURES_SEL, sel);
            self.write_reg(reg::DRIVER_FEATURES, word);
        }
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, u32::from(s));
        self.write_reg(reg::STATUS, u32::from(s | status::DRIVER_OK));
    }

    fn set_up(&mut self, q: u16, log: u8, (desc, avail, used): (u16, u16, u16)) {
        let size = 1u16 << (log % 9);
        let at = |x: u16, align: u64| (BASE + u64::from(x)) & !(align - 1);
        let (desc, avail, used) = (at(desc, 16), at(avail, 2), at(used, 4));
        self.write_reg(reg::QUEUE_SEL, u32::from(q));
        self.write_reg(reg::QUEUE_NUM, u32::from(size));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, avail),
            (reg::QUEUE_DEVICE_LOW, used),
        ] {
            self.write_reg(low, addr as u32);
            self.write_reg(low + 4, (addr >> 32) as u32);
        }
        self.write(reg::QUEUE_READY, 2, 1);
        self.queues[usize::from(q)] = DQueue {
            size,
            desc,
            avail,
            avail_idx: 0,
        };
    }

    /// Writes driver memory (what lies outside the 64 KiB is dropped).
    fn poke(&mut self, addr: u64, bytes: &[u8]) {
        let mem = &mut self.dev.transport_mut().bytes;
        let Some(off) = addr.checked_sub(BASE).and_then(|o| usize::try_from(o).ok()) else {
            return;
        };
        let len = bytes.len().min(MEM.saturating_sub(off));
        if len > 0 {
            mem[off..off + len].copy_from_slice(&bytes[..len]);
        }
    }

    /// Serves queue `q` and checks the outcome.
    fn process(&mut self, q: u16) {
        self.dev.transport_mut().log.clear();
        let before = self.dev.status();
        let result = self.dev.process_queue(q);
        let log = self.dev.transport().log.clone();
        if let Err(Error::NotReady | Error::InvalidQueue(_) | Error::QueueNotReady(_)) = result {
            assert!(log.is_empty(), "{result:?} after touching memory: {log:?}");
            assert_eq!(self.dev.status(), before, "{result:?} changed the status");
            return;
        }
        self.check_result(result.map(|_| 0));
        let i = usize::from(q);
        let Some((used, next)) = self.used.get(i).copied().flatten() else {
            return;
        };
        let idx_writes: Vec<&Access> = log
            .iter()
            .filter(|a| a.write && overlaps_idx(a, used))
            .collect();
        match result {
            Ok(0) => {}
            Ok(n) => {
                let last = idx_writes.last().expect("used.idx published");
                let want = next.wrapping_add(n as u16);
                assert_eq!(
                    (last.addr, last.len, last.head),
                    (used + 2, 2, want),
                    "queue {q}: {n} completed"
                );
                self.used[i] = Some((used, want));
            }
            Err(_) => self.used[i] = None,
        }
    }

    /// An error other than "not served" puts the device in DEVICE_NEEDS_RESET.
    fn check_result(&mut self, result: Result<usize, Error>) {
        match result {
            Ok(_) | Err(Error::NotReady | Error::InvalidQueue(_) | Error::QueueNotReady(_)) => {}
            Err(e) => {
                assert!(self.dev.needs_reset(), "{e:?} without DEVICE_NEEDS_RESET");
                assert_eq!(self.dev.last_error(), Some(e));
                assert_ne!(self.dev.interrupt_status() & spec::INT_CONFIG_CHANGE, 0);
                let notified = self
                    .dev
                    .transport()
                    .notifies
                    .contains(&Interrupt::ConfigChange);
                assert!(notified, "{e:?}: no configuration-change interrupt");
            }
        }
    }

    /// The status state machine's invariants.
    fn check_state(&mut self) {
        assert_eq!(self.read_reg(reg::MAGIC_VALUE), spec::MAGIC);
        let s = self.dev.status();
        assert_eq!(self.read_reg(reg::STATUS), u32::from(s));
        if s & status::DRIVER_OK != 0 {
            assert_ne!(s & status::FEATURES_OK, 0, "DRIVER_OK without FEATURES_OK");
        }
        if s & status::FEATURES_OK != 0 {
            let f = self.dev.driver_features();
            assert_ne!(f & feature::VERSION_1, 0, "FEATURES_OK without VERSION_1");
            assert_eq!(f & !self.dev.device_features(), 0, "features not offered");
        }
        self.dev.transport_mut().notifies.clear();
    }

    /// Which queues are ready and where their used rings are: a queue that
    /// became ready starts at used.idx 0. A used.idx the device published outside
    /// `process` (a poll, console input) is taken as the next one to expect.
    fn track_used(&mut self) {
        let log = std::mem::take(&mut self.dev.transport_mut().log);
        for q in 0..MAX_QUEUES as u16 {
            let i = usize::from(q);
            let ready = self.queue_reg(q, reg::QUEUE_READY) != 0;
            if !ready {
                self.used[i] = None;
            } else if !self.was_ready[i] {
                let low = self.queue_reg(q, reg::QUEUE_DEVICE_LOW);
                let high = self.queue_reg(q, reg::QUEUE_DEVICE_HIGH);
                self.used[i] = Some((u64::from(low) | u64::from(high) << 32, 0));
            } else if let Some((used, _)) = self.used[i] {
                let last = log.iter().rev().find(|a| a.write && overlaps_idx(a, used));
                self.used[i] = match last {
                    None => self.used[i],
                    Some(a) if (a.addr, a.len) == (used + 2, 2) => Some((used, a.head)),
                    Some(_) => None,
                };
            }
            self.was_ready[i] = ready;
        }
    }
}

/// Whether access `a` touches used.idx of the used ring at `used`.
fn overlaps_idx(a: &Access, used: u64) -> bool {
    a.addr < used + 4 && a.addr.saturating_add(a.len as u64) > used + 2
}
