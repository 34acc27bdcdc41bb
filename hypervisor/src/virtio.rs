//! The virtio path: a frontend partition's virtio-mmio accesses forwarded to its
//! backend partition as IOREQ records (`docs/ioreq.md`).
//!
//! - A QueueNotify write is posted: appended to the backend's posted ring (or, with
//!   the ring full, coalesced into `overflow_queues`), the doorbell raised, and the
//!   frontend continues.
//! - Any other access fills the frontend vCPU's sync slot (`device * 8 + vCPU`,
//!   `device` numbered per backend), rings the doorbell (a polled backend has none)
//!   and waits in EL2 (WFE; the backend's completion sends an event) until the
//!   completion or the device's deadline. Until the backend has started serving
//!   (BACKEND_READY or its first completion), the wait may last up to
//!   `BACKEND_START_MS` after the backend was started, so a frontend that probes
//!   early does not fail a device whose backend is still booting.
//! - Faults never hang the frontend: a missed deadline, a completion naming nothing
//!   pending, or a stopped backend fails the device: the access completes (reads
//!   all-ones), the device's Status reads DEVICE_NEEDS_RESET, its InterruptStatus a
//!   configuration change, a configuration-change interrupt fires, and the log says
//!   why. Other devices and partitions go on.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use ferry_abi::hypercall::BACKEND_START_MS;
use ferry_abi::ioreq::{self, Ioreq};
use ferry_platform::Region;

use crate::partition::{Partition, System};
use crate::{cpu, mmio};

/// virtio-mmio registers Ferry looks at itself.
const QUEUE_NOTIFY: u64 = 0x50;
const INTERRUPT_STATUS: u64 = 0x60;
const STATUS: u64 = 0x70;
/// Status bit DEVICE_NEEDS_RESET; InterruptStatus bit "configuration change".
const DEVICE_NEEDS_RESET: u32 = 0x40;
const CONFIG_CHANGE: u32 = 0x2;

/// One routed virtio device.
pub struct Route {
    /// Its index in the config (for messages).
    pub index: usize,
    /// Its number among its backend's devices: the IOREQ `device` field, the
    /// NOTIFY_FRONTEND argument; sync slots `backend_index * 8 ..`.
    pub backend_index: usize,
    /// Where the frontend sees its virtio-mmio window.
    pub window: Region,
    /// Frontend and backend partition ids.
    pub frontend: usize,
    /// Backend partition id.
    pub backend: usize,
    /// The device's interrupt in the frontend (INTID).
    pub fe_intid: u32,
    /// How long a synchronous access may wait, in counter ticks.
    pub deadline_ticks: u64,
    /// Deadline in milliseconds (for messages).
    pub deadline_ms: u32,
    failed: AtomicBool,
    /// The last Status the frontend wrote (shown after a failure).
    status: AtomicU32,
}

impl Route {
    /// A working route.
    #[allow(clippy::too_many_arguments)] // one call site, each argument named there
    pub fn new(
        index: usize,
        backend_index: usize,
        window: Region,
        frontend: usize,
        backend: usize,
        fe_intid: u32,
        deadline_ms: u32,
    ) -> Route {
        Route {
            index,
            backend_index,
            window,
            frontend,
            backend,
            fe_intid,
            deadline_ticks: u64::from(deadline_ms) * cpu::counter_frequency() / 1000,
            deadline_ms,
            failed: AtomicBool::new(false),
            status: AtomicU32::new(0),
        }
    }
}

/// A backend's request page and Ferry's private view of its slots.
pub struct RequestPage {
    /// The page (Ferry's address = its physical address).
    pub base: u64,
    /// The backend's doorbell interrupt (INTID in its vGIC); `None`: it polls.
    pub doorbell: Option<u32>,
    /// Counter value when the page was set up (the backend's start, near enough).
    created_at: u64,
    /// Counter value when the backend started serving (BACKEND_READY or its first
    /// completion); 0 until then.
    ready_at: AtomicU64,
    next_seq: [AtomicU32; ioreq::SYNC_SLOTS],
    /// Sequence number the slot waits for (0: nothing).
    waiting: [AtomicU32; ioreq::SYNC_SLOTS],
    done_seq: [AtomicU32; ioreq::SYNC_SLOTS],
    done_value: [AtomicU64; ioreq::SYNC_SLOTS],
    posted_seq: AtomicU32,
    ring: spin::Mutex<()>,
}

