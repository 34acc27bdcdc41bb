//! A hostile *backend* misusing the virtio console calls (`CONSOLE_DEVICE_WRITE`,
//! `CONSOLE_DEVICE_READ`, docs/hypercalls.md).

use ferry_abi::hypercall::{self as hc, CONSOLE_WRITE_MAX};
use ferry_backend::node::{self, Kind};
use ferry_partition_rt::{Boot, arch, fail, mmu, println, time};

use super::util::{self, Rng};
use crate::check;

/// `CONSOLE_DEVICE_WRITE(device, len, words)`: x0 as a status or a count.
fn write(device: u64, len: u64, words: [u64; 3]) -> i64 {
    let x0 = u64::from(hc::CONSOLE_DEVICE_WRITE);
    arch::hvc6([x0, device, len, words[0], words[1], words[2]])[0] as i64
}

/// `CONSOLE_DEVICE_READ(device)`: x0..x3.
fn read(device: u64) -> [u64; 4] {
    arch::hvc(u64::from(hc::CONSOLE_DEVICE_READ), device, 0, 0, 0)
}

/// `len` printable bytes (lower-case letters, a newline one time in 64), packed
/// as the call takes them.
fn text(rng: &mut Rng, len: usize) -> [u64; 3] {
    let mut b = [0u8; CONSOLE_WRITE_MAX];
    for x in &mut b[..len] {
        *x = match rng.below(64) {
            0 => b'\n',
            r => b'a' + (r % 26) as u8,
        };
    }
    hc::console_args(&b[..len]).1
}

/// `probe=console-fuzz [count=<n>] [seed=<hex>]`: a backend whose devices are an
/// rng, a console with the `loopback` hook and a real console (its DTB says
/// which) calls CONSOLE_DEVICE_WRITE and CONSOLE_DEVICE_READ `n` times (default
/// 4000) with random device numbers (its own, beyond them, any 64-bit value),
/// lengths (0..=24 and beyond) and bytes. Only the real console with a length up
/// to 24 may be accepted: a write returns its length (printable bytes: they show
/// as the console's stream), a read 0 bytes (nothing is typed); everything else
/// must be INVALID_PARAMETERS, logged within its budget (`max_ferry_lines`). Ends
/// with a line on the real console: `hostile: console-fuzz line`.
pub fn console_fuzz(boot: &Boot) -> ! {
    let n = match node::parse(boot.fdt(), mmu::NORMAL_RAM) {
        Ok(n) => n,
        Err(e) => fail!("hostile: /ferry-backend: {e}"),
    };
    let Some(real) = n
        .iter()
        .find(|d| d.kind == Kind::Console && !d.loopback)
        .map(|d| d.index as u64)
    else {
        fail!("hostile: console-fuzz: the backend serves no console without loopback");
    };
    let devices = n.iter().count() as u64;
    let count = boot.arg_u64("count").unwrap_or(4000);
    let mut rng = Rng::new(boot.arg_hex("seed").unwrap_or(0xc0c0));
    let (mut accepted, mut bad) = (0u64, 0u64);
    let t0 = time::ticks();
    for i in 0..count {
        let device = match rng.below(4) {
            0 => real,
            1 | 2 => rng.below(devices + 2),
            _ => rng.next(),
        };
        let len = match rng.below(4) {
            0 | 1 => rng.below(CONSOLE_WRITE_MAX as u64 + 1),
            2 => CONSOLE_WRITE_MAX as u64 + 1 + rng.below(100),
            _ => rng.next(),
        };
        let ok_device = device == real;
        let (what, got, want) = if rng.one_in(2) {
            let words = match len as usize {
                l @ 0..=CONSOLE_WRITE_MAX if ok_device => text(&mut rng, l),
                _ => [rng.next(), rng.next(), rng.next()],
            };
            let valid = ok_device && len <= CONSOLE_WRITE_MAX as u64;
            let want = if valid {
                len as i64
            } else {
                hc::INVALID_PARAMETERS
            };
            ("WRITE", write(device, len, words), want)
        } else {
            let r = read(device);
            let want = if ok_device { 0 } else { hc::INVALID_PARAMETERS };
            check!(
                r[1..] == [0; 3],
                "console-fuzz: #{i} READ({device}) x1..x3 {r:x?}: no bytes"
            );
            ("READ", r[0] as i64, want)
        };
        accepted += u64::from(got >= 0);
        if got != want {
            bad += 1;
            if bad <= 10 {
                check!(
                    false,
                    "console-fuzz: #{i} {what}({device:#x}, len {len:#x}) = {got}, expected {want}"
                );
            }
        }
    }
    let ms = time::ticks_to_ms(time::ticks() - t0);
    check!(bad == 0, "console-fuzz: {bad} results off the model");
    // End the real console's open line, then one known line.
    let line = b"\nhostile: console-fuzz line\n";
    for chunk in line.chunks(CONSOLE_WRITE_MAX) {
        let (len, words) = hc::console_args(chunk);
        let got = write(real, len, words);
        check!(
            got == len as i64,
            "console-fuzz: the last line's write = {got}"
        );
    }
    println!(
        "hostile: console-fuzz: {count} calls in {ms} ms, {accepted} accepted (device {real} only), the rest refused"
    );
    util::verdict("console-fuzz")
}
