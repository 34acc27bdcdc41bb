//! `vgic_regs`: the virtual GICv3 as a partition drives it: distributor and
//! redistributor register accesses (`vgic::regs`, any offset, size and value a
//! guest can produce), ICC_SGI1R_EL1 writes, interrupts raised by devices, and
//! the list registers (`vgic::listregs`: flush, read_states, reset) on fake
//! registers whose guest acknowledges and deactivates what they hold.
//!
//! Input (structured, `arbitrary`): the partition's shape (vCPUs, lines, owned SPIs
//! with their hardware links, list registers per core), then a sequence of steps.
//!
//! Checked after every step: nothing panics; the vCPU masks returned name only
//! the partition's vCPUs; a distributor access changes no vCPU's private state, a
//! redistributor access changes only its own vCPU's private interrupts (never an
//! SPI, never another vCPU's), an SGI write only SGIs; and the model agrees with
//! the list registers: an interrupt the model has in a list register is held by
//! exactly one (an SPI by one across the partition), and a live list register
//! holds an interrupt of the partition the model has in a list register.
#![no_main]

use arbitrary::Arbitrary;
use ferry_hypervisor::vgic::listregs::{self, ListRegisters, MAX_LRS, Owners, field};
use ferry_hypervisor::vgic::{PRIVATE, REDIST_STRIDE, Vgic, regs};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    vcpus: u8,
    lines: u8,
    lrs: u8,
    spis: Vec<(u16, bool)>,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A guest access to the distributor (64 KiB).
    Dist {
        offset: u16,
        size: u8,
        write: Option<u64>,
    },
    /// A guest access to the redistributors, `offset` from the first frame.
    Redist {
        offset: u32,
        size: u8,
        write: Option<u64>,
    },
    /// ICC_SGI1R_EL1 written by vCPU `from`.
    Sgi { from: u8, value: u64 },
    /// A device raises `intid` (an SPI: for no particular vCPU).
    Raise { vcpu: u8, intid: u16 },
    /// An emulated level-triggered line changes.
    Level { intid: u16, level: bool },
    /// The core of `vcpu` synchronises its list registers.
    Flush { vcpu: u8 },
    /// The guest on `vcpu` acknowledges list register `lr`.
    Ack { vcpu: u8, lr: u8 },
    /// The guest on `vcpu` deactivates list register `lr`.
    Eoi { vcpu: u8, lr: u8 },
    /// The shell reads the list registers' states before a GICD/GICR read.
    ReadStates { vcpu: u8 },
    /// `vcpu` restarts (CPU_OFF, CPU_ON).
    Restart { vcpu: u8 },
}

/// A core's list registers; the fuzzer plays its guest.
struct Lrs {
    regs: Vec<u64>,
}

/// A core: its list registers and which interrupt Ferry put in each.
struct Core {
    lrs: Lrs,
    owners: Owners,
}

impl ListRegisters for Lrs {
    fn count(&self) -> usize {
        self.regs.len()
    }
    fn read(&self, n: usize) -> u64 {
        self.regs[n]
    }
    fn write(&mut self, n: usize, value: u64) {
        self.regs[n] = value;
    }
    fn set_hcr(&mut self, _value: u64) {}
}

const SIZES: [u8; 4] = [1, 2, 4, 8];

fuzz_target!(|input: Input| {
    let n = usize::from(input.vcpus % 8) + 1;
    let lines = ((u32::from(input.lines) % 32 + 1) * 32).min(1020);
    let spis: Vec<(u32, bool)> = input
        .spis
        .iter()
        .take(64)
        .map(|&(s, hw)| (PRIVATE + u32::from(s) % 988, hw))
        .collect();
    let mut v = Vgic::new(n, lines, &spis);
    let nlrs = usize::from(input.lrs) % MAX_LRS + 1;
    let mut cores: Vec<Core> = (0..n)
        .map(|_| Core {
            lrs: Lrs {
                regs: vec![0; nlrs],
            },
            owners: Owners::new(),
        })
        .collect();
    for step in &input.steps {
        let before = v.clone();
        let mask = run(step, &mut v, &mut cores, n);
        let all = (1u64 << n) - 1;
        assert_eq!(mask & !all, 0, "{step:?} names vCPUs beyond {n}: {mask:#x}");
        check_isolation(step, &before, &v, n);
        check_lrs(&v, &cores);
    }
});

