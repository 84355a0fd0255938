/*
 * stackful: context switch for 32-bit x86 (i686), System V i386 ABI (Linux, the BSDs).
 *
 * Three functions, all called from Rust as ordinary `extern "C"` (cdecl) functions:
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
 *   struct Transfer { usize data; void *sp; }   returned in edx:eax as a 64-bit
 *   integer (data in eax, sp in edx).  The i386 System V ABI returns every struct
 *   through a hidden pointer, so src/arch.rs declares these two functions as
 *   returning u64 on this architecture and splits it.
 *   data = the `arg` given by the other side; sp = where the coroutine that just
 *   suspended saved its registers (pass it to the next switch_in).
 *
 * Arguments arrive on the stack (cdecl: the caller pops them): at entry, [esp+4],
 * [esp+8], [esp+12].  All three functions are only ever entered by a `call`, so the
 * caller has already saved every caller-saved register (eax, ecx, edx, the x87 stack
 * and all xmm registers) it needs; a switch therefore saves exactly the callee-saved
 * set.  The stack is 16-byte aligned at every call (what GCC and Rust assume on
 * Linux), so esp = 12 (mod 16) at entry.
 *
 * Registers saved on every switch: ebx, esi, edi, ebp (and esp, which is the handle
 * itself).  No vector register is callee-saved.
 *
 * Not saved: the MXCSR control bits and the x87 control word.  The i386 ABI makes
 * them callee-saved, but a coroutine is code running *on the current thread*: it
 * shares the thread's floating-point environment exactly as C's <fenv.h> defines it
 * (per thread), the way a callback would.  Saving them costs an ldmxcsr/fldcw pair
 * on every switch (both serialising on many cores) for a state Rust code never
 * changes.  This is the same choice as asm/x86_64.S (and corosensei's).
 *
 * Saved-register area, written by every switch on the stack being left.  `sp`
 * (the value handed to the other side) points at its lowest word:
 *
 *     sp + 0   edi
 *     sp + 4   esi
 *     sp + 8   ebx
 *     sp + 12  ebp  <- "frame record": [sp+12] = saved ebp, [sp+16] = return address
 *     sp + 16  return address into the caller of enter/switch_in/switch_out
 *     sp + 20  the arguments (caller's frame; this is the CFA of the switch function)
 *
 * Both sides use the same layout, so resuming either side is: load esp, pop 4, ret.
 *
 * Coroutine stack, at the top (set up by stackful_fiber_enter).  The slots shared
 * with Rust sit at the same byte offsets as on the 64-bit architectures (LINK at
 * top-16); words are 4 bytes here:
 *
 *     top - 4   unused
 *     top - 8   unused
 *     top - 12  fake return address (label 1 below), for frame-pointer walkers
 *     top - 16  LINK: address of the resumer's frame record (its sp + 12).  Written
 *               by enter and by every switch_in, read by switch_out.  `link` in the
 *               signatures above points here.
 *     top - 20  flags word, owned by the Rust side (cancellation state)
 *     top - 24  word owned by the Rust side (which poll resumed the coroutine)
 *     top - 28  entry's second argument: link (= top - 16)
 *     top - 32  entry's first argument: arg      <- esp at `call *entry` (16-aligned)
 *     top - 36  return address of `call *entry` (label 1), then entry's frames.
 *
 * DWARF CFI: inside the trampoline (at the `call`), the CFA of the resumer's switch
 * frame is computed as *(esp + 16) + 8 = LINK + 8, and eip/ebp/ebx/esi/edi are found
 * at CFA-4 ... CFA-20 exactly as in the table above.  A backtrace or an unwinder
 * walking up from the coroutine therefore continues into the frames of whoever last
 * resumed it.  ebp is pointed at top-16 so that frame-pointer based walkers follow
 * the same path: [top-16] is the resumer's frame record, [top-12] a return address
 * inside this file.
 *
 * No absolute addresses: the code is position independent (PIE executables carry
 * no text relocations); the fake return address is computed with call/pop.
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
    pushl %ebp;  .cfi_adjust_cfa_offset 4;          \
                 .cfi_offset %ebp, -8;              \
    pushl %ebx;  .cfi_adjust_cfa_offset 4;          \
                 .cfi_offset %ebx, -12;             \
    pushl %esi;  .cfi_adjust_cfa_offset 4;          \
                 .cfi_offset %esi, -16;             \
    pushl %edi;  .cfi_adjust_cfa_offset 4;          \
                 .cfi_offset %edi, -20

/* Pop them from the (other) stack and return into it. */
#define RESTORE_REGS_AND_RET                        \
    popl %edi;   .cfi_adjust_cfa_offset -4;         \
    popl %esi;   .cfi_adjust_cfa_offset -4;         \
    popl %ebx;   .cfi_adjust_cfa_offset -4;         \
    popl %ebp;   .cfi_adjust_cfa_offset -4;         \
    ret

