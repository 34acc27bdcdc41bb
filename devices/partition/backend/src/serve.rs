//! The serving loop: set-up from the DTB, then forever: sleep until signalled (or
//! the poll interval passes), serve new synchronous requests, drain posted
//! QueueNotify records and overflow bits, move network frames (the switch, the
//! uplink NIC, the net devices' receive queues), raise frontend interrupts.

use ferry_abi::hypercall::{
    self as hc, BACKEND_READY, CONSOLE_DEVICE_READ, CONSOLE_DEVICE_WRITE, CONSOLE_WRITE_MAX,
    IOREQ_COMPLETE, NOTIFY_FRONTEND,
};
use ferry_abi::ioreq::{self, Ioreq, PAGE_MAGIC, SYNC_SLOTS};
use ferry_partition_rt::gic::{self, VTIMER_INTID};
use ferry_partition_rt::{self as rt, Boot, arch, fail, mmu, println, time, vtimer};
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::Console;
use ferry_virtio_backend::net::Net;
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::reg;
use ferry_virtio_backend::storage::{Storage, StorageBlk};
use ferry_virtio_backend::{Device, Options, WriteEffect};

use crate::console::{CONSOLE_RX, ConsoleOut, Echo, FerryCalls, ReadResult, ToFerry};
use crate::devices::Dev;
use crate::disk::{self, PhysicalDisk};
use crate::entropy::Entropy;
use crate::hal;
use crate::net::{MacAddr, Plan, PortSink, SWITCH, now_ms};
use crate::node::{self, BackendNode, DeviceNode, Kind, MAX_DEVICES, Signal};
use crate::page::{RequestPage, SyncSlots, barrier};
use crate::status::{Refused, status};
use crate::uplink::{self, Uplink, UplinkPort};
use crate::window::SharedWindow;

/// Points where a test backend changes the standard behaviour (fault injection,
/// deterministic entropy, time stamps). The product binary uses [`Standard`].
pub trait Hooks {
    /// The entropy source of rng device `index`; `None` offers no rng there.
    fn entropy(&mut self, _index: usize) -> Option<Entropy> {
        Entropy::hardware()
    }

    /// Called for each new synchronous request before it is served (`served`
    /// earlier ones were); returns the sequence number to complete it with. May
    /// not return.
    fn on_request(&mut self, _slot: usize, req: &Ioreq, _served: u32) -> u32 {
        req.seq
    }

    /// Called just before NOTIFY_FRONTEND for device `index`.
    fn before_notify(&mut self, _index: usize, _window: &mut SharedWindow) {}

    /// Called with the bytes loopback console `index` transmitted and has not yet
    /// echoed, before they go back into its receive queue (a console served
    /// through Ferry passes its bytes on at once and is not seen here).
    fn on_console(&mut self, _index: usize, _bytes: &[u8]) {}
}

/// The standard behaviour.
pub struct Standard;

impl Hooks for Standard {}

/// Sets up every device `/ferry-backend` lists and serves them forever. `log` is the
/// prefix of every log line. Malformed set-up ends the partition (`fail!`).
///
/// Each step is a function of its own (not inlined), so this frame stays small and
/// the steps' temporaries (a device alone is several KiB) come and go on the
/// 16 KiB stack one at a time.
pub fn run(boot: &'static Boot, log: &'static str, hooks: &mut impl Hooks) -> ! {
    let node = parse_node(boot, log);
    hal::set_dma_ranges(&node.dma);
    let plan = Plan::new(&node);
    match SWITCH.with(|sw| plan.apply(sw, &node)) {
        Some(Ok(())) => {}
        e => fail!("{log}: switch set-up: {e:?}"),
    }
    let devs = take_devices(log);
    for d in node.iter() {
        device(boot, log, d, &plan, hooks, &mut devs[d.index]);
    }
    let state = setup(boot, log, &node, &plan, devs);
    serve(state, hooks)
}

/// `/ferry-backend`, checked.
#[inline(never)]
fn parse_node(boot: &Boot, log: &str) -> BackendNode {
    let node = match node::parse(boot.fdt(), mmu::NORMAL_RAM) {
        Ok(n) => n,
        Err(e) => fail!("{log}: {e}"),
    };
    if !mmu::is_normal(node.request_page, ioreq::PAGE_SIZE as u64) {
        fail!(
            "{log}: request page {:#x} is not in memory this partition maps as Normal",
            node.request_page
        );
    }
    node
}

