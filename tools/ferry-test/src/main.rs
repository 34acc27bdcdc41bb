//! `ferry-test`: Ferry's host test runner.
//!
//! `test` runs the host unit tests (`cargo test --workspace`, plus the bare-metal
//! partitions' workspace) and the QEMU scenarios of `tests/scenarios.toml`, and closes with
//! `total: N passed, M failed`; `run NAME` boots one scenario interactively; `list` shows
//! the scenarios; `bench` boots tests/partitions/bench.dts twice under `-icount` and
//! prints the benchmark table (docs/bench.md).
//! Scenarios with a `config` are packed with the `ferry` CLI first (built here with
//! `cargo build --release -p ferry-tool` unless `FERRY` names a binary); those with
//! `expect_check` also run `ferry check` on it. A scenario may also have host commands
//! around its boots (`prepare`, `after`, in its work directory `build/scenarios/<name>/`),
//! more QEMU arguments (`qemu_args`) and several boots of the same image (`boots`): see
//! `steps` and tests/README.md.
//! Paths are relative to the repository root; build the images and guests first
//! (`make images guests test-guests`, or just `make test`).

mod bench;
mod ferry;
mod host;
mod qemu;
mod scenario;
mod steps;
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
use crate::verdict::{Boot, Expect, Outcome, Verdict};

/// Scenario definitions, relative to the repository root.
const SCENARIOS: &str = "tests/scenarios.toml and tests/hostile/*.toml";
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
    /// Benchmarks: boot tests/partitions/bench.dts twice under `-icount shift=0,sleep=off`,
    /// print the table and whether both runs gave the same numbers (docs/bench.md).
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
        Cmd::Bench => bench::run(&root),
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
    scenario::load_all(root)
}

