//! `tests/scenarios.toml`: parsing and validation of the QEMU scenarios.

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// QEMU has at most this many `-serial` ports, so the console is one of `0..MAX_SERIALS`.
pub const MAX_SERIALS: u32 = 4;

/// The longest hard timeout a scenario may ask for, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 1800;

/// Ferry's exit code for a refused boot (a bad config among the reasons).
pub const BOOT_REFUSED: i32 = 3;

/// The most boots one scenario may ask for.
pub const MAX_BOOTS: u32 = 8;

/// What `{dir}` in `qemu_args` becomes: the scenario's work directory (absolute).
pub const DIR_PLACEHOLDER: &str = "{dir}";

/// Where scenarios' work directories are, relative to the repository root:
/// `build/scenarios/<name>/`.
pub const WORK_ROOT: &str = "build/scenarios";

/// QEMU options the runner sets itself (or that would take its console or monitor
/// away); `qemu_args` may not give them.
pub const RESERVED_QEMU_OPTIONS: &[&str] = &[
    "-M",
    "-machine",
    "-cpu",
    "-smp",
    "-m",
    "-kernel",
    "-dtb",
    "-append",
    "-icount",
    "-semihosting",
    "-semihosting-config",
    "-display",
    "-monitor",
    "-no-reboot",
    "-serial",
    "-nographic",
    "-daemonize",
];

/// Whether `p` is unusable as a relative path below some directory.
fn bad_path(p: &str) -> bool {
    p.trim().is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..")
}

/// The whole file: a list of `[[scenario]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    scenario: Vec<Scenario>,
}

/// One QEMU boot of a Ferry image, with the verdict it must produce.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; also names the log file `build/test-logs/<name>.log`.
    pub name: String,
    /// One line saying what the scenario checks.
    pub description: String,
    /// Which hypervisor image boots: `build/<image>/ferry.img` (a `PLATFORM`).
    pub image: String,
    /// QEMU `-M` argument.
    pub machine: String,
    /// QEMU `-cpu` argument, if any.
    #[serde(default)]
    pub cpu: Option<String>,
    /// QEMU `-smp` argument, if any.
    #[serde(default)]
    pub smp: Option<u32>,
    /// QEMU `-m` argument, if any.
    #[serde(default)]
    pub memory: Option<String>,
    /// Host DTB passed with `-dtb`, relative to `build/guests/`.
    #[serde(default)]
    pub dtb: Option<String>,
    /// Command line passed with `-append`.
    #[serde(default)]
    pub append: Option<String>,
    /// QEMU `-icount` argument (e.g. `shift=0,sleep=off`): virtual time follows the
    /// instructions executed, one vCPU at a time, so time measured inside the guests
    /// does not depend on how busy the host is (the hostile suite's notify storms).
    #[serde(default)]
    pub icount: Option<String>,
    /// Index of the `-serial` that is Ferry's console (the ones before it are `null`).
    #[serde(default)]
    pub console_serial: u32,
    /// Hard timeout enforced by the runner, in seconds.
    pub timeout_secs: u64,
    /// The semihosting exit code QEMU must end with.
    pub expect_exit: i32,
    /// Substrings that must all appear in the console log.
    #[serde(default)]
    pub expect_log: Vec<String>,
    /// Substrings that must not appear in the console log.
    #[serde(default)]
    pub forbid_log: Vec<String>,
    /// At most this many lines of Ferry's own log (timestamped lines; partitions'
    /// `[label]` lines do not count): a hostile guest must not flood it.
    #[serde(default)]
    pub max_ferry_lines: Option<usize>,
    /// A system config (`.dts`, relative to the repository root) to pack with
    /// `ferry pack` behind `build/<image>/ferry.img`; the packed image boots instead.
    #[serde(default)]
    pub config: Option<String>,
    /// The config is bad: `ferry check` must refuse it printing this fragment, and
    /// Ferry, booted with it packed anyway (`--no-check`), must refuse it too with the
    /// same fragment in its log and exit 3. Needs `config`.
    #[serde(default)]
    pub expect_check: Option<String>,
    /// After packing, flip every bit of the byte at this offset from the start of
    /// the pack (found by its magic), to check that Ferry refuses a corrupt pack.
    /// Needs `config`.
    #[serde(default)]
    pub corrupt_pack: Option<u64>,
    /// More directories (relative to the repository root) the `ferry` CLI looks up the
    /// config's images in, after `build/guests-bin` (e.g. `build/guests` for the Linux
    /// kernel and initramfs of `make guests`). Needs `config`.
    #[serde(default)]
    pub include: Vec<String>,
    /// Not run by `test`, which prints `SKIP name: <this reason>` and counts it as
    /// skipped (neither passed nor failed); `run` still boots it.
    #[serde(default)]
    pub pending: Option<String>,
    /// Typed input: each step waits until the console log contains `after` (beyond
    /// the previous step's match), then writes `send` to QEMU's standard input.
    #[serde(default)]
    pub input: Vec<InputStep>,
    /// More QEMU arguments, appended after the runner's own (e.g. a `-drive` and a
    /// `-device virtio-blk-device`); `{dir}` in them becomes the scenario's work
    /// directory, `build/scenarios/<name>/` as an absolute path.
    #[serde(default)]
    pub qemu_args: Vec<String>,
    /// Shell commands run with `sh -c` from the repository root before the first
    /// boot, `$DIR` being the work directory (made fresh for each run); each must
    /// exit 0 (e.g. `mkfs.ext4 -q -F -d tests/linux/disk-root $DIR/disk.img 64M`).
    #[serde(default)]
    pub prepare: Vec<String>,
    /// How many times the same image boots in a row (same work directory, so a disk
    /// image there keeps what the earlier boots wrote); each boot must end with
    /// `expect_exit` and Ferry's final line.
    #[serde(default = "one_boot")]
    pub boots: u32,
    /// Per boot, substrings that boot's own log must contain: one list per boot.
    #[serde(default)]
    pub expect_log_boot: Vec<Vec<String>>,
    /// Shell commands run like `prepare` after the last boot (e.g. `fsck.ext4 -n -f
    /// $DIR/disk.img`); each must exit 0; their output goes into the log.
    #[serde(default)]
    pub after: Vec<String>,
}

