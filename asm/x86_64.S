/*
 * stackful: context switch for x86_64, System V ABI (Linux, the BSDs, macOS).
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
 *   struct Transfer { usize data; void *sp; }   returned in rax:rdx.
 *   data = the `arg` given by the other side; sp = where the coroutine that just
 *   suspended saved its registers (pass it to the next switch_in).
 *
 * Arguments arrive in rdi, rsi, rdx (SysV).  All three functions are only ever
 * entered by a `call`, so the caller has already saved every caller-saved register
 * it needs; a switch therefore saves exactly the callee-saved set.
 *
 * Registers saved on every switch: rbx, rbp, r12, r13, r14, r15 (and rsp, which is
 * the handle itself).  SysV has no callee-saved vector registers.
 *
 * Not saved: the MXCSR control bits and the x87 control word.  SysV makes them
 * callee-saved, but a coroutine is code running *on the current thread*: it shares
 * the thread's floating-point environment exactly as C's <fenv.h> defines it
 * (per thread), the way a callback would.  Saving them costs an ldmxcsr/fldcw pair
 * on every switch (both serialising on many cores) for a state Rust code never
 * changes.  corosensei makes the same choice; it is documented in the crate docs.
 *
 * Saved-register area, written by every switch on the stack being left.  `sp`
 * (the value handed to the other side) points at its lowest word:
 *
 *     sp + 0   r15
 *     sp + 8   r14
 *     sp + 16  r13
 *     sp + 24  r12
 *     sp + 32  rbx
 *     sp + 40  rbp  <- "frame record": [sp+40] = saved rbp, [sp+48] = return address
 *     sp + 48  return address into the caller of enter/switch_in/switch_out
 *     sp + 56  (caller's frame; this is the CFA of the switch function)
 *
 * Both sides use the same layout, so resuming either side is: load rsp, pop 6, ret.
 *
 * Coroutine stack, at the top (set up by stackful_fiber_enter):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record (its sp + 40).  Written
 *               by enter and by every switch_in, read by switch_out.  `link` in
 *               the signatures above points here.
 *     top - 24  flags word, owned by the Rust side (cancellation state)
 *     top - 32  unused (keeps rsp 16-byte aligned at the call)
 *     top - 40  return address of `call *entry` (label 1), then entry's frames.
 *
 * DWARF CFI: inside the trampoline (at the `call`), the CFA of the resumer's switch
 * frame is computed as *(rsp + 16) + 16 = LINK + 16, and rip/rbp/rbx/r12-r15 are
 * found at CFA-8 ... CFA-56 exactly as in the table above.  A backtrace or an
 * unwinder walking up from the coroutine therefore continues into the frames of
 * whoever last resumed it.  rbp is pointed at top-16 so that frame-pointer based
 * walkers (perf --call-graph=fp) follow the same path: [top-16] is the resumer's
 * frame record, [top-8] a return address inside this file.
 */

#if defined(__APPLE__)
#define SYM(name) _##name
#define FUNC_BEGIN(name) .globl SYM(name); .private_extern SYM(name); .p2align 4; SYM(name):
#define FUNC_END(name)
#else
#define SYM(name) name
#define FUNC_BEGIN(name) .globl name; .hidden name; .type name,@function; .p2align 4; name:
#define FUNC_END(name) .size name, .-name
#endif

/* Push the callee-saved registers in the order of the table above, with CFI. */
#define SAVE_REGS                                   \
    pushq %rbp;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %rbp, -16;             \
    pushq %rbx;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %rbx, -24;             \
    pushq %r12;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %r12, -32;             \
    pushq %r13;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %r13, -40;             \
    pushq %r14;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %r14, -48;             \
    pushq %r15;  .cfi_adjust_cfa_offset 8;          \
                 .cfi_offset %r15, -56

