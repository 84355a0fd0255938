//! Generators: the resume/yield protocol, iteration, panics, drops and custom stacks.

// Without unwinding (wasm32) the tests that need it are left out, and with them
// some of the helpers and imports.
#![cfg_attr(not(panic = "unwind"), allow(dead_code, unused_imports))]

mod common;

use common::{panic_message, Drops, HeapStack, Token};
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{Stack, DEFAULT_STACK_SIZE, MIN_STACK_SIZE};
use stackful::Builder;
use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;

/// Resumes `g` with `arg` (shorthand).
fn resume<G: Generator<A> + Unpin, A>(g: &mut G, arg: A) -> GeneratorState<G::Yield, G::Return> {
    Pin::new(g).resume(arg)
}

#[test]
fn first_resume_value_is_the_closure_argument_and_later_ones_come_from_yeet() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<String, u32>, first: u32| {
        let mut got = vec![first];
        for i in 0..3 {
            got.push(y.yeet(format!("y{i}")));
        }
        got
    });
    assert!(!g.is_started());
    assert!(!g.is_complete());
    assert_eq!(resume(&mut g, 10), GeneratorState::Yielded("y0".to_owned()));
    assert!(g.is_started());
    assert!(!g.is_complete());
    assert_eq!(resume(&mut g, 11), GeneratorState::Yielded("y1".to_owned()));
    assert_eq!(resume(&mut g, 12), GeneratorState::Yielded("y2".to_owned()));
    assert_eq!(
        resume(&mut g, 13),
        GeneratorState::Complete(vec![10, 11, 12, 13])
    );
    assert!(g.is_started());
    assert!(g.is_complete());
}

#[test]
fn generator_completing_without_yielding() {
    let mut g = StackfulGenerator::new(|_: &YieldHandle<u8, i64>, first: i64| first * 2);
    assert_eq!(resume(&mut g, -21), GeneratorState::Complete(-42));
    assert!(g.is_complete());
}

#[test]
fn values_crossing_in_every_direction_are_dropped_exactly_once() {
    let drops = Drops::new();
    let captured = drops.token();
    let captured_id = captured.id;
    {
        let d = drops.clone();
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<Token, Token>, first: Token| {
            let _captured = captured;
            // A resume value kept, one dropped inside, one handed back out.
            let kept = first;
            let r1 = y.yeet(d.token());
            drop(r1);
            let r2 = y.yeet(d.token());
            let _local = d.token();
            // Return a resume value and keep nothing else.
            drop(kept);
            r2
        });
        let a = drops.token();
        let y1 = match resume(&mut g, a) {
            GeneratorState::Yielded(t) => t,
            GeneratorState::Complete(_) => panic!("completed early"),
        };
        let y2 = match resume(&mut g, drops.token()) {
            GeneratorState::Yielded(t) => t,
            GeneratorState::Complete(_) => panic!("completed early"),
        };
        let r2 = drops.token();
        let r2_id = r2.id;
        let ret = match resume(&mut g, r2) {
            GeneratorState::Complete(t) => t,
            GeneratorState::Yielded(_) => panic!("yielded again"),
        };
        // The returned value is the last resume value, moved through the coroutine.
        assert_eq!(ret.id, r2_id);
        assert!(drops.is_dropped(captured_id));
        drops.assert_no_double_drop();
        drop((y1, y2, ret));
        assert!(g.is_complete());
    }
    drops.assert_all_dropped_once();
    // captured, a, two yielded, one dropped inside, `_local`, r2.
    assert_eq!(drops.created(), 7);
}

/// The example of stackful 0.1.5: a nested generator yields through its parent's handle.
#[test]
fn nested_generator_yields_through_the_outer_handle() {
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<i32, i32>, mut r: i32| {
        for i in 0..100 {
            assert_eq!(r, i);
            r = y.yeet(i);
        }
        // The inner generator borrows `r` and the outer handle: it lives in a scope.
        stackful::scope(|s| {
            let mut gen2 = s.generator(|_: &YieldHandle<(), ()>, ()| {
                assert_eq!(r, 100);
                r = y.yeet(100);
            });
            assert_eq!(resume(&mut gen2, ()), GeneratorState::Complete(()));
            drop(gen2);
        });
        assert_eq!(r, 1000);
        1000
    });
    for i in 0..100 {
        assert_eq!(resume(&mut gen, i), GeneratorState::Yielded(i));
    }
    assert_eq!(resume(&mut gen, 100), GeneratorState::Yielded(100));
    assert_eq!(resume(&mut gen, 1000), GeneratorState::Complete(1000));
}

#[test]
fn iterator_collects_and_stays_fused() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        for i in 1..=5 {
            y.yeet(i * i);
        }
    });
    let first_two: Vec<u32> = g.by_ref().take(2).collect();
    assert_eq!(first_two, [1, 4]);
    let rest: Vec<u32> = g.by_ref().collect();
    assert_eq!(rest, [9, 16, 25]);
    assert!(g.is_complete());
    for _ in 0..3 {
        assert_eq!(g.next(), None);
    }
}

enum Tree {
    Leaf(u32),
    Node(Box<Tree>, u32, Box<Tree>),
}

