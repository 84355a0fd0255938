/*
 * stackful: context switch for x86_64, System V ABI (Linux, the BSDs, macOS).
 *
 * Both halves of a switch are inline assembly in src/switch_out.rs (`switch_in`,
 * `enter`, `switch_out`); this file has the one piece that is not: the code that
 * starts a coroutine on a fresh stack, which `enter` calls.
 *
 *   stackful_fiber_start(rdi = arg, rsi = top, rdx = entry)
 *       Not an `extern "C"` function: it is `call`ed from `enter`'s inline assembly
 *       after that has pushed rbp and rbx, and it returns (into `enter`) only when
 *       the coroutine suspends, with rax = data (the `arg` the coroutine suspended
 *       with) and rdx = the coroutine's saved stack pointer.  It starts
 *       `entry(arg, link)` (an `extern "C"` function that never returns) on the stack
 *       whose 16-byte aligned highest address is `top`.
 *
 * Why the switch is inline.  The CPU predicts `ret` targets from a return-stack
 * buffer filled by `call`s.  Resuming `call`s the coroutine's continuation and the
 * coroutine's suspension `ret`s to exactly that call site, so every return of a
 * round trip is predicted (with an out-of-line suspend function, both returns of
 * every round trip were mispredicted: 26.6 ns vs 9.6 ns per generator round trip,
 * BENCHMARKS.md).  And with both halves inline, each side saves only what the
 * compiler has live there instead of all six callee-saved registers.
 *
 * Registers.  Rust's `asm!` cannot name rbx or rbp, so both halves push and pop
 * them by hand; every other register (r12-r15 included) is declared clobbered, so
 * the compiler saves around a switch exactly the callee-saved registers that are
 * live in the calling code.  (SysV has no callee-saved vector registers.)
 *
 * Not saved: the MXCSR control bits and the x87 control word.  SysV makes them
 * callee-saved, but a coroutine is code running *on the current thread*: it shares
 * the thread's floating-point environment exactly as C's <fenv.h> defines it (per
 * thread), the way a callback would.  Saving them costs an ldmxcsr/fldcw pair per
 * switch for a state Rust code never changes.  corosensei makes the same choice.
 *
 * Resumer's stack while the coroutine runs (grows down); C = the resumer's rsp
 * outside the inline assembly of `switch_in`/`enter`:
 *
 *     C+0     (resumer's frame)
 *     C-8     rbp                  pushed by switch_in/enter
 *     C-16    rbx                  pushed by switch_in/enter
 *     C-24    S: return address of the `call` in switch_in/enter (the
 *             coroutine's suspension `ret`s here)
 *     C-32    rbp again            <- LINK points here: {rbp, S} is a frame record
 *
 * Suspended coroutine's stack (written by switch_out; `sp` points at its lowest word):
 *
 *     sp + 0   continuation address (where to `call` to resume it)
 *     sp + 8   rbx
 *     sp + 16  rbp
 *
 * Top of a coroutine stack (set up by stackful_fiber_start):
 *
 *     top - 8   fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record (C-32 above), written
 *               on every resume, read by every suspend.  `link` points here.
 *     top - 24  flags word, owned by Rust (cancellation state)
 *     top - 32  word owned by Rust (which poll was current at the last resume)
 *     top - 40  return address of `call *entry` (label 1), then entry's frames.
 *
 * Resume, step by step: switch_in pushes rbp and rbx, then `call`s the continuation
 * found at [sp] with rdi = arg, rsi = link, rdx = sp.  The continuation (in
 * switch_out) pushes rbp (completing the frame record), stores rsp in LINK, moves
 * rsp to sp + 8, pops rbx and rbp and falls through into the coroutine.  Suspend:
 * switch_out pushes rbp, rbx and its continuation, puts its rsp in rdx and arg in
 * rax, loads rsp from LINK, pops rbp and `ret`s to S.  switch_in then pops rbx and
 * rbp.  Starting is the same with stackful_fiber_start as the continuation.
 *
 * DWARF CFI: inside the trampoline (at the `call` of entry) the CFA of the frame
 * above is *(rsp + 16) + 32 = LINK + 32 = C, the return address (S) is at CFA-24,
 * rbx at CFA-16 and rbp at CFA-8 (also at CFA-32).  The next frame is the Rust
 * function containing switch_in/enter, at S, with rsp = C as its own CFI expects
 * there; its CFI restores the registers its prologue saved.  A backtrace or
 * debugger walking up from the coroutine therefore continues into the frames of
 * whoever last resumed it.  rbp is pointed at top-16 so that frame-pointer walkers
 * (perf --call-graph=fp) follow the same path: [top-16] is the resumer's frame
 * record {rbp, S}.
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

    .text

/* stackful_fiber_start(rdi = arg, rsi = top, rdx = entry); see the header. */
FUNC_BEGIN(stackful_fiber_start)
    .cfi_startproc
    /* Entered by `call` from `enter` (after its pushes of rbp and rbx): the default
     * CFI (CFA = rsp + 8, return address at CFA-8) holds until the stack switch. */
    pushq   %rbp                    /* frame record {rbp, S} */
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rbp, -16
    movq    %rsp, -16(%rsi)         /* LINK */
    leaq    1f(%rip), %rax
    movq    %rax, -8(%rsi)          /* fake return address for FP walkers */
    leaq    -32(%rsi), %rsp         /* switch to the new stack (one instruction) */
    /* From here on the frame above is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg7 (rsp) 16, DW_OP_deref, DW_OP_plus_uconst 32
     * The return address (S) is at CFA-24 (DWARF register 16 is the return address
     * column, rip), rbx at CFA-16, rbp at CFA-8; the other registers are described by
     * the CFI of the frame at S. */
    .cfi_escape 0x0f, 0x05, 0x77, 0x10, 0x06, 0x23, 0x20
    .cfi_offset 16, -24
    .cfi_offset %rbx, -16
    .cfi_offset %rbp, -8
    .cfi_same_value %r12
    .cfi_same_value %r13
    .cfi_same_value %r14
    .cfi_same_value %r15
    leaq    16(%rsp), %rsi          /* second argument: &LINK */
    movq    %rsi, %rbp              /* frame record for FP walkers */
    callq   *%rdx                   /* entry(arg, link); never returns */
1:  ud2
    .cfi_endproc
FUNC_END(stackful_fiber_start)

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