impl RequestPage {
    /// Initialises the page at `base` (zeroed, 4 KiB) for a backend with doorbell
    /// interrupt `doorbell` (`None`: a backend that polls).
    pub fn new(base: u64, doorbell: Option<u32>) -> RequestPage {
        let header = ioreq::PageHeader {
            magic: ioreq::PAGE_MAGIC,
            version: ioreq::PAGE_VERSION,
            sync_slots: ioreq::SYNC_SLOTS as u32,
            posted_slots: ioreq::POSTED_SLOTS as u32,
            ..Default::default()
        };
        let page = RequestPage {
            base,
            doorbell,
            created_at: cpu::counter(),
            ready_at: AtomicU64::new(0),
            next_seq: [const { AtomicU32::new(1) }; ioreq::SYNC_SLOTS],
            waiting: [const { AtomicU32::new(0) }; ioreq::SYNC_SLOTS],
            done_seq: [const { AtomicU32::new(0) }; ioreq::SYNC_SLOTS],
            done_value: [const { AtomicU64::new(0) }; ioreq::SYNC_SLOTS],
            posted_seq: AtomicU32::new(1),
            ring: spin::Mutex::new(()),
        };
        page.write_bytes(0, &header.encode());
        page
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: `base` is a 4 KiB page Ferry allocated for this backend and
            // maps at EL2; offsets stay inside it (callers use the ABI's layout).
            unsafe { core::ptr::write_volatile((self.base as usize + offset + i) as *mut u8, b) };
        }
    }

    fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: as in `write_bytes`; the offset is 4-byte aligned in the header.
        unsafe { core::ptr::read_volatile((self.base as usize + offset) as *const u32) }
    }

    fn write_u32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_u32`.
        unsafe { core::ptr::write_volatile((self.base as usize + offset) as *mut u32, value) };
    }

    /// Writes a record: everything but the state first, then the state, with a
    /// barrier between, so the backend never sees READY over a half-written record.
    fn publish(&self, offset: usize, record: &Ioreq) {
        let bytes = Ioreq {
            state: ioreq::state::NONE,
            ..*record
        }
        .encode();
        self.write_bytes(offset, &bytes);
        // SAFETY: a barrier; no memory effects of its own.
        unsafe { core::arch::asm!("dmb ish", options(nostack)) };
        self.write_bytes(offset + ioreq::STATE_OFFSET, &[record.state]);
        // SAFETY: as above.
        unsafe { core::arch::asm!("dmb ish", options(nostack)) };
    }
}

/// The route whose window holds `ipa` in frontend `partition`, if any.
pub fn route_at(system: &System, partition: usize, ipa: u64) -> Option<&Route> {
    system
        .virtio
        .iter()
        .find(|r| r.frontend == partition && r.window.contains(ipa))
}

/// Serves a frontend access to a virtio-mmio window: forwards it, or answers it
/// itself once the device has failed. `x` is the frontend vCPU's register file.
pub fn frontend_access(
    system: &'static System,
    route: &Route,
    vcpu: usize,
    access: &mmio::Access,
    x: &mut [u64; 31],
) {
    let offset = access.ipa - route.window.base;
    let value = access.write.then(|| access.store_value(x));
    if access.write && offset == STATUS {
        route
            .status
            .store(value.unwrap_or(0) as u32, Ordering::Relaxed);
    }
    let result = if route.failed.load(Ordering::Acquire) {
        failed_read(route, offset)
    } else if let (Some(v), QUEUE_NOTIFY) = (value, offset) {
        post(system, route, vcpu, v);
        0
    } else {
        forward(system, route, vcpu, offset, access, value.unwrap_or(0))
    };
    if !access.write {
        access.complete_load(x, result);
    }
}

/// What a failed device shows: Status with DEVICE_NEEDS_RESET, a configuration
/// change in InterruptStatus, all-ones elsewhere.
fn failed_read(route: &Route, offset: u64) -> u64 {
    match offset {
        STATUS => u64::from(route.status.load(Ordering::Relaxed) | DEVICE_NEEDS_RESET),
        INTERRUPT_STATUS => u64::from(CONFIG_CHANGE),
        _ => u64::MAX,
    }
}

/// Appends a QueueNotify to the posted ring (or coalesces it) and rings the doorbell.
fn post(system: &'static System, route: &Route, vcpu: usize, queue: u64) {
    let Some(page) = system.partitions[route.backend].ioreq.as_ref() else {
        return;
    };
    {
        let _ring = page.ring.lock();
        let head = page.read_u32(ioreq::POSTED_HEAD_OFFSET);
        let tail = page.read_u32(ioreq::POSTED_TAIL_OFFSET);
        if head.wrapping_sub(tail) < ioreq::POSTED_SLOTS as u32 {
            let record = Ioreq {
                offset: QUEUE_NOTIFY,
                data: queue,
                seq: page.posted_seq.fetch_add(1, Ordering::Relaxed),
                size: 4,
                dir: ioreq::dir::WRITE,
                state: ioreq::state::READY,
                device: route.backend_index as u8,
                vcpu: vcpu as u16,
                flags: ioreq::FLAG_POSTED,
                reserved: 0,
            };
            page.publish(
                ioreq::posted_offset(head as usize % ioreq::POSTED_SLOTS),
                &record,
            );
            page.write_u32(ioreq::POSTED_HEAD_OFFSET, head.wrapping_add(1));
        } else {
            let bits = page.read_u32(ioreq::OVERFLOW_OFFSET) | 1 << (queue & 31);
            page.write_u32(ioreq::OVERFLOW_OFFSET, bits);
        }
    }
    ring_doorbell(system, route.backend, page);
}

fn ring_doorbell(system: &'static System, backend: usize, page: &RequestPage) {
    let Some(doorbell) = page.doorbell else {
        return;
    };
    let be = &system.partitions[backend];
    let target = be.vgic.lock().raise(0, doorbell);
    if let Some(target) = target {
        be.update_vcpus(1 << target, usize::MAX);
    }
}

/// A synchronous access: fills the slot, rings the doorbell, waits for the
/// completion or the deadline. Returns the value a read gets.
fn forward(
    system: &'static System,
    route: &Route,
    vcpu: usize,
    offset: u64,
    access: &mmio::Access,
    data: u64,
) -> u64 {
    let backend = &system.partitions[route.backend];
    let Some(page) = backend.ioreq.as_ref() else {
        return fail(system, route, "the backend has no request page");
    };
    if backend.is_stopped() {
        return fail(system, route, "the backend partition has stopped");
    }
    let Some(slot) = ioreq::sync_slot(route.backend_index, vcpu) else {
        return fail(
            system,
            route,
            "no IOREQ slot: at most 8 devices per backend and 8 frontend vCPUs are routed",
        );
    };
    let seq = page.next_seq[slot].fetch_add(1, Ordering::Relaxed).max(1);
    page.waiting[slot].store(seq, Ordering::Release);
    let record = Ioreq {
        offset,
        data,
        seq,
        size: access.size,
        dir: if access.write {
            ioreq::dir::WRITE
        } else {
            ioreq::dir::READ
        },
        state: ioreq::state::READY,
        device: route.backend_index as u8,
        vcpu: vcpu as u16,
        flags: 0,
        reserved: 0,
    };
    page.publish(ioreq::sync_slot_offset(slot), &record);
    ring_doorbell(system, route.backend, page);
    let asked_at = cpu::counter();
    let start_ticks = BACKEND_START_MS * cpu::counter_frequency() / 1000;
    loop {
        if page.done_seq[slot].load(Ordering::Acquire) == seq {
            page.write_bytes(
                ioreq::sync_slot_offset(slot) + ioreq::STATE_OFFSET,
                &[ioreq::state::DONE],
            );
            return page.done_value[slot].load(Ordering::Relaxed);
        }
        if route.failed.load(Ordering::Acquire) {
            page.waiting[slot].store(0, Ordering::Release);
            return u64::MAX;
        }
        if backend.is_stopped() {
            page.waiting[slot].store(0, Ordering::Release);
            return fail(
                system,
                route,
                "the backend partition stopped while an access waited",
            );
        }
        let now = cpu::counter();
        let ready_at = page.ready_at.load(Ordering::Acquire);
        let late = if ready_at == 0 {
            // Not serving yet: wait for it to start, within its start-up allowance.
            (now > page.created_at + start_ticks).then(|| {
                alloc::format!(
                    "the backend did not start serving (BACKEND_READY) within {BACKEND_START_MS} ms of its start"
                )
            })
        } else {
            (now > asked_at.max(ready_at) + route.deadline_ticks).then(|| {
                alloc::format!(
                    "the backend did not complete a {} of offset {offset:#x} within {} ms",
                    if access.write { "write" } else { "read" },
                    route.deadline_ms
                )
            })
        };
        if let Some(why) = late {
            page.waiting[slot].store(0, Ordering::Release);
            return fail(system, route, &why);
        }
        // The completion (or the timer's event stream) sends an event.
        aarch64_cpu::asm::wfe();
    }
}

/// Fails the device: logs why, shows DEVICE_NEEDS_RESET from now on, and raises
/// the configuration-change interrupt in the frontend. Returns all-ones.
fn fail(system: &'static System, route: &Route, why: &str) -> u64 {
    if !route.failed.swap(true, Ordering::AcqRel) {
        let (fe, be) = (
            &system.partitions[route.frontend],
            &system.partitions[route.backend],
        );
        log::warn!(
            "virtio device {} (frontend '{}', backend '{}') failed: {why}; the frontend sees DEVICE_NEEDS_RESET",
            route.index,
            fe.label,
            be.label
        );
        raise_frontend(system, route);
    }
    u64::MAX
}

fn raise_frontend(system: &'static System, route: &Route) {
    let fe = &system.partitions[route.frontend];
    let target = fe.vgic.lock().raise(0, route.fe_intid);
    if let Some(target) = target {
        fe.update_vcpus(1 << target, usize::MAX);
    }
}

/// IOREQ_COMPLETE from backend `partition`: `slot`, `seq`, the value for a read.
/// Returns 0, or INVALID_PARAMETERS for a completion that names nothing pending
/// (the device then fails: a backend that answers garbage is not trusted further).
pub fn complete(
    system: &'static System,
    partition: &Partition,
    slot: u64,
    seq: u64,
    value: u64,
) -> i64 {
    let Some(page) = partition.ioreq.as_ref() else {
        return ferry_abi::hypercall::NOT_SUPPORTED;
    };
    let route = usize::try_from(slot)
        .ok()
        .filter(|&s| s < ioreq::SYNC_SLOTS)
        .and_then(|s| served_device(system, partition, ioreq::slot_device(s)).map(|r| (s, r)));
    let Some((slot, route)) = route else {
        log::warn!(
            "backend '{}': IOREQ_COMPLETE for slot {slot}, which is not one of its devices'",
            partition.label
        );
        return ferry_abi::hypercall::INVALID_PARAMETERS;
    };
    let waiting = page.waiting[slot].load(Ordering::Acquire);
    if waiting == 0 || u64::from(waiting) != seq {
        let why = alloc::format!(
            "a completion for slot {slot} with sequence number {seq}, but {waiting} is pending (0: none)"
        );
        fail(system, route, &why);
        return ferry_abi::hypercall::INVALID_PARAMETERS;
    }
    mark_ready(page);
    page.done_value[slot].store(value, Ordering::Relaxed);
    page.waiting[slot].store(0, Ordering::Relaxed);
    page.done_seq[slot].store(waiting, Ordering::Release);
    // Wake the frontend core waiting in WFE.
    // SAFETY: barrier and event; no memory effects of their own.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack)) };
    0
}

/// NOTIFY_FRONTEND from backend `partition`: raises device `device`'s interrupt in
/// its frontend. Returns 0, or INVALID_PARAMETERS for a device it does not serve.
pub fn notify_frontend(system: &'static System, partition: &Partition, device: u64) -> i64 {
    match usize::try_from(device)
        .ok()
        .and_then(|d| served_device(system, partition, d))
    {
        Some(route) if !route.failed.load(Ordering::Acquire) => {
            raise_frontend(system, route);
            0
        }
        _ => ferry_abi::hypercall::INVALID_PARAMETERS,
    }
}

/// Device `backend_index` of backend `partition`, if it serves one by that number.
fn served_device<'s>(
    system: &'s System,
    partition: &Partition,
    backend_index: usize,
) -> Option<&'s Route> {
    system
        .virtio
        .iter()
        .find(|r| r.backend == partition.id && r.backend_index == backend_index)
}

/// Records when the backend started serving; true the first time only.
fn mark_ready(page: &RequestPage) -> bool {
    let now = cpu::counter().max(1);
    page.ready_at
        .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// BACKEND_READY from `partition`: frontend accesses get their normal deadline
/// from now on. Returns 0, or NOT_SUPPORTED for a partition without a request page.
pub fn backend_ready(partition: &Partition) -> i64 {
    let Some(page) = partition.ioreq.as_ref() else {
        return ferry_abi::hypercall::NOT_SUPPORTED;
    };
    if mark_ready(page) {
        let ms = (cpu::counter() - page.created_at) * 1000 / cpu::counter_frequency();
        log::info!(
            "backend '{}' serves ({ms} ms after its start)",
            partition.label
        );
    }
    // Wake frontend cores waiting for it (their deadline changed).
    // SAFETY: barrier and event; no memory effects of their own.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack)) };
    0
}

/// A backend stopped: every device it serves fails, and frontend cores waiting on
/// it are woken.
pub fn backend_stopped(system: &'static System, backend: usize) {
    for route in system.virtio.iter().filter(|r| r.backend == backend) {
        fail(system, route, "the backend partition stopped");
    }
    // SAFETY: an event for cores waiting in WFE.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack)) };
}

/// The routes of a system, for building it.
pub type Routes = Vec<Route>;
