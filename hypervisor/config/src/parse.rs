//! [`parse`]: the config DTB to a [`Config`], with every structural problem reported.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ferry_abi::dtb::{DtbError, MAX_DTB_SIZE, copy_without_nops};

use crate::COMPATIBLE;
use crate::cells::Props;
use crate::error::{ConfigError, Errors};
use crate::model::{
    Config, Console, DEFAULT_DEADLINE_MS, DEFAULT_RESTART_LIMIT, DEFAULT_RESTART_WINDOW_MS, Device,
    ExitPolicy, FaultPolicy, Hypervisor, IoreqPage, IoreqSignal, Partition, Platform,
    RestartPolicy, Sharing, StopCodes, VirtioDevice, VirtioKind,
};
use crate::tree::Node;

mod net;

/// Parses a config DTB.
///
/// The blob is first copied without FDT_NOP tokens and fully validated
/// ([`copy_without_nops`]). Then every node of the schema is read; all
/// structural problems found (missing or malformed properties, wrong cell
/// counts, an unknown `compatible`, unknown nodes or properties, a `wait-for`
/// label no partition has) are returned together, in tree order. Defaults are
/// resolved here (`entry`, `dtb-address`, stop codes), except the initrd address,
/// which needs the initrd's size ([`Partition::initrd_address_for`]).
///
/// Never panics, whatever `dtb` holds.
pub fn parse(dtb: &[u8]) -> Result<Config, Vec<ConfigError>> {
    let blob_error = |m: String| vec![ConfigError::new("config", None, m)];
    // The NOP-free copy is at most the blob plus a 40-byte header, unless its
    // blocks overlap (a forged blob): then copy_without_nops says how much it needs.
    let mut blob = vec![0u8; dtb.len().min(MAX_DTB_SIZE) + 64];
    let len = match copy_without_nops(dtb, &mut blob) {
        Err(DtbError::DstTooSmall { needed, .. }) => {
            blob = vec![0u8; needed];
            copy_without_nops(dtb, &mut blob)
        }
        other => other,
    }
    .map_err(|e| blob_error(format!("{e}")))?;
    blob.truncate(len);
    let fdt = fdt::Fdt::new(&blob)
        .map_err(|e| blob_error(format!("not a readable device tree ({e:?})")))?;
    let root = fdt
        .all_nodes()
        .next()
        .ok_or_else(|| blob_error("device tree has no root node".into()))?;
    let root = Node::read(root, "/".into());
    let mut errs = Errors::default();
    let config = parse_root(&root, &mut errs);
    match config {
        Some(c) if errs.0.is_empty() => Ok(c),
        _ if !errs.0.is_empty() => Err(errs.0),
        _ => Err(blob_error("config could not be read".into())),
    }
}

/// Records "unknown node" for every child of `node` not named in `known`.
fn only_children(node: &Node<'_>, errs: &mut Errors, known: &[&str]) {
    for c in &node.children {
        if !known.contains(&c.name) {
            errs.node(&c.path, "unknown node");
        }
    }
}

/// Checks that `#address-cells`/`#size-cells` of `p` are `want` (absent is an
/// error only when `required`).
fn cells(p: &mut Props<'_, '_, '_>, want: (u32, u32), required: bool) {
    for (name, want) in [("#address-cells", want.0), ("#size-cells", want.1)] {
        let v = if required {
            p.require(name, Props::u32)
        } else {
            p.optional(name, Props::u32).flatten()
        };
        if let Some(found) = v.filter(|&v| v != want) {
            let path = p.node.path.clone();
            p.errs
                .prop(&path, name, format!("must be <{want}> (found <{found}>)"));
        }
    }
}

/// A required child node (records "is missing").
fn child<'n, 'a>(node: &'n Node<'a>, errs: &mut Errors, name: &str) -> Option<&'n Node<'a>> {
    let c = node.child(name);
    if c.is_none() {
        let path = if node.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", node.path)
        };
        errs.node(&path, "is missing");
    }
    c
}

