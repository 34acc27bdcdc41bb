//! `vfe-hostile`: a bare-metal virtio frontend that is its own, hostile, driver. It
//! drives every `compatible = "virtio,mmio"` device of its DTB (in DT order, which is
//! config order) by hand — the virtio-mmio registers of the device library's
//! `spec::reg`, its own split virtqueues in its own RAM — and posts on each device
//! the descriptor chain its entry in `kinds` names. Meant for copy-mode devices
//! (docs/ioreq.md, "Sharing modes"): on QueueNotify Ferry walks the chain with the
//! device library's validated walker, and every hostile kind must fail the device
//! there, before the backend sees anything.
//!
//! All devices must be virtio-rng (a good device's bytes are checked against vbe's
//! xorshift64 stream). `kinds=` (comma-separated, one per device; required, as many
//! as devices, at most 16):
//!
//! | kind | the chain posted (queue 0) |
//! |---|---|
//! | `loop` | two writable descriptors naming each other |
//! | `next` | a writable descriptor whose `next` is the queue size |
//! | `head` | an available-ring entry of queue size + 1 |
//! | `ferry` | a writable 256-byte buffer at `ferry_addr` (default 0x41000000: Ferry's RAM as a host address) |
//! | `other` | a writable 256-byte buffer at `other_addr` (default 0x48c00000: another partition's RAM as a host address) |
//! | `window` | a writable buffer on the device's own virtio-mmio window |
//! | `ram-end` | a readable 512-byte buffer from 256 bytes below the end of the first RAM region, then a writable one |
//! | `long` | 65 chained writable descriptors (queue size 128; the walker takes at most 64) |
//! | `overflow` | two writable descriptors of 0xfffff000 bytes each (the total overflows u32) |
//! | `too-big` | one writable buffer of 12 KiB (a 64 KiB bounce area holds 8 KiB of data per queue) |
//! | `indirect` | an indirect table (two valid descriptors) without VIRTIO_F_RING_INDIRECT_DESC negotiated |
//! | `nested` | INDIRECT_DESC negotiated; an indirect table whose entry is an indirect table |
//! | `raw` | a readable descriptor after a writable one |
//! | `zero` | a writable descriptor of length 0 |
//! | `good:<n>` | none: a well-behaved device whose backend draws from xorshift64 seeded 0x0123456789abcdef ^ `n` (vbe: `n` = its number on its backend); a plain request |
//! | `rewrite:<n>` | as `good:<n>`, with the rewrite check before the plain request |
//!
//! Every hostile device first, in order: reset, ACKNOWLEDGE, DRIVER, VERSION_1 (plus
//! INDIRECT_DESC for `nested`), FEATURES_OK, queue 0 (size 8, 128 for `long`) with
//! zeroed rings, DRIVER_OK (Status must read 0xf); the chain, avail.idx = 1,
//! QueueNotify; then Status must read 0x4f (DEVICE_NEEDS_RESET), InterruptStatus 0x2
//! and MagicValue all-ones, and the device's SPI (a configuration-change interrupt)
//! must arrive within 1 s.
//!
//! Then every good device (queue size 16, set up the same way). A `rewrite` device
//! first gets the rewrite check: a 64-byte writable descriptor is posted and notified, and right after the notify it
//! is rewritten to name a 256-byte decoy buffer; the completion must carry the head
//! and length 64 and the 64 stream bytes must be in the originally posted buffer, the
//! decoy untouched (Ferry moves the chain as validated at the notify). If the
//! completion is already there when the rewrite lands, the check proves nothing and
//! is repeated (up to 8 times, else FAIL): give that device a backend slower than the
//! frontend's next store (a polling one; with a doorbell, the completion usually
//! comes first under multi-threaded TCG). Then, for both kinds, a plain 1024-byte
//! request; its bytes must continue the stream. Each completion must raise the
//! device's SPI within 1 s; Status must read 0xf at the end.
//!
//! Guard: before anything, the guest fills its RAM from its image end to its DTB with
//! an address-derived pattern; each device owns 32 KiB of it (rings, indirect tables,
//! buffers). What the driver writes is mirrored into a per-device expected image, and
//! so is what the device must write (used ring, the stream bytes); after every notify
//! and completion the whole guard area must equal pattern + expected images, byte
//! for byte: no byte outside the writable buffers of completed requests changes.
//! At the end every hostile device must still read Status 0x4f.
//!
//! Other bootargs: `timeout_ms=` (virtual-timer watchdog, default 60000),
//! `ferry_addr=<hex>`, `other_addr=<hex>`.
//!
//! Log: `vfe-hostile: <n> virtio-mmio devices, guard pattern over [<a>, <b>) (<n> bytes)`,
//! per hostile device `vfe-hostile: device <k> at <window> (<kind>: <what>): Status 0x4f
//! (DEVICE_NEEDS_RESET), InterruptStatus 0x2, configuration-change interrupt, memory
//! intact`, per good device (`rewrite` only: `vfe-hostile: device <k> (good): request
//! <i> completed before the rewrite landed; again` per inconclusive try, `vfe-hostile:
//! device <k> at <window> (good): rewritten after the notify (attempt <i>): the 64
//! bytes landed in the buffer as posted, the decoy is untouched`) `vfe-hostile: device
//! <k> at <window> (good): plain request of 1024 bytes ok (<n> stream bytes in all), <m>
//! interrupts, Status 0xf`, then `vfe-hostile: all <n> devices checked,
//! frontend memory intact (<n> bytes)`, `vfe-hostile: SYSTEM_OFF`.
//!
//! Failure: `FAIL: vfe-hostile: ...` and SYSTEM_RESET: bad bootargs or DT, a register
//! that reads wrong during set-up, a hostile device that stays healthy or gives no
//! interrupt, a good device that does not complete within 2 s, wrong bytes, a used
//! entry with the wrong id or length, the decoy written, 8 inconclusive rewrite tries,
//! a changed guard byte (its address, what was read and expected), a device's Status
//! at the end, an interrupt of no device, or the watchdog (`timed out after <ms> ms
//! (device <k>)`).
#![no_std]
#![no_main]

