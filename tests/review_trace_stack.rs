//! Review: backtraces of a coroutine suspended with little stack left.
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::Stack;
use std::alloc::{self, Layout};
use std::hint::black_box;
use std::ptr::NonNull;

mod common;

/// Recurses until fewer than `left` bytes of the stack whose usable part ends at
/// `bottom` are free below this frame, then yields.
#[inline(never)]
fn descend(y: &YieldHandle<u32>, bottom: usize, left: usize) -> usize {
    let pad = black_box([0u8; 128]);
    let here = common::stack_address(&pad);
    if here < bottom + left {
        y.yeet(1);
        return pad[0] as usize;
    }
    descend(y, bottom, left) + black_box(pad[1]) as usize
}

/// A heap stack with a canary zone below `bottom`.
struct CanaryStack {
    base: NonNull<u8>,
    size: usize,
}

/// Every canary stack's allocation (see `CanaryStack::new`).
static KEPT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

const CANARY: usize = 64 * 1024;
const USABLE: usize = 64 * 1024;

impl CanaryStack {
    fn new() -> Self {
        let size = CANARY + USABLE;
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: non-zero size.
        let base = NonNull::new(unsafe { alloc::alloc(layout) }).unwrap();
        // SAFETY: the first CANARY bytes of our allocation.
        unsafe { base.as_ptr().write_bytes(0xA5, CANARY) };
        // Never freed (the canary zone is read after the coroutine is gone): kept
        // reachable so that valgrind's leak check does not count it as lost.
        KEPT.lock().unwrap().push(base.as_ptr() as usize);
        CanaryStack { base, size }
    }
}

// SAFETY: base..base+size is ours until drop; top is 4096-aligned; no guard region:
// the code run on it (descend) stops `left` bytes above bottom.
unsafe impl Stack for CanaryStack {
    fn top(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the allocation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.size)) }
    }
    fn bottom(&self) -> NonNull<u8> {
        // SAFETY: inside the allocation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(CANARY)) }
    }
}

/// The canary zone's state after the coroutine's memory is released: how many bytes
/// below `bottom` were written.
fn written_below(base: usize) -> usize {
    // SAFETY: reading our leaked canary zone.
    let zone = unsafe { std::slice::from_raw_parts(base as *const u8, CANARY) };
    zone.iter().rev().position(|&b| b == 0xA5).unwrap_or(CANARY)
}

/// A generator on a canary stack, suspended with fewer than `left` bytes free below
/// its frames (its own code stays inside the stack: within `Stack`'s contract).
fn suspended_with(left: usize) -> (StackfulGenerator<'static, u32, (), ()>, usize) {
    // Under AddressSanitizer the crate's own frames of a suspension (`yeet`) take more
    // than the 2 KiB the smallest case leaves: leave 2 KiB more (still far below the
    // backtrace reserve).
    let left = if cfg!(stackful_asan) {
        left + 2048
    } else {
        left
    };
    let stack = CanaryStack::new();
    let base = stack.base.as_ptr() as usize;
    let bottom = base + CANARY;
    let mut gen = StackfulGenerator::with_stack(stack, move |y: &YieldHandle<u32>, ()| {
        descend(y, bottom, left);
    });
    assert!(matches!(
        std::pin::Pin::new(&mut gen).resume(()),
        GeneratorState::Yielded(1)
    ));
    assert_eq!(written_below(base), 0);
    (gen, base)
}

/// A coroutine on a custom stack without guard, whose own code leaves 2 KiB free. A
/// backtrace requested through the safe `backtrace()` must not write below `bottom`
/// (it used to: 1,200 bytes in a debug build, heap corruption from safe code); there
/// is no room for one, so there is none.
#[test]
fn backtrace_of_a_nearly_full_custom_stack_stays_inside_it() {
    let (mut gen, base) = suspended_with(2048);
    assert!(gen.backtrace().is_none());
    assert_eq!(written_below(base), 0, "backtrace() wrote below the stack");
    // Still resumable where it was.
    assert!(matches!(
        std::pin::Pin::new(&mut gen).resume(()),
        GeneratorState::Complete(())
    ));
}

/// With a little more than the reserve free, there is a trace and it stays inside the
/// stack (the reserve is enough for the capture).
#[test]
fn backtrace_with_the_reserve_free_stays_inside_the_stack() {
    let (mut gen, base) = suspended_with(10 * 1024);
    let trace = gen.backtrace();
    assert!(trace.is_some());
    assert_eq!(written_below(base), 0, "backtrace() wrote below the stack");
    drop(gen);
}

/// The same through the registry, from another thread.
#[cfg(feature = "registry")]
#[test]
fn registry_trace_of_a_nearly_full_custom_stack_stays_inside_it() {
    let (gen, base) = suspended_with(2048);
    let snap = std::thread::spawn(stackful::registry::snapshot_with_backtraces)
        .join()
        .unwrap();
    assert_eq!(written_below(base), 0, "the snapshot wrote below the stack");
    let suspended: Vec<_> = snap.suspended();
    assert!(!suspended.is_empty());
    assert!(suspended
        .iter()
        .filter(|c| c.created_at().file().ends_with("review_trace_stack.rs"))
        .all(|c| c.backtrace().is_none()));
    drop(gen);
}
