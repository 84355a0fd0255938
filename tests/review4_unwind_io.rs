//! Review round 4: the "is this coroutine unwinding?" guess of `stackful::io` after
//! review round 3 (a poll inherits the outer poll's `thread_was_panicking` flag only if
//! the outer slot state has WAIT_POLLING, else it reads `std::thread::panicking()`),
//! and the budget's "never yield while the thread panics".
//!
//! Correct behaviour (docs of `wait_io`, README "Safety and failure modes"): IO refuses to
//! wait (fails at once if not ready) while the coroutine is unwinding, i.e. when its
//! Pending would suspend an unwinding chain; a coroutine polled by hand (its Pending
//! suspends no one else) from a destructor during an unwind waits as usual.
#![cfg(all(not(target_arch = "wasm32"), panic = "unwind", feature = "futures-io"))]

use stackful::io::SyncIo;
use stackful::{budget, wait, Builder};
use std::cell::RefCell;
use std::future::Future;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

mod common;

/// An async reader that is pending once (waking its task) before every read.
#[derive(Default)]
struct PendingOnce {
    ready: bool,
}

impl futures::io::AsyncRead for PendingOnce {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        buf[0] = 42;
        Poll::Ready(Ok(1))
    }
}

/// A coroutine that reads one byte through `stackful::io` and reports what it got.
fn reader() -> stackful::future::StackfulFuture<'static, String> {
    stackful::stackful(|| {
        let mut r = SyncIo::new(PendingOnce::default());
        let mut buf = [0u8; 1];
        match r.read(&mut buf) {
            Ok(n) => format!("Ok({n}, {})", buf[0]),
            Err(e) => format!("Err({e})"),
        }
    })
}

const OK: &str = "Ok(1, 42)";

fn refused(s: &str) -> bool {
    s.starts_with("Err(") && s.contains("cannot wait while the coroutine is unwinding")
}

/// Polls `fut` by hand (no-op waker) until it is ready.
fn spin<F: Future + Unpin>(mut fut: F) -> F::Output {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    loop {
        if let Poll::Ready(v) = Pin::new(&mut fut).poll(&mut cx) {
            return v;
        }
    }
}

type Out = Rc<RefCell<Vec<String>>>;

/// On drop, runs a fresh reader coroutine to completion by hand (its Pending suspends
/// no one else) and records its result.
struct SpinReaderOnDrop(Out);
impl Drop for SpinReaderOnDrop {
    fn drop(&mut self) {
        let got = spin(reader());
        self.0.borrow_mut().push(got);
    }
}

/// A future whose poll panics; a guard in the poll's frame runs a fresh reader by hand
/// while that panic unwinds the poll.
struct PanickingPoll(Out);
impl Future for PanickingPoll {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let _g = SpinReaderOnDrop(self.0.clone());
        panic!("poll");
    }
}

/// The fresh coroutine is polled by hand from a destructor during an unwind, exactly
/// as in review3's `io_in_a_fresh_coroutine_polled_while_its_parent_unwinds`, except
/// that the destructor runs inside the poll of a future that a `wait` of the parent
/// polls (WAIT_POLLING is set in the slot). Its Pending suspends no one but itself
/// (the hand-made loop polls it again), so its read could wait.
///
/// The reviewer expected it to. It refuses, on purpose: from inside a poll that a
/// `wait` makes, the crate cannot tell a coroutine polled by hand from one polled by
/// a combinator (`join`) whose Pending suspends the waiting coroutine, which here is
/// unwinding (see `join_of_two_readers_inside_wait_in_an_unwinding_coroutine_refuses`):
/// telling them apart would cost a read of std's panic count at every `wait`. An
/// error where a wait would have worked, rather than a coroutine suspended halfway
/// through its unwind (which aborts when dropped). Documented with `wait_io`.
#[test]
fn fresh_coroutine_polled_by_hand_inside_a_waited_poll_that_unwinds() {
    let got: Out = Rc::default();
    let seen = got.clone();
    let parent = stackful::stackful(move || {
        wait(PanickingPoll(seen));
    });
    let r = catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(parent)));
    assert_eq!(common::panic_message(&*r.unwrap_err()), "poll");
    eprintln!("got {:?}", got.borrow());
    let got = got.borrow();
    assert_eq!(got.len(), 1);
    assert!(refused(&got[0]), "{got:?}");
}

