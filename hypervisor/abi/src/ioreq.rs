//! IOREQ: how a frontend's trapped virtio-mmio access reaches its backend.
//!
//! Anchors: Xen's 32-byte `struct ioreq` (one synchronous slot per vCPU, plus a
//! buffered page for posted writes) and KVM's `ioregionfd_cmd` (posted writes).
//! Ferry writes records into the backend partition's *request page* (4 KiB, shared
//! between Ferry and that backend only; the frontend never sees it):
//!
//! ```text
//! 0x000  PageHeader (64 bytes)
//! 0x040  sync slots: SYNC_SLOTS x Ioreq     one per frontend vCPU that can wait
//! 0x840  posted ring: POSTED_SLOTS x Ioreq  QueueNotify writes, the FE does not wait
//! ```
//! A synchronous access (register read or write other than QueueNotify) fills the
//! FE vCPU's slot with state READY and a fresh sequence number; the backend serves
//! it and completes it with the `IOREQ_COMPLETE` hypercall naming slot and
//! sequence; the FE vCPU then resumes (reads get `data`). A QueueNotify write is
//! appended to the posted ring (Ferry advances `posted_head`, the backend
//! `posted_tail`) and the FE continues at once. If the ring is full, the notify is
//! recorded as a coalesced flag for its queue (never lost: virtio only needs to know
//! "look at this queue").

/// `PageHeader::magic`: "FERRYIOQ" little-endian.
pub const PAGE_MAGIC: u64 = u64::from_le_bytes(*b"FERRYIOQ");
/// Version of this layout.
pub const PAGE_VERSION: u32 = 1;
/// Size of the request page.
pub const PAGE_SIZE: usize = 4096;
/// Synchronous slots in a request page.
pub const SYNC_SLOTS: usize = 64;
/// Posted-ring entries in a request page.
pub const POSTED_SLOTS: usize = 62;
/// Offset of the first sync slot.
pub const SYNC_OFFSET: usize = 0x40;
/// Offset of the first posted-ring entry.
pub const POSTED_OFFSET: usize = SYNC_OFFSET + SYNC_SLOTS * 32;

/// Slot states.
pub mod state {
    /// Free.
    pub const NONE: u8 = 0;
    /// Written by Ferry; the backend may serve it.
    pub const READY: u8 = 1;
    /// Completed (Ferry's copy; the backend never writes states).
    pub const DONE: u8 = 2;
}

/// Access direction.
pub mod dir {
    /// The frontend writes `data` to the device.
    pub const WRITE: u8 = 0;
    /// The frontend reads; the backend answers with `data`.
    pub const READ: u8 = 1;
}

/// One forwarded access (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ioreq {
    /// Offset of the access inside the device's virtio-mmio window.
    pub offset: u64,
    /// Write: the value written. Read: filled by the completion, not by the backend.
    pub data: u64,
    /// Sequence number the completion must name (per slot, increasing).
    pub seq: u32,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// [`dir`].
    pub dir: u8,
    /// [`state`].
    pub state: u8,
    /// Index of the device in the backend's device list (its DT order).
    pub device: u8,
    /// The frontend vCPU that made the access.
    pub vcpu: u16,
    /// Bit 0: posted (no completion expected).
    pub flags: u16,
    /// Zero.
    pub reserved: u32,
}

/// The request page's header (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageHeader {
    /// [`PAGE_MAGIC`].
    pub magic: u64,
    /// [`PAGE_VERSION`].
    pub version: u32,
    /// [`SYNC_SLOTS`].
    pub sync_slots: u32,
    /// [`POSTED_SLOTS`].
    pub posted_slots: u32,
    /// Next posted entry Ferry writes (free-running, modulo `posted_slots`).
    pub posted_head: u32,
    /// Next posted entry the backend reads (written by the backend).
    pub posted_tail: u32,
    /// Bit n: queue n of some device was notified while the ring was full
    /// (coalesced); the backend clears the bits it has served.
    pub overflow_queues: u32,
    /// Bit n: console device n (the backend's device number) has typed input
    /// waiting in Ferry (set by Ferry with an atomic OR, then the doorbell); the
    /// backend clears the bits it takes (atomically) and reads the input with
    /// `CONSOLE_DEVICE_READ` until it returns 0 bytes.
    pub console_input: u32,
    /// Zero.
    pub reserved: [u32; 7],
}

