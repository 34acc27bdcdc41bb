//! PSCI (Arm DEN 0022) as both sides of Ferry's PSCI boundary number it: the
//! function identifiers ([`function`]), the return codes ([`PsciRet`]) and the
//! AFFINITY_INFO states ([`affinity`]).
//!
//! Ferry calls firmware with these numbers (`ferry_platform::psci`), serves them
//! to its partitions on `HVC #0` and trapped `SMC #0`, and the bare-metal partition
//! runtime calls them.

/// PSCI function identifiers (SMC64 where the call takes addresses).
pub mod function {
    /// PSCI_VERSION.
    pub const VERSION: u32 = 0x8400_0000;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON (SMC64).
    pub const CPU_ON: u32 = 0xC400_0003;
    /// CPU_ON, SMC32 form (32-bit arguments).
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// AFFINITY_INFO (SMC64).
    pub const AFFINITY_INFO: u32 = 0xC400_0004;
    /// AFFINITY_INFO, SMC32 form (32-bit arguments).
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const FEATURES: u32 = 0x8400_000A;

    /// Whether `function` uses the SMC64 convention (bit 30): 64-bit arguments and
    /// result. SMC32 calls take 32-bit arguments and return a 32-bit value in w0.
    pub const fn is_smc64(function: u32) -> bool {
        function & 0x4000_0000 != 0
    }
}

/// AFFINITY_INFO results (non-negative; errors are [`PsciRet`] codes).
pub mod affinity {
    /// ON: the target runs.
    pub const ON: i64 = 0;
    /// OFF: the target is off (CPU_ON may start it).
    pub const OFF: i64 = 1;
    /// ON_PENDING: CPU_ON was accepted, the target has not started yet.
    pub const ON_PENDING: i64 = 2;
}

/// A PSCI return code, as the caller receives it in x0 (sign-extended from w0 for
/// SMC32 calls). Calls that return a value (PSCI_VERSION, AFFINITY_INFO,
/// PSCI_FEATURES, ...) return it as a non-negative x0 instead of
/// [`Success`](PsciRet::Success).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum PsciRet {
    /// SUCCESS (0).
    Success = 0,
    /// NOT_SUPPORTED (-1): the function is not implemented.
    NotSupported = -1,
    /// INVALID_PARAMETERS (-2).
    InvalidParameters = -2,
    /// DENIED (-3).
    Denied = -3,
    /// ALREADY_ON (-4): CPU_ON for a running core.
    AlreadyOn = -4,
    /// ON_PENDING (-5): CPU_ON for a core that is being started.
    OnPending = -5,
    /// INTERNAL_FAILURE (-6).
    InternalFailure = -6,
    /// NOT_PRESENT (-7).
    NotPresent = -7,
    /// DISABLED (-8).
    Disabled = -8,
    /// INVALID_ADDRESS (-9): e.g. a CPU_ON entry point outside the caller's memory.
    InvalidAddress = -9,
}

const _: () = assert!(core::mem::size_of::<PsciRet>() == 8);

impl PsciRet {
    /// Every code, SUCCESS first, then in descending value.
    pub const ALL: [PsciRet; 10] = [
        PsciRet::Success,
        PsciRet::NotSupported,
        PsciRet::InvalidParameters,
        PsciRet::Denied,
        PsciRet::AlreadyOn,
        PsciRet::OnPending,
        PsciRet::InternalFailure,
        PsciRet::NotPresent,
        PsciRet::Disabled,
        PsciRet::InvalidAddress,
    ];

    /// The signed value.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The value as the callee writes it to x0.
    pub const fn to_x0(self) -> u64 {
        self as i64 as u64
    }

    /// The code with value `code`, if it is one.
    pub const fn from_code(code: i64) -> Option<PsciRet> {
        Some(match code {
            0 => PsciRet::Success,
            -1 => PsciRet::NotSupported,
            -2 => PsciRet::InvalidParameters,
            -3 => PsciRet::Denied,
            -4 => PsciRet::AlreadyOn,
            -5 => PsciRet::OnPending,
            -6 => PsciRet::InternalFailure,
            -7 => PsciRet::NotPresent,
            -8 => PsciRet::Disabled,
            -9 => PsciRet::InvalidAddress,
            _ => return None,
        })
    }

