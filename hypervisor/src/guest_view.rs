//! What each core's partition sees of it: the core's ID registers, read at EL2
//! when its vCPU starts, sanitised by the state layer (`state::idregs`,
//! `state::sysreg::GuestView`) and kept per core for the traps that answer from
//! them (`sysreg_trap`).

use ferry_platform::MAX_CPUS;
use spin::Mutex;

use crate::state::idregs::IdSpace;
use crate::state::sysreg::GuestView;
use crate::{cpu, stage2};

/// Each core's guest view, set when its vCPU starts.
static VIEWS: [Mutex<Option<GuestView>>; MAX_CPUS] = [const { Mutex::new(None) }; MAX_CPUS];

/// Reads one ID register, `s3_0_c0_c<crm>_<op2>`, into `ids`.
macro_rules! read_id {
    ($ids:ident, $crm:literal, $($op2:literal)*) => {$(
        let v: u64;
        // SAFETY: reads an ID register at EL2 (allocated, or RAZ in the ID space).
        unsafe {
            core::arch::asm!(
                concat!("mrs {}, s3_0_c0_c", $crm, "_", $op2),
                out(reg) v,
                options(nomem, nostack)
            )
        };
        $ids[$crm * 8 + $op2] = v;
    )*};
}

/// The calling core's ID space (CRm 1..7; CRm 0 is left 0) and its REVIDR_EL1 and
/// AIDR_EL1, as EL2 reads them: what the core implements.
pub fn read_ids() -> (IdSpace, u64, u64) {
    let mut ids = [0u64; 64];
    read_id!(ids, 1, 0 1 2 3 4 5 6 7);
    read_id!(ids, 2, 0 1 2 3 4 5 6 7);
    read_id!(ids, 3, 0 1 2 3 4 5 6 7);
    read_id!(ids, 4, 0 1 2 3 4 5 6 7);
    read_id!(ids, 5, 0 1 2 3 4 5 6 7);
    read_id!(ids, 6, 0 1 2 3 4 5 6 7);
    read_id!(ids, 7, 0 1 2 3 4 5 6 7);
    let (revidr, aidr): (u64, u64);
    // SAFETY: reads REVIDR_EL1 and AIDR_EL1.
    unsafe {
        core::arch::asm!(
            "mrs {}, revidr_el1",
            "mrs {}, aidr_el1",
            out(reg) revidr,
            out(reg) aidr,
            options(nomem, nostack)
        )
    };
    (IdSpace(ids), revidr, aidr)
}

/// Records what the calling core's partition sees of a core whose ID space is
/// `ids`.
pub fn set(ids: &IdSpace, revidr: u64, aidr: u64) {
    let view = GuestView::new(ids, revidr, aidr, stage2::IPA_BITS);
    *VIEWS[cpu::index()].lock() = Some(view);
}

/// The calling core's guest view (read now if its vCPU start has not set it).
pub fn get() -> GuestView {
    if let Some(view) = *VIEWS[cpu::index()].lock() {
        return view;
    }
    let (ids, revidr, aidr) = read_ids();
    set(&ids, revidr, aidr);
    GuestView::new(&ids, revidr, aidr, stage2::IPA_BITS)
}
