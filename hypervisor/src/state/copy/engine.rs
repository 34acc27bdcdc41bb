//! The copy path's work: the frontend's register writes, moving posted requests
//! into the shadow rings, and moving used ones back.

use alloc::vec;

use ferry_virtio_backend::spec::{desc_flags, feature, reg};
use ferry_virtio_backend::walk_chain;

use super::pool::Pool;
use super::ring::{GuestView, Rings, need_event};
use super::{CopyDevice, CopyError, MAX_QUEUE_SIZE, MAX_QUEUES, Outstanding, Queue, Register};
use crate::state::ioreq::PageMemory;

/// Bytes moved through the stack at a time.
const STEP: usize = 256;

/// What one pass of the copy path did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Requests posted to the backend's shadow rings.
    pub posted: u16,
    /// The queues they were posted to (bit n: queue n).
    pub posted_queues: u8,
    /// Requests completed into the frontend's used rings.
    pub completed: u16,
    /// The frontend wants a used-buffer interrupt.
    pub interrupt: bool,
}

impl CopyDevice {
    /// A frontend register write: kept here; the backend gets the shadow rings'
    /// addresses instead of the frontend's. `fe`, `be`: the two partitions' RAM.
    pub fn on_write<M: PageMemory>(
        &mut self,
        offset: u64,
        value: u64,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Register {
        let sel = self.queue_sel as usize;
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        if let Some(register) = self.address_write(sel, offset, value) {
            return register;
        }
        let queue = self.queues.get_mut(sel);
        match (offset, queue) {
            (reg::QUEUE_SEL, _) => self.queue_sel = value as u32,
            (reg::DRIVER_FEATURES_SEL, _) => self.driver_features_sel = value as u32,
            (reg::DRIVER_FEATURES, _) => {
                let (lo, hi) = (
                    self.driver_features & 0xffff_ffff,
                    self.driver_features >> 32,
                );
                match self.driver_features_sel {
                    0 => self.driver_features = hi << 32 | (value & 0xffff_ffff),
                    1 => self.driver_features = (value & 0xffff_ffff) << 32 | lo,
                    _ => {}
                }
            }
            (reg::STATUS, _) if value == 0 => self.reset(),
            (reg::QUEUE_NUM, Some(q)) if !q.ready => q.fe.num = value as u16,
            // Ready again while ready: nothing changes (its requests stay held).
            (reg::QUEUE_READY, Some(q)) if value & 1 == 1 && q.ready => {}
            (reg::QUEUE_READY, Some(_)) if value & 1 == 1 => {
                if let Err(e) = self.enable(sel, fe, be) {
                    return Register::Fail(e);
                }
            }
            (reg::QUEUE_READY | reg::QUEUE_RESET, Some(_)) => self.disable(sel),
            _ => {}
        }
        Register::Forward(value)
    }

    /// A write of a queue address register (QueueDesc, QueueDriver, QueueDevice,
    /// low or high half): the frontend's value is kept while the queue is not
    /// ready (a ready queue's rings stay where they were checked), and the backend
    /// gets the shadow ring's address, or 0 for a queue Ferry does not shadow.
    /// `None` for any other register.
    fn address_write(&mut self, sel: usize, offset: u32, value: u64) -> Option<Register> {
        let shadow = self.shadow(sel);
        let ready = self.queues.get(sel).is_some_and(|q| q.ready);
        let queue = self.queues.get_mut(sel);
        let (field, theirs) = match (offset, queue) {
            (
                reg::QUEUE_DESC_LOW
                | reg::QUEUE_DESC_HIGH
                | reg::QUEUE_DRIVER_LOW
                | reg::QUEUE_DRIVER_HIGH
                | reg::QUEUE_DEVICE_LOW
                | reg::QUEUE_DEVICE_HIGH,
                None,
            ) => return Some(Register::Forward(0)),
            (reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH, Some(q)) => (&mut q.fe.desc, shadow.desc),
            (reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH, Some(q)) => {
                (&mut q.fe.avail, shadow.avail)
            }
            (reg::QUEUE_DEVICE_LOW | reg::QUEUE_DEVICE_HIGH, Some(q)) => {
                (&mut q.fe.used, shadow.used)
            }
            _ => return None,
        };
        let high = offset % 8 == 4;
        let lo = value & 0xffff_ffff;
        if !ready {
            *field = if high {
                *field & 0xffff_ffff | lo << 32
            } else {
                *field & !0xffff_ffff | lo
            };
        }
        Some(Register::Forward(if high {
            theirs >> 32
        } else {
            theirs & 0xffff_ffff
        }))
    }

    /// Forgets every queue and request (the frontend reset the device).
    fn reset(&mut self) {
        self.queues = Default::default();
        self.pools.iter_mut().for_each(Pool::clear);
        self.queue_sel = 0;
        self.driver_features = 0;
    }

    fn disable(&mut self, q: usize) {
        if let Some(queue) = self.queues.get_mut(q) {
            for slot in queue.slots.iter_mut().filter_map(Option::take) {
                self.pools[q].free(slot.run);
            }
            let num = queue.fe.num;
            *queue = Queue::default();
            queue.fe.num = num;
        }
    }

    /// QueueReady = 1: checks the frontend's rings and clears the shadow ones.
    fn enable<M: PageMemory>(
        &mut self,
        q: usize,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<(), CopyError> {
        let queue = q as u16;
        let rings = self.queues[q].fe;
        let inside = |addr: u64, len: u64| fe.pa(addr, len).is_some();
        if !(2..=MAX_QUEUE_SIZE).contains(&rings.num)
            || !rings.num.is_power_of_two()
            || !rings.aligned()
            || !inside(rings.desc, rings.desc_len())
            || !inside(rings.avail, rings.avail_len())
            || !inside(rings.used, rings.used_len())
        {
            return Err(CopyError::Ring { queue });
        }
        let shadow = self.shadow(q);
        let zeros = [0u8; STEP];
        for (addr, len) in [
            (shadow.desc, shadow.desc_len()),
            (shadow.avail, shadow.avail_len()),
            (shadow.used, shadow.used_len()),
        ] {
            for at in (0..len).step_by(STEP) {
                let n = (len - at).min(STEP as u64) as usize;
                be.write(addr + at, &zeros[..n])
                    .map_err(|_| CopyError::Memory { queue })?;
            }
        }
        let num = rings.num;
        self.queues[q] = Queue {
            fe: rings,
            ready: true,
            slots: vec![None; usize::from(num / 2)],
            ..Queue::default()
        };
        Ok(())
    }

    /// The frontend notified queue `q`: moves what it posted into the shadow
    /// ring, as far as the bounce area allows. Returns how many requests moved.
    pub fn post<M: PageMemory>(
        &mut self,
        q: usize,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<u16, CopyError> {
        let queue = q as u16;
        let Some(state) = self.queues.get(q).filter(|s| s.ready) else {
            return Ok(0);
        };
        let rings = state.fe;
        let mem = CopyError::Memory { queue };
        let idx = fe.u16(rings.avail_idx()).map_err(|_| mem)?;
        let last = state.last_avail;
        if idx.wrapping_sub(last) > rings.num {
            return Err(CopyError::AvailJump { queue, last, idx });
        }
        let mut posted = 0;
        while self.queues[q].last_avail != idx {
            if !self.post_one(q, fe, be)? {
                break;
            }
            posted += 1;
        }
        if posted > 0 {
            let state = &self.queues[q];
            be.barrier();
            be.set_u16(self.shadow(q).avail_idx(), state.shadow_avail)
                .map_err(|_| mem)?;
        }
        if self.negotiated(feature::RING_EVENT_IDX) {
            let last = self.queues[q].last_avail;
            fe.set_u16(rings.avail_event(), last).map_err(|_| mem)?;
        }
        Ok(posted)
    }

    /// Moves the next posted request; false if the bounce area or the shadow
    /// ring has no room for it now.
    fn post_one<M: PageMemory>(
        &mut self,
        q: usize,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<bool, CopyError> {
        let queue = q as u16;
        let mem = CopyError::Memory { queue };
        let state = &self.queues[q];
        let rings = state.fe;
        let head = fe
            .u16(rings.avail_entry(state.last_avail))
            .map_err(|_| mem)?;
        let indirect = self.negotiated(feature::RING_INDIRECT_DESC);
        let mut walker = GuestView::new(fe.regions(), fe.memory());
        let chain = walk_chain(&mut walker, rings.desc, rings.num, head, indirect)
            .map_err(|error| CopyError::Chain { queue, head, error })?;
        if let Some(b) = chain
            .buffers()
            .iter()
            .find(|b| fe.pa(b.addr, u64::from(b.len)).is_none())
        {
            return Err(CopyError::Buffer {
                queue,
                addr: b.addr,
                len: b.len,
            });
        }
        let bytes = u64::from(chain.readable_len()) + u64::from(chain.writable_len());
        if !self.pools[q].could_fit(bytes) {
            return Err(CopyError::TooBig { queue, bytes });
        }
        let Some(k) = self.queues[q].slots.iter().position(Option::is_none) else {
            return Ok(false);
        };
        let Some(run) = self.pools[q].alloc(bytes) else {
            return Ok(false);
        };
        let data = self.pool_base(q) + run.offset();
        let mut at = data;
        for b in chain.readable() {
            copy(fe, b.addr, be, at, b.len).map_err(|_| mem)?;
            at += u64::from(b.len);
        }
        let (r, w) = (chain.readable_len(), chain.writable_len());
        let shadow = self.shadow(q);
        let first = 2 * k as u16;
        // At most two shadow descriptors: all readable bytes, then all writable.
        let descs = [(data, r, 0u16), (data + u64::from(r), w, desc_flags::WRITE)];
        let descs = &descs[usize::from(r == 0)..1 + usize::from(w > 0)];
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let next = i + 1 < descs.len();
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            let flags = flags | if next { desc_flags::NEXT } else { 0 };
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..16].copy_from_slice(&(first + 1).to_le_bytes());
            be.write(shadow.desc + 16 * u64::from(first + i as u16), &d)
                .map_err(|_| mem)?;
        }
        let state = &mut self.queues[q];
        be.set_u16(shadow.avail_entry(state.shadow_avail), first)
            .map_err(|_| mem)?;
        state.shadow_avail = state.shadow_avail.wrapping_add(1);
        state.last_avail = state.last_avail.wrapping_add(1);
        state.slots[k] = Some(Outstanding {
            fe_head: chain.head(),
            run,
            readable_len: r,
            writable_len: w,
            writable: chain.writable().to_vec(),
        });
        Ok(true)
    }

    /// The backend notified: moves every request it marked used back to the
    /// frontend, then posts what waited for room. Says whether the frontend wants
    /// a used-buffer interrupt.
    pub fn complete<M: PageMemory>(
        &mut self,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<Moved, CopyError> {
        let mut moved = Moved::default();
        for q in 0..MAX_QUEUES {
            if !self.queues[q].ready {
                continue;
            }
            let (n, interrupt) = self.complete_queue(q, fe, be)?;
            moved.completed += n;
            moved.interrupt |= interrupt;
        }
        for q in 0..MAX_QUEUES {
            let n = self.post(q, fe, be)?;
            if n > 0 {
                moved.posted += n;
                moved.posted_queues |= 1 << q;
            }
        }
        Ok(moved)
    }

    fn complete_queue<M: PageMemory>(
        &mut self,
        q: usize,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<(u16, bool), CopyError> {
        let queue = q as u16;
        let mem = CopyError::Memory { queue };
        let shadow = self.shadow(q);
        let idx = be.u16(shadow.used_idx()).map_err(|_| mem)?;
        let state = &self.queues[q];
        let (rings, old, last) = (state.fe, state.fe_used, state.shadow_used);
        let outstanding = state.slots.iter().flatten().count();
        if usize::from(idx.wrapping_sub(last)) > outstanding {
            return Err(CopyError::UsedJump { queue, last, idx });
        }
        let mut n = 0;
        while self.queues[q].shadow_used != idx {
            self.complete_one(q, &shadow, fe, be)?;
            n += 1;
        }
        let state = &self.queues[q];
        // The backend notifies again at its next used entry (event-idx).
        be.set_u16(shadow.used_event(), state.shadow_used)
            .map_err(|_| mem)?;
        if n == 0 {
            return Ok((0, false));
        }
        fe.barrier();
        fe.set_u16(rings.used_idx(), state.fe_used)
            .map_err(|_| mem)?;
        fe.barrier();
        let interrupt = if self.negotiated(feature::RING_EVENT_IDX) {
            let used_event = fe.u16(rings.used_event()).map_err(|_| mem)?;
            need_event(used_event, state.fe_used, old)
        } else {
            let flags = fe.u16(rings.avail).map_err(|_| mem)?;
            flags & ferry_virtio_backend::spec::AVAIL_F_NO_INTERRUPT == 0
        };
        Ok((n, interrupt))
    }

    fn complete_one<M: PageMemory>(
        &mut self,
        q: usize,
        shadow: &Rings,
        fe: &GuestView<'_, M>,
        be: &GuestView<'_, M>,
    ) -> Result<(), CopyError> {
        let queue = q as u16;
        let mem = CopyError::Memory { queue };
        let at = shadow.used_entry(self.queues[q].shadow_used);
        let id = be.u32(at).map_err(|_| mem)?;
        let len = be.u32(at + 4).map_err(|_| mem)?;
        let k = (id / 2) as usize;
        let slot = (id % 2 == 0)
            .then(|| self.queues[q].slots.get_mut(k))
            .flatten()
            .and_then(Option::take)
            .ok_or(CopyError::NotOutstanding { queue, id })?;
        if len > slot.writable_len {
            let writable = slot.writable_len;
            self.queues[q].slots[k] = Some(slot);
            return Err(CopyError::UsedTooLong {
                queue,
                id,
                len,
                writable,
            });
        }
        let mut from = self.pool_base(q) + slot.run.offset() + u64::from(slot.readable_len);
        let mut left = len;
        for b in slot.writable.iter() {
            if left == 0 {
                break;
            }
            let n = left.min(b.len);
            copy(be, from, fe, b.addr, n).map_err(|_| mem)?;
            from += u64::from(n);
            left -= n;
        }
        self.pools[q].free(slot.run);
        let state = &mut self.queues[q];
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&u32::from(slot.fe_head).to_le_bytes());
        entry[4..].copy_from_slice(&len.to_le_bytes());
        fe.write(state.fe.used_entry(state.fe_used), &entry)
            .map_err(|_| mem)?;
        state.fe_used = state.fe_used.wrapping_add(1);
        state.shadow_used = state.shadow_used.wrapping_add(1);
        Ok(())
    }
}

/// Copies `len` bytes from `src` (in `from`) to `dst` (in `to`), each range
/// wholly inside one region of its partition.
fn copy<M: PageMemory>(
    from: &GuestView<'_, M>,
    src: u64,
    to: &GuestView<'_, M>,
    dst: u64,
    len: u32,
) -> Result<(), ferry_virtio_backend::MemError> {
    let len = u64::from(len);
    let src = from.pa(src, len).ok_or(ferry_virtio_backend::MemError)?;
    let dst = to.pa(dst, len).ok_or(ferry_virtio_backend::MemError)?;
    to.memory().copy(dst, src, len);
    Ok(())
}
