//! Ferry's hypercalls: `HVC #0` from a partition, SMCCC calling convention.
//!
//! Function identifiers sit in the SMCCC vendor-specific hypervisor service range
//! (owning entity 6): fast calls `0x8600_xxxx` (SMC32 convention) and `0xC600_xxxx`
//! (SMC64). Arguments in x1..x7, result in x0 (negative = error). PSCI (function
//! ids `0x84xx_xxxx`/`0xC4xx_xxxx`) is served on the same HVC and on trapped SMC.

/// Returns Ferry's hypercall ABI version in x0: major << 16 | minor.
pub const VERSION: u32 = 0x8600_0000;

/// Writes up to [`CONSOLE_WRITE_MAX`] bytes to the partition's console.
/// x1 = length, x2, x3, x4 = the bytes, little-endian (byte 0 is x2's low byte).
/// Returns the number of bytes taken.
pub const CONSOLE_WRITE: u32 = 0x8600_0001;

/// Returns how many times Ferry restarted the calling partition (0 on its first
/// run): a backend with `restart = "on-failure"` learns that it runs again.
pub const GENERATION: u32 = 0x8600_0002;

/// Backend: prints up to [`CONSOLE_WRITE_MAX`] bytes the frontend transmitted on
/// the backend's console device x1 (its number among the backend's devices), as
/// that console's stream on Ferry's console. x2 = length, x3, x4, x5 = the bytes,
/// little-endian (packed as [`console_args`] packs them). Returns the number of
/// bytes taken; INVALID_PARAMETERS for a device the caller does not serve, one
/// that is not a console, a console with the `loopback` test hook, or a length
/// over [`CONSOLE_WRITE_MAX`]; NOT_SUPPORTED from a partition without a request
/// page.
pub const CONSOLE_DEVICE_WRITE: u32 = 0x8600_0003;

/// Backend: takes up to [`CONSOLE_WRITE_MAX`] bytes typed for its console device
/// x1 (through Ferry's console multiplexer). Returns the count (0: nothing
/// waits) in x0 and the bytes in x1, x2, x3, little-endian ([`console_bytes`]
/// unpacks them); the refusals of [`CONSOLE_DEVICE_WRITE`]. Ferry sets the
/// device's bit in the request page's `console_input` when input waits.
pub const CONSOLE_DEVICE_READ: u32 = 0x8600_0004;

/// Backend: completes the synchronous IOREQ in slot x1 with sequence number x2;
/// x3 = the value a read returns (ignored for writes). Returns 0, or
/// INVALID_PARAMETERS for a slot that holds no such request (the access is then
/// completed as failed and the device marked DEVICE_NEEDS_RESET).
pub const IOREQ_COMPLETE: u32 = 0x8600_0010;

/// Backend: raises the interrupt of its device x1 in the frontend. x2 is reserved
/// (pass 0; Ferry ignores it): the frontend learns the cause from the device's
/// InterruptStatus, which the backend keeps.
pub const NOTIFY_FRONTEND: u32 = 0x8600_0011;

/// Backend: announces that it serves its request page from now on. Until then (or
/// until its first [`IOREQ_COMPLETE`]), a frontend access waits for the backend to
/// start, for up to [`BACKEND_START_MS`] after Ferry started the backend, instead
/// of only the device's deadline. Returns 0, or NOT_SUPPORTED for a partition
/// without a request page.
pub const BACKEND_READY: u32 = 0x8600_0012;

/// How long after its start a backend may take to announce [`BACKEND_READY`] before
/// frontend accesses that wait for it fail the device.
pub const BACKEND_START_MS: u64 = 10_000;

/// Most bytes one [`CONSOLE_WRITE`], [`CONSOLE_DEVICE_WRITE`] or
/// [`CONSOLE_DEVICE_READ`] carries.
pub const CONSOLE_WRITE_MAX: usize = 24;

/// The ABI version [`VERSION`] returns: 0.2 (0.1 plus [`CONSOLE_DEVICE_WRITE`],
/// [`CONSOLE_DEVICE_READ`] and the request page's `console_input`).
pub const ABI_VERSION: u64 = 0x0000_0002;

/// The status a Ferry hypercall returns in x0 when it returns no value (a call
/// that returns a value, such as [`VERSION`] or [`CONSOLE_WRITE`], returns it as a
/// non-negative x0 and only errors as a status). The values are SMCCC's and
/// coincide with PSCI's ([`crate::psci::PsciRet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum HypercallStatus {
    /// Done.
    Success = 0,
    /// Unknown function (SMCCC NOT_SUPPORTED, also PSCI NOT_SUPPORTED), or a call
    /// the calling partition may not make (e.g. [`BACKEND_READY`] without a
    /// request page).
    NotSupported = -1,
    /// Bad argument (PSCI INVALID_PARAMETERS).
    InvalidParameters = -2,
}

const _: () = assert!(core::mem::size_of::<HypercallStatus>() == 8);

impl HypercallStatus {
    /// Every status, in descending value.
    pub const ALL: [HypercallStatus; 3] = [
        HypercallStatus::Success,
        HypercallStatus::NotSupported,
        HypercallStatus::InvalidParameters,
    ];

    /// The signed value.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The value as Ferry writes it to x0.
    pub const fn to_x0(self) -> u64 {
        self as i64 as u64
    }

