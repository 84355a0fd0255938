//! Every callee-saved register of the ABI survives every kind of switch, on both
//! sides of it.
//!
//! `check_callee_saved` (assembly, one per architecture, below) saves the callee-saved
//! registers of its caller, loads a distinct sentinel into every one of them, calls a
//! Rust closure, records what every callee-saved register holds when the closure
//! returns, and restores its caller's registers. [`checked`] wraps it: each call
//! takes a fresh seed, so every register of every call site has its own sentinel, and
//! a switch that fails to restore a register (or restores it from the wrong slot)
//! makes the checker find some other register's sentinel, which the failure message
//! names.
//!
//! The closures switch: the resumer resumes inside `checked` while the coroutine
//! yields inside `checked` with other seeds (a register the switch does not restore
//! leaks the other side's sentinel), and each side also runs `checked` on its own
//! between switches to clobber every register while the other side is suspended.
//!
//! Registers checked:
//! * x86_64 (System V): rbx, rbp, r12, r13, r14, r15.
//! * aarch64 (AAPCS64): x19-x28, x29 (fp) and d8-d15 (the low 64 bits of v8-v15).
//! * riscv64 (LP64D): s0-s11 (s0 is fp) and fs0-fs11 (all 64 bits).
//! * x86 (i386 System V): ebx, esi, edi, ebp. The sentinels are 32-bit there (stored
//!   zero-extended in the `u64` arrays).
//! * x86_64 Windows (Microsoft x64): rbx, rbp, rdi, rsi, r12-r15 and xmm6-xmm15 (all
//!   128 bits, as two sentinels each).
//!
//! The `backtrace_crosses_switch_*` tests check that a backtrace taken on a coroutine
//! stack continues into the frames of whoever resumed it (the DWARF CFI of the switch;
//! on Windows its SEH unwind data).

#![cfg(any(
    all(
        unix,
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64",
            target_arch = "x86"
        )
    ),
    all(windows, target_arch = "x86_64")
))]
#![warn(clippy::undocumented_unsafe_blocks)]

mod common;

use common::pend_n;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{stackful, wait};
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::future::Future;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// The closure `check_callee_saved` calls with the callee-saved registers set to
/// sentinels.
type Callback = unsafe extern "C" fn(ctx: *mut u8);

extern "C" {
    /// Saves the caller's callee-saved registers, loads `sentinels[i]` into register
    /// `REGISTERS[i]`, calls `f(ctx)` (with a 16-byte aligned stack), stores the value
    /// of register `REGISTERS[i]` into `out[i]`, restores the caller's registers and
    /// returns. `f` must not unwind.
    fn stackful_test_check_callee_saved(
        f: Callback,
        ctx: *mut u8,
        sentinels: *const u64,
        out: *mut u64,
    );

    /// Violates the ABI on purpose: overwrites two callee-saved registers (rbx and r12
    /// on x86_64, x20 and d9 on aarch64, s1 and fs1 on riscv64, ebx and esi on x86, rsi
    /// and the high half of xmm7 on Windows) and returns. Only ever called directly by the
    /// checker, which restores its own caller's registers.
    fn stackful_test_clobber_two(ctx: *mut u8);
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
const REGISTERS: [&str; 6] = ["rbx", "rbp", "r12", "r13", "r14", "r15"];

// System V x86_64: rbx, rbp and r12-r15 are the callee-saved registers (no vector
// register is callee-saved). On entry rsp = 8 (mod 16); after seven pushes it is
// 16-byte aligned for the call.
#[cfg(all(target_arch = "x86_64", not(windows)))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {check}",
    "{check}:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbp, -16",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbx, -24",
    "push r12",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r12, -32",
    "push r13",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r13, -40",
    "push r14",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r14, -48",
    "push r15",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r15, -56",
    // out (rcx is caller-saved: keep it on our stack across the call)
    "push rcx",
    ".cfi_adjust_cfa_offset 8",
    "mov rax, rdi",
    "mov rdi, rsi",
    "mov rbx, qword ptr [rdx]",
    "mov rbp, qword ptr [rdx + 8]",
    "mov r12, qword ptr [rdx + 16]",
    "mov r13, qword ptr [rdx + 24]",
    "mov r14, qword ptr [rdx + 32]",
    "mov r15, qword ptr [rdx + 40]",
    "call rax",
    "mov rcx, qword ptr [rsp]",
    "mov qword ptr [rcx], rbx",
    "mov qword ptr [rcx + 8], rbp",
    "mov qword ptr [rcx + 16], r12",
    "mov qword ptr [rcx + 24], r13",
    "mov qword ptr [rcx + 32], r14",
    "mov qword ptr [rcx + 40], r15",
    "pop rcx",
    ".cfi_adjust_cfa_offset -8",
    "pop r15",
    ".cfi_adjust_cfa_offset -8",
    "pop r14",
    ".cfi_adjust_cfa_offset -8",
    "pop r13",
    ".cfi_adjust_cfa_offset -8",
    "pop r12",
    ".cfi_adjust_cfa_offset -8",
    "pop rbx",
    ".cfi_adjust_cfa_offset -8",
    "pop rbp",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    check = sym stackful_test_check_callee_saved,
);

#[cfg(target_arch = "aarch64")]
const REGISTERS: [&str; 19] = [
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "d8", "d9", "d10",
    "d11", "d12", "d13", "d14", "d15",
];

