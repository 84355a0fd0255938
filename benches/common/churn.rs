//! Group `churn`: `K` coroutines in flight on one thread. Per operation: create `K`
//! coroutines and start each (it suspends at its first yield), then resume each to
//! completion and drop them all (a server that has `K` requests in flight, each
//! waiting once). Parameter: `K` = 100 or 1000; the per-element time is per coroutine.
//!
//! Each library with its default stack: ours 2 MiB from the per-thread pool (whose
//! limit follows the load: after the first round it keeps `K` stacks), corosensei a
//! fresh 1 MiB `DefaultStack` per coroutine, stackful 0.1.5 2 MiB with its one-slot
//! global cache (so a fresh mapping for all but one).

use super::{Case, Make, Run};
use std::hint::black_box;
use std::pin::Pin;
use std::time::Instant;

pub const GROUP: &str = "churn";

pub fn cases() -> Vec<Case> {
    let libs: [(&'static str, Make, u64); 3] = [
        ("ours", ours, 4),
        ("corosensei", corosensei, 0),
        ("stackful-0.1.5", stackful_0_1, 0),
    ];
    let mut v = Vec::new();
    for k in [100u64, 1000] {
        for (function, make, insn_ops) in libs {
            v.push(Case {
                group: GROUP,
                function,
                param: Some(k.to_string()),
                elements: k,
                bytes: None,
                insn_ops,
                make,
            });
        }
    }
    v
}

fn in_flight(param: Option<&str>) -> usize {
    param.and_then(|p| p.parse().ok()).unwrap_or(100)
}

/// A `Run` that performs `round` `n` times on a reused vector of `k` coroutines.
fn rounds<T: 'static>(
    k: usize,
    mut new_started: impl FnMut() -> T + 'static,
    mut finish: impl FnMut(&mut T) + 'static,
) -> Run {
    let mut v: Vec<T> = Vec::with_capacity(k);
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            for _ in 0..k {
                v.push(new_started());
            }
            for c in v.iter_mut() {
                finish(black_box(c));
            }
            v.clear();
        }
        start.elapsed()
    })
}

pub fn ours(param: Option<&str>) -> Run {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    rounds(
        in_flight(param),
        || {
            let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
                y.yeet(());
            });
            assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(()));
            g
        },
        |g| assert_eq!(Pin::new(g).resume(()), GeneratorState::Complete(())),
    )
}

pub fn corosensei(param: Option<&str>) -> Run {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    rounds(
        in_flight(param),
        || {
            let mut c = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                y.suspend(());
            });
            assert!(matches!(c.resume(()), CoroutineResult::Yield(())));
            c
        },
        |c| assert!(matches!(c.resume(()), CoroutineResult::Return(()))),
    )
}

pub fn stackful_0_1(param: Option<&str>) -> Run {
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    rounds(
        in_flight(param),
        || {
            let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
                y.yeet(());
            });
            assert!(matches!(
                Pin::new(&mut g).resume(()),
                GeneratorState::Yielded(())
            ));
            g
        },
        |g| {
            assert!(matches!(
                Pin::new(g).resume(()),
                GeneratorState::Complete(())
            ))
        },
    )
}
