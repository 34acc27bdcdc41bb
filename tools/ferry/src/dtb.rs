//! A partition's guest device tree (docs/config.md "What the guest sees").
//!
//! ```text
//! / { compatible = "ferry,partition"; model = "Ferry partition <label>";
//!     #address-cells = <2>; #size-cells = <2>; interrupt-parent = <&gic>;
//!     chosen { bootargs; linux,initrd-start; linux,initrd-end; stdout-path; };
//!     memory@<ipa> { device_type = "memory"; reg = <ipa size>; };   one per region
//!     cpus { cpu@N { device_type = "cpu"; compatible = "arm,armv8"; reg = <N>;
//!                    enable-method = "psci"; }; };                 one per vCPU
//!     psci { compatible = "arm,psci-1.0", "arm,psci-0.2"; method = "hvc"; };
//!     timer { compatible = "arm,armv8-timer"; interrupts = <PPIs 13 14 11 10>; always-on; };
//!     gic: interrupt-controller@<gicd> { compatible = "arm,gic-v3"; #interrupt-cells = <3>;
//!                    interrupt-controller; reg = <gicd gicr>; phandle; ... };
//!     clk: apb-pclk { compatible = "fixed-clock"; #clock-cells = <0>;      console = "pl011" only
//!                     clock-frequency = <24000000>; clock-output-names = "clk24mhz"; };
//!     pl011@<console> { compatible = "arm,pl011", "arm,primecell"; reg = <console>;
//!                       interrupts = <0 console-spi 4>; clocks = <&clk &clk>;
//!                       clock-names = "uartclk", "apb_pclk"; };
//!     aliases { serial0 = "/pl011@<console>"; };                        console = "pl011" only
//!     <passthrough devices, copied>
//!     virtio_mmio@<window> { compatible = "virtio,mmio"; reg = <window>;  one per virtio device
//!                    interrupts = <0 spi 1>; dma-coherent; interrupt-parent = <&gic>; };  it fronts
//!     ferry-backend { compatible = "ferry,virtio-backend"; request-page = <ioreq-page>;  backend only
//!                    interrupts = <0 ioreq-spi 1>;            with ioreq-spi, or
//!                    poll-interval-ms = <ioreq-poll-ms>;      with ioreq-poll-ms
//!                    #address-cells = <1>; #size-cells = <0>;
//!                    dma-ranges = <ipa pa size>...;           one per memory region of the backend
//!                    net-uplink = <addr spi>;                 with an uplink
//!                    net-uplink-segment = <segment id>;
//!                    device@N { reg = <N>; type = "blk";      one per device it serves; N = its
//!                               frontend-memory = <FE ipa, size, BE ipa>;   number on this backend
//!                                   (copy mode: <bounce base, size, bounce base>)
//!                               sharing = "copy";             copy mode only
//!                               loopback;                     a console with the test hook
//!                               disk = <BE ipa size>;         blk with a RAM disk, or
//!                               storage = <addr spi>;         blk with a physical transport
//!                               read-only;                    blk, when read-only
//!                               mac = [6 bytes];              net (the resolved MAC)
//!                               segment = <segment id>; }; }; net: 0, 1, ... in order of
//!                                   first appearance among this backend's net devices
//!     hypervisor { compatible = "ferry,hypervisor"; ferry,console-hypercall = <0x86000001>; };
//! };
//! ```

use anyhow::{Context, Result};
use ferry_abi::hypercall::CONSOLE_WRITE;
use ferry_config::{
    Config, Console, Device, IoreqSignal, Node, PL011_CLOCK_NODE, Partition, Property, Sharing,
    Transport, VirtioDevice, VirtioKind, pl011_node_name,
};

/// GIC interrupt flags of virtio interrupts: edge rising.
pub const VIRTIO_IRQ_FLAGS: u32 = 1;

/// Name of the node of a virtio-mmio window at guest address `base`:
/// `virtio_mmio@<base in hex>`.
pub fn virtio_node_name(base: u64) -> String {
    format!("virtio_mmio@{base:x}")
}

/// Name of the node a backend partition's guest DTB describes its devices in.
pub const BACKEND_NODE: &str = "ferry-backend";
use vm_fdt::FdtWriter;

/// `interrupts` of the architected timer: secure, non-secure, virtual and
/// hypervisor PPIs (13, 14, 11, 10), level-low, all CPUs.
const TIMER_INTERRUPTS: [u32; 12] = [1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08];

