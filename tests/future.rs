//! `wait`, `stackful`, `StackfulFuture`, `in_stackful`, `yield_now` and `Builder`.

// Without unwinding (wasm32) the tests that need it are left out, and with them
// some of the helpers and imports.
#![cfg_attr(not(panic = "unwind"), allow(dead_code, unused_imports))]

mod common;

use common::{panic_message, pend_n, CountingWaker, Drops, HeapStack, Token};
use futures::channel::oneshot;
use futures::executor::block_on;
use futures::future::FusedFuture;
use futures::task::noop_waker_ref;
use stackful::future::StackfulFuture;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE};
use stackful::{in_stackful, stackful, wait, yield_now, Builder};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

/// A oneshot receiver whose value is sent by another thread after a short sleep, so
/// that the receiver really is pending when first polled.
#[cfg(not(target_arch = "wasm32"))]
fn from_other_thread<T: Send + 'static>(value: T) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let _ = tx.send(value);
    });
    rx
}

/// wasm32 has no threads: the value is sent by the receiver's first poll, after the
/// receiver registered the waker and found nothing, so that poll still returns
/// `Pending` and the oneshot wakes the task (from the same thread).
#[cfg(target_arch = "wasm32")]
fn from_other_thread<T: Unpin>(value: T) -> SentOnFirstPoll<T> {
    let (tx, rx) = oneshot::channel();
    SentOnFirstPoll {
        rx,
        send: Some((tx, value)),
    }
}

#[cfg(target_arch = "wasm32")]
struct SentOnFirstPoll<T> {
    rx: oneshot::Receiver<T>,
    send: Option<(oneshot::Sender<T>, T)>,
}

#[cfg(target_arch = "wasm32")]
impl<T: Unpin> Future for SentOnFirstPoll<T> {
    type Output = Result<T, oneshot::Canceled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let r = Pin::new(&mut this.rx).poll(cx);
        if r.is_pending() {
            if let Some((tx, value)) = this.send.take() {
                let _ = tx.send(value);
            }
        }
        r
    }
}

/// A future that never completes and records its drop.
struct PendingForever(#[allow(dead_code)] Token);

impl Future for PendingForever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

#[test]
fn wait_inside_stackful_on_a_ready_future() {
    let fut = stackful(|| {
        let a = wait(async { 20 });
        let b = wait(std::future::ready(22));
        a + b
    });
    // Nothing pends: the first poll completes.
    let mut fut = fut;
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Ready(42));
    assert!(fut.is_complete());
}

#[test]
fn wait_inside_stackful_on_a_future_completed_by_another_thread() {
    let fut = stackful(|| {
        let a = wait(from_other_thread(40u32)).unwrap();
        let b = wait(from_other_thread(2u32)).unwrap();
        a + b
    });
    assert_eq!(block_on(fut), 42);
}

#[test]
fn wait_inside_stackful_really_suspends_and_resumes() {
    let (tx, rx) = oneshot::channel::<u32>();
    let progress = Rc::new(Cell::new(0));
    let mut fut = stackful({
        let progress = Rc::clone(&progress);
        move || {
            progress.set(1);
            let v = wait(rx).unwrap();
            progress.set(2);
            v + 1
        }
    });
    let (count, waker) = CountingWaker::new();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    assert_eq!(progress.get(), 1);
    assert!(!fut.is_complete());
    assert!(!fut.is_terminated());
    // Polling again before the value is there suspends again.
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    assert_eq!(count.count(), 0);
    tx.send(9).unwrap();
    assert!(
        count.count() >= 1,
        "the oneshot wakes the task of the coroutine"
    );
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(10));
    assert_eq!(progress.get(), 2);
    assert!(fut.is_complete());
    assert!(fut.is_terminated());
}

#[test]
fn wait_outside_any_coroutine_blocks_until_ready() {
    assert!(!in_stackful());
    assert_eq!(wait(async { 5 }), 5);
    // Not on wasm32: needs a second thread to send the value.
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (tx, rx) = oneshot::channel();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            tx.send("late").unwrap();
        });
        assert_eq!(wait(rx), Ok("late"));
        sender.join().unwrap();
    }
    // A future that wakes itself before returning Pending, several times.
    assert_eq!(wait(pend_n(5, 'x')), 'x');
}

#[test]
fn nested_wait_outside_any_coroutine() {
    // `wait` polled from inside a future that an outer `wait` blocks on.
    let v = wait(async {
        let inner = wait(from_other_thread(3u8)).unwrap();
        let outer = from_other_thread(4u8).await.unwrap();
        inner * outer
    });
    assert_eq!(v, 12);
}

