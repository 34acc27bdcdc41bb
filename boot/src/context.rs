//! Leaving EL2 for a guest, and starting over on a clean EL2 stack.

use crate::trap::TrapFrame;

#[cfg(target_os = "none")]
unsafe extern "C" {
    fn ferry_enter_guest(frame: *const TrapFrame, stack_top: u64) -> !;
    fn ferry_restart_on_stack(stack_top: u64, f: extern "C" fn() -> !) -> !;
}

/// Enters the guest context in `frame` (x0..x30, ELR = entry, SPSR = target EL and
/// mask bits) with `eret`, after resetting SP_EL2 to `stack_top` and copying the
/// frame just below it.
///
/// # Safety
/// The EL1 and stage-2 state for the guest must be set up; `frame` must not live on
/// the stack being reset (it is copied onto it) and nothing on that stack may be
/// live.
#[cfg(target_os = "none")]
pub unsafe fn enter_guest(frame: &TrapFrame, stack_top: u64) -> ! {
    // SAFETY: the caller guarantees the guest state and that no live data remains
    // on the EL2 stack.
    unsafe { ferry_enter_guest(frame, stack_top) }
}

/// Drops everything on the current EL2 stack and runs `f` from `stack_top`.
///
/// # Safety
/// `stack_top` must be this CPU's own EL2 stack top, and nothing on that stack may
/// be referenced again (no destructors run).
#[cfg(target_os = "none")]
pub unsafe fn restart_on_stack(stack_top: u64, f: extern "C" fn() -> !) -> ! {
    // SAFETY: as the caller guarantees.
    unsafe { ferry_restart_on_stack(stack_top, f) }
}

/// SPSR_EL2 for entering a guest at EL1h with D, A, I and F masked (the Linux
/// arm64 boot protocol).
pub const SPSR_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;

/// A frame that starts a vCPU at `entry` with `x0` = `arg` and all else zero.
pub fn guest_start_frame(entry: u64, arg: u64) -> TrapFrame {
    let mut frame = TrapFrame {
        elr: entry,
        spsr: SPSR_EL1H_MASKED,
        ..TrapFrame::default()
    };
    frame.x[0] = arg;
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_frame() {
        let f = guest_start_frame(0x4000_0000, 0x407f_0000);
        assert_eq!(f.elr, 0x4000_0000);
        assert_eq!(f.x[0], 0x407f_0000);
        assert!(f.x[1..].iter().all(|&r| r == 0));
        assert_eq!(f.spsr, 0x3c5);
    }
}
