//! The disk benchmark of `ferry-test bench` (docs/bench.md "Disks"): Linux
//! (`tests/linux/linux-disk-bench.dts`, /init's `ferry.diskbench=1`) times a 64 MiB
//! sequential O_DIRECT write and read of `/dev/vda`, which the backend serves from
//! QEMU's own virtio-blk device, and of `/dev/ram0` (brd, a RAM disk in Linux itself),
//! in virtual time under `-icount shift=0,sleep=off`; the backend reports after every
//! 64 MiB how long the physical disk had a request outstanding ("busy"). This module
//! builds that bench, reads the backend's reports and prints the table.

use super::{Bench, Figure, Kind};

/// The bench's scenario name (the stem of its logs and its work directory).
pub const NAME: &str = "bench-disk";
/// Its system config, relative to the repository root.
pub const CONFIG: &str = "tests/linux/linux-disk-bench.dts";
/// The devices, in table order: the backend's physical disk, Linux's RAM disk.
pub const DEVICES: [&str; 2] = ["vda", "ram0"];
/// The timed passes, in table order, each with the backend report that covers it on
/// vda: /init first writes 64 MiB of zeros (report 1, with the kernel's partition
/// scan), then the timed write (2) and read (3), then reads it all again to check it (4).
pub const PASSES: [(&str, usize); 2] = [("write", 2), ("read", 3)];
/// The figure of a `dd` that moves nothing, timed the same way: the overhead (fork,
/// exec, reading the clock) in every other figure.
pub const EMPTY: &str = "disk-empty";
/// The bytes each pass moves.
const BYTES: f64 = (64u64 << 20) as f64;

/// The figure /init prints for `pass` on `dev`: `disk-write-64m(vda)`.
pub fn figure(pass: &str, dev: &str) -> String {
    format!("disk-{pass}-64m({dev})")
}

/// The backend's `k`th physical-disk report (from 1) as a figure name.
pub fn report(k: usize) -> String {
    format!("physical-disk-{k}")
}

/// The disk bench: a fresh 128 MiB image of zeros (a hole) each run.
pub fn bench() -> Bench {
    let mut required: Vec<String> = PASSES
        .iter()
        .flat_map(|(p, _)| DEVICES.iter().map(move |d| figure(p, d)))
        .collect();
    required.extend(PASSES.iter().map(|&(_, k)| report(k)));
    required.push(EMPTY.into());
    Bench {
        name: NAME.into(),
        config: CONFIG.into(),
        kind: Kind::Disk,
        required,
        fields: "include = [\"build/guests\"]\n\
                 prepare = [\"truncate -s 128M $DIR/disk.img\"]\n\
                 qemu_args = [\"-drive\", \"if=none,id=d0,format=raw,file={dir}/disk.img\", \
                 \"-device\", \"virtio-blk-device,drive=d0\"]\n\
                 forbid_log = [\"storage error\", \"I/O error\"]\n"
            .into(),
    }
}

/// The scenario fields of a disk bench `name` booting `config`: the Linux machine of the
/// linux-disk scenarios (Linux's kernel wants `-cpu max`).
pub fn header(name: &str, config: &str) -> String {
    format!(
        r#"[[scenario]]
name = "{name}"
description = "disk benchmark: Linux on the backend's physical disk and on its own RAM disk, under -icount"
image = "qemu-virt"
config = "{config}"
machine = "virt,gic-version=3,virtualization=on"
cpu = "max,sme=off,pauth-impdef=on"
smp = 4
memory = "2G"
timeout_secs = 900
expect_exit = 0
expect_log = ["ferry-linux-diskbench: PASS", "ferry-linux: PASS"]
"#
    )
}

/// `(device, KiB, requests, busy us)` of a backend line `... ferry-backend: device 0:
/// physical disk: 65536 KiB in 1024 requests, busy (a request outstanding) 5678 us of
/// virtual time`.
fn report_line(line: &str) -> Option<(u64, u64, u64, u64)> {
    let rest = line.split_once("ferry-backend: device ")?.1;
    let (dev, rest) = rest.split_once(": physical disk: ")?;
    let w: Vec<&str> = rest.split_whitespace().collect();
    let before = |word: &str| -> Option<u64> {
        let i = w.iter().position(|x| *x == word)?;
        w.get(i.checked_sub(1)?)?.parse().ok()
    };
    Some((
        dev.trim().parse().ok()?,
        before("KiB")?,
        before("requests,")?,
        before("us")?,
    ))
}

