//! `vfe-restart`: a virtio-blk frontend (the `virtio-drivers` crate) whose backend
//! crashes mid-request and is restarted by Ferry (`restart = "on-failure"`).
//!
//! Round 0 writes a pattern to sector 20 and reads it back, then keeps writing and
//! reading sectors 24.. until a request does not complete within 500 ms: the
//! device must then show DEVICE_NEEDS_RESET. Recovery: the driver is dropped and
//! the device probed again (MagicValue, Version, DeviceID) every 20 ms, up to
//! `recover_ms` (default 10000); once it answers, `VirtIOBlk::new` resets it (Status
//! 0: Ferry brings the device back) and initialises it. Each round after a restart
//! checks the RAM disk came back from its image (sector 0 starts with
//! `FERRY-DISK-IMAGE-V1`, sector 8 is all `F`, sector 20 is zero: what round 0
//! wrote is gone with the crashed backend's memory), then writes and reads back
//! sectors again. `rounds=<n>` (default 1) restarts are expected; with
//! `expect=given-up`, after `rounds` restarts the device must stay failed for
//! `recover_ms` (Ferry's restart-limit).
//!
//! Log: `vfe-restart: round <r>: wrote and read back <n> sectors`,
//! `vfe-restart: round <r>: DEVICE_NEEDS_RESET after <n> requests`,
//! `vfe-restart: recovered after <t> ms: disk image back, earlier writes gone`,
//! `vfe-restart: device stays failed (given up)`, then SYSTEM_OFF; `FAIL: ...`.
#![no_std]
#![no_main]

use core::ptr::NonNull;

use ferry_partition_rt::{self as rt, Boot, fail, println, psci, time};
use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

#[path = "../dma_hal.rs"]
mod dma_hal;
use dma_hal::PoolHal;

rt::entry!(main);

type Blk = VirtIOBlk<PoolHal, MmioTransport<'static>>;

const R_STATUS: usize = 0x070;
const NEEDS_RESET: u32 = 0x40;

fn status(base: usize) -> u32 {
    // SAFETY: the device's Status register in its window.
    unsafe { core::ptr::read_volatile((base + R_STATUS) as *const u32) }
}

fn pattern(round: usize, sector: usize, i: usize) -> u8 {
    (sector as u8).wrapping_mul(31) ^ (i as u8) ^ (round as u8).wrapping_mul(0x5b) ^ 0xa5
}

/// Probes the device and initialises the driver (which resets it first).
fn open(base: usize, size: usize) -> Option<Blk> {
    let header = NonNull::new(base as *mut VirtIOHeader)?;
    // SAFETY: `base` is the device's virtio-mmio window from the DTB.
    let transport = unsafe { MmioTransport::new(header, size) }.ok()?;
    VirtIOBlk::new(transport).ok()
}

/// One request, waited for at most 500 ms: `Some(ok)`, or `None` if it never
/// completed (the backend is gone).
fn request(dev: &mut Blk, sector: usize, buf: &mut [u8; SECTOR_SIZE], write: bool) -> Option<bool> {
    let mut req = virtio_drivers::device::blk::BlkReq::default();
    let mut resp = virtio_drivers::device::blk::BlkResp::default();
    // SAFETY: `req`, `buf` and `resp` outlive the request: it is completed (or
    // abandoned with the device failed, never to be used again) before return.
    let token = unsafe {
        if write {
            dev.write_blocks_nb(sector, &mut req, buf, &mut resp)
        } else {
            dev.read_blocks_nb(sector, &mut req, buf, &mut resp)
        }
    }
    .ok()?;
    let deadline = time::Deadline::after_ms(500);
    while dev.peek_used() != Some(token) {
        if deadline.passed() {
            return None;
        }
    }
    // SAFETY: the same buffers as above; the device has used the request.
    let done = unsafe {
        if write {
            dev.complete_write_blocks(token, &req, buf, &mut resp)
        } else {
            dev.complete_read_blocks(token, &req, buf, &mut resp)
        }
    };
    Some(done.is_ok())
}

/// Writes a round's pattern to `sector` and reads it back; `None`: no answer.
fn write_read(dev: &mut Blk, round: usize, sector: usize) -> Option<()> {
    let mut buf = [0u8; SECTOR_SIZE];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(round, sector, i);
    }
    let want = buf;
    if !request(dev, sector, &mut buf, true)? {
        fail!("vfe-restart: round {round}: write of sector {sector} failed");
    }
    let mut back = [0u8; SECTOR_SIZE];
    if !request(dev, sector, &mut back, false)? {
        fail!("vfe-restart: round {round}: read of sector {sector} failed");
    }
    if back != want {
        fail!("vfe-restart: round {round}: sector {sector} read back differs");
    }
    Some(())
}

