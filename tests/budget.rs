//! The cooperative yield budget (`stackful::budget`), tested by counting units and
//! polls, never by timing.
//!
//! Every coroutine here sets its budget on its `Builder`, except in
//! `process_default`, the only test that reads or changes the process-wide default
//! (tests run in parallel threads of one process).

use futures::task::noop_waker_ref;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{budget, stackful, wait, yield_now, Builder, StreamHandle};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A tiny bytecode interpreter: CPU-bound synchronous code that never waits.
#[derive(Clone, Copy)]
enum Op {
    /// Calls the hook (the "work" of one iteration).
    Hook,
    /// Decrements the counter.
    Dec,
    /// Jumps to the target while the counter is not zero (a back-edge: one unit).
    JumpIfNotZero(usize),
    Halt,
}

/// How the interpreter charges its back-edges.
#[derive(Clone, Copy, Debug)]
enum Charge {
    /// `budget::consume(1)`.
    Consume,
    /// `meter.consume(1)` on a `budget::Meter` of the interpreter.
    Meter,
}

/// Runs `program` with the counter at `count`; at every back-edge it consumes one unit.
/// Returns the number of back-edges taken.
fn interpret(program: &[Op], count: u64, charge: Charge, mut hook: impl FnMut()) -> u64 {
    let (mut pc, mut counter, mut edges) = (0, count, 0);
    let mut meter = budget::Meter::new();
    loop {
        match program[pc] {
            Op::Hook => {
                hook();
                pc += 1;
            }
            Op::Dec => {
                counter -= 1;
                pc += 1;
            }
            Op::JumpIfNotZero(target) => {
                if counter != 0 {
                    edges += 1;
                    match charge {
                        Charge::Consume => budget::consume(1),
                        Charge::Meter => meter.consume(1),
                    }
                    pc = target;
                } else {
                    pc += 1;
                }
            }
            Op::Halt => return edges,
        }
    }
}

/// `loop { hook; counter -= 1 } while counter != 0`: `count` hooks, `count - 1` edges.
const LOOP: [Op; 4] = [Op::Hook, Op::Dec, Op::JumpIfNotZero(0), Op::Halt];

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Splits a log of task ids into runs: (id, length) of each maximal block of equal ids.
fn runs(log: &[u8]) -> Vec<(u8, usize)> {
    let mut runs: Vec<(u8, usize)> = Vec::new();
    for &id in log {
        match runs.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => runs.push((id, 1)),
        }
    }
    runs
}

/// Two interpreters spinning on one current-thread runtime take turns: neither runs
/// more than its budget (in units: here one hook per unit) between two turns of the
/// other.
#[test]
fn two_interpreters_interleave() {
    two_interpreters(Charge::Consume);
}

/// The same with `Meter::consume`.
#[test]
fn two_interpreters_interleave_meter() {
    two_interpreters(Charge::Meter);
}

fn two_interpreters(charge: Charge) {
    const BUDGET: usize = 50;
    const ITERATIONS: u64 = 1_000;
    let log = Rc::new(RefCell::new(Vec::new()));
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let edges = local.block_on(&rt, async {
        let tasks: Vec<_> = [b'A', b'B']
            .into_iter()
            .map(|id| {
                let log = Rc::clone(&log);
                let fut = Builder::new()
                    .yield_budget(BUDGET)
                    .future(move || {
                        interpret(&LOOP, ITERATIONS, charge, || log.borrow_mut().push(id))
                    })
                    .unwrap();
                tokio::task::spawn_local(fut)
            })
            .collect();
        let mut edges = Vec::new();
        for t in tasks {
            edges.push(t.await.unwrap());
        }
        edges
    });
    assert_eq!(edges, [ITERATIONS - 1, ITERATIONS - 1]);
    let log = log.borrow();
    assert_eq!(log.len(), 2 * ITERATIONS as usize);
    let runs = runs(&log);
    // A unit is consumed at each back-edge, after the hook: a turn runs BUDGET hooks.
    for &(id, n) in &runs {
        assert!(
            n <= BUDGET,
            "task {} ran {n} units in one turn: {runs:?}",
            id as char
        );
    }
    // And they did take turns all along (2 * 1000 / 50 turns; without the budget,
    // there would be 2 runs of 1000).
    assert!(runs.len() >= 2 * ITERATIONS as usize / BUDGET, "{runs:?}");
}