fn tree(lo: u32, hi: u32) -> Tree {
    if lo == hi {
        Tree::Leaf(lo)
    } else {
        let mid = (lo + hi) / 2;
        Tree::Node(
            Box::new(tree(lo, mid.saturating_sub(1).max(lo))),
            mid,
            Box::new(tree(mid + 1, hi.max(mid + 1))),
        )
    }
}

fn walk(t: &Tree, y: &YieldHandle<u32>) {
    match t {
        Tree::Leaf(v) => {
            y.yeet(*v);
        }
        Tree::Node(l, v, r) => {
            walk(l, y);
            y.yeet(*v);
            walk(r, y);
        }
    }
}

fn walk_vec(t: &Tree, out: &mut Vec<u32>) {
    match t {
        Tree::Leaf(v) => out.push(*v),
        Tree::Node(l, v, r) => {
            walk_vec(l, out);
            out.push(*v);
            walk_vec(r, out);
        }
    }
}

#[test]
fn iterator_over_a_recursive_tree_walk() {
    let t = tree(0, 200);
    let mut expected = Vec::new();
    walk_vec(&t, &mut expected);
    assert!(expected.len() > 100);
    // The walk borrows `t`: a scoped generator.
    let got: Vec<u32> = stackful::scope(|s| {
        s.generator(|y: &YieldHandle<u32>, ()| walk(&t, y))
            .collect()
    });
    assert_eq!(got, expected);
}

#[test]
fn iterator_with_deep_recursion_yielding_at_every_level() {
    fn down(n: u32, y: &YieldHandle<u32>) {
        if n > 0 {
            y.yeet(n);
            down(n - 1, y);
            y.yeet(n + 10_000);
        }
    }
    let got: Vec<u32> = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| down(1000, y)).collect();
    let expected: Vec<u32> = (1..=1000)
        .rev()
        .chain((1..=1000).map(|n| n + 10_000))
        .collect();
    assert_eq!(got, expected);
}

#[test]
#[should_panic(expected = "resumed after it completed")]
fn resuming_a_completed_generator_panics() {
    let mut g = StackfulGenerator::new(|_: &YieldHandle<()>, ()| 5);
    assert_eq!(resume(&mut g, ()), GeneratorState::Complete(5));
    let _ = resume(&mut g, ());
}

#[derive(Debug, PartialEq)]
struct Payload(u64);

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn panic_propagates_with_its_original_payload_then_resuming_panics() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _on_stack = d.token();
        y.yeet(1);
        let _also = d.token();
        std::panic::panic_any(Payload(0xfeed));
    });
    assert_eq!(resume(&mut g, ()), GeneratorState::Yielded(1));
    let err = panic::catch_unwind(AssertUnwindSafe(|| resume(&mut g, ()))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(0xfeed)));
    // The coroutine's stack unwound before the panic reached us.
    drops.assert_all_dropped_once();
    assert!(g.is_complete());
    assert!(g.is_started());

    let again = panic::catch_unwind(AssertUnwindSafe(|| resume(&mut g, ()))).unwrap_err();
    assert!(
        panic_message(&*again).contains("resumed after it panicked"),
        "{}",
        panic_message(&*again)
    );
    // And once more: still the misuse message, never UB.
    let again = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert!(panic_message(&*again).contains("resumed after it panicked"));
    drop(g);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn panic_with_a_string_message_propagates_through_next() {
    let n = std::hint::black_box(42);
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        y.yeet(1);
        panic!("boom {n}");
    });
    assert_eq!(g.next(), Some(1));
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("boom 42")
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn panic_before_the_first_yield() {
    let mut g: StackfulGenerator<u32, (), ()> =
        StackfulGenerator::new(|_: &YieldHandle<u32>, ()| panic!("early"));
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"early"));
    assert!(g.is_complete());
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn panic_in_a_nested_generator_reaches_the_outermost_resumer() {
    let mut outer = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
        y.yeet(1);
        let mut inner = StackfulGenerator::new(|y2: &YieldHandle<u32>, ()| {
            y2.yeet(2);
            std::panic::panic_any(Payload(7));
        });
        assert_eq!(inner.next(), Some(2));
        let _ = inner.next();
        unreachable!("the inner panic unwinds through here");
    });
    assert_eq!(outer.next(), Some(1));
    let err = panic::catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(7)));
    assert!(outer.is_complete());
}

#[test]
fn drop_before_start_drops_the_captures_once() {
    let drops = Drops::new();
    let a = drops.token();
    let b = drops.token();
    let g = StackfulGenerator::new(move |_: &YieldHandle<()>, ()| {
        let _keep = (a, b);
        unreachable!("never resumed");
    });
    assert_eq!(drops.dropped(), 0);
    assert!(!g.is_started());
    drop(g);
    drops.assert_all_dropped_once();
}

#[test]
fn drop_before_start_with_a_borrowing_closure() {
    let drops = Drops::new();
    stackful::scope(|s| {
        let g = s.generator(|_: &YieldHandle<()>, ()| {
            let _t = drops.token();
        });
        drop(g);
    });
    assert_eq!(drops.created(), 0);
}

