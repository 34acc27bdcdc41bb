//! The virtio-mmio v2 front end: registers, status state machine, feature
//! negotiation, queue setup, reset, interrupts, and the queue-work hook.

use crate::Error;
use crate::device::{Options, VirtioDevice};
use crate::queue::Queue;
use crate::spec::{self, feature, reg, status};
use crate::transport::{Interrupt, Transport};

/// The most queues one device may have.
pub const MAX_QUEUES: usize = 8;

/// What a register write asks of the embedder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteEffect {
    /// Nothing to do.
    None,
    /// The driver notified queue `n` (a live device, a ready queue): call
    /// [`Device::process_queue`] now or later (e.g. from a worker thread;
    /// [`Device::poll`] serves every pending queue).
    QueueNotify(u16),
    /// The driver reset the device (status 0).
    Reset,
}

/// A virtio-mmio v2 device: a device model `D` reached by the driver through
/// transport `T`.
///
/// The embedder forwards the driver's trapped accesses to the register window with
/// [`mmio_read`](Self::mmio_read) / [`mmio_write`](Self::mmio_write), and serves
/// queues with [`process_queue`](Self::process_queue) when a write returns
/// [`WriteEffect::QueueNotify`] (or from [`poll`](Self::poll)). Nothing here blocks,
/// allocates or panics on anything the driver does.
pub struct Device<D, T> {
    model: D,
    transport: T,
    options: Options,
    status: u8,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    shm_sel: u32,
    queues: [Queue; MAX_QUEUES],
    interrupt_status: u32,
    config_generation: u32,
    pending: u32,
    last_error: Option<Error>,
}

impl<D: VirtioDevice, T: Transport> Device<D, T> {
    /// A device in reset state. `model.num_queues()` above [`MAX_QUEUES`] are not
    /// exposed.
    pub const fn new(model: D, transport: T, options: Options) -> Self {
        Device {
            model,
            transport,
            options,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            shm_sel: 0,
            queues: [Queue::new(); MAX_QUEUES],
            interrupt_status: 0,
            config_generation: 0,
            pending: 0,
            last_error: None,
        }
    }

    /// The device model.
    pub fn model(&self) -> &D {
        &self.model
    }

