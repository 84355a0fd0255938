//! Every misuse panics with a message that names it (one test per misuse).

use futures::executor::block_on;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{stackful, stream, wait, StreamHandle};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[test]
#[should_panic(expected = "StackfulGenerator resumed after it completed")]
fn resuming_a_completed_generator() {
    let mut g = StackfulGenerator::new(|_: &YieldHandle<()>, ()| 1);
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Complete(1));
    let _ = Pin::new(&mut g).resume(());
}

#[test]
#[should_panic(expected = "StackfulGenerator resumed after it panicked")]
fn resuming_a_panicked_generator() {
    let mut g = StackfulGenerator::new(|_: &YieldHandle<()>, ()| -> () { panic!("inner") });
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = Pin::new(&mut g).resume(());
    }));
    assert!(first.is_err());
    let _ = Pin::new(&mut g).resume(());
}

#[test]
#[should_panic(expected = "StackfulGenerator resumed from inside itself")]
fn resuming_a_generator_from_inside_itself() {
    type G = StackfulGenerator<'static, (), (), ()>;
    // Safe code cannot reach the generator from its own closure (it is borrowed by
    // `resume`); unsafe code can, and the library must refuse instead of switching
    // to a stack that is running. The pointer is set before the first resume and is
    // only used while `g` is alive.
    let slot = std::rc::Rc::new(std::cell::Cell::new(std::ptr::null_mut::<()>()));
    let theirs = std::rc::Rc::clone(&slot);
    let mut g: G = StackfulGenerator::new(move |_: &YieldHandle<()>, ()| {
        // SAFETY: deliberately aliases the generator being resumed, to exercise the
        // library's re-entrancy check; the pointer is valid (set before resuming).
        let me = unsafe { &mut *(theirs.get() as *mut G) };
        let _ = Pin::new(me).resume(());
    });
    slot.set(&mut g as *mut G as *mut ());
    let _ = Pin::new(&mut g).resume(());
}

#[test]
#[should_panic(expected = "StackfulFuture polled after it completed")]
fn polling_a_completed_future() {
    let mut f = stackful(|| 1);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(1));
    let _ = Pin::new(&mut f).poll(&mut cx);
}

/// A future whose poll calls `wait` itself.
struct WaitsInPoll;

impl Future for WaitsInPoll {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        wait(async {});
        Poll::Ready(())
    }
}

#[test]
#[should_panic(expected = "stackful::wait is already polling on the same coroutine")]
fn wait_from_inside_a_poll_that_wait_is_running() {
    block_on(stackful(|| wait(WaitsInPoll)));
}

#[test]
#[should_panic(
    expected = "a generator cannot suspend while a poll it started is still in progress"
)]
fn yeet_from_inside_a_future_the_generator_is_polling() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        // The future borrows the generator's handle: a scoped future.
        stackful::scope(|s| block_on(s.future(|| y.yeet(1))));
    });
    let _ = Pin::new(&mut g).resume(());
}

#[test]
#[should_panic(expected = "called while its coroutine is being dropped")]
fn yeet_after_catching_the_cancellation() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.yeet(1)));
        assert!(caught.is_err(), "the drop unwinds the pending yeet");
        y.yeet(2); // misuse: the generator is being dropped
    });
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(1));
    drop(g); // the misuse's panic comes out of the drop
}

#[test]
#[should_panic(expected = "StackfulStream resumed after it panicked")]
fn polling_a_panicked_stream() {
    use futures::StreamExt;
    let mut s = stream(|_: &StreamHandle<u8>| panic!("inner"));
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(s.next())));
    assert!(first.is_err());
    let _ = block_on(s.next());
}

#[test]
#[should_panic(
    expected = "a generator cannot suspend while a poll it started is still in progress"
)]
fn yeet_from_inside_a_future_that_wait_is_polling() {
    // The generator runs inside a StackfulFuture's coroutine; its own `wait` polls a
    // future that yields through the generator's handle. Allowed, that would leave
    // the wait's poll half-done on the generator's stack while the future moves on.
    let outer = stackful(|| {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            wait(async { y.yeet(1) });
        });
        let _ = Pin::new(&mut g).resume(());
    });
    block_on(outer);
}

#[test]
fn a_generator_resumed_inside_a_poll_may_yield_there() {
    // The legitimate counterpart: the generator is resumed from inside the poll
    // (same poll state at resume and at yield), so it may yield back into it.
    let v = block_on(stackful(|| {
        wait(async {
            let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
                y.yeet(5);
            });
            match Pin::new(&mut g).resume(()) {
                GeneratorState::Yielded(v) => v,
                GeneratorState::Complete(()) => 0,
            }
        })
    }));
    assert_eq!(v, 5);
}
