//! The pack: what `ferry pack` puts behind the hypervisor image.
//!
//! ```text
//! file:  [ hypervisor Image, zero-padded to its image_size (.bss included) ]
//!        [ pack: Header | Entry table | payloads, each 4 KiB-aligned        ]
//! ```
//! The pack starts at the image's `__image_end` (page-aligned), where Ferry looks
//! for it; the tool patches the Image header's `image_size` to cover the pack so a
//! loader reserves all of it. Every field is little-endian. The header and the
//! entry table carry CRC-32s, every payload its own CRC-32. See docs/pack.md.

use crate::crc32;

/// The first 8 bytes of a pack.
pub const MAGIC: [u8; 8] = *b"FERRYPK\0";
/// The pack format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Alignment of the pack and of every payload in it.
pub const ALIGN: u64 = 4096;
/// `partition` of entries that belong to the whole system (the config).
pub const SYSTEM: u32 = u32::MAX;
/// Most entries a pack may hold.
pub const MAX_ENTRIES: u32 = 256;

/// The pack header (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// Size of this header: 64.
    pub header_size: u32,
    /// Bytes from the start of the header to the end of the last payload.
    pub total_size: u64,
    /// Entries in the table that follows the header.
    pub entry_count: u32,
    /// Size of one entry: 64.
    pub entry_size: u32,
    /// CRC-32 of the entry table.
    pub entries_crc: u32,
    /// CRC-32 of this header with `header_crc` zero.
    pub header_crc: u32,
    /// Zero.
    pub reserved: [u8; 24],
}

/// One payload (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// What the payload is ([`Kind`]).
    pub kind: u32,
    /// The partition it belongs to (its `reg`), or [`SYSTEM`].
    pub partition: u32,
    /// Offset from the start of the pack; a multiple of [`ALIGN`].
    pub offset: u64,
    /// Payload size in bytes.
    pub size: u64,
    /// CRC-32 of the payload.
    pub crc: u32,
    /// Zero.
    pub reserved: u32,
    /// Where the payload came from (file name), NUL-padded UTF-8, for messages.
    pub name: [u8; 32],
}

const _: () = assert!(core::mem::size_of::<Header>() == 64);
const _: () = assert!(core::mem::size_of::<Entry>() == 64);

/// Payload kinds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The system config (a DTB), partition [`SYSTEM`].
    Config = 1,
    /// A partition's image, copied to its load address.
    Image = 2,
    /// A partition's generated guest DTB.
    GuestDtb = 3,
    /// A partition's initrd.
    Initrd = 4,
    /// A virtio-blk RAM disk (`disk-image` of a `/virtio` device), for its
    /// backend partition; named after the file (its base name).
    Disk = 5,
}

impl Kind {
    /// The kind with this number.
    pub fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Config,
            2 => Kind::Image,
            3 => Kind::GuestDtb,
            4 => Kind::Initrd,
            5 => Kind::Disk,
            _ => return None,
        })
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::Image => "image",
            Kind::GuestDtb => "guest DTB",
            Kind::Initrd => "initrd",
            Kind::Disk => "disk image",
        }
    }
}

/// Why a pack was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackError {
    /// Fewer bytes than the header or than `total_size` says.
    Truncated,
    /// The first 8 bytes are not [`MAGIC`]: no pack here.
    BadMagic,
    /// A version this build does not read.
    Version(u32),
    /// `header_size`, `entry_size` or `entry_count` out of range.
    BadHeader,
    /// The header's CRC-32 does not match.
    HeaderChecksum,
    /// The entry table's CRC-32 does not match.
    EntriesChecksum,
    /// Entry `index` is malformed: unknown kind, misaligned or out-of-bounds
    /// payload, overlap, bad name.
    BadEntry(u32),
    /// Entry `index`'s payload CRC-32 does not match.
    PayloadChecksum(u32),
    /// Two entries with the same kind and partition.
    Duplicate(u32),
    /// The output buffer is too small (writer).
    NoRoom,
}