/// Control: the same guard in the parent's own frames (not inside a waited poll):
/// waits (review round 3's fix).
#[test]
fn control_fresh_coroutine_polled_by_hand_while_the_parent_unwinds() {
    let got: Out = Rc::default();
    let seen = got.clone();
    let parent = stackful::stackful(move || {
        let _g = SpinReaderOnDrop(seen);
        panic!("parent");
    });
    let r = catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(parent)));
    assert_eq!(common::panic_message(&*r.unwrap_err()), "parent");
    assert_eq!(got.borrow().as_slice(), [OK]);
}

/// On drop, `wait`s for a fresh reader coroutine: its Pending would suspend the
/// unwinding parent, so its IO must refuse.
struct WaitReaderOnDrop(Out);
impl Drop for WaitReaderOnDrop {
    fn drop(&mut self) {
        let got = wait(reader());
        self.0.borrow_mut().push(got);
    }
}

/// Nested `wait` of a StackfulFuture inside a coroutine that unwinds its own panic:
/// the inner read refuses (it would suspend the unwinding parent), and the parent's
/// panic comes out of the poll.
#[test]
fn nested_wait_of_a_reader_in_an_unwinding_coroutine_refuses() {
    common::in_child(
        "nested_wait_of_a_reader_in_an_unwinding_coroutine_refuses",
        || {
            let got: Out = Rc::default();
            let seen = got.clone();
            let mut parent = stackful::stackful(move || {
                let _g = WaitReaderOnDrop(seen);
                panic!("parent");
            });
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let r = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut parent).poll(&mut cx)));
            let msg = match &r {
                Err(p) => common::panic_message(&**p),
                Ok(p) => format!("{p:?}"),
            };
            eprintln!("poll: {msg}; got {:?}", got.borrow());
            assert_eq!(msg, "parent");
            assert_eq!(got.borrow().len(), 1);
            assert!(refused(&got.borrow()[0]), "{:?}", got.borrow());
        },
    );
}

/// On drop, `wait`s for the join of two fresh readers.
struct WaitJoinOnDrop(Out);
impl Drop for WaitJoinOnDrop {
    fn drop(&mut self) {
        let (a, b) = wait(futures::future::join(reader(), reader()));
        self.0.borrow_mut().extend([a, b]);
    }
}

/// `join` of two StackfulFutures inside a `wait` of an unwinding coroutine: both
/// refuse.
#[test]
fn join_of_two_readers_inside_wait_in_an_unwinding_coroutine_refuses() {
    common::in_child(
        "join_of_two_readers_inside_wait_in_an_unwinding_coroutine_refuses",
        || {
            let got: Out = Rc::default();
            let seen = got.clone();
            let mut parent = stackful::stackful(move || {
                let _g = WaitJoinOnDrop(seen);
                panic!("parent");
            });
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let r = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut parent).poll(&mut cx)));
            assert_eq!(common::panic_message(&*r.unwrap_err()), "parent");
            let got = got.borrow();
            eprintln!("got {got:?}");
            assert_eq!(got.len(), 2);
            assert!(got.iter().all(|s| refused(s)), "{got:?}");
        },
    );
}

/// Control: the same join inside `wait` outside any unwind: both read.
#[test]
fn control_join_of_two_readers_inside_wait() {
    let got: Out = Rc::default();
    let seen = got.clone();
    let parent = stackful::stackful(move || drop(WaitJoinOnDrop(seen)));
    futures::executor::block_on(parent);
    assert_eq!(got.borrow().as_slice(), [OK, OK]);
}