/// The rest of the set-up once the devices are built: the uplink, the request
/// page, the interrupts, BACKEND_READY.
#[inline(never)]
fn setup(
    boot: &Boot,
    log: &'static str,
    node: &BackendNode,
    plan: &Plan,
    devs: &'static mut [Option<Dev>; MAX_DEVICES],
) -> Served {
    let has_net = plan.ports.iter().any(Option::is_some);
    let uplink = uplink_setup(log, node, plan);

    // SAFETY: the page is mapped Normal (checked above) for the program's life;
    // only Ferry and this loop touch it.
    let page = unsafe { RequestPage::new(node.request_page as usize) };
    if page.magic() != PAGE_MAGIC {
        fail!(
            "{log}: request page at {:#x}: magic {:#x}, expected {PAGE_MAGIC:#x}",
            node.request_page,
            page.magic()
        );
    }
    let (doorbell, poll_ticks) = signal_setup(log, boot, node.signal);
    let storage_irqs = storage_irqs(node);
    let uplink_irq = node.uplink.map(|u| enable_level_spi(u.device.spi));
    let count = node.iter().count();
    match node.signal {
        Signal::Doorbell { spi } => println!(
            "{log}: request page {:#x}, doorbell SPI {spi} (INTID {}), {count} device(s)",
            node.request_page,
            spi + 32
        ),
        Signal::Poll { interval_ms } => println!(
            "{log}: request page {:#x}, polled every {interval_ms} ms, {count} device(s)",
            node.request_page
        ),
    }
    if let Err(ret) = hypercall(BACKEND_READY, 0, 0, 0) {
        println!("{log}: BACKEND_READY = {ret} (Ferry without the call: serving anyway)");
    }
    Served {
        log,
        page,
        devs,
        doorbell,
        poll_ticks,
        storage_irqs,
        uplink,
        uplink_irq,
        has_net,
    }
}

/// What the serving loop works with, once set up.
struct Served {
    log: &'static str,
    page: RequestPage,
    devs: &'static mut [Option<Dev>; MAX_DEVICES],
    /// The doorbell's INTID (none: polled).
    doorbell: Option<u32>,
    /// The poll period in counter ticks (polled).
    poll_ticks: u64,
    /// Each physical disk's INTID, by device index.
    storage_irqs: [Option<u32>; MAX_DEVICES],
    uplink: Option<UplinkPort>,
    /// The uplink NIC's INTID.
    uplink_irq: Option<u32>,
    /// Some device is a net device.
    has_net: bool,
}

