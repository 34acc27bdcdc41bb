//! Judging one scenario run from QEMU's exit and the console log.
//!
//! A scenario passes iff QEMU exited with the expected code, every expected substring is in
//! the log, and the log has Ferry's last line `ferry: exit <code>` naming that same code.
//! The last rule keeps QEMU exiting on its own (code 1 for a QEMU error, 0 for a reset with
//! `-no-reboot`) from being taken for Ferry's verdict.

pub use crate::ferry::ToolEnd;

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

/// How many lines of a tool's output a reason quotes.
pub const QUOTED_LINES: usize = 5;

/// One boot of a scenario: how QEMU ended and the boot's part of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub outcome: Outcome,
    pub text: String,
}

/// What a scenario's boots must show (its fields that judge them).
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// `expect_exit`: every boot's.
    pub exit: i32,
    /// Substrings the boots' logs, all together, must contain.
    pub log: &'a [String],
    /// Per boot, substrings that boot's log must contain (may be shorter than `boots`).
    pub log_boot: &'a [Vec<String>],
    /// Substrings no boot's log may contain.
    pub forbid: &'a [String],
    /// At most this many of Ferry's own lines in each boot's log.
    pub max_ferry_lines: Option<usize>,
    /// How many boots the scenario has.
    pub boots: usize,
}

/// Judges boot `i` (0-based) alone: its exit and Ferry's final line, and its own
/// `expect_log_boot` substrings. A failed boot ends the run.
pub fn judge_boot(e: &Expect, i: usize, boot: &Boot) -> Verdict {
    let want = e.log_boot.get(i).map(Vec::as_slice).unwrap_or(&[]);
    judge(e.exit, want, &boot.text, &boot.outcome)
}

/// Judges the boots that ran (in order; fewer than `e.boots` if one failed): each as
/// [`judge_boot`] (its reasons start `boot N: ` when there are several), the boots not
/// run, then `e.log` and `e.forbid` against all the boots' logs together, then each
/// boot's count of Ferry's lines. With one boot the reasons are those of [`judge`],
/// [`forbidden`] and [`ferry_lines_over`], in that order.
pub fn judge_boots(e: &Expect, boots: &[Boot]) -> Verdict {
    let several = e.boots > 1;
    let tag = |i: usize, r: String| {
        if several {
            format!("boot {}: {r}", i + 1)
        } else {
            r
        }
    };
    let mut reasons = Vec::new();
    let mut timed_out = false;
    let mut line_reasons = Vec::new();
    for (i, b) in boots.iter().enumerate() {
        let v = judge_boot(e, i, b);
        timed_out |= v.timed_out;
        reasons.extend(v.reasons.into_iter().map(|r| tag(i, r)));
        if matches!(b.outcome, Outcome::NotRun(_)) {
            return Verdict { reasons, timed_out };
        }
        if let Some(max) = e.max_ferry_lines {
            line_reasons.extend(ferry_lines_over(max, &b.text).map(|r| tag(i, r)));
        }
    }
    if boots.len() < e.boots {
        let first = boots.len() + 1;
        let which = if first == e.boots {
            format!("boot {first} of {}", e.boots)
        } else {
            format!("boots {first}..{} of {}", e.boots, e.boots)
        };
        let cause = match boots.len() {
            0 => "nothing booted".to_string(),
            n => format!("boot {n} failed"),
        };
        reasons.push(format!("{which} not run: {cause}"));
    }
    let all: String = boots.iter().map(|b| b.text.as_str()).collect();
    let missing: Vec<String> = e
        .log
        .iter()
        .filter(|s| !all.contains(s.as_str()))
        .map(|s| format!("{s:?}"))
        .collect();
    if !missing.is_empty() {
        reasons.push(format!("missing from log: {}", missing.join(", ")));
    }
    reasons.extend(forbidden(e.forbid, &all));
    reasons.extend(line_reasons);
    Verdict { reasons, timed_out }
}

/// The reason a host step (`prepare`/`after` command) failed, if it did: it must exit 0.
pub fn judge_step(what: &str, cmd: &str, end: &ToolEnd, output: &str) -> Option<String> {
    match end {
        ToolEnd::Exited(0) => None,
        ToolEnd::Exited(code) => Some(format!(
            "{what} command `{cmd}` failed (exit {code}): {}",
            quote(output, QUOTED_LINES)
        )),
        ToolEnd::Failed(why) => Some(format!("{what} command `{cmd}` did not finish: {why}")),
    }
}

/// The last `n` non-empty lines of `output`, joined with ` | `.
pub fn quote(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let from = lines.len().saturating_sub(n);
    if lines.is_empty() {
        "(no output)".to_string()
    } else {
        lines[from..].join(" | ")
    }
}

/// Judges `ferry check` on a config that must be refused: it must exit non-zero
/// One reason per `forbid_log` substring the log contains.
pub fn forbidden(forbid_log: &[String], log: &str) -> Vec<String> {
    forbid_log
        .iter()
        .filter(|f| log.contains(f.as_str()))
        .map(|f| format!("in the log, but forbidden: {f:?}"))
        .collect()
}