// AAPCS64: x19-x28, x29 (fp), x30 (lr, our return address) and the low 64 bits of
// v8-v15 are callee-saved. Frame (176 bytes, sp stays 16-byte aligned):
//   sp+0 x29, x30 | sp+16..+95 x19-x28 | sp+96..+159 d8-d15 | sp+160 out
// sentinels[]/out[]: x19-x28 at 0..72, x29 at 80, d8-d15 at 88..144.
#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {check}",
    "{check}:",
    ".cfi_startproc",
    "stp x29, x30, [sp, #-176]!",
    ".cfi_def_cfa_offset 176",
    ".cfi_offset x29, -176",
    ".cfi_offset x30, -168",
    "stp x19, x20, [sp, #16]",
    ".cfi_offset x19, -160",
    ".cfi_offset x20, -152",
    "stp x21, x22, [sp, #32]",
    ".cfi_offset x21, -144",
    ".cfi_offset x22, -136",
    "stp x23, x24, [sp, #48]",
    ".cfi_offset x23, -128",
    ".cfi_offset x24, -120",
    "stp x25, x26, [sp, #64]",
    ".cfi_offset x25, -112",
    ".cfi_offset x26, -104",
    "stp x27, x28, [sp, #80]",
    ".cfi_offset x27, -96",
    ".cfi_offset x28, -88",
    "stp d8, d9, [sp, #96]",
    ".cfi_offset 72, -80",
    ".cfi_offset 73, -72",
    "stp d10, d11, [sp, #112]",
    ".cfi_offset 74, -64",
    ".cfi_offset 75, -56",
    "stp d12, d13, [sp, #128]",
    ".cfi_offset 76, -48",
    ".cfi_offset 77, -40",
    "stp d14, d15, [sp, #144]",
    ".cfi_offset 78, -32",
    ".cfi_offset 79, -24",
    // out (x3 is caller-saved: keep it on our stack across the call)
    "str x3, [sp, #160]",
    "mov x9, x0",
    "mov x0, x1",
    "ldp x19, x20, [x2, #0]",
    "ldp x21, x22, [x2, #16]",
    "ldp x23, x24, [x2, #32]",
    "ldp x25, x26, [x2, #48]",
    "ldp x27, x28, [x2, #64]",
    "ldr x29, [x2, #80]",
    "ldp d8, d9, [x2, #88]",
    "ldp d10, d11, [x2, #104]",
    "ldp d12, d13, [x2, #120]",
    "ldp d14, d15, [x2, #136]",
    "blr x9",
    "ldr x9, [sp, #160]",
    "stp x19, x20, [x9, #0]",
    "stp x21, x22, [x9, #16]",
    "stp x23, x24, [x9, #32]",
    "stp x25, x26, [x9, #48]",
    "stp x27, x28, [x9, #64]",
    "str x29, [x9, #80]",
    "stp d8, d9, [x9, #88]",
    "stp d10, d11, [x9, #104]",
    "stp d12, d13, [x9, #120]",
    "stp d14, d15, [x9, #136]",
    "ldp x19, x20, [sp, #16]",
    "ldp x21, x22, [sp, #32]",
    "ldp x23, x24, [sp, #48]",
    "ldp x25, x26, [sp, #64]",
    "ldp x27, x28, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "ldp x29, x30, [sp], #176",
    ".cfi_def_cfa_offset 0",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    check = sym stackful_test_check_callee_saved,
);

#[cfg(target_arch = "riscv64")]
const REGISTERS: [&str; 24] = [
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "fs0", "fs1", "fs2",
    "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
];