#[test]
fn wait_inside_a_plain_generator_blocks() {
    let g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        assert!(!in_stackful());
        y.yeet(wait(from_other_thread(1u32)).unwrap());
        y.yeet(wait(pend_n(3, 2)));
    });
    assert_eq!(g.collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn in_stackful_reports_where_wait_would_suspend() {
    assert!(!in_stackful());
    let inside = block_on(stackful(|| {
        let before = in_stackful();
        wait(pend_n(1, ()));
        let after = in_stackful();
        let mut g = StackfulGenerator::new(|y: &YieldHandle<bool>, ()| {
            y.yeet(in_stackful());
            wait(pend_n(1, ()));
            in_stackful()
        });
        let in_gen = match Pin::new(&mut g).resume(()) {
            GeneratorState::Yielded(b) => b,
            GeneratorState::Complete(_) => unreachable!(),
        };
        let in_gen_after_wait = match Pin::new(&mut g).resume(()) {
            GeneratorState::Complete(b) => b,
            GeneratorState::Yielded(_) => unreachable!(),
        };
        [before, after, in_gen, in_gen_after_wait]
    }));
    assert_eq!(inside, [true; 4]);
    assert!(!in_stackful());

    let mut plain = StackfulGenerator::new(|_: &YieldHandle<()>, ()| in_stackful());
    assert_eq!(
        Pin::new(&mut plain).resume(()),
        GeneratorState::Complete(false)
    );
    // A StackfulFuture polled inside a plain generator.
    let mut g = StackfulGenerator::new(|_: &YieldHandle<()>, ()| {
        let outer = in_stackful();
        let inner = block_on(stackful(in_stackful));
        (outer, inner, in_stackful())
    });
    assert_eq!(
        Pin::new(&mut g).resume(()),
        GeneratorState::Complete((false, true, false))
    );
}

#[test]
fn yield_now_inside_stackful_pends_once_and_wakes_the_task() {
    let steps = Rc::new(Cell::new(0));
    let mut fut = stackful({
        let steps = Rc::clone(&steps);
        move || {
            steps.set(1);
            yield_now();
            steps.set(2);
            "done"
        }
    });
    let (count, waker) = CountingWaker::new();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    assert_eq!(steps.get(), 1);
    assert_eq!(count.count(), 1, "yield_now wakes the task before pending");
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready("done"));
    assert_eq!(steps.get(), 2);
    assert_eq!(count.count(), 1);
}

#[test]
fn yield_now_outside_a_coroutine_just_returns() {
    yield_now();
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u8>, ()| {
        yield_now();
        y.yeet(1);
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), None);
}

/// `stackful` inside `wait` inside `stackful` ..., each level waiting on a pending
/// future first.
fn nest(level: u32) -> u64 {
    assert!(in_stackful());
    let own = if level % 2 == 0 {
        wait(pend_n(1, u64::from(level)))
    } else {
        wait(from_other_thread(u64::from(level))).unwrap()
    };
    if level == 0 {
        return own * 1000;
    }
    let below = wait(stackful(move || nest(level - 1)));
    assert!(in_stackful());
    // Suspend once more after the inner coroutine finished.
    wait(pend_n(1, ()));
    below + own
}

#[test]
fn ten_levels_of_stackful_inside_wait_inside_stackful() {
    let total = block_on(stackful(|| nest(10)));
    assert_eq!(total, (1..=10).sum::<u64>());
    assert!(!in_stackful());
}

#[test]
fn ten_levels_polled_by_hand_until_ready() {
    let mut fut = stackful(|| nest(10));
    let (count, waker) = CountingWaker::new();
    let mut polls = 0;
    let result = loop {
        polls += 1;
        let before = count.count();
        if let Poll::Ready(v) = poll_once(&mut fut, &waker) {
            break v;
        }
        // Poll again once woken (as an executor would).
        while count.count() == before {
            thread::sleep(Duration::from_millis(1));
        }
    };
    assert_eq!(result, 55);
    // Every level pends at least twice.
    assert!(polls > 20, "only {polls} polls");
}

