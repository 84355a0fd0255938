//! A bounded per-thread cache of free [`DefaultStack`]s.
//!
//! The free stacks form an intrusive LIFO list: each one keeps its own
//! [`DefaultStack`] value and the link to the next one in a [`Node`] at the top of its
//! usable memory (a page that the coroutine which ran on it has touched). Taking the
//! most recently freed stack and giving one back are a few loads and stores on
//! [`Cell`]s, with no borrow flag, bounds check or allocation; the pool itself is a
//! few words per thread, whatever its limit.
//!
//! The limit adapts to the thread's load (unless fixed by [`set_thread_pool_limit`]):
//! takes that find the pool empty are counted, and the next drop that finds it full
//! raises the limit by that many (see [`Pool::grow`]); a countdown in the take fast
//! path brings a slow-path look at the pool every [`SAMPLE_PERIOD`] takes, and stacks
//! that stayed unused across a whole decay period are given back (see
//! [`Pool::sample`]). Given-back stacks return to their slab (Linux with guard
//! regions), which releases their pages, or are unmapped.

use super::{round_stack_size, DefaultStack, Stack};
use std::cell::Cell;
use std::io;
use std::mem::{self, ManuallyDrop};
use std::ptr::{self, NonNull};

/// How many free stacks each thread keeps at first. Unless
/// [`set_thread_pool_limit`] fixes it, the limit then follows the thread's load, between
/// this and [`MAX_ADAPTIVE_POOL_LIMIT`] (see [`thread_pool_limit`]).
pub const DEFAULT_POOL_LIMIT: usize = 16;

/// The most free stacks a thread keeps while its pool limit adapts to its load.
pub const MAX_ADAPTIVE_POOL_LIMIT: usize = 1024;

/// Takes between two looks at how much of the pool was used ([`Pool::pop_if`] counts
/// them down; [`Pool::sample`] looks).
const SAMPLE_PERIOD: u32 = 256;
/// Looks per decay step: every `SAMPLE_PERIOD * SAMPLES_PER_DECAY` takes, the pool gives
/// up half of the stacks that it held at every look (never needed in that period).
const SAMPLES_PER_DECAY: u32 = 8;

/// What a free stack holds at the top of its usable memory while it is in a pool.
struct Node {
    /// The next (less recently freed) stack's node, or null.
    next: *mut Node,
    /// The stack this node lies in (it owns the node's memory).
    stack: DefaultStack,
}

// A node fits at the top of every default stack, suitably aligned: `top()` is 16-aligned
// and at least `MIN_STACK_SIZE` bytes above `bottom()` (see `Stack`).
const _: () = assert!(mem::align_of::<Node>() <= 16 && mem::size_of::<Node>() <= 1024);

/// Where `stack`'s node goes: the last `size_of::<Node>()` bytes below its top.
#[inline]
fn node_of(stack: &DefaultStack) -> *mut Node {
    // Stays inside the stack's usable memory (see the assertion above), so plain
    // pointer arithmetic suffices.
    stack.top().as_ptr().cast::<Node>().wrapping_sub(1)
}

/// One thread's free stacks.
///
/// Invariant: `head` is null or the node of a free stack, whose `next` is again null
/// or a node, [`len`](Pool::len) of them in all; the list owns these stacks, and
/// nothing else refers to them or to their memory. Stacks are pooled only while the
/// thread's [`ExitGuard`] is registered ([`State::Armed`]), so that they are unmapped
/// when the thread exits.
///
/// The type has no destructor, so accessing the thread-local involves no check of
/// whether it is alive, registered or destroyed: only [`ExitGuard`] has one.
struct Pool {
    head: Cell<*mut Node>,
    /// How many more stacks may be pooled: `limit - len` when armed, 0 otherwise. The
    /// only counter the fast paths touch.
    room: Cell<usize>,
    limit: Cell<usize>,
    state: Cell<State>,
    /// Whether the limit follows the load (until `set_thread_pool_limit`).
    adaptive: Cell<bool>,
    /// Takes that found no stack in the pool since the limit last grew.
    misses: Cell<usize>,
    /// Takes until the next [`sample`](Pool::sample).
    tick: Cell<u32>,
    /// Samples taken in this decay period, and the fewest stacks pooled at any of them.
    samples: Cell<u32>,
    low: Cell<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// No stack was pooled yet (the exit guard is not registered): the list is empty.
    Unarmed,
    /// The exit guard is registered.
    Armed,
    /// The thread is exiting and its pool was emptied for good.
    Dead,
}

