//! `vfe`: a bare-metal virtio frontend test guest, driving the virtio-mmio device
//! Ferry forwards to a backend partition (docs/ioreq.md) with an independent driver,
//! the `virtio-drivers` crate (its Hal: DMA pages from a static page-aligned pool
//! in this guest's RAM, physical = virtual since the guest runs identity-mapped).
//!
//! The device is the DTB's first `compatible = "virtio,mmio"` node (`reg`, and
//! `interrupts = <0 SPI flags>`: the SPI is enabled and its deliveries counted).
//! A watchdog on the EL1 virtual timer (`timeout_ms`, default 5000) ends the run with
//! `FAIL: vfe: timed out ...` and SYSTEM_RESET: the guest never hangs (each trapped
//! access is itself bounded by Ferry's deadline).
//!
//! Default (`expect=ok`): checks MagicValue ("virt"), Version 2 and a non-zero
//! DeviceID by hand, then
//! - rng (4): reads `bytes` (default 4096) random bytes through `VirtIORng`, checks
//!   they are not all zero and equal the backend's deterministic xorshift64 stream
//!   (vbe: seed 0x0123456789abcdef ^ device index; `seed=<hex>` overrides,
//!   `check_stream=0` skips);
//! - blk (2): writes a pattern to sectors 0..4 and to the last sector through
//!   `VirtIOBlk`, reads them back and compares;
//!
//! Then it checks Status has DRIVER_OK and not DEVICE_NEEDS_RESET, and SYSTEM_OFF.
//!
//! `expect=fail` (the backend hangs, crashes or answers garbage): drives the
//! registers by hand (reset, ACKNOWLEDGE, DRIVER, feature reads, queue 0 selection)
//! and requires one access to read all-ones or Status to show DEVICE_NEEDS_RESET
//! (0x40), then polls Status up to 2 s for it; the device staying healthy is a FAIL.
//!
//! `expect=request-fail` (a backend whose answer to a request must be refused):
//! for every `virtio,mmio` node in turn (rng only), device i: fills the page at
//! `pattern` + i x 4 KiB with a known pattern, sets the device up by hand
//! (VERSION_1 only, queue 0 of 4 entries with its rings in that page) and posts one
//! request, a 64-byte writable buffer in the middle of the page; then requires
//! Status to show DEVICE_NEEDS_RESET within 2 s with nothing in its used ring, and
//! the page unchanged outside the buffer (rings included).
//!
//! Other bootargs: `timeout_ms=` (watchdog, 5000), `delay_ms=` (wait before the
//! first access, 0), `pattern=<hex>` (a page-aligned address of this partition's
//! free RAM: with expect=ok or fail, that page is filled with a known pattern before
//! the first device access and checked before SYSTEM_OFF; needed by
//! expect=request-fail).
//!
//! Log: `vfe: virtio-mmio at <addr> (SPI <n>): magic ok, version 2, device id <id>, vendor <v>`,
//! `vfe: rng <n> bytes ok`, `vfe: rng bytes match the backend's xorshift stream`,
//! `vfe: blk <n> sectors, wrote and read back 5 sectors ok`,
//! `vfe: status <s>: DRIVER_OK, no DEVICE_NEEDS_RESET`,
//! `vfe: device failed as expected: <what> (after <k> accesses, <t> ms)`,
//! `vfe: pattern [<a>, <b>) intact`,
//! `vfe: device <i> at <addr>: DEVICE_NEEDS_RESET after one request (<t> ms), nothing used, [<a>, <b>) unchanged outside its 64-byte writable buffer`,
//! `vfe: <n> device interrupts`, `vfe: SYSTEM_OFF`; failures `FAIL: vfe: ...`.
#![no_std]
#![no_main]

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, fail, irq, println, psci, time, vtimer};
use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

rt::entry!(main);

const RNG_SEED: u64 = 0x0123_4567_89ab_cdef;
const MAGIC: u32 = 0x7472_6976;