#[derive(Debug, PartialEq)]
struct Payload(&'static str);

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_inside_propagates_to_the_poller_with_its_payload() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut fut = stackful(move || {
        let _t = d.token();
        wait(pend_n(1, ()));
        std::panic::panic_any(Payload("inside"));
    });
    let waker = noop_waker_ref();
    assert_eq!(poll_once(&mut fut, waker), Poll::Pending);
    let err = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut fut, waker))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("inside")));
    drops.assert_all_dropped_once();
    assert!(fut.is_complete());
    assert!(fut.is_terminated());
    let again = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut fut, waker))).unwrap_err();
    let msg = panic_message(&*again);
    assert!(
        msg.contains("StackfulFuture resumed after it panicked"),
        "{msg}"
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_through_block_on_keeps_its_payload() {
    let err = panic::catch_unwind(|| {
        block_on(stackful(|| {
            wait(from_other_thread(())).unwrap();
            std::panic::panic_any(Payload("via block_on"));
        }))
    })
    .unwrap_err();
    assert_eq!(
        err.downcast_ref::<Payload>(),
        Some(&Payload("via block_on"))
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_in_the_awaited_future_propagates_through_wait() {
    struct PanicOnPoll;
    impl Future for PanicOnPoll {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            std::panic::panic_any(Payload("in poll"))
        }
    }
    let caught = block_on(stackful(|| {
        // Caught inside the coroutine: the coroutine goes on.
        let r = panic::catch_unwind(AssertUnwindSafe(|| wait(PanicOnPoll)));
        wait(pend_n(1, ()));
        r.unwrap_err().downcast_ref::<Payload>() == Some(&Payload("in poll"))
    }));
    assert!(caught);
    let err = panic::catch_unwind(|| block_on(stackful(|| wait(PanicOnPoll)))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("in poll")));
}

#[test]
fn drop_before_the_first_poll() {
    let drops = Drops::new();
    let t = drops.token();
    let fut = stackful(move || {
        drop(t);
        unreachable!("never polled");
    });
    assert!(!fut.is_complete());
    assert!(!fut.is_terminated());
    drop(fut);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_while_suspended_unwinds_the_stack_and_drops_the_awaited_future() {
    fn deep(n: u32, d: &Drops) {
        let _frame = d.token();
        if n == 0 {
            wait(PendingForever(d.token()));
            unreachable!("dropped while suspended");
        }
        deep(n - 1, d);
    }
    let drops = Drops::new();
    let captured = drops.token();
    let d = drops.clone();
    let mut fut = stackful(move || {
        let _captured = captured;
        wait(pend_n(2, ()));
        deep(10, &d);
    });
    let waker = noop_waker_ref();
    for _ in 0..4 {
        assert_eq!(poll_once(&mut fut, waker), Poll::Pending);
    }
    // captured + 11 frames + the awaited future.
    assert_eq!(drops.created(), 13);
    assert_eq!(drops.dropped(), 0);
    drop(fut);
    drops.assert_all_dropped_once();
}

#[test]
fn drop_after_completion() {
    let drops = Drops::new();
    let t = drops.token();
    let mut fut = stackful(move || {
        wait(pend_n(1, ()));
        t
    });
    let waker = noop_waker_ref();
    assert!(poll_once(&mut fut, waker).is_pending());
    let out = match poll_once(&mut fut, waker) {
        Poll::Ready(t) => t,
        Poll::Pending => panic!("still pending"),
    };
    assert_eq!(drops.dropped(), 0);
    drop(fut);
    assert_eq!(drops.dropped(), 0, "the output belongs to the poller");
    drop(out);
    drops.assert_all_dropped_once();
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn polling_after_completion_panics() {
    let mut fut = stackful(|| 1);
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Ready(1));
    let _ = poll_once(&mut fut, noop_waker_ref());
}

#[test]
fn fused_future_is_terminated() {
    let mut fut = stackful(|| wait(pend_n(1, 3)));
    assert!(!fut.is_terminated());
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Pending);
    assert!(!fut.is_terminated());
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Ready(3));
    assert!(fut.is_terminated());
    // In a select!, a terminated future is skipped rather than polled again.
    let mut done = fut;
    let mut other = stackful(|| wait(pend_n(1, 4)));
    let v = block_on(async {
        futures::select! {
            a = done => a,
            b = other => b,
        }
    });
    assert_eq!(v, 4);
}

