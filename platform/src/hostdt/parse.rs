//! [`HostInfo::parse`]: what Ferry learns from a NOP-free host DTB.
//!
//! The blob is first checked in full by [`Walker`] (which also rejects FDT_NOP),
//! because `fdt` 0.1.5 panics (`expect`, `assert`, slice indexing) on malformed
//! input. Only then is the tree walked with `fdt`'s `children()`/`properties()`
//! (never `find_node`: its alias fallback can recurse without bound).

use fdt::node::FdtNode;
use ferry_abi::dtb::{DtbError, Header, Token, Walker, rsvmap_entries, rsvmap_len};

use super::error::{FixedStr, NodePath};
use super::info::{Cpu, Gicv3, HostInfo};
use super::reg::{Bus, Cells, as_str, cell_count, list_contains, reg_entries, translate};
use super::{DtError, MAX_GICR_REGIONS, MAX_MEMORY_REGIONS, MAX_RESERVED_REGIONS};
use crate::psci::Method;
use crate::{MAX_CPUS, Region};

/// What kind of node a node's parent is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Root,
    Cpus,
    ReservedMemory,
    Other,
}

/// GICv2-family `compatible` strings, named in [`DtError::NoGicV3`].
const GICV2_COMPATIBLES: [&str; 9] = [
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
    "arm,arm11mp-gic",
    "arm,pl390",
    "arm,tc11mp-gic",
    "qcom,msm-qgic2",
    "arm,gic-v2",
];

/// The properties of one node that discovery looks at.
#[derive(Default)]
struct Props<'a> {
    device_type: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    compatible: Option<&'a [u8]>,
    reg: Option<&'a [u8]>,
    address_cells: Option<&'a [u8]>,
    size_cells: Option<&'a [u8]>,
    ranges: Option<&'a [u8]>,
    model: Option<&'a [u8]>,
    bootargs: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    enable_method: Option<&'a [u8]>,
    redistributor_regions: Option<&'a [u8]>,
}

impl<'a> Props<'a> {
    fn of(node: &FdtNode<'_, 'a>) -> Self {
        let mut p = Self::default();
        for prop in node.properties() {
            let slot = match prop.name {
                "device_type" => &mut p.device_type,
                "status" => &mut p.status,
                "compatible" => &mut p.compatible,
                "reg" => &mut p.reg,
                "#address-cells" => &mut p.address_cells,
                "#size-cells" => &mut p.size_cells,
                "ranges" => &mut p.ranges,
                "model" => &mut p.model,
                "bootargs" => &mut p.bootargs,
                "method" => &mut p.method,
                "enable-method" => &mut p.enable_method,
                "#redistributor-regions" => &mut p.redistributor_regions,
                _ => continue,
            };
            slot.get_or_insert(prop.value);
        }
        p
    }

    /// `status` absent, or not `"disabled"` nor `"fail..."`.
    fn enabled(&self) -> bool {
        self.status
            .and_then(as_str)
            .is_none_or(|s| s != "disabled" && !s.starts_with("fail"))
    }

    /// The cells this node gives its children.
    fn cells(&self, path: &NodePath) -> Result<Cells, DtError> {
        let read = |v: Option<&[u8]>, name, default| match v {
            Some(v) => cell_count(path, name, v),
            None => Ok(default),
        };
        Ok(Cells {
            address: read(self.address_cells, "#address-cells", Cells::DEFAULT.address)?,
            size: read(self.size_cells, "#size-cells", Cells::DEFAULT.size)?,
        })
    }
}

/// A string property that must be NUL-terminated UTF-8 (absent reads as `""`).
fn string_prop<'a>(
    path: &NodePath,
    name: &'static str,
    v: Option<&'a [u8]>,
) -> Result<&'a str, DtError> {
    v.map_or(Ok(""), |v| {
        as_str(v).ok_or(DtError::Property {
            node: *path,
            property: name,
            cause: "is not a NUL-terminated UTF-8 string",
        })
    })
}

/// Appends `v` after the first `*count` entries of `arr`, or fails with `full()`.
fn push<T, const N: usize>(
    arr: &mut [T; N],
    count: &mut usize,
    v: T,
    full: impl FnOnce() -> DtError,
) -> Result<(), DtError> {
    let slot = arr.get_mut(*count).ok_or_else(full)?;
    *slot = v;
    *count += 1;
    Ok(())
}

/// Discovery in progress.
struct State<'a> {
    info: HostInfo<'a>,
    cpu_total: usize,
    cpus_path: NodePath,
    chosen_seen: bool,
    psci: Option<Method>,
    gic: Option<Gicv3>,
    gic_v2: Option<&'static str>,
}