/// The backend's physical-disk reports in a log, in order, as figures
/// `physical-disk-<k>` (see [`report`]): the busy time in microseconds, and `kib=`,
/// `requests=`, `device=`.
pub fn reports(log: &str) -> Vec<Figure> {
    log.lines()
        .filter_map(report_line)
        .enumerate()
        .map(|(i, (dev, kib, n, us))| Figure {
            name: report(i + 1),
            value: us.to_string(),
            rest: format!("kib={kib} requests={n} device={dev} unit=us"),
        })
        .collect()
}

/// A figure's value (microseconds) by name.
fn us(figs: &[Figure], name: &str) -> Option<f64> {
    figs.iter().find(|f| f.name == name)?.ticks()
}

/// Microseconds in milliseconds (3 decimals), or `-`.
fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |us| format!("{:.3}", us / 1000.0))
}

/// `a / b` (2 decimals), or `-`.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The table's columns (a row's format: [`row`]).
const COLUMNS: [&str; 10] = [
    "run", "pass", "vda ms", "MB/s", "ram0 ms", "MB/s", "vda/ram0", "busy ms", "vda-busy",
    "requests",
];

/// A row of the table from its columns ([`COLUMNS`]).
fn line(c: &[String]) -> String {
    format!(
        "{:>3} {:<5} {:>10} {:>7} {:>9} {:>7} {:>8} {:>10} {:>10} {:>8}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
    )
}

/// One row: `pass` of run `run` (its backend report `k`).
fn row(run: usize, pass: &str, k: usize, figs: &[Figure]) -> String {
    let vda = us(figs, &figure(pass, DEVICES[0]));
    let ram = us(figs, &figure(pass, DEVICES[1]));
    let rep = figs.iter().find(|f| f.name == report(k));
    let busy = rep.and_then(Figure::ticks);
    let mbps = |t: Option<f64>| {
        t.filter(|&t| t > 0.0)
            .map_or("-".into(), |t| format!("{:.1}", BYTES / t))
    };
    line(&[
        run.to_string(),
        pass.into(),
        ms(vda),
        mbps(vda),
        ms(ram),
        mbps(ram),
        ratio(vda, ram),
        ms(busy),
        ms(vda.zip(busy).map(|(v, b)| v - b)),
        rep.and_then(|f| f.field("requests")).unwrap_or("-").into(),
    ])
}

/// The table of the disk bench's runs (each run's figures, in order): per run and
/// pass, vda's and ram0's elapsed virtual time and MB/s (10^6 bytes a second), the
/// ratio of the times, the backend's busy time for the same 64 MiB and vda's time
/// outside it, the backend's physical requests; then the overhead in every figure and
/// whether the runs agree.
pub fn table(runs: &[Vec<Figure>]) -> Vec<String> {
    let mut out = vec![
        format!("{NAME} ({CONFIG}): 64 MiB sequential, O_DIRECT, dd bs=1M, virtual time"),
        line(&COLUMNS.map(String::from)),
        "-".repeat(87),
    ];
    for (i, figs) in runs.iter().enumerate() {
        out.extend(PASSES.iter().map(|&(pass, k)| row(i + 1, pass, k, figs)));
    }
    // A report covering more or less than its pass: they do not line up (other I/O).
    for (i, figs) in runs.iter().enumerate() {
        for &(pass, k) in &PASSES {
            let kib = figs
                .iter()
                .find(|f| f.name == report(k))
                .and_then(|f| f.field("kib"));
            if let Some(kib) = kib.filter(|&kib| kib != "65536") {
                out.push(format!(
                    "run {}: the backend's report {k} covers {kib} KiB, not the {pass}'s 65536",
                    i + 1
                ));
            }
        }
    }
    let empty: Vec<String> = runs.iter().map(|f| ms(us(f, EMPTY))).collect();
    out.push(format!(
        "busy: a request outstanding at QEMU's disk (the backend's report); vda-busy: the rest; \
         in every figure: {} ms of timing overhead",
        empty.join(" / ")
    ));
    out.extend(agreement(runs));
    out
}

