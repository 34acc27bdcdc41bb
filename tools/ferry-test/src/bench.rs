//! `ferry-test bench` (docs/bench.md): packs `tests/partitions/bench.dts` (vbench, the
//! frontend, and vbe, the backend), the sharing-mode pair `bench-shared.dts` and
//! `bench-copy.dts` (the same rng and blk devices in shared and in copy mode) and the
//! disk benchmark ([`disk`]), boots each twice under `-icount shift=0,sleep=off`,
//! parses the `bench: <name> <value> ...` lines, and prints a table with each vbench
//! figure as a ratio to the null hypercall, a table of the sharing-mode figures with
//! the ratios copy/shared, the disk table, the hypervisor's .text+.rodata size, and
//! whether the two runs of each vbench config gave the same numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Result, bail};

use crate::qemu::{self, Console};
use crate::scenario::{self, Scenario};
use crate::{steps, verdict};

#[path = "bench_disk.rs"]
pub mod disk;

/// The benchmark's system config, relative to the repository root.
pub const CONFIG: &str = "tests/partitions/bench.dts";
/// The sharing modes compared, in table order, and the scenario names of their
/// configs (`tests/partitions/<name>.dts`; vbench's `sharing=` bootarg is the mode).
pub const MODES: [(&str, &str); 2] = [("shared", "bench-shared"), ("copy", "bench-copy")];
/// The figures each sharing-mode config gives, as `<row>(<mode>)`.
pub const SHARING_ROWS: [&str; 2] = ["rng-request", "blk-read-64k"];
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
        "rng-request" => "8-byte rng request to completion (WFI)",
        "blk-read-64k" => "128-sector blk read to completion (WFI)",
        _ => "",
    }
}

/// What a config `bench` boots runs: its machine and what its log must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// vbench and vbe (cortex-a53): their two runs must give the same figures.
    Vbench,
    /// Linux's disk benchmark ([`disk`]): its runs may differ.
    Disk,
}

/// One config `bench` boots: scenario name (the stem of its logs), config, kind, the
/// figures a run must give, more scenario fields in TOML (`fields`: tests/README.md;
/// `prepare` and `after` run around each run, `boots` must be 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    pub name: String,
    pub config: String,
    pub kind: Kind,
    pub required: Vec<String>,
    pub fields: String,
}

/// What `bench` boots: bench.dts, each sharing mode's config, the disk benchmark.
pub fn benches() -> Vec<Bench> {
    let vbench = |name: &str, config: String, required: Vec<String>| Bench {
        name: name.into(),
        config,
        kind: Kind::Vbench,
        required,
        fields: String::new(),
    };
    let mut v = vec![vbench("bench", CONFIG.into(), vec![FLOOR.into()])];
    v.extend(MODES.iter().map(|(mode, name)| {
        let required = SHARING_ROWS.iter().map(|r| tagged(r, mode)).collect();
        vbench(name, format!("tests/partitions/{name}.dts"), required)
    }));
    v.push(disk::bench());
    v
}

/// A sharing-mode figure's name as vbench prints it: `rng-request(copy)`.
pub fn tagged(row: &str, mode: &str) -> String {
    format!("{row}({mode})")
}

/// A figure's name as the table shows it (`rng-request (copy)`) and the figure it
/// describes (`rng-request`).
fn shown(name: &str) -> (String, &str) {
    match name.split_once('(') {
        Some((base, mode)) if mode.ends_with(')') => (format!("{base} ({mode}"), base),
        _ => (name.to_string(), name),
    }
}

