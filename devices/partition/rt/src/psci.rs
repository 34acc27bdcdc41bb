//! PSCI calls on the HVC or SMC conduit (Ferry serves both; SMC is trapped).
//!
//! The conduit defaults to HVC and follows the DTB's `/psci` `method` once the
//! runtime has read it ([`set_conduit`] overrides it; [`call_via`] picks one per call).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::{MAX_VCPUS, arch};

/// The typed PSCI return code ([`ferry_abi::psci::PsciRet`]).
pub use ferry_abi::psci::PsciRet;
/// AFFINITY_INFO results ([`ferry_abi::psci::affinity`]).
pub use ferry_abi::psci::affinity;
/// PSCI function identifiers ([`ferry_abi::psci::function`]).
pub use ferry_abi::psci::function as func;

/// PSCI return codes as `i64`, to compare with what [`call`] returns: the values
/// of [`PsciRet`].
pub mod ret {
    use super::PsciRet;

    /// SUCCESS.
    pub const SUCCESS: i64 = PsciRet::Success.code();
    /// NOT_SUPPORTED.
    pub const NOT_SUPPORTED: i64 = PsciRet::NotSupported.code();
    /// INVALID_PARAMETERS.
    pub const INVALID_PARAMETERS: i64 = PsciRet::InvalidParameters.code();
    /// DENIED.
    pub const DENIED: i64 = PsciRet::Denied.code();
    /// ALREADY_ON.
    pub const ALREADY_ON: i64 = PsciRet::AlreadyOn.code();
    /// ON_PENDING.
    pub const ON_PENDING: i64 = PsciRet::OnPending.code();
    /// INTERNAL_FAILURE.
    pub const INTERNAL_FAILURE: i64 = PsciRet::InternalFailure.code();
    /// NOT_PRESENT.
    pub const NOT_PRESENT: i64 = PsciRet::NotPresent.code();
    /// DISABLED.
    pub const DISABLED: i64 = PsciRet::Disabled.code();
    /// INVALID_ADDRESS.
    pub const INVALID_ADDRESS: i64 = PsciRet::InvalidAddress.code();
}

/// A PSCI return value's name, for messages: the [`PsciRet`] name of a code,
/// `(positive)` for a value (PSCI_VERSION, AFFINITY_INFO, ...), `(unknown)` else.
pub fn ret_name(r: i64) -> &'static str {
    match PsciRet::from_code(r) {
        Some(code) => code.name(),
        None if r > 0 => "(positive)",
        None => "(unknown)",
    }
}

/// How PSCI calls reach the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `HVC #0`.
    Hvc,
    /// `SMC #0` (trapped to Ferry).
    Smc,
}

static CONDUIT: AtomicU8 = AtomicU8::new(0);

/// Chooses the conduit of [`call`].
pub fn set_conduit(c: Conduit) {
    CONDUIT.store(
        match c {
            Conduit::Hvc => 0,
            Conduit::Smc => 1,
        },
        Ordering::Relaxed,
    );
}

/// The conduit [`call`] uses.
pub fn conduit() -> Conduit {
    match CONDUIT.load(Ordering::Relaxed) {
        1 => Conduit::Smc,
        _ => Conduit::Hvc,
    }
}

/// A PSCI call on `conduit`; returns x0 as a signed value.
pub fn call_via(conduit: Conduit, fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r = match conduit {
        Conduit::Hvc => arch::hvc(fid as u64, a1, a2, a3, 0),
        Conduit::Smc => arch::smc(fid as u64, a1, a2, a3, 0),
    };
    // 32-bit calls return a 32-bit value: sign-extend it.
    if func::is_smc64(fid) {
        r[0] as i64
    } else {
        r[0] as u32 as i32 as i64
    }
}

/// A PSCI call on the current conduit.
pub fn call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    call_via(conduit(), fid, a1, a2, a3)
}

/// PSCI_VERSION: major << 16 | minor.
pub fn version() -> i64 {
    call(func::VERSION, 0, 0, 0)
}

/// PSCI_FEATURES(`fid`): 0 (or feature flags) if implemented, NOT_SUPPORTED if not.
pub fn features(fid: u32) -> i64 {
    call(func::FEATURES, fid as u64, 0, 0)
}

