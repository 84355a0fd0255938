//! Slabs: many default stacks carved from one mapping, each with a guard page that lives
//! in the page tables instead of being a mapping of its own (Linux ≥ 6.13).
//!
//! A stack with an `mprotect`ed guard page costs two kernel mappings (VMAs), and the
//! default `vm.max_map_count` of 65530 then caps a process at about 32,700 coroutines;
//! long before that, every `mmap`/`munmap` slows down with the number of mappings.
//! `madvise(MADV_GUARD_INSTALL)` installs a guard page as a marker in the page tables:
//! touching it faults like a `PROT_NONE` page, but the mapping is not split. So stacks
//! of one size are cut from large mappings ("slabs"):
//!
//! ```text
//! slab base                                                              slab end
//! | guard | stack 0 ... top | guard | stack 1 ... top | ... | guard | stack n-1 top |
//!   <-------- stride -------> <-------- stride ------->
//! ```
//!
//! * A slot's guard page is installed the first time the slot is handed out, and stays:
//!   guard markers survive `MADV_DONTNEED` (checked when support is detected).
//! * A freed slot is first kept "dirty" (its touched pages still there, so the next
//!   stack of that size taken from the slab costs no page fault); once a slab has
//!   [`RELEASE_BATCH`] dirty slots, their pages are released (`MADV_DONTNEED`) and the
//!   slots become "clean". A slab whose last stack is freed is unmapped whole.
//! * Every slab is entered in the overflow reporter's slab table (see
//!   `overflow::set_slab`), so a fault in any guard page of any slab is reported as a
//!   coroutine stack overflow.
//! * The bookkeeping is behind one process-wide mutex: a default stack belongs to no
//!   thread and may be freed on another thread than the one that took it. The
//!   per-thread pool in front of it (`pool.rs`) keeps the common case off the lock.
//!
//! Support is detected once per process ([`guard_regions`]): the kernel must accept
//! `MADV_GUARD_INSTALL` *and* the guard must show in `/proc/self/pagemap`
//! (`PM_GUARD_REGION`, Linux ≥ 6.14), before and after `MADV_DONTNEED`. Emulators
//! (qemu-user) and some tools return success from an `madvise` they do not carry out;
//! trusting the return value alone could silently remove overflow detection. Where the
//! check fails, every default stack keeps a mapping of its own with an `mprotect`ed
//! guard page, as before.

use super::{overflow, page_size};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

/// `madvise` advice that installs guard markers (Linux ≥ 6.13; not in `libc` yet).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `/proc/self/pagemap` bit of a page that holds a guard marker (Linux ≥ 6.14).
const PM_GUARD_REGION: u64 = 1 << 58;

/// Address space of one slab: 256 MiB (about 3,800 stacks of 64 KiB, 127 of 2 MiB).
/// Only touched pages, and the page tables of the guard pages, cost memory.
#[cfg(target_pointer_width = "64")]
const SLAB_BYTES: usize = 256 << 20;
/// 32-bit address spaces are small: 16 MiB (15 default stacks, 240 of 64 KiB).
#[cfg(not(target_pointer_width = "64"))]
const SLAB_BYTES: usize = 16 << 20;
/// Stacks larger than this get a mapping of their own (a slab would hold too few).
pub(crate) const MAX_SLAB_STACK: usize = 32 << 20;
/// Most stacks in one slab (slot indices fit in `u32` with room to spare).
const MAX_SLOTS: usize = 1 << 16;
/// Freed slots whose pages a slab keeps before it releases them all at once.
const RELEASE_BATCH: usize = 64;

/// Whether guard regions are used: 0 not known yet, 1 yes, 2 no.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Whether default stacks come from slabs with `MADV_GUARD_INSTALL` guard pages
/// (detected once per process; see the module docs).
#[inline]
pub(crate) fn guard_regions() -> bool {
    match MODE.load(Ordering::Relaxed) {
        0 => detect(),
        mode => mode == 1,
    }
}

#[cold]
#[inline(never)]
fn detect() -> bool {
    let yes = probe();
    // Two threads may probe at once; both find the same answer.
    MODE.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
    yes
}

