//! `backtrace()` of a suspended coroutine (issue #18): where is it waiting?
//!
//! The functions whose names the traces must show are `#[inline(never)]` and pass
//! their own name through `black_box`, so that a release build neither inlines them
//! nor merges two of them with identical bodies (see tests/backtrace.rs).

mod common;

use common::pend_n;
use futures::task::noop_waker_ref;
use futures::StreamExt;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{stackful, stream, wait, StackfulStream};
#[cfg(panic = "unwind")]
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
#[cfg(panic = "unwind")]
use std::rc::Rc;
use std::task::{Context, Poll};

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref()))
}

/// A backtrace of a coroutine that is not suspended, or on wasm32: `None`.
#[cfg(target_arch = "wasm32")]
fn check(trace: Option<std::backtrace::Backtrace>, _names: &[&str]) {
    assert!(trace.is_none(), "wasm32 has no backtraces");
}

/// The trace of a suspended coroutine names every function of `names`.
#[cfg(not(target_arch = "wasm32"))]
fn check(trace: Option<std::backtrace::Backtrace>, names: &[&str]) -> String {
    let trace = trace
        .expect("a suspended coroutine has a backtrace")
        .to_string();
    for name in names {
        assert!(trace.contains(name), "no {name} in:\n{trace}");
    }
    trace
}

#[inline(never)]
fn numbers_producer(y: &YieldHandle<u32>, n: u32) {
    black_box("numbers_producer");
    for i in 0..n {
        y.yeet(i);
    }
}

#[inline(never)]
fn numbers_outer(y: &YieldHandle<u32>) {
    black_box("numbers_outer");
    numbers_producer(y, 3);
}

#[test]
fn generator_backtrace_names_the_yielding_functions() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| numbers_outer(y));
    assert!(g.backtrace().is_none(), "fresh");
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(0));
    check(g.backtrace(), &["numbers_producer", "numbers_outer"]);
    // Twice in a row, then the generator goes on as if nothing happened.
    check(g.backtrace(), &["numbers_producer", "numbers_outer"]);
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(1));
    check(g.backtrace(), &["numbers_producer"]);
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(2));
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Complete(()));
    assert!(g.backtrace().is_none(), "finished");
}

#[test]
fn generator_resume_values_survive_a_backtrace() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<String, String>, first: String| {
        let mut all = first;
        for _ in 0..3 {
            let next = y.yeet(all.clone());
            all.push_str(&next);
        }
        all
    });
    let r = |g: &mut StackfulGenerator<'_, String, String, String>, s: &str| {
        Pin::new(g).resume(s.to_string())
    };
    assert_eq!(r(&mut g, "a"), GeneratorState::Yielded("a".into()));
    let _ = g.backtrace();
    assert_eq!(r(&mut g, "b"), GeneratorState::Yielded("ab".into()));
    let _ = g.backtrace();
    let _ = g.backtrace();
    assert_eq!(r(&mut g, "c"), GeneratorState::Yielded("abc".into()));
    assert_eq!(r(&mut g, "d"), GeneratorState::Complete("abcd".into()));
}

#[inline(never)]
fn handler_waiting_for_input(n: usize) -> usize {
    black_box("handler_waiting_for_input");
    wait(pend_n(n, 7))
}

#[test]
fn future_backtrace_names_the_waiting_function() {
    let mut fut = stackful(|| handler_waiting_for_input(2) + 1);
    assert!(fut.backtrace().is_none(), "not polled yet");
    assert!(poll(&mut fut).is_pending());
    check(fut.backtrace(), &["handler_waiting_for_input"]);
    assert!(poll(&mut fut).is_pending());
    check(fut.backtrace(), &["handler_waiting_for_input"]);
    assert_eq!(poll(&mut fut), Poll::Ready(8));
    assert!(fut.backtrace().is_none(), "finished");
}

#[cfg(panic = "unwind")]
struct SetOnDrop(Rc<Cell<bool>>);

#[cfg(panic = "unwind")]
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

// Dropping a suspended coroutine unwinds it only with panic = "unwind" (wasm32-wasip1
// aborts on panics; the stack is leaked there).
#[cfg(panic = "unwind")]
#[test]
fn dropping_after_a_backtrace_unwinds_the_coroutine() {
    let dropped = Rc::new(Cell::new(false));
    let guard = SetOnDrop(dropped.clone());
    let mut fut = stackful(move || {
        let _guard = guard;
        handler_waiting_for_input(usize::MAX)
    });
    assert!(poll(&mut fut).is_pending());
    let _ = fut.backtrace();
    let _ = fut.backtrace();
    assert!(!dropped.get());
    drop(fut); // resumes it with CANCEL
    assert!(dropped.get());
}

#[inline(never)]
fn items_producer(s: &stackful::StreamHandle<u32>) {
    black_box("items_producer");
    s.yield_item(1);
    wait(pend_n(1, ()));
    s.yield_item(2);
}