/// A task that is woken while two interpreters spin is polled before either of them
/// runs more than one budget after the wake-up.
#[test]
fn woken_task_is_polled_within_one_budget() {
    woken_task(Charge::Consume);
}

/// The same with `Meter::consume`.
#[test]
fn woken_task_is_polled_within_one_budget_meter() {
    woken_task(Charge::Meter);
}

fn woken_task(charge: Charge) {
    const BUDGET: usize = 40;
    const ITERATIONS: u64 = 2_000;
    const WAKE_AT: usize = 777;
    // Units run by each interpreter so far.
    let units = Rc::new([Cell::new(0usize), Cell::new(0usize)]);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let (at_wake, at_poll) = local.block_on(&rt, async {
        let at_wake = Rc::new(Cell::new([0usize; 2]));
        let waiter = {
            let units = Rc::clone(&units);
            tokio::task::spawn_local(async move {
                rx.await.unwrap();
                [units[0].get(), units[1].get()]
            })
        };
        let mut tx = Some(tx);
        let mut spinners = Vec::new();
        for i in 0..2 {
            let units = Rc::clone(&units);
            let at_wake = Rc::clone(&at_wake);
            // Interpreter 0 wakes the waiter at its WAKE_AT-th unit.
            let mut tx = if i == 0 { tx.take() } else { None };
            let fut = Builder::new()
                .yield_budget(BUDGET)
                .future(move || {
                    interpret(&LOOP, ITERATIONS, charge, || {
                        let n = units[i].get() + 1;
                        units[i].set(n);
                        if n == WAKE_AT {
                            if let Some(tx) = tx.take() {
                                at_wake.set([units[0].get(), units[1].get()]);
                                tx.send(()).unwrap();
                            }
                        }
                    })
                })
                .unwrap();
            spinners.push(tokio::task::spawn_local(fut));
        }
        let at_poll = waiter.await.unwrap();
        for s in spinners {
            s.await.unwrap();
        }
        (at_wake.get(), at_poll)
    });
    assert_eq!(at_wake[0], WAKE_AT);
    // Woken at unit WAKE_AT of a turn of interpreter 0, the waiter is polled after
    // the rest of that turn and at most one turn of interpreter 1.
    for i in 0..2 {
        let ran = at_poll[i] - at_wake[i];
        assert!(
            ran <= BUDGET,
            "interpreter {i} ran {ran} units between the wake-up and the waiter's poll \
             (woken at {at_wake:?}, polled at {at_poll:?})"
        );
    }
    // Not vacuous: both interpreters had been running for a while.
    assert!(at_wake[1] > BUDGET, "{at_wake:?}");
}

/// Polls `fut` with a no-op waker until it is ready; returns its output and the number
/// of polls.
fn poll_count<F: Future + Unpin>(mut fut: F) -> (F::Output, usize) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
            return (v, polls);
        }
    }
}

/// `consume` yields once every `budget` units, and the budget refills at each poll.
#[test]
fn consume_yields_every_budget() {
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| {
            let mut seen = Vec::new();
            for _ in 0..35 {
                budget::consume(1);
                seen.push(budget::remaining().unwrap());
            }
            seen
        })
        .unwrap();
    let (seen, polls) = poll_count(fut);
    assert_eq!(polls, 4); // yields after units 10, 20, 30
    let expected: Vec<usize> = (1..=35)
        .map(|u| if u % 10 == 0 { 10 } else { 10 - u % 10 })
        .collect();
    assert_eq!(seen, expected);

    // Larger charges: 4 + 4 = 8 of 10, then 4 more runs it out (12 >= 10): yield.
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| {
            budget::consume(4);
            budget::consume(4);
            let before = budget::remaining();
            budget::consume(4);
            (before, budget::remaining())
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((Some(2), Some(10)), 2));

    // A charge larger than the whole budget yields once.
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| budget::consume(usize::MAX))
        .unwrap();
    assert_eq!(poll_count(fut), ((), 2));
}

