//! `chain_walk`: the descriptor-chain walker (`ferry_virtio_backend::walk_chain`),
//! the one validation of a driver's ring that both the device library and Ferry's
//! copy path (which walks the frontend's ring with it) rely on.
//!
//! Input: the walk's parameters (queue size, head, whether indirect descriptors
//! were negotiated, where the table is) and then driver memory: 4 KiB at
//! `BASE` holding the descriptor table and whatever indirect tables the bytes
//! make.
//!
//! Checked: nothing panics; the walk reads at most `MAX_CHAIN_LEN + 2`
//! descriptors (its documented bound), each a whole 16-byte descriptor; a chain
//! it accepts is what `Chain` promises: its head, 1 to `MAX_CHAIN_LEN` buffers,
//! readable ones first, none empty or wrapping, the direction totals within
//! `u32` and equal to the sums, and exactly the buffers the descriptors name
//! (re-walked here independently, following the same rules).
#![no_main]

use ferry_virtio_backend::spec::desc_flags;
use ferry_virtio_backend::{Buffer, Interrupt, MAX_CHAIN_LEN, MemError, Transport, walk_chain};
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x4000_0000;
const PARAMS: usize = 8;

/// Driver memory, counting descriptor reads.
struct Mem<'a> {
    bytes: &'a [u8],
    reads: usize,
}

impl Transport for Mem<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads += 1;
        assert_eq!(buf.len(), 16, "descriptors are read whole");
        let off = addr.checked_sub(BASE).ok_or(MemError)?;
        let off = usize::try_from(off).map_err(|_| MemError)?;
        let src = self.bytes.get(off..off.checked_add(16).ok_or(MemError)?);
        buf.copy_from_slice(src.ok_or(MemError)?);
        Ok(())
    }

    fn write(&mut self, _addr: u64, _data: &[u8]) -> Result<(), MemError> {
        panic!("the walker wrote driver memory");
    }

    fn notify(&mut self, _cause: Interrupt) {
        panic!("the walker notified the driver");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < PARAMS {
        return;
    }
    let (p, bytes) = data.split_at(PARAMS);
    let size = u16::from_le_bytes([p[0], p[1]]);
    // Small queues most of the time (all of them in the bytes given).
    let size = if p[6] & 0x80 == 0 { size % 257 } else { size };
    let head = u16::from_le_bytes([p[2], p[3]]);
    let head = if p[6] & 0x40 == 0 {
        head % size.max(1)
    } else {
        head
    };
    let table = BASE + u64::from(u16::from_le_bytes([p[4], p[5]])) % 4096;
    let indirect = p[7] & 1 != 0;
    let mut mem = Mem { bytes, reads: 0 };
    let result = walk_chain(&mut mem, table, size, head, indirect);
    assert!(
        mem.reads <= MAX_CHAIN_LEN + 2,
        "{} descriptor reads for one chain",
        mem.reads
    );
    let Ok(chain) = result else {
        return;
    };
    assert_eq!(chain.head(), head);
    let bufs = chain.buffers();
    assert!((1..=MAX_CHAIN_LEN).contains(&bufs.len()));
    let split = bufs.iter().position(|b| b.writable).unwrap_or(bufs.len());
    assert!(
        bufs[split..].iter().all(|b| b.writable),
        "readable after writable"
    );
    assert_eq!(chain.readable(), &bufs[..split]);
    assert_eq!(chain.writable(), &bufs[split..]);
    for b in bufs {
        assert_ne!(b.len, 0);
        assert!(
            b.addr.checked_add(u64::from(b.len)).is_some(),
            "{b:?} wraps"
        );
    }
    let sum = |v: &[Buffer]| v.iter().map(|b| u64::from(b.len)).sum::<u64>();
    assert_eq!(u64::from(chain.readable_len()), sum(chain.readable()));
    assert_eq!(u64::from(chain.writable_len()), sum(chain.writable()));
    assert_eq!(bufs, reference(bytes, table, size, head).as_slice());
});

/// The buffers of an accepted chain, walked again by hand: direct descriptors
/// from `head`, an indirect table entered at most once (from index 0).
fn reference(bytes: &[u8], table: u64, size: u16, head: u16) -> Vec<Buffer> {
    let desc = |table: u64, i: u32| -> [u8; 16] {
        let off = (table - BASE) as usize + 16 * i as usize;
        bytes[off..off + 16].try_into().unwrap()
    };
    let mut out = Vec::new();
    let (mut table, mut size, mut i) = (table, u32::from(size), u32::from(head));
    loop {
        assert!(i < size, "the walker accepted index {i} of {size}");
        let d = desc(table, i);
        let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
        let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
        let flags = u16::from_le_bytes([d[12], d[13]]);
        if flags & desc_flags::INDIRECT != 0 {
            (table, size, i) = (addr, len / 16, 0);
            continue;
        }
        out.push(Buffer {
            addr,
            len,
            writable: flags & desc_flags::WRITE != 0,
        });
        if flags & desc_flags::NEXT == 0 {
            return out;
        }
        i = u32::from(u16::from_le_bytes([d[14], d[15]]));
    }
}