use core::fmt::Write;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, fail, irq, println, psci, time, vtimer};
use ferry_virtio_backend::spec::{self, desc_flags, device_id, feature, reg, status};

rt::entry!(main);

/// vbe's rng seed: device `n` of a backend draws from xorshift64 seeded `RNG_SEED ^ n`.
const RNG_SEED: u64 = 0x0123_4567_89ab_cdef;

/// Devices this guest drives at most.
const MAX_DEVICES: usize = 16;

/// Each device's part of the guard area, and where things are in it.
const AREA: usize = 0x8000;
const DESC: usize = 0x0000;
const AVAIL: usize = 0x1000;
const USED: usize = 0x2000;
const TABLE: usize = 0x3000;
const BUF: usize = 0x4000;

/// Status after a clean set-up: ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK.
const LIVE: u32 =
    (status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK) as u32;
const FAILED: u32 = LIVE | status::DEVICE_NEEDS_RESET as u32;

/// Bytes a good device's rewritten request asks for, and its decoy's length.
const REWRITE_LEN: usize = 64;
const DECOY_LEN: usize = 256;
/// Bytes of a good device's plain request.
const PLAIN_LEN: usize = 1024;
/// Tries of the rewrite check (descriptors 0.. of a good device's 16).
const REWRITE_TRIES: u16 = 8;

// ---------------------------------------------------------------------------------
// Watchdog and device interrupts.

static TIMEOUT_MS: AtomicU32 = AtomicU32::new(60000);
/// The device being driven (for the watchdog's message); `usize::MAX`: none.
static PHASE: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Interrupts taken, per SPI.
static IRQS: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];
static OTHER_IRQS: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid == VTIMER_INTID {
        vtimer::stop();
        let p = PHASE.load(Ordering::Relaxed);
        if p == usize::MAX {
            fail!(
                "vfe-hostile: timed out after {} ms (set-up)",
                TIMEOUT_MS.load(Ordering::Relaxed)
            );
        }
        fail!(
            "vfe-hostile: timed out after {} ms (device {p})",
            TIMEOUT_MS.load(Ordering::Relaxed)
        );
    }
    match IRQS.get(intid.wrapping_sub(32) as usize) {
        Some(n) => n.fetch_add(1, Ordering::Relaxed),
        None => OTHER_IRQS.fetch_add(1, Ordering::Relaxed),
    };
}

fn irqs(spi: u32) -> u32 {
    IRQS[spi as usize].load(Ordering::Relaxed)
}