/// Whether the runs gave the same figures (those of the table); where not, by how
/// much (not a failure: the virtual time spent waiting for QEMU's disk follows host
/// I/O timing).
pub fn agreement(runs: &[Vec<Figure>]) -> Vec<String> {
    let Some((first, rest)) = runs.split_first() else {
        return vec!["disk: no runs".into()];
    };
    let shown = bench().required;
    let mut diffs = Vec::new();
    for (i, other) in rest.iter().enumerate() {
        for f in first.iter().filter(|f| shown.contains(&f.name)) {
            let g = other.iter().find(|g| g.name == f.name);
            match (f.ticks(), g.and_then(Figure::ticks)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => diffs.push(format!(
                    "  {}: run 1 {a}, run {} {b} ({:+.1} %)",
                    f.name,
                    i + 2,
                    if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 }
                )),
                _ => diffs.push(format!("  {}: not in run {}", f.name, i + 2)),
            }
        }
    }
    if diffs.is_empty() {
        vec!["disk: runs identical".into()]
    } else {
        let mut out = vec![
            "disk: runs differ (waits for QEMU's disk follow host I/O timing; not a failure):"
                .into(),
        ];
        out.extend(diffs);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bench::{parse, scenario};
    use crate::qemu::{self, Console};

    const LOG: &str = "[linux] bench: disk-empty 2600 unit=us\r\n\
        [be] ferry-backend: device 0: physical disk: 65540 KiB in 1030 requests, busy (a request outstanding) 9000 us of virtual time\n\
        [linux] bench: disk-write-64m(vda) 50000 unit=us\n\
        [be] ferry-backend: device 0: physical disk: 65536 KiB in 1024 requests, busy (a request outstanding) 20000 us of virtual time\n\
        [linux] bench: disk-read-64m(vda) 40000 unit=us\n\
        [be] ferry-backend: device 0: physical disk: 65536 KiB in 512 requests, busy (a request outstanding) 10000 us of virtual time\n\
        [linux] bench: disk-write-64m(ram0) 25000 unit=us\n\
        [linux] bench: disk-read-64m(ram0) 20000 unit=us\n";

    fn figs(log: &str) -> Vec<Figure> {
        let mut f = parse(log);
        f.extend(reports(log));
        f
    }

    #[test]
    fn reads_the_backend_reports() {
        let r = reports(LOG);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].name, "physical-disk-2");
        assert_eq!(r[1].value, "20000");
        assert_eq!(r[1].field("kib"), Some("65536"));
        assert_eq!(r[2].field("requests"), Some("512"));
        assert_eq!(r[0].field("device"), Some("0"));
        assert!(report_line("[be] ferry-backend: device 0: physical disk: x KiB").is_none());
        assert!(report_line("[linux] bench: disk-empty 1 unit=us").is_none());
    }

    #[test]
    fn every_required_figure_is_in_the_log() {
        let f = figs(LOG);
        for r in &bench().required {
            assert!(f.iter().any(|g| &g.name == r), "no {r}");
        }
    }

    #[test]
    fn table_has_rates_ratios_and_busy_time() {
        let f = figs(LOG);
        let t = table(&[f.clone(), f.clone()]);
        let w = t.iter().find(|l| l.starts_with("  1 write")).unwrap();
        // 64 MiB in 50 ms = 1342.2 MB/s; vda/ram0 = 2; busy 20 ms, 30 ms not busy.
        for part in [
            " 50.000 ", " 1342.2 ", " 25.000 ", " 2.00 ", " 20.000 ", " 30.000 ", " 1024",
        ] {
            assert!(w.contains(part), "{part:?} not in {w:?}");
        }
        let r = t.iter().find(|l| l.starts_with("  2 read")).unwrap();
        assert!(r.contains(" 10.000 ") && r.ends_with(" 512"), "{r}");
        assert!(
            t.iter()
                .any(|l| l.contains("in every figure: 2.600 / 2.600 ms of timing"))
        );
        assert_eq!(t[1].split_whitespace().count(), 13, "{}", t[1]);
        assert_eq!(t.last().unwrap(), "disk: runs identical");
        assert!(!t.iter().any(|l| l.contains("not the")));
        let off = LOG.replacen("65536 KiB in 512", "65600 KiB in 512", 1);
        let t = table(&[figs(&off)]);
        let line = "run 1: the backend's report 3 covers 65600 KiB, not the read's 65536";
        assert!(t.contains(&line.to_string()), "{t:?}");
    }

    #[test]
    fn differing_runs_are_named_not_fatal() {
        let a = figs(LOG);
        let mut b = a.clone();
        b.iter_mut()
            .find(|f| f.name == "disk-read-64m(vda)")
            .unwrap()
            .value = "44000".into();
        b.retain(|f| f.name != "physical-disk-3");
        let d = agreement(&[a, b]);
        assert!(d[0].starts_with("disk: runs differ"), "{d:?}");
        assert!(
            d.contains(&"  disk-read-64m(vda): run 1 40000, run 2 44000 (+10.0 %)".to_string()),
            "{d:?}"
        );
        assert!(
            d.contains(&"  physical-disk-3: not in run 2".to_string()),
            "{d:?}"
        );
        // Only the table's figures: report 1 (the zeros) is not compared.
        let mut c = figs(LOG);
        c.iter_mut()
            .find(|f| f.name == "physical-disk-1")
            .unwrap()
            .value = "1".into();
        assert_eq!(agreement(&[figs(LOG), c]), ["disk: runs identical"]);
        // A missing figure shows as `-`.
        let t = table(&[parse("[linux] bench: disk-write-64m(vda) 1000 unit=us\n")]);
        assert!(
            t.iter()
                .any(|l| l.starts_with("  1 read") && l.contains(" - "))
        );
    }

    #[test]
    fn disk_bench_scenario_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let b = bench();
        assert!(root.join(&b.config).is_file(), "no {}", b.config);
        let s = scenario(&b);
        s.validate().unwrap();
        assert_eq!(s.name, NAME);
        assert_eq!(s.cpu.as_deref(), Some("max,sme=off,pauth-impdef=on"));
        assert_eq!(s.include, ["build/guests"]);
        assert_eq!(s.boots, 1);
        assert_eq!(s.prepare, ["truncate -s 128M $DIR/disk.img"]);
        assert!(s.uses_work_dir());
        let a = qemu::args(
            &s,
            Path::new("p.img"),
            None,
            Console::Captured,
            Path::new("/r/w"),
        );
        assert!(
            a.contains(&"if=none,id=d0,format=raw,file=/r/w/disk.img".into()),
            "{a:?}"
        );
        assert!(a.contains(&"virtio-blk-device,drive=d0".into()), "{a:?}");
        // The config's /init mode is the one that prints these figures.
        let dts = std::fs::read_to_string(root.join(CONFIG)).unwrap();
        assert!(dts.contains("ferry.diskbench=1"));
        let init = std::fs::read_to_string(root.join("tests/linux/init")).unwrap();
        assert!(init.contains("ferry.diskbench=1) DISKBENCH=1"));
        assert!(init.contains("echo \"bench: $name $(((t1 - t0) / 1000)) unit=us\""));
    }

    /// `after` and `{dir}` in `qemu_args` as in `test` (any bench may have them).
    #[test]
    fn bench_takes_the_disk_fields() {
        let b = Bench {
            name: "bench-x".into(),
            config: super::super::CONFIG.into(),
            kind: Kind::Vbench,
            required: vec![],
            fields: "qemu_args = [\"-drive\", \"if=none,id=d0,format=raw,file={dir}/d.img\"]\n\
                     prepare = [\"truncate -s 1M $DIR/d.img\"]\n\
                     after = [\"test -f $DIR/d.img\"]\n"
                .into(),
        };
        let s = scenario(&b);
        assert_eq!(s.prepare, ["truncate -s 1M $DIR/d.img"]);
        assert_eq!(s.after, ["test -f $DIR/d.img"]);
        let a = qemu::args(
            &s,
            Path::new("p.img"),
            None,
            Console::Captured,
            Path::new("/r/x"),
        );
        assert!(
            a.contains(&"if=none,id=d0,format=raw,file=/r/x/d.img".into()),
            "{a:?}"
        );
    }
}
