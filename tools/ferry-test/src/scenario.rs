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