    /// The device model, mutably (e.g. to feed it input, then call
    /// [`process_queue`](Self::process_queue)).
    pub fn model_mut(&mut self) -> &mut D {
        &mut self.model
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Takes the device apart.
    pub fn into_parts(self) -> (D, T) {
        (self.model, self.transport)
    }

    /// The device status byte as the driver reads it.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// DEVICE_NEEDS_RESET is set.
    pub fn needs_reset(&self) -> bool {
        self.status & status::DEVICE_NEEDS_RESET != 0
    }

    /// DRIVER_OK is set and DEVICE_NEEDS_RESET is not: queues are served.
    pub fn is_live(&self) -> bool {
        self.status & (status::DRIVER_OK | status::DEVICE_NEEDS_RESET) == status::DRIVER_OK
    }

    /// Feature bits offered to the driver.
    pub fn device_features(&self) -> u64 {
        let o = &self.options;
        let mut f = self.model.features() | feature::VERSION_1;
        for (on, bit) in [
            (o.event_idx, feature::RING_EVENT_IDX),
            (o.indirect_desc, feature::RING_INDIRECT_DESC),
            (o.ring_reset, feature::RING_RESET),
            (o.access_platform, feature::ACCESS_PLATFORM),
        ] {
            if on {
                f |= bit;
            }
        }
        f
    }

    /// Feature bits the driver wrote (negotiated once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// `InterruptStatus`.
    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    /// The most recent device error (cleared by a device reset).
    pub fn last_error(&self) -> Option<Error> {
        self.last_error
    }

    /// Bit `n` set: queue `n` was notified, or its last pass stopped at its bound,
    /// and has not been served since.
    pub fn pending_queues(&self) -> u32 {
        self.pending
    }

    fn num_queues(&self) -> u16 {
        self.model.num_queues().min(MAX_QUEUES as u16)
    }

    fn has(&self, f: u64) -> bool {
        self.driver_features & f != 0
    }

    fn queue_max(&self, q: u16) -> u16 {
        if q >= self.num_queues() {
            return 0;
        }
        let m = self
            .model
            .queue_max_size(q)
            .min(self.options.queue_size_max)
            .min(spec::MAX_QUEUE_SIZE);
        // Round down to a power of two: a split queue size must be one.
        if m == 0 {
            0
        } else {
            1 << (15 - m.leading_zeros().min(15))
        }
    }

    /// The selected queue, if it exists.
    fn sel(&self) -> Option<u16> {
        let q = u16::try_from(self.queue_sel).ok()?;
        (q < self.num_queues()).then_some(q)
    }

    /// Puts the device in DEVICE_NEEDS_RESET because of `err` and raises a
    /// configuration-change interrupt (once). For embedder-detected failures too,
    /// e.g. a storage error behind a device model.
    pub fn set_needs_reset(&mut self, err: Error) {
        self.last_error = Some(err);
        if self.needs_reset() {
            return;
        }
        self.status |= status::DEVICE_NEEDS_RESET;
        self.pending = 0;
        self.raise(Interrupt::ConfigChange);
    }

    /// The device configuration changed (e.g. a new disk capacity): bumps
    /// `ConfigGeneration` and raises a configuration-change interrupt.
    pub fn config_changed(&mut self) {
        self.config_generation = self.config_generation.wrapping_add(1);
        self.raise(Interrupt::ConfigChange);
    }

    fn raise(&mut self, cause: Interrupt) {
        self.interrupt_status |= match cause {
            Interrupt::UsedBuffer => spec::INT_USED_BUFFER,
            Interrupt::ConfigChange => spec::INT_CONFIG_CHANGE,
        };
        self.transport.notify(cause);
    }

    /// Device reset (the driver wrote 0 to `Status`): every register, every queue
    /// and the model's in-flight state back to their initial values.
    /// `ConfigGeneration` keeps counting.
    pub fn reset(&mut self) {
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.shm_sel = 0;
        self.queues = [Queue::new(); MAX_QUEUES];
        self.interrupt_status = 0;
        self.pending = 0;
        self.last_error = None;
        self.model.reset();
    }

    /// A driver read of `size` (1, 2, 4 or 8) bytes at `offset` in the register
    /// window. Registers take 4-byte aligned 32-bit reads; the configuration space
    /// (0x100 on) takes 1, 2, 4 and 8-byte reads. Anything else reads as 0.
    pub fn mmio_read(&self, offset: u32, size: u8) -> u64 {
        if offset >= reg::CONFIG {
            return self.config_read(offset - reg::CONFIG, size);
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return 0;
        }
        let q = self.sel().map(|q| &self.queues[usize::from(q)]);
        let v: u32 = match offset {
            reg::MAGIC_VALUE => spec::MAGIC,
            reg::VERSION => spec::MMIO_VERSION,
            reg::DEVICE_ID => self.model.device_id(),
            reg::VENDOR_ID => self.options.vendor_id,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features() as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            reg::DEVICE_FEATURES_SEL => self.device_features_sel,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel,
            reg::QUEUE_SEL => self.queue_sel,
            reg::QUEUE_NUM_MAX => self.sel().map_or(0, |q| u32::from(self.queue_max(q))),
            reg::QUEUE_NUM => q.map_or(0, |q| u32::from(q.num)),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => u32::from(self.status),
            reg::QUEUE_DESC_LOW => q.map_or(0, |q| q.desc as u32),
            reg::QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc >> 32) as u32),
            reg::QUEUE_DRIVER_LOW => q.map_or(0, |q| q.driver as u32),
            reg::QUEUE_DRIVER_HIGH => q.map_or(0, |q| (q.driver >> 32) as u32),
            reg::QUEUE_DEVICE_LOW => q.map_or(0, |q| q.device as u32),
            reg::QUEUE_DEVICE_HIGH => q.map_or(0, |q| (q.device >> 32) as u32),
            reg::SHM_SEL => self.shm_sel,
            // No shared memory regions: length (and base) all-ones.
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            // Queue resets complete at once.
            reg::QUEUE_RESET => 0,
            reg::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        };
        u64::from(v)
    }

    fn config_read(&self, offset: u32, size: u8) -> u64 {
        let mut b = [0u8; 8];
        match size {
            1 | 2 | 4 | 8 if offset.checked_add(u32::from(size)).is_some() => {
                self.model.config_read(offset, &mut b[..usize::from(size)]);
                u64::from_le_bytes(b)
            }
            _ => 0,
        }
    }

    /// A driver write of `size` bytes of `value` at `offset` in the register window
    /// (same size rules as [`mmio_read`](Self::mmio_read); anything else is
    /// ignored). Returns what the embedder should do next.
    pub fn mmio_write(&mut self, offset: u32, size: u8, value: u64) -> WriteEffect {
        if offset >= reg::CONFIG {
            if matches!(size, 1 | 2 | 4 | 8) {
                let b = value.to_le_bytes();
                self.model
                    .config_write(offset - reg::CONFIG, &b[..usize::from(size)]);
            }
            return WriteEffect::None;
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return WriteEffect::None;
        }
        let v = value as u32;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::DRIVER_FEATURES => self.write_driver_features(v),
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM => self.with_idle_queue(|q| q.num = v as u16),
            reg::QUEUE_DESC_LOW => self.with_idle_queue(|q| set_low(&mut q.desc, v)),
            reg::QUEUE_DESC_HIGH => self.with_idle_queue(|q| set_high(&mut q.desc, v)),
            reg::QUEUE_DRIVER_LOW => self.with_idle_queue(|q| set_low(&mut q.driver, v)),
            reg::QUEUE_DRIVER_HIGH => self.with_idle_queue(|q| set_high(&mut q.driver, v)),
            reg::QUEUE_DEVICE_LOW => self.with_idle_queue(|q| set_low(&mut q.device, v)),
            reg::QUEUE_DEVICE_HIGH => self.with_idle_queue(|q| set_high(&mut q.device, v)),
            reg::QUEUE_READY => self.write_queue_ready(v),
            reg::QUEUE_RESET => self.write_queue_reset(v),
            reg::QUEUE_NOTIFY => return self.write_queue_notify(v),
            reg::INTERRUPT_ACK => self.interrupt_status &= !v,
            reg::STATUS => return self.write_status(v),
            reg::SHM_SEL => self.shm_sel = v,
            _ => {}
        }
        WriteEffect::None
    }

    fn write_driver_features(&mut self, v: u32) {
        // Features are fixed once FEATURES_OK is set.
        if self.status & status::FEATURES_OK != 0 {
            return;
        }
        let f = &mut self.driver_features;
        match self.driver_features_sel {
            0 => *f = (*f & !0xffff_ffff) | u64::from(v),
            1 => *f = (*f & 0xffff_ffff) | (u64::from(v) << 32),
            _ => {}
        }
    }

    /// Applies `f` to the selected queue if it exists and is not ready (a ready
    /// queue's configuration is fixed).
    fn with_idle_queue(&mut self, f: impl FnOnce(&mut Queue)) {
        if let Some(q) = self.sel() {
            let q = &mut self.queues[usize::from(q)];
            if !q.ready {
                f(q);
            }
        }
    }

    fn write_queue_ready(&mut self, v: u32) {
        let Some(qi) = self.sel() else { return };
        if v == 0 {
            let q = &mut self.queues[usize::from(qi)];
            q.ready = false;
            q.in_flight = 0;
            self.pending &= !(1 << qi);
            self.model.queue_reset(qi);
            return;
        }
        if self.queues[usize::from(qi)].ready || self.needs_reset() {
            return;
        }
        let max = self.queue_max(qi);
        let q = &mut self.queues[usize::from(qi)];
        if let Err(e) = q.enable(qi, max, &mut self.transport) {
            self.set_needs_reset(e);
        }
    }

    fn write_queue_reset(&mut self, v: u32) {
        if v != 1 || !self.has(feature::RING_RESET) {
            return;
        }
        if let Some(qi) = self.sel() {
            self.queues[usize::from(qi)] = Queue::new();
            self.pending &= !(1 << qi);
            self.model.queue_reset(qi);
        }
    }

    fn write_queue_notify(&mut self, v: u32) -> WriteEffect {
        let Ok(qi) = u16::try_from(v) else {
            return WriteEffect::None;
        };
        if qi >= self.num_queues() || !self.is_live() || !self.queues[usize::from(qi)].ready {
            return WriteEffect::None;
        }
        self.pending |= 1 << qi;
        WriteEffect::QueueNotify(qi)
    }

    /// The status state machine (§2.1, §3.1.1).
    fn write_status(&mut self, v: u32) -> WriteEffect {
        if v == 0 {
            self.reset();
            return WriteEffect::Reset;
        }
        let cur = self.status & !status::DEVICE_NEEDS_RESET;
        // DEVICE_NEEDS_RESET belongs to the device; bits above 7 do not exist.
        let mut new = (v as u8) & !status::DEVICE_NEEDS_RESET;
        // Only a reset clears bits: a write that drops one is ignored.
        if v > 0xff || cur & !new != 0 {
            return WriteEffect::None;
        }
        let added = new & !cur;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable(new) {
            new &= !status::FEATURES_OK;
        }
        if added & status::DRIVER_OK != 0 && new & status::FEATURES_OK == 0 {
            new &= !status::DRIVER_OK;
        }
        self.status = new | (self.status & status::DEVICE_NEEDS_RESET);
        WriteEffect::None
    }

    /// Whether the driver may set FEATURES_OK now: ACKNOWLEDGE and DRIVER set,
    /// VERSION_1 negotiated, nothing that was not offered, and the model agrees.
    fn features_acceptable(&mut self, new: u8) -> bool {
        let f = self.driver_features;
        new & (status::ACKNOWLEDGE | status::DRIVER) == status::ACKNOWLEDGE | status::DRIVER
            && f & feature::VERSION_1 != 0
            && f & !self.device_features() == 0
            && self.model.negotiate(f)
    }

    /// Serves queue `queue`: walks its available ring, serves every request with
    /// the model, publishes the used entries and interrupts the driver if it asked
    /// for it. Returns how many requests were completed.
    ///
    /// A pass completes at most `QueueNum` requests; if it stops there the queue
    /// stays in [`pending_queues`](Self::pending_queues). Any malformed ring,
    /// descriptor or request, and any refused memory access, puts the device in
    /// DEVICE_NEEDS_RESET (with a configuration-change interrupt) and is returned.
    /// `Err(NotReady)`, `Err(InvalidQueue)` and `Err(QueueNotReady)` change nothing.
    pub fn process_queue(&mut self, queue: u16) -> Result<usize, Error> {
        if queue >= self.num_queues() {
            return Err(Error::InvalidQueue(queue));
        }
        self.pending &= !(1 << queue);
        if !self.is_live() {
            return Err(Error::NotReady);
        }
        if !self.queues[usize::from(queue)].ready {
            return Err(Error::QueueNotReady(queue));
        }
        let event_idx = self.has(feature::RING_EVENT_IDX);
        let indirect = self.has(feature::RING_INDIRECT_DESC);
        let q = &mut self.queues[usize::from(queue)];
        match q.serve(
            queue,
            &mut self.model,
            &mut self.transport,
            event_idx,
            indirect,
        ) {
            Ok(s) => {
                if s.more {
                    self.pending |= 1 << queue;
                }
                if s.notify {
                    self.raise(Interrupt::UsedBuffer);
                }
                Ok(s.count)
            }
            Err(e) => {
                self.set_needs_reset(e);
                Err(e)
            }
        }
    }

    /// Finishes request `head` of `queue`, which the model left
    /// [`Pending`](crate::Completion::Pending): the model's
    /// [`finish`](crate::VirtioDevice::finish) writes its answer, the used entry is
    /// published and the driver interrupted if it asked for it. Requests may be
    /// completed in any order.
    ///
    /// `Err(NotPending)` (nothing changes) when the queue holds no unfinished
    /// request: a late answer after a reset is dropped that way. `Err(NotReady)`
    /// likewise for a device that is not live. Any other error is a device error,
    /// recorded as with [`process_queue`](Self::process_queue).
    pub fn complete(&mut self, queue: u16, head: u16) -> Result<(), Error> {
        if queue >= self.num_queues() || !self.queues[usize::from(queue)].ready {
            return Err(Error::NotPending { queue, head });
        }
        if !self.is_live() {
            return Err(Error::NotReady);
        }
        let event_idx = self.has(feature::RING_EVENT_IDX);
        let indirect = self.has(feature::RING_INDIRECT_DESC);
        let q = &mut self.queues[usize::from(queue)];
        match q.complete(
            queue,
            head,
            &mut self.model,
            &mut self.transport,
            event_idx,
            indirect,
        ) {
            Ok(s) => {
                if s.notify {
                    self.raise(Interrupt::UsedBuffer);
                }
                Ok(())
            }
            Err(e @ Error::NotPending { .. }) => Err(e),
            Err(e) => {
                self.set_needs_reset(e);
                Err(e)
            }
        }
    }

    /// Requests of `queue` taken by the model and not yet completed.
    pub fn in_flight(&self, queue: u16) -> u16 {
        self.queues
            .get(usize::from(queue))
            .map_or(0, |q| q.in_flight)
    }

    /// Serves every pending queue once; returns the requests completed. Call again
    /// while [`pending_queues`](Self::pending_queues) is non-zero. Errors are
    /// recorded as with [`process_queue`](Self::process_queue); the first is
    /// returned.
    pub fn poll(&mut self) -> Result<usize, Error> {
        let mut total = 0;
        for q in 0..self.num_queues() {
            if self.pending & (1 << q) != 0 {
                total += self.process_queue(q)?;
            }
        }
        Ok(total)
    }
}

fn set_low(r: &mut u64, v: u32) {
    *r = (*r & !0xffff_ffff) | u64::from(v);
}

fn set_high(r: &mut u64, v: u32) {
    *r = (*r & 0xffff_ffff) | (u64::from(v) << 32);
}