/// The serving loop. A function of its own (not inlined): the set-up's
/// temporaries (a device is several KiB) and the loop's do not share one frame
/// on the 16 KiB stack.
#[inline(never)]
fn serve(state: Served, hooks: &mut impl Hooks) -> ! {
    let Served {
        log,
        page,
        devs,
        doorbell,
        poll_ticks,
        storage_irqs,
        mut uplink,
        uplink_irq,
        has_net,
    } = state;
    let mut slots = SyncSlots::new();
    let mut served = 0u32;
    let mut doorbells = 0u32;
    // Bit k: device k's physical disk raised its interrupt.
    let mut answered = 0u32;
    // Network work left for the next round: transmit requests waiting for a new
    // budget, frames the uplink received beyond its budget.
    let mut more = false;
    loop {
        // Sleep unless something is visibly waiting (a doorbell raised after this
        // check is pending in the GIC and makes WFI return at once).
        if !more && !slots.any_new(&page) && !page.posted_waiting() && !page.console_input_waiting()
        {
            wfi();
        }
        loop {
            let i = gic::ack();
            if i >= gic::SPECIAL {
                break;
            }
            if Some(i) == doorbell {
                doorbells += 1;
                if doorbells == 1 {
                    println!("{log}: first doorbell");
                }
            } else if i == VTIMER_INTID {
                vtimer::arm_in(poll_ticks);
            } else if let Some(k) = storage_irqs.iter().position(|x| *x == Some(i)) {
                // Level: quiet the device before the EOI.
                if let Some(d) = devs[k].as_mut() {
                    d.storage_ack();
                }
                answered |= 1 << k;
            } else if Some(i) == uplink_irq {
                // Level: quiet the device before the EOI.
                if let Some(u) = uplink.as_mut()
                    && u.nic.ack()
                {
                    println!(
                        "{log}: net port {}: uplink link {}",
                        u.port.index(),
                        if u.nic.link_up() { "up" } else { "down" }
                    );
                }
            }
            gic::eoi(i);
        }
        barrier();

        for slot in 0..SYNC_SLOTS {
            let Some(r) = slots.take(&page, slot) else {
                continue;
            };
            let seq = hooks.on_request(slot, &r, served);
            let index = ioreq::slot_device(slot);
            let value = match devs.get_mut(index).and_then(Option::as_mut) {
                Some(d) if r.is_valid(u64::from(reg::WINDOW_SIZE)) => serve_sync(log, index, d, &r),
                // No such device or a malformed record: reads all-ones, writes ignored.
                _ => u64::MAX,
            };
            served += 1;
            if let Err(ret) = hypercall(IOREQ_COMPLETE, slot as u64, u64::from(seq), value) {
                println!("{log}: IOREQ_COMPLETE(slot {slot}, seq {seq}) = {ret}");
            }
        }

        page.drain_posted(|r| {
            let index = usize::from(r.device);
            let Some(d) = devs.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            if r.offset == u64::from(reg::QUEUE_NOTIFY)
                && r.dir == ioreq::dir::WRITE
                && let WriteEffect::QueueNotify(q) = d.mmio_write(reg::QUEUE_NOTIFY, 4, r.data)
            {
                d.serve(log, index, q);
            }
        });
        let bits = page.take_overflow();
        if bits != 0 {
            for (i, d) in devs.iter_mut().enumerate() {
                let Some(d) = d.as_mut() else { continue };
                for q in (0..32u16).filter(|q| bits & (1 << q) != 0) {
                    d.serve(log, i, q);
                }
            }
        }

        // Transmit requests that waited for this round's budget.
        if more {
            for (i, d) in devs.iter_mut().enumerate() {
                if let Some(d) = d.as_mut() {
                    d.net_resume(log, i);
                }
            }
        }

        for (k, d) in devs.iter_mut().enumerate() {
            if answered & (1 << k) != 0
                && let Some(d) = d.as_mut()
            {
                d.storage_answered(log, k);
            }
        }
        answered = 0;

        // The uplink: received frames into the switch, queued ones out.
        more = false;
        if let Some(u) = uplink.as_mut() {
            more = u.service(&SWITCH);
            if u.newly_broken() {
                println!(
                    "{log}: net port {}: uplink: the NIC used a buffer it was not given: no longer driven",
                    u.port.index()
                );
            }
        }

        // Typed input Ferry holds for consoles (and input left over from an
        // earlier round, now that the driver may have given receive buffers).
        let input = page.take_console_input();
        for (i, d) in devs.iter_mut().enumerate() {
            let Some(d) = d.as_mut() else { continue };
            if let (true, Some(f)) = (input & (1 << i) != 0, d.to_ferry()) {
                f.input_waiting();
            }
            d.console_input(log, i);
        }

        // Frames the switch holds for the net devices (into their receive queues).
        if has_net {
            SWITCH.with(|sw| devs.iter_mut().flatten().for_each(|d| d.net_deliver(sw)));
        }

        // Interrupts for the frontend (a loopback console's echo first).
        for (i, d) in devs.iter_mut().enumerate() {
            let Some(d) = d.as_mut() else { continue };
            if let Some(bytes) = d.console_pending() {
                hooks.on_console(i, bytes);
            }
            d.echo(log, i);
            let causes = d.take_causes();
            if causes == 0 {
                continue;
            }
            if let Some(w) = d.window() {
                hooks.before_notify(i, w);
            }
            // x2 is reserved: the frontend reads the causes from InterruptStatus.
            if let Err(ret) = hypercall(NOTIFY_FRONTEND, i as u64, 0, 0) {
                println!(
                    "{log}: NOTIFY_FRONTEND(device {i} ({}), causes {causes:#x}) = {ret}",
                    d.kind()
                );
            }
        }

        if has_net {
            report_drops(log, devs, uplink.as_mut());
            for d in devs.iter_mut().flatten() {
                more |= d.net_round_end();
            }
        }
    }
}