/// Carries out one step; returns the vCPU mask it reported (0 if none).
fn run(step: &Step, v: &mut Vgic, cores: &mut [Core], n: usize) -> u64 {
    let size = |s: &u8| SIZES[usize::from(*s % 4)];
    match step {
        Step::Dist {
            offset,
            size: s,
            write,
        } => regs::dist(v, u64::from(*offset), size(s), *write).1,
        Step::Redist {
            offset,
            size: s,
            write,
        } => {
            let offset = u64::from(*offset) % (REDIST_STRIDE * (n as u64 + 1));
            let target = (offset / REDIST_STRIDE) as usize;
            regs::redist(v, target, offset % REDIST_STRIDE, size(s), *write).1
        }
        Step::Sgi { from, value } => regs::send_sgi(v, usize::from(*from) % n, *value),
        Step::Raise { vcpu, intid } => {
            let vcpu = usize::from(*vcpu);
            let vcpu = if vcpu >= n { usize::MAX } else { vcpu };
            v.raise(vcpu, u32::from(*intid) % 1024)
                .map_or(0, |c| 1 << c)
        }
        Step::Level { intid, level } => v
            .set_level(u32::from(*intid) % 1024, *level)
            .map_or(0, |c| 1 << c),
        Step::Flush { vcpu } => {
            let c = usize::from(*vcpu) % n;
            let Core { lrs, owners } = &mut cores[c];
            listregs::flush(lrs, owners, v, c);
            0
        }
        Step::Ack { vcpu, lr } => guest(&mut cores[usize::from(*vcpu) % n].lrs, *lr, true),
        Step::Eoi { vcpu, lr } => guest(&mut cores[usize::from(*vcpu) % n].lrs, *lr, false),
        Step::ReadStates { vcpu } => {
            let c = usize::from(*vcpu) % n;
            listregs::read_states(&cores[c].lrs, &cores[c].owners, v, c);
            0
        }
        Step::Restart { vcpu } => {
            let c = usize::from(*vcpu) % n;
            let Core { lrs, owners } = &mut cores[c];
            listregs::reset(lrs, owners, v, c, &mut |_| {});
            0
        }
    }
}

/// The guest's CPU interface on LR `lr`: acknowledge (pending to active) or
/// deactivate (active to invalid, pending and active to pending).
fn guest(lrs: &mut Lrs, lr: u8, ack: bool) -> u64 {
    let n = usize::from(lr) % lrs.regs.len();
    let value = lrs.regs[n];
    let state = value & field::STATE_MASK;
    lrs.regs[n] = match (ack, state) {
        (true, field::STATE_PENDING) => value & !field::STATE_MASK | field::STATE_ACTIVE,
        (false, field::STATE_ACTIVE) => value & !field::STATE_MASK,
        (false, field::STATE_MASK) => value & !field::STATE_MASK | field::STATE_PENDING,
        _ => value,
    };
    0
}

/// Which part of the model a step may change, by comparing it before and after.
fn check_isolation(step: &Step, before: &Vgic, after: &Vgic, n: usize) {
    match step {
        Step::Dist { .. } => {
            for c in 0..n {
                assert_eq!(
                    before.vcpus[c].irqs, after.vcpus[c].irqs,
                    "{step:?} changed vCPU {c}'s private interrupts"
                );
            }
        }
        Step::Redist { offset, .. } => {
            let target =
                (u64::from(*offset) % (REDIST_STRIDE * (n as u64 + 1)) / REDIST_STRIDE) as usize;
            assert_eq!(before.spis, after.spis, "{step:?} changed an SPI");
            assert_eq!(before.enabled, after.enabled, "{step:?} changed GICD_CTLR");
            for c in (0..n).filter(|&c| c != target) {
                assert_eq!(
                    before.vcpus[c].irqs, after.vcpus[c].irqs,
                    "{step:?} (vCPU {target}'s frames) changed vCPU {c}'s interrupts"
                );
            }
        }
        Step::Sgi { .. } => {
            assert_eq!(before.spis, after.spis, "{step:?} changed an SPI");
            for c in 0..n {
                assert_eq!(
                    before.vcpus[c].irqs[16..],
                    after.vcpus[c].irqs[16..],
                    "{step:?} changed a PPI of vCPU {c}"
                );
            }
        }
        _ => {}
    }
}

/// The model and the list registers agree (see the module comment).
fn check_lrs(v: &Vgic, cores: &[Core]) {
    // (owner, INTID) of every LR Ferry has not cleared (non-zero), the owner a
    // vCPU for its SGIs and PPIs, usize::MAX for an SPI (one state per partition).
    let mut held: Vec<(usize, u32)> = Vec::new();
    for (c, core) in cores.iter().enumerate() {
        for &value in core.lrs.regs.iter().filter(|&&value| value != 0) {
            let intid = (value & 0xffff_ffff) as u32;
            let live = value & field::STATE_MASK != 0;
            let irq = v.irq(c, intid);
            assert!(
                irq.is_some(),
                "vCPU {c}'s LR holds INTID {intid} it does not have"
            );
            assert!(
                !live || irq.is_some_and(|i| i.in_lr),
                "vCPU {c}'s LR holds INTID {intid} live, the model does not know"
            );
            let owner = if intid < PRIVATE { c } else { usize::MAX };
            assert!(
                !held.contains(&(owner, intid)),
                "INTID {intid} in two LRs (vCPU {c})"
            );
            held.push((owner, intid));
        }
    }
    for (c, p) in v.vcpus.iter().enumerate() {
        for (intid, irq) in p.irqs.iter().enumerate() {
            let found = held.contains(&(c, intid as u32));
            assert!(!irq.in_lr || found, "vCPU {c}'s INTID {intid} in no LR");
        }
    }
    for s in &v.spis {
        let found = held.contains(&(usize::MAX, s.intid));
        assert!(!s.irq.in_lr || found, "SPI {} in no LR", s.intid);
    }
}
