//! Pack layout: padding, pack offset, `image_size` patching, the footprint, and
//! refused hypervisor images; payload assembly.

mod common;

use common::*;
use ferry_abi::pack::{Kind, Pack, SYSTEM};
use ferry_config::Region;
use ferry_tool::pack::{ImageHeader, Item, build};

fn items() -> Vec<Item> {
    vec![
        Item {
            kind: Kind::Config,
            partition: SYSTEM,
            name: "sys.dtb".into(),
            data: vec![1; 100],
        },
        Item {
            kind: Kind::Image,
            partition: 0,
            name: "a.bin".into(),
            data: vec![2; 5000],
        },
        Item {
            kind: Kind::GuestDtb,
            partition: 0,
            name: "a.dtb".into(),
            data: vec![3; 10],
        },
    ]
}

#[test]
fn image_is_padded_then_packed_then_patched() {
    let hv = fake_hypervisor(0x1234, 0x3000);
    let packed = build(&hv, &items()).unwrap();
    let b = &packed.bytes;
    assert_eq!(
        packed.header,
        ImageHeader {
            text_offset: 0x20_0000,
            image_size: 0x3000
        }
    );
    assert_eq!(packed.pack_offset, 0x3000);
    // Header + table in the first page, then 3 payloads of one, two and one pages.
    assert_eq!(packed.pack_size, 0x1000 + 0x1000 + 0x2000 + 0x1000);
    assert_eq!(b.len() as u64, 0x3000 + packed.pack_size);
    assert_eq!(packed.image_size(), b.len() as u64);
    // The image, unchanged but for image_size at 0x10.
    assert_eq!(b[..0x10], hv[..0x10]);
    assert_eq!(
        u64::from_le_bytes(b[0x10..0x18].try_into().unwrap()),
        b.len() as u64
    );
    assert_eq!(b[0x18..0x1234], hv[0x18..]);
    // Zero padding up to the old image_size (the .bss).
    assert!(b[0x1234..0x3000].iter().all(|&x| x == 0));
    // The pack, at the old image_size.
    assert_eq!(&b[0x3000..0x3008], b"FERRYPK\0");
    let pack = Pack::parse(&b[0x3000..]).unwrap();
    let got: Vec<(Kind, u32, &str, usize)> = pack
        .items()
        .map(|i| (i.kind, i.partition, i.name, i.data.len()))
        .collect();
    assert_eq!(
        got,
        [
            (Kind::Config, SYSTEM, "sys.dtb", 100),
            (Kind::Image, 0, "a.bin", 5000),
            (Kind::GuestDtb, 0, "a.dtb", 10)
        ]
    );
    assert_eq!(pack.bytes().len() as u64, packed.pack_size);
}

#[test]
fn footprint_starts_at_ram_base_plus_text_offset() {
    let cfg = config();
    let packed = build(&fake_hypervisor(0x1000, 0x10_0000), &items()).unwrap();
    let fp = packed.footprint(&cfg).unwrap();
    assert_eq!(fp, Region::new(0x4020_0000, 0x10_0000 + packed.pack_size));
}

#[test]
fn image_of_exactly_image_size() {
    let packed = build(&fake_hypervisor(0x2000, 0x2000), &items()).unwrap();
    assert_eq!(packed.pack_offset, 0x2000);
    assert!(Pack::parse(&packed.bytes[0x2000..]).is_ok());
}

#[test]
fn bad_hypervisor_images_are_refused() {
    let msg = |img: &[u8]| format!("{:#}", build(img, &items()).unwrap_err());
    assert!(msg(&[0u8; 10]).contains("shorter than an arm64 Image header"));
    let mut no_magic = fake_hypervisor(0x1000, 0x2000);
    no_magic[0x38] = b'X';
    assert!(msg(&no_magic).contains("no arm64 Image magic"));
    assert!(msg(&fake_hypervisor(0x1000, 0x2001)).contains("not a non-zero multiple of 4096"));
    assert!(msg(&fake_hypervisor(0x1000, 0)).contains("not a non-zero multiple of 4096"));
    assert!(msg(&fake_hypervisor(0x3000, 0x2000)).contains("longer than its image_size"));
}