fn parse_root(root: &Node<'_>, errs: &mut Errors) -> Option<Config> {
    let mut p = Props { node: root, errs };
    p.only(&["compatible", "model", "#address-cells", "#size-cells"]);
    if let Some(list) = p.require("compatible", Props::string_list)
        && !list.iter().any(|c| c == COMPATIBLE)
    {
        let found: Vec<String> = list.iter().map(|c| format!("\"{c}\"")).collect();
        let msg = format!(
            "{} is not a Ferry config (expected \"{COMPATIBLE}\")",
            found.join(", ")
        );
        p.errs.prop("/", "compatible", msg);
    }
    let model = p.optional("model", Props::string);
    cells(&mut p, (2, 2), true);
    for c in &root.children {
        let known = [
            "platform",
            "hypervisor",
            "partitions",
            "exit-policy",
            "virtio",
        ];
        let ignored = c.name.starts_with("__") || c.name == "aliases" || c.name == "chosen";
        if !known.contains(&c.name) && !ignored {
            errs.node(&c.path, "unknown node");
        }
    }
    let platform = child(root, errs, "platform").and_then(|n| parse_platform(n, errs));
    let hypervisor = child(root, errs, "hypervisor").and_then(|n| parse_hypervisor(n, errs));
    let partitions_node = child(root, errs, "partitions");
    let partitions = partitions_node.and_then(|n| parse_partitions(n, errs));
    let exit = root
        .child("exit-policy")
        .map(|n| parse_exit(n, errs, partitions_node));
    let virtio = match root.child("virtio") {
        Some(n) => parse_virtio(n, errs, partitions_node),
        None => Some(Vec::new()),
    };
    Some(Config {
        model: model?.unwrap_or_default(),
        platform: platform?,
        hypervisor: hypervisor?,
        partitions: partitions?,
        exit: exit.map_or(Some(None), |e| e.map(Some))?,
        virtio: virtio?,
    })
}

fn parse_platform(n: &Node<'_>, errs: &mut Errors) -> Option<Platform> {
    only_children(n, errs, &[]);
    let mut p = Props { node: n, errs };
    p.only(&[
        "board",
        "memory",
        "cpus",
        "gic-distributor",
        "gic-redistributors",
        "console",
        "console-spi",
    ]);
    let board = p.require("board", Props::string);
    let memory = p.require("memory", Props::regions);
    let cpus = p.require("cpus", Props::u32);
    let gicd = p.require("gic-distributor", Props::region);
    let gicr = p.require("gic-redistributors", Props::region);
    let console = p.require("console", Props::region);
    let console_spi = p.optional("console-spi", Props::u32);
    Some(Platform {
        board: board?,
        memory: memory?,
        cpus: cpus?,
        gicd: gicd?,
        gicr: gicr?,
        console: console?,
        console_spi: console_spi?,
    })
}

fn parse_hypervisor(n: &Node<'_>, errs: &mut Errors) -> Option<Hypervisor> {
    only_children(n, errs, &[]);
    let mut p = Props { node: n, errs };
    p.only(&["memory"]);
    let memory = p.require("memory", Props::region)?;
    Some(Hypervisor { memory })
}

fn parse_partitions(n: &Node<'_>, errs: &mut Errors) -> Option<Vec<Partition>> {
    let mut p = Props { node: n, errs };
    p.only(&["#address-cells", "#size-cells"]);
    cells(&mut p, (1, 0), true);
    let mut out = Some(Vec::new());
    for c in &n.children {
        match parse_partition(c, errs) {
            Some(part) => {
                if let Some(v) = out.as_mut() {
                    v.push(part);
                }
            }
            None => out = None,
        }
    }
    out
}

/// Properties a partition node may have.
const PARTITION_PROPS: [&str; 25] = [
    "reg",
    "label",
    "cpus",
    "memory",
    "image",
    "load-address",
    "entry",
    "bootargs",
    "initrd",
    "initrd-address",
    "dtb-address",
    "system-off-code",
    "system-reset-code",
    "fault-code",
    "console",
    "ioreq-page",
    "ioreq-spi",
    "ioreq-poll-ms",
    "ioreq-first-seq",
    "restart",
    "restart-limit",
    "restart-window-ms",
    "on-fault",
    "net-uplink",
    "net-uplink-segment",
];

