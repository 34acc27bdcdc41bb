//! Console output lines and typed input routing.

use super::*;
use crate::console_mux::ESCAPE;
use crate::state::console::{ConsoleEvent, ConsoleRouter, Target};

fn collect(p: &Partition, bytes: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    p.console_write(bytes, &mut |t: &[u8], c| {
        out.push((String::from_utf8_lossy(t).into(), c))
    });
    out
}

#[test]
fn complete_lines_are_printed_without_their_newline() {
    let p = frontend(1);
    assert_eq!(
        collect(&p, b"hello\nworld\n"),
        [("hello".into(), true), ("world".into(), true)]
    );
}

#[test]
fn an_unfinished_line_waits_for_its_end() {
    let p = frontend(1);
    assert!(collect(&p, b"abc").is_empty());
    assert_eq!(collect(&p, b"def\n"), [("abcdef".into(), true)]);
}

#[test]
fn carriage_returns_are_dropped() {
    let p = frontend(1);
    assert_eq!(
        collect(&p, b"a\r\nb\r\r\n"),
        [("a".into(), true), ("b".into(), true)]
    );
}

#[test]
fn an_empty_line_is_still_a_line() {
    let p = frontend(1);
    assert_eq!(collect(&p, b"\n"), [(String::new(), true)]);
}

#[test]
fn a_line_longer_than_the_buffer_is_printed_in_pieces() {
    let p = frontend(1);
    let long = vec![b'x'; crate::state::partition::CONSOLE_LINE + 5];
    let out = collect(&p, &long);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.len(), crate::state::partition::CONSOLE_LINE);
    assert!(!out[0].1, "the line goes on");
    assert_eq!(collect(&p, b"\n"), [("xxxxx".into(), true)]);
}

#[test]
fn a_partial_line_is_flushed_as_a_prompt_and_continues() {
    let p = frontend(1);
    collect(&p, b"# ");
    let mut out = Vec::new();
    p.flush_partial_line(&mut |t: &[u8], c| out.push((t.to_vec(), c)));
    assert_eq!(out, [(b"# ".to_vec(), false)]);
    let mut again = Vec::new();
    p.flush_partial_line(&mut |t: &[u8], c| again.push((t.to_vec(), c)));
    assert!(again.is_empty(), "nothing left");
    assert_eq!(collect(&p, b"ls\n"), [("ls".into(), true)]);
}

fn typed(s: &System, router: &mut ConsoleRouter, bytes: &[u8]) -> Vec<Effects> {
    let mem = Mem::default();
    bytes.iter().map(|&b| router.input(s, b, &mem)).collect()
}

fn enable_uart_rx(s: &System) {
    let mut gic = s.partitions[0].vgic.lock();
    gic.irq_mut(0, UART_INTID).unwrap().enabled = true;
    gic.enabled = true;
}

#[test]
fn the_first_byte_picks_the_first_partition_with_a_pl011() {
    let (s, _) = running();
    let mut r = ConsoleRouter::new();
    assert_eq!(r.focus(), None);
    assert!(r.has_room(&s), "no focus yet: read");
    typed(&s, &mut r, b"a");
    assert_eq!(r.focus(), Some(Target::Pl011(0)));
    let mut uart = s.partitions[0].uart.as_ref().unwrap().device.lock();
    assert_eq!(uart.read(0, 4) & 0xff, u64::from(b'a'));
}

#[test]
fn typed_input_raises_the_uart_interrupt_when_enabled() {
    let (s, _) = running();
    enable_uart_rx(&s);
    {
        let mut uart = s.partitions[0].uart.as_ref().unwrap().device.lock();
        // IMSC: RX and RT interrupts; LCR_H.FEN off (one-deep).
        uart.write(0x38, 4, 1 << 4 | 1 << 6, &mut |_| {});
    }
    let mut r = ConsoleRouter::new();
    let fx = r.input(&s, b'x', &Mem::default());
    assert_eq!(kicks(&fx, 0, false), 1);
    assert!(!r.has_room(&s), "one-deep holding register is full");
}

#[test]
fn escape_then_a_digit_switches_focus_and_logs() {
    let (s, _) = running();
    let mut r = ConsoleRouter::new();
    let fx = typed(&s, &mut r, &[ESCAPE, b'0']);
    assert!(fx[0].is_empty());
    assert_eq!(lines(&s, &fx[1]), ["console: input goes to partition 'fe'"]);
}

#[test]
fn escape_to_a_partition_without_a_pl011_is_refused() {
    let (s, _) = running();
    let mut r = ConsoleRouter::new();
    let fx = typed(&s, &mut r, &[ESCAPE, b'1']);
    assert!(has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)));
    let fx = typed(&s, &mut r, &[ESCAPE, b'x']);
    assert!(has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)));
}

#[test]
fn escape_twice_sends_one_escape() {
    let (s, _) = running();
    let mut r = ConsoleRouter::new();
    typed(&s, &mut r, &[ESCAPE, ESCAPE]);
    let mut uart = s.partitions[0].uart.as_ref().unwrap().device.lock();
    assert_eq!(uart.read(0, 4) & 0xff, u64::from(ESCAPE));
}

#[test]
fn a_stopped_partition_takes_no_input() {
    let (s, _) = running();
    s.partitions[0].mark_stopped();
    let mut r = ConsoleRouter::new();
    let fx = typed(&s, &mut r, b"a");
    assert_eq!(r.focus(), None);
    assert!(fx[0].is_empty());
    let fx = typed(&s, &mut r, &[ESCAPE, b'0']);
    assert!(has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)));
}

#[test]
fn backpressure_stops_reading_when_the_fifo_is_full() {
    let (s, _) = running();
    let mut r = ConsoleRouter::new();
    {
        let mut uart = s.partitions[0].uart.as_ref().unwrap().device.lock();
        // LCR_H.FEN: the 32-deep FIFO.
        uart.write(0x2c, 4, 1 << 4, &mut |_| {});
    }
    let mut sent = 0;
    while r.has_room(&s) && sent < 100 {
        r.input(&s, b'0' + (sent % 10) as u8, &Mem::default());
        sent += 1;
    }
    assert_eq!(sent, crate::vuart::RX_FIFO_DEPTH);
    // The guest reads one: room for one more.
    s.partitions[0]
        .uart
        .as_ref()
        .unwrap()
        .device
        .lock()
        .read(0, 4);
    assert!(r.has_room(&s));
}