/// Checks the RAM disk holds its image again and nothing round 0 wrote.
fn check_fresh_disk(dev: &mut Blk) {
    let mut sector = [0u8; SECTOR_SIZE];
    let mut read = |n: usize, buf: &mut [u8; SECTOR_SIZE]| {
        if request(dev, n, buf, false) != Some(true) {
            fail!("vfe-restart: after the restart, reading sector {n} failed");
        }
    };
    read(0, &mut sector);
    if !sector.starts_with(b"FERRY-DISK-IMAGE-V1") {
        fail!("vfe-restart: after the restart, sector 0 does not hold the disk image");
    }
    read(8, &mut sector);
    if sector.iter().any(|&b| b != b'F') {
        fail!("vfe-restart: after the restart, sector 8 is not the image's 'F' bytes");
    }
    read(20, &mut sector);
    if sector.iter().any(|&b| b != 0) {
        fail!("vfe-restart: after the restart, sector 20 still holds what round 0 wrote");
    }
}

/// Runs requests until one gets no answer; returns how many completed.
fn until_failure(dev: &mut Blk, base: usize, round: usize) -> usize {
    for n in 0..200 {
        if write_read(dev, round, 24 + n % 64).is_none() {
            if status(base) & NEEDS_RESET == 0 {
                fail!(
                    "vfe-restart: round {round}: a request got no answer, but no DEVICE_NEEDS_RESET"
                );
            }
            println!(
                "vfe-restart: round {round}: DEVICE_NEEDS_RESET after {} requests",
                2 * n
            );
            return n;
        }
    }
    fail!("vfe-restart: round {round}: the backend never failed");
}

/// Probes until the device answers again (or `recover_ms` passes).
fn recover(base: usize, size: usize, recover_ms: u64) -> Option<(Blk, u64)> {
    let start = time::ticks();
    let deadline = time::Deadline::after_ms(recover_ms);
    while !deadline.passed() {
        if let Some(dev) = open(base, size) {
            return Some((dev, time::ticks_to_ms(time::ticks() - start)));
        }
        time::delay_ms(20);
    }
    None
}

fn main(boot: &'static Boot) -> ! {
    let fdt = boot.fdt();
    let Some(node) = fdt.find_compatible(&["virtio,mmio"]) else {
        fail!("vfe-restart: no virtio,mmio node");
    };
    let Some(region) = node.reg().and_then(|mut r| r.next()) else {
        fail!("vfe-restart: no reg");
    };
    let (base, size) = (
        region.starting_address as usize,
        region.size.unwrap_or(0x200),
    );
    let rounds = boot.arg_u64("rounds").unwrap_or(1) as usize;
    let recover_ms = boot.arg_u64("recover_ms").unwrap_or(10_000);
    let given_up = boot.arg("expect") == Some("given-up");
    let Some(mut dev) = open(base, size) else {
        fail!("vfe-restart: the device does not initialise");
    };
    if write_read(&mut dev, 0, 20).is_none() {
        fail!("vfe-restart: round 0: sector 20 got no answer");
    }
    println!("vfe-restart: round 0: wrote and read back sector 20");
    for round in 0..=rounds {
        let done = until_failure(&mut dev, base, round);
        if round > 0 && done == 0 {
            fail!("vfe-restart: round {round}: no request completed after the restart");
        }
        // The old driver is abandoned: its queue belongs to the failed device.
        core::mem::forget(dev);
        match recover(base, size, recover_ms) {
            Some(_) if given_up && round == rounds => {
                fail!(
                    "vfe-restart: the device came back after {rounds} restarts (expected given up)"
                );
            }
            None if given_up && round == rounds => {
                println!("vfe-restart: device stays failed (given up)");
                psci::system_off()
            }
            None => fail!(
                "vfe-restart: round {round}: the device did not come back within {recover_ms} ms"
            ),
            Some((mut fresh, ms)) => {
                check_fresh_disk(&mut fresh);
                println!(
                    "vfe-restart: recovered after {ms} ms: disk image back, earlier writes gone"
                );
                if !given_up && round + 1 > rounds {
                    fail!("vfe-restart: more restarts than rounds={rounds}");
                }
                if write_read(&mut fresh, round + 1, 20).is_none() {
                    fail!("vfe-restart: round {}: sector 20 got no answer", round + 1);
                }
                println!(
                    "vfe-restart: round {}: wrote and read back sector 20",
                    round + 1
                );
                if !given_up && round + 1 == rounds {
                    let st = status(base);
                    if st & NEEDS_RESET != 0 || st & 4 == 0 {
                        fail!(
                            "vfe-restart: status {st:#x} (expected DRIVER_OK, no DEVICE_NEEDS_RESET)"
                        );
                    }
                    println!("vfe-restart: status {st:#x} after {rounds} restart(s)");
                    psci::system_off()
                }
                dev = fresh;
            }
        }
    }
    fail!("vfe-restart: ran out of rounds");
}
