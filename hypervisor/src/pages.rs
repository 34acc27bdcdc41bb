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

    fn or_u32(&self, addr: u64, bits: u32) {
        // SAFETY: as in `read_u32`; the backend clears bits of this word with
        // atomics too, so the update is one atomic OR.
        let word = unsafe { core::sync::atomic::AtomicU32::from_ptr(addr as *mut u32) };
        word.fetch_or(bits, core::sync::atomic::Ordering::AcqRel);
    }

    fn write_bytes(&self, addr: u64, bytes: &[u8]) {
        let (head, words, tail) = split(addr, bytes.len());
        for (i, &b) in bytes[..head].iter().enumerate() {
            // SAFETY: as in `read_u32`, or partition RAM the state layer translated
            // through the partition's regions (identity-mapped at EL2).
            unsafe { core::ptr::write_volatile((addr + i as u64) as *mut u8, b) };
        }
        for (i, w) in bytes[head..head + 8 * words].chunks_exact(8).enumerate() {
            let at = addr + (head + 8 * i) as u64;
            let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            // SAFETY: as above; `at` is 8-byte aligned (`split`).
            unsafe { core::ptr::write_volatile(at as *mut u64, v) };
        }
        for (i, &b) in bytes[head + 8 * words..][..tail].iter().enumerate() {
            let at = addr + (head + 8 * words + i) as u64;
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(at as *mut u8, b) };
        }
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        let (head, words, tail) = split(addr, buf.len());
        for (i, b) in buf[..head].iter_mut().enumerate() {
            // SAFETY: the state layer reads only request pages and partition RAM it
            // translated through the partition's regions (identity-mapped at EL2).
            *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
        }
        for (i, w) in buf[head..head + 8 * words].chunks_exact_mut(8).enumerate() {
            let at = addr + (head + 8 * i) as u64;
            // SAFETY: as above; `at` is 8-byte aligned (`split`).
            let v = unsafe { core::ptr::read_volatile(at as *const u64) };
            w.copy_from_slice(&v.to_le_bytes());
        }
        let rest = head + 8 * words;
        for (i, b) in buf[rest..rest + tail].iter_mut().enumerate() {
            // SAFETY: as above.
            *b = unsafe { core::ptr::read_volatile((addr + (rest + i) as u64) as *const u8) };
        }
    }

    fn copy(&self, dst: u64, src: u64, len: u64) {
        copy_words(dst, src, len);
    }

    fn barrier(&self) {
        // SAFETY: a barrier; no memory effects of its own.
        unsafe { core::arch::asm!("dmb ish", options(nostack)) };
    }
}

/// Copies with aligned 8-byte words where source and destination allow it.
fn copy_words(dst: u64, src: u64, len: u64) {
    let mut done = 0;
    if dst % 8 == src % 8 {
        while done < len && !(src + done).is_multiple_of(8) {
            copy_byte(dst + done, src + done);
            done += 1;
        }
        while len - done >= 8 {
            // SAFETY: both ranges are partition RAM the state layer translated
            // through the partitions' regions (identity-mapped at EL2); 8-aligned.
            unsafe {
                let v = core::ptr::read_volatile((src + done) as *const u64);
                core::ptr::write_volatile((dst + done) as *mut u64, v);
            }
            done += 8;
        }
    }
    while done < len {
        copy_byte(dst + done, src + done);
        done += 1;
    }
}

fn copy_byte(dst: u64, src: u64) {
    // SAFETY: as in `copy_words`.
    unsafe {
        core::ptr::write_volatile(dst as *mut u8, core::ptr::read_volatile(src as *const u8))
    };
}

/// Splits an access of `len` bytes at `addr` into bytes up to the next 8-byte
/// boundary, whole aligned words, and the bytes after them.
fn split(addr: u64, len: usize) -> (usize, usize, usize) {
    let head = ((8 - (addr % 8) as usize) % 8).min(len);
    let words = (len - head) / 8;
    (head, words, len - head - 8 * words)
}
