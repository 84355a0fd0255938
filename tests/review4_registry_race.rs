//! Review round 4: `registry::snapshot_with_backtraces` from another thread, in a
//! loop, while the owner thread creates and drops coroutines of many stack sizes (slab
//! slots and mappings registered and unregistered, pools cleared), among them chains
//! saved on nested generators' stacks that are dropped while suspended. Long-lived
//! chains saved on nested generators (with room: traced; nearly full: not) must be
//! traced correctly every time, and the process must never crash.
#![cfg(all(feature = "registry", not(target_arch = "wasm32")))]

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::stack::{DefaultStack, Stack};
use stackful::{registry, wait, Builder};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

mod common;
use common::descend_and_wait;
use common::poll_once;

/// As `descend_and_wait`, with other constants: in release, identical functions are
/// merged into one symbol, and the traces must tell the marked chains apart.
#[inline(never)]
fn descend_and_wait_marked(bottom: usize, left: usize) -> usize {
    let pad = black_box([1u8; 256]);
    if common::stack_address(&pad) < bottom + left + common::ASAN_EXTRA_STACK {
        wait(common::pend_n(1, 11usize));
        return pad[2] as usize;
    }
    descend_and_wait_marked(bottom, left) + black_box(pad[3]) as usize
}

fn chain(
    size: usize,
    left: usize,
    marked: bool,
) -> stackful::future::StackfulFuture<'static, usize> {
    let mut fut = stackful::stackful(move || {
        let stack = DefaultStack::new(size).unwrap();
        let bottom = stack.bottom().as_ptr() as usize;
        let mut g = StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| {
            if marked {
                descend_and_wait_marked(bottom, left)
            } else {
                descend_and_wait(bottom, left)
            }
        });
        match Pin::new(&mut g).resume(()) {
            GeneratorState::Complete(v) => v,
            GeneratorState::Yielded(()) => unreachable!(),
        }
    });
    assert!(poll_once(&mut fut).is_pending());
    fut
}

#[test]
fn snapshots_while_stacks_come_and_go() {
    common::in_child("snapshots_while_stacks_come_and_go", || {
        // Long-lived: two with room (slab size, mapped size), two nearly full.
        let mut keep = vec![
            chain(64 * 1024, 16 * 1024, true),
            chain(40 << 20, 16 * 1024, true),
            chain(16 * 1024, 3 * 1024, true),
            chain((33 << 20) + 4096, 3 * 1024, true),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let tracer = {
            let stop = stop.clone();
            let rounds = rounds.clone();
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let snap = registry::snapshot_with_backtraces();
                    let traced = snap
                        .iter()
                        .filter_map(|c| c.backtrace())
                        .filter(|t| format!("{t:?}").contains("descend_and_wait_marked"))
                        .count();
                    // The two with room (their owner does not resume them during
                    // the loop; every native target knows their stacks' bounds).
                    let want = 2;
                    if traced != want {
                        bad.push(traced);
                    }
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
                bad
            })
        };
        let start = Instant::now();
        let sizes = [
            16 * 1024,
            64 * 1024,
            20_001,
            33 << 20,
            40 << 20,
            (32 << 20) + 1,
        ];
        let mut i = 0usize;
        while start.elapsed() < Duration::from_millis(1500) || rounds.load(Ordering::Relaxed) < 20 {
            let size = sizes[i % sizes.len()];
            // A plain coroutine, finished.
            let mut f = Builder::new()
                .stack_size(size)
                .future(move || wait(common::pend_n(1, size)))
                .unwrap();
            assert!(poll_once(&mut f).is_pending());
            assert!(matches!(poll_once(&mut f), Poll::Ready(_)));
            drop(f);
            // A chain saved on a nested generator, dropped while suspended.
            // (Nearly full ones are resumed to completion: dropping them unwinds from
            // the save point, which needs more than 3 KiB there, see the control below.)
            let mut c = chain(
                size.max(32 * 1024),
                if i % 2 == 0 { 3 * 1024 } else { 16 * 1024 },
                false,
            );
            if i % 2 == 0 {
                assert!(matches!(poll_once(&mut c), Poll::Ready(_)));
            }
            drop(c);
            if i % 7 == 0 {
                stackful::stack::clear_thread_pool();
            }
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let bad = tracer.join().unwrap();
        eprintln!(
            "{i} rounds of the owner, {} snapshots, {} wrong counts",
            rounds.load(Ordering::Relaxed),
            bad.len()
        );
        assert!(bad.is_empty(), "wrong numbers of traces: {bad:?}");
        for mut f in keep.drain(..) {
            assert!(matches!(poll_once(&mut f), Poll::Ready(_)));
        }
    });
}

