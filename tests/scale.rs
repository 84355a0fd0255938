//! Many coroutines at once, on many threads, and the per-thread stack pool.

// Without unwinding or threads (wasm32) the tests that need them are left out, and
// with them some of the helpers and imports.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

mod common;

use futures::channel::oneshot;
use futures::task::noop_waker_ref;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{
    clear_thread_pool, set_thread_pool_limit, thread_pool_limit, DEFAULT_POOL_LIMIT,
};
use stackful::{leaked_stacks, stackful, wait, yield_now, Builder};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;

fn resume<G: Generator<A> + Unpin, A>(g: &mut G, arg: A) -> GeneratorState<G::Yield, G::Return> {
    Pin::new(g).resume(arg)
}

/// Runs `f` on a fresh thread (fresh thread-local pool) and returns its result.
#[cfg(not(target_arch = "wasm32"))]
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(f).join().unwrap()
}

/// wasm32 has no threads: runs `f` here with this thread's pool emptied and its limit
/// at the default (as on a fresh thread), and empties the pool and restores the limit
/// afterwards.
#[cfg(target_arch = "wasm32")]
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let limit = thread_pool_limit();
    clear_thread_pool();
    set_thread_pool_limit(DEFAULT_POOL_LIMIT);
    let r = f();
    clear_thread_pool();
    set_thread_pool_limit(limit);
    r
}

#[test]
fn a_thousand_generators_suspended_at_once() {
    let live = Rc::new(Cell::new(0));
    let mut gens: Vec<_> = (0..1000u64)
        .map(|i| {
            let live = live.clone();
            StackfulGenerator::new(move |y: &YieldHandle<u64, u64>, first: u64| {
                live.set(live.get() + 1);
                // Some stack in use across the suspensions.
                let local = [i; 16];
                let mut acc = first;
                for (round, &l) in local.iter().take(3).enumerate() {
                    acc += y.yeet(l * 10 + round as u64);
                }
                live.set(live.get() - 1);
                acc + local.iter().sum::<u64>()
            })
        })
        .collect();
    for (i, g) in gens.iter_mut().enumerate() {
        assert_eq!(resume(g, 1), GeneratorState::Yielded(i as u64 * 10));
    }
    assert_eq!(live.get(), 1000, "all of them are suspended at once");
    for round in 1..3u64 {
        for (i, g) in gens.iter_mut().enumerate().rev() {
            assert_eq!(resume(g, 1), GeneratorState::Yielded(i as u64 * 10 + round));
        }
    }
    for (i, g) in gens.iter_mut().enumerate() {
        assert_eq!(resume(g, 1), GeneratorState::Complete(4 + 16 * i as u64));
        assert!(g.is_complete());
    }
    assert_eq!(live.get(), 0);
}

// Needs unwinding (wasm32 is panic=abort): drops suspended coroutines (wasm leaks them).
#[cfg(panic = "unwind")]
#[test]
fn a_thousand_futures_pending_at_once() {
    let mut senders = Vec::new();
    let mut futs = Vec::new();
    let started = Rc::new(Cell::new(0));
    for i in 0..1000u32 {
        let (tx, rx) = oneshot::channel::<u32>();
        senders.push(tx);
        let started = started.clone();
        futs.push(stackful(move || {
            started.set(started.get() + 1);
            let v = wait(rx).unwrap();
            yield_now();
            v + i
        }));
    }
    let waker = noop_waker_ref();
    let mut cx = Context::from_waker(waker);
    for f in &mut futs {
        assert!(Pin::new(f).poll(&mut cx).is_pending());
    }
    assert_eq!(started.get(), 1000);
    // Half of them are dropped while suspended.
    let dropped: Vec<_> = futs.drain(500..).collect();
    drop(dropped);
    for (i, tx) in senders.into_iter().enumerate() {
        // The receivers of the dropped futures are gone with their stacks.
        assert_eq!(tx.send(i as u32 * 2).is_ok(), i < 500);
    }
    for (i, f) in futs.iter_mut().enumerate() {
        // `yield_now` pends once more.
        assert!(Pin::new(&mut *f).poll(&mut cx).is_pending());
        assert_eq!(Pin::new(f).poll(&mut cx), Poll::Ready(i as u32 * 3));
    }
}