fn nested_frames(depth: u32, d: &Drops, y: &YieldHandle<u32>) {
    let _t = d.token();
    if depth == 0 {
        let _innermost = d.token();
        y.yeet(99);
        unreachable!("dropped while suspended here");
    }
    // A value in the middle of an expression, and a Box, per frame.
    let boxed = Box::new(d.token());
    nested_frames(depth - 1, d, y);
    drop(boxed);
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_while_suspended_runs_every_destructor_on_the_coroutine_stack() {
    let drops = Drops::new();
    let captured = drops.token();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _captured = captured;
        y.yeet(1);
        nested_frames(20, &d, y);
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), Some(99));
    // 1 captured + 21 frames with a token + 20 boxes + the innermost one.
    assert_eq!(drops.created(), 1 + 21 + 20 + 1);
    assert_eq!(drops.dropped(), 0);
    drop(g);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_while_suspended_after_the_first_resume_only() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32, Token>, first: Token| {
        let _first = first;
        let r = y.yeet(1);
        drop(r);
        unreachable!();
    });
    assert_eq!(resume(&mut g, d.token()), GeneratorState::Yielded(1));
    drop(g);
    drops.assert_all_dropped_once();
}

#[test]
fn drop_after_completion_does_not_drop_again() {
    let drops = Drops::new();
    let captured = drops.token();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        y.yeet(1);
        drop(captured);
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), None);
    drops.assert_all_dropped_once();
    drop(g);
    drops.assert_all_dropped_once();
}

/// Dropping a suspended generator while the *dropping* thread unwinds from an unrelated
/// panic: the generator's stack is unwound too, and the original panic goes on.
/// (In a child process, so that an abort fails only this test.)
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn drop_of_a_suspended_generator_while_the_thread_is_panicking() {
    common::in_child(
        "drop_of_a_suspended_generator_while_the_thread_is_panicking",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let err = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
                    nested_frames(5, &d, y);
                });
                assert_eq!(g.next(), Some(99));
                std::panic::panic_any(Payload(1));
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(1)));
            drops.assert_all_dropped_once();
        },
    );
}

/// A generator that owns a suspended generator is dropped while suspended: the inner
/// one is dropped (and unwound) during the outer one's unwind.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn dropping_a_generator_that_owns_a_suspended_generator() {
    common::in_child(
        "dropping_a_generator_that_owns_a_suspended_generator",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let mut outer = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
                let _t = d.token();
                let d2 = d.clone();
                let mut inner = StackfulGenerator::new(move |y2: &YieldHandle<u32>, ()| {
                    let _t = d2.token();
                    loop {
                        y2.yeet(1);
                    }
                });
                assert_eq!(inner.next(), Some(1));
                y.yeet(2);
            });
            assert_eq!(outer.next(), Some(2));
            drop(outer);
            assert_eq!(drops.created(), 2);
            drops.assert_all_dropped_once();
        },
    );
}

/// A generator panics while it owns a suspended generator: the inner one is dropped
/// during the unwind and the panic comes out of `resume` with its payload.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_in_a_generator_that_owns_a_suspended_generator() {
    common::in_child(
        "a_panic_in_a_generator_that_owns_a_suspended_generator",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let mut outer = StackfulGenerator::new(move |_: &YieldHandle<u32>, ()| {
                let d2 = d.clone();
                let mut inner = StackfulGenerator::new(move |y2: &YieldHandle<u32>, ()| {
                    let _t = d2.token();
                    y2.yeet(1);
                });
                assert_eq!(inner.next(), Some(1));
                std::panic::panic_any(Payload(8));
            });
            let err = panic::catch_unwind(AssertUnwindSafe(|| outer.next())).unwrap_err();
            assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(8)));
            drops.assert_all_dropped_once();
        },
    );
}

#[test]
fn is_started_and_is_complete_through_the_life_cycle() {
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u8>, ()| {
        y.yeet(1);
        y.yeet(2);
    });
    assert!(!g.is_started() && !g.is_complete());
    g.next();
    assert!(g.is_started() && !g.is_complete());
    g.next();
    assert!(g.is_started() && !g.is_complete());
    assert_eq!(g.next(), None);
    assert!(g.is_started() && g.is_complete());
    // Debug does not panic in any state.
    assert!(format!("{g:?}").contains("StackfulGenerator"));
}

#[test]
fn a_big_closure_on_the_default_stack() {
    let mut big = [0u8; 100_000];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let expected: u64 = big.iter().map(|&b| u64::from(b)).sum();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64>, ()| {
        let sum: u64 = big.iter().map(|&b| u64::from(b)).sum();
        y.yeet(sum);
        u64::from(big[99_999])
    });
    assert_eq!(resume(&mut g, ()), GeneratorState::Yielded(expected));
    assert_eq!(resume(&mut g, ()), GeneratorState::Complete(99_999 % 251));
}

/// Runs a generator capturing `N` bytes on a stack of `stack_size` bytes, on a thread
/// with a big stack (the closure is moved around by value before it reaches the
/// coroutine).
fn big_closure_case<const N: usize>(stack_size: usize) {
    on_a_big_stack(move || {
        let mut big = [0u8; N];
        big[0] = 1;
        big[N - 1] = 2;
        let mut g = Builder::new()
            .stack_size(stack_size)
            .generator(move |y: &YieldHandle<u64>, ()| {
                y.yeet(big.iter().map(|&b| u64::from(b)).sum());
                big.len()
            })
            .unwrap();
        assert_eq!(resume(&mut g, ()), GeneratorState::Yielded(3));
        assert_eq!(resume(&mut g, ()), GeneratorState::Complete(N));
    });
}