// LP64D: s0-s11 (s0 is fp), ra (our return address) and fs0-fs11 (whole 64-bit D
// registers) are callee-saved. Frame (208 bytes, sp stays 16-byte aligned):
//   sp+0..+87 s1-s11 | sp+88..+183 fs0-fs11 | sp+184 out | sp+192 s0 | sp+200 ra
// sentinels[]/out[]: s0-s11 at 0..88, fs0-fs11 at 96..184.
// DWARF numbers: ra 1, s0 8, s1 9, s2-s11 18-27, fs0 40, fs1 41, fs2-fs11 50-59.
#[cfg(target_arch = "riscv64")]
std::arch::global_asm!(
    ".text",
    ".p2align 2",
    ".globl {check}",
    "{check}:",
    ".cfi_startproc",
    "addi sp, sp, -208",
    ".cfi_def_cfa_offset 208",
    "sd ra, 200(sp)",
    ".cfi_offset 1, -8",
    "sd s0, 192(sp)",
    ".cfi_offset 8, -16",
    "sd s1, 0(sp)",
    ".cfi_offset 9, -208",
    "sd s2, 8(sp)",
    ".cfi_offset 18, -200",
    "sd s3, 16(sp)",
    ".cfi_offset 19, -192",
    "sd s4, 24(sp)",
    ".cfi_offset 20, -184",
    "sd s5, 32(sp)",
    ".cfi_offset 21, -176",
    "sd s6, 40(sp)",
    ".cfi_offset 22, -168",
    "sd s7, 48(sp)",
    ".cfi_offset 23, -160",
    "sd s8, 56(sp)",
    ".cfi_offset 24, -152",
    "sd s9, 64(sp)",
    ".cfi_offset 25, -144",
    "sd s10, 72(sp)",
    ".cfi_offset 26, -136",
    "sd s11, 80(sp)",
    ".cfi_offset 27, -128",
    "fsd fs0, 88(sp)",
    ".cfi_offset 40, -120",
    "fsd fs1, 96(sp)",
    ".cfi_offset 41, -112",
    "fsd fs2, 104(sp)",
    ".cfi_offset 50, -104",
    "fsd fs3, 112(sp)",
    ".cfi_offset 51, -96",
    "fsd fs4, 120(sp)",
    ".cfi_offset 52, -88",
    "fsd fs5, 128(sp)",
    ".cfi_offset 53, -80",
    "fsd fs6, 136(sp)",
    ".cfi_offset 54, -72",
    "fsd fs7, 144(sp)",
    ".cfi_offset 55, -64",
    "fsd fs8, 152(sp)",
    ".cfi_offset 56, -56",
    "fsd fs9, 160(sp)",
    ".cfi_offset 57, -48",
    "fsd fs10, 168(sp)",
    ".cfi_offset 58, -40",
    "fsd fs11, 176(sp)",
    ".cfi_offset 59, -32",
    // out (a3 is caller-saved: keep it on our stack across the call)
    "sd a3, 184(sp)",
    "mv t0, a0",
    "mv a0, a1",
    "ld s0, 0(a2)",
    "ld s1, 8(a2)",
    "ld s2, 16(a2)",
    "ld s3, 24(a2)",
    "ld s4, 32(a2)",
    "ld s5, 40(a2)",
    "ld s6, 48(a2)",
    "ld s7, 56(a2)",
    "ld s8, 64(a2)",
    "ld s9, 72(a2)",
    "ld s10, 80(a2)",
    "ld s11, 88(a2)",
    "fld fs0, 96(a2)",
    "fld fs1, 104(a2)",
    "fld fs2, 112(a2)",
    "fld fs3, 120(a2)",
    "fld fs4, 128(a2)",
    "fld fs5, 136(a2)",
    "fld fs6, 144(a2)",
    "fld fs7, 152(a2)",
    "fld fs8, 160(a2)",
    "fld fs9, 168(a2)",
    "fld fs10, 176(a2)",
    "fld fs11, 184(a2)",
    "jalr t0",
    "ld t0, 184(sp)",
    "sd s0, 0(t0)",
    "sd s1, 8(t0)",
    "sd s2, 16(t0)",
    "sd s3, 24(t0)",
    "sd s4, 32(t0)",
    "sd s5, 40(t0)",
    "sd s6, 48(t0)",
    "sd s7, 56(t0)",
    "sd s8, 64(t0)",
    "sd s9, 72(t0)",
    "sd s10, 80(t0)",
    "sd s11, 88(t0)",
    "fsd fs0, 96(t0)",
    "fsd fs1, 104(t0)",
    "fsd fs2, 112(t0)",
    "fsd fs3, 120(t0)",
    "fsd fs4, 128(t0)",
    "fsd fs5, 136(t0)",
    "fsd fs6, 144(t0)",
    "fsd fs7, 152(t0)",
    "fsd fs8, 160(t0)",
    "fsd fs9, 168(t0)",
    "fsd fs10, 176(t0)",
    "fsd fs11, 184(t0)",
    "ld s1, 0(sp)",
    "ld s2, 8(sp)",
    "ld s3, 16(sp)",
    "ld s4, 24(sp)",
    "ld s5, 32(sp)",
    "ld s6, 40(sp)",
    "ld s7, 48(sp)",
    "ld s8, 56(sp)",
    "ld s9, 64(sp)",
    "ld s10, 72(sp)",
    "ld s11, 80(sp)",
    "fld fs0, 88(sp)",
    "fld fs1, 96(sp)",
    "fld fs2, 104(sp)",
    "fld fs3, 112(sp)",
    "fld fs4, 120(sp)",
    "fld fs5, 128(sp)",
    "fld fs6, 136(sp)",
    "fld fs7, 144(sp)",
    "fld fs8, 152(sp)",
    "fld fs9, 160(sp)",
    "fld fs10, 168(sp)",
    "fld fs11, 176(sp)",
    "ld s0, 192(sp)",
    "ld ra, 200(sp)",
    "addi sp, sp, 208",
    ".cfi_def_cfa_offset 0",
    ".cfi_restore 1",
    ".cfi_restore 8",
    "ret",
    ".cfi_endproc",
    check = sym stackful_test_check_callee_saved,
);

#[cfg(target_arch = "x86")]
const REGISTERS: [&str; 4] = ["ebx", "esi", "edi", "ebp"];

