//! Sharing one physical console between consoles that take typed input: the
//! escape sequence. Output needs no decision: every line is prefixed with its
//! console's label.
//!
//! Input goes to one console at a time. Typing the escape character Ctrl-\
//! (0x1c) then a key names the console input goes to next (a digit N: partition
//! N's emulated PL011; a letter: a virtio console; `state::console` decides
//! which keys name something); Ctrl-\ twice sends one Ctrl-\ on.

/// The escape character: Ctrl-\.
pub const ESCAPE: u8 = 0x1c;

/// What one received byte means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Give the byte to the focused console.
    Deliver(u8),
    /// The key after an escape: it may name a console.
    Escaped(u8),
    /// Nothing (the escape character itself, waiting for the next byte).
    Nothing,
}

/// The escape decoder's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mux {
    escaped: bool,
}

impl Mux {
    /// A decoder with no escape in progress.
    pub const fn new() -> Mux {
        Mux { escaped: false }
    }

    /// Decides what `byte` means.
    pub fn feed(&mut self, byte: u8) -> Action {
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
            key => Action::Escaped(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_name_a_key() {
        let mut m = Mux::default();
        assert_eq!(m.feed(b'a'), Action::Deliver(b'a'));
        assert_eq!(m.feed(ESCAPE), Action::Nothing);
        assert_eq!(m.feed(b'2'), Action::Escaped(b'2'));
        assert_eq!(m.feed(b'2'), Action::Deliver(b'2'));
        assert_eq!(m.feed(ESCAPE), Action::Nothing);
        assert_eq!(m.feed(b'a'), Action::Escaped(b'a'));
        assert_eq!(m.feed(ESCAPE), Action::Nothing);
        assert_eq!(m.feed(ESCAPE), Action::Deliver(ESCAPE));
        assert_eq!(m.feed(b'x'), Action::Deliver(b'x'));
    }
}