/// (In a child process, so that an abort fails only this test.)
// Needs unwinding (wasm32 is panic=abort): drops suspended coroutines (wasm leaks them).
#[cfg(panic = "unwind")]
#[test]
fn a_thousand_mixed_coroutines_nested_and_dropped() {
    common::in_child("a_thousand_mixed_coroutines_nested_and_dropped", || {
        // Generators, each holding a suspended future that is polled from its stack.
        let polled = Rc::new(Cell::new(0usize));
        let mut gens: Vec<_> = (0..1000usize)
            .map(|i| {
                let polled = polled.clone();
                StackfulGenerator::new(move |y: &YieldHandle<usize>, ()| {
                    let mut fut = stackful(move || {
                        yield_now();
                        i
                    });
                    let mut cx = Context::from_waker(noop_waker_ref());
                    loop {
                        polled.set(polled.get() + 1);
                        match Pin::new(&mut fut).poll(&mut cx) {
                            Poll::Ready(v) => {
                                assert_eq!(v, i);
                                return;
                            }
                            Poll::Pending => y.yeet(i),
                        }
                    }
                })
            })
            .collect();
        for (i, g) in gens.iter_mut().enumerate() {
            assert_eq!(g.next(), Some(i));
        }
        assert_eq!(polled.get(), 1000);
        // Drop every other one while both it and its future are suspended.
        let mut kept = Vec::new();
        for (i, g) in gens.into_iter().enumerate() {
            if i % 2 == 0 {
                kept.push(g);
            }
        }
        for g in &mut kept {
            assert_eq!(g.next(), None);
            assert!(g.is_complete());
        }
        assert_eq!(polled.get(), 1500);
    });
}

// Not on wasm32: needs threads.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn coroutines_on_eight_threads_at_once() {
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8usize)
        .map(|t| {
            let total = total.clone();
            thread::spawn(move || {
                // Different pool limits on different threads.
                set_thread_pool_limit(t % 3);
                let mut sum = 0usize;
                for round in 0..40usize {
                    // A few generators alive at once on this thread.
                    let mut gens: Vec<_> = (0..5usize)
                        .map(|k| {
                            StackfulGenerator::new(move |y: &YieldHandle<usize>, ()| {
                                for j in 0..3 {
                                    y.yeet(t * 1000 + round * 10 + k + j);
                                }
                            })
                        })
                        .collect();
                    for g in &mut gens {
                        sum += g.by_ref().sum::<usize>();
                    }
                    // One dropped while suspended.
                    let mut g = StackfulGenerator::new(|y: &YieldHandle<usize>, ()| loop {
                        y.yeet(1);
                    });
                    sum += g.next().unwrap();
                    drop(g);
                    // A future that really waits for another thread.
                    let (tx, rx) = oneshot::channel();
                    let sender = thread::spawn(move || tx.send(round).unwrap());
                    sum += futures::executor::block_on(stackful(move || {
                        yield_now();
                        wait(rx).unwrap()
                    }));
                    sender.join().unwrap();
                }
                total.fetch_add(sum, Ordering::SeqCst);
                sum
            })
        })
        .collect();
    let sums: Vec<usize> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, s) in sums.iter().enumerate() {
        let expected: usize = (0..40)
            .map(|round| {
                (0..5)
                    .flat_map(|k| (0..3).map(move |j| t * 1000 + round * 10 + k + j))
                    .sum::<usize>()
                    + 1
                    + round
            })
            .sum();
        assert_eq!(*s, expected, "thread {t}");
    }
    assert_eq!(total.load(Ordering::SeqCst), sums.iter().sum::<usize>());
}

