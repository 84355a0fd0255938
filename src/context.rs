//! The coroutine currently running on this thread, and the poll it runs in: shared
//! with every other copy of the crate in the program, and with C code
//! (`include/stackful.h`).
//!
//! Both layers use this module: the futures layer (`future.rs`: `wait`, the polls of
//! futures and streams) publishes and reads the context; the fiber core (`fiber.rs`)
//! records at every resume, and compares at every `yeet`, the poll state derived from
//! it ([`poll_state`]).
//!
//! # What is shared, and how
//!
//! Every `StackfulFuture`/`StackfulStream` poll (and the drop of a suspended one)
//! publishes a [`SharedContext`] for as long as it runs: it stores its address in this
//! thread's [`Slot`], whose address `stackful_context_slot()` returns, next to the
//! poll state ([`poll_state`]: which coroutine's poll, and whether a `wait` polls
//! its future inside it, [`WAIT_POLLING`]). That C function is defined in `csrc/context.c` by every copy of the crate (weak, except
//! on Windows), so the linker keeps one, and all copies (and C code) see the same
//! slot: a `wait` of any copy, inside a
//! coroutine of any other, finds the poll running it, polls its future with that
//! poll's task context, and suspends the coroutine through the publisher's
//! [`Ops::suspend_rust`] (only the publisher knows its coroutine's stack and switch
//! code). Everything else (the switch code, stacks, generators) stays private to
//! each copy (build.rs renames the assembly's symbols per copy).
//!
//! The struct is `#[repr(C)]` and versioned (ABI version [`VERSION`]): `version`
//! and `size` first; later versions only append fields (here and in [`Ops`]); a
//! reader uses a field of version N only if `version >= N`. The rules and the C view
//! are in `include/stackful.h`, which must match this module.
//!
//! # Adding to the ABI (version 3 and later)
//!
//! To add what other copies or C code must see (version 2 added the yield budget
//! operations, [`Ops::charge`] and [`Ops::should_yield`]): bump
//! [`VERSION`]; append the new fields at the end of [`SharedContext`] (after
//! `thread_was_panicking`) and/or the new operations at the end of [`Ops`] (after
//! `wait_callback`), each documented as "version N"; mirror them, in the same order
//! and with the same C types, in `include/stackful.h` with an "added in version N"
//! comment; and read them from a context of another copy only if its `version` is at
//! least N (an older copy's context ends before them: its `size` says where). A
//! context is valid if its version is at least 1 and its size at least `SIZE_V1`,
//! never compare with the size of the current struct.
//! Existing fields never change, move or go away; a change that cannot be an
//! addition needs a new slot symbol instead of `stackful_context_slot`.
//!
//! # Thread-locals
//!
//! A coroutine may suspend on one thread and be resumed on another (`SendFuture`),
//! and LLVM may reuse a thread-local's address computed before a context switch
//! (llvm/llvm-project#98479). The slot is only reached through [`slot`] (and
//! [`poll_state`]), which compute the address on the thread that runs them: on Linux
//! x86_64 and aarch64 an `asm!` block that reads the thread pointer and the
//! thread-local `stackful_slot_tls` (module `tls`; `stackful_context_slot()` returns
//! its address), elsewhere the opaque call `stackful_context_slot()`. Neither can be
//! merged with another or moved across a switch, so both may be inlined anywhere,
//! also into functions that switch. Nothing keeps the address across anything that
//! may switch (`wait` keeps it while it polls its future, which cannot move the
//! coroutine).
//!
//! Copies of the crate share `Context` pointers and call each other's operations
//! with the Rust "C-unwind" ABI: they are built by one compiler into one program.
//! Copies in separately built shared libraries do not see each other (the symbol is
//! not exported from a Rust `cdylib`).

use crate::budget::{Limit, PollBudget};
use crate::fiber;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

/// The ABI version of [`SharedContext`] and [`Ops`] that this copy implements.
pub(crate) const VERSION: u32 = 2;

