//! Entry code: the arm64 Image header, the primary and secondary entry points, the
//! exception vectors, and the Rust functions they call. See the crate docs for the
//! sequence every vCPU runs.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use crate::dt::{Boot, MAX_DTB};
use crate::{MAX_VCPUS, STACK_SIZE, arch, console, mmu, psci};

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (Documentation/arch/arm64/booting.rst): a raw binary that
       U-Boot `booti` and QEMU `-kernel` also accept. */
    b       0f                      /* code0 */
    .word   0                       /* code1 */
    .quad   0                       /* text_offset: at a 2 MiB boundary */
    .quad   __image_size            /* image_size, .bss and stacks included */
    .quad   0x2                     /* flags: little-endian, 4 KiB pages */
    .quad   0, 0, 0
    .ascii  "ARM\x64"               /* magic */
    .word   0
0:  mov     x19, x0                 /* the DTB */
    mov     x20, #1                 /* primary */
    b       __rt_common

    .text
    .global __rt_secondary_entry
    .balign 8
__rt_secondary_entry:
    mov     x19, x0                 /* context_id */
    mov     x20, #0

__rt_common:
    msr     daifset, #0xf
    mrs     x21, mpidr_el1
    and     x21, x21, #0xff         /* vCPU index = Aff0 */
    cmp     x21, #{max_vcpus}
    b.hs    __rt_park

    adrp    x0, __rt_stacks
    add     x0, x0, :lo12:__rt_stacks
    add     x1, x21, #1
    mov     x2, #{stack_size}
    madd    x0, x1, x2, x0          /* top of this vCPU's stack */
    mov     sp, x0

    mov     x0, #(3 << 20)          /* CPACR_EL1.FPEN = 0b11: FP/SIMD at EL1 */
    msr     cpacr_el1, x0

    adrp    x0, __rt_vectors
    add     x0, x0, :lo12:__rt_vectors
    msr     vbar_el1, x0
    isb

    /* Stage-1 identity map, caches on (see mmu.rs). */
    ldr     x0, ={mair}
    msr     mair_el1, x0
    ldr     x0, ={tcr}
    msr     tcr_el1, x0
    adrp    x0, __rt_l1_table
    add     x0, x0, :lo12:__rt_l1_table
    msr     ttbr0_el1, x0
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    ldr     x0, ={sctlr}
    msr     sctlr_el1, x0
    isb

    cbz     x20, 2f
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       1b
3:  mov     x0, x19
    bl      __rt_primary_rust
    b       __rt_park

2:  mov     x0, x19
    mov     x1, x21
    bl      __rt_secondary_rust

    .global __rt_park
__rt_park:
    wfe
    b       __rt_park
    .ltorg

    /* Exception vectors: every entry reports and resets, except an IRQ from EL1h
       (the guest's own code), which goes to the registered handler (irq.rs). */
    .section .text.vectors, "ax"
    .balign 0x800
__rt_vectors:
    .irp    kind, 0,1,2,3
    .balign 0x80
    mov     x0, #\kind
    b       __rt_vector_common
    .endr
    .balign 0x80
    b       __rt_sync_entry         /* 4: synchronous, current EL with SP_ELx */
    .balign 0x80
    b       __rt_irq_entry          /* 5: IRQ, current EL with SP_ELx */
    .irp    kind, 6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    mov     x0, #\kind
    b       __rt_vector_common
    .endr
__rt_vector_common:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      __rt_exception_rust
    b       __rt_park

    /* IRQ or synchronous exception from EL1h: save what a Rust call may change
       (x0-x18, x29, x30, ELR, SPSR, FPCR, FPSR, q0-q31: the interrupted code may be
       using any of them), call __rt_irq_rust(kind, ESR, ELR, FAR, frame), restore,
       ERET. {irq_frame} bytes of this vCPU's stack; the kind sits in its padding. */
