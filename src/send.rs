//! Opt-in `Send` for `'static` coroutine futures and streams: [`SendFuture`] and
//! [`SendStream`], for work-stealing executors (`tokio::spawn`, smol's multi-threaded
//! executors, `futures::executor::ThreadPool`).
//!
//! A [`StackfulFuture`] is `!Send` because its suspended stack may hold what must stay
//! on one thread. When the caller knows that it holds nothing of the kind, it can say
//! so with the `unsafe` [`StackfulFuture::assume_send`] (or [`SendFuture::new`]), as
//! wasmtime does for the fibers of its async support and as corosensei's
//! documentation suggests for its coroutines. This crate's own per-thread state
//! supports it: a coroutine may be created on one thread, suspended there, resumed on
//! another and finished or dropped on a third.

use crate::future::StackfulFuture;
use crate::stream::{StackfulStream, StreamHandle};
use crate::Builder;
use futures_core::{FusedFuture, FusedStream, Stream};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A [`StackfulFuture`] that the caller has vouched may move between threads while it
/// is suspended; it is `Send` when its output is. Made by the `unsafe`
/// [`StackfulFuture::assume_send`], [`SendFuture::new`] or [`Builder::future_send`].
///
/// It behaves exactly like the future it wraps (polling, `wait`, cancellation on
/// drop, panics). Each poll may run on another thread: the coroutine then continues
/// there, and a drop unwinds its stack on the thread that drops it.
///
/// ```
/// use stackful::{wait, SendFuture};
///
/// // Thread-locals (here tokio's runtime context) only out of line: see
/// // `assume_send`, point 2.
/// #[inline(never)]
/// fn sleep_ms(ms: u64) -> tokio::time::Sleep {
///     tokio::time::sleep(std::time::Duration::from_millis(ms))
/// }
///
/// # #[cfg(not(target_arch = "wasm32"))] {
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
/// let total = rt.block_on(async {
///     let tasks: Vec<_> = (0..4u64)
///         .map(|i| {
///             // SAFETY: the closure owns only Send values (a u64), and holds nothing
///             // thread-bound across its `wait`s: no Rc, no thread-local borrow, no
///             // lock guard, no panic unwinding through a `wait`.
///             let fut = unsafe {
///                 SendFuture::new(move || {
///                     wait(tokio::task::yield_now());
///                     wait(sleep_ms(1));
///                     i * 10
///                 })
///             };
///             tokio::spawn(fut)
///         })
///         .collect();
///     let mut total = 0;
///     for t in tasks {
///         total += t.await.unwrap();
///     }
///     total
/// });
/// assert_eq!(total, 60);
/// # }
/// ```
///
/// Without `assume_send`, a work-stealing `spawn` refuses a coroutine future:
///
/// ```compile_fail,E0277
/// # let _ = async {
/// tokio::spawn(stackful::stackful(|| stackful::wait(async { 1 })));
/// # };
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<T> {
    inner: StackfulFuture<'static, T>,
}

// SAFETY: the constructors are `unsafe`; their callers promise what `Send` needs of
// the coroutine and of everything on its stack (see `StackfulFuture::assume_send`).
// The output leaves the coroutine only when it is finished, on the thread that polls,
// hence `T: Send`. The crate's own state is migration-safe: its thread-locals are
// read afresh after every switch (see `crate::context`), a default stack
// belongs to no thread (it goes back to the pool of the thread that drops it), the
// overflow registry is process-wide and each polling thread gets an alternate signal
// stack (`poll` below).
unsafe impl<T: Send> Send for SendFuture<T> {}

