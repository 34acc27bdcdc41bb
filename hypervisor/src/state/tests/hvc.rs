//! Virtio consoles through Ferry: CONSOLE_DEVICE_WRITE/READ, typed input
//! focused on a virtio console, and everything a backend may not do.

use ferry_abi::hypercall::{self, HypercallStatus};

use super::*;
use crate::console_mux::ESCAPE;
use crate::state::console::{ConsoleEvent, ConsoleRouter, Target};
use crate::state::hvc::{self, Call, ConsoleSpec, DeviceConsole, INPUT_FIFO, Refusal};

/// The fixture's fe and be with three devices served by be: 0 a console, 1 a
/// console with the loopback hook, 2 not a console (an rng).
fn consoles() -> (System, Mem) {
    consoles_with(true)
}

/// [`consoles`], the frontend with its PL011 or without.
fn consoles_with(pl011: bool) -> (System, Mem) {
    let mem = Mem::default();
    let mut fe = frontend(2);
    if !pl011 {
        fe.uart = None;
    }
    let be = backend(Shape::default(), &mem, 2);
    let route = |index: usize| {
        let spec = RouteSpec {
            index,
            backend_index: index,
            window: Region::new(WINDOW + 0x200 * index as u64, 0x200),
            frontend: 0,
            backend: 1,
            fe_intid: FE_INTID,
            deadline_ms: DEADLINE_MS,
            bounce: None,
        };
        Route::new(spec, HZ)
    };
    let console = |route: usize, loopback: bool, key: Option<u8>| {
        DeviceConsole::new(ConsoleSpec {
            route,
            hvc: route as u32,
            loopback,
            key,
            label: format!("fe:hvc{route}"),
        })
    };
    let s = System::new(
        vec![fe, be],
        vec![Some((0, 0)), Some((0, 1)), Some((1, 0))],
        0,
        (0..3).map(route).collect(),
        RunPolicy::new(2, &[0]),
    )
    .with_consoles(vec![console(0, false, Some(b'a')), console(1, true, None)]);
    switch_on_all(&s);
    (s, mem)
}

type Printed = Vec<(usize, String, bool)>;

/// CONSOLE_DEVICE_WRITE(`device`, `text`) from partition `from`.
fn write(
    s: &System,
    from: usize,
    device: u64,
    len: u64,
    text: &[u8],
) -> (Result<usize, HypercallStatus>, Printed, Effects) {
    let (_, words) = hypercall::console_args(text);
    let mut printed = Vec::new();
    let mut fx = Effects::new();
    let r = hvc::device_write(
        s,
        &s.partitions[from],
        (device, len, words),
        &mut |c, t, done| printed.push((c, String::from_utf8_lossy(t).into(), done)),
        &mut fx,
    );
    (r, printed, fx)
}

/// CONSOLE_DEVICE_READ(`device`) from be: the bytes, or the refusal.
fn read(s: &System, device: u64) -> (Result<Vec<u8>, HypercallStatus>, Effects) {
    let mut fx = Effects::new();
    let r = hvc::device_read(s, &s.partitions[1], device, &mut fx).map(|(n, words)| {
        let mut buf = [0; hypercall::CONSOLE_WRITE_MAX];
        hypercall::console_bytes(n as u64, words, &mut buf)
            .unwrap()
            .to_vec()
    });
    (r, fx)
}

fn typed(s: &System, mem: &Mem, r: &mut ConsoleRouter, bytes: &[u8]) -> Vec<Effects> {
    bytes.iter().map(|&b| r.input(s, b, mem)).collect()
}

fn console_input_bits(mem: &Mem) -> u32 {
    mem.word(abi::CONSOLE_INPUT_OFFSET)
}

#[test]
fn output_is_the_consoles_own_line_buffered_stream() {
    let (s, _) = consoles();
    let (r, printed, fx) = write(&s, 1, 0, 9, b"login: ok");
    assert_eq!(r, Ok(9));
    assert!(printed.is_empty(), "no newline yet");
    assert!(fx.is_empty());
    let (r, printed, _) = write(&s, 1, 0, 6, b"\r\nnext");
    assert_eq!(r, Ok(6));
    assert_eq!(printed, [(0, "login: ok".to_string(), true)]);
    let mut prompt = Vec::new();
    s.consoles[0].flush_partial_line(&mut |t, done| prompt.push((t.to_vec(), done)));
    assert_eq!(
        prompt,
        [(b"next".to_vec(), false)],
        "a prompt is shown open"
    );
    assert_eq!(s.consoles[0].label, "fe:hvc0");
    let (r, printed, _) = write(&s, 1, 0, 0, b"");
    assert_eq!(
        (r, printed.len()),
        (Ok(0), 0),
        "an empty write takes nothing"
    );
}