// virtio-mmio registers.
const R_MAGIC: usize = 0x000;
const R_VERSION: usize = 0x004;
const R_DEVICE_ID: usize = 0x008;
const R_VENDOR_ID: usize = 0x00c;
const R_DEVICE_FEATURES: usize = 0x010;
const R_DEVICE_FEATURES_SEL: usize = 0x014;
const R_QUEUE_SEL: usize = 0x030;
const R_QUEUE_NUM_MAX: usize = 0x034;
const R_DRIVER_FEATURES: usize = 0x020;
const R_DRIVER_FEATURES_SEL: usize = 0x024;
const R_QUEUE_NUM: usize = 0x038;
const R_QUEUE_READY: usize = 0x044;
const R_QUEUE_NOTIFY: usize = 0x050;
const R_STATUS: usize = 0x070;
const R_QUEUE_DESC_LOW: usize = 0x080;
const R_QUEUE_DESC_HIGH: usize = 0x084;
const R_QUEUE_DRIVER_LOW: usize = 0x090;
const R_QUEUE_DRIVER_HIGH: usize = 0x094;
const R_QUEUE_DEVICE_LOW: usize = 0x0a0;
const R_QUEUE_DEVICE_HIGH: usize = 0x0a4;
const STATUS_ACK: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;
const STATUS_NEEDS_RESET: u32 = 0x40;

#[path = "../dma_hal.rs"]
mod dma_hal;
use dma_hal::PoolHal;

// ---------------------------------------------------------------------------------
// Watchdog and device interrupts.

static PHASE: AtomicUsize = AtomicUsize::new(0);
const PHASES: [&str; 6] = [
    "probe",
    "rng",
    "blk",
    "expect=fail register sequence",
    "status poll",
    "expect=request-fail",
];
static TIMEOUT_MS: AtomicU32 = AtomicU32::new(5000);
static DEVICE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static DEVICE_IRQS: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid == VTIMER_INTID {
        vtimer::stop();
        fail!(
            "vfe: timed out after {} ms ({})",
            TIMEOUT_MS.load(Ordering::Relaxed),
            PHASES[PHASE.load(Ordering::Relaxed)]
        );
    }
    if intid == DEVICE_INTID.load(Ordering::Relaxed) {
        DEVICE_IRQS.fetch_add(1, Ordering::Relaxed);
    }
}