/// MIGRATE_INFO_TYPE (2: no trusted OS needs migrating).
pub fn migrate_info_type() -> i64 {
    call(func::MIGRATE_INFO_TYPE, 0, 0, 0)
}

/// AFFINITY_INFO(`target`, level 0): [`affinity::ON`], [`affinity::OFF`],
/// [`affinity::ON_PENDING`] or an error.
pub fn affinity_info(target: u64) -> i64 {
    call(func::AFFINITY_INFO, target, 0, 0)
}

/// Per-vCPU functions secondaries run, set by [`cpu_on`] before the call.
static SECONDARY: [AtomicUsize; MAX_VCPUS] = [const { AtomicUsize::new(0) }; MAX_VCPUS];

/// The runtime's secondary entry point (what CPU_ON is given).
pub fn secondary_entry() -> u64 {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    {
        unsafe extern "C" {
            fn __rt_secondary_entry();
        }
        __rt_secondary_entry as *const () as usize as u64
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    {
        0
    }
}

/// The function registered for vCPU `index` by [`cpu_on`], if any.
#[cfg_attr(
    not(all(target_arch = "aarch64", target_os = "none")),
    allow(dead_code)
)]
pub(crate) fn secondary_fn(index: usize) -> Option<fn(u64) -> !> {
    let f = SECONDARY.get(index)?.load(Ordering::Acquire);
    // SAFETY: only `cpu_on` stores into SECONDARY, and only `fn(u64) -> !` pointers.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, fn(u64) -> !>(f) })
}

/// CPU_ON: starts vCPU `target` (an MPIDR from the guest DT) at the runtime's
/// secondary entry, which runs `f(context_id)` on it with the MMU on and its own stack.
pub fn cpu_on(target: u64, f: fn(u64) -> !, context_id: u64) -> i64 {
    let index = (target & 0xff) as usize;
    if arch::mpidr_affinity(target) == target & 0xff
        && let Some(slot) = SECONDARY.get(index)
    {
        slot.store(f as usize, Ordering::Release);
    }
    cpu_on_raw(target, secondary_entry(), context_id)
}

/// CPU_ON with an explicit entry address (no function registered: a vCPU that starts
/// without one says so and turns itself off).
pub fn cpu_on_raw(target: u64, entry: u64, context_id: u64) -> i64 {
    call(func::CPU_ON, target, entry, context_id)
}

/// CPU_OFF: returns only if refused, with the error.
pub fn cpu_off() -> i64 {
    call(func::CPU_OFF, 0, 0, 0)
}

/// SYSTEM_OFF: ends the partition (its `system-off-code`). Never returns: if the call
/// does, that is said and the vCPU parks.
pub fn system_off() -> ! {
    let r = call(func::SYSTEM_OFF, 0, 0, 0);
    crate::console::print_last_words(format_args!("PSCI SYSTEM_OFF returned {r}\n"));
    arch::park()
}

/// SYSTEM_RESET: ends the partition (its `system-reset-code`). Never returns.
pub fn system_reset() -> ! {
    let r = call(func::SYSTEM_RESET, 0, 0, 0);
    crate::console::print_last_words(format_args!("PSCI SYSTEM_RESET returned {r}\n"));
    arch::park()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_codes_are_the_abi_codes() {
        let consts = [
            ret::SUCCESS,
            ret::NOT_SUPPORTED,
            ret::INVALID_PARAMETERS,
            ret::DENIED,
            ret::ALREADY_ON,
            ret::ON_PENDING,
            ret::INTERNAL_FAILURE,
            ret::NOT_PRESENT,
            ret::DISABLED,
            ret::INVALID_ADDRESS,
        ];
        for (c, r) in consts.into_iter().zip(PsciRet::ALL) {
            assert_eq!(c, r.code());
            assert_eq!(ret_name(c), r.name());
        }
        assert_eq!(ret_name(0x1_0001), "(positive)");
        assert_eq!(ret_name(-10), "(unknown)");
        assert_eq!(
            [affinity::ON, affinity::OFF, affinity::ON_PENDING],
            [0, 1, 2]
        );
    }
}
