//! `ferry`: check a system config, generate guest DTBs, pack the bootable image.
//!
//! ```text
//! ferry check CONFIG [-I DIR]...
//! ferry pack CONFIG --hypervisor build/qemu-virt/ferry.img -o OUT.img [-I DIR]... [--no-check]
//! ferry dtb CONFIG --partition LABEL -o FILE [-I DIR]...
//! ```
//! CONFIG is a `.dts` (compiled with `dtc`) or a `.dtb`. Files the config names
//! are looked up next to it, then in each `-I` directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use ferry_config::{Config, ConfigError, Region};
use ferry_tool::load::{self, Loaded};
use ferry_tool::pack::{self, Packed};
use ferry_tool::{assemble, dtb};

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Ferry's host tool: check a config, generate guest DTBs, pack the image"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config: print every problem, exit 1 if there is one.
    Check {
        /// The config (.dts or .dtb).
        config: PathBuf,
        /// More directories to look up images (and dtc includes) in.
        #[arg(short = 'I', value_name = "DIR")]
        include: Vec<PathBuf>,
    },
    /// Pack the hypervisor image, the config, the images and generated guest DTBs into one image.
    Pack {
        /// The config (.dts or .dtb).
        config: PathBuf,
        /// The hypervisor's raw arm64 Image (`make` writes build/<board>/ferry.img).
        #[arg(long, value_name = "IMAGE")]
        hypervisor: PathBuf,
        /// The packed image to write.
        #[arg(short = 'o', value_name = "OUT")]
        output: PathBuf,
        /// More directories to look up images (and dtc includes) in.
        #[arg(short = 'I', value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Skip the checks and pack whatever can be packed (to test Ferry's own boot-time checks).
        #[arg(long)]
        no_check: bool,
    },
    /// Write one partition's generated guest DTB (inspect it with `dtc -I dtb FILE`).
    Dtb {
        /// The config (.dts or .dtb).
        config: PathBuf,
        /// The partition's label.
        #[arg(long, value_name = "LABEL")]
        partition: String,
        /// The DTB to write.
        #[arg(short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// More directories to look up images (and dtc includes) in.
        #[arg(short = 'I', value_name = "DIR")]
        include: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config, include } => check(&config, &include),
        Command::Pack {
            config,
            hypervisor,
            output,
            include,
            no_check,
        } => pack(&config, &include, &hypervisor, &output, no_check),
        Command::Dtb {
            config,
            partition,
            output,
            include,
        } => write_dtb(&config, &include, &partition, &output),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `problems` as `error: ...` lines and the count.
fn report(config: &Path, problems: &[ConfigError]) -> ExitCode {
    for p in problems {
        println!("error: {p}");
    }
    println!("{} problem(s) in {}", problems.len(), config.display());
    ExitCode::FAILURE
}

fn check(config: &Path, include: &[PathBuf]) -> Result<ExitCode> {
    let loaded = load::load(config, include)?;
    Ok(match load::check(&loaded) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} partitions)",
                config.display(),
                cfg.partitions.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => report(config, &problems),
    })
}

