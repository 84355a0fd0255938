/*
 * stackful: context switch for AArch64, AAPCS64 (Linux, the BSDs, macOS).
 *
 * A switch has two halves. This file has the resuming half, as two functions:
 *
 *   Transfer stackful_fiber_enter(usize arg, void *top,
 *                                 void (*entry)(usize arg, usize *link))
 *       An ordinary `extern "C"` function.  Starts `entry` on a fresh stack whose
 *       (16-byte aligned) highest address is `top`.  Returns when the coroutine
 *       first suspends.
 *   stackful_fiber_switch_in: x0 = arg, x1 = link, x2 = sp
 *       Resumes a suspended coroutine whose saved stack pointer is `sp`.  Returns
 *       (x0 = data, x1 = sp, as a Transfer) when the coroutine suspends again.
 *       Its own calling convention: it preserves only sp, x18, x19 and x29; every
 *       other general-purpose, vector and flag register may be changed.  It is
 *       called from a single `asm!` block (`switch_in` in src/arch.rs) that declares
 *       all of them clobbered, so the compiler saves around the call only the
 *       registers that are live there.  (x19 and x29 cannot be declared clobbered
 *       in Rust's `asm!`, which is why they are saved by hand.)
 *
 *   struct Transfer { usize data; void *sp; }   returned in x0:x1.
 *
 * The suspending half is `switch_out` in src/switch_out.rs (inline assembly, see
 * there and the x86_64 file for why): resuming here `blr`s the coroutine's
 * continuation, and the coroutine's suspension `ret`s to exactly that call site, so
 * the return-address predictor stays right on every switch.
 *
 * Registers.  stackful_fiber_enter is entered by `bl` from Rust as a C function,
 * so it saves the whole callee-saved set: x19-x28, x29 (fp), x30 (lr), and d8-d15
 * (the low 64 bits of v8-v15; AAPCS64 only preserves those), on the resumer's
 * stack, restored when the coroutine suspends.  stackful_fiber_switch_in saves x19
 * and x30; the continuation it calls saves x29 in a frame record.  The coroutine
 * side saves x19 and x29 by hand and declares the rest clobbered, so the compiler
 * saves only the live ones.
 * Not saved: FPCR (rounding mode etc.), thread state shared with the coroutine like
 * <fenv.h>'s environment (see the x86_64 file).  x18 (platform register) is never
 * touched.
 *
 * Resumer's saved-register area in stackful_fiber_enter (0xa0 bytes; CFA = its top):
 *
 *     CFA-0xa0  x19      CFA-0x98  x20
 *     CFA-0x90  x21      CFA-0x88  x22
 *     CFA-0x80  x23      CFA-0x78  x24
 *     CFA-0x70  x25      CFA-0x68  x26
 *     CFA-0x60  x27      CFA-0x58  x28
 *     CFA-0x50  d8       CFA-0x48  d9
 *     CFA-0x40  d10      CFA-0x38  d11
 *     CFA-0x30  d12      CFA-0x28  d13
 *     CFA-0x20  d14      CFA-0x18  d15
 *     CFA-0x10  x29      CFA-0x08  x30 (R: return address into Rust)
 *
 * and in stackful_fiber_switch_in (0x10 bytes):
 *
 *     CFA-0x10  x19      CFA-0x08  x30 (R: return address into Rust)
 *
 * Below it, while the coroutine runs, the continuation pushes the frame record
 * {x29, S} (S = return address inside enter/switch_in): LINK points there.
 * Every store has its load at the same offset (SAVE_REGS/RESTORE_REGS below are
 * written side by side; stackful 0.1.5 loaded d8-d15 from slots 0x10 higher than it
 * stored them, a class of bug tests/registers.rs catches).
 *
 * Suspended coroutine's stack (written by switch_out; `sp` points at its lowest word):
 *
 *     sp + 0x00  continuation address     sp + 0x08  (zero)
 *     sp + 0x10  x19                      sp + 0x18  x29
 *
 * Top of a coroutine stack (set up by stackful_fiber_enter):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record {x29, S}; written on
 *               every resume, read by every suspend.  `link` points here.
 *     top - 24  flags word, owned by Rust (cancellation state)
 *     top - 32  word owned by Rust (which poll was current at the last resume)
 *     sp = top - 32 when entry is called; entry's frames grow below.
 *
 * Resume: switch_in saves x19 and x30, then `blr`s the continuation found at [sp]
 * with x0 = arg, x1 = link, x2 = sp (x30 = S).  The continuation pushes {x29, x30},
 * stores sp in LINK, reloads x19/x29 and moves sp to sp + 32.  Suspend: switch_out
 * saves its continuation, x19 and x29, loads sp from LINK, pops {x29, x30} and
 * `ret`s to S with x0 = data, x1 = its sp; switch_in restores and returns to R.
 * (enter: the same, with the whole register area.)
 *
 * DWARF CFI: inside the trampoline (at the `blr` of entry) the CFA of the frame above
 * is *(sp + 16) + 16 = LINK + 16, the return address (S) is at CFA-8 and x29 at
 * CFA-16; the frame at S (enter/switch_in) describes R and the saved registers.
 * Backtraces and debuggers walking up from a coroutine continue into the frames of
 * whoever last resumed it.  x29 is pointed at top-16 for frame-pointer walkers.
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
    bl      2f                      /* x30 = S; returns when the coroutine suspends */
    .cfi_remember_state
    RESTORE_REGS_AND_RET            /* x0 = data, x1 = sp */