/// Logs the ports' drops that are due ([`crate::net::DropLog`]).
fn report_drops(log: &str, devs: &mut [Option<Dev>], uplink: Option<&mut UplinkPort>) {
    let now = now_ms();
    SWITCH.with(|sw| {
        for d in devs.iter_mut().flatten() {
            if let Some(line) = d.net_drops(sw, now) {
                println!("{log}: {line}");
            }
        }
        if let Some(line) = uplink.and_then(|u| u.drops(sw, now)) {
            println!("{log}: {line}");
        }
    });
}

/// The devices, kept in `.bss`/`.data` rather than on the 16 KiB stack (a net
/// device alone holds a frame buffer). Taken once.
fn take_devices(log: &str) -> &'static mut [Option<Dev>; MAX_DEVICES] {
    static mut DEVS: [Option<Dev>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if TAKEN.swap(true, core::sync::atomic::Ordering::AcqRel) {
        fail!("{log}: the serving loop runs once");
    }
    let devs = &raw mut DEVS;
    // SAFETY: handed out once (the flag above); nothing else names DEVS.
    unsafe { &mut *devs }
}

/// Sets the uplink NIC up (if `node` has one) and logs it. Failures end the
/// partition.
#[inline(never)]
fn uplink_setup(log: &str, node: &BackendNode, plan: &Plan) -> Option<UplinkPort> {
    let (u, port) = (node.uplink?, plan.uplink?);
    let at = u.device.addr;
    // SAFETY: `node::parse` checked the address is device memory the runtime maps;
    // Ferry's config gave this partition that passthrough device, and nothing else
    // in the node names it (no disk's storage).
    let nic = match unsafe { Uplink::new(at) } {
        Ok(n) => n,
        Err(e) => fail!("{log}: net-uplink at {at:#x}: {e}"),
    };
    println!(
        "{log}: net port {}: uplink virtio-net at {at:#x} (SPI {}), MAC {}, link {}, segment {}, {} receive buffers",
        port.index(),
        u.device.spi,
        MacAddr(nic.mac()),
        match (nic.has_status(), nic.link_up()) {
            (false, _) => "up (the device reports no status)",
            (true, true) => "up",
            (true, false) => "down",
        },
        u.segment,
        uplink::QUEUE
    );
    Some(UplinkPort::new(nic, port))
}

/// Builds device `d` (a net device: its port of `plan`) into `slot`. Not inlined:
/// a device is several KiB, and its temporaries stay out of the serving loop's
/// frame on the 16 KiB stack.
#[inline(never)]
fn device(
    boot: &Boot,
    log: &str,
    d: &DeviceNode,
    plan: &Plan,
    hooks: &mut impl Hooks,
    slot: &mut Option<Dev>,
) {
    let m = d.memory;
    // SAFETY: `node::parse` checked the window lies in the Normal RAM the runtime
    // maps; Ferry maps the frontend's memory there (`shared-memory`), and nothing
    // else in this partition uses that range.
    let w = unsafe { SharedWindow::new(m) };
    // Each kind is written into the slot where it is built (no device-sized
    // temporaries on the stack).
    match d.kind {
        Kind::Rng => match hooks.entropy(d.index) {
            Some(e) => *slot = Some(Dev::Rng(Device::new(Rng::new(e), w, Options::new()))),
            None => {
                println!(
                    "{log}: device {}: rng: no entropy source (this CPU has no FEAT_RNG and there is no board TRNG driver): offered as DeviceID 0, no device",
                    d.index
                );
                *slot = Some(Dev::Absent);
            }
        },
        Kind::Blk if d.storage.is_some() => physical_disk(log, d, w, slot),
        Kind::Blk => {
            let disk = disk_memory(boot, log, d);
            *slot = Some(Dev::Blk(Device::new(
                Blk::new(disk, b"ferry-ramdisk").read_only(d.read_only),
                w,
                Options::new(),
            )));
        }
        Kind::Console => {
            let out = match d.loopback {
                true => ConsoleOut::Loopback(Echo::new()),
                false => ConsoleOut::Ferry(ToFerry::new(d.index, FERRY_CALLS)),
            };
            let console = Console::<ConsoleOut, CONSOLE_RX>::new(out);
            *slot = Some(Dev::Console(Device::new(console, w, Options::new())));
        }
        Kind::Net => {
            let (Some(net), Some(port)) = (d.net, plan.ports[d.index]) else {
                fail!("{log}: device {}: net without a port", d.index);
            };
            println!(
                "{log}: net port {}: device {}, MAC {}, segment {}, frontend memory [{:#x}, {:#x}) at {:#x}",
                port.index(),
                d.index,
                MacAddr(net.mac),
                net.segment,
                m.fe_base,
                m.fe_base + m.size,
                m.be_addr
            );
            let model = Net::new(net.mac, PortSink::new(port, &SWITCH));
            *slot = Some(Dev::Net(Device::new(model, w, Options::new())));
        }
    }
    println!(
        "{log}: device {}: {}, frontend memory [{:#x}, {:#x}) at {:#x}",
        d.index,
        slot.as_ref().map_or("absent", Dev::kind),
        m.fe_base,
        m.fe_base + m.size,
        m.be_addr
    );
}

