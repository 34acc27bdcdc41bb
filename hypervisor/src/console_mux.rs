//! Sharing one physical console between partitions: which partition gets typed
//! input. Output needs no decision: every line is prefixed with its partition's
//! label.
//!
//! Input goes to one partition at a time (those with an emulated PL011). Typing
//! the escape character Ctrl-\ (0x1c) then a digit N gives the input to partition N;
//! Ctrl-\ twice sends one Ctrl-\ on; Ctrl-\ then anything else is dropped.

/// The escape character: Ctrl-\.
pub const ESCAPE: u8 = 0x1c;

/// What to do with one received byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Give the byte to the focused partition.
    Deliver(u8),
    /// Input now goes to this partition.
    Focus(usize),
    /// An escape that named no partition that takes input: say which ones do.
    BadEscape(u8),
    /// Nothing (the escape character itself, waiting for the next byte).
    Nothing,
}

/// The input multiplexer's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mux {
    escaped: bool,
}

impl Mux {
    /// A multiplexer with no escape in progress.
    pub const fn new() -> Mux {
        Mux { escaped: false }
    }

    /// Decides what `byte` means; `takes_input(n)` says whether partition n has a
    /// console that takes input.
    pub fn feed(&mut self, byte: u8, takes_input: impl Fn(usize) -> bool) -> Action {
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Action::Nothing;
            }
            return Action::Deliver(byte);
        }
        self.escaped = false;
        match byte {
            ESCAPE => Action::Deliver(ESCAPE),
            b'0'..=b'9' if takes_input((byte - b'0') as usize) => {
                Action::Focus((byte - b'0') as usize)
            }
            other => Action::BadEscape(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_switch_focus() {
        let mut m = Mux::default();
        let only_0_and_2 = |n: usize| n == 0 || n == 2;
        assert_eq!(m.feed(b'a', only_0_and_2), Action::Deliver(b'a'));
        assert_eq!(m.feed(ESCAPE, only_0_and_2), Action::Nothing);
        assert_eq!(m.feed(b'2', only_0_and_2), Action::Focus(2));
        assert_eq!(m.feed(b'2', only_0_and_2), Action::Deliver(b'2'));
        assert_eq!(m.feed(ESCAPE, only_0_and_2), Action::Nothing);
        assert_eq!(m.feed(b'1', only_0_and_2), Action::BadEscape(b'1'));
        assert_eq!(m.feed(ESCAPE, only_0_and_2), Action::Nothing);
        assert_eq!(m.feed(ESCAPE, only_0_and_2), Action::Deliver(ESCAPE));
        assert_eq!(m.feed(b'x', only_0_and_2), Action::Deliver(b'x'));
    }
}
