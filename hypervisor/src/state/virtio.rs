//! The virtio path's decisions (`docs/ioreq.md`): a frontend's access to a
//! virtio-mmio window becomes a posted record (QueueNotify) or a synchronous one
//! the frontend waits for; a backend completes, notifies, announces it serves;
//! anything that goes wrong fails the device, never the frontend.
//!
//! A failed device answers by itself: Status reads the last value written with
//! DEVICE_NEEDS_RESET, InterruptStatus a configuration change, everything else
//! all-ones; the configuration-change interrupt fires once, and the log says why.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use ferry_abi::hypercall::HypercallStatus;
use ferry_abi::ioreq::{self, Ioreq};
use ferry_platform::Region;

use super::copy::CopyDevice;
use super::copypath;
use super::effect::{Effect, Effects};
use super::emul::MmioAccess;
use super::event::{Event, FailReason, StopReason};
use super::ioreq::{PageMemory, RequestPage};
use super::partition::Partition;
use super::system::{BY_FERRY, System};
pub use super::wait::{AccessKey, Pending};
use crate::policy::StopKind;

use ferry_virtio_backend::spec;

/// virtio-mmio registers Ferry looks at itself (virtio 1.2, 4.2.2), from the
/// device library's definitions: QueueNotify.
pub const QUEUE_NOTIFY: u64 = spec::reg::QUEUE_NOTIFY as u64;
/// InterruptStatus.
pub const INTERRUPT_STATUS: u64 = spec::reg::INTERRUPT_STATUS as u64;
/// Status.
pub const STATUS: u64 = spec::reg::STATUS as u64;
/// Status bit DEVICE_NEEDS_RESET.
pub const DEVICE_NEEDS_RESET: u32 = spec::status::DEVICE_NEEDS_RESET as u32;
/// InterruptStatus bit "configuration change".
pub const CONFIG_CHANGE: u32 = spec::INT_CONFIG_CHANGE;

/// One routed virtio device.
#[derive(Debug)]
pub struct Route {
    /// Its index in the config (for messages).
    pub index: usize,
    /// Its number among its backend's devices: the IOREQ `device` field, the
    /// NOTIFY_FRONTEND argument; sync slots `backend_index * 8 ..`.
    pub backend_index: usize,
    /// Where the frontend sees its virtio-mmio window.
    pub window: Region,
    /// Frontend partition id.
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
    /// Failed, and its backend has been restarted since: the frontend may bring
    /// it back by resetting it (see [`frontend_access`]).
    recoverable: AtomicBool,
    /// How long its backend has kept frontends waiting, net of the allowance
    /// (see [`charge_wait`]): (ticks owed, counter value of the last update).
    waited: spin::Mutex<(u64, u64)>,
    /// The last Status the frontend wrote (shown after a failure).
    status: AtomicU32,
    /// Copy mode: the shadow queues (`copy`); `None` in shared mode.
    pub copy: Option<spin::Mutex<CopyDevice>>,
}

/// Where a route's device sits (see [`Route::new`]).
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    /// Its index in the config.
    pub index: usize,
    /// Its number among its backend's devices.
    pub backend_index: usize,
    /// The frontend's window.
    pub window: Region,
    /// Frontend partition id.
    pub frontend: usize,
    /// Backend partition id.
    pub backend: usize,
    /// The frontend interrupt (INTID).
    pub fe_intid: u32,
    /// Deadline of a synchronous access, in milliseconds.
    pub deadline_ms: u32,
    /// Copy mode: the device's bounce area (backend addresses); `None`: shared.
    pub bounce: Option<Region>,
}

impl Route {
    /// A working route; the counter runs at `frequency` Hz.
    pub fn new(spec: RouteSpec, frequency: u64) -> Route {
        Route {
            index: spec.index,
            backend_index: spec.backend_index,
            window: spec.window,
            frontend: spec.frontend,
            backend: spec.backend,
            fe_intid: spec.fe_intid,
            deadline_ticks: u64::from(spec.deadline_ms) * frequency / 1000,
            deadline_ms: spec.deadline_ms,
            failed: AtomicBool::new(false),
            recoverable: AtomicBool::new(false),
            waited: spin::Mutex::new((0, 0)),
            status: AtomicU32::new(0),
            copy: spec.bounce.map(|b| spin::Mutex::new(CopyDevice::new(b))),
        }
    }

