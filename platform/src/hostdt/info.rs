//! The discovery result: [`HostInfo`] with its [`Cpu`]s and [`Gicv3`] frames,
//! and how to read it. [`HostInfo::parse`] (in `parse.rs`) fills it in.

use super::{MAX_GICR_REGIONS, MAX_MEMORY_REGIONS, MAX_RESERVED_REGIONS};
use crate::psci::Method;
use crate::{MAX_CPUS, Region};

/// One CPU of the host tree (a `/cpus` child with `device_type = "cpu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// The node's `reg`: the CPU's MPIDR affinity bits (Aff3 in bits 39:32 when
    /// `/cpus` has `#address-cells = 2`, Aff2..Aff0 in bits 23:0).
    pub mpidr: u64,
    /// Whether `enable-method` lists `"psci"` (CPUs are started with PSCI CPU_ON).
    pub enable_method_psci: bool,
}

/// The GICv3 frames, as CPU physical addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gicv3 {
    /// The distributor (`reg[0]`).
    pub gicd: Region,
    /// The redistributor regions (`reg[1..1 + #redistributor-regions]`); the first
    /// `gicr_count` are valid.
    pub gicr: [Region; MAX_GICR_REGIONS],
    /// How many of `gicr` are valid (at least 1).
    pub gicr_count: usize,
}

/// What Ferry learns from the host device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo<'a> {
    /// The root's `model`, `""` if absent.
    pub model: &'a str,
    /// `/chosen` `bootargs`, `""` if absent.
    pub bootargs: &'a str,
    /// RAM: the `reg` entries of every enabled child of `/` with
    /// `device_type = "memory"` (zero-sized entries left out), in DT order.
    pub memory: [Region; MAX_MEMORY_REGIONS],
    /// How many of `memory` are valid.
    pub memory_count: usize,
    /// The `/memreserve/` entries, then the `reg` entries of the enabled
    /// `/reserved-memory` children that have one (zero-sized entries left out).
    pub reserved: [Region; MAX_RESERVED_REGIONS],
    /// How many of `reserved` are valid.
    pub reserved_count: usize,
    /// The enabled `/cpus` children with `device_type = "cpu"`, in DT order.
    pub cpus: [Cpu; MAX_CPUS],
    /// How many of `cpus` are valid.
    pub cpu_count: usize,
    /// The PSCI conduit from `/psci` `method` (always [`Method::Smc`]: `hvc` is refused).
    pub psci: Method,
    /// The first enabled node compatible with `arm,gic-v3`.
    pub gic: Gicv3,
}

impl<'a> HostInfo<'a> {
    /// The valid entries of [`HostInfo::memory`].
    pub fn memory(&self) -> &[Region] {
        self.memory.get(..self.memory_count).unwrap_or_default()
    }

    /// The valid entries of [`HostInfo::reserved`].
    pub fn reserved(&self) -> &[Region] {
        self.reserved.get(..self.reserved_count).unwrap_or_default()
    }

    /// The valid entries of [`HostInfo::cpus`].
    pub fn cpus(&self) -> &[Cpu] {
        self.cpus.get(..self.cpu_count).unwrap_or_default()
    }

    /// The valid redistributor regions of [`HostInfo::gic`].
    pub fn gicr(&self) -> &[Region] {
        self.gic.gicr.get(..self.gic.gicr_count).unwrap_or_default()
    }

    /// The value of the last `key=value` word of `bootargs` (words are separated
    /// by ASCII whitespace), e.g. `bootarg("ferry.selftest")` gives `Some("panic")`
    /// for `"... ferry.selftest=panic ..."`. A bare `key` word gives `Some("")`.
    pub fn bootarg(&self, key: &str) -> Option<&'a str> {
        let bootargs: &'a str = self.bootargs;
        let mut found = None;
        for word in bootargs.split_ascii_whitespace() {
            match word.split_once('=') {
                Some((k, v)) if k == key => found = Some(v),
                None if word == key => found = Some(""),
                _ => {}
            }
        }
        found
    }
}