#[cfg(not(target_arch = "wasm32"))]
fn on_a_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// wasm32 has no threads (and its main shadow stack is 1 MiB): a coroutine with a
/// big stack stands in for the thread. (16 MiB is plenty; growing the memory by
/// 256 MiB at once sometimes crashes node 20's garbage collector.)
#[cfg(target_arch = "wasm32")]
fn on_a_big_stack(f: impl FnOnce() + Send + 'static) {
    let mut g = Builder::new()
        .stack_size(16 << 20)
        .generator(move |_: &YieldHandle<()>, ()| f())
        .unwrap();
    assert_eq!(resume(&mut g, ()), GeneratorState::Complete(()));
}

// Closures of these sizes run in child processes: a stack overflow kills the process.

#[test]
fn a_200k_closure_on_the_default_stack() {
    // Large for the stack, yet far smaller than it (debug builds copy moved values).
    common::in_child("a_200k_closure_on_the_default_stack", || {
        big_closure_case::<200_000>(DEFAULT_STACK_SIZE)
    });
}

#[test]
fn a_300k_closure_on_the_default_stack() {
    common::in_child("a_300k_closure_on_the_default_stack", || {
        big_closure_case::<300_000>(DEFAULT_STACK_SIZE)
    });
}

#[test]
fn a_1mib_closure_on_the_default_stack() {
    common::in_child("a_1mib_closure_on_the_default_stack", || {
        big_closure_case::<{ 1 << 20 }>(DEFAULT_STACK_SIZE)
    });
}

#[test]
fn a_100k_closure_on_a_minimum_size_stack() {
    common::in_child("a_100k_closure_on_a_minimum_size_stack", || {
        big_closure_case::<100_000>(MIN_STACK_SIZE)
    });
}

#[test]
fn with_stack_runs_on_the_given_custom_stack() {
    const SIZE: usize = 256 * 1024;
    let freed = Rc::new(Cell::new(false));
    let stack = HeapStack::new(SIZE, freed.clone());
    let (lo, hi) = (
        stack.bottom().as_ptr() as usize,
        stack.top().as_ptr() as usize,
    );
    let mut g = StackfulGenerator::with_stack(stack, |y: &YieldHandle<usize, u32>, mut n: u32| {
        let local = 0u8;
        let addr = common::stack_address(&local);
        let mut total = 0;
        while n != 0 {
            total += n;
            n = y.yeet(addr);
        }
        total
    });
    let addr = match resume(&mut g, 5) {
        GeneratorState::Yielded(a) => a,
        GeneratorState::Complete(_) => panic!(),
    };
    assert!(
        (lo..hi).contains(&addr),
        "a local of the coroutine at {addr:#x} is not on the custom stack {lo:#x}..{hi:#x}"
    );
    assert_eq!(resume(&mut g, 6), GeneratorState::Yielded(addr));
    assert!(!freed.get());
    assert_eq!(resume(&mut g, 0), GeneratorState::Complete(11));
    drop(g);
    assert!(
        freed.get(),
        "the custom stack is dropped with the generator"
    );
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn with_stack_dropped_while_suspended_frees_the_stack_after_unwinding() {
    let freed = Rc::new(Cell::new(false));
    let drops = Drops::new();
    let d = drops.clone();
    let f = freed.clone();
    let mut g = StackfulGenerator::with_stack(
        HeapStack::new(128 * 1024, freed.clone()),
        move |y: &YieldHandle<u32>, ()| {
            struct CheckStackAlive(Rc<Cell<bool>>, Token);
            impl Drop for CheckStackAlive {
                fn drop(&mut self) {
                    assert!(
                        !self.0.get(),
                        "stack freed while {:?} is unwinding on it",
                        self.1
                    );
                }
            }
            let _c = CheckStackAlive(f, d.token());
            y.yeet(1);
        },
    );
    assert_eq!(g.next(), Some(1));
    drop(g);
    assert!(freed.get());
    drops.assert_all_dropped_once();
}

struct BadStack {
    base: NonNull<u8>,
    top_offset: usize,
    freed: Rc<Cell<bool>>,
}

const BAD_STACK_ALLOC: usize = 64 * 1024;

impl BadStack {
    fn new(top_offset: usize, freed: Rc<Cell<bool>>) -> Self {
        let layout = Layout::from_size_align(BAD_STACK_ALLOC, 16).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc::alloc(layout) }).expect("allocation failed");
        BadStack {
            base,
            top_offset,
            freed,
        }
    }
}

// SAFETY: the memory is a live allocation owned by the value; the constructors under
// test must reject it (misaligned or too small) before running anything on it.
unsafe impl Stack for BadStack {
    fn top(&self) -> NonNull<u8> {
        // SAFETY: `top_offset` is within the allocation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.top_offset)) }
    }

    fn bottom(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for BadStack {
    fn drop(&mut self) {
        self.freed.set(true);
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe {
            alloc::dealloc(
                self.base.as_ptr(),
                Layout::from_size_align(BAD_STACK_ALLOC, 16).unwrap(),
            )
        };
    }
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn with_stack_rejects_a_misaligned_or_too_small_stack_and_drops_it() {
    for top_offset in [BAD_STACK_ALLOC - 8, 2048] {
        let freed = Rc::new(Cell::new(false));
        let drops = Drops::new();
        let t = drops.token();
        let err = panic::catch_unwind(AssertUnwindSafe(|| {
            let _g = StackfulGenerator::with_stack(
                BadStack::new(top_offset, freed.clone()),
                move |_: &YieldHandle<()>, ()| drop(t),
            );
        }))
        .unwrap_err();
        let msg = panic_message(&*err);
        assert!(msg.contains("unusable stack"), "{msg}");
        assert!(freed.get(), "the rejected stack is dropped");
        drops.assert_all_dropped_once();
    }
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_by_user_code_then_returning_completes_the_drop() {
    let drops = Drops::new();
    let caught = Rc::new(Cell::new(false));
    let (d, c) = (drops.clone(), caught.clone());
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| -> Token {
        let _outer = d.token();
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            let _inner = d.token();
            y.yeet(1);
        }));
        c.set(r.is_err());
        // The return value of a cancelled generator is dropped by the drop.
        d.token()
    });
    assert!(matches!(resume(&mut g, ()), GeneratorState::Yielded(1)));
    drop(g);
    assert!(caught.get(), "user code saw the cancellation unwind");
    assert_eq!(drops.created(), 3);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_by_user_code_then_yeet_again_panics_out_of_drop() {
    let drops = Drops::new();
    let after_yeet = Rc::new(Cell::new(false));
    let (d, a) = (drops.clone(), after_yeet.clone());
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _outer = d.token();
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            let _inner = d.token();
            y.yeet(1);
        }));
        assert!(r.is_err());
        let _after = d.token();
        y.yeet(2); // the coroutine is being dropped: this panics
        a.set(true);
    });
    assert_eq!(resume(&mut g, ()), GeneratorState::Yielded(1));
    let err = panic::catch_unwind(AssertUnwindSafe(move || drop(g))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("being dropped"), "{msg}");
    assert!(msg.contains("yeet"), "{msg}");
    assert!(!after_yeet.get(), "yeet must not return during the drop");
    assert_eq!(drops.created(), 3);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_twice_and_yeet_panic_caught_too_completes_quietly() {
    let drops = Drops::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (d, l) = (drops.clone(), log.clone());
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _outer = d.token();
        let first = panic::catch_unwind(AssertUnwindSafe(|| y.yeet(1)));
        l.borrow_mut()
            .push(format!("first err: {}", first.is_err()));
        let second = panic::catch_unwind(AssertUnwindSafe(|| {
            let _t = d.token();
            y.yeet(2)
        }));
        let msg = panic_message(&*second.unwrap_err());
        l.borrow_mut().push(msg);
        7
    });
    assert_eq!(resume(&mut g, ()), GeneratorState::Yielded(1));
    drop(g);
    let log = log.borrow();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0], "first err: true");
    assert!(log[1].contains("being dropped"), "{}", log[1]);
    drops.assert_all_dropped_once();
}

// Needs unwinding (wasm32 is panic=abort): catches the cancellation unwind.
#[cfg(panic = "unwind")]
#[test]
fn cancellation_caught_then_yeet_while_the_thread_is_already_panicking() {
    common::in_child(
        "cancellation_caught_then_yeet_while_the_thread_is_already_panicking",
        || {
            let drops = Drops::new();
            let d = drops.clone();
            let err = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
                    let _outer = d.token();
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| y.yeet(1)));
                    y.yeet(2);
                });
                assert_eq!(g.next(), Some(1));
                std::panic::panic_any(Payload(3));
            }))
            .unwrap_err();
            // The drop's own panic is swallowed; the original one continues.
            assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(3)));
            drops.assert_all_dropped_once();
        },
    );
}

#[test]
fn a_generator_resumed_from_within_another_generator_and_then_from_outside() {
    let mut inner = StackfulGenerator::new(|y: &YieldHandle<u32, u32>, mut n: u32| loop {
        n = y.yeet(n * 2);
        if n == 0 {
            break "inner done";
        }
    });
    // The outer generator borrows `inner`: a scoped generator.
    stackful::scope(|s| {
        let inner = &mut inner;
        let mut outer = s.generator(move |y: &YieldHandle<u32>, ()| {
            for i in 1..=3 {
                match resume(inner, i) {
                    GeneratorState::Yielded(v) => y.yeet(v + 100),
                    GeneratorState::Complete(_) => unreachable!(),
                };
            }
        });
        assert_eq!(outer.by_ref().collect::<Vec<_>>(), [102, 104, 106]);
    });
    // The inner generator is suspended; it is now resumed from the main stack.
    assert_eq!(resume(&mut inner, 10), GeneratorState::Yielded(20));
    assert_eq!(
        resume(&mut inner, 0),
        GeneratorState::Complete("inner done")
    );
}

#[test]
fn a_generator_resumed_alternately_from_two_other_generators() {
    let shared = Rc::new(RefCell::new(StackfulGenerator::new(
        |y: &YieldHandle<u32>, ()| {
            for i in 0..6 {
                y.yeet(i);
            }
        },
    )));
    let make = |tag: u32| {
        let shared = Rc::clone(&shared);
        StackfulGenerator::new(move |y: &YieldHandle<(u32, u32)>, ()| {
            for _ in 0..3 {
                let v = shared.borrow_mut().next().unwrap();
                y.yeet((tag, v));
            }
        })
    };
    let mut a = make(1);
    let mut b = make(2);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(a.next().unwrap());
        got.push(b.next().unwrap());
    }
    assert_eq!(got, [(1, 0), (2, 1), (1, 2), (2, 3), (1, 4), (2, 5)]);
    assert_eq!(a.next(), None);
    assert_eq!(b.next(), None);
    assert_eq!(shared.borrow_mut().next(), None);
}

