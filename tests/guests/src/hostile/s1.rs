//! Stage-1 tricks of the hostile probes: a copy of the runtime's identity map with
//! one 2 MiB block made Normal memory (so that accesses Device memory forbids at
//! stage 1 — unaligned ones, DC ZVA — reach Ferry's stage 2), and a TTBR1 walk whose
//! level-1 table lies at an arbitrary address (a device window).

use core::cell::UnsafeCell;

use ferry_partition_rt::mmu;

/// A 4 KiB-aligned translation table this module owns.
#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: written only by `Remap::install` on vCPU 0 before the MMU uses it.
unsafe impl Sync for Table {}

static L1: Table = Table(UnsafeCell::new([0; 512]));
static L2: Table = Table(UnsafeCell::new([0; 512]));

/// Descriptor bits (level-2 block): valid block, AttrIndx 1 (Normal write-back),
/// inner shareable, accessed, never executable.
const NORMAL_BLOCK: u64 = 0b01 | 1 << 2 | 0b11 << 8 | 1 << 10 | 1 << 53 | 1 << 54;
/// TCR_EL1.EPD1: no TTBR1 walks.
const TCR_EPD1: u64 = 1 << 23;

fn ttbr0() -> u64 {
    let v: u64;
    // SAFETY: reads a system register.
    unsafe { core::arch::asm!("mrs {}, ttbr0_el1", out(reg) v, options(nomem, nostack)) };
    v
}

/// Switches TTBR0_EL1 and forgets every stage-1 translation.
///
/// # Safety
/// `table` maps at least this program's code, data, stacks and devices as the
/// runtime's map does.
unsafe fn set_ttbr0(table: u64) {
    // SAFETY: per the contract, the same identity map for everything in use.
    unsafe {
        core::arch::asm!(
            "dsb ish", "msr ttbr0_el1, {t}", "isb", "tlbi vmalle1", "dsb ish", "isb",
            t = in(reg) table, options(nostack)
        )
    };
}

/// The runtime's map with one 2 MiB block remapped Normal, while it lives.
pub struct Remap {
    old: u64,
}

impl Remap {
    /// Installs a copy of the runtime's identity map in which the 2 MiB block holding
    /// `addr` (below 1 GiB) is Normal write-back memory instead of Device.
    pub fn install(addr: u64) -> Remap {
        assert!(
            addr < 1 << 30,
            "only the first GiB goes through the level-2 table"
        );
        let l2_rt = &mmu::__rt_l2_table_0.0;
        let l1_rt = &mmu::__rt_l1_table.0;
        // SAFETY: this vCPU alone uses the copies, and not yet through the MMU.
        let (l1, l2) = unsafe { (&mut *L1.0.get(), &mut *L2.0.get()) };
        l2.copy_from_slice(l2_rt);
        let i = (addr >> 21) as usize;
        l2[i] = (addr & !0x1f_ffff) | NORMAL_BLOCK;
        for (d, s) in l1.iter_mut().zip(l1_rt.iter()).skip(1) {
            *d = *s as u64;
        }
        l1[0] = L2.0.get() as u64 | 0b11;
        let old = ttbr0();
        // SAFETY: the copy maps everything as the runtime's map does but one block
        // of device windows, which only the probe touches.
        unsafe { set_ttbr0(L1.0.get() as u64) };
        Remap { old }
    }
}

impl Drop for Remap {
    fn drop(&mut self) {
        // SAFETY: back to the runtime's own map.
        unsafe { set_ttbr0(self.old) };
    }
}

/// The first address of the TTBR1 half (T1SZ = 32: the top 4 GiB).
pub const TTBR1_VA: u64 = 0xffff_ffff_0000_0000;

/// Points TTBR1_EL1 at `table` and enables TTBR1 walks, runs `f`, then disables
/// them again: a load from [`TTBR1_VA`] inside `f` makes the MMU read its level-1
/// descriptor at `table` (a stage-1 walk access Ferry sees at stage 2).
pub fn with_ttbr1<R>(table: u64, f: impl FnOnce() -> R) -> R {
    let tcr: u64;
    // SAFETY: reads a system register.
    unsafe { core::arch::asm!("mrs {}, tcr_el1", out(reg) tcr, options(nomem, nostack)) };
    // SAFETY: TTBR1 covers only the top 4 GiB, which nothing of this program uses.
    unsafe {
        core::arch::asm!(
            "msr ttbr1_el1, {t}", "msr tcr_el1, {c}", "isb", "tlbi vmalle1", "dsb ish", "isb",
            t = in(reg) table, c = in(reg) tcr & !TCR_EPD1, options(nostack)
        )
    };
    let r = f();
    // SAFETY: back to no TTBR1 walks.
    unsafe {
        core::arch::asm!(
            "msr tcr_el1, {c}", "msr ttbr1_el1, xzr", "isb", "tlbi vmalle1", "dsb ish", "isb",
            c = in(reg) tcr, options(nostack)
        )
    };
    r
}