// i386 System V (cdecl): ebx, esi, edi and ebp are callee-saved (no vector register
// is); arguments are on the stack. On entry esp = 12 (mod 16); after four pushes and
// 12 more bytes (the callback's argument slot) it is 16-byte aligned for the call.
// Arguments then: f at [esp+32], ctx [esp+36], sentinels [esp+40], out [esp+44].
// Sentinels are read from the low half of each u64; out[] gets them zero-extended.
#[cfg(target_arch = "x86")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {check}",
    "{check}:",
    ".cfi_startproc",
    "push ebp",
    ".cfi_adjust_cfa_offset 4",
    ".cfi_offset ebp, -8",
    "push ebx",
    ".cfi_adjust_cfa_offset 4",
    ".cfi_offset ebx, -12",
    "push esi",
    ".cfi_adjust_cfa_offset 4",
    ".cfi_offset esi, -16",
    "push edi",
    ".cfi_adjust_cfa_offset 4",
    ".cfi_offset edi, -20",
    "sub esp, 12",
    ".cfi_adjust_cfa_offset 12",
    "mov eax, dword ptr [esp + 32]",
    "mov ecx, dword ptr [esp + 36]",
    "mov dword ptr [esp], ecx",
    "mov edx, dword ptr [esp + 40]",
    "mov ebx, dword ptr [edx]",
    "mov esi, dword ptr [edx + 8]",
    "mov edi, dword ptr [edx + 16]",
    "mov ebp, dword ptr [edx + 24]",
    "call eax",
    "mov ecx, dword ptr [esp + 44]",
    "mov dword ptr [ecx], ebx",
    "mov dword ptr [ecx + 4], 0",
    "mov dword ptr [ecx + 8], esi",
    "mov dword ptr [ecx + 12], 0",
    "mov dword ptr [ecx + 16], edi",
    "mov dword ptr [ecx + 20], 0",
    "mov dword ptr [ecx + 24], ebp",
    "mov dword ptr [ecx + 28], 0",
    "add esp, 12",
    ".cfi_adjust_cfa_offset -12",
    "pop edi",
    ".cfi_adjust_cfa_offset -4",
    "pop esi",
    ".cfi_adjust_cfa_offset -4",
    "pop ebx",
    ".cfi_adjust_cfa_offset -4",
    "pop ebp",
    ".cfi_adjust_cfa_offset -4",
    "ret",
    ".cfi_endproc",
    check = sym stackful_test_check_callee_saved,
);

#[cfg(all(windows, target_arch = "x86_64"))]
const REGISTERS: [&str; 28] = [
    "rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15", "xmm6.lo", "xmm6.hi", "xmm7.lo",
    "xmm7.hi", "xmm8.lo", "xmm8.hi", "xmm9.lo", "xmm9.hi", "xmm10.lo", "xmm10.hi", "xmm11.lo",
    "xmm11.hi", "xmm12.lo", "xmm12.hi", "xmm13.lo", "xmm13.hi", "xmm14.lo", "xmm14.hi", "xmm15.lo",
    "xmm15.hi",
];

// Microsoft x64: rbx, rbp, rdi, rsi, r12-r15 and xmm6-xmm15 (128 bits) are callee-saved;
// f, ctx, sentinels, out arrive in rcx, rdx, r8, r9. On entry rsp = 8 (mod 16); after
// eight pushes and 0xd8 bytes it is 16-byte aligned for the call. Frame:
//   rsp+0x00 the callee's 32-byte home area | rsp+0x20..+0xbf xmm6-xmm15 | rsp+0xc0 out
// sentinels[]/out[]: the eight general registers at 0..56, then xmm6-xmm15 at 64..208
// (each as its low and high 64 bits). SEH unwind codes describe the prologue.
#[cfg(all(windows, target_arch = "x86_64"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {check}",
    ".def {check}",
    ".scl 2",
    ".type 32",
    ".endef",
    "{check}:",
    ".seh_proc {check}",
    "push rbp",
    ".seh_pushreg rbp",
    "push rbx",
    ".seh_pushreg rbx",
    "push rdi",
    ".seh_pushreg rdi",
    "push rsi",
    ".seh_pushreg rsi",
    "push r12",
    ".seh_pushreg r12",
    "push r13",
    ".seh_pushreg r13",
    "push r14",
    ".seh_pushreg r14",
    "push r15",
    ".seh_pushreg r15",
    "sub rsp, 0xd8",
    ".seh_stackalloc 0xd8",
    "movaps xmmword ptr [rsp + 0x20], xmm6",
    ".seh_savexmm xmm6, 0x20",
    "movaps xmmword ptr [rsp + 0x30], xmm7",
    ".seh_savexmm xmm7, 0x30",
    "movaps xmmword ptr [rsp + 0x40], xmm8",
    ".seh_savexmm xmm8, 0x40",
    "movaps xmmword ptr [rsp + 0x50], xmm9",
    ".seh_savexmm xmm9, 0x50",
    "movaps xmmword ptr [rsp + 0x60], xmm10",
    ".seh_savexmm xmm10, 0x60",
    "movaps xmmword ptr [rsp + 0x70], xmm11",
    ".seh_savexmm xmm11, 0x70",
    "movaps xmmword ptr [rsp + 0x80], xmm12",
    ".seh_savexmm xmm12, 0x80",
    "movaps xmmword ptr [rsp + 0x90], xmm13",
    ".seh_savexmm xmm13, 0x90",
    "movaps xmmword ptr [rsp + 0xa0], xmm14",
    ".seh_savexmm xmm14, 0xa0",
    "movaps xmmword ptr [rsp + 0xb0], xmm15",
    ".seh_savexmm xmm15, 0xb0",
    ".seh_endprologue",
    // out (r9 is volatile: keep it on our stack across the call)
    "mov qword ptr [rsp + 0xc0], r9",
    "mov rax, rcx",
    "mov rcx, rdx",
    "mov rbx, qword ptr [r8 + 0]",
    "mov rbp, qword ptr [r8 + 8]",
    "mov rdi, qword ptr [r8 + 16]",
    "mov rsi, qword ptr [r8 + 24]",
    "mov r12, qword ptr [r8 + 32]",
    "mov r13, qword ptr [r8 + 40]",
    "mov r14, qword ptr [r8 + 48]",
    "mov r15, qword ptr [r8 + 56]",
    "movups xmm6, xmmword ptr [r8 + 64]",
    "movups xmm7, xmmword ptr [r8 + 80]",
    "movups xmm8, xmmword ptr [r8 + 96]",
    "movups xmm9, xmmword ptr [r8 + 112]",
    "movups xmm10, xmmword ptr [r8 + 128]",
    "movups xmm11, xmmword ptr [r8 + 144]",
    "movups xmm12, xmmword ptr [r8 + 160]",
    "movups xmm13, xmmword ptr [r8 + 176]",
    "movups xmm14, xmmword ptr [r8 + 192]",
    "movups xmm15, xmmword ptr [r8 + 208]",
    "call rax",
    "mov rax, qword ptr [rsp + 0xc0]",
    "mov qword ptr [rax + 0], rbx",
    "mov qword ptr [rax + 8], rbp",
    "mov qword ptr [rax + 16], rdi",
    "mov qword ptr [rax + 24], rsi",
    "mov qword ptr [rax + 32], r12",
    "mov qword ptr [rax + 40], r13",
    "mov qword ptr [rax + 48], r14",
    "mov qword ptr [rax + 56], r15",
    "movups xmmword ptr [rax + 64], xmm6",
    "movups xmmword ptr [rax + 80], xmm7",
    "movups xmmword ptr [rax + 96], xmm8",
    "movups xmmword ptr [rax + 112], xmm9",
    "movups xmmword ptr [rax + 128], xmm10",
    "movups xmmword ptr [rax + 144], xmm11",
    "movups xmmword ptr [rax + 160], xmm12",
    "movups xmmword ptr [rax + 176], xmm13",
    "movups xmmword ptr [rax + 192], xmm14",
    "movups xmmword ptr [rax + 208], xmm15",
    "movaps xmm6, xmmword ptr [rsp + 0x20]",
    "movaps xmm7, xmmword ptr [rsp + 0x30]",
    "movaps xmm8, xmmword ptr [rsp + 0x40]",
    "movaps xmm9, xmmword ptr [rsp + 0x50]",
    "movaps xmm10, xmmword ptr [rsp + 0x60]",
    "movaps xmm11, xmmword ptr [rsp + 0x70]",
    "movaps xmm12, xmmword ptr [rsp + 0x80]",
    "movaps xmm13, xmmword ptr [rsp + 0x90]",
    "movaps xmm14, xmmword ptr [rsp + 0xa0]",
    "movaps xmm15, xmmword ptr [rsp + 0xb0]",
    "add rsp, 0xd8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rsi",
    "pop rdi",
    "pop rbx",
    "pop rbp",
    "ret",
    ".seh_endproc",
    check = sym stackful_test_check_callee_saved,
);

