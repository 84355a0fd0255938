//! Review: the default stack allocator (slabs, pools) from safe code: odd sizes,
//! hopeless sizes, and churn across threads while pools are resized and cleared.
#![cfg(not(target_arch = "wasm32"))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{self, DefaultStack, Stack, MIN_STACK_SIZE};
use stackful::Builder;
use std::hint::black_box;
use std::io;
use std::pin::Pin;

/// Recurses through `bytes` of stack (4 KiB per frame), then yields `bytes`.
#[inline(never)]
fn use_stack(y: &YieldHandle<usize>, bytes: usize, total: usize) {
    let mut pad = [0u8; 4096];
    let levels = bytes / 4096;
    pad[0] = levels as u8;
    black_box(&mut pad);
    if levels > 1 {
        use_stack(y, bytes - 4096, total);
    } else {
        y.yeet(total);
    }
}

/// Every size a caller might pass gets a usable stack of at least that size (and at
/// least MIN_STACK_SIZE), a whole number of pages, 16-aligned top; coroutines on them
/// can use most of it.
#[test]
fn odd_stack_sizes_are_rounded_and_usable() {
    let page = 4096;
    for size in [
        0,
        1,
        4095,
        4097,
        MIN_STACK_SIZE - 1,
        MIN_STACK_SIZE + 1,
        100_000,
        (32 << 20) - 1,
        32 << 20,
        (32 << 20) + 1,
        (64 << 20) + 12345,
    ] {
        let s = DefaultStack::new(size).unwrap();
        let usable = s.top().as_ptr() as usize - s.bottom().as_ptr() as usize;
        assert_eq!(usable, s.size());
        assert!(usable >= size.max(MIN_STACK_SIZE), "{size}: {usable}");
        assert_eq!(usable % page, 0);
        assert_eq!(s.top().as_ptr() as usize % 16, 0);
        assert!(usable < size.max(MIN_STACK_SIZE) + 64 * 1024);
        drop(s);

        let use_bytes = size.clamp(MIN_STACK_SIZE, 1 << 20) / 2;
        let mut g = Builder::new()
            .stack_size(size)
            .generator(move |y: &YieldHandle<usize>, ()| use_stack(y, use_bytes, use_bytes))
            .unwrap();
        assert_eq!(
            Pin::new(&mut g).resume(()),
            GeneratorState::Yielded(use_bytes)
        );
        assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Complete(()));
    }
}

/// Sizes that cannot be mapped are an `Err` with a message naming the problem, from
/// `DefaultStack::new` and from the builder: never a panic, abort or a tiny stack.
#[test]
fn impossible_stack_sizes_are_errors() {
    // Half of the address space and more: only beyond reach on 64-bit targets (a 32-bit
    // process on a 64-bit kernel can map 2 GiB and more).
    let mut sizes = vec![usize::MAX, usize::MAX - 4095];
    if cfg!(target_pointer_width = "64") {
        sizes.extend([usize::MAX / 2, usize::MAX / 16 * 15]);
    }
    for size in sizes {
        let err = DefaultStack::new(size).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::OutOfMemory
            ) || err.raw_os_error() == Some(libc_enomem()),
            "{size}: {err:?}"
        );
        assert!(err.to_string().contains("stackful"), "{size}: {err}");
        let err = Builder::new()
            .stack_size(size)
            .generator(|_: &YieldHandle<()>, ()| {})
            .unwrap_err();
        assert!(err.to_string().contains("stackful"), "{size}: {err}");
    }
    // The allocator still works afterwards.
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u8>, ()| y.yeet(7));
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(7));
}

/// `ENOMEM` on Linux.
fn libc_enomem() -> i32 {
    12
}

/// Four threads create coroutines of three sizes, send half of their suspended
/// stacks to the next thread to drop, and keep resizing and clearing their own pools
/// meanwhile. Every coroutine runs on memory of its own (each writes its id over its
/// whole used area and checks it after every other thread had turns), and once every
/// stack is dropped and every pool cleared, the allocator holds no more stacks than
/// before.
#[test]
fn churn_across_threads_while_pools_are_resized_and_cleared() {
    use std::sync::mpsc;
    const THREADS: usize = 4;
    const ROUNDS: usize = 300;
    let mapped_before = stack::stats().mapped;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|_| mpsc::channel::<DefaultStack>())
        .unzip();
    let mut rxs: Vec<Option<mpsc::Receiver<DefaultStack>>> = rxs.into_iter().map(Some).collect();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = txs[(t + 1) % THREADS].clone();
            let rx = rxs[t].take().unwrap();
            std::thread::spawn(move || {
                let sizes = [MIN_STACK_SIZE, 64 * 1024, 200 * 1024 + 1];
                let mut live = Vec::new();
                for round in 0..ROUNDS {
                    let id = (t * ROUNDS + round) as u64;
                    let size = sizes[round % 3];
                    let mut g = Builder::new()
                        .stack_size(size)
                        .generator(move |y: &YieldHandle<u64>, ()| {
                            let mut area = [id; 512];
                            black_box(&mut area);
                            y.yeet(id);
                            assert!(area.iter().all(|&v| v == id));
                            y.yeet(area[511]);
                        })
                        .unwrap();
                    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(id));
                    live.push((id, g));
                    // A raw default stack crosses to the next thread, which drops it.
                    let s = DefaultStack::new(size).unwrap();
                    // SAFETY: the top 8 bytes of the stack's usable memory, ours.
                    unsafe { (s.top().as_ptr() as *mut u64).sub(1).write(id) };
                    tx.send(s).unwrap();
                    while let Ok(s) = rx.try_recv() {
                        drop(s);
                    }
                    match round % 7 {
                        0 => stack::set_thread_pool_limit(round % 5),
                        3 => stack::clear_thread_pool(),
                        5 => stack::set_thread_pool_limit(64),
                        _ => {}
                    }
                    if live.len() > 20 {
                        for (id, mut g) in live.drain(..10) {
                            assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(id));
                            if id % 2 == 0 {
                                assert_eq!(
                                    Pin::new(&mut g).resume(()),
                                    GeneratorState::Complete(())
                                );
                            } // else dropped while suspended: unwound.
                        }
                    }
                }
                for (id, mut g) in live {
                    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(id));
                }
                drop(tx);
                for s in rx {
                    drop(s);
                }
                stack::clear_thread_pool();
            })
        })
        .collect();
    drop(txs);
    for h in handles {
        h.join().unwrap();
    }
    stack::clear_thread_pool();
    // Other tests of this binary may hold stacks meanwhile: allow for theirs.
    let after = stack::stats().mapped;
    assert!(
        after <= mapped_before + 64,
        "{after} stacks mapped, {mapped_before} before"
    );
}