fn phase(p: usize) {
    PHASE.store(p, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------

fn rd(base: usize, off: usize) -> u32 {
    // SAFETY: a 4-byte register of the device's virtio-mmio window (one LDR: Ferry
    // decodes it from the syndrome).
    unsafe { ptr::read_volatile((base + off) as *const u32) }
}

fn wr(base: usize, off: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { ptr::write_volatile((base + off) as *mut u32, v) }
}

fn be_cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn main(boot: &'static Boot) -> ! {
    let (expect_fail, request_fail) = match boot.arg("expect").unwrap_or("ok") {
        "ok" => (false, false),
        "fail" => (true, false),
        "request-fail" => (false, true),
        e => fail!("vfe: expect={e}: expected ok, fail or request-fail"),
    };
    let timeout_ms = boot.arg_u64("timeout_ms").unwrap_or(5000);
    TIMEOUT_MS.store(timeout_ms as u32, Ordering::Relaxed);

    let fdt = boot.fdt();
    let Some(node) = fdt.find_compatible(&["virtio,mmio"]) else {
        fail!("vfe: no virtio,mmio node in the DTB");
    };
    let Some(reg) = node.reg().and_then(|mut r| r.next()) else {
        fail!("vfe: {}: no reg", node.name);
    };
    let base = reg.starting_address as usize;
    let size = reg.size.unwrap_or(0x200);
    if boot.arg("ldp").is_some() {
        // A load pair: its syndrome does not describe it (ISV = 0), so Ferry cannot
        // forward it and injects a synchronous external abort instead, which the
        // runtime reports (`guest exception ... EC 0x25`) before resetting.
        println!("vfe: load pair from the virtio window at {base:#x}");
        let (a, b): (u64, u64);
        // SAFETY: a read of the device window; the abort it causes is the test.
        unsafe {
            core::arch::asm!("ldp {}, {}, [{}]", out(reg) a, out(reg) b, in(reg) base, options(nostack))
        };
        fail!("vfe: the load pair returned {a:#x} {b:#x} instead of aborting");
    }
    let spi = node
        .property("interrupts")
        .and_then(|p| be_cells(p.value).nth(1));

    // GIC: the watchdog timer, and the device's SPI (counted).
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vfe: GIC set-up: {e:?}");
    }
    gic::set_handler(handler);
    gic::set_private_priority(VTIMER_INTID, 0x80);
    gic::enable_private(1 << VTIMER_INTID);
    if let Some(spi) = spi {
        let intid = spi + 32;
        DEVICE_INTID.store(intid, Ordering::Relaxed);
        gic::set_dist_config(intid, true);
        gic::set_dist_priority(intid, 0xa0);
        gic::set_dist_router(intid, gic::router_for(ferry_partition_rt::arch::mpidr()));
        gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    }
    vtimer::arm_in(time::ms_to_ticks(timeout_ms));
    irq::enable();

    // Optional head start for the backend: an access before it serves fails the
    // device for good (Ferry's deadline runs from the access).
    let delay_ms = boot.arg_u64("delay_ms").unwrap_or(0);
    if delay_ms > 0 {
        time::delay_ms(delay_ms);
    }
    if request_fail {
        request_fail_all(boot);
    }
    if let Some(p) = boot.arg_hex("pattern") {
        let p = pattern_pages(boot, p, 1);
        fill_pattern(p);
        PATTERN.store(p, Ordering::Relaxed);
    }
    let start = time::ticks();
    phase(0);
    if expect_fail {
        expect_failure(base, start);
    }

    let magic = rd(base, R_MAGIC);
    let version = rd(base, R_VERSION);
    let id = rd(base, R_DEVICE_ID);
    let vendor = rd(base, R_VENDOR_ID);
    if magic != MAGIC || version != 2 || id == 0 {
        fail!(
            "vfe: virtio-mmio at {base:#x}: MagicValue {magic:#x} (expected {MAGIC:#x}), Version {version} (expected 2), DeviceID {id}"
        );
    }
    println!(
        "vfe: virtio-mmio at {base:#x} (SPI {}): magic ok, version 2, device id {id}, vendor {vendor:#x}",
        spi.map_or(-1, |s| s as i64)
    );

    // SAFETY: the window is this device's virtio-mmio registers, used by nothing else.
    let transport = match unsafe {
        MmioTransport::new(NonNull::new(base as *mut VirtIOHeader).expect("base"), size)
    } {
        Ok(t) => t,
        Err(e) => fail!("vfe: MmioTransport: {e}"),
    };
    match id {
        4 => rng(boot, transport),
        2 => blk(transport, boot.arg("disk_magic")),
        _ => fail!("vfe: device id {id}: only rng (4) and blk (2) are driven"),
    }

    let status = rd(base, R_STATUS);
    if status & STATUS_DRIVER_OK == 0 || status & STATUS_NEEDS_RESET != 0 {
        fail!("vfe: status {status:#x} after the test (expected DRIVER_OK, no DEVICE_NEEDS_RESET)");
    }
    println!("vfe: status {status:#x}: DRIVER_OK, no DEVICE_NEEDS_RESET");
    finish()
}

fn finish() -> ! {
    let p = PATTERN.load(Ordering::Relaxed);
    if p != 0 {
        let mut want = [0u8; PAGE];
        pattern_bytes(p, &mut want);
        if let Err(e) = compare(p, &want, 0..0) {
            fail!("vfe: pattern at {p:#x} CHANGED: {}", e.as_str());
        }
        println!("vfe: pattern [{p:#x}, {:#x}) intact", p + PAGE);
    }
    vtimer::stop();
    println!(
        "vfe: {} device interrupts",
        DEVICE_IRQS.load(Ordering::Relaxed)
    );
    println!("vfe: SYSTEM_OFF");
    psci::system_off()
}

fn rng(boot: &Boot, transport: MmioTransport<'static>) {
    phase(1);
    let want = boot.arg_u64("bytes").unwrap_or(4096) as usize;
    if want == 0 || want > 4096 {
        fail!("vfe: bytes={want}: 1..=4096");
    }
    let mut dev = match VirtIORng::<PoolHal, _>::new(transport) {
        Ok(d) => d,
        Err(e) => fail!("vfe: VirtIORng::new: {e}"),
    };
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let mut calls = 0;
    while got < want {
        match dev.request_entropy(&mut buf[got..want]) {
            Ok(0) => fail!("vfe: rng: request returned 0 bytes after {got}"),
            Ok(n) => got += n.min(want - got),
            Err(e) => fail!("vfe: rng: request_entropy after {got} bytes: {e}"),
        }
        calls += 1;
    }
    if buf[..got].iter().all(|&b| b == 0) {
        fail!("vfe: rng: {got} bytes, all zero");
    }
    println!(
        "vfe: rng {got} bytes ok ({calls} requests, first 8: {:02x?})",
        &buf[..8]
    );
    if boot.arg_u64("check_stream") != Some(0) {
        let mut x = boot.arg_hex("seed").unwrap_or(RNG_SEED);
        for (i, chunk) in buf[..got].chunks(8).enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let exp = x.to_le_bytes();
            if chunk != &exp[..chunk.len()] {
                fail!(
                    "vfe: rng: bytes {}..{} are {chunk:02x?}, the backend's xorshift stream has {:02x?}",
                    i * 8,
                    i * 8 + chunk.len(),
                    &exp[..chunk.len()]
                );
            }
        }
        println!("vfe: rng bytes match the backend's xorshift stream");
    }
    // Keep the device (and its transport) alive: dropping it resets the device.
    core::mem::forget(dev);
}

