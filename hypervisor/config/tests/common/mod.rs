//! Test fixtures: an editable device tree built with vm-fdt, a good config, and
//! fake image sizes.
#![allow(dead_code)]

use std::collections::HashMap;

use ferry_config::{Config, Images, Partition, VirtioDevice};

pub mod net;

/// A device-tree node to serialize with vm-fdt.
#[derive(Clone, Debug)]
pub struct N {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<N>,
}

impl N {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            props: vec![],
            children: vec![],
        }
    }

    /// Builder: adds property `name`.
    pub fn p(mut self, name: &str, v: Vec<u8>) -> Self {
        self.props.push((name.into(), v));
        self
    }

    /// Builder: adds child `c`.
    pub fn c(mut self, c: N) -> Self {
        self.children.push(c);
        self
    }

    /// Sets (replaces or adds) property `name`.
    pub fn set(&mut self, name: &str, v: Vec<u8>) -> &mut Self {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.props.push((name.into(), v)),
        }
        self
    }

    /// Removes property `name`.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.props.retain(|(n, _)| n != name);
        self
    }

    /// Removes child `name`.
    pub fn remove_child(&mut self, name: &str) -> &mut Self {
        self.children.retain(|c| c.name != name);
        self
    }

    /// The node at `path` relative to this one (`a/b@1`), which must exist.
    pub fn at(&mut self, path: &str) -> &mut N {
        let mut n = self;
        for part in path.split('/').filter(|s| !s.is_empty()) {
            n = n
                .children
                .iter_mut()
                .find(|c| c.name == part)
                .unwrap_or_else(|| panic!("no node {part}"));
        }
        n
    }

    fn write(&self, w: &mut vm_fdt::FdtWriter) {
        let node = w.begin_node(&self.name).unwrap();
        for (name, v) in &self.props {
            w.property(name, v).unwrap();
        }
        for c in &self.children {
            c.write(w);
        }
        w.end_node(node).unwrap();
    }

    /// The DTB of this tree (this node is the root).
    pub fn dtb(&self) -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        self.write(&mut w);
        w.finish().unwrap()
    }
}

/// 32-bit cells.
pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// 64-bit numbers, 2 cells each.
pub fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// A string value.
pub fn s(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    b.push(0);
    b
}

/// A string-list value.
pub fn sl(v: &[&str]) -> Vec<u8> {
    v.iter().flat_map(|x| s(x)).collect()
}

pub const P0: &str = "partitions/partition@0";
pub const P1: &str = "partitions/partition@1";
pub const SERIAL: &str = "partitions/partition@0/passthrough/serial@9040000";

/// A good config: two partitions (alpha on CPU 1 with a passthrough UART, beta
/// on CPUs 2 and 3 with an initrd), 8 MiB each at guest 0x40000000.
pub fn good() -> N {
    let serial = N::new("serial@9040000")
        .p("compatible", sl(&["arm,pl011", "arm,primecell"]))
        .p("reg", u64s(&[0x0904_0000, 0x1000]))
        .p("interrupts", cells(&[0, 8, 4]));
    let p0 = N::new("partition@0")
        .p("reg", cells(&[0]))
        .p("label", s("alpha"))
        .p("cpus", cells(&[1]))
        .p("memory", u64s(&[0x4000_0000, 0x4800_0000, 0x80_0000]))
        .p("image", s("alpha.bin"))
        .p("load-address", u64s(&[0x4000_0000]))
        .c(N::new("passthrough")
            .p("#address-cells", cells(&[2]))
            .p("#size-cells", cells(&[2]))
            .c(serial));
    let p1 = N::new("partition@1")
        .p("reg", cells(&[1]))
        .p("label", s("beta"))
        .p("cpus", cells(&[2, 3]))
        .p("memory", u64s(&[0x4000_0000, 0x4900_0000, 0x80_0000]))
        .p("image", s("beta.bin"))
        .p("load-address", u64s(&[0x4000_0000]))
        .p("bootargs", s("console=hvc0"))
        .p("initrd", s("beta.cpio"));
    N::new("")
        .p("compatible", s("ferry,config-v1"))
        .p("model", s("test config"))
        .p("#address-cells", cells(&[2]))
        .p("#size-cells", cells(&[2]))
        .c(N::new("platform")
            .p("board", s("qemu-virt"))
            .p("memory", u64s(&[0x4000_0000, 0x4000_0000]))
            .p("cpus", cells(&[4]))
            .p("gic-distributor", u64s(&[0x0800_0000, 0x1_0000]))
            .p("gic-redistributors", u64s(&[0x080a_0000, 0xf6_0000]))
            .p("console", u64s(&[0x0900_0000, 0x1000])))
        .c(N::new("hypervisor").p("memory", u64s(&[0x4000_0000, 0x200_0000])))
        .c(N::new("partitions")
            .p("#address-cells", cells(&[1]))
            .p("#size-cells", cells(&[0]))
            .c(p0)
            .c(p1))
        .c(N::new("exit-policy")
            .p("wait-for", sl(&["alpha", "beta"]))
            .p("watchdog-ms", cells(&[20000])))
}

