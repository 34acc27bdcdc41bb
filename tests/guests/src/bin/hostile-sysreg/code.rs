//! MRS and MSR built at run time: a code page of stubs (`mrs x0, <reg>; ret` or
//! `msr <reg>, x0; ret`), written, made coherent with the instruction cache and
//! called inside `probe::catch`. An UNDEFINED access skips to the `ret`.

use core::cell::UnsafeCell;
use core::fmt;

use crate::{Outcome, caught};

/// A system register encoding (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enc {
    /// op0: 2 (debug and trace) or 3.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
}

impl Enc {
    /// The encoding (op0, op1, CRn, CRm, op2).
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Enc {
        Enc {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// The register fields of an MRS/MSR instruction word (bits 20:5, Rt = 0).
    const fn fields(self) -> u32 {
        ((self.op0 as u32 & 1) << 19)
            | ((self.op1 as u32 & 7) << 16)
            | ((self.crn as u32 & 15) << 12)
            | ((self.crm as u32 & 15) << 8)
            | ((self.op2 as u32 & 7) << 5)
    }

    /// `mrs x0, <self>`.
    pub const fn mrs(self) -> u32 {
        0xd530_0000 | self.fields()
    }

    /// `msr <self>, x0`.
    pub const fn msr(self) -> u32 {
        0xd510_0000 | self.fields()
    }
}

impl fmt::Display for Enc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}_{}_C{}_C{}_{}",
            self.op0, self.op1, self.crn, self.crm, self.op2
        )
    }
}

/// `ret`.
const RET: u32 = 0xd65f_03c0;

/// Stubs in the page, two words each.
pub const SLOTS: usize = 8192;

#[repr(C, align(4096))]
struct Page(UnsafeCell<[u32; SLOTS * 2]>);

// SAFETY: only vCPU 0 of this partition uses it, one batch at a time.
unsafe impl Sync for Page {}

static PAGE: Page = Page(UnsafeCell::new([0; SLOTS * 2]));

/// Writes one stub per instruction in `insns` (at most [`SLOTS`]), each followed by
/// `ret`, and makes them visible to instruction fetch. Returns how many.
pub fn load(insns: impl Iterator<Item = u32>) -> usize {
    let base = PAGE.0.get().cast::<u32>();
    let mut n = 0;
    for insn in insns.take(SLOTS) {
        // SAFETY: slot n of the page; no stub runs while the page is rewritten.
        unsafe {
            base.add(2 * n).write_volatile(insn);
            base.add(2 * n + 1).write_volatile(RET);
        }
        n += 1;
    }
    sync(base as u64, (n * 8) as u64);
    n
}

/// Writes `words` as they are from the start of the page (a program, not stubs)
/// and makes them visible to instruction fetch, through any alias.
pub fn load_raw(words: &[u32]) {
    let base = PAGE.0.get().cast::<u32>();
    for (i, &w) in words.iter().take(SLOTS * 2).enumerate() {
        // SAFETY: word i of the page; nothing runs from it meanwhile.
        unsafe { base.add(i).write_volatile(w) };
    }
    sync(base as u64, (words.len() * 4) as u64);
    // SAFETY: invalidates the whole instruction cache (the code also runs through
    // another virtual address).
    unsafe { core::arch::asm!("ic iallu", "dsb ish", "isb", options(nostack)) };
}

/// The address of stub `slot`.
pub fn slot_address(slot: usize) -> u64 {
    PAGE.0.get() as u64 + (slot * 8) as u64
}

/// Cleans `[start, start + len)` to the point of unification and invalidates it
/// from the instruction cache (the architected sequence for self-modifying code).
fn sync(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reads CTR_EL0 (cache line sizes).
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let dline = 4u64 << (ctr >> 16 & 0xf);
    let iline = 4u64 << (ctr & 0xf);
    let end = start + len;
    let mut a = start & !(dline - 1);
    while a < end {
        // SAFETY: cache maintenance by address on this partition's own RAM.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) a, options(nostack)) };
        a += dline;
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
    let mut a = start & !(iline - 1);
    while a < end {
        // SAFETY: as above.
        unsafe { core::arch::asm!("ic ivau, {}", in(reg) a, options(nostack)) };
        a += iline;
    }
    // SAFETY: barriers.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
}

/// Calls stub `slot` with x0 = `arg`, exceptions caught; returns its x0.
pub fn call(slot: usize, arg: u64) -> Outcome {
    assert!(slot < SLOTS);
    let addr = PAGE.0.get() as usize + slot * 8;
    // SAFETY: the slot holds a loaded stub (an MRS or MSR then RET) that follows the
    // C calling convention: x0 in, x0 out, nothing else touched.
    let f: extern "C" fn(u64) -> u64 = unsafe { core::mem::transmute(addr) };
    caught(|| f(arg))
}

/// Counter ticks `n` calls of stub `slot` with x0 = `arg` take: the least of 5
/// rounds (the stub must not fault).
pub fn time(slot: usize, arg: u64, n: u32) -> u64 {
    assert!(slot < SLOTS);
    let addr = PAGE.0.get() as usize + slot * 8;
    // SAFETY: as in `call`.
    let f: extern "C" fn(u64) -> u64 = unsafe { core::mem::transmute(addr) };
    (0..5)
        .map(|_| {
            let start = ferry_partition_rt::time::ticks();
            for _ in 0..n {
                core::hint::black_box(f(core::hint::black_box(arg)));
            }
            ferry_partition_rt::time::ticks() - start
        })
        .min()
        .unwrap_or(0)
}

/// MRS of `enc`.
pub fn read(enc: Enc) -> Outcome {
    load(core::iter::once(enc.mrs()));
    call(0, 0)
}

/// MSR of `enc` with `value`; 0 if it worked.
pub fn write(enc: Enc, value: u64) -> Outcome {
    load(core::iter::once(enc.msr()));
    call(0, value).map(|_| 0)
}
