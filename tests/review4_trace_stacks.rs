//! Review round 4: backtraces of a coroutine whose chain is saved on the stack of a
//! nested generator, across the kinds of stacks that generator may have: a custom
//! (heap) stack, a custom stack carved from part of a default stack, default stacks
//! just below / at / just above the slab limit (32 MiB), odd sizes, deep nesting, and
//! stacks freed and reused before the chain is made.
//!
//! Correct behaviour (the docs of `backtrace()` and of the `Stack` contract): a trace
//! when there is room where the coroutine is saved and the crate knows that stack's
//! bounds (every stack a live coroutine runs on); `None` when there is less than
//! 8 KiB there; never a write outside a live stack.
//!
//! (When this review was written, custom stacks of nested generators got `None`, and
//! one carved out of a default stack was measured against that default stack: the
//! capture wrote below it. Since then the custom stacks of live coroutines are
//! recorded, and the innermost recorded stack that holds the save point counts.)
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{DefaultStack, Stack};
use stackful::{wait, Builder};
use std::cell::Cell;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::Poll;

mod common;
use common::descend_and_wait;
use common::poll_once;

/// Default stacks of the pool are measured on every native target (see
/// review3_trace_chain.rs).
const DEFAULT_STACKS_MEASURED: bool = true;

/// A future whose closure runs a generator made by `make` (given the code to run)
/// and resumes it to completion; polled once, so that it is suspended with its save
/// point on the generator's stack, `left` bytes above the generator's stack bottom
/// (`bottom_of` gives it from an address near the generator's top).
fn chain_on<M>(make: M, left: usize) -> stackful::future::StackfulFuture<'static, usize>
where
    M: FnOnce(Box<dyn FnOnce() -> usize>) -> StackfulGenerator<'static, (), usize, ()> + 'static,
{
    let mut fut = stackful::stackful(move || {
        let mut g = make(Box::new(move || {
            let here = 0u8;
            let bottom = BOTTOM.with(|b| b.get());
            let _ = common::stack_address(&here);
            descend_and_wait(bottom, left)
        }));
        match Pin::new(&mut g).resume(()) {
            GeneratorState::Complete(v) => v,
            GeneratorState::Yielded(()) => unreachable!(),
        }
    });
    assert!(poll_once(&mut fut).is_pending());
    fut
}

thread_local! {
    /// The bottom of the stack the generator of a test runs on (set before it runs).
    static BOTTOM: Cell<usize> = const { Cell::new(0) };
}

/// A default stack of `size` bytes, handed to the generator as its own stack so that
/// its bounds are known exactly. (Given with `with_stack`, it is a custom stack to
/// the crate: its bounds come from the record of custom stacks, on every platform.)
fn gen_on_default(
    size: usize,
) -> impl FnOnce(Box<dyn FnOnce() -> usize>) -> StackfulGenerator<'static, (), usize, ()> {
    move |body| {
        let stack = DefaultStack::new(size).unwrap();
        BOTTOM.with(|b| b.set(stack.bottom().as_ptr() as usize));
        StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| body())
    }
}

fn trace_then_finish(mut fut: stackful::future::StackfulFuture<'static, usize>, expect: bool) {
    let trace = fut.backtrace();
    eprintln!("trace is_some = {}", trace.is_some());
    if let Some(t) = &trace {
        let text = format!("{t:?}");
        assert!(text.contains("descend_and_wait"), "{text}");
    }
    assert_eq!(trace.is_some(), expect);
    assert!(matches!(poll_once(&mut fut), Poll::Ready(_)));
}

macro_rules! size_case {
    ($name:ident, $size:expr, $left:expr, $expect:expr) => {
        #[test]
        fn $name() {
            common::in_child(stringify!($name), || {
                trace_then_finish(chain_on(gen_on_default($size), $left), $expect)
            });
        }
    };
}