thread_local! {
    static POOL: Pool = const {
        Pool {
            head: Cell::new(ptr::null_mut()),
            room: Cell::new(0),
            limit: Cell::new(DEFAULT_POOL_LIMIT),
            state: Cell::new(State::Unarmed),
            adaptive: Cell::new(true),
            misses: Cell::new(0),
            tick: Cell::new(SAMPLE_PERIOD),
            samples: Cell::new(0),
            low: Cell::new(usize::MAX),
        }
    };
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// Empties the thread's pool for good when the thread exits.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        thread_exits();
    }
}

/// The thread is exiting (the exit guard is being destroyed): empties its pool for
/// good, so that [`thread_exiting`] is true from now on, and makes sure the thread has
/// an alternate signal stack for the overflow reporter while the remaining
/// thread-local destructors run.
fn thread_exits() {
    let _ = POOL.try_with(|p| {
        p.state.set(State::Dead);
        let all = p.detach(usize::MAX);
        p.room.set(0);
        free_list(all);
    });
    #[cfg(any(target_os = "linux", target_os = "android"))]
    super::overflow::thread_exits();
}

impl Pool {
    /// Number of stacks in the list.
    fn len(&self) -> usize {
        match self.state.get() {
            State::Armed => self.limit.get() - self.room.get(),
            State::Unarmed | State::Dead => 0,
        }
    }

    /// Unlinks the most recently freed stack if it has `size` usable bytes, and
    /// returns its node (null otherwise, and once every [`SAMPLE_PERIOD`] calls, so
    /// that the caller's slow path [`sample`](Pool::sample)s the pool). The caller then
    /// owns the stack in the node and must move it out before anything else touches the
    /// pool.
    #[inline]
    fn pop_if(&self, size: usize) -> *mut Node {
        let tick = self.tick.get().wrapping_sub(1);
        self.tick.set(tick);
        if tick == 0 {
            return ptr::null_mut();
        }
        let node = self.head.get();
        // SAFETY: a non-null head is a live node of a stack the list owns (invariant);
        // unlinking it hands the stack over to the caller.
        unsafe {
            if node.is_null() || (*node).stack.size() != size {
                return ptr::null_mut();
            }
            self.head.set((*node).next);
        }
        self.room.set(self.room.get() + 1);
        node
    }

    /// Takes the most recently freed stack with `size` usable bytes, wherever it is.
    fn remove(&self, size: usize) -> Option<DefaultStack> {
        let mut prev: *mut Node = ptr::null_mut();
        let mut node = self.head.get();
        while !node.is_null() {
            // SAFETY: `node` (and `prev`, when not null) are live nodes (invariant);
            // unlinking `node` before its stack is moved out keeps the invariant.
            unsafe {
                if (*node).stack.size() == size {
                    let Node { next, stack } = node.read();
                    if prev.is_null() {
                        self.head.set(next);
                    } else {
                        (*prev).next = next;
                    }
                    self.room.set(self.room.get() + 1);
                    return Some(stack);
                }
                prev = node;
                node = (*node).next;
            }
        }
        None
    }

    /// Moves `*stack` into the pool if there is room (returns whether it did). The
    /// first time, there is none until [`arm`](Pool::arm) is called.
    ///
    /// # Safety
    /// When this returns `true` the pool owns the stack: the caller must neither use
    /// nor drop `*stack` any more.
    #[inline]
    unsafe fn push(&self, stack: &ManuallyDrop<DefaultStack>) -> bool {
        let room = self.room.get();
        if room == 0 {
            return false;
        }
        let node = node_of(stack);
        // SAFETY: the node's bytes lie in the stack's usable memory, which is ours and
        // unused now that no coroutine runs on it; the caller gives the stack up
        // (bitwise copied into the node), and linking it in keeps the invariant.
        unsafe {
            node.write(Node {
                next: self.head.get(),
                stack: ptr::read(&**stack),
            })
        };
        self.head.set(node);
        self.room.set(room - 1);
        true
    }