fn one_boot() -> u32 {
    1
}

/// One step of scripted console input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputStep {
    /// Text the console log must show first.
    pub after: String,
    /// What to type (escapes such as `\n` as in TOML strings).
    pub send: String,
}

impl Scenario {
    /// The packed image a `config` scenario boots: `build/scenarios/<name>.img`.
    pub fn packed_image(&self) -> Option<std::path::PathBuf> {
        self.config
            .as_ref()
            .map(|_| std::path::PathBuf::from(format!("build/scenarios/{}.img", self.name)))
    }

    /// The work directory, relative to the repository root: `build/scenarios/<name>`.
    pub fn work_dir(&self) -> std::path::PathBuf {
        std::path::Path::new(WORK_ROOT).join(&self.name)
    }

    /// Whether the scenario needs its work directory: it has `prepare` or `after`
    /// commands, or `{dir}` in its `qemu_args`.
    pub fn uses_work_dir(&self) -> bool {
        !self.prepare.is_empty()
            || !self.after.is_empty()
            || self.qemu_args.iter().any(|a| a.contains(DIR_PLACEHOLDER))
    }

    /// Whether the run has more than one step (several boots, or host commands around
    /// the boot): its log then gets a `== ferry-test: ...` header before each.
    pub fn is_multi_step(&self) -> bool {
        self.boots > 1 || !self.prepare.is_empty() || !self.after.is_empty()
    }

    /// `qemu_args` with `{dir}` replaced by `dir`.
    pub fn expanded_qemu_args(&self, dir: &std::path::Path) -> Vec<String> {
        let dir = dir.display().to_string();
        self.qemu_args
            .iter()
            .map(|a| a.replace(DIR_PLACEHOLDER, &dir))
            .collect()
    }

