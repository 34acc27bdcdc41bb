//! `ioreq_state`: the state layer's virtio path (`state::virtio`, `state::ioreq`,
//! `state::copypath`) driven as the EL2 shell drives it, between a frontend and a
//! backend that both misbehave: trapped window accesses (`frontend_trap`, with the
//! guest PC), waits (`wait_poll`), IOREQ_COMPLETE (`complete`), NOTIFY_FRONTEND
//! (`notify_frontend`), BACKEND_READY, stops and a backend's restart, time
//! passing, and both guests writing their RAM and the backend its request page.
//!
//! Input (structured, `arbitrary`): the system's shape (`fixture::Shape`: frontend
//! vCPUs, request page, doorbell, one or two devices in shared or copy mode, a
//! device without sync slots, restarts, sequence numbers about to wrap), then a
//! sequence of steps.
//!
//! Checked: nothing panics; Ferry touches only the request page and the
//! partitions' RAM (`fixture::Mem`); every log line renders; a new synchronous
//! request is published whole in its vCPU's slot (READY, a sequence number never
//! 0 nor the slot's previous one); IOREQ_COMPLETE is taken only for a request in
//! flight, once, and a garbage one fails the device; the value a wait returns is
//! the one the backend gave (shared mode), else the device failed; a wait goes on
//! only while the device works, within its deadline (or the backend's start-up
//! allowance); a request from before the backend restarted ends at once, with the
//! answer it got or all-ones (finding `stale-wait`, fixed, docs/fuzzing.md).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use ferry_abi::hypercall::BACKEND_START_MS;
use ferry_abi::ioreq::{self, POSTED_HEAD_OFFSET, POSTED_TAIL_OFFSET};
use ferry_hypervisor::policy::StopKind;
use ferry_hypervisor::state::effect::Effects;
use ferry_hypervisor::state::emul::MmioAccess;
use ferry_hypervisor::state::event::StopReason;
use ferry_hypervisor::state::system::System;
use ferry_hypervisor::state::virtio::{self, AccessKey, Outcome, Pending, Waited};
use ferry_hypervisor_fuzz::fixture::{self, BE_RAM, FE_RAM, HZ, Mem, PAGE, Shape};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    shape: [u8; 3],
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A frontend vCPU's load or store to a window.
    Trap(Trap),
    /// The vCPU's instruction that had to wait executes again.
    Again { vcpu: u8 },
    /// The vCPU waiting in EL2 looks again.
    Poll { vcpu: u8 },
    /// IOREQ_COMPLETE: a request Ferry published (`Some(k)`: the k-th) or anything.
    Complete {
        issued: Option<u8>,
        slot: u64,
        seq: u64,
        value: u64,
    },
    /// NOTIFY_FRONTEND.
    Notify { device: u64 },
    /// BACKEND_READY.
    Ready,
    /// The backend consumes the posted ring (or sets its tail anywhere).
    Consume { tail: Option<u32> },
    /// The backend writes its request page.
    Scribble { offset: u16, bytes: Vec<u8> },
    /// A guest writes its RAM (rings, buffers, the bounce area).
    Ram {
        backend: bool,
        offset: u32,
        bytes: Vec<u8>,
    },
    /// A partition stops.
    Stop { backend: bool },
    /// The backend's restart, if one was decided, is carried out (as `restart.rs`).
    Restart,
    /// Time passes.
    Tick { ms: u16 },
}

/// A frontend vCPU's load or store to a window (`pc`: which instruction).
#[derive(Arbitrary, Debug)]
struct Trap {
    vcpu: u8,
    route: bool,
    offset: u16,
    size: u8,
    write: Option<u64>,
    pc: u8,
}

impl Trap {
    /// The access as the shell decodes it, with its key, on one of `routes`.
    fn decode(&self, routes: usize) -> (AccessKey, MmioAccess) {
        let access = MmioAccess {
            offset: u64::from(self.offset) % fixture::WINDOW_SIZE,
            size: SIZES[usize::from(self.size % 4)],
            write: self.write,
        };
        let key = AccessKey {
            route: usize::from(self.route) % routes,
            offset: access.offset,
            size: access.size,
            write: self.write,
            pc: u64::from(self.pc) * 4,
        };
        (key, access)
    }
}

