//! The EL1 virtual timer (CNTV_CTL_EL0, CNTV_TVAL_EL0, CNTV_CVAL_EL0), which compares
//! against CNTVCT_EL0 and raises PPI 11 (INTID 27, [`crate::gic::VTIMER_INTID`]),
//! level-sensitive, while ENABLE = 1, IMASK = 0 and its condition (ISTATUS) is met.

/// CNTV_CTL_EL0.ENABLE.
pub const ENABLE: u64 = 1 << 0;
/// CNTV_CTL_EL0.IMASK.
pub const IMASK: u64 = 1 << 1;
/// CNTV_CTL_EL0.ISTATUS (read-only: the condition is met).
pub const ISTATUS: u64 = 1 << 2;

macro_rules! reg {
    ($get:ident, $set:ident, $name:literal) => {
        #[doc = concat!("Reads ", $name, ".")]
        pub fn $get() -> u64 {
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            {
                let v: u64;
                // SAFETY: reads a timer register of this vCPU.
                unsafe {
                    core::arch::asm!("isb", concat!("mrs {}, ", $name), out(reg) v,
                        options(nomem, nostack))
                };
                v
            }
            #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
            unimplemented!("system registers on the host")
        }

        #[doc = concat!("Writes ", $name, " (then ISB).")]
        pub fn $set(v: u64) {
            #[cfg(all(target_arch = "aarch64", target_os = "none"))]
            // SAFETY: a timer register of this vCPU.
            unsafe {
                core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v,
                    options(nomem, nostack))
            };
            #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
            {
                let _ = v;
                unimplemented!("system registers on the host")
            }
        }
    };
}

reg!(ctl, set_ctl, "cntv_ctl_el0");
reg!(tval, set_tval, "cntv_tval_el0");
reg!(cval, set_cval, "cntv_cval_el0");

/// Fires `ticks` from now (CNTV_TVAL), enabled and unmasked; returns the resulting
/// compare value (CNTV_CVAL).
pub fn arm_in(ticks: u64) -> u64 {
    set_tval(ticks & 0xffff_ffff);
    set_ctl(ENABLE);
    cval()
}

/// Fires when CNTVCT reaches `at` (CNTV_CVAL), enabled and unmasked.
pub fn arm_at(at: u64) {
    set_cval(at);
    set_ctl(ENABLE);
}

/// Disables the timer (its interrupt line drops).
pub fn stop() {
    set_ctl(0);
}