#[test]
fn stream_backtrace_after_an_item_and_in_wait() {
    let mut st: StackfulStream<'_, u32> = stream(items_producer);
    assert!(st.backtrace().is_none());
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
    check(st.backtrace(), &["items_producer"]); // suspended after yielding
    assert_eq!(st.poll_next_unpin(&mut cx), Poll::Pending);
    check(st.backtrace(), &["items_producer"]); // suspended in wait
    assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
    assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert!(st.backtrace().is_none());
}

#[inline(never)]
fn inner_generator_waits(y: &YieldHandle<u32>) {
    black_box("inner_generator_waits");
    wait(pend_n(1, ()));
    y.yeet(5);
}

#[inline(never)]
fn outer_future_resumes(g: &mut StackfulGenerator<'_, u32, (), ()>) -> u32 {
    black_box("outer_future_resumes");
    match Pin::new(g).resume(()) {
        GeneratorState::Yielded(v) => v,
        GeneratorState::Complete(()) => 0,
    }
}

#[test]
fn a_chain_suspended_by_wait_shows_both_coroutines() {
    // The generator waits: the future (and the generator with it) suspends. The
    // generator itself is running (part of the future's suspended chain); the
    // future's trace shows the frames of both.
    let mut fut = stackful(|| {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| inner_generator_waits(y));
        let v = outer_future_resumes(&mut g);
        // After the trace, the generator's `yeet` still sees the poll state it was
        // resumed in (its misuse check would panic otherwise).
        v + outer_future_resumes(&mut g)
    });
    assert!(poll(&mut fut).is_pending());
    check(
        fut.backtrace(),
        &["inner_generator_waits", "outer_future_resumes"],
    );
    assert_eq!(poll(&mut fut), Poll::Ready(5));
}

#[inline(never)]
fn tracer_inside_a_coroutine(g: &mut StackfulGenerator<'_, u32, (), ()>) -> Option<String> {
    black_box("tracer_inside_a_coroutine");
    let trace = g.backtrace();
    #[cfg(target_arch = "wasm32")]
    return trace.map(|t| t.to_string());
    #[cfg(not(target_arch = "wasm32"))]
    Some(check(trace, &["numbers_producer"]))
}

#[test]
fn a_coroutine_traces_another_and_the_trace_reaches_it() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| numbers_producer(y, 2));
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(0));
    let mut fut = stackful(move || {
        wait(pend_n(1, ()));
        let trace = tracer_inside_a_coroutine(&mut g);
        // Running (it is us): no trace of ourselves.
        (trace, g.next())
    });
    assert!(poll(&mut fut).is_pending());
    let Poll::Ready((trace, next)) = poll(&mut fut) else {
        panic!("pending")
    };
    assert_eq!(next, Some(1));
    #[cfg(not(target_arch = "wasm32"))]
    {
        // The generator's frames, then the tracer's (on the future's stack).
        let trace = trace.unwrap();
        assert!(trace.contains("tracer_inside_a_coroutine"), "{trace}");
    }
    #[cfg(target_arch = "wasm32")]
    assert!(trace.is_none());
}

#[test]
fn no_backtrace_of_a_running_generator_from_inside() {
    // The generator cannot reach its own handle, but a future polled inside it can
    // be traced only when suspended: a future that is being polled is running.
    let mut fut = stackful(|| wait(pend_n(1, 3)));
    assert!(poll(&mut fut).is_pending());
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<bool>, ()| {
        // Polling `fut` from here: inside its poll it is running, outside suspended.
        let was_suspended = fut.backtrace().is_some();
        y.yeet(was_suspended);
        let _ = poll(&mut fut);
        y.yeet(fut.backtrace().is_none());
    });
    assert_eq!(g.next(), Some(cfg!(not(target_arch = "wasm32"))));
    assert_eq!(g.next(), Some(true));
}

#[test]
fn scoped_handles_have_backtraces() {
    stackful::scope(|s| {
        let mut g = s.generator(|y: &YieldHandle<u32>, ()| numbers_producer(y, 2));
        assert!(g.backtrace().is_none());
        assert_eq!(g.next(), Some(0));
        check(g.backtrace(), &["numbers_producer"]);
        assert_eq!(g.next(), Some(1));
        assert_eq!(g.next(), None);

        let mut f = s.future(|| handler_waiting_for_input(1));
        assert!(poll(&mut f).is_pending());
        check(f.backtrace(), &["handler_waiting_for_input"]);
        assert_eq!(poll(&mut f), Poll::Ready(7));
        assert!(f.backtrace().is_none());

        let mut st = s.stream(items_producer);
        let mut cx = Context::from_waker(noop_waker_ref());
        assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        check(st.backtrace(), &["items_producer"]);
        // Finished before the scope ends (dropping a suspended scoped coroutine
        // aborts under panic = "abort").
        assert_eq!(st.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(st.poll_next_unpin(&mut cx), Poll::Ready(None));
    });
}
