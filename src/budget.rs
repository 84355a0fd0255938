//! A cooperative yield budget for CPU-bound synchronous code inside coroutines.
//!
//! Synchronous code that never reaches a [`wait`](crate::wait) (an interpreter loop, a
//! parser over data already in memory) keeps its executor thread to itself for as
//! long as it runs: every other task of that thread starves. Such code calls
//! [`consume`]`(units)` at its loop back-edges; once the coroutine has consumed its
//! budget (a number of units, [`DEFAULT_BUDGET`] unless set with
//! [`Builder::yield_budget`](crate::Builder::yield_budget) or
//! [`set_default_budget`]) it yields once, as [`yield_now`](crate::yield_now) does:
//! its task is woken at once and the executor polls it again after the other ready
//! tasks. Code that wants to pick the moment itself charges with [`charge`] and asks
//! [`should_yield`]. The hottest loops count on a [`Meter`], a batch of budget in a
//! local variable.
//!
//! ```
//! use stackful::{budget, Builder};
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! /// A CPU-bound loop: one unit per iteration.
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 {
//!         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
//!         steps += 1;
//!         budget::consume(1); // yields every 100 units (below)
//!     }
//!     steps
//! }
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let local = tokio::task::LocalSet::new();
//! let ticks = Rc::new(Cell::new(0));
//! let (steps, ticks_meanwhile) = local.block_on(&rt, async {
//!     let seen = Rc::clone(&ticks);
//!     let fut = Builder::new()
//!         .yield_budget(100)
//!         .future(move || (collatz_steps(27), seen.get()))?;
//!     let looping = tokio::task::spawn_local(fut);
//!     // Another task on the same thread, counting its turns.
//!     let counter = Rc::clone(&ticks);
//!     tokio::task::spawn_local(async move {
//!         loop {
//!             counter.set(counter.get() + 1);
//!             tokio::task::yield_now().await;
//!         }
//!     });
//!     Ok::<_, std::io::Error>(looping.await.unwrap())
//! })?;
//! assert_eq!(steps, 111);
//! // The loop yielded once (after 100 of its 111 units) and the other task had a
//! // turn in between; with the budget off it would have seen 0 ticks.
//! assert_eq!(ticks_meanwhile, 1);
//!
//! // Outside a coroutine the budget does nothing.
//! assert_eq!(collatz_steps(27), 111);
//! assert_eq!(budget::remaining(), None);
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # Whose budget
//!
//! The budget belongs to the innermost [`StackfulFuture`](crate::future::StackfulFuture)
//! or [`StackfulStream`](crate::StackfulStream) being polled on the thread, and it
//! **refills at every poll**: it counts the units consumed since the coroutine was
//! last resumed by its executor (after a budget yield, a [`yield_now`](crate::yield_now)
//! or a [`wait`](crate::wait) that suspended). So a coroutine that charges through
//! [`consume`] never consumes more than its budget between two returns to its
//! executor, whatever mix of waits and loops it runs (for a [`Meter`], see there).
//!
//! * **Generators** have no executor to yield to: code in a generator charges the
//!   budget of the future or stream that runs it (if any; a budget yield then suspends
//!   that whole chain of coroutines, generator included, exactly as a `wait` there
//!   would), and does nothing in a generator resumed outside any future.
//! * **Nested futures** (a coroutine that `wait`s on another `StackfulFuture`): the
//!   inner one's code charges the inner budget only; when it yields, the whole chain
//!   yields to the executor, and every budget of the chain refills at the next poll.
//! * **Outside any coroutine** (plain threads, async code) every function here does
//!   nothing: [`consume`] returns at once, [`should_yield`] and [`charge`] return
//!   false, [`remaining`] returns `None`.
//! * **Where a coroutine cannot suspend**, the budget cannot yield either: inside the
//!   `poll` of a future that `wait` is polling (async code run by `wait`), and while
//!   the coroutine is being dropped (its destructors run), and while a panic of its
//!   own unwinds it (a coroutine suspended halfway through unwinding could not be
//!   dropped later). There [`consume`] refills
//!   the budget and goes on, and [`should_yield`] is false. The budget also never
//!   yields while the *thread* is panicking (a coroutine polled from a destructor
//!   during an unrelated unwind): std does not say how many panics are in flight, so
//!   a panic of the coroutine's own could not be told from the thread's.
//! * **Another copy of stackful** (see the README, "Several copies of stackful in
//!   one program"): code charges the budget of the coroutine it runs in, whichever
//!   copy runs it, through the shared context (ABI version 2; in a coroutine of a
//!   copy that only has version 1 these functions do nothing). C code does the same
//!   with `stackful_consume`, `stackful_charge` and `stackful_should_yield` of
//!   `include/stackful.h`. [`remaining`] is `None` in another copy's coroutine, and
//!   a [`Meter`] there settles at every unit.
//!
//! # Units
//!
//! A unit means what its caller wants; the budget only counts. One unit per loop
//! iteration of a few nanoseconds to a few hundred nanoseconds of work makes the
//! default of [`DEFAULT_BUDGET`] (10,000 units) a yield every 10 µs to a few ms;
//! latency-sensitive executors want roughly 10–100 µs between yields. Charge
//! proportionally (`consume(bytes / 64)`, `consume(instructions)`) where iterations
//! differ widely in cost.
//!
//! # Cost
//!
//! [`consume`] is an out-of-line call: it reads this thread's poll state (one
//! call to the shared per-thread slot, `crate::context`), then decrements a counter in the poll's frame (14 instructions
//! on x86_64 Linux, call included). It is out of line on purpose: a coroutine may
//! resume on another thread after a yield ([`SendFuture`](crate::SendFuture)), and an
//! inlined thread-local access could reuse the address of the thread it left (see
//! `crate::context`). [`Meter::consume`] is inlined and touches no
//! thread-local on its fast path (a compare and a subtraction on a local); it goes
//! out of line once per share of the budget. Both are measured in
//! `benches/budget.rs` and by `benches/insn_counts.rs` (see BENCHMARKS.md).
//!
//! # Thread-locals and locks
//!
//! [`consume`] may suspend the coroutine, so the rules of
//! [`yield_now`](crate::yield_now) apply: do not call it inside `LocalKey::with` (or
//! a `thread_local!` initializer), while holding a `std::sync::Mutex` guard, or
//! inside a `Once`/`OnceLock`/`LazyLock` initializer (see the crate docs,
//! "Soundness"). The same holds for [`Meter::consume`]. [`charge`] and
//! [`should_yield`] never suspend.

use crate::context::CurrentBudget;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process-wide default budget in units, until [`set_default_budget`] changes
/// it: 10,000.
pub const DEFAULT_BUDGET: usize = 10_000;

/// The budget of coroutines whose [`Builder`](crate::Builder) does not set one, in
/// units; 0 when off.
static DEFAULT: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET);