#[test]
fn wait_inside_a_generator_inside_stackful_suspends_the_whole_chain() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, rx) = oneshot::channel::<u32>();
    let future_log = Rc::clone(&log);
    let mut fut = stackful(move || {
        let log = future_log;
        let gen_log = Rc::clone(&log);
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32, u32>, mut r: u32| {
            let log = gen_log;
            log.borrow_mut().push("gen: before wait");
            let v = wait(rx).unwrap();
            log.borrow_mut().push("gen: after wait");
            r = y.yeet(v + r);
            r * 2
        });
        let a = match Pin::new(&mut g).resume(1) {
            GeneratorState::Yielded(a) => a,
            GeneratorState::Complete(_) => unreachable!(),
        };
        log.borrow_mut().push("future: generator yielded");
        let b = match Pin::new(&mut g).resume(a) {
            GeneratorState::Complete(b) => b,
            GeneratorState::Yielded(_) => unreachable!(),
        };
        (a, b)
    });
    let (count, waker) = CountingWaker::new();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    assert_eq!(*log.borrow(), ["gen: before wait"]);
    tx.send(10).unwrap();
    assert_eq!(count.count(), 1);
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready((11, 22)));
    assert_eq!(
        *log.borrow(),
        [
            "gen: before wait",
            "gen: after wait",
            "future: generator yielded"
        ]
    );
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_while_suspended_inside_a_nested_generator() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut fut = stackful(move || {
        let _outer = d.token();
        let d = d.clone();
        let g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
            let drops = d;
            let _inner = drops.token();
            wait(PendingForever(drops.token()));
            y.yeet(1);
        });
        g.collect::<Vec<_>>()
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    assert_eq!(drops.created(), 3);
    drop(fut);
    drops.assert_all_dropped_once();
}

#[test]
fn yield_now_inside_a_generator_inside_stackful() {
    let mut fut = stackful(|| {
        let g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            for i in 0..3 {
                yield_now();
                y.yeet(i);
            }
        });
        g.sum::<u32>()
    });
    let (count, waker) = CountingWaker::new();
    for i in 1..=3 {
        assert!(poll_once(&mut fut, &waker).is_pending());
        assert_eq!(count.count(), i);
    }
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(3));
}

/// A future whose `poll` calls `stackful::wait`: misuse when `wait` is polling it.
struct WaitsInPoll;

impl Future for WaitsInPoll {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(wait(async { 1 }))
    }
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn wait_from_inside_a_poll_that_wait_is_polling_panics() {
    let err = panic::catch_unwind(|| block_on(stackful(|| wait(WaitsInPoll)))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("already polling"), "{msg}");
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn wait_from_inside_a_poll_can_be_caught_and_the_coroutine_goes_on() {
    let v = block_on(stackful(|| {
        let r = panic::catch_unwind(|| wait(WaitsInPoll));
        assert!(panic_message(&*r.unwrap_err()).contains("already polling"));
        // The misuse did not leave `wait` in a broken state.
        wait(pend_n(2, 5)) + wait(from_other_thread(6)).unwrap()
    }));
    assert_eq!(v, 11);
}

#[test]
fn a_stackful_future_polled_from_inside_a_poll_that_wait_is_polling() {
    /// Polls an inner StackfulFuture from its own poll: a plain combinator.
    struct Wrapper<F>(F);
    impl<F: Future + Unpin> Future for Wrapper<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            Pin::new(&mut self.0).poll(cx)
        }
    }
    let v = block_on(stackful(|| {
        let inner = stackful(|| {
            assert!(in_stackful());
            wait(pend_n(2, 20)) + wait(from_other_thread(1)).unwrap()
        });
        wait(Wrapper(inner)) * 2
    }));
    assert_eq!(v, 42);
}

#[test]
fn wait_in_a_destructor_on_normal_scope_exit_works() {
    struct WaitOnDrop<'a>(&'a Cell<u32>);
    impl Drop for WaitOnDrop<'_> {
        fn drop(&mut self) {
            self.0.set(wait(pend_n(1, 7)));
        }
    }
    let cell = Rc::new(Cell::new(0));
    let mut fut = stackful({
        let cell = Rc::clone(&cell);
        move || {
            let _w = WaitOnDrop(&cell);
        }
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Ready(()));
    assert_eq!(cell.get(), 7);
}

const CHILD_WAIT_IN_DROP: &str = "wait_in_a_destructor_while_a_suspended_future_is_dropped_aborts";