impl core::fmt::Display for PackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PackError::Truncated => f.write_str("pack is truncated"),
            PackError::BadMagic => {
                f.write_str("no pack found (bad magic): was the image packed with `ferry pack`?")
            }
            PackError::Version(v) => {
                write!(f, "pack format version {v} (this Ferry reads {VERSION})")
            }
            PackError::BadHeader => f.write_str("pack header is malformed"),
            PackError::HeaderChecksum => {
                f.write_str("pack header checksum mismatch (corrupt pack)")
            }
            PackError::EntriesChecksum => {
                f.write_str("pack entry table checksum mismatch (corrupt pack)")
            }
            PackError::BadEntry(i) => write!(f, "pack entry {i} is malformed"),
            PackError::PayloadChecksum(i) => write!(
                f,
                "pack entry {i}: payload checksum mismatch (corrupt pack)"
            ),
            PackError::Duplicate(i) => write!(f, "pack entry {i} duplicates an earlier entry"),
            PackError::NoRoom => f.write_str("output buffer too small for the pack"),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

impl Header {
    /// The 64 bytes of this header.
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&self.magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.header_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.total_size.to_le_bytes());
        b[24..28].copy_from_slice(&self.entry_count.to_le_bytes());
        b[28..32].copy_from_slice(&self.entry_size.to_le_bytes());
        b[32..36].copy_from_slice(&self.entries_crc.to_le_bytes());
        b[36..40].copy_from_slice(&self.header_crc.to_le_bytes());
        b[40..64].copy_from_slice(&self.reserved);
        b
    }

    /// Reads a header from its 64 bytes.
    pub fn decode(b: &[u8; 64]) -> Header {
        let mut magic = [0; 8];
        magic.copy_from_slice(&b[0..8]);
        let mut reserved = [0; 24];
        reserved.copy_from_slice(&b[40..64]);
        Header {
            magic,
            version: u32_at(b, 8),
            header_size: u32_at(b, 12),
            total_size: u64_at(b, 16),
            entry_count: u32_at(b, 24),
            entry_size: u32_at(b, 28),
            entries_crc: u32_at(b, 32),
            header_crc: u32_at(b, 36),
            reserved,
        }
    }

    /// The CRC-32 the header should carry.
    pub fn compute_crc(&self) -> u32 {
        crc32::checksum(
            &Header {
                header_crc: 0,
                ..*self
            }
            .encode(),
        )
    }
}

impl Entry {
    /// The 64 bytes of this entry.
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..8].copy_from_slice(&self.partition.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..28].copy_from_slice(&self.crc.to_le_bytes());
        b[28..32].copy_from_slice(&self.reserved.to_le_bytes());
        b[32..64].copy_from_slice(&self.name);
        b
    }

    /// Reads an entry from its 64 bytes.
    pub fn decode(b: &[u8; 64]) -> Entry {
        let mut name = [0; 32];
        name.copy_from_slice(&b[32..64]);
        Entry {
            kind: u32_at(b, 0),
            partition: u32_at(b, 4),
            offset: u64_at(b, 8),
            size: u64_at(b, 16),
            crc: u32_at(b, 24),
            reserved: u32_at(b, 28),
            name,
        }
    }

    /// The name up to its first NUL, or `None` if it is not UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        let len = self
            .name
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..len]).ok()
    }
}

/// One payload of a verified pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    /// What it is.
    pub kind: Kind,
    /// Whose it is (a partition's `reg`, or [`SYSTEM`]).
    pub partition: u32,
    /// Where it came from.
    pub name: &'a str,
    /// The payload.
    pub data: &'a [u8],
}

/// A verified pack.
#[derive(Clone, Copy, Debug)]
pub struct Pack<'a> {
    bytes: &'a [u8],
    count: u32,
}

const fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Where the first payload may start for `count` entries.
fn payload_start(count: u32) -> u64 {
    align_up(64 + 64 * count as u64)
}