// ELF symbol type, so that symbolizers treat the checker as a function.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
std::arch::global_asm!(".type {check}, @function", check = sym stackful_test_check_callee_saved);
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
std::arch::global_asm!(".type {check}, %function", check = sym stackful_test_check_callee_saved);
#[cfg(all(target_os = "linux", target_arch = "riscv64"))]
std::arch::global_asm!(".type {check}, %function", check = sym stackful_test_check_callee_saved);
#[cfg(all(target_os = "linux", target_arch = "x86"))]
std::arch::global_asm!(".type {check}, @function", check = sym stackful_test_check_callee_saved);

const N: usize = REGISTERS.len();

// ---------------------------------------------------------------------------------
// Sentinels and the checked call
// ---------------------------------------------------------------------------------

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The sentinels of one call: distinct for every register and every seed. As wide as
/// a register (`as usize` keeps the low 32 bits on 32-bit targets).
fn sentinels(seed: u64) -> [u64; N] {
    std::array::from_fn(|i| {
        splitmix64(seed.wrapping_mul(64).wrapping_add(i as u64)) as usize as u64
    })
}

static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Every (call site, seed) used on this thread, to name a leaked sentinel.
    static SEEDS: RefCell<Vec<(&'static str, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Says whose sentinel `value` is, if it is one.
fn identify(value: u64) -> String {
    SEEDS.with(|seeds| {
        for &(site, seed) in seeds.borrow().iter().rev() {
            if let Some(i) = sentinels(seed).iter().position(|&s| s == value) {
                return format!("the {} sentinel of `{site}` (seed {seed})", REGISTERS[i]);
            }
        }
        "not a sentinel".to_string()
    })
}

struct Call<F, R> {
    f: Option<F>,
    result: Option<std::thread::Result<R>>,
}

extern "C" fn trampoline<F: FnOnce() -> R, R>(ctx: *mut u8) {
    // SAFETY: `checked` passes a pointer to its `Call<F, R>`, which outlives the call
    // to `check_callee_saved` that calls us, and nothing else accesses it meanwhile.
    let call = unsafe { &mut *(ctx as *mut Call<F, R>) };
    let f = call.f.take().expect("the checker calls its callback once");
    // Unwinding out of an `extern "C"` function aborts: carry a panic across instead.
    call.result = Some(panic::catch_unwind(AssertUnwindSafe(f)));
}

/// Runs `f` with every callee-saved register set to a sentinel of a fresh seed and
/// panics, naming the registers, if any of them does not hold its sentinel when `f`
/// returns (or unwinds: a panic of `f` is propagated after the check).
fn checked<R, F: FnOnce() -> R>(site: &'static str, f: F) -> R {
    let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
    SEEDS.with(|s| s.borrow_mut().push((site, seed)));
    let expected = sentinels(seed);
    let mut found = [0u64; N];
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: the checker preserves every callee-saved register for us, keeps the
    // stack aligned, passes `&mut call` to the trampoline of the matching type (which
    // does not unwind), reads N words from `expected` and writes N words to `found`.
    unsafe {
        stackful_test_check_callee_saved(
            trampoline::<F, R>,
            &mut call as *mut Call<F, R> as *mut u8,
            expected.as_ptr(),
            found.as_mut_ptr(),
        );
    }
    let wrong: Vec<String> = (0..N)
        .filter(|&i| found[i] != expected[i])
        .map(|i| {
            format!(
                "{}: expected {:#018x}, found {:#018x} = {}",
                REGISTERS[i],
                expected[i],
                found[i],
                identify(found[i])
            )
        })
        .collect();
    if !wrong.is_empty() {
        panic!(
            "callee-saved registers not preserved around `{site}` (seed {seed}):\n  {}",
            wrong.join("\n  ")
        );
    }
    match call.result.expect("the checker called its callback") {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Sets every callee-saved register to fresh sentinels and back: what a side does
/// between switches to clobber everything while the other side is suspended.
fn clobber(site: &'static str) {
    checked(site, || ());
}

fn resume<G: Generator<()> + Unpin>(g: &mut G) -> GeneratorState<G::Yield, G::Return> {
    Pin::new(g).resume(())
}

// ---------------------------------------------------------------------------------
// The checker itself
// ---------------------------------------------------------------------------------

#[test]
fn checker_sees_its_own_sentinels() {
    // No switch: the sentinels must come back (tests the checker, and that sentinels
    // differ between registers and between calls).
    for _ in 0..100 {
        checked("plain call", || black_box(1u64) + 1);
    }
    let mut all: Vec<u64> = (1..=1000).flat_map(sentinels).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1000 * N, "sentinels are not distinct");
    // Nested checks restore each other.
    checked("outer", || checked("inner", || clobber("innermost")));
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {clobber}",
    "{clobber}:",
    ".cfi_startproc",
    "mov rbx, 0x5678",
    "mov r12, 0x1234",
    "ret",
    ".cfi_endproc",
    clobber = sym stackful_test_clobber_two,
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {clobber}",
    "{clobber}:",
    ".cfi_startproc",
    "mov x20, #0x1234",
    "fmov d9, x20",
    "ret",
    ".cfi_endproc",
    clobber = sym stackful_test_clobber_two,
);

#[cfg(target_arch = "riscv64")]
std::arch::global_asm!(
    ".text",
    ".p2align 2",
    ".globl {clobber}",
    "{clobber}:",
    ".cfi_startproc",
    "li s1, 0x1234",
    "fmv.d.x fs1, s1",
    "ret",
    ".cfi_endproc",
    clobber = sym stackful_test_clobber_two,
);

#[cfg(target_arch = "x86")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {clobber}",
    "{clobber}:",
    ".cfi_startproc",
    "mov ebx, 0x5678",
    "mov esi, 0x1234",
    "ret",
    ".cfi_endproc",
    clobber = sym stackful_test_clobber_two,
);

#[cfg(all(windows, target_arch = "x86_64"))]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl {clobber}",
    "{clobber}:",
    "mov rsi, 0x1234",
    "movlhps xmm7, xmm7",
    "ret",
    clobber = sym stackful_test_clobber_two,
);