#[test]
fn payloads_in_order_with_missing_files_only_when_lenient() {
    let dir = scratch("assemble");
    let cfg_path = dir.join("sys.dtb");
    std::fs::write(&cfg_path, config_dtb(&Opts::default())).unwrap();
    std::fs::write(dir.join("alpha.bin"), [1u8; 7]).unwrap();
    std::fs::write(dir.join("beta.cpio"), [3u8; 9]).unwrap();
    let loaded = ferry_tool::load::load(&cfg_path, &[]).unwrap();
    let cfg = loaded.parse().unwrap();
    let mut warnings = vec![];
    let err = ferry_tool::assemble::items(&loaded, Some(&cfg), false, &mut warnings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/partitions/partition@1: image: \"beta.bin\" is missing"
    );

    let got = ferry_tool::assemble::items(&loaded, Some(&cfg), true, &mut warnings).unwrap();
    assert_eq!(
        warnings,
        ["/partitions/partition@1: image: \"beta.bin\" is missing: not packed"]
    );
    let kinds: Vec<(Kind, u32, &str)> = got
        .iter()
        .map(|i| (i.kind, i.partition, i.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Config, SYSTEM, "sys.dtb"),
            (Kind::Image, 0, "alpha.bin"),
            (Kind::GuestDtb, 0, "alpha.dtb"),
            (Kind::GuestDtb, 1, "beta.dtb"),
            (Kind::Initrd, 1, "beta.cpio"),
        ]
    );
    assert_eq!(got[0].data, loaded.dtb, "the config as compiled");
    let _ = std::fs::remove_dir_all(dir);
}

/// A scratch directory `name` with the virtio fixture config (sys.dtb) and its
/// partitions' images (no disk image), loaded.
fn virtio_fixture(name: &str) -> (std::path::PathBuf, ferry_tool::load::Loaded) {
    let dir = scratch(name);
    let cfg_path = dir.join("sys.dtb");
    let opts = Opts {
        virtio: true,
        ..Opts::default()
    };
    std::fs::write(&cfg_path, config_dtb(&opts)).unwrap();
    for (name, len) in [("alpha.bin", 7), ("beta.bin", 8), ("beta.cpio", 9)] {
        std::fs::write(dir.join(name), vec![1u8; len]).unwrap();
    }
    let loaded = ferry_tool::load::load(&cfg_path, &[]).unwrap();
    (dir, loaded)
}

#[test]
fn blk_disk_images_are_packed_for_the_backend() {
    let (dir, loaded) = virtio_fixture("assemble-disk");
    let cfg = loaded.parse().unwrap();
    let mut warnings = vec![];
    let err = ferry_tool::assemble::items(&loaded, Some(&cfg), false, &mut warnings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/virtio/device@1: disk-image: \"disk.img\" is missing"
    );
    let got = ferry_tool::assemble::items(&loaded, Some(&cfg), true, &mut warnings).unwrap();
    assert_eq!(
        warnings,
        ["/virtio/device@1: disk-image: \"disk.img\" is missing: not packed"]
    );
    assert!(got.iter().all(|i| i.kind != Kind::Disk));

    std::fs::write(dir.join("disk.img"), [7u8; 4096]).unwrap();
    let got = ferry_tool::assemble::items(&loaded, Some(&cfg), false, &mut warnings).unwrap();
    let kinds: Vec<(Kind, u32, &str)> = got
        .iter()
        .map(|i| (i.kind, i.partition, i.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Config, SYSTEM, "sys.dtb"),
            (Kind::Image, 0, "alpha.bin"),
            (Kind::GuestDtb, 0, "alpha.dtb"),
            (Kind::Image, 1, "beta.bin"),
            (Kind::GuestDtb, 1, "beta.dtb"),
            (Kind::Initrd, 1, "beta.cpio"),
            (Kind::Disk, 1, "disk.img"),
        ]
    );
    assert_eq!(got[6].data, [7u8; 4096]);
    assert_eq!(Kind::from_u32(5), Some(Kind::Disk));
    assert_eq!(Kind::Disk.name(), "disk image");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_disk_image_larger_than_its_disk_is_refused() {
    let (dir, loaded) = virtio_fixture("assemble-disk-size");
    let cfg = loaded.parse().unwrap();
    let mut warnings = vec![];
    // Exactly the disk's size fits.
    std::fs::write(dir.join("disk.img"), vec![7u8; DISK[1] as usize]).unwrap();
    let got = ferry_tool::assemble::items(&loaded, Some(&cfg), false, &mut warnings).unwrap();
    assert_eq!(got.last().unwrap().data.len() as u64, DISK[1]);
    assert!(warnings.is_empty());
    // One byte more does not, unless lenient (then it is packed anyway).
    std::fs::write(dir.join("disk.img"), vec![7u8; DISK[1] as usize + 1]).unwrap();
    let msg = "/virtio/device@1: disk-image: \"disk.img\" (0x100001 bytes) is larger than disk [0x40400000, 0x40500000) (0x100000 bytes)";
    let err = ferry_tool::assemble::items(&loaded, Some(&cfg), false, &mut warnings).unwrap_err();
    assert_eq!(err.to_string(), msg);
    let got = ferry_tool::assemble::items(&loaded, Some(&cfg), true, &mut warnings).unwrap();
    assert_eq!(warnings, [msg]);
    assert_eq!(got.last().unwrap().kind, Kind::Disk);
    // validate() says the same, knowing the file's size (`ferry check`).
    let problems: Vec<String> = ferry_config::validate(&cfg, &loaded)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems, [msg]);
    let _ = std::fs::remove_dir_all(dir);
}
