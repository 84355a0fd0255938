/*
 * stackful: context switch for x86_64 Windows, Microsoft x64 ABI (x86_64-pc-windows-gnu,
 * assembled by MinGW-w64's GNU as).
 *
 * Three functions, all called from Rust as ordinary `extern "C"` (= Win64) functions:
 *
 *   Transfer stackful_fiber_enter(usize arg, void *top,
 *                                 void (*entry)(usize arg, usize *link),
 *                                 const StackTib *tib)
 *       Start `entry` on a fresh stack whose (16-byte aligned) highest address is `top`
 *       and whose Thread Information Block fields are `*tib` (src/stack/windows.rs).
 *       Returns when the coroutine first switches out.
 *   Transfer stackful_fiber_switch_in(usize arg, void *sp, usize *link)
 *       Resume a suspended coroutine whose saved stack pointer is `sp`.
 *       Returns when the coroutine switches out again.
 *   usize    stackful_fiber_switch_out(usize arg, usize *link)
 *       Called on a coroutine stack: suspend it and return to whoever resumed it.
 *       Returns the `arg` of the switch_in that resumes it.
 *
 *   struct Transfer { usize data; void *sp; }   16 bytes, so Win64 returns it through
 *   a hidden pointer: the caller passes it in rcx (the visible arguments move to rdx,
 *   r8, r9 and the stack) and the callee returns it in rax.  enter and switch_in keep
 *   their hidden pointer in their saved-register area; the switch_out that returns to
 *   them writes the Transfer through it.
 *   data = the `arg` given by the other side; sp = where the coroutine that just
 *   suspended saved its registers (pass it to the next switch_in).
 *
 * Arguments: enter(rcx = out, rdx = arg, r8 = top, r9 = entry, [rsp+40] = tib),
 * switch_in(rcx = out, rdx = arg, r8 = sp, r9 = link), switch_out(rcx = arg,
 * rdx = link).  All three are only ever entered by a `call`, so the caller has saved
 * the volatile registers (rax, rcx, rdx, r8-r11, xmm0-xmm5) it needs; a switch saves
 * exactly the nonvolatile set:
 *
 *   rbx, rbp, rdi, rsi, r12-r15, xmm6-xmm15 (all 128 bits), rsp (the handle itself),
 *
 * and the per-thread stack fields of the Thread Information Block (gs:), which Windows
 * reads while code runs on the stack: exception dispatch (Rust panics are SEH
 * exceptions) rejects frames outside StackLimit..StackBase, and the memory manager
 * grows a stack by its PAGE_GUARD page, and raises STATUS_STACK_OVERFLOW at its end,
 * only between DeallocationStack and StackBase.  The fields that SwitchToFiber
 * switches (Boost.Context and corosensei switch the same stack fields):
 *
 *   gs:0x00    NT_TIB.ExceptionList    (unused by 64-bit Windows; wine chains its
 *                                       own handler frames there and calls those
 *                                       below the faulting rsp, so each stack needs
 *                                       its own list: -1, the empty list, at first)
 *   gs:0x08    NT_TIB.StackBase        (highest address of the stack)
 *   gs:0x10    NT_TIB.StackLimit       (lowest committed address; the kernel lowers
 *                                       it as the stack grows)
 *   gs:0x1478  TEB.DeallocationStack   (base of the stack's reservation)
 *   gs:0x1748  TEB.GuaranteedStackBytes (32 bits; SetThreadStackGuarantee)
 *
 * Not saved: MXCSR and the x87 control word (thread state shared with the coroutine,
 * as on every other architecture; see asm/x86_64.S).
 *
 * Saved-register area (0x120 bytes), written by every switch on the stack being
 * left.  `sp` (the value handed to the other side) points at its lowest byte:
 *
 *     sp + 0x00  xmm6       sp + 0x10  xmm7       sp + 0x20  xmm8
 *     sp + 0x30  xmm9       sp + 0x40  xmm10      sp + 0x50  xmm11
 *     sp + 0x60  xmm12      sp + 0x70  xmm13      sp + 0x80  xmm14
 *     sp + 0x90  xmm15
 *     sp + 0xa0  hidden Transfer pointer (enter/switch_in only)
 *     sp + 0xa8  GuaranteedStackBytes     sp + 0xb0  DeallocationStack
 *     sp + 0xb8  StackLimit               sp + 0xc0  StackBase
 *     sp + 0xc8  ExceptionList            sp + 0xd0  (padding: 16-byte alignment)
 *     sp + 0xd8  r15        sp + 0xe0  r14        sp + 0xe8  r13
 *     sp + 0xf0  r12        sp + 0xf8  rsi        sp + 0x100 rdi
 *     sp + 0x108 rbx        sp + 0x110 rbp
 *     sp + 0x118 return address into the caller of enter/switch_in/switch_out
 *     sp + 0x120 (caller's frame: its 32-byte home area, then stack arguments)
 *
 * The area is built by an ordinary prologue (8 pushes, `sub rsp, 0xd8`, `movaps` of
 * xmm6-xmm15) described by SEH unwind codes (.seh_* directives), then the TIB fields
 * are copied in.  Both sides use the same layout, so resuming either side is: load
 * rsp, reload xmm6-xmm15 and the TIB fields, `add rsp, 0xd8`, pop 8, ret.
 *
 * Coroutine stack, at the top (set up by stackful_fiber_enter):
 *
 *     top - 8   unused
 *     top - 16  LINK: the resumer's `sp` (its saved-register area).  Written by enter
 *               and by every switch_in, read by switch_out.  `link` points here.
 *     top - 24  flags word, owned by the Rust side (cancellation state)
 *     top - 32  word owned by the Rust side (which poll resumed the coroutine)
 *     top - 40  RESUME: an address inside the resumer's enter/switch_in, just after
 *               its prologue.  Written with LINK.
 *     top - 48  unused
 *     top - 80  entry's 32-byte home area (Win64 callers provide it)
 *     top - 88  return address of `call *entry` (inside the trampoline), then
 *               entry's frames.
 *
 * Backtraces.  DWARF CFI plays no part on Windows: Windows and Rust's std walk
 * stacks with RtlVirtualUnwind and the SEH unwind data (.pdata/.xdata) of each
 * function.  The trampoline that calls `entry` is described as a frame that the
 * hardware pushed (UWOP_PUSH_MACHFRAME, .seh_pushframe) 40 bytes above its stack
 * pointer, at top - 40: the unwinder reads the return address from top - 40 (RESUME)
 * and the caller's rsp from top - 16 (LINK).  RESUME lies in the body of enter or
 * switch_in, whose unwind codes then restore the resumer's registers from its saved
 * area and return into its Rust caller.  So a backtrace taken on a coroutine (and
 * any debugger using the same unwind data) continues into the frames of whoever last
 * resumed it, as with the DWARF CFI of the other architectures.  Exception dispatch
 * stops at that boundary: Rust panics never cross it (the coroutine's entry catches
 * them and the resumer re-raises them), and a frame on another stack is outside the
 * TIB bounds installed for the coroutine.
 */