fn parse_partition(n: &Node<'_>, errs: &mut Errors) -> Option<Partition> {
    only_children(n, errs, &["passthrough"]);
    let mut p = Props { node: n, errs };
    p.only(&PARTITION_PROPS);
    let id = p.require("reg", Props::u32);
    let label = p.require("label", Props::string);
    let cpus = p.require("cpus", Props::u32_list);
    let memory = p.require("memory", Props::guest_regions);
    let image = p.require("image", Props::string);
    let load_address = p.require("load-address", Props::address);
    let entry = p.optional("entry", Props::address);
    let bootargs = p.optional("bootargs", Props::string);
    let initrd = p.optional("initrd", Props::string);
    let initrd_address = p.optional("initrd-address", Props::address);
    let dtb_address = p.optional("dtb-address", Props::address);
    let system_off = p.optional("system-off-code", Props::u32);
    let system_reset = p.optional("system-reset-code", Props::u32);
    let fault = p.optional("fault-code", Props::u32);
    let console = p.optional("console", console_kind);
    let on_fault = p.optional("on-fault", fault_policy);
    let ioreq_page = p.optional("ioreq-page", Props::address);
    let ioreq_spi = p.optional("ioreq-spi", Props::u32);
    let ioreq_poll = p.optional("ioreq-poll-ms", Props::u32);
    let mut ioreq = ioreq(&mut p, ioreq_page?, ioreq_spi?, ioreq_poll?)?;
    backend_options(&mut p, ioreq.as_mut())?;
    let net_uplink = net::uplink(&mut p, ioreq.is_some())?;
    if n.prop("initrd-address").is_some() && n.prop("initrd").is_none() {
        p.errs
            .prop(&n.path, "initrd-address", "is set but there is no initrd");
    }
    let devices = match n.child("passthrough") {
        Some(pt) => parse_passthrough(pt, errs),
        None => Some(Vec::new()),
    };
    let defaults = StopCodes::default();
    let memory = memory?;
    let load_address = load_address?;
    Some(Partition {
        id: id?,
        path: n.path.clone(),
        label: label?,
        cpus: cpus?,
        image: image?,
        load_address,
        entry: entry?.unwrap_or(load_address),
        bootargs: bootargs?,
        initrd: initrd?,
        initrd_address: initrd_address?,
        dtb_address: dtb_address?.unwrap_or_else(|| Partition::default_dtb_address(&memory)),
        memory,
        devices: devices?,
        console: console?.unwrap_or_default(),
        on_fault: on_fault?.unwrap_or_default(),
        codes: StopCodes {
            system_off: system_off?.unwrap_or(defaults.system_off),
            system_reset: system_reset?.unwrap_or(defaults.system_reset),
            fault: fault?.unwrap_or(defaults.fault),
        },
        ioreq,
        net_uplink,
    })
}

/// A backend's own options, each refused on a partition without `ioreq-page`:
/// `ioreq-first-seq`, and `restart` with `restart-limit` and `restart-window-ms`.
fn backend_options(p: &mut Props<'_, '_, '_>, page: Option<&mut IoreqPage>) -> Option<()> {
    let first_seq = p.optional("ioreq-first-seq", Props::u32)?;
    let restart = p.optional("restart", Props::string)?;
    let limit = p.optional("restart-limit", Props::u32)?;
    let window = p.optional("restart-window-ms", Props::u32)?;
    let path = p.node.path.clone();
    let Some(page) = page else {
        for (name, given) in [
            ("ioreq-first-seq", first_seq.is_some()),
            ("restart", restart.is_some()),
        ] {
            if given {
                p.errs
                    .prop(&path, name, "is a virtio backend's: it needs ioreq-page");
            }
        }
        return Some(());
    };
    page.first_seq = first_seq.unwrap_or(1);
    let on_failure = match restart.as_deref() {
        None | Some("never") => false,
        Some("on-failure") => true,
        Some(other) => {
            let msg = format!(
                "\"{other}\" is not a restart policy (expected \"on-failure\" or \"never\")"
            );
            p.errs.prop(&path, "restart", msg);
            return None;
        }
    };
    if !on_failure && (limit.is_some() || window.is_some()) {
        let msg = "restart-limit and restart-window-ms need restart = \"on-failure\"";
        p.errs.node(&path, msg);
        return None;
    }
    page.restart = on_failure.then(|| RestartPolicy {
        limit: limit.unwrap_or(DEFAULT_RESTART_LIMIT),
        window_ms: window.unwrap_or(DEFAULT_RESTART_WINDOW_MS),
    });
    Some(())
}