/// The size of the fields of version 1 (`STACKFUL_CONTEXT_SIZE_V1`): what every
/// valid context has at least, whatever its version. Never changes.
const SIZE_V1: usize = 2 * 4 + 3 * std::mem::size_of::<usize>();
// While the struct has only the fields of version 1.
const _: () = assert!(SIZE_V1 == std::mem::size_of::<SharedContext>());

/// `STACKFUL_OK` and the error codes of `include/stackful.h`.
const OK: c_int = 0;
const BUSY: c_int = -2;
const CANCELLED: c_int = -3;

/// `stackful_start_fn` and `stackful_complete_fn` of `include/stackful.h`.
type CompleteFn = unsafe extern "C" fn(token: *mut c_void);
type StartFn = unsafe extern "C" fn(user: *mut c_void, complete: CompleteFn, token: *mut c_void);

/// What a copy of the crate publishes for the poll (or drop) of one of its
/// coroutines: `struct stackful_context` of `include/stackful.h`.
#[repr(C)]
pub(crate) struct SharedContext {
    /// Version 1: the highest ABI version the publisher implements.
    version: u32,
    /// Version 1: `size_of::<SharedContext>()` of the publisher.
    size: u32,
    /// Version 1: the publisher's operations.
    ops: &'static Ops,
    /// Version 1: the task context of this poll; null while the coroutine is being
    /// dropped. Shared only between copies of this crate, which are built by one
    /// compiler into one program (one `std`), so the type is the same for all: a
    /// `*mut Context<'static>` (untyped here only because `Context` is not an FFI
    /// type).
    cx: *mut c_void,
    /// Version 1: non-zero if the thread was already panicking when the poll began
    /// (see [`coroutine_is_unwinding`]). Set by [`EnterFrame::new`]: a poll made by a
    /// `wait` of an outer coroutine inherits the outer poll's flag, since waiting
    /// there suspends the whole chain; any other poll reads the thread's state.
    thread_was_panicking: Cell<usize>,
}

/// `struct stackful_context_ops` of `include/stackful.h`: one table per copy.
#[repr(C)]
pub(crate) struct Ops {
    /// Version 1: suspends the coroutine until it is polled again; unwinds with the
    /// publisher's cancellation payload if it is dropped meanwhile. Rust only.
    suspend_rust: unsafe extern "C-unwind" fn(ctx: *const SharedContext),
    /// Version 1 (C): wakes the task and suspends once.
    yield_now: unsafe extern "C" fn(ctx: *const SharedContext) -> c_int,
    /// Version 1 (C): runs a callback-based operation to completion.
    wait_callback:
        unsafe extern "C" fn(ctx: *const SharedContext, start: StartFn, user: *mut c_void) -> c_int,
    /// Version 2: charges `units` to the yield budget of this poll (`stackful::budget`,
    /// as `budget::charge`); 1 if the coroutine should yield now (its budget is used
    /// up and it can suspend here), else 0 (where it cannot suspend, a used-up budget
    /// is refilled). Never suspends.
    charge: unsafe extern "C" fn(ctx: *const SharedContext, units: usize) -> c_int,
    /// Version 2: 1 if the budget of this poll is used up and the coroutine can
    /// suspend here (as `budget::should_yield`), else 0.
    should_yield: unsafe extern "C" fn(ctx: *const SharedContext) -> c_int,
}

/// This copy's operations.
static OPS: Ops = Ops {
    suspend_rust,
    yield_now: c_yield_now,
    wait_callback: c_wait_callback,
    charge: c_charge,
    should_yield: c_should_yield,
};

/// The context this copy publishes: the shared part first (other copies see only
/// that), then what only this copy reads.
#[repr(C)]
pub(crate) struct PollFrame {
    shared: SharedContext,
    /// LINK slot of the coroutine being polled.
    link: *mut usize,
    /// The yield budget of this poll (`crate::budget`). Private to this copy: other
    /// copies and C code charge it through [`Ops::charge`] (version 2).
    budget: PollBudget,
}

