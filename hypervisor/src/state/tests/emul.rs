//! The emulated-region table and the GIC and PL011 handlers.

use super::*;
use crate::state::emul::{
    Device, EmulError, EmulTable, Emulated, Undecodable, gic, gic_reads_lr_state, partition_table,
    uart,
};
use crate::vgic::{DIST_SIZE, REDIST_STRIDE};

fn table() -> EmulTable {
    partition_table(
        GICD,
        GICR,
        2,
        Some(Region::new(UART, 0x1000)),
        [
            (0, Region::new(WINDOW, 0x200)),
            (3, Region::new(WINDOW + 0x200, 0x200)),
        ],
    )
    .unwrap()
}

#[test]
fn lookups_find_each_region_with_its_offset() {
    let t = table();
    assert_eq!(t.find(GICD), Some((Device::Gicd, 0)));
    assert_eq!(
        t.find(GICD + DIST_SIZE - 1),
        Some((Device::Gicd, DIST_SIZE - 1))
    );
    assert_eq!(
        t.find(GICR + REDIST_STRIDE + 0x10),
        Some((Device::Gicr, REDIST_STRIDE + 0x10))
    );
    assert_eq!(t.find(UART + 0x18), Some((Device::Pl011, 0x18)));
    assert_eq!(t.find(WINDOW + 0x70), Some((Device::Virtio(0), 0x70)));
    assert_eq!(t.find(WINDOW + 0x200), Some((Device::Virtio(3), 0)));
}

#[test]
fn addresses_just_outside_are_not_found() {
    let t = table();
    for ipa in [
        GICD - 1,
        GICD + DIST_SIZE,
        GICR - 1,
        GICR + 2 * REDIST_STRIDE,
        UART + 0x1000,
        WINDOW - 1,
        WINDOW + 0x400,
        0,
        u64::MAX,
    ] {
        assert_eq!(t.find(ipa), None, "{ipa:#x}");
    }
}

#[test]
fn redistributors_cover_every_vcpu() {
    for n in [1usize, 2, 4, 8] {
        let t = partition_table(GICD, GICR, n, None, []).unwrap();
        let last = GICR + n as u64 * REDIST_STRIDE - 1;
        assert_eq!(t.find(last).map(|f| f.0), Some(Device::Gicr));
        assert_eq!(t.find(last + 1), None);
    }
}

#[test]
fn overlapping_regions_are_refused() {
    let mut t = EmulTable::new();
    t.add(Region::new(0x1000, 0x1000), Device::Pl011).unwrap();
    for (base, size) in [
        (0x1000, 0x1000),
        (0x0800, 0x1000),
        (0x1fff, 1),
        (0, 0x10000),
    ] {
        assert_eq!(
            t.add(Region::new(base, size), Device::Gicd),
            Err(EmulError::Overlap(
                Emulated {
                    window: Region::new(0x1000, 0x1000),
                    device: Device::Pl011
                },
                Region::new(base, size)
            )),
            "{base:#x}+{size:#x}"
        );
    }
    assert_eq!(t.regions().len(), 1);
}

#[test]
fn adjacent_regions_are_fine() {
    let mut t = EmulTable::new();
    t.add(Region::new(0x1000, 0x1000), Device::Pl011).unwrap();
    t.add(Region::new(0x2000, 0x1000), Device::Gicd).unwrap();
    t.add(Region::new(0x0, 0x1000), Device::Gicr).unwrap();
    assert_eq!(t.regions().len(), 3);
}

#[test]
fn empty_or_wrapping_regions_are_refused() {
    let mut t = EmulTable::new();
    assert_eq!(
        t.add(Region::new(0x1000, 0), Device::Pl011),
        Err(EmulError::Empty(Region::new(0x1000, 0)))
    );
    assert!(
        t.add(Region::new(u64::MAX - 0xfff, 0x2000), Device::Pl011)
            .is_err()
    );
    assert!(
        t.add(Region::new(u64::MAX - 0xfff, 0x1000), Device::Pl011)
            .is_err(),
        "one past its last byte is not an address"
    );
    assert!(
        t.add(Region::new(u64::MAX - 0x1fff, 0x1000), Device::Pl011)
            .is_ok()
    );
}

#[test]
fn a_virtio_window_over_the_gic_is_refused() {
    let err =
        partition_table(GICD, GICR, 1, None, [(0, Region::new(GICD + 0x100, 0x200))]).unwrap_err();
    assert!(err.to_string().contains("overlaps the Virtio(0)"), "{err}");
}

#[test]
fn undecodable_accesses_abort_into_the_guest_only_for_virtio() {
    assert_eq!(Device::Virtio(0).on_undecodable(), Undecodable::InjectAbort);
    for d in [Device::Gicd, Device::Gicr, Device::Pl011] {
        assert_eq!(d.on_undecodable(), Undecodable::Stop);
    }
}

#[test]
fn only_loads_of_pending_and_active_registers_need_the_other_cores() {
    let r = load(0x200, 4);
    assert!(gic_reads_lr_state(Device::Gicd, 0x200, r));
    assert!(gic_reads_lr_state(Device::Gicd, 0x3fc, load(0x3fc, 4)));
    assert!(!gic_reads_lr_state(Device::Gicd, 0x200, store(0x200, 4, 1)));
    assert!(!gic_reads_lr_state(Device::Gicd, 0x100, load(0x100, 4)));
    assert!(gic_reads_lr_state(
        Device::Gicr,
        0x1_0200,
        load(0x1_0200, 4)
    ));
    assert!(gic_reads_lr_state(
        Device::Gicr,
        REDIST_STRIDE + 0x1_0300,
        load(0, 4)
    ));
    assert!(!gic_reads_lr_state(Device::Gicr, 0x200, load(0x200, 4)));
    assert!(!gic_reads_lr_state(Device::Pl011, 0x200, load(0x200, 4)));
    assert!(!gic_reads_lr_state(
        Device::Virtio(0),
        0x200,
        load(0x200, 4)
    ));
}

