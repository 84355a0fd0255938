//! Review round 5: a chain saved on a custom stack that lies INSIDE the suspended
//! coroutine's own stack (a local array of the coroutine, lent to a scoped generator
//! it runs: the nesting the `known_stacks` docs name as allowed).
//!
//! Correct behaviour: the save point is on the inner (generator's) stack, so the free
//! space is measured from that stack's bottom; with less than 8 KiB there it is
//! `None`, and the capture never writes below the inner stack (into the memory under
//! it, which belongs to the outer coroutine).
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, YieldHandle};
use stackful::stack::Stack;
use stackful::{wait, Builder};
use std::hint::black_box;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::Poll;

mod common;
use common::poll_once;

const CANARY: u8 = 0xA5;
const BELOW: usize = 32 * 1024;
const INNER: usize = 64 * 1024;

/// `below` lies directly under `stack` (repr(C)): anything written below the inner
/// stack's bottom lands in `below` first.
#[repr(C, align(16))]
struct Area {
    below: [u8; BELOW],
    stack: [u8; INNER],
}

/// A borrowed byte array as a stack (no guard).
struct SliceStack<'a> {
    bottom: NonNull<u8>,
    top: NonNull<u8>,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> SliceStack<'a> {
    fn new(bytes: &'a mut [u8]) -> Self {
        let range = bytes.as_mut_ptr_range();
        assert_eq!(range.end as usize % 16, 0);
        SliceStack {
            bottom: NonNull::new(range.start).unwrap(),
            top: NonNull::new(range.end).unwrap(),
            _borrow: PhantomData,
        }
    }
}

// SAFETY: the bytes are exclusively borrowed for 'a (the generator using the stack is
// bound by 'a: a scoped one), are not inside the value, top is 16-aligned (asserted)
// and the size is 64 KiB; no guard: the test only runs shallow code there, plus one
// capture that the crate must refuse (less than 8 KiB free).
unsafe impl Stack for SliceStack<'_> {
    fn top(&self) -> NonNull<u8> {
        self.top
    }
    fn bottom(&self) -> NonNull<u8> {
        self.bottom
    }
}

/// Recurses until fewer than `left` bytes are free above `bottom`, then suspends the
/// whole chain once.
#[inline(never)]
fn nested_descend_and_wait(bottom: usize, left: usize) -> usize {
    let pad = black_box([3u8; 256]);
    let here = common::stack_address(&pad);
    if here < bottom + left + common::ASAN_EXTRA_STACK {
        wait(common::pend_n(1, 11usize));
        return pad[0] as usize + 1;
    }
    nested_descend_and_wait(bottom, left) + black_box(pad[1]) as usize
}

/// The body of the outer coroutine: a local `Area`, its `stack` lent to a scoped
/// generator that descends to `left` bytes above its bottom and waits. Returns whether
/// the canary below the inner stack survived.
fn outer_body(left: usize) -> bool {
    // The area must be on the outer coroutine's own stack: a local, not a Box.
    let mut area = Area {
        below: [CANARY; BELOW],
        stack: [0; INNER],
    };
    let Area { below, stack } = &mut area;
    let below: &mut [u8; BELOW] = below;
    let inner = SliceStack::new(stack);
    let inner_bottom = inner.bottom().as_ptr() as usize;
    stackful::scope(|s| {
        let mut g = s
            .builder(Builder::new())
            .generator_with_stack(inner, move |_: &YieldHandle<()>, ()| {
                nested_descend_and_wait(inner_bottom, left)
            })
            .unwrap();
        match Pin::new(&mut g).resume(()) {
            GeneratorState::Complete(v) => assert!(v > 0),
            GeneratorState::Yielded(()) => unreachable!(),
        }
    });
    let intact = black_box(&*below).iter().all(|&b| b == CANARY);
    intact
}

fn run(left: usize, expect_trace: bool) {
    run_with(left, expect_trace, |fut| fut.backtrace().is_some());
}

fn run_with(
    left: usize,
    expect_trace: bool,
    take: impl FnOnce(&mut stackful::future::StackfulFuture<'static, bool>) -> bool,
) {
    let mut fut = stackful::Builder::new()
        .stack_size(1 << 20)
        .future(move || outer_body(left))
        .unwrap();
    assert!(poll_once(&mut fut).is_pending());
    let traced = take(&mut fut);
    eprintln!("trace is_some = {traced}");
    let intact = match poll_once(&mut fut) {
        Poll::Ready(intact) => intact,
        Poll::Pending => panic!("still pending"),
    };
    assert!(
        intact,
        "the backtrace capture wrote below the inner stack's bottom"
    );
    assert_eq!(traced, expect_trace);
}

/// 2 KiB free on the inner stack: no trace, and nothing written below it.
#[test]
fn inner_stack_nearly_full_has_no_trace() {
    common::in_child("inner_stack_nearly_full_has_no_trace", || {
        run(2 * 1024, false)
    });
}

/// 40 KiB free on the inner stack: a trace, and nothing written below it.
#[test]
fn inner_stack_with_room_has_a_trace() {
    common::in_child("inner_stack_with_room_has_a_trace", || run(40 * 1024, true));
}

/// The same through a registry snapshot (every suspended coroutine is traced).
#[cfg(feature = "registry")]
#[test]
fn registry_inner_stack_nearly_full_has_no_trace() {
    common::in_child("registry_inner_stack_nearly_full_has_no_trace", || {
        run_with(2 * 1024, false, |_| {
            let snap = stackful::registry::snapshot_with_backtraces();
            snap.iter().any(|c| c.backtrace().is_some())
        })
    });
}

/// The area on the stack of a generator (on a custom heap stack) that the traced
/// coroutine runs, not on its own stack: the record's innermost stack counts.
fn run_in_generator(left: usize, expect_trace: bool) {
    let mut fut = stackful::stackful(move || {
        let h = common::HeapStack::new(512 * 1024, std::rc::Rc::new(std::cell::Cell::new(false)));
        let mut g = stackful::generator::StackfulGenerator::with_stack(
            h,
            move |_: &YieldHandle<()>, ()| outer_body(left),
        );
        match Pin::new(&mut g).resume(()) {
            GeneratorState::Complete(v) => v,
            GeneratorState::Yielded(()) => unreachable!(),
        }
    });
    assert!(poll_once(&mut fut).is_pending());
    let traced = fut.backtrace().is_some();
    eprintln!("trace is_some = {traced}");
    let intact = match poll_once(&mut fut) {
        Poll::Ready(intact) => intact,
        Poll::Pending => panic!("still pending"),
    };
    assert!(
        intact,
        "the backtrace capture wrote below the inner stack's bottom"
    );
    assert_eq!(traced, expect_trace);
}

#[test]
fn custom_in_custom_generator_nearly_full_has_no_trace() {
    common::in_child(
        "custom_in_custom_generator_nearly_full_has_no_trace",
        || run_in_generator(2 * 1024, false),
    );
}

#[test]
fn custom_in_custom_generator_with_room_has_a_trace() {
    common::in_child("custom_in_custom_generator_with_room_has_a_trace", || {
        run_in_generator(40 * 1024, true)
    });
}
