//! Deterministic fuzz loops: random descriptor tables, rings and register
//! sequences. The device may refuse anything, but must never panic, never run
//! without bound, and must always leave a consistent state: an error means
//! DEVICE_NEEDS_RESET, success means exactly the reported number of used entries.

mod common;

use common::*;
use ferry_virtio_backend::blk::Blk;
use ferry_virtio_backend::console::Console;
use ferry_virtio_backend::rng::Rng;
use ferry_virtio_backend::spec::{desc_flags, feature, reg, status};
use ferry_virtio_backend::{Error, MAX_CHAIN_LEN, Options, VirtioDevice};

/// Random bytes area that descriptors mostly point into.
const DATA: u64 = BASE + 0x1_0000;
const DATA_LEN: u64 = 0x2000;

fn random_addr(r: &mut Rng64, chaos: bool) -> u64 {
    if !chaos {
        return DATA + r.below(DATA_LEN - 1024);
    }
    match r.below(10) {
        0..=6 => DATA + r.below(DATA_LEN),
        7 => r.next(),
        8 => BASE + MEM_SIZE as u64 - r.below(64),
        _ => BASE.wrapping_sub(r.below(64)),
    }
}

fn random_len(r: &mut Rng64, chaos: bool) -> u32 {
    if !chaos {
        return [1, 16, 17, 512, 1 + r.below(1024) as u32][r.below(5) as usize];
    }
    match r.below(10) {
        0..=3 => 1 + r.below(64) as u32,
        4 => 16,
        5 => 512 * (1 + r.below(2) as u32),
        6 => 0,
        7 => r.next() as u32,
        _ => r.below(8192) as u32,
    }
}

fn random_flags(r: &mut Rng64, chaos: bool) -> u16 {
    let mut f = 0;
    if r.chance(if chaos { 50 } else { 30 }) {
        f |= desc_flags::NEXT;
    }
    if r.chance(50) {
        f |= desc_flags::WRITE;
    }
    if r.chance(8) {
        f |= desc_flags::INDIRECT;
    }
    if chaos && r.chance(5) {
        f |= r.next() as u16;
    }
    f
}

/// Writes a random descriptor table of `n` entries at `table`; without `chaos`
/// the buffers are in the window with small non-zero lengths.
fn random_table<D: VirtioDevice>(
    d: &mut Driver<D>,
    r: &mut Rng64,
    table: u64,
    n: u16,
    chaos: bool,
) {
    for i in 0..n {
        let mut flags = random_flags(r, chaos);
        let (addr, len) = if flags & desc_flags::INDIRECT != 0 && r.chance(70) {
            // A plausible indirect table inside the data area.
            flags &= !desc_flags::NEXT;
            (
                DATA + 16 * r.below(DATA_LEN / 16 - 8),
                16 * (1 + r.below(8) as u32),
            )
        } else {
            (random_addr(r, chaos), random_len(r, chaos))
        };
        let next = if !chaos || r.chance(85) {
            r.below(u64::from(n)) as u16
        } else {
            r.next() as u16
        };
        d.write_desc_at(table, i, addr, len, flags, next);
    }
}

/// Fills the data area with random bytes, plenty of which look like descriptors
/// and block request headers.
fn random_data<D: VirtioDevice>(d: &mut Driver<D>, r: &mut Rng64, chaos: bool) {
    let mut bytes = Vec::with_capacity(DATA_LEN as usize);
    while bytes.len() < DATA_LEN as usize {
        bytes.extend_from_slice(&r.next().to_le_bytes());
    }
    // Some block headers: small types and in-range sectors.
    for _ in 0..16 {
        let at = r.below(DATA_LEN - 16) as usize;
        bytes[at..at + 4].copy_from_slice(&(r.below(10) as u32).to_le_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&r.below(200).to_le_bytes());
    }
    d.poke(DATA, &bytes);
    // Random indirect tables made of sane-ish descriptors.
    for _ in 0..8 {
        let t = DATA + 16 * r.below(DATA_LEN / 16 - 8);
        random_table(d, r, t, 8, chaos);
    }
}

/// What the loops exercised (printed with `--nocapture`).
#[derive(Debug, Default)]
struct Stats {
    ok: usize,
    served: usize,
    errors: usize,
}