/// The address of the coroutine's `YieldHandle`, which lives on its stack at the same
/// offset from the top for every generator of this closure type (under
/// AddressSanitizer, the stack pointer there instead: see `common::stack_address`).
fn stack_marker_generator() -> StackfulGenerator<'static, usize, (), ()> {
    StackfulGenerator::new(|y: &YieldHandle<usize>, ()| {
        y.yeet(common::stack_address(y));
    })
}

// Not on wasm32: needs a second thread.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_pool_limit_is_per_thread_and_defaults_to_default_pool_limit() {
    on_fresh_thread(|| {
        assert_eq!(thread_pool_limit(), DEFAULT_POOL_LIMIT);
        set_thread_pool_limit(3);
        assert_eq!(thread_pool_limit(), 3);
        on_fresh_thread(|| assert_eq!(thread_pool_limit(), DEFAULT_POOL_LIMIT));
        assert_eq!(thread_pool_limit(), 3);
    });
}

// Needs unwinding (wasm32 is panic=abort): drops suspended generators to pool their stacks (wasm leaks them).
#[cfg(panic = "unwind")]
#[test]
fn pooled_stacks_are_reused_up_to_the_limit() {
    on_fresh_thread(|| {
        set_thread_pool_limit(3);
        let mut gens: Vec<_> = (0..10).map(|_| stack_marker_generator()).collect();
        let old: Vec<usize> = gens.iter_mut().map(|g| g.next().unwrap()).collect();
        let mut distinct = old.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 10, "live coroutines have distinct stacks");
        drop(gens);
        // Three stacks were kept: the next three coroutines get them back.
        let mut again: Vec<_> = (0..3).map(|_| stack_marker_generator()).collect();
        for g in &mut again {
            let addr = g.next().unwrap();
            assert!(old.contains(&addr), "{addr:#x} is not a pooled stack");
        }
        // More than the limit still works (fresh stacks).
        let mut more: Vec<_> = (0..20).map(|_| stack_marker_generator()).collect();
        for g in &mut more {
            assert!(g.next().is_some());
        }
        drop((again, more));
        assert_eq!(leaked_stacks(), 0);
    });
}

#[test]
fn a_disabled_or_cleared_pool_still_makes_coroutines() {
    on_fresh_thread(|| {
        // Fill the pool, then clear it.
        let gens: Vec<_> = (0..DEFAULT_POOL_LIMIT + 4)
            .map(|_| {
                let mut g = stack_marker_generator();
                g.next().unwrap();
                g
            })
            .collect();
        drop(gens);
        clear_thread_pool();
        let mut g = stack_marker_generator();
        assert!(g.next().is_some());
        drop(g);

        set_thread_pool_limit(0);
        assert_eq!(thread_pool_limit(), 0);
        for _ in 0..100 {
            let mut g = stack_marker_generator();
            assert!(g.next().is_some());
            assert_eq!(g.next(), None);
            assert_eq!(
                futures::executor::block_on(stackful(|| wait(async { 3 }))),
                3
            );
        }
        clear_thread_pool();
        // Lowering the limit after the pool filled up.
        set_thread_pool_limit(8);
        let gens: Vec<_> = (0..8).map(|_| stack_marker_generator()).collect();
        drop(gens);
        set_thread_pool_limit(2);
        let mut gens: Vec<_> = (0..8).map(|_| stack_marker_generator()).collect();
        assert!(gens.iter_mut().all(|g| g.next().is_some()));
    });
}

#[test]
fn pooled_stacks_of_other_sizes_are_not_mixed_up() {
    on_fresh_thread(|| {
        let sizes = [16 * 1024, 64 * 1024, 2 * 1024 * 1024];
        for _ in 0..3 {
            let mut gens = Vec::new();
            for &size in &sizes {
                let mut g = Builder::new()
                    .stack_size(size)
                    .generator(move |y: &YieldHandle<usize>, ()| {
                        // Use most of the stack: a smaller stack would overflow.
                        fn fill(bytes: usize) -> u8 {
                            let buf = std::hint::black_box([bytes as u8; 1024]);
                            if bytes <= 1024 {
                                buf[0]
                            } else {
                                fill(bytes - 1024).wrapping_add(buf[1])
                            }
                        }
                        y.yeet(0);
                        std::hint::black_box(fill(size / 4));
                    })
                    .unwrap();
                assert!(matches!(g.next(), Some(0)));
                gens.push((g, size));
            }
            for (g, _) in &mut gens {
                assert_eq!(g.next(), None);
            }
        }
    });
}