impl<T> StackfulFuture<'static, T> {
    /// Marks this future `Send`: the caller vouches that the coroutine may be
    /// suspended on one thread and resumed (or dropped) on another.
    ///
    /// ```
    /// use stackful::{stackful, wait};
    ///
    /// fn assert_send<T: Send>(t: T) -> T { t }
    /// // SAFETY: the closure owns a String (Send) and holds nothing thread-bound across
    /// // its `wait`.
    /// let fut = assert_send(unsafe { stackful(|| wait(async { String::from("hi") })).assume_send() });
    /// assert_eq!(futures::executor::block_on(fut), "hi");
    /// ```
    ///
    /// # Safety
    /// A suspended coroutine is a stack of frames that the compiler checked for one
    /// thread only. The caller promises, for the coroutine's closure and everything it
    /// calls (at any depth, nested generators and coroutines included):
    ///
    /// 1. **Nothing thread-bound lives across a suspension point.** Suspension points
    ///    are [`wait`](crate::wait), [`yield_now`](crate::yield_now) and
    ///    [`StreamHandle::yield_item`], also when called from a nested generator or
    ///    coroutine (a `wait` there suspends the whole chain), and any function that
    ///    calls one. Across them, no `!Send` value may be alive on the stack, except
    ///    this crate's coroutines (generators, futures, streams) whose own stacks
    ///    keep these rules in turn: no `Rc`
    ///    or `RefCell` shared with anything outside the coroutine, no reference into a
    ///    thread-local (never suspend inside `LocalKey::with`), no `MutexGuard`,
    ///    `RwLock` guard or any other guard of a lock that must be released on the
    ///    thread that took it, no raw pointer to another thread's data, no
    ///    `std::thread::Thread`/id that is relied on to be the current one. (The
    ///    usual rule for holding a value across `.await` in a `Send` future, applied by
    ///    hand: the compiler cannot see into a suspended stack.)
    /// 2. **Thread-locals are per thread, and their addresses may be stale.** After a
    ///    suspension the code may run on another thread, so a thread-local read after
    ///    it is that thread's. Worse, the compiler assumes that a thread-local's
    ///    address does not change within a function (LLVM treats it as a constant, or
    ///    as `llvm.threadlocal.address`, which it may compute once and reuse;
    ///    llvm/llvm-project#98479, rust-lang/unsafe-code-guidelines#602): in a
    ///    function (after inlining) that accesses a thread-local both before and
    ///    after a suspension, or in a loop around one, the later access may go to the
    ///    thread-local of the thread the coroutine left, a data race. Access
    ///    thread-locals only in functions that do not suspend and are not inlined into
    ///    ones that do (`#[inline(never)]` helpers that read or write the value
    ///    themselves, not ones that return a reference). This covers thread-locals of
    ///    other crates called from the coroutine (`std::thread::current()`, a
    ///    thread-local RNG, a runtime's context): calls into them are fine as long as
    ///    they are not inlined into a function that also suspends; std's are behind
    ///    non-inlined functions in practice, but nothing guarantees it. This crate's
    ///    own thread-locals (`wait`, `yeet`, polls, the stack pool) follow this rule.
    /// 3. **Everything the closure captured, and every value on the coroutine's
    ///    stack, is `Send`** (the output `T` is required to be). [`SendFuture::new`]
    ///    and [`Builder::future_send`] check it for the closure (`F: Send`); this
    ///    method cannot see the closure any more.
    /// 4. **No panic unwinds across a suspension.** Do not suspend in a destructor
    ///    that runs while a panic unwinds the coroutine's stack (std counts panics in
    ///    progress per thread: finishing that unwind on another thread would leave the
    ///    first thread's count raised, so it would abort at its next panic). The
    ///    coroutine's drop (cancellation) is fine: `wait` refuses to suspend then.
    ///
    /// The coroutine's stack needs nothing more: this crate's bookkeeping (poll
    /// state, stack pool, overflow reporting, AddressSanitizer annotations, the
    /// Windows TIB stack fields) follows it from thread to thread.
    pub unsafe fn assume_send(self) -> SendFuture<T>
    where
        T: Send,
    {
        SendFuture { inner: self }
    }
}

impl<T: Send> SendFuture<T> {
    /// Creates a `Send` future running `f` on a default stack: [`stackful`](crate::stackful)
    /// followed by [`assume_send`](StackfulFuture::assume_send), with `F: Send`
    /// checked.
    ///
    /// # Safety
    /// As for [`StackfulFuture::assume_send`] (point 3 is checked for the closure).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::future_send`]).
    #[track_caller]
    pub unsafe fn new<F>(f: F) -> Self
    where
        F: FnOnce() -> T + Send + 'static,
    {
        // SAFETY: forwarded to our caller.
        match unsafe { Builder::new().future_send(f) } {
            Ok(fut) => fut,
            Err(e) => crate::allocation_failed("SendFuture::new", e),
        }
    }
}

impl<T> SendFuture<T> {
    /// Whether the closure has finished (the future returned `Ready` or panicked).
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    /// A backtrace of the coroutine where it is suspended, taken on the calling
    /// thread (which owns the future right now: `&mut self`); `None` if it is not
    /// suspended, and always on wasm32. See [`StackfulFuture::backtrace`].
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use stackful::{wait, SendFuture};
    /// use std::future::Future;
    /// use std::pin::Pin;
    /// use std::task::Context;
    ///
    /// #[inline(never)]
    /// fn fetch(rx: futures::channel::oneshot::Receiver<u8>) -> u8 {
    ///     std::hint::black_box("fetch");
    ///     wait(rx).unwrap()
    /// }
    ///
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// // SAFETY: holds a receiver (Send) and nothing thread-bound across its `wait`.
    /// let mut fut = unsafe { SendFuture::new(move || fetch(rx)) };
    /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    /// assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    /// // Suspended on this thread; traced on another one, which owns it now.
    /// let trace = std::thread::spawn(move || {
    ///     let trace = fut.backtrace().unwrap().to_string();
    ///     (trace, fut)
    /// });
    /// let (trace, fut) = trace.join().unwrap();
    /// assert!(trace.contains("fetch"), "{trace}");
    /// tx.send(1).unwrap();
    /// assert_eq!(futures::executor::block_on(fut), 1);
    /// # }
    /// ```
    pub fn backtrace(&mut self) -> Option<std::backtrace::Backtrace> {
        // The capture runs on the coroutine's stack on this thread, which may not
        // have run it before: it must be able to report an overflow there.
        prepare_this_thread();
        self.inner.backtrace()
    }
}