/// A blk device over the physical disk `d.storage` names, into `slot`: sets the
/// device up and enables its interrupt (level, routed here). Failures end the
/// partition.
fn physical_disk(log: &str, d: &DeviceNode, w: SharedWindow, slot: &mut Option<Dev>) {
    let Some(s) = d.storage else {
        fail!("{log}: device {}: no storage", d.index);
    };
    // SAFETY: `node::parse` checked the address is device memory the runtime maps;
    // Ferry's config gave this partition that passthrough device, and only this
    // device node names it.
    let phys = match unsafe { PhysicalDisk::new(s.addr) } {
        Ok(p) => p,
        Err(e) => fail!("{log}: device {}: storage at {:#x}: {e}", d.index, s.addr),
    };
    let Some(bufs) = disk::take_buffers() else {
        fail!(
            "{log}: device {}: only one physical disk per backend",
            d.index
        );
    };
    let model = StorageBlk::new(phys, bufs, b"ferry-disk", d.read_only);
    println!(
        "{log}: device {}: physical virtio-blk at {:#x} (SPI {}): {} sectors{}{}, {} requests in flight at most",
        d.index,
        s.addr,
        s.spi,
        model.storage().capacity(),
        if model.storage().has_flush() {
            ", flush"
        } else {
            ", write-through"
        },
        if d.read_only || model.storage().read_only() {
            ", read-only"
        } else {
            ""
        },
        model.depth()
    );
    *slot = Some(Dev::Storage(Device::new(model, w, Options::new())));
}

/// A blk device's RAM disk: its `disk` range, which must be this partition's RAM,
/// clear of the image and the DTB (Ferry zeroed it and loaded the disk image).
fn disk_memory(boot: &Boot, log: &str, d: &DeviceNode) -> &'static mut [u8] {
    let Some(disk) = d.disk else {
        fail!("{log}: device {}: blk without a disk", d.index);
    };
    let in_ram = boot
        .memory()
        .iter()
        .any(|r| disk.base >= r.base && disk.end() <= r.end());
    let clear = |a: u64, b: u64| disk.end() <= a || disk.base >= b;
    let dtb = boot.dtb_region();
    if !in_ram
        || !clear(rt::image_start() as u64, rt::image_end() as u64)
        || !clear(dtb.base, dtb.end())
    {
        fail!(
            "{log}: device {}: disk [{:#x}, {:#x}) is not free RAM of this partition (image [{:#x}, {:#x}), DTB [{:#x}, {:#x}))",
            d.index,
            disk.base,
            disk.end(),
            rt::image_start(),
            rt::image_end(),
            dtb.base,
            dtb.end()
        );
    }
    println!(
        "{log}: device {}: RAM disk [{:#x}, {:#x}), {} sectors",
        d.index,
        disk.base,
        disk.end(),
        disk.size / 512
    );
    // SAFETY: RAM of this partition, clear of the image (code, data, stacks) and the
    // DTB, mapped Normal (`node::parse`), and handed out once: `ferry check` refuses
    // overlapping disks.
    unsafe { core::slice::from_raw_parts_mut(disk.base as *mut u8, disk.size as usize) }
}