/// Waits up to 1 s for SPI `spi`'s count to pass `before`.
fn wait_irq(spi: u32, before: u32) -> bool {
    let deadline = time::Deadline::after_ms(1000);
    while irqs(spi) == before {
        if deadline.passed() {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

// ---------------------------------------------------------------------------------
// Registers, barriers.

fn rd(base: usize, off: u32) -> u32 {
    // SAFETY: a 4-byte register of a virtio-mmio window (one LDR: Ferry decodes it
    // from the syndrome).
    unsafe { ptr::read_volatile((base + off as usize) as *const u32) }
}

fn wr(base: usize, off: u32, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { ptr::write_volatile((base + off as usize) as *mut u32, v) }
}

/// Orders the ring writes before what follows (the notify, another ring write).
fn dsb() {
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

// ---------------------------------------------------------------------------------
// The guard area: pattern, per-device expected images.

/// The guard pattern of the 8-byte word at `addr`.
fn pattern(addr: u64) -> u64 {
    addr.rotate_left(17) ^ 0x5a5a_a5a5_0f0f_f0f0
}

/// What each device's area must hold once it is set up: what the driver wrote and
/// what the device was expected to write, over the pattern.
#[repr(C, align(4096))]
struct Images([[u8; AREA]; MAX_DEVICES]);
static mut IMAGES: Images = Images([[0; AREA]; MAX_DEVICES]);
/// Device k's image (k < MAX_DEVICES).
fn image_of(k: usize) -> *mut [u8; AREA] {
    (&raw mut IMAGES).cast::<[u8; AREA]>().wrapping_add(k)
}

/// Bit k: device k's area is set up (compared with its image, not the pattern).
static SET_UP: AtomicU32 = AtomicU32::new(0);

/// The guard area: `[start, end)`, device k's area at `start + k * AREA`.
#[derive(Clone, Copy)]
struct Guard {
    start: usize,
    end: usize,
}

impl Guard {
    fn fill(&self) {
        for a in (self.start..self.end).step_by(8) {
            // SAFETY: [start, end) is this guest's RAM above its image, below its DTB.
            unsafe { ptr::write_volatile(a as *mut u64, pattern(a as u64)) };
        }
    }

    /// Compares the whole area with what it must hold; FAIL at the first difference.
    fn check(&self, what: &str) {
        let set_up = SET_UP.load(Ordering::Relaxed);
        let mut bad = 0u64;
        let mut first = None;
        for a in (self.start..self.end).step_by(8) {
            let k = (a - self.start) / AREA;
            let expected = if k < MAX_DEVICES && set_up >> k & 1 == 1 {
                let off = (a - self.start) % AREA;
                // SAFETY: the image of device k, read by the one vCPU.
                let img = unsafe { &*image_of(k) };
                u64::from_le_bytes(img[off..off + 8].try_into().unwrap_or([0; 8]))
            } else {
                pattern(a as u64)
            };
            // SAFETY: as in `fill`.
            let got = unsafe { ptr::read_volatile(a as *const u64) };
            if got != expected {
                bad += 1;
                first.get_or_insert((a, got, expected));
            }
        }
        if let Some((a, got, expected)) = first {
            let k = (a - self.start) / AREA;
            let whose = if k < MAX_DEVICES && set_up >> k & 1 == 1 {
                Msg::from(format_args!(
                    "device {k}'s area, offset {:#x}",
                    (a - self.start) % AREA
                ))
            } else {
                Msg::from(format_args!("the guard pattern"))
            };
            fail!(
                "vfe-hostile: {what}: frontend memory changed at {a:#x} ({}): read {got:#018x}, expected {expected:#018x} ({bad} words differ)",
                whose.as_str()
            );
        }
    }
}

/// Device k's area: the driver's writes go to memory and to its image; the device's
/// expected writes to the image only.
struct Area {
    k: usize,
    addr: usize,
}

impl Area {
    /// Takes the area over: its image starts as the pattern it holds.
    fn new(guard: &Guard, k: usize) -> Area {
        let addr = guard.start + k * AREA;
        // SAFETY: the image of device k, used by the one vCPU.
        let img = unsafe { &mut *image_of(k) };
        for (i, w) in img.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&pattern((addr + 8 * i) as u64).to_le_bytes());
        }
        SET_UP.fetch_or(1 << k, Ordering::Relaxed);
        Area { k, addr }
    }

    fn at(&self, off: usize) -> u64 {
        (self.addr + off) as u64
    }

    fn image(&self) -> &'static mut [u8; AREA] {
        // SAFETY: as in `new`; one reference at a time.
        unsafe { &mut *image_of(self.k) }
    }

    /// The device is expected to write `data` at `off`.
    fn expect(&self, off: usize, data: &[u8]) {
        self.image()[off..off + data.len()].copy_from_slice(data);
    }

    /// The driver writes `data` at `off` (byte by byte).
    fn put(&self, off: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: inside this device's area of the guard (off + len <= AREA).
            unsafe { ptr::write_volatile((self.addr + off + i) as *mut u8, b) };
        }
        self.expect(off, data);
    }

    /// The driver writes a ring index: one 16-bit store.
    fn put_u16(&self, off: usize, v: u16) {
        // SAFETY: an aligned u16 inside this device's area.
        unsafe { ptr::write_volatile((self.addr + off) as *mut u16, v) };
        self.expect(off, &v.to_le_bytes());
    }

    fn get(&self, off: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: inside this device's area.
            *b = unsafe { ptr::read_volatile((self.addr + off + i) as *const u8) };
        }
    }

    fn get_u16(&self, off: usize) -> u16 {
        // SAFETY: an aligned u16 inside this device's area.
        unsafe { ptr::read_volatile((self.addr + off) as *const u16) }
    }

    fn get_u32(&self, off: usize) -> u32 {
        // SAFETY: an aligned u32 inside this device's area.
        unsafe { ptr::read_volatile((self.addr + off) as *const u32) }
    }

    /// Descriptor `i` of the table at `table` (an area offset).
    fn desc_in(&self, table: usize, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        self.put(table + 16 * i, &d);
    }

    fn desc(&self, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        self.desc_in(DESC, i, addr, len, flags, next);
    }

    /// Zeroed rings of `num` entries.
    fn clear_rings(&self, num: u16) {
        let n = usize::from(num);
        let zeros = [0u8; 256];
        for (off, len) in [(DESC, 16 * n), (AVAIL, 6 + 2 * n), (USED, 6 + 8 * n)] {
            for at in (0..len).step_by(zeros.len()) {
                self.put(off + at, &zeros[..(len - at).min(zeros.len())]);
            }
        }
    }

    /// Makes head `head` available as avail entry `i` (avail.idx = i + 1).
    fn publish(&self, num: u16, i: u16, head: u16) {
        self.put_u16(AVAIL + 4 + 2 * usize::from(i % num), head);
        dsb();
        self.put_u16(AVAIL + 2, i.wrapping_add(1));
        dsb();
    }
}

