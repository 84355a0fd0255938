//! Generators on stable Rust: a closure that runs on its own stack and can suspend
//! itself from any depth with [`YieldHandle::yeet`].
//!
//! ```
//! use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
//! use std::pin::Pin;
//!
//! // Yields running sums; each resume passes in the next number.
//! let mut sums = StackfulGenerator::new(|y: &YieldHandle<i32, i32>, mut n: i32| {
//!     let mut total = 0;
//!     while n != 0 {
//!         total += n;
//!         n = y.yeet(total);
//!     }
//!     "done"
//! });
//! let mut g = Pin::new(&mut sums);
//! assert_eq!(g.as_mut().resume(1), GeneratorState::Yielded(1));
//! assert_eq!(g.as_mut().resume(2), GeneratorState::Yielded(3));
//! assert_eq!(g.as_mut().resume(0), GeneratorState::Complete("done"));
//! ```
//!
//! Generators whose resume and return types are `()` are iterators:
//!
//! ```
//! use stackful::generator::{StackfulGenerator, YieldHandle};
//!
//! fn walk(depth: u32, y: &YieldHandle<u32>) {
//!     // Recursion is fine: the whole stack is suspended at each yeet.
//!     if depth > 0 {
//!         walk(depth - 1, y);
//!         y.yeet(depth);
//!     }
//! }
//! let g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| walk(3, y));
//! assert_eq!(g.collect::<Vec<_>>(), [1, 2, 3]);
//! ```

use crate::fiber::{self, Event, Fiber, OnLeak, Slot, State};
use crate::stack::{Stack, StackStorage};
use crate::Builder;
use std::backtrace::Backtrace;
use std::io;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::pin::Pin;
use std::ptr;

/// A generator closure, boxed (what stackful 0.1 stored).
type BoxedBody<'a, Y, R, Resume> = Box<dyn FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a>;

/// The result of resuming a generator: it yielded a value or completed with one.
///
/// The same shape as the unstable `std::ops::CoroutineState`.
#[derive(Clone, Copy, PartialEq, PartialOrd, Eq, Ord, Debug, Hash)]
pub enum GeneratorState<Y, R> {
    /// The generator suspended with a value.
    Yielded(Y),
    /// The generator finished with a value.
    Complete(R),
}

/// A resumable computation: the stable stand-in for the unstable
/// `std::ops::Coroutine` trait.
pub trait Generator<R = ()> {
    /// The type of value this generator yields.
    type Yield;
    /// The type of value this generator returns.
    type Return;

    /// Resumes the generator with `arg` until it yields or completes.
    fn resume(self: Pin<&mut Self>, arg: R) -> GeneratorState<Self::Yield, Self::Return>;
}

/// A generator running a closure on its own stack.
///
/// `Y` is the yielded type, `R` the returned type and `Resume` the type passed in by
/// each [`resume`](Generator::resume). The first resume value is the closure's second
/// argument; each later one is what [`YieldHandle::yeet`] returns.
///
/// * Dropping a generator that has not finished unwinds its stack, running every
///   destructor on it (with `panic = "abort"` the stack is leaked instead).
/// * A panic in the closure propagates out of `resume` with its original payload; the
///   generator is finished afterwards.
/// * Resuming a finished generator panics.
/// * It is not `Send`: code on its stack may hold references to thread-locals.
///
/// ```compile_fail
/// use stackful::generator::{StackfulGenerator, YieldHandle};
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(StackfulGenerator::new(|_: &YieldHandle<()>, ()| ()));
/// ```
pub struct StackfulGenerator<'a, Y, R, Resume> {
    fiber: Fiber<'a>,
    // What stackful 0.1 stored: the closure as a boxed trait object. The marker gives
    // the same implied bounds (`Y`, `R`, `Resume`: 'a), variance and drop check, and
    // makes the generator neither Send nor Sync.
    #[allow(clippy::type_complexity)]
    _marker: PhantomData<(
        *const (),
        Box<dyn FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a>,
    )>,
}

// The closure and everything it uses live on the coroutine's own stack; the
// generator value itself only holds pointers to it, so moving it is fine.
impl<Y, R, Resume> Unpin for StackfulGenerator<'_, Y, R, Resume> {}

