//! `vbench`: the virtio frontend of `make bench` (docs/bench.md). Booted by
//! `ferry-test bench` with tests/partitions/bench.dts under `-icount shift=0,sleep=off`,
//! it times with CNTVCT_EL0 (the virtual counter; under icount it advances with retired
//! instructions, so the figures repeat exactly run to run):
//!
//! - `null-hvc`: Ferry's VERSION hypercall (0x8600_0000) round trip;
//! - `ram-read`: a load from this guest's own RAM (no trap): the floor;
//! - `posted-notify`: a QueueNotify store (window + 0x50) as the frontend sees it:
//!   Ferry appends it to the backend's posted ring and returns without waiting;
//! - `forwarded-read`: a read of MagicValue (window + 0x0) forwarded to the backend
//!   partition and answered by it (IOREQ round trip across two vCPUs);
//! - `request-notify`: a virtio-rng request (8 bytes, through `virtio-drivers`) from
//!   just before it is queued and notified to the entry of this guest's interrupt
//!   handler for the device's SPI, raised by the backend's NOTIFY_FRONTEND.
//! - `notify-irq`: interrupt delivery alone: from the backend's CNTVCT just before its
//!   NOTIFY_FRONTEND hypercall (vbe's `stamp=` hook writes it into this guest's RAM
//!   at the address this guest's `stamp=` bootarg names) to the entry of this
//!   guest's handler.
//!
//! With `sharing=<label>` (tests/partitions/bench-shared.dts and bench-copy.dts, the
//! same rng and blk devices in shared and in copy mode) it times, instead of the
//! figures above, one request to completion on each virtio device its DTB lists,
//! waiting for the device's interrupt in WFI (so only executed instructions count,
//! not the round-robin of busy-polling vCPUs):
//!
//! - `rng-request(<label>)`: an 8-byte virtio-rng request: from just before the
//!   buffer is queued and notified to the driver's pop of the used buffer, after the
//!   device interrupt (posted notify, backend serving, in copy mode Ferry's copies
//!   both ways, NOTIFY_FRONTEND, injection, handler);
//! - `blk-read-64k(<label>)`: a virtio-blk read of 128 sectors (64 KiB, one data
//!   buffer) from sector 0, the same span; the data is checked against the disk
//!   image's magic (`disk_magic=`, default `FERRY-DISK-IMAGE-V1`).
//!
//! Fast operations run in batches (`batch=`, default 100 per batch, `batches=`, default
//! 10): each batch gives a mean per operation. Slow ones are timed one by one (`iters=`,
//! default 100). Each line is `bench: <name> <median ticks/op> min=<m> n=<samples>
//! unit=<ops per sample>` with two decimals; then `bench: cntfrq <hz>` and
//! `vbench: done`, SYSTEM_OFF. Failures: `FAIL: vbench: ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_abi::hypercall;
use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, psci, time, vtimer};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::device::common::Feature;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

rt::entry!(main);

const MAGIC: u32 = 0x7472_6976;
const R_MAGIC: usize = 0x000;
const R_DEVICE_ID: usize = 0x008;
const R_QUEUE_NOTIFY: usize = 0x050;
/// virtio device IDs.
const ID_BLK: u32 = 2;
const ID_RNG: u32 = 4;
/// Bytes of `blk-read-64k`'s read.
const BLK_READ: usize = 64 * 1024;
/// Most samples any benchmark keeps.
const MAX_SAMPLES: usize = 1000;

#[path = "../dma_hal.rs"]
mod dma_hal;
use dma_hal::PoolHal;

// ---------------------------------------------------------------------------------
// Interrupts: the watchdog, and the device's SPI (its entry time recorded).

static TIMEOUT_MS: AtomicU32 = AtomicU32::new(0);
static DEVICE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// A second device's INTID (`sharing=`: the blk device).
static DEVICE2_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// CNTVCT at the device handler's entry, 0 until the next one.
static IRQ_AT: AtomicU64 = AtomicU64::new(0);
static DEVICE_IRQS: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid == DEVICE_INTID.load(Ordering::Relaxed)
        || intid == DEVICE2_INTID.load(Ordering::Relaxed)
    {
        let now = arch::cntvct();
        let _ = IRQ_AT.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        DEVICE_IRQS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if intid == VTIMER_INTID {
        vtimer::stop();
        fail!(
            "vbench: timed out after {} ms",
            TIMEOUT_MS.load(Ordering::Relaxed)
        );
    }
}

