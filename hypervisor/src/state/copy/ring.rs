//! Split virtqueues in guest memory: a partition's memory as its guest addresses
//! name it ([`GuestView`], refused outside its RAM), and the layout of the rings.

use ferry_config::GuestRegion;
use ferry_virtio_backend::{Interrupt, MemError, Transport};

use crate::state::ioreq::PageMemory;

/// A partition's RAM as the partition addresses it: every access lies entirely in
/// one of its regions, or is refused. Windows, devices and Ferry are in none.
pub struct GuestView<'a, M: PageMemory> {
    regions: &'a [GuestRegion],
    mem: &'a M,
}

impl<'a, M: PageMemory> GuestView<'a, M> {
    /// The view of `regions` through `mem`.
    pub fn new(regions: &'a [GuestRegion], mem: &'a M) -> Self {
        GuestView { regions, mem }
    }

    /// The regions it translates through.
    pub fn regions(&self) -> &'a [GuestRegion] {
        self.regions
    }

    /// The memory it reads and writes.
    pub fn memory(&self) -> &'a M {
        self.mem
    }

    /// The physical address of `[ipa, ipa + len)`, if one region holds all of it.
    pub fn pa(&self, ipa: u64, len: u64) -> Option<u64> {
        let end = ipa.checked_add(len)?;
        self.regions
            .iter()
            .find(|r| ipa >= r.ipa && r.ipa.checked_add(r.size).is_some_and(|e| end <= e))
            .map(|r| r.pa + (ipa - r.ipa))
    }

    /// Reads `buf.len()` bytes at `ipa`.
    pub fn read(&self, ipa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let pa = self.pa(ipa, buf.len() as u64).ok_or(MemError)?;
        self.mem.read_bytes(pa, buf);
        Ok(())
    }

    /// Writes `data` at `ipa`.
    pub fn write(&self, ipa: u64, data: &[u8]) -> Result<(), MemError> {
        let pa = self.pa(ipa, data.len() as u64).ok_or(MemError)?;
        self.mem.write_bytes(pa, data);
        Ok(())
    }

    /// The little-endian u16 at `ipa`.
    pub fn u16(&self, ipa: u64) -> Result<u16, MemError> {
        let mut b = [0; 2];
        self.read(ipa, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// The little-endian u32 at `ipa`.
    pub fn u32(&self, ipa: u64) -> Result<u32, MemError> {
        let mut b = [0; 4];
        self.read(ipa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a little-endian u16 at `ipa`.
    pub fn set_u16(&self, ipa: u64, v: u16) -> Result<(), MemError> {
        self.write(ipa, &v.to_le_bytes())
    }

    /// Orders the writes before it before those after it, as other cores see them.
    pub fn barrier(&self) {
        self.mem.barrier();
    }
}

/// The descriptor walker reads the frontend's ring through the view.
impl<M: PageMemory> Transport for GuestView<'_, M> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        GuestView::read(self, addr, buf)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        GuestView::write(self, addr, data)
    }

    fn notify(&mut self, _cause: Interrupt) {}
}

/// Where a split virtqueue of `num` entries lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rings {
    /// The descriptor table (16 bytes an entry).
    pub desc: u64,
    /// The available ring: flags, idx, ring[num], used_event.
    pub avail: u64,
    /// The used ring: flags, idx, ring[num] of (id, len), avail_event.
    pub used: u64,
    /// Entries.
    pub num: u16,
}

impl Rings {
    /// Bytes of the descriptor table.
    pub fn desc_len(&self) -> u64 {
        16 * u64::from(self.num)
    }

    /// Bytes of the available ring.
    pub fn avail_len(&self) -> u64 {
        6 + 2 * u64::from(self.num)
    }

    /// Bytes of the used ring.
    pub fn used_len(&self) -> u64 {
        6 + 8 * u64::from(self.num)
    }

    /// avail.idx.
    pub fn avail_idx(&self) -> u64 {
        self.avail + 2
    }

    /// avail.ring[i % num].
    pub fn avail_entry(&self, i: u16) -> u64 {
        self.avail + 4 + 2 * u64::from(i % self.num.max(1))
    }

    /// avail.used_event.
    pub fn used_event(&self) -> u64 {
        self.avail + 4 + 2 * u64::from(self.num)
    }

    /// used.idx.
    pub fn used_idx(&self) -> u64 {
        self.used + 2
    }

    /// used.ring[i % num].
    pub fn used_entry(&self, i: u16) -> u64 {
        self.used + 4 + 8 * u64::from(i % self.num.max(1))
    }

    /// used.avail_event.
    pub fn avail_event(&self) -> u64 {
        self.used + 4 + 8 * u64::from(self.num)
    }

    /// Whether the rings are aligned as virtio 1.2 §2.7 asks (16, 2, 4).
    pub fn aligned(&self) -> bool {
        self.desc.is_multiple_of(16) && self.avail.is_multiple_of(2) && self.used.is_multiple_of(4)
    }
}

/// Whether the driver wants an interrupt for used entries `old..new` given its
/// `used_event` (virtio 1.2 §2.7.10, `vring_need_event`).
pub fn need_event(used_event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(used_event).wrapping_sub(1) < new.wrapping_sub(old)
}