/// Installs a guard page in a scratch mapping and checks that the kernel really put it
/// there and keeps it across `MADV_DONTNEED`.
fn probe() -> bool {
    use std::os::unix::fs::FileExt;
    let page = page_size();
    let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
        return false;
    };
    let guarded = |addr: usize| -> Option<bool> {
        let mut entry = [0u8; 8];
        pagemap
            .read_exact_at(&mut entry, (addr / page * 8) as u64)
            .ok()?;
        Some(u64::from_ne_bytes(entry) & PM_GUARD_REGION != 0)
    };
    // SAFETY: a fresh anonymous mapping that nothing else refers to.
    let mem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            3 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return false;
    }
    let start = mem as usize;
    let guard = start + page;
    // SAFETY: the middle page of our scratch mapping; nothing uses it.
    let installed = unsafe { libc::madvise(guard as *mut _, page, MADV_GUARD_INSTALL) } == 0;
    let ok = installed
        && guarded(guard) == Some(true)
        && guarded(start) == Some(false)
        && guarded(guard + page) == Some(false)
        // SAFETY: releasing the pages of our own scratch mapping.
        && unsafe { libc::madvise(mem, 3 * page, libc::MADV_DONTNEED) } == 0
        && guarded(guard) == Some(true);
    // SAFETY: unmapping exactly the scratch mapping, which nothing references.
    unsafe { libc::munmap(mem, 3 * page) };
    ok
}

/// One mapping cut into `slots` stacks of `stride` bytes (guard page included).
///
/// Its fields after `stride` change only under the [`SLABS`] lock.
pub(crate) struct Slab {
    base: usize,
    len: usize,
    stride: usize,
    slots: usize,
    /// Its entry in the overflow reporter's slab table.
    entry: usize,
    /// Slots `fresh..slots` were never handed out (no guard installed yet).
    fresh: usize,
    /// Freed slots whose touched pages are still there.
    dirty: Vec<u32>,
    /// Freed slots whose pages were released.
    clean: Vec<u32>,
    /// Slots handed out and not freed yet.
    live: usize,
    /// Its index in its class's list of slabs with a free slot, or `NOT_PARTIAL`.
    partial: usize,
    /// Its class's index in [`Slabs::classes`].
    class: usize,
}

const NOT_PARTIAL: usize = usize::MAX;

impl Slab {
    fn has_free_slot(&self) -> bool {
        self.fresh < self.slots || !self.dirty.is_empty() || !self.clean.is_empty()
    }

    /// Releases the pages of every dirty slot; they become clean.
    ///
    /// Adjacent dirty slots are released by one `madvise` over the whole run (stacks
    /// freed in the order they were taken, the common case, make a batch one call):
    /// the guard pages inside the run keep their markers (`MADV_DONTNEED` leaves guard
    /// markers in place, which [`probe`] checked before any slab was made).
    fn release_dirty(&mut self) {
        let page = page_size();
        self.dirty.sort_unstable();
        let mut runs = self.dirty.iter().map(|&i| i as usize).peekable();
        while let Some(first) = runs.next() {
            let mut last = first;
            while runs.peek() == Some(&(last + 1)) {
                last += 1;
                runs.next();
            }
            let start = self.base + first * self.stride + page;
            let end = self.base + (last + 1) * self.stride;
            // SAFETY: the usable parts of freed slots `first..=last` of our own mapping
            // and the guard pages between them: nothing uses them. The guard page
            // below `first` is left alone; those inside the run keep their markers.
            unsafe { libc::madvise(start as *mut _, end - start, libc::MADV_DONTNEED) };
        }
        // Reused from the top of the list: the lowest slot first keeps live stacks
        // packed at the start of the slab.
        self.dirty.reverse();
        self.clean.append(&mut self.dirty);
    }
}

/// The stacks of one usable size.
struct Class {
    usable: usize,
    /// Slabs of this class with at least one free slot (the last one is used first).
    partial: Vec<*mut Slab>,
}

struct Slabs {
    classes: Vec<Class>,
    /// Free entries of the overflow reporter's slab table below `next_entry`.
    free_entries: Vec<usize>,
    next_entry: usize,
}

// SAFETY: the `Slab`s the pointers point to are only read or written while the
// `SLABS` lock is held, on whatever thread holds it.
unsafe impl Send for Slabs {}

static SLABS: Mutex<Slabs> = Mutex::new(Slabs {
    classes: Vec::new(),
    free_entries: Vec::new(),
    next_entry: 0,
});

