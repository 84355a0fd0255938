//! The suspending half of a context switch, as inline assembly (x86_64, aarch64).
//!
//! The resuming half (`stackful_fiber_enter`, `stackful_fiber_switch_in`) is in
//! `asm/<arch>.S`, whose header documents the stack layouts this code shares with it.
//! This half is inline so that the coroutine side of a switch makes no `call`:
//! resuming `call`s the continuation below, and suspending `ret`s to exactly that
//! call site, which keeps the CPU's return-address predictor right on every switch
//! (an out-of-line suspend function mispredicted both returns of every round trip;
//! see the assembly file's header for the numbers).
//!
//! Registers: the frame pointer and the registers that Rust's `asm!` cannot name
//! (rbx on x86_64; x19 on aarch64) are saved by hand; every other callee-saved
//! register is declared clobbered, so the compiler saves and restores around the
//! switch exactly the ones that are live in the calling code.

/// `asm!` for either half of a switch (this module's `switch_out`, and
/// `arch::switch_in`, which `call`s `stackful_fiber_switch_in`): appends, as
/// clobbered, every register that a switch does not save by hand and that `asm!` can
/// name. Both halves sit on the same boundary, so they share this one list: across a
/// switch only rsp, rbp and rbx survive (x86_64), only sp, x18, x19 and x29
/// (aarch64). The caller's operands must end with a comma.
#[cfg(target_arch = "x86_64")]
macro_rules! switch_asm {
    ($($template_and_operands:tt)*) => {
        std::arch::asm!(
            $($template_and_operands)*
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        )
    };
}

/// See the x86_64 version.
#[cfg(target_arch = "aarch64")]
macro_rules! switch_asm {
    ($($template_and_operands:tt)*) => {
        std::arch::asm!(
            $($template_and_operands)*
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
        )
    };
}

pub(crate) use switch_asm;

/// Suspends the running coroutine, whose LINK slot is `link`, returning `arg` (and
/// this coroutine's stack pointer) to its resumer; returns the `arg` of the next
/// resume.
///
/// # Safety
/// Must run on a coroutine stack whose LINK slot `link` holds the frame record of a
/// resumer that is blocked in `stackful_fiber_enter`/`stackful_fiber_switch_in`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn switch_out(arg: usize, link: *mut usize) -> usize {
    let resumed_with: usize;
    // SAFETY: per the caller. The block leaves with rsp on the resumer's stack and
    // comes back (at label 2, `call`ed by the resumer's switch_in) with rsp, rbx and
    // rbp restored to what they were on entry; all other registers are declared
    // clobbered (operands and `switch_asm!`) except rdi, which carries the resume
    // argument. `arg` goes in rax, where the resumer expects Transfer.data: the
    // compiler moves it there directly, one `mov` fewer than passing it in rdi.
    unsafe {
        switch_asm!(
            // Save rbp, rbx and the continuation; our stack pointer is the handle.
            "push rbp",
            "push rbx",
            "lea rdx, [rip + 2f]",
            "push rdx",
            "mov rdx, rsp",   // Transfer.sp (Transfer.data is already in rax)
            // Return into the resumer through its frame record {rbp, S} at LINK.
            "mov rsp, [rsi]",
            "pop rbp",
            "ret",
            // Continuation, `call`ed by switch_in with rdi = arg, rsi = link,
            // rdx = our saved stack pointer; the call pushed S on the resumer's stack.
            "2:",
            "push rbp",       // frame record {rbp, S} on the resumer's stack
            "mov [rsi], rsp", // LINK
            "lea rsp, [rdx + 8]",
            "pop rbx",
            "pop rbp",
            inlateout("rax") arg => _,
            inlateout("rsi") link => _,
            lateout("rdi") resumed_with,
            lateout("rdx") _,
        );
    }
    resumed_with
}

/// See the x86_64 version. AArch64: the resumer's switch_in `blr`s the continuation
/// (x30 = S), and the suspension `ret`s to S after reloading {x29, x30} from the
/// frame record at LINK.
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
        switch_asm!(
            // Save {continuation, pad, x19, x29}; our stack pointer is the handle.
            "adr x9, 2f",
            "stp x9, xzr, [sp, #-32]!",
            "stp x19, x29, [sp, #16]",
            // Return into the resumer through its frame record {x29, S} at LINK.
            "ldr x11, [x1]",
            "mov x1, sp",           // Transfer.sp (x0, Transfer.data, is `arg`)
            "mov sp, x11",
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
            lateout("x11") _,
        );
    }
    resumed_with
}
