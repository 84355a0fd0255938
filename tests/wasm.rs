//! wasm32-only behaviour of the Asyncify backend (asm/wasm32.s): what happens when a
//! suspended coroutine is dropped under panic=abort, deep recursion inside a
//! coroutine, the save-buffer and shadow-stack overflow reports, and the message for
//! a module that was not processed by `wasm-opt --asyncify`.
//!
//! The tests that end in an abort run in a child process that `.ci/wasi-run.mjs`
//! starts for them (libtest on wasm cannot spawn processes): `child` below calls the
//! runner's `stackful_test.run_child` import, so this test binary only runs under
//! `.ci/wasm-runner` (which `cargo test --target wasm32-wasip1` uses).
#![cfg(target_arch = "wasm32")]

mod common;

use common::{is_child, pend_n};
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{stackful, wait, Builder};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

#[link(wasm_import_module = "stackful_test")]
extern "C" {
    /// Provided by `.ci/wasi-run.mjs`; see there.
    fn run_child(
        args_ptr: *const u8,
        args_len: usize,
        raw: u32,
        env_ptr: *const u8,
        env_len: usize,
        out_ptr: *mut u8,
        out_cap: usize,
        out_len: *mut usize,
    ) -> i32;
}

/// Runs the test `name` of this binary in a child process (the asyncified module, or
/// with `raw` the module as cargo built it, with do-nothing asyncify imports);
/// returns its exit status and its stderr + stdout. The child sees
/// `STACKFUL_TEST_CHILD=name`, as for `common::run_child` natively.
fn child(name: &str, raw: bool) -> (i32, String) {
    let args = format!("{name}\0--exact\0--nocapture\0--test-threads=1");
    let env = format!("STACKFUL_TEST_CHILD={name}");
    let mut out = vec![0u8; 1 << 16];
    let mut len = 0usize;
    // SAFETY: every pointer is valid for the length given; the import writes at most
    // `out.len()` bytes to `out` and one usize to `len`.
    let status = unsafe {
        run_child(
            args.as_ptr(),
            args.len(),
            raw as u32,
            env.as_ptr(),
            env.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        )
    };
    out.truncate(len.min(out.len()));
    (status, String::from_utf8_lossy(&out).into_owned())
}

/// The exit status `.ci/wasi-run.mjs` reports for a trap (`abort()` is one in WASI).
const TRAPPED: i32 = 134;

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn dropping_a_suspended_generator_leaks_its_stack_instead_of_aborting() {
    let dropped = Rc::new(Cell::new(false));
    let before = stackful::leaked_stacks();
    let stats_before = stackful::stack::stats();
    let d = dropped.clone();
    let mut gen = StackfulGenerator::new(move |y: &YieldHandle<u32, ()>, ()| {
        let _guard = SetOnDrop(d);
        y.yeet(1);
        y.yeet(2);
    });
    assert_eq!(Pin::new(&mut gen).resume(()), GeneratorState::Yielded(1));
    drop(gen);
    // panic=abort: the coroutine cannot be unwound, so nothing on its stack is dropped
    // (a pinned value there may still be referenced) and the stack is leaked.
    assert!(!dropped.get(), "a destructor ran on a leaked stack");
    assert_eq!(stackful::leaked_stacks(), before + 1);
    let stats = stackful::stack::stats();
    assert_eq!(stats.leaked, stats_before.leaked + 1);
    // The process goes on, and new coroutines work.
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<u32, ()>, ()| y.yeet(7));
    assert_eq!(Pin::new(&mut gen).resume(()), GeneratorState::Yielded(7));
    assert_eq!(Pin::new(&mut gen).resume(()), GeneratorState::Complete(()));
}

#[test]
fn dropping_a_pending_stackful_future_leaks_its_stack() {
    let before = stackful::leaked_stacks();
    let mut fut = Box::pin(stackful(|| {
        wait(pend_n(3, ()));
        5
    }));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    drop(fut);
    assert_eq!(stackful::leaked_stacks(), before + 1);
    // A finished one is not leaked.
    let fut = stackful(|| 5);
    assert_eq!(futures::executor::block_on(fut), 5);
    assert_eq!(stackful::leaked_stacks(), before + 1);
}

/// Recurses `depth` frames, yields at the bottom, and sums on the way back up.
fn descend(y: &YieldHandle<usize, usize>, depth: usize) -> usize {
    if depth == 0 {
        return y.yeet(0);
    }
    let below = descend(y, black_box(depth - 1));
    black_box(below + depth)
}