    /// Registers the exit guard if no stack was pooled yet on this thread (so that
    /// [`push`](Pool::push) finds room if the limit allows). Says whether it did.
    fn arm(&self) -> bool {
        if self.state.get() != State::Unarmed {
            return false;
        }
        // The first access registers the guard's destructor; it fails only if the
        // guard is already destroyed (the thread is exiting).
        if EXIT_GUARD.try_with(|_| ()).is_err() {
            return false;
        }
        self.state.set(State::Armed);
        self.room.set(self.limit.get());
        true
    }

    /// Unlinks the `n` most recently freed stacks (all if there are fewer) and
    /// returns them as a list for [`free_list`]. Leaves `room` to the caller.
    fn detach(&self, n: usize) -> *mut Node {
        let first = self.head.get();
        let mut last = first;
        if n == 0 || first.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: the nodes from the head are live up to the null link (invariant), and
        // cutting the list after the `n`th, or the last, keeps it.
        unsafe {
            for _ in 1..n {
                if (*last).next.is_null() {
                    break;
                }
                last = (*last).next;
            }
            self.head.set((*last).next);
            (*last).next = ptr::null_mut();
        }
        first
    }

    /// Every [`SAMPLE_PERIOD`] takes: notes how many stacks the pool holds, and every
    /// [`SAMPLES_PER_DECAY`] notes, if it held some at each of them (stacks that the
    /// thread did not need in that period), lowers the limit by half of the fewest
    /// (not below [`DEFAULT_POOL_LIMIT`]) and returns that many for [`free_list`]:
    /// a thread whose load fell keeps less. Null when nothing is given up.
    fn sample(&self) -> *mut Node {
        self.tick.set(SAMPLE_PERIOD);
        let len = self.len();
        self.low.set(self.low.get().min(len));
        let samples = self.samples.get() + 1;
        if samples < SAMPLES_PER_DECAY {
            self.samples.set(samples);
            return ptr::null_mut();
        }
        let low = self.low.replace(usize::MAX);
        self.samples.set(0);
        let limit = self.limit.get();
        if !self.adaptive.get() || self.state.get() != State::Armed || limit <= DEFAULT_POOL_LIMIT {
            return ptr::null_mut();
        }
        let cut = (low / 2).min(limit - DEFAULT_POOL_LIMIT);
        if cut == 0 {
            return ptr::null_mut();
        }
        // `len - cut` stacks stay, and `limit - cut >= len - cut` keeps `room` right.
        self.set_limit(limit - cut, len - cut)
    }

    /// A take found no stack: counts the miss for [`grow`](Pool::grow).
    fn missed(&self) {
        if self.state.get() == State::Armed {
            self.misses.set(self.misses.get().saturating_add(1));
        }
    }

    /// The pool is full: if takes found it empty since it last grew (the thread has
    /// more coroutines in flight than it keeps stacks for), raises the limit by the
    /// number of misses (at least doubling it, at most to
    /// [`MAX_ADAPTIVE_POOL_LIMIT`]) and makes room accordingly.
    fn grow(&self) {
        let (limit, misses) = (self.limit.get(), self.misses.get());
        if !self.adaptive.get() || self.state.get() != State::Armed || misses == 0 {
            return;
        }
        self.misses.set(0);
        let new = limit
            .saturating_add(misses.max(limit))
            .min(MAX_ADAPTIVE_POOL_LIMIT)
            .max(limit);
        self.limit.set(new);
        self.room.set(self.room.get() + (new - limit));
    }

