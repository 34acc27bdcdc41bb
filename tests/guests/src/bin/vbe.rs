//! `vbe`: the reference-style virtio backend test guest (docs/ioreq.md).
//!
//! Reads `/ferry-backend` from its DTB (`request-page`, `interrupts = <0 SPI 1>` =
//! the doorbell, one `device@N` per device: `reg = <N>`, `type`, `frontend-memory =
//! <FE base (2) size (2) BE address (2)>`), builds one `ferry_virtio_backend::Device`
//! per device — rng from a deterministic xorshift64 stream (seed
//! [`RNG_SEED`] ^ index, output = successive states little-endian, so a frontend can
//! check the bytes), blk over a 1 MiB RAM disk right after the image (one blk device at most),
//! console as a loopback (every byte the driver transmits goes back into its receive
//! queue: `Device::receive`) — over a shared-memory transport that maps frontend
//! addresses through `frontend-memory` (bounds-checked).
//!
//! Enables the doorbell SPI (edge, Group 1, routed to vCPU 0) in its vGIC, and loops
//! with IRQs masked: WFI; ack + EOI everything pending; serve every READY sync slot
//! whose sequence number is newer than the last served for that slot (mmio_read /
//! mmio_write, then `IOREQ_COMPLETE(slot, seq, value)`); drain the posted ring from
//! its `posted_tail` to Ferry's `posted_head` (QueueNotify → `process_queue`), then
//! `overflow_queues`; finally `NOTIFY_FRONTEND(device, cause bits)` for every device
//! whose transport was asked to notify. The EL1 virtual timer also wakes the loop
//! every `poll_ms` (default 10; 0 = off) as a fallback poll of the request page.
//!
//! Bootargs: `mode=ok|hang|crash|garbage` (default ok), `poll_ms=<ms>`,
//! `crash_addr=<hex>` (default 0x09010000, the PL031 no test partition is given).
//! - `hang`: the first READY request is never completed (loops forever);
//! - `crash`: serves 3 requests, then on the 4th touches `crash_addr` (Ferry stops
//!   the partition);
//! - `garbage`: completes every request with a wrong sequence number (seq + 0x1000).
//!
//! Log: `vbe: request page <addr>, doorbell SPI <n> (INTID <m>), <k> device(s), mode <mode>`,
//! `vbe: device <i>: <type>, frontend memory [<a>, <b>) at <be>`,
//! `vbe: first doorbell`, `vbe: device <i>: <error>` (a device error),
//! `vbe: console got <n> bytes` (a console's transmit batch; the first 8, then every 256th),
//! `vbe: hang: leaving slot <s> seq <q> (offset <o>) unanswered`,
//! `vbe: crash: touching <addr> after 3 requests`,
//! `vbe: garbage: completing slot <s> with seq <q'> instead of <q>: <ret>`;
//! failures `FAIL: vbe: ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use ferry_abi::hypercall::{IOREQ_COMPLETE, NOTIFY_FRONTEND};
use ferry_abi::ioreq::{
    self, Ioreq, PAGE_MAGIC, POSTED_SLOTS, SYNC_SLOTS, posted_offset, sync_slot_offset,
};
use ferry_guest_rt::gic::{self, VTIMER_INTID};
use ferry_guest_rt::{self as rt, Boot, arch, fail, println, time, vtimer};
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::Console;
use ferry_virtio_backend::rng::{EntropySource, Rng};
use ferry_virtio_backend::{Device, Interrupt, MemError, Options, Transport, WriteEffect};

rt::entry!(main);

/// Seed of device `i`'s xorshift64 stream: `RNG_SEED ^ i` (vfe checks it).
const RNG_SEED: u64 = 0x0123_4567_89ab_cdef;
/// Most devices (IOREQ sync slot = device * 8 + FE vCPU).
const MAX_DEVICES: usize = 8;
/// Size of the blk RAM disk.
const DISK_SIZE: usize = 1 << 20;
/// Offset of QueueNotify in the virtio-mmio window.
const QUEUE_NOTIFY: u64 = 0x50;

