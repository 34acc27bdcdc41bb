//! Device side of one split virtqueue: configuration from the registers, checks
//! when the driver makes it ready, and serving the available ring into the used
//! ring (with event-idx notification suppression).

use core::sync::atomic::{Ordering, fence};

use crate::chain;
use crate::device::{Completion, VirtioDevice};
use crate::spec::{AVAIL_F_NO_INTERRUPT, MAX_QUEUE_SIZE};
use crate::transport::{self, Transport};
use crate::{Error, Request};

/// One queue's state as the registers and the serving loop see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Queue {
    /// `QueueNum`.
    pub num: u16,
    /// `QueueReady`.
    pub ready: bool,
    /// `QueueDesc`: descriptor table.
    pub desc: u64,
    /// `QueueDriver`: available ring.
    pub driver: u64,
    /// `QueueDevice`: used ring.
    pub device: u64,
    /// Next available ring index the device will take.
    pub last_avail: u16,
    /// Next used ring index the device will fill.
    pub used_idx: u16,
    /// Used index at the last notification decision (event-idx).
    signalled_used: u16,
    /// `signalled_used` holds a value.
    signalled_valid: bool,
    /// Requests taken from the available ring and not yet in the used ring
    /// ([`Completion::Pending`]).
    pub in_flight: u16,
}

/// What one pass over a queue did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Served {
    /// Requests completed into the used ring.
    pub count: usize,
    /// The pass stopped at its bound with work possibly left.
    pub more: bool,
    /// The driver wants a used-buffer notification.
    pub notify: bool,
}

impl Queue {
    /// The queue as after a reset: not ready, everything zero.
    pub const fn new() -> Self {
        Queue {
            num: 0,
            ready: false,
            desc: 0,
            driver: 0,
            device: 0,
            last_avail: 0,
            used_idx: 0,
            signalled_used: 0,
            signalled_valid: false,
            in_flight: 0,
        }
    }

    /// Checks the configuration when the driver writes `QueueReady = 1` (size;
    /// alignment; first and last byte of each ring reachable) and starts the rings
    /// at index 0.
    pub fn enable(&mut self, q: u16, max: u16, t: &mut dyn Transport) -> Result<(), Error> {
        let n = self.num;
        if n == 0 || !n.is_power_of_two() || n > max || n > MAX_QUEUE_SIZE {
            return Err(Error::QueueConfig(q));
        }
        if !self.desc.is_multiple_of(16)
            || !self.driver.is_multiple_of(2)
            || !self.device.is_multiple_of(4)
        {
            return Err(Error::QueueConfig(q));
        }
        let n = u64::from(n);
        for (addr, len) in [
            (self.desc, 16 * n),
            (self.driver, 6 + 2 * n),
            (self.device, 6 + 8 * n),
        ] {
            let last = addr.checked_add(len - 1).ok_or(Error::QueueConfig(q))?;
            let mut b = [0u8; 1];
            transport::read(t, addr, &mut b)?;
            transport::read(t, last, &mut b)?;
        }
        // The used ring is the device's: start it empty (flags 0, idx 0), which
        // also proves it writable.
        transport::write(t, self.device, &[0; 4])?;
        self.ready = true;
        self.last_avail = 0;
        self.used_idx = 0;
        self.signalled_valid = false;
        self.in_flight = 0;
        Ok(())
    }

    fn avail_idx(&self, t: &mut dyn Transport) -> Result<u16, Error> {
        transport::read_u16(t, self.driver + 2)
    }

    /// `avail.ring[n]`'s slot address / `used_event`'s when `slot == num`.
    fn avail_slot(&self, slot: u16) -> u64 {
        self.driver + 4 + 2 * u64::from(slot)
    }

    /// `used.ring[n]`'s address / `avail_event`'s when `slot == num`.
    fn used_slot(&self, slot: u16) -> u64 {
        self.device + 4 + 8 * u64::from(slot)
    }

    /// Serves available requests until the ring is empty, a request is deferred, or
    /// `num` requests were completed (then `more` is set: call again). Completed
    /// requests are published in the used ring even when a later one fails.
    pub fn serve<D: VirtioDevice + ?Sized>(
        &mut self,
        q: u16,
        model: &mut D,
        t: &mut dyn Transport,
        event_idx: bool,
        indirect: bool,
    ) -> Result<Served, Error> {
        let start = self.used_idx;
        let mut served = Served::default();
        let walked = self.pop_all(q, model, t, event_idx, indirect, &mut served);
        if self.used_idx != start {
            // Used elements before used.idx; used.idx before reading the driver's
            // notification wishes.
            fence(Ordering::Release);
            let published = transport::write_u16(t, self.device + 2, self.used_idx);
            fence(Ordering::SeqCst);
            walked?;
            published?;
            served.notify = self.need_notify(t, event_idx)?;
        } else {
            walked?;
        }
        Ok(served)
    }

