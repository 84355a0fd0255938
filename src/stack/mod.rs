//! Coroutine stacks: the [`Stack`] trait, the default `mmap`-backed [`DefaultStack`]
//! and the per-thread pool that makes creating a coroutine cheap.
//!
//! Every coroutine runs on a stack of its own. By default the stack is a
//! [`DefaultStack`] of [`DEFAULT_STACK_SIZE`] bytes: an anonymous private mapping with
//! an inaccessible guard page at its low end, so that running off the end faults
//! instead of corrupting memory. Mappings are reserved lazily by the kernel
//! (`MAP_NORESERVE`): a suspended coroutine costs only the pages it has touched.
//! On Windows the stack is committed memory from `VirtualAlloc` (it counts against
//! the commit limit, although only touched pages use memory) with a guard page
//! below it, like a thread's stack.
//!
//! When a coroutine ends, its default stack goes back to a per-thread pool (at most
//! [`thread_pool_limit`] stacks: [`DEFAULT_POOL_LIMIT`] at first, then following the
//! thread's load up to [`MAX_ADAPTIVE_POOL_LIMIT`], unless fixed with
//! [`set_thread_pool_limit`]), so creating the next coroutine of the same size costs
//! no system call. Stacks beyond the limit are released, so a burst of coroutines does
//! not pin memory forever, and [`clear_thread_pool`] returns the cached ones at once.
//!
//! On Linux 6.14 and later, default stacks of up to 32 MiB are carved from large
//! shared mappings with guard pages installed by `madvise(MADV_GUARD_INSTALL)`, so
//! that a million of them fit under the default `vm.max_map_count` (see
//! [`DefaultStack`]); elsewhere each has a mapping of its own.
//!
//! Custom stacks implement the `unsafe` trait [`Stack`] and are passed to
//! [`StackfulGenerator::with_stack`](crate::generator::StackfulGenerator::with_stack) or
//! [`StackfulFuture::with_stack`](crate::future::StackfulFuture::with_stack).

use std::io;
use std::ptr::NonNull;

#[cfg(target_arch = "wasm32")]
mod heap;
#[cfg(all(unix, not(target_arch = "wasm32")))]
mod mmap;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod overflow;
mod pool;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod slab;
#[cfg(windows)]
mod windows;

/// Installs the coroutine stack-overflow reporter (once) and makes sure the calling
/// thread has an alternate signal stack for it. No-op where it is not supported.
#[inline]
pub(crate) fn prepare_thread() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    overflow::prepare_thread();
}

/// The bytes free below `sp` in the default stack of this process whose usable part
/// contains it (Linux: a slab slot, or a mapped stack with a registered guard page);
/// `None` if none does, or the platform keeps no such record.
#[cfg(not(target_arch = "wasm32"))]
fn free_below_in_default_stack(sp: usize) -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return overflow::default_stack_bottom(sp).map(|bottom| sp - bottom);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = sp;
        None
    }
}

/// Number of [`DefaultStack`]s currently mapped in the process (all platforms).
static MAPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What every default stack does once its memory `bottom..top` is usable, whatever
/// the platform: tell valgrind it is a stack (so switching to it is not reported as a
/// wild stack-pointer change), enter the guard page directly below `bottom` in the
/// overflow reporter's registry (unless `in_slab`: the slab's entry covers it), and
/// count it in [`stats`]. Returns valgrind's id for it (0 natively); pass it to
/// [`untrack_mapped`] before the memory is released.
pub(crate) fn track_mapped(bottom: usize, top: usize, in_slab: bool) -> usize {
    let valgrind_id = crate::arch::valgrind_stack_register(bottom, top);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_arch = "wasm32")))]
    known_stacks::add((bottom, top));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !in_slab {
        overflow::register(bottom - page_size(), top - bottom);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = in_slab;
    MAPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    valgrind_id
}

