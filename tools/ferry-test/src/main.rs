//! `ferry-test`: Ferry's host test runner.
//!
//! `test` runs the host unit tests (`cargo test --workspace`) and the QEMU scenarios of
//! `tests/scenarios.toml`, and closes with `total: N passed, M failed`; `run NAME` boots one
//! scenario interactively; `list` shows the scenarios; `bench` is a placeholder.
//! Paths are relative to the repository root; build the images and guests first
//! (`make images guests`, or just `make test`).

mod host;
mod qemu;
mod scenario;
mod verdict;

use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::qemu::{Console, Ended};
use crate::scenario::Scenario;
use crate::verdict::{Outcome, Verdict};

/// Scenario definitions, relative to the repository root.
const SCENARIOS: &str = "tests/scenarios.toml";
/// Where logs go, relative to the repository root.
const LOG_DIR: &str = "build/test-logs";
/// How many log lines a failure report shows.
const TAIL_LINES: usize = 30;
/// Default for `run` when `RUN_TIMEOUT` is not set, in seconds.
const DEFAULT_RUN_TIMEOUT: u64 = 600;

#[derive(Parser)]
#[command(
    name = "ferry-test",
    about = "Ferry's host unit tests and QEMU scenarios"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the host unit tests and the QEMU scenarios; print `total: N passed, M failed` last.
    Test {
        /// Only run scenarios whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Do not run the host unit tests.
        #[arg(long)]
        skip_host: bool,
        /// How many QEMU scenarios run at once.
        #[arg(long, short, default_value_t = 2)]
        jobs: usize,
    },
    /// Boot one scenario interactively (`-serial mon:stdio`, Ctrl-A X quits); the deadline
    /// is RUN_TIMEOUT seconds (default 600).
    Run {
        /// Scenario name (see `list`).
        name: String,
    },
    /// List the scenarios.
    List,
    /// Benchmarks (not there yet).
    Bench,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = repo_root();
    let result = match cli.cmd {
        Cmd::Test {
            filter,
            skip_host,
            jobs,
        } => cmd_test(&root, filter.as_deref(), skip_host, jobs.max(1)),
        Cmd::Run { name } => cmd_run(&root, &name),
        Cmd::List => cmd_list(&root),
        Cmd::Bench => {
            println!("no benchmarks yet: make bench arrives with the virtio path (issue 5)");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("ferry-test: error: {e:#}");
        ExitCode::FAILURE
    })
}

/// The repository root: two levels above this crate.
fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

fn load_scenarios(root: &Path) -> Result<Vec<Scenario>> {
    scenario::load(&root.join(SCENARIOS))
}

