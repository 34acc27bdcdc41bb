//! [`copy_without_nops`]: a compact, NOP-free copy of a DTB.
//!
//! QEMU (and libfdt in general) deletes properties and nodes in place by
//! overwriting them with FDT_NOP tokens. `fdt` 0.1.5 mis-parses those (see the
//! module doc of [`super`]), so the blob is copied without them first.

use super::DtError;
use super::raw::{FDT_MAGIC, HEADER_SIZE, Header, Token, Walker, rsvmap_len};

/// Copies `src` (a DTB) into `dst` leaving out every FDT_NOP token, and writes a
/// version 17 header for the result: header, then the memory reservation block,
/// the structure block and the strings block, with `totalsize`, `off_dt_struct`,
/// `off_dt_strings`, `size_dt_struct` and `off_mem_rsvmap` fixed up. Bytes after
/// FDT_END in the structure block and free space in the blob are dropped.
///
/// Returns the length written (the new `totalsize`). `src` is validated first
/// (header, reservation block, every structure token; see [`DtError`]) and `dst`
/// is only written once it is known to be valid and to fit. Never panics.
pub fn copy_without_nops(src: &[u8], dst: &mut [u8]) -> Result<usize, DtError> {
    let h = Header::read(src)?;
    let rsv_len = rsvmap_len(src, &h)?;

    // Pass 1: validate everything and measure the structure block without NOPs.
    let mut struct_len = 0usize;
    let mut walk = Walker::new(src, &h);
    while let Some(item) = walk.next_item()? {
        if item.token != Token::Nop {
            struct_len += item.len;
        }
    }

    let off_struct = HEADER_SIZE + rsv_len;
    let off_strings = off_struct + struct_len;
    let total = off_strings + h.size_dt_strings;
    if dst.len() < total {
        return Err(DtError::DstTooSmall {
            needed: total,
            available: dst.len(),
        });
    }

    // Pass 2: copy. Every range below was checked by pass 1 and the size test.
    let overflow = DtError::DstTooSmall {
        needed: total,
        available: dst.len(),
    };
    let mut copy = |to: usize, from: usize, len: usize| -> Result<(), DtError> {
        let s = src.get(from..from + len).ok_or(overflow)?;
        dst.get_mut(to..to + len)
            .ok_or(overflow)?
            .copy_from_slice(s);
        Ok(())
    };
    copy(HEADER_SIZE, h.off_mem_rsvmap, rsv_len)?;
    let mut out = off_struct;
    let mut walk = Walker::new(src, &h);
    while let Some(item) = walk.next_item()? {
        if item.token != Token::Nop {
            copy(out, item.offset, item.len)?;
            out += item.len;
        }
    }
    copy(off_strings, h.off_dt_strings, h.size_dt_strings)?;

    let header: [u32; 10] = [
        FDT_MAGIC,
        total as u32,
        off_struct as u32,
        off_strings as u32,
        HEADER_SIZE as u32,
        17,
        h.last_comp_version.min(17),
        h.boot_cpuid_phys,
        h.size_dt_strings as u32,
        struct_len as u32,
    ];
    for (slot, word) in dst.chunks_exact_mut(4).zip(header) {
        slot.copy_from_slice(&word.to_be_bytes());
    }
    Ok(total)
}
