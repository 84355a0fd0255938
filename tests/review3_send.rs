//! Review round 3: `SendFuture`/`SendStream` moved between threads by hand, with the
//! chain of a nested generator suspended in `wait`, the budget and backtraces.
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{budget, wait, Builder, SendFuture, SendStream, StreamHandle};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::ThreadId;

mod common;
use common::poll_once as poll;

#[inline(never)]
fn thread_id() -> ThreadId {
    std::thread::current().id()
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The generator waits (suspending the whole chain) three times; between the polls
/// the future moves to a new thread, which exits afterwards. Every poll sees its own
/// thread and its own budget.
#[test]
fn a_chain_suspended_in_a_generator_migrates_thread_by_thread() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    // SAFETY: only integers, a CountDrop (Arc: Send) and the crate's own generator live
    // across the waits; thread ids are read out of line after each wait.
    let mut fut = unsafe {
        Builder::new().yield_budget(7).future_send(move || {
            let _d = CountDrop(d);
            let mut g = StackfulGenerator::new(|y: &YieldHandle<ThreadId>, ()| {
                let mut meter = budget::Meter::new();
                for _ in 0..3 {
                    wait(common::pend_n(1, ()));
                    for _ in 0..3 {
                        meter.consume(1);
                    }
                    y.yeet(thread_id());
                }
                budget::remaining()
            });
            let mut seen = Vec::new();
            loop {
                match Pin::new(&mut g).resume(()) {
                    GeneratorState::Yielded(t) => seen.push((t, thread_id())),
                    GeneratorState::Complete(r) => return (seen, r),
                }
            }
        })
    }
    .unwrap();
    let mut ids = Vec::new();
    let result = loop {
        let (r, id, f) = std::thread::spawn(move || {
            let r = poll(&mut fut);
            (r, thread_id(), fut)
        })
        .join()
        .unwrap();
        fut = f;
        ids.push(id);
        if let Poll::Ready(v) = r {
            break v;
        }
    };
    let (seen, remaining) = result;
    assert_eq!(seen.len(), 3);
    for (i, (gen_thread, fut_thread)) in seen.iter().enumerate() {
        // Yielded on the thread that ran the poll after the i-th wait.
        assert_eq!(gen_thread, fut_thread);
        assert_eq!(*gen_thread, ids[i + 1]);
    }
    assert!(matches!(remaining, Some(n) if n <= 7));
    drop(fut);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Suspended in a chain on thread A (which exits), traced on B, dropped on C: the
/// cancellation unwinds through the generator's frames on C.
#[test]
fn a_chain_suspended_on_an_exited_thread_is_traced_and_dropped_elsewhere() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    // SAFETY: as above.
    let fut = unsafe {
        SendFuture::new(move || {
            let _d = CountDrop(d.clone());
            let mut g = StackfulGenerator::new(move |_: &YieldHandle<()>, ()| {
                let _d = CountDrop(d);
                wait(futures::future::pending::<()>());
            });
            let _ = Pin::new(&mut g).resume(());
            unreachable!();
        })
    };
    let fut = std::thread::spawn(move || {
        let mut fut = fut;
        assert!(poll(&mut fut).is_pending());
        fut
    })
    .join()
    .unwrap();
    let fut = std::thread::spawn(move || {
        let mut fut = fut;
        let trace = fut.backtrace();
        assert!(trace.is_some());
        fut
    })
    .join()
    .unwrap();
    std::thread::spawn(move || drop(fut)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// A stream dropped on another thread whose closure swallows the cancellation and
/// returns normally: the drop completes there, destructors run once.
#[cfg(panic = "unwind")]
#[test]
fn a_send_stream_that_swallows_its_cancellation_on_another_thread() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    // SAFETY: only an Arc-based counter lives across the suspensions.
    let mut s = unsafe {
        SendStream::new(move |y: &StreamHandle<u32>| {
            let _d = CountDrop(d);
            y.yield_item(1);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait(futures::future::pending::<()>());
            }));
            assert!(r.is_err());
            // Cannot suspend again: refused with a panic, which is caught here too.
            let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.yield_item(2)));
            let msg = common::panic_message(&*again.unwrap_err());
            assert!(msg.contains("being dropped"), "{msg}");
        })
    };
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert_eq!(
        futures::Stream::poll_next(Pin::new(&mut s), &mut cx),
        Poll::Ready(Some(1))
    );
    assert!(futures::Stream::poll_next(Pin::new(&mut s), &mut cx).is_pending());
    std::thread::spawn(move || drop(s)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
