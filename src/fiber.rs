//! The one unsafe core: a coroutine is a stack, a saved stack pointer and a state.
//!
//! Everything typed (generators, futures) is built on the four operations here:
//! [`Fiber::new`] moves a closure onto a fresh stack, [`Fiber::resume`] runs the
//! coroutine until it [`suspend`]s or finishes, and dropping a suspended fiber after
//! [`Fiber::resume`]-ing it with [`CANCEL`] unwinds it.
//!
//! # Protocol
//!
//! Values never travel in registers: each side passes a pointer to a value on its
//! own stack, which stays valid because that side is blocked in the switch until the
//! other side switches back.
//!
//! * resumer -> coroutine: a pointer to the resume value (typed by the layer above),
//!   or a token: [`CANCEL`] (0) to make the coroutine unwind, or `TRACE` (1) to make
//!   it capture a backtrace of its suspension point (see "Backtrace of a suspended
//!   coroutine" below). No resume value's pointer is a token: a real value has a
//!   mapped address far above 1, and a zero-sized value is passed as a fixed
//!   address aligned for any type, `1 << (usize::BITS - 1)` (`StackfulGenerator::resume_raw`), never
//!   as a dangling pointer (which would equal its alignment, possibly 1). So
//!   [`suspend`] tells every token apart from a resume value with one compare
//!   (`arg <= TOKEN_MAX`), the same instruction count as the former `arg == CANCEL`.
//! * coroutine -> resumer: one word that the resumer decodes without a load (see
//!   [`decode`]): a pointer to a yielded value (in a [`Slot`], so bit 0 is clear),
//!   [`PENDING`] (`wait` is waiting for a future), or for the last switch a pointer
//!   to a [`Message`] (`Return` or `Panic`, with a pointer to the value) plus 1. The
//!   resumer takes the value with `ptr::read`; the coroutine never touches it again.
//!
//! # Backtrace of a suspended coroutine
//!
//! [`trace_suspended`] resumes a suspended coroutine with the `TRACE` token after
//! writing, into the poll-state word below LINK (`link - 2`, see the layout), the
//! address of an uninitialised `Option<Backtrace>` on the tracer's stack. The
//! coroutine, still inside [`suspend`], sees the token (the cold path of the one
//! compare), writes `Some(Backtrace::force_capture())` there (`None` if capturing
//! panicked), returns to the loop in [`suspend`] and switches out again from the very
//! same instruction of the very same frame, with the very same word: so it is saved
//! at the very same stack pointer as before (the tracer checks this, and aborts if
//! not), and the owner's `Fiber::sp` stays right although the tracer never touched
//! it. The tracer then restores the poll-state word, so the coroutine's state is
//! exactly as before; it ignores the repeated word (a yielded value the owner already
//! took, or [`PENDING`]). Nothing else runs on the coroutine during the trace: no
//! user code, no crate thread-local; the trace (whose unwinder follows LINK, as ever)
//! shows the coroutine's frames and then the tracer's. The next real resume may be
//! [`CANCEL`] as usual. Capturing runs where the coroutine is saved: it needs some
//! free stack there (a few KiB for the unwinder); a coroutine saved with less than
//! [`TRACE_STACK_RESERVE`] free below its save point has no trace (on a custom stack
//! without a guard page the capture would write below the stack). When the save
//! point is on the stack of a generator the coroutine runs, the free space there is
//! looked up in the crate's records of stacks (`stack::free_below`); a save point on
//! a stack they do not know gets no trace. Not on wasm32 (no native unwinder; the
//! token is never sent there).
//!
//! # Stack layout
//!
//! ```text
//! stack.top()   ->  +---------------------------+
//!                   | closure F (until started) |  aligned for F
//! fiber top     ->  +---------------------------+  16-aligned, handed to `enter`
//!                   | reserved by asm/*.S:      |
//!                   |  top-8  fake return addr  |
//!                   |  top-16 LINK              |  <- `link`
//!                   |  top-24 flags (Rust)      |  <- `link - 1`
//!                   |  top-32 resumed-by (Rust) |  <- `link - 2`
//!                   +---------------------------+
//!                   | entry frame, user frames  |
//!                   |            ...            |
//! stack.bottom() -> +---------------------------+
//! ```
//!
//! On wasm32 the reserved area holds the coroutine record of `asm/wasm32.s` instead
//! (`link` = fiber top - 40, the same two Rust words below it), and the bottom of the
//! stack holds the coroutine's Asyncify save buffer (`arch::init_stack`).
//!
//! Under AddressSanitizer (`cfg(stackful_asan)`, set by build.rs) the fiber top is
//! `crate::asan::RESERVED` bytes lower: the words between it and the closure keep
//! the stack bounds that the switches announce to ASan (src/asan.rs).