/// Sets the budget of the coroutine futures and streams created from now on whose
/// [`Builder`](crate::Builder) does not set one (those of
/// [`stackful`](crate::stackful()), [`stream`](crate::stream()), `Builder::new()`,
/// scopes and `stackful::io`), process-wide: they yield after `units` units of
/// [`consume`]. 0 turns the budget off for them ([`consume`] never yields,
/// [`should_yield`] is always false). Coroutines created before keep theirs.
///
/// ```
/// use stackful::budget;
///
/// let before = budget::default_budget();
/// budget::set_default_budget(0); // off for coroutines created from now on
/// let fut = stackful::stackful(|| budget::remaining());
/// assert_eq!(futures::executor::block_on(fut), Some(usize::MAX));
/// budget::set_default_budget(before);
/// ```
pub fn set_default_budget(units: usize) {
    DEFAULT.store(units, Ordering::Relaxed);
}

/// The process-wide default budget (see [`set_default_budget`]); 0 when off.
pub fn default_budget() -> usize {
    DEFAULT.load(Ordering::Relaxed)
}

/// A coroutine's budget as the poll path uses it: the units it may consume per poll,
/// `usize::MAX` when off (so that the poll copies it without a test, and a counter
/// that starts there never runs out in practice; where it does, on a 32-bit target,
/// [`Limit::is_off`] tells the slow path not to yield).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit(usize);

impl Limit {
    /// Off: never yield.
    pub(crate) const OFF: Limit = Limit(usize::MAX);

    /// `units` units per poll, 0 (or `usize::MAX`) for off.
    pub(crate) const fn from_units(units: usize) -> Limit {
        if units == 0 {
            Limit::OFF
        } else {
            Limit(units)
        }
    }

    /// The limit of a coroutine whose builder sets none (read when it is created).
    pub(crate) fn process_default() -> Limit {
        Limit::from_units(default_budget())
    }

    fn is_off(self) -> bool {
        self == Limit::OFF
    }
}

