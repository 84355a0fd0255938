/*
 * stackful: context switch for RISC-V 64 (RV64GC), LP64D ABI (Linux, the BSDs).
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
 *   struct Transfer { usize data; void *sp; }   returned in a0:a1 (LP64 returns a
 *   struct of two XLEN-sized integers in a0 and a1).
 *   data = the `arg` given by the other side; sp = where the coroutine that just
 *   suspended saved its registers (pass it to the next switch_in).
 *
 * Arguments arrive in a0, a1, a2.  All three functions are only entered by `jal`/
 * `jalr`, so the caller has already saved the caller-saved registers (ra, t0-t6,
 * a0-a7, ft0-ft11, fa0-fa7) that it needs; a switch saves exactly the callee-saved
 * set:
 *
 *   s0-s11 (s0 is the frame pointer fp), ra (the return address), sp (the handle
 *   itself), fs0-fs11 (all 64 bits: LP64D preserves the D registers whole).
 *
 * Not saved: fcsr (rounding mode, exception flags).  It is thread state shared with
 * the coroutine, like <fenv.h>'s environment (see the x86_64 file for the reasoning).
 * gp (global pointer) and tp (thread pointer) are never touched: they are the same
 * for every stack of a thread.
 *
 * Saved-register area (0xd0 bytes), written by every switch on the stack being left.
 * `sp` (the value handed to the other side) points at its lowest word:
 *
 *     sp + 0x00  s1       sp + 0x08  s2       sp + 0x10  s3
 *     sp + 0x18  s4       sp + 0x20  s5       sp + 0x28  s6
 *     sp + 0x30  s7       sp + 0x38  s8       sp + 0x40  s9
 *     sp + 0x48  s10      sp + 0x50  s11
 *     sp + 0x58  fs0      sp + 0x60  fs1      sp + 0x68  fs2
 *     sp + 0x70  fs3      sp + 0x78  fs4      sp + 0x80  fs5
 *     sp + 0x88  fs6      sp + 0x90  fs7      sp + 0x98  fs8
 *     sp + 0xa0  fs9      sp + 0xa8  fs10     sp + 0xb0  fs11
 *     sp + 0xb8  (padding, keeps sp 16-byte aligned)
 *     sp + 0xc0  s0 (fp)  sp + 0xc8  ra   <- frame record {fp, ra} at CFA-16, CFA-8
 *     sp + 0xd0  (caller's frame; this is the CFA of the switch function)
 *
 * Every store has its load at the same offset: SAVE_REGS and RESTORE_REGS_AND_RET
 * below list the registers in the same order with the same offsets.
 *
 * The RISC-V frame pointer convention differs from x86_64's and AArch64's: fp holds
 * the CFA of its frame (the caller's sp), with the caller's fp at fp-16 and the
 * return address at fp-8.  LINK therefore holds the resumer's CFA (sp + 0xd0 of its
 * saved-register area) rather than the address of the record itself.
 *
 * Coroutine stack, at the top (set up by stackful_fiber_enter):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: the resumer's CFA (its sp + 0xd0), whose frame record
 *               {fp, ra} is at LINK - 16.  Written by enter and by every switch_in,
 *               read by switch_out.  `link` in the signatures above points here.
 *     top - 24  flags word, owned by the Rust side (cancellation state)
 *     top - 32  word owned by the Rust side (which poll resumed the coroutine)
 *     sp = top - 32 when entry is called; entry's frames grow below.
 *
 * DWARF CFI: inside the trampoline (at the `jalr`), the CFA of the resumer's switch
 * frame is *(sp + 16) = LINK, and s0-s11, ra, fs0-fs11 are found at the CFA offsets
 * of the table above (CFA-0xd0 ... CFA-8).  Backtraces and unwinders walking up from
 * the coroutine continue into the frames of whoever last resumed it.  fp (s0) is
 * pointed at `top`, so that frame-pointer walkers find {LINK, fake return address}
 * at fp-16 and continue into the resumer's frame record the same way.
 *
 * DWARF register numbers: x1 (ra) = 1, x2 (sp) = 2, x8/x9 (s0/s1) = 8/9,
 * x18-x27 (s2-s11) = 18-27, f8/f9 (fs0/fs1) = 40/41, f18-f27 (fs2-fs11) = 50-59.
 */

