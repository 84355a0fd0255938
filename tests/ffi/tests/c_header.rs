//! C code (c/coro.c, compiled by build.rs with `cc` against include/stackful.h)
//! running inside coroutines of either copy of stackful: it is suspended and resumed
//! with its C frames on the stack (their locals survive every suspension).

use stackful as a;
use stackful_b as b;
use stackful_ffi_tests::*;
#[cfg(panic = "unwind")]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
#[cfg(panic = "unwind")]
use std::sync::Arc;
use std::task::Poll;

#[test]
fn outside_any_coroutine() {
    // SAFETY (all the C calls of this file): plain C functions of c/coro.c; the loop
    // pointers are live boxes.
    unsafe {
        assert_eq!(c_in_coroutine(), 0);
        assert_eq!(c_yield_now(), STACKFUL_NOT_IN_COROUTINE);
        assert_eq!(c_context_version(), 0);
        let mut l = CLoop::new();
        assert_eq!(c_read_nested(&mut *l, 2), STACKFUL_NOT_IN_COROUTINE);
        assert_eq!(l.started, 0, "start was called outside a coroutine");
    }
}

#[test]
fn in_coroutine_and_version() {
    for copy in ["a", "b"] {
        let body = || unsafe { (c_in_coroutine(), c_context_version()) };
        let got = if copy == "a" {
            futures::executor::block_on(a::stackful(body))
        } else {
            futures::executor::block_on(b::stackful(body))
        };
        // The copy `b` plays ABI version 3 (.ci/ffi-tests appends a field to its
        // context): a version-2 header reads it as any version-2 context.
        let version = if copy == "a" { 2 } else { 3 };
        assert_eq!(got, (1, version), "copy {copy}");
    }
}

#[test]
fn yield_from_nested_c_frames() {
    for copy in ["a", "b"] {
        let (waker, wakes) = counting_waker();
        let body = || unsafe { c_yield_nested(3, 4) };
        let mut fut = if copy == "a" {
            Box::pin(a::stackful(body)) as std::pin::Pin<Box<dyn std::future::Future<Output = i32>>>
        } else {
            Box::pin(b::stackful(body))
        };
        for _ in 0..3 {
            assert!(poll_once(&mut fut, &waker).is_pending(), "copy {copy}");
        }
        // 3 yields + the locals of frames 4..1 (4000 + 3000 + 2000 + 1000).
        assert_eq!(
            poll_once(&mut fut, &waker),
            Poll::Ready(10_003),
            "copy {copy}"
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 3, "copy {copy}");
    }
}

#[test]
fn wait_for_a_callback_operation() {
    for copy in ["a", "b"] {
        let mut l = CLoop::new();
        let lp: *mut CLoop = &mut *l;
        let lp_addr = lp as usize;
        let (waker, wakes) = counting_waker();
        let body = move || unsafe { c_read_nested(lp_addr as *mut CLoop, 3) };
        let mut fut = if copy == "a" {
            Box::pin(a::stackful(body)) as std::pin::Pin<Box<dyn std::future::Future<Output = i32>>>
        } else {
            Box::pin(b::stackful(body))
        };
        assert!(poll_once(&mut fut, &waker).is_pending());
        assert!(l.has_pending() && l.started == 1);
        // A spurious poll before completion: suspends again.
        assert!(poll_once(&mut fut, &waker).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        // SAFETY: `lp` is live.
        assert_eq!(unsafe { c_loop_complete(lp, 7) }, 1);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "completion woke the task"
        );
        // 7 + the locals of frames 3..1 (300 + 200 + 100).
        assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(607), "copy {copy}");
        drop(fut);
        drop(l);
    }
}

// No threads on wasm32-wasip1.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn completion_from_another_thread() {
    let mut l = CLoop::new();
    let lp_addr = &mut *l as *mut CLoop as usize;
    let mut pool = futures::executor::LocalPool::new();
    use futures::task::LocalSpawnExt;
    let handle = pool
        .spawner()
        .spawn_local_with_handle(b::stackful(move || unsafe {
            c_read_nested(lp_addr as *mut CLoop, 1)
        }))
        .unwrap();
    let completer = std::thread::spawn(move || loop {
        // SAFETY: the loop outlives the thread (joined below); the C side hands the
        // operation over before the coroutine suspends, and only this thread
        // completes it.
        unsafe {
            if std::ptr::read_volatile(&(*(lp_addr as *const CLoop)).started) == 1
                && c_loop_complete(lp_addr as *mut CLoop, 5) == 1
            {
                break;
            }
        }
        std::thread::yield_now();
    });
    assert_eq!(pool.run_until(handle), 105);
    completer.join().unwrap();
}

#[test]
fn an_operation_that_completes_at_once_does_not_suspend() {
    let (waker, _) = counting_waker();
    let mut counter = Box::new(0);
    let cp = &mut *counter as *mut i32 as usize;
    let mut fut = a::stackful(move || unsafe { c_wait_immediate(cp as *mut i32) });
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(STACKFUL_OK));
    assert_eq!(*counter, 1);
}