#[test]
fn checker_reports_clobbered_registers() {
    // The checker calling an ABI-violating function directly (no Rust frame in
    // between that could save and restore the registers) sees exactly the two
    // registers that function overwrites.
    let expected = sentinels(u64::MAX / 3);
    let mut found = [0u64; N];
    // SAFETY: `stackful_test_clobber_two` ignores `ctx` and clobbers only callee-saved
    // registers, which the checker restores for us; `expected` and `found` hold N words.
    unsafe {
        stackful_test_check_callee_saved(
            stackful_test_clobber_two,
            std::ptr::null_mut(),
            expected.as_ptr(),
            found.as_mut_ptr(),
        );
    }
    let wrong: Vec<&str> = (0..N)
        .filter(|&i| found[i] != expected[i])
        .map(|i| REGISTERS[i])
        .collect();
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    assert_eq!(wrong, ["rbx", "r12"]);
    #[cfg(target_arch = "aarch64")]
    assert_eq!(wrong, ["x20", "d9"]);
    #[cfg(target_arch = "riscv64")]
    assert_eq!(wrong, ["s1", "fs1"]);
    #[cfg(target_arch = "x86")]
    assert_eq!(wrong, ["ebx", "esi"]);
    #[cfg(all(windows, target_arch = "x86_64"))]
    assert_eq!(wrong, ["rsi", "xmm7.hi"]);
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

/// How many times the long-running tests switch each way.
const SWITCHES: u64 = 2000;

#[test]
fn first_entry_and_return_preserve_registers() {
    // The first resume goes through `stackful_fiber_enter`; the coroutine's first
    // switch back (a yield, or the return of a closure that never yields) restores
    // what enter saved.
    for round in 0..200u64 {
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64>, ()| {
            if round % 2 == 0 {
                checked("generator: first yield", || y.yeet(round));
            }
            checked("generator: just before returning", || round)
        });
        if round % 2 == 0 {
            let first = checked("resumer: first resume (enter)", || resume(&mut g));
            assert_eq!(first, GeneratorState::Yielded(round));
            clobber("resumer: between resumes");
        }
        let last = checked("resumer: resume that returns", || resume(&mut g));
        assert_eq!(last, GeneratorState::Complete(round));
    }
}