/// What the harness knows of the run.
struct Run<'a> {
    s: &'a System,
    mem: &'a Mem,
    now: u64,
    /// Each frontend vCPU: the instruction it executes (key) and whether it waits.
    vcpus: Vec<Option<(AccessKey, MmioAccess, bool)>>,
    /// Each vCPU's request in flight, as the last wait said.
    inflight: Vec<Option<Pending>>,
    /// Every request published: (slot, seq) -> the value it was completed with.
    issued: BTreeMap<(usize, u32), Option<u64>>,
    /// Requests published before the backend restarted (they can no longer
    /// complete; a vCPU may still be waiting for one).
    stale: BTreeSet<(usize, u32)>,
    /// The last sequence number published in each slot.
    last_seq: [u32; ioreq::SYNC_SLOTS],
}

const SIZES: [u8; 4] = [1, 2, 4, 8];

fuzz_target!(|input: Input| {
    let shape = Shape::from_bytes(input.shape);
    let mem = Mem::default();
    let s = fixture::system(&shape, &mem);
    let mut run = Run {
        s: &s,
        mem: &mem,
        now: 0,
        vcpus: vec![None; shape.fe_vcpus],
        inflight: vec![None; shape.fe_vcpus],
        issued: BTreeMap::new(),
        stale: BTreeSet::new(),
        last_seq: [0; ioreq::SYNC_SLOTS],
    };
    for step in input.steps.iter().take(512) {
        let fx = run.step(step);
        for e in fx.events() {
            let _ = e.shown(&s).to_string();
        }
    }
});