    /// The code in x0 as the caller reads it, if it is one (an SMC32 call's w0
    /// must be sign-extended first).
    pub const fn from_x0(x0: u64) -> Option<PsciRet> {
        Self::from_code(x0 as i64)
    }

    /// The PSCI specification's name, e.g. `ALREADY_ON`.
    pub const fn name(self) -> &'static str {
        match self {
            PsciRet::Success => "SUCCESS",
            PsciRet::NotSupported => "NOT_SUPPORTED",
            PsciRet::InvalidParameters => "INVALID_PARAMETERS",
            PsciRet::Denied => "DENIED",
            PsciRet::AlreadyOn => "ALREADY_ON",
            PsciRet::OnPending => "ON_PENDING",
            PsciRet::InternalFailure => "INTERNAL_FAILURE",
            PsciRet::NotPresent => "NOT_PRESENT",
            PsciRet::Disabled => "DISABLED",
            PsciRet::InvalidAddress => "INVALID_ADDRESS",
        }
    }
}

impl From<PsciRet> for i64 {
    fn from(r: PsciRet) -> i64 {
        r.code()
    }
}

impl core::fmt::Display for PsciRet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_specification_values() {
        let want = [0, -1, -2, -3, -4, -5, -6, -7, -8, -9];
        for (r, code) in PsciRet::ALL.into_iter().zip(want) {
            assert_eq!(r.code(), code, "{r:?}");
            assert_eq!(i64::from(r), code);
        }
        assert_eq!(PsciRet::ALL.len(), want.len());
    }

    #[test]
    fn round_trip_and_distinct() {
        for (i, r) in PsciRet::ALL.into_iter().enumerate() {
            assert_eq!(PsciRet::from_code(r.code()), Some(r));
            assert_eq!(PsciRet::from_x0(r.to_x0()), Some(r));
            assert_eq!(r.to_x0(), r.code() as u64);
            for other in &PsciRet::ALL[i + 1..] {
                assert_ne!(r.code(), other.code());
                assert_ne!(r.name(), other.name());
            }
        }
        for code in [1, -10, i64::MIN, i64::MAX, 0x1_0001] {
            assert_eq!(PsciRet::from_code(code), None, "{code}");
        }
        assert_eq!(PsciRet::from_x0(u64::MAX), Some(PsciRet::NotSupported));
        assert_eq!(PsciRet::from_x0(0xffff_ffff), None, "w0 not sign-extended");
        assert_eq!(core::mem::size_of::<PsciRet>(), 8);
        assert_eq!(PsciRet::AlreadyOn.to_string(), "ALREADY_ON (-4)");
    }

    #[test]
    fn function_ids_are_psci_fast_calls() {
        use function::*;
        let all = [
            VERSION,
            CPU_OFF,
            CPU_ON,
            CPU_ON_32,
            AFFINITY_INFO,
            AFFINITY_INFO_32,
            MIGRATE_INFO_TYPE,
            SYSTEM_OFF,
            SYSTEM_RESET,
            FEATURES,
        ];
        for (i, id) in all.into_iter().enumerate() {
            assert_eq!(
                (id >> 24) & 0x3f,
                4,
                "owning entity 4: standard secure service"
            );
            assert_eq!(id >> 31, 1, "fast call");
            assert!(!all[i + 1..].contains(&id), "{id:#x} twice");
        }
        assert!(is_smc64(CPU_ON) && is_smc64(AFFINITY_INFO));
        assert!(!is_smc64(CPU_ON_32) && !is_smc64(VERSION));
        assert_eq!(CPU_ON & !0x4000_0000, CPU_ON_32);
        assert_eq!(AFFINITY_INFO & !0x4000_0000, AFFINITY_INFO_32);
        let states = [affinity::ON, affinity::OFF, affinity::ON_PENDING];
        assert_eq!(states, [0, 1, 2]);
    }
}