impl PollFrame {
    /// A frame for a poll of the coroutine of `link` with `cx`, or for its drop
    /// (`cx` null).
    #[inline(always)]
    pub(crate) fn new(cx: *mut Context<'_>, link: *mut usize, budget: Limit) -> Self {
        PollFrame {
            shared: SharedContext {
                version: VERSION,
                size: std::mem::size_of::<SharedContext>() as u32,
                ops: &OPS,
                cx: cx.cast::<c_void>(),
                thread_was_panicking: Cell::new(0),
            },
            link,
            budget: PollBudget::new(budget),
        }
    }
}

impl PollFrame {
    /// The poll state ([`poll_state`]) that [`EnterFrame::new`] publishes for this
    /// frame: the LINK slot of its coroutine.
    #[inline(always)]
    pub(crate) fn poll_state(&self) -> usize {
        self.link as usize
    }
}

/// Whose yield budget the code running on this thread charges.
#[derive(Clone, Copy)]
pub(crate) enum CurrentBudget {
    /// Outside any poll, or in a poll of a copy too old to have budgets (version 1).
    None,
    /// The budget of a poll of this copy.
    Ours(*const PollBudget),
    /// A poll of another copy (version 2 or later): charged through its operations
    /// ([`charge_foreign`], [`should_yield_foreign`]).
    Foreign(*const SharedContext),
}

/// The yield budget of the innermost poll on this thread. Only for the
/// `#[inline(never)]` functions of `crate::budget`, which use it at once and touch no
/// thread-local after anything that may suspend.
#[inline(always)]
pub(crate) fn current_budget() -> CurrentBudget {
    let ctx = current();
    // SAFETY: a published context lives as long as it is in the slot; one published by
    // this copy is the first field of a `PollFrame` (`repr(C)`).
    unsafe {
        if ctx.is_null() {
            CurrentBudget::None
        } else if (*ctx).is_ours() {
            CurrentBudget::Ours(&(*ctx.cast::<PollFrame>()).budget)
        } else if (*ctx).version >= 2 {
            CurrentBudget::Foreign(ctx)
        } else {
            CurrentBudget::None
        }
    }
}

/// [`Ops::charge`] of another copy's context: whether its coroutine should yield now.
///
/// # Safety
/// `ctx` is the current context, of version 2 or later ([`CurrentBudget::Foreign`]).
pub(crate) unsafe fn charge_foreign(ctx: *const SharedContext, units: usize) -> bool {
    // SAFETY: per the caller; version 2 has the operation.
    unsafe { ((*ctx).ops.charge)(ctx, units) != 0 }
}

/// [`Ops::should_yield`] of another copy's context.
///
/// # Safety
/// As for [`charge_foreign`].
pub(crate) unsafe fn should_yield_foreign(ctx: *const SharedContext) -> bool {
    // SAFETY: per the caller; version 2 has the operation.
    unsafe { ((*ctx).ops.should_yield)(ctx) != 0 }
}

/// [`Ops::charge`] of this copy.
///
/// # Safety
/// `ctx` is a context this copy published, current on this thread.
unsafe extern "C" fn c_charge(ctx: *const SharedContext, units: usize) -> c_int {
    // SAFETY: per the caller, the shared part of a live `PollFrame` of this copy.
    unsafe { crate::budget::charge_budget(&(*ctx.cast::<PollFrame>()).budget, units) as c_int }
}

/// [`Ops::should_yield`] of this copy.
///
/// # Safety
/// As for [`c_charge`].
unsafe extern "C" fn c_should_yield(ctx: *const SharedContext) -> c_int {
    // SAFETY: as in `c_charge`.
    unsafe { crate::budget::should_yield_budget(&(*ctx.cast::<PollFrame>()).budget) as c_int }
}

/// Whether a budget yield may suspend the coroutine running here: inside the poll of
/// a coroutine future or stream (of any copy), not while it is being dropped, not
/// inside the poll of a future that a `wait` is polling, and not while the thread is
/// panicking. A coroutine suspended halfway through unwinding a panic of its own
/// could not be dropped later (a second unwind through the same frames aborts), and
/// std only says *whether* the thread is panicking, not how many panics are in flight:
/// in a coroutine polled while the thread was already panicking (from a destructor
/// during an unrelated unwind) a panic of its own would not show. A budget yield is
/// only a courtesy, so while the thread panics it refills instead.
#[inline(never)]
pub(crate) fn can_suspend_here() -> bool {
    let slot = slot();
    // SAFETY: the slot is valid for this call; a published context lives as long as
    // it is in the slot.
    unsafe {
        let ctx = (*slot).context;
        !ctx.is_null()
            && !(*ctx).cx.is_null()
            && (*slot).state & WAIT_POLLING == 0
            && !std::thread::panicking()
    }
}

