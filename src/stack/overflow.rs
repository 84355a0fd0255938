//! Reporting a stack overflow inside a coroutine.
//!
//! Every default stack has a `PROT_NONE` guard page below it, so an overflow faults.
//! Without help the process would die with a bare `SIGSEGV`; Rust's own handler only
//! knows the guard pages of *threads*. This module installs, once and lazily (when
//! the first default stack is handed out), a `SIGSEGV`/`SIGBUS` handler that runs on
//! an alternate signal stack and:
//!
//! * if the faulting address is in the guard page of one of our stacks, prints
//!   `stackful: coroutine stack overflow (stack size N bytes) — raise it with
//!   Builder::stack_size` to stderr and aborts;
//! * otherwise hands the signal to the handler that was installed before (Rust's,
//!   which reports thread stack overflows, or any other), or restores the default
//!   action so that the fault kills the process as it would have.
//!
//! Recognising our guard pages costs nothing on the switch path: when a guarded stack
//! is mapped, the page directly below its usable part is entered in a process-wide
//! lock-free hash set (with the stack's size), and removed before it is unmapped.
//! (A marker inside the stack itself would not do: the overflowing frames overwrite
//! the lowest bytes of the stack before they fault.) The handler only reads that
//! table, which is async-signal-safe. The table has a fixed capacity of
//! `REGISTRY_SLOTS / 2` stacks, more than the default `vm.max_map_count` allows;
//! a stack that finds no slot still works, its overflow is just not named.
//!
//! Stacks carved from slabs (`slab.rs`, guard pages installed with
//! `MADV_GUARD_INSTALL`) are not entered one by one: each slab has an entry in a
//! second table (start, end, stride, usable size), and an address is in a guard page
//! if it lies in a slab and below the usable part of its slot. The handler scans the
//! slab entries in use (a few hundred for a million 64 KiB stacks).

use std::cell::Cell;
use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

static INSTALL: Once = Once::new();
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// Serialises handlers that fault at the same time on different threads.
static HANDLING: AtomicBool = AtomicBool::new(false);

/// The actions that were installed before ours, for SIGSEGV and SIGBUS.
static mut PREVIOUS: [mem::MaybeUninit<libc::sigaction>; 2] =
    [mem::MaybeUninit::uninit(), mem::MaybeUninit::uninit()];

/// Number of slots of the registry of guarded stacks (a power of two).
const REGISTRY_SLOTS: usize = 1 << 17;
// Key values that are not page addresses. A slot is EMPTY until first claimed and
// never again; BUSY while a `register` fills it in (invisible to lookups, and no other
// `register` can claim it); TOMBSTONE once its key is unregistered (free to claim).
const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;
const BUSY: usize = 2;

/// The registry: `REGISTRY_SLOTS` keys (page addresses) followed by as many sizes,
/// in one lazily created anonymous mapping (only touched pages cost memory).
static REGISTRY: AtomicPtr<AtomicUsize> = AtomicPtr::new(ptr::null_mut());
static REGISTRY_INIT: Once = Once::new();

fn registry() -> Option<&'static [AtomicUsize]> {
    REGISTRY_INIT.call_once(|| {
        let len = 2 * REGISTRY_SLOTS * mem::size_of::<AtomicUsize>();
        // SAFETY: fresh anonymous mapping; zero-filled memory is a valid array of
        // AtomicUsize (EMPTY keys).
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem != libc::MAP_FAILED {
            REGISTRY.store(mem.cast(), Ordering::Release);
        }
    });
    table()
}

/// The registry if it exists; never creates it (usable from the signal handler).
fn table() -> Option<&'static [AtomicUsize]> {
    let base = REGISTRY.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: the mapping holds 2 * REGISTRY_SLOTS AtomicUsize and is never unmapped.
    Some(unsafe { std::slice::from_raw_parts(base, 2 * REGISTRY_SLOTS) })
}

fn slot_of(key: usize) -> usize {
    // Fibonacci hashing of the page number.
    ((key >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize)) >> 7 & (REGISTRY_SLOTS - 1)
}

