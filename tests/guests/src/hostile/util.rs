//! Helpers of the hostile probes: a deterministic random stream, raw MMIO accesses
//! of each size, SMCCC calls with any immediate, the partition's devices from its
//! DTB, and the probe's verdict.

use core::sync::atomic::{AtomicU32, Ordering};

use ferry_partition_rt::{Boot, fail, println, psci, time};

/// xorshift64: the probes' random stream (deterministic per seed, so a failure
/// replays).
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed` (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Failed checks of this probe (each printed as it fails).
static FAILED: AtomicU32 = AtomicU32::new(0);
/// Checks made.
static CHECKED: AtomicU32 = AtomicU32::new(0);

/// Records one check; prints `hostile: <what> FAILED` if `ok` is false.
pub fn check(ok: bool, what: core::fmt::Arguments<'_>) -> bool {
    CHECKED.fetch_add(1, Ordering::Relaxed);
    if !ok {
        FAILED.fetch_add(1, Ordering::Relaxed);
        println!("hostile: {what} FAILED");
    }
    ok
}

/// `check(cond, format_args!(...))`.
#[macro_export]
macro_rules! check {
    ($ok:expr, $($arg:tt)*) => {
        $crate::hostile::util::check($ok, format_args!($($arg)*))
    };
}

/// Ends the probe: SYSTEM_OFF with `hostile: <probe>: all <n> checks passed`, or
/// `FAIL: hostile: <probe>: <f> of <n> checks FAILED` and SYSTEM_RESET.
pub fn verdict(probe: &str) -> ! {
    let n = CHECKED.load(Ordering::Relaxed);
    let f = FAILED.load(Ordering::Relaxed);
    if f == 0 && n > 0 {
        println!("hostile: {probe}: all {n} checks passed");
        psci::system_off()
    }
    fail!("hostile: {probe}: {f} of {n} checks FAILED")
}

/// Microseconds between two counter values.
pub fn us(from: u64, to: u64) -> u64 {
    to.saturating_sub(from).saturating_mul(1_000_000) / time::freq()
}

macro_rules! mmio_read {
    ($read:ident, $t:ty, $ld:literal) => {
        /// One load of this size from `addr` (a single LDR: the syndrome describes it).
        ///
        /// # Safety
        /// `addr` is mapped; reading it has no effect this program relies on not
        /// happening (probes aim it at devices and other partitions on purpose).
        pub unsafe fn $read(addr: u64) -> $t {
            let v: u64;
            // SAFETY: per the contract.
            unsafe {
                core::arch::asm!(concat!($ld, " {v:w}, [{a}]"), a = in(reg) addr,
                    v = out(reg) v, options(nostack))
            };
            v as $t
        }
    };
}

macro_rules! mmio_write {
    ($write:ident, $t:ty, $st:literal) => {
        /// One store of this size to `addr` (a single STR).
        ///
        /// # Safety
        /// `addr` is mapped; the store may change what `addr` names (probes aim it
        /// at devices and other partitions on purpose).
        pub unsafe fn $write(addr: u64, v: $t) {
            // SAFETY: per the contract.
            unsafe {
                core::arch::asm!(concat!($st, " {v:w}, [{a}]"), a = in(reg) addr,
                    v = in(reg) v as u64, options(nostack))
            };
        }
    };
}

mmio_read!(read32, u32, "ldr");
mmio_write!(write8, u8, "strb");
mmio_write!(write16, u16, "strh");
mmio_write!(write32, u32, "str");

/// One 64-bit load from `addr`.
///
/// # Safety
/// As for [`read32`].
pub unsafe fn read64(addr: u64) -> u64 {
    let v: u64;
    // SAFETY: per the contract.
    unsafe {
        core::arch::asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v,
            options(nostack))
    };
    v
}

/// One 64-bit store to `addr`.
///
/// # Safety
/// As for [`write32`].
pub unsafe fn write64(addr: u64, v: u64) {
    // SAFETY: per the contract.
    unsafe {
        core::arch::asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) v,
            options(nostack))
    };
}

/// How an SMCCC call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `HVC #imm`.
    Hvc(u16),
    /// `SMC #imm` (trapped to Ferry).
    Smc(u16),
}