#define SYM(name) name

.macro FUNC_BEGIN name
    .text
    .globl \name
    .hidden \name
    .type \name, %function
    .p2align 4
\name:
.endm

.macro FUNC_END name
    .size \name, .-\name
.endm

/* Save the callee-saved registers into a new 0xd0-byte area, with CFI. */
.macro SAVE_REGS
    addi    sp, sp, -0xd0
    .cfi_def_cfa_offset 0xd0
    sd      s0, 0xc0(sp)
    .cfi_offset 8, -16
    sd      ra, 0xc8(sp)
    .cfi_offset 1, -8
    sd      s1, 0x00(sp)
    .cfi_offset 9, -208
    sd      s2, 0x08(sp)
    .cfi_offset 18, -200
    sd      s3, 0x10(sp)
    .cfi_offset 19, -192
    sd      s4, 0x18(sp)
    .cfi_offset 20, -184
    sd      s5, 0x20(sp)
    .cfi_offset 21, -176
    sd      s6, 0x28(sp)
    .cfi_offset 22, -168
    sd      s7, 0x30(sp)
    .cfi_offset 23, -160
    sd      s8, 0x38(sp)
    .cfi_offset 24, -152
    sd      s9, 0x40(sp)
    .cfi_offset 25, -144
    sd      s10, 0x48(sp)
    .cfi_offset 26, -136
    sd      s11, 0x50(sp)
    .cfi_offset 27, -128
    fsd     fs0, 0x58(sp)
    .cfi_offset 40, -120
    fsd     fs1, 0x60(sp)
    .cfi_offset 41, -112
    fsd     fs2, 0x68(sp)
    .cfi_offset 50, -104
    fsd     fs3, 0x70(sp)
    .cfi_offset 51, -96
    fsd     fs4, 0x78(sp)
    .cfi_offset 52, -88
    fsd     fs5, 0x80(sp)
    .cfi_offset 53, -80
    fsd     fs6, 0x88(sp)
    .cfi_offset 54, -72
    fsd     fs7, 0x90(sp)
    .cfi_offset 55, -64
    fsd     fs8, 0x98(sp)
    .cfi_offset 56, -56
    fsd     fs9, 0xa0(sp)
    .cfi_offset 57, -48
    fsd     fs10, 0xa8(sp)
    .cfi_offset 58, -40
    fsd     fs11, 0xb0(sp)
    .cfi_offset 59, -32
.endm

/* Load them back (same offsets as SAVE_REGS) from the area at sp and return. */
.macro RESTORE_REGS_AND_RET
    ld      s0, 0xc0(sp)
    ld      ra, 0xc8(sp)
    ld      s1, 0x00(sp)
    ld      s2, 0x08(sp)
    ld      s3, 0x10(sp)
    ld      s4, 0x18(sp)
    ld      s5, 0x20(sp)
    ld      s6, 0x28(sp)
    ld      s7, 0x30(sp)
    ld      s8, 0x38(sp)
    ld      s9, 0x40(sp)
    ld      s10, 0x48(sp)
    ld      s11, 0x50(sp)
    fld     fs0, 0x58(sp)
    fld     fs1, 0x60(sp)
    fld     fs2, 0x68(sp)
    fld     fs3, 0x70(sp)
    fld     fs4, 0x78(sp)
    fld     fs5, 0x80(sp)
    fld     fs6, 0x88(sp)
    fld     fs7, 0x90(sp)
    fld     fs8, 0x98(sp)
    fld     fs9, 0xa0(sp)
    fld     fs10, 0xa8(sp)
    fld     fs11, 0xb0(sp)
    addi    sp, sp, 0xd0
    .cfi_def_cfa_offset 0
    ret
