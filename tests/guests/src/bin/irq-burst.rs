//! `irq-burst`: more interrupts pending at once than there are list registers
//! (QEMU's GICv3 has 4), taken each exactly once and in priority order.
//!
//! One vCPU. Each burst: with IRQs masked (PSTATE.I), give SGIs 0-15 and the virtual
//! timer (INTID 27) 17 distinct priorities (0x10, 0x18, ..., 0x90: a different
//! permutation each burst, 8 apart so 5 priority bits tell them apart), send the 16
//! SGIs to itself (ICC_SGI1R_EL1) lowest priority first, arm the timer to fire at
//! once, and wait until GICR_ISPENDR0 shows all 17 pending; then unmask. The handler
//! records each INTID (stopping the timer when it comes) and EOIs. Checks: all 17
//! arrive, none twice, nothing else, in strictly ascending priority value (highest
//! priority first), and nothing is left pending or active; x0-x17 and v0-v31 of the
//! interrupted code survive (it spins in `irq::register_check`). `bursts` times (default 10).
//!
//! Bootargs: `bursts=<n>` (default 10).
//! Log: `irq-burst: every burst taken in priority order`, then
//! `irq-burst: <n> bursts of 17 interrupts, each exactly once` and SYSTEM_OFF;
//! failures `FAIL: irq-burst: ...` (with the order taken) and SYSTEM_RESET.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use ferry_partition_rt::gic::{self, SgiTarget, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, arch, fail, irq, println, psci, time, vtimer};

rt::entry!(main);

/// Interrupts per burst: SGIs 0-15 and the timer.
const N: usize = 17;
/// The INTIDs of a burst, item k (k = 16 is the timer).
const fn intid_of(k: usize) -> u32 {
    if k < 16 { k as u32 } else { VTIMER_INTID }
}
/// GICR_ISPENDR0 bits of a whole burst.
const MASK: u32 = 0xffff | 1 << VTIMER_INTID;

/// Priority of item `k` in burst `b`: slot (7k + 3b) mod 17 (7 is prime to 17, so a
/// permutation), 8 apart from 0x10.
fn priority(b: usize, k: usize) -> u8 {
    (0x10 + 8 * ((7 * k + 3 * b) % N)) as u8
}

/// INTIDs in the order taken.
static ORDER: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];
static TAKEN: AtomicU32 = AtomicU32::new(0);

fn handler(intid: u32) {
    if intid == VTIMER_INTID {
        vtimer::stop();
    }
    let i = TAKEN.fetch_add(1, Ordering::AcqRel) as usize;
    if let Some(slot) = ORDER.get(i) {
        slot.store(intid, Ordering::Release);
    }
}

fn item_of(intid: u32) -> Option<usize> {
    match intid {
        0..=15 => Some(intid as usize),
        VTIMER_INTID => Some(16),
        _ => None,
    }
}

/// Prints the order taken with each priority, then fails with `why`.
fn fail_burst(b: usize, why: core::fmt::Arguments<'_>) -> ! {
    let taken = (TAKEN.load(Ordering::Acquire) as usize).min(ORDER.len());
    println!("irq-burst: burst {b} took {taken} interrupts, in this order (INTID:priority):");
    let mut line = Line::new();
    for (i, slot) in ORDER.iter().enumerate().take(taken) {
        let id = slot.load(Ordering::Acquire);
        let p = item_of(id).map_or(0xff, |k| priority(b, k));
        line.push(id, p);
        if line.full() || i + 1 == taken {
            println!("irq-burst:   {}", line.as_str().trim_end());
            line = Line::new();
        }
    }
    fail!("irq-burst: burst {b}: {why}")
}