/// This thread's slot (`struct stackful_slot` of `include/stackful.h`): what every
/// copy of the crate reads and writes.
#[repr(C)]
pub(crate) struct Slot {
    /// The context of the innermost poll (or drop) of a coroutine on this thread,
    /// null outside any.
    pub(crate) context: *const SharedContext,
    /// Which poll is in progress on this thread (see [`poll_state`]).
    pub(crate) state: usize,
}

// With the inline path the function is only for C code and other copies.
#[cfg_attr(stackful_inline_tls, allow(dead_code))]
extern "C" {
    /// csrc/context.c: the address of this thread's slot. Never keep it across a
    /// possible switch (see the module docs).
    fn stackful_context_slot() -> *mut Slot;
}

/// This thread's slot. Use it at once: never keep it across anything that may
/// suspend the calling coroutine (it may be resumed on another thread).
#[inline(always)]
pub(crate) fn slot() -> *mut Slot {
    #[cfg(stackful_inline_tls)]
    return tls::slot();
    // SAFETY: a C function without preconditions; it returns the address of a live
    // thread-local of the calling thread.
    #[cfg(not(stackful_inline_tls))]
    unsafe {
        stackful_context_slot()
    }
}

/// The slot read inline (Linux on x86_64 and aarch64): `stackful_slot_tls`, the
/// thread-local that `stackful_context_slot()` returns the address of there
/// (csrc/context.c), addressed in the initial-exec model (thread pointer plus a
/// load-time offset from the GOT, which the linker turns into a constant in an
/// executable).
///
/// Migration safety (see the module docs): each `asm!` block computes the address
/// from the thread pointer of the thread running it, and is not `pure`, so the
/// compiler neither merges two of them nor moves one across the switch (an `asm!`
/// block with side effects, too). Only the value returned is kept, and the callers
/// use it before anything that may switch, as with the C function.
#[cfg(stackful_inline_tls)]
mod tls {
    use super::Slot;
    use std::arch::asm;

    /// The address of this thread's slot.
    #[inline(always)]
    pub(super) fn slot() -> *mut Slot {
        let p: *mut Slot;
        // SAFETY: reads the GOT entry of a thread-local that csrc/context.c defines
        // and the thread pointer; writes only `p`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            asm!(
                "mov {p}, qword ptr [rip + stackful_slot_tls@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(nostack, readonly),
            );
        }
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            asm!(
                "mrs {t}, tpidr_el0",
                "adrp {p}, :gottprel:stackful_slot_tls",
                "ldr {p}, [{p}, #:gottprel_lo12:stackful_slot_tls]",
                "add {p}, {p}, {t}",
                p = out(reg) p,
                t = out(reg) _,
                options(nostack, readonly, preserves_flags),
            );
        }
        p
    }

    /// This thread's [`Slot::state`](super::Slot) (one load on x86_64).
    #[inline(always)]
    pub(super) fn state() -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let state: usize;
            // SAFETY: as for `slot`; reads the slot's second word.
            unsafe {
                asm!(
                    "mov {s}, qword ptr [rip + stackful_slot_tls@GOTTPOFF]",
                    "mov {s}, qword ptr fs:[{s} + 8]",
                    s = out(reg) state,
                    options(nostack, readonly, preserves_flags),
                );
            }
            state
        }
        // SAFETY: the address of this thread's live slot, used at once.
        #[cfg(not(target_arch = "x86_64"))]
        unsafe {
            (*slot()).state
        }
    }
}

/// Bit 0 of [`Slot::state`]: a `wait` (of any copy) polls its future inside the
/// current poll (which must then not suspend its coroutine).
pub(crate) const WAIT_POLLING: usize = 1;