impl Run<'_> {
    fn step(&mut self, step: &Step) -> Effects {
        let mut fx = Effects::new();
        let n = self.vcpus.len();
        match *step {
            Step::Trap(ref t) => {
                let (key, access) = t.decode(self.s.virtio.len());
                self.trap(usize::from(t.vcpu) % n, key, access, &mut fx);
            }
            Step::Again { vcpu } => {
                if let Some((key, access, _)) = self.vcpus[usize::from(vcpu) % n] {
                    self.trap(usize::from(vcpu) % n, key, access, &mut fx);
                }
            }
            Step::Poll { vcpu } => self.poll(usize::from(vcpu) % n, &mut fx),
            Step::Complete {
                issued,
                slot,
                seq,
                value,
            } => {
                let named = issued.and_then(|k| {
                    let keys: Vec<_> = self.issued.keys().copied().collect();
                    keys.get(usize::from(k) % keys.len().max(1)).copied()
                });
                let (slot, seq) = named.map_or((slot, seq), |(s, q)| (s as u64, u64::from(q)));
                self.complete(slot, seq, value, &mut fx);
            }
            Step::Notify { device } => {
                let be = &self.s.partitions[1];
                let _ = virtio::notify_frontend(self.s, be, device, self.mem, &mut fx);
            }
            Step::Ready => {
                let _ = virtio::backend_ready(&self.s.partitions[1], self.now, &mut fx);
            }
            Step::Consume { .. } | Step::Scribble { .. } | Step::Ram { .. } => {
                self.guest_write(step)
            }
            Step::Stop { backend } => {
                let reason = StopReason::SystemOff;
                fx = self
                    .s
                    .stop(usize::from(backend), 0, StopKind::Fault, reason, self.now);
            }
            Step::Restart => self.restart(),
            Step::Tick { ms } => self.now += u64::from(ms),
        }
        fx
    }

    /// The shell's restart of the backend: its request page is reset, so what
    /// was in flight and not answered can no longer complete (answers given stay).
    fn restart(&mut self) {
        let be = &self.s.partitions[1];
        if be.restart_pending() {
            virtio::backend_restarted(self.s, 1, self.mem, self.now);
            be.restarted();
            let open = self
                .issued
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| *k);
            self.stale.extend(open);
            self.issued.retain(|_, v| v.is_some());
        }
    }

    /// The backend or the frontend writes memory.
    fn guest_write(&self, step: &Step) {
        match *step {
            Step::Consume { tail } => {
                let head = self.mem.word(PAGE + POSTED_HEAD_OFFSET as u64);
                let tail = tail.unwrap_or(head);
                self.mem
                    .poke(PAGE + POSTED_TAIL_OFFSET as u64, &tail.to_le_bytes());
            }
            Step::Scribble { offset, ref bytes } => {
                let at = u64::from(offset) % ioreq::PAGE_SIZE as u64;
                let len = bytes.len().min(ioreq::PAGE_SIZE - at as usize);
                self.mem.poke(PAGE + at, &bytes[..len]);
            }
            Step::Ram {
                backend,
                offset,
                ref bytes,
            } => {
                let base = if backend { BE_RAM } else { FE_RAM };
                let at = u64::from(offset) % (fixture::RAM_SIZE - 64);
                self.mem.poke(base + at, &bytes[..bytes.len().min(64)]);
            }
            _ => {}
        }
    }

    /// The vCPU executes `key`: `frontend_trap`, and its wait if it must.
    fn trap(&mut self, vcpu: usize, key: AccessKey, access: MmioAccess, fx: &mut Effects) {
        if self.s.partitions[0].is_stopped() {
            return;
        }
        let route = &self.s.virtio[key.route];
        // A failed device answers by itself, unless the vCPU has a request in
        // flight (waited for first) or an answer held for this very access, or
        // its backend restarted (the frontend may probe and reset it again).
        let answers = {
            let wait = self.s.partitions[0].vcpus[vcpu].wait.lock();
            let failed = route.has_failed() && !route.is_recoverable();
            failed && wait.inflight.is_none() && wait.held.is_none()
        };
        let out = virtio::frontend_trap(self.s, key, vcpu, access, self.mem, self.now, fx);
        match out {
            Outcome::Done(value) => {
                if answers && access.write.is_none() {
                    check_failed_read(access.offset, value);
                }
                self.vcpus[vcpu] = None;
            }
            Outcome::Wait(p) => {
                assert!(!answers, "a failed device forwarded {access:?}");
                self.published(vcpu, &p, key, access);
                self.vcpus[vcpu] = Some((key, access, true));
                self.inflight[vcpu] = Some(p);
            }
        }
    }

    /// A request `frontend_trap` asked to wait for: a new one is in the page.
    fn published(&mut self, vcpu: usize, p: &Pending, key: AccessKey, access: MmioAccess) {
        if self.issued.contains_key(&(p.slot, p.seq)) || self.stale.contains(&(p.slot, p.seq)) {
            return;
        }
        let route = &self.s.virtio[p.route];
        assert_eq!(p.route, key.route, "a new request for another device");
        assert_eq!(Some(p.slot), ioreq::sync_slot(route.backend_index, vcpu));
        assert_ne!(p.seq, 0, "sequence number 0");
        assert_ne!(p.seq, self.last_seq[p.slot], "slot {} seq repeated", p.slot);
        assert_eq!((p.asked_at, p.offset), (self.now, access.offset));
        assert_eq!(p.write, access.write.is_some());
        let r = self.mem.record(ioreq::sync_slot_offset(p.slot));
        assert_eq!((r.state, r.seq), (ioreq::state::READY, p.seq), "{r:?}");
        assert_eq!((r.offset, r.size), (access.offset, access.size), "{r:?}");
        assert_eq!(
            (usize::from(r.device), usize::from(r.vcpu)),
            (route.backend_index, vcpu)
        );
        let dir = [ioreq::dir::READ, ioreq::dir::WRITE][usize::from(p.write)];
        assert_eq!(r.dir, dir, "{r:?}");
        if route.copy.is_none() {
            assert_eq!(r.data, access.write.unwrap_or(0), "{r:?}");
        }
        self.last_seq[p.slot] = p.seq;
        self.issued.insert((p.slot, p.seq), None);
    }

    /// The vCPU waiting in EL2 polls its request.
    fn poll(&mut self, vcpu: usize, fx: &mut Effects) {
        let Some((key, access, true)) = self.vcpus[vcpu] else {
            return;
        };
        let pending = self.inflight[vcpu];
        let waited = virtio::wait_poll(self.s, key, vcpu, self.mem, self.now, fx);
        let Some(p) = pending else {
            return;
        };
        let route = &self.s.virtio[p.route];
        let completed = self.issued.get(&(p.slot, p.seq)).copied().flatten();
        match waited {
            None => {
                assert!(completed.is_none(), "a completed request still waits");
                let failed = route.has_failed() && !route.is_recoverable();
                assert!(!failed, "a failed device still waits");
                let stale = self.stale.contains(&(p.slot, p.seq));
                assert!(
                    !stale,
                    "{p:?}, from before the backend restarted, still waits: it can never complete"
                );
                self.check_in_time(&p);
            }
            Some(w) => {
                if let (Waited::Value(v), Some(c), None) = (w, completed, &route.copy) {
                    assert_eq!(v, c, "the wait returned another value than the backend's");
                }
                if let (Waited::Value(v), None) = (w, completed) {
                    // Unanswered before a restart: all-ones (the device may work
                    // again meanwhile: another vCPU reset it); else a failed device.
                    let stale = self.stale.contains(&(p.slot, p.seq));
                    assert!(
                        v == u64::MAX && (stale || route.has_failed()),
                        "{v:#x} from nowhere"
                    );
                }
                self.issued.remove(&(p.slot, p.seq));
                self.stale.remove(&(p.slot, p.seq));
                self.inflight[vcpu] = None;
                let done = matches!(w, Waited::Value(_));
                self.vcpus[vcpu] = (!done).then_some((key, access, false));
            }
        }
    }

    /// A request still waiting is within its deadline or the start allowance.
    fn check_in_time(&self, p: &Pending) {
        let page = self.s.partitions[1].ioreq.as_ref().expect("a page");
        let start = BACKEND_START_MS * HZ / 1000;
        let deadline = self.s.virtio[p.route].deadline_ticks;
        let ok = match page.ready_at() {
            None => self.now <= page.created_at() + start,
            Some(at) => self.now <= p.asked_at.max(at) + deadline,
        };
        assert!(ok, "{p:?} still waits at {} ms", self.now);
    }

    /// IOREQ_COMPLETE from the backend.
    fn complete(&mut self, slot: u64, seq: u64, value: u64, fx: &mut Effects) {
        let be = &self.s.partitions[1];
        let result = virtio::complete(self.s, be, (slot, seq, value), self.mem, self.now, fx);
        let key = usize::try_from(slot)
            .ok()
            .zip(u32::try_from(seq).ok())
            .filter(|k| self.issued.get(k) == Some(&None));
        match (result, key) {
            (Ok(()), Some(k)) => {
                self.issued.insert(k, Some(value));
            }
            (Ok(()), None) => panic!("IOREQ_COMPLETE({slot}, {seq}) taken, nothing waits"),
            (Err(e), Some(_)) => {
                panic!("IOREQ_COMPLETE({slot}, {seq}) of a request in flight: {e:?}")
            }
            (Err(_), _) => {
                let route = self.s.virtio.iter().find(|r| {
                    usize::try_from(slot).is_ok_and(|s| {
                        s < ioreq::SYNC_SLOTS && ioreq::slot_device(s) == r.backend_index
                    })
                });
                if let (Some(r), true) = (route, be.ioreq.is_some()) {
                    assert!(
                        r.has_failed(),
                        "garbage IOREQ_COMPLETE did not fail the device"
                    );
                }
            }
        }
    }
}

/// What a failed device answers a read.
fn check_failed_read(offset: u64, value: u64) {
    match offset {
        virtio::STATUS => {
            let needs_reset = u64::from(virtio::DEVICE_NEEDS_RESET);
            assert_eq!(
                value & needs_reset,
                needs_reset,
                "Status of a failed device"
            );
        }
        virtio::INTERRUPT_STATUS => assert_eq!(value, u64::from(virtio::CONFIG_CHANGE)),
        _ => assert_eq!(value, u64::MAX, "a failed device's register {offset:#x}"),
    }
}
