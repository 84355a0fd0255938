//! [`DefaultStack`] on WebAssembly: a block of linear memory from the global allocator.

use super::{round_stack_size, Stack};
use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;

/// A stack allocated from the global allocator (WebAssembly has no virtual memory,
/// so there is no guard page: see [`save_buffer_size`](crate::Builder::save_buffer_size)
/// and the crate docs, "WebAssembly", for how overflows are detected).
///
/// ```text
/// bottom()                                                        top()
/// | [coroutine's save buffer] | shadow stack, grows down <--        |
/// ```
///
/// The memory is not zeroed. Dropping it returns it to the allocator.
#[derive(Debug)]
pub struct DefaultStack {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a DefaultStack exclusively owns its block; nothing in it is tied to a thread.
unsafe impl Send for DefaultStack {}
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

const ALIGN: usize = 16;

impl DefaultStack {
    /// Allocates a stack with at least `size` usable bytes (rounded up to whole 4 KiB
    /// units and to at least [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE)).
    ///
    /// # Errors
    /// `OutOfMemory` if the allocator cannot provide the block (linear memory cannot
    /// grow any further), `InvalidInput` if the size cannot be represented.
    pub fn new(size: usize) -> io::Result<Self> {
        let len = round_stack_size(size)?;
        let layout = Layout::from_size_align(len, ALIGN).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("stackful: stack size of {size} bytes is too large"),
            )
        })?;
        // SAFETY: the layout has a non-zero size (at least MIN_STACK_SIZE).
        let base = NonNull::new(unsafe { alloc::alloc(layout) }).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("stackful: allocating a {len}-byte coroutine stack failed"),
            )
        })?;
        let stack = DefaultStack { base, len };
        super::track_mapped(
            stack.bottom().as_ptr() as usize,
            stack.top().as_ptr() as usize,
            false,
        );
        Ok(stack)
    }

    /// Usable size in bytes.
    pub fn size(&self) -> usize {
        self.len
    }
}

// SAFETY: `base..base+len` is ours until drop, `top` is 16-aligned (the block is
// 16-aligned and its length a multiple of 4096), and `len >= MIN_STACK_SIZE`.
// There is no guard region (`guard_size` is 0).
unsafe impl Stack for DefaultStack {
    fn top(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the block, never null.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.len)) }
    }

    fn bottom(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        super::untrack_mapped(
            self.bottom().as_ptr() as usize,
            self.top().as_ptr() as usize,
            0,
            false,
        );
        // SAFETY: allocated in `new` with this very layout (checked there), and nothing
        // runs on it any more (see `Stack`).
        unsafe {
            alloc::dealloc(
                self.base.as_ptr(),
                Layout::from_size_align_unchecked(self.len, ALIGN),
            )
        };
    }
}
