//! A frontend vCPU's synchronous virtio access while its backend answers. The
//! vCPU does not wait in EL2 with its interrupts masked: when an interrupt is
//! pending it returns to the guest with the PC unchanged, the guest takes the
//! interrupt, and the access executes again later. This per-vCPU record lets
//! that second execution pick up the request already in flight (the same access
//! at the same PC) instead of sending it again, and keeps the answer of an
//! access that completed while the guest was elsewhere (an interrupt handler
//! touching the same device) until the interrupted instruction executes again.

/// A synchronous access waiting for its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Index into the system's routes.
    pub route: usize,
    /// The sync slot.
    pub slot: usize,
    /// The request's sequence number.
    pub seq: u32,
    /// Counter value when it was asked.
    pub asked_at: u64,
    /// The register offset.
    pub offset: u64,
    /// A write (else a read).
    pub write: bool,
    /// The backend's generation it went to (a restart ends it).
    pub generation: u32,
}

/// Which access a trap is: the device, the register access and the guest PC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessKey {
    /// Index into the system's routes.
    pub route: usize,
    /// The register offset.
    pub offset: u64,
    /// The access size in bytes.
    pub size: u8,
    /// The value stored (a write), or `None` (a read).
    pub write: Option<u64>,
    /// The guest's PC (the faulting instruction).
    pub pc: u64,
}

/// What the frontend vCPU has in flight or held.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuWait {
    /// The access forwarded and not yet completed.
    pub inflight: Option<(AccessKey, Pending)>,
    /// A completed access whose instruction has not executed again yet, with
    /// its value and the counter value after which it is stale.
    pub held: Option<(AccessKey, u64, u64)>,
}

impl VcpuWait {
    /// The held value of `key`, if it is held and not stale at `now` (taken).
    pub fn take_held(&mut self, key: &AccessKey, now: u64) -> Option<u64> {
        match self.held {
            Some((k, value, until)) if k == *key && now <= until => {
                self.held = None;
                Some(value)
            }
            _ => None,
        }
    }

    /// Forgets what a previous run of the vCPU held (a request still in
    /// flight stays: the next access to its device waits for it first, so its
    /// backend never sees its slot reused under it).
    pub fn restart(&mut self) {
        self.held = None;
    }
}