fn cmd_list(root: &Path) -> Result<ExitCode> {
    let all = load_scenarios(root)?;
    let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &all {
        println!(
            "{:width$}  {:10}  exit {:<3}  {}",
            s.name, s.image, s.expect_exit, s.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The kernel and DTB paths (relative to the root) a scenario needs, or why it cannot run.
fn inputs(root: &Path, s: &Scenario) -> std::result::Result<(PathBuf, Option<PathBuf>), String> {
    let kernel = PathBuf::from(format!("build/{}/ferry.img", s.image));
    if !root.join(&kernel).is_file() {
        return Err(format!(
            "{} is missing: build it with `make images` (or `make image PLATFORM={}`)",
            kernel.display(),
            s.image
        ));
    }
    let dtb = s.dtb.as_ref().map(|d| Path::new("build/guests").join(d));
    if let Some(dtb) = dtb.as_ref().filter(|d| !root.join(d).is_file()) {
        return Err(format!(
            "{} is missing: fetch it with `make guests`",
            dtb.display()
        ));
    }
    Ok((kernel, dtb))
}

/// One finished scenario.
struct Report {
    name: String,
    verdict: Verdict,
    elapsed: Duration,
    log: PathBuf,
    command: String,
}

fn run_scenario(root: &Path, s: &Scenario) -> Report {
    let log = Path::new(LOG_DIR).join(format!("{}.log", s.name));
    let start = Instant::now();
    let mut command = String::new();
    let outcome = match inputs(root, s) {
        Err(why) => {
            // No stale log from an earlier run may stand for this one.
            let _ = std::fs::remove_file(root.join(&log));
            Outcome::NotRun(why)
        }
        Ok((kernel, dtb)) => {
            let args = qemu::args(s, &kernel, dtb.as_deref(), Console::Captured);
            let bin = qemu::binary();
            command = qemu::shell_line(&bin, &args);
            boot_captured(root, &bin, &args, &root.join(&log), s.timeout_secs)
        }
    };
    let text = std::fs::read(root.join(&log))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let verdict = verdict::judge(s.expect_exit, &s.expect_log, &text, &outcome);
    Report {
        name: s.name.clone(),
        verdict,
        elapsed: start.elapsed(),
        log,
        command,
    }
}

/// Runs QEMU with its output in `log` under a hard deadline.
fn boot_captured(root: &Path, bin: &str, args: &[String], log: &Path, secs: u64) -> Outcome {
    let spawned = File::create(log)
        .and_then(|f| Ok((f.try_clone()?, f)))
        .map_err(|e| format!("cannot create {}: {e}", log.display()))
        .and_then(|(out, err)| {
            Command::new(bin)
                .args(args)
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("cannot start {bin}: {e} (run `make deps`)"))
        });
    let mut child = match spawned {
        Ok(c) => c,
        Err(why) => return Outcome::NotRun(why),
    };
    match qemu::wait_with_deadline(&mut child, Duration::from_secs(secs)) {
        Ok(Ended::TimedOut) => Outcome::TimedOut(secs),
        Ok(Ended::Exited(st)) => match (st.code(), st.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, sig) => Outcome::Signalled(sig.unwrap_or(-1)),
        },
        Err(e) => Outcome::NotRun(format!("waiting for {bin}: {e}")),
    }
}

/// The last `n` lines of a file, lossily decoded, or a note saying why there are none.
fn tail(path: &Path, n: usize) -> Vec<String> {
    match std::fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines[from..]
                .iter()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect()
        }
        Err(e) => vec![format!("(no log: {e})")],
    }
}

fn cmd_test(root: &Path, filter: Option<&str>, skip_host: bool, jobs: usize) -> Result<ExitCode> {
    let all = load_scenarios(root)?;
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| filter.is_none_or(|f| s.name.contains(f)))
        .collect();
    if chosen.is_empty() {
        bail!(
            "no scenario in {SCENARIOS} matches --filter {:?} (see `ferry-test list`)",
            filter.unwrap_or("")
        );
    }
    let log_dir = root.join(LOG_DIR);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;

    // Host unit tests first: they share the two cores with nothing else.
    let mut hostc = host::Counts::default();
    let mut host_failure: Option<Vec<String>> = None;
    let host_log = Path::new(LOG_DIR).join("host.log");
    if skip_host {
        println!("host unit tests: skipped (--skip-host)");
    } else {
        println!(
            "host unit tests: running `cargo test --workspace` (log: {})",
            host_log.display()
        );
        flush();
        let start = Instant::now();
        let cargo_ok = host::run(root, &root.join(&host_log))?;
        let text = String::from_utf8_lossy(&std::fs::read(root.join(&host_log))?).into_owned();
        hostc = host::judge(&text, cargo_ok);
        let secs = start.elapsed().as_secs_f64();
        if hostc.failed == 0 {
            println!("PASS host unit tests: {} passed ({secs:.1}s)", hostc.passed);
        } else {
            let why = if host::parse_log(&text).failed == 0 {
                "cargo test failed before running tests (build error?)".to_string()
            } else {
                format!("{} failed", hostc.failed)
            };
            println!("FAIL host unit tests: {why} ({secs:.1}s)");
            let excerpts = host::failure_excerpts(&text, 3 * TAIL_LINES);
            let (what, lines) = if excerpts.is_empty() {
                (
                    format!("last {TAIL_LINES} lines"),
                    tail(&root.join(&host_log), TAIL_LINES),
                )
            } else {
                ("failures".to_string(), excerpts)
            };
            let mut details = vec![format!("log: {} ({what}):", host_log.display())];
            details.extend(lines.into_iter().map(|l| format!("| {l}")));
            host_failure = Some(details);
        }
    }

    println!(
        "qemu scenarios: running {} ({} at a time, logs in {LOG_DIR}/)",
        chosen.len(),
        jobs
    );
    flush();
    let reports = run_all(root, &chosen, jobs);

    let passed = reports.iter().filter(|r| r.verdict.passed()).count() as u64;
    let failed = reports.len() as u64 - passed;

    println!();
    println!("== summary ==");
    if let Some(details) = &host_failure {
        println!("FAIL host unit tests");
        for l in details {
            println!("  {l}");
        }
    }
    for r in reports.iter().filter(|r| !r.verdict.passed()) {
        println!("FAIL {}: {}", r.name, r.verdict.reason_line());
        if !r.command.is_empty() {
            println!("  command: {}", r.command);
            let lines = tail(&root.join(&r.log), TAIL_LINES);
            if lines.is_empty() {
                println!("  log: {} is empty", r.log.display());
            } else {
                println!("  log: {} (last {TAIL_LINES} lines):", r.log.display());
            }
            for l in lines {
                println!("  | {l}");
            }
        }
    }
    println!(
        "host unit tests: {} passed, {} failed",
        hostc.passed, hostc.failed
    );
    println!("qemu scenarios: {passed} passed, {failed} failed");
    println!(
        "total: {} passed, {} failed",
        hostc.passed + passed,
        hostc.failed + failed
    );
    Ok(if hostc.failed + failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the scenarios on `jobs` threads, printing one line as each finishes; returns the
/// reports in file order.
fn run_all(root: &Path, scenarios: &[Scenario], jobs: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Report)>();
    let mut slots: Vec<Option<Report>> = scenarios.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(scenarios.len()) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = scenarios.get(i) else { break };
                    if tx.send((i, run_scenario(root, s))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            if r.verdict.passed() {
                println!("PASS {} ({:.1}s)", r.name, r.elapsed.as_secs_f64());
            } else {
                println!("FAIL {}: {}", r.name, r.verdict.reason_line());
            }
            flush();
            slots[i] = Some(r);
        }
    });
    slots.into_iter().flatten().collect()
}

fn flush() {
    let _ = std::io::stdout().flush();
}

fn cmd_run(root: &Path, name: &str) -> Result<ExitCode> {
    let all = load_scenarios(root)?;
    let Some(s) = all.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "no scenario {name:?} in {SCENARIOS}; there are: {}",
            names.join(", ")
        );
    };
    let secs = match std::env::var("RUN_TIMEOUT") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("RUN_TIMEOUT={v:?} is not a positive number of seconds"))?,
        _ => DEFAULT_RUN_TIMEOUT,
    };
    let (kernel, dtb) = inputs(root, s).map_err(anyhow::Error::msg)?;
    let args = qemu::args(s, &kernel, dtb.as_deref(), Console::Interactive);
    let bin = qemu::binary();
    eprintln!("ferry-test: {} — {}", s.name, s.description);
    eprintln!("ferry-test: {}", qemu::shell_line(&bin, &args));
    eprintln!("ferry-test: timeout {secs} s (RUN_TIMEOUT); Ctrl-A X quits QEMU");
    let mut child = Command::new(&bin)
        .args(&args)
        .current_dir(root)
        .spawn()
        .with_context(|| format!("cannot start {bin} (run `make deps`)"))?;
    match qemu::wait_with_deadline(&mut child, Duration::from_secs(secs))? {
        Ended::TimedOut => {
            eprintln!("\nferry-test: RUN_TIMEOUT of {secs} s reached: QEMU killed");
            Ok(ExitCode::from(124))
        }
        Ended::Exited(st) => {
            let code = match (st.code(), st.signal()) {
                (Some(c), _) => c,
                (None, sig) => 128 + sig.unwrap_or(0),
            };
            eprintln!("\nferry-test: QEMU exited with {code}");
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
    }
}