/// The budget state of one poll: a field of the poll's frame (`context::PollFrame`),
/// found through the context this copy publishes in the thread's slot. This is the
/// whole per-thread budget state: "the current poll's budget" is found through the
/// current poll, where a later version of the context shared with other copies of
/// the crate could publish it too.
#[repr(C)]
pub(crate) struct PollBudget {
    /// Units left before the coroutine should yield (0: it should yield now).
    left: Cell<usize>,
    /// What the poll started with; what a refill restores.
    limit: Limit,
}

impl PollBudget {
    /// The budget of a poll of a coroutine whose limit is `limit`: full.
    #[inline(always)]
    pub(crate) const fn new(limit: Limit) -> Self {
        PollBudget {
            left: Cell::new(limit.0),
            limit,
        }
    }
}

/// Charges `units` to the budget of the coroutine running on this thread and, once
/// the budget is used up, yields once (as [`yield_now`](crate::yield_now)): the task
/// is woken at once, the executor polls its other ready tasks and then this one
/// again, and the budget is full again when this returns.
///
/// Call it where CPU-bound synchronous code can afford to be suspended, e.g. at the
/// back-edge of an interpreter's dispatch loop, with units proportional to the work
/// done since the last call. Outside a coroutine future or stream (see the module
/// docs for generators and the places where a coroutine cannot suspend) it does
/// nothing. `consume(0)` yields if and only if the budget is already used up (after
/// [`charge`]).
///
/// ```
/// use stackful::{budget, Builder};
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// let mut fut = Builder::new().yield_budget(3).future(|| {
///     for _ in 0..7 {
///         budget::consume(1);
///     }
/// })?;
/// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
/// let mut polls = 1;
/// while Pin::new(&mut fut).poll(&mut cx).is_pending() {
///     polls += 1;
/// }
/// assert_eq!(polls, 3); // yielded after units 3 and 6
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Thread-locals and locks
/// It may suspend: see [`yield_now`](crate::yield_now#thread-locals-and-locks) and
/// the module docs.
// Out of line (and it must stay so; see the module docs, "Cost"): it reads the
// thread's poll state itself and touches nothing thread-local after `exhausted`, which
// may suspend and return on another thread.
#[inline(never)]
pub fn consume(units: usize) {
    let budget = match crate::context::current_budget() {
        CurrentBudget::Ours(budget) => budget,
        CurrentBudget::None => return,
        CurrentBudget::Foreign(ctx) => {
            // SAFETY: the current context, of version 2 or later.
            if unsafe { crate::context::charge_foreign(ctx, units) } {
                crate::future::yield_now();
            }
            return;
        }
    };
    // SAFETY: non-null, it is the budget of the poll running on this thread: the
    // budget of its `PollFrame`, which lives on the stack of that poll, blocked
    // below us while we run.
    let left = unsafe { &(*budget).left };
    let now = left.get();
    if now > units {
        left.set(now - units);
    } else {
        // SAFETY: as above.
        unsafe { exhausted(budget) }
    }
}

/// A batch of budget kept in a local variable: [`Meter::consume`] is [`consume`]
/// without the call and the thread-local read, for the hottest loops.
///
/// The meter takes a share of the running coroutine's budget (an eighth of it, or
/// what is left if less), counts it down in place (inlined: a compare and a
/// subtraction on the meter, which the compiler can keep in a register), and only
/// when the share is used up settles with the coroutine's budget through [`consume`],
/// out of line: charges what it counted, yields if the budget is used up, and takes a
/// new share. So a loop that consumes only through its meter yields exactly where it
/// would with [`consume`], for about 8 out-of-line calls per budget.
///
/// What the meter has counted but not settled yet (less than one share) does not
/// show in [`remaining`] or [`should_yield`], and is not seen by other code that
/// charges the same budget: where a loop mixes its meter with direct [`consume`]
/// calls (a helper it calls charges too), a poll may run up to a share (1/8 of the
/// budget) more than the budget. Units counted before a suspension (a `wait` in the
/// loop) and settled after it are charged to the poll after it, which only makes the
/// meter yield earlier. Outside a coroutine (or with the budget off) it settles every
/// 65,536 units, which costs nothing noticeable. A share belongs to the coroutine that
/// took it: a meter moved into another coroutine (or used outside one first) counts
/// down what is left of its share there before it settles with that coroutine's
/// budget, up to 65,536 units without a yield; make a new meter in each coroutine.
///
/// ```
/// use stackful::{budget, Builder};
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// let mut fut = Builder::new().yield_budget(1_000).future(|| {
///     let mut meter = budget::Meter::new();
///     let mut sum = 0u64;
///     for i in 0..2_500u64 {
///         sum += i;
///         meter.consume(1);
///     }
///     sum
/// })?;
/// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
/// let mut polls = 1;
/// let sum = loop {
///     match Pin::new(&mut fut).poll(&mut cx) {
///         Poll::Ready(sum) => break sum,
///         Poll::Pending => polls += 1,
///     }
/// };
/// assert_eq!((sum, polls), (3_123_750, 3)); // yielded after units 1,000 and 2,000
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Thread-locals and locks
/// [`Meter::consume`] may suspend: as for [`consume`].
#[derive(Clone, Debug, Default)]
pub struct Meter {
    /// Units left of the share.
    left: usize,
    /// The share taken at the last settlement (what was counted since is
    /// `share - left`).
    share: usize,
}

