//! Virtio consoles served through Ferry (docs/ioreq.md, "Consoles").
//!
//! What a frontend transmits on a virtio console reaches the device's backend,
//! which passes it on with `CONSOLE_DEVICE_WRITE`: Ferry prints it as the
//! console's own labelled stream (`[linux:hvc0] ...`), line-buffered like a
//! partition's console output. Typed input focused on the console (Ctrl-\ then
//! its letter, `state::console`) waits in a bounded FIFO here ([`INPUT_FIFO`]
//! bytes); Ferry sets the device's bit in the backend's request page
//! (`console_input`) and rings its doorbell, and the backend takes the bytes
//! with `CONSOLE_DEVICE_READ`. While the FIFO is full, typed input waits in the
//! physical UART (nothing typed is lost); while the backend is stopped (or
//! restarting) input for it is dropped, with a rate-limited log line.
//!
//! A console with the `loopback` test hook is listed too (it counts in the
//! frontend's hvc numbering) but takes neither call: its backend echoes.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use ferry_abi::hypercall::{self, CONSOLE_WRITE_MAX, HypercallStatus};
use spin::Mutex;

use super::console::ConsoleEvent;
use super::effect::Effects;
use super::event::Event;
use super::ioreq::PageMemory;
use super::partition::{LineBuffer, Partition};
use super::system::System;
use super::virtio;

/// Bytes of typed input a virtio console holds for its backend.
pub const INPUT_FIFO: usize = 256;

/// Most virtio consoles Ctrl-\ can name: the letters a to z.
pub const MAX_KEYS: usize = 26;

/// Typed input waiting for the backend.
#[derive(Debug)]
struct InputFifo {
    bytes: [u8; INPUT_FIFO],
    head: usize,
    len: usize,
}

impl InputFifo {
    const fn new() -> InputFifo {
        InputFifo {
            bytes: [0; INPUT_FIFO],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, b: u8) -> bool {
        if self.len == INPUT_FIFO {
            return false;
        }
        self.bytes[(self.head + self.len) % INPUT_FIFO] = b;
        self.len += 1;
        true
    }

    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for o in &mut out[..n] {
            *o = self.bytes[self.head];
            self.head = (self.head + 1) % INPUT_FIFO;
            self.len -= 1;
        }
        n
    }
}

/// What the config makes of a console device (see [`DeviceConsole::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSpec {
    /// The device's route (its index in the config).
    pub route: usize,
    /// hvc`N` in its frontend: its position among the frontend's console
    /// devices (loopback ones included) in `/virtio` order, as Linux numbers them.
    pub hvc: u32,
    /// The `loopback` test hook: the backend echoes, nothing goes through Ferry.
    pub loopback: bool,
    /// The letter Ctrl-\ names it with (real consoles, in `/virtio` order: a, b,
    /// ...); `None` for a loopback one or beyond the 26th.
    pub key: Option<u8>,
    /// Its stream's label: `<frontend label>:hvc<N>`.
    pub label: String,
}

/// A virtio console at run time.
#[derive(Debug)]
pub struct DeviceConsole {
    /// The device's route (index into [`System::virtio`]).
    pub route: usize,
    /// hvc`N` in its frontend.
    pub hvc: u32,
    /// The `loopback` test hook.
    pub loopback: bool,
    /// The letter Ctrl-\ names it with, if any.
    pub key: Option<u8>,
    /// Its stream's label, e.g. `linux:hvc0`.
    pub label: String,
    line: Mutex<LineBuffer>,
    input: Mutex<InputFifo>,
    /// Input is being dropped (its backend is stopped): logged once per stretch.
    dropping: AtomicBool,
}

impl DeviceConsole {
    /// A console with nothing printed or typed yet.
    pub fn new(spec: ConsoleSpec) -> DeviceConsole {
        DeviceConsole {
            route: spec.route,
            hvc: spec.hvc,
            loopback: spec.loopback,
            key: spec.key,
            label: spec.label,
            line: Mutex::new(LineBuffer::new()),
            input: Mutex::new(InputFifo::new()),
            dropping: AtomicBool::new(false),
        }
    }