/// Makes sure the thread that is about to run a coroutine that may have come from
/// another thread can report its stack overflows (an alternate signal stack; std gives
/// its own threads one, foreign threads may have none). Cheap after the first time on
/// a thread; out of line (it reads thread-locals).
#[inline(never)]
fn prepare_this_thread() {
    crate::stack::prepare_thread();
}

impl<T> Future for SendFuture<T> {
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        prepare_this_thread();
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

impl<T> FusedFuture for SendFuture<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<T> Drop for SendFuture<T> {
    fn drop(&mut self) {
        // Dropping a suspended coroutine unwinds its stack here, on this thread.
        if !self.inner.is_complete() {
            prepare_this_thread();
        }
    }
}

impl<T> std::fmt::Debug for SendFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SendFuture").field(&self.inner).finish()
    }
}

/// A [`StackfulStream`] that the caller has vouched may move between threads while it
/// is suspended; it is `Send` when its items are. Made by the `unsafe`
/// [`StackfulStream::assume_send`], [`SendStream::new`] or [`Builder::stream_send`];
/// see [`SendFuture`] for what it means.
///
/// ```
/// use futures::StreamExt;
/// use stackful::{wait, SendStream, StreamHandle};
///
/// # #[cfg(not(target_arch = "wasm32"))] {
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
/// // SAFETY: nothing thread-bound is held across `wait` or `yield_item`.
/// let numbers = unsafe {
///     SendStream::new(|y: &StreamHandle<u32>| {
///         for i in 0..3 {
///             wait(tokio::task::yield_now());
///             y.yield_item(i);
///         }
///     })
/// };
/// let all = rt.block_on(async { tokio::spawn(numbers.collect::<Vec<_>>()).await.unwrap() });
/// assert_eq!(all, [0, 1, 2]);
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct SendStream<T> {
    inner: StackfulStream<'static, T>,
}

// SAFETY: as for `SendFuture` (items leave on the polling thread: `T: Send`).
unsafe impl<T: Send> Send for SendStream<T> {}

impl<T> StackfulStream<'static, T> {
    /// Marks this stream `Send`: the caller vouches that the coroutine may be
    /// suspended on one thread and resumed (or dropped) on another.
    ///
    /// # Safety
    /// As for [`StackfulFuture::assume_send`]; [`StreamHandle::yield_item`] is a
    /// suspension point like `wait`.
    pub unsafe fn assume_send(self) -> SendStream<T>
    where
        T: Send,
    {
        SendStream { inner: self }
    }
}

impl<T: Send + 'static> SendStream<T> {
    /// Creates a `Send` stream running `f` on a default stack: [`stream`](crate::stream())
    /// followed by [`assume_send`](StackfulStream::assume_send), with `F: Send`
    /// checked.
    ///
    /// # Safety
    /// As for [`StackfulFuture::assume_send`] (point 3 is checked for the closure).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::stream_send`]).
    #[track_caller]
    pub unsafe fn new<F>(f: F) -> Self
    where
        F: FnOnce(&StreamHandle<T>) + Send + 'static,
    {
        // SAFETY: forwarded to our caller.
        match unsafe { Builder::new().stream_send(f) } {
            Ok(s) => s,
            Err(e) => crate::allocation_failed("SendStream::new", e),
        }
    }
}

impl<T> SendStream<T> {
    /// Whether the stream has ended (returned `Ready(None)`) or panicked.
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    /// A backtrace of the coroutine where it is suspended, taken on the calling
    /// thread; `None` if it is not suspended, and always on wasm32. See
    /// [`SendFuture::backtrace`] and [`StackfulStream::backtrace`].
    pub fn backtrace(&mut self) -> Option<std::backtrace::Backtrace> {
        prepare_this_thread();
        self.inner.backtrace()
    }
}

impl<T> Stream for SendStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        prepare_this_thread();
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}

impl<T> FusedStream for SendStream<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<T> Drop for SendStream<T> {
    fn drop(&mut self) {
        if !self.inner.is_complete() {
            prepare_this_thread();
        }
    }
}

impl<T> std::fmt::Debug for SendStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SendStream").field(&self.inner).finish()
    }
}

impl Builder {
    /// Creates a [`SendFuture`] running `f` on a stack of this builder's size.
    ///
    /// # Safety
    /// As for [`StackfulFuture::assume_send`] (point 3 is checked for the closure).
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub unsafe fn future_send<T, F>(self, f: F) -> io::Result<SendFuture<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        // SAFETY: forwarded to our caller.
        Ok(unsafe { self.future(f)?.assume_send() })
    }

    /// Creates a [`SendStream`] running `f` on a stack of this builder's size.
    ///
    /// # Safety
    /// As for [`StackfulFuture::assume_send`] (point 3 is checked for the closure).
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub unsafe fn stream_send<T, F>(self, f: F) -> io::Result<SendStream<T>>
    where
        F: FnOnce(&StreamHandle<T>) + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: forwarded to our caller.
        Ok(unsafe { self.stream(f)?.assume_send() })
    }
}
