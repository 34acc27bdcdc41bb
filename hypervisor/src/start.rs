//! The primary CPU's path from `entry.S` to a running system.
//!
//! Phase 1, MMU off (no locks, no read-modify-write atomics, no heap): check the
//! exception level and load address, copy the host device tree without its NOP
//! tokens, read it, plan and build the EL2 map, turn the MMU and caches on.
//! Phase 2: logger, heap, GIC; the system from the pack (`system::build`); the
//! other cores; then every core parks in its vCPU loop (`vcpu::park`). Without a
//! pack the run ends once all CPUs are online.

use core::cell::UnsafeCell;
use core::fmt::Write;

use aarch64_cpu::registers::ID_AA64MMFR0_EL1;
use ferry_boot::layout::ImageLayout;
use ferry_boot::mmu::{self, Table, Tables};
use ferry_boot::secondary::SecondaryBoot;
use ferry_platform::Region;
use ferry_platform::board::BOARD;
use ferry_platform::gicv3::Gic;
use ferry_platform::hostdt::{self, HostInfo};
use ferry_platform::uart::RawWriter;
use tock_registers::interfaces::Readable;

use crate::el2map::Plan;
use crate::exit::{self, ExitCode};
use crate::{cpu, heap, irq, logger, selftest, smp, system, vcpu};

/// Room for the NOP-free copy of the host device tree.
const DT_COPY_SIZE: usize = 256 * 1024;
/// Translation tables available to the EL2 map.
const EL2_TABLES: usize = 32;

/// Memory only the primary CPU touches, and only during phase 1.
struct BootOnly<T>(UnsafeCell<T>);

// SAFETY: only the primary CPU accesses a `BootOnly`, before any other CPU runs.
unsafe impl<T> Sync for BootOnly<T> {}

static DT_COPY: BootOnly<[u8; DT_COPY_SIZE]> = BootOnly(UnsafeCell::new([0; DT_COPY_SIZE]));
static EL2_TABLE_POOL: BootOnly<[Table; EL2_TABLES]> =
    BootOnly(UnsafeCell::new([Table::EMPTY; EL2_TABLES]));

/// Ends the run before the logger exists.
fn refuse(reason: core::fmt::Arguments<'_>) -> ! {
    let _ = writeln!(RawWriter(BOARD.console), "ferry: cannot start: {reason}");
    exit::end(ExitCode::BootRefused, format_args!("boot refused"))
}

/// Entered from `entry.S` on the primary CPU with the MMU off.
#[unsafe(no_mangle)]
extern "C" fn ferry_primary_entry(dtb: usize, el: u64, load_delta: u64) -> ! {
    if load_delta != 0 {
        // Code that formats text follows absolute pointers: only plain strings here.
        BOARD
            .console
            .write_str("ferry: cannot start: the image is not at its link address\n");
        BOARD.console.write_str("ferry: exit 3 (boot refused)\n");
        ferry_platform::exit::end_run(ExitCode::BootRefused.code());
    }
    if el != 2 {
        refuse(format_args!(
            "entered at EL{el}, Ferry runs at EL2 (on QEMU use -M virt,virtualization=on)"
        ));
    }
    let host = read_host_dt(dtb);
    let Some(primary) = host.cpus().iter().position(|c| c.mpidr == cpu::mpidr()) else {
        refuse(format_args!(
            "the boot CPU (MPIDR {:#x}) is not among the host device tree's /cpus",
            cpu::mpidr()
        ));
    };
    cpu::set_index(primary);

    let pa_range = ID_AA64MMFR0_EL1.get() & 0xf;
    let Some(pa_bits) = mmu::el2::pa_bits(pa_range) else {
        refuse(format_args!(
            "ID_AA64MMFR0_EL1.PARange {pa_range:#x} is reserved"
        ));
    };
    let image = ferry_boot::layout::image();
    let tables = build_el2_map(&host, &image, pa_bits);
    let tcr = mmu::el2::tcr(pa_bits);
    let sctlr = mmu::el2::sctlr_enabled();
    let ttbr0 = tables.root_pa();
    // SAFETY: everything written so far (tables, .bss, the device-tree copy, this
    // stack) went straight to RAM with the MMU off; dropping stale cache lines
    // over Ferry's writable sections makes the cached view match RAM. The tables
    // identity-map the image, RAM and the devices used from here on.
    unsafe {
        ferry_boot::cache::invalidate_range(image.rodata_end, image.end - image.rodata_end);
        mmu::el2::enable(ttbr0, tcr, sctlr);
    }
    let template = SecondaryBoot {
        mair: mmu::el2::MAIR,
        tcr,
        ttbr0,
        sctlr,
        ..Default::default()
    };
    run(host, primary, template, tables.tables_used(), dtb, pa_bits)
}

/// Copies the host device tree at `dtb` without its NOP tokens and reads it
/// (phase 1: MMU off).
fn read_host_dt(dtb: usize) -> HostInfo<'static> {
    // SAFETY: the boot protocol hands over a device tree at `dtb`; blob_at reads
    // its header and bounds the blob by the header's size.
    let blob = match unsafe { hostdt::blob_at(dtb) } {
        Ok(blob) => blob,
        Err(e) => refuse(format_args!("host device tree at {dtb:#x}: {e}")),
    };
    // SAFETY: only this CPU runs; DT_COPY is written here and then only read.
    let copy: &'static mut [u8] = unsafe { &mut *DT_COPY.0.get() };
    let len = match hostdt::copy_without_nops(blob, copy) {
        Ok(len) => len,
        Err(e) => refuse(format_args!("host device tree at {dtb:#x}: {e}")),
    };
    let copy: &'static [u8] = &copy[..len];
    match HostInfo::parse(copy) {
        Ok(host) => host,
        Err(e) => refuse(format_args!("host device tree: {e}")),
    }
}

