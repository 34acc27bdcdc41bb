//! [`Boot`]: what the guest learns from its DTB (bootargs, CPUs, memory, PSCI method).
//! Address ranges are [`ferry_abi::Region`]s (base and size), the type Ferry uses.
//!
//! The runtime copies the DTB without FDT_NOP tokens
//! ([`ferry_abi::dtb::copy_without_nops`]) into its own buffer and parses that with
//! fdt 0.1.5; nodes are walked by hand where fdt's helpers
//! would panic on a missing node.

use fdt::Fdt;
use fdt::node::FdtNode;
use ferry_abi::Region;

use crate::args;

/// Largest DTB the runtime copies.
pub const MAX_DTB: usize = 64 * 1024;
/// Most CPUs (`/cpus/cpu@N`) read from the DTB.
pub const MAX_CPUS: usize = 16;
/// Most memory regions read from the DTB.
pub const MAX_REGIONS: usize = 8;

/// The first [`HEADER_SIZE`](ferry_abi::dtb::HEADER_SIZE) bytes at `addr`, read
/// bytewise and volatile (the MMU may be off; the DTB is not Rust-owned memory).
///
/// # Safety
/// `addr` must point to at least that many readable bytes (a DTB header).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) unsafe fn read_header(addr: usize) -> [u8; ferry_abi::dtb::HEADER_SIZE] {
    let mut h = [0u8; ferry_abi::dtb::HEADER_SIZE];
    for (i, b) in h.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the header bytes at `addr` are readable.
        *b = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
    }
    h
}

/// The boot information of a guest: its DTB, parsed.
pub struct Boot {
    dtb_addr: usize,
    fdt: Fdt<'static>,
    bootargs: &'static str,
    cpus: [u64; MAX_CPUS],
    ncpus: usize,
    memory: [Region; MAX_REGIONS],
    nregions: usize,
}

fn read_cells(value: &[u8], cells: usize) -> Option<(u64, &[u8])> {
    if cells == 0 || cells > 2 || value.len() < 4 * cells {
        return None;
    }
    let mut v = 0u64;
    for i in 0..cells {
        let w = u32::from_be_bytes(value[4 * i..4 * i + 4].try_into().ok()?);
        v = (v << 32) | w as u64;
    }
    Some((v, &value[4 * cells..]))
}

fn cells_of(node: &FdtNode<'_, '_>, name: &str, default: usize) -> usize {
    node.property(name)
        .and_then(|p| p.as_usize())
        .unwrap_or(default)
}

impl Boot {
    /// Parses the NOP-free DTB copy `blob` (found at `dtb_addr`).
    pub fn parse(dtb_addr: usize, blob: &'static [u8]) -> Result<Self, &'static str> {
        let fdt = Fdt::new(blob).map_err(|_| "fdt cannot parse the DTB")?;
        let root = fdt.find_node("/").ok_or("DTB has no root node")?;
        let bootargs = fdt
            .find_node("/chosen")
            .and_then(|c| c.property("bootargs"))
            .and_then(|p| p.as_str())
            .unwrap_or("");

        let mut cpus = [0u64; MAX_CPUS];
        let mut ncpus = 0;
        if let Some(cpus_node) = fdt.find_node("/cpus") {
            let ac = cells_of(&cpus_node, "#address-cells", 1);
            for child in cpus_node.children() {
                let base = child.name.split('@').next().unwrap_or("");
                if base != "cpu" || ncpus == MAX_CPUS {
                    continue;
                }
                let reg = child.property("reg").ok_or("a /cpus/cpu node has no reg")?;
                let (id, _) = read_cells(reg.value, ac).ok_or("bad cpu reg")?;
                cpus[ncpus] = id;
                ncpus += 1;
            }
        }

        let mut memory = [Region::default(); MAX_REGIONS];
        let mut nregions = 0;
        let ac = cells_of(&root, "#address-cells", 2);
        let sc = cells_of(&root, "#size-cells", 1);
        for child in root.children() {
            let base = child.name.split('@').next().unwrap_or("");
            let is_memory = base == "memory"
                || child
                    .property("device_type")
                    .and_then(|p| p.as_str())
                    .is_some_and(|t| t == "memory");
            if !is_memory {
                continue;
            }
            let Some(reg) = child.property("reg") else {
                continue;
            };
            let mut rest = reg.value;
            while !rest.is_empty() && nregions < MAX_REGIONS {
                let (start, r) = read_cells(rest, ac).ok_or("bad memory reg")?;
                let (size, r) = read_cells(r, sc).ok_or("bad memory reg")?;
                rest = r;
                if size > 0 {
                    // A range past the top of the address space ends at u64::MAX.
                    memory[nregions] = Region::new(start, size.min(u64::MAX - start));
                    nregions += 1;
                }
            }
        }

        Ok(Self {
            dtb_addr,
            fdt,
            bootargs,
            cpus,
            ncpus,
            memory,
            nregions,
        })
    }

    /// Where the DTB was handed over (x0 at entry).
    pub fn dtb_addr(&self) -> usize {
        self.dtb_addr
    }

    /// The parsed (NOP-free) DTB.
    pub fn fdt(&self) -> &Fdt<'static> {
        &self.fdt
    }