/// Records that the page at `key` (directly below a stack of `size` usable bytes) is
/// that stack's guard. Returns false if the registry is full or unavailable.
///
/// A slot is claimed by swapping EMPTY or TOMBSTONE for BUSY, which only one thread
/// can do (a claim that left the slot's value unchanged could succeed for two at
/// once, and one stack's entry would overwrite the other's); the size is written,
/// then the key is published with Release.
pub(crate) fn register(key: usize, size: usize) -> bool {
    debug_assert!(key > BUSY);
    let Some(table) = registry() else {
        return false;
    };
    MAX_REGISTERED_SIZE.fetch_max(size, Ordering::Relaxed);
    let (keys, sizes) = table.split_at(REGISTRY_SLOTS);
    let start = slot_of(key);
    for i in 0..REGISTRY_SLOTS / 2 {
        let slot = (start + i) & (REGISTRY_SLOTS - 1);
        let current = keys[slot].load(Ordering::Relaxed);
        if (current == EMPTY || current == TOMBSTONE)
            && keys[slot]
                .compare_exchange(current, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // Claimed (BUSY: invisible to lookups, unclaimable): fill, then publish.
            sizes[slot].store(size, Ordering::Relaxed);
            keys[slot].store(key, Ordering::Release);
            return true;
        }
    }
    false
}

/// Removes a key entered by [`register`] (called once, by whoever owns the stack).
pub(crate) fn unregister(key: usize) {
    debug_assert!(key > BUSY);
    let Some(table) = table() else {
        return;
    };
    let keys = &table[..REGISTRY_SLOTS];
    let start = slot_of(key);
    for i in 0..REGISTRY_SLOTS / 2 {
        let slot = (start + i) & (REGISTRY_SLOTS - 1);
        match keys[slot].load(Ordering::Relaxed) {
            // The key was never entered (the registry was full).
            EMPTY => return,
            // Only this key's owner changes a slot that holds it, so a plain store
            // frees it. BUSY and TOMBSTONE slots (and other keys) are passed over.
            k if k == key => {
                keys[slot].store(TOMBSTONE, Ordering::Release);
                return;
            }
            _ => {}
        }
    }
}

/// The largest size [`register`]ed so far: how far below an address
/// [`default_stack_bottom`] looks for a guard page.
static MAX_REGISTERED_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The lowest usable address of the default stack whose usable part contains `addr`:
/// a slot of a slab, or a mapped stack whose guard page is registered. `None` if no
/// such stack contains it (a custom stack, or a stack whose entry did not fit).
///
/// For mapped stacks the registry is probed page by page below `addr`, up to the
/// largest registered size: a cold path (backtraces), a few hundred lookups for a
/// default 2 MiB stack.
pub(crate) fn default_stack_bottom(addr: usize) -> Option<usize> {
    if let Some((start, stride, usable)) = find_slab(addr) {
        let offset = (addr - start) % stride;
        let guard_and_gap = stride - usable;
        return (offset >= guard_and_gap).then_some(addr - offset + guard_and_gap);
    }
    let page = crate::stack::page_size();
    let max = MAX_REGISTERED_SIZE.load(Ordering::Relaxed);
    let mut key = addr & !(page - 1);
    loop {
        key = key.checked_sub(page)?;
        if let Some(size) = lookup(key) {
            // The first guard page below `addr`: `addr` is in that stack if its usable
            // part reaches up to it.
            let bottom = key + page;
            return (addr < bottom.saturating_add(size)).then_some(bottom);
        }
        // No guard page at `key`: a stack holding `addr` reaches down to `key` at
        // least, more than any registered stack once past the largest size.
        if addr - key > max {
            return None;
        }
    }
}

/// The size of the stack whose guard page is at `key`, if it is registered.
/// Async-signal-safe: atomic loads only (no lock, no allocation).
fn lookup(key: usize) -> Option<usize> {
    let table = table()?;
    let (keys, sizes) = table.split_at(REGISTRY_SLOTS);
    let start = slot_of(key);
    for i in 0..REGISTRY_SLOTS / 2 {
        let slot = (start + i) & (REGISTRY_SLOTS - 1);
        match keys[slot].load(Ordering::Acquire) {
            EMPTY => return None,
            // The Acquire load saw the key published after its size was written.
            k if k == key => return Some(sizes[slot].load(Ordering::Relaxed)),
            // BUSY, TOMBSTONE or another key: keep probing.
            _ => {}
        }
    }
    None
}

/// Entries of the slab table: at most this many slabs exist at once (each up to
/// 256 MiB of address space, so far more than a process can map).
pub(crate) const SLAB_ENTRIES: usize = 1 << 16;
/// Words per slab entry: sequence number, start, end, stride, usable size.
const SLAB_WORDS: usize = 5;

