//! Building the QEMU command line for a scenario, and running QEMU under a hard deadline.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::scenario::Scenario;

/// The QEMU binary, unless the `QEMU` environment variable names another.
pub fn binary() -> String {
    std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-aarch64".to_string())
}

/// How Ferry's console is wired to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// `-serial stdio`: headless test run, output captured to a log.
    Captured,
    /// `-serial mon:stdio`: interactive run, Ctrl-A X quits.
    Interactive,
}

/// The arguments (without the binary) that boot `kernel` (and `dtb`) as `s` describes;
/// its `qemu_args` come last, with `{dir}` replaced by `work_dir` (absolute).
pub fn args(
    s: &Scenario,
    kernel: &Path,
    dtb: Option<&Path>,
    console: Console,
    work_dir: &Path,
) -> Vec<String> {
    let mut a: Vec<String> = vec!["-M".into(), s.machine.clone()];
    if let Some(cpu) = &s.cpu {
        a.extend(["-cpu".into(), cpu.clone()]);
    }
    if let Some(smp) = s.smp {
        a.extend(["-smp".into(), smp.to_string()]);
    }
    if let Some(mem) = &s.memory {
        a.extend(["-m".into(), mem.clone()]);
    }
    a.extend(["-kernel".into(), kernel.display().to_string()]);
    if let Some(dtb) = dtb {
        a.extend(["-dtb".into(), dtb.display().to_string()]);
    }
    if let Some(append) = &s.append {
        a.extend(["-append".into(), append.clone()]);
    }
    if let Some(icount) = &s.icount {
        a.extend(["-icount".into(), icount.clone()]);
    }
    for fixed in [
        "-semihosting",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ] {
        a.push(fixed.into());
    }
    for _ in 0..s.console_serial {
        a.extend(["-serial".into(), "null".into()]);
    }
    let console = match console {
        Console::Captured => "stdio",
        Console::Interactive => "mon:stdio",
    };
    a.extend(["-serial".into(), console.into()]);
    a.extend(s.expanded_qemu_args(work_dir));
    a
}

/// A command line as a person would paste it into a shell (for logs and messages).
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=,./:+@".contains(c))
            {
                w.to_string()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a bounded run of a child process ended.
#[derive(Debug)]
pub enum Ended {
    /// The process exited (or was killed by something else) before the deadline.
    Exited(ExitStatus),
    /// The deadline passed and the runner killed the process.
    TimedOut,
}

/// Waits for `child` until `timeout` has passed, then terminates it.
///
/// On timeout it sends SIGTERM first (so an interactive QEMU restores the terminal), then
/// SIGKILL if the process is still there after a short grace period.
pub fn wait_with_deadline(child: &mut Child, timeout: Duration) -> std::io::Result<Ended> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended::Exited(status));
        }
        if Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(50));
    }
    // The child is not reaped yet, so its pid cannot have been reused.
    let termed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if termed {
        let grace = Instant::now() + Duration::from_secs(3);
        while Instant::now() < grace {
            if child.try_wait()?.is_some() {
                return Ok(Ended::TimedOut);
            }
            sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    child.wait()?;
    Ok(Ended::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "[[scenario]]\nname = \"s\"\ndescription = \"d\"\nimage = \"qemu-virt\"\n\
             machine = \"virt,gic-version=3,virtualization=on\"\ntimeout_secs = 5\n\
             expect_exit = 0\n{extra}"
        );
        parse(&text, "t").unwrap().remove(0)
    }

    #[test]
    fn full_virt_command_line() {
        let s = scenario(
            "cpu = \"cortex-a53\"\nsmp = 4\nmemory = \"1G\"\nappend = \"ferry.selftest=panic\"\n",
        );
        let a = args(
            &s,
            Path::new("build/qemu-virt/ferry.img"),
            None,
            Console::Captured,
            Path::new("/w"),
        );
        assert_eq!(
            a.join(" "),
            "-M virt,gic-version=3,virtualization=on -cpu cortex-a53 -smp 4 -m 1G \
             -kernel build/qemu-virt/ferry.img -append ferry.selftest=panic \
             -semihosting -display none -monitor none -no-reboot -serial stdio"
        );
    }

    #[test]
    fn icount_follows_append() {
        let s = scenario("icount = \"shift=0,sleep=off\"\n");
        let a = args(&s, Path::new("k"), None, Console::Captured, Path::new("/w"));
        let i = a.iter().position(|x| x == "-icount").unwrap();
        assert_eq!(a[i + 1], "shift=0,sleep=off");
    }

    #[test]
    fn optional_parts_left_out() {
        let s = scenario("");
        let a = args(&s, Path::new("k"), None, Console::Captured, Path::new("/w"));
        for flag in ["-cpu", "-smp", "-m", "-dtb", "-append", "-icount"] {
            assert!(!a.iter().any(|x| x == flag), "{flag} in {a:?}");
        }
    }

    #[test]
    fn console_on_second_serial_with_dtb_interactive() {
        let s = scenario("console_serial = 1\ndtb = \"imx8mp-evk.dtb\"\n");
        let a = args(
            &s,
            Path::new("k.img"),
            Some(Path::new("build/guests/imx8mp-evk.dtb")),
            Console::Interactive,
            Path::new("/w"),
        );
        let tail: Vec<&str> = a.iter().rev().take(4).rev().map(String::as_str).collect();
        assert_eq!(tail, ["-serial", "null", "-serial", "mon:stdio"]);
        let i = a.iter().position(|x| x == "-dtb").unwrap();
        assert_eq!(a[i + 1], "build/guests/imx8mp-evk.dtb");
        assert_eq!(a.iter().filter(|x| *x == "-serial").count(), 2);
    }

    #[test]
    fn qemu_args_come_last_with_the_work_dir() {
        let s = scenario(
            "qemu_args = [\"-drive\", \"if=none,id=d0,format=raw,file={dir}/disk.img\", \
             \"-device\", \"virtio-blk-device,drive=d0\"]\n",
        );
        let a = args(
            &s,
            Path::new("k"),
            None,
            Console::Captured,
            Path::new("/repo/build/scenarios/s"),
        );
        let tail: Vec<&str> = a.iter().rev().take(6).rev().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "-serial",
                "stdio",
                "-drive",
                "if=none,id=d0,format=raw,file=/repo/build/scenarios/s/disk.img",
                "-device",
                "virtio-blk-device,drive=d0"
            ]
        );
    }

    #[test]
    fn shell_line_quotes_only_when_needed() {
        let a = vec!["-append".to_string(), "a b".to_string(), "x'y".to_string()];
        assert_eq!(shell_line("qemu", &a), r"qemu -append 'a b' 'x'\''y'");
    }

    #[test]
    fn deadline_kills_a_stuck_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let t = Instant::now();
        let ended = wait_with_deadline(&mut child, Duration::from_millis(200)).unwrap();
        assert!(matches!(ended, Ended::TimedOut));
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn deadline_reports_a_normal_exit() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        match wait_with_deadline(&mut child, Duration::from_secs(10)).unwrap() {
            Ended::Exited(s) => assert_eq!(s.code(), Some(3)),
            Ended::TimedOut => panic!("timed out"),
        }
    }
}
