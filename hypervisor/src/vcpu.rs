//! Each core's life once the system is set up: run its vCPU when PSCI says so,
//! otherwise wait; and the EL2 state a guest runs under.
//!
//! One vCPU per core and no scheduler: EL1 state is never switched, only set to its
//! reset values when a vCPU (re)starts. Interrupts reach EL2 (HCR_EL2.IMO) so the
//! watchdog and the stop kick work while a guest runs.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{
    ACTLR_EL2, CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, HAFGRTR_EL2, HCR_EL2, HDFGRTR_EL2, HDFGWTR_EL2,
    HFGITR_EL2, HFGRTR_EL2, HFGWTR_EL2, MDCR_EL2, MIDR_EL1, SCTLR_EL1, VMPIDR_EL2, VTCR_EL2,
    VTTBR_EL2,
};
use ferry_platform::MAX_CPUS;
use tock_registers::interfaces::{Readable, Writeable};

use crate::current::{SYSTEM, current};
use crate::state::partition::Partition;
use crate::state::system::System;
use crate::sysregs::Features;
use crate::{cpu, guest_view, sysregs};

/// Each core's EL2 stack top, for starting over on a clean stack.
static STACK_TOPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records the calling core's EL2 stack top.
pub fn set_stack_top(top: u64) {
    STACK_TOPS[cpu::index()].store(top, Ordering::Relaxed);
}

fn stack_top() -> u64 {
    STACK_TOPS[cpu::index()].load(Ordering::Relaxed)
}

/// Sets the traps a guest runs under on a core with `f` (docs/partitions.md,
/// "System registers"): HCR_EL2, CPTR_EL2, MDCR_EL2, ACTLR_EL2, the fine-grained
/// traps, HCRX_EL2 and MPAM2_EL2, each written whatever firmware left in it; and
/// lets the guest use what the core has that Ferry never switches (each vCPU owns
/// its core): SVE at the core's full vector length, MOPS, pointer authentication.
fn set_traps(f: &Features) {
    HCR_EL2.set(sysregs::hcr_guest(f));
    CPTR_EL2.set(sysregs::cptr_guest(f));
    let pmcr_n = match f.pmuv3 {
        Some(_) => sysregs::pmcr_n(pmcr()),
        None => 0,
    };
    MDCR_EL2.set(sysregs::mdcr_guest(f, pmcr_n));
    ACTLR_EL2.set(sysregs::ACTLR_GUEST);
    if let Some(fgt) = sysregs::fgt_guest(f) {
        set_fine_grained_traps(&fgt);
    }
    if f.sve {
        // SAFETY: ZCR_EL2 (s3_4_c1_c2_0) exists (SVE implemented) and is no longer
        // trapped (TZ clear, made visible by the ISB); LEN = 0xf: EL1/EL0 may use
        // the longest vector length the core has.
        unsafe {
            core::arch::asm!("isb", "msr s3_4_c1_c2_0, {}", "isb", in(reg) 0xfu64, options(nostack))
        };
    }
    if let Some(hcrx) = sysregs::hcrx_guest(f) {
        // SAFETY: HCRX_EL2 (s3_4_c1_c2_2) exists (FEAT_HCX); only guest-facing enables.
        unsafe { core::arch::asm!("msr s3_4_c1_c2_2, {}", "isb", in(reg) hcrx, options(nostack)) };
    }
    if f.ras {
        // SAFETY: VDISR_EL2 (s3_4_c12_c1_1) exists (FEAT_RAS): the guest's DISR_EL1
        // (HCR_EL2.AMO) starts with no deferred SError.
        unsafe { core::arch::asm!("msr s3_4_c12_c1_1, xzr", options(nostack)) };
    }
    if f.mpam {
        trap_mpam();
    }
}