    /// `/chosen/bootargs` ("" if none).
    pub fn bootargs(&self) -> &'static str {
        self.bootargs
    }

    /// The value of bootarg `key` (`key=value`; "" for a bare `key`).
    pub fn arg(&self, key: &str) -> Option<&'static str> {
        args::find(self.bootargs, key)
    }

    /// Bootarg `key` as a number (decimal or 0x-hex); a value that does not parse
    /// ends the guest with a failure.
    pub fn arg_u64(&self, key: &str) -> Option<u64> {
        let v = self.arg(key)?;
        Some(
            args::parse_u64(v)
                .unwrap_or_else(|| crate::fail!("bootarg {key}={v:?} is not a number")),
        )
    }

    /// Bootarg `key` as a hex number (0x optional); one that does not parse ends the
    /// guest with a failure.
    pub fn arg_hex(&self, key: &str) -> Option<u64> {
        let v = self.arg(key)?;
        Some(
            args::parse_hex(v)
                .unwrap_or_else(|| crate::fail!("bootarg {key}={v:?} is not a hex number")),
        )
    }

    /// The `reg` (MPIDR) of every `/cpus/cpu@N`, in DT order.
    pub fn cpus(&self) -> &[u64] {
        &self.cpus[..self.ncpus]
    }

    /// The `/memory` regions, in DT order (each of non-zero size; one that would run
    /// past the top of the address space is cut at `u64::MAX`).
    pub fn memory(&self) -> &[Region] {
        &self.memory[..self.nregions]
    }

    /// `/psci` `method` ("hvc" or "smc"), if there is one.
    pub fn psci_method(&self) -> Option<&'static str> {
        self.fdt
            .find_node("/psci")
            .and_then(|n| n.property("method"))
            .and_then(|p| p.as_str())
    }

    /// Where the DTB lies in memory: base `dtb_addr`, size the original's `totalsize`.
    pub fn dtb_region(&self) -> Region {
        #[cfg(all(target_arch = "aarch64", target_os = "none"))]
        let size = {
            // SAFETY: the DTB header was read at boot from the same address.
            let h = unsafe { read_header(self.dtb_addr) };
            ferry_abi::dtb::total_size(&h).unwrap_or(0) as u64
        };
        #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
        let size = self.fdt.total_size() as u64;
        Region::new(self.dtb_addr as u64, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(read_cells(&[0, 0, 0, 5], 1), Some((5, &[][..])));
        assert_eq!(
            read_cells(&[0, 0, 0, 1, 0x40, 0, 0, 0, 9], 2),
            Some((0x1_4000_0000, &[9u8][..]))
        );
        assert_eq!(read_cells(&[0, 0], 1), None);
        assert_eq!(read_cells(&[0, 0, 0, 0], 3), None);
    }
}

#[cfg(test)]
mod dtc_tests {
    use super::*;

    const DTS: &str = r#"/dts-v1/;
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    cpus {
        #address-cells = <1>;
        #size-cells = <0>;
        cpu@0 { device_type = "cpu"; reg = <0>; enable-method = "psci"; };
        cpu@1 { device_type = "cpu"; reg = <1>; enable-method = "psci"; };
        cpu@2 { device_type = "cpu"; reg = <2>; enable-method = "psci"; };
    };
    memory@40000000 { device_type = "memory"; reg = <0x0 0x40000000 0x0 0x800000>; };
    memory@50000000 { device_type = "memory"; reg = <0x0 0x50000000 0x0 0x100000>; };
    psci { compatible = "arm,psci-1.0"; method = "hvc"; };
    chosen { bootargs = "name=alpha wait=300"; };
};
"#;

    /// Compiles `dts` with dtc; `None` (test skipped) if dtc is not installed.
    fn compile(dts: &str) -> Option<&'static [u8]> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new("dtc")
            .args(["-I", "dts", "-O", "dtb", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(dts.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        assert!(out.status.success(), "dtc failed");
        Some(Box::leak(out.stdout.into_boxed_slice()))
    }

    #[test]
    fn parses_a_guest_dtb() {
        let Some(blob) = compile(DTS) else {
            eprintln!("dtc not installed: skipped");
            return;
        };
        let b = Boot::parse(0x407f_0000, blob).unwrap();
        assert_eq!(b.cpus(), &[0, 1, 2]);
        assert_eq!(
            b.memory(),
            &[
                Region::new(0x4000_0000, 0x80_0000),
                Region::new(0x5000_0000, 0x10_0000),
            ]
        );
        assert_eq!(b.arg("name"), Some("alpha"));
        assert_eq!(b.arg_u64("wait"), Some(300));
        assert_eq!(b.psci_method(), Some("hvc"));
        assert_eq!(b.memory()[0].end(), 0x4080_0000);
        let dtb = b.dtb_region();
        assert_eq!((dtb.base, dtb.size), (0x407f_0000, blob.len() as u64));
    }

    #[test]
    fn memory_past_the_top_of_the_address_space_is_cut() {
        let dts = r#"/dts-v1/;
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    memory@0 { device_type = "memory"; reg = <0xffffffff 0xfffff000 0x0 0x2000
                                               0x0 0x40000000 0x0 0x0>; };
};
"#;
        let Some(blob) = compile(dts) else {
            eprintln!("dtc not installed: skipped");
            return;
        };
        let b = Boot::parse(0x407f_0000, blob).unwrap();
        // The range ends at u64::MAX (its size is what lies below that), as the end
        // always saturated; an empty range is left out.
        let top = Region::new(0xffff_ffff_ffff_f000, 0xfff);
        assert_eq!(b.memory(), &[top]);
        assert_eq!(top.end(), u64::MAX);
    }
}
