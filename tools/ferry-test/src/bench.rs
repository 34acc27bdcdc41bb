//! `ferry-test bench` (docs/bench.md): packs `tests/partitions/bench.dts` (vbench, the
//! frontend, and vbe, the backend), boots it twice under `-icount shift=0,sleep=off`,
//! parses the `bench: <name> <ticks/op> ...` lines vbench prints, and prints a table
//! with each figure as a ratio to the null hypercall, the hypervisor's .text+.rodata
//! size, and whether the two runs gave the same numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::qemu::{self, Console};
use crate::scenario::{self, Scenario};
use crate::verdict;

/// The benchmark's system config, relative to the repository root.
pub const CONFIG: &str = "tests/partitions/bench.dts";
/// The QEMU arguments that make the counts deterministic.
pub const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=off"];
/// The figure every other one is divided by.
pub const FLOOR: &str = "null-hvc";
/// How many times the benchmark boots.
pub const RUNS: usize = 2;

/// What each figure measures, for the table (docs/bench.md says more).
fn describe(name: &str) -> &'static str {
    match name {
        "null-hvc" => "VERSION hypercall round trip",
        "ram-read" => "load from own RAM (no trap)",
        "posted-notify" => "QueueNotify store, posted",
        "forwarded-read" => "MagicValue read via the backend",
        "request-notify" => "rng request to FE handler entry",
        "notify-irq" => "BE NOTIFY_FRONTEND to FE handler entry",
        _ => "",
    }
}

/// The scenario `bench` boots (not in tests/scenarios.toml: `test` does not run it).
pub fn scenario() -> Scenario {
    let text = format!(
        r#"[[scenario]]
name = "bench"
description = "benchmarks: vbench (frontend) and vbe (backend) under -icount"
image = "qemu-virt"
config = "{CONFIG}"
machine = "virt,gic-version=3,virtualization=on"
cpu = "cortex-a53"
smp = 4
memory = "1G"
timeout_secs = 300
expect_exit = 0
expect_log = ["[fe] vbench: done"]
"#
    );
    scenario::parse(&text, "bench")
        .expect("the built-in bench scenario parses")
        .remove(0)
}

/// One figure: name, median ticks per operation (as printed), the rest of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub name: String,
    pub value: String,
    pub rest: String,
}

impl Figure {
    fn ticks(&self) -> Option<f64> {
        self.value.parse().ok()
    }
    fn field(&self, key: &str) -> Option<&str> {
        self.rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}

/// The `bench:` lines of a console log (partition prefix `[fe] ` or none), in order.
pub fn parse(log: &str) -> Vec<Figure> {
    log.lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            // `[fe] bench: ...` (Ferry's partition prefix) or a bare `bench: ...`.
            let l = match l.strip_prefix('[') {
                Some(r) => r.split_once("] ")?.1,
                None => l,
            };
            let mut words = l.strip_prefix("bench: ")?.splitn(3, ' ');
            let name = words.next()?.to_string();
            let value = words.next()?.to_string();
            let rest = words.next().unwrap_or("").to_string();
            (!name.is_empty() && !value.is_empty()).then_some(Figure { name, value, rest })
        })
        .collect()
}

/// Where two runs' figures differ, one line each; empty if they are identical.
pub fn differences(a: &[Figure], b: &[Figure]) -> Vec<String> {
    let mut out = Vec::new();
    for f in a {
        match b.iter().find(|g| g.name == f.name) {
            None => out.push(format!("{}: only in run 1", f.name)),
            Some(g) if g != f => out.push(format!(
                "{}: run 1 {} {}, run 2 {} {}",
                f.name, f.value, f.rest, g.value, g.rest
            )),
            Some(_) => {}
        }
    }
    for g in b.iter().filter(|g| !a.iter().any(|f| f.name == g.name)) {
        out.push(format!("{}: only in run 2", g.name));
    }
    out
}