#define FUNC_BEGIN(name) .globl name; .def name; .scl 2; .type 32; .endef; .p2align 4; name:
#define LOCAL_FUNC_BEGIN(name) .def name; .scl 3; .type 32; .endef; .p2align 4; name:

/* The prologue that builds the saved-register area, with its unwind codes. */
#define SAVE_REGS                                                   \
    pushq   %rbp;               .seh_pushreg %rbp;                  \
    pushq   %rbx;               .seh_pushreg %rbx;                  \
    pushq   %rdi;               .seh_pushreg %rdi;                  \
    pushq   %rsi;               .seh_pushreg %rsi;                  \
    pushq   %r12;               .seh_pushreg %r12;                  \
    pushq   %r13;               .seh_pushreg %r13;                  \
    pushq   %r14;               .seh_pushreg %r14;                  \
    pushq   %r15;               .seh_pushreg %r15;                  \
    subq    $0xd8, %rsp;        .seh_stackalloc 0xd8;               \
    movaps  %xmm6, 0x00(%rsp);  .seh_savexmm %xmm6, 0x00;           \
    movaps  %xmm7, 0x10(%rsp);  .seh_savexmm %xmm7, 0x10;           \
    movaps  %xmm8, 0x20(%rsp);  .seh_savexmm %xmm8, 0x20;           \
    movaps  %xmm9, 0x30(%rsp);  .seh_savexmm %xmm9, 0x30;           \
    movaps  %xmm10, 0x40(%rsp); .seh_savexmm %xmm10, 0x40;          \
    movaps  %xmm11, 0x50(%rsp); .seh_savexmm %xmm11, 0x50;          \
    movaps  %xmm12, 0x60(%rsp); .seh_savexmm %xmm12, 0x60;          \
    movaps  %xmm13, 0x70(%rsp); .seh_savexmm %xmm13, 0x70;          \
    movaps  %xmm14, 0x80(%rsp); .seh_savexmm %xmm14, 0x80;          \
    movaps  %xmm15, 0x90(%rsp); .seh_savexmm %xmm15, 0x90;          \
    .seh_endprologue