/// Creating and dropping many coroutines does not leak stacks: with the pool disabled
/// every stack is a new mapping, and leaked ones would exhaust the mapping limit
/// (`vm.max_map_count`, 65530 by default, two mappings per stack).
// Needs unwinding (wasm32 is panic=abort): drops suspended coroutines (wasm leaks them).
#[cfg(panic = "unwind")]
#[test]
fn many_coroutines_created_and_dropped_in_sequence() {
    on_fresh_thread(|| {
        set_thread_pool_limit(0);
        for i in 0..40_000u32 {
            match i % 3 {
                0 => {
                    let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
                        y.yeet(1);
                        y.yeet(2);
                    });
                    assert_eq!(g.next(), Some(1));
                    // dropped while suspended
                }
                1 => {
                    let mut f = stackful(move || wait(async { i }));
                    let mut cx = Context::from_waker(noop_waker_ref());
                    assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(i));
                }
                _ => {
                    // dropped before it started
                    let _g = StackfulGenerator::new(|_: &YieldHandle<u32>, ()| ());
                }
            }
        }
        assert_eq!(leaked_stacks(), 0);
    });
}

#[test]
fn default_stack_new_and_the_stack_trait() {
    use stackful::stack::{DefaultStack, Stack, MIN_STACK_SIZE};
    let s = DefaultStack::new(100_000).unwrap();
    let (top, bottom) = (s.top().as_ptr() as usize, s.bottom().as_ptr() as usize);
    assert!(s.size() >= 100_000);
    assert_eq!(top - bottom, s.size());
    assert_eq!(top % 16, 0);
    #[cfg(not(target_arch = "wasm32"))]
    assert!(s.guard_size() > 0, "default stacks have a guard");
    // wasm32 has no virtual memory, so no guard pages.
    #[cfg(target_arch = "wasm32")]
    assert_eq!(s.guard_size(), 0, "no guard on wasm32");
    // Whole pages (page sizes are multiples of 4 KiB; the guard may be several pages).
    assert_eq!(s.size() % 4096, 0, "whole pages");
    // The memory is usable.
    // SAFETY: `bottom..top` is the writable, unused part of the mapping we own.
    unsafe {
        std::ptr::write_bytes(bottom as *mut u8, 0xa5, top - bottom);
        assert_eq!(*((top - 1) as *const u8), 0xa5);
    }
    assert!(DefaultStack::new(0).unwrap().size() >= MIN_STACK_SIZE);
    assert!(DefaultStack::new(usize::MAX).is_err());

    // As a custom stack.
    let mut g = StackfulGenerator::with_stack(
        DefaultStack::new(64 * 1024).unwrap(),
        |y: &YieldHandle<usize>, ()| {
            y.yeet(y as *const YieldHandle<usize> as usize);
        },
    );
    let addr = g.next().unwrap();
    assert_ne!(addr, 0);
    assert_eq!(g.next(), None);
    let fut = stackful::future::StackfulFuture::with_stack(DefaultStack::new(0).unwrap(), || {
        wait(async { 1 }) + 1
    });
    assert_eq!(futures::executor::block_on(fut), 2);
}

