/*
 * stackful: context switch for x86_64, System V ABI (Linux, the BSDs, macOS).
 *
 * A switch has two halves. This file has the resuming half, as two functions:
 *
 *   Transfer stackful_fiber_enter(usize arg, void *top,
 *                                 void (*entry)(usize arg, usize *link))
 *       An ordinary `extern "C"` function.  Starts `entry` on a fresh stack whose
 *       (16-byte aligned) highest address is `top`.  Returns when the coroutine
 *       first suspends.
 *   stackful_fiber_switch_in: rdi = arg, rsi = link, rdx = sp
 *       Resumes a suspended coroutine whose saved stack pointer is `sp`.  Returns
 *       (rax = data, rdx = sp, as a Transfer) when the coroutine suspends again.
 *       Its own calling convention: it preserves only rsp, rbp and rbx; every other
 *       general-purpose, vector and flag register may be changed.  It is called
 *       from a single `asm!` block (`switch_in` in src/arch.rs) that declares all of
 *       them clobbered, so the compiler saves around the call only the registers
 *       that are live there, instead of this function pushing all six callee-saved
 *       ones on every resume.  (rbp and rbx cannot be declared clobbered in Rust's
 *       `asm!`, which is why they are saved by hand.)
 *
 *   struct Transfer { usize data; void *sp; }   returned in rax:rdx.
 *   data = the `arg` the coroutine suspended with; sp = its saved stack pointer.
 *
 * The suspending half is `switch_out` in src/switch_out.rs: eleven instructions of
 * inline assembly, documented there.  It is inline for one reason, measured: the
 * CPU predicts `ret` targets from a return-stack buffer filled by `call`s.  Resuming
 * here `call`s the coroutine's continuation, and the coroutine's suspension `ret`s
 * to exactly that call site, so every return of a round trip is predicted.  With an
 * out-of-line suspend function (a `call` on the coroutine side too), both returns of
 * every round trip were mispredicted: 26.6 ns vs 9.6 ns per generator round trip on
 * the benchmark machine (BENCHMARKS.md).
 *
 * Registers.  stackful_fiber_enter is entered by `call` from Rust as a C function,
 * so it pushes the whole callee-saved set (rbp, rbx, r12-r15) on the resumer's
 * stack and pops it when the coroutine suspends.  (SysV has no callee-saved vector
 * registers.)  stackful_fiber_switch_in saves rbx; the continuation it calls pushes
 * rbp as part of a frame record, and the suspension pops it.  The coroutine side
 * saves rbp and rbx by hand and declares r12-r15 clobbered, so the compiler saves
 * only those that are live there.
 *
 * Not saved: the MXCSR control bits and the x87 control word.  SysV makes them
 * callee-saved, but a coroutine is code running *on the current thread*: it shares
 * the thread's floating-point environment exactly as C's <fenv.h> defines it (per
 * thread), the way a callback would.  Saving them costs an ldmxcsr/fldcw pair per
 * switch for a state Rust code never changes.  corosensei makes the same choice.
 *
 * Resumer's stack while the coroutine runs (grows down), first entry:
 *
 *     CFA+0   (resumer's frame)
 *     CFA-8   R: return address into Rust (the `call` of enter)
 *     CFA-16  rbp
 *     CFA-24  rbx
 *     CFA-32  r12
 *     CFA-40  r13
 *     CFA-48  r14
 *     CFA-56  r15
 *     CFA-64  S: return address inside enter (its `call` of the trampoline;
 *             the coroutine's suspension `ret`s here)
 *     CFA-72  rbp again            <- LINK points here: {rbp, S} is a frame record
 *
 * and after any later resume (stackful_fiber_switch_in):
 *
 *     CFA+0   (resumer's frame)
 *     CFA-8   R: return address into Rust (the `call` in the asm! block)
 *     CFA-16  rbx
 *     CFA-24  S: return address inside switch_in (its `call` of the continuation)
 *     CFA-32  rbp                  <- LINK points here: {rbp, S} is a frame record
 *
 * Suspended coroutine's stack (written by switch_out; `sp` points at its lowest word):
 *
 *     sp + 0   continuation address (where to `call` to resume it)
 *     sp + 8   rbx
 *     sp + 16  rbp
 *
 * Top of a coroutine stack (set up by stackful_fiber_enter):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record (CFA-72 above), written
 *               on every resume, read by every suspend.  `link` points here.
 *     top - 24  flags word, owned by Rust (cancellation state)
 *     top - 32  word owned by Rust (which poll was current at the last resume)
 *     top - 40  return address of `call *entry` (label 1), then entry's frames.
 *
 * Resume, step by step: switch_in pushes rbx, then `call`s the continuation found
 * at [sp] with rdi = arg, rsi = link, rdx = sp.  The continuation
 * (in switch_out) pushes rbp (completing the frame record), stores rsp in LINK,
 * moves rsp to sp + 8, pops rbx and rbp and falls through into the coroutine.
 * Suspend: switch_out pushes rbp, rbx and its continuation, puts its rsp in rdx
 * (Transfer.sp) and arg in rax (Transfer.data), loads rsp from LINK, pops rbp and
 * `ret`s to S.  switch_in then pops rbx and returns to R (enter pops the six
 * registers it pushed).
 *
 * DWARF CFI: inside the trampoline (at the `call` of entry) the CFA of the frame
 * above is *(rsp + 16) + 16 = LINK + 16 (just above S), the return address is at
 * CFA-8 (S) and rbp at CFA-16.  The next frame is enter/switch_in at S, whose own
 * CFI finds R and the registers it saved.  A backtrace or debugger walking up from
 * the coroutine therefore continues into the frames of whoever last resumed it.
 * rbp is pointed at top-16 so that frame-pointer walkers (perf --call-graph=fp)
 * follow the same path: [top-16] is the resumer's frame record {rbp, S}.
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
    callq   2f                      /* push S; returns when the coroutine suspends */
    .cfi_remember_state
    RESTORE_REGS_AND_RET            /* rax = data, rdx = sp */