    /// Typed bytes waiting for the backend.
    pub fn pending_input(&self) -> usize {
        self.input.lock().len
    }

    /// Hands an unfinished output line (a prompt) to `out(text, false)`.
    pub fn flush_partial_line(&self, out: &mut dyn FnMut(&[u8], bool)) {
        self.line.lock().flush_partial(out);
    }
}

/// Which of the two calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `CONSOLE_DEVICE_WRITE`.
    Write,
    /// `CONSOLE_DEVICE_READ`.
    Read,
}

impl Call {
    /// The call's name.
    pub const fn name(self) -> &'static str {
        match self {
            Call::Write => "CONSOLE_DEVICE_WRITE",
            Call::Read => "CONSOLE_DEVICE_READ",
        }
    }
}

/// Why a backend's console call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It serves no device of that number.
    NotServed,
    /// The device is not a console.
    NotConsole,
    /// The console has the `loopback` test hook (the backend echoes).
    Loopback,
    /// A length over [`CONSOLE_WRITE_MAX`].
    Length(u64),
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NotServed => write!(f, "it serves no such device"),
            Refusal::NotConsole => write!(f, "the device is not a console"),
            Refusal::Loopback => write!(f, "the console is a loopback (its backend echoes)"),
            Refusal::Length(n) => write!(f, "length {n} is over {CONSOLE_WRITE_MAX}"),
        }
    }
}

/// The console `backend`'s device `device` names for `call`: refused (logged,
/// rate-limited) unless it serves that device and it is a console without the
/// loopback hook; NOT_SUPPORTED (not logged) from a partition without a request
/// page, as the other backend calls.
fn resolve(
    system: &System,
    backend: &Partition,
    call: Call,
    device: u64,
    fx: &mut Effects,
) -> Result<usize, HypercallStatus> {
    if backend.ioreq.is_none() {
        return Err(HypercallStatus::NotSupported);
    }
    let found = usize::try_from(device)
        .ok()
        .and_then(|d| virtio::served_device(system, backend.id, d))
        .ok_or(Refusal::NotServed)
        .and_then(|route| {
            let c = system.consoles.iter().position(|c| c.route == route);
            c.ok_or(Refusal::NotConsole)
        })
        .and_then(|c| match system.consoles[c].loopback {
            true => Err(Refusal::Loopback),
            false => Ok(c),
        });
    found.map_err(|why| refuse(backend, call, device, why, fx))
}

fn refuse(
    backend: &Partition,
    call: Call,
    device: u64,
    why: Refusal,
    fx: &mut Effects,
) -> HypercallStatus {
    fx.log(Event::Console(ConsoleEvent::DeviceRefused {
        backend: backend.id,
        call,
        device,
        why,
    }));
    HypercallStatus::InvalidParameters
}

/// CONSOLE_DEVICE_WRITE(`device`, `len`, `words`) from `backend`: the bytes go
/// to the console's line; each complete line (or an open one, see
/// [`DeviceConsole::flush_partial_line`]) to `out(console, text, complete)`.
/// Returns the bytes taken.
pub fn device_write(
    system: &System,
    backend: &Partition,
    (device, len, words): (u64, u64, [u64; 3]),
    out: &mut dyn FnMut(usize, &[u8], bool),
    fx: &mut Effects,
) -> Result<usize, HypercallStatus> {
    let c = resolve(system, backend, Call::Write, device, fx)?;
    let mut buf = [0; CONSOLE_WRITE_MAX];
    let Some(bytes) = hypercall::console_bytes(len, words, &mut buf) else {
        return Err(refuse(
            backend,
            Call::Write,
            device,
            Refusal::Length(len),
            fx,
        ));
    };
    system.consoles[c]
        .line
        .lock()
        .write(bytes, &mut |text, complete| out(c, text, complete));
    Ok(bytes.len())
}