/// Control for the loop above: a chain saved on a 32 KiB generator stack with 3 KiB
/// free, dropped while suspended, without any snapshot: the unwind needs more stack
/// than that (the `Stack` docs count it as the coroutine's use of its stack), and the
/// guard page reports the overflow cleanly. Not a problem of the tracing.
#[test]
fn control_drop_of_a_nearly_full_chain() {
    const NAME: &str = "control_drop_of_a_nearly_full_chain";
    if common::is_child(NAME) {
        let c = chain(32 * 1024, 3 * 1024, false);
        drop(c);
        return;
    }
    let (status, stderr) = common::run_child(NAME);
    // On Windows the guard page's fault is reported by Rust's own handler
    // (STATUS_STACK_OVERFLOW, "has overflowed its stack").
    let reported = if cfg!(windows) {
        common::killed(&status) && stderr.contains("has overflowed its stack")
    } else {
        common::aborted(&status) && stderr.contains("stack overflow")
    };
    assert!(status.success() || reported, "{status}: {stderr}");
}

/// A custom stack: the upper `len` bytes of a default stack it owns (see
/// tests/review4_trace_stacks.rs, `Carved`).
struct Carved {
    inner: DefaultStack,
    len: usize,
}

// SAFETY: `top - len .. top` of a default stack this value owns (it does not move
// with the value); 16-aligned top; `len` >= 4096, a multiple of 16; no guard below
// `bottom` (guard_size 0): the memory below is the owner's.
unsafe impl Stack for Carved {
    fn top(&self) -> std::ptr::NonNull<u8> {
        self.inner.top()
    }
    fn bottom(&self) -> std::ptr::NonNull<u8> {
        // SAFETY: inside the default stack (len < its size).
        unsafe { std::ptr::NonNull::new_unchecked(self.inner.top().as_ptr().sub(self.len)) }
    }
}

/// The same problem through the registry, from another thread: the chain is saved
/// with 3 KiB free on a custom stack carved from a default stack; the snapshot must
/// give it no trace (documented) and must not write below that stack.
#[test]
fn snapshot_of_a_chain_on_a_carved_custom_stack() {
    common::in_child("snapshot_of_a_chain_on_a_carved_custom_stack", || {
        const CANARY_LEN: usize = 16 * 1024;
        let canary_at = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let at2 = canary_at.clone();
        let mut fut = stackful::stackful(move || {
            let stack = Carved {
                inner: DefaultStack::new(1 << 20).unwrap(),
                len: 32 * 1024,
            };
            let bottom = stack.bottom().as_ptr() as usize;
            // SAFETY: the owner's part of the default stack, below the carved one.
            unsafe { std::ptr::write_bytes((bottom - CANARY_LEN) as *mut u8, 0xA5, CANARY_LEN) };
            at2.set(bottom - CANARY_LEN);
            let mut g = StackfulGenerator::with_stack(stack, move |_: &YieldHandle<()>, ()| {
                descend_and_wait_marked(bottom, 3 * 1024)
            });
            match Pin::new(&mut g).resume(()) {
                GeneratorState::Complete(v) => v,
                GeneratorState::Yielded(()) => unreachable!(),
            }
        });
        assert!(poll_once(&mut fut).is_pending());
        let snap = std::thread::spawn(registry::snapshot_with_backtraces)
            .join()
            .unwrap();
        let traced = snap
            .iter()
            .filter_map(|c| c.backtrace())
            .filter(|t| format!("{t:?}").contains("descend_and_wait_marked"))
            .count();
        let at = canary_at.get();
        // SAFETY: the owner's part of the carved default stack, alive (the future is
        // suspended with the generator).
        let intact =
            (0..CANARY_LEN).all(|i| unsafe { ((at + i) as *const u8).read_volatile() } == 0xA5);
        eprintln!("traced {traced}, canary intact {intact}");
        assert!(intact, "the capture wrote below the custom stack's bottom");
        assert_eq!(traced, 0);
        assert!(matches!(poll_once(&mut fut), Poll::Ready(_)));
    });
}