// Not on wasm32: runs a child process (none on WASI) and needs the cancellation unwind.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wait_in_a_destructor_while_a_suspended_future_is_dropped_aborts() {
    if common::is_child(CHILD_WAIT_IN_DROP) {
        struct WaitOnDrop;
        impl Drop for WaitOnDrop {
            fn drop(&mut self) {
                wait(async {});
            }
        }
        let mut fut = stackful(|| {
            let _w = WaitOnDrop;
            wait(PendingForever(Drops::new().token()));
        });
        assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
        drop(fut);
        eprintln!("child: drop returned");
        return;
    }
    let (status, stderr) = common::run_child(CHILD_WAIT_IN_DROP);
    assert!(!status.success(), "stderr:\n{stderr}");
    assert!(
        common::aborted(&status),
        "abort expected, got {status}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("stackful::wait called while its coroutine is being dropped"),
        "stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("child: drop returned"),
        "stderr:\n{stderr}"
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_then_wait_panics_out_of_drop() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut fut = stackful(move || {
        let _outer = d.token();
        let r = panic::catch_unwind(AssertUnwindSafe(|| wait(PendingForever(d.token()))));
        assert!(r.is_err());
        let _after = d.token();
        wait(async {});
        unreachable!("wait must not return while the coroutine is being dropped");
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    let err = panic::catch_unwind(AssertUnwindSafe(move || drop(fut))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(
        msg.contains("stackful::wait called while its coroutine is being dropped"),
        "{msg}"
    );
    assert_eq!(drops.created(), 3);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_then_returning_completes_the_drop_quietly() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut fut = stackful(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(|| wait(PendingForever(d.token()))));
        assert!(r.is_err());
        d.token()
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    drop(fut);
    assert_eq!(drops.created(), 2);
    drops.assert_all_dropped_once();
}

#[test]
fn builder_with_a_chosen_stack_size() {
    let b = Builder::new().stack_size(64 * 1024);
    assert_eq!(b.get_stack_size(), 64 * 1024);
    assert_eq!(Builder::default(), Builder::new());
    assert_eq!(Builder::new().get_stack_size(), DEFAULT_STACK_SIZE);
    let fut = b.future(|| wait(pend_n(1, 7)) + wait(async { 1 })).unwrap();
    assert_eq!(block_on(fut), 8);
    let g = b
        .generator(|y: &YieldHandle<u32>, ()| {
            y.yeet(1);
            y.yeet(2);
        })
        .unwrap();
    assert_eq!(g.collect::<Vec<_>>(), [1, 2]);
}

/// A stack size that does not overflow when rounded but cannot be mapped.
#[cfg(target_pointer_width = "64")]
const BEYOND_ADDRESS_SPACE: usize = 1 << 60;
#[cfg(not(target_pointer_width = "64"))]
const BEYOND_ADDRESS_SPACE: usize = 3 << 30;

#[test]
fn builder_with_an_impossible_stack_size_returns_an_error() {
    let drops = Drops::new();
    for size in [usize::MAX, usize::MAX - 4 * 4096, BEYOND_ADDRESS_SPACE] {
        let t = drops.token();
        let r = Builder::new().stack_size(size).future(move || drop(t));
        assert!(r.is_err(), "stack size {size:#x} must fail");
        let t = drops.token();
        let r = Builder::new()
            .stack_size(size)
            .generator(move |_: &YieldHandle<()>, ()| drop(t));
        let err = r.unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // The closures of the failed constructions are dropped, not leaked.
    drops.assert_all_dropped_once();
    // And the thread can still make coroutines.
    assert_eq!(block_on(stackful(|| wait(pend_n(1, 1)))), 1);
}

#[test]
fn a_coroutine_on_a_minimum_size_stack() {
    let fut = Builder::new()
        .stack_size(MIN_STACK_SIZE)
        .future(|| {
            let v = wait(pend_n(2, 40)) + wait(from_other_thread(2)).unwrap();
            let mut g = Builder::new()
                .stack_size(0) // raised to MIN_STACK_SIZE
                .generator(|y: &YieldHandle<u32>, ()| {
                    y.yeet(1);
                })
                .unwrap();
            assert_eq!(g.next(), Some(1));
            v
        })
        .unwrap();
    assert_eq!(block_on(fut), 42);
}

/// Recursion with a KiB buffer per frame until `bytes` of stack below `top` are in
/// use; returns the depth reached in bytes.
#[inline(never)]
fn recurse(bytes: usize, top: usize) -> usize {
    let buf = black_box([bytes as u8; 1024]);
    let here = common::stack_address(&buf);
    let deepest = if top - here >= bytes {
        top - here
    } else {
        recurse(bytes, top)
    };
    black_box(&buf);
    deepest
}

fn stack_address() -> usize {
    let local = 0u8;
    common::stack_address(black_box(&local))
}

#[test]
fn deep_recursion_on_a_large_configured_stack() {
    let fut = Builder::new()
        .stack_size(8 << 20)
        .future(|| {
            wait(pend_n(1, ()));
            let depth = recurse(4 << 20, stack_address());
            wait(pend_n(1, ()));
            depth
        })
        .unwrap();
    let depth = block_on(fut);
    assert!(depth > 4 << 20, "only {depth} bytes of stack used");
}

const CHILD_OVERFLOW: &str = "deep_recursion_on_the_default_stack_kills_the_process";

// Not on wasm32: a guard-page fault in a child process (no processes or guard pages on WASI).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn deep_recursion_on_the_default_stack_kills_the_process() {
    if common::is_child(CHILD_OVERFLOW) {
        let depth = block_on(stackful(|| recurse(4 << 20, stack_address())));
        eprintln!("child: survived with {depth} bytes of stack");
        return;
    }
    let (status, stderr) = common::run_child(CHILD_OVERFLOW);
    assert!(!status.success(), "stderr:\n{stderr}");
    assert!(
        common::killed(&status),
        "killed by a signal expected, got {status}; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("child: survived"), "stderr:\n{stderr}");
}

#[test]
fn a_future_borrowing_local_data() {
    let mut data = vec![1, 2, 3];
    // Borrows `data`: a scoped future, driven to completion inside the scope.
    let total = stackful::scope(|s| {
        let data = &mut data;
        block_on(s.future(move || {
            data.push(wait(pend_n(1, 4)));
            data.iter().sum::<i32>()
        }))
    });
    assert_eq!(total, 10);
    assert_eq!(data, [1, 2, 3, 4]);
}

#[test]
fn stackful_future_new_and_debug() {
    let mut fut = StackfulFuture::new(|| wait(pend_n(1, "new")));
    assert!(format!("{fut:?}").contains("StackfulFuture"));
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    assert!(format!("{fut:?}").contains("StackfulFuture"));
    assert_eq!(poll_once(&mut fut, noop_waker_ref()), Poll::Ready("new"));
    assert!(format!("{fut:?}").contains("StackfulFuture"));
}

#[test]
fn stackful_future_is_usable_pinned_on_the_stack_and_moved_between_polls() {
    let fut = stackful(|| wait(pend_n(3, 1)) + wait(from_other_thread(1)).unwrap());
    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let mut a = fut;
    assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
    // Moving a suspended StackfulFuture is fine: its state lives on its own stack.
    let mut b = Box::new(a);
    assert!(Pin::new(&mut *b).poll(&mut cx).is_pending());
    let c = *b;
    let mut pinned = pin!(c);
    let v = loop {
        let before = count.count();
        if let Poll::Ready(v) = pinned.as_mut().poll(&mut cx) {
            break v;
        }
        while count.count() == before {
            thread::sleep(Duration::from_millis(1));
        }
    };
    assert_eq!(v, 2);
}

// A StackfulFuture polled inside a generator, whose closure yields through that
// generator's handle: the generator would suspend while the future's `poll` is still
// on its stack, leaving that poll current on the thread for the generator's resumer.
// `yeet` refuses (documented) with a panic that comes out of the generator.

const YEET_ACROSS_POLL: &str =
    "a generator cannot suspend while a poll it started is still in progress";

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn yeet_from_inside_a_stackful_future_polled_by_the_generator_panics() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        // The future borrows the generator's handle: a scoped future.
        stackful::scope(|s| {
            let inner = s.future(|| {
                assert!(in_stackful());
                y.yeet(1);
                unreachable!("the yield is refused");
            });
            block_on(inner)
        })
    });
    let err = panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut g).resume(()))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains(YEET_ACROSS_POLL), "{msg}");
    assert!(!in_stackful(), "no poll is left current on the thread");
    assert!(g.is_complete());
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn yeet_through_an_outer_handle_from_inside_a_poll_panics() {
    // The inner generator is resumed inside a StackfulFuture polled by the outer
    // generator, and yields through the outer generator's handle.
    // Both borrow the outer handle: a scoped future, and a generator of the same scope
    // made inside it.
    let mut outer = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        stackful::scope(|s| {
            block_on(s.future(|| {
                let mut inner = s.generator(|_: &YieldHandle<()>, ()| y.yeet(5));
                let _ = inner.next();
            }));
        });
    });
    let err = panic::catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains(YEET_ACROSS_POLL), "{msg}");
    assert!(!in_stackful());
}