fn blk(transport: MmioTransport<'static>, disk_magic: Option<&str>) {
    phase(2);
    let mut dev = match VirtIOBlk::<PoolHal, _>::new(transport) {
        Ok(d) => d,
        Err(e) => fail!("vfe: VirtIOBlk::new: {e}"),
    };
    let cap = dev.capacity();
    if cap < 32 {
        fail!("vfe: blk: capacity {cap} sectors, want at least 32");
    }
    if let Some(magic) = disk_magic {
        check_disk_image(&mut dev, magic);
    }
    let pattern = |sector: u64, i: usize| (sector as u8).wrapping_mul(31) ^ (i as u8) ^ 0xa5;
    let mut buf = [0u8; 4 * SECTOR_SIZE];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern((i / SECTOR_SIZE) as u64, i % SECTOR_SIZE);
    }
    let last = cap - 1;
    let mut one = [0u8; SECTOR_SIZE];
    for (i, b) in one.iter_mut().enumerate() {
        *b = pattern(last, i);
    }
    if let Err(e) = dev.write_blocks(0, &buf) {
        fail!("vfe: blk: write sectors 0..4: {e}");
    }
    if let Err(e) = dev.write_blocks(last as usize, &one) {
        fail!("vfe: blk: write sector {last}: {e}");
    }
    let mut back = [0u8; 4 * SECTOR_SIZE];
    if let Err(e) = dev.read_blocks(0, &mut back) {
        fail!("vfe: blk: read sectors 0..4: {e}");
    }
    if let Some(i) = (0..back.len()).find(|&i| back[i] != buf[i]) {
        fail!(
            "vfe: blk: byte {i} read back {:#x}, wrote {:#x}",
            back[i],
            buf[i]
        );
    }
    let mut one_back = [0u8; SECTOR_SIZE];
    if let Err(e) = dev.read_blocks(last as usize, &mut one_back) {
        fail!("vfe: blk: read sector {last}: {e}");
    }
    if one_back != one {
        fail!("vfe: blk: sector {last} read back differs");
    }
    println!("vfe: blk {cap} sectors, wrote and read back 5 sectors ok");
    // Dropping the driver would reset the device; the caller checks its status.
    core::mem::forget(dev);
}

