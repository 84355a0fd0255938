//! A backtrace taken on a coroutine's stack continues into the frames of whoever
//! resumed (or polled) it last: the unwinder follows the link that every resume
//! rewrites.

// Not on wasm32: std cannot capture backtraces there, and the switch has no unwind
// info to follow (Asyncify, not a native stack switch).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::pend_n;
use futures::task::noop_waker_ref;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{stackful, wait};
use std::backtrace::Backtrace;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type TraceGen<'a> = StackfulGenerator<'a, String, (), ()>;

fn trace() -> String {
    Backtrace::force_capture().to_string()
}

/// Whether the trace goes on past the test function into libtest's frames (on the
/// test thread's own stack). The test function's name alone proves nothing: the
/// closures running on the coroutine stack are named after it.
fn reaches_the_test_harness(trace: &str) -> bool {
    trace.contains("__rust_begin_short_backtrace")
}

// The resumer and poller functions below must keep their own names in a release
// build: each passes its own name through `black_box`, so that no two of them have
// identical bodies (rustc merges identical functions, and the trace would then name
// only one of the pair).

#[inline(never)]
fn resumed_by_alpha(g: &mut TraceGen<'_>) -> GeneratorState<String, ()> {
    std::hint::black_box("resumed_by_alpha");
    std::hint::black_box(Pin::new(g).resume(()))
}

#[inline(never)]
fn resumed_by_beta(g: &mut TraceGen<'_>) -> GeneratorState<String, ()> {
    std::hint::black_box("resumed_by_beta");
    std::hint::black_box(Pin::new(g).resume(()))
}

fn yielded(s: GeneratorState<String, ()>) -> String {
    match s {
        GeneratorState::Yielded(t) => t,
        GeneratorState::Complete(()) => panic!("the generator completed"),
    }
}

#[inline(never)]
fn deep_in_the_coroutine(y: &YieldHandle<String>, n: u32) {
    if n == 0 {
        for _ in 0..6 {
            y.yeet(trace());
        }
    } else {
        deep_in_the_coroutine(y, n - 1);
    }
}

#[test]
fn generator_backtrace_reaches_the_resumer() {
    let mut g: TraceGen<'_> = StackfulGenerator::new(|y: &YieldHandle<String>, ()| {
        y.yeet(trace());
        deep_in_the_coroutine(y, 3);
    });
    // First resume: the coroutine was entered from `resumed_by_alpha`.
    let t = yielded(resumed_by_alpha(&mut g));
    assert!(t.contains("resumed_by_alpha"), "{t}");
    assert!(reaches_the_test_harness(&t), "{t}");

    // Several suspend/resume cycles from another function: the link is rewritten.
    for _ in 0..3 {
        let t = yielded(resumed_by_beta(&mut g));
        assert!(t.contains("deep_in_the_coroutine"), "{t}");
        assert!(t.contains("resumed_by_beta"), "{t}");
        assert!(!t.contains("resumed_by_alpha"), "stale resumer:\n{t}");
        assert!(reaches_the_test_harness(&t), "{t}");
    }
    // And back.
    let t = yielded(resumed_by_alpha(&mut g));
    assert!(t.contains("resumed_by_alpha"), "{t}");
    assert!(!t.contains("resumed_by_beta"), "stale resumer:\n{t}");
    let t = yielded(resumed_by_beta(&mut g));
    assert!(t.contains("resumed_by_beta"), "{t}");
    assert!(!t.contains("resumed_by_alpha"), "stale resumer:\n{t}");
}

#[inline(never)]
fn resumed_from_another_coroutine(g: &mut TraceGen<'_>) -> String {
    std::hint::black_box("resumed_from_another_coroutine");
    yielded(std::hint::black_box(Pin::new(g).resume(())))
}

#[test]
fn generator_backtrace_after_moving_between_resumer_stacks() {
    let mut g: TraceGen<'_> = StackfulGenerator::new(|y: &YieldHandle<String>, ()| loop {
        y.yeet(trace());
    });
    let t = yielded(resumed_by_alpha(&mut g));
    assert!(t.contains("resumed_by_alpha"), "{t}");
    // Resumed from inside another generator's stack (which takes it over).
    let mut outer: TraceGen<'_> = StackfulGenerator::new(move |y: &YieldHandle<String>, ()| {
        y.yeet(resumed_from_another_coroutine(&mut g));
    });
    let t = yielded(resumed_by_beta(&mut outer));
    assert!(t.contains("resumed_from_another_coroutine"), "{t}");
    assert!(
        t.contains("resumed_by_beta"),
        "through both coroutines:\n{t}"
    );
    assert!(!t.contains("resumed_by_alpha"), "stale resumer:\n{t}");
}

#[inline(never)]
fn polled_by_gamma<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::hint::black_box("polled_by_gamma");
    std::hint::black_box(Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref())))
}

#[inline(never)]
fn polled_by_delta<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::hint::black_box("polled_by_delta");
    std::hint::black_box(Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref())))
}

#[test]
fn stackful_future_backtrace_reaches_the_poller() {
    let mut fut = stackful(|| {
        let first = trace();
        wait(pend_n(1, ()));
        let second = trace();
        wait(pend_n(1, ()));
        let third = trace();
        (first, second, third)
    });
    assert!(polled_by_gamma(&mut fut).is_pending());
    assert!(polled_by_delta(&mut fut).is_pending());
    let (first, second, third) = match polled_by_gamma(&mut fut) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("still pending"),
    };
    assert!(first.contains("polled_by_gamma"), "{first}");
    assert!(second.contains("polled_by_delta"), "{second}");
    assert!(
        !second.contains("polled_by_gamma"),
        "stale poller:\n{second}"
    );
    assert!(third.contains("polled_by_gamma"), "{third}");
    assert!(!third.contains("polled_by_delta"), "stale poller:\n{third}");
    for t in [&first, &second, &third] {
        assert!(reaches_the_test_harness(t), "{t}");
    }
}

#[inline(never)]
fn generator_resumer_inside_the_future(g: &mut TraceGen<'_>) -> String {
    std::hint::black_box("generator_resumer_inside_the_future");
    yielded(std::hint::black_box(Pin::new(g).resume(())))
}

#[test]
fn backtrace_through_a_generator_inside_a_stackful_future() {
    let mut fut = stackful(|| {
        let mut g: TraceGen<'_> = StackfulGenerator::new(|y: &YieldHandle<String>, ()| {
            // Suspends the future (and this generator with it), then traces.
            wait(pend_n(1, ()));
            y.yeet(trace());
        });
        generator_resumer_inside_the_future(&mut g)
    });
    assert!(polled_by_gamma(&mut fut).is_pending());
    let t = match polled_by_delta(&mut fut) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("still pending"),
    };
    assert!(t.contains("generator_resumer_inside_the_future"), "{t}");
    assert!(t.contains("polled_by_delta"), "{t}");
    assert!(!t.contains("polled_by_gamma"), "stale poller:\n{t}");
    assert!(reaches_the_test_harness(&t), "{t}");
}
