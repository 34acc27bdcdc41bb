//! The virtio path for a copy-mode device: the frontend's accesses go through
//! its [`CopyDevice`] (queue registers kept, shadow addresses forwarded,
//! QueueNotify moves the posted requests), and the backend's NOTIFY_FRONTEND
//! moves used requests back before the frontend is interrupted.

use ferry_abi::hypercall::HypercallStatus;
use spin::Mutex;

use super::copy::ring::GuestView;
use super::copy::{CopyDevice, MAX_QUEUES, Register};
use super::effect::Effects;
use super::emul::MmioAccess;
use super::event::FailReason;
use super::ioreq::PageMemory;
use super::system::System;
use super::virtio::{self, Outcome, QUEUE_NOTIFY};

/// A frontend vCPU `vcpu` accesses copy-mode route `route`'s window.
#[allow(clippy::too_many_arguments)] // the frontend_access arguments, plus the device
pub fn frontend_access(
    system: &System,
    route: usize,
    copy: &Mutex<CopyDevice>,
    vcpu: usize,
    access: MmioAccess,
    mem: &impl PageMemory,
    now: u64,
    fx: &mut Effects,
) -> Outcome {
    let r = &system.virtio[route];
    let fe = GuestView::new(&system.partitions[r.frontend].memory, mem);
    let be = GuestView::new(&system.partitions[r.backend].memory, mem);
    let register = match (access.write, access.offset) {
        (Some(queue), QUEUE_NOTIFY) => {
            let moved = copy.lock().post(queue as usize, &fe, &be);
            return match moved {
                Ok(0) => Outcome::Done(0),
                Ok(_) => {
                    virtio::post(system, r, vcpu, queue, mem, fx);
                    Outcome::Done(0)
                }
                Err(e) => Outcome::Done(virtio::fail(system, route, FailReason::Copy(e), fx)),
            };
        }
        (Some(value), offset) => copy.lock().on_write(offset, value, &fe, &be),
        (None, offset) => copy.lock().on_read(offset),
    };
    match register {
        Register::Answer(value) => Outcome::Done(value),
        Register::Fail(e) => Outcome::Done(virtio::fail(system, route, FailReason::Copy(e), fx)),
        Register::Forward(value) => {
            let access = MmioAccess {
                write: access.write.map(|_| value),
                ..access
            };
            virtio::forward(system, route, vcpu, access, mem, now, fx)
        }
    }
}

/// NOTIFY_FRONTEND for copy-mode route `route`: moves what the backend used back
/// to the frontend, posts what waited for room, and interrupts the frontend if it
/// wants it (or if nothing moved: the backend signals something else, such as a
/// configuration change). A used ring the backend wrote garbage into fails the
/// device.
pub fn notify(
    system: &System,
    route: usize,
    copy: &Mutex<CopyDevice>,
    mem: &impl PageMemory,
    fx: &mut Effects,
) -> Result<(), HypercallStatus> {
    let r = &system.virtio[route];
    let fe = GuestView::new(&system.partitions[r.frontend].memory, mem);
    let be = GuestView::new(&system.partitions[r.backend].memory, mem);
    let moved = copy.lock().complete(&fe, &be);
    let moved = match moved {
        Ok(moved) => moved,
        Err(e) => {
            virtio::fail(system, route, FailReason::Copy(e), fx);
            return Err(HypercallStatus::InvalidParameters);
        }
    };
    for queue in 0..MAX_QUEUES {
        if moved.posted_queues >> queue & 1 == 1 {
            virtio::post(system, r, 0, queue as u64, mem, fx);
        }
    }
    if moved.interrupt || moved.completed == 0 {
        system.partitions[r.frontend].raise(r.fe_intid, usize::MAX, fx);
    }
    Ok(())
}