    /// Everything the console log must contain: `expect_log`, plus the `expect_check`
    /// fragment (Ferry's boot-time refusal must name the same problem).
    pub fn expected_log(&self) -> Vec<String> {
        let mut v = self.expect_log.clone();
        v.extend(self.expect_check.iter().cloned());
        v
    }

    /// Checks one scenario on its own; errors name the scenario and the field.
    pub fn validate(&self) -> Result<()> {
        let n = &self.name;
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || n.starts_with('.')
        {
            bail!(
                "scenario name {n:?}: use only letters, digits, '-', '_', '.' (it names a log file)"
            );
        }
        if self.image.is_empty() || self.image.contains('/') || self.image.starts_with('.') {
            bail!(
                "scenario {n}: image {:?} must be a platform name (build/<image>/ferry.img)",
                self.image
            );
        }
        if self.machine.trim().is_empty() {
            bail!("scenario {n}: machine is empty");
        }
        if self.cpu.as_deref().is_some_and(|c| c.trim().is_empty()) {
            bail!("scenario {n}: cpu is empty (leave it out for QEMU's default)");
        }
        if self.memory.as_deref().is_some_and(|m| m.trim().is_empty()) {
            bail!("scenario {n}: memory is empty (leave it out for QEMU's default)");
        }
        if self.smp == Some(0) {
            bail!("scenario {n}: smp must be at least 1");
        }
        if self
            .icount
            .as_deref()
            .is_some_and(|i| i.trim().is_empty() || i.contains(char::is_whitespace))
        {
            bail!("scenario {n}: icount must be one -icount argument, e.g. \"shift=0,sleep=off\"");
        }
        if let Some(dtb) = self.dtb.as_ref().filter(|d| bad_path(d)) {
            bail!("scenario {n}: dtb {dtb:?} must be a path relative to build/guests/");
        }
        if self.console_serial >= MAX_SERIALS {
            bail!(
                "scenario {n}: console_serial {} out of range (QEMU has serials 0..={})",
                self.console_serial,
                MAX_SERIALS - 1
            );
        }
        if self.timeout_secs == 0 || self.timeout_secs > MAX_TIMEOUT_SECS {
            bail!(
                "scenario {n}: timeout_secs {} out of range (1..={MAX_TIMEOUT_SECS})",
                self.timeout_secs
            );
        }
        if !(0..=255).contains(&self.expect_exit) {
            bail!(
                "scenario {n}: expect_exit {} out of range (0..=255)",
                self.expect_exit
            );
        }
        if self.expect_log.iter().any(|s| s.is_empty()) {
            bail!("scenario {n}: expect_log has an empty string");
        }
        if let Some(c) = self.config.as_ref().filter(|c| bad_path(c)) {
            bail!("scenario {n}: config {c:?} must be a path relative to the repository root");
        }
        if let Some(fragment) = &self.expect_check {
            if self.config.is_none() {
                bail!("scenario {n}: expect_check needs a config (the config ferry check refuses)");
            }
            if fragment.trim().is_empty() {
                bail!("scenario {n}: expect_check is empty");
            }
            if self.expect_exit != BOOT_REFUSED {
                bail!(
                    "scenario {n}: expect_check needs expect_exit = {BOOT_REFUSED} (Ferry refuses \
                     a bad config at boot), not {}",
                    self.expect_exit
                );
            }
        }
        if self.corrupt_pack.is_some() && self.config.is_none() {
            bail!("scenario {n}: corrupt_pack needs a config (the pack to corrupt)");
        }
        if !self.include.is_empty() && self.config.is_none() {
            bail!("scenario {n}: include needs a config (whose images it finds)");
        }
        if let Some(d) = self.include.iter().find(|d| bad_path(d)) {
            bail!("scenario {n}: include {d:?} must be a path relative to the repository root");
        }
        if self.pending.as_deref().is_some_and(|r| r.trim().is_empty()) {
            bail!("scenario {n}: pending needs a reason");
        }
        self.validate_steps()
    }

