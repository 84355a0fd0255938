//! Review: registry snapshots with backtraces racing with owners that resume and drop
//! coroutines suspended with nearly full stacks, from threads and from inside a
//! coroutine.
#![cfg(all(feature = "registry", not(target_arch = "wasm32")))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::registry;
use stackful::stack::{DefaultStack, Stack};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

mod common;

/// Recurses until fewer than `left` bytes are free above `bottom`, then yields the
/// free bytes (and 0 after the first resume).
#[inline(never)]
fn descend(y: &YieldHandle<usize>, bottom: usize, left: usize) -> usize {
    let pad = black_box([0u8; 256]);
    let here = common::stack_address(&pad);
    if here < bottom + left {
        y.yeet(here - bottom);
        y.yeet(0);
        return pad[0] as usize;
    }
    descend(y, bottom, left) + black_box(pad[1]) as usize
}

const STACK: usize = 64 * 1024;

/// Owners on three threads make generators on 64 KiB default stacks (guarded) that
/// suspend with 3 to 16 KiB free, resume and drop them, while two other threads, one
/// of them from inside a coroutine, take snapshots with backtraces. Nothing crashes
/// (a capture that overflowed would abort the process with an overflow report), and
/// snapshots do trace coroutines that have room.
#[test]
fn snapshots_race_with_owners_of_nearly_full_stacks() {
    let stop = Arc::new(AtomicBool::new(false));
    let traced = Arc::new(AtomicUsize::new(0));
    let owners: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..300usize {
                    let left = 3072 + ((i * 7 + t * 3) % 14) * 1024;
                    let stack = DefaultStack::new(STACK).unwrap();
                    let bottom = stack.bottom().as_ptr() as usize;
                    let mut g =
                        StackfulGenerator::with_stack(stack, move |y: &YieldHandle<usize>, ()| {
                            descend(y, bottom, left);
                        });
                    let GeneratorState::Yielded(free) = Pin::new(&mut g).resume(()) else {
                        panic!("did not yield")
                    };
                    assert!(free < left);
                    std::thread::yield_now();
                    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(0));
                    std::thread::yield_now();
                    // Run to completion: unwinding it here (a drop while suspended) would
                    // need more stack than it has left.
                    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Complete(()));
                }
            })
        })
        .collect();
    let tracers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let traced = traced.clone();
            std::thread::spawn(move || {
                let take = move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let snap = registry::snapshot_with_backtraces();
                        n += snap
                            .iter()
                            .filter(|c| c.created_at().file().ends_with("review_registry.rs"))
                            .filter(|c| c.backtrace().is_some())
                            .count();
                    }
                    n
                };
                let n = if t == 0 {
                    take()
                } else {
                    let fut = stackful::stackful(take);
                    futures::executor::block_on(fut)
                };
                traced.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for o in owners {
        o.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in tracers {
        t.join().unwrap();
    }
    assert!(traced.load(Ordering::Relaxed) > 0);
}