/// The lock; a panic while it was held (an allocation failure aborts instead, and
/// nothing else in here panics) leaves consistent data, so poisoning is ignored.
fn lock() -> MutexGuard<'static, Slabs> {
    SLABS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stack slot: the start of its guard page (its top is `stride` bytes above).
pub(crate) struct Slot {
    pub(crate) start: NonNull<u8>,
    pub(crate) slab: NonNull<Slab>,
}

/// A slot for a stack of `usable` bytes (a whole number of pages, at most
/// [`MAX_SLAB_STACK`]) with its guard page installed, or `Ok(None)` when slabs are not
/// used (no guard-region support, or the overflow table is full): the caller then maps
/// the stack on its own.
pub(crate) fn take(usable: usize) -> io::Result<Option<Slot>> {
    if usable > MAX_SLAB_STACK || !guard_regions() {
        return Ok(None);
    }
    let page = page_size();
    let mut slabs = lock();
    let class = match slabs.classes.iter().position(|c| c.usable == usable) {
        Some(c) => c,
        None => {
            slabs.classes.push(Class {
                usable,
                partial: Vec::new(),
            });
            slabs.classes.len() - 1
        }
    };
    let slab = match slabs.classes[class].partial.last() {
        Some(&slab) => slab,
        None => match new_slab(&mut slabs, class, usable + page)? {
            Some(slab) => slab,
            None => return Ok(None),
        },
    };
    // SAFETY: slabs in a partial list are alive (unmapped and freed only once their
    // last slot is freed, after leaving the list), and we hold the lock.
    let s = unsafe { &mut *slab };
    let index = if let Some(i) = s.dirty.pop().or_else(|| s.clean.pop()) {
        i as usize
    } else {
        let i = s.fresh;
        let guard = s.base + i * s.stride;
        // SAFETY: the first page of a never-used slot of our own mapping.
        if unsafe { libc::madvise(guard as *mut _, page, MADV_GUARD_INSTALL) } != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: madvise(MADV_GUARD_INSTALL) of a coroutine stack's guard page failed: {err}"),
            ));
        }
        s.fresh += 1;
        i
    };
    s.live += 1;
    if !s.has_free_slot() {
        remove_partial(&mut slabs.classes[class], slab);
    }
    Ok(Some(Slot {
        // SAFETY: inside the mapping, which is never at address 0.
        start: unsafe { NonNull::new_unchecked((s.base + index * s.stride) as *mut u8) },
        // SAFETY: a live `Box`'s pointer.
        slab: unsafe { NonNull::new_unchecked(slab) },
    }))
}

/// Maps a new slab for `class` and puts it in the class's partial list; `Ok(None)` if
/// the overflow table has no room for it.
fn new_slab(slabs: &mut Slabs, class: usize, stride: usize) -> io::Result<Option<*mut Slab>> {
    let entry = match slabs.free_entries.pop() {
        Some(e) => e,
        None if slabs.next_entry < overflow::SLAB_ENTRIES => {
            slabs.next_entry += 1;
            slabs.next_entry - 1
        }
        None => return Ok(None),
    };
    // Fewer slots when the address space is short (RLIMIT_AS): halve until one fits.
    let mut slots = (SLAB_BYTES / stride).clamp(1, MAX_SLOTS);
    let (base, len) = loop {
        let len = slots * stride;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing does
        // not alias anything.
        let mem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if mem != libc::MAP_FAILED {
            break (mem as usize, len);
        }
        if slots == 1 {
            let err = io::Error::last_os_error();
            slabs.free_entries.push(entry);
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: mmap of a {len}-byte coroutine stack failed: {err}"),
            ));
        }
        slots /= 2;
    };
    overflow::set_slab(entry, base, len, stride, stride - page_size());
    let c = &mut slabs.classes[class];
    let slab = Box::into_raw(Box::new(Slab {
        base,
        len,
        stride,
        slots,
        entry,
        fresh: 0,
        dirty: Vec::new(),
        clean: Vec::new(),
        live: 0,
        partial: c.partial.len(),
        class,
    }));
    c.partial.push(slab);
    Ok(Some(slab))
}

