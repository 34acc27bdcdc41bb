//! The frame the EL2 vectors save, and which vector was taken.

/// The interrupted context, saved by `vectors.S` on the EL2 stack.
///
/// The layout is shared with assembly: `x[30]` and `elr` are stored as a pair, so
/// `elr` must follow `x` directly. Checked at compile time below.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the exception was taken (and where `eret` returns).
    pub elr: u64,
    /// SPSR_EL2: the interrupted PSTATE.
    pub spsr: u64,
    /// Keeps the frame a multiple of 16 bytes (AArch64 stack alignment).
    pub _pad: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 272);
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 31 * 8);
const _: () = assert!(core::mem::offset_of!(TrapFrame, spsr) == 32 * 8);

/// Where the exception came from (the vector-table quarter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// EL2 itself, running on SP_EL0 (Ferry never does: always a bug).
    CurrentElSp0,
    /// EL2 itself, running on SP_EL2.
    CurrentElSpx,
    /// A guest at EL1/EL0 in AArch64.
    LowerElAarch64,
    /// A guest at EL1/EL0 in AArch32 (Ferry does not run AArch32 guests).
    LowerElAarch32,
}

/// The kind of exception (the entry within the quarter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Synchronous: ESR_EL2 says why.
    Synchronous,
    /// IRQ.
    Irq,
    /// FIQ.
    Fiq,
    /// SError (asynchronous abort).
    SError,
}

/// A decoded vector index (0..16), as passed to `ferry_trap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    /// Where from.
    pub origin: Origin,
    /// What.
    pub kind: Kind,
}

impl Vector {
    /// Decodes the index the vector stub passes; `None` outside 0..16.
    pub fn from_index(index: u64) -> Option<Vector> {
        let origin = match index / 4 {
            0 => Origin::CurrentElSp0,
            1 => Origin::CurrentElSpx,
            2 => Origin::LowerElAarch64,
            3 => Origin::LowerElAarch32,
            _ => return None,
        };
        let kind = match index % 4 {
            0 => Kind::Synchronous,
            1 => Kind::Irq,
            2 => Kind::Fiq,
            _ => Kind::SError,
        };
        Some(Vector { origin, kind })
    }

    /// A short human-readable name, e.g. "synchronous from EL2 (SP_EL2)".
    pub fn describe(&self) -> (&'static str, &'static str) {
        let kind = match self.kind {
            Kind::Synchronous => "synchronous",
            Kind::Irq => "IRQ",
            Kind::Fiq => "FIQ",
            Kind::SError => "SError",
        };
        let origin = match self.origin {
            Origin::CurrentElSp0 => "EL2 (SP_EL0)",
            Origin::CurrentElSpx => "EL2 (SP_EL2)",
            Origin::LowerElAarch64 => "a lower EL (AArch64)",
            Origin::LowerElAarch32 => "a lower EL (AArch32)",
        };
        (kind, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_sixteen_vectors() {
        assert_eq!(
            Vector::from_index(5),
            Some(Vector {
                origin: Origin::CurrentElSpx,
                kind: Kind::Irq
            })
        );
        assert_eq!(
            Vector::from_index(8),
            Some(Vector {
                origin: Origin::LowerElAarch64,
                kind: Kind::Synchronous
            })
        );
        assert_eq!(
            Vector::from_index(15),
            Some(Vector {
                origin: Origin::LowerElAarch32,
                kind: Kind::SError
            })
        );
        assert_eq!(Vector::from_index(16), None);
        assert_eq!(
            Vector::from_index(4).unwrap().describe(),
            ("synchronous", "EL2 (SP_EL2)")
        );
    }
}