/// Undoes [`track_mapped`] (`bottom`, `top` and `in_slab` as there).
pub(crate) fn untrack_mapped(bottom: usize, top: usize, valgrind_id: usize, in_slab: bool) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !in_slab {
        overflow::unregister(bottom - page_size());
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_arch = "wasm32")))]
    known_stacks::remove((bottom, top));
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (bottom, top, in_slab);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = top;
    crate::arch::valgrind_stack_deregister(valgrind_id);
    MAPPED.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(target_arch = "wasm32")]
pub use heap::DefaultStack;
#[cfg(all(unix, not(target_arch = "wasm32")))]
pub use mmap::DefaultStack;
#[cfg(windows)]
pub use windows::DefaultStack;
#[cfg(windows)]
pub(crate) use windows::StackTib;
#[cfg(not(any(unix, windows, target_arch = "wasm32")))]
compile_error!("stackful supports Unix-like targets (Linux, macOS, the BSDs), Windows and wasm32");

#[cfg(panic = "unwind")]
pub(crate) use pool::thread_exiting;
pub use pool::{
    clear_thread_pool, set_thread_pool_limit, thread_pool_limit, DEFAULT_POOL_LIMIT,
    MAX_ADAPTIVE_POOL_LIMIT,
};

/// A snapshot of the stack allocator's counters; see [`stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// [`DefaultStack`]s currently mapped in the process: in use by coroutines, cached
    /// in a pool, held by user code, or leaked.
    pub mapped: usize,
    /// Free stacks cached in the calling thread's pool.
    pub pooled_on_this_thread: usize,
    /// Stacks leaked because a suspended coroutine could not be unwound (see
    /// [`leaked_stacks`](crate::leaked_stacks)).
    pub leaked: usize,
    /// wasm32: the most bytes any coroutine's Asyncify save buffer has held so far in
    /// the process (a guide for
    /// [`Builder::save_buffer_size`](crate::Builder::save_buffer_size)). Always 0
    /// natively.
    pub save_buffer_peak: usize,
    /// Whether default stacks are carved from shared slab mappings with guard pages
    /// installed by `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.14, checked once per
    /// process; see [`DefaultStack`]). When false, each default stack is a mapping of
    /// its own with an `mprotect`ed guard page, two of the kernel's
    /// `vm.max_map_count` mappings per stack.
    pub guard_regions: bool,
}

/// The current values of the stack allocator's counters.
///
/// ```
/// let before = stackful::stack::stats();
/// let fut = stackful::stackful(|| 1);
/// drop(fut); // its stack goes back to this thread's pool
/// let after = stackful::stack::stats();
/// assert!(after.pooled_on_this_thread >= 1 || after.mapped <= before.mapped);
/// ```
pub fn stats() -> Stats {
    Stats {
        mapped: MAPPED.load(std::sync::atomic::Ordering::Relaxed),
        pooled_on_this_thread: pool::thread_pool_len(),
        leaked: crate::leaked_stacks(),
        #[cfg(target_arch = "wasm32")]
        save_buffer_peak: crate::arch::save_buffer_peak(),
        #[cfg(not(target_arch = "wasm32"))]
        save_buffer_peak: 0,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        guard_regions: slab::guard_regions(),
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        guard_regions: false,
    }
}

/// Usable size of a coroutine stack when none is given: 2 MiB, the same as a Rust
/// thread spawned by `std::thread::spawn` and as stackful 0.1.
///
/// Only touched pages use memory; a coroutine that suspends after a few calls uses
/// a page or two of it.
#[cfg(not(target_arch = "wasm32"))]
pub const DEFAULT_STACK_SIZE: usize = 2 * 1024 * 1024;

/// Usable size of a coroutine stack when none is given. On wasm32 the stack holds only
/// the shadow stack (LLVM's stack for address-taken locals; wasm locals and return
/// addresses live in the engine), so it is smaller than natively: 256 KiB. It comes
/// from the allocator, in addition to the save buffer ([`DEFAULT_SAVE_BUFFER_SIZE`]).
#[cfg(target_arch = "wasm32")]
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Size of a coroutine's Asyncify save buffer on wasm32 when none is given: 64 KiB.
/// Suspending a coroutine saves the wasm locals of each of its frames there (a few
/// dozen bytes per frame in optimised builds, hundreds in debug builds); an overflow
/// is reported with a message naming
/// [`Builder::save_buffer_size`](crate::Builder::save_buffer_size). Unused natively.
pub const DEFAULT_SAVE_BUFFER_SIZE: usize = 64 * 1024;