#[test]
fn a_backend_may_write_and_read_only_a_real_console_it_serves() {
    let (s, _) = consoles();
    let cases = [
        (1, Refusal::Loopback),
        (2, Refusal::NotConsole),
        (3, Refusal::NotServed),
        (u64::MAX, Refusal::NotServed),
    ];
    for (device, why) in cases {
        let (r, printed, fx) = write(&s, 1, device, 4, b"evil");
        assert_eq!(r, Err(HypercallStatus::InvalidParameters), "{device}");
        assert!(printed.is_empty());
        let refused = Event::Console(ConsoleEvent::DeviceRefused {
            backend: 1,
            call: Call::Write,
            device,
            why,
        });
        assert!(has(&fx, &refused), "{device}: {:?}", lines(&s, &fx));
        let (r, fx) = read(&s, device);
        assert_eq!(r, Err(HypercallStatus::InvalidParameters), "{device}");
        assert_eq!(fx.events().next().and_then(Event::offender), Some(1));
    }
    let (_, _, fx) = write(&s, 1, 1, 4, b"evil");
    assert_eq!(
        lines(&s, &fx),
        [
            "backend 'be': CONSOLE_DEVICE_WRITE(device 1) refused: the console is a loopback (its backend echoes)"
        ]
    );
}

#[test]
fn a_bad_length_is_refused() {
    let (s, _) = consoles();
    for len in [25, 1 << 32, u64::MAX] {
        let (r, printed, fx) = write(&s, 1, 0, len, b"x");
        assert_eq!(r, Err(HypercallStatus::InvalidParameters));
        assert!(printed.is_empty());
        assert_eq!(
            lines(&s, &fx),
            [format!(
                "backend 'be': CONSOLE_DEVICE_WRITE(device 0) refused: length {len} is over 24"
            )]
        );
    }
    let (r, _, _) = write(&s, 1, 0, 24, &[b'y'; 24]);
    assert_eq!(r, Ok(24));
}

#[test]
fn a_partition_without_a_request_page_is_not_a_backend() {
    let (s, _) = consoles();
    let (r, printed, fx) = write(&s, 0, 0, 2, b"hi");
    assert_eq!(r, Err(HypercallStatus::NotSupported));
    assert!(printed.is_empty());
    assert!(fx.is_empty(), "not logged, as the other backend calls");
    let mut fx = Effects::new();
    let r = hvc::device_read(&s, &s.partitions[0], 0, &mut fx);
    assert_eq!(r, Err(HypercallStatus::NotSupported));
}

#[test]
fn typed_input_reaches_the_backend_through_its_page_and_doorbell() {
    let (s, mem) = consoles();
    let mut r = ConsoleRouter::new();
    let fx = typed(&s, &mem, &mut r, &[ESCAPE, b'a']);
    assert_eq!(r.focus(), Some(Target::Device(0)));
    assert_eq!(
        lines(&s, &fx[1]),
        ["console: input goes to 'fe' hvc0 (served by 'be')"]
    );
    assert_eq!(console_input_bits(&mem), 0);
    let fx = typed(&s, &mem, &mut r, b"hi");
    assert_eq!(console_input_bits(&mem), 1, "device 0's bit");
    assert_eq!(kicks(&fx[0], 1, false), 1, "the doorbell rings");
    assert_eq!(s.consoles[0].pending_input(), 2);
    let (got, fx) = read(&s, 0);
    assert_eq!(got, Ok(b"hi".to_vec()));
    assert!(fx.is_empty());
    assert_eq!(read(&s, 0).0, Ok(vec![]), "nothing more");
    // The PL011 saw none of it (its one-deep holding register is free).
    assert!(
        s.partitions[0]
            .uart
            .as_ref()
            .unwrap()
            .device
            .lock()
            .rx_space()
            > 0
    );
    let mut uart = s.partitions[0].uart.as_ref().unwrap().device.lock();
    assert_eq!(
        uart.read(0x18, 4) & 1 << 4,
        1 << 4,
        "FR.RXFE: nothing received"
    );
}