/* Copy the current TIB stack fields into the area (clobbers rax). */
#define SAVE_TIB                                                    \
    movq    %gs:0x00, %rax;     movq %rax, 0xc8(%rsp);              \
    movq    %gs:0x08, %rax;     movq %rax, 0xc0(%rsp);              \
    movq    %gs:0x10, %rax;     movq %rax, 0xb8(%rsp);              \
    movq    %gs:0x1478, %rax;   movq %rax, 0xb0(%rsp);              \
    movl    %gs:0x1748, %eax;   movq %rax, 0xa8(%rsp)

/* Reload everything from the area at rsp and return into it (keeps rax). */
#define RESTORE_REGS_AND_RET                                        \
    movaps  0x00(%rsp), %xmm6;                                      \
    movaps  0x10(%rsp), %xmm7;                                      \
    movaps  0x20(%rsp), %xmm8;                                      \
    movaps  0x30(%rsp), %xmm9;                                      \
    movaps  0x40(%rsp), %xmm10;                                     \
    movaps  0x50(%rsp), %xmm11;                                     \
    movaps  0x60(%rsp), %xmm12;                                     \
    movaps  0x70(%rsp), %xmm13;                                     \
    movaps  0x80(%rsp), %xmm14;                                     \
    movaps  0x90(%rsp), %xmm15;                                     \
    movq    0xc8(%rsp), %r10;   movq %r10, %gs:0x00;                \
    movq    0xc0(%rsp), %r10;   movq %r10, %gs:0x08;                \
    movq    0xb8(%rsp), %r10;   movq %r10, %gs:0x10;                \
    movq    0xb0(%rsp), %r10;   movq %r10, %gs:0x1478;              \
    movl    0xa8(%rsp), %r10d;  movl %r10d, %gs:0x1748;             \
    addq    $0xd8, %rsp;                                            \
    popq    %r15;                                                   \
    popq    %r14;                                                   \
    popq    %r13;                                                   \
    popq    %r12;                                                   \
    popq    %rsi;                                                   \
    popq    %rdi;                                                   \
    popq    %rbx;                                                   \
    popq    %rbp;                                                   \
    ret

    .text

/* Transfer stackful_fiber_enter(rcx = out, rdx = arg, r8 = top, r9 = entry,
 *                               [rsp+40] = tib) */
FUNC_BEGIN(stackful_fiber_enter)
    .seh_proc stackful_fiber_enter
    SAVE_REGS