fn gic_access(s: &System, vcpu: usize, device: Device, a: MmioAccess) -> (u64, Effects) {
    let p = &s.partitions[0];
    let mut fx = Effects::new();
    let mut v = p.vgic.lock();
    let read = gic(p, &mut v, vcpu, device, a, &mut fx);
    (read, fx)
}

#[test]
fn gicd_ctlr_write_updates_every_running_vcpu_but_the_caller() {
    let (s, _) = running();
    let (_, fx) = gic_access(&s, 0, Device::Gicd, store(0, 4, 0b10));
    assert_eq!(kicks(&fx, 0, false), 0b10);
    let (read, _) = gic_access(&s, 0, Device::Gicd, load(0, 4));
    assert_eq!(read & 0b10, 0b10, "EnableGrp1 reads back");
}

#[test]
fn a_vcpu_that_is_off_is_not_kicked() {
    let (s, _) = system(Shape::default());
    s.partitions[0].vcpus[0].request_on(0x4000_0000, 0);
    s.partitions[0].vcpus[0].take_start();
    let (_, fx) = gic_access(&s, 0, Device::Gicd, store(0, 4, 0b10));
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn redistributor_accesses_reach_the_vcpu_the_offset_names() {
    let (s, _) = running();
    let (typer, _) = gic_access(&s, 0, Device::Gicr, load(REDIST_STRIDE + 8, 4));
    assert_eq!(typer >> 8 & 0xffff, 1, "processor number of vCPU 1");
    let (typer0, _) = gic_access(&s, 1, Device::Gicr, load(8, 4));
    assert_eq!(typer0 >> 8 & 0xffff, 0);
}

#[test]
fn rerouting_a_passthrough_spi_moves_the_physical_one() {
    let mem = Mem::default();
    let (s, _) = (
        {
            let mut fe = frontend(2);
            fe.vgic = spin::Mutex::new(Vgic::new(2, 256, &[(40, true), (UART_INTID, false)]));
            let be = backend(Shape::default(), &mem, 2);
            System::new(
                vec![fe, be],
                vec![Some((0, 0)), Some((0, 1)), Some((1, 0))],
                0,
                vec![],
                RunPolicy::new(2, &[]),
            )
        },
        (),
    );
    switch_on_all(&s);
    let irouter = 0x6100 + 8 * (40 - 32);
    let (_, fx) = gic_access(&s, 0, Device::Gicd, store(irouter, 8, 1));
    assert!(
        fx.iter().any(|e| *e
            == Effect::RouteSpi {
                intid: 40,
                partition: 0,
                vcpu: 1
            }),
        "{fx:?}"
    );
    // An emulated SPI re-routed: nothing physical moves.
    let uart_router = 0x6100 + 8 * u64::from(UART_INTID - 32);
    let (_, fx) = gic_access(&s, 0, Device::Gicd, store(uart_router, 8, 1));
    assert!(!fx.iter().any(|e| matches!(e, Effect::RouteSpi { .. })));
}

#[test]
fn a_read_of_irouter_reroutes_nothing() {
    let (s, _) = running();
    let (_, fx) = gic_access(&s, 0, Device::Gicd, load(0x6100, 8));
    assert!(!fx.iter().any(|e| matches!(e, Effect::RouteSpi { .. })));
}

fn uart_access(s: &System, a: MmioAccess) -> (u64, Vec<(String, bool)>, Effects) {
    let p = &s.partitions[0];
    let mut out = Vec::new();
    let mut fx = Effects::new();
    let read = uart(
        p,
        p.uart.as_ref().unwrap(),
        0,
        a,
        &mut |t: &[u8], c| out.push((String::from_utf8_lossy(t).into(), c)),
        &mut fx,
    );
    (read, out, fx)
}

#[test]
fn uart_writes_become_console_lines() {
    let (s, _) = running();
    for b in b"hi\n" {
        uart_access(&s, store(0, 4, u64::from(*b)));
    }
    let (_, out, _) = uart_access(&s, store(0, 1, u64::from(b'\n')));
    assert_eq!(out, [(String::new(), true)]);
}

#[test]
fn uart_reads_show_the_pl011_id() {
    let (s, _) = running();
    assert_eq!(uart_access(&s, load(0xfe0, 4)).0, 0x11);
    assert_eq!(uart_access(&s, load(0xff0, 4)).0, 0x0d);
}

#[test]
fn uart_tx_interrupt_follows_the_line_level() {
    let (s, _) = running();
    // IMSC: TX interrupt enabled; a DR write raises it.
    uart_access(&s, store(0x38, 4, 1 << 5));
    let (_, _, fx) = uart_access(&s, store(0, 4, u64::from(b'a')));
    assert_eq!(
        kicks(&fx, 0, false),
        0,
        "the caller (vCPU 0) takes it on its way back"
    );
    assert!(
        s.partitions[0]
            .vgic
            .lock()
            .irq(0, UART_INTID)
            .unwrap()
            .level
    );
    // ICR clears it: the line drops.
    uart_access(&s, store(0x44, 4, 0x7ff));
    assert!(
        !s.partitions[0]
            .vgic
            .lock()
            .irq(0, UART_INTID)
            .unwrap()
            .level
    );
}
