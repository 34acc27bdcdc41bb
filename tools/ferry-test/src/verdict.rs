//! Judging one scenario run from QEMU's exit and the console log.
//!
//! A scenario passes iff QEMU exited with the expected code, every expected substring is in
//! the log, and the log has Ferry's last line `ferry: exit <code>` naming that same code.
//! The last rule keeps QEMU exiting on its own (code 1 for a QEMU error, 0 for a reset with
//! `-no-reboot`) from being taken for Ferry's verdict.

/// The marker Ferry prints right before it exits through semihosting.
pub const EXIT_MARKER: &str = "ferry: exit ";

/// How a scenario's QEMU run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited with this code.
    Exited(i32),
    /// QEMU was killed by this signal (not by the runner).
    Signalled(i32),
    /// The runner's hard timeout (seconds) passed and it killed QEMU.
    TimedOut(u64),
    /// QEMU was never started; the text says why (e.g. a missing image).
    NotRun(String),
}

/// The result of judging one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every reason the run failed; empty means it passed.
    pub reasons: Vec<String>,
    /// True when the run ended by the runner's timeout.
    pub timed_out: bool,
}

impl Verdict {
    /// True iff nothing was wrong.
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }

    /// The reasons as one line.
    pub fn reason_line(&self) -> String {
        self.reasons.join("; ")
    }
}

/// The code of the last `ferry: exit <code>` line in `log`, if there is one.
///
/// The marker may have a prefix on its line (a timestamp, a colour code) and, after the
/// number and a space, a note (`ferry: exit 4 (1 of 4 CPUs online)`).
pub fn ferry_exit_code(log: &str) -> Option<i32> {
    log.lines().rev().find_map(|line| {
        let at = line.rfind(EXIT_MARKER)?;
        let rest = &line[at + EXIT_MARKER.len()..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest[..end].parse::<i32>().ok()
    })
}

/// Judges a run: `expect_exit` and `expect_log` come from the scenario.
pub fn judge(expect_exit: i32, expect_log: &[String], log: &str, outcome: &Outcome) -> Verdict {
    let mut reasons = Vec::new();
    let mut timed_out = false;
    match outcome {
        Outcome::NotRun(why) => {
            return Verdict {
                reasons: vec![format!("not run: {why}")],
                timed_out,
            };
        }
        Outcome::TimedOut(secs) => {
            timed_out = true;
            reasons.push(format!("TIMEOUT: QEMU killed after {secs} s"));
        }
        Outcome::Signalled(sig) => {
            reasons.push(format!("QEMU killed by signal {sig}"));
        }
        Outcome::Exited(code) => {
            if *code != expect_exit {
                reasons.push(format!("exit code: expected {expect_exit}, got {code}"));
            }
            match ferry_exit_code(log) {
                None => reasons.push(format!(
                    "no `{EXIT_MARKER}<code>` line in the log: exit {code} did not come from \
                     Ferry (QEMU error or reset?)"
                )),
                Some(said) if said != *code => reasons.push(format!(
                    "Ferry said `{EXIT_MARKER}{said}` but QEMU exited with {code}"
                )),
                Some(_) => {}
            }
        }
    }
    let missing: Vec<String> = expect_log
        .iter()
        .filter(|s| !log.contains(s.as_str()))
        .map(|s| format!("{s:?}"))
        .collect();
    if !missing.is_empty() {
        reasons.push(format!("missing from log: {}", missing.join(", ")));
    }
    Verdict { reasons, timed_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    const GOOD: &str = "ferry: booting\nferry: 4 of 4 CPUs online\nferry: exit 0\n";

    #[test]
    fn pass() {
        let r = judge(0, &v(&["4 of 4 CPUs online"]), GOOD, &Outcome::Exited(0));
        assert!(r.passed(), "{r:?}");
    }

    #[test]
    fn crlf_and_prefix_accepted() {
        let log = "x\r\n[  1.000] ferry: exit 6\r\n";
        assert_eq!(ferry_exit_code(log), Some(6));
        assert!(judge(6, &[], log, &Outcome::Exited(6)).passed());
    }

    #[test]
    fn last_marker_wins_and_trailing_text_is_not_a_marker() {
        assert_eq!(ferry_exit_code("ferry: exit 1\nferry: exit 5\n"), Some(5));
        assert_eq!(
            ferry_exit_code("ferry: exit 4 (1 of 4 CPUs online)\n"),
            Some(4)
        );
        assert_eq!(ferry_exit_code("ferry: exit 5x\n"), None);
        assert_eq!(ferry_exit_code("ferry: exit (none)\n"), None);
        assert_eq!(ferry_exit_code("ferry: exit\n"), None);
    }

    #[test]
    fn wrong_exit_code() {
        let log = "ferry: exit 5\n";
        let r = judge(0, &[], log, &Outcome::Exited(5));
        assert!(!r.passed());
        assert!(r.reason_line().contains("expected 0, got 5"), "{r:?}");
    }

    #[test]
    fn qemu_error_is_not_a_ferry_verdict() {
        // QEMU fails on its own with 1, and 1 is what the scenario expected.
        let log = "qemu-system-aarch64: could not load kernel 'x'\n";
        let r = judge(1, &[], log, &Outcome::Exited(1));
        assert!(!r.passed());
        assert!(r.reason_line().contains("did not come from Ferry"), "{r:?}");
    }

    #[test]
    fn marker_disagreeing_with_qemu() {
        let r = judge(0, &[], "ferry: exit 6\n", &Outcome::Exited(0));
        assert!(!r.passed());
        assert!(r.reason_line().contains("but QEMU exited with 0"), "{r:?}");
    }

    #[test]
    fn missing_substrings_listed() {
        let r = judge(0, &v(&["ESR", "FAR", "online"]), GOOD, &Outcome::Exited(0));
        assert_eq!(
            r.reasons,
            vec!["missing from log: \"ESR\", \"FAR\"".to_string()]
        );
    }

    #[test]
    fn timeout() {
        let r = judge(0, &[], "ferry: booting\n", &Outcome::TimedOut(60));
        assert!(r.timed_out);
        assert!(r.reason_line().contains("TIMEOUT"), "{r:?}");
    }

    #[test]
    fn timeout_even_with_marker_and_substrings() {
        let r = judge(0, &v(&["online"]), GOOD, &Outcome::TimedOut(60));
        assert!(!r.passed());
    }

    #[test]
    fn signal_and_not_run() {
        assert!(!judge(0, &[], GOOD, &Outcome::Signalled(9)).passed());
        let r = judge(0, &[], "", &Outcome::NotRun("no image".into()));
        assert_eq!(r.reasons, vec!["not run: no image".to_string()]);
    }
}