/// The slab table (see `slab.rs`): `SLAB_ENTRIES` entries of `SLAB_WORDS` words, in
/// one lazily created anonymous mapping (only touched pages cost memory). An entry's
/// sequence number is odd while it is being written (a seqlock: the handler never
/// waits, it skips an entry that changed while it read it) and its start is 0 when
/// it describes no slab.
static SLAB_TABLE: AtomicPtr<AtomicUsize> = AtomicPtr::new(ptr::null_mut());
static SLAB_TABLE_INIT: Once = Once::new();
/// One past the highest entry ever set: the handler scans `0..SLAB_HIGH`.
static SLAB_HIGH: AtomicUsize = AtomicUsize::new(0);

/// The slab table if it exists; never creates it (usable from the signal handler).
fn slab_table() -> Option<&'static [AtomicUsize]> {
    let base = SLAB_TABLE.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: the mapping holds SLAB_ENTRIES * SLAB_WORDS AtomicUsize and is never
    // unmapped.
    Some(unsafe { std::slice::from_raw_parts(base, SLAB_ENTRIES * SLAB_WORDS) })
}

/// Writes entry `entry` (`start == 0`: no slab) under its sequence number. Entries are
/// handed out by `slab.rs` under its lock, so there is one writer per entry at a time.
fn write_slab(entry: usize, start: usize, len: usize, stride: usize, usable: usize) {
    let Some(table) = slab_table() else {
        return;
    };
    let e = &table[entry * SLAB_WORDS..(entry + 1) * SLAB_WORDS];
    let seq = e[0].load(Ordering::Relaxed);
    e[0].store(seq.wrapping_add(1), Ordering::Relaxed);
    std::sync::atomic::fence(Ordering::Release);
    e[1].store(start, Ordering::Relaxed);
    e[2].store(start.wrapping_add(len), Ordering::Relaxed);
    e[3].store(stride, Ordering::Relaxed);
    e[4].store(usable, Ordering::Relaxed);
    e[0].store(seq.wrapping_add(2), Ordering::Release);
}

/// Records that `start..start + len` is a slab of stacks every `stride` bytes, each
/// with a guard page at its start and `usable` bytes above it. `entry` is below
/// [`SLAB_ENTRIES`] and unused. Creates the table on first use; if it cannot be
/// mapped, overflows in slabs are not named (the fault still kills the process).
pub(crate) fn set_slab(entry: usize, start: usize, len: usize, stride: usize, usable: usize) {
    SLAB_TABLE_INIT.call_once(|| {
        let bytes = SLAB_ENTRIES * SLAB_WORDS * mem::size_of::<AtomicUsize>();
        // SAFETY: fresh anonymous mapping; zero-filled memory is a valid array of
        // AtomicUsize (no slab, even sequence numbers).
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mem != libc::MAP_FAILED {
            SLAB_TABLE.store(mem.cast(), Ordering::Release);
        }
    });
    write_slab(entry, start, len, stride, usable);
    SLAB_HIGH.fetch_max(entry + 1, Ordering::Release);
}

/// Forgets entry `entry` (before its slab is unmapped).
pub(crate) fn clear_slab(entry: usize) {
    write_slab(entry, 0, 0, 0, 0);
}

/// If `addr` is in a guard page of a slab, the usable size of that stack.
/// Async-signal-safe: atomic loads only.
fn lookup_slab(addr: usize) -> Option<usize> {
    let (start, stride, usable) = find_slab(addr)?;
    ((addr - start) % stride < stride - usable).then_some(usable)
}

/// The slab that `addr` lies in: its start, stride and usable size per slot.
/// Async-signal-safe: atomic loads only.
fn find_slab(addr: usize) -> Option<(usize, usize, usize)> {
    let table = slab_table()?;
    let high = SLAB_HIGH.load(Ordering::Acquire).min(SLAB_ENTRIES);
    for e in table[..high * SLAB_WORDS].chunks_exact(SLAB_WORDS) {
        let seq = e[0].load(Ordering::Acquire);
        if seq % 2 == 1 {
            continue;
        }
        let (start, end) = (e[1].load(Ordering::Relaxed), e[2].load(Ordering::Relaxed));
        let (stride, usable) = (e[3].load(Ordering::Relaxed), e[4].load(Ordering::Relaxed));
        std::sync::atomic::fence(Ordering::Acquire);
        if e[0].load(Ordering::Relaxed) != seq || start == 0 || stride == 0 {
            continue;
        }
        if (start..end).contains(&addr) {
            return Some((start, stride, usable));
        }
    }
    None
}