fn rd(base: usize, off: usize) -> u32 {
    // SAFETY: a 4-byte register of the device's virtio-mmio window (one LDR).
    unsafe { ptr::read_volatile((base + off) as *const u32) }
}

fn wr(base: usize, off: usize, v: u32) {
    // SAFETY: as in `rd` (one STR).
    unsafe { ptr::write_volatile((base + off) as *mut u32, v) }
}

fn be_cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Samples in hundredths of a tick per operation.
struct Samples {
    v: [u64; MAX_SAMPLES],
    n: usize,
}

impl Samples {
    const fn new() -> Self {
        Self {
            v: [0; MAX_SAMPLES],
            n: 0,
        }
    }
    fn push(&mut self, centi: u64) {
        if self.n < MAX_SAMPLES {
            self.v[self.n] = centi;
            self.n += 1;
        }
    }
    fn report(&mut self, name: impl fmt::Display, unit: u64) {
        let s = &mut self.v[..self.n];
        if s.is_empty() {
            fail!("vbench: {name}: no samples");
        }
        s.sort_unstable();
        let med = s[s.len() / 2];
        let min = s[0];
        println!(
            "bench: {name} {}.{:02} min={}.{:02} n={} unit={unit}",
            med / 100,
            med % 100,
            min / 100,
            min % 100,
            s.len()
        );
    }
}

static mut SAMPLES: Samples = Samples::new();

fn samples() -> &'static mut Samples {
    // SAFETY: one vCPU, and the interrupt handler never touches it.
    let s = unsafe { (&raw mut SAMPLES).as_mut() }.expect("static");
    s.n = 0;
    s
}

/// `batches` batches of `batch` calls of `op`: one sample (mean per call) each.
fn batched(name: impl fmt::Display, batches: u64, batch: u64, mut op: impl FnMut()) {
    let s = samples();
    for _ in 0..batches {
        let t0 = arch::cntvct();
        for _ in 0..batch {
            op();
        }
        let t1 = arch::cntvct();
        s.push((t1 - t0) * 100 / batch);
    }
    s.report(name, batch);
}

/// `iters` calls of `op`, each timed: `op` returns its own (start, end).
fn single(name: impl fmt::Display, iters: u64, mut op: impl FnMut() -> (u64, u64)) {
    let s = samples();
    for _ in 0..iters {
        let (t0, t1) = op();
        s.push(t1.saturating_sub(t0) * 100);
    }
    s.report(name, 1);
}

static RAM_WORD: AtomicU64 = AtomicU64::new(0x5a5a);