use crate::arch::{
    self, EntryFn, FLAGS_BELOW_LINK, LINK_BELOW_TOP, RESUMER_BELOW_LINK, TOP_RESERVED,
};
use crate::stack::{StackStorage, MIN_USABLE_STACK};
use std::any::Any;
use std::backtrace::Backtrace;
use std::io;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Closures larger than this are boxed (as `Box<dyn FnOnce>`, which is called in place)
/// instead of being moved onto the coroutine stack: moving a large closure through
/// the layers of calls that start a coroutine copies it several times in debug builds,
/// which would eat a small stack.
pub(crate) const INLINE_CLOSURE_LIMIT: usize = 1024;

/// Resume token that makes the coroutine unwind from its suspension point.
pub(crate) const CANCEL: usize = 0;
/// Resume token that makes the coroutine capture a backtrace of its suspension point
/// and suspend again where it was (see the module docs).
#[cfg(not(target_arch = "wasm32"))]
const TRACE: usize = 1;
/// The largest resume token: every resume argument above it is a pointer to a resume
/// value (see the module docs).
pub(crate) const TOKEN_MAX: usize = 1;
/// Flag bit: the coroutine has been resumed with [`CANCEL`] and is unwinding.
const CANCELLING: usize = 1;

/// The poll state recorded for a coroutine that is being cancelled: no poll state
/// equals it (they are 0 or a word-aligned address, plus at most bit 0).
const NO_POLL_STATE: usize = usize::MAX;

/// Number of stacks leaked because a suspended coroutine could not be unwound.
static LEAKED_STACKS: AtomicUsize = AtomicUsize::new(0);

/// How many coroutine stacks this process has leaked (never freed) because a
/// suspended coroutine was dropped when it could not be unwound (with
/// `panic = "abort"`). See the crate docs, "Safety and failure modes".
pub fn leaked_stacks() -> usize {
    LEAKED_STACKS.load(Ordering::Relaxed)
}

/// The private payload a cancelled coroutine unwinds with.
pub(crate) struct Cancelled;

/// How a coroutine ended, in its last [`Message`].
#[repr(usize)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `payload` points at the closure's return value.
    Return,
    /// `payload` points at a `Box<dyn Any + Send>` panic payload.
    Panic,
}

/// What a finishing coroutine hands to its resumer (a pointer to it, plus
/// [`FINAL_TAG`]). Aligned to a word, so bit 0 of its address is free for the tag.
#[repr(C)]
struct Message {
    kind: Kind,
    payload: *mut u8,
}

/// The word of a `wait` suspension (`wait` is waiting for a pending future; futures
/// and streams only): no value's address is 0.
pub(crate) const PENDING: usize = 0;
/// Bit 0 of a final word (the address of a [`Message`] plus 1); clear in the
/// address of a yielded value and in [`PENDING`], so one test tells the last switch
/// apart from the others.
const FINAL_TAG: usize = 1;

/// Where a suspending coroutine keeps the value it yields: aligned to at least 2, so
/// that bit 0 of its address is clear and tells a yield apart from the other words.
#[repr(C, align(2))]
pub(crate) struct Slot<T>(pub ManuallyDrop<T>);

/// A decoded coroutine word (see the module docs).
pub(crate) enum Event {
    /// Points at the yielded value (the resumer takes it).
    Yield(*mut u8),
    /// `wait` is waiting for a pending future.
    Pending,
    /// Points at the closure's return value (the resumer takes it).
    Return(*mut u8),
    /// Points at the `Box<dyn Any + Send>` panic payload (the resumer takes it).
    Panic(*mut u8),
}

/// Whether a word from [`Fiber::resume`] is a suspension, i.e. a yield or
/// [`PENDING`] (the hot path: one test, no load).
#[inline(always)]
pub(crate) fn is_suspension(word: usize) -> bool {
    word & FINAL_TAG == 0
}

