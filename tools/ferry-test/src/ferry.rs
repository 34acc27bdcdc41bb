//! The `ferry` CLI for scenarios with a `config`: building it, `ferry check`, and
//! `ferry pack` (see tests/README.md). Every run is bounded by a deadline and logged to
//! the scenario's tool log, `build/test-logs/<name>.ferry.log`.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::qemu::{self, Ended};

/// Where the test guests' images are (`make test-guests`), passed to `ferry` as `-I`.
pub const GUEST_BIN_DIR: &str = "build/guests-bin";

/// Where `make partitions` puts the product partitions' images (ferry-backend.bin).
pub const PARTITION_BIN_DIR: &str = "build/partitions";

/// Where packed scenario images go.
pub const PACKED_DIR: &str = "build/scenarios";

/// The cargo package of the `ferry` CLI.
pub const PACKAGE: &str = "ferry-tool";

/// How long one `ferry check`/`ferry pack` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long building the CLI may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// How one run of a tool ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEnd {
    /// It exited with this code.
    Exited(i32),
    /// It could not start, was killed by a signal, or ran out of time; the text says which.
    Failed(String),
}

/// One finished run of the `ferry` CLI.
#[derive(Debug, Clone)]
pub struct ToolRun {
    /// The command line, as a shell would take it.
    pub command: String,
    /// How it ended.
    pub end: ToolEnd,
    /// Its stdout and stderr, interleaved.
    pub output: String,
}

/// `-I build/guests-bin -I build/partitions`, then `-I DIR` for each of `include`.
fn include_args(include: &[String]) -> Vec<String> {
    [GUEST_BIN_DIR, PARTITION_BIN_DIR]
        .into_iter()
        .chain(include.iter().map(String::as_str))
        .flat_map(|d| ["-I".to_string(), d.to_string()])
        .collect()
}

/// `ferry check CONFIG -I build/guests-bin [-I DIR]...`.
pub fn check_args(config: &str, include: &[String]) -> Vec<String> {
    let mut a = vec!["check".to_string(), config.into()];
    a.extend(include_args(include));
    a
}

/// `ferry pack CONFIG --hypervisor IMG -o OUT -I build/guests-bin [-I DIR]... [--no-check]`.
pub fn pack_args(
    config: &str,
    hypervisor: &Path,
    out: &Path,
    include: &[String],
    no_check: bool,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "pack".into(),
        config.into(),
        "--hypervisor".into(),
        hypervisor.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    a.extend(include_args(include));
    if no_check {
        a.push("--no-check".into());
    }
    a
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `target`), relative to `root`
/// unless absolute.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

/// Makes the `ferry` binary available: `$FERRY` if set, else builds it with
/// `cargo build --release -p ferry-tool` (output in `log`) and returns
/// `<target>/release/ferry`. The error says why and where to look.
pub fn provide(root: &Path, log: &Path) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("FERRY").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let args: Vec<String> = ["build", "--release", "-p", PACKAGE]
        .map(String::from)
        .to_vec();
    let run = run_logged(root, &cargo, &args, log, BUILD_TIMEOUT);
    match run.end {
        ToolEnd::Exited(0) => {}
        ToolEnd::Exited(code) => {
            return Err(format!(
                "building the ferry CLI failed (`{}` exited with {code}; log: {})",
                run.command,
                log.display()
            ));
        }
        ToolEnd::Failed(why) => {
            return Err(format!(
                "building the ferry CLI: {why} (log: {})",
                log.display()
            ));
        }
    }
    let bin = target_dir(root).join("release/ferry");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing after `cargo build --release -p {PACKAGE}`",
            bin.display()
        ))
    }
}

/// Runs `program args` in `root` with its output appended to `log` (after a `$ command`
/// line), under `timeout`; returns the run with just this run's output.
pub fn run_logged(
    root: &Path,
    program: &str,
    args: &[String],
    log: &Path,
    timeout: Duration,
) -> ToolRun {
    run_logged_env(root, program, args, &[], log, timeout)
}

/// [`run_logged`] with more environment variables for the program.
pub fn run_logged_env(
    root: &Path,
    program: &str,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
    timeout: Duration,
) -> ToolRun {
    let command = qemu::shell_line(program, args);
    let failed = |why: String| ToolRun {
        command: command.clone(),
        end: ToolEnd::Failed(why),
        output: String::new(),
    };
    let mut file = match OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(log)
    {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot open {}: {e}", log.display())),
    };
    let _ = writeln!(file, "$ {command}");
    let start = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let spawned = file
        .try_clone()
        .and_then(|out| Ok((out.try_clone()?, out)))
        .and_then(|(out, err)| {
            Command::new(program)
                .args(args)
                .current_dir(root)
                .env("CARGO_TERM_COLOR", "never")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
        });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(file, "(cannot start {program}: {e})");
            return failed(format!("cannot start {program}: {e}"));
        }
    };
    let end = match qemu::wait_with_deadline(&mut child, timeout) {
        Ok(Ended::Exited(st)) => match (st.code(), st.signal()) {
            (Some(code), _) => ToolEnd::Exited(code),
            (None, sig) => ToolEnd::Failed(format!("killed by signal {}", sig.unwrap_or(-1))),
        },
        Ok(Ended::TimedOut) => ToolEnd::Failed(format!("timed out after {} s", timeout.as_secs())),
        Err(e) => ToolEnd::Failed(format!("waiting for {program}: {e}")),
    };
    let mut output = String::new();
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
        output = String::from_utf8_lossy(&bytes).into_owned();
    }
    let _ = writeln!(
        file,
        "({})",
        match &end {
            ToolEnd::Exited(c) => format!("exit {c}"),
            ToolEnd::Failed(why) => why.clone(),
        }
    );
    ToolRun {
        command,
        end,
        output,
    }
}