// PageHeader field offsets, as the ABI defines them.
use ioreq::{OVERFLOW_OFFSET as H_OVERFLOW, POSTED_HEAD_OFFSET as H_POSTED_HEAD};
use ioreq::{POSTED_TAIL_OFFSET as H_POSTED_TAIL, STATE_OFFSET};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Hang,
    Crash,
    Garbage,
}

/// The deterministic entropy source: xorshift64 (13, 7, 17), each state's 8 bytes
/// little-endian, in order.
struct XorShift {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl XorShift {
    const fn new(seed: u64) -> Self {
        XorShift {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }
}

impl EntropySource for XorShift {
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

/// The frontend's memory as mapped into this partition: FE address A is at
/// `be_addr + (A - fe_base)` for A in `[fe_base, fe_base + size)`.
struct Shared {
    fe_base: u64,
    size: u64,
    be_addr: u64,
    /// Interrupt causes raised since the last NOTIFY_FRONTEND (bit 0 used buffer,
    /// bit 1 config change).
    causes: u64,
}

impl Shared {
    /// The BE address of `[addr, addr + len)`, if entirely inside the window.
    fn map(&self, addr: u64, len: usize) -> Result<usize, MemError> {
        let off = addr.checked_sub(self.fe_base).ok_or(MemError)?;
        let end = off.checked_add(len as u64).ok_or(MemError)?;
        if end > self.size {
            return Err(MemError);
        }
        Ok((self.be_addr + off) as usize)
    }
}

impl Transport for Shared {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let src = self.map(addr, buf.len())?;
        // SAFETY: inside the FE window Ferry maps here (checked at start against the
        // Normal-memory part of the runtime's map); the driver may change it at any
        // time, so copy bytes, never form references to it.
        unsafe { ptr::copy_nonoverlapping(src as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        let dst = self.map(addr, data.len())?;
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
        Ok(())
    }

    fn notify(&mut self, cause: Interrupt) {
        self.causes |= match cause {
            Interrupt::UsedBuffer => 1,
            Interrupt::ConfigChange => 2,
        };
    }
}

/// Bytes a console's sink holds for loopback at most (more in one serve are dropped
/// and counted).
const ECHO_BUF: usize = 512;

/// A console device's sink: a loopback. Every byte the driver transmits is kept here
/// and, after the transmit queue is served, pushed back into the receive queue
/// ([`Device::receive`]); what the receive FIFO cannot take yet waits for the next
/// round. Logs `vbe: console got <n> bytes` for the first few transmit batches, then
/// every 256th.
struct Echo {
    buf: [u8; ECHO_BUF],
    len: usize,
    /// Bytes received since the last log line.
    got: usize,
    /// Transmit batches seen.
    batches: u32,
    dropped: usize,
}

impl Echo {
    const fn new() -> Self {
        Echo {
            buf: [0; ECHO_BUF],
            len: 0,
            got: 0,
            batches: 0,
            dropped: 0,
        }
    }
}

impl ferry_virtio_backend::console::ConsoleSink for Echo {
    fn transmit(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(ECHO_BUF - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self.got += bytes.len();
        self.dropped += bytes.len() - n;
    }
}

/// Loops what console `d` transmitted back into its receive queue; logs now and then.
fn echo_back(index: usize, d: &mut Device<Console<Echo>, Shared>) {
    let sink = d.model_mut().sink_mut();
    if sink.got > 0 {
        sink.batches += 1;
        if sink.batches <= 8 || sink.batches.is_multiple_of(256) {
            println!("vbe: console got {} bytes", sink.got);
        }
        sink.got = 0;
    }
    if sink.dropped > 0 {
        println!(
            "vbe: device {index}: console dropped {} bytes",
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
    let sink = d.model_mut().sink_mut();
    sink.buf.copy_within(n..len, 0);
    sink.len = len - n;
}

#[allow(clippy::large_enum_variant)] // one of each, built once, never moved
enum Dev {
    Rng(Device<Rng<XorShift>, Shared>),
    Blk(Device<Blk<'static>, Shared>),
    Console(Device<Console<Echo>, Shared>),
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            Dev::Rng($d) => $e,
            Dev::Blk($d) => $e,
            Dev::Console($d) => $e,
        }
    };
}

impl Dev {
    fn mmio_read(&self, offset: u32, size: u8) -> u64 {
        each!(self, d => d.mmio_read(offset, size))
    }
    fn mmio_write(&mut self, offset: u32, size: u8, value: u64) -> WriteEffect {
        each!(self, d => d.mmio_write(offset, size, value))
    }
    /// Serves queue `q` until nothing is pending (bounded); logs a device error.
    fn serve(&mut self, index: usize, q: u16) {
        each!(self, d => {
            if d.process_queue(q).is_err() {
                if let Some(e) = d.last_error() {
                    println!("vbe: device {index}: {e}");
                }
            }
            let mut rounds = 0;
            while d.pending_queues() != 0 && rounds < 64 {
                if d.poll().is_err() {
                    if let Some(e) = d.last_error() {
                        println!("vbe: device {index}: {e}");
                    }
                    break;
                }
                rounds += 1;
            }
        });
        self.echo(index);
    }
    /// A console: loops transmitted bytes back (no-op for other devices).
    fn echo(&mut self, index: usize) {
        if let Dev::Console(d) = self {
            echo_back(index, d);
        }
    }
    fn take_causes(&mut self) -> u64 {
        each!(self, d => core::mem::take(&mut d.transport_mut().causes))
    }
    fn kind(&self) -> &'static str {
        match self {
            Dev::Rng(_) => "rng",
            Dev::Blk(_) => "blk",
            Dev::Console(_) => "console",
        }
    }
}

/// The blk RAM disk: `size` bytes of this partition's RAM right after the image
/// (not in `.bss`: zeroing a MiB there would delay the backend's start, and a
/// frontend access that finds the backend not serving yet fails the device for
/// good). Zeroed here, after the backend is up.
fn disk_memory(boot: &Boot, size: usize) -> &'static mut [u8] {
    let start = (rt::image_end() + 0xfff) & !0xfff;
    let end = start + size;
    let dtb = boot.dtb_region();
    let in_ram = boot
        .memory()
        .iter()
        .any(|r| start as u64 >= r.start && end as u64 <= r.end);
    let clear_of_dtb = end as u64 <= dtb.start || start as u64 >= dtb.end;
    if !in_ram || !clear_of_dtb {
        fail!("vbe: no room for a {size}-byte RAM disk at {start:#x}");
    }
    // SAFETY: RAM of this partition past the image and clear of the DTB, used by
    // nothing else; handed out once (one blk device at most).
    unsafe {
        ptr::write_bytes(start as *mut u8, 0, size);
        core::slice::from_raw_parts_mut(start as *mut u8, size)
    }
}

/// `dmb ish`: orders this vCPU's accesses to the request page against Ferry's.
#[inline(always)]
fn dmb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier.
    unsafe {
        core::arch::asm!("dmb ish", options(nostack, preserves_flags))
    };
}

/// The request page (Normal memory in the runtime's map; shared with Ferry).
struct Page(usize);

impl Page {
    fn u32_at(&self, off: usize) -> u32 {
        // SAFETY: inside the 4 KiB request page, aligned.
        unsafe { ptr::read_volatile((self.0 + off) as *const u32) }
    }
    fn set_u32(&self, off: usize, v: u32) {
        // SAFETY: as above; only posted_tail is written by the backend.
        unsafe { ptr::write_volatile((self.0 + off) as *mut u32, v) }
    }
    fn state(&self, rec: usize) -> u8 {
        // SAFETY: the state byte of a record inside the page.
        unsafe { ptr::read_volatile((self.0 + rec + STATE_OFFSET) as *const u8) }
    }
    fn record(&self, rec: usize) -> Ioreq {
        let mut b = [0u8; 32];
        for i in 0..4 {
            // SAFETY: 8-byte aligned words of a record inside the page.
            let w = unsafe { ptr::read_volatile((self.0 + rec + 8 * i) as *const u64) };
            b[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        Ioreq::decode(&b)
    }
    fn overflow(&self) -> &AtomicU32 {
        // SAFETY: an aligned u32 in the page, which Ferry also updates atomically.
        unsafe { AtomicU32::from_ptr((self.0 + H_OVERFLOW) as *mut u32) }
    }
}

fn be_cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn cells64(v: &[u8], i: usize) -> Option<u64> {
    let hi = u64::from(be_cells(v).nth(i)?);
    let lo = u64::from(be_cells(v).nth(i + 1)?);
    Some(hi << 32 | lo)
}

fn complete(slot: usize, seq: u32, value: u64) -> i64 {
    arch::hvc(
        u64::from(IOREQ_COMPLETE),
        slot as u64,
        u64::from(seq),
        value,
        0,
    )[0] as i64
}

fn main(boot: &'static Boot) -> ! {
    let mode = match boot.arg("mode").unwrap_or("ok") {
        "ok" => Mode::Ok,
        "hang" => Mode::Hang,
        "crash" => Mode::Crash,
        "garbage" => Mode::Garbage,
        m => fail!("vbe: mode={m}: expected ok, hang, crash or garbage"),
    };
    let mode_name = boot.arg("mode").unwrap_or("ok");
    let poll_ms = boot.arg_u64("poll_ms").unwrap_or(10);
    let crash_addr = boot.arg_hex("crash_addr").unwrap_or(0x0901_0000);

    let fdt = boot.fdt();
    let Some(node) = fdt.find_node("/ferry-backend") else {
        fail!("vbe: no /ferry-backend node in the DTB");
    };
    let Some(page_addr) = node
        .property("request-page")
        .and_then(|p| cells64(p.value, 0))
    else {
        fail!("vbe: /ferry-backend has no request-page = <hi lo>");
    };
    let Some(spi) = node
        .property("interrupts")
        .and_then(|p| be_cells(p.value).nth(1))
    else {
        fail!("vbe: /ferry-backend has no interrupts = <0 SPI flags>");
    };
    let intid = spi + 32;

    let mut devs: [Option<Dev>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    let mut disk_used = false;
    let mut count = 0;
    for c in node.children() {
        let Some(index) = c.property("reg").and_then(|p| be_cells(p.value).next()) else {
            fail!("vbe: {}: no reg", c.name);
        };
        let index = index as usize;
        if index >= MAX_DEVICES || devs[index].is_some() {
            fail!("vbe: {}: bad or duplicate index {index}", c.name);
        }
        let kind = c.property("type").and_then(|p| p.as_str()).unwrap_or("");
        let Some(fm) = c.property("frontend-memory") else {
            fail!("vbe: {}: no frontend-memory", c.name);
        };
        let (Some(fe_base), Some(size), Some(be_addr)) = (
            cells64(fm.value, 0),
            cells64(fm.value, 2),
            cells64(fm.value, 4),
        ) else {
            fail!(
                "vbe: {}: frontend-memory is not <base(2) size(2) be-address(2)>",
                c.name
            );
        };
        // The window must lie in what the runtime maps as Normal memory.
        let normal = |a: u64| (0x4000_0000..0xc000_0000).contains(&a);
        if size == 0
            || !normal(be_addr)
            || be_addr.checked_add(size).is_none_or(|e| e > 0xc000_0000)
        {
            fail!(
                "vbe: {}: frontend memory at {be_addr:#x} size {size:#x} is outside [0x40000000, 0xc0000000)",
                c.name
            );
        }
        let t = Shared {
            fe_base,
            size,
            be_addr,
            causes: 0,
        };
        let dev = match kind {
            "rng" => Dev::Rng(Device::new(
                Rng::new(XorShift::new(RNG_SEED ^ index as u64)),
                t,
                Options::new(),
            )),
            "blk" => {
                if disk_used {
                    fail!("vbe: {}: only one blk device (one RAM disk)", c.name);
                }
                disk_used = true;
                let disk = disk_memory(boot, DISK_SIZE);
                Dev::Blk(Device::new(
                    Blk::new(disk, b"ferry-vbe-ramdisk"),
                    t,
                    Options::new(),
                ))
            }
            "console" => Dev::Console(Device::new(Console::new(Echo::new()), t, Options::new())),
            k => fail!("vbe: {}: type \"{k}\" is not rng, blk or console", c.name),
        };
        println!(
            "vbe: device {index}: {kind}, frontend memory [{fe_base:#x}, {:#x}) at {be_addr:#x}",
            fe_base + size
        );
        devs[index] = Some(dev);
        count += 1;
    }
    if count == 0 {
        fail!("vbe: /ferry-backend has no device");
    }

    let page = Page(page_addr as usize);
    // SAFETY: the header's first word, inside the page.
    let magic = unsafe { ptr::read_volatile(page_addr as *const u64) };
    if magic != PAGE_MAGIC {
        fail!("vbe: request page at {page_addr:#x}: magic {magic:#x}, expected {PAGE_MAGIC:#x}");
    }

    // The doorbell: edge, Group 1, to this vCPU, enabled. IRQs stay masked: WFI
    // wakes on a pending interrupt all the same.
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vbe: GIC set-up: {e:?}");
    }
    gic::set_dist_config(intid, true);
    gic::set_dist_priority(intid, 0xa0);
    gic::set_dist_router(intid, gic::router_for(arch::mpidr()));
    gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    let poll_ticks = time::ms_to_ticks(poll_ms);
    if poll_ms > 0 {
        gic::set_private_priority(VTIMER_INTID, 0xb0);
        gic::enable_private(1 << VTIMER_INTID);
        vtimer::arm_in(poll_ticks);
    }
    println!(
        "vbe: request page {page_addr:#x}, doorbell SPI {spi} (INTID {intid}), {count} device(s), mode {mode_name}, poll {poll_ms} ms"
    );

    // Last sequence number served per sync slot.
    let mut last: [Option<u32>; SYNC_SLOTS] = [None; SYNC_SLOTS];
    let mut served = 0u32;
    let mut doorbells = 0u32;
    loop {
        // Sleep unless something is visibly waiting (a doorbell raised after this
        // check is pending in the GIC and makes WFI return at once).
        if !work_visible(&page, &last) {
            // SAFETY: WFI.
            #[cfg(target_arch = "aarch64")]
            unsafe {
                core::arch::asm!("wfi", options(nostack, preserves_flags))
            };
        }
        loop {
            let i = gic::ack();
            if i >= gic::SPECIAL {
                break;
            }
            if i == intid {
                doorbells += 1;
                if doorbells == 1 {
                    println!("vbe: first doorbell");
                }
            } else if i == VTIMER_INTID {
                vtimer::arm_in(poll_ticks);
            }
            gic::eoi(i);
        }
        dmb();

        // Synchronous requests.
        #[allow(clippy::needless_range_loop)] // slot is also the IOREQ_COMPLETE argument
        for slot in 0..SYNC_SLOTS {
            let off = sync_slot_offset(slot);
            if page.state(off) != ioreq::state::READY {
                continue;
            }
            dmb();
            let r = page.record(off);
            if r.state != ioreq::state::READY || !newer(last[slot], r.seq) {
                continue;
            }
            last[slot] = Some(r.seq);
            match mode {
                Mode::Hang => {
                    println!(
                        "vbe: hang: leaving slot {slot} seq {} (offset {:#x}) unanswered",
                        r.seq, r.offset
                    );
                    loop {
                        arch::wfe();
                    }
                }
                Mode::Crash if served == 3 => {
                    println!("vbe: crash: touching {crash_addr:#x} after 3 requests");
                    // SAFETY: deliberately not ours: Ferry stops the partition here.
                    let v = unsafe { ptr::read_volatile(crash_addr as *const u32) };
                    fail!("vbe: crash: read of {crash_addr:#x} returned {v:#x}, not stopped");
                }
                _ => {}
            }
            let dev_index = slot / 8;
            let value = match devs.get_mut(dev_index).and_then(Option::as_mut) {
                Some(d) if r.is_valid(0x200) => {
                    if r.dir == ioreq::dir::READ {
                        d.mmio_read(r.offset as u32, r.size)
                    } else {
                        if let WriteEffect::QueueNotify(q) =
                            d.mmio_write(r.offset as u32, r.size, r.data)
                        {
                            d.serve(dev_index, q);
                        }
                        0
                    }
                }
                // No such device or a malformed record: read all-ones, ignore writes.
                _ => u64::MAX,
            };
            served += 1;
            if mode == Mode::Garbage {
                let bad = r.seq.wrapping_add(0x1000);
                let ret = complete(slot, bad, value);
                println!(
                    "vbe: garbage: completing slot {slot} with seq {bad} instead of {}: {ret}",
                    r.seq
                );
            } else {
                let ret = complete(slot, r.seq, value);
                if ret != 0 {
                    println!("vbe: IOREQ_COMPLETE(slot {slot}, seq {}) = {ret}", r.seq);
                }
            }
        }

        // Posted QueueNotify writes.
        dmb();
        let head = page.u32_at(H_POSTED_HEAD);
        let mut tail = page.u32_at(H_POSTED_TAIL);
        dmb();
        let mut n = 0;
        while tail != head && n < POSTED_SLOTS {
            let r = page.record(posted_offset(tail as usize % POSTED_SLOTS));
            let dev_index = r.device as usize;
            if r.offset == QUEUE_NOTIFY && r.dir == ioreq::dir::WRITE {
                if let Some(d) = devs.get_mut(dev_index).and_then(Option::as_mut) {
                    if let WriteEffect::QueueNotify(q) =
                        d.mmio_write(QUEUE_NOTIFY as u32, 4, r.data)
                    {
                        d.serve(dev_index, q);
                    }
                }
            }
            tail = tail.wrapping_add(1);
            n += 1;
        }
        if n > 0 {
            dmb();
            page.set_u32(H_POSTED_TAIL, tail);
        }
        // Coalesced notifies (ring was full): clear first, then serve, so a bit set
        // meanwhile is served next round.
        let bits = page.overflow().swap(0, Ordering::AcqRel);
        if bits != 0 {
            for (i, d) in devs.iter_mut().enumerate() {
                if let Some(d) = d.as_mut() {
                    for q in 0..32u16 {
                        if bits & (1 << q) != 0 {
                            d.serve(i, q);
                        }
                    }
                }
            }
        }

        // Interrupts for the frontend (first, console input left over from an
        // earlier round, now that the driver may have given receive buffers).
        for (i, d) in devs.iter_mut().enumerate() {
            if let Some(d) = d.as_mut() {
                d.echo(i);
                let causes = d.take_causes();
                if causes != 0 {
                    let ret =
                        arch::hvc(u64::from(NOTIFY_FRONTEND), i as u64, causes, 0, 0)[0] as i64;
                    if ret != 0 {
                        println!(
                            "vbe: NOTIFY_FRONTEND({i} {} , {causes:#x}) = {ret}",
                            d.kind()
                        );
                    }
                }
            }
        }
    }
}

/// Whether `seq` is newer than the last served in its slot.
fn newer(last: Option<u32>, seq: u32) -> bool {
    match last {
        None => true,
        Some(l) => (seq.wrapping_sub(l) as i32) > 0,
    }
}

/// Anything in the page the loop would act on now.
fn work_visible(page: &Page, last: &[Option<u32>; SYNC_SLOTS]) -> bool {
    dmb();
    if page.u32_at(H_POSTED_HEAD) != page.u32_at(H_POSTED_TAIL)
        || page.overflow().load(Ordering::Acquire) != 0
    {
        return true;
    }
    (0..SYNC_SLOTS).any(|s| {
        let off = sync_slot_offset(s);
        page.state(off) == ioreq::state::READY && newer(last[s], page.record(off).seq)
    })
}
