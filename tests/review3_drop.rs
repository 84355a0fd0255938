//! Review round 3: dropping suspended coroutines in unusual places.
#![cfg(all(not(target_arch = "wasm32"), panic = "unwind"))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{budget, stackful, wait, yield_now, Builder};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

mod common;
use common::poll_once as poll;
use common::Drops;

/// A generator in the chain of a dropped future catches the cancellation (which
/// unwinds through it) and yields to the future's frames; they take the value, drop
/// the generator and return. The drop completes, every destructor runs once.
#[test]
fn a_generator_in_the_chain_swallows_the_cancellation_and_yields() {
    let drops = Drops::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (d, l) = (drops.clone(), log.clone());
    let mut fut = stackful(move || {
        let _t = d.token();
        let d2 = d.clone();
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
            let _t = d2.token();
            let r = catch_unwind(AssertUnwindSafe(|| wait(futures::future::pending::<()>())));
            assert!(r.is_err());
            y.yeet(5);
            7u32
        });
        let first = Pin::new(&mut g).resume(());
        l.borrow_mut().push(format!("{first:?}"));
        // A wait here must be refused (the future is being dropped).
        let w = catch_unwind(AssertUnwindSafe(|| wait(async { 1 })));
        l.borrow_mut()
            .push(common::panic_message(&*w.expect_err("wait refused")));
        drop(g);
    });
    assert!(poll(&mut fut).is_pending());
    drop(fut);
    let log = log.borrow();
    assert_eq!(log[0], "Yielded(5)");
    assert!(log[1].contains("being dropped"), "{}", log[1]);
    drops.assert_all_dropped_once();
}

/// Dropping a suspended future owns another suspended future; the inner one, during
/// its own cancellation (inside the outer's), catches it and calls `yield_now`, which
/// panics (it cannot suspend). That panic happens while the thread unwinds the outer
/// cancellation: it is dropped quietly, the outer drop completes.
#[test]
fn an_inner_future_that_yields_after_catching_its_cancellation_inside_an_outer_one() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut outer = stackful(move || {
        let _t = d.token();
        let d2 = d.clone();
        let mut inner = stackful(move || {
            let _t = d2.token();
            let _ = catch_unwind(AssertUnwindSafe(|| wait(futures::future::pending::<()>())));
            budget::consume(usize::MAX);
            yield_now(); // refused: panics
            unreachable!();
        });
        assert!(poll(&mut inner).is_pending());
        wait(futures::future::pending::<()>());
        drop(inner);
    });
    assert!(poll(&mut outer).is_pending());
    drop(outer);
    drops.assert_all_dropped_once();
}

/// The same when only the inner future is dropped: its panic comes out of `drop`.
#[test]
#[should_panic(expected = "stackful::wait called while its coroutine is being dropped")]
fn yield_now_after_catching_the_cancellation_panics_out_of_drop() {
    let mut fut = stackful(|| {
        let _ = catch_unwind(AssertUnwindSafe(|| wait(futures::future::pending::<()>())));
        yield_now();
    });
    assert!(poll(&mut fut).is_pending());
    drop(fut);
}

/// A destructor that runs during a cancellation drives a fresh coroutine to completion
/// (it suspends in `wait` and on its budget: its own poll has a task context).
#[test]
fn a_fresh_coroutine_driven_from_a_destructor_during_a_cancellation() {
    struct Drive(Rc<Cell<Option<(u32, usize)>>>);
    impl Drop for Drive {
        fn drop(&mut self) {
            let mut fresh = Builder::new()
                .yield_budget(2)
                .future(|| {
                    let mut n = 0;
                    for _ in 0..5 {
                        budget::consume(1);
                        n += wait(common::pend_n(1, 1u32));
                    }
                    n
                })
                .unwrap();
            let mut polls = 0;
            let v = loop {
                polls += 1;
                if let Poll::Ready(v) = poll(&mut fresh) {
                    break v;
                }
            };
            self.0.set(Some((v, polls)));
        }
    }
    let out = Rc::new(Cell::new(None));
    let o = out.clone();
    let mut fut = stackful(move || {
        let _d = Drive(o);
        wait(futures::future::pending::<()>());
    });
    assert!(poll(&mut fut).is_pending());
    drop(fut);
    let (v, polls) = out.get().unwrap();
    assert_eq!(v, 5);
    assert!(polls > 5, "{polls}");
}

/// A generator suspended (yeet) and owned by a future that is itself suspended: the
/// generator is traced from a destructor running during the future's cancellation.
#[test]
fn backtrace_of_an_owned_generator_during_the_owners_cancellation() {
    struct TraceOnDrop(
        Option<StackfulGenerator<'static, u32, (), ()>>,
        Rc<Cell<bool>>,
    );
    impl Drop for TraceOnDrop {
        fn drop(&mut self) {
            let g = self.0.as_mut().unwrap();
            self.1.set(g.backtrace().is_some());
            assert_eq!(g.next(), None);
        }
    }
    let traced = Rc::new(Cell::new(false));
    let t = traced.clone();
    let mut fut = stackful(move || {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| y.yeet(1));
        assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(1));
        let _d = TraceOnDrop(Some(g), t);
        wait(futures::future::pending::<()>());
    });
    assert!(poll(&mut fut).is_pending());
    drop(fut);
    assert!(traced.get());
}

/// A panic hook that takes a registry snapshot with backtraces, for a panic inside a
/// coroutine while others are suspended.
#[cfg(feature = "registry")]
#[test]
fn registry_snapshot_from_a_panic_hook() {
    common::in_child("registry_snapshot_from_a_panic_hook", || {
        let counts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let c = counts.clone();
        std::panic::set_hook(Box::new(move |_| {
            let snap = stackful::registry::snapshot_with_backtraces();
            let traced = snap.iter().filter(|c| c.backtrace().is_some()).count();
            c.lock().unwrap().push((snap.len(), traced));
        }));
        let mut parked: Vec<_> = (0..3)
            .map(|_| stackful(|| wait(futures::future::pending::<()>())))
            .collect();
        for p in &mut parked {
            assert!(poll(p).is_pending());
        }
        let mut boom = stackful(|| {
            let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
                y.yeet(1);
                panic!("boom");
            });
            g.next();
            g.next();
        });
        let r = catch_unwind(AssertUnwindSafe(|| poll(&mut boom)));
        assert!(r.is_err());
        let _ = std::panic::take_hook();
        let counts = counts.lock().unwrap();
        assert_eq!(counts.len(), 1);
        // 3 parked futures + the panicking future and generator (running).
        assert_eq!(counts[0], (5, 3));
    });
}
