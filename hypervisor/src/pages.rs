//! Physical memory as the state layer reaches it ([`PageMemory`]): request pages
//! (IOREQ records) and, for the copy path, partitions' RAM.

use crate::state::ioreq::PageMemory;

/// Ferry's own request pages, identity-mapped at EL2.
pub struct PhysPages;

impl PageMemory for PhysPages {
    fn read_u32(&self, addr: u64) -> u32 {
        // SAFETY: `addr` lies in a 4 KiB request page Ferry allocated and maps at
        // EL2 (the state layer adds only ABI offsets to the page's base); aligned.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    fn write_u32(&self, addr: u64, value: u32) {
        // SAFETY: as in `read_u32`.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
    }

    fn write_bytes(&self, addr: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: as in `read_u32`, or partition RAM the state layer translated
            // through the partition's regions (identity-mapped at EL2).
            unsafe { core::ptr::write_volatile((addr + i as u64) as *mut u8, b) };
        }
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the state layer reads only request pages and partition RAM it
            // translated through the partition's regions (identity-mapped at EL2).
            *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
        }
    }

    fn barrier(&self) {
        // SAFETY: a barrier; no memory effects of its own.
        unsafe { core::arch::asm!("dmb ish", options(nostack)) };
    }
}
