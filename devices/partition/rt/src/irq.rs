//! IRQ exceptions: the runtime's vector table sends an IRQ taken from EL1h (the
//! guest's own code; the runtime always runs on SP_EL1) to the handler registered
//! with [`set_handler`], saving and restoring every register the handler may change
//! (x0-x18, x29, x30, ELR/SPSR_EL1, all of v0-v31, FPCR, FPSR), then returns with
//! ERET. Handlers run with IRQs masked (no nesting). Without a handler, an IRQ is
//! reported and resets, as every other exception kind does but one: a synchronous
//! exception from EL1h takes the same path to [`crate::probe`], which resumes after
//! the instruction if the vCPU is inside [`crate::probe::catch`].
//!
//! [`crate::gic::set_handler`] registers the GIC dispatcher (ack, handler(intid), EOI).

use core::sync::atomic::{AtomicUsize, Ordering};

static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Registers `f` as the IRQ handler of every vCPU.
pub fn set_handler(f: fn()) {
    HANDLER.store(f as usize, Ordering::Release);
}

/// Unmasks IRQs on this vCPU (PSTATE.I = 0).
pub fn enable() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: changes only PSTATE.I; the vector table handles IRQs.
    unsafe {
        core::arch::asm!("msr daifclr, #2", "isb", options(nostack))
    };
}

/// Masks IRQs on this vCPU (PSTATE.I = 1).
pub fn disable() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: changes only PSTATE.I.
    unsafe {
        core::arch::asm!("msr daifset, #2", "isb", options(nostack))
    };
}

/// Whether IRQs are masked on this vCPU.
pub fn masked() -> bool {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let daif: u64;
        // SAFETY: reads PSTATE.DAIF.
        unsafe { core::arch::asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack)) };
        daif & (1 << 7) != 0
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    true
}

/// Waits for an interrupt (WFI; returns at once if one is pending, masked or not).
pub fn wfi() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: a hint; memory is not touched.
    unsafe {
        core::arch::asm!("dsb sy", "wfi", options(nostack))
    };
}

/// Where the saved ELR_EL1 sits in the entry's frame, in 8-byte words.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
const FRAME_ELR: usize = 21;

/// Called by the IRQ and synchronous (kind 4) vectors with the registers saved in
/// `frame`: a synchronous exception goes to [`crate::probe`] (caught: resume after
/// the instruction; else reported, and the vCPU resets); an IRQ runs the handler, or
/// is reported as an unexpected exception (and resets) if there is none.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[unsafe(no_mangle)]
extern "C" fn __rt_irq_rust(kind: u64, esr: u64, elr: u64, far: u64, frame: *mut u64) {
    if kind == 4 {
        if !crate::probe::record(esr, elr, far) {
            crate::start::report_exception(kind, esr, elr, far);
        }
        // SAFETY: `frame` is this exception's save area on this vCPU's stack; the
        // entry code restores ELR_EL1 from word FRAME_ELR.
        unsafe { frame.add(FRAME_ELR).write(elr + 4) };
        return;
    }
    let h = HANDLER.load(Ordering::Acquire);
    if h == 0 {
        crate::start::report_exception(kind, esr, elr, far);
    }
    // SAFETY: only `set_handler` stores into HANDLER, and only `fn()` pointers.
    let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(h) };
    f();
}

/// Fills x0-x17 and v0-v31 with known values, spins `iters` iterations (IRQs taken
/// meanwhile must preserve them all), then checks them: returns how many of the 50
/// registers changed (0 = all intact). x18 (platform register), x19 (reserved by
/// LLVM), x29 and x30 are not covered.
pub fn register_check(iters: u64) -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let bad: u64;
        // SAFETY: only registers are touched, each declared clobbered.
        unsafe {
            core::arch::asm!(
                ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
                "movz x\\n, #(0x1000 + \\n)",
                "movk x\\n, #0xa5a5, lsl #48",
                ".endr",
                ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
                "movi v\\n\\().16b, #(\\n + 0x40)",
                ".endr",
                "mov x25, {iters}",
                "2:",
                "subs x25, x25, #1",
                "b.ne 2b",
                "mov x22, #0",
                ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
                "movz x21, #(0x1000 + \\n)",
                "movk x21, #0xa5a5, lsl #48",
                "cmp x\\n, x21",
                "cinc x22, x22, ne",
                ".endr",
                "mov x24, #0x0101010101010101",
                ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
                "mov x23, #(\\n + 0x40)",
                "mul x23, x23, x24",
                "umov x21, v\\n\\().d[0]",
                "umov x26, v\\n\\().d[1]",
                "cmp x21, x23",
                "ccmp x26, x23, #0, eq",
                "cinc x22, x22, ne",
                ".endr",
                "mov {bad}, x22",
                iters = in(reg) iters.max(1),
                bad = out(reg) bad,
                out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                out("x21") _, out("x22") _, out("x23") _, out("x24") _, out("x25") _,
                out("x26") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _,
                out("v5") _, out("v6") _, out("v7") _, out("v8") _, out("v9") _,
                out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _,
                out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _,
                out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
                out("v30") _, out("v31") _,
                options(nomem, nostack)
            );
        }
        bad
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = iters;
        0
    }
}