impl<'a> State<'a> {
    /// Takes what discovery needs from `node` (at `path`, a child of `parent`, which
    /// is of `kind`), then visits its children.
    fn visit(
        &mut self,
        node: FdtNode<'_, 'a>,
        path: NodePath,
        parent: &Bus<'_, 'a>,
        kind: Parent,
    ) -> Result<(), DtError> {
        let p = Props::of(&node);
        let base = node.name.split('@').next().unwrap_or_default();
        if kind == Parent::Root && node.name == "chosen" && !self.chosen_seen {
            self.chosen_seen = true;
            self.info.bootargs = string_prop(&path, "bootargs", p.bootargs)?;
        }
        if kind == Parent::Root && base == "psci" && self.psci.is_none() {
            self.psci = Some(psci_method(&path, p.method)?);
        }
        let reg = |min_size| {
            let v = p.reg.ok_or(DtError::MissingProperty {
                node: path,
                property: "reg",
            })?;
            reg_entries(&path, v, parent.cells?, min_size)
        };
        if kind == Parent::Root && p.device_type == Some(b"memory\0") && p.enabled() {
            for r in reg(1)? {
                let r = translate(&path, r, parent)?;
                if r.size != 0 {
                    let full = || {
                        too_many(
                            path,
                            "reg",
                            "memory regions",
                            MAX_MEMORY_REGIONS,
                            "MAX_MEMORY_REGIONS",
                        )
                    };
                    push(&mut self.info.memory, &mut self.info.memory_count, r, full)?;
                }
            }
        }
        if kind == Parent::ReservedMemory && p.reg.is_some() && p.enabled() {
            for r in reg(1)? {
                self.push_reserved(path, "reg", translate(&path, r, parent)?)?;
            }
        }
        if kind == Parent::Cpus && p.device_type == Some(b"cpu\0") && p.enabled() {
            let mpidr = reg(0)?.next().map_or(0, |r| r.base);
            let enable_method_psci = p.enable_method.is_some_and(|v| list_contains(v, "psci"));
            if let Some(slot) = self.info.cpus.get_mut(self.cpu_total) {
                *slot = Cpu {
                    mpidr,
                    enable_method_psci,
                };
            }
            self.cpu_total += 1;
        }
        if let Some(compatible) = p.compatible.filter(|_| p.enabled()) {
            if self.gic.is_none() && list_contains(compatible, "arm,gic-v3") {
                self.gic = Some(gicv3(&path, &p, parent)?);
            }
            if self.gic_v2.is_none() {
                self.gic_v2 = GICV2_COMPATIBLES
                    .into_iter()
                    .find(|c| list_contains(compatible, c));
            }
        }

        let child_kind = match (kind, node.name) {
            (Parent::Root, "cpus") => {
                self.cpus_path = path;
                Parent::Cpus
            }
            (Parent::Root, "reserved-memory") => Parent::ReservedMemory,
            _ => Parent::Other,
        };
        let bus = Bus {
            path,
            cells: p.cells(&path),
            ranges: p.ranges,
            parent: Some(parent),
        };
        for child in node.children() {
            self.visit(child, path.join(child.name), &bus, child_kind)?;
        }
        Ok(())
    }

    /// Appends a non-empty reserved region.
    fn push_reserved(
        &mut self,
        node: NodePath,
        property: &'static str,
        r: Region,
    ) -> Result<(), DtError> {
        if r.size == 0 {
            return Ok(());
        }
        let full = || {
            too_many(
                node,
                property,
                "reserved regions",
                MAX_RESERVED_REGIONS,
                "MAX_RESERVED_REGIONS",
            )
        };
        push(
            &mut self.info.reserved,
            &mut self.info.reserved_count,
            r,
            full,
        )
    }

    /// The result, or what is missing.
    fn finish(mut self) -> Result<HostInfo<'a>, DtError> {
        if self.cpu_total > MAX_CPUS {
            return Err(DtError::TooManyCpus {
                node: self.cpus_path,
                count: self.cpu_total,
            });
        }
        self.info.cpu_count = self.cpu_total;
        if self.info.memory_count == 0 {
            return Err(DtError::NoMemory);
        }
        if self.info.cpu_count == 0 {
            return Err(DtError::NoCpus);
        }
        self.info.psci = self.psci.ok_or(DtError::NoPsci)?;
        self.info.gic = self.gic.ok_or(DtError::NoGicV3 { found: self.gic_v2 })?;
        Ok(self.info)
    }
}

/// [`DtError::TooManyRegions`].
fn too_many(
    node: NodePath,
    property: &'static str,
    kind: &'static str,
    max: usize,
    constant: &'static str,
) -> DtError {
    DtError::TooManyRegions {
        node,
        property,
        kind,
        max,
        constant,
    }
}