/// A backend's request page from `ioreq-page`, `ioreq-spi` and `ioreq-poll-ms`
/// (each as read: `None` when absent): the page with exactly one of the other
/// two, or none of the three. `None` (recorded) for any other combination.
fn ioreq(
    p: &mut Props<'_, '_, '_>,
    page: Option<u64>,
    spi: Option<u32>,
    poll: Option<u32>,
) -> Option<Option<IoreqPage>> {
    let path = p.node.path.clone();
    let signal = match (spi, poll) {
        (Some(spi), None) => Some(IoreqSignal::Spi(spi)),
        (None, Some(interval_ms)) => Some(IoreqSignal::Poll { interval_ms }),
        (None, None) => None,
        (Some(_), Some(_)) => {
            let msg = "cannot be given with ioreq-spi (a backend is signalled by its doorbell SPI or polls its request page, not both)";
            p.errs.prop(&path, "ioreq-poll-ms", msg);
            return None;
        }
    };
    match (page, signal) {
        (Some(page), Some(signal)) => Some(Some(IoreqPage {
            page,
            signal,
            first_seq: 1,
            restart: None,
        })),
        (None, None) => Some(None),
        (Some(_), None) => {
            let msg = "is missing (a backend's ioreq-page needs its ioreq-spi, the doorbell, or ioreq-poll-ms)";
            p.errs.prop(&path, "ioreq-spi", msg);
            None
        }
        (None, Some(signal)) => {
            let given = match signal {
                IoreqSignal::Spi(_) => "ioreq-spi",
                IoreqSignal::Poll { .. } => "ioreq-poll-ms",
            };
            let msg = format!("is missing (a backend's {given} needs its ioreq-page)");
            p.errs.prop(&path, "ioreq-page", msg);
            None
        }
    }
}

/// A partition's `on-fault`: `"stop"` or `"abort"`.
fn fault_policy(p: &mut Props<'_, '_, '_>, name: &str, v: &[u8]) -> Option<FaultPolicy> {
    let s = p.string(name, v)?;
    let policy = FaultPolicy::from_name(&s);
    if policy.is_none() {
        let msg = format!("\"{s}\" is not a fault policy (expected \"stop\" or \"abort\")");
        p.errs.prop(&p.node.path, name, msg);
    }
    policy
}

/// A partition's `console`: `"hypercall"` or `"pl011"`.
fn console_kind(p: &mut Props<'_, '_, '_>, name: &str, v: &[u8]) -> Option<Console> {
    let s = p.string(name, v)?;
    let kind = Console::from_name(&s);
    if kind.is_none() {
        let msg = format!("\"{s}\" is not a console (expected \"hypercall\" or \"pl011\")");
        p.errs.prop(&p.node.path, name, msg);
    }
    kind
}

fn parse_passthrough(n: &Node<'_>, errs: &mut Errors) -> Option<Vec<Device>> {
    let mut p = Props { node: n, errs };
    p.only(&["#address-cells", "#size-cells", "ranges"]);
    cells(&mut p, (2, 2), false);
    if n.prop("ranges").is_some_and(|v| !v.is_empty()) {
        let msg = "must be empty (devices keep their host addresses)";
        p.errs.prop(&n.path, "ranges", msg);
    }
    let mut out = Some(Vec::new());
    for c in &n.children {
        match parse_device(c, errs) {
            Some(d) => {
                if let Some(v) = out.as_mut() {
                    v.push(d);
                }
            }
            None => out = None,
        }
    }
    out
}

fn parse_device(n: &Node<'_>, errs: &mut Errors) -> Option<Device> {
    let mut p = Props { node: n, errs };
    let reg = p.optional("reg", Props::regions);
    let interrupts = p.optional("interrupts", Props::interrupts);
    if n.prop("interrupts-extended").is_some() {
        let msg = "is not supported: use `interrupts` (the guest GIC is the interrupt parent)";
        p.errs.prop(&n.path, "interrupts-extended", msg);
        return None;
    }
    let interrupts = interrupts?.unwrap_or_default();
    Some(Device {
        path: n.path.clone(),
        name: n.name.into(),
        reg: reg?.unwrap_or_default(),
        spis: interrupts
            .iter()
            .filter(|i| i[0] == 0)
            .map(|i| i[1])
            .collect(),
        interrupts,
        properties: n.owned_props(),
        children: n.children.iter().map(Node::to_owned_node).collect(),
    })
}

/// The id of the partition labelled `label`: `Ok(Some(id))`, `Ok(None)` if the
/// labelled node's `reg` is itself malformed (reported elsewhere), `Err(())` if
/// no partition has that label (without `/partitions`, reported elsewhere,
/// every label gives `Ok(None)`).
fn resolve(partitions: Option<&Node<'_>>, label: &str) -> Result<Option<u32>, ()> {
    let Some(partitions) = partitions else {
        return Ok(None);
    };
    let node = partitions
        .children
        .iter()
        .find(|n| n.prop("label") == Some(&[label.as_bytes(), &[0]].concat()[..]))
        .ok_or(())?;
    Ok(node
        .prop("reg")
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes))
}

