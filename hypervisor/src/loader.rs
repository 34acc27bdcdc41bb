//! Putting partitions into memory from the pack: their images, guest DTBs,
//! initrds and RAM disks, at boot (`system`) and again when a backend restarts
//! (`restart`), from the config and pack kept after the boot.

use alloc::format;
use alloc::string::String;

use ferry_abi::pack::{Kind, Pack};
use ferry_config::{Config, Partition as PartitionConfig};

/// The config and pack Ferry booted from: a backend's restart reloads from them.
static BOOT: spin::Once<(Config, Pack<'static>)> = spin::Once::new();

/// Keeps the config and the pack for [`reload`].
pub fn keep(cfg: Config, pack: Pack<'static>) {
    BOOT.call_once(|| (cfg, pack));
}

/// Reloads partition `id` as at boot, into fresh memory: its RAM zeroed, then its
/// image, guest DTB, initrd and RAM disks copied in again from the pack. Returns
/// where its vCPU 0 starts: (entry, DTB address).
pub fn reload(id: usize) -> Result<(u64, u64), String> {
    let (cfg, pack) = BOOT.get().ok_or("no pack kept")?;
    let p = cfg
        .partitions
        .iter()
        .find(|p| p.id as usize == id)
        .ok_or("no such partition")?;
    for r in &p.memory {
        // SAFETY: the partition's host RAM (validated at boot, mapped read/write at
        // EL2); the partition is stopped, so none of its vCPUs uses it now.
        unsafe { ferry_boot::cache::zero_range(r.pa, r.size) };
    }
    load(p, pack)?;
    load_disks(p, cfg, pack)?;
    Ok((p.entry, p.dtb_address))
}

/// Copies `p`'s image, guest DTB and initrd from the pack into its memory and
/// cleans them to the point of coherency (the guest starts with its MMU off).
pub fn load(p: &PartitionConfig, pack: &Pack<'static>) -> Result<(), String> {
    let copy = |kind: Kind, ipa: u64| {
        let Some(item) = pack.find(kind, p.id) else {
            return Ok(());
        };
        // Validation guarantees the whole range is inside the partition's memory.
        let Some(pa) = p.ipa_to_pa(ipa) else {
            return Err(format!(
                "{}: {} address {ipa:#x} is not in its memory",
                p.path,
                kind.name()
            ));
        };
        // SAFETY: `pa` is host RAM of this partition (validated, mapped at EL2 as
        // read/write), disjoint from Ferry and the pack.
        let dst = unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, item.data.len()) };
        dst.copy_from_slice(item.data);
        ferry_boot::cache::clean_range(pa, item.data.len() as u64);
        Ok(())
    };
    copy(Kind::Image, p.load_address)?;
    copy(Kind::GuestDtb, p.dtb_address)?;
    if let Some(size) = pack.find(Kind::Initrd, p.id).map(|i| i.data.len() as u64) {
        copy(Kind::Initrd, p.initrd_address_for(size))?;
    }
    Ok(())
}

/// Zeroes the RAM disk of every blk device backend `p` serves and copies its
/// `disk-image` (packed under the file's base name) to the disk's start.
pub fn load_disks(
    p: &PartitionConfig,
    cfg: &ferry_config::Config,
    pack: &Pack<'static>,
) -> Result<(), String> {
    for d in cfg.virtio.iter().filter(|d| d.backend == p.id) {
        let Some(disk) = d.disk else { continue };
        // Validation guarantees the disk lies in one of the backend's regions.
        let Some(pa) = p.ipa_to_pa(disk.base) else {
            return Err(format!(
                "{}: disk [{:#x}, +{:#x}) is not in the backend's memory",
                d.path, disk.base, disk.size
            ));
        };
        let image =
            match d.disk_image.as_deref() {
                Some(name) => Some(disk_item(pack, d).ok_or_else(|| {
                    format!("{}: disk-image \"{name}\" is not in the pack", d.path)
                })?),
                None => None,
            };
        let len = image.map_or(0, |i| i.data.len() as u64);
        if len > disk.size {
            return Err(format!(
                "{}: disk-image is {len} bytes, the disk only {} bytes",
                d.path, disk.size
            ));
        }
        // SAFETY: `pa` is host RAM of the backend partition (validated: inside one of
        // its regions, clear of its image, DTB and initrd), mapped read/write at EL2.
        let head = unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len as usize) };
        if let Some(i) = image {
            head.copy_from_slice(i.data);
        }
        ferry_boot::cache::clean_range(pa, len);
        // SAFETY: the rest of the same disk.
        unsafe { ferry_boot::cache::zero_range(pa + len, disk.size - len) };
        log::info!(
            "{}: RAM disk of {} KiB at {:#x} in '{}' ({len} bytes of disk image)",
            d.path,
            disk.size >> 10,
            disk.base,
            p.label
        );
    }
    Ok(())
}

/// The packed `disk-image` of device `d` (packed for its backend under the file's
/// base name), if it has one and the pack holds it.
pub fn disk_item<'a>(
    pack: &Pack<'a>,
    d: &ferry_config::VirtioDevice,
) -> Option<ferry_abi::pack::Item<'a>> {
    let name = ferry_abi::pack::item_name(d.disk_image.as_deref()?);
    pack.items()
        .find(|i| i.kind == Kind::Disk && i.partition == d.backend && i.name == name)
}
