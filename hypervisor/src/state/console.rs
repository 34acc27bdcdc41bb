//! Typed console input: which console gets it, and when the physical console may
//! be read.
//!
//! The consoles that take input are the partitions' emulated PL011s (Ctrl-\ N:
//! partition N's) and the virtio consoles without the loopback hook (Ctrl-\ a,
//! b, ...: `hvc`, in `/virtio` order). Input waits in the physical UART while
//! the focused console has no room, so nothing typed is dropped when a guest
//! reads slowly (a virtio console whose backend is stopped drops it, logged).

use core::fmt;

use super::effect::Effects;
use super::event::Event;
use super::hvc::{self, Call, Refusal};
use super::ioreq::PageMemory;
use super::system::System;
use crate::console_mux::{Action, Mux};

/// A console that takes typed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Partition n's emulated PL011.
    Pl011(usize),
    /// Virtio console n (index into [`System::consoles`]).
    Device(usize),
}

/// The input multiplexer and the console input goes to.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsoleRouter {
    mux: Mux,
    focus: Option<Target>,
}

impl ConsoleRouter {
    /// No focus yet: the first byte picks the first console that takes input
    /// (PL011s first).
    pub const fn new() -> ConsoleRouter {
        ConsoleRouter {
            mux: Mux::new(),
            focus: None,
        }
    }

    /// The console input goes to, once one has been chosen.
    pub fn focus(&self) -> Option<Target> {
        self.focus
    }

    /// Whether the console input goes to has room for another byte (with no
    /// focus yet, the first byte picks one).
    pub fn has_room(&self, system: &System) -> bool {
        match self.focus {
            Some(Target::Pl011(n)) => system
                .partitions
                .get(n)
                .and_then(|p| p.uart.as_ref())
                .is_none_or(|uart| uart.device.lock().rx_space() > 0),
            Some(Target::Device(c)) => hvc::has_room(system, c),
            None => true,
        }
    }

    /// Routes one typed byte: to the focused console, or as a focus switch
    /// (Ctrl-\ then a digit or a letter).
    pub fn input(&mut self, system: &System, byte: u8, mem: &impl PageMemory) -> Effects {
        let mut fx = Effects::new();
        if self.focus.is_none() {
            self.focus = first(system);
        }
        match self.mux.feed(byte) {
            Action::Deliver(b) => match self.focus {
                Some(Target::Pl011(n)) => deliver_pl011(system, n, b, &mut fx),
                Some(Target::Device(c)) => hvc::input(system, c, b, mem, &mut fx),
                None => {}
            },
            Action::Escaped(key) => match named(system, key) {
                Some(t) => {
                    self.focus = Some(t);
                    fx.log(Event::Console(match t {
                        Target::Pl011(partition) => ConsoleEvent::Focus { partition },
                        Target::Device(console) => ConsoleEvent::FocusDevice { console },
                    }));
                }
                None => fx.log(Event::Console(ConsoleEvent::BadEscape)),
            },
            Action::Nothing => {}
        }
        fx
    }
}

/// Whether `t` takes input: a PL011 of a running partition, or a virtio console
/// without the loopback hook whose frontend runs.
fn takes(system: &System, t: Target) -> bool {
    match t {
        Target::Pl011(n) => system
            .partitions
            .get(n)
            .is_some_and(|p| p.uart.is_some() && !p.is_stopped()),
        Target::Device(c) => system.consoles.get(c).is_some_and(|dc| {
            let fe = system.virtio.get(dc.route).map(|r| r.frontend);
            !dc.loopback && fe.is_some_and(|f| !system.partitions[f].is_stopped())
        }),
    }
}

/// The first console that takes input: PL011s in partition order, then virtio
/// consoles.
fn first(system: &System) -> Option<Target> {
    let pl011s = (0..system.partitions.len()).map(Target::Pl011);
    let devices = (0..system.consoles.len()).map(Target::Device);
    pl011s.chain(devices).find(|&t| takes(system, t))
}