/// The table: one row per figure (the counter frequency is a note below it).
pub fn table(figs: &[Figure]) -> Vec<String> {
    let floor = figs
        .iter()
        .find(|f| f.name == FLOOR)
        .and_then(Figure::ticks)
        .filter(|&t| t > 0.0);
    let mut out = vec![
        format!(
            "{:<16} {:>12} {:>12} {:>8} {:>6}  {}",
            "figure", "median ticks", "min ticks", "x null", "n", "what"
        ),
        "-".repeat(90),
    ];
    for f in figs.iter().filter(|f| f.name != "cntfrq") {
        let ratio = match (f.ticks(), floor) {
            (Some(t), Some(fl)) => format!("{:.3}", t / fl),
            _ => "-".into(),
        };
        out.push(format!(
            "{:<16} {:>12} {:>12} {:>8} {:>6}  {}",
            f.name,
            f.value,
            f.field("min").unwrap_or("-"),
            ratio,
            f.field("n")
                .map_or("-".to_string(), |n| match f.field("unit") {
                    Some(u) if u != "1" => format!("{n}x{u}"),
                    _ => n.to_string(),
                }),
            describe(&f.name)
        ));
    }
    if let Some(hz) = figs.iter().find(|f| f.name == "cntfrq") {
        out.push(format!(
            "counter: CNTVCT_EL0 at {} Hz (under -icount shift=0: 1 ns of virtual time per instruction)",
            hz.value
        ));
    }
    out
}

/// `.text` and `.rodata` sizes from `llvm-size -A` output.
pub fn text_rodata(size_output: &str) -> Option<(u64, u64)> {
    let get = |sec: &str| {
        size_output.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == sec).then(|| w.next()?.parse::<u64>().ok())?
        })
    };
    Some((get(".text")?, get(".rodata").unwrap_or(0)))
}

/// llvm-size from the toolchain's llvm-tools (as the Makefile finds llvm-objcopy).
fn llvm_size() -> Option<PathBuf> {
    let out = |args: &[&str]| {
        Command::new("rustc")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let sysroot = out(&["--print", "sysroot"])?;
    let host = out(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))?;
    let p = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/llvm-size");
    p.is_file().then_some(p)
}

fn size_line(root: &Path) -> String {
    let elf = root.join("build/qemu-virt/ferry.elf");
    let Some(tool) = llvm_size() else {
        return "hypervisor size: llvm-size not found (rustup component add llvm-tools)".into();
    };
    match Command::new(&tool).arg("-A").arg(&elf).output() {
        Ok(o) if o.status.success() => match text_rodata(&String::from_utf8_lossy(&o.stdout)) {
            Some((t, r)) => format!(
                "hypervisor build/qemu-virt/ferry.elf: .text {t} + .rodata {r} = {} bytes ({:.1} KiB)",
                t + r,
                (t + r) as f64 / 1024.0
            ),
            None => "hypervisor size: no .text in llvm-size output".into(),
        },
        _ => format!("hypervisor size: llvm-size -A {} failed", elf.display()),
    }
}

/// `ferry-test bench`.
pub fn run(root: &Path) -> Result<ExitCode> {
    let s = scenario();
    std::fs::create_dir_all(root.join(crate::LOG_DIR))?;
    let (hypervisor, _) = crate::inputs(root, &s).map_err(anyhow::Error::msg)?;
    let ferry_bin = crate::provide_ferry(root, std::slice::from_ref(&s))
        .unwrap_or_else(|| Err("no ferry CLI".into()))
        .map_err(anyhow::Error::msg)?;
    let tool_log = Path::new(crate::LOG_DIR).join("bench.ferry.log");
    let packed = match crate::prepare(
        root,
        &s,
        CONFIG,
        &hypervisor,
        &ferry_bin,
        &root.join(&tool_log),
    ) {
        Ok(p) => p,
        Err(f) => bail!(
            "{} (command: {}; log: {})",
            f.reasons.join("; "),
            f.command,
            tool_log.display()
        ),
    };
    let mut args = qemu::args(&s, &packed, None, Console::Captured);
    args.extend(ICOUNT.iter().map(|a| a.to_string()));
    let bin = qemu::binary();
    println!("bench: {}", qemu::shell_line(&bin, &args));
    let mut runs = Vec::new();
    for i in 1..=RUNS {
        let log = Path::new(crate::LOG_DIR).join(format!("bench-{i}.log"));
        let _ = std::fs::remove_file(root.join(&log));
        let outcome =
            crate::boot_captured(root, &bin, &args, &root.join(&log), s.timeout_secs, &[]);
        let text = std::fs::read(root.join(&log))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading {}", log.display()))
            .unwrap_or_default();
        let v = verdict::judge(s.expect_exit, &s.expected_log(), &text, &outcome);
        let figs = parse(&text);
        if !v.passed() || figs.is_empty() {
            println!(
                "bench: run {i} FAILED: {} (log: {})",
                v.reason_line(),
                log.display()
            );
            for l in crate::tail(&root.join(&log), crate::TAIL_LINES) {
                println!("  | {l}");
            }
            return Ok(ExitCode::FAILURE);
        }
        println!(
            "bench: run {i} ok ({} figures, log: {})",
            figs.len(),
            log.display()
        );
        runs.push(figs);
    }
    println!();
    for l in table(&runs[0]) {
        println!("{l}");
    }
    println!("{}", size_line(root));
    let diffs = differences(&runs[0], &runs[1]);
    if diffs.is_empty() {
        println!("bench: runs identical");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("bench: runs differ:");
        for d in &diffs {
            println!("  {d}");
        }
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "[be] vbe: first doorbell\r\n\
        [fe] bench: null-hvc 80.00 min=79.50 n=10 unit=100\n\
        [fe] bench: forwarded-read 412.00 min=411.00 n=100 unit=1\n\
        [fe] bench: cntfrq 62500000\n\
        [fe] vbench: done\n\
        [fe] vbench: virtio-rng at 0xa003e00\n";

    #[test]
    fn parses_bench_lines() {
        let f = parse(LOG);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].name, "null-hvc");
        assert_eq!(f[0].value, "80.00");
        assert_eq!(f[0].field("min"), Some("79.50"));
        assert_eq!(f[2].name, "cntfrq");
        assert_eq!(f[2].rest, "");
    }

    #[test]
    fn table_has_ratios_to_the_null_hvc() {
        let t = table(&parse(LOG));
        let row = t.iter().find(|l| l.starts_with("forwarded-read")).unwrap();
        assert!(row.contains(" 5.150 "), "{row}");
        assert!(row.contains(" 100 "), "{row}");
        let null = t.iter().find(|l| l.starts_with("null-hvc")).unwrap();
        assert!(
            null.contains(" 1.000 ") && null.contains("10x100"),
            "{null}"
        );
        assert!(t.last().unwrap().contains("62500000 Hz"));
    }

    #[test]
    fn differences_name_what_changed() {
        let a = parse(LOG);
        assert!(differences(&a, &a).is_empty());
        let mut b = a.clone();
        b[1].value = "413.00".into();
        b.pop();
        let d = differences(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("forwarded-read: run 1 412.00"));
        assert_eq!(d[1], "cntfrq: only in run 1");
    }

    #[test]
    fn reads_llvm_size() {
        let out = "ferry.elf  :\nsection   size   addr\n.text   123456   1073741824\n.rodata  7890  0\n.data 12 0\n";
        assert_eq!(text_rodata(out), Some((123456, 7890)));
        assert_eq!(text_rodata("nothing"), None);
    }

    #[test]
    fn bench_scenario_is_valid() {
        let s = scenario();
        assert_eq!(s.config.as_deref(), Some(CONFIG));
        s.validate().unwrap();
    }
}
