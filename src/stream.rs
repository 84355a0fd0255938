//! Async streams written as synchronous generators: [`stream`].

use crate::budget::Limit;
use crate::fiber::{self, Event, OnLeak, State};
use crate::future::{cancel_coroutine, poll_coroutine};
use crate::generator::{resume_misuse, StackfulGenerator, YieldHandle};
use crate::stack::{Stack, StackStorage};
use crate::Builder;
use futures_core::{FusedStream, Stream};
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

/// A [`Stream`] whose items are produced by synchronous code on its own stack;
/// created by [`stream`].
///
/// Each `poll_next` runs the closure until it yields an item
/// ([`StreamHandle::yield_item`]), waits on a pending future ([`wait`](crate::wait)),
/// or returns (the end of the stream). Like [`StackfulFuture`](crate::future::StackfulFuture)
/// it is `!Send`, dropping it mid-way unwinds the closure's stack (running every
/// destructor), a panic inside propagates out of `poll_next`, and after the end it
/// keeps returning `Ready(None)`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(stackful::stream(|y: &stackful::StreamHandle<u8>| y.yield_item(1)));
/// ```
#[must_use = "streams do nothing unless polled"]
// `repr(C)`: the generator first (see `StackfulFuture`).
#[repr(C)]
pub struct StackfulStream<'a, T> {
    generator: StackfulGenerator<'a, T, (), ()>,
    /// Its yield budget per poll (`crate::budget`).
    budget: Limit,
}

/// The handle a [`stream`]'s closure uses to produce items.
///
/// Neither `Send` nor `Sync`, and only reachable as the closure's argument.
pub struct StreamHandle<T> {
    link: *mut usize,
    _marker: PhantomData<fn(T)>,
}

impl<T> StreamHandle<T> {
    /// Hands `item` to the stream's consumer; returns when the consumer polls for the
    /// next item.
    ///
    /// # Thread-locals and locks
    /// Do not call this inside `LocalKey::with` (or a `thread_local!` initializer), while
    /// holding a `std::sync::Mutex` guard, or inside a `Once`/`OnceLock`/`LazyLock`
    /// initializer: another coroutine of the same thread can then re-initialize the
    /// thread-local and free the value this one still borrows (use-after-free), or block
    /// the thread on the lock forever. Take what you need out of the thread-local first,
    /// and use async locks (see the crate docs, "Soundness").
    ///
    /// # Panics
    /// If called while the stream is being dropped (from a destructor running during
    /// its unwind).
    #[inline]
    pub fn yield_item(&self, item: T) {
        let y = YieldHandle::<T, ()> {
            link: self.link,
            _marker: PhantomData,
        };
        y.yeet(item)
    }
}

impl<T> std::fmt::Debug for StreamHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle").finish_non_exhaustive()
    }
}

impl<'a, T> StackfulStream<'a, T> {
    /// Creates a stream running `f` on a default stack (see [`stream`]).
    ///
    /// `f` and the item type are `'static`: a stream can be leaked while it is
    /// suspended, and its frames must then not hold borrows that end (see the crate
    /// docs, "Soundness"; items count because an item can carry a channel back in).
    /// To borrow, use [`stackful::scope`](crate::scope()) or
    /// [`new_unchecked`](StackfulStream::new_unchecked).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::stream`] for the fallible form).
    #[track_caller]
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(&StreamHandle<T>) + 'static,
        T: 'static,
    {
        match Builder::new().stream(f) {
            Ok(s) => s,
            Err(e) => crate::allocation_failed("StackfulStream::new", e),
        }
    }

    /// Creates a stream running `f` on a caller-provided stack, which is `'static`
    /// for the reason `f` is.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn with_stack<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'static,
        F: FnOnce(&StreamHandle<T>) + 'static,
        T: 'static,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: the closure, the items and the stack are 'static (the bounds).
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Leak, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulStream::with_stack", made)
    }

    /// Creates a stream running `f`, which may borrow for `'a`, on a default stack.
    ///
    /// # Safety
    /// The stream must not outlive `'a` unfinished: before anything `f` (or an item
    /// type that carries values back in) borrows ends, the stream must have ended or
    /// been dropped. It must not be leaked while it is suspended (`mem::forget`, an
    /// `Rc` cycle, a task that is never dropped), since code it suspended in the middle
    /// of (a `std::thread::scope`, a guard) relies on running to its end before those
    /// borrows end. Dropping it is always fine: it unwinds the suspended stack, and
    /// where that is impossible (`panic = "abort"`, or a drop while it is still
    /// running) the process aborts with a message rather than leak it.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::stream_unchecked`]).
    #[track_caller]
    pub unsafe fn new_unchecked<F>(f: F) -> Self
    where
        F: FnOnce(&StreamHandle<T>) + 'a,
    {
        // SAFETY: forwarded to our caller.
        match unsafe { Builder::new().stream_unchecked(f) } {
            Ok(s) => s,
            Err(e) => crate::allocation_failed("StackfulStream::new_unchecked", e),
        }
    }

    /// Creates a stream running `f` on a caller-provided stack; both may borrow for
    /// `'a`.
    ///
    /// # Safety
    /// As for [`new_unchecked`](StackfulStream::new_unchecked); the stack is one of the
    /// borrows that must outlive the unfinished stream.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub unsafe fn with_stack_unchecked<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'a,
        F: FnOnce(&StreamHandle<T>) + 'a,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: forwarded to our caller; dropping it unfinished aborts rather
            // than leaks.
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Abort, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulStream::with_stack_unchecked", made)
    }

    /// # Safety
    /// As for [`StackfulGenerator::on_stack`].
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) unsafe fn on_stack<F>(
        stack: StackStorage<'a>,
        on_leak: OnLeak,
        f: F,
    ) -> io::Result<Self>
    where
        F: FnOnce(&StreamHandle<T>) + 'a,
    {
        // SAFETY: forwarded to our caller.
        let generator = unsafe {
            StackfulGenerator::on_stack(stack, on_leak, move |y: &YieldHandle<T, ()>, ()| {
                f(&StreamHandle {
                    link: y.link,
                    _marker: PhantomData,
                })
            })?
        };
        #[cfg(feature = "registry")]
        generator.set_registry_kind(crate::registry::Kind::Stream);
        Ok(StackfulStream {
            generator,
            budget: Limit::process_default(),
        })
    }

    /// Sets the yield budget to the builder's, if it sets one (the process default
    /// otherwise, from `on_stack`).
    pub(crate) fn budget_from(mut self, builder: &Builder) -> Self {
        if let Some(limit) = builder.budget_limit() {
            self.budget = limit;
        }
        self
    }

    /// Whether the stream has ended (returned `Ready(None)`) or panicked.
    pub fn is_complete(&self) -> bool {
        self.generator.is_complete()
    }

    /// A backtrace of the coroutine's own stack where it is suspended (after
    /// yielding an item, or in [`wait`](crate::wait)); `None` if it is not suspended,
    /// and always on wasm32. See
    /// [`StackfulGenerator::backtrace`](crate::generator::StackfulGenerator::backtrace).
    pub fn backtrace(&mut self) -> Option<std::backtrace::Backtrace> {
        self.generator.backtrace()
    }
}

impl<T> Stream for StackfulStream<'_, T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        match this.generator.state() {
            State::Fresh | State::Suspended => {}
            State::Returned => return Poll::Ready(None),
            state => resume_misuse("StackfulStream", state),
        }
        // SAFETY: the state was checked above.
        let word = unsafe { poll_coroutine(&mut this.generator, cx, this.budget) };
        // SAFETY: a fresh word from our coroutine, which yields T and returns ().
        unsafe {
            match fiber::decode(word) {
                Event::Yield(value) => Poll::Ready(Some(ptr::read(value as *mut T))),
                Event::Pending => Poll::Pending,
                Event::Return(_) => Poll::Ready(None),
                Event::Panic(payload) => std::panic::resume_unwind(fiber::take_panic(payload)),
            }
        }
    }
}

impl<T> FusedStream for StackfulStream<'_, T> {
    fn is_terminated(&self) -> bool {
        self.generator.is_complete()
    }
}

impl<T> Drop for StackfulStream<'_, T> {
    fn drop(&mut self) {
        cancel_coroutine(&mut self.generator);
    }
}

impl<T> std::fmt::Debug for StackfulStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackfulStream")
            .field("state", &self.generator.state())
            .finish()
    }
}

/// Turns synchronous code that produces items into a [`Stream`].
///
/// The closure runs on its own stack. It hands out items with
/// [`StreamHandle::yield_item`] and may call [`wait`](crate::wait) between them; the
/// stream is `Pending` while it waits and ends when the closure returns.
///
/// ```
/// use futures::StreamExt;
/// use stackful::{stream, wait, StreamHandle};
///
/// let numbers = stream(|y: &StreamHandle<u32>| {
///     for i in 0..3 {
///         let doubled = wait(async move { i * 2 }); // any future
///         y.yield_item(doubled);
///     }
/// });
/// let all: Vec<u32> = futures::executor::block_on(numbers.collect());
/// assert_eq!(all, [0, 2, 4]);
/// ```
///
/// The closure and the items are `'static` (see [`StackfulStream::new`]).
///
/// # Panics
/// If no stack can be allocated.
#[track_caller]
pub fn stream<'a, T, F>(f: F) -> StackfulStream<'a, T>
where
    F: FnOnce(&StreamHandle<T>) + 'static,
    T: 'static,
{
    StackfulStream::new(f)
}