// ---------------------------------------------------------------------------------
// The kinds.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Loop,
    Next,
    Head,
    Ferry,
    Other,
    Window,
    RamEnd,
    Long,
    Overflow,
    TooBig,
    Indirect,
    Nested,
    Raw,
    Zero,
    /// A well-behaved device: its backend's xorshift seed index, and whether it
    /// gets the rewrite check before its plain request.
    Good(u64, bool),
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "loop" => Kind::Loop,
            "next" => Kind::Next,
            "head" => Kind::Head,
            "ferry" => Kind::Ferry,
            "other" => Kind::Other,
            "window" => Kind::Window,
            "ram-end" => Kind::RamEnd,
            "long" => Kind::Long,
            "overflow" => Kind::Overflow,
            "too-big" => Kind::TooBig,
            "indirect" => Kind::Indirect,
            "nested" => Kind::Nested,
            "raw" => Kind::Raw,
            "zero" => Kind::Zero,
            _ => match s.split_once(':')? {
                ("good", n) => Kind::Good(n.parse().ok()?, false),
                ("rewrite", n) => Kind::Good(n.parse().ok()?, true),
                _ => return None,
            },
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Loop => "loop: a descriptor loop",
            Kind::Next => "next: a next index beyond the table",
            Kind::Head => "head: a head index beyond the table",
            Kind::Ferry => "ferry: a buffer in Ferry's memory",
            Kind::Other => "other: a buffer in another partition's memory",
            Kind::Window => "window: a buffer on its own virtio window",
            Kind::RamEnd => "ram-end: a buffer running past the end of RAM",
            Kind::Long => "long: a chain of 65 descriptors",
            Kind::Overflow => "overflow: writable lengths overflowing u32",
            Kind::TooBig => "too-big: a request larger than the bounce area",
            Kind::Indirect => "indirect: an indirect table, not negotiated",
            Kind::Nested => "nested: an indirect table in an indirect table",
            Kind::Raw => "raw: readable after writable",
            Kind::Zero => "zero: a zero-length descriptor",
            Kind::Good(..) => "good",
        }
    }

    fn queue_size(self) -> u16 {
        match self {
            Kind::Long => 128,
            Kind::Good(..) => 16,
            _ => 8,
        }
    }

    /// Feature bits 0..31 it negotiates (VERSION_1, bit 32, always).
    fn features(self) -> u32 {
        match self {
            Kind::Nested => feature::RING_INDIRECT_DESC as u32,
            _ => 0,
        }
    }
}

/// One device: its number (DT order), window, SPI and kind.
#[derive(Clone, Copy)]
struct Dev {
    k: usize,
    base: usize,
    spi: u32,
    kind: Kind,
}

/// Addresses the hostile chains aim at.
struct Targets {
    ferry: u64,
    other: u64,
    ram_end: u64,
}

// ---------------------------------------------------------------------------------

