//! `esr_mmio_decode`: a guest's trapped access as Ferry decodes it, from the
//! syndrome to the emulated device: `esr` (class, syndrome, names for logs),
//! `mmio::decode` (ISV, size, direction, register, sign extension), the store value
//! taken from the register file and the load value put back, and the lookup of
//! the address in a partition's table of emulated regions (`state::emul`).
//!
//! Input (structured, `arbitrary`): ESR_EL2, the faulting address (nudged into the
//! emulated regions most of the time), the register file and the value a load
//! returns.
//!
//! Checked: nothing panics; a decoded access is what the ISS fields say (size
//! 1/2/4/8, register 0-31); a store takes its register cut to size (XZR: 0); a
//! load changes its register only (XZR: nothing), zero- or sign-extended as asked
//! and to 32 bits for a W register; a found region contains the address at the
//! offset it gives.
#![no_main]

use arbitrary::Arbitrary;
use ferry_hypervisor::state::emul::{self, Device, EmulTable, MmioAccess};
use ferry_hypervisor::{esr, mmio};
use ferry_platform::Region;
use libfuzzer_sys::fuzz_target;

/// Where the table's regions are (QEMU virt's layout).
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080a_0000;
const UART: u64 = 0x0900_0000;
const VIRTIO: u64 = 0x0a00_0000;

#[derive(Arbitrary, Debug)]
struct Input {
    esr: u64,
    /// Selects the address: a region's base plus `offset`, or `offset` as it is.
    region: u8,
    offset: u64,
    regs: [u64; 31],
    value: u64,
}

fuzz_target!(|input: Input| {
    let ec = esr::class(input.esr);
    let _ = (esr::class_name(ec), esr::syndrome(input.esr));
    let _ = esr::is_32bit_instruction(input.esr);
    let abort = matches!(ec, 0x20 | 0x21 | 0x24 | 0x25);
    assert_eq!(esr::abort_status_name(input.esr).is_some(), abort);

    let ipa = address(input.region, input.offset);
    let isv = input.esr & (1 << 24) != 0;
    let Some(a) = mmio::decode(input.esr, ipa) else {
        assert!(!isv, "ISV set but not decoded");
        return;
    };
    assert!(isv, "decoded without ISV");
    assert_eq!(a.ipa, ipa);
    assert_eq!(u64::from(a.size), 1 << ((input.esr >> 22) & 3));
    assert_eq!(u64::from(a.reg), (input.esr >> 16) & 0x1f);
    assert_eq!(a.write, input.esr & (1 << 6) != 0);
    check_store(&a, &input.regs);
    check_load(&a, &input.regs, input.value);
    check_lookup(&a, &input.regs);
});

/// The access size in bits and its mask.
fn mask(a: &mmio::Access) -> u64 {
    if a.size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(a.size))) - 1
    }
}

fn check_store(a: &mmio::Access, regs: &[u64; 31]) {
    let v = a.store_value(regs);
    let expected = regs.get(usize::from(a.reg)).copied().unwrap_or(0) & mask(a);
    assert_eq!(v, expected, "store value of {a:?}");
}

fn check_load(a: &mmio::Access, regs: &[u64; 31], value: u64) {
    let mut x = *regs;
    a.complete_load(&mut x, value);
    for (i, (&after, &before)) in x.iter().zip(regs).enumerate() {
        if i != usize::from(a.reg) {
            assert_eq!(after, before, "x{i} changed by a load into x{}", a.reg);
        }
    }
    let Some(&got) = x.get(usize::from(a.reg)) else {
        return;
    };
    let v = value & mask(a);
    let top = 8 * u32::from(a.size) - 1;
    let negative = a.size < 8 && (v >> top) & 1 == 1;
    let extended = if a.sign_extend && negative {
        v | !mask(a)
    } else {
        v
    };
    let expected = if a.wide {
        extended
    } else {
        extended & 0xffff_ffff
    };
    assert_eq!(got, expected, "load of {value:#x} by {a:?}");
}

/// The emulated regions of a partition with 4 vCPUs, a PL011 and two virtio
/// windows.
fn table() -> EmulTable {
    emul::partition_table(
        GICD,
        GICR,
        4,
        Some(Region::new(UART, ferry_hypervisor::vuart::WINDOW)),
        [
            (0, Region::new(VIRTIO, 0x200)),
            (1, Region::new(VIRTIO + 0x200, 0x200)),
        ],
    )
    .expect("the regions do not overlap")
}

fn address(region: u8, offset: u64) -> u64 {
    let base = match region % 8 {
        0 => GICD,
        1 => GICR,
        2 => UART,
        3 => VIRTIO,
        4 => VIRTIO + 0x200,
        _ => return offset,
    };
    base.wrapping_add(offset % 0x10_0000)
}

fn check_lookup(a: &mmio::Access, regs: &[u64; 31]) {
    let t = table();
    let Some((device, offset)) = t.find(a.ipa) else {
        let hit = t.regions().iter().find(|r| r.window.contains(a.ipa));
        assert!(hit.is_none(), "{:#x} is in {hit:?} but not found", a.ipa);
        return;
    };
    let region = t
        .regions()
        .iter()
        .find(|r| r.device == device && r.window.contains(a.ipa))
        .expect("the device found has a region holding the address");
    assert_eq!(region.window.base + offset, a.ipa);
    let access = MmioAccess {
        offset,
        size: a.size,
        write: a.write.then(|| a.store_value(regs)),
    };
    let reads = emul::gic_reads_lr_state(device, offset, access);
    assert!(!reads || matches!(device, Device::Gicd | Device::Gicr) && !a.write);
}