/// Decodes a word returned by [`Fiber::resume`].
///
/// # Safety
/// `word` was just returned by [`Fiber::resume`] (a final message is still alive).
#[inline]
pub(crate) unsafe fn decode(word: usize) -> Event {
    if word == PENDING {
        Event::Pending
    } else if is_suspension(word) {
        Event::Yield(word as *mut u8)
    } else {
        // SAFETY: per the caller, a tagged word is the address of the live final
        // Message, plus the tag.
        let msg = unsafe { &*((word - FINAL_TAG) as *const Message) };
        match msg.kind {
            Kind::Return => Event::Return(msg.payload),
            Kind::Panic => Event::Panic(msg.payload),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// Not started: the closure sits at the top of the stack.
    Fresh,
    /// Suspended at `sp`.
    Suspended,
    /// Running (somewhere up the current call chain).
    Running,
    /// Finished by returning.
    Returned,
    /// Finished by panicking (or by being cancelled).
    Panicked,
}

/// Arguments of the first entry, on the resumer's stack.
struct Start {
    closure: *mut u8,
    arg: usize,
}

pub(crate) struct Fiber<'a> {
    /// Saved stack pointer while `Suspended`, 0 otherwise: `sp != 0` is the state
    /// `Suspended` (one compare on the resume path).
    sp: usize,
    /// The LINK slot at the top of the stack.
    link: *mut usize,
    /// The state while `sp` is 0: `Fresh`, `Running` (set by the first entry and kept
    /// while the coroutine suspends and resumes), `Returned` or `Panicked`.
    state: State,
    /// Monomorphised entry for the closure type.
    entry: EntryFn,
    /// The closure (on the stack itself) while `Fresh`.
    closure: *mut u8,
    /// Drops the closure in place if the fiber is dropped before it started.
    drop_closure: unsafe fn(*mut u8),
    stack: ManuallyDrop<StackStorage<'a>>,
    /// What dropping the fiber does when it cannot be unwound (see [`OnLeak`]).
    on_leak: OnLeak,
    /// The coroutine's entry in the registry (see `crate::registry`), freed by drop.
    #[cfg(feature = "registry")]
    registry_entry: *const crate::registry::Entry,
    /// The closure may borrow for 'a; the fiber is not Send (thread-locals on its stack).
    _marker: PhantomData<(&'a (), *mut ())>,
}

/// What to do with a coroutine that is dropped while it is suspended and cannot be
/// unwound (`panic = "abort"`), or while it is still running (its resumer was leaked):
/// its stack must stay valid forever, since values on it may be pinned and borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OnLeak {
    /// Leak the stack (and count it in [`leaked_stacks`]). Sound only when nothing the
    /// coroutine can reach ends with the borrow of the fiber: its closure, the values
    /// that flow into it and its stack are `'static` (the safe constructors' bounds).
    Leak,
    /// Abort the process: the coroutine borrows from its creator (a scoped coroutine,
    /// or one made by an `unsafe` unchecked constructor), and once the fiber is gone
    /// those borrows end while frames on the leaked stack (or threads they started)
    /// may still use them.
    Abort,
}

impl<'a> Fiber<'a> {
    /// Moves `body` onto `stack`; it runs as `body(link, first_arg)` on the first resume.
    /// Closures too large to sit comfortably on the stack are boxed instead.
    ///
    /// # Safety
    /// Everything `body` borrows stays valid for `'a` (the typed layers get this from
    /// their `F: 'a` bounds; the bound is not spelled here because a boxed
    /// `dyn FnOnce(..) -> R + 'a` would then also need `R: 'a`). With
    /// [`OnLeak::Leak`], everything the coroutine can reach is `'static` (see
    /// [`OnLeak`]).
    #[cfg_attr(feature = "registry", track_caller)]
    pub(crate) unsafe fn new<F, T>(
        stack: StackStorage<'a>,
        on_leak: OnLeak,
        body: F,
    ) -> io::Result<Self>
    where
        F: FnOnce(*mut usize, usize) -> T,
    {
        // A closure that takes at most 1/8 of the smallest stack there is needs no look
        // at the stack (the common case, decided at compile time).
        let room = mem::size_of::<F>() + mem::align_of::<F>();
        if room > MIN_USABLE_STACK / 8 && room > (stack.top() - stack.bottom()) / 8 {
            Self::new_inner(stack, on_leak, Box::new(body))
        } else {
            Self::new_inner(stack, on_leak, body)
        }
    }

    #[cfg_attr(feature = "registry", track_caller)]
    fn new_inner<F, T>(stack: StackStorage<'a>, on_leak: OnLeak, body: F) -> io::Result<Self>
    where
        F: FnOnce(*mut usize, usize) -> T,
    {
        let top = stack.top();
        let bottom = stack.bottom();
        // Checked when the stack became a `StackStorage` (see `StackStorage::custom`).
        debug_assert!(top % 16 == 0 && top > bottom && top - bottom >= MIN_USABLE_STACK);
        let closure = (top - mem::size_of::<F>()) & !(mem::align_of::<F>() - 1);
        let fiber_top = closure & !15;
        // Under AddressSanitizer, words for it above the fiber top (src/asan.rs).
        #[cfg(stackful_asan)]
        let fiber_top = fiber_top - crate::asan::RESERVED;
        debug_assert!(fiber_top - TOP_RESERVED > bottom + 2048);
        let link = (fiber_top - LINK_BELOW_TOP) as *mut usize;
        // SAFETY: the reserved words below `fiber_top` and `bottom..fiber_top` lie inside
        // the stack, which is ours and unused.
        unsafe { arch::init_stack(link, fiber_top, bottom, stack.save_area(), entry::<F, T>)? };
        // SAFETY: `closure..top` and the reserved words below `fiber_top` lie inside the
        // stack (checked above: the closure takes at most 1/8 of it) and are unused.
        unsafe {
            ptr::write(closure as *mut F, body);
            link.sub(FLAGS_BELOW_LINK).write(0);
        }
        // SAFETY: `crate::asan::RESERVED` bytes above the fiber top are reserved (above).
        #[cfg(stackful_asan)]
        unsafe {
            crate::asan::init(link, bottom, top)
        };
        Ok(Fiber {
            sp: 0,
            link,
            state: State::Fresh,
            entry: entry::<F, T>,
            closure: closure as *mut u8,
            drop_closure: drop_closure::<F>,
            stack: ManuallyDrop::new(stack),
            on_leak,
            #[cfg(feature = "registry")]
            registry_entry: crate::registry::Entry::register(
                link,
                bottom,
                std::panic::Location::caller(),
            ),
            _marker: PhantomData,
        })
    }

    /// The coroutine's registry entry.
    #[cfg(feature = "registry")]
    #[inline(always)]
    pub(crate) fn entry(&self) -> &crate::registry::Entry {
        // SAFETY: registered by `new_inner`, freed only by our drop.
        unsafe { &*self.registry_entry }
    }

    #[inline]
    pub(crate) fn state(&self) -> State {
        if self.sp != 0 {
            State::Suspended
        } else {
            self.state
        }
    }

    /// What dropping the fiber does when it cannot be unwound.
    #[cfg(panic = "unwind")] // only cancellation asks
    pub(crate) fn on_leak(&self) -> OnLeak {
        self.on_leak
    }

    /// Whether the state is `Suspended` (what every resume but the first expects).
    #[inline(always)]
    pub(crate) fn is_suspended(&self) -> bool {
        self.sp != 0
    }

    /// The LINK slot; what [`suspend`] needs to leave this coroutine.
    #[inline]
    pub(crate) fn link(&self) -> *mut usize {
        self.link
    }

    /// Runs the coroutine until it suspends or finishes; returns its word (decode it
    /// with [`is_suspension`]/[`decode`]).
    ///
    /// # Safety
    /// The state is `Fresh` or `Suspended`; `arg` is what the coroutine expects (a
    /// pointer to a resume value that stays valid until it is read, or `CANCEL` when
    /// `Suspended`). The value the word points at is valid until the next resume.
    #[inline(always)]
    pub(crate) unsafe fn resume(&mut self, arg: usize) -> usize {
        // SAFETY: forwarded.
        unsafe { self.resume_in_state(arg, self.sp != 0, crate::context::poll_state()) }
    }

    /// [`resume`](Self::resume) for a caller that knows the poll state of the thread
    /// (`context::poll_state()`): the poll that has just published it.
    ///
    /// # Safety
    /// As for [`resume`](Self::resume), and `poll_state` is the thread's poll state.
    #[inline(always)]
    pub(crate) unsafe fn resume_in_poll_state(&mut self, arg: usize, poll_state: usize) -> usize {
        debug_assert_eq!(poll_state, crate::context::poll_state());
        // SAFETY: forwarded.
        unsafe { self.resume_in_state(arg, self.sp != 0, poll_state) }
    }

    /// [`resume`](Self::resume) for a caller that has just checked that the state is
    /// `Suspended` (saves the second test of `sp`).
    ///
    /// # Safety
    /// The state is `Suspended`; otherwise as for [`resume`](Self::resume).
    #[inline(always)]
    pub(crate) unsafe fn resume_suspended(&mut self, arg: usize) -> usize {
        debug_assert!(self.sp != 0);
        // SAFETY: forwarded.
        unsafe { self.resume_in_state(arg, true, crate::context::poll_state()) }
    }

    /// [`resume`](Self::resume), with `suspended` the value of `self.sp != 0`
    /// (a constant where the caller knows it) and `poll_state` the thread's poll state.
    ///
    /// # Safety
    /// As for [`resume`](Self::resume), `suspended == (self.sp != 0)`, and
    /// `poll_state == context::poll_state()`.
    #[inline(always)]
    unsafe fn resume_in_state(&mut self, arg: usize, suspended: bool, poll_state: usize) -> usize {
        let sp = self.sp;
        // Before anything touches the coroutine's stack: a registry snapshot may be
        // capturing its backtrace (it holds the published `sp` meanwhile).
        #[cfg(feature = "registry")]
        self.entry().before_resume(sp);
        // SAFETY: the word below the flags is ours (see the layout above).
        unsafe { self.link.sub(RESUMER_BELOW_LINK).write(poll_state) };
        // SAFETY: the coroutine of `link` (set up by `new_inner`) is resumed next.
        #[cfg(stackful_asan)]
        let fake_stack = unsafe { crate::asan::before_resume(self.link) };
        let transfer = if suspended {
            // Running: `state` has said so since the first entry.
            self.sp = 0;
            // SAFETY: a non-zero `sp` is the coroutine's latest save point and its
            // stack is alive (we own it).
            unsafe { arch::switch_in(arg, sp, self.link) }
        } else {
            // SAFETY: per our caller, Fresh (the only other resumable state).
            unsafe { self.start(arg) }
        };
        // SAFETY: back from the resume announced above.
        #[cfg(stackful_asan)]
        unsafe {
            crate::asan::after_resume(self.link, fake_stack)
        };
        // Suspended at `transfer.sp` (non-zero), unless this was the last switch.
        self.sp = transfer.sp;
        if !is_suspension(transfer.data) {
            // SAFETY: a final word, just received.
            unsafe { self.finished(transfer.data) };
        } else {
            #[cfg(feature = "registry")]
            self.entry().after_suspend(transfer.sp);
        }
        transfer.data
    }

    /// Records how the coroutine ended (once per coroutine, out of line).
    ///
    /// # Safety
    /// `word` is the final word the coroutine just switched out with.
    #[cold]
    #[inline(never)]
    unsafe fn finished(&mut self, word: usize) {
        self.sp = 0;
        // SAFETY: per the caller.
        self.state = match unsafe { decode(word) } {
            Event::Return(_) => State::Returned,
            Event::Panic(_) => State::Panicked,
            Event::Yield(_) | Event::Pending => unreachable!("not a final word"),
        };
        #[cfg(feature = "registry")]
        self.entry().finished();
    }

    /// The first resume: enters the closure on its fresh stack (out of line: it runs
    /// once per coroutine, and keeps the resume path small enough to inline).
    ///
    /// # Safety
    /// The state is `Fresh`; `arg` is not `CANCEL`.
    #[inline(never)]
    unsafe fn start(&mut self, arg: usize) -> arch::Transfer {
        debug_assert_eq!(self.state, State::Fresh);
        debug_assert!(arg > TOKEN_MAX);
        self.state = State::Running;
        let start = Start {
            closure: self.closure,
            arg,
        };
        // SAFETY: the fiber top is 16-aligned with its flags initialised (new_inner);
        // `entry` leaves only through switch_out; `start` outlives the call.
        unsafe {
            arch::enter(
                &start as *const Start as usize,
                self.link as usize + LINK_BELOW_TOP,
                self.entry,
            )
        }
    }

    /// A backtrace of the coroutine at its suspension point, or `None` if it is not
    /// suspended (or on wasm32). See the module docs.
    pub(crate) fn backtrace(&mut self) -> Option<Backtrace> {
        if !self.is_suspended() {
            return None;
        }
        #[cfg(target_arch = "wasm32")]
        return None;
        #[cfg(not(target_arch = "wasm32"))]
        {
            // A registry snapshot may be tracing it right now: take it first.
            #[cfg(feature = "registry")]
            self.entry().take_for_trace(self.sp);
            // SAFETY: Suspended at `self.sp` (checked above), owned by the caller on
            // this thread (`&mut self`: a fiber moves between threads only inside a
            // `SendFuture`/`SendStream`, whole), which excludes any other resume
            // meanwhile (and the registry's tracers, with the entry taken).
            let trace = unsafe { trace_suspended(self.sp, self.link, self.stack.bottom()) };
            #[cfg(feature = "registry")]
            self.entry().give_back(self.sp);
            trace
        }
    }
}

/// Captures a backtrace of the suspended coroutine saved at `sp` whose LINK slot is
/// `link` (see the module docs). The coroutine is exactly as before afterwards, and
/// still saved at `sp`.
///
/// # Safety
/// The coroutine of `link` is suspended (not running, not finished) and `sp` is its
/// latest save point; its stack is alive; nothing else resumes it during the call
/// (its owner, on this thread, or a registry snapshot that took its published save
/// point, on any thread: nothing of the coroutine's own code runs during the trace,
/// and the switches keep the per-thread state right as for `SendFuture`).
///
/// `bottom` is the lowest usable address of the coroutine's own stack (a stack of a
/// generator it runs may lie inside it). With less
/// than [`TRACE_STACK_RESERVE`] bytes free below `sp` there is no trace (`None`): the
/// capture would overflow the stack, into a guard page (an abort) or, on a custom
/// stack without one, into memory that is not the stack's. If the coroutine is saved
/// on the stack of a generator it runs (see "Backtrace of a suspended coroutine"),
/// that stack's free space comes from the crate's records of stacks
/// ([`crate::stack::free_below`]); a stack they do not know (on Linux, a mapped
/// default stack whose guard page found no room in the overflow reporter's table)
/// gets no trace either.
#[cfg(not(target_arch = "wasm32"))]
#[cold]
#[inline(never)]
pub(crate) unsafe fn trace_suspended(
    sp: usize,
    link: *mut usize,
    bottom: usize,
) -> Option<Backtrace> {
    // The capture runs where the coroutine is saved: on its own stack, or on the
    // stack of a generator it runs (a chain suspended from inside the generator),
    // which may also lie inside its own stack (a custom stack made of a local there):
    // the innermost stack that holds `sp` counts.
    let free = crate::stack::free_below(sp, (bottom, link as usize));
    if !free.is_some_and(|free| free >= TRACE_STACK_RESERVE) {
        return None;
    }
    let mut slot = mem::MaybeUninit::<Option<Backtrace>>::uninit();
    let poll_state = link.wrapping_sub(RESUMER_BELOW_LINK);
    // SAFETY: the poll-state word below LINK is ours (see the layout); the coroutine
    // reads the slot's address from it when it sees TRACE.
    let saved = unsafe { poll_state.replace(slot.as_mut_ptr() as usize) };
    // SAFETY: the coroutine of `link` is resumed next.
    #[cfg(stackful_asan)]
    let fake_stack = unsafe { crate::asan::before_resume(link) };
    // SAFETY: per the caller, `sp` is the latest save point of a suspended coroutine
    // with a live stack. It is suspended in `suspend`, which answers TRACE without
    // running anything but the capture, and switches out again.
    let transfer = unsafe { arch::switch_in(TRACE, sp, link) };
    // SAFETY: back from the resume announced above.
    #[cfg(stackful_asan)]
    unsafe {
        crate::asan::after_resume(link, fake_stack)
    };
    if transfer.sp != sp || !is_suspension(transfer.data) {
        // The owner's `Fiber::sp` would now be wrong: nothing can repair that.
        abort("a coroutine traced for a backtrace did not suspend where it was");
    }
    // SAFETY: the coroutine wrote the slot before switching out (`token_received`), and
    // the poll-state word is restored to what it held.
    unsafe {
        poll_state.write(saved);
        slot.assume_init()
    }
}

/// Free stack below a suspension point that [`trace_suspended`] needs to capture a
/// backtrace there: the unwinder and `Backtrace::force_capture` took about 3.3 KiB in
/// a debug build on x86_64 Linux (tests/review_trace_stack.rs), with room to spare.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const TRACE_STACK_RESERVE: usize = 8 * 1024;

impl Drop for Fiber<'_> {
    fn drop(&mut self) {
        // First: no registry snapshot may reach the stack once it is released.
        // SAFETY: registered by `new_inner`, unregistered once. Its `sp` is published
        // only if it is suspended, i.e. about to be leaked as it is (below).
        #[cfg(feature = "registry")]
        unsafe {
            crate::registry::Entry::unregister(self.registry_entry)
        };
        match self.state() {
            State::Returned | State::Panicked => {
                // SAFETY: the coroutine finished; its stack is released next.
                #[cfg(stackful_asan)]
                unsafe {
                    crate::asan::release(self.stack.bottom(), self.stack.top())
                };
                // SAFETY: dropped once; the coroutine is finished, nothing runs on it.
                unsafe { ManuallyDrop::drop(&mut self.stack) }
            }
            State::Fresh => {
                // SAFETY: taken once. `_release` is declared first, so it is dropped
                // after the closure, also if the closure's destructor panics.
                let _release = unsafe { ManuallyDrop::take(&mut self.stack) };
                // SAFETY: Fresh means the closure is still in place and owned by us.
                unsafe { (self.drop_closure)(self.closure) };
            }
            State::Suspended | State::Running => {
                // The coroutine could not be unwound (panic=abort), or it is still on the
                // call stack. Values on its stack may be pinned and referenced from
                // elsewhere, so the memory must stay valid forever: leak it, or abort
                // when the coroutine borrows what ends with this drop.
                leak_stack(self.on_leak, self.state());
            }
        }
    }
}

/// Leaks the stack of a coroutine that cannot be unwound, or aborts (see [`OnLeak`]).
#[cold]
#[inline(never)]
fn leak_stack(on_leak: OnLeak, state: State) {
    if on_leak == OnLeak::Abort {
        let why = if state == State::Running {
            "it is still running (whatever resumed it was leaked)"
        } else {
            "it could not be unwound (panic = \"abort\")"
        };
        abort(&format!(
            "a suspended coroutine that borrows from its creator (a scoped coroutine, or \
             one made by an unchecked constructor) was dropped while {why}; leaking its \
             stack would let its borrows dangle"
        ));
    }
    LEAKED_STACKS.fetch_add(1, Ordering::Relaxed);
}

unsafe fn drop_closure<F>(closure: *mut u8) {
    // SAFETY: the caller passes the closure written by `new_inner`, not yet moved out.
    unsafe { ptr::drop_in_place(closure as *mut F) }
}

/// The first function on every coroutine stack.
unsafe extern "C" fn entry<F, T>(arg: usize, link: *mut usize) -> !
where
    F: FnOnce(*mut usize, usize) -> T,
{
    // SAFETY: first thing on this stack after the first resume. (AddressSanitizer:
    // this frame was set up before, during the switch, so none of its locals are on
    // the fake stack that the last switch frees; the final message and value must
    // stay locals of this frame. See src/asan.rs.)
    #[cfg(stackful_asan)]
    unsafe {
        crate::asan::entered(link)
    };
    // SAFETY: `arg` is the `Start` on the resumer's stack (blocked in `enter`).
    let (closure, first) = unsafe {
        let start = &*(arg as *const Start);
        (start.closure as *mut F, start.arg)
    };
    let result = panic::catch_unwind(AssertUnwindSafe(move || {
        // SAFETY: the closure was written by `new_inner` and is read exactly once,
        // here (only a pointer travels through the catch_unwind layers).
        let body = unsafe { ptr::read(closure) };
        body(link, first)
    }));
    match result {
        Ok(value) => {
            let mut value = ManuallyDrop::new(value);
            let mut msg = Message {
                kind: Kind::Return,
                payload: &mut *value as *mut T as *mut u8,
            };
            // SAFETY: the last switch of this coroutine follows; the resumer reads
            // `msg` and `value` after it.
            #[cfg(stackful_asan)]
            unsafe {
                crate::asan::before_final_switch(
                    link,
                    [&msg as *const Message as usize, msg.payload as usize],
                )
            };
            // SAFETY: we are on the coroutine stack and `link` is its LINK slot. The
            // resumer takes `value`; this stack is never resumed again.
            unsafe { arch::switch_out(&mut msg as *mut Message as usize | FINAL_TAG, link) };
        }
        Err(payload) => {
            let mut payload = ManuallyDrop::new(payload);
            let mut msg = Message {
                kind: Kind::Panic,
                payload: &mut *payload as *mut Box<dyn Any + Send> as *mut u8,
            };
            // SAFETY: as above (`payload` for `value`).
            #[cfg(stackful_asan)]
            unsafe {
                crate::asan::before_final_switch(
                    link,
                    [&msg as *const Message as usize, msg.payload as usize],
                )
            };
            // SAFETY: as above.
            unsafe { arch::switch_out(&mut msg as *mut Message as usize | FINAL_TAG, link) };
        }
    }
    // A finished coroutine is never resumed (its state is Returned/Panicked).
    abort("a finished coroutine was resumed")
}

/// Suspends the running coroutine whose LINK slot is `link`, handing `word` (the
/// address of a [`Slot`] holding the yielded value, or [`PENDING`]) to its resumer;
/// returns the resumer's argument. If the coroutine is being dropped
/// (resumed with [`CANCEL`]), this unwinds with the private [`Cancelled`] payload
/// instead of returning.
///
/// # Safety
/// `link` belongs to a coroutine that is running (somewhere on the current chain of
/// stacks), and `word` follows the protocol of the module docs.
#[inline]
pub(crate) unsafe fn suspend(link: *mut usize, word: usize) -> usize {
    debug_assert!(is_suspension(word));
    // SAFETY: forwarded: `link` is a live LINK slot of a running coroutine.
    let mut arg = unsafe { switch_out_announced(word, link) };
    // One compare for every token (see the module docs).
    while arg <= TOKEN_MAX {
        if arg == CANCEL {
            // The unwind starts in this very frame: every frame between the
            // suspension and the coroutine's `catch_unwind` is walked twice by the
            // unwinder (search, then cleanup), at about 1,300 instructions a frame
            // (libgcc), so a helper frame here would make every drop of a
            // suspended coroutine dearer.
            // SAFETY: as above; just resumed with CANCEL.
            unsafe { begin_cancel(link) }
        }
        // SAFETY: as above; `arg` is a token other than CANCEL.
        unsafe { token_received(link, arg) };
        // Suspend again, from this frame: at the same stack pointer as the first time
        // (what `trace_suspended` relies on, and checks).
        // SAFETY: as above.
        arg = unsafe { switch_out_announced(word, link) };
    }
    arg
}

/// [`arch::switch_out`] with the announcements to AddressSanitizer.
///
/// # Safety
/// As for [`arch::switch_out`].
#[inline(always)]
unsafe fn switch_out_announced(word: usize, link: *mut usize) -> usize {
    // SAFETY: the running coroutine of `link` suspends next.
    #[cfg(stackful_asan)]
    let fake_stack = unsafe { crate::asan::before_suspend(link) };
    // SAFETY: forwarded to the caller.
    let arg = unsafe { arch::switch_out(word, link) };
    // Possibly on another thread now (`SendFuture`/`SendStream`): no thread-local may
    // be read here through an address computed before the switch. None is: the
    // crate's thread-locals are only accessed out of line (see `context`).
    // SAFETY: resumed, on the stack it suspended on.
    #[cfg(stackful_asan)]
    unsafe {
        crate::asan::resumed(link, fake_stack)
    };
    arg
}

/// The cold path of [`suspend`] for `TRACE` (its [`CANCEL`] path is [`begin_cancel`],
/// inlined): captures a backtrace for the tracer and returns, and [`suspend`] switches
/// out again (see the module docs).
///
/// # Safety
/// `link` is the LINK slot of the running coroutine, just resumed with the token
/// `arg` (and for `TRACE`, by [`trace_suspended`]).
#[cold]
#[inline(never)]
unsafe fn token_received(link: *mut usize, arg: usize) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        debug_assert_eq!(arg, TRACE);
        // Capturing allocates and walks the stack; it runs no user code. A panic in it
        // must not unwind the coroutine from its suspension point: `None` instead.
        let trace = panic::catch_unwind(Backtrace::force_capture).ok();
        // SAFETY: `trace_suspended` wrote the address of its uninitialised slot into
        // the poll-state word below LINK (ours, see the layout) and waits in the
        // switch for us to fill it.
        unsafe {
            let slot = link.sub(RESUMER_BELOW_LINK).read() as *mut Option<Backtrace>;
            slot.write(trace);
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        // No backtraces on wasm32 (its stacks are asyncify's save buffers): no token
        // other than CANCEL is ever sent there.
        let _ = (link, arg);
        abort("a coroutine received an unknown resume token");
    }
}