/// The largest share a [`Meter`] takes: bounds how long a meter made outside a
/// coroutine (or in one whose budget is off) goes without looking again.
const MAX_SHARE: usize = 1 << 16;

impl Meter {
    /// A meter with no share yet (its first [`consume`](Meter::consume) takes one).
    pub const fn new() -> Self {
        Meter { left: 0, share: 0 }
    }

    /// Charges `units` as [`consume`] does: counts them on the meter, and when its
    /// share is used up, settles with the running coroutine's budget (which may yield
    /// once, as [`consume`]).
    #[inline(always)]
    pub fn consume(&mut self, units: usize) {
        if self.left > units {
            self.left -= units;
        } else {
            self.settle(units);
        }
    }

    /// The share is used up: charges everything counted since the last settlement
    /// (`units` included), maybe yielding, then takes a new share.
    #[cold]
    #[inline(never)]
    fn settle(&mut self, units: usize) {
        let counted = (self.share - self.left).saturating_add(units);
        // Nothing counted twice if `consume` unwinds (the coroutine is dropped).
        *self = Meter::new();
        consume(counted);
        // After `consume`, the budget is not used up (it yielded and this is a new
        // poll, or it refilled where the coroutine cannot suspend, or it had units
        // left); `share` reads it out of line, on whichever thread we are now.
        let share = share();
        *self = Meter { left: share, share };
    }
}

/// What a [`Meter`] may count before it settles again: an eighth of the running
/// coroutine's budget (at least 1, at most [`MAX_SHARE`]), or what is left of it if
/// that is less.
#[inline(never)]
fn share() -> usize {
    let budget = match crate::context::current_budget() {
        CurrentBudget::Ours(budget) => budget,
        CurrentBudget::None => return MAX_SHARE,
        // Another copy's budget, of unknown size: settle at every unit.
        CurrentBudget::Foreign(_) => return 1,
    };
    // SAFETY: as in `consume`.
    let budget = unsafe { &*budget };
    if budget.limit.is_off() {
        MAX_SHARE
    } else {
        (budget.limit.0 / 8)
            .clamp(1, MAX_SHARE)
            .min(budget.left.get())
            .max(1)
    }
}

/// The budget ran out in [`consume`]: yields if the coroutine can suspend here,
/// refills it otherwise.
///
/// # Safety
/// `budget` is the budget of the poll running on this thread (see `consume`).
#[cold]
#[inline(never)]
unsafe fn exhausted(budget: *const PollBudget) {
    // SAFETY: per the caller; the frame is alive until we suspend.
    let budget = unsafe { &*budget };
    if budget.limit.is_off() || !crate::context::can_suspend_here() {
        budget.left.set(budget.limit.0);
        return;
    }
    // The poll that resumes us installs a full budget of its own; the frame of this
    // one is gone by then, so nothing touches `budget` after this.
    crate::future::yield_now();
}