/// Smallest usable stack size accepted by [`Builder::stack_size`](crate::Builder::stack_size)
/// (smaller requests are raised to it): 16 KiB. Leave room above it for what the
/// coroutine calls; formatting a panic message alone takes a few KiB.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Memory that a coroutine can run on.
///
/// # Safety
///
/// An implementation promises that, for as long as the value is alive (and it is not
/// dropped while a coroutine runs on it, which this crate guarantees):
///
/// * the bytes in `bottom()..top()` are readable and writable, are not used by
///   anything else, and do not move when the `Stack` value itself is moved (the
///   memory must not be inside the value);
/// * `top()` is aligned to 16 bytes and `top() - bottom()` is at least 4096 bytes;
/// * what lies below `bottom()` is either an inaccessible guard region of
///   [`guard_size`](Stack::guard_size) bytes, or the implementation accepts that a
///   coroutine which overflows its stack writes below `bottom()` (undefined
///   behaviour: only stacks with a guard are protected against overflow). The
///   coroutine's use of its stack includes the frames this crate runs on it: those of
///   `wait`, `yeet` and the drop of a suspended coroutine (its unwinding), and the
///   capture of a `backtrace()` (a few KiB), which refuses (`None`) when the
///   coroutine is saved with less than 8 KiB free below that point, on its own stack
///   or on the stack of a generator it runs. Size a guardless stack with room for
///   them.
///
/// On wasm32 the lowest [`DEFAULT_SAVE_BUFFER_SIZE`] bytes of a custom stack (at most
/// a quarter of it) become the coroutine's Asyncify save buffer, and there is never a
/// guard region: a shadow-stack overflow is detected at the coroutine's next switch,
/// after it wrote into that buffer (or below `bottom()` if it is larger than it).
///
/// Dropping the value releases the memory; this crate drops it only after the
/// coroutine has finished, and never drops it (leaks it) when a suspended coroutine
/// could not be unwound (see the crate docs, "Safety and failure modes").
pub unsafe trait Stack {
    /// One past the highest usable address (the stack grows down from here).
    fn top(&self) -> NonNull<u8>;
    /// The lowest usable address.
    fn bottom(&self) -> NonNull<u8>;
    /// Size of the inaccessible guard region directly below [`bottom`](Stack::bottom),
    /// or 0 if there is none.
    fn guard_size(&self) -> usize {
        0
    }
}

// SAFETY: the borrowed stack's memory is valid, with the same bounds, for as long as
// the borrow lasts, and is not released when the borrow ends (the owner releases it).
// A coroutine that runs on it is bound by the borrow's lifetime: only scoped and
// unchecked constructors accept a non-'static stack.
unsafe impl<S: Stack + ?Sized> Stack for &mut S {
    fn top(&self) -> NonNull<u8> {
        (**self).top()
    }
    fn bottom(&self) -> NonNull<u8> {
        (**self).bottom()
    }
    fn guard_size(&self) -> usize {
        (**self).guard_size()
    }
}

/// The stack a coroutine owns: a pooled default stack or a custom one.
pub(crate) enum StackStorage<'a> {
    Pooled(pool::PooledStack),
    Custom(CustomStack<'a>),
}

/// A custom stack of a coroutine, with the bounds [`StackStorage::custom`] checked
/// (what the crate uses from then on), entered in the record of known stacks (see
/// [`free_below`]) for as long as the coroutine has it.
pub(crate) struct CustomStack<'a> {
    /// Owned for its memory; its bounds are read once, into `bounds`.
    _stack: Box<dyn Stack + 'a>,
    /// (bottom, top).
    bounds: (usize, usize),
}

