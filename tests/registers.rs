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
//!
//! The `backtrace_crosses_switch_*` tests check that a backtrace taken on a coroutine
//! stack continues into the frames of whoever resumed it (the DWARF CFI of the switch).

#![cfg(all(unix, any(target_arch = "x86_64", target_arch = "aarch64")))]
#![warn(clippy::undocumented_unsafe_blocks)]

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
    /// on x86_64, x20 and d9 on aarch64) and returns. Only ever called directly by the
    /// checker, which restores its own caller's registers.
    fn stackful_test_clobber_two(ctx: *mut u8);
}

#[cfg(target_arch = "x86_64")]
const REGISTERS: [&str; 6] = ["rbx", "rbp", "r12", "r13", "r14", "r15"];

// System V x86_64: rbx, rbp and r12-r15 are the callee-saved registers (no vector
// register is callee-saved). On entry rsp = 8 (mod 16); after seven pushes it is
// 16-byte aligned for the call.
#[cfg(target_arch = "x86_64")]
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

// ELF symbol type, so that symbolizers treat the checker as a function.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
std::arch::global_asm!(".type {check}, @function", check = sym stackful_test_check_callee_saved);
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
std::arch::global_asm!(".type {check}, %function", check = sym stackful_test_check_callee_saved);

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

/// The sentinels of one call: distinct for every register and every seed.
fn sentinels(seed: u64) -> [u64; N] {
    std::array::from_fn(|i| splitmix64(seed.wrapping_mul(64).wrapping_add(i as u64)))
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

fn resume<Y, R>(g: &mut StackfulGenerator<'_, Y, R, ()>) -> GeneratorState<Y, R> {
    Pin::new(g).resume(())
}

/// Pending on its first poll (waking its task at once), ready on the second.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
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
    let a = sentinels(1);
    let b = sentinels(2);
    for i in 0..N {
        for j in 0..N {
            assert!(i == j || a[i] != a[j]);
            assert_ne!(a[i], b[j]);
        }
    }
    // Nested checks restore each other.
    checked("outer", || checked("inner", || clobber("innermost")));
}

#[cfg(target_arch = "x86_64")]
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
    #[cfg(target_arch = "x86_64")]
    assert_eq!(wrong, ["rbx", "r12"]);
    #[cfg(target_arch = "aarch64")]
    assert_eq!(wrong, ["x20", "d9"]);
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
    // suspension, while the resumer clobbers all of them between resumes.
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
    for k in 0..SWITCHES {
        assert_eq!(resume(&mut g), GeneratorState::Yielded(k));
        clobber("resumer: between resumes");
    }
    assert_eq!(resume(&mut g), GeneratorState::Complete(()));
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
        let mut inner = StackfulGenerator::new(|yi: &YieldHandle<u64>, ()| {
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
            checked("future: wait (pending once)", || wait(PendingOnce(false)));
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
                    checked("generator in future: wait", || wait(PendingOnce(false)));
                    checked("generator in future: yield", || y.yeet(k));
                }
            });
            let mut total = 0;
            while let GeneratorState::Yielded(v) =
                checked("future: resume generator", || resume(&mut g))
            {
                total += v;
                checked("future: wait", || wait(PendingOnce(false)));
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
            wait(PendingOnce(false));
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
