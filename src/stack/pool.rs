//! A bounded per-thread cache of free [`DefaultStack`]s.

use super::{page_size, round_stack_size, DefaultStack, Stack, DEFAULT_STACK_SIZE};
use std::cell::RefCell;
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// How many free stacks each thread keeps by default.
pub const DEFAULT_POOL_LIMIT: usize = 16;

/// One thread's free stacks and how many of them it keeps.
struct Pool {
    free: Vec<DefaultStack>,
    limit: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { free: Vec::new(), limit: DEFAULT_POOL_LIMIT })
    };
}

/// How many free default stacks the current thread keeps for reuse.
pub fn thread_pool_limit() -> usize {
    POOL.try_with(|p| p.try_borrow().map(|p| p.limit).unwrap_or(0))
        .unwrap_or(0)
}

/// Sets how many free default stacks the current thread keeps for reuse (0 disables
/// the pool on this thread). Stacks already cached beyond the new limit are unmapped.
pub fn set_thread_pool_limit(limit: usize) {
    let _ = POOL.try_with(|p| {
        // Take the surplus out before dropping it (munmap never re-enters the pool).
        let surplus: Vec<DefaultStack> = {
            let mut p = p.borrow_mut();
            p.limit = limit;
            let keep = p.free.len().min(limit);
            p.free.split_off(keep)
        };
        drop(surplus);
    });
}

/// Number of free stacks cached by the current thread.
pub(crate) fn thread_pool_len() -> usize {
    POOL.try_with(|p| p.try_borrow().map(|p| p.free.len()).unwrap_or(0))
        .unwrap_or(0)
}

/// Unmaps every free stack cached by the current thread.
pub fn clear_thread_pool() {
    let _ = POOL.try_with(|p| {
        let all = std::mem::take(&mut p.borrow_mut().free);
        drop(all);
    });
}

/// A default stack that goes back to the current thread's pool when dropped.
pub(crate) struct PooledStack {
    stack: ManuallyDrop<DefaultStack>,
    /// wasm32: bytes at the bottom set aside for the save buffer.
    #[cfg(target_arch = "wasm32")]
    save: usize,
}

impl PooledStack {
    #[inline]
    fn new(stack: DefaultStack, save: usize) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = save;
        PooledStack {
            stack: ManuallyDrop::new(stack),
            #[cfg(target_arch = "wasm32")]
            save,
        }
    }

    /// A stack with `size` usable bytes (after rounding): from the pool if one of that
    /// size is cached, otherwise freshly mapped. On wasm32, `save` more bytes are
    /// allocated below them for the coroutine's save buffer; natively it is ignored.
    #[inline]
    pub(crate) fn take(size: usize, save: usize) -> io::Result<Self> {
        #[cfg(target_arch = "wasm32")]
        let size = size
            .max(super::MIN_STACK_SIZE)
            .checked_add(save)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("stackful: a save buffer of {save} bytes is too large"),
                )
            })?;
        // Fast path: the default size (a whole number of pages on every system, so
        // no rounding: pages are powers of two no larger than 2 MiB, checked here),
        // and the most recently freed stack, which usually has it.
        if size == DEFAULT_STACK_SIZE && DEFAULT_STACK_SIZE & (page_size() - 1) == 0 {
            let last = POOL
                .try_with(|p| {
                    let mut p = p.try_borrow_mut().ok()?;
                    if p.free.last()?.size() == size {
                        p.free.pop()
                    } else {
                        None
                    }
                })
                .ok()
                .flatten();
            if let Some(stack) = last {
                return Ok(Self::new(stack, save));
            }
        }
        Self::take_slow(size, save)
    }

    /// [`take`](Self::take) for other sizes, or when the last free stack does not fit.
    #[inline(never)]
    fn take_slow(size: usize, save: usize) -> io::Result<Self> {
        let size = round_stack_size(size)?;
        let cached = POOL
            .try_with(|p| {
                let mut p = p.try_borrow_mut().ok()?;
                let i = p.free.iter().rposition(|s| s.size() == size)?;
                Some(p.free.swap_remove(i))
            })
            .ok()
            .flatten();
        let stack = match cached {
            // Mapped on this thread, which was prepared then.
            Some(s) => s,
            None => {
                super::prepare_thread();
                DefaultStack::new(size)?
            }
        };
        Ok(Self::new(stack, save))
    }

    #[inline]
    pub(crate) fn top(&self) -> NonNull<u8> {
        self.stack.top()
    }

    #[inline]
    pub(crate) fn bottom(&self) -> NonNull<u8> {
        self.stack.bottom()
    }

    /// wasm32: the save buffer's share of the stack.
    #[cfg(target_arch = "wasm32")]
    #[inline]
    pub(crate) fn save(&self) -> usize {
        self.save
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        // A stack that is not pooled (limit reached, pool busy) comes back out and is
        // unmapped after the pool's borrow ended; if the thread's pool is gone (the
        // thread is exiting), the closure is dropped unrun, which unmaps it too.
        let rejected = POOL.try_with(move |p| match p.try_borrow_mut() {
            Ok(mut p) if p.free.len() < p.limit => {
                p.free.push(stack);
                None
            }
            _ => Some(stack),
        });
        drop(rejected);
    }
}