impl<'a, Y, R, Resume> StackfulGenerator<'a, Y, R, Resume> {
    /// Creates a generator running `f` on a default stack (from the per-thread pool,
    /// [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE) bytes).
    ///
    /// Nothing runs until the first [`resume`](Generator::resume).
    ///
    /// The closure, the yielded type and the resume type are `'static`: a generator
    /// can be leaked while it is suspended (`mem::forget`, an `Rc` cycle, or a drop
    /// under `panic = "abort"`), and its frames must then not hold borrows that end
    /// (see the crate docs, "Soundness"). To borrow, create the generator inside
    /// [`stackful::scope`](crate::scope()) with [`Scope::generator`](crate::Scope::generator).
    ///
    /// ```compile_fail,E0597
    /// use stackful::generator::{StackfulGenerator, YieldHandle};
    /// let words = vec!["a", "b"];
    /// // `words` is borrowed by a generator that could be leaked: refused.
    /// let g = StackfulGenerator::new(|y: &YieldHandle<usize>, ()| {
    ///     for w in &words { y.yeet(w.len()) }
    /// });
    /// # drop(g);
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::generator`] for the fallible form).
    #[track_caller]
    pub fn new<F>(f: F) -> Self
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'static,
        Y: 'static,
        Resume: 'static,
    {
        match Builder::new().generator(f) {
            Ok(g) => g,
            Err(e) => crate::allocation_failed("StackfulGenerator::new", e),
        }
    }

    /// Creates a generator running `f` on a caller-provided stack.
    ///
    /// The stack is `'static` for the reason the closure is (see
    /// [`new`](StackfulGenerator::new)): a leaked generator keeps running on it.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn with_stack<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'static,
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'static,
        Y: 'static,
        Resume: 'static,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: everything the coroutine can reach is 'static (the bounds above).
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Leak, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulGenerator::with_stack", made)
    }

    /// Creates a generator running `f` on a default stack, without the `'static`
    /// bounds of [`new`](StackfulGenerator::new): `f`, `Y` and `Resume` may borrow
    /// for `'a`.
    ///
    /// Prefer [`stackful::scope`](crate::scope()), which gives the same freedom safely.
    ///
    /// # Safety
    /// The generator must not outlive `'a` unfinished: before anything it borrows
    /// (through `f`, through a `Resume` value it received, or through a `Y` value it
    /// handed out and got something back through) ends, the generator must have
    /// completed or been dropped. In particular it must not be leaked while it is
    /// suspended (`mem::forget`, an `Rc` cycle, a value that is never dropped), since
    /// code it suspended in the middle of (a `std::thread::scope`, a guard) relies on
    /// running to its end before those borrows end. Dropping it is always fine: it
    /// unwinds the suspended stack, and where that is impossible (`panic = "abort"`,
    /// or a drop while it is still running) the process aborts with a message rather
    /// than leak it.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`Builder::generator_unchecked`]).
    #[track_caller]
    pub unsafe fn new_unchecked<F>(f: F) -> Self
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a,
    {
        // SAFETY: forwarded to our caller.
        match unsafe { Builder::new().generator_unchecked(f) } {
            Ok(g) => g,
            Err(e) => crate::allocation_failed("StackfulGenerator::new_unchecked", e),
        }
    }

    /// Creates a generator running `f` on a caller-provided stack, without the
    /// `'static` bounds of [`with_stack`](StackfulGenerator::with_stack): the stack, `f`,
    /// `Y` and `Resume` may borrow for `'a`.
    ///
    /// # Safety
    /// As for [`new_unchecked`](StackfulGenerator::new_unchecked); the stack is one of
    /// the borrows that must outlive the unfinished generator.
    ///
    /// # Panics
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub unsafe fn with_stack_unchecked<S, F>(stack: S, f: F) -> Self
    where
        S: Stack + 'a,
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a,
    {
        // A match, not a closure: the creation site (`#[track_caller]`) must reach
        // `on_stack`.
        let made = match StackStorage::custom(Box::new(stack)) {
            // SAFETY: forwarded to our caller; dropping it unfinished aborts rather
            // than leaks.
            Ok(stack) => unsafe { Self::on_stack(stack, OnLeak::Abort, f) },
            Err(e) => Err(e),
        };
        crate::expect_custom("StackfulGenerator::with_stack_unchecked", made)
    }

    /// # Safety
    /// See [`Fiber::new`]: with [`OnLeak::Leak`], `f`, `Y`, `Resume` and the stack are
    /// `'static`; with [`OnLeak::Abort`], the caller keeps everything `f` borrows valid
    /// until the generator is finished or dropped.
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) unsafe fn on_stack<F>(
        stack: StackStorage<'a>,
        on_leak: OnLeak,
        f: F,
    ) -> io::Result<Self>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a,
    {
        if mem::size_of::<F>() > fiber::INLINE_CLOSURE_LIMIT {
            let boxed: BoxedBody<'a, Y, R, Resume> = Box::new(f);
            // SAFETY: the boxed closure is `f`, which is valid for 'a; the rest is
            // forwarded to our caller.
            return unsafe { Self::on_stack_inline(stack, on_leak, boxed) };
        }
        // SAFETY: `f` is valid for 'a; the rest is forwarded to our caller.
        unsafe { Self::on_stack_inline(stack, on_leak, f) }
    }

    /// # Safety
    /// Everything `f` borrows stays valid for `'a`, and as for [`on_stack`](Self::on_stack).
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) unsafe fn on_stack_inline<F>(
        stack: StackStorage<'a>,
        on_leak: OnLeak,
        f: F,
    ) -> io::Result<Self>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R,
    {
        let body = move |link: *mut usize, first: usize| -> R {
            let handle = YieldHandle {
                link,
                _marker: PhantomData,
            };
            // SAFETY: the first resume passes a pointer to a `Resume` that the resumer
            // gave up (ManuallyDrop); we take ownership of it exactly once.
            let first = unsafe { ptr::read(first as *const Resume) };
            f(&handle, first)
        };
        Ok(StackfulGenerator {
            // SAFETY: `body` borrows only what `f` does, valid for 'a per our caller,
            // who also vouches for `on_leak`.
            fiber: unsafe { Fiber::new(stack, on_leak, body)? },
            _marker: PhantomData,
        })
    }

    /// Whether the generator has finished (returned or panicked); resuming it again
    /// would panic.
    pub fn is_complete(&self) -> bool {
        matches!(self.fiber.state(), State::Returned | State::Panicked)
    }

    /// Whether the generator has been resumed at least once.
    pub fn is_started(&self) -> bool {
        self.fiber.state() != State::Fresh
    }

    /// Records in the registry what kind of coroutine this generator runs.
    #[cfg(feature = "registry")]
    pub(crate) fn set_registry_kind(&self, kind: crate::registry::Kind) {
        self.fiber.entry().set_kind(kind);
    }

    pub(crate) fn link(&self) -> *mut usize {
        self.fiber.link()
    }

    /// A backtrace of the generator's own stack at the point where it is suspended
    /// (inside [`YieldHandle::yeet`], or [`wait`](crate::wait) when the generator runs
    /// inside a [`StackfulFuture`](crate::future::StackfulFuture)): where is it
    /// waiting?
    ///
    /// Returns `None` if the generator is not suspended: not started yet, running
    /// (this is called from inside it, or it is part of a chain of coroutines that
    /// another coroutine suspended: that one's backtrace shows its frames), or
    /// finished; also if it is saved with less than 8 KiB of stack free below that
    /// point (see "How" below). Always `None` on wasm32, where std cannot capture
    /// backtraces.
    ///
    /// The frames are the coroutine's, from the suspension point down to its entry,
    /// followed by the frames of the caller of `backtrace` (the unwinder follows the
    /// coroutine to whoever resumed it last, which during this call is the caller).
    /// Like [`Backtrace::force_capture`] it captures whatever `RUST_BACKTRACE` says;
    /// symbols are resolved when it is displayed.
    ///
    /// How: the generator is briefly resumed with a private token; the capture runs
    /// where it is saved (it needs 8 KiB free there: with less below the point where
    /// the generator suspended, there is no trace, `None`) and it suspends again at
    /// once, exactly as it was. That point is on the generator's own stack, or, if it
    /// suspended from inside a generator it runs (a `yeet` through its handle there),
    /// on that generator's stack, whose free space the crate looks up in its records
    /// of the stacks coroutines run on. No code of the generator runs, and its next resume sees no
    /// difference. See also `stackful::registry` (feature `registry`): every live
    /// coroutine of the process, with backtraces taken from any thread.
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
    /// use std::pin::Pin;
    ///
    /// #[inline(never)]
    /// fn produce_numbers(y: &YieldHandle<u32>) {
    ///     std::hint::black_box("produce_numbers");
    ///     y.yeet(1);
    /// }
    ///
    /// let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| produce_numbers(y));
    /// assert!(g.backtrace().is_none()); // not started
    /// Pin::new(&mut g).resume(());
    /// let trace = g.backtrace().unwrap().to_string();
    /// assert!(trace.contains("produce_numbers"), "{trace}");
    /// # }
    /// ```
    pub fn backtrace(&mut self) -> Option<Backtrace> {
        self.fiber.backtrace()
    }

    /// Resumes with `arg` and returns the coroutine's word untyped (see
    /// [`fiber::decode`]).
    ///
    /// # Safety
    /// The state is `Fresh` or `Suspended`. What the word points at is valid until
    /// the next resume.
    #[inline(always)]
    pub(crate) unsafe fn resume_raw(&mut self, arg: Resume) -> usize {
        let mut arg = ManuallyDrop::new(arg);
        // A zero-sized value is passed as a fixed address, aligned for any type (Rust
        // alignments are at most 2^29) and far above the resume tokens: a pointer to
        // a zero-sized local may be dangling, i.e. equal to its alignment, and 1 is a
        // token. (Not `usize::MAX`: the wasm32 switch reserves it.) Reading a
        // zero-sized value through any non-null aligned pointer is fine. Decided at
        // compile time.
        let ptr = if mem::size_of::<Resume>() == 0 {
            1 << (usize::BITS - 1)
        } else {
            &mut *arg as *mut Resume as usize
        };
        debug_assert!(ptr > fiber::TOKEN_MAX);
        // SAFETY: per the caller; the coroutine takes `arg` (given up here) with
        // ptr::read before it can suspend again, or ignores it (`wait`, Resume = ()).
        unsafe { self.fiber.resume(ptr) }
    }

    /// [`resume_raw`](Self::resume_raw) of a future's or stream's coroutine, from
    /// the poll that has just published `poll_state` (`context::poll_state()`).
    ///
    /// # Safety
    /// As for `resume_raw`, and `poll_state` is the thread's poll state.
    #[inline(always)]
    pub(crate) unsafe fn resume_raw_in_poll(&mut self, arg: Resume, poll_state: usize) -> usize {
        let mut arg = ManuallyDrop::new(arg);
        let ptr = if mem::size_of::<Resume>() == 0 {
            1 << (usize::BITS - 1)
        } else {
            &mut *arg as *mut Resume as usize
        };
        debug_assert!(ptr > fiber::TOKEN_MAX);
        // SAFETY: as in `resume_raw`; the poll state per the caller.
        unsafe { self.fiber.resume_in_poll_state(ptr, poll_state) }
    }

    /// [`resume_raw`](Self::resume_raw) of a generator known to be `Suspended`.
    ///
    /// # Safety
    /// The state is `Suspended`; otherwise as for `resume_raw`.
    #[inline(always)]
    pub(crate) unsafe fn resume_raw_suspended(&mut self, arg: Resume) -> usize {
        let mut arg = ManuallyDrop::new(arg);
        let ptr = if mem::size_of::<Resume>() == 0 {
            1 << (usize::BITS - 1)
        } else {
            &mut *arg as *mut Resume as usize
        };
        debug_assert!(ptr > fiber::TOKEN_MAX);
        // SAFETY: as in `resume_raw`; Suspended per the caller.
        unsafe { self.fiber.resume_suspended(ptr) }
    }

    /// [`Generator::resume`] when the state is not `Suspended` (the first resume,
    /// once per generator, or a misuse): panics with what was misused unless it is
    /// `Fresh`.
    #[inline]
    #[track_caller]
    fn resume_first(&mut self, arg: Resume) -> GeneratorState<Y, R> {
        check_first_resume("StackfulGenerator", self.fiber.state());
        // SAFETY: Fresh (checked above: otherwise it panicked).
        let word = unsafe { self.resume_raw(arg) };
        // SAFETY: a fresh word from the coroutine, typed by this generator.
        unsafe { take_message(word) }
    }

    pub(crate) fn state(&self) -> State {
        self.fiber.state()
    }

    /// Whether the state is `Suspended` (one compare).
    #[inline(always)]
    pub(crate) fn is_suspended(&self) -> bool {
        self.fiber.is_suspended()
    }

    /// Unwinds a suspended generator's stack now (what dropping it does).
    ///
    /// A panic other than the cancellation itself (from a destructor that ran during
    /// the unwind, or from code that caught the cancellation and panicked) is
    /// propagated unless the thread is already panicking.
    ///
    /// Inlined into every drop: the check is one compare, the unwind is out of line.
    #[inline]
    pub(crate) fn cancel(&mut self) {
        #[cfg(panic = "unwind")]
        if self.fiber.is_suspended() {
            self.cancel_suspended();
        }
    }

    /// [`cancel`](Self::cancel) of a generator that is `Suspended`.
    #[cfg(panic = "unwind")]
    #[cold]
    #[inline(never)]
    fn cancel_suspended(&mut self) {
        // At thread exit, after this crate's per-thread state is gone, the thread-locals
        // the coroutine suspended in `LocalKey::with` of may be destroyed already, and
        // its destructors would use them: a 'static coroutine is leaked instead (the
        // fiber's drop counts it), which is sound since nothing it can reach ends.
        if self.fiber.on_leak() == OnLeak::Leak && crate::stack::thread_exiting() {
            return;
        }
        // SAFETY: Suspended (checked by `cancel`), and CANCEL is the token it
        // expects.
        let word = unsafe { self.fiber.resume(fiber::CANCEL) };
        // SAFETY: the word is fresh and its payload untaken.
        match unsafe { fiber::decode(word) } {
            // SAFETY: a Return of this generator carries an untaken R.
            Event::Return(value) => drop(unsafe { ptr::read(value as *mut R) }),
            Event::Panic(payload) => {
                // SAFETY: a Panic carries an untaken payload box.
                let payload = unsafe { fiber::take_panic(payload) };
                if !fiber::is_cancel_payload(&*payload) && !std::thread::panicking() {
                    std::panic::resume_unwind(payload);
                }
            }
            // `suspend` refuses to yield once CANCEL was received.
            Event::Yield(_) | Event::Pending => fiber::abort("a cancelled coroutine yielded"),
        }
    }
}

