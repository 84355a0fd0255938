/*
 * stackful: context switch for AArch64, AAPCS64 (Linux, the BSDs, macOS).
 *
 * Three functions, all called from Rust as ordinary `extern "C"` functions:
 *
 *   Transfer stackful_fiber_enter(usize arg, void *top,
 *                                 void (*entry)(usize arg, usize *link))
 *       Start `entry` on a fresh stack whose (16-byte aligned) highest address is `top`.
 *       Returns when the coroutine first switches out.
 *   Transfer stackful_fiber_switch_in(usize arg, void *sp, usize *link)
 *       Resume a suspended coroutine whose saved stack pointer is `sp`.
 *       Returns when the coroutine switches out again.
 *   usize    stackful_fiber_switch_out(usize arg, usize *link)
 *       Called on a coroutine stack: suspend it and return to whoever resumed it.
 *       Returns the `arg` of the switch_in that resumes it.
 *
 *   struct Transfer { usize data; void *sp; }   returned in x0:x1.
 *   data = the `arg` given by the other side; sp = where the coroutine that just
 *   suspended saved its registers (pass it to the next switch_in).
 *
 * Arguments arrive in x0, x1, x2.  All three functions are only entered by `bl`/`blr`,
 * so the caller has already saved the caller-saved registers (x0-x18, v0-v7, v16-v31
 * and the upper halves of v8-v15) that it needs; a switch saves exactly the
 * callee-saved set:
 *
 *   x19-x28, x29 (fp), x30 (lr, the return address), sp (the handle itself),
 *   d8-d15 (the low 64 bits of v8-v15; AAPCS64 only preserves those).
 *
 * Not saved: FPCR (rounding mode etc.).  It is thread state shared with the
 * coroutine, like <fenv.h>'s environment (see the x86_64 file for the reasoning).
 * x18 is the platform register and is never touched.
 *
 * Saved-register area (0xa0 bytes), written by every switch on the stack being left.
 * `sp` (the value handed to the other side) points at its lowest word:
 *
 *     sp + 0x00  x19      sp + 0x08  x20
 *     sp + 0x10  x21      sp + 0x18  x22
 *     sp + 0x20  x23      sp + 0x28  x24
 *     sp + 0x30  x25      sp + 0x38  x26
 *     sp + 0x40  x27      sp + 0x48  x28
 *     sp + 0x50  d8       sp + 0x58  d9
 *     sp + 0x60  d10      sp + 0x68  d11
 *     sp + 0x70  d12      sp + 0x78  d13
 *     sp + 0x80  d14      sp + 0x88  d15
 *     sp + 0x90  x29      sp + 0x98  x30   <- frame record {fp, lr}
 *     sp + 0xa0  (caller's frame; this is the CFA of the switch function)
 *
 * Every store has its load at the same offset: the STP/LDP pairs below are written
 * side by side in SAVE/RESTORE with identical offsets.  (stackful 0.1.5 loaded d8-d15
 * from slots 0x10 higher than it stored them; tests/registers.rs catches that class.)
 *
 * Coroutine stack, at the top (set up by stackful_fiber_enter):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record (its sp + 0x90).
 *               Written by enter and by every switch_in, read by switch_out.
 *               `link` in the signatures above points here.
 *     top - 24  flags word, owned by the Rust side (cancellation state)
 *     top - 32  unused (keeps sp 16-byte aligned)
 *     sp = top - 32 when entry is called; entry's frames grow below.
 *
 * DWARF CFI: inside the trampoline (at the `blr`), the CFA of the resumer's switch
 * frame is *(sp + 16) + 16 = LINK + 16, and x19-x30/d8-d15 are found at the CFA
 * offsets of the table above (CFA-0xa0 ... CFA-8).  Backtraces and unwinders walking
 * up from the coroutine continue into the frames of whoever last resumed it.  x29 is
 * pointed at top-16 so that frame-pointer walkers follow the same path.
 *
 * Assembler macros (.macro) are used rather than C macros because ';' starts a
 * comment in Apple's arm64 assembler.
 */

#if defined(__APPLE__)
#define SYM(name) _##name
#else
#define SYM(name) name
#endif

.macro FUNC_BEGIN name
    .text
    .globl \name
#if defined(__APPLE__)
    .private_extern \name
#else
    .hidden \name
    .type \name, %function
#endif
    .p2align 4
\name:
.endm

.macro FUNC_END name
#if !defined(__APPLE__)
    .size \name, .-\name
#endif
.endm

/* Save the callee-saved registers into a new 0xa0-byte area, with CFI.
 * DWARF register numbers: x19..x30 = 19..30, v8..v15 = 72..79. */