/// The scenario that boots `b` (not in tests/scenarios.toml: `test` does not run it).
pub fn scenario(b: &Bench) -> Scenario {
    let (name, config) = (&b.name, &b.config);
    let header = match b.kind {
        Kind::Vbench => format!(
            r#"[[scenario]]
name = "{name}"
description = "benchmarks: vbench (frontend) and vbe (backend) under -icount"
image = "qemu-virt"
config = "{config}"
machine = "virt,gic-version=3,virtualization=on"
cpu = "cortex-a53"
smp = 4
memory = "1G"
timeout_secs = 300
expect_exit = 0
expect_log = ["[fe] vbench: done"]
"#
        ),
        Kind::Disk => disk::header(name, config),
    };
    scenario::parse(&format!("{header}{}", b.fields), "bench")
        .expect("the built-in bench scenarios parse")
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

/// The null hypercall's median, the unit of the `x null` column.
fn floor(figs: &[Figure]) -> Option<f64> {
    figs.iter()
        .find(|f| f.name == FLOOR)
        .and_then(Figure::ticks)
        .filter(|&t| t > 0.0)
}

/// Rows of `figs` (all but `cntfrq`) with a name column `width` wide: median, min,
/// median over `floor`, samples, what.
fn rows(figs: &[Figure], floor: Option<f64>, width: usize) -> Vec<String> {
    let mut out = vec![
        format!(
            "{:<width$} {:>12} {:>12} {:>8} {:>6}  {}",
            "figure", "median ticks", "min ticks", "x null", "n", "what"
        ),
        "-".repeat(74 + width),
    ];
    for f in figs.iter().filter(|f| f.name != "cntfrq") {
        let ratio = match (f.ticks(), floor) {
            (Some(t), Some(fl)) => format!("{:.3}", t / fl),
            _ => "-".into(),
        };
        let (name, base) = shown(&f.name);
        out.push(format!(
            "{:<width$} {:>12} {:>12} {:>8} {:>6}  {}",
            name,
            f.value,
            f.field("min").unwrap_or("-"),
            ratio,
            f.field("n")
                .map_or("-".to_string(), |n| match f.field("unit") {
                    Some(u) if u != "1" => format!("{n}x{u}"),
                    _ => n.to_string(),
                }),
            describe(base)
        ));
    }
    out
}

/// The table: one row per figure (the counter frequency is a note below it).
pub fn table(figs: &[Figure]) -> Vec<String> {
    let mut out = rows(figs, floor(figs), 16);
    if let Some(hz) = figs.iter().find(|f| f.name == "cntfrq") {
        out.push(format!(
            "counter: CNTVCT_EL0 at {} Hz (under -icount shift=0: 1 ns of virtual time per instruction)",
            hz.value
        ));
    }
    out
}

/// The sharing-mode table: for each of [`SHARING_ROWS`] its figure in each of
/// [`MODES`] (`by_mode`: each mode's figures, in [`MODES`] order; `x null` against
/// `main`'s null hypercall), then a line per row with the ratios copy/shared of the
/// medians and of the minimums and the medians' difference (in instructions with
/// `main`'s counter frequency).
pub fn sharing_table(main: &[Figure], by_mode: &[Vec<Figure>]) -> Vec<String> {
    let find = |m: usize, row: &str| {
        let name = tagged(row, MODES[m].0);
        by_mode.get(m)?.iter().find(|f| f.name == name).cloned()
    };
    let mut figs = Vec::new();
    for row in SHARING_ROWS {
        figs.extend((0..MODES.len()).filter_map(|m| find(m, row)));
    }
    let mut out = vec![format!(
        "sharing modes ({}): one request to completion, the frontend waiting in WFI",
        MODES
            .iter()
            .map(|(mode, name)| format!("{mode}: {name}.dts"))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    out.extend(rows(&figs, floor(main), 22));
    let (num, den) = (MODES[1].0, MODES[0].0);
    // Under -icount shift=0 one instruction is 1 ns: instructions per tick.
    let per_tick = main
        .iter()
        .find(|f| f.name == "cntfrq")
        .and_then(Figure::ticks)
        .filter(|&hz| hz > 0.0)
        .map(|hz| 1e9 / hz);
    for row in SHARING_ROWS {
        let pair = |field: &dyn Fn(&Figure) -> Option<f64>| {
            let (a, b) = (find(1, row)?, find(0, row)?);
            Some((field(&a)?, field(&b)?)).filter(|&(_, d)| d > 0.0)
        };
        let Some((c, s)) = pair(&Figure::ticks) else {
            out.push(format!("{num}/{den} {row} -"));
            continue;
        };
        let mut line = format!("{num}/{den} {row} x{:.3}", c / s);
        if let Some((cm, sm)) = pair(&|f: &Figure| f.field("min")?.parse().ok()) {
            line += &format!(" (min x{:.3})", cm / sm);
        }
        line += &format!(", {:+.2} ticks", c - s);
        if let Some(k) = per_tick {
            line += &format!(" = {:+.0} instructions", (c - s) * k);
        }
        out.push(line);
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

/// Run `i` of `b` (scenario `s`, QEMU's arguments `args`): `prepare`, the boot and
/// `after`; its figures (for a disk bench with the backend's reports), or why not.
fn one_run(
    root: &Path,
    b: &Bench,
    s: &Scenario,
    i: usize,
    args: &[String],
) -> Result<Vec<Figure>, String> {
    let log = root
        .join(crate::LOG_DIR)
        .join(format!("{}-{i}.log", b.name));
    let _ = std::fs::remove_file(&log);
    let work = steps::work_dir(root, s);
    // Every run starts from the same state: a fresh work directory, `prepare` again.
    if s.uses_work_dir() {
        steps::fresh_work_dir(root, s)?;
    }
    steps::run_commands(root, &work, "prepare", &s.prepare, &log).map_err(|f| f.reason)?;
    let expected = s.expected_log();
    let expect = crate::expectations(s, &expected);
    let boot = crate::boot_captured(root, &qemu::binary(), args, &log, s.timeout_secs, &[]);
    let v = verdict::judge_boots(&expect, std::slice::from_ref(&boot));
    if !v.passed() {
        return Err(v.reason_line());
    }
    let mut figs = parse(&boot.text);
    if b.kind == Kind::Disk {
        figs.extend(disk::reports(&boot.text));
    }
    let found = |r: &&String| figs.iter().any(|f| &f.name == *r);
    let missing: Vec<&str> = b
        .required
        .iter()
        .filter(|r| !found(r))
        .map(String::as_str)
        .collect();
    if figs.is_empty() || !missing.is_empty() {
        return Err(format!("no figure {}", missing.join(", ")));
    }
    steps::run_commands(root, &work, "after", &s.after, &log).map_err(|f| f.reason)?;
    Ok(figs)
}

/// Packs `b`'s config and boots it [`RUNS`] times: each run's figures, or `None`
/// when a run failed (reported).
fn boot_runs(root: &Path, b: &Bench, ferry_bin: &Path) -> Result<Option<Vec<Vec<Figure>>>> {
    let s = scenario(b);
    let (hypervisor, _) = crate::inputs(root, &s).map_err(anyhow::Error::msg)?;
    let tool_log = Path::new(crate::LOG_DIR).join(format!("{}.ferry.log", b.name));
    let ferry_log = root.join(&tool_log);
    let packed =
        crate::prepare(root, &s, &b.config, &hypervisor, ferry_bin, &ferry_log).or_else(|f| {
            let (why, cmd) = (f.reasons.join("; "), f.command);
            bail!("{why} (command: {cmd}; log: {})", tool_log.display())
        })?;
    if s.boots != 1 {
        bail!("bench {}: boots must be 1 (each run is one boot)", b.name);
    }
    let mut args = qemu::args(
        &s,
        &packed,
        None,
        Console::Captured,
        &steps::work_dir(root, &s),
    );
    args.extend(ICOUNT.iter().map(|a| a.to_string()));
    println!("bench: {}", qemu::shell_line(&qemu::binary(), &args));
    let mut runs = Vec::new();
    for i in 1..=RUNS {
        let log = Path::new(crate::LOG_DIR).join(format!("{}-{i}.log", b.name));
        match one_run(root, b, &s, i, &args) {
            Ok(figs) => {
                println!(
                    "bench: run {i} ok ({} figures, log: {})",
                    figs.len(),
                    log.display()
                );
                runs.push(figs);
            }
            Err(why) => {
                println!("bench: run {i} FAILED: {why} (log: {})", log.display());
                for l in crate::tail(&root.join(&log), crate::TAIL_LINES) {
                    println!("  | {l}");
                }
                return Ok(None);
            }
        }
        crate::flush();
    }
    Ok(Some(runs))
}

/// `ferry-test bench`.
pub fn run(root: &Path) -> Result<ExitCode> {
    let benches = benches();
    let scenarios: Vec<Scenario> = benches.iter().map(scenario).collect();
    std::fs::create_dir_all(root.join(crate::LOG_DIR))?;
    let ferry_bin = crate::provide_ferry(root, &scenarios)
        .unwrap_or_else(|| Err("no ferry CLI".into()))
        .map_err(anyhow::Error::msg)?;
    // Each config's runs, in `benches` order.
    let mut all = Vec::new();
    for b in &benches {
        match boot_runs(root, b, &ferry_bin)? {
            Some(runs) => all.push(runs),
            None => return Ok(ExitCode::FAILURE),
        }
    }
    let by_mode: Vec<Vec<Figure>> = all[1..=MODES.len()].iter().map(|r| r[0].clone()).collect();
    println!();
    table(&all[0][0]).iter().for_each(|l| println!("{l}"));
    println!();
    sharing_table(&all[0][0], &by_mode)
        .iter()
        .for_each(|l| println!("{l}"));
    let mut diffs = Vec::new();
    for (b, runs) in benches.iter().zip(&all) {
        if b.kind == Kind::Disk {
            // Its runs may differ (its table says how): only vbench's must repeat.
            println!();
            disk::table(runs).iter().for_each(|l| println!("{l}"));
            continue;
        }
        let d = differences(&runs[0], &runs[1]);
        diffs.extend(d.into_iter().map(|d| format!("{}: {d}", b.config)));
    }
    println!("\n{}", size_line(root));
    if diffs.is_empty() {
        println!("bench: runs identical (vbench configs)");
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
    fn bench_scenarios_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let b = benches();
        assert_eq!(b.len(), 1 + MODES.len() + 1);
        assert_eq!(b[0].config, CONFIG);
        for b in &b {
            let s = scenario(b);
            assert_eq!(s.name, b.name);
            assert_eq!(s.config.as_deref(), Some(b.config.as_str()));
            assert!(root.join(&b.config).is_file(), "no {}", b.config);
            s.validate().unwrap();
        }
        assert_eq!(b[2].required, ["rng-request(copy)", "blk-read-64k(copy)"]);
    }

    /// The sharing-mode configs differ in the devices' sharing only, and each gives
    /// vbench its mode.
    #[test]
    fn sharing_configs_differ_in_sharing_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let body = |mode: &str, name: &str| {
            let text =
                std::fs::read_to_string(root.join(format!("tests/partitions/{name}.dts"))).unwrap();
            assert!(
                text.contains(&format!("sharing={mode} ")),
                "{name}: no sharing={mode}"
            );
            // Past the header comment; the model line names the mode; vbench's
            // `sharing=` is the mode.
            text[text.find("/dts-v1/").unwrap()..]
                .replace(&format!("sharing={mode} "), "sharing=MODE ")
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    !(l.starts_with("model")
                        || l.starts_with("sharing =")
                        || l.starts_with("shared-memory")
                        || l.starts_with("bounce"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (shared, copy) = (MODES[0], MODES[1]);
        assert_eq!(body(shared.0, shared.1), body(copy.0, copy.1));
    }

    const SHARED: &str = "[fe] bench: rng-request(shared) 1000.00 min=990.00 n=100 unit=1\n\
        [fe] bench: blk-read-64k(shared) 4000.00 min=3900.00 n=100 unit=1\n";
    const COPY: &str = "[fe] bench: rng-request(copy) 1500.00 min=1485.00 n=100 unit=1\n\
        [fe] bench: blk-read-64k(copy) 10000.00 min=9750.00 n=100 unit=1\n";

    #[test]
    fn sharing_table_has_rows_and_ratios() {
        let t = sharing_table(&parse(LOG), &[parse(SHARED), parse(COPY)]);
        let row = |p: &str| t.iter().find(|l| l.starts_with(p)).unwrap();
        let r = row("rng-request (shared) ");
        assert!(r.contains(" 1000.00 ") && r.contains(" 12.500 "), "{r}");
        assert!(r.ends_with("8-byte rng request to completion (WFI)"), "{r}");
        assert!(row("blk-read-64k (copy) ").contains(" 10000.00 "));
        let names: Vec<&str> = t[3..7].iter().map(|l| &l[..22]).collect();
        assert_eq!(
            names,
            [
                "rng-request (shared)  ",
                "rng-request (copy)    ",
                "blk-read-64k (shared) ",
                "blk-read-64k (copy)   "
            ]
        );
        assert_eq!(
            row("copy/shared rng-request"),
            "copy/shared rng-request x1.500 (min x1.500), +500.00 ticks = +8000 instructions"
        );
        assert_eq!(
            row("copy/shared blk-read-64k"),
            "copy/shared blk-read-64k x2.500 (min x2.500), +6000.00 ticks = +96000 instructions"
        );
        // A mode without figures: no row, no ratio.
        let t = sharing_table(&parse(LOG), &[parse(SHARED)]);
        assert!(!t.iter().any(|l| l.contains("(copy)")));
        assert!(t.contains(&"copy/shared rng-request -".to_string()));
    }
}