/// The disk image `make test-guests` writes (build/guests-bin/test-disk.img): sector 0
/// starts with `magic`, sectors 8..16 are all b'F', and everything after the image
/// (from sector 16 on) reads zero: Ferry zeroed the disk and loaded the image at its
/// start.
fn check_disk_image<T: virtio_drivers::transport::Transport>(
    dev: &mut VirtIOBlk<PoolHal, T>,
    magic: &str,
) {
    let mut sector = [0u8; SECTOR_SIZE];
    let read = |dev: &mut VirtIOBlk<PoolHal, T>, n: usize, buf: &mut [u8; SECTOR_SIZE]| {
        if let Err(e) = dev.read_blocks(n, buf) {
            fail!("vfe: blk: read sector {n}: {e}");
        }
    };
    read(dev, 0, &mut sector);
    if !sector.starts_with(magic.as_bytes()) {
        fail!("vfe: blk: sector 0 does not start with the disk image's {magic:?}");
    }
    for n in 8..16 {
        read(dev, n, &mut sector);
        if let Some(i) = sector.iter().position(|&b| b != b'F') {
            fail!(
                "vfe: blk: disk image sector {n} byte {i} is {:#x}, not 'F'",
                sector[i]
            );
        }
    }
    read(dev, 16, &mut sector);
    if sector.iter().any(|&b| b != 0) {
        fail!("vfe: blk: sector 16, past the disk image, is not zero");
    }
    println!("vfe: blk: disk image {magic:?} found at the disk's start, zero after it");
}

/// `expect=fail`: the backend is broken; some access must come back failed.
fn expect_failure(base: usize, start: u64) -> ! {
    phase(3);
    let mut accesses = 0u32;
    let ms = || time::ticks_to_ms(time::ticks() - start);
    let done = |what: &str, accesses: u32| -> ! {
        println!(
            "vfe: device failed as expected: {what} (after {accesses} accesses, {} ms)",
            ms()
        );
        finish()
    };
    // (register, write value or None for a read)
    let seq: [(usize, Option<u32>); 14] = [
        (R_MAGIC, None),
        (R_VERSION, None),
        (R_DEVICE_ID, None),
        (R_VENDOR_ID, None),
        (R_STATUS, Some(0)),
        (R_STATUS, None),
        (R_STATUS, Some(STATUS_ACK)),
        (R_STATUS, Some(STATUS_ACK | STATUS_DRIVER)),
        (R_DEVICE_FEATURES_SEL, Some(0)),
        (R_DEVICE_FEATURES, None),
        (R_DEVICE_FEATURES_SEL, Some(1)),
        (R_DEVICE_FEATURES, None),
        (R_QUEUE_SEL, Some(0)),
        (R_QUEUE_NUM_MAX, None),
    ];
    let names = |off: usize| match off {
        R_MAGIC => "MagicValue",
        R_VERSION => "Version",
        R_DEVICE_ID => "DeviceID",
        R_VENDOR_ID => "VendorID",
        R_STATUS => "Status",
        R_DEVICE_FEATURES => "DeviceFeatures",
        R_QUEUE_NUM_MAX => "QueueNumMax",
        _ => "register",
    };
    for (off, w) in seq {
        accesses += 1;
        let t0 = time::ticks();
        match w {
            Some(v) => wr(base, off, v),
            None => {
                let v = rd(base, off);
                if v == u32::MAX {
                    let t = time::ticks_to_ms(time::ticks() - t0);
                    let mut what = Msg::new();
                    let _ = core::fmt::write(
                        &mut what,
                        format_args!("{} read {v:#x} ({t} ms)", names(off)),
                    );
                    done(what.as_str(), accesses);
                }
                if off == R_STATUS && v & STATUS_NEEDS_RESET != 0 {
                    let mut what = Msg::new();
                    let _ = core::fmt::write(
                        &mut what,
                        format_args!("Status {v:#x} (DEVICE_NEEDS_RESET)"),
                    );
                    done(what.as_str(), accesses);
                }
            }
        }
    }
    // Every access looked healthy so far: the failure may still come (e.g. a
    // backend that dies later). Poll Status for up to 2 s.
    phase(4);
    let deadline = time::Deadline::after_ms(2000);
    while !deadline.passed() {
        accesses += 1;
        let v = rd(base, R_STATUS);
        if v == u32::MAX || v & STATUS_NEEDS_RESET != 0 {
            let mut what = Msg::new();
            let _ = core::fmt::write(&mut what, format_args!("Status read {v:#x}"));
            done(what.as_str(), accesses);
        }
        time::delay_ms(10);
    }
    fail!(
        "vfe: expect=fail, but the device stayed healthy ({accesses} accesses, {} ms)",
        ms()
    )
}