2:  .cfi_restore_state
    .cfi_adjust_cfa_offset 8        /* S */
    pushq   %rbp                    /* frame record {rbp, S} */
    .cfi_adjust_cfa_offset 8
    movq    %rsp, -16(%rsi)         /* LINK */
    leaq    1f(%rip), %rax
    movq    %rax, -8(%rsi)          /* fake return address for FP walkers */
    leaq    -32(%rsi), %rsp         /* switch to the new stack (one instruction) */
    /* From here on the frame above is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg7 (rsp) 16, DW_OP_deref, DW_OP_plus_uconst 16
     * The return address (S) is at CFA-8 and rbp at CFA-16; the other registers are
     * described by the CFI of the frame at S. */
    .cfi_escape 0x0f, 0x05, 0x77, 0x10, 0x06, 0x23, 0x10
    .cfi_offset %rbp, -16
    .cfi_same_value %rbx
    .cfi_same_value %r12
    .cfi_same_value %r13
    .cfi_same_value %r14
    .cfi_same_value %r15
    leaq    16(%rsp), %rsi          /* second argument: &LINK */
    movq    %rsi, %rbp              /* frame record for FP walkers */
    callq   *%rdx                   /* entry(arg, link); never returns */
1:  ud2
    .cfi_endproc
FUNC_END(stackful_fiber_enter)

/* stackful_fiber_switch_in: rdi = arg, rsi = link, rdx = sp; returns rax = data,
 * rdx = sp.  Own calling convention (see the header): called only from the asm!
 * block of `switch_in` in src/arch.rs, which declares every register but rsp, rbp
 * and rbx clobbered.  rbx is saved here, rbp by the continuation's frame record. */
FUNC_BEGIN(stackful_fiber_switch_in)
    .cfi_startproc
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rbx, -16
    callq   *(%rdx)                 /* push S; returns when the coroutine suspends */
    popq    %rbx                    /* rax = data, rdx = sp */
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    ret
    .cfi_endproc
FUNC_END(stackful_fiber_switch_in)

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