#[test]
fn yeet_after_a_wait_in_a_generator_resumed_by_a_stackful_future_is_fine() {
    // The generator's resumer is the future's coroutine; `wait` suspends both, the
    // next poll resumes both, and then the generator yields to its resumer.
    let v = block_on(stackful(|| {
        let g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            for i in 0..3 {
                let v = wait(pend_n(1, i));
                y.yeet(wait(from_other_thread(v * 10)).unwrap());
            }
        });
        let mut got = Vec::new();
        for v in g {
            assert!(in_stackful());
            got.push(v);
        }
        got
    }));
    assert_eq!(v, [0, 10, 20]);
}

/// The same, with the future's second poll made from deeper in the poller's stack (a
/// different poll frame address) and from a boxed, moved future: the poll state a
/// generator records names the coroutine being polled, not the poll's frame (a
/// version that used the frame's address refused this yeet; AddressSanitizer's fake
/// stack showed it).
#[test]
fn yeet_after_a_wait_when_the_next_poll_runs_elsewhere() {
    let fut = stackful(|| {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            wait(pend_n(1, ()));
            y.yeet(1);
            2
        });
        match Pin::new(&mut g).resume(()) {
            GeneratorState::Yielded(v) => v,
            GeneratorState::Complete(v) => v,
        }
    });
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut fut = Box::new(fut);
    assert!(Pin::new(&mut *fut).poll(&mut cx).is_pending());
    // Moved (the future is Unpin), and polled from 8 frames further down.
    let mut moved = *fut;
    #[inline(never)]
    fn poll_deeper(depth: u32, fut: &mut StackfulFuture<'_, u32>) -> Poll<u32> {
        let pad = black_box([depth as u8; 256]);
        if depth == 0 {
            let mut cx = Context::from_waker(noop_waker_ref());
            Pin::new(fut).poll(&mut cx)
        } else {
            let r = poll_deeper(depth - 1, fut);
            black_box(&pad);
            r
        }
    }
    assert_eq!(poll_deeper(8, &mut moved), Poll::Ready(1));
}