#[test]
fn a_byte_typed_before_focusing_goes_to_the_pl011() {
    let (s, mem) = consoles();
    let mut r = ConsoleRouter::new();
    typed(&s, &mem, &mut r, b"x");
    assert_eq!(r.focus(), Some(Target::Pl011(0)), "PL011s come first");
    assert_eq!(s.consoles[0].pending_input(), 0);
    assert_eq!(console_input_bits(&mem), 0);
    let fx = typed(&s, &mem, &mut r, &[ESCAPE, b'b']);
    assert!(
        has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)),
        "a loopback console has no key"
    );
    let fx = typed(&s, &mem, &mut r, &[ESCAPE, b'0']);
    assert_eq!(lines(&s, &fx[1]), ["console: input goes to partition 'fe'"]);
}

#[test]
fn a_full_fifo_holds_input_back_until_the_backend_reads() {
    let (s, mem) = consoles();
    let mut r = ConsoleRouter::new();
    typed(&s, &mem, &mut r, &[ESCAPE, b'a']);
    let mut sent = 0;
    while r.has_room(&s) && sent < 1000 {
        r.input(&s, b'0' + (sent % 10) as u8, &mem);
        sent += 1;
    }
    assert_eq!(sent, INPUT_FIFO);
    let (got, _) = read(&s, 0);
    assert_eq!(got.unwrap().len(), hypercall::CONSOLE_WRITE_MAX);
    assert!(r.has_room(&s));
    let mut all = 0;
    while let (Ok(b), _) = read(&s, 0) {
        if b.is_empty() {
            break;
        }
        all += b.len();
    }
    assert_eq!(
        all,
        INPUT_FIFO - hypercall::CONSOLE_WRITE_MAX,
        "in order, none lost"
    );
}

#[test]
fn input_for_a_stopped_backend_is_dropped_and_logged_once() {
    let (s, mem) = consoles();
    let mut r = ConsoleRouter::new();
    typed(&s, &mem, &mut r, &[ESCAPE, b'a', b'q']);
    s.partitions[1].mark_stopped();
    assert!(r.has_room(&s), "never hangs the console");
    let fx = typed(&s, &mem, &mut r, b"xyz");
    let dropped = Event::Console(ConsoleEvent::InputDropped {
        console: 0,
        backend: 1,
    });
    assert!(has(&fx[0], &dropped));
    assert_eq!(dropped.offender(), Some(1), "rate-limited on the backend");
    assert!(fx[1].is_empty() && fx[2].is_empty(), "once per stretch");
    assert_eq!(
        lines(&s, &fx[0]),
        ["console: input for 'fe' hvc0 dropped: its backend 'be' is stopped"]
    );
    assert_eq!(s.consoles[0].pending_input(), 1, "only what came before");
    // A restart drops what the old run did not take; input flows again.
    hvc::backend_restarted(&s, 1);
    s.partitions[1].restarted();
    assert_eq!(s.consoles[0].pending_input(), 0);
    let fx = typed(&s, &mem, &mut r, b"k");
    assert!(fx[0].events().next().is_none());
    assert_eq!(read(&s, 0).0, Ok(b"k".to_vec()));
}

#[test]
fn a_console_of_a_stopped_frontend_cannot_be_focused() {
    let (s, mem) = consoles();
    s.partitions[0].mark_stopped();
    let mut r = ConsoleRouter::new();
    let fx = typed(&s, &mem, &mut r, &[ESCAPE, b'a']);
    assert!(has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)));
    assert_eq!(r.focus(), None);
}

#[test]
fn without_a_pl011_the_first_virtio_console_takes_input() {
    let (s, mem) = consoles_with(false);
    let mut r = ConsoleRouter::new();
    typed(&s, &mem, &mut r, b"z");
    assert_eq!(r.focus(), Some(Target::Device(0)));
    assert_eq!(read(&s, 0).0, Ok(b"z".to_vec()));
    let fx = typed(&s, &mem, &mut r, &[ESCAPE, b'0']);
    assert!(has(&fx[1], &Event::Console(ConsoleEvent::BadEscape)));
    assert_eq!(
        hvc::input_map(&s).unwrap(),
        "console input: Ctrl-\\ a -> 'fe' hvc0 (served by 'be'); typed input goes to the first until Ctrl-\\ names another"
    );
}

#[test]
fn nothing_takes_input_without_a_pl011_or_a_real_console() {
    let (s, _) = consoles_with(false);
    let s = s.with_consoles(vec![]);
    assert_eq!(hvc::input_map(&s), None);
}

#[test]
fn the_boot_line_maps_keys_to_consoles() {
    let (s, _) = consoles();
    assert_eq!(
        hvc::input_map(&s).unwrap(),
        "console input: Ctrl-\\ 0 -> 'fe' (PL011), Ctrl-\\ a -> 'fe' hvc0 (served by 'be'); typed input goes to the first until Ctrl-\\ names another"
    );
}
