//! Review: the yield budget in odd places.

use futures::task::noop_waker_ref;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{budget, Builder};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

mod common;

fn poll_count<F: Future + Unpin>(mut fut: F) -> (F::Output, usize) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut polls = 1;
    loop {
        match Pin::new(&mut fut).poll(&mut cx) {
            Poll::Ready(v) => return (v, polls),
            Poll::Pending => polls += 1,
        }
    }
}

/// Budget 1: every unit yields; `consume(0)` never does on a full budget.
/// `usize::MAX - 1` is a real budget (it runs out), `usize::MAX` is off.
#[test]
fn extreme_budgets() {
    let fut = Builder::new()
        .yield_budget(1)
        .future(|| {
            for _ in 0..10 {
                budget::consume(0);
            }
            for _ in 0..5 {
                budget::consume(1);
            }
            budget::remaining()
        })
        .unwrap();
    assert_eq!(poll_count(fut), (Some(1), 6));

    let fut = Builder::new()
        .yield_budget(usize::MAX - 1)
        .future(|| {
            budget::consume(usize::MAX - 2);
            let before = budget::remaining();
            budget::consume(usize::MAX); // runs out: yields, refilled
            (before, budget::remaining())
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((Some(1), Some(usize::MAX - 1)), 2));

    let fut = Builder::new()
        .yield_budget(usize::MAX)
        .future(|| {
            budget::consume(usize::MAX);
            let charged = budget::charge(usize::MAX);
            (charged, budget::should_yield(), budget::remaining())
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((false, false, Some(usize::MAX)), 1));
}

/// A generator resumed outside any future has no budget; the same generator resumed
/// inside a future's poll charges that future's, and yields it (the generator is
/// suspended with it, and resumes where it was).
#[test]
fn generator_outside_then_inside_a_future() {
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<Option<usize>>, ()| loop {
        budget::consume(1);
        y.yeet(budget::remaining());
    });
    assert_eq!(Pin::new(&mut gen).resume(()), GeneratorState::Yielded(None));
    let fut = Builder::new()
        .yield_budget(3)
        .future(move || {
            let mut seen = Vec::new();
            for _ in 0..5 {
                match Pin::new(&mut gen).resume(()) {
                    GeneratorState::Yielded(r) => seen.push(r),
                    GeneratorState::Complete(()) => unreachable!(),
                }
            }
            (seen, gen)
        })
        .unwrap();
    let ((seen, mut gen), polls) = poll_count(fut);
    // Units 1, 2 leave 2, 1; unit 3 yields the future, and `consume` returns in the
    // next poll with its budget full (3); units 4, 5 leave 2, 1.
    assert_eq!(seen, [Some(2), Some(1), Some(3), Some(2), Some(1)]);
    assert_eq!(polls, 2);
    // Outside again: no budget.
    assert_eq!(Pin::new(&mut gen).resume(()), GeneratorState::Yielded(None));
}

/// A meter that last settled outside any coroutine holds a share of 65,536 units; in
/// a coroutine it spends that first (documented on `Meter`), then settles with the
/// coroutine's budget as usual.
#[test]
fn meter_moved_into_a_coroutine_spends_its_old_share_first() {
    let mut meter = budget::Meter::new();
    meter.consume(1); // outside: takes the largest share
    let fut = Builder::new()
        .yield_budget(10)
        .future(move || {
            for _ in 0..65_535 + 100 {
                meter.consume(1);
            }
        })
        .unwrap();
    let ((), polls) = poll_count(fut);
    // 65,535 units on the old share, then the settlement charges 1 unit more than the
    // budget (yield), and the last 99 units yield every 10.
    assert!((10..=12).contains(&polls), "{polls}");
}

/// A budget used up in a destructor while the coroutine unwinds its own panic does
/// not suspend it (it used to, and dropping the future then aborted): dropping after
/// the panic came out is an ordinary drop of a finished coroutine.
#[cfg(panic = "unwind")]
#[test]
fn a_budget_used_up_while_unwinding_does_not_suspend() {
    struct ConsumeOnDrop;
    impl Drop for ConsumeOnDrop {
        fn drop(&mut self) {
            budget::consume(5);
        }
    }
    let mut fut = Builder::new()
        .yield_budget(5)
        .future(|| {
            let _guard = ConsumeOnDrop;
            panic!("boom");
        })
        .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Pin::new(&mut fut).poll(&mut cx).is_pending()
    }));
    assert!(r.is_err(), "the panic comes out of the first poll");
    drop(fut);
}