fn main(boot: &'static Boot) -> ! {
    let timeout_ms = boot.arg_u64("timeout_ms").unwrap_or(60_000);
    TIMEOUT_MS.store(timeout_ms as u32, Ordering::Relaxed);
    let batches = boot
        .arg_u64("batches")
        .unwrap_or(10)
        .clamp(1, MAX_SAMPLES as u64);
    let batch = boot.arg_u64("batch").unwrap_or(100).max(1);
    let iters = boot
        .arg_u64("iters")
        .unwrap_or(100)
        .clamp(1, MAX_SAMPLES as u64);

    if let Some(label) = boot.arg("sharing") {
        irq_setup(boot, timeout_ms, &[]);
        sharing_rows(boot, label, iters);
        finish();
    }

    let Some(Dev { base, size, spi }) = device_at(boot, 0) else {
        fail!("vbench: no virtio,mmio node in the DTB");
    };
    irq_setup(boot, timeout_ms, &[(&DEVICE_INTID, spi)]);

    // The backend may still be starting: its first answer waits for it.
    let magic = rd(base, R_MAGIC);
    let id = rd(base, R_DEVICE_ID);
    if magic != MAGIC || id != ID_RNG {
        fail!(
            "vbench: virtio-mmio at {base:#x}: MagicValue {magic:#x}, DeviceID {id} (expected rng, 4)"
        );
    }
    println!(
        "vbench: virtio-rng at {base:#x} (SPI {spi}), cntfrq {} Hz",
        arch::cntfrq()
    );

    batched("null-hvc", batches, batch, || {
        let r = arch::hvc(u64::from(hypercall::VERSION), 0, 0, 0, 0);
        if r[0] as i64 <= 0 {
            fail!("vbench: VERSION returned {:#x}", r[0]);
        }
    });
    batched("ram-read", batches, batch, || {
        // SAFETY: a load of a static of this guest (never trapped).
        let v = unsafe { ptr::read_volatile(RAM_WORD.as_ptr()) };
        if v != 0x5a5a {
            fail!("vbench: RAM word {v:#x}");
        }
    });
    single("forwarded-read", iters, || {
        let t0 = arch::cntvct();
        let v = rd(base, R_MAGIC);
        let t1 = arch::cntvct();
        if v != MAGIC {
            fail!("vbench: forwarded MagicValue read {v:#x}");
        }
        (t0, t1)
    });

    // SAFETY: the window is this device's virtio-mmio registers, used by nothing else.
    let transport = match unsafe {
        MmioTransport::new(NonNull::new(base as *mut VirtIOHeader).expect("base"), size)
    } {
        Ok(t) => t,
        Err(e) => fail!("vbench: MmioTransport: {e}"),
    };
    let mut dev = match VirtIORng::<PoolHal, _>::new(transport) {
        Ok(d) => d,
        Err(e) => fail!("vbench: VirtIORng::new: {e}"),
    };

    // Queue 0 is live but its available ring holds nothing new: the backend finds no
    // work and raises no interrupt. The figure is the frontend's side of the store.
    batched("posted-notify", batches, batch, || {
        wr(base, R_QUEUE_NOTIFY, 0)
    });
    // Let the backend drain the posted ring before the next figure.
    time::delay_ms(5);

    let mut buf = [0u8; 8];
    single("request-notify", iters, || {
        IRQ_AT.store(0, Ordering::Relaxed);
        let t0 = arch::cntvct();
        match dev.request_entropy(&mut buf) {
            Ok(n) if n > 0 => {}
            Ok(_) => fail!("vbench: rng request returned 0 bytes"),
            Err(e) => fail!("vbench: rng request: {e}"),
        }
        // The used buffer can show before the interrupt arrives.
        let deadline = time::Deadline::after_ms(1000);
        loop {
            let at = IRQ_AT.load(Ordering::Relaxed);
            if at != 0 {
                return (t0, at);
            }
            if deadline.passed() {
                fail!("vbench: no device interrupt within 1 s of a request");
            }
            core::hint::spin_loop();
        }
    });
    if let Some(stamp_at) = boot.arg_hex("stamp") {
        let stamp = stamp_at as *mut u64;
        single("notify-irq", iters, || {
            IRQ_AT.store(0, Ordering::Relaxed);
            // SAFETY: `stamp=` names a word of this guest's RAM that nothing else
            // uses; the backend writes it through the shared window.
            unsafe { ptr::write_volatile(stamp, 0) };
            match dev.request_entropy(&mut buf) {
                Ok(n) if n > 0 => {}
                Ok(_) => fail!("vbench: rng request returned 0 bytes"),
                Err(e) => fail!("vbench: rng request: {e}"),
            }
            let deadline = time::Deadline::after_ms(1000);
            loop {
                let at = IRQ_AT.load(Ordering::Relaxed);
                if at != 0 {
                    // SAFETY: as above.
                    let sent = unsafe { ptr::read_volatile(stamp) };
                    if sent == 0 || sent > at {
                        fail!("vbench: notify-irq: backend stamp {sent}, handler entry {at}");
                    }
                    return (sent, at);
                }
                if deadline.passed() {
                    fail!("vbench: no device interrupt within 1 s of a request");
                }
                core::hint::spin_loop();
            }
        });
    }
    let _ = dev.ack_interrupt();
    core::mem::forget(dev);
    finish()
}

/// `bench: cntfrq`, `vbench: done`, SYSTEM_OFF.
fn finish() -> ! {
    println!("bench: cntfrq {}", arch::cntfrq());
    vtimer::stop();
    println!(
        "vbench: done ({} device interrupts)",
        DEVICE_IRQS.load(Ordering::Relaxed)
    );
    psci::system_off()
}

/// A virtio-mmio device of the DTB: its register window and SPI.
#[derive(Clone, Copy)]
struct Dev {
    base: usize,
    size: usize,
    spi: u32,
}