/// Takes `slab` out of its class's list of slabs with a free slot.
fn remove_partial(class: &mut Class, slab: *mut Slab) {
    // SAFETY: `slab` is alive and in this list (callers), and we hold the lock.
    let at = unsafe { std::mem::replace(&mut (*slab).partial, NOT_PARTIAL) };
    class.partial.swap_remove(at);
    if let Some(&moved) = class.partial.get(at) {
        // SAFETY: a live slab of the list; we hold the lock.
        unsafe { (*moved).partial = at };
    }
}

/// Gives back the slot at `start` (from [`take`]); nothing may use its memory any more.
///
/// # Safety
/// `slot` was returned by [`take`] and is given back once.
pub(crate) unsafe fn give_back(start: NonNull<u8>, slab: NonNull<Slab>) {
    let mut slabs = lock();
    let slab = slab.as_ptr();
    // SAFETY: a slab with a live slot is alive; we hold the lock.
    let s = unsafe { &mut *slab };
    let index = (start.as_ptr() as usize - s.base) / s.stride;
    s.live -= 1;
    let class = s.class;
    if s.live == 0 {
        // The last stack: unmap the whole slab.
        if s.partial != NOT_PARTIAL {
            remove_partial(&mut slabs.classes[class], slab);
        }
        overflow::clear_slab(s.entry);
        slabs.free_entries.push(s.entry);
        // SAFETY: every slot of the slab is free: nothing uses its memory, and the
        // overflow reporter no longer refers to it. The `Box` is not used again.
        unsafe {
            libc::munmap(s.base as *mut _, s.len);
            drop(Box::from_raw(slab));
        }
        return;
    }
    s.dirty.push(index as u32);
    if s.dirty.len() >= RELEASE_BATCH {
        s.release_dirty();
    }
    if s.partial == NOT_PARTIAL {
        let c = &mut slabs.classes[class];
        s.partial = c.partial.len();
        c.partial.push(slab);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// Whether `/proc/self/pagemap` shows a guard marker on the page at `addr`.
    fn pagemap_guard(addr: usize) -> bool {
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let mut entry = [0u8; 8];
        pagemap
            .read_exact_at(&mut entry, (addr / page_size() * 8) as u64)
            .unwrap();
        u64::from_ne_bytes(entry) & PM_GUARD_REGION != 0
    }

    /// Where guard regions are detected, every slot handed out has a real guard page
    /// below it (checked in the page tables independently of `take`), also a slot whose
    /// pages were released and that is handed out again. Where they are not (qemu-user
    /// returns 0 from `MADV_GUARD_INSTALL` without doing it), no slab is used.
    #[test]
    fn every_slot_has_its_guard_page() {
        let usable = 64 * 1024;
        if !guard_regions() {
            assert!(take(usable).unwrap().is_none());
            return;
        }
        let page = page_size();
        let check = |slot: &Slot| {
            let start = slot.start.as_ptr() as usize;
            assert!(pagemap_guard(start), "no guard at {start:#x}");
            assert!(!pagemap_guard(start + page));
            // SAFETY: the top byte of the slot's usable part, which the slot owns.
            unsafe { ((start + page + usable - 1) as *mut u8).write(1) };
        };
        let slots: Vec<Slot> = (0..2 * RELEASE_BATCH)
            .map(|_| take(usable).unwrap().unwrap())
            .collect();
        slots.iter().for_each(check);
        let keep = take(usable).unwrap().unwrap();
        for slot in slots {
            // SAFETY: from `take`, given back once.
            unsafe { give_back(slot.start, slot.slab) };
        }
        // Released in batches of RELEASE_BATCH (each batch one `madvise` over a run
        // of adjacent slots, guard pages included): all of them come back clean, their
        // pages zero again, their guard pages still there.
        let again: Vec<Slot> = (0..2 * RELEASE_BATCH)
            .map(|_| take(usable).unwrap().unwrap())
            .collect();
        for slot in &again {
            let top = slot.start.as_ptr() as usize + page + usable - 1;
            // SAFETY: the top byte of the slot's usable part, which the slot owns.
            assert_eq!(unsafe { (top as *const u8).read() }, 0, "not released");
        }
        again.iter().for_each(check);
        for slot in again.into_iter().chain([keep]) {
            // SAFETY: from `take`, given back once.
            unsafe { give_back(slot.start, slot.slab) };
        }
    }
}