// Slab stacks (Linux >= 6.14; mappings of their own elsewhere) up to 32 MiB, mapped
// stacks above. Exactly at the limit, one page above, and odd sizes (rounded up).
size_case!(slab_limit_exactly_room, 32 << 20, 16 * 1024, true);
size_case!(slab_limit_exactly_full, 32 << 20, 3 * 1024, false);
size_case!(slab_limit_plus_one_room, (32 << 20) + 1, 16 * 1024, true);
size_case!(slab_limit_plus_one_full, (32 << 20) + 1, 3 * 1024, false);
size_case!(slab_limit_minus_one_room, (32 << 20) - 1, 16 * 1024, true);
size_case!(slab_limit_minus_one_full, (32 << 20) - 1, 3 * 1024, false);
size_case!(odd_size_room, 20_001, 14 * 1024, true);
size_case!(odd_size_full, 20_001, 3 * 1024, false);
size_case!(odd_mapped_size_room, (33 << 20) + 12_345, 16 * 1024, true);
size_case!(odd_mapped_size_full, (33 << 20) + 12_345, 3 * 1024, false);

/// A custom heap stack (no guard page) with plenty of room, then with too little: its
/// bounds come from the record of custom stacks.
fn on_custom_heap_stack(left: usize, expect: bool) {
    let freed = Rc::new(Cell::new(false));
    let fut = chain_on(
        move |body| {
            let stack = common::HeapStack::new(256 * 1024, freed);
            BOTTOM.with(|b| b.set(stack.bottom().as_ptr() as usize));
            StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| body())
        },
        left,
    );
    trace_then_finish(fut, expect);
}

#[test]
fn custom_heap_stack_with_room_has_a_trace() {
    common::in_child("custom_heap_stack_with_room_has_a_trace", || {
        on_custom_heap_stack(128 * 1024, true)
    });
}

#[test]
fn custom_heap_stack_nearly_full_has_no_trace() {
    common::in_child("custom_heap_stack_nearly_full_has_no_trace", || {
        on_custom_heap_stack(3 * 1024, false)
    });
}

/// A custom stack made of the upper `len` bytes of a default stack it owns, the rest
/// of which holds data of its owner (here a canary). Implements the `Stack` contract
/// (no guard below `bottom`; its memory is its own and readable/writable).
struct Carved {
    inner: DefaultStack,
    len: usize,
}

// SAFETY: `top - len .. top` of a default stack this value owns (it does not move
// with the value); `top` is the default stack's, 16-aligned; `len` is at least 4096
// and a multiple of 16. No guard below `bottom` (guard_size 0): the memory below is
// the owner's, and the generator run on it leaves it several KiB of its own.
unsafe impl Stack for Carved {
    fn top(&self) -> NonNull<u8> {
        self.inner.top()
    }
    fn bottom(&self) -> NonNull<u8> {
        // SAFETY: inside the default stack (len < its size).
        unsafe { NonNull::new_unchecked(self.inner.top().as_ptr().sub(self.len)) }
    }
}

const CANARY: u8 = 0xA5;
const CANARY_LEN: usize = 16 * 1024;

/// The `Stack` docs promise: the capture "refuses (`None`) ... when it is saved on a
/// custom stack of a generator it runs (whose free space the crate cannot know)". A
/// custom stack that lies inside the usable part of a default stack is found in the
/// registry as that default stack, whose bottom is far lower: the capture runs with
/// 3 KiB free and writes below the custom stack's bottom.
#[test]
fn custom_stack_carved_from_a_default_stack_has_no_trace() {
    common::in_child(
        "custom_stack_carved_from_a_default_stack_has_no_trace",
        || {
            let canary_at = Rc::new(Cell::new(0usize));
            let canary_at2 = canary_at.clone();
            let mut fut = chain_on(
                move |body| {
                    let inner = DefaultStack::new(1 << 20).unwrap();
                    let stack = Carved {
                        inner,
                        len: 32 * 1024,
                    };
                    let bottom = stack.bottom().as_ptr() as usize;
                    BOTTOM.with(|b| b.set(bottom));
                    // The owner's data just below the carved stack.
                    // SAFETY: memory of the default stack that `Carved` owns, below the
                    // part it hands out.
                    unsafe {
                        std::ptr::write_bytes((bottom - CANARY_LEN) as *mut u8, CANARY, CANARY_LEN)
                    };
                    canary_at2.set(bottom - CANARY_LEN);
                    StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| body())
                },
                3 * 1024,
            );
            let trace = fut.backtrace();
            let at = canary_at.get();
            // SAFETY: the canary is in the default stack owned by the generator's stack,
            // alive (the future is suspended, the generator with it).
            let intact = (0..CANARY_LEN)
                .all(|i| unsafe { ((at + i) as *const u8).read_volatile() } == CANARY);
            eprintln!(
                "trace is_some = {}, canary intact = {intact}",
                trace.is_some()
            );
            assert!(intact, "the capture wrote below the custom stack's bottom");
            assert!(
                trace.is_none(),
                "a chain saved on a custom stack has no trace"
            );
            assert!(matches!(poll_once(&mut fut), Poll::Ready(_)));
        },
    );
}

