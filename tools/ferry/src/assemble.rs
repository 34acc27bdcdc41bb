//! What goes into the pack for a config: the config DTB, then per partition (in
//! id order) its image, generated guest DTB, initrd and the disk images of the
//! virtio-blk devices it serves (in device index order). A disk image must fit
//! in its device's `disk`.

use anyhow::{Result, bail};
use ferry_abi::pack::Kind;
use ferry_config::{Config, MAX_GUEST_DTB, Partition};

use crate::dtb::guest_dtb;
use crate::load::Loaded;
use crate::pack::{Item, config_item};

/// The pack's payloads for `loaded` (parsed as `cfg`, if it parsed).
///
/// Normally every file must be there and every guest DTB must fit in
/// [`MAX_GUEST_DTB`]. With `lenient` (`ferry pack --no-check`) whatever can be
/// packed is: a missing file, a partition id seen before or a guest DTB that
/// cannot be generated is skipped, a config that does not parse is packed
/// alone, and each such event is described in `warnings`. That lets Ferry's own
/// boot-time checks be tested with bad configs.
pub fn items(
    loaded: &Loaded,
    cfg: Option<&Config>,
    lenient: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Item>> {
    let mut items = vec![config_item(&loaded.file_name(), &loaded.dtb)];
    let Some(cfg) = cfg else {
        if !lenient {
            bail!("the config does not parse");
        }
        warnings.push("the config does not parse: packing the config alone".into());
        return Ok(items);
    };
    let mut by_id: Vec<&Partition> = cfg.partitions.iter().collect();
    by_id.sort_by_key(|p| p.id);
    let mut seen = Vec::new();
    for p in by_id {
        if seen.contains(&p.id) {
            warnings.push(format!("{}: id {} seen before: not packed", p.path, p.id));
            continue;
        }
        seen.push(p.id);
        partition(loaded, cfg, p, lenient, warnings, &mut items)?;
    }
    Ok(items)
}

/// The last component of `name` (a path from the config), for the pack entry.
fn base_name(name: &str) -> String {
    ferry_abi::pack::item_name(name).to_string()
}

/// Reads file `name` for `property` of `p`; a missing file is an error, or a
/// warning when `lenient`.
fn file(
    loaded: &Loaded,
    p: &Partition,
    property: &str,
    name: &str,
    lenient: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>> {
    let data = loaded.read(name)?;
    if data.is_none() {
        let msg = format!("{}: {property}: \"{name}\" is missing", p.path);
        if !lenient {
            bail!(msg);
        }
        warnings.push(format!("{msg}: not packed"));
    }
    Ok(data)
}

fn partition(
    loaded: &Loaded,
    cfg: &Config,
    p: &Partition,
    lenient: bool,
    warnings: &mut Vec<String>,
    items: &mut Vec<Item>,
) -> Result<()> {
    let item = |kind, name: String, data| Item {
        kind,
        partition: p.id,
        name,
        data,
    };
    if let Some(data) = file(loaded, p, "image", &p.image, lenient, warnings)? {
        items.push(item(Kind::Image, base_name(&p.image), data));
    }
    let initrd = match &p.initrd {
        Some(name) => file(loaded, p, "initrd", name, lenient, warnings)?.map(|d| (name, d)),
        None => None,
    };
    let initrd_size = initrd.as_ref().map(|(_, d)| d.len() as u64);
    match guest_dtb(cfg, p, initrd_size) {
        Ok(dtb) => {
            if dtb.len() as u64 > MAX_GUEST_DTB {
                let msg = format!(
                    "{}: the guest DTB is {} bytes, more than the {MAX_GUEST_DTB} reserved for it",
                    p.path,
                    dtb.len()
                );
                if !lenient {
                    bail!(msg);
                }
                warnings.push(msg);
            }
            items.push(item(Kind::GuestDtb, format!("{}.dtb", p.label), dtb));
        }
        Err(e) if lenient => warnings.push(format!("{e:#}: not packed")),
        Err(e) => return Err(e),
    }
    if let Some((name, data)) = initrd {
        items.push(item(Kind::Initrd, base_name(name), data));
    }
    for d in cfg.backend_devices(p.id) {
        let Some(name) = &d.disk_image else { continue };
        let data = loaded.read(name)?;
        let Some(data) = data else {
            let msg = format!("{}: disk-image: \"{name}\" is missing", d.path);
            if !lenient {
                bail!(msg);
            }
            warnings.push(format!("{msg}: not packed"));
            continue;
        };
        if let Some(disk) = d.disk
            && data.len() as u64 > disk.size
        {
            let msg = format!(
                "{}: disk-image: \"{name}\" ({:#x} bytes) is larger than disk [{:#x}, {:#x}) ({:#x} bytes)",
                d.path,
                data.len(),
                disk.base,
                u128::from(disk.base) + u128::from(disk.size),
                disk.size
            );
            if !lenient {
                bail!(msg);
            }
            warnings.push(msg);
        }
        items.push(item(Kind::Disk, base_name(name), data));
    }
    Ok(())
}