/// Installs the handler (once per process) and an alternate signal stack on the
/// calling thread if it has none (once per thread).
///
/// Out of line: it reads thread-locals, and may be called from coroutine code that
/// moves between threads (see `crate::context`).
#[inline(never)]
pub(crate) fn prepare_thread() {
    INSTALL.call_once(install);
    thread_local! {
        static ALT: Cell<bool> = const { Cell::new(false) };
        static ALT_STACK: AltStack = const { AltStack(Cell::new(ptr::null_mut())) };
    }
    let _ = ALT.try_with(|done| {
        if !done.get() {
            done.set(true);
            let _ = ALT_STACK.try_with(AltStack::ensure);
        }
    });
}

/// The alternate signal stack this module installed on a thread, if any; removed and
/// unmapped when the thread exits.
struct AltStack(Cell<*mut libc::c_void>);

const ALT_STACK_SIZE: usize = 64 * 1024;

impl AltStack {
    fn ensure(&self) {
        // SAFETY: querying the current alternate stack has no preconditions.
        let mut old: libc::stack_t = unsafe { mem::zeroed() };
        // SAFETY: `old` is a valid out-pointer.
        if unsafe { libc::sigaltstack(ptr::null(), &mut old) } != 0 {
            return;
        }
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return; // The thread has one (Rust's runtime installs one per std thread).
        }
        // SAFETY: fresh anonymous mapping.
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                ALT_STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return;
        }
        let new = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: `new` describes memory we own for the rest of the thread's life.
        if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } == 0 {
            self.0.set(mem);
        } else {
            // SAFETY: not installed, so nothing uses it.
            unsafe { libc::munmap(mem, ALT_STACK_SIZE) };
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let mem = self.0.replace(ptr::null_mut());
        if !mem.is_null() {
            // Thread-local destructors are running: other ones, after this, may still
            // run coroutines. Keep the stack installed until they are all done.
            hand_over(mem);
        }
    }
}

/// The thread is exiting (its thread-local destructors are about to run, or running):
/// std has removed the alternate signal stack it gives each thread when the thread's
/// main function returned, so install one for the destructors that run coroutines,
/// freed after the last of them (see [`hand_over`]).
pub(crate) fn thread_exits() {
    let mem = AltStack(Cell::new(ptr::null_mut()));
    mem.ensure();
    let mem = mem.0.replace(ptr::null_mut());
    if !mem.is_null() {
        hand_over(mem);
    }
}

/// A process-wide pthread key whose destructor frees the alternate stack handed to it:
/// pthread key destructors run after every thread-local destructor of the thread.
fn late_key() -> Option<libc::pthread_key_t> {
    static KEY: std::sync::OnceLock<Option<libc::pthread_key_t>> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; the destructor has the C signature.
        (unsafe { libc::pthread_key_create(&mut key, Some(free_late)) } == 0).then_some(key)
    })
}

/// Leaves the installed alternate stack `mem` (ours, `ALT_STACK_SIZE` bytes) in place
/// until the thread's pthread key destructors run, and frees it then; leaks it (64 KiB,
/// once per thread) if that cannot be arranged.
fn hand_over(mem: *mut libc::c_void) {
    let Some(key) = late_key() else {
        return; // leaked
    };
    // SAFETY: a valid key; the slot holds null or a stack handed over before (then
    // this one is leaked: it cannot happen, one thread has one of ours installed).
    unsafe {
        if libc::pthread_getspecific(key).is_null() {
            libc::pthread_setspecific(key, mem);
        }
    }
}

/// The late key's destructor: removes `mem` if it is still the installed alternate
/// stack, and unmaps it.
unsafe extern "C" fn free_late(mem: *mut libc::c_void) {
    // SAFETY: querying the alternate stack has no preconditions.
    let mut now: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: `now` is a valid out-pointer; `mem` is a stack we mapped and installed
    // (handed over by `hand_over`), nothing runs on it once it is disabled, and the
    // thread's thread-local destructors, the last code that could run a coroutine on
    // this thread, are done.
    unsafe {
        if libc::sigaltstack(ptr::null(), &mut now) == 0 && now.ss_sp == mem {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: ALT_STACK_SIZE,
            };
            libc::sigaltstack(&disable, ptr::null_mut());
        }
        libc::munmap(mem, ALT_STACK_SIZE);
    }
}

