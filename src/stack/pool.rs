//! A bounded per-thread cache of free [`DefaultStack`]s.

use super::{round_stack_size, DefaultStack, Stack};
use std::cell::{Cell, RefCell};
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// How many free stacks each thread keeps by default.
pub const DEFAULT_POOL_LIMIT: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    static LIMIT: Cell<usize> = const { Cell::new(DEFAULT_POOL_LIMIT) };
}

/// How many free default stacks the current thread keeps for reuse.
pub fn thread_pool_limit() -> usize {
    LIMIT.try_with(Cell::get).unwrap_or(0)
}

/// Sets how many free default stacks the current thread keeps for reuse (0 disables
/// the pool on this thread). Stacks already cached beyond the new limit are unmapped.
pub fn set_thread_pool_limit(limit: usize) {
    let _ = LIMIT.try_with(|l| l.set(limit));
    let _ = POOL.try_with(|p| {
        // Take the surplus out before dropping it: munmap never re-enters the pool,
        // but keep the borrow short anyway.
        let surplus: Vec<DefaultStack> = {
            let mut p = p.borrow_mut();
            let keep = p.len().min(limit);
            p.split_off(keep)
        };
        drop(surplus);
    });
}

/// Number of free stacks cached by the current thread.
pub(crate) fn thread_pool_len() -> usize {
    POOL.try_with(|p| p.try_borrow().map(|p| p.len()).unwrap_or(0))
        .unwrap_or(0)
}

/// Unmaps every free stack cached by the current thread.
pub fn clear_thread_pool() {
    let _ = POOL.try_with(|p| {
        let all = std::mem::take(&mut *p.borrow_mut());
        drop(all);
    });
}

/// A default stack that goes back to the current thread's pool when dropped.
pub(crate) struct PooledStack(ManuallyDrop<DefaultStack>);

impl PooledStack {
    /// A stack with `size` usable bytes (after rounding): from the pool if one of that
    /// size is cached, otherwise freshly mapped.
    pub(crate) fn take(size: usize) -> io::Result<Self> {
        let size = round_stack_size(size)?;
        let cached = POOL
            .try_with(|p| {
                let mut p = p.try_borrow_mut().ok()?;
                let i = p.iter().rposition(|s| s.size() == size)?;
                Some(p.swap_remove(i))
            })
            .ok()
            .flatten();
        let stack = match cached {
            Some(s) => s,
            None => DefaultStack::new(size)?,
        };
        Ok(PooledStack(ManuallyDrop::new(stack)))
    }

    pub(crate) fn top(&self) -> NonNull<u8> {
        self.0.top()
    }

    pub(crate) fn bottom(&self) -> NonNull<u8> {
        self.0.bottom()
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here.
        let stack = unsafe { ManuallyDrop::take(&mut self.0) };
        let mut stack = Some(stack);
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < thread_pool_limit() {
                    p.push(stack.take().expect("stack present"));
                }
            }
        });
        // Not pooled (limit reached, or the thread is exiting): unmapped here.
        drop(stack);
    }
}