/// Deep nesting: future -> generator (64 KiB) -> generator (40 MiB) -> generator
/// (48 KiB, `left` free) -> wait. The save point is on the innermost stack.
fn deep_chain(left: usize) -> stackful::future::StackfulFuture<'static, usize> {
    let mut fut = stackful::stackful(move || {
        let mut g1: StackfulGenerator<'static, (), usize, ()> = Builder::new()
            .stack_size(64 * 1024)
            .generator(move |_: &YieldHandle<()>, ()| {
                let mut g2: StackfulGenerator<'static, (), usize, ()> = Builder::new()
                    .stack_size(40 << 20)
                    .generator(move |_: &YieldHandle<()>, ()| {
                        let stack = DefaultStack::new(48 * 1024).unwrap();
                        let bottom = stack.bottom().as_ptr() as usize;
                        let mut g3 =
                            StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| {
                                descend_and_wait(bottom, left)
                            });
                        match Pin::new(&mut g3).resume(()) {
                            GeneratorState::Complete(v) => v,
                            GeneratorState::Yielded(()) => unreachable!(),
                        }
                    })
                    .unwrap();
                match Pin::new(&mut g2).resume(()) {
                    GeneratorState::Complete(v) => v,
                    GeneratorState::Yielded(()) => unreachable!(),
                }
            })
            .unwrap();
        match Pin::new(&mut g1).resume(()) {
            GeneratorState::Complete(v) => v,
            GeneratorState::Yielded(()) => unreachable!(),
        }
    });
    assert!(poll_once(&mut fut).is_pending());
    fut
}

#[test]
fn deep_nesting_with_room() {
    common::in_child("deep_nesting_with_room", || {
        trace_then_finish(deep_chain(24 * 1024), DEFAULT_STACKS_MEASURED)
    });
}

#[test]
fn deep_nesting_full() {
    common::in_child("deep_nesting_full", || {
        trace_then_finish(deep_chain(3 * 1024), false)
    });
}

/// Stacks of many sizes made and freed first (slab slots reused, mappings unmapped
/// and their addresses reused), the pool cleared, then the chain on a stack that may
/// reuse their memory.
#[test]
fn stacks_freed_and_reused_before_the_chain() {
    common::in_child("stacks_freed_and_reused_before_the_chain", || {
        for round in 0..3 {
            let mut keep = Vec::new();
            for (i, size) in [64 * 1024, 40 << 20, 20_001, 33 << 20, 16 * 1024]
                .into_iter()
                .enumerate()
            {
                let mut f = Builder::new()
                    .stack_size(size)
                    .future(move || wait(common::pend_n(1, i)))
                    .unwrap();
                assert!(poll_once(&mut f).is_pending());
                keep.push(f);
            }
            drop(keep);
            stackful::stack::clear_thread_pool();
            for (size, left, expect) in [
                (64 * 1024, 3 * 1024, false),
                (64 * 1024, 16 * 1024, true),
                (40 << 20, 3 * 1024, false),
                (40 << 20, 16 * 1024, true),
            ] {
                eprintln!("round {round}: size {size} left {left}");
                trace_then_finish(chain_on(gen_on_default(size), left), expect);
                stackful::stack::clear_thread_pool();
            }
        }
    });
}

/// Prints whether slabs are in use here (which branch of the lookup the cases above
/// took).
#[test]
fn environment() {
    let f = stackful::stackful(|| 1);
    drop(f);
    eprintln!("stats: {:?}", stackful::stack::stats());
}
