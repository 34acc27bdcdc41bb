//! Fixtures for the tool's tests: a config DTB built with vm-fdt, a fake
//! hypervisor image, scratch directories.
#![allow(dead_code)]

use std::path::PathBuf;

use vm_fdt::FdtWriter;

/// Knobs for [`config_dtb`].
#[derive(Clone)]
pub struct Opts {
    /// `/hypervisor` memory (base, size).
    pub hypervisor: (u64, u64),
    /// Host address of partition 1's memory.
    pub beta_pa: u64,
    /// Leave `/platform` out (the config then does not parse).
    pub no_platform: bool,
    /// Give beta an emulated PL011 console (`console = "pl011"`, `/platform`
    /// `console-spi = <1>`).
    pub beta_pl011: bool,
    /// Make beta a virtio backend (request page 0x0b000000, SPI 100) serving
    /// alpha an rng (device 0, window 0x0a003e00, SPI 47) and a blk with
    /// `disk = <0x40400000 0x100000>` and `disk-image = "disk.img"` (device 1,
    /// window 0x0a003c00, SPI 46), both mapping alpha's memory at beta's
    /// 0x80000000.
    pub virtio: bool,
    /// With `virtio`: beta polls its request page every this many ms
    /// (`ioreq-poll-ms`) instead of having `ioreq-spi`.
    pub poll_ms: Option<u32>,
    /// With `virtio`: the rng (device 0) in copy mode (`sharing = "copy"`,
    /// no `shared-memory`; its `bounce` is [`Opts::bounce`]).
    pub copy: bool,
    /// With `virtio`: device 0's `bounce`, whatever its mode ([`BOUNCE`] for a
    /// good copy-mode device).
    pub bounce: Option<[u64; 2]>,
    /// With `virtio`: the blk's (device 1) `shared-region`: the range of alpha
    /// beta sees at its `shared-memory`.
    pub shared_region: Option<[u64; 2]>,
    /// With `virtio`: more properties, as (device, name, value).
    pub device_props: Vec<(u32, &'static str, Vec<u8>)>,
    /// With `virtio`: the blk (device 1) serves the physical transport
    /// [`STORAGE`] instead of a RAM disk (no `disk`, no `disk-image`), which
    /// beta owns: its passthrough `virtio-transports@a003000` (QEMU virt's
    /// transports, [0x0a003000, 0x0a004000), SPIs 40..47, `dma = "unconfined"`).
    /// The devices' frontend SPIs become 16 (rng) and 17 (blk), clear of them.
    pub storage: bool,
}

/// The blk device's `storage` with [`Opts::storage`]: the transport QEMU virt
/// gives its first `-device virtio-blk-device`, and its SPI.
pub const STORAGE: (u64, u32) = (0x0a00_3e00, 47);

/// A copy-mode device's `bounce` area: 64 KiB at beta's 0x40600000.
pub const BOUNCE: [u64; 2] = [0x4060_0000, 0x1_0000];

/// The blk device's `disk` with [`Opts::virtio`]: 1 MiB at beta's 0x40400000.
pub const DISK: [u64; 2] = [0x4040_0000, 0x10_0000];

impl Default for Opts {
    fn default() -> Self {
        Self {
            hypervisor: (0x4000_0000, 0x200_0000),
            beta_pa: 0x4900_0000,
            no_platform: false,
            beta_pl011: false,
            virtio: false,
            poll_ms: None,
            copy: false,
            bounce: None,
            shared_region: None,
            device_props: Vec::new(),
            storage: false,
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A config: "alpha" (id 0, CPU 1, alpha.bin, a passthrough UART with a clock
/// node, bootargs) and "beta" (id 1, CPUs 2 and 3, beta.bin, beta.cpio).
pub fn config_dtb(o: &Opts) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "ferry,config-v1").unwrap();
    w.property_string("model", "tool test").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    if !o.no_platform {
        let n = w.begin_node("platform").unwrap();
        w.property_string("board", "qemu-virt").unwrap();
        w.property_array_u64("memory", &[0x4000_0000, 0x4000_0000])
            .unwrap();
        w.property_u32("cpus", 4).unwrap();
        w.property_array_u64("gic-distributor", &[0x0800_0000, 0x1_0000])
            .unwrap();
        w.property_array_u64("gic-redistributors", &[0x080a_0000, 0xf6_0000])
            .unwrap();
        w.property_array_u64("console", &[0x0900_0000, 0x1000])
            .unwrap();
        if o.beta_pl011 {
            w.property_u32("console-spi", 1).unwrap();
        }
        w.end_node(n).unwrap();
    }
    let n = w.begin_node("hypervisor").unwrap();
    w.property_array_u64("memory", &[o.hypervisor.0, o.hypervisor.1])
        .unwrap();
    w.end_node(n).unwrap();

    let parts = w.begin_node("partitions").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();

    let p = w.begin_node("partition@0").unwrap();
    w.property_u32("reg", 0).unwrap();
    w.property_string("label", "alpha").unwrap();
    w.property_array_u32("cpus", &[1]).unwrap();
    w.property_array_u64("memory", &[0x4000_0000, 0x4800_0000, 0x80_0000])
        .unwrap();
    w.property_string("image", "alpha.bin").unwrap();
    w.property_array_u64("load-address", &[0x4000_0000])
        .unwrap();
    w.property_string("bootargs", "console=ttyAMA0 earlycon")
        .unwrap();
    let pt = w.begin_node("passthrough").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let clk = w.begin_node("apb-pclk").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("clock-frequency", 24_000_000).unwrap();
    w.property_phandle(7).unwrap();
    w.end_node(clk).unwrap();
    let uart = w.begin_node("serial@9040000").unwrap();
    w.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))
        .unwrap();
    w.property_array_u64("reg", &[0x0904_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 8, 4]).unwrap();
    w.property_u32("interrupt-parent", 0x55).unwrap();
    w.property_u32("clocks", 7).unwrap();
    w.property_string("clock-names", "apb_pclk").unwrap();
    w.end_node(uart).unwrap();
    w.end_node(pt).unwrap();
    w.end_node(p).unwrap();