const _: () = assert!(core::mem::size_of::<Ioreq>() == 32);
const _: () = assert!(core::mem::size_of::<PageHeader>() == 64);
const _: () = assert!(POSTED_OFFSET + POSTED_SLOTS * 32 <= PAGE_SIZE);
const _: () = assert!(SYNC_OFFSET == core::mem::size_of::<PageHeader>());

/// Byte offset of `PageHeader::posted_head` (written by Ferry).
pub const POSTED_HEAD_OFFSET: usize = core::mem::offset_of!(PageHeader, posted_head);
/// Byte offset of `PageHeader::posted_tail` (written by the backend).
pub const POSTED_TAIL_OFFSET: usize = core::mem::offset_of!(PageHeader, posted_tail);
/// Byte offset of `PageHeader::overflow_queues`.
pub const OVERFLOW_OFFSET: usize = core::mem::offset_of!(PageHeader, overflow_queues);
/// Byte offset of `PageHeader::console_input`.
pub const CONSOLE_INPUT_OFFSET: usize = core::mem::offset_of!(PageHeader, console_input);
/// Byte offset of `Ioreq::state` within a record.
pub const STATE_OFFSET: usize = core::mem::offset_of!(Ioreq, state);

/// `Ioreq::flags`: posted, no completion.
pub const FLAG_POSTED: u16 = 1;

impl Ioreq {
    /// The 32 bytes of this record, little-endian.
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.data.to_le_bytes());
        b[16..20].copy_from_slice(&self.seq.to_le_bytes());
        b[20] = self.size;
        b[21] = self.dir;
        b[22] = self.state;
        b[23] = self.device;
        b[24..26].copy_from_slice(&self.vcpu.to_le_bytes());
        b[26..28].copy_from_slice(&self.flags.to_le_bytes());
        b[28..32].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }

    /// Reads a record from its 32 bytes.
    pub fn decode(b: &[u8; 32]) -> Ioreq {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u16_at = |i: usize| u16::from_le_bytes(b[i..i + 2].try_into().expect("2 bytes"));
        Ioreq {
            offset: u64_at(0),
            data: u64_at(8),
            seq: u32_at(16),
            size: b[20],
            dir: b[21],
            state: b[22],
            device: b[23],
            vcpu: u16_at(24),
            flags: u16_at(26),
            reserved: u32_at(28),
        }
    }

    /// Whether the record describes a well-formed access (size 1/2/4/8, known
    /// direction, an offset inside a virtio-mmio window of `window` bytes).
    pub fn is_valid(&self, window: u64) -> bool {
        matches!(self.size, 1 | 2 | 4 | 8)
            && self.dir <= dir::READ
            && self
                .offset
                .checked_add(u64::from(self.size))
                .is_some_and(|end| end <= window)
    }
}

