//! Both halves of a context switch, as inline assembly (x86_64, aarch64; not Windows).
//!
//! `asm/<arch>.S` has only the code that starts a coroutine on a fresh stack
//! (`stackful_fiber_start`, `call`ed by [`enter`]), and its header documents the stack
//! layouts this code shares with it.  The halves are inline for two reasons:
//!
//! * The coroutine side of a switch makes no `call`: resuming `call`s the
//!   continuation in [`switch_out`], and suspending `ret`s to exactly that call site
//!   (in [`switch_in`] or [`enter`]), which keeps the CPU's return-address predictor
//!   right on every switch (an out-of-line suspend function mispredicted both returns
//!   of every round trip; see the assembly file's header for the numbers).
//! * Registers: the frame pointer and the registers that Rust's `asm!` cannot name
//!   (rbx on x86_64; x19 on aarch64) are saved by hand on both sides; every other
//!   callee-saved register is declared clobbered, so the compiler saves and restores
//!   around the switch exactly the ones that are live in the calling code (an
//!   out-of-line resume function had to save all of them on every resume).

use crate::arch::{EntryFn, Transfer};

extern "C" {
    /// `asm/<arch>.S`: starts a coroutine; only ever `call`ed by [`enter`]'s assembly
    /// (it is not an `extern "C"` function; the signature here is a placeholder).
    fn stackful_fiber_start();
}