/// Ferry's own log lines: those that start with its timestamp (`[   0.023905 cpu0 ...`);
/// partitions' lines start with `[label]`, QEMU's and the exit line with neither.
pub fn ferry_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.strip_prefix('[')
                .map(|r| r.trim_start().starts_with(|c: char| c.is_ascii_digit()))
                .unwrap_or(false)
        })
        .count()
}

/// The reason the log holds more than `max` lines of Ferry's own, if it does.
pub fn ferry_lines_over(max: usize, log: &str) -> Option<String> {
    let n = ferry_lines(log);
    (n > max).then(|| format!("Ferry wrote {n} log lines, more than max_ferry_lines = {max}"))
}

/// (having run) and print `fragment`. Returns the reasons it failed (none: passed).
pub fn judge_check(fragment: &str, end: &ToolEnd, output: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    match end {
        ToolEnd::Failed(why) => {
            reasons.push(format!("ferry check did not finish: {why}"));
            return reasons;
        }
        ToolEnd::Exited(0) => {
            reasons.push("ferry check accepted the bad config (exit 0)".to_string());
        }
        ToolEnd::Exited(_) => {}
    }
    if !output.contains(fragment) {
        reasons.push(format!(
            "ferry check output lacks {fragment:?}; it said: {}",
            quote(output, QUOTED_LINES)
        ));
    }
    reasons
}

