// Ferry's first instructions.
//
// The image starts with a Linux arm64 Image header
// (Documentation/arch/arm64/booting.rst), so QEMU `-kernel` and U-Boot `booti`
// load it at (RAM base + text_offset) and enter it at EL2 with x0 = DTB, MMU off.
// Everything before `ferry_primary_entry` uses PC-relative addressing only, so a
// wrong load address is detected and reported instead of crashing.

.set HCR_EL2_BOOT, (1 << 31) | (1 << 5) | (1 << 4) | (1 << 3)

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry               // code0
    .long   0                           // code1
    .quad   FERRY_TEXT_OFFSET           // text_offset (from the board's board.ld)
    .quad   __image_size                // image_size: includes .bss
    .quad   0x2                         // flags: little-endian, 4 KiB pages, 2 MiB-aligned base
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .byte   0x41, 0x52, 0x4d, 0x64      // magic "ARM\x64" at offset 0x38
    .long   0                           // res5

.section .text.boot, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                     // DTB physical address
    mrs     x20, CurrentEL
    ubfx    x20, x20, #2, #2            // exception level
    adr     x21, _start
    ldr     x9, =_start
    sub     x21, x21, x9                // load delta: where we run minus where we are linked

    // Clear .bss (contains the primary stack and the boot page tables).
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    stp     xzr, xzr, [x9], #16
    b       1b
2:
    adrp    x9, __primary_stack_top
    add     x9, x9, :lo12:__primary_stack_top
    mov     sp, x9

    cmp     x20, #2
    b.ne    3f
    adrp    x9, ferry_vectors
    add     x9, x9, :lo12:ferry_vectors
    msr     vbar_el2, x9
    // HCR_EL2: RW (EL1 is AArch64), E2H = 0, and physical IRQ, FIQ and SError
    // routed to EL2 (IMO, FMO, AMO): without them they target EL1 and are never
    // taken while a core runs at EL2.
    ldr     x9, =HCR_EL2_BOOT
    msr     hcr_el2, x9
    msr     tpidr_el2, xzr              // logical CPU index 0
    isb
3:
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    bl      ferry_primary_entry
4:  wfe
    b       4b
    .ltorg

// Secondary CPUs arrive here from PSCI CPU_ON, MMU off, with x0 = context_id =
// the physical address of their `SecondaryBoot` record (cleaned to PoC by the
// primary). The record carries the primary's EL2 translation settings.
.global ferry_secondary_start
ferry_secondary_start:
    msr     daifset, #0xf
    adrp    x9, ferry_vectors
    add     x9, x9, :lo12:ferry_vectors
    msr     vbar_el2, x9
    ldr     x9, =HCR_EL2_BOOT
    msr     hcr_el2, x9
    ldr     x9, [x0, #{SB_MAIR}]
    msr     mair_el2, x9
    ldr     x9, [x0, #{SB_TCR}]
    msr     tcr_el2, x9
    ldr     x9, [x0, #{SB_TTBR0}]
    msr     ttbr0_el2, x9
    ldr     x9, [x0, #{SB_CPU_INDEX}]
    msr     tpidr_el2, x9
    isb
    tlbi    alle2
    ic      iallu
    dsb     nsh
    isb
    ldr     x9, [x0, #{SB_SCTLR}]
    msr     sctlr_el2, x9
    isb
    ldr     x9, [x0, #{SB_STACK_TOP}]
    mov     sp, x9
    bl      ferry_secondary_entry
5:  wfe
    b       5b
    .ltorg

.section .bss.stack, "aw", %nobits
.balign 4096
__primary_stack_bottom:
    .space  {PRIMARY_STACK_SIZE}
.global __primary_stack_top
__primary_stack_top:
