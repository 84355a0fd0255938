//! The bridge: [`wait`] for a future from synchronous code, and [`stackful`] to turn
//! synchronous code into a future.

use crate::budget::Limit;
use crate::context::{self, EnterFrame, PollFrame, Slot, WAIT_POLLING};
use crate::fiber::{self, Event, OnLeak, State};
use crate::generator::{resume_misuse, StackfulGenerator};
use crate::stack::{Stack, StackStorage};
use crate::Builder;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::ptr;
use std::task::{Context, Poll};

// The coroutine currently running on this thread and the poll it runs in (what
// `wait` needs) live in `crate::context`, shared with every other copy of the crate.
// Every access to the thread's slot there is an opaque call computing its address on
// the thread that makes it: a coroutine can suspend on one thread and be resumed on
// another (`SendFuture`, `SendStream`), and LLVM may otherwise reuse an address
// computed before a context switch (llvm/llvm-project#98479).

/// A future running a closure on its own stack; created by [`stackful`].
///
/// Polling it runs the closure until it finishes or until something it calls waits on
/// a pending future with [`wait`]. The closure's stack stays suspended in between.
///
/// * Dropping it before the first poll, while suspended, or after completion is fine;
///   dropping it while suspended unwinds the coroutine's stack, running every
///   destructor on it (the future being waited on included). With
///   `panic = "abort"` the stack is leaked instead (see the crate docs).
/// * A panic in the closure propagates out of `poll` with its original payload.
/// * Polling it after it returned `Ready` panics.
///
/// It is not `Send`: code on the coroutine stack may hold references to the
/// thread-locals of the thread that polls it (or an `Rc`, a lock guard), and moving a
/// suspended stack to another thread would leave them dangling. Use it with
/// single-threaded executors or `spawn_local`-style APIs, or, when you can vouch for
/// what the coroutine holds, make it `Send` with the `unsafe`
/// [`assume_send`](StackfulFuture::assume_send).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(stackful::stackful(|| 1));
/// ```
#[must_use = "futures do nothing unless polled"]
// `repr(C)`: the generator first, at the future's own address, as before the budget
// was added (laid out first, the budget cost the poll path a register and 3
// instructions).
#[repr(C)]
pub struct StackfulFuture<'a, T> {
    generator: StackfulGenerator<'a, (), T, ()>,
    /// Its yield budget per poll (`crate::budget`).
    budget: Limit,
}

impl<'a, T> StackfulFuture<'a, T> {
    /// Creates a future running `f` on a default stack (see [`stackful`]).
    ///
    /// `f` is `'static`: a future can be leaked while it is suspended (`mem::forget`,
    /// an `Rc` cycle, a task that is never polled again, a drop under
    /// `panic = "abort"`), and its frames must then not hold borrows that end (see the
    /// crate docs, "Soundness"). `T` need not be `'static`: it only leaves the
    /// coroutine when the coroutine has finished. To borrow, use
    /// [`stackful::scope`](crate::scope()) (driving the future to completion inside it)
    /// or [`new_unchecked`](StackfulFuture::new_unchecked).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::future`] for the fallible form).
    #[track_caller]
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce() -> T + 'static,
    {
        match Builder::new().future(f) {
            Ok(fut) => fut,
            Err(e) => crate::allocation_failed("StackfulFuture::new", e),
        }
    }