/// A `wait` that suspends refills the budget too (it is per poll).
#[test]
fn suspension_refills() {
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| {
            budget::consume(7);
            let before = budget::remaining();
            wait(common_pending_once());
            (before, budget::remaining())
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((Some(3), Some(10)), 2));
}

/// A future that is `Pending` once (waking its task), then `Ready`.
fn common_pending_once() -> impl Future<Output = ()> {
    let mut first = true;
    std::future::poll_fn(move |cx| {
        if std::mem::take(&mut first) {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
}

/// Nested coroutines: a future inside a future charges its own budget and yields the
/// whole chain; a generator inside a future charges the future's budget; a generator
/// outside any future has none.
#[test]
fn nested_coroutines() {
    // Inner future (budget 10) waited on by an outer one (budget 1000): 25 units in
    // the inner one make the chain yield twice, so the outer future is polled 3 times.
    let fut = Builder::new()
        .yield_budget(1_000)
        .future(|| {
            budget::consume(5);
            let outer_before = budget::remaining();
            let inner = Builder::new()
                .yield_budget(10)
                .future(|| {
                    for _ in 0..25 {
                        budget::consume(1);
                    }
                    budget::remaining()
                })
                .unwrap();
            let inner_left = wait(inner);
            // Two polls of the outer coroutine since: its budget is full again, and
            // the inner one's units were not charged to it.
            (outer_before, inner_left, budget::remaining())
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((Some(995), Some(5), Some(1_000)), 3));

    // A generator resumed inside a future charges the future's budget: 25 units with
    // a budget of 10 yield the whole chain (future and generator) twice.
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| {
            let gen = StackfulGenerator::new(|y: &YieldHandle<usize>, ()| {
                for _ in 0..25 {
                    budget::consume(1);
                }
                y.yeet(budget::remaining().unwrap());
            });
            gen.collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(poll_count(fut), (vec![5], 3));

    // A generator outside any future: no budget, consume is a no-op.
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<(Option<usize>, bool)>, ()| {
        for _ in 0..100_000 {
            budget::consume(1);
        }
        y.yeet((budget::remaining(), budget::charge(usize::MAX)));
        budget::should_yield()
    });
    let mut gen = Pin::new(&mut gen);
    assert_eq!(
        gen.as_mut().resume(()),
        GeneratorState::Yielded((None, false))
    );
    assert_eq!(gen.as_mut().resume(()), GeneratorState::Complete(false));
}

/// A stream's coroutine has a budget too: its budget yields make `poll_next` Pending.
#[test]
fn stream_budget() {
    use futures::StreamExt;
    let s = Builder::new()
        .yield_budget(4)
        .stream(|y: &StreamHandle<u32>| {
            for i in 0..3 {
                for _ in 0..10 {
                    budget::consume(1);
                }
                y.yield_item(i);
            }
        })
        .unwrap();
    let mut s = s;
    let mut cx = Context::from_waker(noop_waker_ref());
    let (mut items, mut pendings) = (Vec::new(), 0);
    loop {
        match s.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(i)) => items.push(i),
            Poll::Ready(None) => break,
            Poll::Pending => pendings += 1,
        }
    }
    assert_eq!(items, [0, 1, 2]);
    // Each item: 10 units with a budget of 4 (refilled at each poll): yields after
    // units 4 and 8.
    assert_eq!(pendings, 6);
}

/// `charge` + `should_yield`: the coroutine picks the moment; the budget stays used
/// up until it yields.
#[test]
fn should_yield_and_charge() {
    let fut = Builder::new()
        .yield_budget(10)
        .future(|| {
            let mut log = Vec::new();
            for _ in 0..12 {
                log.push((budget::charge(1), budget::should_yield()));
            }
            // Used up: stays so (charge keeps saying so) until the coroutine yields.
            assert!(budget::charge(0));
            yield_now();
            log.push((budget::should_yield(), budget::remaining() == Some(10)));
            log
        })
        .unwrap();
    let (log, polls) = poll_count(fut);
    assert_eq!(polls, 2); // only the explicit yield_now
    let mut expected = vec![(false, false); 9];
    expected.extend([(true, true); 3]);
    expected.push((false, true));
    assert_eq!(log, expected);

    // A used-up budget makes `consume(0)` yield.
    let fut = Builder::new()
        .yield_budget(3)
        .future(|| {
            assert!(budget::charge(3));
            budget::consume(0);
            budget::remaining()
        })
        .unwrap();
    assert_eq!(poll_count(fut), (Some(3), 2));
}

/// With the budget off, `consume` never yields and `should_yield` is false.
#[test]
fn budget_off() {
    let fut = Builder::new()
        .yield_budget(0)
        .future(|| {
            for _ in 0..100_000 {
                budget::consume(1);
            }
            budget::consume(usize::MAX);
            (
                budget::charge(usize::MAX),
                budget::should_yield(),
                budget::remaining(),
            )
        })
        .unwrap();
    assert_eq!(poll_count(fut), ((false, false, Some(usize::MAX)), 1));
    assert_eq!(Builder::new().yield_budget(0).get_yield_budget(), Some(0));
    assert_eq!(Builder::new().get_yield_budget(), None);
}

/// Outside any coroutine everything is a no-op.
#[test]
fn noop_outside() {
    for _ in 0..100_000 {
        budget::consume(1);
    }
    budget::consume(usize::MAX);
    budget::consume(usize::MAX);
    assert!(!budget::charge(usize::MAX));
    assert!(!budget::should_yield());
    assert_eq!(budget::remaining(), None);
    // And in async code polled outside a coroutine.
    let r = futures::executor::block_on(async {
        budget::consume(usize::MAX);
        (budget::charge(usize::MAX), budget::remaining())
    });
    assert_eq!(r, (false, None));
}

/// Where the coroutine cannot suspend (here: async code that `wait` polls), the
/// budget refills instead of yielding: no panic, no suspension.
#[test]
fn no_yield_where_suspending_is_impossible() {
    let fut = Builder::new()
        .yield_budget(5)
        .future(|| {
            // Inside the poll of the future that `wait` polls: a `wait` would panic.
            let inner = wait(async {
                for _ in 0..23 {
                    budget::consume(1);
                }
                (
                    budget::charge(100),
                    budget::should_yield(),
                    budget::remaining(),
                )
            });
            // Back in the coroutine, the budget works again.
            for _ in 0..5 {
                budget::consume(1);
            }
            inner
        })
        .unwrap();
    // 23 units in the async block: refilled at units 5, 10, 15, 20 (2 left); the
    // charge of 100 runs it out, refills: 5. Then the coroutine's 5 units yield once.
    assert_eq!(poll_count(fut), ((false, false, Some(5)), 2));
}

/// Destructors that run while a coroutine is dropped (unwound) cannot yield: the budget
/// is off there. (With panic = "abort", as on wasm32, a dropped coroutine is leaked
/// and its destructors do not run.)
#[cfg(panic = "unwind")]
#[test]
fn no_yield_while_dropped() {
    /// What the destructor saw: `should_yield()` and `remaining()`.
    type Seen = Rc<Cell<Option<(bool, Option<usize>)>>>;
    struct ConsumeOnDrop(Seen);
    impl Drop for ConsumeOnDrop {
        fn drop(&mut self) {
            for _ in 0..10 {
                budget::consume(1);
            }
            self.0
                .set(Some((budget::should_yield(), budget::remaining())));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let seen2 = Rc::clone(&seen);
    let mut fut = Builder::new()
        .yield_budget(3)
        .future(move || {
            let _guard = ConsumeOnDrop(seen2);
            wait(std::future::pending::<()>());
        })
        .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    drop(fut);
    // The drop's frame has the budget off (nothing can yield there).
    assert_eq!(seen.get(), Some((false, Some(usize::MAX))));
}

/// The process-wide default applies to coroutines created after it is set, and
/// `Builder::yield_budget` overrides it. (The only test that touches the default.)
#[test]
fn process_default() {
    assert_eq!(budget::default_budget(), budget::DEFAULT_BUDGET);
    let fut = stackful(budget::remaining);
    assert_eq!(poll_count(fut), (Some(budget::DEFAULT_BUDGET), 1));

    budget::set_default_budget(7);
    let made_under_7 = stackful(|| {
        for _ in 0..20 {
            budget::consume(1);
        }
    });
    let overridden = Builder::new()
        .yield_budget(100)
        .future(budget::remaining)
        .unwrap();
    budget::set_default_budget(0);
    let made_off = stackful(budget::remaining);
    budget::set_default_budget(budget::DEFAULT_BUDGET);

    assert_eq!(poll_count(made_under_7), ((), 3)); // yields at 7 and 14
    assert_eq!(poll_count(overridden), (Some(100), 1));
    assert_eq!(poll_count(made_off), (Some(usize::MAX), 1));
    // Scoped futures take the default too, or the builder's budget.
    let polls = stackful::scope(|s| {
        let f = s.builder(Builder::new().yield_budget(2)).future(|| {
            for _ in 0..5 {
                budget::consume(1);
            }
        });
        poll_count(f.unwrap()).1
    });
    assert_eq!(polls, 3);
}

/// A coroutine that moves to another thread between two polls uses the budget of the
/// poll that runs it: after the move, `consume` charges the new thread's poll (a
/// stale thread-local address would charge the old thread's, where no poll runs, and
/// the coroutine would not yield at all).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn migrated_coroutine_uses_the_new_threads_budget() {
    // SAFETY: the closure owns nothing thread-bound (it holds no Rc, no thread-local
    // borrow, no lock across its suspensions).
    let mut fut = unsafe {
        Builder::new().yield_budget(10).future_send(|| {
            let mut threads = Vec::new();
            for _ in 0..50 {
                budget::consume(1);
                threads.push(std::thread::current().id());
            }
            threads
        })
    }
    .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    // First budget on this thread.
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    let (threads, polls) = std::thread::spawn(move || poll_count(fut)).join().unwrap();
    // 50 units, budget 10: yields at units 10, 20, 30, 40 and 50 (each `consume`
    // before its push); 5 of the 6 polls on the new thread.
    assert_eq!(polls, 5);
    let here = std::thread::current().id();
    assert!(threads[..9].iter().all(|&t| t == here), "{threads:?}");
    assert!(threads[9..].iter().all(|&t| t != here), "{threads:?}");
}

/// Polls `fut` to completion; returns its output and the value of `units` at each
/// `Pending`.
fn pending_at<F: Future + Unpin>(mut fut: F, units: &Cell<usize>) -> (F::Output, Vec<usize>) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut at = Vec::new();
    loop {
        match Pin::new(&mut fut).poll(&mut cx) {
            Poll::Ready(v) => return (v, at),
            Poll::Pending => at.push(units.get()),
        }
    }
}

/// A meter yields exactly where `consume` would when it is the only consumer.
#[test]
fn meter_yields_where_consume_would() {
    for charge in [Charge::Consume, Charge::Meter] {
        for (budget_units, step, total) in [(10, 1, 35), (7, 3, 40), (100_000, 1, 250_000)] {
            let units = Rc::new(Cell::new(0usize));
            let counted = Rc::clone(&units);
            let fut = Builder::new()
                .yield_budget(budget_units)
                .future(move || {
                    let mut meter = budget::Meter::new();
                    for _ in 0..total {
                        counted.set(counted.get() + step);
                        match charge {
                            Charge::Consume => budget::consume(step),
                            Charge::Meter => meter.consume(step),
                        }
                    }
                })
                .unwrap();
            let ((), at) = pending_at(fut, &units);
            // Yields when the units of the current poll reach the budget.
            let mut expected = Vec::new();
            let mut in_poll = 0;
            for u in 1..=total {
                in_poll += step;
                if in_poll >= budget_units {
                    expected.push(u * step);
                    in_poll = 0;
                }
            }
            assert_eq!(
                at, expected,
                "{charge:?}, budget {budget_units}, step {step}"
            );
        }
    }
}

/// A meter mixed with `consume` (a helper that charges directly): a poll runs at most
/// the budget plus one share of the meter (an eighth of the budget) that the direct
/// charges did not see.
#[test]
fn meter_mixed_with_consume() {
    const BUDGET: usize = 50;
    let units = Rc::new(Cell::new(0usize));
    let counted = Rc::clone(&units);
    let fut = Builder::new()
        .yield_budget(BUDGET)
        .future(move || {
            let mut meter = budget::Meter::new();
            for i in 0..1_000 {
                counted.set(counted.get() + 1);
                if i % 3 == 0 {
                    budget::consume(1);
                } else {
                    meter.consume(1);
                }
            }
        })
        .unwrap();
    let ((), at) = pending_at(fut, &units);
    let mut last = 0;
    for &u in &at {
        assert!(
            u - last <= BUDGET + BUDGET / 8,
            "{} units in one poll: {at:?}",
            u - last
        );
        last = u;
    }
    assert!(at.len() >= 1_000 / (BUDGET + BUDGET / 8), "{at:?}");
}

/// Outside any coroutine a meter counts and settles without effect.
#[test]
fn meter_outside() {
    let mut meter = budget::Meter::new();
    for _ in 0..300_000 {
        meter.consume(1);
    }
    meter.consume(usize::MAX);
    meter.consume(usize::MAX);
    assert_eq!(budget::remaining(), None);
}

/// A meter in a coroutine that moves to another thread settles with the new
/// thread's poll.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn migrated_meter() {
    // SAFETY: as in `migrated_coroutine_uses_the_new_threads_budget`.
    let mut fut = unsafe {
        Builder::new().yield_budget(10).future_send(|| {
            let mut meter = budget::Meter::new();
            let mut threads = Vec::new();
            for _ in 0..50 {
                meter.consume(1);
                threads.push(std::thread::current().id());
            }
            threads
        })
    }
    .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    let (threads, polls) = std::thread::spawn(move || poll_count(fut)).join().unwrap();
    assert_eq!(polls, 5);
    let here = std::thread::current().id();
    assert!(threads[..9].iter().all(|&t| t == here), "{threads:?}");
    assert!(threads[9..].iter().all(|&t| t != here), "{threads:?}");
}

/// A budget used up in a destructor while the coroutine unwinds from its own panic:
/// no yield there (a coroutine suspended halfway through unwinding could not be
/// dropped later); the budget refills and the panic comes out of the same poll.
#[cfg(panic = "unwind")]
#[test]
fn no_budget_yield_while_unwinding() {
    struct ConsumeOnDrop;
    impl Drop for ConsumeOnDrop {
        fn drop(&mut self) {
            assert!(!budget::charge(5), "charge says yield while unwinding");
            assert!(!budget::should_yield());
            budget::consume(5);
            assert_eq!(budget::remaining(), Some(3));
        }
    }
    let mut fut = Builder::new()
        .yield_budget(3)
        .future(|| {
            let _guard = ConsumeOnDrop;
            panic!("boom");
        })
        .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = Pin::new(&mut fut).poll(&mut cx);
    }))
    .expect_err("the panic comes out of the first poll");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert!(fut.is_complete());
}

/// A generator resumed from async code that `wait` polls cannot yield its future's
/// coroutine: its budget refills there instead (no panic).
#[test]
fn generator_inside_waits_poll() {
    let fut = Builder::new()
        .yield_budget(4)
        .future(|| {
            let gen = StackfulGenerator::new(|y: &YieldHandle<bool>, ()| {
                for _ in 0..10 {
                    budget::consume(1);
                }
                y.yeet(budget::should_yield());
            });
            wait(async move { gen.collect::<Vec<_>>() })
        })
        .unwrap();
    assert_eq!(poll_count(fut), (vec![false], 1));
}