fn install() {
    PAGE.store(super::page_size(), Ordering::Relaxed);
    for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler has the
        // SA_SIGINFO signature; PREVIOUS is written here, before the handler can run
        // (it is installed by this very call), and only read afterwards.
        unsafe {
            let mut action: libc::sigaction = mem::zeroed();
            action.sa_sigaction = handler as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = ptr::addr_of_mut!(PREVIOUS[i]).cast::<libc::sigaction>();
            libc::sigaction(sig, &action, previous);
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    let key = addr & !(page - 1);
    if addr != 0 {
        if let Some(size) = lookup(key).or_else(|| lookup_slab(addr)) {
            // One report at a time if several threads overflow at once.
            while HANDLING.swap(true, Ordering::Acquire) {
                std::hint::spin_loop();
            }
            report_overflow(size);
        }
    }
    forward(sig, info, ctx);
}

/// Writes the overflow message with async-signal-safe calls only, then aborts.
fn report_overflow(size: usize) -> ! {
    let mut buf = [0u8; 160];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    push(b"stackful: coroutine stack overflow (stack size ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(&digits[i..]);
    push(" bytes) \u{2014} raise it with Builder::stack_size\n".as_bytes());
    // SAFETY: write(2) and abort(3) are async-signal-safe; `buf[..len]` is initialised.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::abort();
    }
}

/// Hands a fault that is not ours to the previous handler.
fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let index = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREVIOUS was filled by `install` before this handler was installed.
    let previous = unsafe {
        ptr::addr_of!(PREVIOUS[index])
            .cast::<libc::sigaction>()
            .read()
    };
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again
        // and the fault terminates the process as if we had never been installed.
        // SAFETY: a zeroed sigaction with SIG_DFL is valid.
        unsafe {
            let mut default: libc::sigaction = mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut default.sa_mask);
            libc::sigaction(sig, &default, ptr::null_mut());
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so this is its
        // signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(action) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain (non-SA_SIGINFO) handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { mem::transmute(action) };
        f(sig);
    }
}

// 64-bit only: the colliding keys are page addresses in the kernel's half of the
// address space, and a 32-bit one has too few of them (its hash keeps 32 bits) to
// find enough collisions.
#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::{lookup, register, slot_of, unregister};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    /// `n` distinct page addresses whose probe sequences all start at the same slot.
    /// They lie above the 47-bit user address space, so no real stack has them.
    fn colliding_keys(n: usize) -> Vec<usize> {
        let base = 0xffff_9000_0000_0000_usize;
        let slot = slot_of(base);
        let keys: Vec<usize> = (0..)
            .map(|i: usize| base + (i << 12))
            .filter(|&k| slot_of(k) == slot)
            .take(n)
            .collect();
        assert!(keys.iter().all(|&k| slot_of(k) == slot));
        keys
    }

    #[test]
    fn colliding_keys_each_keep_their_size() {
        let keys = colliding_keys(8);
        for (i, &k) in keys.iter().enumerate() {
            assert!(register(k, 4096 * (i + 1)));
        }
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(lookup(k), Some(4096 * (i + 1)));
        }
        for &k in keys.iter().step_by(2) {
            unregister(k);
        }
        for (i, &k) in keys.iter().enumerate() {
            let expected = (i % 2 == 1).then_some(4096 * (i + 1));
            assert_eq!(lookup(k), expected);
        }
        for &k in keys.iter().skip(1).step_by(2) {
            unregister(k);
        }
        assert!(keys.iter().all(|&k| lookup(k).is_none()));
    }

    /// Threads register, look up and unregister keys that collide (and reuse the
    /// same freed slots) at the same time: every key must be found with its own size
    /// while it is registered, and not after.
    #[test]
    fn concurrent_register_with_colliding_keys() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 2;
        const ROUNDS: usize = 20_000;
        // Not the keys of the other test, which may run at the same time.
        let keys = colliding_keys(8 + THREADS * PER_THREAD);
        let keys = &keys[8..];
        let errors = AtomicUsize::new(0);
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let mine = &keys[t * PER_THREAD..(t + 1) * PER_THREAD];
                let (errors, barrier) = (&errors, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for round in 0..ROUNDS {
                        for (j, &k) in mine.iter().enumerate() {
                            let size = (round * 8 + t * PER_THREAD + j + 1) << 12;
                            if !register(k, size) {
                                errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if lookup(k) != Some(size) {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        for &k in mine {
                            unregister(k);
                            if lookup(k).is_some() {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(
            errors.load(Ordering::Relaxed),
            0,
            "lost or mixed-up entries"
        );
    }
}
