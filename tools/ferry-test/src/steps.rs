//! A scenario's host steps (tests/README.md): its work directory
//! `build/scenarios/<name>/`, made fresh for each run, and its `prepare` commands
//! (before the first boot) and `after` commands (after the last), each run as
//! `sh -c COMMAND` from the repository root with `$DIR` the work directory and its
//! output in the scenario's log.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ferry;
use crate::scenario::Scenario;
use crate::verdict;

/// How long one `prepare`/`after` command may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Directories of administration tools (`mkfs.ext4`, `fsck.ext4`) that a non-root
/// user's `PATH` on Debian lacks; the commands get them at the end of theirs.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// A host step that failed: why, and its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub reason: String,
    pub command: String,
}

/// `path` (a `PATH` value) with each of [`SBIN`] it lacks appended.
pub fn path_with_sbin(path: &str) -> String {
    let mut out: Vec<&str> = path.split(':').filter(|p| !p.is_empty()).collect();
    for d in SBIN {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out.join(":")
}

/// The scenario's work directory as an absolute path (`{dir}`, `$DIR`).
pub fn work_dir(root: &Path, s: &Scenario) -> PathBuf {
    let dir = root.join(s.work_dir());
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Removes what an earlier run left in the scenario's work directory and makes it
/// anew; returns it (absolute).
pub fn fresh_work_dir(root: &Path, s: &Scenario) -> Result<PathBuf, String> {
    let dir = work_dir(root, s);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Appends `== ferry-test: <text> ==` to `log` (the header of a step in the log of a
/// scenario with several).
pub fn header(log: &Path, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "== ferry-test: {text} ==");
    }
}

/// Runs each of `cmds` (`what`: "prepare" or "after") in order with `sh -c` in `root`,
/// `DIR=dir`, output appended to `log` (after a header naming the step); stops at the
/// first that does not exit 0.
pub fn run_commands(
    root: &Path,
    dir: &Path,
    what: &str,
    cmds: &[String],
    log: &Path,
) -> Result<(), StepFailure> {
    if cmds.is_empty() {
        return Ok(());
    }
    header(log, &format!("{what} (DIR={})", dir.display()));
    let env = vec![
        ("DIR".to_string(), dir.display().to_string()),
        (
            "PATH".to_string(),
            path_with_sbin(&std::env::var("PATH").unwrap_or_default()),
        ),
    ];
    for cmd in cmds {
        let args = vec!["-c".to_string(), cmd.clone()];
        let run = ferry::run_logged_env(root, "sh", &args, &env, log, STEP_TIMEOUT);
        if let Some(reason) = verdict::judge_step(what, cmd, &run.end, &run.output) {
            return Err(StepFailure {
                reason,
                command: run.command,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    fn scenario(name: &str, extra: &str) -> Scenario {
        let text = format!(
            "[[scenario]]\nname = \"{name}\"\ndescription = \"d\"\nimage = \"qemu-virt\"\n\
             machine = \"virt\"\ntimeout_secs = 5\nexpect_exit = 0\n{extra}"
        );
        parse(&text, "t").unwrap().remove(0)
    }

    #[test]
    fn sbin_is_appended_once() {
        assert_eq!(
            path_with_sbin("/usr/bin:/bin"),
            "/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        );
        assert_eq!(
            path_with_sbin("/usr/sbin:/usr/bin:/sbin:/usr/local/sbin"),
            "/usr/sbin:/usr/bin:/sbin:/usr/local/sbin"
        );
        assert_eq!(path_with_sbin(""), "/usr/local/sbin:/usr/sbin:/sbin");
    }

    #[test]
    fn commands_run_in_a_fresh_work_dir() {
        let root = std::env::temp_dir().join(format!("ferry-test-steps-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let s = scenario(
            "disk",
            "prepare = [\"echo made >$DIR/a\", \"pwd >$DIR/cwd\"]\nafter = [\"cat $DIR/a\"]\n",
        );
        let log = root.join("disk.log");
        let dir = fresh_work_dir(&root, &s).unwrap();
        assert_eq!(dir, root.join("build/scenarios/disk"));
        std::fs::write(dir.join("stale"), "x").unwrap();
        let dir = fresh_work_dir(&root, &s).unwrap();
        assert!(!dir.join("stale").exists(), "made fresh");
        run_commands(&root, &dir, "prepare", &s.prepare, &log).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "made\n");
        let cwd = std::fs::read_to_string(dir.join("cwd")).unwrap();
        assert_eq!(Path::new(cwd.trim()), root.canonicalize().unwrap());
        run_commands(&root, &dir, "after", &s.after, &log).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("== ferry-test: prepare (DIR="), "{text}");
        assert!(text.contains("== ferry-test: after (DIR="), "{text}");
        assert!(
            text.contains("$ sh -c 'cat $DIR/a'\nmade\n(exit 0)"),
            "{text}"
        );

        // The first failing command stops the step, quoting its output.
        let cmds = vec![
            "echo one; echo broken >&2; exit 3".to_string(),
            "touch $DIR/never".to_string(),
        ];
        let f = run_commands(&root, &dir, "prepare", &cmds, &log).unwrap_err();
        assert_eq!(
            f.reason,
            "prepare command `echo one; echo broken >&2; exit 3` failed (exit 3): one | broken"
        );
        assert!(f.command.starts_with("sh -c "), "{f:?}");
        assert!(!dir.join("never").exists());
        // No commands: no header.
        let before = std::fs::read_to_string(&log).unwrap();
        run_commands(&root, &dir, "after", &[], &log).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
        let _ = std::fs::remove_dir_all(&root);
    }
}