/// The DTB's `index`th `virtio,mmio` node (in DTB order).
fn device_at(boot: &'static Boot, index: usize) -> Option<Dev> {
    let node = boot
        .fdt()
        .all_nodes()
        .filter(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|c| c == "virtio,mmio"))
        })
        .nth(index)?;
    let Some(reg) = node.reg().and_then(|mut r| r.next()) else {
        fail!("vbench: {}: no reg", node.name);
    };
    let Some(spi) = node
        .property("interrupts")
        .and_then(|p| be_cells(p.value).nth(1))
    else {
        fail!("vbench: {}: no interrupts", node.name);
    };
    Some(Dev {
        base: reg.starting_address as usize,
        size: reg.size.unwrap_or(0x200),
        spi,
    })
}

/// GIC, the handler, the watchdog (virtual timer, `timeout_ms`) and each device SPI
/// (`(where its INTID goes, SPI)`), then IRQs unmasked.
fn irq_setup(boot: &Boot, timeout_ms: u64, spis: &[(&AtomicU32, u32)]) {
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vbench: GIC set-up: {e:?}");
    }
    gic::set_handler(handler);
    gic::set_private_priority(VTIMER_INTID, 0x80);
    gic::enable_private(1 << VTIMER_INTID);
    for &(slot, spi) in spis {
        enable_spi(slot, spi);
    }
    vtimer::arm_in(time::ms_to_ticks(timeout_ms));
    irq::enable();
}

/// Routes SPI `spi` to this vCPU (edge, priority 0xa0), enabled; its INTID into `slot`.
fn enable_spi(slot: &AtomicU32, spi: u32) {
    let intid = spi + 32;
    slot.store(intid, Ordering::Relaxed);
    gic::set_dist_config(intid, true);
    gic::set_dist_priority(intid, 0xa0);
    gic::set_dist_router(intid, gic::router_for(arch::mpidr()));
    gic::dist_write_bit(gic::gicd::ISENABLER, intid);
}

/// Sleeps in WFI until `done()`. IRQs are masked between the check and the WFI (a
/// pending interrupt still ends a WFI), so a wake-up that comes in between is not
/// lost; each is taken right after the WFI.
fn wait_until(mut done: impl FnMut() -> bool) {
    irq::disable();
    while !done() {
        irq::wfi();
        irq::enable();
        irq::disable();
    }
    irq::enable();
}

/// A figure's name with the sharing mode: `rng-request(copy)`.
struct Tagged<'a>(&'a str, &'a str);

impl fmt::Display for Tagged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.0, self.1)
    }
}

/// The `sharing=` figures: one request to completion per device (rng first, then
/// blk), `iters` times each.
fn sharing_rows(boot: &'static Boot, label: &str, iters: u64) {
    let mut rng = None;
    let mut blk = None;
    for i in 0.. {
        let Some(d) = device_at(boot, i) else { break };
        // The backend may still be starting: its first answer waits for it.
        let magic = rd(d.base, R_MAGIC);
        let id = rd(d.base, R_DEVICE_ID);
        match id {
            _ if magic != MAGIC => fail!("vbench: {:#x}: MagicValue {magic:#x}", d.base),
            ID_RNG if rng.is_none() => rng = Some(d),
            ID_BLK if blk.is_none() => blk = Some(d),
            _ => fail!(
                "vbench: {:#x}: DeviceID {id}: expected one rng (4) and one blk (2)",
                d.base
            ),
        }
    }
    let (Some(rng), Some(blk)) = (rng, blk) else {
        fail!("vbench: sharing={label}: needs a virtio-rng and a virtio-blk device");
    };
    println!(
        "vbench: sharing={label}: virtio-rng at {:#x} (SPI {}), virtio-blk at {:#x} (SPI {})",
        rng.base, rng.spi, blk.base, blk.spi
    );
    enable_spi(&DEVICE_INTID, rng.spi);
    enable_spi(&DEVICE2_INTID, blk.spi);
    rng_request(rng, label, iters);
    blk_read(
        blk,
        label,
        iters,
        boot.arg("disk_magic").unwrap_or("FERRY-DISK-IMAGE-V1"),
    );
}

fn transport(d: Dev) -> MmioTransport<'static> {
    // SAFETY: the window is this device's virtio-mmio registers, used by nothing else.
    match unsafe {
        MmioTransport::new(
            NonNull::new(d.base as *mut VirtIOHeader).expect("base"),
            d.size,
        )
    } {
        Ok(t) => t,
        Err(e) => fail!("vbench: MmioTransport at {:#x}: {e}", d.base),
    }
}

