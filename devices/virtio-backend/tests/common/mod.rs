//! A mock virtio-mmio *driver* over fake guest memory: lays out descriptor tables
//! and rings, negotiates features, sets queues up, submits requests and reads the
//! used ring, all through the device's register interface and `Transport`.
#![allow(dead_code, missing_docs)]

use ferry_virtio_backend::spec::{desc_flags, feature, reg, status};
use ferry_virtio_backend::{
    Device, Error, Interrupt, MemError, Options, Transport, VirtioDevice, WriteEffect,
};

/// Guest-physical base of the fake memory.
pub const BASE: u64 = 0x4000_0000;
/// Size of the fake memory.
pub const MEM_SIZE: usize = 1 << 20;

/// Fake driver memory: a bounds-checked window at `BASE`.
pub struct MockMem {
    pub mem: Vec<u8>,
    pub notifies: Vec<Interrupt>,
    pub reads: usize,
    /// Addresses `[start, end)` the device may read but not write.
    pub read_only: Option<(u64, u64)>,
}

impl MockMem {
    pub fn new() -> Self {
        MockMem {
            mem: vec![0; MEM_SIZE],
            notifies: Vec::new(),
            reads: 0,
            read_only: None,
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, MemError> {
        let off = addr.checked_sub(BASE).ok_or(MemError)?;
        let off = usize::try_from(off).map_err(|_| MemError)?;
        let end = off.checked_add(len).ok_or(MemError)?;
        if end > self.mem.len() {
            return Err(MemError);
        }
        Ok(off..end)
    }
}

impl Transport for MockMem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads += 1;
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.mem[r]);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        if let Some((s, e)) = self.read_only
            && addr < e
            && addr.saturating_add(data.len() as u64) > s
        {
            return Err(MemError);
        }
        let r = self.range(addr, data.len())?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }
    fn notify(&mut self, cause: Interrupt) {
        self.notifies.push(cause);
    }
}

/// The driver's view of one split queue.
#[derive(Clone, Debug, Default)]
pub struct DQueue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_desc: u16,
    pub avail_idx: u16,
    pub last_used: u16,
}

/// A buffer to submit: (address, length, device-writable).
pub type Buf = (u64, u32, bool);

pub struct Driver<D: VirtioDevice> {
    pub dev: Device<D, MockMem>,
    pub queues: Vec<DQueue>,
    /// Bump allocator for rings and buffers.
    next: u64,
}

impl<D: VirtioDevice> Driver<D> {
    pub fn new(model: D, options: Options) -> Self {
        Driver {
            dev: Device::new(model, MockMem::new(), options),
            queues: Vec::new(),
            next: BASE + 0x1000,
        }
    }

    /// A driver that negotiated every offered feature, set up `n` queues of
    /// `size` and set DRIVER_OK.
    pub fn ready(model: D, options: Options, n: u16, size: u16) -> Self {
        let mut d = Self::new(model, options);
        let f = d.device_features();
        assert!(d.negotiate(f), "FEATURES_OK refused");
        for q in 0..n {
            d.setup_queue(q, size);
        }
        d.driver_ok();
        d
    }

    pub fn read_reg(&self, off: u32) -> u32 {
        self.dev.mmio_read(off, 4) as u32
    }

    pub fn write_reg(&mut self, off: u32, v: u32) -> WriteEffect {
        self.dev.mmio_write(off, 4, u64::from(v))
    }

    pub fn status(&self) -> u8 {
        self.read_reg(reg::STATUS) as u8
    }

    pub fn set_status(&mut self, s: u8) {
        self.write_reg(reg::STATUS, u32::from(s));
    }