    /// Creates a future running `f` on a caller-provided stack, which is `'static`
    /// for the reason `f` is.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn with_stack<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'static,
        F: FnOnce() -> T + 'static,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: the closure and the stack are 'static (the bounds above).
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Leak, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulFuture::with_stack", made)
    }

    /// Creates a future running `f`, which may borrow for `'a`, on a default stack.
    ///
    /// There is no safe way to borrow from a future that an executor may keep, move
    /// or forget: an async scope cannot be enforced by types. Inside synchronous code,
    /// [`stackful::scope`](crate::scope()) is the safe alternative.
    ///
    /// ```
    /// use stackful::{wait, future::StackfulFuture};
    ///
    /// let data = vec![1, 2, 3];
    /// // SAFETY: the future is awaited right here, to completion, before `data` is
    /// // dropped; it is never leaked.
    /// let fut = unsafe { StackfulFuture::new_unchecked(|| data.iter().map(|&v| wait(async move { v })).sum::<i32>()) };
    /// assert_eq!(futures::executor::block_on(fut), 6);
    /// ```
    ///
    /// # Safety
    /// The future must not outlive `'a` unfinished: before anything `f` borrows ends,
    /// the future must have completed or been dropped. It must not be leaked while it
    /// is suspended (`mem::forget`, an `Rc` cycle, a task that is never dropped, a
    /// runtime shut down without dropping its tasks), since code it suspended in the
    /// middle of (a `std::thread::scope`, a guard) relies on running to its end before
    /// those borrows end. Dropping it is always fine: it unwinds the suspended stack,
    /// and where that is impossible (`panic = "abort"`, or a drop while it is still
    /// running) the process aborts with a message rather than leak it.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::future_unchecked`]).
    #[track_caller]
    pub unsafe fn new_unchecked<F>(f: F) -> Self
    where
        F: FnOnce() -> T + 'a,
    {
        // SAFETY: forwarded to our caller.
        match unsafe { Builder::new().future_unchecked(f) } {
            Ok(fut) => fut,
            Err(e) => crate::allocation_failed("StackfulFuture::new_unchecked", e),
        }
    }

    /// Creates a future running `f` on a caller-provided stack; both may borrow for
    /// `'a`.
    ///
    /// # Safety
    /// As for [`new_unchecked`](StackfulFuture::new_unchecked); the stack is one of the
    /// borrows that must outlive the unfinished future.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub unsafe fn with_stack_unchecked<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'a,
        F: FnOnce() -> T + 'a,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: forwarded to our caller; dropping it unfinished aborts rather
            // than leaks.
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Abort, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulFuture::with_stack_unchecked", made)
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
        F: FnOnce() -> T + 'a,
    {
        if std::mem::size_of::<F>() > fiber::INLINE_CLOSURE_LIMIT {
            let boxed: Box<dyn FnOnce() -> T + 'a> = Box::new(f);
            // SAFETY: the boxed closure is `f`, which is valid for 'a; the rest is
            // forwarded to our caller.
            return unsafe { Self::on_stack_inline(stack, on_leak, boxed) };
        }
        // SAFETY: `f` is valid for 'a; the rest is forwarded to our caller.
        unsafe { Self::on_stack_inline(stack, on_leak, f) }
    }

    /// # Safety
    /// Everything `f` borrows stays valid for `'a`, and as for
    /// [`StackfulGenerator::on_stack`].
    #[cfg_attr(feature = "registry", track_caller)]
    unsafe fn on_stack_inline<F>(stack: StackStorage<'a>, on_leak: OnLeak, f: F) -> io::Result<Self>
    where
        F: FnOnce() -> T,
    {
        // SAFETY: the wrapper borrows only what `f` does (valid for 'a per our caller);
        // it is never larger than the limit above plus nothing, so no further boxing.
        // A future's generator yields nothing and takes `()`.
        let generator =
            unsafe { StackfulGenerator::on_stack_inline(stack, on_leak, move |_: &_, ()| f())? };
        #[cfg(feature = "registry")]
        generator.set_registry_kind(crate::registry::Kind::Future);
        Ok(StackfulFuture {
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

    /// Whether the closure has finished (the future returned `Ready` or panicked).
    pub fn is_complete(&self) -> bool {
        self.generator.is_complete()
    }

    /// A backtrace of the coroutine's own stack where it is suspended (in [`wait`],
    /// or in a generator's `yeet` it runs): where is it waiting?
    ///
    /// `None` if it is not suspended (not polled yet, being polled, or finished), if
    /// it is saved with less than 8 KiB of stack free below that point (on its own
    /// stack or on that of a generator it runs), and always on wasm32. See [`StackfulGenerator::backtrace`] for what the trace holds
    /// and how it is taken (the coroutine is exactly as before afterwards).
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use stackful::{stackful, wait};
    /// use std::future::Future;
    /// use std::pin::Pin;
    /// use std::task::{Context, Poll};
    ///
    /// #[inline(never)]
    /// fn read_config(rx: futures::channel::oneshot::Receiver<u32>) -> u32 {
    ///     std::hint::black_box("read_config");
    ///     wait(rx).unwrap()
    /// }
    ///
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// let mut fut = stackful(move || read_config(rx));
    /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    /// assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    ///
    /// let trace = fut.backtrace().unwrap().to_string();
    /// assert!(trace.contains("read_config"), "{trace}");
    ///
    /// tx.send(7).unwrap();
    /// assert_eq!(Pin::new(&mut fut).poll(&mut cx), Poll::Ready(7));
    /// assert!(fut.backtrace().is_none()); // finished
    /// # }
    /// ```
    pub fn backtrace(&mut self) -> Option<std::backtrace::Backtrace> {
        self.generator.backtrace()
    }
}

impl<T> Future for StackfulFuture<'_, T> {
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        if !this.generator.is_suspended() {
            check_first_poll(this.generator.state());
        }
        // SAFETY: the state was checked above.
        let word = unsafe { poll_coroutine(&mut this.generator, cx, this.budget) };
        if word == fiber::PENDING {
            Poll::Pending
        } else {
            // SAFETY: a fresh word from our coroutine.
            unsafe { take_final_message(word) }
        }
    }
}

/// The poll check when the state is not `Suspended` (out of line): returns if it is
/// `Fresh`, panics with what was misused otherwise.
#[cold]
#[inline(never)]
#[track_caller]
fn check_first_poll(state: State) {
    match state {
        State::Fresh | State::Suspended => {}
        State::Returned => panic!("StackfulFuture polled after it completed"),
        state => resume_misuse("StackfulFuture", state),
    }
}

/// The word that ends a future's coroutine (once per future, out of line).
///
/// # Safety
/// `word` is a fresh word from the coroutine of a `StackfulFuture<T>`, which
/// returns T and never yields values (its closure has no yield handle).
#[inline(never)]
unsafe fn take_final_message<T>(word: usize) -> Poll<T> {
    // SAFETY: per the caller: the payload matches the event and is untaken.
    unsafe {
        match fiber::decode(word) {
            Event::Pending => Poll::Pending,
            Event::Return(value) => Poll::Ready(ptr::read(value as *mut T)),
            Event::Panic(payload) => std::panic::resume_unwind(fiber::take_panic(payload)),
            Event::Yield(_) => fiber::abort("a StackfulFuture's coroutine yielded a value"),
        }
    }
}

impl<T> futures_core::FusedFuture for StackfulFuture<'_, T> {
    fn is_terminated(&self) -> bool {
        self.generator.is_complete()
    }
}

impl<T> Drop for StackfulFuture<'_, T> {
    fn drop(&mut self) {
        // Code that runs during the unwind (destructors) sees this coroutine as
        // current, so a `wait` there reports the misuse instead of blocking or
        // suspending an unrelated coroutine.
        cancel_coroutine(&mut self.generator);
    }
}

impl<T> std::fmt::Debug for StackfulFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackfulFuture")
            .field("state", &self.generator.state())
            .finish()
    }
}

/// Resumes the coroutine of a future or stream for one poll with `cx`: makes it
/// current for `wait`, resumes it with a full yield budget of `budget`, and returns
/// its word (see [`fiber::decode`]).
///
/// # Safety
/// The generator is `Fresh` or `Suspended`.
#[inline]
pub(crate) unsafe fn poll_coroutine<Y, R>(
    generator: &mut StackfulGenerator<'_, Y, R, ()>,
    cx: &mut Context<'_>,
    budget: Limit,
) -> usize {
    let frame = PollFrame::new(cx, generator.link(), budget);
    let _enter = EnterFrame::new(&frame);
    // SAFETY: per the caller; `EnterFrame::new` has just made the frame's state the
    // thread's poll state (saves reading it back).
    unsafe { generator.resume_raw_in_poll((), frame.poll_state()) }
}

/// Cancels (unwinds) a suspended future or stream coroutine, with a frame that makes
/// `wait` in its destructors report the misuse instead of suspending.
pub(crate) fn cancel_coroutine<Y, R>(generator: &mut StackfulGenerator<'_, Y, R, ()>) {
    if generator.is_suspended() {
        // Nothing can yield while the coroutine is dropped.
        let frame = PollFrame::new(ptr::null_mut(), generator.link(), Limit::OFF);
        let _enter = EnterFrame::new(&frame);
        generator.cancel();
    }
}