1:  SAVE_TIB                        /* RESUME points here: the area is complete */
    movq    %rcx, 0xa0(%rsp)        /* hidden Transfer pointer */
    movq    0x140(%rsp), %r10       /* tib: above the area (0x120) and the home area */
    leaq    1b(%rip), %rax
    movq    %rax, -40(%r8)          /* RESUME */
    movq    %rsp, -16(%r8)          /* LINK */
    movq    $-1, %gs:0x00           /* ExceptionList: empty */
    movq    0(%r10), %rax           /* the new stack's TIB fields */
    movq    %rax, %gs:0x08          /* StackBase */
    movq    8(%r10), %rax
    movq    %rax, %gs:0x10          /* StackLimit */
    movq    16(%r10), %rax
    movq    %rax, %gs:0x1478        /* DeallocationStack */
    movl    $0, %gs:0x1748          /* GuaranteedStackBytes */
    leaq    -80(%r8), %rsp          /* switch to the new stack */
    movq    %rdx, %rcx              /* entry's arguments: arg ... */
    leaq    -16(%r8), %rdx          /* ... and &LINK */
    jmp     stackful_fiber_trampoline
    .seh_endproc

/* Calls entry(rcx = arg, rdx = link) at r9 with rsp = top - 80.  Its unwind data
 * says: 40 bytes above rsp (at top - 40) is a machine frame {rip, cs, eflags, rsp,
 * ss}, i.e. return to [top - 40] = RESUME with rsp = [top - 16] = LINK. */
LOCAL_FUNC_BEGIN(stackful_fiber_trampoline)
    .seh_proc stackful_fiber_trampoline
    .seh_pushframe
    .seh_stackalloc 40
    .seh_endprologue
    callq   *%r9                    /* entry(arg, link); never returns */
    ud2
    .seh_endproc

/* Transfer stackful_fiber_switch_in(rcx = out, rdx = arg, r8 = sp, r9 = link) */
FUNC_BEGIN(stackful_fiber_switch_in)
    .seh_proc stackful_fiber_switch_in
    SAVE_REGS
1:  SAVE_TIB                        /* RESUME points here */
    movq    %rcx, 0xa0(%rsp)        /* hidden Transfer pointer */
    leaq    1b(%rip), %rax
    movq    %rax, -24(%r9)          /* RESUME (top - 40 = link - 24) */
    movq    %rsp, (%r9)             /* LINK = our saved-register area */
    movq    %r8, %rsp               /* switch (same layout) */
    movq    %rdx, %rax              /* the coroutine's switch_out returns arg */
    RESTORE_REGS_AND_RET
    .seh_endproc

/* usize stackful_fiber_switch_out(rcx = arg, rdx = link) */
FUNC_BEGIN(stackful_fiber_switch_out)
    .seh_proc stackful_fiber_switch_out
    SAVE_REGS
    SAVE_TIB                        /* the coroutine's, StackLimit as grown so far */
    movq    %rsp, %r11              /* Transfer.sp: where we saved our registers */
    movq    (%rdx), %rsp            /* the resumer's saved-register area */
    movq    0xa0(%rsp), %rax        /* its hidden Transfer pointer */
    movq    %rcx, 0(%rax)           /* Transfer.data = arg */
    movq    %r11, 8(%rax)           /* Transfer.sp */
    RESTORE_REGS_AND_RET            /* rax = the Transfer pointer, as Win64 requires */
    .seh_endproc

/* usize stackful_valgrind_request(rcx = default, rdx = args)
 *
 * valgrind.h's client-request sequence for amd64 (the same for PLAT_amd64_win64 built
 * by GCC as for Linux): rax = args, rdx = default, the rdi rotations (by 128 bits in
 * all, so rdi is unchanged natively), `xchg %rbx, %rbx`: rdx = client_request(rax).
 * Natively it returns `default`.  Valgrind does not run Windows programs (except wine
 * itself); this keeps the Rust side the same on every target.  A leaf function with no
 * stack use, so it needs no unwind data. */
FUNC_BEGIN(stackful_valgrind_request)
    movq    %rdx, %rax              /* request block */
    movq    %rcx, %rdx              /* default result */
    rolq    $3, %rdi
    rolq    $13, %rdi
    rolq    $61, %rdi
    rolq    $51, %rdi
    xchgq   %rbx, %rbx              /* rdx = client_request(rax) */
    movq    %rdx, %rax
    ret
