//! Bindings to the context-switch primitives in `asm/<arch>.S`.
//!
//! The frame layout, the saved registers and the calling convention are documented at
//! the top of each assembly file; this module only states the contract as Rust sees it.

/// What a switch hands back to the side that regains control.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Transfer {
    /// The `arg` passed by the side that switched to us.
    pub data: usize,
    /// Where the coroutine that just suspended saved its registers; pass it to the
    /// next [`switch_in`].
    pub sp: usize,
}

/// The function run on a fresh stack: `entry(arg, link)`. It must never return
/// (it ends by switching out for the last time).
pub(crate) type EntryFn = unsafe extern "C" fn(arg: usize, link: *mut usize) -> !;

/// What `stackful_fiber_enter` and `stackful_fiber_switch_in` return: a [`Transfer`]
/// in two registers. The i386 System V ABI returns every struct through a hidden
/// pointer, so on 32-bit x86 the assembly returns it as a `u64` in edx:eax instead
/// (`data` in the low half, `sp` in the high half; see `asm/x86.S`).
#[cfg(not(target_arch = "x86"))]
type RawTransfer = Transfer;
#[cfg(target_arch = "x86")]
type RawTransfer = u64;

impl Transfer {
    #[inline(always)]
    fn from_raw(raw: RawTransfer) -> Self {
        #[cfg(not(target_arch = "x86"))]
        return raw;
        #[cfg(target_arch = "x86")]
        Transfer {
            data: raw as u32 as usize,
            sp: (raw >> 32) as u32 as usize,
        }
    }
}

// Every symbol of the assembly carries this copy's prefix (build.rs: no two copies of
// the crate in one program share switch code).
extern "C" {
    #[cfg(not(windows))]
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "fiber_enter")]
    fn fiber_enter(arg: usize, top: usize, entry: EntryFn) -> RawTransfer;
    // Windows: the new stack's Thread Information Block fields go along
    // (asm/x86_64_windows.S).
    #[cfg(windows)]
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "fiber_enter")]
    fn fiber_enter(
        arg: usize,
        top: usize,
        entry: EntryFn,
        tib: *const crate::stack::StackTib,
    ) -> RawTransfer;
    // x86_64 and aarch64 (not Windows): its own calling convention, called from
    // `switch_in`'s asm! block (asm/x86_64.S, asm/aarch64.S). The signature here
    // only names the symbol.
    #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows)))]
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "fiber_switch_in")]
    fn fiber_switch_in_custom();
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows))))]
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "fiber_switch_in")]
    fn fiber_switch_in(arg: usize, sp: usize, link: *mut usize) -> RawTransfer;
    // x86_64 and aarch64 suspend with inline assembly (src/switch_out.rs), except on
    // Windows, whose switch also saves xmm6-xmm15 and the TIB stack fields.
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows))))]
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "fiber_switch_out")]
    fn fiber_switch_out(arg: usize, link: *mut usize) -> usize;
    #[link_name = concat!(env!("STACKFUL_SYM_PREFIX"), "valgrind_request")]
    fn valgrind_request(default: usize, args: *const [usize; 6]) -> usize;
}

const VG_USERREQ_STACK_REGISTER: usize = 0x1501;
const VG_USERREQ_STACK_DEREGISTER: usize = 0x1502;

/// Tells valgrind (if the process runs under it) that `bottom..top` is a stack, so
/// that switching to it is not mistaken for a wild stack-pointer change. Returns
/// valgrind's id for it (0 natively).
pub(crate) fn valgrind_stack_register(bottom: usize, top: usize) -> usize {
    let args = [VG_USERREQ_STACK_REGISTER, bottom, top, 0, 0, 0];
    // SAFETY: the request block is valid for the call; natively this returns 0.
    unsafe { valgrind_request(0, &args) }
}

/// Undoes [`valgrind_stack_register`].
pub(crate) fn valgrind_stack_deregister(id: usize) {
    let args = [VG_USERREQ_STACK_DEREGISTER, id, 0, 0, 0, 0];
    // SAFETY: as above.
    unsafe { valgrind_request(0, &args) };
}

/// Offset (in words) from the link slot down to the flags word owned by Rust.
/// `asm/*.S`: LINK is at `top - 16`, the flags word at `top - 24` (both words below
/// LINK are reserved for Rust by the assembly's layout).
pub(crate) const FLAGS_BELOW_LINK: usize = 1;
/// Offset (in words) from the link slot down to the word where Rust records which
/// poll was current when the coroutine was last resumed (`top - 32`).
pub(crate) const RESUMER_BELOW_LINK: usize = 2;
/// Bytes at the top of a fiber stack reserved by the assembly (fake return address,
/// LINK, flags, padding).
pub(crate) const TOP_RESERVED: usize = 32;

/// Bytes from the 16-aligned fiber top down to the LINK slot.
pub(crate) const LINK_BELOW_TOP: usize = 16;

