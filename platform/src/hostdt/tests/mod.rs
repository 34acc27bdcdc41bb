//! Tests of host device-tree discovery: fixtures built with `vm-fdt` that look
//! like QEMU virt and imx8mp-evk, FDT_NOP injection, and the checks in
//! `nops.rs` (fdt 0.1.5 vs. NOPs, copy + parse), `malformed.rs` (no panics on
//! bad input) and `errors.rs` (each discovery error and its text).

mod errors;
mod malformed;
mod nops;

use vm_fdt::{FdtReserveEntry, FdtWriter};

use ferry_abi::dtb::{Header, Token, Walker};

/// `addr`/`size` pairs as cells for the given `#address-cells`/`#size-cells`.
pub fn cells(regs: &[(u64, u64)], ac: u32, sc: u32) -> Vec<u32> {
    let mut v = Vec::new();
    let mut push = |x: u64, n: u32| {
        if n == 2 {
            v.push((x >> 32) as u32);
        }
        if n >= 1 {
            v.push(x as u32);
        }
    };
    for &(a, s) in regs {
        push(a, ac);
        push(s, sc);
    }
    v
}

/// How the GIC node looks.
#[derive(Clone)]
pub enum Gic {
    /// `arm,gic-v3` with these `reg` entries and optional `#redistributor-regions`.
    V3 {
        regs: Vec<(u64, u64)>,
        redist: Option<u32>,
        status: Option<&'static str>,
    },
    /// A GICv2 (`arm,cortex-a15-gic`, like QEMU virt without gic-version=3).
    V2,
    /// No interrupt controller at all.
    None,
}