/// Starts `entry(arg, link)` on the stack whose highest address is `top`; returns when
/// the coroutine first suspends.
///
/// # Safety
/// As for [`crate::arch::enter`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn enter(arg: usize, top: usize, entry: EntryFn) -> Transfer {
    let (data, sp): (usize, usize);
    // SAFETY: per the caller. stackful_fiber_start (asm/x86_64.S) runs `entry` on the
    // new stack; the coroutine's first suspension (switch_out) `ret`s to just after
    // the `call` with rsp where the `call` left it, and the pops restore rbx and rbp.
    // Every other register is declared clobbered; rax/rdx carry the Transfer.
    unsafe {
        std::arch::asm!(
            "push rbp",
            "push rbx",
            "call {start}",
            "pop rbx",
            "pop rbp",
            start = in(reg) stackful_fiber_start as *const () as usize,
            inlateout("rdi") arg => _,
            inlateout("rsi") top => _,
            inlateout("rdx") entry as usize => sp,
            lateout("rax") data,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    Transfer { data, sp }
}

/// Resumes the coroutine suspended at `sp` whose LINK slot is `link`; returns when it
/// suspends again.
///
/// # Safety
/// As for [`crate::arch::switch_in`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn switch_in(arg: usize, sp: usize, link: *mut usize) -> Transfer {
    let (data, new_sp): (usize, usize);
    // SAFETY: per the caller, [sp] is the continuation of switch_out (below), which
    // takes rdi = arg, rsi = link, rdx = sp. The coroutine's next suspension `ret`s to
    // just after the `call` with rsp where the `call` left it, and the pops restore
    // rbx and rbp. Every other register is declared clobbered; rax/rdx carry the
    // Transfer.
    unsafe {
        std::arch::asm!(
            "push rbp",
            "push rbx",
            "call qword ptr [rdx]",
            "pop rbx",
            "pop rbp",
            inlateout("rdi") arg => _,
            inlateout("rsi") link => _,
            inlateout("rdx") sp => new_sp,
            lateout("rax") data,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    Transfer { data, sp: new_sp }
}

/// Suspends the running coroutine, whose LINK slot is `link`, returning `arg` (and
/// this coroutine's stack pointer) to its resumer; returns the `arg` of the next
/// resume.
///
/// # Safety
/// Must run on a coroutine stack whose LINK slot `link` holds the frame record of a
/// resumer that is blocked in [`switch_in`] or [`enter`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn switch_out(arg: usize, link: *mut usize) -> usize {
    let resumed_with: usize;
    // SAFETY: per the caller. The block leaves with rsp on the resumer's stack and
    // comes back (at label 2, `call`ed by the resumer's switch_in) with rsp, rbx and
    // rbp restored to what they were on entry; all other registers are declared
    // clobbered except rdi, which carries the resume argument.
    unsafe {
        std::arch::asm!(
            // Save rbp, rbx and the continuation; our stack pointer is the handle.
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov rdx, rsp",   // Transfer.sp
            "mov rax, rdi",   // Transfer.data
            // Return into the resumer through its frame record {rbp, S} at LINK.
            "mov rsp, [rsi]",
            "pop rbp",
            "ret",
            // Continuation, `call`ed by switch_in with rdi = arg, rsi = link,
            // rdx = our saved stack pointer; the call pushed S on the resumer's stack
            // (above it: rbx and rbp, pushed by switch_in).
            "2:",
            "push rbp",       // frame record {rbp, S} on the resumer's stack
            "mov [rsi], rsp", // LINK
            "lea rsp, [rdx + 8]",
            "pop rbx",
            "pop rbp",
            inlateout("rdi") arg => resumed_with,
            inlateout("rsi") link => _,
            lateout("rdx") _,
            lateout("rax") _,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    resumed_with
}

/// See the x86_64 version. AArch64: saves {x29, x19} by hand, `blr`s
/// stackful_fiber_start (x30 = S).
///
/// # Safety
/// As for [`crate::arch::enter`].
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn enter(arg: usize, top: usize, entry: EntryFn) -> Transfer {
    let (data, sp): (usize, usize);
    // SAFETY: per the caller. stackful_fiber_start (asm/aarch64.S) runs `entry` on the
    // new stack; the coroutine's first suspension (switch_out) `ret`s to S, just after
    // the `blr`, with sp where it was, and the `ldp` restores x29 and x19. Every other
    // register is declared clobbered; x0/x1 carry the Transfer.
    unsafe {
        std::arch::asm!(
            "stp x29, x19, [sp, #-16]!",
            "blr {start}",
            "ldp x29, x19, [sp], #16",
            start = in(reg) stackful_fiber_start as *const () as usize,
            inlateout("x0") arg => data,
            inlateout("x1") top => sp,
            inlateout("x2") entry as usize => _,
            lateout("x20") _,
            lateout("x21") _,
            lateout("x22") _,
            lateout("x23") _,
            lateout("x24") _,
            lateout("x25") _,
            lateout("x26") _,
            lateout("x27") _,
            lateout("x28") _,
            lateout("x30") _,
            lateout("v8") _,
            lateout("v9") _,
            lateout("v10") _,
            lateout("v11") _,
            lateout("v12") _,
            lateout("v13") _,
            lateout("v14") _,
            lateout("v15") _,
            clobber_abi("C"),
        );
    }
    Transfer { data, sp }
}

/// See the x86_64 version. AArch64: saves {x29, x19} by hand, `blr`s the continuation
/// found at [sp] (x30 = S).
///
/// # Safety
/// As for [`crate::arch::switch_in`].
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn switch_in(arg: usize, sp: usize, link: *mut usize) -> Transfer {
    let (data, new_sp): (usize, usize);
    // SAFETY: per the caller, [sp] is the continuation of switch_out (below), which
    // takes x0 = arg, x1 = link, x2 = sp. The coroutine's next suspension `ret`s to S,
    // just after the `blr`, with sp where it was, and the `ldp` restores x29 and x19.
    // Every other register is declared clobbered (x9 is scratch); x0/x1 carry the
    // Transfer.
    unsafe {
        std::arch::asm!(
            "stp x29, x19, [sp, #-16]!",
            "ldr x9, [x2]",
            "blr x9",
            "ldp x29, x19, [sp], #16",
            inlateout("x0") arg => data,
            inlateout("x1") link => new_sp,
            inlateout("x2") sp => _,
            lateout("x9") _,
            lateout("x20") _,
            lateout("x21") _,
            lateout("x22") _,
            lateout("x23") _,
            lateout("x24") _,
            lateout("x25") _,
            lateout("x26") _,
            lateout("x27") _,
            lateout("x28") _,
            lateout("x30") _,
            lateout("v8") _,
            lateout("v9") _,
            lateout("v10") _,
            lateout("v11") _,
            lateout("v12") _,
            lateout("v13") _,
            lateout("v14") _,
            lateout("v15") _,
            clobber_abi("C"),
        );
    }
    Transfer { data, sp: new_sp }
}

/// See the x86_64 version. AArch64: the resumer's switch_in `blr`s the continuation
/// (x30 = S; above S on the resumer's stack: {x29, x19}, stored by switch_in), and
/// the suspension `ret`s to S after reloading {x29, x30} from the frame record at
/// LINK.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn switch_out(arg: usize, link: *mut usize) -> usize {
    let resumed_with: usize;
    // SAFETY: per the caller. The block leaves with sp on the resumer's stack and
    // comes back (at label 2, `blr`ed by the resumer's switch_in) with sp, x19 and
    // x29 restored; all other registers are declared clobbered except x0, which
    // carries the resume argument.
    unsafe {
        std::arch::asm!(
            // Save {continuation, pad, x19, x29}; our stack pointer is the handle.
            "adr x9, 2f",
            "stp x9, xzr, [sp, #-32]!",
            "stp x19, x29, [sp, #16]",
            "mov x10, sp",          // Transfer.sp (x1 after the return)
            // Return into the resumer through its frame record {x29, S} at LINK.
            "ldr x11, [x1]",
            "mov sp, x11",
            "mov x1, x10",
            "ldp x29, x30, [sp], #16",
            "ret",
            // Continuation, `blr`ed by switch_in with x0 = arg, x1 = link,
            // x2 = our saved stack pointer, x30 = S.
            "2:",
            "stp x29, x30, [sp, #-16]!", // frame record {x29, S} on the resumer's stack
            "mov x9, sp",
            "str x9, [x1]",              // LINK
            "ldp x19, x29, [x2, #16]",
            "add sp, x2, #32",
            inlateout("x0") arg => resumed_with,
            inlateout("x1") link => _,
            lateout("x2") _,
            lateout("x9") _,
            lateout("x10") _,
            lateout("x11") _,
            lateout("x20") _,
            lateout("x21") _,
            lateout("x22") _,
            lateout("x23") _,
            lateout("x24") _,
            lateout("x25") _,
            lateout("x26") _,
            lateout("x27") _,
            lateout("x28") _,
            lateout("x30") _,
            lateout("v8") _,
            lateout("v9") _,
            lateout("v10") _,
            lateout("v11") _,
            lateout("v12") _,
            lateout("v13") _,
            lateout("v14") _,
            lateout("v15") _,
            clobber_abi("C"),
        );
    }
    resumed_with
}