/// Nothing to set up natively: the assembly needs only the flags word, which
/// `Fiber::new` initialises (wasm32 has a record and a save buffer to carve here).
///
/// # Safety
/// None natively; see `src/arch/wasm32.rs` for the contract there.
#[inline(always)]
pub(crate) unsafe fn init_stack(
    _link: *mut usize,
    _top: usize,
    _bottom: usize,
    _save: usize,
    _entry: EntryFn,
) -> std::io::Result<()> {
    Ok(())
}

/// Starts `entry(arg, link)` on the stack whose highest address is `top`.
///
/// # Safety
/// `top` is 16-byte aligned, the `TOP_RESERVED` bytes below it and enough stack below
/// that are writable and not in use, and the flags word (`top - 24`) is initialised.
/// `entry` never returns and never unwinds; it leaves only through [`switch_out`].
#[inline(always)]
pub(crate) unsafe fn enter(arg: usize, top: usize, entry: EntryFn) -> Transfer {
    #[cfg(windows)]
    {
        let tib = crate::stack::StackTib::of_stack_top(top);
        // SAFETY: forwarded to the caller (see above); `tib` outlives the call.
        Transfer::from_raw(unsafe { fiber_enter(arg, top, entry, &tib) })
    }
    #[cfg(not(windows))]
    // SAFETY: forwarded to the caller (see above).
    Transfer::from_raw(unsafe { fiber_enter(arg, top, entry) })
}

/// Resumes the coroutine suspended at `sp` whose link slot is `link`.
///
/// # Safety
/// `sp` is the `Transfer::sp` of that coroutine's latest suspension, it has not been
/// resumed since, and its stack is still allocated.
#[inline(always)]
pub(crate) unsafe fn switch_in(arg: usize, sp: usize, link: *mut usize) -> Transfer {
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    {
        let (data, new_sp);
        // SAFETY: forwarded to the caller (see above). `stackful_fiber_switch_in`
        // preserves rsp, rbp and rbx and may change every other register (its own
        // convention, asm/x86_64.S): all of them are declared clobbered here, through
        // the operands and `switch_asm!` (the list the suspending half shares). It is
        // entered by `call` with rsp aligned as for any call (no `nostack`), and
        // leaves no state on the stack.
        unsafe {
            crate::switch_out::switch_asm!(
                "call {switch_in}",
                switch_in = sym fiber_switch_in_custom,
                inlateout("rdi") arg => _,
                inlateout("rsi") link => _,
                inlateout("rdx") sp => new_sp,
                lateout("rax") data,
            );
        }
        Transfer { data, sp: new_sp }
    }
    #[cfg(all(target_arch = "aarch64", not(windows)))]
    {
        let (data, new_sp);
        // SAFETY: forwarded to the caller (see above). `stackful_fiber_switch_in`
        // preserves sp, x18, x19 and x29 and may change every other register (its own
        // convention, asm/aarch64.S): all of them are declared clobbered here, through
        // the operands and `switch_asm!` (the list the suspending half shares, x30
        // included, which `bl` overwrites). It is entered by `bl` with sp 16-byte
        // aligned (no `nostack`) and leaves nothing on the stack.
        unsafe {
            crate::switch_out::switch_asm!(
                "bl {switch_in}",
                switch_in = sym fiber_switch_in_custom,
                inlateout("x0") arg => data,
                inlateout("x1") link => new_sp,
                inlateout("x2") sp => _,
            );
        }
        Transfer { data, sp: new_sp }
    }
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows))))]
    // SAFETY: forwarded to the caller (see above).
    Transfer::from_raw(unsafe { fiber_switch_in(arg, sp, link) })
}

/// Suspends the running coroutine, whose link slot is `link`, returning to its resumer.
///
/// # Safety
/// Must be called on a coroutine stack whose `link` slot holds the frame of a resumer
/// that is still blocked in [`enter`] or [`switch_in`].
#[inline(always)]
pub(crate) unsafe fn switch_out(arg: usize, link: *mut usize) -> usize {
    #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows)))]
    // SAFETY: forwarded to the caller (see above).
    return unsafe { crate::switch_out::switch_out(arg, link) };
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(windows))))]
    // SAFETY: forwarded to the caller (see above).
    unsafe {
        fiber_switch_out(arg, link)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn valgrind_request_returns_its_default_natively() {
        // RUNNING_ON_VALGRIND: valgrind answers its nesting level (1 or more); natively
        // the request sequence must leave the default untouched.
        const RUNNING_ON_VALGRIND: usize = 0x1001;
        let args = [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
        for default in [0, 0x5eed, usize::MAX] {
            // SAFETY: the request block is valid for the call; this request only reads it.
            let got = unsafe { super::valgrind_request(default, &args) };
            assert!(
                got == default || (1..16).contains(&got),
                "default {default:#x}, got {got:#x}"
            );
        }
    }
}