// ---------------------------------------------------------------------------------
// Known memory: `pattern=` pages, and `expect=request-fail`.

const PAGE: usize = 4096;
/// The `pattern=` page of expect=ok/fail (0: none).
static PATTERN: AtomicUsize = AtomicUsize::new(0);

/// `count` pages from `p`: page-aligned RAM of this partition, clear of the image
/// (code, data, stacks) and the DTB; returns `p`.
fn pattern_pages(boot: &Boot, p: u64, count: usize) -> usize {
    let end = p.saturating_add((count * PAGE) as u64);
    let clear = |a: u64, b: u64| end <= a || p >= b;
    let dtb = boot.dtb_region();
    let in_ram = boot.memory().iter().any(|r| p >= r.base && end <= r.end());
    if !p.is_multiple_of(PAGE as u64)
        || !in_ram
        || !clear(rt::image_start() as u64, rt::image_end() as u64)
        || !clear(dtb.base, dtb.end())
    {
        fail!(
            "vfe: pattern={p:#x}: {count} page(s) there are not free page-aligned RAM (image [{:#x}, {:#x}), DTB [{:#x}, {:#x}))",
            rt::image_start(),
            rt::image_end(),
            dtb.base,
            dtb.end()
        );
    }
    p as usize
}

/// The pattern of the page at `page`: every word its address, scrambled.
fn pattern_bytes(page: usize, out: &mut [u8; PAGE]) {
    for (i, w) in out.chunks_exact_mut(4).enumerate() {
        let a = (page + 4 * i) as u32;
        w.copy_from_slice(&(a.rotate_left(13) ^ 0xa5c3_5a3c).to_le_bytes());
    }
}

fn fill_pattern(page: usize) {
    let mut bytes = [0u8; PAGE];
    pattern_bytes(page, &mut bytes);
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: a free page of this partition's RAM (`pattern_pages`).
        unsafe { ptr::write_volatile((page + i) as *mut u8, b) };
    }
}