/// Runs the `ferry` CLI at `bin` with `args` (see [`run_logged`]).
pub fn run(root: &Path, bin: &Path, args: &[String], log: &Path) -> ToolRun {
    run_logged(root, &bin.display().to_string(), args, log, TOOL_TIMEOUT)
}

/// Starts a fresh tool log.
pub fn new_log(log: &Path) -> std::io::Result<()> {
    File::create(log).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        assert_eq!(
            check_args("tests/partitions/bad/x.dts", &[]).join(" "),
            "check tests/partitions/bad/x.dts -I build/guests-bin -I build/partitions"
        );
        let a = pack_args(
            "tests/partitions/x.dts",
            Path::new("build/qemu-virt/ferry.img"),
            Path::new("build/scenarios/x.img"),
            &[],
            false,
        );
        assert_eq!(
            a.join(" "),
            "pack tests/partitions/x.dts --hypervisor build/qemu-virt/ferry.img \
             -o build/scenarios/x.img -I build/guests-bin -I build/partitions"
        );
        let a = pack_args("c", Path::new("h"), Path::new("o"), &[], true);
        assert_eq!(a.last().map(String::as_str), Some("--no-check"));
        let more = ["build/guests".to_string()];
        assert_eq!(
            check_args("c", &more).join(" "),
            "check c -I build/guests-bin -I build/partitions -I build/guests"
        );
        assert_eq!(
            pack_args("c", Path::new("h"), Path::new("o"), &more, true).join(" "),
            "pack c --hypervisor h -o o -I build/guests-bin -I build/partitions -I build/guests --no-check"
        );
    }

    #[test]
    fn run_logged_captures_output_and_code() {
        let dir = std::env::temp_dir().join(format!("ferry-test-tool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("t.log");
        new_log(&log).unwrap();
        let sh = |script: &str| vec!["-c".to_string(), script.to_string()];
        let r = run_logged(
            &dir,
            "sh",
            &sh("echo out; echo err >&2; exit 1"),
            &log,
            TOOL_TIMEOUT,
        );
        assert_eq!(r.end, ToolEnd::Exited(1));
        assert!(
            r.output.contains("out") && r.output.contains("err"),
            "{r:?}"
        );
        let r2 = run_logged(&dir, "sh", &sh("echo second"), &log, TOOL_TIMEOUT);
        assert_eq!(r2.end, ToolEnd::Exited(0));
        assert_eq!(r2.output, "second\n", "only this run's output");
        let whole = std::fs::read_to_string(&log).unwrap();
        assert!(
            whole.contains("$ sh -c 'echo second'") && whole.contains("(exit 1)"),
            "{whole}"
        );
        let r3 = run_logged(&dir, "/nonexistent/ferry", &[], &log, TOOL_TIMEOUT);
        assert!(matches!(r3.end, ToolEnd::Failed(ref w) if w.contains("cannot start")));
        let r4 = run_logged(
            &dir,
            "sleep",
            &["30".into()],
            &log,
            Duration::from_millis(200),
        );
        assert!(matches!(r4.end, ToolEnd::Failed(ref w) if w.contains("timed out")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The first bytes of a pack (`ferry_abi::pack::MAGIC`).
const PACK_MAGIC: &[u8; 8] = b"FERRYPK\0";

/// Flips every bit of the byte `offset` bytes into the pack inside the image at
/// `path`. The pack is found at the first 4 KiB-aligned offset holding its magic.
pub fn corrupt_pack(path: &Path, offset: u64) -> std::result::Result<(), String> {
    let mut bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let start = (0..bytes.len())
        .step_by(4096)
        .find(|&at| bytes[at..].starts_with(PACK_MAGIC))
        .ok_or_else(|| format!("{}: no pack found", path.display()))?;
    let at = usize::try_from(offset)
        .ok()
        .and_then(|o| start.checked_add(o))
        .filter(|&at| at < bytes.len())
        .ok_or_else(|| format!("{}: offset {offset:#x} is past the pack", path.display()))?;
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod corrupt_tests {
    use super::*;

    #[test]
    fn flips_a_byte_relative_to_the_pack() {
        let dir = std::env::temp_dir().join(format!("ferry-corrupt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("img");
        let mut image = vec![0u8; 3 * 4096];
        image[4096..4104].copy_from_slice(PACK_MAGIC);
        std::fs::write(&path, &image).unwrap();
        corrupt_pack(&path, 0x10).unwrap();
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after[4096 + 0x10], 0xff);
        assert_eq!(after.iter().filter(|&&b| b == 0xff).count(), 1);
        assert!(
            corrupt_pack(&path, 3 * 4096)
                .unwrap_err()
                .contains("past the pack")
        );
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        assert!(
            corrupt_pack(&path, 0)
                .unwrap_err()
                .contains("no pack found")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
