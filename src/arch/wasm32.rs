//! Bindings to the Asyncify-based switch in `asm/wasm32.s` (see the comment at its
//! top for the protocol, the coroutine record and the stack layout).
//!
//! This module offers the same contract as the native `src/arch.rs`; the differences
//! are that a coroutine's record lives in [`TOP_RESERVED`] bytes at the top of its
//! stack and must be set up by [`init_stack`], and that `Transfer::sp` is unused (the
//! record keeps the coroutine's shadow-stack pointer).

use std::io;

/// What a switch hands back to the side that regains control.
#[derive(Clone, Copy)]
pub(crate) struct Transfer {
    /// The `arg` passed by the side that switched to us.
    pub data: usize,
    /// Unused on wasm32 (0): the coroutine record holds the saved stack pointer.
    pub sp: usize,
}

/// The function run on a fresh stack: `entry(arg, link)`. It must never return
/// normally (it ends by switching out for the last time).
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize, link: *mut usize) -> !;

// Every symbol of the assembly carries this copy's prefix (build.rs: no two copies of
// the crate in one program share switch code), and so do the functions it calls.
extern "C" {
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_resume")]
    fn stackful_wasm_resume(arg: usize, rec: *mut usize, fresh: u32) -> usize;
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_suspend")]
    fn stackful_wasm_suspend(arg: usize, target: *mut usize) -> usize;
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_save_peak")]
    static stackful_wasm_save_peak: usize;
}

/// Offset (in words) from the link slot down to the flags word owned by Rust.
pub(crate) const FLAGS_BELOW_LINK: usize = 1;
/// Offset (in words) from the link slot down to the resumed-poll-state word.
pub(crate) const RESUMER_BELOW_LINK: usize = 2;
/// Bytes from the 16-aligned fiber top down to the record (`link`): the record's
/// eight words are `link .. link + 32`.
pub(crate) const LINK_BELOW_TOP: usize = 40;
/// Bytes reserved at the top of a fiber stack: the record, the two Rust words below
/// it, padding; the shadow stack starts below them (16-aligned).
pub(crate) const TOP_RESERVED: usize = 64;

/// The word written just above the save buffer (asm/wasm32.s checks it at every
/// switch out of a coroutine).
const CANARY: u32 = 0x5afe_57ac;
/// Bytes kept free between the canary and the lowest shadow-stack address.
const CANARY_GAP: usize = 16;
/// A coroutine needs at least this much shadow stack once its save buffer is carved out.
const MIN_SHADOW_STACK: usize = 4096;

/// Record word offsets (in words from `link`), as in asm/wasm32.s.
const SAVED_SP: usize = 0;
const RESUMER_SP: usize = 1;
const PARENT: usize = 2;
const CHILD: usize = 3;
const ENTRY: usize = 4;
const CUR: usize = 5;
const END: usize = 6;
const BUF: usize = 7;

/// Sets up the record of a fresh coroutine whose stack is `bottom..top` (`top` is the
/// 16-aligned fiber top) and carves its save buffer of `save` bytes (rounded down to
/// whole words) out of the bottom of the stack.
///
/// # Safety
/// `bottom..top` is writable memory owned by the new coroutine, and `link` is
/// `top - LINK_BELOW_TOP`.
pub(crate) unsafe fn init_stack(
    link: *mut usize,
    top: usize,
    bottom: usize,
    save: usize,
    entry: EntryFn,
) -> io::Result<()> {
    let buf = (bottom + 7) & !7;
    let end = buf.saturating_add(save) & !3;
    let shadow_top = top - TOP_RESERVED;
    if save < 64 || end.saturating_add(CANARY_GAP + MIN_SHADOW_STACK) > shadow_top {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stackful: a {}-byte stack cannot hold a {save}-byte save buffer plus a \
                 shadow stack of at least {MIN_SHADOW_STACK} bytes (the save buffer must be \
                 at least 64 bytes; see Builder::save_buffer_size)",
                top - bottom
            ),
        ));
    }
    // SAFETY: all these words lie in `bottom..top` (checked above), which is ours.
    unsafe {
        (end as *mut u32).write(CANARY);
        link.add(SAVED_SP).write(shadow_top);
        link.add(RESUMER_SP).write(0);
        link.add(PARENT).write(0);
        link.add(CHILD).write(0);
        link.add(ENTRY).write(entry as usize);
        link.add(CUR).write(buf);
        link.add(END).write(end);
        link.add(BUF).write(buf);
    }
    Ok(())
}