/// Compares the page at `page` with `want`, except the bytes in `skip`.
fn compare(page: usize, want: &[u8; PAGE], skip: core::ops::Range<usize>) -> Result<(), Msg> {
    let mut first = None;
    let mut differ = 0;
    for (i, &w) in want.iter().enumerate() {
        // SAFETY: as in `fill_pattern`.
        let got = unsafe { ptr::read_volatile((page + i) as *const u8) };
        if got != w && !skip.contains(&i) {
            differ += 1;
            first.get_or_insert((i, got, w));
        }
    }
    let Some((i, got, w)) = first else {
        return Ok(());
    };
    let mut m = Msg::new();
    let _ = core::fmt::write(
        &mut m,
        format_args!(
            "{:#x} reads {got:#04x}, expected {w:#04x} ({differ} bytes differ)",
            page + i
        ),
    );
    Err(m)
}

/// `expect=request-fail`: one request on every virtio-mmio device (rng), each in
/// its own page from `pattern`; each device must fail without using it.
fn request_fail_all(boot: &Boot) -> ! {
    phase(5);
    let fdt = boot.fdt();
    let windows = || {
        fdt.all_nodes()
            .filter(|n| {
                n.compatible()
                    .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
            })
            .map(|n| {
                n.reg()
                    .and_then(|mut r| r.next())
                    .map(|r| r.starting_address as usize)
            })
    };
    let count = windows().count();
    let Some(pattern) = boot.arg_hex("pattern") else {
        fail!("vfe: expect=request-fail needs pattern=<hex>");
    };
    let pattern = pattern_pages(boot, pattern, count.max(1));
    for (i, base) in windows().enumerate() {
        let Some(base) = base else {
            fail!("vfe: virtio-mmio node {i}: no reg");
        };
        request_fail(i, base, pattern + i * PAGE);
    }
    if count == 0 {
        fail!("vfe: no virtio,mmio node in the DTB");
    }
    finish()
}

/// Where `request_fail` puts queue 0 (4 entries) and its request in the page.
const RF_NUM: u32 = 4;
const RF_DESC: usize = 0x000;
const RF_AVAIL: usize = 0x100;
const RF_USED: usize = 0x200;
const RF_BUF: usize = 0x800;
const RF_LEN: usize = 64;