/// Turns a synchronous closure into a [`Future`].
///
/// The closure runs on a stack of its own (a pooled
/// [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE) stack; see [`Builder`]
/// for other sizes and for a fallible constructor). Whenever it calls [`wait`] on a
/// future that is not ready, directly or from any depth of nested calls, the whole
/// stack is suspended and the returned future is `Pending`; the executor polls it
/// again when the awaited future wakes it.
///
/// ```
/// use stackful::{stackful, wait};
///
/// fn sync_sum(values: &[u32]) -> u32 {
///     // A synchronous function that needs async values.
///     values.iter().map(|&v| wait(async move { v * 2 })).sum()
/// }
///
/// let total = futures::executor::block_on(stackful(|| sync_sum(&[1, 2, 3])));
/// assert_eq!(total, 12);
/// ```
///
/// The closure is `'static` (see [`StackfulFuture::new`]); to borrow, see
/// [`stackful::scope`](crate::scope()) and [`StackfulFuture::new_unchecked`].
///
/// ```compile_fail,E0597
/// use stackful::{stackful, wait};
/// let data = vec![1, 2, 3];
/// // Borrows `data` from a future that an executor could leak: refused.
/// let fut = stackful(|| data.iter().map(|&v| wait(async move { v })).sum::<i32>());
/// # drop(fut);
/// ```
///
/// # Panics
/// If no stack can be allocated.
#[track_caller]
pub fn stackful<'a, T, F>(f: F) -> StackfulFuture<'a, T>
where
    F: FnOnce() -> T + 'static,
{
    StackfulFuture::new(f)
}

/// Waits for `fut` to complete and returns its output.
///
/// * Inside the closure of a [`StackfulFuture`] (at any depth of calls, and inside
///   generators or other coroutines running within it), a pending `fut` suspends the
///   whole coroutine: the `StackfulFuture` returns `Pending` to its executor and
///   `fut` is polled again when it wakes the task. This holds for the coroutines of
///   every copy of the crate in the program (stackful 0.2 and later, under any
///   package name; README, "Several copies of stackful in one program").
/// * Anywhere else it blocks the calling thread until `fut` completes, parking the
///   thread between polls.
///
/// ```
/// use stackful::{stackful, wait};
///
/// // Outside a coroutine: blocks.
/// assert_eq!(wait(async { 1 + 1 }), 2);
///
/// // Inside: suspends the coroutine until the channel has a value.
/// let (tx, rx) = futures::channel::oneshot::channel();
/// let fut = stackful(move || wait(rx).unwrap() * 10);
/// tx.send(4).unwrap();
/// assert_eq!(futures::executor::block_on(fut), 40);
/// ```
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
/// * If called from inside the `poll` of a future that `wait` is itself polling on
///   the same coroutine (the outer poll's task context would dangle).
/// * If called while the coroutine is being dropped (from a destructor running
///   during the unwind).
/// * With `fut`'s own panic, if polling it panics.
// Not #[inline]. Inlined, it saves a caller that waits in a loop its six-register
// prologue per call (wait_pending_once: 140 -> 118 Ir), but nested futures got
// dearer (nesting_futures, 4 and 16 levels: 359 -> 409 and 1,235 -> 1,573 Ir) and
// the wall-clock time of wait_pending_once was the same (BENCHMARKS.md).
pub fn wait<T>(fut: impl Future<Output = T>) -> T {
    let slot = context::slot();
    // SAFETY: the slot is valid on this thread, and read at once.
    if unsafe { (*slot).context }.is_null() {
        return block_on_thread(fut);
    }
    wait_in_coroutine(pin!(fut), slot)
}

/// `wait` outside a coroutine (out of line: it blocks the thread anyway).
#[inline(never)]
fn block_on_thread<F: Future>(fut: F) -> F::Output {
    crate::block_on::block_on(fut)
}