impl<'a> Pack<'a> {
    /// Reads the header at the start of `bytes` (which may extend past the pack)
    /// and returns the pack's total size, checking only magic, version and header
    /// checksum: enough to know how much memory the pack occupies.
    pub fn total_size(bytes: &[u8]) -> Result<u64, PackError> {
        let head: &[u8; 64] = bytes
            .get(..64)
            .and_then(|b| b.try_into().ok())
            .ok_or(PackError::Truncated)?;
        let header = Header::decode(head);
        if header.magic != MAGIC {
            return Err(PackError::BadMagic);
        }
        if header.version != VERSION {
            return Err(PackError::Version(header.version));
        }
        if header.compute_crc() != header.header_crc {
            return Err(PackError::HeaderChecksum);
        }
        Ok(header.total_size)
    }

    /// Verifies the pack at the start of `bytes`: header, entry table, every
    /// payload's bounds, alignment and checksum, no duplicates.
    pub fn parse(bytes: &'a [u8]) -> Result<Pack<'a>, PackError> {
        let total = Pack::total_size(bytes)?;
        let head: &[u8; 64] = bytes[..64].try_into().map_err(|_| PackError::Truncated)?;
        let header = Header::decode(head);
        if header.header_size != 64 || header.entry_size != 64 || header.entry_count > MAX_ENTRIES {
            return Err(PackError::BadHeader);
        }
        let total = usize::try_from(total).map_err(|_| PackError::Truncated)?;
        let bytes = bytes.get(..total).ok_or(PackError::Truncated)?;
        let table_end = 64 + 64 * header.entry_count as usize;
        let table = bytes.get(64..table_end).ok_or(PackError::BadHeader)?;
        if crc32::checksum(table) != header.entries_crc {
            return Err(PackError::EntriesChecksum);
        }
        let pack = Pack {
            bytes,
            count: header.entry_count,
        };
        let mut previous_end = payload_start(header.entry_count);
        for i in 0..header.entry_count {
            let e = pack.entry(i);
            let kind = Kind::from_u32(e.kind).ok_or(PackError::BadEntry(i))?;
            let end = e.offset.checked_add(e.size).ok_or(PackError::BadEntry(i))?;
            // Payloads follow the table in order, aligned, without overlap.
            if !e.offset.is_multiple_of(ALIGN)
                || e.offset < previous_end
                || end > total as u64
                || e.name_str().is_none()
            {
                return Err(PackError::BadEntry(i));
            }
            if (kind == Kind::Config) != (e.partition == SYSTEM) {
                return Err(PackError::BadEntry(i));
            }
            if crc32::checksum(&bytes[e.offset as usize..end as usize]) != e.crc {
                return Err(PackError::PayloadChecksum(i));
            }
            if (0..i).any(|j| {
                let o = pack.entry(j);
                o.kind == e.kind && o.partition == e.partition
            }) {
                return Err(PackError::Duplicate(i));
            }
            previous_end = end;
        }
        Ok(pack)
    }

    fn entry(&self, i: u32) -> Entry {
        let at = 64 + 64 * i as usize;
        Entry::decode(
            self.bytes[at..at + 64]
                .try_into()
                .expect("bounds checked by parse"),
        )
    }

    fn entry_name(&self, i: u32) -> &'a str {
        let at = 64 + 64 * i as usize + 32;
        let raw = &self.bytes[at..at + 32];
        let len = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        core::str::from_utf8(&raw[..len]).expect("checked by parse")
    }

    /// The pack's bytes (header to last payload).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every payload, in table order.
    pub fn items(&self) -> impl Iterator<Item = Item<'a>> + '_ {
        (0..self.count).map(move |i| {
            let e = self.entry(i);
            Item {
                kind: Kind::from_u32(e.kind).expect("checked by parse"),
                partition: e.partition,
                name: self.entry_name(i),
                data: &self.bytes[e.offset as usize..(e.offset + e.size) as usize],
            }
        })
    }