#[test]
fn resumer_registers_survive_the_generator() {
    // Direction (a): the resumer's registers are sentinels during every resume, while
    // the generator's registers are other sentinels at every yield.
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| {
        for k in 0..SWITCHES {
            checked("generator: yield", || y.yeet(k));
        }
    });
    // Many resumes inside one check ...
    checked("resumer: 100 resumes", || {
        for k in 0..100 {
            assert_eq!(resume(&mut g), GeneratorState::Yielded(k));
        }
    });
    // ... and one check per resume.
    for k in 100..SWITCHES {
        let state = checked("resumer: one resume", || resume(&mut g));
        assert_eq!(state, GeneratorState::Yielded(k));
    }
    let last = checked("resumer: last resume", || resume(&mut g));
    assert_eq!(last, GeneratorState::Complete(()));
}

#[test]
fn generator_registers_survive_the_resumer() {
    // Direction (b): the generator's registers are sentinels across every
    // suspension, while the resumer runs with other sentinels. (The resumer's own
    // checks also verify direction (a) here; this test is about the generator's.)
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| {
        // One check around many yields ...
        checked("generator: 100 yields", || {
            for k in 0..100 {
                y.yeet(k);
            }
        });
        // ... and one per yield.
        for k in 100..SWITCHES {
            checked("generator: one yield", || y.yeet(k));
            clobber("generator: between yields");
        }
    });
    // The resumer resumes with its registers set to other sentinels (so a register
    // that switch_in does not restore would hand the generator the resumer's value),
    // and clobbers them all in between.
    for k in 0..SWITCHES {
        let state = checked("resumer: resume", || resume(&mut g));
        assert_eq!(state, GeneratorState::Yielded(k));
        clobber("resumer: between resumes");
    }
    let last = checked("resumer: last resume", || resume(&mut g));
    assert_eq!(last, GeneratorState::Complete(()));
}

#[test]
fn resume_argument_and_deep_stack_preserve_registers() {
    // Resume values flow in, yielded values out, with the generator suspended deep in
    // a recursion (its frames save and restore registers of their own).
    #[inline(never)]
    fn descend(depth: u32, y: &YieldHandle<u64, u64>, acc: u64) -> u64 {
        if depth == 0 {
            return checked("generator: yield at depth", || y.yeet(acc));
        }
        let got = descend(depth - 1, y, black_box(acc + 1));
        black_box(got + u64::from(depth))
    }
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64, u64>, mut n: u64| {
        for _ in 0..200 {
            n = descend(10, y, n);
        }
        n
    });
    for round in 0..200u64 {
        let state = checked("resumer: resume with a value", || {
            Pin::new(&mut g).resume(round * 1000)
        });
        // The first descent starts from the first resume value; each later one from
        // the previous resume value plus 1 + 2 + ... + 10 added on the way up.
        let start = if round == 0 { 0 } else { round * 1000 + 55 };
        assert_eq!(state, GeneratorState::Yielded(start + 10));
    }
    let done = checked("resumer: last resume", || Pin::new(&mut g).resume(7));
    assert_eq!(done, GeneratorState::Complete(7 + 55));
}

#[test]
fn panic_and_drop_preserve_registers() {
    // A panic crossing the switch (the coroutine's last switch out carries it), and
    // dropping a suspended generator (a resume that unwinds the coroutine).
    for round in 0..100u64 {
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64>, ()| {
            checked("generator: yield", || y.yeet(round));
            checked("generator: panic", || panic!("expected panic {round}"));
        });
        assert_eq!(
            checked("resumer: first resume", || resume(&mut g)),
            GeneratorState::Yielded(round)
        );
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            checked("resumer: resume that panics", || resume(&mut g))
        }));
        let payload = result.expect_err("the generator panics");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(format!("expected panic {round}").as_str())
        );

        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64>, ()| {
            for k in 0.. {
                checked("generator: yield before being dropped", || y.yeet(k));
            }
        });
        for k in 0..round % 5 + 1 {
            assert_eq!(
                checked("resumer", || resume(&mut g)),
                GeneratorState::Yielded(k)
            );
        }
        checked("resumer: dropping a suspended generator", || drop(g));
    }
}

#[test]
fn nested_generators_preserve_registers() {
    // An outer generator resumes an inner one; the inner one yields to the outer one
    // and also *through* it (with the outer handle), suspending both stacks at once.
    let mut outer = StackfulGenerator::new(|yo: &YieldHandle<u64>, ()| {
        // The inner generator borrows the outer handle: a scoped generator.
        stackful::scope(|s| {
            let mut inner = s.generator(|yi: &YieldHandle<u64>, ()| {
                for k in 0..SWITCHES / 4 {
                    checked("inner: yield to outer", || yi.yeet(k));
                    checked("inner: yield through outer", || yo.yeet(1_000_000 + k));
                    clobber("inner: between yields");
                }
            });
            let mut first = true;
            loop {
                let state = if first {
                    first = false;
                    checked("outer: first resume of inner (enter)", || {
                        resume(&mut inner)
                    })
                } else {
                    checked("outer: resume inner", || resume(&mut inner))
                };
                match state {
                    GeneratorState::Yielded(v) => checked("outer: yield", || yo.yeet(v)),
                    GeneratorState::Complete(()) => break,
                }
                clobber("outer: between resumes");
            }
        });
    });
    for k in 0..SWITCHES / 4 {
        let a = checked("resumer: resume outer", || resume(&mut outer));
        assert_eq!(a, GeneratorState::Yielded(k));
        clobber("resumer: between resumes");
        let b = checked("resumer: resume outer (inner suspended)", || {
            resume(&mut outer)
        });
        assert_eq!(b, GeneratorState::Yielded(1_000_000 + k));
    }
    let last = checked("resumer: last resume", || resume(&mut outer));
    assert_eq!(last, GeneratorState::Complete(()));
}