2:  .cfi_restore_state
    stp     x29, x30, [sp, #-16]!   /* frame record {x29, S} */
    .cfi_adjust_cfa_offset 16
    mov     x9, sp
    adr     x10, 1f                 /* fake return address for FP walkers */
    stp     x9, x10, [x1, #-16]     /* LINK at top-16, fake lr at top-8 */
    sub     sp, x1, #32             /* switch to the new stack (one instruction) */
    /* From here on the frame above is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg31 (sp) 16, DW_OP_deref, DW_OP_plus_uconst 16
     * The return address (S) is at CFA-8 and x29 at CFA-16; the other registers are
     * described by the CFI of the frame at S. */
    .cfi_escape 0x0f, 0x05, 0x8f, 0x10, 0x06, 0x23, 0x10
    .cfi_offset 29, -16
    .cfi_offset 30, -8
    .cfi_same_value 19
    .cfi_same_value 20
    .cfi_same_value 21
    .cfi_same_value 22
    .cfi_same_value 23
    .cfi_same_value 24
    .cfi_same_value 25
    .cfi_same_value 26
    .cfi_same_value 27
    .cfi_same_value 28
    .cfi_same_value 72
    .cfi_same_value 73
    .cfi_same_value 74
    .cfi_same_value 75
    .cfi_same_value 76
    .cfi_same_value 77
    .cfi_same_value 78
    .cfi_same_value 79
    sub     x1, x1, #16             /* second argument: &LINK */
    mov     x29, x1                 /* frame record for FP walkers */
    blr     x2                      /* entry(arg, link); never returns */
1:  brk     #1
    .cfi_endproc
FUNC_END SYM(stackful_fiber_enter)

/* stackful_fiber_switch_in: x0 = arg, x1 = link, x2 = sp; returns x0 = data,
 * x1 = sp.  Own calling convention (see the header): called only from the asm!
 * block of `switch_in` in src/arch.rs, which declares every register but sp, x18,
 * x19 and x29 clobbered.  x19 and x30 (R) are saved here; x29 by the
 * continuation's frame record. */
FUNC_BEGIN SYM(stackful_fiber_switch_in)
    .cfi_startproc
    stp     x19, x30, [sp, #-16]!
    .cfi_def_cfa_offset 16
    .cfi_offset 19, -16
    .cfi_offset 30, -8
    ldr     x9, [x2]
    blr     x9                      /* x30 = S; returns when the coroutine suspends */
    ldp     x19, x30, [sp], #16     /* x0 = data, x1 = sp */
    .cfi_def_cfa_offset 0
    .cfi_restore 19
    .cfi_restore 30
    ret
    .cfi_endproc
FUNC_END SYM(stackful_fiber_switch_in)

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
