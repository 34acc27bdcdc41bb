//! Guest DTB generation: the produced DTB parsed back with `fdt`.

mod common;

use common::*;
use fdt::Fdt;
use fdt::node::FdtNode;
use ferry_tool::dtb::{
    BACKEND_NODE, gic_phandle, guest_dtb, pl011_path, stdout_path, virtio_node_name,
};

fn be32(v: &[u8]) -> Vec<u32> {
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn prop<'a>(n: &FdtNode<'_, 'a>, name: &str) -> &'a [u8] {
    n.property(name)
        .unwrap_or_else(|| panic!("{} has no {name}", n.name))
        .value
}

fn child<'b, 'a>(n: &FdtNode<'b, 'a>, name: &str) -> FdtNode<'b, 'a> {
    n.children()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn alpha_sees_its_machine() {
    let cfg = config();
    let p = &cfg.partitions[0];
    let blob = guest_dtb(&cfg, p, None).unwrap();
    assert!(blob.len() as u64 <= ferry_config::MAX_GUEST_DTB);
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let gic = gic_phandle(p);
    assert_eq!(gic, 8, "one above the clock's phandle 7");
    assert_eq!(be32(prop(&root, "#address-cells")), [2]);
    assert_eq!(be32(prop(&root, "#size-cells")), [2]);
    assert_eq!(be32(prop(&root, "interrupt-parent")), [gic]);
    assert_eq!(prop(&root, "compatible"), b"ferry,partition\0");

    let names: Vec<&str> = root.children().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "chosen",
            "memory@40000000",
            "cpus",
            "psci",
            "timer",
            "interrupt-controller@8000000",
            "apb-pclk",
            "serial@9040000",
            "hypervisor"
        ]
    );

    let mem = child(&root, "memory@40000000");
    assert_eq!(prop(&mem, "device_type"), b"memory\0");
    assert_eq!(be32(prop(&mem, "reg")), [0, 0x4000_0000, 0, 0x80_0000]);

    let cpus = child(&root, "cpus");
    assert_eq!(be32(prop(&cpus, "#address-cells")), [1]);
    assert_eq!(be32(prop(&cpus, "#size-cells")), [0]);
    let cpu: Vec<FdtNode> = cpus.children().collect();
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].name, "cpu@0");
    assert_eq!(be32(prop(&cpu[0], "reg")), [0]);
    assert_eq!(prop(&cpu[0], "device_type"), b"cpu\0");
    assert_eq!(prop(&cpu[0], "compatible"), b"arm,armv8\0");
    assert_eq!(prop(&cpu[0], "enable-method"), b"psci\0");

    let psci = child(&root, "psci");
    assert_eq!(prop(&psci, "compatible"), b"arm,psci-1.0\0arm,psci-0.2\0");
    assert_eq!(prop(&psci, "method"), b"hvc\0");

    let timer = child(&root, "timer");
    assert_eq!(prop(&timer, "compatible"), b"arm,armv8-timer\0");
    assert_eq!(
        be32(prop(&timer, "interrupts")),
        [1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08]
    );
    assert!(prop(&timer, "always-on").is_empty());

    let intc = child(&root, "interrupt-controller@8000000");
    assert_eq!(prop(&intc, "compatible"), b"arm,gic-v3\0");
    assert_eq!(be32(prop(&intc, "#interrupt-cells")), [3]);
    assert!(prop(&intc, "interrupt-controller").is_empty());
    assert_eq!(
        be32(prop(&intc, "reg")),
        [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0xf6_0000]
    );
    assert_eq!(be32(prop(&intc, "phandle")), [gic]);

    // Passthrough nodes: copied with every property, interrupt-parent fixed.
    let uart = child(&root, "serial@9040000");
    assert_eq!(prop(&uart, "compatible"), b"arm,pl011\0arm,primecell\0");
    assert_eq!(be32(prop(&uart, "reg")), [0, 0x0904_0000, 0, 0x1000]);
    assert_eq!(be32(prop(&uart, "interrupts")), [0, 8, 4]);
    assert_eq!(be32(prop(&uart, "interrupt-parent")), [gic]);
    assert_eq!(be32(prop(&uart, "clocks")), [7]);
    assert_eq!(prop(&uart, "clock-names"), b"apb_pclk\0");
    let clk = child(&root, "apb-pclk");
    assert_eq!(be32(prop(&clk, "phandle")), [7]);
    assert_eq!(be32(prop(&clk, "clock-frequency")), [24_000_000]);

    let chosen = child(&root, "chosen");
    assert_eq!(prop(&chosen, "bootargs"), b"console=ttyAMA0 earlycon\0");
    assert_eq!(prop(&chosen, "stdout-path"), b"/serial@9040000\0");
    assert!(chosen.property("linux,initrd-start").is_none());
    assert_eq!(stdout_path(&cfg, p).as_deref(), Some("/serial@9040000"));

    let hyp = child(&root, "hypervisor");
    assert_eq!(prop(&hyp, "compatible"), b"ferry,hypervisor\0");
    assert_eq!(be32(prop(&hyp, "ferry,console-hypercall")), [0x8600_0001]);
}

