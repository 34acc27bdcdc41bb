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
//! Fast operations run in batches (`batch=`, default 100 per batch, `batches=`, default
//! 10): each batch gives a mean per operation. Slow ones are timed one by one (`iters=`,
//! default 100). Each line is `bench: <name> <median ticks/op> min=<m> n=<samples>
//! unit=<ops per sample>` with two decimals; then `bench: cntfrq <hz>` and
//! `vbench: done`, SYSTEM_OFF. Failures: `FAIL: vbench: ...` and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferry_abi::hypercall;
use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, psci, time, vtimer};
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

rt::entry!(main);

const MAGIC: u32 = 0x7472_6976;
const R_MAGIC: usize = 0x000;
const R_DEVICE_ID: usize = 0x008;
const R_QUEUE_NOTIFY: usize = 0x050;
/// Most samples any benchmark keeps.
const MAX_SAMPLES: usize = 1000;

#[path = "../dma_hal.rs"]
mod dma_hal;
use dma_hal::PoolHal;

// ---------------------------------------------------------------------------------
// Interrupts: the watchdog, and the device's SPI (its entry time recorded).

static TIMEOUT_MS: AtomicU32 = AtomicU32::new(0);
static DEVICE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// CNTVCT at the device handler's entry, 0 until the next one.
static IRQ_AT: AtomicU64 = AtomicU64::new(0);
static DEVICE_IRQS: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid == DEVICE_INTID.load(Ordering::Relaxed) {
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
    fn report(&mut self, name: &str, unit: u64) {
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
fn batched(name: &str, batches: u64, batch: u64, mut op: impl FnMut()) {
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
fn single(name: &str, iters: u64, mut op: impl FnMut() -> (u64, u64)) {
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

    let fdt = boot.fdt();
    let Some(node) = fdt.find_compatible(&["virtio,mmio"]) else {
        fail!("vbench: no virtio,mmio node in the DTB");
    };
    let Some(reg) = node.reg().and_then(|mut r| r.next()) else {
        fail!("vbench: {}: no reg", node.name);
    };
    let base = reg.starting_address as usize;
    let size = reg.size.unwrap_or(0x200);
    let Some(spi) = node
        .property("interrupts")
        .and_then(|p| be_cells(p.value).nth(1))
    else {
        fail!("vbench: {}: no interrupts", node.name);
    };

    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vbench: GIC set-up: {e:?}");
    }
    gic::set_handler(handler);
    gic::set_private_priority(VTIMER_INTID, 0x80);
    gic::enable_private(1 << VTIMER_INTID);
    let intid = spi + 32;
    DEVICE_INTID.store(intid, Ordering::Relaxed);
    gic::set_dist_config(intid, true);
    gic::set_dist_priority(intid, 0xa0);
    gic::set_dist_router(intid, gic::router_for(arch::mpidr()));
    gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    vtimer::arm_in(time::ms_to_ticks(timeout_ms));
    irq::enable();

    // The backend may still be starting: its first answer waits for it.
    let magic = rd(base, R_MAGIC);
    let id = rd(base, R_DEVICE_ID);
    if magic != MAGIC || id != 4 {
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

    println!("bench: cntfrq {}", arch::cntfrq());
    vtimer::stop();
    println!(
        "vbench: done ({} device interrupts)",
        DEVICE_IRQS.load(Ordering::Relaxed)
    );
    psci::system_off()
}