/// Starts unwinding a suspended coroutine that is being dropped.
///
/// A coroutine that suspended from a destructor while unwinding a panic of its own
/// cannot be unwound a second time: the new unwind starts inside a destructor that
/// runs during the first one, and Rust aborts the process ("panic in a destructor
/// during cleanup"), soundly. No check is made here: the thread's panic count cannot
/// tell that case apart from a coroutine that merely suspended while the *thread* was
/// panicking (resumed from a destructor during an unrelated unwind), which must be
/// dropped like any other.
///
/// # Safety
/// `link` is the LINK slot of the running coroutine, which was just resumed with
/// [`CANCEL`].
#[inline(always)]
unsafe fn begin_cancel(link: *mut usize) -> ! {
    // SAFETY: forwarded.
    unsafe { mark_cancelling(link) };
    panic::resume_unwind(Box::new(Cancelled))
}

/// Records that the coroutine of `link` is being dropped: it must never suspend
/// again.
///
/// # Safety
/// As for [`begin_cancel`].
unsafe fn mark_cancelling(link: *mut usize) {
    // SAFETY: the flags word and the poll-state word below LINK are ours (see the
    // layout above). The coroutine is never resumed again (it cannot suspend any
    // more), so the poll state recorded here stays: one that no poll has (poll states
    // are word-aligned addresses with at most bit 0 set), which makes every later
    // `yeet` on this coroutine take its refusal path (see
    // `poll_in_progress_since_resume`).
    unsafe {
        *link.sub(FLAGS_BELOW_LINK) |= CANCELLING;
        link.sub(RESUMER_BELOW_LINK).write(NO_POLL_STATE);
    }
}