    /// Sets the limit and keeps at most `keep <= limit` stacks; returns the others
    /// (the most recently freed ones) for [`free_list`].
    fn set_limit(&self, limit: usize, keep: usize) -> *mut Node {
        let len = self.len();
        let kept = len.min(keep);
        let surplus = self.detach(len - kept);
        self.limit.set(limit);
        if self.state.get() == State::Armed {
            self.room.set(limit - kept);
        }
        surplus
    }
}

/// Unmaps every stack of a list that [`Pool::detach`] cut off the pool.
fn free_list(mut node: *mut Node) {
    while !node.is_null() {
        // SAFETY: the detached list owns its stacks, and its nodes are live until their
        // stack is dropped, after its node was read out here.
        let Node { next, stack } = unsafe { node.read() };
        drop(stack);
        node = next;
    }
}

/// Whether the thread is exiting and this module's per-thread state is gone: the exit
/// guard, registered when the thread's first coroutine took its stack, was destroyed.
/// Thread-local destructors run in the reverse order of registration, so this is true
/// while the destructors of thread-locals first used before that coroutine run.
#[cfg(panic = "unwind")] // only cancellation asks
#[inline(never)] // see `pool_pop_if`
pub(crate) fn thread_exiting() -> bool {
    POOL.try_with(|p| p.state.get() == State::Dead)
        .unwrap_or(true)
}

/// Registers the thread's exit guard and hook, if not done yet (see
/// [`thread_exiting`]).
#[inline(never)] // see `pool_pop_if`
pub(crate) fn arm_thread() {
    let _ = POOL.try_with(Pool::arm);
}

/// How many free default stacks the current thread keeps for reuse at the moment.
///
/// It starts at [`DEFAULT_POOL_LIMIT`] and, unless [`set_thread_pool_limit`] fixed it,
/// follows the thread's load: when coroutines find the pool empty (more are in flight
/// than it keeps stacks for), the limit grows by their number (up to
/// [`MAX_ADAPTIVE_POOL_LIMIT`]), so that a thread that keeps, say, 1,000 coroutines in
/// flight creates them without system calls or page faults; when stacks stay unused
/// in the pool for a few thousand coroutine creations, it shrinks again (not below
/// [`DEFAULT_POOL_LIMIT`]) and gives them up. The free stacks of a thread that stops
/// creating coroutines stay pooled until [`clear_thread_pool`] or the thread's exit.
///
/// ```
/// use stackful::stack::{thread_pool_limit, DEFAULT_POOL_LIMIT, MAX_ADAPTIVE_POOL_LIMIT};
///
/// // (A thread that has created no coroutine yet.)
/// assert_eq!(thread_pool_limit(), DEFAULT_POOL_LIMIT);
/// // 100 coroutines in flight at once, then all done: the pool grows to keep them.
/// let mut gens: Vec<_> = (0..100)
///     .map(|_| {
///         let mut g = stackful::generator::StackfulGenerator::new(
///             |y: &stackful::generator::YieldHandle<()>, ()| y.yeet(()),
///         );
///         g.next();
///         g
///     })
///     .collect();
/// // Finished, not dropped while suspended (which, with `panic = "abort"` as on
/// // wasm32, leaks the stack instead of pooling it).
/// for g in &mut gens {
///     assert_eq!(g.next(), None);
/// }
/// drop(gens);
/// assert!((100..=MAX_ADAPTIVE_POOL_LIMIT).contains(&thread_pool_limit()));
/// ```
#[inline(never)] // see `pool_pop_if`
pub fn thread_pool_limit() -> usize {
    POOL.try_with(|p| match p.state.get() {
        State::Dead => 0,
        State::Unarmed | State::Armed => p.limit.get(),
    })
    .unwrap_or(0)
}

/// Sets how many free default stacks the current thread keeps for reuse (0 disables
/// the pool on this thread), and stops the limit from following the load (see
/// [`thread_pool_limit`]). Stacks already cached beyond the new limit are released.
#[inline(never)] // see `pool_pop_if`
pub fn set_thread_pool_limit(limit: usize) {
    let _ = POOL.try_with(|p| {
        p.adaptive.set(false);
        free_list(p.set_limit(limit, limit))
    });
}

/// Number of free stacks cached by the current thread.
#[inline(never)] // see `pool_pop_if`
pub(crate) fn thread_pool_len() -> usize {
    POOL.try_with(Pool::len).unwrap_or(0)
}

/// Unmaps every free stack cached by the current thread.
#[inline(never)] // see `pool_pop_if`
pub fn clear_thread_pool() {
    let _ = POOL.try_with(|p| free_list(p.set_limit(p.limit.get(), 0)));
}

// The fast paths reach `POOL` through these `#[inline(never)]` functions, never
// inlined: a coroutine that creates or drops another one can be suspended between two
// such accesses and resumed on another thread (`SendFuture`), and LLVM may reuse a
// thread-local's address computed before the switch within a function (see
// `crate::context`). Each call computes it on the thread it runs on, and
// reads or writes memory, so two calls are not merged across a switch either. The
// other accesses are in functions that never suspend and are not inlined into
// coroutine code (`take_slow`, `drop_slow`, and the small ones marked
// `#[inline(never)]`, which could otherwise be inlined across crates).
//
// A stack needs no more than that to migrate: it belongs to no thread. It is taken
// from the pool of the thread that creates the coroutine and goes back to the pool
// of the thread that drops it (or is unmapped there).

/// [`Pool::pop_if`] on this thread's pool (null if it is gone).
#[inline(never)]
fn pool_pop_if(size: usize) -> *mut Node {
    POOL.try_with(|p| p.pop_if(size)).unwrap_or(ptr::null_mut())
}