/// `rng-request(<label>)`: virtio-drivers' queue driven as its `VirtIORng` does, but
/// waiting for the interrupt in WFI instead of busy-polling the used ring.
fn rng_request(d: Dev, label: &str, iters: u64) {
    let mut t = transport(d);
    let feat =
        t.begin_init(Feature::RING_INDIRECT_DESC | Feature::RING_EVENT_IDX | Feature::VERSION_1);
    let mut q = match VirtQueue::<PoolHal, 8>::new(
        &mut t,
        0,
        feat.contains(Feature::RING_INDIRECT_DESC),
        feat.contains(Feature::RING_EVENT_IDX),
    ) {
        Ok(q) => q,
        Err(e) => fail!("vbench: rng queue: {e}"),
    };
    t.finish_init();
    let mut buf = [0u8; 8];
    single(Tagged("rng-request", label), iters, || {
        buf = [0; 8];
        IRQ_AT.store(0, Ordering::Relaxed);
        let t0 = arch::cntvct();
        // SAFETY: `buf` is not touched until `pop_used` gives it back below.
        let token = match unsafe { q.add(&[], &mut [&mut buf[..]]) } {
            Ok(tok) => tok,
            Err(e) => fail!("vbench: rng request: {e}"),
        };
        if q.should_notify() {
            t.notify(0);
        }
        wait_until(|| IRQ_AT.load(Ordering::Relaxed) != 0 && q.can_pop());
        // SAFETY: the buffers `add` was given, for its token.
        let n = match unsafe { q.pop_used(token, &[], &mut [&mut buf[..]]) } {
            Ok(n) => n,
            Err(e) => fail!("vbench: rng request: {e}"),
        };
        let t1 = arch::cntvct();
        if n as usize != buf.len() || buf == [0; 8] {
            fail!("vbench: rng request: {n} bytes {buf:02x?}");
        }
        (t0, t1)
    });
}

#[repr(C, align(4096))]
struct BlkBuf([u8; BLK_READ]);

static mut BLK_BUF: BlkBuf = BlkBuf([0; BLK_READ]);

/// `blk-read-64k(<label>)`: one 128-sector read from sector 0 through virtio-drivers'
/// `VirtIOBlk`, submitted with `read_blocks_nb`, completed after the interrupt.
fn blk_read(d: Dev, label: &str, iters: u64, magic: &str) {
    let mut blk = match VirtIOBlk::<PoolHal, _>::new(transport(d)) {
        Ok(b) => b,
        Err(e) => fail!("vbench: VirtIOBlk::new: {e}"),
    };
    if blk.capacity() < (BLK_READ / SECTOR_SIZE) as u64 {
        fail!(
            "vbench: blk: {} sectors, fewer than {}",
            blk.capacity(),
            BLK_READ / SECTOR_SIZE
        );
    }
    // SAFETY: used by this function only (one vCPU; the handler does not touch it).
    let buf = &mut unsafe { (&raw mut BLK_BUF).as_mut() }.expect("static").0;
    let mut req = BlkReq::default();
    let mut resp = BlkResp::default();
    single(Tagged("blk-read-64k", label), iters, || {
        buf[..magic.len()].fill(0);
        IRQ_AT.store(0, Ordering::Relaxed);
        let t0 = arch::cntvct();
        // SAFETY: `req`, `buf` and `resp` are not touched until `complete_read_blocks`.
        let token = match unsafe { blk.read_blocks_nb(0, &mut req, buf, &mut resp) } {
            Ok(tok) => tok,
            Err(e) => fail!("vbench: blk read: {e}"),
        };
        wait_until(|| IRQ_AT.load(Ordering::Relaxed) != 0 && blk.peek_used() == Some(token));
        // SAFETY: the buffers `read_blocks_nb` was given, for its token.
        if let Err(e) = unsafe { blk.complete_read_blocks(token, &req, buf, &mut resp) } {
            fail!("vbench: blk read: {e} (status {:?})", resp.status());
        }
        let t1 = arch::cntvct();
        if &buf[..magic.len()] != magic.as_bytes() {
            fail!(
                "vbench: blk read: sector 0 starts {:02x?}, not {magic:?}",
                &buf[..magic.len()]
            );
        }
        (t0, t1)
    });
}