fn parse_exit(
    n: &Node<'_>,
    errs: &mut Errors,
    partitions: Option<&Node<'_>>,
) -> Option<ExitPolicy> {
    only_children(n, errs, &[]);
    let mut p = Props { node: n, errs };
    p.only(&["wait-for", "watchdog-ms"]);
    let labels = p.require("wait-for", Props::string_list);
    let watchdog_ms = p.optional("watchdog-ms", Props::u32);
    let mut wait_for = Some(Vec::new());
    for label in labels.iter().flatten() {
        match resolve(partitions, label) {
            Ok(Some(id)) => wait_for.iter_mut().for_each(|v| v.push(id)),
            Ok(None) => wait_for = None,
            Err(()) => {
                let msg = format!("\"{label}\" is not the label of any partition");
                p.errs.prop(&n.path, "wait-for", msg);
                wait_for = None;
            }
        }
    }
    labels?;
    Some(ExitPolicy {
        wait_for: wait_for?,
        watchdog_ms: watchdog_ms?,
    })
}

fn parse_virtio(
    n: &Node<'_>,
    errs: &mut Errors,
    partitions: Option<&Node<'_>>,
) -> Option<Vec<VirtioDevice>> {
    let mut p = Props { node: n, errs };
    p.only(&["#address-cells", "#size-cells"]);
    cells(&mut p, (1, 0), true);
    let mut out = Some(Vec::new());
    for c in &n.children {
        match parse_virtio_device(c, errs, partitions) {
            Some(d) => {
                if let Some(v) = out.as_mut() {
                    v.push(d);
                }
            }
            None => out = None,
        }
    }
    if let Some(v) = out.as_mut() {
        number_per_backend(v);
    }
    out
}

/// Sets each device's [`VirtioDevice::backend_index`]: its position among the
/// devices of its backend in `reg` order (ties, refused by `validate`, in tree
/// order).
fn number_per_backend(devices: &mut [VirtioDevice]) {
    for i in 0..devices.len() {
        let d = &devices[i];
        let before = devices
            .iter()
            .enumerate()
            .filter(|(k, o)| {
                o.backend == d.backend && (o.index < d.index || (o.index == d.index && *k < i))
            })
            .count();
        devices[i].backend_index = u32::try_from(before).unwrap_or(u32::MAX);
    }
}

/// Properties a virtio device node may have.
const VIRTIO_PROPS: [&str; 18] = [
    "reg",
    "type",
    "frontend",
    "backend",
    "window",
    "spi",
    "sharing",
    "shared-memory",
    "shared-region",
    "bounce",
    "deadline-ms",
    "disk",
    "disk-image",
    "storage",
    "read-only",
    "loopback",
    "mac",
    "segment",
];

fn parse_virtio_device(
    n: &Node<'_>,
    errs: &mut Errors,
    partitions: Option<&Node<'_>>,
) -> Option<VirtioDevice> {
    only_children(n, errs, &[]);
    let mut p = Props { node: n, errs };
    p.only(&VIRTIO_PROPS);
    let index = p.require("reg", Props::u32);
    let kind = p.require("type", virtio_kind);
    let end = |p: &mut Props<'_, '_, '_>, name: &str| {
        let label = p.require(name, Props::string)?;
        match resolve(partitions, &label) {
            Ok(id) => id,
            Err(()) => {
                let msg = format!("\"{label}\" is not the label of any partition");
                p.errs.prop(&n.path, name, msg);
                None
            }
        }
    };
    let frontend = end(&mut p, "frontend");
    let backend = end(&mut p, "backend");
    let window = p.require("window", Props::region);
    let spi = p.require("spi", Props::u32);
    let sharing = p.optional("sharing", sharing);
    let shared_memory = p.optional("shared-memory", Props::address);
    let shared_region = p.optional("shared-region", Props::region);
    let bounce = p.optional("bounce", Props::region);
    let deadline_ms = p.optional("deadline-ms", Props::u32);
    let disk = p.optional("disk", Props::region);
    let disk_image = p.optional("disk-image", Props::string);
    let storage = p.optional("storage", Props::transport);
    let read_only = p.optional("read-only", Props::flag);
    let loopback = p.optional("loopback", Props::flag);
    let mac = p.optional("mac", Props::mac);
    let segment = p.optional("segment", Props::string);
    if kind == Some(VirtioKind::Blk) && !blk_backing(&mut p) {
        return None;
    }
    if kind == Some(VirtioKind::Net) && !net::segment_given(&mut p) {
        return None;
    }
    let sharing = sharing?.unwrap_or_default();
    if !sharing_properties(&mut p, sharing) {
        return None;
    }
    Some(VirtioDevice {
        index: index?,
        backend_index: 0, // set by number_per_backend
        path: n.path.clone(),
        kind: kind?,
        frontend: frontend?,
        backend: backend?,
        window: window?,
        spi: spi?,
        sharing,
        shared_memory: shared_memory?,
        shared_region: shared_region?,
        bounce: bounce?,
        deadline_ms: deadline_ms?.unwrap_or(DEFAULT_DEADLINE_MS),
        disk: disk?,
        disk_image: disk_image?,
        storage: storage?,
        read_only: read_only?.unwrap_or(false),
        loopback: loopback?.unwrap_or(false),
        mac: mac?,
        segment: segment?,
    })
}

