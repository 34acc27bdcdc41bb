//! The packed image: the hypervisor Image zero-padded to its `image_size`, the
//! pack behind it, and the header's `image_size` patched to cover both
//! (docs/pack.md).

use anyhow::{Result, ensure};
use ferry_abi::pack::{self, Kind, Payload, SYSTEM};
use ferry_config::{Config, Region};

/// Offset of `text_offset` in the arm64 Image header.
pub const TEXT_OFFSET_AT: usize = 0x08;
/// Offset of `image_size` in the arm64 Image header.
pub const IMAGE_SIZE_AT: usize = 0x10;
/// Offset of the magic in the arm64 Image header.
pub const MAGIC_AT: usize = 0x38;
/// The arm64 Image magic, `ARM\x64`.
pub const MAGIC: [u8; 4] = *b"ARM\x64";
/// Size of the arm64 Image header.
pub const HEADER_SIZE: usize = 64;

/// What `ferry pack` needs from the hypervisor's arm64 Image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// `text_offset`: where the loader puts the image, from the 2 MiB-aligned
    /// base of RAM.
    pub text_offset: u64,
    /// `image_size`: bytes the image occupies in memory, `.bss` included; a
    /// multiple of 4096 for Ferry. The pack goes at this offset.
    pub image_size: u64,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl ImageHeader {
    /// Reads and checks the header of hypervisor image `img`: the arm64 magic at
    /// 0x38, `image_size` a non-zero multiple of 4096 and no smaller than the file.
    pub fn read(img: &[u8]) -> Result<ImageHeader> {
        ensure!(
            img.len() >= HEADER_SIZE,
            "the hypervisor image is {} bytes, shorter than an arm64 Image header",
            img.len()
        );
        ensure!(
            img[MAGIC_AT..MAGIC_AT + 4] == MAGIC,
            "the hypervisor image has no arm64 Image magic \"ARM\\x64\" at 0x38"
        );
        let h = ImageHeader {
            text_offset: le64(img, TEXT_OFFSET_AT),
            image_size: le64(img, IMAGE_SIZE_AT),
        };
        ensure!(
            h.image_size != 0 && h.image_size.is_multiple_of(pack::ALIGN),
            "the hypervisor image's image_size {:#x} is not a non-zero multiple of 4096",
            h.image_size
        );
        ensure!(
            img.len() as u64 <= h.image_size,
            "the hypervisor image file ({:#x} bytes) is longer than its image_size {:#x}",
            img.len(),
            h.image_size
        );
        Ok(h)
    }
}

/// An owned payload for the pack.
#[derive(Clone, Debug)]
pub struct Item {
    /// What it is.
    pub kind: Kind,
    /// Its partition's id, or [`SYSTEM`].
    pub partition: u32,
    /// Its name (file name) in the pack.
    pub name: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The packed image and where its parts are.
#[derive(Clone, Debug)]
pub struct Packed {
    /// The whole output file.
    pub bytes: Vec<u8>,
    /// The hypervisor's header as read (before patching).
    pub header: ImageHeader,
    /// Offset of the pack in the file (the original `image_size`).
    pub pack_offset: u64,
    /// Size of the pack.
    pub pack_size: u64,
}

impl Packed {
    /// The patched `image_size`: hypervisor image plus pack.
    pub fn image_size(&self) -> u64 {
        self.pack_offset + self.pack_size
    }

    /// Ferry's footprint in memory once loaded for `cfg`: from the first
    /// platform memory region's base plus `text_offset`, the patched `image_size`
    /// bytes (the loader's 2 MiB-aligned base is the start of RAM).
    pub fn footprint(&self, cfg: &Config) -> Option<Region> {
        let ram = cfg.platform.memory.first()?;
        Some(Region::new(
            ram.base.checked_add(self.header.text_offset)?,
            self.image_size(),
        ))
    }
}

/// Builds the packed image from hypervisor image `hv` and `items`: `hv`
/// zero-padded to its `image_size`, the pack, and `image_size` (0x10) patched to
/// cover both.
pub fn build(hv: &[u8], items: &[Item]) -> Result<Packed> {
    let header = ImageHeader::read(hv)?;
    let payloads: Vec<Payload<'_>> = items
        .iter()
        .map(|i| Payload {
            kind: i.kind,
            partition: i.partition,
            name: &i.name,
            data: &i.data,
        })
        .collect();
    let pack_size = pack::packed_size(&payloads);
    let pack_offset = header.image_size;
    let total = usize::try_from(pack_offset + pack_size)?;
    let mut bytes = vec![0u8; total];
    bytes[..hv.len()].copy_from_slice(hv);
    let written = pack::write(&mut bytes[pack_offset as usize..], &payloads)
        .map_err(|e| anyhow::anyhow!("cannot write the pack: {e}"))?;
    debug_assert_eq!(written as u64, pack_size);
    bytes[IMAGE_SIZE_AT..IMAGE_SIZE_AT + 8]
        .copy_from_slice(&(pack_offset + pack_size).to_le_bytes());
    Ok(Packed {
        bytes,
        header,
        pack_offset,
        pack_size,
    })
}

/// The pack entry for the config DTB.
pub fn config_item(name: &str, dtb: &[u8]) -> Item {
    Item {
        kind: Kind::Config,
        partition: SYSTEM,
        name: name.into(),
        data: dtb.to_vec(),
    }
}
