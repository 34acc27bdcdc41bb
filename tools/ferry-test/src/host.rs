//! Host unit tests: `cargo test --workspace`, then the bare-metal partitions' workspace
//! (`cargo test --manifest-path devices/partition/Cargo.toml --workspace`), logged to one
//! file and counted from its `test result:` lines.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Passed and failed test counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (or 1 for a cargo run that failed before testing).
    pub failed: u64,
}

/// Parses one libtest summary line, e.g.
/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s`.
pub fn parse_summary_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (status, fields) = rest.split_once(". ")?;
    if status != "ok" && status != "FAILED" {
        return None;
    }
    let mut counts = Counts::default();
    let mut seen = (false, false);
    for field in fields.split(';') {
        let mut words = field.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => (counts.passed, seen.0) = (n, true),
            "failed" => (counts.failed, seen.1) = (n, true),
            _ => {}
        }
    }
    (seen.0 && seen.1).then_some(counts)
}

/// Sums every summary line in a whole `cargo test` log.
pub fn parse_log(log: &str) -> Counts {
    log.lines()
        .filter_map(parse_summary_line)
        .fold(Counts::default(), |a, c| Counts {
            passed: a.passed + c.passed,
            failed: a.failed + c.failed,
        })
}

/// The counts for a whole run, given whether cargo itself succeeded.
///
/// A cargo failure with no failed test (a compile error, a crashed test binary) counts as
/// one failure, so it can never look green.
pub fn judge(log: &str, cargo_ok: bool) -> Counts {
    let mut c = parse_log(log);
    if !cargo_ok && c.failed == 0 {
        c.failed = 1;
    }
    c
}

/// The `failures:` sections of a `cargo test` log (each failed test's output and the
/// list of names), at most `max` lines in all.
pub fn failure_excerpts(log: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in log.lines() {
        if line.starts_with("test result: ") {
            inside = false;
        } else if line == "failures:" && !inside {
            inside = true;
        }
        if inside && out.len() < max {
            out.push(line.to_string());
        }
    }
    out
}

/// The bare-metal partitions' workspace (the partition runtime and the reference
/// backend): their pure parts (bootargs, DTB copy, page table, the backend's DT and
/// request-page logic) are unit-tested on the host too.
pub const PARTITION_MANIFEST: &str = "devices/partition/Cargo.toml";

/// The `cargo test` runs of the host step: the main workspace, then the partitions'
/// workspace (`ferry-partition-rt`, `ferry-backend`) on the host.
pub fn cargo_test_args() -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["test", "--workspace", "--no-fail-fast"]),
        v(&[
            "test",
            "--manifest-path",
            PARTITION_MANIFEST,
            "--workspace",
            "--no-fail-fast",
        ]),
    ]
}

/// Runs every [`cargo_test_args`] in `root`, with stdout and stderr going to `log_path`.
/// Returns whether every cargo run succeeded; judge the log with [`judge`].
pub fn run(root: &Path, log_path: &Path) -> Result<bool> {
    let log = File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut ok = true;
    for args in cargo_test_args() {
        let status = Command::new(&cargo)
            .args(&args)
            .current_dir(root)
            .env("CARGO_TERM_COLOR", "never")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
        ok &= status.success();
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_line() {
        let c = parse_summary_line(
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.03s",
        );
        assert_eq!(
            c,
            Some(Counts {
                passed: 12,
                failed: 0
            })
        );
    }

    #[test]
    fn failed_line() {
        let c = parse_summary_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        );
        assert_eq!(
            c,
            Some(Counts {
                passed: 3,
                failed: 2
            })
        );
    }

    #[test]
    fn other_lines_ignored() {
        for l in [
            "test foo ... ok",
            "running 3 tests",
            "test result: maybe. 1 passed; 0 failed",
            "test result: ok. lots passed",
            "error: test failed, to rerun pass `-p x --lib`",
        ] {
            assert_eq!(parse_summary_line(l), None, "{l}");
        }
    }

    #[test]
    fn whole_log_summed() {
        let log = "\
   Compiling x v0.1.0
running 2 tests
test a ... ok
test b ... FAILED
test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 5 tests
test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s

   Doc-tests x
running 0 tests
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            parse_log(log),
            Counts {
                passed: 6,
                failed: 1
            }
        );
        assert_eq!(
            judge(log, false),
            Counts {
                passed: 6,
                failed: 1
            }
        );
    }

    #[test]
    fn failure_sections_extracted() {
        let log = "\
running 2 tests
test a ... ok
test b ... FAILED

failures:

---- b stdout ----
assertion failed

failures:
    b

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
running 1 test
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let x = failure_excerpts(log, 100);
        assert_eq!(x.first().map(String::as_str), Some("failures:"));
        assert!(x.iter().any(|l| l == "assertion failed"));
        assert!(x.iter().any(|l| l == "    b"));
        assert!(!x.iter().any(|l| l.starts_with("test result")));
        assert_eq!(failure_excerpts(log, 3).len(), 3);
        assert!(failure_excerpts("error: could not compile", 10).is_empty());
    }

    #[test]
    fn compile_error_counts_as_one_failure() {
        let log =
            "error[E0425]: cannot find value `x` in this scope\nerror: could not compile `y`\n";
        assert_eq!(
            judge(log, false),
            Counts {
                passed: 0,
                failed: 1
            }
        );
        assert_eq!(
            judge("", true),
            Counts {
                passed: 0,
                failed: 0
            }
        );
    }

    #[test]
    fn both_workspaces_are_tested() {
        let runs = cargo_test_args();
        assert_eq!(runs[0].join(" "), "test --workspace --no-fail-fast");
        assert!(
            runs[1]
                .join(" ")
                .contains("--manifest-path devices/partition/Cargo.toml")
        );
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(root.join(PARTITION_MANIFEST).is_file());
    }
}
