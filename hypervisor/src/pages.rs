//! Request pages in physical memory: the [`PageMemory`] the state layer writes
//! IOREQ records through.

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
            // SAFETY: as in `read_u32`; the record or header lies inside the page.
            unsafe { core::ptr::write_volatile((addr + i as u64) as *mut u8, b) };
        }
    }

    fn barrier(&self) {
        // SAFETY: a barrier; no memory effects of its own.
        unsafe { core::arch::asm!("dmb ish", options(nostack)) };
    }
}