/// The largest phandle used by the nodes of `props`/`children` (0 if none).
fn max_phandle(props: &[Property], children: &[Node]) -> u32 {
    let own = props
        .iter()
        .filter(|p| p.name == "phandle" || p.name == "linux,phandle")
        .filter_map(|p| <[u8; 4]>::try_from(p.value.as_slice()).ok())
        .map(u32::from_be_bytes);
    let below = children
        .iter()
        .map(|c| max_phandle(&c.properties, &c.children));
    own.chain(below).max().unwrap_or(0)
}

/// The phandle of the guest GIC: one above every phandle of `p`'s passthrough
/// nodes, so their own phandle references stay valid.
pub fn gic_phandle(p: &Partition) -> u32 {
    let max = p
        .devices
        .iter()
        .map(|d| max_phandle(&d.properties, &d.children))
        .max()
        .unwrap_or(0);
    max.saturating_add(1)
}

/// Frequency of the fixed clock of an emulated PL011 (what QEMU's virt says).
pub const PL011_CLOCK_HZ: u32 = 24_000_000;

/// The guest path of `p`'s emulated PL011 (`console = "pl011"`), if it has one.
pub fn pl011_path(cfg: &Config, p: &Partition) -> Option<String> {
    (p.console == Console::Pl011)
        .then(|| format!("/{}", pl011_node_name(cfg.platform.console.base)))
}

/// The guest's `/chosen/stdout-path`, if any: its emulated PL011, else the first
/// passthrough device whose node name is `serial` or `serial@...`.
pub fn stdout_path(cfg: &Config, p: &Partition) -> Option<String> {
    pl011_path(cfg, p).or_else(|| {
        p.devices
            .iter()
            .find(|d| d.name == "serial" || d.name.starts_with("serial@"))
            .map(|d| format!("/{}", d.name))
    })
}

/// The emulated PL011 of `p` and its clock (phandle `clk`), at the guest root.
fn pl011(w: &mut FdtWriter, cfg: &Config, clk: u32) -> Result<()> {
    let clock = w.begin_node(PL011_CLOCK_NODE)?;
    w.property_string("compatible", "fixed-clock")?;
    w.property_u32("#clock-cells", 0)?;
    w.property_u32("clock-frequency", PL011_CLOCK_HZ)?;
    w.property_string("clock-output-names", "clk24mhz")?;
    w.property_phandle(clk)?;
    w.end_node(clock)?;

    let uart = cfg.platform.console;
    // validate() refuses a PL011 console without console-spi; --no-check packs
    // whatever it can, so say so instead of guessing an SPI.
    let spi = cfg
        .platform
        .console_spi
        .context("console = \"pl011\" needs /platform console-spi")?;
    let node = w.begin_node(&pl011_node_name(uart.base))?;
    w.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )?;
    w.property_array_u64("reg", &[uart.base, uart.size])?;
    w.property_array_u32("interrupts", &[0, spi, 4])?;
    w.property_array_u32("clocks", &[clk, clk])?;
    w.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
    w.end_node(node)?;
    Ok(())
}

/// Writes a copied node: its properties (`interrupt-parent` pointed at the guest
/// GIC) and children.
fn copy_node(
    w: &mut FdtWriter,
    name: &str,
    props: &[Property],
    children: &[Node],
    gic: u32,
) -> Result<()> {
    let node = w.begin_node(name)?;
    for prop in props {
        match prop.name.as_str() {
            "interrupt-parent" => w.property_u32("interrupt-parent", gic)?,
            "phandle" if prop.value.len() == 4 => {
                let v = u32::from_be_bytes(prop.value[..4].try_into()?);
                w.property_phandle(v)?;
            }
            n => w.property(n, &prop.value)?,
        }
    }
    for c in children {
        copy_node(w, &c.name, &c.properties, &c.children, gic)?;
    }
    w.end_node(node)?;
    Ok(())
}

/// Copies passthrough device `d` to the guest root (without Ferry's own `dma`).
fn device(w: &mut FdtWriter, d: &Device, gic: u32) -> Result<()> {
    let props: Vec<Property> = d
        .properties
        .iter()
        .filter(|p| p.name != ferry_config::DMA_PROPERTY)
        .cloned()
        .collect();
    copy_node(w, &d.name, &props, &d.children, gic)
        .with_context(|| format!("{}: cannot copy the node into the guest DTB", d.path))
}

/// Generates `p`'s guest DTB. `initrd_size` is the size of its initrd file, if
/// it has one (the initrd range goes into `/chosen`).
pub fn guest_dtb(cfg: &Config, p: &Partition, initrd_size: Option<u64>) -> Result<Vec<u8>> {
    write(cfg, p, initrd_size).with_context(|| format!("{}: cannot generate the guest DTB", p.path))
}