const CHILD_WAIT_AFTER_YEET: &str =
    "wait_blocks_after_a_refused_yeet_from_inside_a_stackful_future";

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn wait_blocks_after_a_refused_yeet_from_inside_a_stackful_future() {
    // In a child process: before the yield was refused, the resumer's `wait` suspended
    // through the stale poll and unwound the resumer's own stack.
    common::in_child(CHILD_WAIT_AFTER_YEET, || {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            // The future borrows the generator's handle: a scoped future.
            stackful::scope(|s| {
                let mut inner = pin!(s.future(|| {
                    y.yeet(1);
                    2
                }));
                let mut cx = Context::from_waker(noop_waker_ref());
                inner.as_mut().poll(&mut cx)
            })
        });
        let err =
            panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut g).resume(()))).unwrap_err();
        assert!(panic_message(&*err).contains(YEET_ACROSS_POLL));
        assert!(!in_stackful());
        // Not inside any StackfulFuture: this blocks the thread until the value arrives.
        assert_eq!(wait(from_other_thread(7)), Ok(7));
        assert!(g.is_complete());
    });
}

/// A destructor that waits while a panic unwinds the coroutine's stack suspends the
/// coroutine in the middle of that unwind (documented: the poller sees
/// `std::thread::panicking()` until it is resumed to completion). The next poll
/// finishes the unwind and the original panic comes out.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn wait_in_a_destructor_during_a_panic_suspends_mid_unwind() {
    struct WaitOnDrop;
    impl Drop for WaitOnDrop {
        fn drop(&mut self) {
            wait(pend_n(1, ()));
        }
    }
    let mut fut = stackful(|| {
        let _w = WaitOnDrop;
        std::panic::panic_any(Payload("unwinding"));
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    assert!(
        std::thread::panicking(),
        "documented: the panic is still in flight"
    );
    let err = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut fut, noop_waker_ref())))
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("unwinding")));
    assert!(!std::thread::panicking());
    assert!(fut.is_terminated());
}