/// Device `i` at `base`: sets up queue 0 in `page`, posts one 64-byte writable
/// buffer and requires DEVICE_NEEDS_RESET with nothing used and the page unchanged
/// outside the buffer.
fn request_fail(i: usize, base: usize, page: usize) {
    fill_pattern(page);
    let (magic, version, id) = (
        rd(base, R_MAGIC),
        rd(base, R_VERSION),
        rd(base, R_DEVICE_ID),
    );
    if magic != MAGIC || version != 2 || id != 4 {
        fail!(
            "vfe: device {i} at {base:#x}: MagicValue {magic:#x}, Version {version}, DeviceID {id}: expected an rng (4)"
        );
    }
    wr(base, R_STATUS, 0);
    wr(base, R_STATUS, STATUS_ACK);
    wr(base, R_STATUS, STATUS_ACK | STATUS_DRIVER);
    wr(base, R_DEVICE_FEATURES_SEL, 1);
    if rd(base, R_DEVICE_FEATURES) & 1 == 0 {
        fail!("vfe: device {i}: no VERSION_1");
    }
    // VERSION_1 only: no event index, no indirect descriptors.
    wr(base, R_DRIVER_FEATURES_SEL, 0);
    wr(base, R_DRIVER_FEATURES, 0);
    wr(base, R_DRIVER_FEATURES_SEL, 1);
    wr(base, R_DRIVER_FEATURES, 1);
    let features_ok = STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK;
    wr(base, R_STATUS, features_ok);
    let status = rd(base, R_STATUS);
    if status & STATUS_FEATURES_OK == 0 {
        fail!("vfe: device {i}: FEATURES_OK refused (status {status:#x})");
    }
    wr(base, R_QUEUE_SEL, 0);
    let max = rd(base, R_QUEUE_NUM_MAX);
    if max < RF_NUM {
        fail!("vfe: device {i}: QueueNumMax {max} < {RF_NUM}");
    }
    let put = |off: usize, bytes: &[u8]| {
        for (k, &b) in bytes.iter().enumerate() {
            // SAFETY: inside `page`, a free page of this partition's RAM
            // (`pattern_pages`) used by nothing else (`off` + `bytes` < PAGE).
            unsafe { ptr::write_volatile((page + off + k) as *mut u8, b) };
        }
    };
    // The used ring starts empty; one descriptor: the writable buffer.
    put(RF_USED, &[0; 6 + 8 * RF_NUM as usize]);
    let mut desc = [0u8; 16];
    desc[..8].copy_from_slice(&((page + RF_BUF) as u64).to_le_bytes());
    desc[8..12].copy_from_slice(&(RF_LEN as u32).to_le_bytes());
    desc[12..14].copy_from_slice(&2u16.to_le_bytes()); // VIRTQ_DESC_F_WRITE
    put(RF_DESC, &desc);
    put(RF_AVAIL, &[0; 4 + 2 * RF_NUM as usize + 2]);
    wr(base, R_QUEUE_NUM, RF_NUM);
    for (lo, hi, off) in [
        (R_QUEUE_DESC_LOW, R_QUEUE_DESC_HIGH, RF_DESC),
        (R_QUEUE_DRIVER_LOW, R_QUEUE_DRIVER_HIGH, RF_AVAIL),
        (R_QUEUE_DEVICE_LOW, R_QUEUE_DEVICE_HIGH, RF_USED),
    ] {
        let a = (page + off) as u64;
        wr(base, lo, a as u32);
        wr(base, hi, (a >> 32) as u32);
    }
    wr(base, R_QUEUE_READY, 1);
    wr(base, R_STATUS, features_ok | STATUS_DRIVER_OK);
    // Post descriptor 0 (avail.ring[0] is already 0): avail.idx = 1.
    fence(Ordering::SeqCst);
    put(RF_AVAIL + 2, &1u16.to_le_bytes());
    let mut want = [0u8; PAGE];
    for (k, b) in want.iter_mut().enumerate() {
        // SAFETY: as above.
        *b = unsafe { ptr::read_volatile((page + k) as *const u8) };
    }
    fence(Ordering::SeqCst);
    let t0 = time::ticks();
    wr(base, R_QUEUE_NOTIFY, 0);
    let used = || {
        // SAFETY: as above.
        let r = |off: usize| unsafe { ptr::read_volatile((page + RF_USED + off) as *const u32) };
        ((r(0) >> 16) as u16, r(4), r(8))
    };
    let deadline = time::Deadline::after_ms(2000);
    loop {
        let status = rd(base, R_STATUS);
        let (idx, id, len) = used();
        if idx != 0 {
            fail!(
                "vfe: device {i}: the request came back used (used.idx {idx}, id {id}, len {len}; {RF_LEN} writable bytes), status {status:#x}: the backend's used entry was NOT refused"
            );
        }
        if status == u32::MAX || status & STATUS_NEEDS_RESET != 0 {
            break;
        }
        if deadline.passed() {
            fail!("vfe: device {i}: still healthy 2 s after the request (status {status:#x})");
        }
        time::delay_ms(1);
    }
    let ms = time::ticks_to_ms(time::ticks() - t0);
    if let Err(e) = compare(page, &want, RF_BUF..RF_BUF + RF_LEN) {
        fail!(
            "vfe: device {i}: memory outside the writable buffer CHANGED: {}",
            e.as_str()
        );
    }
    println!(
        "vfe: device {i} at {base:#x}: DEVICE_NEEDS_RESET after one request ({ms} ms), nothing used, [{page:#x}, {:#x}) unchanged outside its {RF_LEN}-byte writable buffer",
        page + PAGE
    );
}

/// A small formatted message on the stack.
struct Msg {
    buf: [u8; 96],
    len: usize,
}

impl Msg {
    fn new() -> Self {
        Msg {
            buf: [0; 96],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