/// [`Pool::push`] on this thread's pool (false if it is gone).
///
/// # Safety
/// As for [`Pool::push`].
#[inline(never)]
unsafe fn pool_push(stack: &ManuallyDrop<DefaultStack>) -> bool {
    // SAFETY: forwarded to our caller.
    POOL.try_with(|p| unsafe { p.push(stack) }) == Ok(true)
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
        let size = match size.max(super::MIN_STACK_SIZE).checked_add(save) {
            Some(size) => size,
            None => return Err(save_too_large(save)),
        };
        // Fast path: the most recently freed stack, if it has exactly `size` bytes. A
        // pooled stack's size is already rounded (`round_stack_size` leaves it as it
        // is), so such a `size` needs no rounding either.
        let node = pool_pop_if(size);
        if !node.is_null() {
            // SAFETY: `pop_if` handed the stack in the node over to us, and its memory
            // stays valid until the stack is dropped.
            let stack = unsafe { ptr::addr_of!((*node).stack).read() };
            return Ok(Self::new(stack, save));
        }
        Self::take_slow(size, save)
    }

    /// [`take`](Self::take) for sizes to round, or when the last free stack does not fit.
    #[inline(never)]
    fn take_slow(size: usize, save: usize) -> io::Result<Self> {
        let size = round_stack_size(size)?;
        // Arm the thread-exit detection with the thread's first coroutine (see
        // `thread_exiting`).
        arm_thread();
        let stack = match POOL.try_with(|p| {
            if p.tick.get() == 0 {
                free_list(p.sample());
            }
            let found = p.remove(size);
            if found.is_none() {
                p.missed();
            }
            found
        }) {
            // Mapped on this thread, which was prepared then.
            Ok(Some(s)) => s,
            _ => {
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

#[cfg(target_arch = "wasm32")]
#[cold]
fn save_too_large(save: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("stackful: a save buffer of {save} bytes is too large"),
    )
}

impl PooledStack {
    /// [`drop`](Drop::drop) when the pool has no room: arms it if this is the first
    /// stack pooled on this thread, or unmaps the stack (limit reached, or the thread
    /// is exiting).
    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        // SAFETY: the stack is not used again after it was pooled.
        let pooled = POOL.try_with(|p| {
            if !p.arm() {
                p.grow();
            }
            // SAFETY: as above.
            unsafe { p.push(&self.stack) }
        });
        if pooled != Ok(true) {
            // SAFETY: not pooled, so still ours; dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.stack) };
        }
    }
}

impl Drop for PooledStack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the stack is not used again after it was pooled.
        if !unsafe { pool_push(&self.stack) } {
            self.drop_slow();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_STACK_SIZE, MIN_STACK_SIZE};
    use super::*;
    use std::sync::Mutex;

    /// Serialises the tests that count mapped stacks (a process-wide number).
    static MAPPING: Mutex<()> = Mutex::new(());

    fn take(size: usize) -> PooledStack {
        PooledStack::take(size, 0).unwrap()
    }

    /// Runs `f` with a fresh pool: on a new thread, or on wasm32 (no threads) here,
    /// with the pool emptied and at its default limit before and after.
    fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
        #[cfg(not(target_arch = "wasm32"))]
        std::thread::spawn(f).join().unwrap();
        #[cfg(target_arch = "wasm32")]
        {
            set_thread_pool_limit(DEFAULT_POOL_LIMIT);
            clear_thread_pool();
            f();
            set_thread_pool_limit(DEFAULT_POOL_LIMIT);
            clear_thread_pool();
        }
    }

    #[test]
    fn the_most_recently_freed_stack_of_the_size_comes_back() {
        let _lock = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        on_fresh_thread(|| {
            let small = round_stack_size(MIN_STACK_SIZE).unwrap();
            let (a, b, c) = (
                take(DEFAULT_STACK_SIZE),
                take(small),
                take(DEFAULT_STACK_SIZE),
            );
            let (a_top, b_top, c_top) = (a.top(), b.top(), c.top());
            drop((a, b, c));
            assert_eq!(thread_pool_len(), 3);
            // From the head, then from the middle of the list (an unrounded size).
            assert_eq!(take(DEFAULT_STACK_SIZE).top(), c_top);
            assert_eq!(thread_pool_len(), 3);
            let x = take(DEFAULT_STACK_SIZE);
            let y = take(MIN_STACK_SIZE - 1);
            assert_eq!((x.top(), y.top()), (c_top, b_top));
            let z = take(DEFAULT_STACK_SIZE);
            assert_eq!(z.top(), a_top);
            assert_eq!(thread_pool_len(), 0);
            drop((x, y, z));
            // Lowering the limit unmaps the most recently freed ones.
            set_thread_pool_limit(1);
            assert_eq!(thread_pool_len(), 1);
            assert_eq!(take(DEFAULT_STACK_SIZE).top(), c_top);
            clear_thread_pool();
            assert_eq!((thread_pool_len(), thread_pool_limit()), (0, 1));
        });
    }

    // Not on wasm32: needs threads.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_thread_s_free_stacks_are_unmapped_when_it_exits() {
        let _lock = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        struct Late;
        impl Drop for Late {
            fn drop(&mut self) {
                // Before or after the pool's guard: either way nothing leaks.
                drop(take(DEFAULT_STACK_SIZE));
            }
        }
        thread_local! {
            static LATE: Late = const { Late };
        }
        let before = super::super::stats().mapped;
        on_fresh_thread(|| {
            LATE.with(|_| ());
            let stacks: Vec<_> = (0..3).map(|_| take(DEFAULT_STACK_SIZE)).collect();
            drop(stacks);
            assert_eq!(thread_pool_len(), 3);
        });
        assert_eq!(super::super::stats().mapped, before);
    }

    // Not on wasm32: ends the pool of a thread.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn an_exited_pool_keeps_nothing() {
        let _lock = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        let before = super::super::stats().mapped;
        on_fresh_thread(|| {
            drop(take(DEFAULT_STACK_SIZE));
            assert_eq!(thread_pool_len(), 1);
            // What the thread's exit does.
            drop(ExitGuard);
            assert_eq!((thread_pool_len(), thread_pool_limit()), (0, 0));
            set_thread_pool_limit(4);
            drop(take(DEFAULT_STACK_SIZE));
            assert_eq!((thread_pool_len(), thread_pool_limit()), (0, 0));
        });
        assert_eq!(super::super::stats().mapped, before);
    }
}