/// What a `"blk"` device serves: exactly one of `disk` (a RAM disk in the
/// backend's memory) and `storage` (a physical virtio-blk transport the backend
/// owns). Records the problem if it has neither or both; returns whether it
/// has exactly one.
fn blk_backing(p: &mut Props<'_, '_, '_>) -> bool {
    let n = p.node;
    match (n.prop("disk").is_some(), n.prop("storage").is_some()) {
        (true, false) | (false, true) => true,
        (false, false) => {
            let msg = "is missing (a \"blk\" device needs disk, the region of the backend's memory its RAM disk lives in, or storage, the physical virtio-blk transport it serves)";
            p.errs.prop(&n.path, "disk", msg);
            false
        }
        (true, true) => {
            let msg = "cannot be given with disk (a \"blk\" device serves either a RAM disk, disk, or a physical virtio-blk transport, storage)";
            p.errs.prop(&n.path, "storage", msg);
            false
        }
    }
}

/// A virtio device's `type`: `"blk"`, `"console"`, `"rng"` or `"net"`.
fn virtio_kind(p: &mut Props<'_, '_, '_>, name: &str, v: &[u8]) -> Option<VirtioKind> {
    let s = p.string(name, v)?;
    let kind = VirtioKind::from_name(&s);
    if kind.is_none() {
        let msg = format!(
            "\"{s}\" is not a virtio device type (expected \"blk\", \"console\", \"rng\" or \"net\")"
        );
        p.errs.prop(&p.node.path, name, msg);
    }
    kind
}

/// A virtio device's `sharing`: `"shared"` or `"copy"`.
fn sharing(p: &mut Props<'_, '_, '_>, name: &str, v: &[u8]) -> Option<Sharing> {
    let s = p.string(name, v)?;
    let mode = Sharing::from_name(&s);
    if mode.is_none() {
        let msg = format!("\"{s}\" is not a sharing mode (expected \"shared\" or \"copy\")");
        p.errs.prop(&p.node.path, name, msg);
    }
    mode
}

/// The properties that depend on a virtio device's `sharing` mode: in shared
/// mode `shared-memory` (required) and `shared-region` (optional), no `bounce`;
/// in copy mode `bounce` (required) and neither of the other two. Records every
/// problem; returns whether there was none.
fn sharing_properties(p: &mut Props<'_, '_, '_>, sharing: Sharing) -> bool {
    let n = p.node;
    let mut ok = true;
    let (needed, why, refused): (&str, &str, &[&str]) = match sharing {
        Sharing::Shared => (
            "shared-memory",
            "the backend address the frontend's shared region is mapped at",
            &["bounce"],
        ),
        Sharing::Copy => (
            "bounce",
            "its bounce area in the backend's memory",
            &["shared-memory", "shared-region"],
        ),
    };
    if n.prop(needed).is_none() {
        let msg = format!("is missing (a \"{}\" device needs {why})", sharing.name());
        p.errs.prop(&n.path, needed, msg);
        ok = false;
    }
    for &name in refused.iter().filter(|&&name| n.prop(name).is_some()) {
        let msg = match sharing {
            Sharing::Shared => "is only for sharing \"copy\" (this device is \"shared\")",
            Sharing::Copy => {
                "is only for sharing \"shared\" (this device is \"copy\": the backend gets no mapping of frontend memory)"
            }
        };
        p.errs.prop(&n.path, name, msg);
        ok = false;
    }
    ok
}
