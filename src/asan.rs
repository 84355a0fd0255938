//! AddressSanitizer support: every stack switch tells ASan which stack it goes to.
//!
//! Compiled only with `cfg(stackful_asan)`, which build.rs sets when the crate is
//! built with `-Zsanitizer=address`; without it nothing here exists and the switch
//! path is unchanged.
//!
//! ASan keeps, per thread, the bounds of the stack that is running (to tell stack
//! addresses from others, and for `__asan_handle_no_return`, which unpoisons the
//! stack before a panic unwinds it) and a "fake stack" on which instrumented
//! functions place their locals (to detect a use after return). A switch is
//! bracketed by `__sanitizer_start_switch_fiber` (on the old stack: saves the old
//! context's fake stack, names the new stack's bounds) and
//! `__sanitizer_finish_switch_fiber` (on the new stack: restores the new context's
//! fake stack, returns the bounds of the stack that was left).
//!
//! What each side needs to know:
//!
//! * The resumer switches to the stack on which the coroutine suspended. That is
//!   usually the coroutine's own stack, but `wait` inside a generator running inside
//!   a `StackfulFuture` suspends the future's coroutine while on the generator's
//!   stack. So after every resume, the resumer records in the coroutine's [`Words`]
//!   the stack that the coroutine left, as `__sanitizer_finish_switch_fiber` returns
//!   it, and the next resume switches to that. (ASan's own per-thread bookkeeping is
//!   the one thing every switch updates, whichever copy of this crate makes it: a
//!   thread-local of our own would miss the switches of another copy whose
//!   coroutines nest with ours.)
//! * The coroutine switches back to whoever resumed it last: the bounds that
//!   `__sanitizer_finish_switch_fiber` returns when it arrives (first entry, or the
//!   return from a suspension), also kept in its [`Words`].
//!
//! [`Words`] sit just above the fiber top (`Fiber::new_inner` reserves
//! [`RESERVED`] bytes there under ASan), out of reach of the assembly's layout.
//!
//! The last switch of a finished coroutine passes a null `fake_stack_save`, which
//! frees its fake stack. The resumer still reads what the coroutine hands over then
//! (the final message, the return value or panic payload it points at): those are
//! locals of the coroutine's entry function (`fiber::entry`), whose frame is never
//! on the fake stack, because its prologue runs during the first switch, before
//! [`entered`] completes it, when ASan gives out no fake frames.
//! [`before_final_switch`] checks this. Frames that never return (the entry frame,
//! and those of a coroutine that finished by unwinding) leave their redzones
//! poisoned on the real stack: [`release`] unpoisons it before the stack goes to
//! its next user (the pool, a custom stack's owner, or a later mapping at the same
//! address).

use std::ffi::c_void;
use std::ptr;

extern "C" {
    fn __sanitizer_start_switch_fiber(
        fake_stack_save: *mut *mut c_void,
        bottom: *const c_void,
        size: usize,
    );
    fn __sanitizer_finish_switch_fiber(
        fake_stack_save: *mut c_void,
        bottom_old: *mut *const c_void,
        size_old: *mut usize,
    );
    fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    fn __asan_get_current_fake_stack() -> *mut c_void;
    fn __asan_addr_is_in_fake_stack(
        fake_stack: *mut c_void,
        addr: *mut c_void,
        beg: *mut *mut c_void,
        end: *mut *mut c_void,
    ) -> *mut c_void;
}

/// Bounds of a stack as ASan takes them: lowest address and size.
#[derive(Clone, Copy)]
#[repr(C)]
struct Bounds {
    bottom: *const c_void,
    size: usize,
}

impl Bounds {
    const UNKNOWN: Bounds = Bounds {
        bottom: ptr::null(),
        size: 0,
    };
}

/// What ASan needs of a coroutine, in the words above its fiber top.
#[repr(C)]
struct Words {
    /// The stack of whoever resumed the coroutine last (where a suspension goes).
    resumer: Bounds,
    /// The stack on which the coroutine is suspended (where a resume goes): its own
    /// until it first suspends from inside a coroutine nested in it.
    suspended_on: Bounds,
}

/// Bytes reserved for [`Words`] above the fiber top (a multiple of 16, which keeps
/// the fiber top aligned).
pub(crate) const RESERVED: usize = (std::mem::size_of::<Words>() + 15) & !15;

/// The words of the coroutine whose LINK slot is `link`.
fn words(link: *mut usize) -> *mut Words {
    (link as usize + crate::arch::LINK_BELOW_TOP) as *mut Words
}

/// Switches ASan to `to` (before the real switch); returns the fake stack to pass
/// to [`arrive`] when this context is switched back to.
///
/// # Safety
/// A real switch to the stack `to` follows, with nothing in between that uses the
/// stack's fake frames.
#[inline(always)]
unsafe fn leave(to: Bounds, save: bool) -> *mut c_void {
    let mut fake_stack = ptr::null_mut();
    let save_to: *mut *mut c_void = if save {
        &mut fake_stack
    } else {
        ptr::null_mut()
    };
    // SAFETY: `save_to` is null or a valid slot; per the caller, a switch follows.
    unsafe { __sanitizer_start_switch_fiber(save_to, to.bottom, to.size) };
    fake_stack
}

