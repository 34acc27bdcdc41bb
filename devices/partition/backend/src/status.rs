//! The status x0 of Ferry's hypercalls that return nothing else (BACKEND_READY,
//! IOREQ_COMPLETE, NOTIFY_FRONTEND), decoded with [`HypercallStatus`].

use core::fmt;

use ferry_abi::hypercall::HypercallStatus;

/// What a Ferry hypercall returned in x0 other than SUCCESS: its
/// [`HypercallStatus`] where it is one (shown as `NOT_SUPPORTED (-1)`), else the
/// raw value (shown signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub u64);

impl Refused {
    /// The status, if x0 holds one.
    pub const fn status(self) -> Option<HypercallStatus> {
        HypercallStatus::from_x0(self.0)
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status() {
            Some(status) => write!(f, "{status}"),
            None => write!(f, "{}", self.0 as i64),
        }
    }
}

/// Decodes the x0 of a Ferry hypercall that returns only a status: `Ok` for
/// [`HypercallStatus::Success`], the value otherwise.
pub const fn status(x0: u64) -> Result<(), Refused> {
    match HypercallStatus::from_x0(x0) {
        Some(HypercallStatus::Success) => Ok(()),
        _ => Err(Refused(x0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decode_and_print() {
        assert_eq!(status(HypercallStatus::Success.to_x0()), Ok(()));
        let e = status(HypercallStatus::NotSupported.to_x0()).unwrap_err();
        assert_eq!(e.status(), Some(HypercallStatus::NotSupported));
        assert_eq!(e.to_string(), "NOT_SUPPORTED (-1)");
        let e = status(HypercallStatus::InvalidParameters.to_x0()).unwrap_err();
        assert_eq!(e.to_string(), "INVALID_PARAMETERS (-2)");
        let e = status(-7i64 as u64).unwrap_err();
        assert_eq!((e.status(), e.to_string().as_str()), (None, "-7"));
        assert_eq!(status(5), Err(Refused(5)), "a value is not SUCCESS");
    }
}