impl Drop for CustomStack<'_> {
    fn drop(&mut self) {
        // Before the stack itself is dropped (fields are dropped after this).
        #[cfg(not(target_arch = "wasm32"))]
        known_stacks::remove(self.bounds);
    }
}

/// The bounds of the custom stacks of live coroutines and, off Linux, of every mapped
/// default stack (on Linux the slab table and the guard-page registry of the overflow
/// reporter give those), for [`free_below`]: where a coroutine is saved on a stack
/// other than its own (a generator it runs), the capture of its backtrace must know
/// how much of that stack is free. A cold path: one lock when a coroutine with a
/// custom stack is created and when it is dropped, and when a default stack is mapped
/// or unmapped (not when the pool hands one out).
///
/// The stacks of live coroutines do not overlap, except that one may lie inside
/// another (a custom stack made of a local on a coroutine's stack, or carved out of a
/// `DefaultStack` that a custom `Stack` owns): the one that contains an address and
/// has the highest bottom is the stack it is on.
#[cfg(not(target_arch = "wasm32"))]
mod known_stacks {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Record {
        /// (bottom, top) -> how many live coroutines have a stack with those bounds.
        stacks: BTreeMap<(usize, usize), usize>,
        /// The largest `top - bottom` ever entered: no stack that contains an address
        /// has its bottom further below it.
        largest: usize,
    }

    static RECORD: Mutex<Record> = Mutex::new(Record {
        stacks: BTreeMap::new(),
        largest: 0,
    });

    fn lock() -> std::sync::MutexGuard<'static, Record> {
        // Nothing panics while the lock is held but an allocation failure, which
        // aborts: the data is consistent whatever happened to a previous holder.
        RECORD.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn add(bounds: (usize, usize)) {
        let mut r = lock();
        *r.stacks.entry(bounds).or_insert(0) += 1;
        r.largest = r.largest.max(bounds.1 - bounds.0);
    }

    pub(super) fn remove(bounds: (usize, usize)) {
        let mut r = lock();
        if let Some(n) = r.stacks.get_mut(&bounds) {
            *n -= 1;
            if *n == 0 {
                r.stacks.remove(&bounds);
            }
        }
    }

    /// The bottom of the innermost live custom stack that contains `addr`.
    pub(super) fn bottom_containing(addr: usize) -> Option<usize> {
        let r = lock();
        let lowest = addr.saturating_sub(r.largest);
        r.stacks
            .range((lowest, 0)..=(addr, usize::MAX))
            .rev()
            .find(|((_, top), _)| addr < *top)
            .map(|((bottom, _), _)| *bottom)
    }
}

/// The bytes free below `sp` in the stack of a live coroutine that contains it: the
/// innermost known stack that does (a custom stack of a live coroutine, or off Linux
/// a default stack), else on Linux the default stack that does (the allocator's
/// records). `None` if no known stack contains it.
///
/// `own` is the stack of the coroutine being asked about (bottom, top), if `sp` may
/// lie in it: a stack recorded inside it (a custom stack made of a local on it) that
/// holds `sp` is the innermost, and counts instead.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn free_below(sp: usize, own: (usize, usize)) -> Option<usize> {
    let recorded = known_stacks::bottom_containing(sp);
    if (own.0..own.1).contains(&sp) {
        // The innermost of the two: the one with the higher bottom.
        let bottom = recorded.map_or(own.0, |b| b.max(own.0));
        return Some(sp - bottom);
    }
    match recorded {
        Some(bottom) => Some(sp - bottom),
        None => free_below_in_default_stack(sp),
    }
}

impl<'a> StackStorage<'a> {
    /// A default stack of at least `size` usable bytes, from the pool when possible.
    /// On wasm32 a save buffer of `save` bytes is allocated below those bytes (see
    /// [`save_area`](StackStorage::save_area)); natively `save` is ignored.
    #[inline]
    pub(crate) fn default_with_size(size: usize, save: usize) -> io::Result<Self> {
        Ok(StackStorage::Pooled(pool::PooledStack::take(size, save)?))
    }