__rt_sync_entry:
    sub     sp, sp, #{irq_frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #4
    str     x0, [sp, #200]
    b       __rt_save_rest
__rt_irq_entry:
    sub     sp, sp, #{irq_frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #5
    str     x0, [sp, #200]
__rt_save_rest:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #160]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #176]
    mrs     x0, fpsr
    str     x0, [sp, #192]
    add     x0, sp, #208
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    ldr     x0, [sp, #200]
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    mov     x4, sp
    bl      __rt_irq_rust
    add     x0, sp, #208
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x0, [sp, #192]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #176]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{irq_frame}
    eret

    .section .stacks, "aw", %nobits
    .balign 16
__rt_stacks:
    .space  {stacks_bytes}
"#,
    max_vcpus = const MAX_VCPUS,
    stack_size = const STACK_SIZE,
    stacks_bytes = const MAX_VCPUS * STACK_SIZE,
    irq_frame = const IRQ_FRAME,
    mair = const mmu::MAIR,
    tcr = const mmu::TCR,
    sctlr = const mmu::SCTLR,
);

/// Stack bytes the IRQ entry saves: 26 general and control registers (x0-x18, x29,
/// x30, ELR, SPSR, FPCR, FPSR, the exception kind) and 32 128-bit vector registers.
const IRQ_FRAME: usize = 26 * 8 + 32 * 16;
const _: () = assert!(IRQ_FRAME.is_multiple_of(16) && IRQ_FRAME == 720);

unsafe extern "Rust" {
    /// The guest's main, defined with [`crate::entry!`].
    fn __ferry_guest_main(boot: &'static Boot) -> !;
}

#[repr(C, align(8))]
struct DtbBuf([u8; MAX_DTB]);

static mut DTB_COPY: DtbBuf = DtbBuf([0; MAX_DTB]);
static mut BOOT: MaybeUninit<Boot> = MaybeUninit::uninit();

/// vCPU 0, MMU on, `.bss` zeroed: reads the DTB and runs the guest's main.
#[unsafe(no_mangle)]
extern "C" fn __rt_primary_rust(dtb: usize) -> ! {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        crate::fail!("runtime: no usable DTB address in x0 ({dtb:#x})");
    }
    // The handed-over DTB may have up to MAX_DTB_SIZE bytes (QEMU pads its own to
    // 1 MiB); the NOP-free copy, free space dropped, must fit in MAX_DTB.
    // SAFETY: the boot protocol hands over a DTB at `dtb`; only its header is read.
    let header = unsafe { crate::dt::read_header(dtb) };
    let total = ferry_abi::dtb::total_size(&header)
        .unwrap_or_else(|e| crate::fail!("runtime: DTB at {dtb:#x}: {e}"));
    // SAFETY: the boot protocol promises `total` bytes of DTB at `dtb`.
    let src = unsafe { core::slice::from_raw_parts(dtb as *const u8, total) };
    // SAFETY: only vCPU 0 runs this, once, before any other vCPU is started.
    let copy: &'static mut [u8; MAX_DTB] = unsafe { &mut (*addr_of_mut!(DTB_COPY)).0 };
    let len = ferry_abi::dtb::copy_without_nops(src, copy)
        .unwrap_or_else(|e| crate::fail!("runtime: DTB at {dtb:#x}: {e}"));
    let blob: &'static [u8] = &copy[..len];
    let boot =
        Boot::parse(dtb, blob).unwrap_or_else(|e| crate::fail!("runtime: DTB at {dtb:#x}: {e}"));
    match boot.psci_method() {
        Some("smc") => psci::set_conduit(psci::Conduit::Smc),
        _ => psci::set_conduit(psci::Conduit::Hvc),
    }
    // SAFETY: as above: one writer, before anyone reads.
    let boot: &'static Boot = unsafe { (*addr_of_mut!(BOOT)).write(boot) };
    // SAFETY: defined by the guest with `entry!`, with this signature.
    unsafe { __ferry_guest_main(boot) }
}

/// A secondary vCPU, MMU on: runs the function [`psci::cpu_on`] registered for it.
#[unsafe(no_mangle)]
extern "C" fn __rt_secondary_rust(context_id: u64, index: usize) -> ! {
    match psci::secondary_fn(index) {
        Some(f) => f(context_id),
        None => {
            console::print_last_words(format_args!(
                "runtime: vCPU {index} started (context {context_id:#x}) with no function \
                 registered; CPU_OFF\n"
            ));
            let r = psci::cpu_off();
            crate::fail!("runtime: CPU_OFF on vCPU {index} returned {r}")
        }
    }
}

const KINDS: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
const FROM: [&str; 4] = ["EL1t", "EL1h", "EL0 (AArch64)", "EL0 (AArch32)"];

/// Every exception but a handled IRQ: report and reset.
#[unsafe(no_mangle)]
extern "C" fn __rt_exception_rust(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    report_exception(kind, esr, elr, far)
}

/// Prints `guest exception on vCPU <k>: <kind> from <EL>: ESR_EL1=…` and resets.
pub(crate) fn report_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    let k = kind as usize;
    console::print_last_words(format_args!(
        "guest exception on vCPU {}: {} from {}: ESR_EL1={esr:#x} (EC {:#x}) ELR_EL1={elr:#x} \
         FAR_EL1={far:#x}\n",
        arch::vcpu_index(),
        KINDS[k % 4],
        FROM[(k / 4) % 4],
        esr >> 26,
    ));
    psci::system_reset()
}
