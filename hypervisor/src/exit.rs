//! How a run ends: the exit codes Ferry reports and the last line it prints.
//!
//! The test harness judges a QEMU run by its exit code and cross-checks it with
//! Ferry's last console line, `ferry: exit <code> (<reason>)`, so that QEMU ending
//! on its own is never taken for a verdict. Codes are documented in
//! docs/exit-codes.md.

/// Distinct exit codes, one per way a run can end. (1 is left to QEMU's own errors.)
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked of the run happened.
    Success = 0,
    /// Ferry refused to start: wrong exception level or load address, a host
    /// device tree or hardware it cannot use, a bad boot argument.
    BootRefused = 3,
    /// Some CPUs the device tree lists did not come online.
    CpusMissing = 4,
    /// An exception Ferry did not expect was taken at EL2.
    El2Exception = 5,
    /// Ferry panicked.
    Panic = 6,
    /// The config's watchdog expired with the run still going.
    Watchdog = 7,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Writes the final line, `ferry: exit <code> (<reason>)`.
pub fn write_last_line(
    out: &mut dyn core::fmt::Write,
    code: u32,
    reason: core::fmt::Arguments<'_>,
) -> core::fmt::Result {
    writeln!(out, "ferry: exit {code} ({reason})")
}

/// Ends the run: prints the last line without taking any lock, waits for the UART
/// to drain, then exits through the board's mechanism.
#[cfg(target_os = "none")]
pub fn end(code: ExitCode, reason: core::fmt::Arguments<'_>) -> ! {
    end_with(code.code(), reason)
}

/// Ends the run with a code the config chose (see [`end`]).
#[cfg(target_os = "none")]
pub fn end_with(code: u32, reason: core::fmt::Arguments<'_>) -> ! {
    let console = ferry_platform::board::BOARD.console;
    let _ = write_last_line(&mut ferry_platform::uart::RawWriter(console), code, reason);
    console.flush();
    ferry_platform::exit::end_run(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_avoid_qemus_own() {
        let all = [
            ExitCode::Success,
            ExitCode::BootRefused,
            ExitCode::CpusMissing,
            ExitCode::El2Exception,
            ExitCode::Panic,
            ExitCode::Watchdog,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_ne!(a.code(), 1);
            for b in &all[i + 1..] {
                assert_ne!(a.code(), b.code());
            }
        }
    }

    #[test]
    fn last_line_format() {
        let mut s = String::new();
        write_last_line(
            &mut s,
            ExitCode::Panic.code(),
            format_args!("panic on cpu{}", 2),
        )
        .unwrap();
        assert_eq!(s, "ferry: exit 6 (panic on cpu2)\n");
    }
}