/// Each level runs the next one as a generator and forwards its values, adding its
/// depth; the innermost also yields straight through the outermost handle. Every level
/// borrows the top handle, so they are scoped generators (all in the scope `s`).
fn level<'scope>(
    s: &'scope stackful::Scope<'scope, '_>,
    depth: u32,
    top: &'scope YieldHandle<u32, u32>,
) -> stackful::ScopedGenerator<'scope, u32, u32, u32> {
    s.generator(move |y: &YieldHandle<u32, u32>, mut r: u32| {
        if depth == 10 {
            // Through every level at once: the whole chain of stacks suspends.
            let from_top = top.yeet(1_000 + r);
            let again = y.yeet(from_top + 1);
            return again * 2;
        }
        let mut child = level(s, depth + 1, top);
        loop {
            match resume(&mut child, r) {
                GeneratorState::Yielded(v) => r = y.yeet(v + 1),
                GeneratorState::Complete(v) => return v + 1,
            }
        }
    })
}

#[test]
fn ten_levels_of_nested_generators() {
    let mut top = StackfulGenerator::new(|top: &YieldHandle<u32, u32>, first: u32| {
        stackful::scope(|s| {
            let mut chain = level(s, 1, top);
            let mut r = first;
            let mut seen = Vec::new();
            loop {
                match resume(&mut chain, r) {
                    GeneratorState::Yielded(v) => {
                        seen.push(v);
                        r = 50;
                    }
                    GeneratorState::Complete(v) => {
                        seen.push(v);
                        return seen;
                    }
                }
            }
        })
    });
    // The innermost level yields through the top handle with the first value.
    assert_eq!(resume(&mut top, 5), GeneratorState::Yielded(1_005));
    // Resumed with 20: the innermost yields 21 to level 9, forwarded up 9 levels
    // (+1 each) to the body of `top`, which resumes it with 50; it returns 100, +1
    // per level on the way out.
    assert_eq!(
        resume(&mut top, 20),
        GeneratorState::Complete(vec![21 + 9, 100 + 9])
    );
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn ten_levels_of_nested_generators_dropped_while_suspended_innermost() {
    // Every level borrows the top handle: scoped generators (all in the scope `s`).
    fn nest<'scope>(
        s: &'scope stackful::Scope<'scope, '_>,
        depth: u32,
        d: &'scope Drops,
        top: &'scope YieldHandle<u32>,
    ) -> stackful::ScopedGenerator<'scope, u32, (), ()> {
        s.generator(move |_: &YieldHandle<u32>, ()| {
            let _t = d.token();
            if depth == 0 {
                top.yeet(42);
                unreachable!("dropped while suspended");
            }
            let mut child = nest(s, depth - 1, d, top);
            let _ = child.next();
            unreachable!("the chain is dropped before the child returns");
        })
    }
    let drops = Drops::new();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |top: &YieldHandle<u32>, ()| {
        stackful::scope(|s| {
            let mut chain = nest(s, 10, &d, top);
            let _ = chain.next();
        });
    });
    assert_eq!(g.next(), Some(42));
    assert_eq!(drops.created(), 11);
    assert_eq!(drops.dropped(), 0);
    drop(g);
    drops.assert_all_dropped_once();
}

#[test]
fn yeet_in_a_destructor_during_normal_scope_exit_works() {
    struct YieldOnDrop<'a>(&'a YieldHandle<&'static str>);
    impl Drop for YieldOnDrop<'_> {
        fn drop(&mut self) {
            self.0.yeet("from drop");
        }
    }
    let g = StackfulGenerator::new(|y: &YieldHandle<&'static str>, ()| {
        let _d = YieldOnDrop(y);
        y.yeet("body");
    });
    assert_eq!(g.collect::<Vec<_>>(), ["body", "from drop"]);
}

const CHILD_YEET_IN_DROP: &str = "yeet_in_a_destructor_during_cancellation_aborts";

