// EL2 exception vectors.
//
// Every entry saves the interrupted context as a `TrapFrame` on the current EL2
// stack, calls `ferry_trap(kind, &mut frame)` (kind = the vector's index, 0..16),
// then restores the (possibly modified) frame and returns with `eret`.

.macro VECTOR kind
    .balign 0x80
    sub     sp, sp, #{FRAME_SIZE}
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

.section .text.vectors, "ax"
.balign 2048
.global ferry_vectors
ferry_vectors:
    VECTOR 0    // current EL, SP_EL0: synchronous
    VECTOR 1    //                     IRQ
    VECTOR 2    //                     FIQ
    VECTOR 3    //                     SError
    VECTOR 4    // current EL, SP_ELx: synchronous
    VECTOR 5    //                     IRQ
    VECTOR 6    //                     FIQ
    VECTOR 7    //                     SError
    VECTOR 8    // lower EL, AArch64:  synchronous
    VECTOR 9    //                     IRQ
    VECTOR 10   //                     FIQ
    VECTOR 11   //                     SError
    VECTOR 12   // lower EL, AArch32:  synchronous
    VECTOR 13   //                     IRQ
    VECTOR 14   //                     FIQ
    VECTOR 15   //                     SError

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x30, x2, [sp, #{FRAME_X30}]
    str     x3, [sp, #{FRAME_SPSR}]
    mov     x1, sp
    bl      ferry_trap
    // Restores the frame at sp and returns to it: the end of every trap, and the
    // start of a vCPU (ferry_enter_guest).
restore_and_eret:
    ldp     x30, x2, [sp, #{FRAME_X30}]
    ldr     x3, [sp, #{FRAME_SPSR}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #{FRAME_SIZE}
    eret

// ferry_enter_guest(frame: *const TrapFrame, stack_top) -> !
// Starts a vCPU: resets SP_EL2 to the core's stack top (nothing above it is live),
// copies `frame` (x0..x30, ELR, SPSR) just below it and erets through the common
// restore sequence.
.global ferry_enter_guest
ferry_enter_guest:
    mov     sp, x1
    sub     sp, sp, #{FRAME_SIZE}
    mov     x2, sp
    mov     x3, #({FRAME_SIZE} / 16)
1:  ldp     x4, x5, [x0], #16
    stp     x4, x5, [x2], #16
    subs    x3, x3, #1
    b.ne    1b
    b       restore_and_eret

// ferry_restart_on_stack(stack_top, f: extern "C" fn() -> !) -> !
// Abandons everything on the current EL2 stack and calls `f` on a fresh one.
.global ferry_restart_on_stack
ferry_restart_on_stack:
    mov     sp, x0
    mov     x29, xzr
    mov     x30, xzr
    br      x1