.endm

/* Transfer stackful_fiber_enter(a0 = arg, a1 = top, a2 = entry) */
FUNC_BEGIN SYM(stackful_fiber_enter)
    .cfi_startproc
    SAVE_REGS
    addi    t0, sp, 0xd0            /* our CFA: the resumer's frame for LINK */
    sd      t0, -16(a1)             /* LINK */
    lla     t1, 1f
    sd      t1, -8(a1)              /* fake return address for FP walkers */
    addi    sp, a1, -32             /* switch to the new stack (one instruction) */
    /* From here on the caller's frame is found through LINK:
     * DW_CFA_def_cfa_expression, 3 bytes:
     *   DW_OP_breg2 (sp) 16, DW_OP_deref
     * Register rules (s0 at CFA-16 ...) are unchanged from SAVE_REGS. */
    .cfi_escape 0x0f, 0x03, 0x72, 0x10, 0x06
    mv      s0, a1                  /* fp = top: {LINK, fake ra} at fp-16 */
    addi    a1, a1, -16             /* second argument: &LINK */
    jalr    a2                      /* entry(arg, link); never returns */
1:  unimp
    .cfi_endproc
FUNC_END SYM(stackful_fiber_enter)

/* Transfer stackful_fiber_switch_in(a0 = arg, a1 = sp, a2 = link) */
FUNC_BEGIN SYM(stackful_fiber_switch_in)
    .cfi_startproc
    SAVE_REGS
    addi    t0, sp, 0xd0
    sd      t0, 0(a2)               /* LINK = our CFA */
    mv      sp, a1                  /* switch (same layout, same CFI) */
    RESTORE_REGS_AND_RET            /* a0 = arg is what the coroutine's switch_out returns */
    .cfi_endproc
FUNC_END SYM(stackful_fiber_switch_in)

/* usize stackful_fiber_switch_out(a0 = arg, a1 = link) */
FUNC_BEGIN SYM(stackful_fiber_switch_out)
    .cfi_startproc
    SAVE_REGS
    mv      t0, sp                  /* Transfer.sp: where we saved our registers */
    ld      t1, 0(a1)               /* resumer's CFA ... */
    addi    sp, t1, -0xd0           /* ... is 0xd0 above its saved-register area */
    mv      a1, t0
    RESTORE_REGS_AND_RET            /* a0 = Transfer.data = arg, a1 = Transfer.sp */
    .cfi_endproc
FUNC_END SYM(stackful_fiber_switch_out)

/* usize stackful_valgrind_request(a0 = default, a1 = args)
 *
 * A valgrind "client request": under valgrind it performs the request described by
 * args[0..6] and returns its result.  Debian 12's valgrind (3.19) has no riscv64
 * port, and its valgrind.h no riscv64 sequence; this is the sequence of the riscv64
 * port that upstream valgrind adopted in 3.25 (PLAT_riscv64_linux in valgrind.h):
 * a3 = default, a4 = args, the preamble `srli a2, a2, {3, 13, 51, 61}` (uncompressed
 * encodings, hence `.option norvc`), then `or a0, a0, a0`: a3 = client_request(a4).
 * Natively the preamble shifts a2 to zero, `or a0, a0, a0` is a no-op, and it returns
 * `default` (checked by a unit test in src/arch.rs); it has not been run under a
 * riscv64 valgrind.  Used only when stacks are mapped and unmapped.
 * Clobbers a2, a3, a4 (caller-saved). */
FUNC_BEGIN SYM(stackful_valgrind_request)
    .cfi_startproc
    mv      a3, a0                  /* default result */
    mv      a4, a1                  /* request block */
    .option push
    .option norvc
    srli    a2, a2, 3
    srli    a2, a2, 13
    srli    a2, a2, 51
    srli    a2, a2, 61
    or      a0, a0, a0              /* a3 = client_request(a4) */
    .option pop
    mv      a0, a3
    ret
    .cfi_endproc
FUNC_END SYM(stackful_valgrind_request)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