fn write(cfg: &Config, p: &Partition, initrd_size: Option<u64>) -> Result<Vec<u8>> {
    let gic = gic_phandle(p);
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_string("compatible", "ferry,partition")?;
    w.property_string("model", &format!("Ferry partition {}", p.label))?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("interrupt-parent", gic)?;

    let chosen = w.begin_node("chosen")?;
    if let Some(args) = &p.bootargs {
        w.property_string("bootargs", args)?;
    }
    if let (Some(_), Some(size)) = (&p.initrd, initrd_size) {
        let start = p.initrd_address_for(size);
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", start.saturating_add(size))?;
    }
    if let Some(path) = stdout_path(cfg, p) {
        w.property_string("stdout-path", &path)?;
    }
    w.end_node(chosen)?;

    for r in &p.memory {
        let mem = w.begin_node(&format!("memory@{:x}", r.ipa))?;
        w.property_string("device_type", "memory")?;
        w.property_array_u64("reg", &[r.ipa, r.size])?;
        w.end_node(mem)?;
    }

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for n in 0..p.cpus.len() as u32 {
        let cpu = w.begin_node(&format!("cpu@{n:x}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,armv8")?;
        w.property_u32("reg", n)?;
        w.property_string("enable-method", "psci")?;
        w.end_node(cpu)?;
    }
    w.end_node(cpus)?;

    let psci = w.begin_node("psci")?;
    w.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    w.property_string("method", "hvc")?;
    w.end_node(psci)?;

    let timer = w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    w.property_array_u32("interrupts", &TIMER_INTERRUPTS)?;
    w.property_null("always-on")?;
    w.end_node(timer)?;

    let (gicd, gicr) = (cfg.platform.gicd, cfg.platform.gicr);
    let intc = w.begin_node(&format!("interrupt-controller@{:x}", gicd.base))?;
    w.property_string("compatible", "arm,gic-v3")?;
    w.property_u32("#interrupt-cells", 3)?;
    w.property_null("interrupt-controller")?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_null("ranges")?;
    w.property_array_u64("reg", &[gicd.base, gicd.size, gicr.base, gicr.size])?;
    w.property_phandle(gic)?;
    w.end_node(intc)?;

    if let Some(path) = pl011_path(cfg, p) {
        pl011(&mut w, cfg, gic.saturating_add(1))?;
        let aliases = w.begin_node("aliases")?;
        w.property_string("serial0", &path)?;
        w.end_node(aliases)?;
    }

    for d in &p.devices {
        device(&mut w, d, gic)?;
    }

    virtio(&mut w, cfg, p, gic)?;

    let hyp = w.begin_node("hypervisor")?;
    w.property_string("compatible", "ferry,hypervisor")?;
    w.property_u32("ferry,console-hypercall", CONSOLE_WRITE)?;
    w.end_node(hyp)?;

    w.end_node(root)?;
    Ok(w.finish()?)
}

/// The virtio-mmio windows `p` fronts, and the backend node if it serves devices.
fn virtio(w: &mut FdtWriter, cfg: &Config, p: &Partition, gic: u32) -> Result<()> {
    for d in cfg.frontend_devices(p.id) {
        let node = w.begin_node(&virtio_node_name(d.window.base))?;
        w.property_string("compatible", "virtio,mmio")?;
        w.property_array_u64("reg", &[d.window.base, d.window.size])?;
        w.property_array_u32("interrupts", &[0, d.spi, VIRTIO_IRQ_FLAGS])?;
        w.property_null("dma-coherent")?;
        w.property_u32("interrupt-parent", gic)?;
        w.end_node(node)?;
    }
    let served = cfg.backend_devices(p.id);
    if served.is_empty() {
        return Ok(());
    }
    backend(w, cfg, p, &served)
}

/// `/ferry-backend` of backend `p`, which serves `served` (in backend_index
/// order).
fn backend(w: &mut FdtWriter, cfg: &Config, p: &Partition, served: &[&VirtioDevice]) -> Result<()> {
    // validate() refuses a backend without its page; --no-check packs what it can.
    let q = p
        .ioreq
        .context("a virtio backend needs ioreq-page and ioreq-spi or ioreq-poll-ms")?;
    let node = w.begin_node(BACKEND_NODE)?;
    w.property_string("compatible", "ferry,virtio-backend")?;
    w.property_u64("request-page", q.page)?;
    match q.signal {
        IoreqSignal::Spi(spi) => {
            w.property_array_u32("interrupts", &[0, spi, VIRTIO_IRQ_FLAGS])?;
        }
        IoreqSignal::Poll { interval_ms } => {
            w.property_u32("poll-interval-ms", interval_ms)?;
        }
    }
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    w.property_array_u64("dma-ranges", &dma_ranges(p))?;
    if let Some(u) = &p.net_uplink {
        w.property_array_u32("net-uplink", &transport_cells(u.transport))?;
        w.property_u32("net-uplink-segment", segment_id(cfg, p, &u.segment)?)?;
    }
    // In backend_index order: device@0, device@1, ... (the IOREQ `device` field).
    for d in served {
        let dev = w.begin_node(&format!("device@{:x}", d.backend_index))?;
        w.property_u32("reg", d.backend_index)?;
        w.property_string("type", d.kind.name())?;
        w.property_array_u64("frontend-memory", &frontend_memory(cfg, d)?)?;
        if d.sharing == Sharing::Copy {
            w.property_string("sharing", Sharing::Copy.name())?;
        }
        if d.loopback {
            w.property_null("loopback")?;
        }
        match d.kind {
            VirtioKind::Blk => blk(w, d)?,
            VirtioKind::Net => net(w, cfg, p, d)?,
            VirtioKind::Console | VirtioKind::Rng => {}
        }
        w.end_node(dev)?;
    }
    w.end_node(node)?;
    Ok(())
}

/// A transport's `<address (2 cells) spi (1 cell)>` (`storage`, `net-uplink`).
fn transport_cells(t: Transport) -> [u32; 3] {
    [(t.address >> 32) as u32, t.address as u32, t.spi]
}

/// The id of segment `name` on backend `p`: its position among the segments
/// of `p`'s net devices in order of first appearance
/// ([`Config::segment_id`]).
fn segment_id(cfg: &Config, p: &Partition, name: &str) -> Result<u32> {
    // validate() refuses an uplink segment no net device uses.
    cfg.segment_id(p.id, name).with_context(|| {
        format!("segment \"{name}\" is the segment of no \"net\" device of this backend")
    })
}

/// A net device's own properties in its backend's `device@N`: `mac = [6
/// bytes]` (its `mac`, else the default of its `reg`: always written) and
/// `segment = <id>` (one cell: [`segment_id`]).
fn net(w: &mut FdtWriter, cfg: &Config, p: &Partition, d: &VirtioDevice) -> Result<()> {
    let mac = d.resolved_mac().context("a \"net\" device has a MAC")?;
    w.property("mac", &mac)?;
    let segment = d
        .segment
        .as_deref()
        .with_context(|| format!("{}: a \"net\" device needs segment", d.path))?;
    w.property_u32("segment", segment_id(cfg, p, segment)?)?;
    Ok(())
}

/// A blk device's own properties in its backend's `device@N`: its RAM disk
/// (`disk = <BE ipa size>`, 2 + 2 cells) or its physical transport (`storage =
/// <address spi>`, 2 + 1 cells), and `read-only` when set.
fn blk(w: &mut FdtWriter, d: &VirtioDevice) -> Result<()> {
    if let Some(disk) = d.disk {
        w.property_array_u64("disk", &[disk.base, disk.size])?;
    }
    if let Some(s) = d.storage {
        w.property_array_u32("storage", &transport_cells(s))?;
    }
    if d.read_only {
        w.property_null("read-only")?;
    }
    Ok(())
}

/// The backend's `dma-ranges`: `<guest address, host address, size>` (2 + 2 +
/// 2 cells) for each of its memory regions, in config order, so that it can
/// turn the guest address of a buffer into the host address a passthrough DMA
/// master (a `storage` transport) needs.
pub fn dma_ranges(p: &Partition) -> Vec<u64> {
    p.memory
        .iter()
        .flat_map(|r| [r.ipa, r.pa, r.size])
        .collect()
}

/// A backend device's `frontend-memory = <FE ipa, size, BE ipa>`: where the
/// addresses its virtqueues carry are in the backend. Shared mode: the shared
/// region (`shared-region`, default the frontend's first memory region) at
/// `shared-memory`. Copy mode: the bounce area at itself (`<base size base>`,
/// offset 0: the shadow virtqueues Ferry puts there carry bounce-area addresses,
/// so the same backend serves both modes unchanged).
fn frontend_memory(cfg: &Config, d: &VirtioDevice) -> Result<[u64; 3]> {
    match d.sharing {
        Sharing::Shared => {
            let r = cfg
                .shared_region(d)
                .with_context(|| format!("{}: the frontend has no memory region", d.path))?;
            let at = d
                .shared_memory
                .with_context(|| format!("{}: a \"shared\" device needs shared-memory", d.path))?;
            Ok([r.base, r.size, at])
        }
        Sharing::Copy => {
            let b = d
                .bounce
                .with_context(|| format!("{}: a \"copy\" device needs bounce", d.path))?;
            Ok([b.base, b.size, b.base])
        }
    }
}