    /// Whether the device has failed.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Whether the device failed and its backend has been restarted since.
    pub fn is_recoverable(&self) -> bool {
        self.recoverable.load(Ordering::Acquire)
    }
}

/// virtio-mmio registers below this offset identify the device (MagicValue,
/// Version, DeviceID, VendorID): a recoverable device forwards their reads, so
/// a frontend can probe it again.
pub const IDENTIFICATION_END: u64 = 0x10;

/// A failed device whose backend restarted: the frontend's reset (Status 0)
/// brings it back (the reset goes on to the new backend, and in copy mode
/// resets the shadow queues) and returns true; identification reads are forwarded
/// (true); anything else gets the failed device's answers (false).
fn recover(system: &System, route: usize, access: MmioAccess) -> bool {
    let r = &system.virtio[route];
    if !r.is_recoverable() {
        return false;
    }
    match (access.offset, access.write) {
        (STATUS, Some(0)) => {
            // In copy mode the write itself resets the shadow queues.
            *r.waited.lock() = (0, 0);
            r.recoverable.store(false, Ordering::Release);
            r.failed.store(false, Ordering::Release);
            true
        }
        (offset, None) => offset < IDENTIFICATION_END,
        _ => false,
    }
}

/// What becomes of a frontend access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: a read gets this value (writes ignore it).
    Done(u64),
    /// Forwarded: wait with [`poll`] until it completes or fails.
    Wait(Pending),
}

