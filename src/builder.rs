//! [`Builder`]: coroutines with a chosen stack size, and fallible construction.

use crate::budget::Limit;
use crate::fiber::OnLeak;
use crate::future::StackfulFuture;
use crate::generator::{StackfulGenerator, YieldHandle};
use crate::stack::{StackStorage, DEFAULT_SAVE_BUFFER_SIZE, DEFAULT_STACK_SIZE};
use crate::stream::{StackfulStream, StreamHandle};
use std::io;

/// Configures and creates coroutines; the fallible counterpart of
/// [`stackful`](crate::stackful) and [`StackfulGenerator::new`].
///
/// ```
/// use stackful::{wait, Builder};
///
/// # fn main() -> std::io::Result<()> {
/// let fut = Builder::new().stack_size(64 * 1024).future(|| wait(async { 7 }))?;
/// assert_eq!(futures::executor::block_on(fut), 7);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builder {
    stack_size: usize,
    save_buffer_size: usize,
    /// The yield budget in units (0: off), or `None` for the process default.
    yield_budget: Option<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder for coroutines on default stacks of
    /// [`DEFAULT_STACK_SIZE`](crate::stack::DEFAULT_STACK_SIZE) bytes.
    pub const fn new() -> Self {
        Builder {
            stack_size: DEFAULT_STACK_SIZE,
            save_buffer_size: DEFAULT_SAVE_BUFFER_SIZE,
            yield_budget: None,
        }
    }

    /// Sets the usable stack size in bytes. It is rounded up to whole pages and to at
    /// least [`MIN_STACK_SIZE`](crate::stack::MIN_STACK_SIZE); a guard page is added
    /// below it. Only touched pages cost memory.
    pub const fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The configured stack size (before rounding).
    pub const fn get_stack_size(&self) -> usize {
        self.stack_size
    }

    /// wasm32 only (ignored natively): sets the size in bytes of the coroutine's
    /// Asyncify save buffer, [`DEFAULT_SAVE_BUFFER_SIZE`](crate::stack::DEFAULT_SAVE_BUFFER_SIZE)
    /// unless set. It is allocated next to the stack, in addition to
    /// [`stack_size`](Builder::stack_size).
    ///
    /// Suspending a coroutine on wasm unwinds its frames into this buffer: it must hold
    /// the wasm locals of every frame between the coroutine's entry and the suspension
    /// point (and of the frames of coroutines nested inside it that a `wait` suspends
    /// along with it). If it is too small the process aborts with a message naming the
    /// bytes needed and this method. [`stack::stats`](crate::stack::stats) reports the
    /// largest amount used so far (`save_buffer_peak`).
    pub const fn save_buffer_size(mut self, bytes: usize) -> Self {
        self.save_buffer_size = bytes;
        self
    }

    /// The configured save-buffer size.
    pub const fn get_save_buffer_size(&self) -> usize {
        self.save_buffer_size
    }

    /// Sets the cooperative yield budget of the futures and streams this builder
    /// makes: after `units` units of [`budget::consume`](crate::budget::consume) in one
    /// poll, the coroutine yields once to its executor (see [`crate::budget`]). 0 turns
    /// it off for them. Unless set, they take the process-wide default when they are
    /// created ([`budget::set_default_budget`](crate::budget::set_default_budget),
    /// [`budget::DEFAULT_BUDGET`](crate::budget::DEFAULT_BUDGET) units at start).
    /// Generators have no budget of their own (see [`crate::budget`]).
    ///
    /// ```
    /// use stackful::{budget, Builder};
    ///
    /// let fut = Builder::new().yield_budget(1_000).future(|| {
    ///     budget::consume(1);
    ///     budget::remaining()
    /// })?;
    /// assert_eq!(futures::executor::block_on(fut), Some(999));
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub const fn yield_budget(mut self, units: usize) -> Self {
        self.yield_budget = Some(units);
        self
    }

    /// The yield budget set with [`yield_budget`](Builder::yield_budget) (0: off), or
    /// `None` if it is left to the process-wide default.
    pub const fn get_yield_budget(&self) -> Option<usize> {
        self.yield_budget
    }

    /// The budget limit to give the coroutine, if the builder sets one.
    pub(crate) fn budget_limit(&self) -> Option<Limit> {
        self.yield_budget.map(Limit::from_units)
    }

    #[inline]
    pub(crate) fn stack(&self) -> io::Result<StackStorage<'static>> {
        StackStorage::default_with_size(self.stack_size, self.save_buffer_size)
    }

    /// Creates a [`StackfulFuture`] running `f` (`'static`, as for
    /// [`StackfulFuture::new`]).
    ///
    /// # Errors
    /// If the stack cannot be allocated: `mmap`/`mprotect` failed (address space,
    /// `RLIMIT_AS` or the `vm.max_map_count` limit of mappings exhausted), or the size
    /// is too large to represent.
    #[track_caller]
    pub fn future<'a, T, F>(self, f: F) -> io::Result<StackfulFuture<'a, T>>
    where
        F: FnOnce() -> T + 'static,
    {
        // SAFETY: the closure is 'static and the stack is ours.
        Ok(unsafe { StackfulFuture::on_stack(self.stack()?, OnLeak::Leak, f)? }.budget_from(&self))
    }

    /// Creates a [`StackfulGenerator`] running `f` (`'static`, with `'static` yield
    /// and resume types, as for [`StackfulGenerator::new`]).
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub fn generator<'a, Y, R, Resume, F>(
        self,
        f: F,
    ) -> io::Result<StackfulGenerator<'a, Y, R, Resume>>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'static,
        Y: 'static,
        Resume: 'static,
    {
        // SAFETY: the closure, Y and Resume are 'static and the stack is ours.
        unsafe { StackfulGenerator::on_stack(self.stack()?, OnLeak::Leak, f) }
    }

    /// Creates a [`StackfulStream`] running `f` (`'static`, with `'static` items, as
    /// for [`StackfulStream::new`]).
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub fn stream<'a, T, F>(self, f: F) -> io::Result<StackfulStream<'a, T>>
    where
        F: FnOnce(&StreamHandle<T>) + 'static,
        T: 'static,
    {
        // SAFETY: the closure and T are 'static and the stack is ours.
        Ok(unsafe { StackfulStream::on_stack(self.stack()?, OnLeak::Leak, f)? }.budget_from(&self))
    }

    /// Creates a [`StackfulFuture`] running `f`, which may borrow for `'a`.
    ///
    /// # Safety
    /// As for [`StackfulFuture::new_unchecked`].
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub unsafe fn future_unchecked<'a, T, F>(self, f: F) -> io::Result<StackfulFuture<'a, T>>
    where
        F: FnOnce() -> T + 'a,
    {
        // SAFETY: forwarded to our caller; dropping it unfinished aborts rather than
        // leaks.
        Ok(
            unsafe { StackfulFuture::on_stack(self.stack()?, OnLeak::Abort, f)? }
                .budget_from(&self),
        )
    }

    /// Creates a [`StackfulGenerator`] running `f`, which (like `Y` and `Resume`) may
    /// borrow for `'a`.
    ///
    /// # Safety
    /// As for [`StackfulGenerator::new_unchecked`].
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub unsafe fn generator_unchecked<'a, Y, R, Resume, F>(
        self,
        f: F,
    ) -> io::Result<StackfulGenerator<'a, Y, R, Resume>>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a,
    {
        // SAFETY: forwarded to our caller; dropping it unfinished aborts rather than
        // leaks.
        unsafe { StackfulGenerator::on_stack(self.stack()?, OnLeak::Abort, f) }
    }

    /// Creates a [`StackfulStream`] running `f`, which may borrow for `'a`.
    ///
    /// # Safety
    /// As for [`StackfulStream::new_unchecked`].
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    #[track_caller]
    pub unsafe fn stream_unchecked<'a, T, F>(self, f: F) -> io::Result<StackfulStream<'a, T>>
    where
        F: FnOnce(&StreamHandle<T>) + 'a,
    {
        // SAFETY: forwarded to our caller; dropping it unfinished aborts rather than
        // leaks.
        Ok(
            unsafe { StackfulStream::on_stack(self.stack()?, OnLeak::Abort, f)? }
                .budget_from(&self),
        )
    }
}