    /// The checks of `qemu_args`, `prepare`, `boots`, `expect_log_boot` and `after`.
    fn validate_steps(&self) -> Result<()> {
        let n = &self.name;
        for a in &self.qemu_args {
            if a.trim().is_empty() {
                bail!("scenario {n}: qemu_args has an empty argument");
            }
            if let Some(o) = RESERVED_QEMU_OPTIONS.iter().find(|o| a == *o) {
                bail!(
                    "scenario {n}: qemu_args may not give {o} (the runner sets it from the scenario's fields)"
                );
            }
            if a.contains("$DIR") || a.contains("{DIR}") {
                bail!(
                    "scenario {n}: qemu_args {a:?}: the work directory is {DIR_PLACEHOLDER} there \
                     ($DIR is for prepare and after)"
                );
            }
        }
        for (field, cmds) in [("prepare", &self.prepare), ("after", &self.after)] {
            if cmds.iter().any(|c| c.trim().is_empty()) {
                bail!("scenario {n}: {field} has an empty command");
            }
        }
        if self.boots == 0 || self.boots > MAX_BOOTS {
            bail!(
                "scenario {n}: boots {} out of range (1..={MAX_BOOTS})",
                self.boots
            );
        }
        if !self.expect_log_boot.is_empty() && self.expect_log_boot.len() != self.boots as usize {
            bail!(
                "scenario {n}: expect_log_boot has {} lists, one per boot: boots = {}",
                self.expect_log_boot.len(),
                self.boots
            );
        }
        if self.expect_log_boot.iter().flatten().any(|s| s.is_empty()) {
            bail!("scenario {n}: expect_log_boot has an empty string");
        }
        if self.boots > 1 && !self.input.is_empty() {
            bail!("scenario {n}: input types into one boot: it needs boots = 1");
        }
        Ok(())
    }
}

/// Parses and validates a scenarios file; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Scenario>> {
    let file: File = toml::from_str(text).with_context(|| format!("{origin}: bad TOML"))?;
    let mut seen = HashSet::new();
    for s in &file.scenario {
        s.validate().with_context(|| origin.to_string())?;
        if !seen.insert(s.name.as_str()) {
            bail!("{origin}: duplicate scenario name {:?}", s.name);
        }
    }
    Ok(file.scenario)
}