    /// The status with value `code`, if it is one.
    pub const fn from_code(code: i64) -> Option<HypercallStatus> {
        Some(match code {
            0 => HypercallStatus::Success,
            -1 => HypercallStatus::NotSupported,
            -2 => HypercallStatus::InvalidParameters,
            _ => return None,
        })
    }

    /// The status in x0 as the caller reads it, if it is one.
    pub const fn from_x0(x0: u64) -> Option<HypercallStatus> {
        Self::from_code(x0 as i64)
    }

    /// The name, e.g. `INVALID_PARAMETERS`.
    pub const fn name(self) -> &'static str {
        match self {
            HypercallStatus::Success => "SUCCESS",
            HypercallStatus::NotSupported => "NOT_SUPPORTED",
            HypercallStatus::InvalidParameters => "INVALID_PARAMETERS",
        }
    }
}

impl From<HypercallStatus> for i64 {
    fn from(s: HypercallStatus) -> i64 {
        s.code()
    }
}

impl core::fmt::Display for HypercallStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// SMCCC return code: success ([`HypercallStatus::Success`]).
pub const SUCCESS: i64 = HypercallStatus::Success.code();
/// SMCCC return code: unknown function, also PSCI NOT_SUPPORTED
/// ([`HypercallStatus::NotSupported`]).
pub const NOT_SUPPORTED: i64 = HypercallStatus::NotSupported.code();
/// Return code: bad argument ([`HypercallStatus::InvalidParameters`]).
pub const INVALID_PARAMETERS: i64 = HypercallStatus::InvalidParameters.code();

/// Packs up to 24 bytes of `text` as [`CONSOLE_WRITE`] arguments: (length, x2, x3, x4).
pub fn console_args(text: &[u8]) -> (u64, [u64; 3]) {
    let len = text.len().min(CONSOLE_WRITE_MAX);
    let mut words = [0u64; 3];
    for (i, &b) in text[..len].iter().enumerate() {
        words[i / 8] |= (b as u64) << (8 * (i % 8));
    }
    (len as u64, words)
}

/// Unpacks [`CONSOLE_WRITE`] arguments into `out`; returns the bytes, or `None`
/// if the length is over [`CONSOLE_WRITE_MAX`].
pub fn console_bytes(
    len: u64,
    words: [u64; 3],
    out: &mut [u8; CONSOLE_WRITE_MAX],
) -> Option<&[u8]> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= CONSOLE_WRITE_MAX)?;
    for (i, slot) in out.iter_mut().enumerate().take(len) {
        *slot = (words[i / 8] >> (8 * (i % 8))) as u8;
    }
    Some(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_round_trip() {
        let text = b"hello from partition 1!!";
        let (len, words) = console_args(text);
        assert_eq!(len, 24);
        assert_eq!(words[0] & 0xff, b'h' as u64);
        let mut buf = [0; CONSOLE_WRITE_MAX];
        assert_eq!(console_bytes(len, words, &mut buf), Some(&text[..]));
        let (len, words) = console_args(b"hi");
        assert_eq!(console_bytes(len, words, &mut buf), Some(&b"hi"[..]));
        assert_eq!(console_bytes(25, words, &mut buf), None);
        assert_eq!(console_bytes(u64::MAX, words, &mut buf), None);
    }

    #[test]
    fn status_codes_round_trip() {
        let want = [0, -1, -2];
        for (i, (s, code)) in HypercallStatus::ALL.into_iter().zip(want).enumerate() {
            assert_eq!(s.code(), code, "{s:?}");
            assert_eq!(i64::from(s), code);
            assert_eq!(HypercallStatus::from_code(code), Some(s));
            assert_eq!(HypercallStatus::from_x0(s.to_x0()), Some(s));
            assert_eq!(s.to_x0(), code as u64);
            for other in &HypercallStatus::ALL[i + 1..] {
                assert_ne!(s.code(), other.code());
                assert_ne!(s.name(), other.name());
            }
        }
        for code in [1, -3, i64::MIN, i64::MAX] {
            assert_eq!(HypercallStatus::from_code(code), None, "{code}");
        }
        assert_eq!(core::mem::size_of::<HypercallStatus>(), 8);
        assert_eq!(
            HypercallStatus::InvalidParameters.to_string(),
            "INVALID_PARAMETERS (-2)"
        );
    }

    #[test]
    fn old_constants_alias_the_status() {
        assert_eq!(SUCCESS, 0);
        assert_eq!(NOT_SUPPORTED, -1);
        assert_eq!(INVALID_PARAMETERS, -2);
        use crate::psci::PsciRet;
        // The values coincide with PSCI's, served on the same HVC.
        for s in HypercallStatus::ALL {
            let psci = PsciRet::from_code(s.code()).expect("a PSCI code");
            assert_eq!(psci.name(), s.name());
        }
    }

    #[test]
    fn ids_are_in_the_vendor_hypervisor_range() {
        for id in [
            VERSION,
            CONSOLE_WRITE,
            GENERATION,
            CONSOLE_DEVICE_WRITE,
            CONSOLE_DEVICE_READ,
            IOREQ_COMPLETE,
            NOTIFY_FRONTEND,
            BACKEND_READY,
        ] {
            assert_eq!(
                (id >> 24) & 0x3f,
                6,
                "owning entity 6: vendor-specific hypervisor"
            );
            assert_eq!(id >> 31, 1, "fast call");
        }
    }
}
