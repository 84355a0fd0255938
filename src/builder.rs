//! [`Builder`]: coroutines with a chosen stack size, and fallible construction.

use crate::future::StackfulFuture;
use crate::generator::{StackfulGenerator, YieldHandle};
use crate::stack::{StackStorage, DEFAULT_STACK_SIZE};
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

    /// Creates a [`StackfulFuture`] running `f`.
    ///
    /// # Errors
    /// If the stack cannot be allocated: `mmap`/`mprotect` failed (address space,
    /// `RLIMIT_AS` or the `vm.max_map_count` limit of mappings exhausted), or the size
    /// is too large to represent.
    pub fn future<'a, T, F>(self, f: F) -> io::Result<StackfulFuture<'a, T>>
    where
        F: FnOnce() -> T + 'a,
    {
        StackfulFuture::on_stack(StackStorage::default_with_size(self.stack_size)?, f)
    }

    /// Creates a [`StackfulGenerator`] running `f`.
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    pub fn generator<'a, Y, R, Resume, F>(
        self,
        f: F,
    ) -> io::Result<StackfulGenerator<'a, Y, R, Resume>>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'a,
    {
        StackfulGenerator::on_stack(StackStorage::default_with_size(self.stack_size)?, f)
    }

    /// Creates a [`StackfulStream`] running `f`.
    ///
    /// # Errors
    /// As for [`future`](Builder::future).
    pub fn stream<'a, T, F>(self, f: F) -> io::Result<StackfulStream<'a, T>>
    where
        F: FnOnce(&StreamHandle<T>) + 'a,
    {
        StackfulStream::on_stack(StackStorage::default_with_size(self.stack_size)?, f)
    }
}