/// One random scenario on a fresh device; checks the invariants after each kick.
fn scenario<D: VirtioDevice>(model: D, nq: u16, r: &mut Rng64, stats: &mut Stats) {
    let mut d = Driver::new(model, Options::new());
    let offered = d.device_features();
    // VERSION_1 plus a random subset of the rest.
    let f = (offered & r.next()) | feature::VERSION_1;
    assert!(d.negotiate(f));
    let size = 1u16 << r.below(7);
    for q in 0..nq {
        d.setup_queue(q, size);
    }
    d.driver_ok();
    let chaos = r.chance(50);
    random_data(&mut d, r, chaos);
    for q in 0..nq {
        let table = d.queues[usize::from(q)].desc;
        random_table(&mut d, r, table, size, chaos);
        let avail = d.queues[usize::from(q)].avail;
        for slot in 0..=size {
            // Ring entries, then used_event.
            let head = if !chaos || r.chance(90) {
                r.below(u64::from(size)) as u16
            } else {
                r.next() as u16
            };
            d.poke_u16(avail + 4 + 2 * u64::from(slot), head);
        }
        d.poke_u16(avail, r.below(2) as u16);
    }
    for _ in 0..3 {
        let q = r.below(u64::from(nq)) as u16;
        let avail_idx = if !chaos || r.chance(85) {
            d.queues[usize::from(q)]
                .avail_idx
                .wrapping_add(r.below(u64::from(size) + 1) as u16)
        } else {
            r.next() as u16
        };
        d.set_avail_idx(q, avail_idx);
        let used_before = d.used_idx(q);
        let reads_before = d.mem().reads;
        let result = d.kick(q);
        let reads = d.mem().reads - reads_before;
        // Ring reads, chain walks and buffer copies (in-window buffers here are at
        // most 8 KiB, copied in chunks of at least 64 bytes), per request, bounded.
        let per_request = 8 + 2 * MAX_CHAIN_LEN + MAX_CHAIN_LEN * (8192 / 64 + 1);
        let bound = (2 * usize::from(size) + 4) * per_request;
        assert!(reads <= bound, "{reads} transport reads for one kick");
        match result {
            Ok(n) => {
                stats.ok += 1;
                stats.served += n;
                assert!(n <= usize::from(size));
                assert!(!d.needs_reset());
                assert_eq!(d.used_idx(q), used_before.wrapping_add(n as u16));
                for (id, _) in d.take_used(q) {
                    assert!(id < u32::from(size), "used id {id} not a head");
                }
            }
            Err(Error::NotReady) => assert!(d.needs_reset()),
            Err(_) => {
                stats.errors += 1;
                assert!(d.needs_reset(), "error without DEVICE_NEEDS_RESET");
                assert_ne!(d.read_reg(reg::INTERRUPT_STATUS) & 2, 0);
            }
        }
    }
}

#[test]
fn random_descriptor_tables_blk() {
    let mut r = Rng64(0x9e37_79b9_7f4a_7c15);
    let mut stats = Stats::default();
    for _ in 0..4000 {
        let mut disk = vec![0u8; 100 * 512];
        scenario(Blk::new(&mut disk, b"fuzz"), 1, &mut r, &mut stats);
    }
    eprintln!("blk: {stats:?}");
    assert!(stats.served > 0 && stats.errors > 0);
}

#[test]
fn random_descriptor_tables_console_and_rng() {
    let mut r = Rng64(0x0123_4567_89ab_cdef);
    let mut stats = Stats::default();
    for i in 0..4000 {
        if i % 2 == 0 {
            let mut c = Console::<_, 64>::new(|_: &[u8]| {});
            c.push_rx(&[b'k'; 40]);
            scenario(c, 2, &mut r, &mut stats);
        } else {
            let src = |b: &mut [u8]| {
                b.fill(1);
                b.len()
            };
            scenario(Rng::new(src), 1, &mut r, &mut stats);
        }
    }
    eprintln!("console/rng: {stats:?}");
    assert!(stats.served > 0 && stats.errors > 0);
}

#[test]
fn random_register_sequences() {
    let mut r = Rng64(0xdead_beef_cafe_f00d);
    for _ in 0..200 {
        let mut disk = vec![0u8; 8 * 512];
        let mut d = Driver::new(Blk::new(&mut disk, b"regs"), Options::new());
        random_data(&mut d, &mut r, true);
        for _ in 0..400 {
            let offset = match r.below(10) {
                0..=7 => (r.below(0x100 / 4) * 4) as u32,
                8 => 0x100 + r.below(0x100) as u32,
                _ => r.next() as u32,
            };
            let size = [4u8, 4, 4, 1, 2, 8, 3][r.below(7) as usize];
            let value = match r.below(4) {
                0 => r.below(4),
                1 => r.below(0x200),
                2 => DATA + r.below(DATA_LEN),
                _ => r.next(),
            };
            // Queue addresses in the data area half of the time.
            let value = if (0x80..0xa8).contains(&offset) && r.chance(50) {
                if offset % 8 == 0 {
                    (DATA + 16 * r.below(DATA_LEN / 16)) & 0xffff_ffff
                } else {
                    0
                }
            } else {
                value
            };
            d.dev.mmio_write(offset, size, value);
            let _ = d.dev.mmio_read(r.next() as u32 % 0x200, size);
            if r.chance(20) {
                let _ = d.dev.poll();
            }
            if r.chance(10) {
                let _ = d.dev.process_queue(r.below(3) as u16);
            }
            // Invariants of the state machine.
            let s = d.status();
            assert_eq!(d.read_reg(reg::MAGIC_VALUE), 0x7472_6976);
            if s & status::DRIVER_OK != 0 {
                assert_ne!(s & status::FEATURES_OK, 0);
            }
            if s & status::FEATURES_OK != 0 {
                assert_ne!(d.dev.driver_features() & feature::VERSION_1, 0);
                assert_eq!(d.dev.driver_features() & !d.device_features(), 0);
            }
        }
    }
}