#[test]
fn c_inside_a_wait_poll_is_refused() {
    // C code called from inside the poll of a future that `wait` polls cannot suspend
    // the coroutine: STACKFUL_BUSY, and start is not called.
    let mut l = CLoop::new();
    let lp = &mut *l as *mut CLoop as usize;
    let got = futures::executor::block_on(b::stackful(move || {
        a::wait(futures::future::poll_fn(|_| {
            Poll::Ready(unsafe { (c_yield_now(), c_read_nested(lp as *mut CLoop, 0)) })
        }))
    }));
    assert_eq!(got, (STACKFUL_BUSY, STACKFUL_BUSY));
    assert_eq!(l.started, 0);
}

// Needs unwinding (wasm32-wasip1 tests run with panic = "abort").
#[cfg(panic = "unwind")]
#[test]
fn dropping_a_coroutine_suspended_in_c() {
    for copy in ["a", "b"] {
        let mut l = CLoop::new();
        let lp = &mut *l as *mut CLoop as usize;
        let dropped = Arc::new(AtomicUsize::new(0));
        let result = Arc::new(AtomicUsize::new(0));
        let (d, r) = (dropped.clone(), result.clone());
        let body = move || {
            let _g = SetOnDrop(d);
            // SAFETY: the loop outlives the coroutine.
            let rc = unsafe { c_read_nested(lp as *mut CLoop, 2) };
            r.store(rc as usize, Ordering::SeqCst);
            // The coroutine is being dropped: the Rust caller returns (here, after
            // checking that a yield from C is refused too).
            let again = unsafe { c_yield_now() };
            assert_eq!(again, STACKFUL_CANCELLED);
        };
        let (waker, _) = counting_waker();
        let mut fut = if copy == "a" {
            Box::pin(a::stackful(body)) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        } else {
            Box::pin(b::stackful(body))
        };
        assert!(poll_once(&mut fut, &waker).is_pending());
        drop(fut);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "copy {copy}");
        assert_eq!(
            result.load(Ordering::SeqCst) as i32,
            STACKFUL_CANCELLED,
            "copy {copy}"
        );
        // The operation completes after the coroutine is gone: its token is still
        // valid (the completion state is reference-counted).
        // SAFETY: the loop is live.
        assert_eq!(unsafe { c_loop_complete(lp as *mut CLoop, 1) }, 1);
    }
}

#[test]
fn c_suspends_across_copies() {
    // C code in a coroutine of b, nested in a coroutine of a that waits on it with
    // b's wait: each suspension goes all the way up.
    let mut l = CLoop::new();
    let lp = &mut *l as *mut CLoop as usize;
    let (waker, _) = counting_waker();
    let mut fut = a::stackful(move || {
        b::wait(b::stackful(move || unsafe {
            c_yield_nested(1, 1) + c_read_nested(lp as *mut CLoop, 0)
        }))
    });
    assert!(poll_once(&mut fut, &waker).is_pending()); // the yield
    assert!(poll_once(&mut fut, &waker).is_pending()); // the read
    assert!(l.has_pending());
    // SAFETY: the loop is live.
    unsafe { c_loop_complete(lp as *mut CLoop, 20) };
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(1 + 1000 + 20));
}

#[test]
fn budget_from_c() {
    // SAFETY (as above): plain C functions of c/coro.c.
    unsafe {
        assert_eq!(c_consume(1), STACKFUL_NOT_IN_COROUTINE);
    }
    for copy in ["a", "b"] {
        let (waker, wakes) = counting_waker();
        // 10 steps, a budget of 3 units per poll: the charges of steps 3, 6 and 9
        // use it up; each time should_yield says so and the coroutine yields once.
        let body = || unsafe { c_spin(10) };
        let mut fut = if copy == "a" {
            Box::pin(a::Builder::new().yield_budget(3).future(body).unwrap())
                as std::pin::Pin<Box<dyn std::future::Future<Output = i32>>>
        } else {
            Box::pin(b::Builder::new().yield_budget(3).future(body).unwrap())
        };
        let mut pending = 0;
        let out = loop {
            match poll_once(&mut fut, &waker) {
                Poll::Ready(v) => break v,
                Poll::Pending => pending += 1,
            }
            assert!(pending < 100, "copy {copy}: never ready");
        };
        assert_eq!((out, pending), (3010, 3), "copy {copy}");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 3, "copy {copy}: a yield wakes");
        // consume from C inside the other copy's coroutine, with the budget off: no
        // yield.
        let body = || unsafe { c_consume(1_000_000) };
        let out = if copy == "a" {
            futures::executor::block_on(a::Builder::new().yield_budget(0).future(body).unwrap())
        } else {
            futures::executor::block_on(b::Builder::new().yield_budget(0).future(body).unwrap())
        };
        assert_eq!(out, STACKFUL_OK, "copy {copy}");
    }
}