#[test]
fn deep_recursion_suspends_and_resumes_intact() {
    // Deeper recursion runs into V8's own native stack limit (the engine's stack holds
    // the wasm frames), not into anything of ours.
    for depth in [1, 10, 100, 1000] {
        let mut gen = Builder::new()
            .stack_size(1024 * 1024)
            .save_buffer_size(4 * 1024 * 1024)
            .generator(move |y: &YieldHandle<usize, usize>, _: usize| descend(y, depth))
            .unwrap();
        assert_eq!(
            Pin::new(&mut gen).resume(0),
            GeneratorState::Yielded(0),
            "depth {depth}"
        );
        let peak = stackful::stack::stats().save_buffer_peak;
        assert!(peak > 0);
        assert_eq!(
            Pin::new(&mut gen).resume(1),
            GeneratorState::Complete(1 + depth * (depth + 1) / 2),
            "depth {depth}"
        );
    }
    // Every frame's locals went through the save buffer: the peak grows with depth.
    assert!(
        stackful::stack::stats().save_buffer_peak > 1000 * 8,
        "peak {}",
        stackful::stack::stats().save_buffer_peak
    );
}

#[test]
fn wait_suspends_through_nested_generators_and_futures() {
    // A `wait` three coroutines deep (future > generator > future) suspends all of
    // them; each one's frames go to its own save buffer and come back.
    let fut = stackful(|| {
        let mut gen = StackfulGenerator::new(|y: &YieldHandle<u32, ()>, ()| {
            let inner = stackful(|| {
                wait(pend_n(2, ()));
                40
            });
            let v = wait(inner);
            y.yeet(v);
            wait(pend_n(1, ()));
            v + 2
        });
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut gen).resume(()) {
                GeneratorState::Yielded(v) => out.push(v),
                GeneratorState::Complete(v) => {
                    out.push(v);
                    break out;
                }
            }
        }
    });
    let mut fut = Box::pin(fut);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut pendings = 0;
    let out = loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => break v,
            Poll::Pending => pendings += 1,
        }
    };
    assert_eq!(out, vec![40, 42]);
    assert_eq!(pendings, 3);
}

#[test]
fn thousand_suspended_coroutines() {
    let mut gens: Vec<_> = (0..1000u32)
        .map(|i| {
            Builder::new()
                .stack_size(16 * 1024)
                .save_buffer_size(4 * 1024)
                .generator(move |y: &YieldHandle<u32, u32>, r: u32| {
                    let r = y.yeet(i + r);
                    i * r
                })
                .unwrap()
        })
        .collect();
    for (i, g) in gens.iter_mut().enumerate() {
        assert_eq!(Pin::new(g).resume(1), GeneratorState::Yielded(i as u32 + 1));
    }
    for (i, g) in gens.iter_mut().enumerate().rev() {
        assert_eq!(
            Pin::new(g).resume(3),
            GeneratorState::Complete(i as u32 * 3)
        );
    }
}

#[test]
fn builder_rejects_a_save_buffer_that_does_not_fit() {
    let err = Builder::new()
        .save_buffer_size(16)
        .generator(|_: &YieldHandle<(), ()>, ()| ())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("save buffer"), "{err}");
}

const SAVE_OVERFLOW: &str = "save_buffer_overflow_is_reported_by_name";