    /// Bytes at the bottom of the stack that the wasm32 backend uses as the
    /// coroutine's Asyncify save buffer (0 natively): what the builder asked for on a
    /// default stack, and [`DEFAULT_SAVE_BUFFER_SIZE`] (at most a quarter of the
    /// stack) on a custom one.
    #[inline]
    pub(crate) fn save_area(&self) -> usize {
        #[cfg(target_arch = "wasm32")]
        match self {
            StackStorage::Pooled(s) => s.save(),
            StackStorage::Custom(_) => {
                DEFAULT_SAVE_BUFFER_SIZE.min((self.top() - self.bottom()) / 4)
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        0
    }

    /// A custom stack, if its bounds are usable (the error otherwise, and the stack is
    /// dropped); prepares the calling thread for overflow reports.
    ///
    /// This is where a stack from outside the crate comes in, so its bounds are
    /// checked here, once: every `StackStorage` has a 16-byte aligned top and at least
    /// [`MIN_USABLE_STACK`] bytes (default stacks by construction), which is what
    /// `Fiber::new` relies on. A wrong `Stack` impl gets an error, not UB.
    pub(crate) fn custom(stack: Box<dyn Stack + 'a>) -> io::Result<Self> {
        let top = stack.top().as_ptr() as usize;
        let bottom = stack.bottom().as_ptr() as usize;
        if top % 16 != 0 || top <= bottom || top - bottom < MIN_USABLE_STACK {
            return Err(unusable_stack(bottom, top));
        }
        prepare_thread();
        pool::arm_thread();
        #[cfg(not(target_arch = "wasm32"))]
        known_stacks::add((bottom, top));
        Ok(StackStorage::Custom(CustomStack {
            _stack: stack,
            bounds: (bottom, top),
        }))
    }

    #[inline]
    pub(crate) fn top(&self) -> usize {
        match self {
            StackStorage::Pooled(s) => s.top().as_ptr() as usize,
            StackStorage::Custom(s) => s.bounds.1,
        }
    }

    #[inline]
    pub(crate) fn bottom(&self) -> usize {
        match self {
            StackStorage::Pooled(s) => s.bottom().as_ptr() as usize,
            StackStorage::Custom(s) => s.bounds.0,
        }
    }
}

/// The fewest usable bytes of any stack a coroutine runs on: what [`Stack`] promises,
/// checked for custom stacks by [`StackStorage::custom`] (default stacks have at least
/// [`MIN_STACK_SIZE`]).
pub(crate) const MIN_USABLE_STACK: usize = 4096;

/// The error for a custom stack whose bounds are unusable (out of line).
#[cold]
#[inline(never)]
fn unusable_stack(bottom: usize, top: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "stackful: unusable stack {bottom:#x}..{top:#x}: the top must be 16-byte \
             aligned and the stack at least {MIN_USABLE_STACK} bytes"
        ),
    )
}

/// Rounds a requested usable size to what [`DefaultStack::new`] maps: at least
/// [`MIN_STACK_SIZE`], a whole number of pages.
pub(crate) fn round_stack_size(size: usize) -> io::Result<usize> {
    let page = page_size();
    size.max(MIN_STACK_SIZE)
        .checked_add(page - 1)
        .map(|s| s & !(page - 1))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("stackful: stack size of {size} bytes is too large"),
            )
        })
}

/// The system page size, read once.
#[inline]
pub(crate) fn page_size() -> usize {
    match PAGE_SIZE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => read_page_size(),
        cached => cached,
    }
}

/// [`page_size`], once it is read (0 before).
static PAGE_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Reads the page size from the system into [`PAGE_SIZE`].
#[cold]
#[inline(never)]
fn read_page_size() -> usize {
    #[cfg(all(unix, not(target_arch = "wasm32")))]
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(windows)]
    let size = windows::system_page_size() as isize;
    // No pages to protect on wasm; stacks are rounded to 4 KiB units.
    #[cfg(target_arch = "wasm32")]
    let size = 4096isize;
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, std::sync::atomic::Ordering::Relaxed);
    size
}