#[test]
fn beta_gets_its_initrd_and_vcpus() {
    let cfg = config();
    let p = &cfg.partitions[1];
    assert_eq!(gic_phandle(p), 1);
    let blob = guest_dtb(&cfg, p, Some(0x1_0000)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let chosen = child(&root, "chosen");
    assert!(chosen.property("bootargs").is_none());
    assert!(chosen.property("stdout-path").is_none());
    // Default placement: just below the guest DTB at 0x407f0000.
    let start = u64::from_be_bytes(prop(&chosen, "linux,initrd-start").try_into().unwrap());
    let end = u64::from_be_bytes(prop(&chosen, "linux,initrd-end").try_into().unwrap());
    assert_eq!((start, end), (0x407e_0000, 0x407f_0000));
    let cpus: Vec<(String, Vec<u32>)> = child(&root, "cpus")
        .children()
        .map(|c| (c.name.to_string(), be32(prop(&c, "reg"))))
        .collect();
    assert_eq!(cpus, [("cpu@0".into(), vec![0]), ("cpu@1".into(), vec![1])]);
    assert!(root.children().all(|c| !c.name.starts_with("serial")));
}

/// The config with beta's console an emulated PL011.
fn pl011_config() -> ferry_config::Config {
    let o = Opts {
        beta_pl011: true,
        ..Opts::default()
    };
    ferry_config::parse(&config_dtb(&o)).unwrap()
}

#[test]
fn pl011_console_gets_uart_clock_alias_and_stdout() {
    let cfg = pl011_config();
    let p = &cfg.partitions[1];
    assert_eq!(pl011_path(&cfg, p).as_deref(), Some("/pl011@9000000"));
    assert_eq!(pl011_path(&cfg, &cfg.partitions[0]), None);
    let blob = guest_dtb(&cfg, p, Some(0x1_0000)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let gic = gic_phandle(p);
    assert_eq!(gic, 1);

    let names: Vec<&str> = root.children().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "chosen",
            "memory@40000000",
            "cpus",
            "psci",
            "timer",
            "interrupt-controller@8000000",
            "apb-pclk",
            "pl011@9000000",
            "aliases",
            "hypervisor"
        ]
    );

    let clk = child(&root, "apb-pclk");
    assert_eq!(prop(&clk, "compatible"), b"fixed-clock\0");
    assert_eq!(be32(prop(&clk, "#clock-cells")), [0]);
    assert_eq!(be32(prop(&clk, "clock-frequency")), [24_000_000]);
    assert_eq!(prop(&clk, "clock-output-names"), b"clk24mhz\0");
    let clk_phandle = be32(prop(&clk, "phandle"));
    assert_eq!(clk_phandle, [gic + 1], "phandles stay unique");

    let uart = child(&root, "pl011@9000000");
    assert_eq!(prop(&uart, "compatible"), b"arm,pl011\0arm,primecell\0");
    assert_eq!(be32(prop(&uart, "reg")), [0, 0x0900_0000, 0, 0x1000]);
    assert_eq!(be32(prop(&uart, "interrupts")), [0, 1, 4]);
    assert_eq!(be32(prop(&uart, "clocks")), [gic + 1, gic + 1]);
    assert_eq!(prop(&uart, "clock-names"), b"uartclk\0apb_pclk\0");
    // The GIC is the root's interrupt-parent: the UART needs none of its own.
    assert!(uart.property("interrupt-parent").is_none());
    assert_eq!(be32(prop(&root, "interrupt-parent")), [gic]);

    let chosen = child(&root, "chosen");
    assert_eq!(prop(&chosen, "stdout-path"), b"/pl011@9000000\0");
    assert_eq!(stdout_path(&cfg, p).as_deref(), Some("/pl011@9000000"));
    assert_eq!(
        prop(&child(&root, "aliases"), "serial0"),
        b"/pl011@9000000\0"
    );

    // fdt resolves the alias and stdout-path to the node.
    assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@9000000");
    assert_eq!(
        fdt.find_node("serial0").map(|n| n.name),
        Some("pl011@9000000")
    );

    // alpha keeps the hypercall console: no emulated UART, no aliases.
    let blob = guest_dtb(&cfg, &cfg.partitions[0], None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    assert!(
        root.children()
            .all(|c| c.name != "aliases" && !c.name.starts_with("pl011"))
    );
}

#[test]
fn pl011_console_without_console_spi_is_an_error() {
    // validate() refuses it; the generator (ferry pack --no-check) says why too.
    let mut cfg = pl011_config();
    cfg.platform.console_spi = None;
    let e = guest_dtb(&cfg, &cfg.partitions[1], None).unwrap_err();
    assert!(
        format!("{e:#}").contains("needs /platform console-spi"),
        "{e:#}"
    );
}

/// Decompiles `blob` with dtc and fails on any dtc warning (e.g. a node it finds
/// malformed). dtc is a build dependency (`make deps`).
fn dtc_accepts(name: &str, blob: &[u8]) {
    let dir = scratch(name);
    let f = dir.join(format!("{name}.dtb"));
    std::fs::write(&f, blob).unwrap();
    let out = std::process::Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-o", "/dev/null"])
        .arg(&f)
        .output()
        .expect("dtc (device-tree-compiler) is needed: make deps");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "dtc warns: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dtb_is_accepted_by_dtc_when_present() {
    let cfg = config();
    dtc_accepts("alpha", &guest_dtb(&cfg, &cfg.partitions[0], None).unwrap());
    let cfg = pl011_config();
    dtc_accepts(
        "beta-pl011",
        &guest_dtb(&cfg, &cfg.partitions[1], Some(0x1000)).unwrap(),
    );
}

fn virtio_config() -> ferry_config::Config {
    virtio_config_with(None)
}

/// The virtio config, beta polling every `poll_ms` ms if set.
fn virtio_config_with(poll_ms: Option<u32>) -> ferry_config::Config {
    let opts = Opts {
        virtio: true,
        poll_ms,
        ..Opts::default()
    };
    let cfg = ferry_config::parse(&config_dtb(&opts)).unwrap();
    assert_eq!(cfg.virtio.len(), 2);
    cfg
}

#[test]
fn frontend_sees_its_virtio_mmio_windows() {
    let cfg = virtio_config();
    let p = &cfg.partitions[0];
    let blob = guest_dtb(&cfg, p, None).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let gic = gic_phandle(p);
    let names: Vec<&str> = root.children().map(|c| c.name).collect();
    assert_eq!(
        &names[names.len() - 3..],
        ["virtio_mmio@a003e00", "virtio_mmio@a003c00", "hypervisor"]
    );
    assert!(!names.contains(&"ferry-backend"));
    for (name, base, spi) in [
        ("virtio_mmio@a003e00", 0x0a00_3e00, 47),
        ("virtio_mmio@a003c00", 0x0a00_3c00, 46),
    ] {
        let n = child(&root, name);
        assert_eq!(prop(&n, "compatible"), b"virtio,mmio\0");
        assert_eq!(be32(prop(&n, "reg")), [0, base, 0, 0x200]);
        assert_eq!(be32(prop(&n, "interrupts")), [0, spi, 1]);
        assert!(prop(&n, "dma-coherent").is_empty());
        assert_eq!(be32(prop(&n, "interrupt-parent")), [gic]);
    }
    assert_eq!(virtio_node_name(0x0a00_3e00), "virtio_mmio@a003e00");
}

#[test]
fn backend_sees_its_request_page_and_devices() {
    let cfg = virtio_config();
    let p = &cfg.partitions[1];
    let blob = guest_dtb(&cfg, p, Some(9)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let names: Vec<&str> = root.children().map(|c| c.name).collect();
    assert!(!names.iter().any(|n| n.starts_with("virtio_mmio")));
    let be = child(&root, BACKEND_NODE);
    assert_eq!(prop(&be, "compatible"), b"ferry,virtio-backend\0");
    assert_eq!(be32(prop(&be, "request-page")), [0, 0x0b00_0000]);
    assert_eq!(be32(prop(&be, "interrupts")), [0, 100, 1]);
    assert_eq!(be32(prop(&be, "#address-cells")), [1]);
    assert_eq!(be32(prop(&be, "#size-cells")), [0]);
    let devs: Vec<FdtNode> = be.children().collect();
    let names: Vec<&str> = devs.iter().map(|d| d.name).collect();
    assert_eq!(names, ["device@0", "device@1"]);
    for (d, (index, kind)) in devs.iter().zip([(0, "rng"), (1, "blk")]) {
        assert_eq!(be32(prop(d, "reg")), [index]);
        assert_eq!(prop(d, "type"), format!("{kind}\0").as_bytes());
        assert_eq!(
            be32(prop(d, "frontend-memory")),
            [0, 0x4000_0000, 0, 0x80_0000, 0, 0x8000_0000]
        );
    }
    // The blk device's RAM disk, 2 + 2 cells; the rng has none.
    assert!(devs[0].property("disk").is_none());
    assert_eq!(
        be32(prop(&devs[1], "disk")),
        [0, DISK[0] as u32, 0, DISK[1] as u32]
    );
    assert!(be.property("poll-interval-ms").is_none());
    dtc_accepts("beta-backend", &blob);
}

#[test]
fn a_loopback_console_is_marked_in_the_backend_node() {
    let mut cfg = virtio_config();
    cfg.virtio[0].kind = ferry_config::VirtioKind::Console;
    let devices = |cfg: &ferry_config::Config| {
        let blob = guest_dtb(cfg, &cfg.partitions[1], None).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.all_nodes().next().unwrap();
        let be = child(&root, BACKEND_NODE);
        let flags: Vec<(String, bool)> = be
            .children()
            .map(|d| {
                let kind = String::from_utf8_lossy(prop(&d, "type")).into_owned();
                (kind, d.property("loopback").is_some())
            })
            .collect();
        (flags, blob.clone())
    };
    let (flags, _) = devices(&cfg);
    assert_eq!(
        flags,
        [
            ("console\0".to_string(), false),
            ("blk\0".to_string(), false)
        ],
        "a real console: no loopback"
    );
    cfg.virtio[0].loopback = true;
    let (flags, blob) = devices(&cfg);
    assert_eq!(
        flags,
        [
            ("console\0".to_string(), true),
            ("blk\0".to_string(), false)
        ]
    );
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let d0 = child(&child(&root, BACKEND_NODE), "device@0");
    assert!(
        prop(&d0, "loopback").is_empty(),
        "an empty (boolean) property"
    );
    dtc_accepts("beta-loopback", &blob);
}

#[test]
fn polling_backend_gets_its_interval_and_no_interrupt() {
    let cfg = virtio_config_with(Some(5));
    let q = cfg.partitions[1].ioreq.unwrap();
    assert_eq!(q.signal, ferry_config::IoreqSignal::Poll { interval_ms: 5 });
    let blob = guest_dtb(&cfg, &cfg.partitions[1], Some(9)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let be = child(&root, BACKEND_NODE);
    assert_eq!(be32(prop(&be, "request-page")), [0, 0x0b00_0000]);
    assert_eq!(be32(prop(&be, "poll-interval-ms")), [5]);
    assert!(be.property("interrupts").is_none());
    let names: Vec<&str> = be.children().map(|d| d.name).collect();
    assert_eq!(names, ["device@0", "device@1"]);
    // The frontend's view does not change.
    let fe = guest_dtb(&cfg, &cfg.partitions[0], None).unwrap();
    assert_eq!(
        fe,
        guest_dtb(&virtio_config(), &cfg.partitions[0], None).unwrap()
    );
    dtc_accepts("beta-polling", &blob);
}

#[test]
fn backend_devices_are_numbered_on_their_backend() {
    // Device 0 (rng) moves to alpha as its backend (beta fronts it): beta then
    // serves only device 1 (blk), its device 0.
    let mut cfg = virtio_config();
    cfg.partitions[0].ioreq = Some(ferry_config::IoreqPage {
        page: 0x0c00_0000,
        signal: ferry_config::IoreqSignal::Spi(101),
        first_seq: 1,
        restart: None,
    });
    cfg.virtio[0].frontend = 1;
    cfg.virtio[0].backend = 0;
    cfg.virtio[1].backend_index = 0;
    let blob = guest_dtb(&cfg, &cfg.partitions[1], Some(9)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let be = child(&root, BACKEND_NODE);
    let devs: Vec<FdtNode> = be.children().collect();
    let names: Vec<&str> = devs.iter().map(|d| d.name).collect();
    assert_eq!(names, ["device@0"]);
    assert_eq!(be32(prop(&devs[0], "reg")), [0]);
    assert_eq!(prop(&devs[0], "type"), b"blk\0");
    // Parsed from a config, the numbering is the same.
    let dtb = config_dtb(&Opts {
        virtio: true,
        ..Opts::default()
    });
    let parsed = ferry_config::parse(&dtb).unwrap();
    assert_eq!(
        parsed
            .virtio
            .iter()
            .map(|d| d.backend_index)
            .collect::<Vec<_>>(),
        [0, 1]
    );
}

#[test]
fn backend_without_request_page_is_an_error() {
    let mut cfg = virtio_config();
    cfg.partitions[1].ioreq = None;
    let err = guest_dtb(&cfg, &cfg.partitions[1], None).unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("a virtio backend needs ioreq-page and ioreq-spi or ioreq-poll-ms"),
        "{err:#}"
    );
}

/// The virtio config with the rng (device 0) in copy mode (bounce area
/// [`BOUNCE`]) and the blk (device 1) showing beta only 1 MiB of alpha, at
/// alpha's 0x40400000.
fn sharing_config() -> ferry_config::Config {
    let opts = Opts {
        virtio: true,
        copy: true,
        bounce: Some(BOUNCE),
        shared_region: Some([0x4040_0000, 0x10_0000]),
        ..Opts::default()
    };
    let cfg = ferry_config::parse(&config_dtb(&opts)).unwrap();
    assert!(ferry_config::validate(&cfg, &Sizes).is_empty());
    cfg
}

/// Every image 0x1000 bytes.
struct Sizes;

impl ferry_config::Images for Sizes {
    fn image_size(&self, _: &ferry_config::Partition) -> Option<u64> {
        Some(0x1000)
    }
    fn initrd_size(&self, _: &ferry_config::Partition) -> Option<u64> {
        Some(0x1000)
    }
}

#[test]
fn backend_sees_the_bounce_area_of_a_copy_device_and_the_shared_region() {
    let cfg = sharing_config();
    let blob = guest_dtb(&cfg, &cfg.partitions[1], Some(9)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.all_nodes().next().unwrap();
    let be = child(&root, BACKEND_NODE);
    let devs: Vec<FdtNode> = be.children().collect();
    assert_eq!(devs.len(), 2);
    // Copy mode: the bounce area at itself (offset 0), and `sharing`.
    let [base, size] = BOUNCE.map(|v| v as u32);
    assert_eq!(
        be32(prop(&devs[0], "frontend-memory")),
        [0, base, 0, size, 0, base]
    );
    assert_eq!(prop(&devs[0], "sharing"), b"copy\0");
    // Shared mode confined: the shared region at shared-memory; no `sharing`.
    assert_eq!(
        be32(prop(&devs[1], "frontend-memory")),
        [0, 0x4040_0000, 0, 0x10_0000, 0, 0x8000_0000]
    );
    assert!(devs[1].property("sharing").is_none());
    assert_eq!(
        be32(prop(&devs[1], "disk")),
        [0, DISK[0] as u32, 0, DISK[1] as u32]
    );
    // The default config has no `sharing` property at all.
    let plain = virtio_config();
    let blob2 = guest_dtb(&plain, &plain.partitions[1], Some(9)).unwrap();
    let fdt2 = Fdt::new(&blob2).unwrap();
    assert!(fdt2.all_nodes().all(|n| n.property("sharing").is_none()));
    dtc_accepts("beta-sharing", &blob);
}

#[test]
fn the_frontend_does_not_see_the_sharing_mode() {
    let cfg = sharing_config();
    let plain = virtio_config();
    assert_eq!(
        guest_dtb(&cfg, &cfg.partitions[0], None).unwrap(),
        guest_dtb(&plain, &plain.partitions[0], None).unwrap()
    );
}