/// Plans and builds the EL2 identity map (image, RAM, console, GIC) in the boot
/// table pool (phase 1: MMU off).
fn build_el2_map(host: &HostInfo<'_>, image: &ImageLayout, pa_bits: u32) -> Tables<'static> {
    let gic = host.gic;
    let mut devices = [
        BOARD.console.mmio(),
        gic.gicd,
        Region::default(),
        Region::default(),
        Region::default(),
        Region::default(),
    ];
    for (slot, r) in devices[2..].iter_mut().zip(host.gicr()) {
        *slot = *r;
    }
    let device_count = 2 + host.gicr().len().min(4);
    let plan = match Plan::new(image, host.memory(), &devices[..device_count]) {
        Ok(plan) => plan,
        Err(e) => refuse(format_args!("EL2 map: {e}")),
    };
    // SAFETY: only this CPU runs; the pool is used for the EL2 tables only.
    let pool: &'static mut [Table] = unsafe { &mut *EL2_TABLE_POOL.0.get() };
    let pool_pa = pool.as_ptr() as u64;
    let mut tables = match Tables::new(pool, pool_pa, pa_bits) {
        Ok(t) => t,
        Err(e) => refuse(format_args!("EL2 tables: {e}")),
    };
    if let Err(e) = plan.build(&mut tables) {
        refuse(format_args!("EL2 map: {e}"));
    }
    tables
}

/// The first log lines: who and where Ferry is, the host's RAM, CPUs and PSCI.
fn report_boot(host: &HostInfo<'_>, primary: usize, tables: usize, dtb: usize) {
    let image = ferry_boot::layout::image();
    log::info!(
        "Ferry {} on {} ({})",
        env!("CARGO_PKG_VERSION"),
        BOARD.name,
        host.model
    );
    log::info!(
        "entered at EL2, image [{:#x}, {:#x}), host device tree at {dtb:#x}, EL2 map in {tables} tables",
        image.start,
        image.end
    );
    for r in host.memory() {
        log::info!("RAM [{:#x}, {:#x}) {} MiB", r.base, r.end(), r.size >> 20);
    }
    log::info!(
        "{} CPUs in the device tree, booted on cpu{primary}; PSCI via {:?}",
        host.cpus().len(),
        host.psci
    );
    match ferry_platform::psci::Error::check(ferry_platform::psci::call(
        host.psci,
        ferry_platform::psci::function::VERSION,
        0,
        0,
        0,
    )) {
        Ok(v) => log::info!("PSCI {}.{}", v >> 16, v & 0xffff),
        Err(e) => log::warn!("PSCI_VERSION failed: {}", e.name()),
    }
}

/// Sets up the physical GIC's distributor and this core's redistributor.
fn init_gic(host: &HostInfo<'_>) -> &'static Gic {
    // SAFETY: the GIC regions come from the host device tree and are mapped as
    // device memory by the EL2 map; only this driver programs them.
    let gic = crate::physgic::GIC.call_once(|| unsafe { Gic::new(host.gic.gicd, host.gicr()) });
    if let Err(e) = gic.init_distributor() {
        exit::end(ExitCode::BootRefused, format_args!("GIC distributor: {e}"));
    }
    match gic.init_cpu(cpu::mpidr()) {
        Ok(rd) => {
            irq::enable_private(gic, rd);
            gic.enable_private(rd, irq::WATCHDOG_PPI);
            log::info!(
                "GICv3: distributor {:#x} with {} interrupt lines, redistributor {rd:#x}",
                host.gic.gicd.base,
                gic.lines()
            )
        }
        Err(e) => exit::end(ExitCode::BootRefused, format_args!("GIC: {e}")),
    }
    gic
}

/// Phase 2: MMU and caches on.
fn run(
    host: HostInfo<'static>,
    primary: usize,
    template: SecondaryBoot,
    tables: usize,
    dtb: usize,
    pa_bits: u32,
) -> ! {
    let level = match logger::level_from_bootarg(host.bootarg("ferry.log")) {
        Ok(level) => level,
        Err(bad) => refuse(format_args!(
            "ferry.log={bad:?} is not a log level (error, warn, info, debug, trace)"
        )),
    };
    logger::init(level);
    heap::init();
    report_boot(&host, primary, tables, dtb);
    let gic = init_gic(&host);
    vcpu::set_stack_top(ferry_boot::layout::primary_stack_top());
    smp::mark_online();

    selftest::run(
        host.bootarg("ferry.selftest"),
        (1u64 << pa_bits) - mmu::PAGE_SIZE,
    );

    // The system is complete before any other core looks at it.
    let image = ferry_boot::layout::image();
    let system =
        system::find_pack(&image).map(|pack| system::build(pack, &host, &image, pa_bits, gic));

    let expected = host.cpus().len();
    let online = smp::start_secondaries(host.cpus(), primary, host.psci, template);
    if online != expected {
        log::error!("only {online} of {expected} CPUs came online");
        exit::end(
            ExitCode::CpusMissing,
            format_args!("{online} of {expected} CPUs online"),
        );
    }
    log::info!("{online} of {expected} CPUs online");
    match system {
        None => {
            log::info!("no partitions configured: nothing to run");
            exit::end(ExitCode::Success, format_args!("all {online} CPUs online"))
        }
        Some(system) => {
            log::info!("starting {} partition(s)", system.partitions.len());
            vcpu::park()
        }
    }
}