/// PMCR_EL0 read at EL2 (only on a core with PMUv3).
fn pmcr() -> u64 {
    let v: u64;
    // SAFETY: reads PMCR_EL0 (PMUv3 implemented; EL2 is never trapped).
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Writes the fine-grained trap registers (FEAT_FGT; HAFGRTR_EL2 with activity
/// monitors, the FEAT_FGT2 ones where they exist).
fn set_fine_grained_traps(fgt: &sysregs::Fgt) {
    HFGRTR_EL2.set(fgt.fgt);
    HFGWTR_EL2.set(fgt.fgt);
    HFGITR_EL2.set(fgt.fgt);
    HDFGRTR_EL2.set(fgt.dfgt);
    HDFGWTR_EL2.set(fgt.dfgt);
    if let Some(v) = fgt.afgt {
        HAFGRTR_EL2.set(v);
    }
    if let Some(v) = fgt.fgt2 {
        // SAFETY: FEAT_FGT2's HDFGRTR2_EL2, HDFGWTR2_EL2, HFGRTR2_EL2, HFGWTR2_EL2
        // and HFGITR2_EL2 (s3_4_c3_c1_0..3, 7) exist; only traps of EL1/EL0.
        unsafe {
            core::arch::asm!(
                "msr s3_4_c3_c1_0, {v}",
                "msr s3_4_c3_c1_1, {v}",
                "msr s3_4_c3_c1_2, {v}",
                "msr s3_4_c3_c1_3, {v}",
                "msr s3_4_c3_c1_7, {v}",
                v = in(reg) v,
                options(nostack)
            )
        };
    }
}

/// Traps MPAM0_EL1 and MPAM1_EL1 (and MPAMIDR_EL1 where it can) with MPAM2_EL2,
/// and leaves no virtual PARTID mapping (MPAMHCR_EL2 = 0) where there is one.
fn trap_mpam() {
    let idr: u64;
    // SAFETY: reads MPAMIDR_EL1 (s3_0_c10_c4_4; MPAM implemented).
    unsafe { core::arch::asm!("mrs {}, s3_0_c10_c4_4", out(reg) idr, options(nomem, nostack)) };
    let mpam2 = sysregs::mpam2_guest(idr);
    // SAFETY: MPAM2_EL2 (s3_4_c10_c5_0) exists (MPAM); only traps of EL1/EL0.
    unsafe { core::arch::asm!("msr s3_4_c10_c5_0, {}", in(reg) mpam2, options(nostack)) };
    if sysregs::mpam_has_hcr(idr) {
        // SAFETY: MPAMHCR_EL2 (s3_4_c10_c4_0) exists (MPAMIDR_EL1.HAS_HCR).
        unsafe { core::arch::asm!("msr s3_4_c10_c4_0, xzr", options(nostack)) };
    }
}

/// Starts the calling core's vCPU loop on a clean stack (never returns).
pub fn park() -> ! {
    extern "C" fn core_loop_entry() -> ! {
        core_loop()
    }
    // SAFETY: the stack top is this core's own; everything on the current stack is
    // abandoned (the loop needs nothing from it).
    unsafe { ferry_boot::context::restart_on_stack(stack_top(), core_loop_entry) }
}

/// Waits for work: runs this core's vCPU when it is switched on, or idles with
/// interrupts enabled (the watchdog and kicks are served from here).
fn core_loop() -> ! {
    let Some(system) = SYSTEM.get() else { idle() };
    let Some(Some((p, v))) = system.cores.get(cpu::index()).copied() else {
        idle()
    };
    let partition = &system.partitions[p];
    let vcpu = &partition.vcpus[v];
    loop {
        if partition.is_stopped() {
            stopped(system, partition, v);
        }
        if let Some((entry, context)) = vcpu.take_start() {
            log::debug!(
                "partition '{}' vCPU {v} starts at {entry:#x}",
                partition.label
            );
            // SAFETY: the system's stage-2 tables and VTCR are built; the frame is a
            // local copied by `enter_guest` before the stack is reset.
            unsafe { enter(system.vtcr, partition.vttbr, v, entry, context) }
        }
        // Sleep until an interrupt: CPU_ON wakes this core with an SGI. (WFE would
        // spin under emulation and slow every other core down.)
        wait_for_interrupt();
    }
}

/// This core's vCPU `v` of `partition`, which stopped: the core forgets the
/// list registers, and idles for good, unless the partition restarts (a backend
/// with `restart = "on-failure"`): then vCPU 0's core carries the restart out
/// and the others wait for it, and all return to wait for their start.
fn stopped(system: &System, partition: &Partition, v: usize) {
    crate::vgic::lr::discard(cpu::index());
    partition.vcpus[v].set_off();
    if partition.restart.is_none() {
        idle();
    }
    loop {
        if v == 0 && partition.restart_pending() {
            crate::restart::restart(system, partition);
            return;
        }
        if !partition.is_stopped() {
            return;
        }
        // A kick (the restart request) or the restart's CPU_ON SGI wakes it.
        wait_for_interrupt();
    }
}

/// Sleeps until an interrupt, with IRQs unmasked only around the WFI.
fn wait_for_interrupt() {
    // SAFETY: IRQs are unmasked only around the WFI; the vectors handle them on
    // this stack and return here.
    unsafe {
        core::arch::asm!(
            "msr daifclr, #2",
            "wfi",
            "msr daifset, #2",
            options(nostack)
        )
    };
}

/// Idles forever with interrupts enabled at EL2.
fn idle() -> ! {
    // SAFETY: unmasking IRQs at EL2: the vectors handle them and return here.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nostack)) };
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// Sets up EL2 and EL1 for vCPU `index` and enters it at `entry` with x0 = `arg`.
///
/// # Safety
/// `vttbr` must point at complete stage-2 tables for the partition.
unsafe fn enter(vtcr: u64, vttbr: u64, index: usize, entry: u64, arg: u64) -> ! {
    VTCR_EL2.set(vtcr);
    VTTBR_EL2.set(vttbr);
    let (ids, revidr, aidr) = guest_view::read_ids();
    set_traps(&Features::of(&ids));
    guest_view::set(&ids, revidr, aidr);
    // SAFETY: VPIDR_EL2 (not modelled by aarch64-cpu 11) only sets what the guest
    // reads as MIDR_EL1: the real value.
    unsafe { core::arch::asm!("msr vpidr_el2, {}", in(reg) MIDR_EL1.get(), options(nostack)) };
    // Bit 31 is RES1; the vCPU index is the virtual Aff0.
    VMPIDR_EL2.set(1 << 31 | index as u64);
    CNTHCTL_EL2.set(sysregs::CNTHCTL_GUEST);
    CNTVOFF_EL2.set(0);
    SCTLR_EL1.set(sysregs::SCTLR_EL1_RESET);
    // SAFETY: invalidates this VMID's stage-1+2 TLB entries and the I-cache before
    // the guest's first instruction (its image was written through the D-cache
    // and cleaned to PoC by the loader).
    unsafe {
        core::arch::asm!(
            "isb",
            "tlbi vmalls12e1",
            "ic iallu",
            "dsb nsh",
            "isb",
            options(nostack)
        );
    }
    if let Some((_, partition, vcpu)) = current() {
        // What the list registers still hold from before a CPU_OFF goes back.
        crate::vgic::lr::reset(cpu::index(), &mut partition.vgic.lock(), vcpu);
    }
    sync_vgic();
    // The start frame lives outside the stack that `enter_guest` resets.
    let slot = START_FRAMES[cpu::index()].0.get();
    // SAFETY: each core uses only its own slot, and only here.
    unsafe { *slot = ferry_boot::context::guest_start_frame(entry, arg) };
    // SAFETY: EL1 and stage-2 state are set above; the frame is not on the stack
    // being reset, and nothing else on that stack is live.
    unsafe { ferry_boot::context::enter_guest(&*slot, stack_top()) }
}

/// A core's vCPU start frame (x0..x30, ELR, SPSR).
struct StartFrame(core::cell::UnsafeCell<ferry_boot::trap::TrapFrame>);

// SAFETY: core n touches only START_FRAMES[n].
unsafe impl Sync for StartFrame {}

static START_FRAMES: [StartFrame; MAX_CPUS] = [const {
    StartFrame(core::cell::UnsafeCell::new(ferry_boot::trap::TrapFrame {
        x: [0; 31],
        elr: 0,
        spsr: 0,
        _pad: 0,
    }))
}; MAX_CPUS];

/// How long a reader of interrupt state waits for other cores to report their list
/// registers. Real cores answer in microseconds; under emulation on a loaded host a
/// core may not run for several milliseconds (2 ms proved too short). Bounded, so a
/// core stuck with interrupts masked cannot hang the reader.
const SYNC_WAIT_MS: u64 = 50;

/// How many times each core has synchronised its list registers with the model.
static SYNCS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Brings the calling core's list registers up to date with its vCPU's vGIC (and
/// the model up to date with what the list registers hold).
pub fn sync_vgic() {
    if let Some((_, partition, vcpu)) = current()
        && !partition.is_stopped()
    {
        let mut vgic = partition.vgic.lock();
        let others = crate::vgic::lr::flush(cpu::index(), &mut vgic, vcpu);
        drop(vgic);
        SYNCS[cpu::index()].fetch_add(1, Ordering::Release);
        // SPIs freed here that are now routed to another vCPU (rare).
        if others != 0 {
            for (i, v) in partition.vcpus.iter().enumerate() {
                if others >> i & 1 == 1 && i != vcpu {
                    crate::sgi::kick_vgic(v.core_mpidr);
                }
            }
        }
    }
}

/// Makes the cores running the other vCPUs of `partition` (all but `me`) report
/// their list registers to the model, and waits for them, at most [`SYNC_WAIT_MS`]: an emulated
/// read of pending or active state then shows interrupts held on other cores as
/// they are (Linux's `synchronize_irq` polls the active state).
pub fn sync_other_vcpus(partition: &Partition, me: usize) {
    let mut waiting = [None; MAX_CPUS];
    for (i, v) in partition.vcpus.iter().enumerate() {
        if i != me && v.power() == crate::vpsci::Power::On {
            waiting[i] = Some(SYNCS[v.core].load(Ordering::Acquire));
            crate::sgi::kick_vgic(v.core_mpidr);
        }
    }
    let deadline = cpu::counter() + SYNC_WAIT_MS * cpu::counter_frequency() / 1000;
    for (i, seen) in waiting.iter().enumerate() {
        let Some(seen) = seen else { continue };
        let core = partition.vcpus[i].core;
        while SYNCS[core].load(Ordering::Acquire) == *seen && cpu::counter() < deadline {
            core::hint::spin_loop();
        }
    }
}