/// Immediates the fuzzers use: 0 (SMCCC) and others (not SMCCC under HVC).
pub const IMMEDIATES: [u16; 4] = [0, 1, 0x4242, 0xffff];

macro_rules! call_imm {
    ($insn:literal, $imm:expr, $x:expr) => {{
        let [x0, x1, x2, x3, x4] = $x;
        let (r0, r1, r2, r3);
        // SAFETY: an SMCCC call; every register the callee may change is declared.
        unsafe {
            core::arch::asm!(
                concat!($insn, " #{imm}"),
                imm = const $imm,
                inout("x0") x0 => r0, inout("x1") x1 => r1, inout("x2") x2 => r2,
                inout("x3") x3 => r3, inout("x4") x4 => _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
        [r0, r1, r2, r3]
    }};
}

/// An SMCCC call with x0..x4 on `conduit` (its immediate must be one of
/// [`IMMEDIATES`]); returns x0..x3.
pub fn call(conduit: Conduit, x: [u64; 5]) -> [u64; 4] {
    match conduit {
        Conduit::Hvc(0) => call_imm!("hvc", 0, x),
        Conduit::Hvc(1) => call_imm!("hvc", 1, x),
        Conduit::Hvc(0x4242) => call_imm!("hvc", 0x4242, x),
        Conduit::Hvc(0xffff) => call_imm!("hvc", 0xffff, x),
        Conduit::Smc(0) => call_imm!("smc", 0, x),
        Conduit::Smc(1) => call_imm!("smc", 1, x),
        Conduit::Smc(0x4242) => call_imm!("smc", 0x4242, x),
        Conduit::Smc(0xffff) => call_imm!("smc", 0xffff, x),
        c => fail!("hostile: no call stub for {c:?}"),
    }
}

/// A Ferry hypercall (`HVC #0`) with x1..x3; returns x0 as a signed value.
pub fn hypercall(function: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    call(Conduit::Hvc(0), [u64::from(function), a1, a2, a3, 0])[0] as i64
}

/// The `reg` base of the first node compatible with `compat` (2 address cells).
pub fn node_base(boot: &Boot, compat: &str) -> Option<u64> {
    let node = boot.fdt().find_compatible(&[compat])?;
    let reg = node.property("reg")?.value;
    let hi = u32::from_be_bytes(reg.get(0..4)?.try_into().ok()?);
    let lo = u32::from_be_bytes(reg.get(4..8)?.try_into().ok()?);
    Some(u64::from(hi) << 32 | u64::from(lo))
}

/// The first `virtio,mmio` window of this partition (a frontend), or a failure.
pub fn virtio_window(boot: &Boot) -> u64 {
    node_base(boot, "virtio,mmio")
        .unwrap_or_else(|| fail!("hostile: the DTB has no virtio,mmio node"))
}

/// Every `virtio,mmio` window of this partition, in DT order (at most 8).
pub fn virtio_windows(boot: &Boot) -> ([u64; 8], usize) {
    let mut w = [0u64; 8];
    let mut n = 0;
    for node in boot.fdt().all_nodes() {
        let compatible = node
            .compatible()
            .is_some_and(|c| c.all().any(|s| s == "virtio,mmio"));
        if !compatible || n == w.len() {
            continue;
        }
        if let Some(reg) = node.property("reg").map(|p| p.value)
            && let (Some(hi), Some(lo)) = (reg.get(0..4), reg.get(4..8))
        {
            let hi = u32::from_be_bytes(hi.try_into().unwrap_or_default());
            let lo = u32::from_be_bytes(lo.try_into().unwrap_or_default());
            w[n] = u64::from(hi) << 32 | u64::from(lo);
            n += 1;
        }
    }
    (w, n)
}