/// Completes a switch on the new stack: restores `fake_stack` (what this context's
/// [`leave`] returned; null on a first entry) and returns the bounds of the stack
/// that was left.
///
/// # Safety
/// Called first thing after a real switch that [`leave`] announced.
#[inline(always)]
unsafe fn arrive(fake_stack: *mut c_void) -> Bounds {
    let mut old = Bounds::UNKNOWN;
    // SAFETY: the out-pointers are valid; per the caller, a switch is in progress.
    unsafe { __sanitizer_finish_switch_fiber(fake_stack, &mut old.bottom, &mut old.size) };
    old
}

/// Sets up the words of a new coroutine, whose first resume lands on its own stack
/// `bottom..top`.
///
/// # Safety
/// `link` is the LINK slot of a fiber laid out with [`RESERVED`] bytes above its fiber
/// top, not yet started.
pub(crate) unsafe fn init(link: *mut usize, bottom: usize, top: usize) {
    let own = Bounds {
        bottom: bottom as *const c_void,
        size: top - bottom,
    };
    // SAFETY: per the caller, the words are reserved for us and unused.
    unsafe {
        words(link).write(Words {
            resumer: Bounds::UNKNOWN,
            suspended_on: own,
        })
    };
}

/// Before resuming (or first entering) the coroutine of `link`; returns what
/// [`after_resume`] needs.
///
/// # Safety
/// `link` is the LINK slot of a fiber set up by [`init`], which is resumed next.
#[inline(always)]
pub(crate) unsafe fn before_resume(link: *mut usize) -> *mut c_void {
    // SAFETY: the words are initialised by `init` and kept by the coroutine's switches.
    unsafe { leave((*words(link)).suspended_on, true) }
}

/// Back from a resume of the coroutine of `link`, on the resumer's stack: records
/// the stack it left (where it is suspended, if it is) for the next resume.
///
/// # Safety
/// `fake_stack` is what [`before_resume`] returned, and the coroutine just switched
/// back; its stack is still allocated.
#[inline(always)]
pub(crate) unsafe fn after_resume(link: *mut usize, fake_stack: *mut c_void) {
    // SAFETY: per the caller; the words are the coroutine's.
    unsafe { (*words(link)).suspended_on = arrive(fake_stack) };
}

/// First thing on a coroutine's stack when it is first entered.
///
/// # Safety
/// The coroutine of `link` was just entered (after [`before_resume`]).
#[inline(always)]
pub(crate) unsafe fn entered(link: *mut usize) {
    // SAFETY: per the caller; its words are ours.
    unsafe { (*words(link)).resumer = arrive(ptr::null_mut()) };
}

/// Before the coroutine of `link` suspends (switches back to its resumer); returns
/// what [`resumed`] needs.
///
/// # Safety
/// The coroutine of `link` is running and suspends next.
#[inline(always)]
pub(crate) unsafe fn before_suspend(link: *mut usize) -> *mut c_void {
    // SAFETY: per the caller, the words are the running coroutine's (the resumer
    // records where this suspension sits: `after_resume`).
    unsafe { leave((*words(link)).resumer, true) }
}

/// Back in the coroutine of `link` after a suspension (on the stack it suspended on).
///
/// # Safety
/// `fake_stack` is what [`before_suspend`] returned, and the coroutine was just resumed.
#[inline(always)]
pub(crate) unsafe fn resumed(link: *mut usize, fake_stack: *mut c_void) {
    // SAFETY: per the caller; the resumer may differ from last time.
    unsafe { (*words(link)).resumer = arrive(fake_stack) };
}

/// Before the last switch out of the finished coroutine of `link`, which frees its
/// fake stack. `handed_over` are the addresses the resumer reads after the switch:
/// they must not be on that fake stack (see the module docs); checked here.
///
/// # Safety
/// The coroutine of `link` is running and makes its final switch next.
#[inline(always)]
pub(crate) unsafe fn before_final_switch(link: *mut usize, handed_over: [usize; 2]) {
    for addr in handed_over {
        // SAFETY: only looks the address up in the current fake stack's bounds.
        let on_fake_stack = unsafe {
            let fake_stack = __asan_get_current_fake_stack();
            !fake_stack.is_null()
                && !__asan_addr_is_in_fake_stack(
                    fake_stack,
                    addr as *mut c_void,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
                .is_null()
        };
        if on_fake_stack {
            crate::fiber::abort(
                "AddressSanitizer: the final message of a coroutine is on its fake stack, \
                 which its last switch frees",
            );
        }
    }
    // SAFETY: per the caller, the words are the running coroutine's.
    unsafe { leave((*words(link)).resumer, false) };
}

/// Unpoisons the stack `bottom..top` of a finished coroutine before it is released.
///
/// # Safety
/// Nothing runs on the stack any more.
pub(crate) unsafe fn release(bottom: usize, top: usize) {
    // SAFETY: per the caller; the range is the stack's usable memory.
    unsafe { __asan_unpoison_memory_region(bottom as *const c_void, top - bottom) };
}
