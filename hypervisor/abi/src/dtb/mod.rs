//! The flattened device-tree (DTB) format, checked, and [`copy_without_nops`]: the
//! one routine every Ferry component runs on a DTB before parsing it.
//!
//! Ferry reads three kinds of DTB, all with the `fdt` 0.1.5 crate: the host DTB
//! at EL2 (`ferry_platform::hostdt`), the config DTB (`ferry-config`, on the host
//! and at EL2) and a partition's guest DTB (the bare-metal partition runtime).
//! `fdt` 0.1.5 mis-parses FDT_NOP tokens, which QEMU and libfdt leave when they
//! edit a DTB in place (QEMU's imx8mp-evk DTB has 132, whole deleted nodes): a NOP
//! among a node's properties or between sibling nodes makes `find_node` return
//! `None` for what follows, and `cpus()` then panics; `find_node` fails an
//! `assert` ("bad node") when it has to skip a node that holds NOPs; `all_nodes()`
//! stops at a NOP before FDT_END_NODE. So each of them first copies the blob
//! without its NOPs, validating every token on the way, and parses the copy.
//!
//! Nothing here allocates, locks or panics on any input: every read of blob data
//! is bounds-checked (`get`) and reads big-endian words byte by byte
//! (`from_be_bytes`, no unaligned word loads with the MMU off).
//!
//! ```text
//! let total = dtb::total_size(&header_bytes)?;      // the first HEADER_SIZE bytes
//! let len = dtb::copy_without_nops(&blob[..total], &mut copy)?;
//! let fdt = fdt::Fdt::new(&copy[..len])?;
//! ```

mod error;
mod format;
#[cfg(test)]
mod tests;

pub use error::DtbError;
pub use format::{
    FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_NOP, FDT_PROP, HEADER_SIZE, Header, Item,
    MAX_DEPTH, Token, Walker, be32, be64, rsvmap_entries, rsvmap_len,
};

/// Upper bound on a DTB's header `totalsize` that Ferry accepts (2 MiB; QEMU pads
/// its own DTBs to 1 MiB).
pub const MAX_DTB_SIZE: usize = 2 << 20;

/// The `totalsize` of the DTB whose first [`HEADER_SIZE`] bytes are `prefix`,
/// after the checks of [`Header::read_prefix`] (magic, `totalsize <=`
/// [`MAX_DTB_SIZE`], version) and `totalsize >= HEADER_SIZE`. For a caller that
/// has only a pointer: it reads the header, then bounds the blob with this.
pub fn total_size(prefix: &[u8]) -> Result<usize, DtbError> {
    let h = Header::read_prefix(prefix)?;
    if h.totalsize < HEADER_SIZE {
        return Err(DtbError::BadHeader {
            field: "totalsize",
            cause: "is smaller than the header",
        });
    }
    Ok(h.totalsize)
}

/// Copies `src` (a DTB) into `dst` leaving out every FDT_NOP token, and writes a
/// version 17 header for the result: header, then the memory reservation block,
/// the structure block and the strings block, with `totalsize`, `off_dt_struct`,
/// `off_dt_strings`, `size_dt_struct` and `off_mem_rsvmap` fixed up. Bytes after
/// FDT_END in the structure block and free space in the blob are dropped.
///
/// Returns the length written (the new `totalsize`). `src` is validated first
/// (header, reservation block, every structure token; see [`DtbError`]) and `dst`
/// is only written once it is known to be valid and to fit. Never panics.
pub fn copy_without_nops(src: &[u8], dst: &mut [u8]) -> Result<usize, DtbError> {
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
        return Err(DtbError::DstTooSmall {
            needed: total,
            available: dst.len(),
        });
    }

    // Pass 2: copy. Every range below was checked by pass 1 and the size test.
    let overflow = DtbError::DstTooSmall {
        needed: total,
        available: dst.len(),
    };
    let mut copy = |to: usize, from: usize, len: usize| -> Result<(), DtbError> {
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