/// A coroutine dropped while suspended (cancelled): a destructor on its stack runs a
/// fresh reader by hand. The fresh one is not unwinding: it waits as usual.
#[test]
fn fresh_reader_spun_by_hand_in_the_destructor_of_a_cancelled_coroutine() {
    common::in_child(
        "fresh_reader_spun_by_hand_in_the_destructor_of_a_cancelled_coroutine",
        || {
            let got: Out = Rc::default();
            let seen = got.clone();
            let mut parent = stackful::stackful(move || {
                let _g = SpinReaderOnDrop(seen);
                wait(common::pend_n(1, ()));
            });
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            assert!(Pin::new(&mut parent).poll(&mut cx).is_pending());
            drop(parent);
            assert_eq!(got.borrow().as_slice(), [OK]);
        },
    );
}

/// The reader of a cancelled coroutine itself (a destructor on the cancelled stack
/// reads): refuses.
struct ReadOnDrop(Out);
impl Drop for ReadOnDrop {
    fn drop(&mut self) {
        let mut r = SyncIo::new(PendingOnce::default());
        let mut buf = [0u8; 1];
        let s = match r.read(&mut buf) {
            Ok(n) => format!("Ok({n}, {})", buf[0]),
            Err(e) => format!("Err({e})"),
        };
        self.0.borrow_mut().push(s);
    }
}

#[test]
fn read_in_the_destructor_of_a_cancelled_coroutine_refuses() {
    common::in_child(
        "read_in_the_destructor_of_a_cancelled_coroutine_refuses",
        || {
            let got: Out = Rc::default();
            let seen = got.clone();
            let mut parent = stackful::stackful(move || {
                let _g = ReadOnDrop(seen);
                wait(common::pend_n(1, ()));
            });
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            assert!(Pin::new(&mut parent).poll(&mut cx).is_pending());
            drop(parent);
            assert!(refused(&got.borrow()[0]), "{:?}", got.borrow());
        },
    );
}

/// Budget: a coroutine polled by hand from a destructor during an unrelated unwind,
/// using up its budget many times without a panic of its own, never yields (documented:
/// "the budget also never yields while the thread is panicking"): one poll finishes it.
struct BudgetOnDrop(Rc<RefCell<Option<bool>>>);
impl Drop for BudgetOnDrop {
    fn drop(&mut self) {
        let mut fut = Builder::new()
            .yield_budget(3)
            .future(|| {
                for _ in 0..100 {
                    budget::consume(1);
                }
            })
            .unwrap();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        *self.0.borrow_mut() = Some(Pin::new(&mut fut).poll(&mut cx).is_ready());
    }
}

#[test]
fn budget_in_a_coroutine_polled_during_an_unrelated_unwind_never_yields() {
    let seen = Rc::new(RefCell::new(None));
    let s2 = seen.clone();
    let r = catch_unwind(AssertUnwindSafe(move || {
        let _g = BudgetOnDrop(s2);
        panic!("unrelated");
    }));
    assert!(r.is_err());
    assert_eq!(*seen.borrow(), Some(true));
}

/// Control: outside an unwind the same coroutine yields (budget 3, 100 units).
#[test]
fn control_budget_yields_outside_an_unwind() {
    let seen = Rc::new(RefCell::new(None));
    drop(BudgetOnDrop(seen.clone()));
    assert_eq!(*seen.borrow(), Some(false));
}

/// A future, polled by a `wait`, whose poll resumes a generator that runs a fresh
/// reader by hand (WAIT_POLLING set in the slot, an outer context present: the
/// debug assertion in `EnterFrame::new` holds). Outside any unwind the read waits.
struct GeneratorInPoll(Out);
impl Future for GeneratorInPoll {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
        let out = self.0.clone();
        let mut g = StackfulGenerator::new(move |_: &YieldHandle<()>, ()| {
            out.borrow_mut().push(spin(reader()));
        });
        assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Complete(()));
        Poll::Ready(())
    }
}

#[test]
fn generator_in_a_waited_poll_runs_a_reader_by_hand() {
    let got: Out = Rc::default();
    let seen = got.clone();
    futures::executor::block_on(stackful::stackful(move || wait(GeneratorInPoll(seen))));
    assert_eq!(got.borrow().as_slice(), [OK]);
}