fn pack(
    config: &Path,
    include: &[PathBuf],
    hypervisor: &Path,
    output: &Path,
    no_check: bool,
) -> Result<ExitCode> {
    let loaded = load::load(config, include)?;
    let mut warnings = Vec::new();
    let cfg = if no_check {
        match loaded.parse() {
            Ok(cfg) => {
                let problems = ferry_config::validate(&cfg, &loaded);
                warnings.extend(problems.iter().map(|p| format!("(not checked) {p}")));
                Some(cfg)
            }
            Err(problems) => {
                warnings.extend(problems.iter().map(|p| format!("(not checked) {p}")));
                None
            }
        }
    } else {
        match load::check(&loaded) {
            Ok(cfg) => Some(cfg),
            Err(problems) => return Ok(report(config, &problems)),
        }
    };
    let items = assemble::items(&loaded, cfg.as_ref(), no_check, &mut warnings)?;
    let hv =
        fs::read(hypervisor).with_context(|| format!("cannot read {}", hypervisor.display()))?;
    let packed = pack::build(&hv, &items).with_context(|| hypervisor.display().to_string())?;
    let footprint = match &cfg {
        Some(cfg) => Some(footprint(cfg, &packed, no_check, &mut warnings)?),
        None => None,
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    fs::write(output, &packed.bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    summary(
        hypervisor,
        hv.len(),
        output,
        &items,
        &packed,
        cfg.as_ref(),
        footprint,
    );
    Ok(ExitCode::SUCCESS)
}

/// Ferry's footprint once loaded; it must lie inside `/hypervisor` `memory`
/// (else an error, or a warning with `--no-check`).
fn footprint(
    cfg: &Config,
    packed: &Packed,
    no_check: bool,
    warnings: &mut Vec<String>,
) -> Result<Region> {
    let hv = cfg.hypervisor.memory;
    let fp = packed
        .footprint(cfg)
        .ok_or_else(|| anyhow!("/platform: memory: has no region: cannot place Ferry"))?;
    let inside = fp.base >= hv.base && fp.base.checked_add(fp.size).is_some_and(|e| e <= hv.end());
    if !inside {
        let msg = format!(
            "/hypervisor: memory: Ferry occupies [{:#x}, {:#x}) (RAM base + text_offset {:#x}, image_size {:#x}), outside the declared [{:#x}, {:#x})",
            fp.base,
            u128::from(fp.base) + u128::from(fp.size),
            packed.header.text_offset,
            packed.image_size(),
            hv.base,
            u128::from(hv.base) + u128::from(hv.size),
        );
        if !no_check {
            bail!(msg);
        }
        warnings.push(msg);
    }
    Ok(fp)
}

/// Prints what went where: the hypervisor, each payload, the pack, the output.
fn summary(
    hypervisor: &Path,
    hv_len: usize,
    output: &Path,
    items: &[pack::Item],
    packed: &Packed,
    cfg: Option<&Config>,
    footprint: Option<Region>,
) {
    let owner = |id: u32| match cfg.and_then(|c| c.partition(id)) {
        _ if id == ferry_abi::pack::SYSTEM => "system".to_string(),
        Some(p) => format!("{} ({id})", p.label),
        None => format!("partition {id}"),
    };
    println!(
        "{:<10} {:<16} {:#10x} bytes  padded to image_size {:#x} (text_offset {:#x})",
        "hypervisor",
        hypervisor
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        hv_len,
        packed.header.image_size,
        packed.header.text_offset,
    );
    for i in items {
        println!(
            "{:<10} {:<16} {:#10x} bytes  {}",
            i.kind.name(),
            owner(i.partition),
            i.data.len(),
            i.name
        );
    }
    println!(
        "{:<10} {:<16} {:#10x} bytes  at {:#x}, {} entries",
        "pack",
        "",
        packed.pack_size,
        packed.pack_offset,
        items.len()
    );
    print!(
        "{}: {:#x} bytes (image_size patched to {:#x})",
        output.display(),
        packed.bytes.len(),
        packed.image_size()
    );
    match (footprint, cfg) {
        (Some(fp), Some(cfg)) => println!(
            "; Ferry occupies [{:#x}, {:#x}) of /hypervisor memory [{:#x}, {:#x})",
            fp.base,
            fp.end(),
            cfg.hypervisor.memory.base,
            cfg.hypervisor.memory.end()
        ),
        _ => println!(),
    }
}

fn write_dtb(config: &Path, include: &[PathBuf], label: &str, output: &Path) -> Result<ExitCode> {
    let loaded: Loaded = load::load(config, include)?;
    let cfg = match loaded.parse() {
        Ok(cfg) => cfg,
        Err(problems) => return Ok(report(config, &problems)),
    };
    let Some(p) = cfg.partition_by_label(label) else {
        let labels: Vec<String> = cfg
            .partitions
            .iter()
            .map(|p| format!("\"{}\"", p.label))
            .collect();
        bail!(
            "no partition labelled \"{label}\" (labels: {})",
            labels.join(", ")
        );
    };
    let initrd_size = match &p.initrd {
        Some(name) => Some(
            loaded
                .size(name)
                .ok_or_else(|| anyhow!("{}: initrd: \"{name}\" is missing", p.path))?,
        ),
        None => None,
    };
    let blob = dtb::guest_dtb(&cfg, p, initrd_size)?;
    if blob.len() as u64 > ferry_config::MAX_GUEST_DTB {
        eprintln!(
            "warning: the guest DTB is {} bytes, more than the {} reserved for it",
            blob.len(),
            ferry_config::MAX_GUEST_DTB
        );
    }
    fs::write(output, &blob).with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "{}: guest DTB of {} ({} bytes)",
        output.display(),
        p.path,
        blob.len()
    );
    Ok(ExitCode::SUCCESS)
}