    /// The payload of `kind` for `partition`, if the pack has one.
    pub fn find(&self, kind: Kind, partition: u32) -> Option<Item<'a>> {
        self.items()
            .find(|i| i.kind == kind && i.partition == partition)
    }
}

/// A payload to write.
#[derive(Clone, Copy, Debug)]
pub struct Payload<'a> {
    /// What it is.
    pub kind: Kind,
    /// Whose it is.
    pub partition: u32,
    /// Where it came from (cut to 31 bytes at a character boundary).
    pub name: &'a str,
    /// The bytes.
    pub data: &'a [u8],
}

/// The name a file is packed under: its base name (what follows the last `/`).
/// Ferry finds a device's `disk-image` by it.
pub fn item_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Bytes a pack of `payloads` occupies.
pub fn packed_size(payloads: &[Payload<'_>]) -> u64 {
    let mut at = payload_start(payloads.len() as u32);
    for p in payloads {
        at = align_up(at + p.data.len() as u64);
    }
    at
}

/// Writes a pack of `payloads` into `out` (zero-filled first); returns its size.
pub fn write(out: &mut [u8], payloads: &[Payload<'_>]) -> Result<usize, PackError> {
    let count = u32::try_from(payloads.len())
        .ok()
        .filter(|&c| c <= MAX_ENTRIES)
        .ok_or(PackError::BadHeader)?;
    let total = usize::try_from(packed_size(payloads)).map_err(|_| PackError::NoRoom)?;
    let out = out.get_mut(..total).ok_or(PackError::NoRoom)?;
    out.fill(0);
    let mut at = payload_start(count);
    for (i, p) in payloads.iter().enumerate() {
        let mut name = [0u8; 32];
        let mut len = p.name.len().min(31);
        while !p.name.is_char_boundary(len) {
            len -= 1;
        }
        name[..len].copy_from_slice(&p.name.as_bytes()[..len]);
        let entry = Entry {
            kind: p.kind as u32,
            partition: p.partition,
            offset: at,
            size: p.data.len() as u64,
            crc: crc32::checksum(p.data),
            reserved: 0,
            name,
        };
        out[64 + 64 * i..128 + 64 * i].copy_from_slice(&entry.encode());
        out[at as usize..at as usize + p.data.len()].copy_from_slice(p.data);
        at = align_up(at + p.data.len() as u64);
    }
    let mut header = Header {
        magic: MAGIC,
        version: VERSION,
        header_size: 64,
        total_size: total as u64,
        entry_count: count,
        entry_size: 64,
        entries_crc: crc32::checksum(&out[64..64 + 64 * count as usize]),
        header_crc: 0,
        reserved: [0; 24],
    };
    header.header_crc = header.compute_crc();
    out[..64].copy_from_slice(&header.encode());
    Ok(total)
}

#[cfg(test)]
mod tests {

    #[test]
    fn items_are_named_by_base_name() {
        assert_eq!(item_name("disk.img"), "disk.img");
        assert_eq!(item_name("images/be/disk.img"), "disk.img");
        assert_eq!(item_name("/abs/vbe.bin"), "vbe.bin");
    }

    use super::*;

    fn sample() -> Vec<u8> {
        let payloads = [
            Payload {
                kind: Kind::Config,
                partition: SYSTEM,
                name: "system.dtb",
                data: b"config bytes",
            },
            Payload {
                kind: Kind::Image,
                partition: 0,
                name: "alpha.bin",
                data: &[0xaa; 5000],
            },
            Payload {
                kind: Kind::GuestDtb,
                partition: 0,
                name: "alpha.dtb",
                data: b"dtb",
            },
            Payload {
                kind: Kind::Image,
                partition: 1,
                name: "a-very-long-file-name-that-is-cut-here.bin",
                data: b"",
            },
        ];
        let mut out = vec![0xffu8; packed_size(&payloads) as usize];
        assert_eq!(write(&mut out, &payloads).unwrap(), out.len());
        out
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        assert_eq!(bytes.len() % ALIGN as usize, 0);
        let pack = Pack::parse(&bytes).unwrap();
        let items: Vec<_> = pack.items().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].data, b"config bytes");
        assert_eq!(items[1].data.len(), 5000);
        assert_eq!(pack.find(Kind::GuestDtb, 0).unwrap().name, "alpha.dtb");
        assert_eq!(
            pack.find(Kind::Image, 1).unwrap().name,
            "a-very-long-file-name-that-is-c"
        );
        assert!(pack.find(Kind::Initrd, 0).is_none());
        // Bytes after the pack are ignored.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Pack::parse(&longer).unwrap().bytes().len(), bytes.len());
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let bytes = sample();
        // Flip one bit in every byte of header, table and payloads (padding excluded).
        let pack = Pack::parse(&bytes).unwrap();
        let mut covered: Vec<usize> = (0..64 + 64 * 4).collect();
        for item in pack.items() {
            let start = item.data.as_ptr() as usize - bytes.as_ptr() as usize;
            covered.extend(start..start + item.data.len());
        }
        for i in covered {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Pack::parse(&bad).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn refuses_malformed_packs() {
        let bytes = sample();
        assert_eq!(Pack::parse(&bytes[..40]).unwrap_err(), PackError::Truncated);
        assert_eq!(
            Pack::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
            PackError::Truncated
        );
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Pack::parse(&bad).unwrap_err(), PackError::BadMagic);
        // A forged header with a correct CRC but a wrong version.
        let reheader = |f: &dyn Fn(&mut Header)| {
            let mut b = bytes.clone();
            let mut h = Header::decode(b[..64].try_into().unwrap());
            f(&mut h);
            h.header_crc = h.compute_crc();
            b[..64].copy_from_slice(&h.encode());
            Pack::parse(&b).map(|_| ())
        };
        assert_eq!(reheader(&|h| h.version = 2), Err(PackError::Version(2)));
        assert_eq!(
            reheader(&|h| h.entry_count = MAX_ENTRIES + 1),
            Err(PackError::BadHeader)
        );
        assert_eq!(reheader(&|h| h.entry_size = 32), Err(PackError::BadHeader));
        assert_eq!(
            reheader(&|h| h.total_size = u64::MAX),
            Err(PackError::Truncated)
        );
        // A forged entry with correct CRCs pointing outside the pack.
        let reentry = |i: usize, f: &dyn Fn(&mut Entry)| {
            let mut b = bytes.clone();
            let at = 64 + 64 * i;
            let mut e = Entry::decode(b[at..at + 64].try_into().unwrap());
            f(&mut e);
            b[at..at + 64].copy_from_slice(&e.encode());
            let mut h = Header::decode(b[..64].try_into().unwrap());
            h.entries_crc = crc32::checksum(&b[64..64 + 64 * 4]);
            h.header_crc = h.compute_crc();
            b[..64].copy_from_slice(&h.encode());
            Pack::parse(&b).map(|_| ())
        };
        assert_eq!(reentry(1, &|e| e.offset += 1), Err(PackError::BadEntry(1)));
        assert_eq!(
            reentry(1, &|e| e.size = u64::MAX),
            Err(PackError::BadEntry(1))
        );
        assert_eq!(reentry(1, &|e| e.kind = 99), Err(PackError::BadEntry(1)));
        assert_eq!(
            reentry(0, &|e| e.partition = 0),
            Err(PackError::BadEntry(0))
        );
        assert_eq!(
            reentry(1, &|e| e.name[0] = 0xff),
            Err(PackError::BadEntry(1))
        );
        assert_eq!(reentry(2, &|e| e.offset = 0), Err(PackError::BadEntry(2)));
        assert_eq!(
            reentry(3, &|e| {
                e.kind = 3;
                e.partition = 0
            }),
            Err(PackError::Duplicate(3))
        );
        assert_eq!(write(&mut [0u8; 10], &[]), Err(PackError::NoRoom));
    }
}