fn be_cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn main(boot: &'static Boot) -> ! {
    let timeout_ms = boot.arg_u64("timeout_ms").unwrap_or(60000);
    TIMEOUT_MS.store(timeout_ms as u32, Ordering::Relaxed);
    let Some(kinds) = boot.arg("kinds") else {
        fail!("vfe-hostile: no kinds= bootarg");
    };
    let mut devs = [Dev {
        k: 0,
        base: 0,
        spi: 0,
        kind: Kind::Loop,
    }; MAX_DEVICES];
    let mut n = 0;
    for (k, node) in boot
        .fdt()
        .all_nodes()
        .filter(|n| {
            n.compatible()
                .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"))
        })
        .enumerate()
    {
        let Some(reg) = node.reg().and_then(|mut r| r.next()) else {
            fail!("vfe-hostile: {}: no reg", node.name);
        };
        let Some(spi) = node
            .property("interrupts")
            .and_then(|p| be_cells(p.value).nth(1))
            .filter(|&s| s < 64)
        else {
            fail!("vfe-hostile: {}: no SPI below 64 in interrupts", node.name);
        };
        if k >= MAX_DEVICES {
            fail!("vfe-hostile: more than {MAX_DEVICES} virtio-mmio devices");
        }
        devs[k] = Dev {
            k,
            base: reg.starting_address as usize,
            spi,
            kind: Kind::Loop,
        };
        n = k + 1;
    }
    let mut given = 0;
    for (k, s) in kinds.split(',').enumerate() {
        let Some(kind) = Kind::parse(s) else {
            fail!("vfe-hostile: kinds: {s:?} is not a kind");
        };
        if k >= n {
            fail!("vfe-hostile: kinds names more kinds than the {n} devices");
        }
        devs[k].kind = kind;
        given = k + 1;
    }
    if given != n {
        fail!("vfe-hostile: kinds names {given} kinds for {n} devices");
    }
    let devs = &devs[..n];

    let Some(mem) = boot.memory().first().copied() else {
        fail!("vfe-hostile: the DTB has no /memory");
    };
    let start = (rt::image_end() + 0xfff) & !0xfff;
    let dtb = boot.dtb_region().base;
    let end = if (mem.base..mem.end()).contains(&dtb) {
        dtb
    } else {
        mem.end()
    } as usize
        & !7;
    if start + n * AREA > end {
        fail!(
            "vfe-hostile: no room for {n} device areas of {AREA:#x} bytes in [{start:#x}, {end:#x})"
        );
    }
    let guard = Guard { start, end };
    let targets = Targets {
        ferry: boot.arg_hex("ferry_addr").unwrap_or(0x4100_0000),
        other: boot.arg_hex("other_addr").unwrap_or(0x48c0_0000),
        ram_end: mem.end(),
    };

    // GIC: the watchdog timer and every device's SPI (counted).
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("vfe-hostile: GIC set-up: {e:?}");
    }
    gic::set_handler(handler);
    gic::set_private_priority(VTIMER_INTID, 0x80);
    gic::enable_private(1 << VTIMER_INTID);
    for d in devs {
        let intid = d.spi + 32;
        gic::set_dist_config(intid, true);
        gic::set_dist_priority(intid, 0xa0);
        gic::set_dist_router(intid, gic::router_for(ferry_partition_rt::arch::mpidr()));
        gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    }
    vtimer::arm_in(time::ms_to_ticks(timeout_ms));
    irq::enable();

    guard.fill();
    println!(
        "vfe-hostile: {n} virtio-mmio devices, guard pattern over [{start:#x}, {end:#x}) ({} bytes)",
        end - start
    );

    for d in devs.iter().filter(|d| !matches!(d.kind, Kind::Good(..))) {
        PHASE.store(d.k, Ordering::Relaxed);
        hostile(&guard, d, &targets);
    }
    for d in devs {
        if let Kind::Good(seed, rewrite) = d.kind {
            PHASE.store(d.k, Ordering::Relaxed);
            good(&guard, d, seed, rewrite);
        }
    }

    for d in devs {
        let s = rd(d.base, reg::STATUS);
        let want = if matches!(d.kind, Kind::Good(..)) {
            LIVE
        } else {
            FAILED
        };
        if s != want {
            fail!(
                "vfe-hostile: device {} ({}): Status {s:#x} at the end, expected {want:#x}",
                d.k,
                d.kind.name()
            );
        }
    }
    guard.check("at the end");
    vtimer::stop();
    let other = OTHER_IRQS.load(Ordering::Relaxed);
    if other != 0 {
        fail!("vfe-hostile: {other} interrupts of no device");
    }
    println!(
        "vfe-hostile: all {n} devices checked, frontend memory intact ({} bytes)",
        end - start
    );
    println!("vfe-hostile: SYSTEM_OFF");
    psci::system_off()
}