/// Judges `ferry pack`: it must exit 0. Returns the reasons it failed (none: passed).
pub fn judge_pack(end: &ToolEnd, output: &str) -> Vec<String> {
    match end {
        ToolEnd::Exited(0) => Vec::new(),
        ToolEnd::Exited(code) => vec![format!(
            "ferry pack failed (exit {code}): {}",
            quote(output, QUOTED_LINES)
        )],
        ToolEnd::Failed(why) => vec![format!("ferry pack did not finish: {why}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ferry_lines_count_only_timestamped_lines() {
        let log = "[   0.023905 cpu0 INFO ] Ferry\n[be] vbe: x\n[  12.5 cpu1 WARN ] y\n\
                   ferry: exit 0\nqemu: z\n";
        assert_eq!(ferry_lines(log), 2);
        assert_eq!(ferry_lines_over(2, log), None);
        assert!(ferry_lines_over(1, log).unwrap().contains("2 log lines"));
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    const GOOD: &str = "ferry: booting\nferry: 4 of 4 CPUs online\nferry: exit 0\n";

    #[test]
    fn pass() {
        assert!(forbidden(&v(&["first doorbell"]), GOOD).is_empty());
        assert_eq!(
            forbidden(&v(&["4 of 4 CPUs online", "nope"]), GOOD),
            ["in the log, but forbidden: \"4 of 4 CPUs online\""]
        );
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

    const CHECK_OUT: &str = "error: /partitions/partition@0: cpus: CPU 7 does not exist \
                             (/platform cpus = <4>)\nerror: 1 problem\n";

    #[test]
    fn check_refusing_with_the_fragment_passes() {
        let r = judge_check("cpus: CPU 7 does not exist", &ToolEnd::Exited(1), CHECK_OUT);
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn check_accepting_the_config_fails() {
        let r = judge_check("CPU 7", &ToolEnd::Exited(0), "");
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("accepted the bad config"), "{r:?}");
        assert!(
            r[1].contains("lacks \"CPU 7\"") && r[1].contains("(no output)"),
            "{r:?}"
        );
    }

    #[test]
    fn check_refusing_for_another_reason_fails() {
        let r = judge_check("overlaps", &ToolEnd::Exited(1), CHECK_OUT);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("lacks \"overlaps\""), "{r:?}");
        assert!(
            r[0].contains("CPU 7 does not exist"),
            "quotes the output: {r:?}"
        );
    }

    #[test]
    fn check_that_did_not_run_fails() {
        let r = judge_check("x", &ToolEnd::Failed("cannot start ferry".into()), "x");
        assert_eq!(
            r,
            vec!["ferry check did not finish: cannot start ferry".to_string()]
        );
    }

    #[test]
    fn pack_verdicts() {
        assert!(judge_pack(&ToolEnd::Exited(0), "packed").is_empty());
        let r = judge_pack(
            &ToolEnd::Exited(1),
            "a\n\nerror: image \"x.bin\" not found\n",
        );
        assert_eq!(
            r,
            vec!["ferry pack failed (exit 1): a | error: image \"x.bin\" not found".to_string()]
        );
        let r = judge_pack(&ToolEnd::Failed("timed out after 120 s".into()), "");
        assert!(r[0].contains("did not finish: timed out"), "{r:?}");
    }

    fn boot(code: i32, text: &str) -> Boot {
        Boot {
            outcome: Outcome::Exited(code),
            text: text.to_string(),
        }
    }

    fn expect<'a>(
        log: &'a [String],
        log_boot: &'a [Vec<String>],
        forbid: &'a [String],
        boots: usize,
    ) -> Expect<'a> {
        Expect {
            exit: 0,
            log,
            log_boot,
            forbid,
            max_ferry_lines: None,
            boots,
        }
    }

    #[test]
    fn one_boot_judged_as_before() {
        let (log, forbid) = (v(&["online", "nope"]), v(&["booting"]));
        let e = Expect {
            max_ferry_lines: Some(0),
            ..expect(&log, &[], &forbid, 1)
        };
        let log_text = format!("[   0.1 cpu0 INFO ] x\n{GOOD}");
        let b = boot(5, &log_text);
        let mut old = judge(0, &log, &b.text, &b.outcome).reasons;
        old.extend(forbidden(&forbid, &b.text));
        old.extend(ferry_lines_over(0, &b.text));
        let new = judge_boots(&e, std::slice::from_ref(&b));
        assert_eq!(new.reasons, old);
        assert_eq!(new.reasons.len(), 5, "{new:?}");
        let nr = Boot {
            outcome: Outcome::NotRun("no image".into()),
            text: String::new(),
        };
        assert_eq!(
            judge_boots(&e, &[nr]).reasons,
            vec!["not run: no image".to_string()]
        );
    }

    #[test]
    fn boots_judged_each_and_together() {
        let log = v(&["wrote", "found"]);
        let per = vec![v(&["wrote"]), v(&["found"])];
        let e = expect(&log, &per, &[], 2);
        let (b1, b2) = (
            boot(0, "first boot wrote\nferry: exit 0\n"),
            boot(0, "second boot found\nferry: exit 0\n"),
        );
        assert!(judge_boots(&e, &[b1.clone(), b2.clone()]).passed());
        // Each boot's own substrings must be in that boot, not just somewhere.
        let r = judge_boots(&e, &[b2.clone(), b1.clone()]);
        assert_eq!(
            r.reasons,
            vec![
                "boot 1: missing from log: \"wrote\"".to_string(),
                "boot 2: missing from log: \"found\"".to_string()
            ]
        );
        // expect_log over both: one boot alone lacks the other's line.
        let r = judge_boots(&expect(&log, &[], &[], 2), std::slice::from_ref(&b1));
        assert_eq!(
            r.reasons,
            vec![
                "boot 2 of 2 not run: boot 1 failed".to_string(),
                "missing from log: \"found\"".to_string()
            ]
        );
        // Every boot needs Ferry's final line and the exit code.
        let bad = boot(0, "second boot found\n");
        let r = judge_boots(&e, &[b1.clone(), bad]);
        assert_eq!(r.reasons.len(), 1, "{r:?}");
        assert!(r.reasons[0].starts_with("boot 2: no `ferry: exit"), "{r:?}");
        let r = judge_boots(
            &expect(&log, &[], &[], 3),
            &[Boot {
                outcome: Outcome::TimedOut(9),
                text: "wrote found".into(),
            }],
        );
        assert!(r.timed_out);
        assert_eq!(
            r.reasons,
            vec![
                "boot 1: TIMEOUT: QEMU killed after 9 s".to_string(),
                "boots 2..3 of 3 not run: boot 1 failed".to_string()
            ]
        );
        // forbid_log over all boots.
        let forbid = v(&["found"]);
        let r = judge_boots(&expect(&[], &[], &forbid, 2), &[b1, b2]);
        assert_eq!(
            r.reasons,
            vec!["in the log, but forbidden: \"found\"".to_string()]
        );
    }

    #[test]
    fn step_verdicts() {
        assert_eq!(judge_step("after", "true", &ToolEnd::Exited(0), ""), None);
        assert_eq!(
            judge_step(
                "after",
                "fsck.ext4 -n -f d.img",
                &ToolEnd::Exited(4),
                "e2fsck\nd.img: ********** WARNING: Filesystem still has errors **********\n"
            )
            .unwrap(),
            "after command `fsck.ext4 -n -f d.img` failed (exit 4): e2fsck | d.img: ********** \
             WARNING: Filesystem still has errors **********"
        );
        assert!(
            judge_step(
                "prepare",
                "x",
                &ToolEnd::Failed("timed out after 300 s".into()),
                ""
            )
            .unwrap()
            .contains("did not finish: timed out")
        );
    }

    #[test]
    fn quote_keeps_the_last_lines() {
        let out: String = (1..=8).map(|i| format!("l{i}\n")).collect();
        assert_eq!(quote(&out, 3), "l6 | l7 | l8");
    }

    #[test]
    fn boot_refusal_judged_with_the_fragment() {
        // What run_scenario does for an expect_check scenario after check and pack pass.
        let log = "ferry: config error: /partitions/partition@0: cpus: CPU 7 does not exist \
                   (/platform cpus = <4>)\nferry: exit 3 (1 config problem(s); boot refused)\n";
        let want = v(&["cpus: CPU 7 does not exist"]);
        assert!(judge(3, &want, log, &Outcome::Exited(3)).passed());
        let other = "ferry: config error: something else\nferry: exit 3 (refused)\n";
        let r = judge(3, &want, other, &Outcome::Exited(3));
        assert!(r.reason_line().contains("missing from log"), "{r:?}");
        let booted = "[alpha] hello\nferry: exit 0 (all stopped)\n";
        assert!(!judge(3, &want, booted, &Outcome::Exited(0)).passed());
    }
}
