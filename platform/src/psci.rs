//! The PSCI conduit: how Ferry calls firmware (CPU_ON, SYSTEM_OFF, ...).
//!
//! The conduit is taken from the host device tree's `/psci` `method`. From EL2 only
//! `smc` reaches firmware: an `hvc` would trap to Ferry itself, so [`crate::hostdt`]
//! refuses a `method = "hvc"` host tree with an error that says so.

pub use ferry_abi::psci::PsciRet;

/// How PSCI calls reach firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Secure monitor call (`SMC #0`) to EL3 firmware (or QEMU's built-in PSCI).
    Smc,
    /// Hypervisor call (`HVC #0`): only valid below a hypervisor, never from EL2.
    Hvc,
}

/// PSCI function identifiers (defined in [`ferry_abi::psci::function`]).
pub use ferry_abi::psci::function;

/// A PSCI return code that is not SUCCESS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// NOT_SUPPORTED (-1).
    NotSupported,
    /// INVALID_PARAMETERS (-2).
    InvalidParameters,
    /// DENIED (-3).
    Denied,
    /// ALREADY_ON (-4).
    AlreadyOn,
    /// ON_PENDING (-5).
    OnPending,
    /// INTERNAL_FAILURE (-6).
    InternalFailure,
    /// NOT_PRESENT (-7).
    NotPresent,
    /// DISABLED (-8).
    Disabled,
    /// INVALID_ADDRESS (-9).
    InvalidAddress,
    /// Any other negative value.
    Other(i32),
}

impl Error {
    /// Decodes a PSCI return value: `Ok` for zero or positive, the error otherwise.
    pub fn check(ret: u64) -> Result<u64, Error> {
        if ret as i64 >= 0 {
            return Ok(ret);
        }
        Err(match PsciRet::from_x0(ret) {
            Some(PsciRet::NotSupported) => Error::NotSupported,
            Some(PsciRet::InvalidParameters) => Error::InvalidParameters,
            Some(PsciRet::Denied) => Error::Denied,
            Some(PsciRet::AlreadyOn) => Error::AlreadyOn,
            Some(PsciRet::OnPending) => Error::OnPending,
            Some(PsciRet::InternalFailure) => Error::InternalFailure,
            Some(PsciRet::NotPresent) => Error::NotPresent,
            Some(PsciRet::Disabled) => Error::Disabled,
            Some(PsciRet::InvalidAddress) => Error::InvalidAddress,
            Some(PsciRet::Success) | None => Error::Other(ret as i64 as i32),
        })
    }

    /// The [`PsciRet`] code of the error (`None` for [`Error::Other`]).
    pub const fn ret(&self) -> Option<PsciRet> {
        Some(match self {
            Error::NotSupported => PsciRet::NotSupported,
            Error::InvalidParameters => PsciRet::InvalidParameters,
            Error::Denied => PsciRet::Denied,
            Error::AlreadyOn => PsciRet::AlreadyOn,
            Error::OnPending => PsciRet::OnPending,
            Error::InternalFailure => PsciRet::InternalFailure,
            Error::NotPresent => PsciRet::NotPresent,
            Error::Disabled => PsciRet::Disabled,
            Error::InvalidAddress => PsciRet::InvalidAddress,
            Error::Other(_) => return None,
        })
    }

    /// The PSCI name of the error.
    pub fn name(&self) -> &'static str {
        self.ret().map_or("UNKNOWN", PsciRet::name)
    }
}

/// Issues a PSCI call through `method`.
///
/// Only `Method::Smc` is reachable from EL2; an `Hvc` call returns NOT_SUPPORTED
/// without executing anything (it would trap to Ferry itself).
#[cfg(target_os = "none")]
pub fn call(method: Method, function: u32, a1: u64, a2: u64, a3: u64) -> u64 {
    let mut x0 = function as u64;
    match method {
        // SAFETY: SMCCC: x0-x3 carry the call, x0-x3 return; x4-x17 may be
        // clobbered by SMCCC v1.0 firmware, so they are marked clobbered.
        Method::Smc => unsafe {
            core::arch::asm!(
                "smc #0",
                inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            );
        },
        Method::Hvc => x0 = PsciRet::NotSupported.to_x0(),
    }
    x0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_return_codes() {
        assert_eq!(Error::check(0), Ok(0));
        assert_eq!(Error::check(0x1_0001), Ok(0x1_0001));
        assert_eq!(Error::check(-2i64 as u64), Err(Error::InvalidParameters));
        assert_eq!(Error::check(-4i64 as u64), Err(Error::AlreadyOn));
        assert_eq!(Error::check(-42i64 as u64), Err(Error::Other(-42)));
        assert_eq!(Error::AlreadyOn.name(), "ALREADY_ON");
        assert_eq!(Error::Other(-42).name(), "UNKNOWN");
        for r in PsciRet::ALL.into_iter().skip(1) {
            let e = Error::check(r.to_x0()).unwrap_err();
            assert_eq!(e.ret(), Some(r));
            assert_eq!(e.name(), r.name());
        }
    }
}