    pub fn device_features(&mut self) -> u64 {
        self.write_reg(reg::DEVICE_FEATURES_SEL, 0);
        let lo = self.read_reg(reg::DEVICE_FEATURES);
        self.write_reg(reg::DEVICE_FEATURES_SEL, 1);
        let hi = self.read_reg(reg::DEVICE_FEATURES);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    pub fn write_features(&mut self, f: u64) {
        self.write_reg(reg::DRIVER_FEATURES_SEL, 0);
        self.write_reg(reg::DRIVER_FEATURES, f as u32);
        self.write_reg(reg::DRIVER_FEATURES_SEL, 1);
        self.write_reg(reg::DRIVER_FEATURES, (f >> 32) as u32);
    }

    /// Reset, ACKNOWLEDGE, DRIVER, write `f`, FEATURES_OK; whether the device kept it.
    pub fn negotiate(&mut self, f: u64) -> bool {
        self.set_status(0);
        self.set_status(status::ACKNOWLEDGE);
        self.set_status(status::ACKNOWLEDGE | status::DRIVER);
        self.write_features(f);
        self.set_status(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        self.status() & status::FEATURES_OK != 0
    }

    pub fn driver_ok(&mut self) {
        let s = self.status();
        self.set_status(s | status::DRIVER_OK);
    }

    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let a = self.next.div_ceil(align) * align;
        self.next = a + len;
        assert!(self.next <= BASE + MEM_SIZE as u64, "mock memory exhausted");
        a
    }

    /// Lays out queue `q` with `size` entries and makes it ready.
    pub fn setup_queue(&mut self, q: u16, size: u16) {
        let n = u64::from(size);
        let desc = self.alloc(16 * n, 16);
        let avail = self.alloc(6 + 2 * n, 2);
        let used = self.alloc(6 + 8 * n, 4);
        self.setup_queue_at(q, size, desc, avail, used);
        assert_eq!(self.read_reg(reg::QUEUE_READY), 1, "queue {q} not ready");
    }

    /// Writes the queue registers for the given layout and QueueReady = 1.
    pub fn setup_queue_at(&mut self, q: u16, size: u16, desc: u64, avail: u64, used: u64) {
        self.write_reg(reg::QUEUE_SEL, u32::from(q));
        self.write_reg(reg::QUEUE_NUM, u32::from(size));
        self.write_reg(reg::QUEUE_DESC_LOW, desc as u32);
        self.write_reg(reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
        self.write_reg(reg::QUEUE_DRIVER_LOW, avail as u32);
        self.write_reg(reg::QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
        self.write_reg(reg::QUEUE_DEVICE_LOW, used as u32);
        self.write_reg(reg::QUEUE_DEVICE_HIGH, (used >> 32) as u32);
        self.write_reg(reg::QUEUE_READY, 1);
        let dq = DQueue {
            size,
            desc,
            avail,
            used,
            ..Default::default()
        };
        let i = usize::from(q);
        if self.queues.len() <= i {
            self.queues.resize(i + 1, DQueue::default());
        }
        self.queues[i] = dq;
    }

    // --- fake memory ---

    pub fn mem(&mut self) -> &mut MockMem {
        self.dev.transport_mut()
    }

    pub fn poke(&mut self, addr: u64, data: &[u8]) {
        let ro = self.mem().read_only.take();
        self.mem().write(addr, data).expect("poke outside memory");
        self.mem().read_only = ro;
    }

    pub fn peek(&mut self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem().read(addr, &mut v).expect("peek outside memory");
        v
    }

    pub fn peek_u16(&mut self, addr: u64) -> u16 {
        let b = self.peek(addr, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    pub fn poke_u16(&mut self, addr: u64, v: u16) {
        self.poke(addr, &v.to_le_bytes());
    }

    /// A buffer in guest memory holding `data`.
    pub fn buf_with(&mut self, data: &[u8]) -> u64 {
        let a = self.alloc(data.len() as u64, 8);
        self.poke(a, data);
        a
    }

    /// A zeroed buffer.
    pub fn buf(&mut self, len: u32) -> u64 {
        let a = self.alloc(u64::from(len), 8);
        self.poke(a, &vec![0; len as usize]);
        a
    }

    pub fn notifies(&mut self) -> Vec<Interrupt> {
        std::mem::take(&mut self.mem().notifies)
    }

    // --- rings ---

    pub fn write_desc(&mut self, q: u16, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let table = self.queues[usize::from(q)].desc;
        self.write_desc_at(table, idx, addr, len, flags, next);
    }

    pub fn write_desc_at(
        &mut self,
        table: u64,
        idx: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.poke(table + 16 * u64::from(idx), &d);
    }

    /// Writes `bufs` as a chain at the queue's next free descriptors; returns the head.
    pub fn add_chain(&mut self, q: u16, bufs: &[Buf]) -> u16 {
        let size = self.queues[usize::from(q)].size;
        let head = self.queues[usize::from(q)].next_desc;
        let mut idx = head;
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let next = (idx + 1) % size;
            let mut flags = if w { desc_flags::WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= desc_flags::NEXT;
            }
            self.write_desc(q, idx, addr, len, flags, next);
            idx = next;
        }
        self.queues[usize::from(q)].next_desc = idx;
        head
    }

    /// Puts `head` in the next available slot and publishes it (avail.idx + 1).
    pub fn push_avail(&mut self, q: u16, head: u16) {
        let dq = self.queues[usize::from(q)].clone();
        let slot = dq.avail_idx % dq.size;
        self.poke_u16(dq.avail + 4 + 2 * u64::from(slot), head);
        let idx = dq.avail_idx.wrapping_add(1);
        self.set_avail_idx(q, idx);
    }

    pub fn set_avail_idx(&mut self, q: u16, idx: u16) {
        let avail = self.queues[usize::from(q)].avail;
        self.poke_u16(avail + 2, idx);
        self.queues[usize::from(q)].avail_idx = idx;
    }

    /// Writes QueueNotify and, if the device asks, serves the queue.
    pub fn kick(&mut self, q: u16) -> Result<usize, Error> {
        match self.write_reg(reg::QUEUE_NOTIFY, u32::from(q)) {
            WriteEffect::QueueNotify(n) => {
                assert_eq!(n, q);
                self.dev.process_queue(n)
            }
            _ => Err(Error::NotReady),
        }
    }

    /// Adds a chain, publishes it and kicks the queue.
    pub fn submit(&mut self, q: u16, bufs: &[Buf]) -> (u16, Result<usize, Error>) {
        let head = self.add_chain(q, bufs);
        self.push_avail(q, head);
        (head, self.kick(q))
    }

    pub fn used_idx(&mut self, q: u16) -> u16 {
        let used = self.queues[usize::from(q)].used;
        self.peek_u16(used + 2)
    }

    /// New used entries `(id, len)` since the last call.
    pub fn take_used(&mut self, q: u16) -> Vec<(u32, u32)> {
        let dq = self.queues[usize::from(q)].clone();
        let idx = self.used_idx(q);
        let mut out = Vec::new();
        let mut i = dq.last_used;
        while i != idx {
            let e = self.peek(dq.used + 4 + 8 * u64::from(i % dq.size), 8);
            out.push((
                u32::from_le_bytes(e[0..4].try_into().unwrap()),
                u32::from_le_bytes(e[4..8].try_into().unwrap()),
            ));
            i = i.wrapping_add(1);
        }
        self.queues[usize::from(q)].last_used = idx;
        out
    }

    pub fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }
}

/// Transport features a test driver usually wants.
pub const VERSION_1: u64 = feature::VERSION_1;

/// Deterministic xorshift64* for the fuzz loops.
pub struct Rng64(pub u64);

impl Rng64 {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
