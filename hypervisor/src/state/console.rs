//! Typed console input: which partition gets it, and when the console may be read.
//!
//! Input waits in the physical UART while the focused partition's emulated PL011
//! has no room, so nothing typed is dropped when a guest reads slowly.

use super::effect::Effects;
use super::event::Event;
use super::system::System;
use crate::console_mux::{Action, Mux};

/// The input multiplexer and the partition input goes to.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsoleRouter {
    mux: Mux,
    focus: Option<usize>,
}

impl ConsoleRouter {
    /// No focus yet: the first byte picks the first partition that takes input.
    pub const fn new() -> ConsoleRouter {
        ConsoleRouter {
            mux: Mux::new(),
            focus: None,
        }
    }

    /// The partition input goes to, once one has been chosen.
    pub fn focus(&self) -> Option<usize> {
        self.focus
    }

    /// Whether the partition input goes to has room for another byte (with no
    /// focus yet, the first byte picks one).
    pub fn has_room(&self, system: &System) -> bool {
        match self
            .focus
            .and_then(|n| system.partitions.get(n))
            .and_then(|p| p.uart.as_ref())
        {
            Some(uart) => uart.device.lock().rx_space() > 0,
            None => true,
        }
    }

    /// Routes one typed byte: to the focused partition's emulated UART, or as a
    /// focus switch (Ctrl-\ N).
    pub fn input(&mut self, system: &System, byte: u8) -> Effects {
        let mut fx = Effects::new();
        let takes = |n: usize| {
            system
                .partitions
                .get(n)
                .is_some_and(|p| p.uart.is_some() && !p.is_stopped())
        };
        if self.focus.is_none() {
            self.focus = (0..system.partitions.len()).find(|&n| takes(n));
        }
        match self.mux.feed(byte, takes) {
            Action::Deliver(b) => {
                let Some(p) = self.focus.and_then(|n| system.partitions.get(n)) else {
                    return fx;
                };
                if let Some(uart) = &p.uart {
                    let level = {
                        let mut device = uart.device.lock();
                        device.receive(b);
                        device.irq_level()
                    };
                    p.uart_irq(uart, level, usize::MAX, &mut fx);
                }
            }
            Action::Focus(n) => {
                self.focus = Some(n);
                fx.log(Event::ConsoleFocus { partition: n });
            }
            Action::BadEscape(_) => fx.log(Event::ConsoleBadEscape),
            Action::Nothing => {}
        }
        fx
    }
}