    fn pop_all<D: VirtioDevice + ?Sized>(
        &mut self,
        q: u16,
        model: &mut D,
        t: &mut dyn Transport,
        event_idx: bool,
        indirect: bool,
        served: &mut Served,
    ) -> Result<(), Error> {
        let size = self.num;
        // Bounds the loop against a driver that keeps moving avail.idx.
        let mut steps = 2 * usize::from(size) + 2;
        loop {
            if served.count >= usize::from(size) || steps == 0 {
                served.more = true;
                return Ok(());
            }
            steps -= 1;
            let idx = self.avail_idx(t)?;
            let outstanding = idx.wrapping_sub(self.last_avail);
            if outstanding > size {
                return Err(Error::AvailIdxJump {
                    queue: q,
                    last: self.last_avail,
                    idx,
                });
            }
            if outstanding == 0 {
                if !event_idx {
                    return Ok(());
                }
                // Ask for a notification on the next buffer, then look again so a
                // buffer added meanwhile is not missed.
                transport::write_u16(t, self.used_slot(size), self.last_avail)?;
                fence(Ordering::SeqCst);
                if self.avail_idx(t)? == self.last_avail {
                    return Ok(());
                }
                continue;
            }
            // avail.idx before the ring entry and the descriptors it publishes.
            fence(Ordering::Acquire);
            let head = transport::read_u16(t, self.avail_slot(self.last_avail % size))?;
            let chain = chain::walk(t, self.desc, size, head, indirect)?;
            let mut req = Request::new(&chain, t);
            match model.process(q, &mut req)? {
                Completion::Defer => return Ok(()),
                Completion::Pending => self.in_flight = self.in_flight.wrapping_add(1),
                Completion::Done => {
                    let len = req.used_len();
                    self.push_used(t, head, len)?;
                }
            }
            self.last_avail = self.last_avail.wrapping_add(1);
            served.count += 1;
        }
    }

    /// Writes used entry (`head`, `len`) at the next used index (not yet published).
    fn push_used(&mut self, t: &mut dyn Transport, head: u16, len: u32) -> Result<(), Error> {
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        transport::write(t, self.used_slot(self.used_idx % self.num), &elem)?;
        self.used_idx = self.used_idx.wrapping_add(1);
        Ok(())
    }

    /// Finishes a request the model left pending: walks the chain at `head` again,
    /// lets the model answer it, publishes its used entry. `notify` in the result
    /// says whether the driver wants to hear.
    pub fn complete<D: VirtioDevice + ?Sized>(
        &mut self,
        q: u16,
        head: u16,
        model: &mut D,
        t: &mut dyn Transport,
        event_idx: bool,
        indirect: bool,
    ) -> Result<Served, Error> {
        if self.in_flight == 0 || head >= self.num {
            return Err(Error::NotPending { queue: q, head });
        }
        let chain = chain::walk(t, self.desc, self.num, head, indirect)?;
        let mut req = Request::new(&chain, t);
        model.finish(q, &mut req)?;
        let len = req.used_len();
        self.in_flight -= 1;
        self.push_used(t, head, len)?;
        fence(Ordering::Release);
        transport::write_u16(t, self.device + 2, self.used_idx)?;
        fence(Ordering::SeqCst);
        Ok(Served {
            count: 1,
            more: false,
            notify: self.need_notify(t, event_idx)?,
        })
    }

    /// Whether the driver wants to hear about the used entries just published.
    fn need_notify(&mut self, t: &mut dyn Transport, event_idx: bool) -> Result<bool, Error> {
        if !event_idx {
            let flags = transport::read_u16(t, self.driver)?;
            return Ok(flags & AVAIL_F_NO_INTERRUPT == 0);
        }
        let used_event = transport::read_u16(t, self.avail_slot(self.num))?;
        let old = self.signalled_used;
        let valid = self.signalled_valid;
        self.signalled_used = self.used_idx;
        self.signalled_valid = true;
        Ok(!valid || need_event(used_event, self.used_idx, old))
    }
}

/// `vring_need_event`: whether `event` lies in `[old, new)` (mod 2^16).
pub(crate) fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::need_event;

    #[test]
    fn need_event_window_wraps() {
        // event in [old, new)
        assert!(need_event(5, 6, 5));
        assert!(!need_event(5, 5, 2));
        assert!(need_event(3, 5, 2));
        assert!(!need_event(1, 5, 2));
        // Across the u16 wrap.
        assert!(need_event(0xffff, 2, 0xfffe));
        assert!(need_event(1, 2, 0xfffe));
        assert!(!need_event(2, 2, 0xfffe));
        assert!(!need_event(0xfffd, 2, 0xfffe));
    }
}