/// Resets device `d` and sets it up by hand with queue 0 of `num` entries at its
/// area's rings: Status must end at ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK.
fn set_up(d: &Dev, a: &Area, num: u16, features: u32) {
    let b = d.base;
    let k = d.k;
    let (magic, version, id) = (
        rd(b, reg::MAGIC_VALUE),
        rd(b, reg::VERSION),
        rd(b, reg::DEVICE_ID),
    );
    if magic != spec::MAGIC || version != spec::MMIO_VERSION || id != device_id::RNG {
        fail!(
            "vfe-hostile: device {k} at {b:#x}: MagicValue {magic:#x}, Version {version}, DeviceID {id} (expected {:#x}, 2, rng 4)",
            spec::MAGIC
        );
    }
    wr(b, reg::STATUS, 0);
    let s = rd(b, reg::STATUS);
    if s != 0 {
        fail!("vfe-hostile: device {k}: Status {s:#x} after the reset");
    }
    let ack = u32::from(status::ACKNOWLEDGE);
    let driver = ack | u32::from(status::DRIVER);
    let features_ok = driver | u32::from(status::FEATURES_OK);
    wr(b, reg::STATUS, ack);
    wr(b, reg::STATUS, driver);
    wr(b, reg::DEVICE_FEATURES_SEL, 1);
    let hi = rd(b, reg::DEVICE_FEATURES);
    wr(b, reg::DEVICE_FEATURES_SEL, 0);
    let lo = rd(b, reg::DEVICE_FEATURES);
    let version_1 = (feature::VERSION_1 >> 32) as u32;
    if hi & version_1 == 0 || lo & features != features {
        fail!(
            "vfe-hostile: device {k}: DeviceFeatures {hi:#x}:{lo:#x} lack VERSION_1 or {features:#x}"
        );
    }
    wr(b, reg::DRIVER_FEATURES_SEL, 1);
    wr(b, reg::DRIVER_FEATURES, version_1);
    wr(b, reg::DRIVER_FEATURES_SEL, 0);
    wr(b, reg::DRIVER_FEATURES, features);
    wr(b, reg::STATUS, features_ok);
    let s = rd(b, reg::STATUS);
    if s != features_ok {
        fail!("vfe-hostile: device {k}: Status {s:#x} after FEATURES_OK");
    }
    wr(b, reg::QUEUE_SEL, 0);
    let max = rd(b, reg::QUEUE_NUM_MAX);
    let ready = rd(b, reg::QUEUE_READY);
    if max < u32::from(num) || ready != 0 {
        fail!("vfe-hostile: device {k}: QueueNumMax {max} (need {num}), QueueReady {ready}");
    }
    wr(b, reg::QUEUE_NUM, u32::from(num));
    for (lo, addr) in [
        (reg::QUEUE_DESC_LOW, a.at(DESC)),
        (reg::QUEUE_DRIVER_LOW, a.at(AVAIL)),
        (reg::QUEUE_DEVICE_LOW, a.at(USED)),
    ] {
        wr(b, lo, addr as u32);
        wr(b, lo + 4, (addr >> 32) as u32);
    }
    wr(b, reg::QUEUE_READY, 1);
    let ready = rd(b, reg::QUEUE_READY);
    wr(b, reg::STATUS, LIVE);
    let s = rd(b, reg::STATUS);
    if ready != 1 || s != LIVE {
        fail!("vfe-hostile: device {k}: QueueReady {ready}, Status {s:#x} after DRIVER_OK");
    }
}

/// Posts `d`'s hostile chain and checks the device failed, loudly and cleanly.
fn hostile(guard: &Guard, d: &Dev, t: &Targets) {
    let a = Area::new(guard, d.k);
    let num = d.kind.queue_size();
    a.clear_rings(num);
    set_up(d, &a, num, d.kind.features());
    let (w, n) = (desc_flags::WRITE, desc_flags::NEXT);
    let buf = a.at(BUF);
    let mut head = 0;
    match d.kind {
        Kind::Loop => {
            a.desc(0, buf, 16, w | n, 1);
            a.desc(1, buf + 0x100, 16, w | n, 0);
        }
        Kind::Next => a.desc(0, buf, 16, w | n, num),
        Kind::Head => {
            a.desc(0, buf, 16, w, 0);
            head = num + 1;
        }
        Kind::Ferry => a.desc(0, t.ferry, 0x100, w, 0),
        Kind::Other => a.desc(0, t.other, 0x100, w, 0),
        Kind::Window => a.desc(0, d.base as u64, 0x200, w, 0),
        Kind::RamEnd => {
            a.desc(0, t.ram_end - 0x100, 0x200, n, 1);
            a.desc(1, buf, 16, w, 0);
        }
        Kind::Long => {
            for i in 0..65u16 {
                let more = if i < 64 { n } else { 0 };
                a.desc(usize::from(i), buf + 16 * u64::from(i), 16, w | more, i + 1);
            }
        }
        Kind::Overflow => {
            a.desc(0, buf, 0xffff_f000, w | n, 1);
            a.desc(1, buf, 0xffff_f000, w, 0);
        }
        Kind::TooBig => a.desc(0, buf, 0x3000, w, 0),
        Kind::Indirect => {
            a.desc_in(TABLE, 0, buf, 16, w | n, 1);
            a.desc_in(TABLE, 1, buf + 0x100, 16, w, 0);
            a.desc(0, a.at(TABLE), 32, desc_flags::INDIRECT, 0);
        }
        Kind::Nested => {
            a.desc_in(TABLE + 0x100, 0, buf, 16, w, 0);
            a.desc_in(TABLE, 0, a.at(TABLE + 0x100), 16, desc_flags::INDIRECT, 0);
            a.desc(0, a.at(TABLE), 16, desc_flags::INDIRECT, 0);
        }
        Kind::Raw => {
            a.desc(0, buf, 16, w | n, 1);
            a.desc(1, buf + 0x100, 16, 0, 0);
        }
        Kind::Zero => a.desc(0, buf, 0, w, 0),
        Kind::Good(..) => fail!("vfe-hostile: device {}: good is not hostile", d.k),
    }
    a.publish(num, 0, head);
    let before = irqs(d.spi);
    wr(d.base, reg::QUEUE_NOTIFY, 0);

    let k = d.k;
    let what = d.kind.name();
    let s = rd(d.base, reg::STATUS);
    let is = rd(d.base, reg::INTERRUPT_STATUS);
    let magic = rd(d.base, reg::MAGIC_VALUE);
    if s != FAILED || is != spec::INT_CONFIG_CHANGE || magic != u32::MAX {
        fail!(
            "vfe-hostile: device {k} ({what}): after the notify Status {s:#x}, InterruptStatus {is:#x}, MagicValue {magic:#x} (expected {FAILED:#x} = DEVICE_NEEDS_RESET, 0x2, all-ones): the hostile chain was not refused"
        );
    }
    if !wait_irq(d.spi, before) {
        fail!(
            "vfe-hostile: device {k} ({what}): no configuration-change interrupt (SPI {}) within 1 s",
            d.spi
        );
    }
    let used = a.get_u16(USED + 2);
    if used != 0 {
        fail!("vfe-hostile: device {k} ({what}): used.idx {used}: something was completed");
    }
    let mut m = Msg::new();
    let _ = write!(m, "device {k} ({what})");
    guard.check(m.as_str());
    println!(
        "vfe-hostile: device {k} at {:#x} ({what}): Status {s:#x} (DEVICE_NEEDS_RESET), InterruptStatus {is:#x}, configuration-change interrupt, memory intact",
        d.base
    );
}

