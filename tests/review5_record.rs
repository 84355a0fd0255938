//! Review round 5: the record of custom stacks when one stack serves several scoped
//! generators in turn (one finished, one forgotten while suspended, one dropped before
//! it started), and under concurrent creation and drop while a registry snapshot
//! traces a chain saved on a custom stack.
//!
//! Correct behaviour: the chain saved on the last generator is measured against that
//! stack: `None` with 2 KiB free, a trace with 40 KiB free; no deadlock.
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, YieldHandle};
use stackful::stack::Stack;
use stackful::{wait, Builder};
use std::cell::Cell;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

mod common;
use common::poll_once;
use common::HeapStack;

#[inline(never)]
fn record_descend_and_wait(bottom: usize, left: usize) -> usize {
    let pad = black_box([5u8; 256]);
    let here = common::stack_address(&pad);
    if here < bottom + left + common::ASAN_EXTRA_STACK {
        wait(common::pend_n(1, 13usize));
        return pad[0] as usize + 2;
    }
    record_descend_and_wait(bottom, left) + black_box(pad[1]) as usize
}

/// A 'static future owning a heap stack that three scoped generators use before a
/// fourth descends to `left` bytes above its bottom and waits.
fn reuse(left: usize, expect: bool) {
    let mut fut = stackful::stackful(move || {
        let mut h = HeapStack::new(128 * 1024, Rc::new(Cell::new(false)));
        let bottom = h.bottom().as_ptr() as usize;
        // 1: runs to completion.
        stackful::scope(|s| {
            let mut g = s
                .builder(Builder::new())
                .generator_with_stack(&mut h, |_: &YieldHandle<()>, ()| 1)
                .unwrap();
            assert!(matches!(
                Pin::new(&mut g).resume(()),
                GeneratorState::Complete(1)
            ));
        });
        // 2: suspended, its handle forgotten: the scope unwinds it.
        stackful::scope(|s| {
            let mut g = s
                .builder(Builder::new())
                .generator_with_stack(&mut h, |y: &YieldHandle<()>, ()| {
                    y.yeet(());
                    2
                })
                .unwrap();
            assert!(matches!(
                Pin::new(&mut g).resume(()),
                GeneratorState::Yielded(())
            ));
            std::mem::forget(g);
        });
        // 3: never started, forgotten.
        stackful::scope(|s| {
            let g = s
                .builder(Builder::new())
                .generator_with_stack(&mut h, |_: &YieldHandle<()>, ()| 3)
                .unwrap();
            std::mem::forget(g);
        });
        // 4: the chain is saved here.
        stackful::scope(|s| {
            let mut g = s
                .builder(Builder::new())
                .generator_with_stack(&mut h, move |_: &YieldHandle<()>, ()| {
                    record_descend_and_wait(bottom, left)
                })
                .unwrap();
            match Pin::new(&mut g).resume(()) {
                GeneratorState::Complete(v) => v,
                GeneratorState::Yielded(()) => unreachable!(),
            }
        })
    });
    assert!(poll_once(&mut fut).is_pending());
    let trace = fut.backtrace();
    eprintln!("trace is_some = {}", trace.is_some());
    if let Some(t) = &trace {
        let text = format!("{t:?}");
        assert!(text.contains("record_descend_and_wait"), "{text}");
    }
    assert_eq!(trace.is_some(), expect);
    assert!(matches!(poll_once(&mut fut), Poll::Ready(_)));
}

#[test]
fn reused_stack_nearly_full_has_no_trace() {
    common::in_child("reused_stack_nearly_full_has_no_trace", || {
        reuse(2 * 1024, false)
    });
}

#[test]
fn reused_stack_with_room_has_a_trace() {
    common::in_child("reused_stack_with_room_has_a_trace", || {
        reuse(40 * 1024, true)
    });
}

/// Threads create and drop coroutines on custom stacks while this thread takes
/// snapshots with backtraces of a chain saved on a custom generator stack (40 KiB
/// free): every snapshot has its trace, nothing deadlocks.
#[cfg(feature = "registry")]
#[test]
fn snapshots_race_custom_stacks() {
    common::in_child("snapshots_race_custom_stacks", || {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let h = HeapStack::new(64 * 1024, Rc::new(Cell::new(false)));
                        let mut g = stackful::generator::StackfulGenerator::with_stack(
                            h,
                            |y: &YieldHandle<usize>, ()| {
                                y.yeet(1);
                                2
                            },
                        );
                        let _ = Pin::new(&mut g).resume(());
                        if n % 2 == 0 {
                            let _ = Pin::new(&mut g).resume(());
                        }
                        drop(g);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut fut = stackful::stackful(move || {
            let h = HeapStack::new(128 * 1024, Rc::new(Cell::new(false)));
            let bottom = h.bottom().as_ptr() as usize;
            let mut g = stackful::generator::StackfulGenerator::with_stack(
                h,
                move |_: &YieldHandle<()>, ()| record_descend_and_wait(bottom, 40 * 1024),
            );
            match Pin::new(&mut g).resume(()) {
                GeneratorState::Complete(v) => v,
                GeneratorState::Yielded(()) => unreachable!(),
            }
        });
        assert!(poll_once(&mut fut).is_pending());
        let start = std::time::Instant::now();
        for _ in 0..200 {
            let snap = stackful::registry::snapshot_with_backtraces();
            let found = snap
                .iter()
                .filter_map(|c| c.backtrace())
                .any(|t| format!("{t:?}").contains("record_descend_and_wait"));
            assert!(
                found,
                "the chain saved on the custom generator stack had no trace"
            );
            assert!(fut.backtrace().is_some());
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            assert!(w.join().unwrap() > 0);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(120));
        assert!(matches!(poll_once(&mut fut), Poll::Ready(_)));
    });
}
