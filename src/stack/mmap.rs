//! [`DefaultStack`]: an anonymous mapping with a guard page at the low end, or (Linux
//! with guard regions) a slot of a slab.

use super::{page_size, round_stack_size, Stack};
use std::io;
use std::ptr::{self, NonNull};

/// A stack mapped with `mmap`, with one inaccessible (`PROT_NONE`) guard page below
/// its usable part.
///
/// ```text
/// mapping start                                            mapping end = top()
/// | guard page (PROT_NONE) | usable (PROT_READ|PROT_WRITE), grows down <-- |
///                          ^ bottom()
/// ```
///
/// The mapping is private, anonymous and `MAP_NORESERVE` (plus `MAP_STACK` where it
/// exists): only the pages a coroutine touches cost memory. Dropping it unmaps it.
///
/// On Linux 6.14 and later (where `madvise(MADV_GUARD_INSTALL)` works and shows in
/// `/proc/self/pagemap`; detected once per process), stacks of up to 32 MiB are instead
/// slots of large shared mappings ("slabs"), each with a guard page installed in the
/// page tables rather than a mapping of its own: a million coroutines then fit under
/// the default `vm.max_map_count`. The layout of each stack is the same. Dropping such
/// a stack frees its slot (its pages are released in batches, and a slab whose stacks
/// are all free is unmapped).
#[derive(Debug)]
pub struct DefaultStack {
    /// End of the mapping or slot: the top of the stack.
    top: NonNull<u8>,
    /// Usable size; one guard page (`page_size()`) lies below it, at the start of the
    /// mapping or slot.
    size: usize,
    /// valgrind's id for this stack (0 when not running under valgrind).
    valgrind_id: usize,
    /// The slab the slot belongs to (`None`: a mapping of its own).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    slab: Option<NonNull<super::slab::Slab>>,
}

// SAFETY: a DefaultStack exclusively owns its mapping or slot; nothing in it is tied to
// a thread (the slab bookkeeping is behind a process-wide lock).
unsafe impl Send for DefaultStack {}
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

impl DefaultStack {
    /// Maps a stack with at least `size` usable bytes (rounded up to whole pages and
    /// to at least [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE)) plus one guard page.
    ///
    /// # Errors
    /// The `mmap`, `mprotect` or `madvise` error: typically `ENOMEM` when the address
    /// space, the `RLIMIT_AS` limit or the `vm.max_map_count` number of mappings is
    /// exhausted.
    pub fn new(size: usize) -> io::Result<Self> {
        let usable = round_stack_size(size)?;
        let guard = page_size();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(slot) = super::slab::take(usable)? {
            let mut stack = DefaultStack {
                // SAFETY: the slot's end, inside or one past its slab, never null.
                top: unsafe { NonNull::new_unchecked(slot.start.as_ptr().add(guard + usable)) },
                size: usable,
                valgrind_id: 0,
                slab: Some(slot.slab),
            };
            stack.valgrind_id = super::track_mapped(
                stack.bottom().as_ptr() as usize,
                stack.top().as_ptr() as usize,
                true,
            );
            return Ok(stack);
        }
        let len = usable.checked_add(guard).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "stackful: stack size too large",
            )
        })?;

        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
        #[cfg(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd"))]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_STACK;
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd"
        )))]
        let flags = libc::MAP_PRIVATE | libc::MAP_ANON;

        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing
        // does not alias anything.
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: mmap of a {len}-byte coroutine stack failed: {err}"),
            ));
        }
        // SAFETY: the first `guard` bytes belong to the mapping we just created.
        if unsafe { libc::mprotect(mapping, guard, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping exactly what we mapped; nothing references it yet.
            unsafe { libc::munmap(mapping, len) };
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: mprotect of a coroutine stack's guard page failed: {err}"),
            ));
        }
        let mut stack = DefaultStack {
            // SAFETY: one past the end of the mapping that mmap returned, not null.
            top: unsafe { NonNull::new_unchecked(mapping.cast::<u8>().add(len)) },
            size: usable,
            valgrind_id: 0,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            slab: None,
        };
        stack.valgrind_id = super::track_mapped(
            stack.bottom().as_ptr() as usize,
            stack.top().as_ptr() as usize,
            false,
        );
        Ok(stack)
    }

    /// Start of the mapping or slot: the guard page.
    fn mapping(&self) -> NonNull<u8> {
        // SAFETY: the guard page is part of the mapping or slot, which is not at 0.
        unsafe { NonNull::new_unchecked(self.bottom().as_ptr().sub(page_size())) }
    }

    /// Usable size in bytes (without the guard page).
    pub fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: `top - size - page..top` is ours until drop (a whole mapping, or a slab slot that
// the slab hands to no one else until it is given back); `top` is page-aligned (so
// 16-aligned), the usable part is at least MIN_STACK_SIZE, and the guard page below
// `bottom` is PROT_NONE or a guard region (faults on any access either way).
unsafe impl Stack for DefaultStack {
    fn top(&self) -> NonNull<u8> {
        self.top
    }

    fn bottom(&self) -> NonNull<u8> {
        // SAFETY: inside the mapping, above its guard page: not null.
        unsafe { NonNull::new_unchecked(self.top.as_ptr().sub(self.size)) }
    }

    fn guard_size(&self) -> usize {
        page_size()
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(slab) = self.slab {
            super::untrack_mapped(
                self.bottom().as_ptr() as usize,
                self.top().as_ptr() as usize,
                self.valgrind_id,
                true,
            );
            // SAFETY: the slot came from `slab::take` and is given back once, here;
            // nothing runs on it any more (see `Stack`).
            unsafe { super::slab::give_back(self.mapping(), slab) };
            return;
        }
        super::untrack_mapped(
            self.bottom().as_ptr() as usize,
            self.top().as_ptr() as usize,
            self.valgrind_id,
            false,
        );
        // SAFETY: we own the mapping and nothing runs on it any more (see `Stack`).
        unsafe { libc::munmap(self.mapping().as_ptr().cast(), self.size + page_size()) };
    }
}