impl<Y, R, Resume> Drop for StackfulGenerator<'_, Y, R, Resume> {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl<Y, R, Resume> Generator<Resume> for StackfulGenerator<'_, Y, R, Resume> {
    type Yield = Y;
    type Return = R;

    /// Resumes the generator.
    ///
    /// # Panics
    /// If the generator already completed or panicked, if it is resumed from inside
    /// itself, or with the closure's own panic payload if it panics.
    #[inline]
    fn resume(self: Pin<&mut Self>, arg: Resume) -> GeneratorState<Y, R> {
        let this = self.get_mut();
        if !this.fiber.is_suspended() {
            return this.resume_first(arg);
        }
        // SAFETY: Suspended (checked above).
        let word = unsafe { this.resume_raw_suspended(arg) };
        // SAFETY: a fresh word from the coroutine, typed by this generator.
        unsafe { take_message(word) }
    }
}

/// Takes the value out of a word from a generator with these types.
///
/// # Safety
/// `word` is the fresh word of a coroutine yielding `Y` and returning `R`.
#[inline(always)]
pub(crate) unsafe fn take_message<Y, R>(word: usize) -> GeneratorState<Y, R> {
    if fiber::is_suspension(word) {
        // `wait` only suspends the future or stream being polled, never a generator.
        debug_assert_ne!(word, fiber::PENDING, "a generator received `wait`'s word");
        // SAFETY: per the caller: a generator's suspension word is a yield, which
        // points at an untaken Y.
        GeneratorState::Yielded(unsafe { ptr::read(word as *mut Y) })
    } else {
        // SAFETY: per the caller.
        unsafe { take_final_message(word) }
    }
}

/// [`take_message`] for the final word (once per generator).
///
/// # Safety
/// As for [`take_message`].
#[inline(never)]
unsafe fn take_final_message<Y, R>(word: usize) -> GeneratorState<Y, R> {
    // SAFETY: per the caller: the payload matches the event and is untaken.
    unsafe {
        match fiber::decode(word) {
            Event::Yield(value) => GeneratorState::Yielded(ptr::read(value as *mut Y)),
            Event::Return(value) => GeneratorState::Complete(ptr::read(value as *mut R)),
            Event::Panic(payload) => std::panic::resume_unwind(fiber::take_panic(payload)),
            Event::Pending => fiber::abort("a plain generator received a `wait` suspension"),
        }
    }
}

/// The resume check when the state is not `Suspended` (out of line): returns if it
/// is `Fresh`, panics with what was misused otherwise.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn check_first_resume(what: &str, state: State) {
    if state != State::Fresh {
        resume_misuse(what, state);
    }
}

#[cold]
#[track_caller]
pub(crate) fn resume_misuse(what: &str, state: State) -> ! {
    match state {
        State::Returned => panic!("{what} resumed after it completed"),
        State::Panicked => panic!("{what} resumed after it panicked"),
        State::Running => panic!("{what} resumed from inside itself (it is already running)"),
        State::Fresh | State::Suspended => unreachable!(),
    }
}

/// A generator whose resume and return types are `()` yields an iterator of its
/// yielded values. After it completes, `next` keeps returning `None`; a panic in the
/// generator propagates out of `next`.
impl<Y> Iterator for StackfulGenerator<'_, Y, (), ()> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        if self.fiber.state() == State::Returned {
            return None;
        }
        match Pin::new(self).resume(()) {
            GeneratorState::Yielded(y) => Some(y),
            GeneratorState::Complete(()) => None,
        }
    }
}

impl<Y> FusedIterator for StackfulGenerator<'_, Y, (), ()> {}

impl<Y, R, Resume> std::fmt::Debug for StackfulGenerator<'_, Y, R, Resume> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackfulGenerator")
            .field("state", &self.fiber.state())
            .finish()
    }
}

/// The handle a generator's closure uses to yield: [`yeet`](YieldHandle::yeet).
///
/// It is only reachable as the `&YieldHandle` argument of the closure (and what that
/// closure lends out), so it cannot outlive its generator, and it is neither `Send`
/// nor `Sync`. A nested generator may capture its parent's handle and yield *through*
/// the nesting: the whole chain of stacks is suspended and resumed as one.
pub struct YieldHandle<Y, Resume = ()> {
    pub(crate) link: *mut usize,
    pub(crate) _marker: PhantomData<fn(Y) -> Resume>,
}

impl<Y, Resume> YieldHandle<Y, Resume> {
    /// Suspends the generator, handing `value` to the caller of
    /// [`resume`](Generator::resume), and returns the value of the next resume.
    ///
    /// (`yield` is a reserved keyword, hence the name.)
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
    /// * If called while the generator is being dropped (its stack is unwinding, e.g.
    ///   from a destructor, or after catching that unwind with `catch_unwind`): a
    ///   generator that is being dropped cannot suspend again.
    /// * If called from inside a poll that started after the generator was resumed: a
    ///   [`StackfulFuture`](crate::future::StackfulFuture) or
    ///   [`StackfulStream`](crate::StackfulStream) that the generator itself is
    ///   polling, or a future that [`wait`](crate::wait) is polling (e.g.
    ///   `wait(async { y.yeet(x) })`): that poll would be left half-done.
    #[inline]
    pub fn yeet(&self, value: Y) -> Resume {
        // One comparison covers both misuses (a poll started since the resume, or a
        // coroutine being dropped: cancellation records a poll state that never
        // matches); the cold path tells them apart.
        // SAFETY: the handle only exists while its coroutine is alive and running.
        if unsafe { fiber::poll_in_progress_since_resume(self.link) } {
            yeet_refused(self.link);
        }
        let mut slot = Slot(ManuallyDrop::new(value));
        // SAFETY: the coroutine of `link` is running (we are inside its closure);
        // the resumer takes the value in `slot` with ptr::read; the resume argument is
        // a pointer to a `Resume` it gave up, which we take exactly once.
        unsafe {
            let arg = fiber::suspend(self.link, &mut slot as *mut Slot<Y> as usize);
            ptr::read(arg as *const Resume)
        }
    }
}

impl<Y, Resume> std::fmt::Debug for YieldHandle<Y, Resume> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YieldHandle").finish_non_exhaustive()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn yeet_refused(link: *mut usize) -> ! {
    // SAFETY: `link` is the LINK slot of the running coroutine (see `yeet`).
    if unsafe { fiber::is_cancelling(link) } {
        suspend_while_cancelling("YieldHandle::yeet");
    }
    panic!(
        "YieldHandle::yeet called from inside a poll that started after the generator was \
         resumed (a StackfulFuture/StackfulStream it polls, or a future that \
         stackful::wait is polling): a generator cannot suspend while a poll it started \
         is still in progress (yield from the generator's own code instead)"
    )
}

#[cold]
#[track_caller]
pub(crate) fn suspend_while_cancelling(what: &str) -> ! {
    panic!(
        "{what} called while its coroutine is being dropped: a coroutine whose stack is \
         being unwound cannot suspend again"
    )
}