/// Starts `entry(arg, link)` on the stack whose fiber top is `top`.
///
/// # Safety
/// [`init_stack`] has set up the record below `top` with this `entry`; the stack is
/// alive and not running.
#[inline(always)]
pub(crate) unsafe fn enter(arg: usize, top: usize, _entry: EntryFn) -> Transfer {
    let rec = (top - LINK_BELOW_TOP) as *mut usize;
    // SAFETY: forwarded to the caller (see above).
    let data = unsafe { stackful_wasm_resume(arg, rec, 1) };
    // `sp` is unused here (the record holds everything), but must be non-zero: to
    // `Fiber` a non-zero `sp` means "suspended".
    Transfer {
        data,
        sp: rec as usize,
    }
}

/// Resumes the coroutine whose link slot is `link`.
///
/// # Safety
/// The coroutine is suspended and its stack is still allocated.
#[inline(always)]
pub(crate) unsafe fn switch_in(arg: usize, _sp: usize, link: *mut usize) -> Transfer {
    // SAFETY: forwarded to the caller (see above).
    let data = unsafe { stackful_wasm_resume(arg, link, 0) };
    // Non-zero, as in `enter`.
    Transfer {
        data,
        sp: link as usize,
    }
}

/// Suspends the running coroutine chain up to the coroutine whose link slot is
/// `link`, returning to its resumer.
///
/// # Safety
/// `link` is the record of a coroutine that is running (on the current chain).
#[inline(always)]
pub(crate) unsafe fn switch_out(arg: usize, link: *mut usize) -> usize {
    // SAFETY: forwarded to the caller (see above).
    let resumed = unsafe { stackful_wasm_suspend(arg, link) };
    if resumed == usize::MAX {
        not_asyncified();
    }
    resumed
}

/// The most bytes any coroutine's save buffer has held so far in this process.
pub(crate) fn save_buffer_peak() -> usize {
    // SAFETY: a plain word written only by asm/wasm32.s on this (single) thread.
    unsafe { std::ptr::addr_of!(stackful_wasm_save_peak).read_volatile() }
}

/// Natively this tells valgrind about a stack; there is no valgrind for wasm.
pub(crate) fn valgrind_stack_register(_bottom: usize, _top: usize) -> usize {
    0
}

/// Undoes [`valgrind_stack_register`] (nothing to undo on wasm).
pub(crate) fn valgrind_stack_deregister(_id: usize) {}

/// Prints a fatal message and aborts without touching the heap: the reporters below
/// run right after memory next to a coroutine stack may have been overwritten.
#[cold]
fn fatal(parts: &[&str]) -> ! {
    #[cfg(target_os = "wasi")]
    for part in parts {
        // SAFETY: writing a valid byte slice to stderr (fd 2).
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    #[cfg(not(target_os = "wasi"))]
    {
        // No stderr here: let the panic hook (e.g. console_error_panic_hook) show it;
        // with panic=abort this does not unwind.
        let mut message = String::new();
        for part in parts {
            message.push_str(part);
        }
        panic!("{message}");
    }
    #[cfg(target_os = "wasi")]
    std::process::abort()
}

/// Formats `n` in decimal into `buf` without allocating.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("?")
}

#[export_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_save_buffer_overflow")]
#[cold]
extern "C" fn stackful_wasm_save_buffer_overflow(needed: usize, size: usize) -> ! {
    let (mut a, mut b) = ([0; 20], [0; 20]);
    fatal(&[
        "stackful: fatal: a coroutine's asyncify save buffer overflowed while it was \
         suspending: its frames needed ",
        decimal(needed, &mut a),
        " bytes but the buffer holds ",
        decimal(size, &mut b),
        ". Raise it with stackful::Builder::save_buffer_size (or pass a larger stack to \
         with_stack); aborting\n",
    ])
}

#[export_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_stack_overflow")]
#[cold]
extern "C" fn stackful_wasm_stack_overflow(_rec: usize) -> ! {
    fatal(&[
        "stackful: fatal: coroutine stack overflow: a coroutine ran past the bottom of \
         its shadow stack (detected at its next switch; wasm has no guard pages). Give \
         it a larger stack with stackful::Builder::stack_size; aborting\n",
    ])
}

#[export_name = concat!(env!("STACKFUL_SYM_PREFIX"), "wasm_bad_suspend")]
#[cold]
extern "C" fn stackful_wasm_bad_suspend() -> ! {
    fatal(&["stackful: fatal: a coroutine suspended while no coroutine was running; aborting\n"])
}

#[cold]
fn not_asyncified() -> ! {
    fatal(&[
        "stackful: fatal: this WebAssembly module was not instrumented by Binaryen's \
         asyncify (`wasm-opt --asyncify`), or asyncify was told not to instrument the \
         code that called stackful (asyncify-onlylist/removelist/ignore-indirect), so a \
         coroutine cannot suspend. Run `wasm-opt --asyncify \
         --pass-arg=asyncify-imports@__none__` on the module before running it (see \
         the stackful README, \"WebAssembly\"); aborting\n",
    ])
}