/// Drops of coroutines kept in thread-locals run during thread exit, possibly after
/// the stack pool's own thread-local is gone.
// Not on wasm32: needs threads (and unwinding).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn suspended_coroutines_in_thread_locals_are_unwound_at_thread_exit() {
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static GEN: std::cell::RefCell<Option<StackfulGenerator<'static, u32, (), ()>>> =
            const { std::cell::RefCell::new(None) };
        static FUT: std::cell::RefCell<Option<stackful::future::StackfulFuture<'static, ()>>> =
            const { std::cell::RefCell::new(None) };
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    thread::spawn(move || {
        let (d1, d2) = (d.clone(), d.clone());
        let mut g = StackfulGenerator::new(move |y: &YieldHandle<u32>, ()| {
            let _c = Count(d1);
            y.yeet(1);
        });
        assert_eq!(g.next(), Some(1));
        GEN.with(|cell| *cell.borrow_mut() = Some(g));
        let mut f = stackful(move || {
            let _c = Count(d2);
            wait(std::future::pending::<()>());
        });
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        FUT.with(|cell| *cell.borrow_mut() = Some(f));
        // Make sure the pool has stacks in it too.
        assert_eq!(
            StackfulGenerator::new(|_: &YieldHandle<u32>, ()| ()).next(),
            None
        );
        assert_eq!(d.load(Ordering::SeqCst), 0);
    })
    .join()
    .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

