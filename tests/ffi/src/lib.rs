//! Bindings to the C side of the tests (c/coro.c) and helpers shared by the tests.

use std::ffi::{c_int, c_void};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The return codes of include/stackful.h.
pub const STACKFUL_OK: c_int = 0;
pub const STACKFUL_NOT_IN_COROUTINE: c_int = -1;
pub const STACKFUL_BUSY: c_int = -2;
pub const STACKFUL_CANCELLED: c_int = -3;

/// `struct c_loop` of c/coro.c.
#[repr(C)]
pub struct CLoop {
    complete: Option<unsafe extern "C" fn(*mut c_void)>,
    token: *mut c_void,
    value: c_int,
    pub started: c_int,
}

impl CLoop {
    pub fn new() -> Box<CLoop> {
        Box::new(CLoop {
            complete: None,
            token: std::ptr::null_mut(),
            value: 0,
            started: 0,
        })
    }

    /// Whether an operation is parked, waiting for completion.
    pub fn has_pending(&self) -> bool {
        self.complete.is_some()
    }
}

extern "C" {
    pub fn c_in_coroutine() -> c_int;
    pub fn c_yield_now() -> c_int;
    pub fn c_yield_nested(n: c_int, depth: c_int) -> c_int;
    pub fn c_loop_complete(l: *mut CLoop, value: c_int) -> c_int;
    pub fn c_read_nested(l: *mut CLoop, depth: c_int) -> c_int;
    pub fn c_wait_immediate(counter: *mut c_int) -> c_int;
    pub fn c_context_version() -> c_int;
    pub fn c_spin(steps: c_int) -> c_int;
    pub fn c_consume(units: c_int) -> c_int;
}

/// A waker that counts its wakes.
pub struct CountingWaker(pub AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker counting its wakes, and the counter.
pub fn counting_waker() -> (Waker, Arc<CountingWaker>) {
    let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (Waker::from(count.clone()), count)
}

/// Polls `fut` once with `waker`.
pub fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// A future that is pending `n` times (waking its task each time), then ready with
/// `value`: a `wait` on it inside a coroutine suspends `n` times, and outside one
/// blocks for no time, so a test can tell the two apart.
pub struct PendingTimes<T> {
    pub n: usize,
    pub value: Option<T>,
}

pub fn pending_times<T>(n: usize, value: T) -> PendingTimes<T> {
    PendingTimes {
        n,
        value: Some(value),
    }
}

impl<T: Unpin> Future for PendingTimes<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.n == 0 {
            Poll::Ready(self.value.take().expect("polled after Ready"))
        } else {
            self.n -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Sets its flag when dropped.
pub struct SetOnDrop(pub Arc<AtomicUsize>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