/// A frontend vCPU `vcpu` accesses route `route`'s window at counter value `now`.
#[inline]
pub fn frontend_access(
    system: &System,
    route: usize,
    vcpu: usize,
    access: MmioAccess,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Outcome {
    let r = &system.virtio[route];
    if let (Some(v), STATUS) = (access.write, access.offset) {
        r.status.store(v as u32, Ordering::Relaxed);
    }
    if r.has_failed() && !recover(system, route, access) {
        return Outcome::Done(failed_read(r, access.offset));
    }
    if let Some(copy) = &r.copy {
        return copypath::frontend_access(system, route, copy, vcpu, access, mem, now, fx);
    }
    if let (Some(queue), QUEUE_NOTIFY) = (access.write, access.offset) {
        post(system, r, vcpu, queue, mem, fx);
        return Outcome::Done(0);
    }
    forward(system, route, vcpu, access, mem, now, fx)
}

/// A frontend's trapped access `key` on vCPU `vcpu` at counter value `now`, when
/// the vCPU may leave a wait to take its interrupts (see [`super::wait`]): a held
/// answer of this very access is returned; a request in flight (this access
/// executing again, or another one to wait out first) is waited for with
/// [`wait_poll`]; else as [`frontend_access`].
#[allow(clippy::too_many_arguments)]
pub fn frontend_trap(
    system: &System,
    key: AccessKey,
    vcpu: usize,
    access: MmioAccess,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Outcome {
    let r = &system.virtio[key.route];
    let Some(v) = system.partitions[r.frontend].vcpus.get(vcpu) else {
        return frontend_access(system, key.route, vcpu, access, mem, now, fx);
    };
    let mut wait = v.wait.lock();
    if let Some(value) = wait.take_held(&key, now) {
        return Outcome::Done(value);
    }
    if let Some((_, pending)) = wait.inflight {
        return Outcome::Wait(pending);
    }
    let outcome = frontend_access(system, key.route, vcpu, access, mem, now, fx);
    if let Outcome::Wait(pending) = outcome {
        wait.inflight = Some((key, pending));
    }
    outcome
}

/// What a wait for the backend came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The access `key` completed (or failed): a read gets this value.
    Value(u64),
    /// Another access of the vCPU completed (its value is held for it), or none
    /// is in flight: return to the guest with the PC unchanged.
    Retry,
}

/// Polls the request vCPU `vcpu` has in flight for access `key` at counter
/// value `now`: `None` while it waits.
pub fn wait_poll(
    system: &System,
    key: AccessKey,
    vcpu: usize,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Option<Waited> {
    let r = &system.virtio[key.route];
    let v = system.partitions[r.frontend].vcpus.get(vcpu)?;
    let mut wait = v.wait.lock();
    let Some((asked, pending)) = wait.inflight else {
        return Some(Waited::Retry);
    };
    let value = poll(system, &pending, mem, now, fx)?;
    wait.inflight = None;
    charge_wait(system, &pending, now, fx);
    if asked == key {
        return Some(Waited::Value(value));
    }
    let until = now.saturating_add(system.virtio[asked.route].deadline_ticks);
    wait.held = Some((asked, value, until));
    Some(Waited::Retry)
}

/// The slow-backend budget: a frontend may wait on a device's backend at most
/// half of the time in the long run, beyond a burst of [`WAIT_BUDGET_DEADLINES`]
/// deadlines. Each completed access adds the time it waited (once the backend
/// serves); the debt drains at half the counter's rate. A backend that answers
/// every access just before the deadline so fails its device within a few dozen
/// accesses instead of keeping the frontend busy waiting forever.
fn charge_wait(system: &System, pending: &Pending, now: u64, fx: &mut Effects) {
    let r = &system.virtio[pending.route];
    let Some(page) = system.partitions[r.backend].ioreq.as_ref() else {
        return;
    };
    let Some(ready_at) = page.ready_at() else {
        return;
    };
    let waited = now.saturating_sub(pending.asked_at.max(ready_at));
    let budget = r.deadline_ticks.saturating_mul(WAIT_BUDGET_DEADLINES);
    let owed = {
        let mut w = r.waited.lock();
        let drained = now.saturating_sub(w.1) / 2;
        w.0 = w.0.saturating_sub(drained).saturating_add(waited);
        w.1 = w.1.max(now);
        w.0
    };
    if owed > budget && !r.has_failed() {
        let ms = |ticks: u64| ticks.saturating_mul(1000) / page.frequency.max(1);
        let why = FailReason::TooSlow {
            owed_ms: ms(owed),
            budget_ms: ms(budget),
        };
        fail_by_backend(system, pending.route, why, now, fx);
    }
}

/// The burst of the slow-backend budget, in deadlines (see [`charge_wait`]).
pub const WAIT_BUDGET_DEADLINES: u64 = 4;

/// What a failed device shows: Status with DEVICE_NEEDS_RESET, a configuration
/// change in InterruptStatus, all-ones elsewhere.
fn failed_read(route: &Route, offset: u64) -> u64 {
    match offset {
        STATUS => u64::from(route.status.load(Ordering::Relaxed) | DEVICE_NEEDS_RESET),
        INTERRUPT_STATUS => u64::from(CONFIG_CHANGE),
        _ => u64::MAX,
    }
}

/// Appends a QueueNotify to the backend's posted ring (or coalesces it) and
/// rings its doorbell.
pub(super) fn post(
    system: &System,
    route: &Route,
    vcpu: usize,
    queue: u64,
    mem: &impl PageMemory,
    fx: &mut Effects,
) {
    let backend = &system.partitions[route.backend];
    let Some(page) = backend.ioreq.as_ref() else {
        return;
    };
    page.post(mem, route.backend_index as u8, vcpu as u16, queue);
    ring_doorbell(backend, page, fx);
}

pub(super) fn ring_doorbell(backend: &Partition, page: &RequestPage, fx: &mut Effects) {
    if let Some(doorbell) = page.doorbell {
        backend.raise(doorbell, usize::MAX, fx);
    }
}

/// A synchronous access: fills the slot and rings the doorbell.
pub(super) fn forward(
    system: &System,
    route: usize,
    vcpu: usize,
    access: MmioAccess,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Outcome {
    let r = &system.virtio[route];
    let backend = &system.partitions[r.backend];
    let Some(page) = backend.ioreq.as_ref() else {
        return Outcome::Done(fail(system, route, FailReason::NoRequestPage, fx));
    };
    if backend.is_stopped() {
        return Outcome::Done(fail(system, route, FailReason::BackendStopped, fx));
    }
    let Some(slot) = ioreq::sync_slot(r.backend_index, vcpu) else {
        return Outcome::Done(fail(system, route, FailReason::NoSlot, fx));
    };
    let record = Ioreq {
        offset: access.offset,
        data: access.write.unwrap_or(0),
        seq: 0,
        size: access.size,
        dir: if access.write.is_some() {
            ioreq::dir::WRITE
        } else {
            ioreq::dir::READ
        },
        state: ioreq::state::READY,
        device: r.backend_index as u8,
        vcpu: vcpu as u16,
        flags: 0,
        reserved: 0,
    };
    let seq = page.begin(mem, slot, record);
    ring_doorbell(backend, page, fx);
    Outcome::Wait(Pending {
        route,
        slot,
        seq,
        asked_at: now,
        offset: access.offset,
        write: access.write.is_some(),
        generation: backend.generation(),
    })
}

/// Looks at a waiting access at counter value `now`: its value once completed
/// or failed, `None` while it may still wait.
pub fn poll(
    system: &System,
    pending: &Pending,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Option<u64> {
    let r = &system.virtio[pending.route];
    let backend = &system.partitions[r.backend];
    let page = backend.ioreq.as_ref()?;
    if let Some(value) = page.take_done(mem, pending.slot, pending.seq) {
        return Some(match (&r.copy, pending.write) {
            (Some(copy), false) => copy.lock().after_read(pending.offset, value),
            _ => value,
        });
    }
    // Sent to a backend that has been restarted since: it will never be answered
    // (an answer given before the restart was taken above).
    if pending.generation != backend.generation() {
        page.abandon(mem, pending.slot);
        return Some(u64::MAX);
    }
    if r.has_failed() && !r.is_recoverable() {
        // A completion that raced with the one that failed the device (a second
        // completion of this request) is visible now: take it.
        if let Some(value) = page.take_done(mem, pending.slot, pending.seq) {
            return Some(value);
        }
        page.abandon(mem, pending.slot);
        return Some(u64::MAX);
    }
    if backend.is_stopped() {
        page.abandon(mem, pending.slot);
        return Some(fail(
            system,
            pending.route,
            FailReason::StoppedWhileWaiting,
            fx,
        ));
    }
    let late = match page.ready_at() {
        // Not serving yet: wait for it to start, within its start-up allowance.
        None => (now > page.created_at() + page.start_ticks).then_some(FailReason::NotStarted),
        Some(ready_at) => (now > pending.asked_at.max(ready_at) + r.deadline_ticks).then_some(
            FailReason::Deadline {
                offset: pending.offset,
                write: pending.write,
                ms: r.deadline_ms,
            },
        ),
    };
    let why = late?;
    page.abandon(mem, pending.slot);
    Some(fail_by_backend(system, pending.route, why, now, fx))
}

/// Fails route `route`'s device (once): logs why and raises the
/// configuration-change interrupt in the frontend. Returns all-ones.
pub fn fail(system: &System, route: usize, why: FailReason, fx: &mut Effects) -> u64 {
    let r = &system.virtio[route];
    if !r.failed.swap(true, Ordering::AcqRel) {
        fx.log(Event::DeviceFailed { route, why });
        system.partitions[r.frontend].raise(r.fe_intid, usize::MAX, fx);
    }
    u64::MAX
}

/// Fails route `route`'s device because its backend misbehaved (missed a
/// deadline, kept the frontend waiting, answered garbage, never started): a
/// backend that restarts on failure is then stopped by Ferry at counter value
/// `now`, and restarted.
pub fn fail_by_backend(
    system: &System,
    route: usize,
    why: FailReason,
    now: u64,
    fx: &mut Effects,
) -> u64 {
    let value = fail(system, route, why, fx);
    let backend = system.virtio[route].backend;
    let p = &system.partitions[backend];
    if p.restart.is_some() && !p.is_stopped() {
        let reason = StopReason::DeviceFailed { route };
        let stop = system.stop(backend, BY_FERRY, StopKind::Fault, reason, now);
        fx.absorb(stop);
    }
    value
}

/// The route of device `backend_index` of backend `backend`, if it serves one.
pub(super) fn served_device(
    system: &System,
    backend: usize,
    backend_index: usize,
) -> Option<usize> {
    system
        .virtio
        .iter()
        .position(|r| r.backend == backend && r.backend_index == backend_index)
}

/// IOREQ_COMPLETE(`slot`, `seq`, `value`) from `backend` at counter value `now`.
/// Refused with INVALID_PARAMETERS for a completion that names nothing pending
/// (the device then fails: a backend that answers garbage is not trusted further).
pub fn complete(
    system: &System,
    backend: &Partition,
    (slot, seq, value): (u64, u64, u64),
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Result<(), HypercallStatus> {
    let Some(page) = backend.ioreq.as_ref() else {
        return Err(HypercallStatus::NotSupported);
    };
    let route = usize::try_from(slot)
        .ok()
        .filter(|&s| s < ioreq::SYNC_SLOTS)
        .and_then(|s| Some((s, served_device(system, backend.id, ioreq::slot_device(s))?)));
    let Some((slot, route)) = route else {
        fx.log(Event::ForeignSlot {
            backend: backend.id,
            slot,
        });
        return Err(HypercallStatus::InvalidParameters);
    };
    if let Err(waiting) = page.complete(mem, slot, seq, value) {
        let why = FailReason::Garbage { slot, seq, waiting };
        fail_by_backend(system, route, why, now, fx);
        return Err(HypercallStatus::InvalidParameters);
    }
    page.mark_ready(now);
    // Wake the frontend core waiting in WFE.
    fx.push(Effect::WakeWaiters);
    Ok(())
}

/// NOTIFY_FRONTEND(`device`) from `backend`: raises the device's interrupt in its
/// frontend. Refused with INVALID_PARAMETERS for a device it does not serve or
/// that has failed.
pub fn notify_frontend(
    system: &System,
    backend: &Partition,
    device: u64,
    mem: &impl PageMemory,
    fx: &mut Effects,
) -> Result<(), HypercallStatus> {
    let route = usize::try_from(device)
        .ok()
        .and_then(|d| served_device(system, backend.id, d));
    match route.map(|i| (i, &system.virtio[i])) {
        Some((i, r)) if !r.has_failed() => {
            if let Some(copy) = &r.copy {
                return copypath::notify(system, i, copy, mem, fx);
            }
            system.partitions[r.frontend].raise(r.fe_intid, usize::MAX, fx);
            Ok(())
        }
        _ => Err(HypercallStatus::InvalidParameters),
    }
}

/// BACKEND_READY from `backend` at counter value `now`: frontend accesses get
/// their normal deadline from now on. Refused with NOT_SUPPORTED for a
/// partition without a request page.
pub fn backend_ready(
    backend: &Partition,
    now: u64,
    fx: &mut Effects,
) -> Result<(), HypercallStatus> {
    let Some(page) = backend.ioreq.as_ref() else {
        return Err(HypercallStatus::NotSupported);
    };
    if page.mark_ready(now) {
        let ms = now.saturating_sub(page.created_at()) * 1000 / page.frequency;
        fx.log(Event::BackendServes {
            backend: backend.id,
            ms,
        });
    }
    // Wake frontend cores waiting for it (their deadline changed).
    fx.push(Effect::WakeWaiters);
    Ok(())
}

/// Backend `backend` was restarted at counter value `now` (its memory reloaded,
/// about to run again): its request page starts over, and its failed devices
/// become recoverable.
pub fn backend_restarted(system: &System, backend: usize, mem: &impl PageMemory, now: u64) {
    if let Some(page) = system.partitions[backend].ioreq.as_ref() {
        page.restart(mem, now);
    }
    for r in system.virtio.iter().filter(|r| r.backend == backend) {
        r.recoverable.store(r.has_failed(), Ordering::Release);
    }
}

/// Backend `backend` stopped: every device it serves fails, and frontend cores
/// waiting on it are woken.
pub fn backend_stopped(system: &System, backend: usize, fx: &mut Effects) {
    for route in 0..system.virtio.len() {
        if system.virtio[route].backend == backend {
            fail(system, route, FailReason::BackendStopped, fx);
        }
    }
    fx.push(Effect::WakeWaiters);
}