.macro SAVE_REGS
    sub     sp, sp, #0xa0
    .cfi_def_cfa_offset 0xa0
    stp     x29, x30, [sp, #0x90]
    .cfi_offset 29, -16
    .cfi_offset 30, -8
    stp     x19, x20, [sp, #0x00]
    .cfi_offset 19, -160
    .cfi_offset 20, -152
    stp     x21, x22, [sp, #0x10]
    .cfi_offset 21, -144
    .cfi_offset 22, -136
    stp     x23, x24, [sp, #0x20]
    .cfi_offset 23, -128
    .cfi_offset 24, -120
    stp     x25, x26, [sp, #0x30]
    .cfi_offset 25, -112
    .cfi_offset 26, -104
    stp     x27, x28, [sp, #0x40]
    .cfi_offset 27, -96
    .cfi_offset 28, -88
    stp     d8, d9, [sp, #0x50]
    .cfi_offset 72, -80
    .cfi_offset 73, -72
    stp     d10, d11, [sp, #0x60]
    .cfi_offset 74, -64
    .cfi_offset 75, -56
    stp     d12, d13, [sp, #0x70]
    .cfi_offset 76, -48
    .cfi_offset 77, -40
    stp     d14, d15, [sp, #0x80]
    .cfi_offset 78, -32
    .cfi_offset 79, -24
.endm

/* Load them back (same offsets as SAVE_REGS) from the area at sp and return. */
.macro RESTORE_REGS_AND_RET
    ldp     x19, x20, [sp, #0x00]
    ldp     x21, x22, [sp, #0x10]
    ldp     x23, x24, [sp, #0x20]
    ldp     x25, x26, [sp, #0x30]
    ldp     x27, x28, [sp, #0x40]
    ldp     d8, d9, [sp, #0x50]
    ldp     d10, d11, [sp, #0x60]
    ldp     d12, d13, [sp, #0x70]
    ldp     d14, d15, [sp, #0x80]
    ldp     x29, x30, [sp, #0x90]
    add     sp, sp, #0xa0
    .cfi_def_cfa_offset 0
    ret
.endm

/* Transfer stackful_fiber_enter(x0 = arg, x1 = top, x2 = entry) */
FUNC_BEGIN SYM(stackful_fiber_enter)
    .cfi_startproc
    SAVE_REGS
    add     x9, sp, #0x90           /* resumer's frame record */
    adr     x10, 1f                 /* fake return address for FP walkers */
    stp     x9, x10, [x1, #-16]     /* LINK at top-16, fake lr at top-8 */
    sub     sp, x1, #32             /* switch to the new stack (one instruction) */
    /* From here on the caller's frame is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg31 (sp) 16, DW_OP_deref, DW_OP_plus_uconst 16
     * Register rules are unchanged from SAVE_REGS. */
    .cfi_escape 0x0f, 0x05, 0x8f, 0x10, 0x06, 0x23, 0x10
    sub     x1, x1, #16             /* second argument: &LINK */
    mov     x29, x1                 /* frame record for FP walkers */
    blr     x2                      /* entry(arg, link); never returns */
1:  brk     #1
    .cfi_endproc
FUNC_END SYM(stackful_fiber_enter)

/* Transfer stackful_fiber_switch_in(x0 = arg, x1 = sp, x2 = link) */
FUNC_BEGIN SYM(stackful_fiber_switch_in)
    .cfi_startproc
    SAVE_REGS
    add     x9, sp, #0x90
    str     x9, [x2]                /* LINK = our frame record */
    mov     sp, x1                  /* switch (same layout, same CFI) */
    RESTORE_REGS_AND_RET            /* x0 = arg is what the coroutine's switch_out returns */
    .cfi_endproc
FUNC_END SYM(stackful_fiber_switch_in)

/* usize stackful_fiber_switch_out(x0 = arg, x1 = link) */
FUNC_BEGIN SYM(stackful_fiber_switch_out)
    .cfi_startproc
    SAVE_REGS
    mov     x9, sp                  /* Transfer.sp: where we saved our registers */
    ldr     x10, [x1]               /* resumer's frame record ... */
    sub     sp, x10, #0x90          /* ... is 0x90 above its saved-register area */
    mov     x1, x9
    RESTORE_REGS_AND_RET            /* x0 = Transfer.data = arg, x1 = Transfer.sp */
    .cfi_endproc
FUNC_END SYM(stackful_fiber_switch_out)

/* usize stackful_valgrind_request(x0 = default, x1 = args)
 *
 * A valgrind "client request" (the sequence documented in valgrind.h): under
 * valgrind it performs the request described by args[0..6] and returns its result;
 * natively the rotations leave x12 unchanged, `orr x10, x10, x10` is a no-op, and
 * it returns `default`.  Used only when stacks are mapped and unmapped.
 * Clobbers x3, x4 (caller-saved). */
FUNC_BEGIN SYM(stackful_valgrind_request)
    .cfi_startproc
    mov     x3, x0                  /* default result */
    mov     x4, x1                  /* request block */
    ror     x12, x12, #3
    ror     x12, x12, #13
    ror     x12, x12, #51
    ror     x12, x12, #61
    orr     x10, x10, x10           /* x3 = client_request(x4) */
    mov     x0, x3
    ret
    .cfi_endproc
FUNC_END SYM(stackful_valgrind_request)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