fn cmd_list(root: &Path) -> Result<ExitCode> {
    let all = load_scenarios(root)?;
    let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &all {
        println!(
            "{:width$}  {:10}  exit {:<3}  {}{}",
            s.name,
            s.image,
            s.expect_exit,
            s.description,
            s.config
                .as_ref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default()
                + &if s.boots > 1 {
                    format!(" ({} boots)", s.boots)
                } else {
                    String::new()
                }
        );
        if let Some(why) = &s.pending {
            println!("{:width$}  (pending, skipped by `test`: {why})", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The kernel and DTB paths (relative to the root) a scenario needs, or why it cannot run.
/// For a `config` scenario the kernel is the hypervisor image to pack the config with.
fn inputs(root: &Path, s: &Scenario) -> std::result::Result<(PathBuf, Option<PathBuf>), String> {
    let kernel = PathBuf::from(format!("build/{}/ferry.img", s.image));
    if !root.join(&kernel).is_file() {
        return Err(format!(
            "{} is missing: build it with `make images` (or `make image PLATFORM={}`)",
            kernel.display(),
            s.image
        ));
    }
    if let Some(config) = &s.config {
        if !root.join(config).is_file() {
            return Err(format!("config {config} is missing"));
        }
        if !root.join(ferry::GUEST_BIN_DIR).is_dir() {
            return Err(format!(
                "{} is missing: build the test guests with `make test-guests`",
                ferry::GUEST_BIN_DIR
            ));
        }
        if let Some(dir) = s.include.iter().find(|d| !root.join(d).is_dir()) {
            return Err(format!(
                "{dir} is missing (include of scenario {}): `make guests` fetches build/guests",
                s.name
            ));
        }
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
    /// The log the failure report shows: QEMU's, or the tool log if a `ferry` step failed.
    log: PathBuf,
    /// The command that failed or booted (empty if nothing ran).
    command: String,
}

/// A `ferry check`/`ferry pack` step that failed.
struct PrepFailure {
    reasons: Vec<String>,
    command: String,
}

/// The `ferry` CLI for `config` scenarios: built once per run, or why not.
type FerryBin = std::result::Result<PathBuf, String>;

/// For a `config` scenario: `ferry check` (only with `expect_check`: it must refuse the
/// config) then `ferry pack` (`--no-check` with `expect_check`). Output goes to
/// `tool_log`. Returns the packed image (relative to the root).
fn prepare(
    root: &Path,
    s: &Scenario,
    config: &str,
    hypervisor: &Path,
    ferry_bin: &Path,
    tool_log: &Path,
) -> std::result::Result<PathBuf, PrepFailure> {
    let fail = |reasons: Vec<String>, command: String| PrepFailure { reasons, command };
    if let Err(e) = ferry::new_log(tool_log) {
        return Err(fail(
            vec![format!("cannot create {}: {e}", tool_log.display())],
            String::new(),
        ));
    }
    if let Some(fragment) = &s.expect_check {
        let run = ferry::run(
            root,
            ferry_bin,
            &ferry::check_args(config, &s.include),
            tool_log,
        );
        let reasons = verdict::judge_check(fragment, &run.end, &run.output);
        if !reasons.is_empty() {
            return Err(fail(reasons, run.command));
        }
    }
    let out = s.packed_image().unwrap_or_default();
    let packed_dir = root.join(ferry::PACKED_DIR);
    if let Err(e) = std::fs::create_dir_all(&packed_dir) {
        return Err(fail(
            vec![format!("cannot create {}: {e}", packed_dir.display())],
            String::new(),
        ));
    }
    // No stale image from an earlier run may boot if this pack fails.
    let _ = std::fs::remove_file(root.join(&out));
    let args = ferry::pack_args(
        config,
        hypervisor,
        &out,
        &s.include,
        s.expect_check.is_some(),
    );
    let run = ferry::run(root, ferry_bin, &args, tool_log);
    let mut reasons = verdict::judge_pack(&run.end, &run.output);
    if reasons.is_empty() && !root.join(&out).is_file() {
        reasons.push(format!(
            "ferry pack exited 0 but wrote no {}",
            out.display()
        ));
    }
    if let (true, Some(offset)) = (reasons.is_empty(), s.corrupt_pack)
        && let Err(e) = ferry::corrupt_pack(&root.join(&out), offset)
    {
        reasons.push(e);
    }
    if reasons.is_empty() {
        Ok(out)
    } else {
        Err(fail(reasons, run.command))
    }
}

fn run_scenario(root: &Path, s: &Scenario, ferry_bin: Option<&FerryBin>) -> Report {
    let log = Path::new(LOG_DIR).join(format!("{}.log", s.name));
    let tool_log = Path::new(LOG_DIR).join(format!("{}.ferry.log", s.name));
    let start = Instant::now();
    // No stale log from an earlier run may stand for this one.
    let _ = std::fs::remove_file(root.join(&log));
    let _ = std::fs::remove_file(root.join(&tool_log));
    let report = |verdict: Verdict, log: PathBuf, command: String| Report {
        name: s.name.clone(),
        verdict,
        elapsed: start.elapsed(),
        log,
        command,
    };
    let not_run = |why: String| {
        let verdict = verdict::judge(s.expect_exit, &[], "", &Outcome::NotRun(why));
        report(verdict, log.clone(), String::new())
    };
    let (mut kernel, dtb) = match inputs(root, s) {
        Ok(k) => k,
        Err(why) => return not_run(why),
    };
    if let Some(config) = &s.config {
        let bin = match ferry_bin {
            Some(Ok(bin)) => bin,
            Some(Err(why)) => return not_run(why.clone()),
            None => return not_run("the ferry CLI was not provided".to_string()),
        };
        match prepare(root, s, config, &kernel, bin, &root.join(&tool_log)) {
            Ok(packed) => kernel = packed,
            Err(f) => {
                let verdict = Verdict {
                    reasons: f.reasons,
                    timed_out: false,
                };
                return report(verdict, tool_log, f.command);
            }
        }
    }
    // The work directory, `prepare`, the boots, `after` (tests/README.md).
    let log_path = root.join(&log);
    let step_failed = |f: steps::StepFailure| {
        let verdict = Verdict {
            reasons: vec![f.reason],
            timed_out: false,
        };
        report(verdict, log.clone(), f.command)
    };
    let work = steps::work_dir(root, s);
    if s.uses_work_dir()
        && let Err(why) = steps::fresh_work_dir(root, s)
    {
        return not_run(why);
    }
    if let Err(f) = steps::run_commands(root, &work, "prepare", &s.prepare, &log_path) {
        return step_failed(f);
    }
    let args = qemu::args(s, &kernel, dtb.as_deref(), Console::Captured, &work);
    let bin = qemu::binary();
    let command = qemu::shell_line(&bin, &args);
    let expected = s.expected_log();
    let expect = expectations(s, &expected);
    let mut boots = Vec::new();
    let mut all_passed = true;
    for i in 0..expect.boots {
        if s.is_multi_step() {
            steps::header(
                &log_path,
                &format!("boot {} of {}: {command}", i + 1, expect.boots),
            );
        }
        let boot = boot_captured(root, &bin, &args, &log_path, s.timeout_secs, &s.input);
        all_passed = verdict::judge_boot(&expect, i, &boot).passed();
        boots.push(boot);
        if !all_passed {
            break;
        }
    }
    let verdict = verdict::judge_boots(&expect, &boots);
    // `after` checks what the boots left; after a failed boot the log's tail stays its.
    if all_passed && let Err(f) = steps::run_commands(root, &work, "after", &s.after, &log_path) {
        let mut verdict = verdict;
        verdict.reasons.push(f.reason);
        return report(verdict, log, f.command);
    }
    report(verdict, log, command)
}

/// What `s`'s boots must show; `expected` is [`Scenario::expected_log`].
fn expectations<'a>(s: &'a Scenario, expected: &'a [String]) -> Expect<'a> {
    Expect {
        exit: s.expect_exit,
        log: expected,
        log_boot: &s.expect_log_boot,
        forbid: &s.forbid_log,
        max_ferry_lines: s.max_ferry_lines,
        boots: s.boots as usize,
    }
}

/// Types `steps` into `stdin`: each waits until `log` shows its `after` text beyond
/// `from` (this boot's start) and the previous step's match (polling, until
/// `deadline`), then sends its text.
fn type_input(
    mut stdin: std::process::ChildStdin,
    log: PathBuf,
    mut from: usize,
    steps: Vec<scenario::InputStep>,
    deadline: Instant,
) {
    for step in steps {
        loop {
            if Instant::now() > deadline {
                return;
            }
            let text = std::fs::read(&log)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if let Some(at) = text.get(from..).and_then(|rest| rest.find(&step.after)) {
                from += at + step.after.len();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if stdin
            .write_all(step.send.as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
    }
    // Keep stdin open until QEMU ends: an early EOF would look like a hang-up.
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs QEMU with its output appended to `log` under a hard deadline, typing `input`;
/// returns how it ended and what it added to the log.
fn boot_captured(
    root: &Path,
    bin: &str,
    args: &[String],
    log: &Path,
    secs: u64,
    input: &[scenario::InputStep],
) -> Boot {
    let outcome = |outcome: Outcome, start: u64| {
        let text = std::fs::read(log)
            .map(|b| {
                let from = usize::try_from(start).unwrap_or(usize::MAX).min(b.len());
                String::from_utf8_lossy(&b[from..]).into_owned()
            })
            .unwrap_or_default();
        Boot { outcome, text }
    };
    let opened = File::options()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|f| Ok((f.metadata()?.len(), f)));
    let (start, file) = match opened {
        Ok(x) => x,
        Err(e) => {
            let why = format!("cannot open {}: {e}", log.display());
            return outcome(Outcome::NotRun(why), u64::MAX);
        }
    };
    let spawned = file
        .try_clone()
        .map(|out| (out, file))
        .map_err(|e| format!("cannot open {}: {e}", log.display()))
        .and_then(|(out, err)| {
            Command::new(bin)
                .args(args)
                .current_dir(root)
                .stdin(if input.is_empty() {
                    Stdio::null()
                } else {
                    Stdio::piped()
                })
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("cannot start {bin}: {e} (run `make deps`)"))
        });
    let mut child = match spawned {
        Ok(c) => c,
        Err(why) => return outcome(Outcome::NotRun(why), start),
    };
    if let Some(stdin) = child.stdin.take() {
        let (log, steps) = (log.to_path_buf(), input.to_vec());
        let from = usize::try_from(start).unwrap_or(usize::MAX);
        let deadline = Instant::now() + Duration::from_secs(secs);
        std::thread::spawn(move || type_input(stdin, log, from, steps, deadline));
    }
    let ended = match qemu::wait_with_deadline(&mut child, Duration::from_secs(secs)) {
        Ok(Ended::TimedOut) => Outcome::TimedOut(secs),
        Ok(Ended::Exited(st)) => match (st.code(), st.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, sig) => Outcome::Signalled(sig.unwrap_or(-1)),
        },
        Err(e) => Outcome::NotRun(format!("waiting for {bin}: {e}")),
    };
    outcome(ended, start)
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
    let (pending, chosen): (Vec<Scenario>, Vec<Scenario>) = all
        .into_iter()
        .filter(|s| filter.is_none_or(|f| s.name.contains(f)))
        .partition(|s| s.pending.is_some());
    if chosen.is_empty() && pending.is_empty() {
        bail!(
            "no scenario in {SCENARIOS} matches --filter {:?} (see `ferry-test list`)",
            filter.unwrap_or("")
        );
    }
    let log_dir = root.join(LOG_DIR);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let ferry_bin = provide_ferry(root, &chosen);

    // Host unit tests first: they share the two cores with nothing else.
    let mut hostc = host::Counts::default();
    let mut host_failure: Option<Vec<String>> = None;
    let host_log = Path::new(LOG_DIR).join("host.log");
    if skip_host {
        println!("host unit tests: skipped (--skip-host)");
    } else {
        println!(
            "host unit tests: running `cargo test --workspace` and the bare-metal partitions' tests (devices/partition) (log: {})",
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

    for s in &pending {
        println!(
            "SKIP {}: {}",
            s.name,
            s.pending.as_deref().unwrap_or_default()
        );
    }
    println!(
        "qemu scenarios: running {} ({} at a time, logs in {LOG_DIR}/)",
        chosen.len(),
        jobs
    );
    flush();
    let reports = run_all(root, &chosen, jobs, ferry_bin.as_ref());

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
    if pending.is_empty() {
        println!("qemu scenarios: {passed} passed, {failed} failed");
    } else {
        println!(
            "qemu scenarios: {passed} passed, {failed} failed, {} skipped (pending)",
            pending.len()
        );
    }
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

/// The `ferry` CLI, if any of `scenarios` has a config: built once (or `$FERRY`).
fn provide_ferry(root: &Path, scenarios: &[Scenario]) -> Option<FerryBin> {
    if scenarios.iter().all(|s| s.config.is_none()) {
        return None;
    }
    let log = Path::new(LOG_DIR).join("ferry-build.log");
    if std::env::var_os("FERRY").is_none_or(|b| b.is_empty()) {
        println!(
            "ferry CLI: `cargo build --release -p {}` (log: {})",
            ferry::PACKAGE,
            log.display()
        );
        flush();
    }
    let _ = std::fs::File::create(root.join(&log));
    let bin = ferry::provide(root, &root.join(&log));
    if let Err(why) = &bin {
        println!("ferry CLI: {why}");
    }
    Some(bin)
}

/// Runs the scenarios on `jobs` threads, printing one line as each finishes; returns the
/// reports in file order.
fn run_all(
    root: &Path,
    scenarios: &[Scenario],
    jobs: usize,
    ferry_bin: Option<&FerryBin>,
) -> Vec<Report> {
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
                    if tx.send((i, run_scenario(root, s, ferry_bin))).is_err() {
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
    let (mut kernel, dtb) = inputs(root, s).map_err(anyhow::Error::msg)?;
    if let Some(config) = &s.config {
        std::fs::create_dir_all(root.join(LOG_DIR))?;
        let ferry_bin = provide_ferry(root, std::slice::from_ref(s))
            .unwrap_or_else(|| Err("no ferry CLI".into()))
            .map_err(anyhow::Error::msg)?;
        let tool_log = Path::new(LOG_DIR).join(format!("{}.ferry.log", s.name));
        match prepare(root, s, config, &kernel, &ferry_bin, &root.join(&tool_log)) {
            Ok(packed) => kernel = packed,
            Err(f) => bail!(
                "{} (command: {}; log: {})",
                f.reasons.join("; "),
                f.command,
                tool_log.display()
            ),
        }
        eprintln!("ferry-test: packed {config} into {}", kernel.display());
    }
    // The work directory and `prepare` (their output in the scenario's log), then each
    // boot, then `after` (its output shown).
    let work = steps::work_dir(root, s);
    let log = root.join(LOG_DIR).join(format!("{}.log", s.name));
    if s.uses_work_dir() {
        std::fs::create_dir_all(root.join(LOG_DIR))?;
        let _ = std::fs::remove_file(&log);
        steps::fresh_work_dir(root, s).map_err(anyhow::Error::msg)?;
        eprintln!("ferry-test: work directory {}", work.display());
    }
    let step = |what: &str, cmds: &[String]| -> Result<()> {
        for c in cmds {
            eprintln!("ferry-test: {what}: {c}");
        }
        steps::run_commands(root, &work, what, cmds, &log)
            .map_err(|f| anyhow::anyhow!("{} (log: {})", f.reason, log.display()))
    };
    step("prepare", &s.prepare)?;
    let args = qemu::args(s, &kernel, dtb.as_deref(), Console::Interactive, &work);
    let bin = qemu::binary();
    eprintln!("ferry-test: {} — {}", s.name, s.description);
    eprintln!("ferry-test: {}", qemu::shell_line(&bin, &args));
    eprintln!("ferry-test: timeout {secs} s (RUN_TIMEOUT); Ctrl-A X quits QEMU");
    let mut code = 0;
    for i in 1..=s.boots {
        if s.boots > 1 {
            eprintln!("ferry-test: boot {i} of {}", s.boots);
        }
        let mut child = Command::new(&bin)
            .args(&args)
            .current_dir(root)
            .spawn()
            .with_context(|| format!("cannot start {bin} (run `make deps`)"))?;
        match qemu::wait_with_deadline(&mut child, Duration::from_secs(secs))? {
            Ended::TimedOut => {
                eprintln!("\nferry-test: RUN_TIMEOUT of {secs} s reached: QEMU killed");
                return Ok(ExitCode::from(124));
            }
            Ended::Exited(st) => {
                code = match (st.code(), st.signal()) {
                    (Some(c), _) => c,
                    (None, sig) => 128 + sig.unwrap_or(0),
                };
                eprintln!("\nferry-test: QEMU exited with {code}");
            }
        }
    }
    if !s.after.is_empty() {
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let done = step("after", &s.after);
        let text = std::fs::read(&log).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(0).min(text.len());
        eprint!("{}", String::from_utf8_lossy(&text[from..]));
        done?;
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