/// [`suspend`] for C callers (`include/stackful.h`), which cannot be unwound: if the
/// coroutine is dropped meanwhile it is marked as cancelling (it never suspends
/// again) and `None` is returned instead of unwinding; the C code returns an error
/// to its Rust caller, and the coroutine then finishes (unwinding or returning).
///
/// # Safety
/// As for [`suspend`].
#[inline(never)]
pub(crate) unsafe fn suspend_or_cancelled(link: *mut usize, word: usize) -> Option<usize> {
    debug_assert!(is_suspension(word));
    // SAFETY: forwarded: `link` is a live LINK slot of a running coroutine.
    let mut arg = unsafe { switch_out_announced(word, link) };
    while arg <= TOKEN_MAX {
        if arg == CANCEL {
            // SAFETY: just resumed with CANCEL.
            unsafe { mark_cancelling(link) };
            return None;
        }
        // SAFETY: as above; `arg` is a token other than CANCEL.
        unsafe { token_received(link, arg) };
        // SAFETY: as above.
        arg = unsafe { switch_out_announced(word, link) };
    }
    Some(arg)
}

/// Whether the coroutine whose LINK slot is `link` is unwinding because it is being
/// dropped (it must not suspend again).
///
/// # Safety
/// `link` is the LINK slot of a live coroutine.
#[inline]
pub(crate) unsafe fn is_cancelling(link: *mut usize) -> bool {
    // SAFETY: the flags word below LINK is initialised by `new_inner`.
    unsafe { *link.sub(FLAGS_BELOW_LINK) & CANCELLING != 0 }
}