/// Lines of `/proc/self/maps`: the process's mappings.
#[cfg(target_os = "linux")]
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// 100,000 suspended coroutines with guard pages fit under the kernel's default limits
/// (`vm.max_map_count` = 65530) where guard regions are available: they take a few
/// hundred mappings, not two each. Elsewhere (older kernels, qemu-user) creation ends
/// in an `Err`, never a crash. (In a child process: the mapping count is the
/// process's.) Under valgrind, which tracks every coroutine stack, 2,000 of them; in a
/// 32-bit address space (3 GiB at most), 20,000 (1.3 GiB of stacks).
#[cfg(all(target_os = "linux", panic = "unwind"))]
#[test]
fn a_hundred_thousand_coroutines_fit_at_default_limits() {
    common::in_child(
        "a_hundred_thousand_coroutines_fit_at_default_limits",
        || {
            let under_valgrind = std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("vgpreload"));
            let count = if under_valgrind {
                2_000
            } else if cfg!(target_pointer_width = "64") {
                100_000
            } else {
                20_000
            };
            let guard_regions = stackful::stack::stats().guard_regions;
            let (maps0, mapped0) = (map_count(), stackful::stack::stats().mapped);
            let mut cx = Context::from_waker(noop_waker_ref());
            let mut alive = Vec::with_capacity(count);
            let mut error = None;
            for _ in 0..count {
                match Builder::new()
                    .stack_size(64 * 1024)
                    .future(|| wait(futures::future::pending::<()>()))
                {
                    Ok(f) => {
                        let mut f = Box::pin(f);
                        assert!(f.as_mut().poll(&mut cx).is_pending());
                        alive.push(f);
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let maps = map_count() - maps0;
            eprintln!(
            "guard regions: {guard_regions}; {} coroutines, {maps} more mappings, error: {error:?}",
            alive.len()
        );
            if guard_regions {
                assert!(error.is_none(), "{error:?} after {}", alive.len());
                assert!(maps < count / 100, "{maps} mappings for {count} stacks");
            } else if let Some(e) = error {
                let msg = e.to_string();
                assert!(
                    msg.contains("stackful: mmap") || msg.contains("stackful: mprotect"),
                    "{msg}"
                );
            }
            assert_eq!(stackful::stack::stats().mapped, mapped0 + alive.len());
            drop(alive);
            // The pool keeps some for the next coroutines; the rest are released.
            let pooled = stackful::stack::stats().pooled_on_this_thread;
            assert!(pooled <= stackful::stack::MAX_ADAPTIVE_POOL_LIMIT);
            assert_eq!(stackful::stack::stats().mapped, mapped0 + pooled);
            stackful::stack::clear_thread_pool();
            assert_eq!(stackful::stack::stats().mapped, mapped0);
        },
    );
}

/// The pool's limit follows the load: it grows when more coroutines are in flight than
/// it keeps stacks for (so the next round of as many takes no system call), is
/// bounded, decays when the load falls, and stays where `set_thread_pool_limit` puts
/// it.
// Needs unwinding (wasm32 is panic=abort): drops suspended generators (wasm leaks them).
#[cfg(panic = "unwind")]
#[test]
fn the_pool_limit_follows_the_load() {
    use stackful::stack::{stats, MAX_ADAPTIVE_POOL_LIMIT};
    on_fresh_thread(|| {
        assert_eq!(thread_pool_limit(), DEFAULT_POOL_LIMIT);
        let round = |n: usize| -> Vec<usize> {
            let mut gens: Vec<_> = (0..n).map(|_| stack_marker_generator()).collect();
            gens.iter_mut().map(|g| g.next().unwrap()).collect()
        };
        let first = round(200);
        assert!(
            (200..=MAX_ADAPTIVE_POOL_LIMIT).contains(&thread_pool_limit()),
            "{}",
            thread_pool_limit()
        );
        assert_eq!(stats().pooled_on_this_thread, 200);
        // The second round of 200 runs on the stacks of the first.
        let mut second = round(200);
        let mut first_sorted = first.clone();
        first_sorted.sort_unstable();
        second.sort_unstable();
        assert_eq!(first_sorted, second, "the same 200 stacks are reused");
        // A burst larger than the bound: the limit stops there.
        round(MAX_ADAPTIVE_POOL_LIMIT + 500);
        assert_eq!(thread_pool_limit(), MAX_ADAPTIVE_POOL_LIMIT);
        assert_eq!(stats().pooled_on_this_thread, MAX_ADAPTIVE_POOL_LIMIT);
        // Low load (one at a time) for a while: the limit decays to the default.
        let mut n = 0;
        while thread_pool_limit() > DEFAULT_POOL_LIMIT {
            round(1);
            n += 1;
            assert!(
                n < 100_000,
                "the limit never decayed: {}",
                thread_pool_limit()
            );
        }
        assert!(stats().pooled_on_this_thread <= DEFAULT_POOL_LIMIT);
        // A fixed limit does not move.
        set_thread_pool_limit(4);
        round(100);
        assert_eq!(thread_pool_limit(), 4);
        assert_eq!(stats().pooled_on_this_thread, 4);
        clear_thread_pool();
    });
}

/// Default stacks made on one thread and dropped on others, by several threads at
/// once: the slab bookkeeping behind them is shared by the process, and every stack
/// comes back (the mapped count returns to where it was; in a child process, so that
/// other tests' stacks do not count).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn default_stacks_made_and_dropped_on_different_threads() {
    use stackful::stack::{stats, DefaultStack, Stack};
    use std::sync::mpsc;
    common::in_child(
        "default_stacks_made_and_dropped_on_different_threads",
        || {
            const THREADS: usize = 4;
            const PER_THREAD: usize = 1_500;
            let before = stats().mapped;
            let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS)
                .map(|_| mpsc::channel::<Vec<DefaultStack>>())
                .unzip();
            let handles: Vec<_> = receivers
                .into_iter()
                .enumerate()
                .map(|(t, rx)| {
                    let next = senders[(t + 1) % THREADS].clone();
                    thread::spawn(move || {
                        let sizes = [16 * 1024, 64 * 1024, 256 * 1024];
                        let mut mine = Vec::new();
                        for i in 0..PER_THREAD {
                            let s = DefaultStack::new(sizes[(i + t) % 3]).unwrap();
                            // The memory is ours: write its top and bottom bytes.
                            // SAFETY: `bottom..top` is the stack's usable memory.
                            unsafe {
                                s.bottom().as_ptr().write(t as u8);
                                s.top().as_ptr().sub(1).write(t as u8);
                            }
                            mine.push(s);
                            if mine.len() == 100 {
                                next.send(std::mem::take(&mut mine)).unwrap();
                            }
                        }
                        next.send(mine).unwrap();
                        drop(next);
                        // Drop what the previous thread sent, here.
                        let mut dropped = 0;
                        for batch in rx.iter().take(PER_THREAD.div_ceil(100) + 1) {
                            dropped += batch.len();
                        }
                        dropped
                    })
                })
                .collect();
            drop(senders);
            let dropped: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(dropped, THREADS * PER_THREAD);
            assert_eq!(stats().mapped, before);
        },
    );
}