/// A memory node: (unit address, `reg` entries, `status`).
pub type MemoryNode = (u64, Vec<(u64, u64)>, Option<&'static str>);
/// A `/reserved-memory` child: (name, `reg` or `None` for a dynamic one, `status`).
pub type ReservedNode = (&'static str, Option<(u64, u64)>, Option<&'static str>);

/// A host device tree to build; [`Dt::virt`] and [`Dt::imx`] are the two boards,
/// tests change one field at a time.
#[derive(Clone)]
pub struct Dt {
    pub root_cells: (u32, u32),
    pub model: Option<&'static str>,
    pub bootargs: Option<&'static str>,
    pub memreserve: Vec<(u64, u64)>,
    pub memory: Vec<MemoryNode>,
    pub reserved: Vec<ReservedNode>,
    pub cpu_cells: u32,
    /// CPUs: (reg, enable-method, status).
    pub cpus: Vec<(u64, Option<&'static str>, Option<&'static str>)>,
    /// `None`: no /psci; `Some(None)`: /psci without `method`.
    pub psci: Option<Option<&'static str>>,
    pub gic: Gic,
    /// Put the GIC under `/soc@0` (1-cell bus) with this `ranges` (cells), as on imx8mp.
    pub soc_ranges: Option<Vec<u32>>,
}

impl Dt {
    /// Like QEMU `-M virt,gic-version=3` with 4 CPUs.
    pub fn virt() -> Self {
        Self {
            root_cells: (2, 2),
            model: Some("linux,dummy-virt"),
            bootargs: Some("console=ttyAMA0 ferry.selftest=panic quiet"),
            memreserve: vec![],
            memory: vec![(0x4000_0000, vec![(0x4000_0000, 0x800_0000)], None)],
            reserved: vec![],
            cpu_cells: 1,
            cpus: (0..4).map(|i| (i, Some("psci"), None)).collect(),
            psci: Some(Some("smc")),
            gic: Gic::V3 {
                regs: vec![(0x0800_0000, 0x1_0000), (0x080a_0000, 0xf6_0000)],
                redist: Some(1),
                status: None,
            },
            soc_ranges: None,
        }
    }

    /// Like imx8mp-evk: GIC under `/soc@0`, two RAM banks, reserved memory.
    pub fn imx() -> Self {
        Self {
            root_cells: (2, 2),
            model: Some("NXP i.MX8MPlus EVK board"),
            bootargs: Some("console=ttymxc1,115200 earlycon ferry.log=debug"),
            memreserve: vec![(0x5000_0000, 0x1_0000)],
            memory: vec![(
                0x4000_0000,
                vec![(0x4000_0000, 0xc000_0000), (0x1_0000_0000, 0xc000_0000)],
                None,
            )],
            reserved: vec![
                (
                    "dsp@92400000",
                    Some((0x9240_0000, 0x200_0000)),
                    Some("disabled"),
                ),
                ("vdev0vring0@942f0000", Some((0x942f_0000, 0x8000)), None),
                ("vdev0vring1@942f8000", Some((0x942f_8000, 0x8000)), None),
                (
                    "vdev0buffer@94300000",
                    Some((0x9430_0000, 0x10_0000)),
                    Some("okay"),
                ),
                ("linux,cma", None, None),
            ],
            cpu_cells: 1,
            cpus: (0..4).map(|i| (i, Some("psci"), None)).collect(),
            psci: Some(Some("smc")),
            gic: Gic::V3 {
                regs: vec![(0x3880_0000, 0x1_0000), (0x3888_0000, 0xc_0000)],
                redist: None,
                status: None,
            },
            soc_ranges: Some(vec![0, 0, 0, 0x3e00_0000]),
        }
    }

    /// The DTB.
    pub fn build(&self) -> Vec<u8> {
        let rsv: Vec<_> = self
            .memreserve
            .iter()
            .map(|&(a, s)| FdtReserveEntry::new(a, s).unwrap())
            .collect();
        let mut w = FdtWriter::new_with_mem_reserv(&rsv).unwrap();
        let (ac, sc) = self.root_cells;
        let root = w.begin_node("").unwrap();
        w.property_u32("interrupt-parent", 1).unwrap();
        w.property_u32("#address-cells", ac).unwrap();
        w.property_u32("#size-cells", sc).unwrap();
        if let Some(m) = self.model {
            w.property_string("model", m).unwrap();
        }
        w.property_string_list(
            "compatible",
            vec!["ferry,test".into(), "vendor,board".into()],
        )
        .unwrap();

        for (unit, regs, status) in &self.memory {
            let n = w.begin_node(&format!("memory@{unit:x}")).unwrap();
            w.property_array_u32("reg", &cells(regs, ac, sc)).unwrap();
            w.property_string("device_type", "memory").unwrap();
            if let Some(s) = status {
                w.property_string("status", s).unwrap();
            }
            w.end_node(n).unwrap();
        }

        if !self.reserved.is_empty() {
            let rm = w.begin_node("reserved-memory").unwrap();
            w.property_u32("#address-cells", 2).unwrap();
            w.property_u32("#size-cells", 2).unwrap();
            w.property_null("ranges").unwrap();
            for &(name, reg, status) in &self.reserved {
                let n = w.begin_node(name).unwrap();
                w.property_string("compatible", "shared-dma-pool").unwrap();
                match reg {
                    Some(r) => w.property_array_u32("reg", &cells(&[r], 2, 2)).unwrap(),
                    None => w.property_array_u32("size", &[0, 0x100_0000]).unwrap(),
                }
                w.property_null("no-map").unwrap();
                if let Some(s) = status {
                    w.property_string("status", s).unwrap();
                }
                w.end_node(n).unwrap();
            }
            w.end_node(rm).unwrap();
        }

        if let Some(method) = self.psci {
            let n = w.begin_node("psci").unwrap();
            w.property_string_list("compatible", vec!["arm,psci-1.0".into(), "arm,psci".into()])
                .unwrap();
            if let Some(m) = method {
                w.property_string("method", m).unwrap();
            }
            w.property_u32("cpu_on", 0xc400_0003).unwrap();
            w.end_node(n).unwrap();
        }

        self.build_cpus(&mut w);

        let soc = self.soc_ranges.as_ref().map(|ranges| {
            let n = w.begin_node("soc@0").unwrap();
            w.property_string_list("compatible", vec!["simple-bus".into()])
                .unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            w.property_array_u32("ranges", ranges).unwrap();
            n
        });
        let (gac, gsc) = if soc.is_some() { (1, 1) } else { (ac, sc) };
        match &self.gic {
            Gic::V3 {
                regs,
                redist,
                status,
            } => {
                let unit = regs.first().map_or(0, |r| r.0);
                let n = w
                    .begin_node(&format!("interrupt-controller@{unit:x}"))
                    .unwrap();
                w.property_string("compatible", "arm,gic-v3").unwrap();
                w.property_array_u32("reg", &cells(regs, gac, gsc)).unwrap();
                if let Some(r) = redist {
                    w.property_u32("#redistributor-regions", *r).unwrap();
                }
                if let Some(s) = status {
                    w.property_string("status", s).unwrap();
                }
                w.property_null("interrupt-controller").unwrap();
                w.property_u32("#interrupt-cells", 3).unwrap();
                w.property_u32("phandle", 1).unwrap();
                let its = w.begin_node("its@8080000").unwrap();
                w.property_string("compatible", "arm,gic-v3-its").unwrap();
                w.property_array_u32("reg", &cells(&[(0x808_0000, 0x2_0000)], gac, gsc))
                    .unwrap();
                w.end_node(its).unwrap();
                w.end_node(n).unwrap();
            }
            Gic::V2 => {
                let n = w.begin_node("intc@8000000").unwrap();
                w.property_string("compatible", "arm,cortex-a15-gic")
                    .unwrap();
                w.property_array_u32("reg", &cells(&[(0x800_0000, 0x1_0000)], gac, gsc))
                    .unwrap();
                w.end_node(n).unwrap();
            }
            Gic::None => {}
        }
        if let Some(n) = soc {
            let uart = w.begin_node("serial@30890000").unwrap();
            w.property_string("compatible", "fsl,imx8mp-uart").unwrap();
            w.property_array_u32("reg", &[0x3089_0000, 0x1_0000])
                .unwrap();
            w.end_node(uart).unwrap();
            w.end_node(n).unwrap();
        }

        let chosen = w.begin_node("chosen").unwrap();
        if let Some(b) = self.bootargs {
            w.property_string("bootargs", b).unwrap();
        }
        w.property_string("stdout-path", "/pl011@9000000").unwrap();
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    fn build_cpus(&self, w: &mut FdtWriter) {
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", self.cpu_cells).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let idle = w.begin_node("idle-states").unwrap();
        w.property_string("entry-method", "psci").unwrap();
        let sleep = w.begin_node("cpu-pd-wait").unwrap();
        w.property_string("compatible", "arm,idle-state").unwrap();
        w.end_node(sleep).unwrap();
        w.end_node(idle).unwrap();
        for (i, &(reg, method, status)) in self.cpus.iter().enumerate() {
            let n = w.begin_node(&format!("cpu@{reg:x}")).unwrap();
            w.property_string("device_type", "cpu").unwrap();
            w.property_string("compatible", "arm,cortex-a53").unwrap();
            w.property_array_u32("reg", &cells(&[(reg, 0)], self.cpu_cells, 0))
                .unwrap();
            if let Some(m) = method {
                w.property_string("enable-method", m).unwrap();
            }
            if let Some(s) = status {
                w.property_string("status", s).unwrap();
            }
            w.property_u32("phandle", 0x100 + i as u32).unwrap();
            w.end_node(n).unwrap();
        }
        let l2 = w.begin_node("l2-cache0").unwrap();
        w.property_string("compatible", "cache").unwrap();
        w.property_u32("cache-level", 2).unwrap();
        w.end_node(l2).unwrap();
        let map = w.begin_node("cpu-map").unwrap();
        let cluster = w.begin_node("cluster0").unwrap();
        let core = w.begin_node("core0").unwrap();
        w.property_u32("cpu", 0x100).unwrap();
        w.end_node(core).unwrap();
        w.end_node(cluster).unwrap();
        w.end_node(map).unwrap();
        w.end_node(cpus).unwrap();
    }
}

/// Big-endian word `i` of the header.
pub fn hdr(blob: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(blob[i * 4..i * 4 + 4].try_into().unwrap())
}

/// Sets big-endian word `i` of the header.
pub fn set_hdr(blob: &mut [u8], i: usize, v: u32) {
    blob[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
}

/// Header word indexes.
pub const TOTALSIZE: usize = 1;
pub const OFF_STRUCT: usize = 2;
pub const OFF_STRINGS: usize = 3;
pub const OFF_RSVMAP: usize = 4;
pub const VERSION: usize = 5;
pub const SIZE_STRINGS: usize = 8;
pub const SIZE_STRUCT: usize = 9;

/// The tokens of `blob` (a valid DTB) with their offsets.
pub fn tokens(blob: &[u8]) -> Vec<(usize, Token<'_>)> {
    let h = Header::read(blob).unwrap();
    let mut w = Walker::new(blob, &h);
    let mut v = Vec::new();
    while let Some(item) = w.next_item().unwrap() {
        v.push((item.offset, item.token));
    }
    v
}

/// Inserts `count(i, previous token, token)` FDT_NOP words before token `i` of
/// `blob`'s structure block and fixes the header (the strings block must follow
/// the structure block, as `vm-fdt` and dtc lay them out).
pub fn inject(blob: &[u8], count: impl Fn(usize, Option<Token>, Token) -> usize) -> Vec<u8> {
    let toks = tokens(blob);
    assert!(hdr(blob, OFF_RSVMAP) < hdr(blob, OFF_STRUCT));
    assert!(hdr(blob, OFF_STRUCT) < hdr(blob, OFF_STRINGS));
    let mut out = blob.to_vec();
    let mut added = 0;
    for (i, &(off, tok)) in toks.iter().enumerate().rev() {
        let prev = i.checked_sub(1).map(|p| toks[p].1);
        let n = count(i, prev, tok);
        for _ in 0..n {
            out.splice(off..off, 4u32.to_be_bytes());
        }
        added += 4 * n as u32;
    }
    for f in [TOTALSIZE, OFF_STRINGS, SIZE_STRUCT] {
        let v = hdr(&out, f) + added;
        set_hdr(&mut out, f, v);
    }
    out
}

/// Overwrites the node named `name` (tokens, properties, children) with FDT_NOP
/// words in place, like libfdt's `fdt_nop_node` that QEMU uses to delete nodes.
pub fn nop_out_node(blob: &mut [u8], name: &str) {
    let toks = tokens(blob);
    let start = toks.iter().position(|t| t.1 == Token::Begin(name)).unwrap();
    let mut depth = 0;
    let mut end = start;
    for (i, t) in toks.iter().enumerate().skip(start) {
        match t.1 {
            Token::Begin(_) => depth += 1,
            Token::EndNode => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            end = i;
            break;
        }
    }
    let (from, to) = (toks[start].0, toks[end].0 + 4);
    for w in blob[from..to].chunks_exact_mut(4) {
        w.copy_from_slice(&4u32.to_be_bytes());
    }
}

/// A small deterministic PRNG (xorshift64).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