/* Pop them from the (other) stack and return into it. */
#define RESTORE_REGS_AND_RET                        \
    popq %r15;   .cfi_adjust_cfa_offset -8;         \
    popq %r14;   .cfi_adjust_cfa_offset -8;         \
    popq %r13;   .cfi_adjust_cfa_offset -8;         \
    popq %r12;   .cfi_adjust_cfa_offset -8;         \
    popq %rbx;   .cfi_adjust_cfa_offset -8;         \
    popq %rbp;   .cfi_adjust_cfa_offset -8;         \
    ret

    .text

/* Transfer stackful_fiber_enter(rdi = arg, rsi = top, rdx = entry) */
FUNC_BEGIN(stackful_fiber_enter)
    .cfi_startproc
    SAVE_REGS
    leaq    40(%rsp), %rax          /* resumer's frame record */
    movq    %rax, -16(%rsi)         /* LINK */
    leaq    1f(%rip), %rax
    movq    %rax, -8(%rsi)          /* fake return address for FP walkers */
    leaq    -32(%rsi), %rsp         /* switch to the new stack (one instruction) */
    /* From here on the caller's frame is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg7 (rsp) 16, DW_OP_deref, DW_OP_plus_uconst 16
     * Register rules (rbp at CFA-16 ...) are unchanged from SAVE_REGS. */
    .cfi_escape 0x0f, 0x05, 0x77, 0x10, 0x06, 0x23, 0x10
    leaq    16(%rsp), %rsi          /* second argument: &LINK */
    movq    %rsi, %rbp              /* frame record for FP walkers */
    callq   *%rdx                   /* entry(arg, link); never returns */
1:  ud2
    .cfi_endproc
FUNC_END(stackful_fiber_enter)

/* Transfer stackful_fiber_switch_in(rdi = arg, rsi = sp, rdx = link) */
FUNC_BEGIN(stackful_fiber_switch_in)
    .cfi_startproc
    SAVE_REGS
    leaq    40(%rsp), %rax
    movq    %rax, (%rdx)            /* LINK = our frame record */
    movq    %rsi, %rsp              /* switch (one instruction; same layout, same CFI) */
    movq    %rdi, %rax              /* the coroutine's switch_out returns arg */
    RESTORE_REGS_AND_RET
    .cfi_endproc
FUNC_END(stackful_fiber_switch_in)

/* usize stackful_fiber_switch_out(rdi = arg, rsi = link) */
FUNC_BEGIN(stackful_fiber_switch_out)
    .cfi_startproc
    SAVE_REGS
    movq    %rsp, %rdx              /* Transfer.sp: where we saved our registers */
    movq    (%rsi), %rax            /* resumer's frame record ... */
    leaq    -40(%rax), %rsp         /* ... is 40 bytes above its saved-register area */
    movq    %rdi, %rax              /* Transfer.data = arg */
    RESTORE_REGS_AND_RET
    .cfi_endproc
FUNC_END(stackful_fiber_switch_out)

/* usize stackful_valgrind_request(rdi = default, rsi = args)
 *
 * A valgrind "client request" (the sequence documented in valgrind.h): under
 * valgrind it performs the request described by args[0..6] (request code, then up to
 * five arguments) and returns its result; natively the rotations leave rdi unchanged,
 * `xchg %rbx, %rbx` is a no-op, and it returns `default`.  Used to tell valgrind
 * about coroutine stacks (VALGRIND_STACK_REGISTER/DEREGISTER) when they are mapped
 * and unmapped, never on the switch path.  Clobbers only rax, rdx, rdi (caller-saved). */
FUNC_BEGIN(stackful_valgrind_request)
    .cfi_startproc
    movq    %rdi, %rdx              /* default result */
    movq    %rsi, %rax              /* request block */
    rolq    $3, %rdi
    rolq    $13, %rdi
    rolq    $61, %rdi
    rolq    $51, %rdi
    xchgq   %rbx, %rbx              /* rdx = client_request(rax) */
    movq    %rdx, %rax
    ret
    .cfi_endproc
FUNC_END(stackful_valgrind_request)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",@progbits
#endif