/// Image, initrd and disk image sizes by file name; a name not in the map is
/// missing.
pub struct Files(pub HashMap<String, u64>);

impl Files {
    /// alpha.bin and beta.bin of 0x1000 bytes, beta.cpio of 0x10000.
    pub fn good() -> Self {
        Self(
            [
                ("alpha.bin", 0x1000),
                ("beta.bin", 0x1000),
                ("beta.cpio", 0x1_0000),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
    }

    pub fn with(mut self, name: &str, size: u64) -> Self {
        self.0.insert(name.into(), size);
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }
}

impl Images for Files {
    fn image_size(&self, p: &Partition) -> Option<u64> {
        self.0.get(&p.image).copied()
    }
    fn initrd_size(&self, p: &Partition) -> Option<u64> {
        self.0.get(p.initrd.as_ref()?).copied()
    }
    fn disk_image_size(&self, d: &VirtioDevice) -> Option<u64> {
        self.0.get(d.disk_image.as_ref()?).copied()
    }
}

/// Parses `tree`, panicking with the errors if it does not parse.
pub fn parsed(tree: &N) -> Config {
    match ferry_config::parse(&tree.dtb()) {
        Ok(c) => c,
        Err(e) => panic!("parse failed: {e:#?}"),
    }
}

/// Every problem `parse`, then `validate` with `files`, finds, as displayed.
pub fn problems_with(tree: &N, files: &Files) -> Vec<String> {
    match ferry_config::parse(&tree.dtb()) {
        Ok(c) => ferry_config::validate(&c, files)
            .iter()
            .map(ToString::to_string)
            .collect(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// [`problems_with`] the good files.
pub fn problems(tree: &N) -> Vec<String> {
    problems_with(tree, &Files::good())
}

/// `good()` after `edit`: its problems.
pub fn after(edit: impl FnOnce(&mut N)) -> Vec<String> {
    let mut t = good();
    edit(&mut t);
    problems(&t)
}

/// Inserts an FDT_NOP token before every token of `dtb`'s structure block (and
/// two before FDT_END), fixing up the header.
pub fn with_nops(dtb: &[u8]) -> Vec<u8> {
    let be = |at: usize| u32::from_be_bytes(dtb[at..at + 4].try_into().unwrap());
    let (off_struct, off_strings, size_struct) = (be(8) as usize, be(12) as usize, be(36) as usize);
    let mut out_struct = Vec::new();
    let mut at = off_struct;
    let nop = 4u32.to_be_bytes();
    while at < off_struct + size_struct {
        let tok = be(at);
        let len = match tok {
            1 => {
                let name_end = dtb[at + 4..].iter().position(|&b| b == 0).unwrap();
                (4 + name_end + 1 + 3) & !3
            }
            2 | 9 => 4,
            3 => (12 + be(at + 4) as usize + 3) & !3,
            t => panic!("token {t}"),
        };
        out_struct.extend_from_slice(&nop);
        if tok == 9 {
            out_struct.extend_from_slice(&nop);
        }
        out_struct.extend_from_slice(&dtb[at..at + len]);
        at += len;
    }
    let strings = &dtb[off_strings..off_strings + be(32) as usize];
    let mut out = dtb[..off_struct].to_vec();
    let new_strings = off_struct + out_struct.len();
    out.extend_from_slice(&out_struct);
    out.extend_from_slice(strings);
    let total = out.len() as u32;
    out[4..8].copy_from_slice(&total.to_be_bytes());
    out[12..16].copy_from_slice(&(new_strings as u32).to_be_bytes());
    out[36..40].copy_from_slice(&(out_struct.len() as u32).to_be_bytes());
    out
}
