//! Ending a run: semihosting SYS_EXIT under QEMU, PSCI on hardware.

/// Ends the whole system with `code` (0 = success) and never returns.
///
/// Boards with `semihosting_exit` use SYS_EXIT (QEMU must run with `-semihosting`,
/// otherwise the HLT traps as an undefined instruction). Others call PSCI
/// SYSTEM_OFF for 0 and SYSTEM_RESET otherwise.
#[cfg(all(target_os = "none", any(feature = "qemu-virt", feature = "imx8mp-evk")))]
pub fn end_run(code: u32) -> ! {
    use crate::psci;
    use qemu_exit::QEMUExit;
    if crate::board::BOARD.semihosting_exit {
        qemu_exit::AArch64::new().exit(code);
    }
    let function = if code == 0 {
        psci::function::SYSTEM_OFF
    } else {
        psci::function::SYSTEM_RESET
    };
    psci::call(psci::Method::Smc, function, 0, 0, 0);
    loop {
        aarch64_cpu::asm::wfe();
    }
}