// Not on wasm32: runs a child process (none on WASI) and needs the cancellation unwind.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn yeet_in_a_destructor_during_cancellation_aborts() {
    if common::is_child(CHILD_YEET_IN_DROP) {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            let _d = YieldOnDrop(y);
            y.yeet(1);
        });
        assert_eq!(g.next(), Some(1));
        drop(g);
        eprintln!("child: drop returned");
        return;
    }
    let (status, stderr) = common::run_child(CHILD_YEET_IN_DROP);
    assert!(
        common::aborted(&status),
        "abort expected, got {status}; stderr:\n{stderr}"
    );
    assert!(stderr.contains("being dropped"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("child: drop returned"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn over_aligned_captures_and_values() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[derive(Debug, PartialEq)]
    #[repr(align(64))]
    struct Line(u64);

    let page = Page([9; 4096]);
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<Line, Line>, first: Line| {
        let captured = &page;
        assert_eq!(captured as *const Page as usize % 4096, 0);
        let mut r = first;
        for _ in 0..3 {
            assert_eq!(&r as *const Line as usize % 64, 0);
            r = y.yeet(Line(r.0 + u64::from(captured.0[4095])));
        }
        r
    });
    assert_eq!(resume(&mut g, Line(1)), GeneratorState::Yielded(Line(10)));
    assert_eq!(resume(&mut g, Line(2)), GeneratorState::Yielded(Line(11)));
    assert_eq!(resume(&mut g, Line(3)), GeneratorState::Yielded(Line(12)));
    assert_eq!(resume(&mut g, Line(4)), GeneratorState::Complete(Line(4)));
}

#[test]
fn large_values_cross_in_both_directions() {
    const N: usize = 8192;
    let body = |y: &YieldHandle<Box<[u64; N]>, [u64; N]>, first: [u64; N]| {
        let mut r = first;
        for round in 0..3u64 {
            assert!(r.iter().enumerate().all(|(i, &v)| v == i as u64 + round));
            let mut out = Box::new([0u64; N]);
            for (o, v) in out.iter_mut().zip(r.iter()) {
                *o = v * 2;
            }
            r = y.yeet(out);
        }
        r[N - 1]
    };
    #[cfg(not(target_arch = "wasm32"))]
    let mut g = StackfulGenerator::new(body);
    // wasm32's default coroutine stack is 256 KiB, too small for the 64 KiB copies a
    // debug build makes of these values (it needs about 384 KiB): give it 1 MiB.
    #[cfg(target_arch = "wasm32")]
    let mut g = Builder::new().stack_size(1 << 20).generator(body).unwrap();
    for round in 0..3u64 {
        let mut arg = [0u64; N];
        for (i, v) in arg.iter_mut().enumerate() {
            *v = i as u64 + round;
        }
        match resume(&mut g, arg) {
            GeneratorState::Yielded(out) => {
                assert!(out
                    .iter()
                    .enumerate()
                    .all(|(i, &v)| v == 2 * (i as u64 + round)));
            }
            GeneratorState::Complete(_) => panic!("completed early"),
        }
    }
    let mut last = [0u64; N];
    last[N - 1] = 77;
    assert_eq!(resume(&mut g, last), GeneratorState::Complete(77));
}

#[test]
fn a_generator_started_in_one_place_escapes_and_finishes_elsewhere() {
    // Started inside another generator, returned from it while suspended.
    let mut outer = StackfulGenerator::new(|_: &YieldHandle<()>, ()| {
        let mut inner = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            let local = [5u32; 32];
            y.yeet(local[0]);
            y.yeet(local.iter().sum());
        });
        assert_eq!(inner.next(), Some(5));
        inner
    });
    let mut inner = match resume(&mut outer, ()) {
        GeneratorState::Complete(g) => g,
        GeneratorState::Yielded(()) => unreachable!(),
    };
    drop(outer);
    assert_eq!(inner.next(), Some(160));
    assert_eq!(inner.next(), None);
}

struct YieldOnDrop<'a>(&'a YieldHandle<u32>);

impl Drop for YieldOnDrop<'_> {
    fn drop(&mut self) {
        self.0.yeet(2);
    }
}

/// A destructor that yields while a panic unwinds the coroutine's stack suspends the
/// coroutine in the middle of that unwind (documented: until it finishes unwinding,
/// the thread's panic count includes that panic, so the resumer sees
/// `std::thread::panicking()`). Resuming it finishes the unwind and the original
/// panic comes out.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn yeet_in_a_destructor_during_a_panic_suspends_mid_unwind() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
        let _t = d.token();
        let _d = YieldOnDrop(y);
        y.yeet(1);
        std::panic::panic_any(Payload(5));
    });
    assert_eq!(g.next(), Some(1));
    assert!(!std::thread::panicking());
    assert_eq!(g.next(), Some(2), "the destructor's yield");
    assert!(
        std::thread::panicking(),
        "documented: the panic is still in flight"
    );
    assert_eq!(drops.dropped(), 0, "declared before the yielding value");
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload(5)));
    assert!(!std::thread::panicking());
    assert!(g.is_complete());
    drops.assert_all_dropped_once();
}

const CHILD_DROP_MID_UNWIND: &str =
    "dropping_a_generator_suspended_mid_unwind_aborts_with_a_message";

// Not on wasm32: runs a child process (none on WASI) and needs unwinding.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn dropping_a_generator_suspended_mid_unwind_aborts_with_a_message() {
    if common::is_child(CHILD_DROP_MID_UNWIND) {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
            let _d = YieldOnDrop(y);
            std::panic::panic_any(Payload(6));
        });
        assert_eq!(g.next(), Some(2));
        drop(g);
        eprintln!("child: drop returned");
        return;
    }
    let (status, stderr) = common::run_child(CHILD_DROP_MID_UNWIND);
    assert!(
        common::aborted(&status),
        "abort expected, got {status}; stderr:\n{stderr}"
    );
    // The second unwind starts inside a destructor that runs during the first one:
    // Rust aborts the process, soundly, with its own message.
    assert!(
        stderr.contains("panic in a destructor during cleanup"),
        "stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("child: drop returned"),
        "stderr:\n{stderr}"
    );
}

/// Yields from `depth` nested frames of different sizes, so the yielded values sit
/// at many different stack addresses (odd ones included, for `u8`): the protocol
/// tells a yield from the final switch by bit 0 of a word (see src/fiber.rs), which
/// must hold for a value of any size and alignment. Returns the number of yields.
fn yield_from_depth<T: Copy>(y: &YieldHandle<(u32, T), u32>, depth: u32, value: T) -> u32 {
    let pad = std::hint::black_box([depth as u8; 3]);
    let got = y.yeet((depth, value));
    assert_eq!(got, depth, "resume value at depth {depth}");
    let below = if depth == 0 {
        0
    } else {
        yield_from_depth(y, depth - 1, value)
    };
    // `pad` (an odd-sized local) stayed intact across the nested yields.
    assert_eq!(std::hint::black_box(pad), [depth as u8; 3]);
    below + 1
}