fn main(boot: &'static Boot) -> ! {
    let bursts = boot.arg_u64("bursts").unwrap_or(10) as usize;
    let me = arch::mpidr_affinity(arch::mpidr());
    if let Err(e) = gic::init(boot) {
        fail!("irq-burst: GIC: {e}");
    }
    if let Err(e) = gic::dist_init() {
        fail!("irq-burst: GIC distributor: {e}");
    }
    if let Err(e) = gic::cpu_init() {
        fail!("irq-burst: GIC redistributor / CPU interface: {e}");
    }
    vtimer::stop();
    gic::set_handler(handler);
    gic::enable_private(MASK);
    let en = gic::private_enabled();
    if en & MASK != MASK {
        fail!("irq-burst: GICR_ISENABLER0 = {en:#x} after enabling {MASK:#x}");
    }

    let mut clobbered = 0;
    for b in 0..bursts {
        irq::disable();
        TAKEN.store(0, Ordering::Release);
        for k in 0..N {
            gic::set_private_priority(intid_of(k), priority(b, k));
        }
        for k in 0..N {
            let got = gic::private_priority(intid_of(k));
            if got != priority(b, k) {
                fail!(
                    "irq-burst: INTID {} priority reads {got:#x} after writing {:#x}",
                    intid_of(k),
                    priority(b, k)
                );
            }
        }
        // SGIs lowest priority first: a vGIC that fills its list registers in
        // arrival order would start with the wrong ones.
        let mut sgis: [usize; 16] = core::array::from_fn(|k| k);
        sgis.sort_unstable_by_key(|&k| core::cmp::Reverse(priority(b, k)));
        for k in sgis {
            gic::send_sgi(k as u32, SgiTarget::one(me));
        }
        vtimer::arm_at(time::ticks());
        let d = time::Deadline::after_ms(500);
        loop {
            let p = gic::private_pending();
            if p & MASK == MASK && vtimer::ctl() & vtimer::ISTATUS != 0 {
                break;
            }
            if d.passed() {
                fail!(
                    "irq-burst: burst {b}: GICR_ISPENDR0 = {p:#x} 500 ms after sending SGIs \
                     0-15 and firing the timer (CNTV_CTL = {:#x}), expected {MASK:#x} pending",
                    vtimer::ctl()
                );
            }
        }
        if TAKEN.load(Ordering::Acquire) != 0 {
            fail!("irq-burst: burst {b}: an interrupt was taken with IRQs masked");
        }

        irq::enable();
        let d = time::Deadline::after_ms(1000);
        while (TAKEN.load(Ordering::Acquire) as usize) < N {
            if d.passed() {
                irq::disable();
                fail_burst(
                    b,
                    format_args!(
                        "only {} of {N} interrupts within 1000 ms (GICR_ISPENDR0 = {:#x})",
                        TAKEN.load(Ordering::Acquire),
                        gic::private_pending()
                    ),
                );
            }
            clobbered += irq::register_check(1000);
        }
        time::delay_ms(5); // room for a duplicate to show up
        irq::disable();

        let taken = TAKEN.load(Ordering::Acquire) as usize;
        if taken != N {
            fail_burst(b, format_args!("{taken} interrupts taken, expected {N}"));
        }
        let mut seen = 0u32;
        let mut last: i32 = -1;
        for slot in ORDER.iter().take(N) {
            let id = slot.load(Ordering::Acquire);
            let Some(k) = item_of(id) else {
                fail_burst(b, format_args!("INTID {id} is not part of the burst"));
            };
            if seen & (1 << id) != 0 {
                fail_burst(b, format_args!("INTID {id} taken twice"));
            }
            seen |= 1 << id;
            let p = priority(b, k) as i32;
            if p <= last {
                fail_burst(
                    b,
                    format_args!("INTID {id} (priority {p:#x}) taken after priority {last:#x}"),
                );
            }
            last = p;
        }
        let left = gic::private_pending() & MASK;
        if left != 0 {
            fail_burst(
                b,
                format_args!("still pending afterwards: GICR_ISPENDR0 & {MASK:#x} = {left:#x}"),
            );
        }
        let act = gic::private_active() & MASK;
        if act != 0 {
            fail_burst(
                b,
                format_args!("still active afterwards: GICR_ISACTIVER0 & {MASK:#x} = {act:#x}"),
            );
        }
    }
    gic::disable_private(MASK);
    if clobbered != 0 {
        fail!(
            "irq-burst: {clobbered} times a register of the interrupted code changed across IRQs"
        );
    }
    println!("irq-burst: every burst taken in priority order");
    println!("irq-burst: {bursts} bursts of {N} interrupts, each exactly once");
    psci::system_off()
}

/// A short line of `INTID:priority` pairs.
struct Line {
    buf: [u8; 96],
    len: usize,
    items: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 96],
            len: 0,
            items: 0,
        }
    }

    fn push(&mut self, id: u32, p: u8) {
        use core::fmt::Write;
        let _ = write!(self, "{id}:{p:#x} ");
        self.items += 1;
    }

    fn full(&self) -> bool {
        self.items == 8
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        Ok(())
    }
}
