//! [`strip_nops`]: a compact copy of a DTB without FDT_NOP tokens.
//!
//! fdt 0.1.5 mis-parses FDT_NOP (QEMU and libfdt leave them where they delete
//! properties): `find_node` fails after one and `cpus()` then panics. The runtime
//! parses a NOP-free copy instead.

/// `0xd00dfeed`.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Bytes of the version 17 header.
pub const HEADER_SIZE: usize = 40;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(b: &[u8], at: usize) -> Result<u32, &'static str> {
    b.get(at..at + 4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .ok_or("DTB truncated")
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The `totalsize` of the DTB whose header is at the start of `header` (checks the magic).
pub fn total_size(header: &[u8]) -> Result<usize, &'static str> {
    if be32(header, 0)? != FDT_MAGIC {
        return Err("no DTB magic 0xd00dfeed");
    }
    Ok(be32(header, 4)? as usize)
}

/// Copies the DTB `src` into `dst` without FDT_NOP tokens: header, memory reservation
/// block, structure block, strings block, with the header fixed up (version 17).
/// Returns the new total size.
pub fn strip_nops(src: &[u8], dst: &mut [u8]) -> Result<usize, &'static str> {
    let total = total_size(src)?;
    let src = src.get(..total).ok_or("DTB shorter than its totalsize")?;
    let off_struct = be32(src, 8)? as usize;
    let off_strings = be32(src, 12)? as usize;
    let off_rsv = be32(src, 16)? as usize;
    let version = be32(src, 20)?;
    let boot_cpu = be32(src, 28)?;
    let size_strings = be32(src, 32)? as usize;
    if version < 16 {
        return Err("DTB version below 16");
    }
    let size_struct = if version >= 17 {
        be32(src, 36)? as usize
    } else {
        total.checked_sub(off_struct).ok_or("bad off_dt_struct")?
    };
    let structure = src
        .get(off_struct..off_struct + size_struct)
        .ok_or("structure block outside the DTB")?;
    let strings = src
        .get(off_strings..off_strings + size_strings)
        .ok_or("strings block outside the DTB")?;

    // Memory reservation block: 16-byte entries up to and including (0, 0).
    let mut rsv_len = 0;
    loop {
        let at = off_rsv + rsv_len;
        let e = src.get(at..at + 16).ok_or("reservation block truncated")?;
        rsv_len += 16;
        if e.iter().all(|&b| b == 0) {
            break;
        }
    }

    let new_off_struct = HEADER_SIZE + rsv_len;
    if dst.len() < new_off_struct {
        return Err("DTB copy buffer too small");
    }
    dst[HEADER_SIZE..new_off_struct].copy_from_slice(&src[off_rsv..off_rsv + rsv_len]);

    // Structure block, token by token.
    let mut pos = 0;
    let mut out = new_off_struct;
    let mut ended = false;
    while pos < structure.len() {
        let token = be32(structure, pos)?;
        let len = match token {
            FDT_BEGIN_NODE => {
                let name = &structure[pos + 4..];
                let nul = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or("unterminated node name")?;
                4 + align4(nul + 1)
            }
            FDT_PROP => 12 + align4(be32(structure, pos + 4)? as usize),
            FDT_END_NODE | FDT_NOP | FDT_END => 4,
            _ => return Err("bad structure token"),
        };
        let item = structure
            .get(pos..pos + len)
            .ok_or("structure block truncated")?;
        if token != FDT_NOP {
            dst.get_mut(out..out + len)
                .ok_or("DTB copy buffer too small")?
                .copy_from_slice(item);
            out += len;
        }
        pos += len;
        if token == FDT_END {
            ended = true;
            break;
        }
    }
    if !ended {
        return Err("no FDT_END token");
    }
    let new_size_struct = out - new_off_struct;
    let new_off_strings = out;
    let new_total = new_off_strings + size_strings;
    dst.get_mut(new_off_strings..new_total)
        .ok_or("DTB copy buffer too small")?
        .copy_from_slice(strings);

    put32(dst, 0, FDT_MAGIC);
    put32(dst, 4, new_total as u32);
    put32(dst, 8, new_off_struct as u32);
    put32(dst, 12, new_off_strings as u32);
    put32(dst, 16, HEADER_SIZE as u32);
    put32(dst, 20, 17);
    put32(dst, 24, 16);
    put32(dst, 28, boot_cpu);
    put32(dst, 32, size_strings as u32);
    put32(dst, 36, new_size_struct as u32);
    Ok(new_total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTB by hand: / { model = "m"; cpus { cpu@0 { reg = <0>; }; cpu@1 { reg = <1>; }; };
    /// chosen { bootargs = "name=x"; }; }, with NOPs sprinkled in if `nops`.
    fn blob(nops: bool) -> Vec<u8> {
        let mut strings = Vec::new();
        let mut name_off = |s: &str| {
            let at = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let (model, addr_cells, size_cells, reg, bootargs) = (
            name_off("model"),
            name_off("#address-cells"),
            name_off("#size-cells"),
            name_off("reg"),
            name_off("bootargs"),
        );
        let mut s: Vec<u8> = Vec::new();
        let w = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        let node = |s: &mut Vec<u8>, name: &str| {
            s.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
            s.extend_from_slice(name.as_bytes());
            s.push(0);
            while !s.len().is_multiple_of(4) {
                s.push(0);
            }
        };
        let prop = |s: &mut Vec<u8>, off: u32, val: &[u8]| {
            s.extend_from_slice(&FDT_PROP.to_be_bytes());
            s.extend_from_slice(&(val.len() as u32).to_be_bytes());
            s.extend_from_slice(&off.to_be_bytes());
            s.extend_from_slice(val);
            while !s.len().is_multiple_of(4) {
                s.push(0);
            }
        };
        let nop = |s: &mut Vec<u8>| {
            if nops {
                s.extend_from_slice(&FDT_NOP.to_be_bytes());
            }
        };
        node(&mut s, "");
        nop(&mut s);
        prop(&mut s, model, b"m\0");
        prop(&mut s, addr_cells, &2u32.to_be_bytes());
        prop(&mut s, size_cells, &2u32.to_be_bytes());
        nop(&mut s);
        node(&mut s, "cpus");
        prop(&mut s, addr_cells, &1u32.to_be_bytes());
        prop(&mut s, size_cells, &0u32.to_be_bytes());
        nop(&mut s);
        for i in 0..2u32 {
            node(&mut s, &format!("cpu@{i}"));
            nop(&mut s);
            prop(&mut s, reg, &i.to_be_bytes());
            w(&mut s, FDT_END_NODE);
        }
        w(&mut s, FDT_END_NODE);
        nop(&mut s);
        node(&mut s, "memory@40000000");
        prop(
            &mut s,
            reg,
            &[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0],
        );
        w(&mut s, FDT_END_NODE);
        node(&mut s, "chosen");
        prop(&mut s, bootargs, b"name=x wait=5\0");
        w(&mut s, FDT_END_NODE);
        nop(&mut s);
        w(&mut s, FDT_END_NODE);
        w(&mut s, FDT_END);

        let rsv = [0u8; 16];
        let off_rsv = HEADER_SIZE;
        let off_struct = off_rsv + rsv.len();
        let off_strings = off_struct + s.len();
        let total = off_strings + strings.len();
        let mut b = vec![0u8; total];
        put32(&mut b, 0, FDT_MAGIC);
        put32(&mut b, 4, total as u32);
        put32(&mut b, 8, off_struct as u32);
        put32(&mut b, 12, off_strings as u32);
        put32(&mut b, 16, off_rsv as u32);
        put32(&mut b, 20, 17);
        put32(&mut b, 24, 16);
        put32(&mut b, 32, strings.len() as u32);
        put32(&mut b, 36, s.len() as u32);
        b[off_struct..off_strings].copy_from_slice(&s);
        b[off_strings..].copy_from_slice(&strings);
        b
    }

    #[test]
    fn nops_removed_and_fdt_parses() {
        let with = blob(true);
        let without = blob(false);
        let mut out = vec![0u8; 4096];
        let n = strip_nops(&with, &mut out).unwrap();
        assert_eq!(n, without.len());
        assert_eq!(&out[..n], &without[..]);
        let fdt = fdt::Fdt::new(&out[..n]).unwrap();
        assert_eq!(fdt.cpus().count(), 2);
        assert_eq!(fdt.chosen().bootargs(), Some("name=x wait=5"));
    }

    #[test]
    fn nop_free_blob_copies_unchanged() {
        let b = blob(false);
        let mut out = vec![0u8; 4096];
        let n = strip_nops(&b, &mut out).unwrap();
        assert_eq!(&out[..n], &b[..]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut out = vec![0u8; 4096];
        assert!(strip_nops(&[0u8; 64], &mut out).is_err());
        let b = blob(true);
        assert!(strip_nops(&b[..b.len() - 8], &mut out).is_err());
        assert!(strip_nops(&b, &mut out[..64]).is_err());
        let mut bad = b.clone();
        bad[HEADER_SIZE + 16 + 3] = 7; // first structure token
        assert!(strip_nops(&bad, &mut out).is_err());
    }
}
