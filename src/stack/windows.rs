//! [`DefaultStack`] on Windows: committed memory from `VirtualAlloc` with a guard
//! region below it.

use super::{page_size, round_stack_size, Stack};
use std::ffi::c_void;
use std::io;
use std::mem;
use std::ptr::{self, NonNull};

/// Size of the guard region below [`DefaultStack::bottom`](Stack::bottom), in pages:
/// the `PAGE_GUARD` page, the two-page stack guarantee (the minimum on x64, and what
/// wine assumes) and the page that is never committed.
const GUARD_PAGES: usize = 4;

// The few kernel32 functions this module needs, declared here rather than through a
// bindings crate. Layouts and constants are those of the Windows SDK (winnt.h,
// memoryapi.h, sysinfoapi.h) for 64-bit Windows.
#[allow(non_snake_case)]
#[repr(C)]
struct MEMORY_BASIC_INFORMATION {
    BaseAddress: *mut c_void,
    AllocationBase: *mut c_void,
    AllocationProtect: u32,
    PartitionId: u16,
    RegionSize: usize,
    State: u32,
    Protect: u32,
    Type: u32,
}

#[allow(non_snake_case)]
#[repr(C)]
struct SYSTEM_INFO {
    wProcessorArchitecture: u16,
    wReserved: u16,
    dwPageSize: u32,
    lpMinimumApplicationAddress: *mut c_void,
    lpMaximumApplicationAddress: *mut c_void,
    dwActiveProcessorMask: usize,
    dwNumberOfProcessors: u32,
    dwProcessorType: u32,
    dwAllocationGranularity: u32,
    wProcessorLevel: u16,
    wProcessorRevision: u16,
}

const MEM_COMMIT: u32 = 0x1000;
const MEM_RESERVE: u32 = 0x2000;
const MEM_RELEASE: u32 = 0x8000;
const PAGE_NOACCESS: u32 = 0x01;
const PAGE_READWRITE: u32 = 0x04;
const PAGE_GUARD: u32 = 0x100;

#[link(name = "kernel32")]
extern "system" {
    fn VirtualAlloc(address: *mut c_void, size: usize, kind: u32, protect: u32) -> *mut c_void;
    fn VirtualFree(address: *mut c_void, size: usize, kind: u32) -> i32;
    fn VirtualQuery(
        address: *const c_void,
        info: *mut MEMORY_BASIC_INFORMATION,
        length: usize,
    ) -> usize;
    fn GetSystemInfo(info: *mut SYSTEM_INFO);
}

/// The system page size.
pub(crate) fn system_page_size() -> usize {
    // SAFETY: GetSystemInfo fills the struct it is given; all-zero is a valid value.
    let info = unsafe {
        let mut info: SYSTEM_INFO = mem::zeroed();
        GetSystemInfo(&mut info);
        info
    };
    info.dwPageSize as usize
}

/// A stack allocated with `VirtualAlloc`, laid out like a Windows thread's stack
/// whose whole size is committed: the usable part committed read-write, and below it
/// a `PAGE_GUARD` page, two committed pages (the stack guarantee) and one page that
/// is reserved but never committed.
///
/// ```text
/// reservation start                                              reservation end = top()
/// | reserved | guarantee (2 pages) | PAGE_GUARD | usable, grows down <-- |
///                                              ^ bottom()
/// ```
///
/// Running into the guard page makes Windows move it down once into the guarantee,
/// and then raise `STATUS_STACK_OVERFLOW` with the rest of the guarantee as room for
/// the handler (the context switch installs this stack's bounds in the Thread
/// Information Block while the coroutine runs, so Windows treats it as the current
/// stack). Rust's runtime reports that ("has overflowed its stack") and aborts the
/// process.
///
/// The usable part is committed when the stack is made: it counts against the
/// system's commit limit (RAM plus page file) from the start, although Windows backs
/// only the pages a coroutine touches with memory. (A thread's stack is committed
/// as it grows, by moving its guard page down; wine 8 does not do that for these
/// stacks, and only what runs under wine is tested here.) Dropping the stack releases
/// the reservation.
#[derive(Debug)]
pub struct DefaultStack {
    /// Start of the reservation (the guard page).
    base: NonNull<u8>,
    /// Length of the whole reservation, guard included.
    len: usize,
    /// Length of the guard region.
    guard: usize,
    /// valgrind's id for this stack (always 0: valgrind does not run Windows programs).
    valgrind_id: usize,
}

// SAFETY: a DefaultStack exclusively owns its reservation; nothing in it is tied to a
// thread.
unsafe impl Send for DefaultStack {}
// SAFETY: `&DefaultStack` only gives out addresses.
unsafe impl Sync for DefaultStack {}

