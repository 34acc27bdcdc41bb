//! Exceptions Ferry injects into a guest at EL1, as if its own instruction had
//! taken them there: the syndrome and return state in ESR_EL1, ELR_EL1 and
//! SPSR_EL1, and the trap frame redirected to the guest's vector
//! (`state::sysreg::sync_entry` says which vector and with which PSTATE).

use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1, SPSR_EL1, VBAR_EL1};
use ferry_boot::trap::TrapFrame;
use tock_registers::interfaces::{Readable, Writeable};

use crate::state::sysreg::{self, EntryFeatures};

/// Injects a synchronous exception with syndrome `esr` for the instruction at
/// `frame.elr`: the guest resumes at its synchronous vector for where it was.
fn synchronous(frame: &mut TrapFrame, esr: u64, features: EntryFeatures) {
    let entry = sysreg::sync_entry(frame.spsr, SCTLR_EL1.get(), features);
    ESR_EL1.set(esr);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + entry.offset;
    frame.spsr = entry.spsr;
}

/// Makes the instruction at `frame.elr` UNDEFINED for the guest with syndrome
/// `esr` (`state::sysreg::undefined_esr`: EC 0, or 0x18 in the ID space with
/// FEAT_IDST): it takes the exception it would on a core without the register or
/// feature.
pub fn undefined(frame: &mut TrapFrame, esr: u64, features: EntryFeatures) {
    synchronous(frame, esr, features);
}

/// Makes the access at `frame.elr` take a synchronous external abort with
/// syndrome `esr` (`esr::external_abort_for_guest`) and fault address `far`, as a
/// bus error would on hardware: the guest resumes at its vector for where it was.
pub fn external_abort(frame: &mut TrapFrame, esr: u64, far: u64, features: EntryFeatures) {
    FAR_EL1.set(far);
    synchronous(frame, esr, features);
}