/// vbe's xorshift64 stream: each state's 8 bytes, little-endian, in order.
struct Stream {
    x: u64,
    buf: [u8; 8],
    used: usize,
}

impl Stream {
    fn new(seed: u64) -> Self {
        Stream {
            x: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                self.buf = self.x.to_le_bytes();
                self.used = 0;
            }
            *b = self.buf[self.used];
            self.used += 1;
        }
    }
}

/// A good device's bookkeeping.
struct Good<'a> {
    d: &'a Dev,
    a: Area,
    guard: &'a Guard,
    num: u16,
    avail: u16,
    used: u16,
    stream: Stream,
    served: usize,
}

impl Good<'_> {
    /// Waits for the next used entry; checks its id and length and that the
    /// device's SPI came; marks what the device must have written (the entry, `idx`
    /// and the next `len` stream bytes at `buf`) in the area's image.
    fn completed(&mut self, id: u16, buf: usize, len: usize, irqs_before: u32) -> [u8; PLAIN_LEN] {
        let k = self.d.k;
        let deadline = time::Deadline::after_ms(2000);
        while self.a.get_u16(USED + 2) == self.used {
            if deadline.passed() {
                fail!(
                    "vfe-hostile: device {k} (good): request {} not completed within 2 s (Status {:#x})",
                    self.used,
                    rd(self.d.base, reg::STATUS)
                );
            }
            core::hint::spin_loop();
        }
        let idx = self.a.get_u16(USED + 2);
        let slot = USED + 4 + 8 * usize::from(self.used % self.num);
        let (got_id, got_len) = (self.a.get_u32(slot), self.a.get_u32(slot + 4));
        let next = self.used.wrapping_add(1);
        if idx != next || got_id != u32::from(id) || got_len as usize != len {
            fail!(
                "vfe-hostile: device {k} (good): used.idx {idx}, entry (id {got_id}, len {got_len}); expected {next}, (id {id}, len {len})"
            );
        }
        if !wait_irq(self.d.spi, irqs_before) {
            fail!(
                "vfe-hostile: device {k} (good): no used-buffer interrupt (SPI {}) within 1 s",
                self.d.spi
            );
        }
        let is = rd(self.d.base, reg::INTERRUPT_STATUS);
        wr(self.d.base, reg::INTERRUPT_ACK, is);
        self.used = next;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&u32::from(id).to_le_bytes());
        entry[4..].copy_from_slice(&(len as u32).to_le_bytes());
        self.a.expect(slot, &entry);
        self.a.expect(USED + 2, &next.to_le_bytes());
        let mut want = [0u8; PLAIN_LEN];
        self.stream.fill(&mut want[..len]);
        let mut got = [0u8; PLAIN_LEN];
        self.a.get(buf, &mut got[..len]);
        if got[..len] != want[..len] {
            let i = (0..len).find(|&i| got[i] != want[i]).unwrap_or(0);
            fail!(
                "vfe-hostile: device {k} (good): the {len} bytes at {:#x} are not the backend's stream bytes {}.. (byte {i}: {:#04x}, expected {:#04x}): the completion did not land in the buffer as posted",
                self.a.at(buf),
                self.served,
                got[i],
                want[i]
            );
        }
        self.a.expect(buf, &want[..len]);
        self.served += len;
        want
    }

    /// Posts descriptor `id` = (`buf`, `len`, writable) and notifies.
    fn post(&mut self, id: u16, buf: usize, len: usize) -> u32 {
        self.a.desc(
            usize::from(id),
            self.a.at(buf),
            len as u32,
            desc_flags::WRITE,
            0,
        );
        self.a.publish(self.num, self.avail, id);
        self.avail = self.avail.wrapping_add(1);
        let before = irqs(self.d.spi);
        wr(self.d.base, reg::QUEUE_NOTIFY, 0);
        before
    }
}