fn check_values_of_every_layout<T: Copy + PartialEq + std::fmt::Debug + 'static>(value: T) {
    const DEPTH: u32 = 40;
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<(u32, T), u32>, _: u32| {
        let mut total = 0;
        // Values straight from the closure's frame too, after odd-sized locals.
        for i in 0..3u8 {
            let bytes = std::hint::black_box([i; 7]);
            total += y.yeet((u32::from(bytes[i as usize]), value));
        }
        (total, yield_from_depth(y, DEPTH, value))
    });
    // Every resume passes back the depth it was just given.
    let mut arg = 0;
    let mut depths = Vec::new();
    let done = loop {
        match resume(&mut g, arg) {
            GeneratorState::Yielded((depth, v)) => {
                assert_eq!(v, value);
                depths.push(depth);
                arg = depth;
            }
            GeneratorState::Complete(done) => break done,
        }
    };
    let expected: Vec<u32> = (0..3).chain((0..=DEPTH).rev()).collect();
    assert_eq!(depths, expected);
    assert_eq!(done, (1 + 2, DEPTH + 1));
    assert!(g.is_complete());
}

#[test]
fn values_of_every_size_and_alignment_are_yielded_intact() {
    check_values_of_every_layout(());
    check_values_of_every_layout(0xa5u8);
    check_values_of_every_layout([1u8, 2, 3]);
    check_values_of_every_layout(0xbeefu16);
    check_values_of_every_layout(u128::MAX - 7);
    check_values_of_every_layout((1u8, 2u64, 3u8));
    // A generator yielding one-byte and zero-sized values directly (no tuple).
    let mut bytes = StackfulGenerator::new(|y: &YieldHandle<u8>, ()| {
        for b in 0..=255u8 {
            y.yeet(b);
        }
        7u8
    });
    for b in 0..=255u8 {
        assert_eq!(resume(&mut bytes, ()), GeneratorState::Yielded(b));
    }
    assert_eq!(resume(&mut bytes, ()), GeneratorState::Complete(7));
    let units =
        StackfulGenerator::new(|y: &YieldHandle<()>, ()| (0..1000).for_each(|_| y.yeet(())));
    assert_eq!(units.count(), 1000);
}

/// Issue #15, fault 1: a generator resumed from a `Drop` while the *thread* is
/// panicking suspends while `std::thread::panicking()` is true; dropping it must
/// unwind it like any other, not abort as if it had suspended mid-unwind itself.
#[cfg(panic = "unwind")]
#[test]
fn a_generator_used_in_a_destructor_during_an_unrelated_panic_can_be_dropped() {
    struct Cleanup(Rc<Cell<Option<u32>>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let mut numbers = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
                for i in 0.. {
                    y.yeet(i)
                }
            });
            self.0.set(numbers.next());
            drop(numbers); // aborted before the fix
        }
    }
    let first = Rc::new(Cell::new(None));
    let seen = first.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _c = Cleanup(seen);
        panic!("original failure");
    }));
    assert_eq!(common::panic_message(&*r.unwrap_err()), "original failure");
    assert_eq!(first.get(), Some(0));
}

/// A generator suspended inside `LocalKey::with`, kept in a thread-local that was
/// first used before the thread's first coroutine, is dropped at thread exit after
/// the key's value was destroyed: it is leaked, not unwound, so no destructor on its
/// stack reads the destroyed value (found by review; valgrind saw the use-after-free
/// before the mitigation).
// Linux only: the mitigation relies on thread-local destructors running in the
// reverse order of first use, as they do there; under Windows (wine) the order differs
// and the destructor below runs after the value was destroyed (the documented
// thread-local hazard, not covered there).
#[cfg(target_os = "linux")]
#[test]
fn a_generator_kept_in_a_thread_local_is_leaked_at_thread_exit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DESTRUCTOR_RAN: AtomicBool = AtomicBool::new(false);
    thread_local! {
        static HOLDER: RefCell<Option<StackfulGenerator<'static, (), (), ()>>> =
            const { RefCell::new(None) };
        static VALUE: String = "Happy".repeat(8);
    }
    struct Show<'a>(&'a str);
    impl Drop for Show<'_> {
        fn drop(&mut self) {
            DESTRUCTOR_RAN.store(true, Ordering::SeqCst);
            assert!(self.0.starts_with("Happy"));
        }
    }
    let before = stackful::leaked_stacks();
    std::thread::spawn(|| {
        HOLDER.with(|_| ()); // first used first: destroyed last
        let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
            VALUE.with(|s| {
                let _show = Show(s.as_str());
                y.yeet(()); // suspended inside VALUE.with
            })
        });
        let _ = Pin::new(&mut g).resume(());
        HOLDER.with(|h| *h.borrow_mut() = Some(g));
    })
    .join()
    .unwrap();
    assert!(!DESTRUCTOR_RAN.load(Ordering::SeqCst));
    assert!(stackful::leaked_stacks() > before);
}