impl DefaultStack {
    /// Allocates a stack with at least `size` usable bytes (rounded up to whole pages and
    /// to at least [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE)) plus a guard region of
    /// [`GUARD_PAGES`] pages.
    ///
    /// # Errors
    /// The `VirtualAlloc` error when the address space or the commit limit is exhausted.
    pub fn new(size: usize) -> io::Result<Self> {
        let usable = round_stack_size(size)?;
        let page = page_size();
        let guard = GUARD_PAGES * page;
        let len = usable.checked_add(guard).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "stackful: stack size too large",
            )
        })?;
        // SAFETY: a fresh reservation at an address of the system's choosing does not
        // alias anything.
        let base = unsafe { VirtualAlloc(ptr::null_mut(), len, MEM_RESERVE, PAGE_NOACCESS) };
        if base.is_null() {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: VirtualAlloc of a {len}-byte coroutine stack failed: {err}"),
            ));
        }
        let bottom = base as usize + guard;
        let commit = |address: usize, size: usize, protect: u32| {
            // SAFETY: committing pages of our own reservation.
            !unsafe { VirtualAlloc(address as *mut c_void, size, MEM_COMMIT, protect) }.is_null()
        };
        let committed = commit(bottom, usable, PAGE_READWRITE)
            && commit(bottom - page, page, PAGE_READWRITE | PAGE_GUARD)
            && commit(base as usize + page, 2 * page, PAGE_READWRITE);
        if !committed {
            let err = io::Error::last_os_error();
            // SAFETY: releasing the reservation made above; nothing refers to it.
            unsafe { VirtualFree(base, 0, MEM_RELEASE) };
            return Err(io::Error::new(
                err.kind(),
                format!("stackful: VirtualAlloc could not commit a {usable}-byte coroutine stack: {err}"),
            ));
        }
        let mut stack = DefaultStack {
            // SAFETY: VirtualAlloc succeeded, so the address is not null.
            base: unsafe { NonNull::new_unchecked(base.cast()) },
            len,
            guard,
            valgrind_id: 0,
        };
        stack.valgrind_id = super::track_mapped(bottom, stack.top().as_ptr() as usize, false);
        Ok(stack)
    }

    /// Usable size in bytes (without the guard region).
    pub fn size(&self) -> usize {
        self.len - self.guard
    }
}

// SAFETY: `base..base+len` is ours until drop; `top` is page-aligned (so 16-aligned),
// the usable part is at least MIN_STACK_SIZE and committed read-write, and the guard
// region below `bottom` protects it: its PAGE_GUARD page faults on the first touch
// (Windows then raises STATUS_STACK_OVERFLOW, see the type's docs), and its lowest
// page is never committed.
unsafe impl Stack for DefaultStack {
    fn top(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the reservation, never null.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.len)) }
    }

    fn bottom(&self) -> NonNull<u8> {
        // SAFETY: inside the reservation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.guard)) }
    }

    fn guard_size(&self) -> usize {
        self.guard
    }
}

impl Drop for DefaultStack {
    fn drop(&mut self) {
        super::untrack_mapped(
            self.bottom().as_ptr() as usize,
            self.top().as_ptr() as usize,
            self.valgrind_id,
            false,
        );
        // SAFETY: we own the reservation and nothing runs on it any more (see `Stack`).
        unsafe { VirtualFree(self.base.as_ptr().cast(), 0, MEM_RELEASE) };
    }
}

/// The Thread Information Block stack fields for a coroutine stack, installed by
/// `stackful_fiber_enter` (asm/x86_64_windows.S). Later switches save and restore
/// them (with the `StackLimit` Windows lowers as the stack grows).
#[repr(C)]
pub(crate) struct StackTib {
    /// `NT_TIB.StackBase`: the end of the stack's committed region.
    stack_base: usize,
    /// `NT_TIB.StackLimit`: the start of the stack's committed region.
    stack_limit: usize,
    /// `TEB.DeallocationStack`: the start of the stack's reservation.
    deallocation_stack: usize,
}

impl StackTib {
    /// The fields for the stack whose (fiber) top is `top`, from the memory map: the
    /// committed read-write region that contains `top - 1` and the reservation it
    /// belongs to. For a [`DefaultStack`] these are exactly its committed part and its
    /// reservation; for a custom stack (e.g. on the heap) they cover at least the
    /// stack, which is all Windows needs (frames must lie between limit and base).
    pub(crate) fn of_stack_top(top: usize) -> StackTib {
        let query = |address: usize| {
            // SAFETY: VirtualQuery writes at most `size_of` bytes into `info`; an
            // all-zero MEMORY_BASIC_INFORMATION is a valid value.
            unsafe {
                let mut info: MEMORY_BASIC_INFORMATION = mem::zeroed();
                let n = VirtualQuery(
                    address as *const c_void,
                    &mut info,
                    mem::size_of::<MEMORY_BASIC_INFORMATION>(),
                );
                (n != 0).then_some(info)
            }
        };
        let fallback = StackTib {
            stack_base: top,
            stack_limit: (top - 1) & !(page_size() - 1),
            deallocation_stack: (top - 1) & !(page_size() - 1),
        };
        let Some(at_top) = query(top - 1) else {
            return fallback;
        };
        let reservation = at_top.AllocationBase as usize;
        let end = at_top.BaseAddress as usize + at_top.RegionSize;
        // VirtualQuery describes the region from the queried page upwards; walk the
        // reservation's regions from its start to find where the one holding `top`
        // begins.
        let mut address = reservation;
        for _ in 0..64 {
            let Some(info) = query(address) else { break };
            let region_end = info.BaseAddress as usize + info.RegionSize;
            if region_end > top - 1 {
                return StackTib {
                    stack_base: end,
                    stack_limit: info.BaseAddress as usize,
                    deallocation_stack: reservation,
                };
            }
            address = region_end;
        }
        StackTib {
            stack_base: end,
            ..fallback
        }
    }
}