/// CONSOLE_DEVICE_READ(`device`) from `backend`: up to [`CONSOLE_WRITE_MAX`]
/// typed bytes, as (count, x1..x3 packed little-endian).
pub fn device_read(
    system: &System,
    backend: &Partition,
    device: u64,
    fx: &mut Effects,
) -> Result<(usize, [u64; 3]), HypercallStatus> {
    let c = resolve(system, backend, Call::Read, device, fx)?;
    let mut buf = [0; CONSOLE_WRITE_MAX];
    let n = system.consoles[c].input.lock().pop_into(&mut buf);
    let (_, words) = hypercall::console_args(&buf[..n]);
    Ok((n, words))
}

/// The backend partition of console `c`.
fn backend_of<'a>(system: &'a System, c: &DeviceConsole) -> Option<&'a Partition> {
    let r = system.virtio.get(c.route)?;
    system.partitions.get(r.backend)
}

/// Whether console `c` can take a typed byte now: room in its FIFO, or a
/// stopped backend (the byte is then dropped).
pub fn has_room(system: &System, c: usize) -> bool {
    let Some(dc) = system.consoles.get(c) else {
        return true;
    };
    match backend_of(system, dc) {
        Some(be) if !be.is_stopped() => dc.input.lock().len < INPUT_FIFO,
        _ => true,
    }
}

/// A typed byte for console `c`: queued for its backend, whose request page
/// gets the device's `console_input` bit and whose doorbell rings; dropped
/// (logged once per stretch) while the backend is stopped.
pub fn input(system: &System, c: usize, byte: u8, mem: &impl PageMemory, fx: &mut Effects) {
    let Some(dc) = system.consoles.get(c) else {
        return;
    };
    let Some(r) = system.virtio.get(dc.route) else {
        return;
    };
    let be = &system.partitions[r.backend];
    let Some(page) = be.ioreq.as_ref().filter(|_| !be.is_stopped()) else {
        if !dc.dropping.swap(true, Ordering::AcqRel) {
            fx.log(Event::Console(ConsoleEvent::InputDropped {
                console: c,
                backend: r.backend,
            }));
        }
        return;
    };
    dc.dropping.store(false, Ordering::Release);
    if dc.input.lock().push(byte) {
        page.signal_console_input(mem, r.backend_index);
        virtio::ring_doorbell(be, page, fx);
    }
}

/// Backend `backend` was restarted: typed input its consoles held for the old
/// run is dropped (the frontend resets the device to use it again).
pub fn backend_restarted(system: &System, backend: usize) {
    for dc in &system.consoles {
        if system
            .virtio
            .get(dc.route)
            .is_some_and(|r| r.backend == backend)
        {
            *dc.input.lock() = InputFifo::new();
            dc.dropping.store(false, Ordering::Release);
        }
    }
}

/// The boot line that says which keys focus which console, e.g. `console
/// input: Ctrl-\ 0 -> 'linux' (PL011), Ctrl-\ a -> 'linux' hvc0 (served by
/// 'be')`; `None` when nothing takes input.
pub fn input_map(system: &System) -> Option<String> {
    let mut targets = String::new();
    let mut add = |what: String| {
        targets.push_str(if targets.is_empty() { "" } else { ", " });
        targets.push_str(&what);
    };
    for p in system.partitions.iter().filter(|p| p.uart.is_some()) {
        add(format!("Ctrl-\\ {} -> '{}' (PL011)", p.id, p.label));
    }
    for dc in &system.consoles {
        let (Some(key), Some(r)) = (dc.key, system.virtio.get(dc.route)) else {
            continue;
        };
        let label = |p: usize| system.partitions.get(p).map_or("?", |p| p.label.as_str());
        add(format!(
            "Ctrl-\\ {} -> '{}' hvc{} (served by '{}')",
            key as char,
            label(r.frontend),
            dc.hvc,
            label(r.backend)
        ));
    }
    (!targets.is_empty()).then(|| {
        format!(
            "console input: {targets}; typed input goes to the first until Ctrl-\\ names another"
        )
    })
}