/// Dropping a suspended future while the dropping thread unwinds from an unrelated
/// panic. (In a child process, so that an abort fails only this test.)
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn drop_of_a_suspended_future_while_the_thread_is_panicking() {
    common::in_child(
        "drop_of_a_suspended_future_while_the_thread_is_panicking",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let err = panic::catch_unwind(AssertUnwindSafe(move || {
                let mut fut = stackful(move || {
                    let _t = d.token();
                    wait(PendingForever(d.token()));
                });
                assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
                std::panic::panic_any(Payload("unrelated"));
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("unrelated")));
            drops.assert_all_dropped_once();
        },
    );
}

/// A suspended future owns a suspended future on its stack; dropping the outer one
/// drops the inner one during the outer one's unwind.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn dropping_a_suspended_future_that_owns_a_suspended_future() {
    common::in_child(
        "dropping_a_suspended_future_that_owns_a_suspended_future",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let mut outer = stackful(move || {
                let d2 = d.clone();
                let mut inner = stackful(move || {
                    let _t = d2.token();
                    wait(PendingForever(d2.token()));
                });
                assert!(Pin::new(&mut inner)
                    .poll(&mut Context::from_waker(noop_waker_ref()))
                    .is_pending());
                wait(PendingForever(d.token()));
            });
            assert!(poll_once(&mut outer, noop_waker_ref()).is_pending());
            assert_eq!(drops.created(), 3);
            drop(outer);
            drops.assert_all_dropped_once();
        },
    );
}

/// A generator borrowed by a stackful future is running (waiting inside it) when the
/// future is dropped: its stack is unwound with the future's, and it is finished
/// afterwards.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn a_borrowed_generator_waiting_inside_a_dropped_future_is_finished_afterwards() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _t = d.token();
        y.yeet(1);
        wait(PendingForever(d.token()));
        y.yeet(2);
    });
    assert_eq!(g.next(), Some(1));
    // The future borrows `g`: a scoped future, dropped (suspended) inside the scope.
    stackful::scope(|s| {
        let g = &mut g;
        let mut fut = s.future(move || g.next());
        assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
        assert_eq!(drops.created(), 2);
        assert_eq!(drops.dropped(), 0);
    });
    drops.assert_all_dropped_once();
    assert!(g.is_complete());
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("resumed after it panicked"), "{msg}");
}

#[test]
fn stackful_future_with_a_custom_stack() {
    let freed = Rc::new(Cell::new(false));
    let stack = HeapStack::new(256 * 1024, freed.clone());
    let (lo, hi) = (
        stackful::stack::Stack::bottom(&stack).as_ptr() as usize,
        stackful::stack::Stack::top(&stack).as_ptr() as usize,
    );
    let mut fut = StackfulFuture::with_stack(stack, || {
        let local = 0u8;
        let addr = common::stack_address(black_box(&local));
        wait(pend_n(1, ()));
        addr + wait(from_other_thread(0)).unwrap()
    });
    let addr = block_on(&mut fut);
    assert!(
        (lo..hi).contains(&addr),
        "{addr:#x} is not on the custom stack {lo:#x}..{hi:#x}"
    );
    assert!(!freed.get());
    drop(fut);
    assert!(freed.get());

    // Dropped while suspended: unwound first, then the stack is freed. Needs
    // unwinding (wasm32 is panic=abort: the suspended stack is leaked there).
    #[cfg(panic = "unwind")]
    custom_stack_dropped_while_suspended();
}

#[cfg(panic = "unwind")]
fn custom_stack_dropped_while_suspended() {
    let freed = Rc::new(Cell::new(false));
    let drops = Drops::new();
    let d = drops.clone();
    let mut fut = StackfulFuture::with_stack(HeapStack::new(64 * 1024, freed.clone()), move || {
        let _t = d.token();
        wait(PendingForever(d.token()));
    });
    assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
    drop(fut);
    assert!(freed.get());
    drops.assert_all_dropped_once();
}

#[test]
fn a_suspended_stackful_future_escapes_the_coroutine_that_first_polled_it() {
    let mut outer = stackful(|| {
        let mut inner = stackful(|| {
            let local = [3u32; 64];
            wait(pend_n(1, ()));
            local.iter().sum::<u32>() + wait(from_other_thread(8)).unwrap()
        });
        // Polled once from this coroutine's stack, then handed out while suspended.
        assert!(Pin::new(&mut inner)
            .poll(&mut Context::from_waker(noop_waker_ref()))
            .is_pending());
        inner
    });
    let inner = match poll_once(&mut outer, noop_waker_ref()) {
        Poll::Ready(f) => f,
        Poll::Pending => panic!("the outer future pended"),
    };
    drop(outer);
    assert_eq!(block_on(inner), 200);
}