    let p = w.begin_node("partition@1").unwrap();
    w.property_u32("reg", 1).unwrap();
    w.property_string("label", "beta").unwrap();
    w.property_array_u32("cpus", &[2, 3]).unwrap();
    w.property_array_u64("memory", &[0x4000_0000, o.beta_pa, 0x80_0000])
        .unwrap();
    w.property_string("image", "beta.bin").unwrap();
    w.property_array_u64("load-address", &[0x4000_0000])
        .unwrap();
    w.property_string("initrd", "beta.cpio").unwrap();
    if o.beta_pl011 {
        w.property_string("console", "pl011").unwrap();
    }
    if o.virtio {
        w.property_u64("ioreq-page", 0x0b00_0000).unwrap();
        match o.poll_ms {
            Some(ms) => w.property_u32("ioreq-poll-ms", ms).unwrap(),
            None => w.property_u32("ioreq-spi", 100).unwrap(),
        }
    }
    if o.virtio && o.storage {
        transports(&mut w);
    }
    w.end_node(p).unwrap();
    w.end_node(parts).unwrap();

    if o.virtio {
        let v = w.begin_node("virtio").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let spis = if o.storage { [16, 17] } else { [47, 46] };
        for (i, kind, window, spi) in [
            (0, "rng", 0x0a00_3e00, spis[0]),
            (1, "blk", 0x0a00_3c00, spis[1]),
        ] {
            let d = w.begin_node(&format!("device@{i}")).unwrap();
            w.property_u32("reg", i).unwrap();
            w.property_string("type", kind).unwrap();
            w.property_string("frontend", "alpha").unwrap();
            w.property_string("backend", "beta").unwrap();
            w.property_array_u64("window", &[window, 0x200]).unwrap();
            w.property_u32("spi", spi).unwrap();
            if i == 0 && o.copy {
                w.property_string("sharing", "copy").unwrap();
            } else {
                w.property_string("sharing", "shared").unwrap();
                w.property_u64("shared-memory", 0x8000_0000).unwrap();
            }
            if let (0, Some(b)) = (i, o.bounce) {
                w.property_array_u64("bounce", &b).unwrap();
            }
            if let (1, Some(r)) = (i, o.shared_region) {
                w.property_array_u64("shared-region", &r).unwrap();
            }
            if kind == "blk" && o.storage {
                let (address, spi) = STORAGE;
                let storage = [(address >> 32) as u32, address as u32, spi];
                w.property_array_u32("storage", &storage).unwrap();
            } else if kind == "blk" {
                w.property_array_u64("disk", &DISK).unwrap();
                w.property_string("disk-image", "disk.img").unwrap();
            }
            for (_, name, v) in o.device_props.iter().filter(|(d, _, _)| *d == i) {
                w.property(name, v).unwrap();
            }
            w.end_node(d).unwrap();
        }
        w.end_node(v).unwrap();
    }

    let e = w.begin_node("exit-policy").unwrap();
    w.property_string_list("wait-for", strings(&["alpha", "beta"]))
        .unwrap();
    w.end_node(e).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// Beta's passthrough node with [`Opts::storage`]: QEMU virt's virtio-mmio
/// transports, a DMA master accepted unconfined.
fn transports(w: &mut FdtWriter) {
    let pt = w.begin_node("passthrough").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let t = w.begin_node("virtio-transports@a003000").unwrap();
    w.property_string("compatible", "virtio,mmio").unwrap();
    w.property_array_u64("reg", &[0x0a00_3000, 0x1000]).unwrap();
    let spis: Vec<u32> = (40..48).flat_map(|n| [0, n, 1]).collect();
    w.property_array_u32("interrupts", &spis).unwrap();
    w.property_string("dma", "unconfined").unwrap();
    w.property_null("dma-coherent").unwrap();
    w.end_node(t).unwrap();
    w.end_node(pt).unwrap();
}

/// The parsed default config.
pub fn config() -> ferry_config::Config {
    ferry_config::parse(&config_dtb(&Opts::default())).unwrap()
}

/// A fake hypervisor Image: `len` bytes of 0xa5 with an arm64 header
/// (text_offset 0x200000, image_size `image_size`, magic at 0x38).
pub fn fake_hypervisor(len: usize, image_size: u64) -> Vec<u8> {
    let mut img = vec![0xa5u8; len];
    img[..64].fill(0);
    img[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    img[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
    img[16..24].copy_from_slice(&image_size.to_le_bytes());
    img[24..32].copy_from_slice(&2u64.to_le_bytes());
    img[0x38..0x3c].copy_from_slice(b"ARM\x64");
    img
}

/// A fresh scratch directory for test `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-tool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
