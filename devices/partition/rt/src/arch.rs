//! The few instructions the runtime needs: SMCCC calls, MPIDR, the counter, events.
//!
//! On a host build (unit tests of the pure modules) these are never called and panic.

/// The result registers of an SMCCC call (x0..x3).
pub type Ret = [u64; 4];

/// `HVC #0` with x0..x4; returns x0..x3. x4..x17 are clobbered (SMCCC allows it).
#[inline(never)]
pub fn hvc(x0: u64, x1: u64, x2: u64, x3: u64, x4: u64) -> Ret {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let (r0, r1, r2, r3);
        // SAFETY: an SMCCC call; every register the callee may change is declared.
        unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") x0 => r0, inout("x1") x1 => r1, inout("x2") x2 => r2,
                inout("x3") x3 => r3, inout("x4") x4 => _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
        [r0, r1, r2, r3]
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = (x0, x1, x2, x3, x4);
        unimplemented!("hvc on the host")
    }
}

/// `HVC #0` with x0..x5 (a call with five arguments, e.g. Ferry's
/// `CONSOLE_DEVICE_WRITE`); returns x0..x3.
#[inline(never)]
pub fn hvc6(x: [u64; 6]) -> Ret {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let (r0, r1, r2, r3);
        // SAFETY: an SMCCC call; every register the callee may change is declared.
        unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") x[0] => r0, inout("x1") x[1] => r1, inout("x2") x[2] => r2,
                inout("x3") x[3] => r3, inout("x4") x[4] => _, inout("x5") x[5] => _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
        [r0, r1, r2, r3]
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = x;
        unimplemented!("hvc on the host")
    }
}

/// `SMC #0` with x0..x4; returns x0..x3 (Ferry traps it and serves PSCI).
#[inline(never)]
pub fn smc(x0: u64, x1: u64, x2: u64, x3: u64, x4: u64) -> Ret {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let (r0, r1, r2, r3);
        // SAFETY: an SMCCC call; every register the callee may change is declared.
        unsafe {
            core::arch::asm!(
                "smc #0",
                inout("x0") x0 => r0, inout("x1") x1 => r1, inout("x2") x2 => r2,
                inout("x3") x3 => r3, inout("x4") x4 => _,
                out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
        [r0, r1, r2, r3]
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        let _ = (x0, x1, x2, x3, x4);
        unimplemented!("smc on the host")
    }
}

/// MPIDR_EL1.
pub fn mpidr() -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: reads a system register.
        unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        0
    }
}

/// This vCPU's index: MPIDR_EL1.Aff0 (Ferry presents vMPIDR = vCPU index).
pub fn vcpu_index() -> usize {
    (mpidr() & 0xff) as usize
}

/// The affinity fields of an MPIDR (Aff3..Aff0), as PSCI CPU_ON takes them.
pub fn mpidr_affinity(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

/// CNTVCT_EL0, read after an ISB so it is not taken early.
pub fn cntvct() -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: reads the virtual counter.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack))
        };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        0
    }
}

/// CNTFRQ_EL0: counter ticks per second.
pub fn cntfrq() -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        let v: u64;
        // SAFETY: reads a system register.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        1
    }
}

/// Waits for an event (or returns at once; callers loop).
pub fn wfe() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: a hint; no memory or register effect.
    unsafe {
        core::arch::asm!("wfe", options(nomem, nostack))
    };
}

/// Signals an event to every vCPU waiting in [`wfe`].
pub fn sev() {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: a hint; DSB first so stores are visible before the event.
    unsafe {
        core::arch::asm!("dsb ish", "sev", options(nostack))
    };
}

/// Stops this vCPU for good (interrupts are masked, so WFE only wakes on events).
pub fn park() -> ! {
    loop {
        wfe();
    }
}
