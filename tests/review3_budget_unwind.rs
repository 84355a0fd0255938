//! Review round 3: the yield budget while a coroutine unwinds its own panic, when the
//! coroutine is polled from a destructor that runs during an unrelated unwind of the
//! polling thread (the case the crate documents as "dropped like any other").
//!
//! The budget docs promise that `consume` never yields "while a panic of its own
//! unwinds it (a coroutine suspended halfway through unwinding could not be dropped
//! later)". `can_suspend_here` told the coroutine's own panic from the thread's by
//! `thread_was_panicking`, which is set for every poll made while the thread was
//! already panicking: then a panic of the coroutine itself was not seen, the budget
//! yielded halfway through the unwind, and the drop aborted. Fixed: the budget never
//! yields while the thread is panicking.
#![cfg(all(not(target_arch = "wasm32"), panic = "unwind"))]

use stackful::{budget, Builder};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

mod common;

struct ConsumeOnDrop;
impl Drop for ConsumeOnDrop {
    fn drop(&mut self) {
        budget::consume(5);
    }
}

/// Polls a coroutine once from its destructor (the thread is unwinding an unrelated
/// panic), then drops it. The coroutine panics, and a destructor on its stack uses up
/// the budget while that panic unwinds it.
struct PollOnceOnDrop;
impl Drop for PollOnceOnDrop {
    fn drop(&mut self) {
        assert!(std::thread::panicking());
        let mut fut = Builder::new()
            .yield_budget(5)
            .future(|| {
                let _guard = ConsumeOnDrop;
                panic!("boom");
            })
            .unwrap();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let r = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut fut).poll(&mut cx)));
        // Correct: the coroutine's panic comes out of this poll, as it does when the
        // thread is not panicking (review_budget.rs), and the drop below is the drop of
        // a finished coroutine.
        let msg = match &r {
            Err(p) => common::panic_message(&**p),
            Ok(Poll::Pending) => "Pending".to_owned(),
            Ok(Poll::Ready(())) => "Ready".to_owned(),
        };
        eprintln!("first poll: {msg}");
        drop(fut);
        eprintln!("dropped");
        assert_eq!(msg, "boom");
    }
}

#[test]
fn budget_used_up_while_unwinding_in_a_coroutine_polled_during_an_unrelated_unwind() {
    common::in_child(
        "budget_used_up_while_unwinding_in_a_coroutine_polled_during_an_unrelated_unwind",
        || {
            let r = catch_unwind(|| {
                let _poller = PollOnceOnDrop;
                panic!("unrelated");
            });
            assert_eq!(common::panic_message(&*r.unwrap_err()), "unrelated");
        },
    );
}

/// Control: the same coroutine polled when the thread is not panicking.
#[test]
fn control_budget_used_up_while_unwinding_outside_any_unwind() {
    let mut fut = Builder::new()
        .yield_budget(5)
        .future(|| {
            let _guard = ConsumeOnDrop;
            panic!("boom");
        })
        .unwrap();
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let r = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut fut).poll(&mut cx)));
    assert_eq!(common::panic_message(&*r.unwrap_err()), "boom");
    drop(fut);
}