#[test]
fn save_buffer_overflow_is_reported_by_name() {
    if is_child(SAVE_OVERFLOW) {
        // 100 frames do not fit in 256 bytes.
        let mut gen = Builder::new()
            .save_buffer_size(256)
            .generator(|y: &YieldHandle<usize, usize>, _: usize| descend(y, 100))
            .unwrap();
        let _ = Pin::new(&mut gen).resume(0);
        unreachable!("the overflowing suspension returned");
    }
    let (status, out) = child(SAVE_OVERFLOW, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(
        out.contains("asyncify save buffer overflowed")
            && out.contains("bytes but the buffer holds 256")
            && out.contains("Builder::save_buffer_size"),
        "{out}"
    );
}

const STACK_OVERFLOW: &str = "shadow_stack_overflow_is_reported_at_the_next_switch";

#[inline(never)]
fn eat_stack(y: &YieldHandle<(), ()>, depth: usize) -> u8 {
    let mut block = [depth as u8; 1024];
    black_box(&mut block);
    if depth == 0 {
        y.yeet(());
        return block[7];
    }
    eat_stack(y, depth - 1).wrapping_add(block[3])
}

#[test]
fn shadow_stack_overflow_is_reported_at_the_next_switch() {
    if is_child(STACK_OVERFLOW) {
        // ~24 KiB of 1 KiB frames on a 16 KiB stack: it runs into the canary below
        // the shadow stack (and the save buffer below that, which is unused while the
        // coroutine runs), and the next suspension reports it.
        let mut gen = Builder::new()
            .stack_size(16 * 1024)
            .generator(|y: &YieldHandle<(), ()>, ()| {
                eat_stack(y, 24);
            })
            .unwrap();
        let _ = Pin::new(&mut gen).resume(());
        unreachable!("the overflow was not detected");
    }
    let (status, out) = child(STACK_OVERFLOW, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(out.contains("coroutine stack overflow"), "{out}");
}

const BIG_FRAME: &str = "one_big_frame_past_the_shadow_stack_is_reported_before_unwinding";

#[test]
fn one_big_frame_past_the_shadow_stack_is_reported_before_unwinding() {
    if is_child(BIG_FRAME) {
        // One 40 KB local on a 16 KiB stack: it lands in the (64 KiB) save buffer
        // below, over the canary; the suspension must report it before it unwinds
        // the frames into that same buffer.
        let mut gen = Builder::new()
            .stack_size(16 * 1024)
            .generator(|y: &YieldHandle<u32, ()>, ()| {
                let big = black_box([1u8; 40_000]);
                y.yeet(big[0] as u32);
                big[39_999]
            })
            .unwrap();
        let _ = Pin::new(&mut gen).resume(());
        unreachable!("the overflow was not detected");
    }
    let (status, out) = child(BIG_FRAME, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(out.contains("coroutine stack overflow"), "{out}");
}

const NOT_ASYNCIFIED: &str = "a_module_without_asyncify_fails_at_the_first_switch_by_name";

#[test]
fn a_module_without_asyncify_fails_at_the_first_switch_by_name() {
    if is_child(NOT_ASYNCIFIED) {
        let mut gen = StackfulGenerator::new(|y: &YieldHandle<u32, ()>, ()| {
            y.yeet(1);
        });
        let _ = Pin::new(&mut gen).resume(());
        unreachable!("a switch returned in a module without asyncify");
    }
    // The module as cargo built it, given asyncify imports that do nothing (what a
    // host that provides them, or a partial instrumentation, amounts to).
    let (status, out) = child(NOT_ASYNCIFIED, true);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(
        out.contains("was not instrumented by Binaryen's asyncify")
            && out.contains("wasm-opt --asyncify"),
        "{out}"
    );
}

const SCOPED_DROP: &str = "dropping_a_suspended_scoped_generator_aborts_under_panic_abort";

/// panic = "abort": a scoped coroutine that is suspended cannot be unwound, and
/// cannot be leaked either (its borrows end with the scope): dropping it aborts with
/// a message naming the cause (issue #14).
#[test]
fn dropping_a_suspended_scoped_generator_aborts_under_panic_abort() {
    if is_child(SCOPED_DROP) {
        let data = [1u32, 2, 3];
        stackful::scope(|s| {
            let mut g =
                s.generator(|y: &YieldHandle<u32>, ()| data.iter().for_each(|&v| y.yeet(v)));
            assert_eq!(g.next(), Some(1));
            drop(g);
        });
        unreachable!("the drop above must abort");
    }
    let (status, out) = child(SCOPED_DROP, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(
        out.contains("borrows from its creator") && out.contains("panic = \"abort\""),
        "{out}"
    );
}

const SCOPE_END: &str = "a_scope_ending_with_a_suspended_coroutine_aborts_under_panic_abort";

/// The same when the scope itself drops a forgotten handle's coroutine.
#[test]
fn a_scope_ending_with_a_suspended_coroutine_aborts_under_panic_abort() {
    if is_child(SCOPE_END) {
        let data = [1u32, 2, 3];
        stackful::scope(|s| {
            let mut g =
                s.generator(|y: &YieldHandle<u32>, ()| data.iter().for_each(|&v| y.yeet(v)));
            assert_eq!(g.next(), Some(1));
            std::mem::forget(g);
        });
        unreachable!("the end of the scope must abort");
    }
    let (status, out) = child(SCOPE_END, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(out.contains("borrows from its creator"), "{out}");
}

const UNCHECKED_DROP: &str = "dropping_a_pending_unchecked_future_aborts_under_panic_abort";

#[test]
fn dropping_a_pending_unchecked_future_aborts_under_panic_abort() {
    if is_child(UNCHECKED_DROP) {
        let data = [1u32, 2, 3];
        // SAFETY: dropped (below) before `data`; that drop aborts, as this test checks.
        let mut fut = Box::pin(unsafe {
            stackful::future::StackfulFuture::new_unchecked(|| {
                wait(pend_n(3, ()));
                data.len()
            })
        });
        let waker = futures::task::noop_waker();
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(fut);
        unreachable!("the drop above must abort");
    }
    let (status, out) = child(UNCHECKED_DROP, false);
    assert_eq!(status, TRAPPED, "{out}");
    assert!(out.contains("borrows from its creator"), "{out}");
}

/// Scoped coroutines that run to completion need no unwinding: they work under
/// panic = "abort" like any other.
#[test]
fn scoped_coroutines_that_finish_work_under_panic_abort() {
    let data = [1u32, 2, 3];
    let (sum, doubled) = stackful::scope(|s| {
        let sum = futures::executor::block_on(
            s.future(|| data.iter().map(|&v| wait(pend_n(1, v))).sum::<u32>()),
        );
        let doubled: Vec<u32> = s
            .generator(|y: &YieldHandle<u32>, ()| data.iter().for_each(|&v| y.yeet(v * 2)))
            .collect();
        (sum, doubled)
    });
    assert_eq!((sum, doubled), (6, vec![2, 4, 6]));
}