/// Whether the poll state of the thread differs from the one in which the coroutine
/// of `link` was last resumed (a poll of another coroutine started since, or `wait`
/// started polling a future since): suspending it now would leave that poll
/// half-done (see `YieldHandle::yeet` and `context::poll_state`). Also true
/// once the coroutine is being cancelled ([`begin_cancel`] records [`NO_POLL_STATE`]),
/// when it must not suspend either; [`is_cancelling`] tells the two apart.
///
/// # Safety
/// `link` is the LINK slot of a live coroutine.
#[inline(always)]
pub(crate) unsafe fn poll_in_progress_since_resume(link: *mut usize) -> bool {
    // SAFETY: written by every `Fiber::resume` (and by `begin_cancel`).
    unsafe { link.sub(RESUMER_BELOW_LINK).read() != crate::context::poll_state() }
}

/// Takes a panic payload out of an [`Event::Panic`].
///
/// # Safety
/// `payload` is the pointer of a just-decoded [`Event::Panic`], not taken yet.
pub(crate) unsafe fn take_panic(payload: *mut u8) -> Box<dyn Any + Send> {
    // SAFETY: per the caller, the payload is an untaken Box<dyn Any + Send>.
    unsafe { ptr::read(payload as *mut Box<dyn Any + Send>) }
}

/// Whether a panic payload is the private cancellation payload.
#[cfg_attr(not(panic = "unwind"), allow(dead_code))] // only cancellation unwinds use it
pub(crate) fn is_cancel_payload(payload: &(dyn Any + Send)) -> bool {
    payload.is::<Cancelled>()
}

/// Prints `what` and aborts: for states that safe code cannot reach.
#[cold]
pub(crate) fn abort(what: &str) -> ! {
    eprintln!("stackful: fatal: {what}; aborting");
    std::process::abort()
}