/// Which poll is in progress on this thread, as one word ([`Slot::state`]): an
/// address that identifies the coroutine whose poll (or drop) is current, the same
/// at every poll of it (its publisher's choice, word-aligned: this copy uses the
/// coroutine's LINK slot), with [`WAIT_POLLING`] set while a `wait` polls its future
/// inside that poll; 0 outside any poll. A coroutine records it at every resume and
/// compares it at every `yeet`: it may only suspend in the state it was resumed in,
/// otherwise it would leave a poll half-done (see
/// `fiber::poll_in_progress_since_resume`). A generator that `wait` suspended with
/// the coroutine of a future is resumed, with it, in a later poll of the same
/// coroutine: same state. (Two coroutines on different stacks never share an
/// identity.)
#[inline(always)]
pub(crate) fn poll_state() -> usize {
    #[cfg(stackful_inline_tls)]
    return tls::state();
    // SAFETY: the slot is valid and initialised.
    #[cfg(not(stackful_inline_tls))]
    unsafe {
        (*slot()).state
    }
}

/// The context of the innermost poll (or drop) of a coroutine, of any copy, running
/// on this thread; null outside any.
#[inline(always)]
pub(crate) fn current() -> *const SharedContext {
    // SAFETY: the slot is valid and initialised.
    unsafe { (*slot()).context }
}

/// Makes a frame current for its lifetime; restores the previous one on drop, also
/// when a panic propagates.
pub(crate) struct EnterFrame<'f> {
    /// The slot before.
    outer: *const SharedContext,
    outer_state: usize,
    frame: PhantomData<&'f PollFrame>,
}

impl<'f> EnterFrame<'f> {
    /// Publishes `frame` until the returned guard, which borrows it, is dropped.
    ///
    /// Inline (into the poll, which then switches): the slot is read through
    /// [`slot`], which computes the address afresh where it runs, and std's panic
    /// count (a thread-local on its slow path) only in the out-of-line
    /// [`thread_panicking`].
    #[inline(always)]
    pub(crate) fn new(frame: &'f PollFrame) -> Self {
        let slot = slot();
        // SAFETY: the slot is valid for this call (nothing here switches).
        let (outer, outer_state) = unsafe { ((*slot).context, (*slot).state) };
        // A poll that a `wait` makes (of this coroutine, or of a future that polls
        // it) is part of the outer poll: if this coroutine waits, the outer chain
        // suspends with it, so it inherits the outer poll's flag. Any other poll (by
        // hand, or by an executor run from a destructor) stands alone: its Pending
        // suspends no one else.
        let panicking = if outer_state & WAIT_POLLING != 0 {
            // WAIT_POLLING is only ever set (by a `wait` of any copy) in the state of
            // a published poll, so there is an outer context.
            debug_assert!(!outer.is_null());
            // SAFETY: the outer context belongs to the poll that runs the coroutine
            // we are on; it lives on that caller's stack, blocked below us.
            unsafe { (*outer).thread_was_panicking.get() }
        } else {
            thread_panicking()
        };
        frame.shared.thread_was_panicking.set(panicking);
        // SAFETY: as above; the guard borrows the frame, and removes it before the
        // frame can move or die. (A guard that is leaked instead leaves a dangling
        // pointer in the slot: the guards are private, and the only users,
        // `poll_coroutine` and `cancel_coroutine`, drop them on every path.)
        unsafe {
            (*slot).context = &frame.shared;
            (*slot).state = frame.poll_state();
        }
        EnterFrame {
            outer,
            outer_state,
            frame: PhantomData,
        }
    }
}

/// `std::thread::panicking()`, out of line: it reads a thread-local of std on its
/// slow path, whose address must not be computed in a function that switches.
#[inline(never)]
fn thread_panicking() -> usize {
    std::thread::panicking() as usize
}

impl Drop for EnterFrame<'_> {
    // Inline, as `new`: the slot's address is computed afresh here.
    #[inline(always)]
    fn drop(&mut self) {
        let slot = slot();
        // SAFETY: the slot is valid for this call.
        unsafe {
            (*slot).context = self.outer;
            (*slot).state = self.outer_state;
        }
    }
}