/// The PSCI conduit from `method`: only `"smc"` is usable from EL2.
fn psci_method(path: &NodePath, method: Option<&[u8]>) -> Result<Method, DtError> {
    match method {
        None => Err(DtError::MissingProperty {
            node: *path,
            property: "method",
        }),
        Some(b"smc\0") => Ok(Method::Smc),
        Some(b"hvc\0") => Err(DtError::PsciHvc { node: *path }),
        Some(v) => Err(DtError::PsciMethod {
            node: *path,
            value: FixedStr::from_lossy(v.strip_suffix(&[0]).unwrap_or(v)),
        }),
    }
}

/// The GICv3 frames of the node at `path` with properties `p`, a child of `parent`.
fn gicv3(path: &NodePath, p: &Props<'_>, parent: &Bus<'_, '_>) -> Result<Gicv3, DtError> {
    let reg = p.reg.ok_or(DtError::MissingProperty {
        node: *path,
        property: "reg",
    })?;
    let n = match p.redistributor_regions {
        None => 1,
        Some(v) => cell_count(path, "#redistributor-regions", v)? as usize,
    };
    if n == 0 {
        let cause = "is 0 (a GICv3 has at least one redistributor region)";
        return Err(DtError::Property {
            node: *path,
            property: "#redistributor-regions",
            cause,
        });
    }
    if n > MAX_GICR_REGIONS {
        let kind = "GIC redistributor regions";
        return Err(too_many(
            *path,
            "#redistributor-regions",
            kind,
            MAX_GICR_REGIONS,
            "MAX_GICR_REGIONS",
        ));
    }
    let mut entries = reg_entries(path, reg, parent.cells?, 1)?;
    let mut gic = Gicv3::default();
    let short = DtError::Property {
        node: *path,
        property: "reg",
        cause: "has fewer entries than 1 (GICD) + #redistributor-regions (GICR)",
    };
    gic.gicd = translate(path, entries.next().ok_or(short)?, parent)?;
    for slot in gic.gicr.iter_mut().take(n) {
        *slot = translate(path, entries.next().ok_or(short)?, parent)?;
    }
    gic.gicr_count = n;
    Ok(gic)
}

impl<'a> HostInfo<'a> {
    /// Parses a NOP-free blob (the output of [`copy_without_nops`](super::copy_without_nops)).
    /// Never panics.
    ///
    /// The whole blob is validated first (version 17 or later; an FDT_NOP token is
    /// [`DtError::Nop`]). A malformed property Ferry reads fails at once; then
    /// the checks run in this order: too many CPUs, no memory, no CPU, no
    /// `/psci`, no GICv3. Where the tree has several `/chosen`, `/psci` or GICv3
    /// nodes, the first one counts.
    pub fn parse(blob: &'a [u8]) -> Result<HostInfo<'a>, DtError> {
        let h = Header::read(blob)?;
        if h.size_dt_struct.is_none() {
            let (version, last_comp_version) = (h.version, h.last_comp_version);
            return Err(DtError::Format(DtbError::UnsupportedVersion {
                version,
                last_comp_version,
            }));
        }
        rsvmap_len(blob, &h)?;
        let mut walk = Walker::new(blob, &h);
        while let Some(item) = walk.next_item()? {
            if item.token == Token::Nop {
                return Err(DtError::Nop {
                    offset: item.offset,
                });
            }
        }
        let blob = blob.get(..h.totalsize).unwrap_or_default();
        let refused = DtError::Format(DtbError::BadHeader {
            field: "magic",
            cause: "is refused by the fdt crate",
        });
        let fdt = fdt::Fdt::new(blob).map_err(|_| refused)?;
        let no_root = DtError::Format(DtbError::Structure {
            offset: h.off_dt_struct,
            cause: "no root node",
        });
        let root = fdt.all_nodes().next().ok_or(no_root)?;

        let mut st = State {
            info: HostInfo {
                model: "",
                bootargs: "",
                memory: [Region::default(); MAX_MEMORY_REGIONS],
                memory_count: 0,
                reserved: [Region::default(); MAX_RESERVED_REGIONS],
                reserved_count: 0,
                cpus: [Cpu::default(); MAX_CPUS],
                cpu_count: 0,
                psci: Method::Smc,
                gic: Gicv3::default(),
            },
            cpu_total: 0,
            cpus_path: NodePath::new("/cpus"),
            chosen_seen: false,
            psci: None,
            gic: None,
            gic_v2: None,
        };
        let rsv_path = NodePath::new("/memreserve/");
        for (base, size) in rsvmap_entries(blob, &h) {
            st.push_reserved(rsv_path, "", Region::new(base, size))?;
        }
        let path = NodePath::new("/");
        let p = Props::of(&root);
        st.info.model = string_prop(&path, "model", p.model)?;
        let bus = Bus {
            path,
            cells: p.cells(&path),
            ranges: None,
            parent: None,
        };
        for child in root.children() {
            st.visit(child, path.join(child.name), &bus, Parent::Root)?;
        }
        st.finish()
    }
}