/* Offsets of the arguments once SAVE_REGS has run. */
#define ARG0 20(%esp)
#define ARG1 24(%esp)
#define ARG2 28(%esp)

    .text

/* Transfer stackful_fiber_enter(arg, top, entry) */
FUNC_BEGIN(stackful_fiber_enter)
    .cfi_startproc
    SAVE_REGS
    movl    ARG0, %eax              /* arg */
    movl    ARG1, %ecx              /* top */
    movl    ARG2, %edx              /* entry */
    leal    12(%esp), %ebx          /* resumer's frame record */
    movl    %ebx, -16(%ecx)         /* LINK */
    call    2f                      /* ebx = address of label 2 ... */
2:  .cfi_adjust_cfa_offset 4
    popl    %ebx
    .cfi_adjust_cfa_offset -4
    addl    $(1f - 2b), %ebx        /* ... + (1f - 2b) = label 1 */
    movl    %ebx, -12(%ecx)         /* fake return address for FP walkers */
    leal    -32(%ecx), %esp         /* switch to the new stack (one instruction) */
    /* From here on the caller's frame is found through LINK:
     * DW_CFA_def_cfa_expression, 5 bytes:
     *   DW_OP_breg4 (esp) 16, DW_OP_deref, DW_OP_plus_uconst 8
     * Register rules (ebp at CFA-8 ...) are unchanged from SAVE_REGS. */
    .cfi_escape 0x0f, 0x05, 0x74, 0x10, 0x06, 0x23, 0x08
    leal    -16(%ecx), %ebp         /* &LINK, and the frame record for FP walkers */
    movl    %eax, 0(%esp)           /* entry's arguments: arg ... */
    movl    %ebp, 4(%esp)           /* ... and link */
    call    *%edx                   /* entry(arg, link); never returns */
1:  ud2
    .cfi_endproc
FUNC_END(stackful_fiber_enter)

/* Transfer stackful_fiber_switch_in(arg, sp, link) */
FUNC_BEGIN(stackful_fiber_switch_in)
    .cfi_startproc
    SAVE_REGS
    movl    ARG0, %eax              /* the coroutine's switch_out returns arg */
    movl    ARG1, %ecx              /* sp */
    movl    ARG2, %edx              /* link */
    leal    12(%esp), %ebx
    movl    %ebx, (%edx)            /* LINK = our frame record */
    movl    %ecx, %esp              /* switch (one instruction; same layout, same CFI) */
    RESTORE_REGS_AND_RET
    .cfi_endproc
FUNC_END(stackful_fiber_switch_in)

/* usize stackful_fiber_switch_out(arg, link) */
FUNC_BEGIN(stackful_fiber_switch_out)
    .cfi_startproc
    SAVE_REGS
    movl    ARG0, %eax              /* Transfer.data = arg (eax) */
    movl    ARG1, %ecx              /* link */
    movl    %esp, %edx              /* Transfer.sp (edx): where we saved our registers */
    movl    (%ecx), %ecx            /* resumer's frame record ... */
    leal    -12(%ecx), %esp         /* ... is 12 bytes above its saved-register area */
    RESTORE_REGS_AND_RET
    .cfi_endproc
FUNC_END(stackful_fiber_switch_out)

/* usize stackful_valgrind_request(default, args)
 *
 * A valgrind "client request" (the x86 sequence documented in valgrind.h): under
 * valgrind it performs the request described by args[0..6] (request code, then up
 * to five 32-bit arguments) and returns its result; natively the rotations (by 64
 * bits in all) leave edi unchanged, `xchg %ebx, %ebx` is a no-op, and it returns
 * `default`.  Used to tell valgrind about coroutine stacks (VALGRIND_STACK_REGISTER/
 * DEREGISTER) when they are mapped and unmapped, never on the switch path.
 * Clobbers only eax, edx (caller-saved). */
FUNC_BEGIN(stackful_valgrind_request)
    .cfi_startproc
    movl    4(%esp), %edx           /* default result */
    movl    8(%esp), %eax           /* request block */
    roll    $3, %edi
    roll    $13, %edi
    roll    $29, %edi
    roll    $19, %edi
    xchgl   %ebx, %ebx              /* edx = client_request(eax) */
    movl    %edx, %eax
    ret
    .cfi_endproc
FUNC_END(stackful_valgrind_request)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",@progbits
#endif