/// `wait` inside a coroutine; `slot` is this thread's context slot (which holds a
/// context).
#[inline]
fn wait_in_coroutine<T>(mut fut: Pin<&mut impl Future<Output = T>>, mut slot: *mut Slot) -> T {
    loop {
        // The slot's address is used until the suspension below and no further: the
        // coroutine does not leave this thread before (polling the future may switch
        // to other coroutines, but they all return here), and may after.
        // SAFETY: the slot is this thread's (computed on it since the last switch).
        let (ctx, state) = unsafe { ((*slot).context, (*slot).state) };
        // SAFETY: the slot points at the context of the poll (or drop) that is running
        // our coroutine, published by whichever copy of the crate runs it; it lives
        // on that caller's stack, which is blocked in the switch below us for as long
        // as we run.
        let c = unsafe { &*ctx };
        let cx = c.task_context();
        if cx.is_null() {
            crate::generator::suspend_while_cancelling("stackful::wait");
        }
        if state & WAIT_POLLING != 0 {
            nested_wait();
        }
        // SAFETY: as above.
        unsafe { (*slot).state = state | WAIT_POLLING };
        let reset = ResetPolling { slot, state };
        // SAFETY: `cx` is the context of the poll running right now (non-null above).
        let ready = poll_out_of_line(fut.as_mut(), unsafe { &mut *cx });
        drop(reset);
        if let Poll::Ready(value) = ready {
            return value;
        }
        // SAFETY: `c` is current, its coroutine is running (we are on it, or on a
        // stack it resumed), it is not being dropped and no `wait` polls in it (all
        // checked above).
        unsafe { c.suspend() };
        // Resumed by the next poll, which published its own context, maybe on another
        // thread (`SendFuture`): the slot afresh (see `crate::context`).
        slot = context::slot();
        // SAFETY: as above.
        if unsafe { (*slot).context }.is_null() {
            fiber::abort("a coroutine was resumed without a coroutine context");
        }
    }
}

/// Polls the future that `wait` waits on, out of line: its `poll` may read
/// thread-locals (an executor's context, a cooperative budget), and inlined into the
/// loop of `wait_in_coroutine` it could reuse, after a suspension that moved the
/// coroutine to another thread, an address computed before (see
/// `crate::context`).
#[inline(never)]
fn poll_out_of_line<F: Future + ?Sized>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    fut.poll(cx)
}

/// Restores the poll state from before `wait` polled its future (also on a panic);
/// every poll started inside restored its own on the way out. Dropped on the thread,
/// and before the suspension, of its creation (see `wait_in_coroutine`).
struct ResetPolling {
    slot: *mut Slot,
    state: usize,
}

impl Drop for ResetPolling {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the slot of this thread, still (see above).
        unsafe { (*self.slot).state = self.state };
    }
}

#[cold]
#[track_caller]
fn nested_wait() -> ! {
    panic!(
        "stackful::wait called from inside Future::poll of a future that stackful::wait is \
         already polling on the same coroutine; a poll cannot suspend the coroutine that \
         runs it"
    )
}

/// Whether the calling code runs inside a [`StackfulFuture`] being polled on this
/// thread, i.e. whether [`wait`] would suspend a coroutine rather than block the
/// thread.
///
/// This sees the coroutines of every copy of the crate in the program (stackful 0.2
/// and later): see the README, "Several copies of stackful in one program".
pub fn in_stackful() -> bool {
    !context::current().is_null()
}

/// Lets other tasks run.
///
/// Inside a [`StackfulFuture`] it suspends the coroutine once (waking its task at
/// once, so the executor polls it again after the other ready tasks); elsewhere it
/// calls [`std::thread::yield_now`].
///
/// # Thread-locals and locks
/// Do not call this inside `LocalKey::with` (or a `thread_local!` initializer), while
/// holding a `std::sync::Mutex` guard, or inside a `Once`/`OnceLock`/`LazyLock`
/// initializer: another coroutine of the same thread can then re-initialize the
/// thread-local and free the value this one still borrows (use-after-free), or block
/// the thread on the lock forever. Take what you need out of the thread-local first,
/// and use async locks (see the crate docs, "Soundness").
pub fn yield_now() {
    if in_stackful() {
        wait(YieldOnce(false));
    } else {
        std::thread::yield_now();
    }
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
