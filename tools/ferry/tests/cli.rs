//! The `ferry` binary end to end: check, pack and dtb on files in a scratch
//! directory (`.dtb` configs built with vm-fdt; `.dts` through `dtc`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use ferry_abi::pack::{Kind, Pack, SYSTEM};

/// `ferry pack` of the fixture's sys.dtb with `extra/` as image directory.
const PACK: [&str; 8] = [
    "pack",
    "sys.dtb",
    "-I",
    "extra",
    "--hypervisor",
    "ferry.img",
    "-o",
    "out.img",
];

fn ferry(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch directory with `sys.dtb` (for `opts`), alpha.bin, beta.bin and,
/// in the `extra/` subdirectory, beta.cpio.
fn setup(name: &str, opts: &Opts) -> PathBuf {
    let dir = scratch(name);
    fs::write(dir.join("sys.dtb"), config_dtb(opts)).unwrap();
    fs::write(dir.join("alpha.bin"), [0x11u8; 100]).unwrap();
    fs::write(dir.join("beta.bin"), [0x22u8; 5000]).unwrap();
    fs::create_dir(dir.join("extra")).unwrap();
    fs::write(dir.join("extra/beta.cpio"), [0x33u8; 300]).unwrap();
    fs::write(dir.join("ferry.img"), fake_hypervisor(0x5000, 0x8000)).unwrap();
    dir
}

#[test]
fn check_ok() {
    let dir = setup("check-ok", &Opts::default());
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(stdout(&o), "sys.dtb: ok (2 partitions)\n");
    assert!(o.status.success());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn check_prints_every_problem() {
    let opts = Opts {
        beta_pa: 0x4840_0000,
        ..Opts::default()
    };
    let dir = setup("check-bad", &opts);
    // Without -I extra, beta.cpio is missing too.
    let o = ferry(&["check", "sys.dtb"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error: /partitions/partition@1: memory: [0x48400000, 0x48c00000) overlaps /partitions/partition@0 memory [0x48000000, 0x48800000)\n\
         error: /partitions/partition@1: initrd: \"beta.cpio\" is missing\n\
         2 problem(s) in sys.dtb\n"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn check_reports_parse_errors() {
    let dir = setup(
        "check-parse",
        &Opts {
            no_platform: true,
            ..Opts::default()
        },
    );
    let o = ferry(&["check", "sys.dtb"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error: /platform: is missing\n1 problem(s) in sys.dtb\n"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn check_compiles_dts_with_dtc() {
    let dir = scratch("check-dts");
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/qemu-virt/two-partitions.dts");
    fs::copy(&example, dir.join("two.dts")).unwrap();
    fs::create_dir(dir.join("images")).unwrap();
    fs::write(dir.join("images/hello.bin"), b"hello").unwrap();
    let o = ferry(&["check", "two.dts", "-I", "images"], &dir);
    assert_eq!(stdout(&o), "two.dts: ok (2 partitions)\n", "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "dtc warned: {}", stderr(&o));

    // A syntax error: dtc's own message is shown.
    fs::write(dir.join("broken.dts"), "/dts-v1/;\n/ { oops }\n").unwrap();
    let o = ferry(&["check", "broken.dts"], &dir);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: dtc failed to compile broken.dts"),
        "{err}"
    );
    assert!(err.contains("syntax error"), "{err}");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn pack_writes_a_bootable_image() {
    let dir = setup("pack", &Opts::default());
    let o = ferry(&PACK, &dir);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = fs::read(dir.join("out.img")).unwrap();
    let image_size = u64::from_le_bytes(out[0x10..0x18].try_into().unwrap());
    assert_eq!(image_size, out.len() as u64);
    let pack = Pack::parse(&out[0x8000..]).unwrap();
    let got: Vec<(Kind, u32, &str)> = pack
        .items()
        .map(|i| (i.kind, i.partition, i.name))
        .collect();
    assert_eq!(
        got,
        [
            (Kind::Config, SYSTEM, "sys.dtb"),
            (Kind::Image, 0, "alpha.bin"),
            (Kind::GuestDtb, 0, "alpha.dtb"),
            (Kind::Image, 1, "beta.bin"),
            (Kind::GuestDtb, 1, "beta.dtb"),
            (Kind::Initrd, 1, "beta.cpio"),
        ]
    );
    assert_eq!(pack.find(Kind::Image, 1).unwrap().data, [0x22u8; 5000]);
    // The guest DTB in the pack is what `ferry dtb` writes.
    let o = ferry(
        &[
            "dtb",
            "sys.dtb",
            "-I",
            "extra",
            "--partition",
            "beta",
            "-o",
            "beta.dtb",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(dir.join("beta.dtb")).unwrap(),
        pack.find(Kind::GuestDtb, 1).unwrap().data
    );
    let summary = stdout(&o);
    assert!(
        summary.starts_with("beta.dtb: guest DTB of /partitions/partition@1"),
        "{summary}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn pack_refuses_a_bad_config_unless_no_check() {
    let dir = setup("pack-bad", &Opts::default());
    fs::remove_file(dir.join("beta.bin")).unwrap();
    let args = PACK;
    let o = ferry(&args, &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error: /partitions/partition@1: image: \"beta.bin\" is missing\n1 problem(s) in sys.dtb\n"
    );
    assert!(!dir.join("out.img").exists());

    let o = ferry(&[&args[..], &["--no-check"]].concat(), &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(
        "warning: (not checked) /partitions/partition@1: image: \"beta.bin\" is missing"
    ));
    let out = fs::read(dir.join("out.img")).unwrap();
    let pack = Pack::parse(&out[0x8000..]).unwrap();
    assert!(pack.find(Kind::Image, 1).is_none());
    assert!(pack.find(Kind::GuestDtb, 1).is_some());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn pack_no_check_packs_an_unparseable_config_alone() {
    let dir = setup(
        "pack-unparsed",
        &Opts {
            no_platform: true,
            ..Opts::default()
        },
    );
    let args = [
        "pack",
        "sys.dtb",
        "--hypervisor",
        "ferry.img",
        "-o",
        "out.img",
        "--no-check",
    ];
    let o = ferry(&args, &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = fs::read(dir.join("out.img")).unwrap();
    let pack = Pack::parse(&out[0x8000..]).unwrap();
    assert_eq!(pack.items().count(), 1);
    assert_eq!(
        pack.find(Kind::Config, SYSTEM).unwrap().data,
        config_dtb(&Opts {
            no_platform: true,
            ..Opts::default()
        })
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn pack_checks_ferrys_footprint() {
    // /hypervisor memory ends at 0x40208000: the image alone (text_offset 0x200000,
    // image_size 0x8000) fits, image + pack does not.
    let opts = Opts {
        hypervisor: (0x4000_0000, 0x20_8000),
        ..Opts::default()
    };
    let dir = setup("pack-footprint", &opts);
    let args = PACK;
    let o = ferry(&args, &dir);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: /hypervisor: memory: Ferry occupies [0x40200000, 0x40210000)"),
        "{err}"
    );
    assert!(
        err.contains("outside the declared [0x40000000, 0x40208000)"),
        "{err}"
    );
    let o = ferry(&[&args[..], &["--no-check"]].concat(), &dir);
    assert!(o.status.success());
    assert!(stderr(&o).contains("warning: /hypervisor: memory: Ferry occupies"));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn dtb_of_an_unknown_partition() {
    let dir = setup("dtb-unknown", &Opts::default());
    let o = ferry(
        &["dtb", "sys.dtb", "--partition", "gamma", "-o", "g.dtb"],
        &dir,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: no partition labelled \"gamma\" (labels: \"alpha\", \"beta\")\n"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn check_and_pack_refuse_a_disk_image_larger_than_its_disk() {
    let opts = Opts {
        virtio: true,
        ..Opts::default()
    };
    let dir = setup("check-disk-size", &opts);
    fs::write(
        dir.join("disk.img"),
        vec![0x44u8; DISK[1] as usize + 0x1000],
    )
    .unwrap();
    let msg = "error: /virtio/device@1: disk-image: \"disk.img\" (0x101000 bytes) is larger than disk [0x40400000, 0x40500000) (0x100000 bytes)\n1 problem(s) in sys.dtb\n";
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), msg);
    let args = PACK;
    let o = ferry(&args, &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), msg);
    assert!(!dir.join("out.img").exists());
    // A disk image that fits is packed for the backend.
    fs::write(dir.join("disk.img"), vec![0x44u8; DISK[1] as usize]).unwrap();
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(stdout(&o), "sys.dtb: ok (2 partitions)\n");
    let o = ferry(&args, &dir);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = fs::read(dir.join("out.img")).unwrap();
    let pack = Pack::parse(&out[0x8000..]).unwrap();
    assert_eq!(pack.find(Kind::Disk, 1).unwrap().data.len() as u64, DISK[1]);
    let _ = fs::remove_dir_all(dir);
}

/// The virtio fixture with the rng in copy mode and the blk confined to 1 MiB
/// of alpha, plus `f`'s edits.
fn sharing_opts(f: impl FnOnce(&mut Opts)) -> Opts {
    let mut o = Opts {
        virtio: true,
        copy: true,
        bounce: Some(BOUNCE),
        shared_region: Some([0x4040_0000, 0x10_0000]),
        ..Opts::default()
    };
    f(&mut o);
    o
}

#[test]
fn check_and_dtb_of_copy_mode_and_a_shared_region() {
    let dir = setup("check-sharing", &sharing_opts(|_| {}));
    fs::write(dir.join("disk.img"), [0x44u8; 512]).unwrap();
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(stdout(&o), "sys.dtb: ok (2 partitions)\n", "{}", stderr(&o));
    let o = ferry(
        &[
            "dtb",
            "sys.dtb",
            "-I",
            "extra",
            "--partition",
            "beta",
            "-o",
            "beta.dtb",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let blob = fs::read(dir.join("beta.dtb")).unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();
    let dev = |n: &str| fdt.find_node(&format!("/ferry-backend/{n}")).unwrap();
    let u64s = |n: &str, p: &str| -> Vec<u64> {
        dev(n)
            .property(p)
            .unwrap()
            .value
            .chunks(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(
        u64s("device@0", "frontend-memory"),
        [BOUNCE[0], BOUNCE[1], BOUNCE[0]]
    );
    assert_eq!(
        dev("device@0").property("sharing").unwrap().as_str(),
        Some("copy")
    );
    assert_eq!(
        u64s("device@1", "frontend-memory"),
        [0x4040_0000, 0x10_0000, 0x8000_0000]
    );
    let o = ferry(&PACK, &dir);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn check_reports_sharing_problems() {
    // Structure: copy mode without bounce but with shared-memory; bounce on a
    // shared device.
    let opts = sharing_opts(|o| {
        o.bounce = None;
        o.device_props = vec![
            (0, "shared-memory", 0x9000_0000u64.to_be_bytes().to_vec()),
            (
                1,
                "bounce",
                [0x4070_0000u64, 0x1_0000]
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect(),
            ),
        ];
    });
    let dir = setup("check-sharing-structure", &opts);
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error: /virtio/device@0: bounce: is missing (a \"copy\" device needs its bounce area in the backend's memory)\n\
         error: /virtio/device@0: shared-memory: is only for sharing \"shared\" (this device is \"copy\": the backend gets no mapping of frontend memory)\n\
         error: /virtio/device@1: bounce: is only for sharing \"copy\" (this device is \"shared\")\n\
         3 problem(s) in sys.dtb\n"
    );
    let _ = fs::remove_dir_all(dir);
    // Rules: a bounce area too small and over the blk's disk; a shared region
    // outside alpha's memory.
    let opts = sharing_opts(|o| {
        o.bounce = Some([0x404f_f000, 0x2000]);
        o.shared_region = Some([0x4080_0000, 0x10_0000]);
    });
    let dir = setup("check-sharing-rules", &opts);
    fs::write(dir.join("disk.img"), [0x44u8; 512]).unwrap();
    let o = ferry(&["check", "sys.dtb", "-I", "extra"], &dir);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error: /virtio/device@0: bounce: [0x404ff000, 0x40501000) is smaller than 0x10000 bytes (64 KiB: the shadow virtqueues and the buffers in flight)\n\
         error: /virtio/device@1: shared-region: [0x40800000, 0x40900000) is not inside one guest memory region of the frontend \"alpha\" (/partitions/partition@0)\n\
         error: /virtio/device@1: disk: [0x40400000, 0x40500000) overlaps /virtio/device@0 bounce [0x404ff000, 0x40501000)\n\
         3 problem(s) in sys.dtb\n"
    );
    let o = ferry(&PACK, &dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("out.img").exists());
    let _ = fs::remove_dir_all(dir);
}

/// The repository's `tests/` directory.
fn repo_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// The `.dts` files of `dir`, sorted.
fn dts_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dts"))
        .collect();
    v.sort();
    v
}

/// `ferry check` problems of config `path`, with a 64 KiB stand-in in `images`
/// for every file it names (image, initrd, disk-image).
fn check_with_stand_ins(path: &Path, images: &Path) -> Result<(), Vec<String>> {
    let loaded = ferry_tool::load::load(path, &[images.to_path_buf()])
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    let cfg = loaded
        .parse()
        .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let names = cfg
        .partitions
        .iter()
        .flat_map(|p| [Some(&p.image), p.initrd.as_ref()])
        .chain(cfg.virtio.iter().map(|d| d.disk_image.as_ref()))
        .flatten();
    for name in names {
        let f = images.join(name);
        if !f.exists() {
            fs::write(f, vec![0u8; 0x1_0000]).unwrap();
        }
    }
    ferry_tool::load::check(&loaded)
        .map(|_| ())
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn the_repositorys_test_configs_check() {
    let images = scratch("repo-configs");
    let tests = repo_tests();
    let good: Vec<PathBuf> = [tests.join("partitions"), tests.join("linux")]
        .iter()
        .flat_map(|d| dts_files(d))
        .collect();
    assert!(good.len() > 20, "{good:?}");
    for path in &good {
        assert_eq!(
            check_with_stand_ins(path, &images),
            Ok(()),
            "{}",
            path.display()
        );
    }
    // The bad configs about backends and blk disks (the others are judged by
    // tests/scenarios.toml with the real images).
    let bad = [
        (
            "ioreq-spi-and-poll.dts",
            "/partitions/partition@1: ioreq-poll-ms: cannot be given with ioreq-spi (a backend is signalled by its doorbell SPI or polls its request page, not both)",
        ),
        (
            "deadline-below-poll.dts",
            "/virtio/device@0: deadline-ms: <60> is less than twice ioreq-poll-ms <50> of \"be\" (/partitions/partition@1): every access may time out before the backend looks at its request page (give at least <100>)",
        ),
        (
            "disk-overlaps-dtb.dts",
            "/virtio/device@0: disk: [0x40780000, 0x40800000) overlaps /partitions/partition@1 guest DTB [0x407f0000, 0x40800000)",
        ),
        (
            "storage-and-disk.dts",
            "/virtio/device@0: storage: cannot be given with disk (a \"blk\" device serves either a RAM disk, disk, or a physical virtio-blk transport, storage)",
        ),
        (
            "storage-not-in-backend.dts",
            "/virtio/device@0: storage: [0xa003e00, 0xa004000) is not inside the reg of a passthrough device of the backend \"be\" (/partitions/partition@1); it is in /partitions/partition@0/passthrough/virtio-transports@a003000 reg [0xa003000, 0xa004000), a device of /partitions/partition@0: the backend must own the transport",
        ),
        (
            "storage-wrong-spi.dts",
            "/virtio/device@0: storage: SPI 16 is not an interrupt of /partitions/partition@1/passthrough/virtio-transports@a003000 (its SPIs: 40, 41, 42, 43, 44, 45, 46, 47)",
        ),
    ];
    for (name, msg) in bad {
        let path = tests.join("partitions/bad").join(name);
        assert_eq!(
            check_with_stand_ins(&path, &images),
            Err(vec![msg.to_string()]),
            "{name}"
        );
    }
    let _ = fs::remove_dir_all(images);
}

/// The shape of a config whose backend owns the real disk (issue 13): the Linux
/// frontend of tests/linux/linux.dtsi and a backend "be" that owns the page of
/// QEMU virt's virtio-mmio transports (0x0a003000..0x0a004000, SPIs 40..47) and
/// serves Linux a blk device from the first `-device virtio-blk-device`
/// (0x0a003e00, SPI 47); Linux's window is at 0x0a000000 with virtual SPI 16.
const BACKEND_OWNS_THE_DISK: &str = r#"/dts-v1/;
/include/ "linux.dtsi"

/ {
	partitions {
		partition@1 {
			reg = <1>;
			label = "be";
			cpus = <3>;
			memory = <0x0 0x40000000  0x0 0x48000000  0x0 0x00800000>;
			image = "ferry-backend.bin";
			load-address = <0x0 0x40000000>;
			ioreq-page = <0x0 0x0b000000>;
			ioreq-spi = <100>;
			passthrough {
				#address-cells = <2>;
				#size-cells = <2>;
				virtio-transports@a003000 {
					compatible = "virtio,mmio";
					reg = <0x0 0x0a003000 0x0 0x1000>;
					interrupts = <0 40 1>, <0 41 1>, <0 42 1>, <0 43 1>,
						     <0 44 1>, <0 45 1>, <0 46 1>, <0 47 1>;
					dma = "unconfined";
					dma-coherent;
				};
			};
		};
	};

	virtio {
		#address-cells = <1>;
		#size-cells = <0>;
		device@0 {
			reg = <0>;
			type = "blk";
			frontend = "linux";
			backend = "be";
			window = <0x0 0x0a000000 0x0 0x200>;
			spi = <16>;
			shared-memory = <0x0 0x80000000>;
			storage = <0x0 0x0a003e00 47>;
			read-only;
			deadline-ms = <2000>;
		};
	};

	exit-policy {
		wait-for = "linux";
		watchdog-ms = <150000>;
	};
};
"#;

#[test]
fn check_dtb_and_pack_of_a_backend_that_owns_the_real_disk() {
    let dir = scratch("backend-owns-the-disk");
    fs::write(dir.join("real-disk.dts"), BACKEND_OWNS_THE_DISK).unwrap();
    for f in [
        "vmlinuz-cloud-arm64",
        "initramfs.cpio.gz",
        "ferry-backend.bin",
    ] {
        fs::write(dir.join(f), [0x5au8; 0x1000]).unwrap();
    }
    fs::write(dir.join("ferry.img"), fake_hypervisor(0x5000, 0x8000)).unwrap();
    let linux = repo_tests().join("linux");
    let linux = linux.to_str().unwrap();
    let o = ferry(&["check", "real-disk.dts", "-I", linux], &dir);
    assert_eq!(
        stdout(&o),
        "real-disk.dts: ok (2 partitions)\n",
        "{}",
        stderr(&o)
    );
    let args = [
        "dtb",
        "real-disk.dts",
        "-I",
        linux,
        "--partition",
        "be",
        "-o",
        "be.dtb",
    ];
    let o = ferry(&args, &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let blob = fs::read(dir.join("be.dtb")).unwrap();
    let fdt = fdt::Fdt::new(&blob).unwrap();
    let cells = |node: &str, p: &str| -> Vec<u32> {
        fdt.find_node(node)
            .unwrap()
            .property(p)
            .unwrap_or_else(|| panic!("{node} has no {p}"))
            .value
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(
        cells("/ferry-backend/device@0", "storage"),
        [0, 0x0a00_3e00, 47]
    );
    assert_eq!(cells("/ferry-backend/device@0", "read-only"), [0u32; 0]);
    assert_eq!(
        cells("/ferry-backend", "dma-ranges"),
        [0, 0x4000_0000, 0, 0x4800_0000, 0, 0x80_0000]
    );
    let dev = fdt.find_node("/ferry-backend/device@0").unwrap();
    assert!(dev.property("disk").is_none());
    assert_eq!(
        cells("/virtio-transports@a003000", "interrupts").len(),
        8 * 3
    );
    let o = ferry(
        &[
            "pack",
            "real-disk.dts",
            "-I",
            linux,
            "--hypervisor",
            "ferry.img",
            "-o",
            "out.img",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = fs::read(dir.join("out.img")).unwrap();
    let pack = Pack::parse(&out[0x8000..]).unwrap();
    assert!(pack.find(Kind::Disk, 1).is_none(), "no RAM disk image");
    let _ = fs::remove_dir_all(dir);
}