/// Charges `units` to the budget of the coroutine running on this thread, without
/// yielding; returns [`should_yield`] afterwards.
///
/// For code that picks the moment to yield itself (at a point where its state is
/// consistent, or to return to an outer loop that calls
/// [`yield_now`](crate::yield_now)). Where the coroutine cannot suspend, or outside
/// any coroutine, it returns false (and a used-up budget is refilled).
///
/// ```
/// use stackful::{budget, yield_now, Builder};
///
/// let fut = Builder::new().yield_budget(10).future(|| {
///     let mut yields = 0;
///     for _ in 0..25 {
///         if budget::charge(1) {
///             assert!(budget::should_yield());
///             yield_now(); // the next poll refills the budget
///             yields += 1;
///         }
///     }
///     yields
/// })?;
/// assert_eq!(futures::executor::block_on(fut), 2);
/// # Ok::<_, std::io::Error>(())
/// ```
#[inline(never)]
pub fn charge(units: usize) -> bool {
    match crate::context::current_budget() {
        // SAFETY: as in `consume`.
        CurrentBudget::Ours(budget) => unsafe { charge_budget(budget, units) },
        CurrentBudget::None => false,
        // SAFETY: the current context, of version 2 or later.
        CurrentBudget::Foreign(ctx) => unsafe { crate::context::charge_foreign(ctx, units) },
    }
}

/// [`charge`] on the budget of a poll of this copy (also `Ops::charge`, for other
/// copies and C code).
///
/// # Safety
/// `budget` is the budget of the poll running on this thread.
#[inline(always)]
pub(crate) unsafe fn charge_budget(budget: *const PollBudget, units: usize) -> bool {
    // SAFETY: as in `consume`.
    let left = unsafe { &(*budget).left };
    let now = left.get();
    if now > units {
        left.set(now - units);
        false
    } else {
        // SAFETY: as in `consume`.
        unsafe { used_up(budget) }
    }
}

/// The budget ran out in [`charge`]: it stays used up (and [`should_yield`] true)
/// where the coroutine can yield; elsewhere it refills.
///
/// # Safety
/// As for [`exhausted`].
#[cold]
#[inline(never)]
unsafe fn used_up(budget: *const PollBudget) -> bool {
    // SAFETY: per the caller.
    let budget = unsafe { &*budget };
    if budget.limit.is_off() || !crate::context::can_suspend_here() {
        budget.left.set(budget.limit.0);
        false
    } else {
        budget.left.set(0);
        true
    }
}

/// Whether the coroutine running on this thread has used up its budget (with
/// [`charge`]) and could yield here: the answer to "should this loop yield now?".
/// False outside any coroutine future or stream, where the coroutine cannot suspend
/// (see the module docs), and when its budget is off.
///
/// ```
/// use stackful::{budget, Builder};
///
/// assert!(!budget::should_yield()); // not in a coroutine
/// let fut = Builder::new().yield_budget(2).future(|| {
///     let before = budget::should_yield();
///     budget::charge(2);
///     (before, budget::should_yield())
/// })?;
/// assert_eq!(futures::executor::block_on(fut), (false, true));
/// # Ok::<_, std::io::Error>(())
/// ```
#[inline(never)]
pub fn should_yield() -> bool {
    match crate::context::current_budget() {
        // SAFETY: as in `consume`.
        CurrentBudget::Ours(budget) => unsafe { should_yield_budget(budget) },
        CurrentBudget::None => false,
        // SAFETY: the current context, of version 2 or later.
        CurrentBudget::Foreign(ctx) => unsafe { crate::context::should_yield_foreign(ctx) },
    }
}

/// [`should_yield`] on the budget of a poll of this copy (also `Ops::should_yield`).
///
/// # Safety
/// As for [`charge_budget`].
pub(crate) unsafe fn should_yield_budget(budget: *const PollBudget) -> bool {
    // SAFETY: per the caller.
    let budget = unsafe { &*budget };
    budget.left.get() == 0 && !budget.limit.is_off() && crate::context::can_suspend_here()
}

/// The units left in the budget of the coroutine running on this thread:
/// `Some(usize::MAX)` when its budget is off (it never runs out), `None` outside any
/// coroutine future or stream (and in a generator resumed outside one).
///
/// ```
/// use stackful::{budget, Builder};
///
/// assert_eq!(budget::remaining(), None);
/// let fut = Builder::new().yield_budget(100).future(|| {
///     budget::consume(30);
///     budget::remaining()
/// })?;
/// assert_eq!(futures::executor::block_on(fut), Some(70));
/// # Ok::<_, std::io::Error>(())
/// ```
#[inline(never)]
pub fn remaining() -> Option<usize> {
    let CurrentBudget::Ours(budget) = crate::context::current_budget() else {
        return None;
    };
    // SAFETY: as in `consume`.
    let budget = unsafe { &*budget };
    Some(if budget.limit.is_off() {
        usize::MAX
    } else {
        budget.left.get()
    })
}