/// Serves a synchronous access to device `d`; returns what a read gets.
fn serve_sync(log: &str, index: usize, d: &mut Dev, r: &Ioreq) -> u64 {
    if r.dir == ioreq::dir::READ {
        return d.mmio_read(r.offset as u32, r.size);
    }
    if let WriteEffect::QueueNotify(q) = d.mmio_write(r.offset as u32, r.size, r.data) {
        d.serve(log, index, q);
    }
    0
}

/// Enables each physical disk's interrupt (level, routed here); returns the INTID
/// per device index.
fn storage_irqs(node: &node::BackendNode) -> [Option<u32>; MAX_DEVICES] {
    let mut irqs = [None; MAX_DEVICES];
    for d in node.iter() {
        if let Some(s) = d.storage {
            irqs[d.index] = Some(enable_level_spi(s.spi));
        }
    }
    irqs
}

/// Enables a passthrough device's SPI (level, routed here); returns its INTID.
fn enable_level_spi(spi: u32) -> u32 {
    let intid = spi + 32;
    gic::set_dist_config(intid, false);
    gic::set_dist_priority(intid, 0xa0);
    gic::set_dist_router(intid, gic::router_for(arch::mpidr()));
    gic::dist_write_bit(gic::gicd::ISENABLER, intid);
    intid
}

/// Enables what wakes the loop: the doorbell SPI (edge, Group 1, routed here) or,
/// for a polled backend, the virtual timer. Interrupts stay masked (WFI wakes on a
/// pending one all the same). Returns the doorbell INTID and the poll period.
fn signal_setup(log: &str, boot: &Boot, signal: Signal) -> (Option<u32>, u64) {
    if let Err(e) = gic::init(boot)
        .and_then(|_| gic::dist_init())
        .and_then(|_| gic::cpu_init().map(|_| ()))
    {
        fail!("{log}: GIC set-up: {e:?}");
    }
    match signal {
        Signal::Doorbell { spi } => {
            let intid = spi + 32;
            gic::set_dist_config(intid, true);
            gic::set_dist_priority(intid, 0xa0);
            gic::set_dist_router(intid, gic::router_for(arch::mpidr()));
            gic::dist_write_bit(gic::gicd::ISENABLER, intid);
            (Some(intid), 0)
        }
        Signal::Poll { interval_ms } => {
            let ticks = time::ms_to_ticks(u64::from(interval_ms));
            gic::set_private_priority(VTIMER_INTID, 0xb0);
            gic::enable_private(1 << VTIMER_INTID);
            vtimer::arm_in(ticks);
            (None, ticks)
        }
    }
}

fn wfi() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: waits for an interrupt; no memory effects.
    unsafe {
        core::arch::asm!("wfi", options(nostack, preserves_flags))
    };
}

/// A console's way to Ferry: `CONSOLE_DEVICE_WRITE` and `CONSOLE_DEVICE_READ`.
const FERRY_CALLS: FerryCalls = FerryCalls {
    write: console_write,
    read: console_read,
};

/// `CONSOLE_DEVICE_WRITE(index, bytes)`: bytes taken or a negative status.
fn console_write(index: usize, bytes: &[u8]) -> i64 {
    let (len, w) = hc::console_args(bytes);
    let x0 = u64::from(CONSOLE_DEVICE_WRITE);
    arch::hvc6([x0, index as u64, len, w[0], w[1], w[2]])[0] as i64
}

/// `CONSOLE_DEVICE_READ(index)`: up to 24 typed bytes, or a negative status.
fn console_read(index: usize) -> ReadResult {
    let r = arch::hvc(u64::from(CONSOLE_DEVICE_READ), index as u64, 0, 0, 0);
    if (r[0] as i64) < 0 {
        return Err(r[0] as i64);
    }
    let mut out = [0; CONSOLE_WRITE_MAX];
    let n = hc::console_bytes(r[0], [r[1], r[2], r[3]], &mut out).map_or(0, <[u8]>::len);
    Ok((n, out))
}

/// Ferry hypercall `function` with x1..x3 (`HVC #0`), for calls that return only a
/// status.
fn hypercall(function: u32, a1: u64, a2: u64, a3: u64) -> Result<(), Refused> {
    status(arch::hvc(u64::from(function), a1, a2, a3, 0)[0])
}