impl SharedContext {
    /// Whether this context was published by this copy (then it is a [`PollFrame`]).
    #[inline(always)]
    fn is_ours(&self) -> bool {
        ptr::eq(self.ops, &OPS)
    }

    /// The task context of the poll, or null while the coroutine is being dropped.
    #[inline(always)]
    pub(crate) fn task_context(&self) -> *mut Context<'static> {
        self.cx.cast::<Context<'static>>()
    }

    /// Checks a context published by another copy: a version and a size that this
    /// copy can read (out of line; a conforming copy always passes).
    #[cold]
    #[inline(never)]
    pub(crate) fn check_foreign(&self) {
        if self.version < 1 || (self.size as usize) < SIZE_V1 {
            fiber::abort(&format!(
                "the coroutine context published by another copy of stackful is invalid \
                 (version {}, size {}; any version has at least {SIZE_V1} bytes)",
                self.version, self.size,
            ));
        }
    }

    /// Suspends the coroutine of this poll until it is polled again (`wait`'s
    /// pending path); unwinds if it is dropped meanwhile.
    ///
    /// # Safety
    /// `self` is the current context, its coroutine runs (we are on it or on a stack
    /// it resumed), it is not being dropped (`cx` is not null), and no `wait` polls a
    /// future in this poll (no [`WAIT_POLLING`]).
    #[inline(always)]
    pub(crate) unsafe fn suspend(&self) {
        if self.is_ours() {
            // SAFETY: ours, so a PollFrame (the shared part is its first field), whose
            // `link` is the LINK slot of the running coroutine of this poll.
            unsafe {
                let frame = &*(self as *const SharedContext as *const PollFrame);
                fiber::suspend(frame.link, fiber::PENDING);
            }
        } else {
            // SAFETY: forwarded; the publisher's operation for its own context.
            unsafe { self.suspend_foreign() }
        }
    }

    /// [`suspend`](Self::suspend) of another copy's coroutine.
    ///
    /// # Safety
    /// As for [`suspend`](Self::suspend).
    #[inline(never)]
    unsafe fn suspend_foreign(&self) {
        self.check_foreign();
        // SAFETY: per the caller; the publisher's operation for its own context.
        unsafe { (self.ops.suspend_rust)(self) }
    }
}

/// Whether the coroutine of the poll running on this thread is unwinding: it is being
/// dropped, or a panic of its own, or of a coroutine of its chain (one that started
/// since the poll of the chain began), is propagating through it. False outside any
/// poll, and when only the thread that polls it is panicking (a coroutine polled from
/// a destructor during an unrelated unwind may wait as usual).
///
/// One case is not seen: a coroutine polled while the thread was already panicking
/// that then panics itself. std says only *whether* the thread is panicking, not how
/// many panics are in flight, so that second panic does not show, and the coroutine
/// may wait halfway through it (dropping it while it is suspended there aborts, as
/// for any coroutine suspended mid-unwind).
#[cfg(any(feature = "futures-io", feature = "tokio"))]
#[inline(never)]
pub(crate) fn coroutine_is_unwinding() -> bool {
    let ctx = current();
    if ctx.is_null() {
        return false;
    }
    // SAFETY: a published context lives as long as it is in the slot.
    let ctx = unsafe { &*ctx };
    ctx.cx.is_null() || (std::thread::panicking() && ctx.thread_was_panicking.get() == 0)
}

/// [`Ops::suspend_rust`] of this copy.
///
/// # Safety
/// `ctx` is a context this copy published (the ops table is per copy), current, and
/// as for [`SharedContext::suspend`].
unsafe extern "C-unwind" fn suspend_rust(ctx: *const SharedContext) {
    // SAFETY: per the caller: ours, so a PollFrame whose `link` is the LINK slot of
    // the running coroutine of this poll.
    unsafe {
        let frame = &*(ctx as *const PollFrame);
        fiber::suspend(frame.link, fiber::PENDING);
    }
}