/// A good device: the rewrite check, then a plain request, both with their bytes
/// checked against the backend's stream.
fn good(guard: &Guard, d: &Dev, seed: u64, rewrite: bool) {
    let a = Area::new(guard, d.k);
    let num = d.kind.queue_size();
    a.clear_rings(num);
    set_up(d, &a, num, 0);
    let k = d.k;
    let mut g = Good {
        d,
        a,
        guard,
        num,
        avail: 0,
        used: 0,
        stream: Stream::new(RNG_SEED ^ seed),
        served: 0,
    };
    if rewrite {
        rewritten(&mut g);
    }

    let id = num - 1;
    let plain = BUF + 0x2000;
    let before = g.post(id, plain, PLAIN_LEN);
    let bytes = g.completed(id, plain, PLAIN_LEN, before);
    if bytes.iter().all(|&b| b == 0) {
        fail!("vfe-hostile: device {k} (good): {PLAIN_LEN} zero bytes");
    }
    let mut m = Msg::new();
    let _ = write!(m, "device {k} (good), plain request");
    g.guard.check(m.as_str());
    let s = rd(d.base, reg::STATUS);
    if s != LIVE {
        fail!(
            "vfe-hostile: device {k} (good): Status {s:#x} after its requests, expected {LIVE:#x}"
        );
    }
    println!(
        "vfe-hostile: device {k} at {:#x} (good): plain request of {PLAIN_LEN} bytes ok ({} stream bytes in all), {} interrupts, Status {s:#x}",
        d.base,
        g.served,
        irqs(d.spi)
    );
}

/// The rewrite check: a 64-byte request is posted and notified, and right after
/// the notify its descriptor is rewritten to name a 256-byte decoy. The completion
/// must land in the buffer as posted; the decoy must stay untouched. A completion
/// that was already there when the rewrite landed proves nothing: again
/// ([`REWRITE_TRIES`] tries).
fn rewritten(g: &mut Good<'_>) {
    let k = g.d.k;
    let mut attempt = 0u16;
    loop {
        if attempt == REWRITE_TRIES {
            fail!(
                "vfe-hostile: device {k} (good): each of {REWRITE_TRIES} requests completed before the frontend rewrote its descriptor: the rewrite check proved nothing"
            );
        }
        let orig = BUF + 0x100 * usize::from(attempt);
        let decoy = BUF + 0x1000 + 0x100 * usize::from(attempt);
        let before = g.post(attempt, orig, REWRITE_LEN);
        // Right after the notify: the descriptor now names the decoy, longer.
        g.a.desc(
            usize::from(attempt),
            g.a.at(decoy),
            DECOY_LEN as u32,
            desc_flags::WRITE,
            0,
        );
        dsb();
        let early = g.a.get_u16(USED + 2) != g.used;
        g.completed(attempt, orig, REWRITE_LEN, before);
        let mut dec = [0u8; DECOY_LEN];
        g.a.get(decoy, &mut dec);
        if dec[..] != g.a.image()[decoy..decoy + DECOY_LEN] {
            fail!(
                "vfe-hostile: device {k} (good): the decoy at {:#x}, named by the descriptor rewritten after the notify, was written",
                g.a.at(decoy)
            );
        }
        let mut m = Msg::new();
        let _ = write!(m, "device {k} (good), rewrite attempt {attempt}");
        g.guard.check(m.as_str());
        attempt += 1;
        if !early {
            break;
        }
        println!(
            "vfe-hostile: device {k} (good): request {} completed before the rewrite landed; again",
            attempt - 1
        );
    }
    println!(
        "vfe-hostile: device {k} at {:#x} (good): rewritten after the notify (attempt {}): the {REWRITE_LEN} bytes landed in the buffer as posted, the decoy is untouched",
        g.d.base,
        attempt - 1
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

    fn from(args: core::fmt::Arguments<'_>) -> Self {
        let mut m = Msg::new();
        let _ = m.write_fmt(args);
        m
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
