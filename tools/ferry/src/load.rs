//! Loading a config: compiling it with `dtc` when it is a `.dts`, finding the
//! images it names, and checking it (parse + validate) with `ferry-config`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use ferry_config::{Config, ConfigError, Images, Partition, VirtioDevice};

/// A config, compiled, with the directories its files are looked up in.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The config file as given.
    pub path: PathBuf,
    /// The config DTB (as `dtc` compiled it, or the `.dtb` as read).
    pub dtb: Vec<u8>,
    /// Where files named in the config are looked up, in order: the config's
    /// directory, then each `-I` directory.
    pub search: Vec<PathBuf>,
}

/// The DTB magic, big-endian.
const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// Reads the config at `path`: a `.dts` is compiled with
/// `dtc -I dts -O dtb -W no-interrupts_property -i <config dir> -i <dir>...`;
/// anything else must be a DTB.
/// `include` are the `-I` directories, also searched for images.
pub fn load(path: &Path, include: &[PathBuf]) -> Result<Loaded> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut search = vec![dir];
    search.extend(include.iter().cloned());
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dtb = if bytes.starts_with(&FDT_MAGIC) {
        bytes
    } else if path.extension().is_some_and(|e| e == "dts") {
        compile(path, &search)?
    } else {
        bail!(
            "{}: neither a .dts nor a device tree blob (no 0xd00dfeed magic)",
            path.display()
        );
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        dtb,
        search,
    })
}

/// Compiles the `.dts` at `path` with `dtc` (include paths `search`); its
/// warnings go to stderr, its errors into the returned error.
fn compile(path: &Path, search: &[PathBuf]) -> Result<Vec<u8>> {
    let mut cmd = Command::new("dtc");
    // Device interrupts are relative to the guest GIC, which the config does not
    // describe: dtc's "Missing interrupt-parent" warning does not apply.
    cmd.args([
        "-I",
        "dts",
        "-O",
        "dtb",
        "-W",
        "no-interrupts_property",
        "-o",
        "-",
    ]);
    for d in search {
        cmd.arg("-i").arg(d);
    }
    cmd.arg(path);
    let out = cmd.output().map_err(|e| {
        anyhow::anyhow!("cannot run dtc ({e}): install device-tree-compiler (`make deps`)")
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "dtc failed to compile {} ({}):\n{}",
            path.display(),
            out.status,
            stderr.trim_end()
        );
    }
    if !stderr.trim().is_empty() {
        eprint!("{stderr}");
    }
    Ok(out.stdout)
}

impl Loaded {
    /// The file name of the config, for messages and the pack entry.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned())
    }

    /// Where file `name` (from the config) is: an absolute path as is, else the
    /// first search directory that has it.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() {
            return None;
        }
        let p = Path::new(name);
        if p.is_absolute() {
            return p.is_file().then(|| p.to_path_buf());
        }
        self.search.iter().map(|d| d.join(p)).find(|f| f.is_file())
    }

    /// Reads file `name` from the config, if it can be found.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.find(name) {
            Some(f) => Ok(Some(
                fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?,
            )),
            None => Ok(None),
        }
    }

    /// The size of file `name`, if it can be found.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.find(name)
            .and_then(|f| fs::metadata(f).ok())
            .map(|m| m.len())
    }

    /// Parses the config.
    pub fn parse(&self) -> Result<Config, Vec<ConfigError>> {
        ferry_config::parse(&self.dtb)
    }
}

impl Images for Loaded {
    fn image_size(&self, p: &Partition) -> Option<u64> {
        self.size(&p.image)
    }

    fn initrd_size(&self, p: &Partition) -> Option<u64> {
        self.size(p.initrd.as_deref()?)
    }

    fn disk_image_size(&self, d: &VirtioDevice) -> Option<u64> {
        self.size(d.disk_image.as_deref()?)
    }
}

/// Parses and validates the config: the config, or every problem found (the
/// same messages Ferry prints at boot).
pub fn check(loaded: &Loaded) -> Result<Config, Vec<ConfigError>> {
    let cfg = loaded.parse()?;
    let problems = ferry_config::validate(&cfg, loaded);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}