/// Every scenario: `tests/scenarios.toml`, then each `tests/hostile/*.toml` in name
/// order; names must be unique across the files.
pub fn load_all(root: &std::path::Path) -> Result<Vec<Scenario>> {
    let mut files = vec![root.join("tests/scenarios.toml")];
    let hostile = root.join("tests/hostile");
    if hostile.is_dir() {
        let mut more: Vec<_> = std::fs::read_dir(&hostile)
            .with_context(|| format!("reading {}", hostile.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut all: Vec<Scenario> = Vec::new();
    let mut seen = HashSet::new();
    for f in files {
        for s in load(&f)? {
            if !seen.insert(s.name.clone()) {
                bail!("{}: scenario name {:?} is used twice", f.display(), s.name);
            }
            all.push(s);
        }
    }
    Ok(all)
}

/// Reads and parses a scenarios file.
pub fn load(path: &std::path::Path) -> Result<Vec<Scenario>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
[[scenario]]
name = "virt-a53-smp4"
description = "d"
image = "qemu-virt"
machine = "virt,gic-version=3,virtualization=on"
cpu = "cortex-a53"
smp = 4
memory = "1G"
timeout_secs = 60
expect_exit = 0
expect_log = ["4 of 4 CPUs online"]
"#;

    fn with(extra: &str) -> String {
        format!("{ONE}{extra}")
    }

    /// `ONE` with more fields in its table.
    fn with_fields(fields: &str) -> String {
        ONE.replace("smp = 4", &format!("smp = 4\n{fields}"))
    }

    #[test]
    fn parses_full_scenario_with_defaults() {
        let v = parse(ONE, "t").unwrap();
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!(s.name, "virt-a53-smp4");
        assert_eq!(s.smp, Some(4));
        assert_eq!(s.console_serial, 0);
        assert_eq!(s.dtb, None);
        assert_eq!(s.append, None);
        assert_eq!(s.expect_log, vec!["4 of 4 CPUs online".to_string()]);
    }

    #[test]
    fn empty_file_is_no_scenarios() {
        assert!(parse("", "t").unwrap().is_empty());
    }

    #[test]
    fn rejects_unknown_field() {
        let e = parse(&ONE.replace("smp = 4", "smp = 4\ncpus = 4"), "t").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
    }

    #[test]
    fn rejects_unknown_top_level_table() {
        let e = parse(&with("[other]\nx = 1\n"), "t").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
    }

    #[test]
    fn rejects_missing_required_field() {
        let e = parse(&ONE.replace("expect_exit = 0\n", ""), "t").unwrap_err();
        assert!(format!("{e:#}").contains("expect_exit"), "{e:#}");
    }

    #[test]
    fn rejects_duplicate_names() {
        let e = parse(&with(ONE), "t").unwrap_err();
        assert!(format!("{e:#}").contains("duplicate"), "{e:#}");
    }

    #[test]
    fn console_serial_bounds() {
        let ok = ONE.replace("smp = 4", "smp = 4\nconsole_serial = 3");
        assert_eq!(parse(&ok, "t").unwrap()[0].console_serial, 3);
        let bad = ONE.replace("smp = 4", "smp = 4\nconsole_serial = 4");
        let e = parse(&bad, "t").unwrap_err();
        assert!(format!("{e:#}").contains("console_serial"), "{e:#}");
        let neg = ONE.replace("smp = 4", "smp = 4\nconsole_serial = -1");
        assert!(parse(&neg, "t").is_err());
    }

    #[test]
    fn rejects_bad_values() {
        for (from, to, what) in [
            ("name = \"virt-a53-smp4\"", "name = \"a b\"", "name"),
            ("name = \"virt-a53-smp4\"", "name = \"../x\"", "name"),
            ("image = \"qemu-virt\"", "image = \"../x\"", "image"),
            ("smp = 4", "smp = 0", "smp"),
            ("timeout_secs = 60", "timeout_secs = 0", "timeout_secs"),
            ("timeout_secs = 60", "timeout_secs = 100000", "timeout_secs"),
            ("expect_exit = 0", "expect_exit = 256", "expect_exit"),
            ("cpu = \"cortex-a53\"", "cpu = \"\"", "cpu"),
            (
                "expect_log = [\"4 of 4 CPUs online\"]",
                "expect_log = [\"\"]",
                "expect_log",
            ),
            ("smp = 4", "smp = 4\ndtb = \"/etc/x.dtb\"", "dtb"),
            ("smp = 4", "smp = 4\ndtb = \"../x.dtb\"", "dtb"),
        ] {
            let text = ONE.replace(from, to);
            assert_ne!(text, ONE, "replacement {from:?} did not apply");
            let e = parse(&text, "t").unwrap_err();
            assert!(format!("{e:#}").contains(what), "{what}: {e:#}");
        }
    }

    #[test]
    fn the_real_file_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios.toml");
        let v = load(&path).unwrap();
        assert!(!v.is_empty());
    }

    #[test]
    fn the_real_files_configs_exist() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for s in load_all(&root).unwrap() {
            if let Some(c) = &s.config {
                assert!(root.join(c).is_file(), "scenario {}: no {c}", s.name);
            }
        }
    }

    #[test]
    fn every_partition_config_has_a_scenario() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut used: HashSet<String> = load_all(&root)
            .unwrap()
            .into_iter()
            .filter_map(|s| s.config)
            .collect();
        // `ferry-test bench` boots these.
        used.extend(crate::bench::benches().into_iter().map(|b| b.config));
        for dir in ["tests/partitions", "tests/partitions/bad", "tests/hostile"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".dts") {
                    let path = format!("{dir}/{name}");
                    assert!(used.contains(&path), "{path} is in no scenario");
                }
            }
        }
    }

    #[test]
    fn config_and_expect_check_parse() {
        let v = parse(&with_fields("config = \"tests/partitions/x.dts\""), "t").unwrap();
        assert_eq!(v[0].config.as_deref(), Some("tests/partitions/x.dts"));
        assert_eq!(v[0].expect_check, None);
        assert_eq!(
            v[0].packed_image(),
            Some(std::path::PathBuf::from(
                "build/scenarios/virt-a53-smp4.img"
            ))
        );
        assert_eq!(v[0].expected_log(), vec!["4 of 4 CPUs online".to_string()]);

        let text = with_fields(
            "config = \"tests/partitions/bad/x.dts\"\nexpect_check = \"cpus: CPU 7 does not exist\"",
        )
        .replace("expect_exit = 0", "expect_exit = 3");
        let s = parse(&text, "t").unwrap().remove(0);
        assert_eq!(
            s.expect_check.as_deref(),
            Some("cpus: CPU 7 does not exist")
        );
        assert_eq!(
            s.expected_log(),
            vec![
                "4 of 4 CPUs online".to_string(),
                "cpus: CPU 7 does not exist".to_string()
            ]
        );
        // A plain scenario packs nothing.
        assert_eq!(parse(ONE, "t").unwrap()[0].packed_image(), None);
    }

    #[test]
    fn include_and_pending() {
        let v = parse(
            &with_fields(
                "config = \"tests/linux/x.dts\"\ninclude = [\"build/guests\"]\npending = \"needs the vGIC\"",
            ),
            "t",
        )
        .unwrap();
        assert_eq!(v[0].include, ["build/guests"]);
        assert_eq!(v[0].pending.as_deref(), Some("needs the vGIC"));
        let plain = parse(ONE, "t").unwrap().remove(0);
        assert!(plain.include.is_empty());
        assert_eq!(plain.pending, None);
        for (extra, what) in [
            ("include = [\"build/guests\"]", "include needs a config"),
            (
                "config = \"c.dts\"\ninclude = [\"/abs\"]",
                "include \"/abs\"",
            ),
            (
                "config = \"c.dts\"\ninclude = [\"../x\"]",
                "include \"../x\"",
            ),
            ("config = \"c.dts\"\ninclude = [\"\"]", "include \"\""),
            ("pending = \" \"", "pending needs a reason"),
        ] {
            let e = parse(&with_fields(extra), "t").unwrap_err();
            assert!(format!("{e:#}").contains(what), "{extra}: {e:#}");
        }
    }

    #[test]
    fn expect_check_rules() {
        for (extra, exit, what) in [
            ("expect_check = \"x\"", 3, "needs a config"),
            ("corrupt_pack = 16", 3, "corrupt_pack needs a config"),
            (
                "config = \"c.dts\"\nexpect_check = \"\"",
                3,
                "expect_check is empty",
            ),
            (
                "config = \"c.dts\"\nexpect_check = \" \"",
                3,
                "expect_check is empty",
            ),
            (
                "config = \"c.dts\"\nexpect_check = \"x\"",
                0,
                "expect_exit = 3",
            ),
            ("config = \"/etc/c.dts\"", 0, "config"),
            ("config = \"../c.dts\"", 0, "config"),
            ("config = \"\"", 0, "config"),
        ] {
            let text =
                with_fields(extra).replace("expect_exit = 0", &format!("expect_exit = {exit}"));
            let e = parse(&text, "t").unwrap_err();
            assert!(format!("{e:#}").contains(what), "{extra}: {e:#}");
        }
    }

    #[test]
    fn disk_fields_parse_with_defaults() {
        let plain = parse(ONE, "t").unwrap().remove(0);
        assert_eq!(plain.boots, 1);
        assert!(plain.qemu_args.is_empty() && plain.prepare.is_empty() && plain.after.is_empty());
        assert!(plain.expect_log_boot.is_empty());
        assert!(!plain.uses_work_dir() && !plain.is_multi_step());

        let s = parse(
            &with_fields(
                "qemu_args = [\"-drive\", \"if=none,id=d0,format=raw,file={dir}/disk.img\", \
                 \"-device\", \"virtio-blk-device,drive=d0\"]\n\
                 prepare = [\"mkfs.ext4 -q -F -d tests/linux/disk-root $DIR/disk.img 64M\"]\n\
                 boots = 2\n\
                 expect_log_boot = [[\"first boot: wrote\"], [\"second boot: file intact\"]]\n\
                 after = [\"fsck.ext4 -n -f $DIR/disk.img\"]",
            ),
            "t",
        )
        .unwrap()
        .remove(0);
        assert_eq!(s.boots, 2);
        assert_eq!(s.qemu_args.len(), 4);
        assert_eq!(s.expect_log_boot[1], ["second boot: file intact"]);
        assert!(s.uses_work_dir() && s.is_multi_step());
        assert_eq!(
            s.work_dir(),
            std::path::PathBuf::from("build/scenarios/virt-a53-smp4")
        );
        assert_eq!(
            s.expanded_qemu_args(std::path::Path::new("/abs/w"))[1],
            "if=none,id=d0,format=raw,file=/abs/w/disk.img"
        );
        // {dir} alone asks for the work directory; other qemu_args do not.
        let q = parse(&with_fields("qemu_args = [\"-s\", \"x={dir}\"]"), "t").unwrap();
        assert!(q[0].uses_work_dir() && !q[0].is_multi_step());
        let q = parse(&with_fields("qemu_args = [\"-s\"]"), "t").unwrap();
        assert!(!q[0].uses_work_dir());
        let q = parse(&with_fields("after = [\"true\"]"), "t").unwrap();
        assert!(q[0].uses_work_dir() && q[0].is_multi_step());
    }

    #[test]
    fn disk_fields_rejected_when_bad() {
        for (extra, what) in [
            ("boots = 0", "boots 0 out of range"),
            ("boots = 9", "boots 9 out of range"),
            ("boots = -1", "boots"),
            ("qemu_args = [\"\"]", "qemu_args has an empty argument"),
            (
                "qemu_args = [\"-serial\", \"null\"]",
                "may not give -serial",
            ),
            ("qemu_args = [\"-kernel\", \"x\"]", "may not give -kernel"),
            ("qemu_args = [\"-nographic\"]", "may not give -nographic"),
            ("qemu_args = [\"file=$DIR/d.img\"]", "{dir} there"),
            ("qemu_args = [\"file={DIR}/d.img\"]", "{dir} there"),
            ("prepare = [\" \"]", "prepare has an empty command"),
            ("after = [\"true\", \"\"]", "after has an empty command"),
            (
                "boots = 2\nexpect_log_boot = [[\"a\"]]",
                "expect_log_boot has 1 lists, one per boot: boots = 2",
            ),
            (
                "expect_log_boot = [[\"a\"], [\"b\"]]",
                "expect_log_boot has 2 lists",
            ),
            (
                "boots = 2\nexpect_log_boot = [[\"a\"], [\"\"]]",
                "expect_log_boot has an empty string",
            ),
            (
                "boots = 2\ninput = [{ after = \"$ \", send = \"x\" }]",
                "input types into one boot",
            ),
            ("prepare = \"mkfs\"", "invalid type"),
            ("boot = 2", "unknown field"),
        ] {
            let e = parse(&with_fields(extra), "t").unwrap_err();
            assert!(format!("{e:#}").contains(what), "{extra}: {e:#}");
        }
        // One list per boot, empty lists allowed.
        let ok = parse(
            &with_fields("boots = 2\nexpect_log_boot = [[], [\"b\"]]"),
            "t",
        )
        .unwrap();
        assert_eq!(ok[0].expect_log_boot.len(), 2);
    }

    #[test]
    fn icount_is_one_argument() {
        let s = parse(&with_fields("icount = \"shift=0,sleep=off\""), "t")
            .unwrap()
            .remove(0);
        assert_eq!(s.icount.as_deref(), Some("shift=0,sleep=off"));
        for bad in ["icount = \"\"", "icount = \"shift=0 sleep=off\""] {
            let e = parse(&with_fields(bad), "t").unwrap_err();
            assert!(format!("{e:#}").contains("icount"), "{bad}: {e:#}");
        }
    }
}