/// The console Ctrl-\ `key` names, if it takes input.
fn named(system: &System, key: u8) -> Option<Target> {
    let t = match key {
        b'0'..=b'9' => Target::Pl011(usize::from(key - b'0')),
        _ => Target::Device(system.consoles.iter().position(|c| c.key == Some(key))?),
    };
    takes(system, t).then_some(t)
}

/// A typed byte into partition `n`'s emulated PL011.
fn deliver_pl011(system: &System, n: usize, b: u8, fx: &mut Effects) {
    let Some(p) = system.partitions.get(n) else {
        return;
    };
    if let Some(uart) = &p.uart {
        let level = {
            let mut device = uart.device.lock();
            device.receive(b);
            device.irq_level()
        };
        p.uart_irq(uart, level, usize::MAX, fx);
    }
}

/// Log lines of the consoles: focus switches, refused escapes, dropped input and
/// refused virtio console calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// Typed input now goes to this partition's PL011.
    Focus {
        /// The partition.
        partition: usize,
    },
    /// Typed input now goes to this virtio console.
    FocusDevice {
        /// Index into [`System::consoles`].
        console: usize,
    },
    /// An escape that named no console taking input.
    BadEscape,
    /// Input for a virtio console was dropped: its backend is stopped.
    InputDropped {
        /// Index into [`System::consoles`].
        console: usize,
        /// Its backend.
        backend: usize,
    },
    /// A backend's CONSOLE_DEVICE_WRITE or CONSOLE_DEVICE_READ was refused.
    DeviceRefused {
        /// The backend.
        backend: usize,
        /// Which call.
        call: Call,
        /// The device number it named.
        device: u64,
        /// Why.
        why: Refusal,
    },
}

impl ConsoleEvent {
    /// The partition whose budget limits the line (`Event::offender`): the
    /// backend of a refused call or of a console whose input is dropped.
    pub fn offender(&self) -> Option<usize> {
        match *self {
            ConsoleEvent::DeviceRefused { backend, .. }
            | ConsoleEvent::InputDropped { backend, .. } => Some(backend),
            ConsoleEvent::Focus { .. }
            | ConsoleEvent::FocusDevice { .. }
            | ConsoleEvent::BadEscape => None,
        }
    }

    /// The log level it is written at.
    pub fn level(&self) -> log::Level {
        match self {
            ConsoleEvent::DeviceRefused { .. } | ConsoleEvent::InputDropped { .. } => {
                log::Level::Warn
            }
            _ => log::Level::Info,
        }
    }

    /// Writes the line, with `system`'s names.
    pub fn show(&self, system: &System, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = |p: usize| system.partitions.get(p).map_or("?", |p| p.label.as_str());
        let device = |c: usize| {
            let dc = system.consoles.get(c);
            let r = dc.and_then(|dc| system.virtio.get(dc.route));
            let (fe, be) = r.map_or((usize::MAX, usize::MAX), |r| (r.frontend, r.backend));
            (label(fe), dc.map_or(0, |dc| dc.hvc), label(be))
        };
        match *self {
            ConsoleEvent::Focus { partition } => {
                write!(f, "console: input goes to partition '{}'", label(partition))
            }
            ConsoleEvent::FocusDevice { console } => {
                let (fe, hvc, be) = device(console);
                write!(
                    f,
                    "console: input goes to '{fe}' hvc{hvc} (served by '{be}')"
                )
            }
            ConsoleEvent::BadEscape => write!(
                f,
                "console: Ctrl-\\ then the number of a partition with a PL011 console or the letter of a virtio console switches input"
            ),
            ConsoleEvent::InputDropped { console, .. } => {
                let (fe, hvc, be) = device(console);
                write!(
                    f,
                    "console: input for '{fe}' hvc{hvc} dropped: its backend '{be}' is stopped"
                )
            }
            ConsoleEvent::DeviceRefused {
                backend,
                call,
                device,
                why,
            } => write!(
                f,
                "backend '{}': {}(device {device}) refused: {why}",
                label(backend),
                call.name()
            ),
        }
    }
}