#[test]
fn three_levels_of_nesting_preserve_registers() {
    // Each level resumes the next one inside a check and forwards its values.
    fn level(depth: u32, y: &YieldHandle<u64>) {
        if depth == 0 {
            for k in 0..200 {
                checked("innermost: yield", || y.yeet(k));
            }
            return;
        }
        let mut g = StackfulGenerator::new(move |y2: &YieldHandle<u64>, ()| level(depth - 1, y2));
        while let GeneratorState::Yielded(v) = checked("level: resume next", || resume(&mut g)) {
            checked("level: yield", || y.yeet(v));
        }
    }
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| level(3, y));
    for k in 0..200 {
        assert_eq!(
            checked("resumer", || resume(&mut g)),
            GeneratorState::Yielded(k)
        );
        clobber("resumer: between resumes");
    }
    assert_eq!(
        checked("resumer: last", || resume(&mut g)),
        GeneratorState::Complete(())
    );
}

// ---------------------------------------------------------------------------------
// StackfulFuture and wait
// ---------------------------------------------------------------------------------

#[test]
fn wait_on_pending_future_preserves_registers() {
    // `wait` on a future that is pending once suspends the coroutine; each poll of the
    // StackfulFuture resumes it. Both sides check around the switch.
    const WAITS: u64 = SWITCHES / 2;
    let mut fut = std::pin::pin!(stackful(|| {
        let mut sum = 0;
        for k in 0..WAITS {
            checked("future: wait (pending once)", || wait(pend_n(1, ())));
            clobber("future: between waits");
            sum += k;
        }
        checked("future: return", || sum)
    }));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut polls = 0;
    let value = loop {
        polls += 1;
        let poll = if polls == 1 {
            checked("poller: first poll (enter)", || fut.as_mut().poll(&mut cx))
        } else {
            checked("poller: poll", || fut.as_mut().poll(&mut cx))
        };
        if let Poll::Ready(value) = poll {
            break value;
        }
        clobber("poller: between polls");
    };
    assert_eq!(polls, WAITS + 1);
    assert_eq!(value, WAITS * (WAITS - 1) / 2);
}

#[test]
fn executor_and_nested_wait_preserve_registers() {
    // The same through a real executor, with a generator running inside the future
    // whose body waits (the wait suspends both stacks).
    let total = checked("block_on", || {
        futures::executor::block_on(stackful(|| {
            let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| {
                for k in 0..200 {
                    checked("generator in future: wait", || wait(pend_n(1, ())));
                    checked("generator in future: yield", || y.yeet(k));
                }
            });
            let mut total = 0;
            while let GeneratorState::Yielded(v) =
                checked("future: resume generator", || resume(&mut g))
            {
                total += v;
                checked("future: wait", || wait(pend_n(1, ())));
            }
            total
        }))
    });
    assert_eq!(total, 199 * 200 / 2);
}

// ---------------------------------------------------------------------------------
// Backtraces through the switch
// ---------------------------------------------------------------------------------

/// Resumes `g` once; never inlined, so its name must show up in backtraces taken on
/// the coroutine stack.
#[inline(never)]
fn resume_for_backtrace_probe(g: &mut StackfulGenerator<'_, String, (), ()>) -> Option<String> {
    let next = g.next();
    // Keep the call from being a tail call (the frame must stay).
    black_box(&next);
    next
}

#[test]
fn backtrace_crosses_switch_generator() {
    // The first resume enters the coroutine (stackful_fiber_enter), the later ones
    // switch in; the backtrace must reach the resumer's frames every time.
    let mut g = StackfulGenerator::new(|y: &YieldHandle<String>, ()| {
        for _ in 0..5 {
            y.yeet(Backtrace::force_capture().to_string());
        }
    });
    let mut resumes = 0;
    while let Some(trace) = resume_for_backtrace_probe(&mut g) {
        resumes += 1;
        assert!(
            trace.contains("resume_for_backtrace_probe"),
            "resume {resumes}: the backtrace taken in the generator does not reach the \
             function that resumed it:\n{trace}"
        );
    }
    assert_eq!(resumes, 5);
}

/// Polls `fut` once; never inlined (see [`resume_for_backtrace_probe`]).
#[inline(never)]
fn poll_for_backtrace_probe<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let poll = fut.poll(cx);
    black_box(&poll);
    poll
}

#[test]
fn backtrace_crosses_switch_future() {
    let mut fut = std::pin::pin!(stackful(|| {
        let mut traces = Vec::new();
        for _ in 0..5 {
            traces.push(Backtrace::force_capture().to_string());
            wait(pend_n(1, ()));
        }
        traces.push(Backtrace::force_capture().to_string());
        traces
    }));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let traces = loop {
        if let Poll::Ready(traces) = poll_for_backtrace_probe(fut.as_mut(), &mut cx) {
            break traces;
        }
    };
    assert_eq!(traces.len(), 6);
    for (i, trace) in traces.iter().enumerate() {
        assert!(
            trace.contains("poll_for_backtrace_probe"),
            "poll {}: the backtrace taken in the future does not reach the function that \
             polled it:\n{trace}",
            i + 1
        );
    }
}