impl PageHeader {
    /// The 64 bytes of this header, little-endian.
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&self.magic.to_le_bytes());
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.sync_slots.to_le_bytes());
        b[16..20].copy_from_slice(&self.posted_slots.to_le_bytes());
        b[POSTED_HEAD_OFFSET..POSTED_HEAD_OFFSET + 4]
            .copy_from_slice(&self.posted_head.to_le_bytes());
        b[POSTED_TAIL_OFFSET..POSTED_TAIL_OFFSET + 4]
            .copy_from_slice(&self.posted_tail.to_le_bytes());
        b[OVERFLOW_OFFSET..OVERFLOW_OFFSET + 4]
            .copy_from_slice(&self.overflow_queues.to_le_bytes());
        b[CONSOLE_INPUT_OFFSET..CONSOLE_INPUT_OFFSET + 4]
            .copy_from_slice(&self.console_input.to_le_bytes());
        for (i, w) in self.reserved.iter().enumerate() {
            b[36 + 4 * i..40 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// Sync slots per device: one per frontend vCPU that can wait.
pub const SLOTS_PER_DEVICE: usize = 8;

/// Most devices one backend serves: the slots split [`SLOTS_PER_DEVICE`] per device.
pub const MAX_DEVICES: usize = SYNC_SLOTS / SLOTS_PER_DEVICE;

/// The sync slot of frontend vCPU `vcpu` waiting on the backend's device `device`
/// (its number among the backend's devices), if both are in range.
pub const fn sync_slot(device: usize, vcpu: usize) -> Option<usize> {
    if device < MAX_DEVICES && vcpu < SLOTS_PER_DEVICE {
        Some(device * SLOTS_PER_DEVICE + vcpu)
    } else {
        None
    }
}

/// The device (number among the backend's devices) sync slot `slot` belongs to.
pub const fn slot_device(slot: usize) -> usize {
    slot / SLOTS_PER_DEVICE
}

/// Byte offset of sync slot `n` in the request page.
pub const fn sync_slot_offset(n: usize) -> usize {
    SYNC_OFFSET + 32 * n
}

/// Byte offset of posted-ring entry `n` (already reduced modulo [`POSTED_SLOTS`]).
pub const fn posted_offset(n: usize) -> usize {
    POSTED_OFFSET + 32 * n
}

#[cfg(test)]
mod tests {

    #[test]
    fn slots_split_per_device_and_vcpu() {
        assert_eq!(MAX_DEVICES, 8);
        assert_eq!(sync_slot(0, 0), Some(0));
        assert_eq!(sync_slot(2, 3), Some(19));
        assert_eq!(sync_slot(7, 7), Some(SYNC_SLOTS - 1));
        assert_eq!(sync_slot(8, 0), None);
        assert_eq!(sync_slot(0, 8), None);
        assert_eq!(slot_device(19), 2);
        assert_eq!(slot_device(SYNC_SLOTS - 1), MAX_DEVICES - 1);
    }

    use super::*;

    #[test]
    fn record_round_trip() {
        let r = Ioreq {
            offset: 0x50,
            data: 0xdead_beef,
            seq: 7,
            size: 4,
            dir: dir::WRITE,
            state: state::READY,
            device: 2,
            vcpu: 1,
            flags: FLAG_POSTED,
            reserved: 0,
        };
        let b = r.encode();
        assert_eq!(b[0], 0x50);
        assert_eq!(b[16], 7);
        assert_eq!(Ioreq::decode(&b), r);
    }

    #[test]
    fn validity() {
        let ok = Ioreq {
            offset: 0x1fc,
            size: 4,
            ..Ioreq::default()
        };
        assert!(ok.is_valid(0x200));
        assert!(!Ioreq { size: 3, ..ok }.is_valid(0x200));
        assert!(
            !Ioreq {
                offset: 0x1fe,
                ..ok
            }
            .is_valid(0x200)
        );
        assert!(!Ioreq { dir: 2, ..ok }.is_valid(0x200));
        assert!(
            !Ioreq {
                offset: u64::MAX,
                ..ok
            }
            .is_valid(0x200)
        );
    }

    #[test]
    fn header_encoding_matches_the_offsets() {
        let h = PageHeader {
            magic: PAGE_MAGIC,
            posted_head: 5,
            posted_tail: 3,
            overflow_queues: 0x81,
            console_input: 0x4,
            reserved: [0x1111_1111; 7],
            ..Default::default()
        };
        let b = h.encode();
        assert_eq!(b[CONSOLE_INPUT_OFFSET], 0x4);
        assert_eq!(CONSOLE_INPUT_OFFSET, 32);
        assert_eq!(&b[36..64], &[0x11; 28]);
        assert_eq!(&b[0..8], b"FERRYIOQ");
        assert_eq!(b[POSTED_HEAD_OFFSET], 5);
        assert_eq!(b[POSTED_TAIL_OFFSET], 3);
        assert_eq!(b[OVERFLOW_OFFSET], 0x81);
        assert_eq!(
            (
                POSTED_HEAD_OFFSET,
                POSTED_TAIL_OFFSET,
                OVERFLOW_OFFSET,
                STATE_OFFSET
            ),
            (20, 24, 28, 22)
        );
        assert_eq!(
            Ioreq {
                state: 7,
                ..Ioreq::default()
            }
            .encode()[STATE_OFFSET],
            7
        );
    }

    #[test]
    fn layout_fits_one_page() {
        assert_eq!(sync_slot_offset(0), 64);
        assert_eq!(posted_offset(0), 64 + 64 * 32);
        assert!(posted_offset(POSTED_SLOTS - 1) + 32 <= PAGE_SIZE);
        assert_eq!(PAGE_MAGIC.to_le_bytes(), *b"FERRYIOQ");
    }
}