/// Suspends the coroutine of the current context, which this copy published, until
/// it is polled again, for a C caller: `Err(CANCELLED)` instead of unwinding if it
/// is dropped meanwhile (the coroutine is then marked as cancelling: it never
/// suspends again). Checks first that it may suspend (`cx` not null, no `wait`
/// polling), and wakes its task first if `wake`.
///
/// # Safety
/// `ctx` is the current context and this copy published it; the caller runs on its
/// coroutine (or a stack it resumed).
unsafe fn c_suspend(ctx: *const SharedContext, before: impl FnOnce(&Waker)) -> c_int {
    // SAFETY: per the caller.
    let frame = unsafe { &*(ctx as *const PollFrame) };
    if frame.shared.cx.is_null() {
        return CANCELLED;
    }
    if poll_state() & WAIT_POLLING != 0 {
        return BUSY;
    }
    // SAFETY: `cx` is the context of the poll running right now (not null).
    before(unsafe { (*frame.shared.task_context()).waker() });
    // SAFETY: `link` is the LINK slot of the running coroutine of this poll.
    match unsafe { fiber::suspend_or_cancelled(frame.link, fiber::PENDING) } {
        Some(_) => OK,
        None => CANCELLED,
    }
}

/// [`Ops::yield_now`] of this copy.
///
/// # Safety
/// `ctx` is the current context and this copy published it (the C header takes it
/// from the slot and calls the publisher's table).
unsafe extern "C" fn c_yield_now(ctx: *const SharedContext) -> c_int {
    // A panic must not leave through the C ABI (it would abort without a message).
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded.
        unsafe { c_suspend(ctx, Waker::wake_by_ref) }
    }))
    .unwrap_or_else(|_| fiber::abort("a panic in stackful_yield_now"))
}

/// The state of a `stackful_wait_callback` operation, shared with its completion
/// callback (which may run on any thread, before or after the waiter is gone).
struct Callback {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// The `stackful_complete_fn` handed to C.
///
/// # Safety
/// `token` is the token handed to `start` with it, and this is its only call.
unsafe extern "C" fn complete(token: *mut c_void) {
    // SAFETY: per the caller, the reference that `c_wait_callback` gave up for it.
    let state = unsafe { Arc::from_raw(token as *const Callback) };
    state.done.store(true, Ordering::Release);
    let waker = state.waker.lock().map(|mut w| w.take()).unwrap_or(None);
    if let Some(waker) = waker {
        // A panicking waker must not unwind into C.
        if std::panic::catch_unwind(move || waker.wake()).is_err() {
            fiber::abort("a waker panicked in stackful's completion callback");
        }
    }
}

/// [`Ops::wait_callback`] of this copy.
///
/// # Safety
/// As for [`c_yield_now`]; `start` follows `stackful_start_fn`.
unsafe extern "C" fn c_wait_callback(
    ctx: *const SharedContext,
    start: StartFn,
    user: *mut c_void,
) -> c_int {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the caller.
        let shared = unsafe { &*ctx };
        if shared.cx.is_null() {
            return CANCELLED;
        }
        if poll_state() & WAIT_POLLING != 0 {
            return BUSY;
        }
        let state = Arc::new(Callback {
            done: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let token = Arc::into_raw(state.clone()) as *mut c_void;
        // SAFETY: per `stackful_start_fn`: it calls `complete(token)` exactly once.
        unsafe { start(user, complete, token) };
        loop {
            if state.done.load(Ordering::Acquire) {
                return OK;
            }
            // Read again after every resume: a new poll published a new context
            // (ours: the coroutine is always polled by the copy that runs it).
            let ctx = current();
            // SAFETY: the current context is ours and we run on its coroutine; the
            // waker is registered before `done` is checked again, so a completion in
            // between is not lost.
            let code = unsafe {
                c_suspend(ctx, |waker| {
                    if let Ok(mut slot) = state.waker.lock() {
                        *slot = Some(waker.clone());
                    }
                    if state.done.load(Ordering::Acquire) {
                        waker.wake_by_ref();
                    }
                })
            };
            if code != OK {
                return code;
            }
        }
    }))
    .unwrap_or_else(|_| fiber::abort("a panic in stackful_wait_callback"))
}
