/*
 * stackful: context switch for AArch64, AAPCS64 (Linux, the BSDs, macOS).
 *
 * Both halves of a switch are inline assembly in src/switch_out.rs (`switch_in`,
 * `enter`, `switch_out`; see there and the x86_64 file for why); this file has the
 * one piece that is not: the code that starts a coroutine on a fresh stack.
 *
 *   stackful_fiber_start(x0 = arg, x1 = top, x2 = entry), x30 = S
 *       Not an `extern "C"` function: it is `blr`ed from `enter`'s inline assembly
 *       after that has stored {x29, x19} below the resumer's sp, and it returns to S
 *       (in `enter`) only when the coroutine suspends, with x0 = data (the `arg`
 *       the coroutine suspended with) and x1 = the coroutine's saved stack pointer.
 *       It starts `entry(arg, link)` (an `extern "C"` function that never returns)
 *       on the stack whose 16-byte aligned highest address is `top`.
 *
 * Registers.  Rust's `asm!` cannot name x19 or x29, so both halves save them by
 * hand; every other callee-saved register (x20-x28, x30 and d8-d15, the low halves
 * of v8-v15 that AAPCS64 preserves) is declared clobbered, so the compiler saves
 * around a switch exactly the ones that are live in the calling code.  Not saved:
 * FPCR (rounding mode etc.), thread state shared with the coroutine like <fenv.h>'s
 * environment (see the x86_64 file).  x18 (platform register) is never touched.
 *
 * Resumer's stack while the coroutine runs; C = the resumer's sp outside the inline
 * assembly of `switch_in`/`enter`:
 *
 *     C-0x08  x19                  stored by switch_in/enter
 *     C-0x10  x29                  stored by switch_in/enter
 *     C-0x18  S (x30 of the `blr` in switch_in/enter)
 *     C-0x20  x29 again            <- LINK points here: {x29, S} is a frame record
 *
 * Suspended coroutine's stack (written by switch_out; `sp` points at its lowest word):
 *
 *     sp + 0x00  continuation address     sp + 0x08  (zero)
 *     sp + 0x10  x19                      sp + 0x18  x29
 *
 * Top of a coroutine stack (set up by stackful_fiber_start):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record {x29, S}; written on
 *               every resume, read by every suspend.  `link` points here.
 *     top - 24  flags word, owned by Rust (cancellation state)
 *     top - 32  word owned by Rust (which poll was current at the last resume)
 *     sp = top - 32 when entry is called; entry's frames grow below.
 *
 * Resume: switch_in stores {x29, x19}, then `blr`s the continuation found at [sp]
 * with x0 = arg, x1 = link, x2 = sp (x30 = S).  The continuation pushes {x29, x30},
 * stores sp in LINK, reloads x19/x29 and moves sp to sp + 32.  Suspend: switch_out
 * saves its continuation, x19 and x29, loads sp from LINK, pops {x29, x30} and
 * `ret`s to S with x0 = data, x1 = its sp; switch_in reloads {x29, x19}.  Starting
 * is the same with stackful_fiber_start as the continuation.
 *
 * DWARF CFI: inside the trampoline (at the `blr` of entry) the CFA of the frame above
 * is *(sp + 16) + 32 = LINK + 32 = C, the return address (S) is at CFA-24, x29 at
 * CFA-16 (also at CFA-32) and x19 at CFA-8.  The next frame is the Rust function
 * containing switch_in/enter, at S, with sp = C as its own CFI expects there; its CFI
 * restores the registers its prologue saved.  Backtraces and debuggers walking up
 * from a coroutine continue into the frames of whoever last resumed it.  x29 is
 * pointed at top-16 for frame-pointer walkers.
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

/* stackful_fiber_start(x0 = arg, x1 = top, x2 = entry), x30 = S; see the header. */
FUNC_BEGIN SYM(stackful_fiber_start)
    .cfi_startproc
    stp     x29, x30, [sp, #-16]!   /* frame record {x29, S} */
    .cfi_def_cfa_offset 16
    .cfi_offset 29, -16
    .cfi_offset 30, -8
    mov     x9, sp
    adr     x10, 1f                 /* fake return address for FP walkers */
    stp     x9, x10, [x1, #-16]     /* LINK at top-16, fake lr at top-8 */
    sub     sp, x1, #32             /* switch to the new stack (one instruction) */
    /* From here on the frame above is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg31 (sp) 16, DW_OP_deref, DW_OP_plus_uconst 32
     * The return address (S) is at CFA-24, x29 at CFA-16 and x19 at CFA-8; the other
     * registers are described by the CFI of the frame at S. */
    .cfi_escape 0x0f, 0x05, 0x8f, 0x10, 0x06, 0x23, 0x20
    .cfi_offset 30, -24
    .cfi_offset 29, -16
    .cfi_offset 19, -8
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
FUNC_END SYM(stackful_fiber_start)

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
