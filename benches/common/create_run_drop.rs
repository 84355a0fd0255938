//! Group `create_run_drop`: create a coroutine, run it to completion (it yields once
//! on the way), drop it. Stack allocation included, each library with its default
//! stack: ours 2 MiB from the per-thread pool, corosensei a fresh 1 MiB
//! `DefaultStack` each time, stackful 0.1.5 a 2 MiB stack with its one-slot global
//! cache, generator-rs a fresh 32 KiB mmap.
//!
//! Parameter `idle`: nothing else alive. `alive1000`: 1,000 other suspended
//! coroutines of the same library are alive during the measurement.
//! `ours-no-pool` is ours with `set_thread_pool_limit(0)`: the fresh-mmap cost.
//! `*-unstarted` (ours and stackful 0.1.5) create and drop a coroutine without ever
//! resuming it: the share of allocation and set-up in the full operation.
//!
//! Group `create_run_drop_burst16`: per operation, 16 coroutines are created and
//! started, then all 16 finish and are dropped (e.g. a fan-out of 16 tasks). A
//! one-slot cache only serves one of the 16.

use super::{Case, Make, Run};
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub const GROUP: &str = "create_run_drop";
pub const BURST_GROUP: &str = "create_run_drop_burst16";
pub const ALIVE: usize = 1000;
pub const BURST: usize = 16;

pub fn cases() -> Vec<Case> {
    let libs: [(&'static str, Make, u64); 7] = [
        ("ours", ours, 5_000),
        ("ours-unstarted", ours_unstarted, 5_000),
        ("ours-no-pool", ours_no_pool, 1_000),
        ("corosensei", corosensei, 1_000),
        ("stackful-0.1.5", stackful_0_1, 1_000),
        ("stackful-0.1.5-unstarted", stackful_0_1_unstarted, 5_000),
        ("generator-rs", generator_rs, 1_000),
    ];
    let mut v = Vec::new();
    for param in ["idle", "alive1000"] {
        for (function, make, insn_ops) in libs {
            v.push(Case {
                group: GROUP,
                function,
                param: Some(param.to_string()),
                elements: 1,
                bytes: None,
                insn_ops,
                make,
            });
        }
    }
    let burst: [(&'static str, Make); 3] = [
        ("ours", ours_burst),
        ("corosensei", corosensei_burst),
        ("stackful-0.1.5", stackful_0_1_burst),
    ];
    for (function, make) in burst {
        v.push(Case {
            group: BURST_GROUP,
            function,
            param: None,
            elements: BURST as u64,
            bytes: None,
            insn_ops: 200,
            make,
        });
    }
    v
}

fn alive(param: Option<&str>) -> usize {
    match param {
        Some("alive1000") => ALIVE,
        _ => 0,
    }
}

/// Times `n` calls of `op`.
#[inline(always)]
fn repeat(n: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}

mod ours_impl {
    use super::*;
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};

    pub type Gen = StackfulGenerator<'static, (), (), ()>;

    #[inline(always)]
    pub fn new() -> Gen {
        StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
            y.yeet(());
        })
    }

    #[inline(always)]
    pub fn start(g: &mut Gen) {
        assert_eq!(Pin::new(g).resume(()), GeneratorState::Yielded(()));
    }

    #[inline(always)]
    pub fn finish(g: &mut Gen) {
        assert_eq!(Pin::new(g).resume(()), GeneratorState::Complete(()));
    }

    pub fn suspended(count: usize) -> Vec<Gen> {
        (0..count)
            .map(|_| {
                let mut g = new();
                start(&mut g);
                g
            })
            .collect()
    }

    /// Create and drop, never resumed.
    #[inline(always)]
    pub fn unstarted() {
        drop(black_box(new()));
    }

    #[inline(always)]
    pub fn op() {
        let mut g = black_box(new());
        start(&mut g);
        finish(&mut g);
        drop(g);
    }
}

/// Restores the default pool limit when the case is dropped.
struct PoolOff;

impl PoolOff {
    fn new() -> Self {
        stackful::stack::set_thread_pool_limit(0);
        PoolOff
    }
}

impl Drop for PoolOff {
    fn drop(&mut self) {
        stackful::stack::set_thread_pool_limit(stackful::stack::DEFAULT_POOL_LIMIT);
    }
}

/// Ours with the pool disabled: every creation maps a fresh stack, every drop unmaps.
pub fn ours_no_pool(param: Option<&str>) -> Run {
    let others = ours_impl::suspended(alive(param));
    let guard = PoolOff::new();
    Box::new(move |n| {
        let _keep = (&others, &guard);
        repeat(n, ours_impl::op)
    })
}

mod corosensei_impl {
    use super::*;
    use corosensei::{Coroutine, CoroutineResult, Yielder};

    pub type Co = Coroutine<(), (), ()>;

    #[inline(always)]
    pub fn new() -> Co {
        Coroutine::new(|y: &Yielder<(), ()>, ()| {
            y.suspend(());
        })
    }

    #[inline(always)]
    pub fn start(c: &mut Co) {
        assert!(matches!(c.resume(()), CoroutineResult::Yield(())));
    }

    #[inline(always)]
    pub fn finish(c: &mut Co) {
        assert!(matches!(c.resume(()), CoroutineResult::Return(())));
    }

    pub fn suspended(count: usize) -> Vec<Co> {
        (0..count)
            .map(|_| {
                let mut c = new();
                start(&mut c);
                c
            })
            .collect()
    }

    #[inline(always)]
    pub fn op() {
        let mut c = black_box(new());
        start(&mut c);
        finish(&mut c);
        drop(c);
    }
}

mod stackful_0_1_impl {
    use super::*;
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};

    pub type Gen = StackfulGenerator<'static, (), (), ()>;

    #[inline(always)]
    pub fn new() -> Gen {
        StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
            y.yeet(());
        })
    }

    #[inline(always)]
    pub fn start(g: &mut Gen) {
        assert!(matches!(
            Pin::new(g).resume(()),
            GeneratorState::Yielded(())
        ));
    }

    #[inline(always)]
    pub fn finish(g: &mut Gen) {
        assert!(matches!(
            Pin::new(g).resume(()),
            GeneratorState::Complete(())
        ));
    }

    pub fn suspended(count: usize) -> Vec<Gen> {
        (0..count)
            .map(|_| {
                let mut g = new();
                start(&mut g);
                g
            })
            .collect()
    }

    /// Create and drop, never resumed.
    #[inline(always)]
    pub fn unstarted() {
        drop(black_box(new()));
    }

    #[inline(always)]
    pub fn op() {
        let mut g = black_box(new());
        start(&mut g);
        finish(&mut g);
        drop(g);
    }
}

mod generator_rs_impl {
    use super::*;

    pub type Gen = generator::Generator<'static, (), u32>;

    #[inline(always)]
    pub fn new() -> Gen {
        generator::Gn::<()>::new_scoped(|mut s| {
            s.yield_(1);
            2
        })
    }

    #[inline(always)]
    pub fn start(g: &mut Gen) {
        assert_eq!(g.resume(), Some(1));
    }

    #[inline(always)]
    pub fn finish(g: &mut Gen) {
        assert_eq!(g.resume(), Some(2));
        assert!(g.is_done());
    }

    pub fn suspended(count: usize) -> Vec<Gen> {
        (0..count)
            .map(|_| {
                let mut g = new();
                start(&mut g);
                g
            })
            .collect()
    }

    #[inline(always)]
    pub fn op() {
        let mut g = black_box(new());
        start(&mut g);
        finish(&mut g);
        drop(g);
    }
}

/// A case that times `n` calls of `$imp::$op` while `alive(param)` other suspended
/// coroutines of the same library exist.
macro_rules! with_others_alive {
    ($(#[$doc:meta])* $name:ident, $imp:ident, $op:ident) => {
        $(#[$doc])*
        pub fn $name(param: Option<&str>) -> Run {
            let others = $imp::suspended(alive(param));
            Box::new(move |n| {
                let _others = &others;
                repeat(n, $imp::$op)
            })
        }
    };
}

with_others_alive!(
    /// Ours: `StackfulGenerator::new` (pooled stack), resume twice, drop.
    ours,
    ours_impl,
    op
);
with_others_alive!(
    /// Ours: `StackfulGenerator::new` (pooled stack) and drop, never resumed.
    ours_unstarted,
    ours_impl,
    unstarted
);
with_others_alive!(
    /// corosensei: `Coroutine::new` (fresh `DefaultStack`), resume twice, drop.
    corosensei,
    corosensei_impl,
    op
);
with_others_alive!(
    /// stackful 0.1.5: `StackfulGenerator::new` (one-slot stack cache), resume twice, drop.
    stackful_0_1,
    stackful_0_1_impl,
    op
);
with_others_alive!(
    /// stackful 0.1.5: `StackfulGenerator::new` and drop, never resumed.
    stackful_0_1_unstarted,
    stackful_0_1_impl,
    unstarted
);
with_others_alive!(
    /// generator-rs: `Gn::new_scoped` (fresh mmap), resume twice, drop.
    generator_rs,
    generator_rs_impl,
    op
);

/// Creates and starts `BURST` coroutines, then finishes and drops them all.
macro_rules! burst {
    ($name:ident, $imp:ident) => {
        pub fn $name(_: Option<&str>) -> Run {
            Box::new(|n| {
                let mut batch = Vec::with_capacity(BURST);
                repeat(n, || {
                    for _ in 0..BURST {
                        let mut g = black_box($imp::new());
                        $imp::start(&mut g);
                        batch.push(g);
                    }
                    for mut g in batch.drain(..) {
                        $imp::finish(&mut g);
                        drop(g);
                    }
                })
            })
        }
    };
}

burst!(ours_burst, ours_impl);
burst!(corosensei_burst, corosensei_impl);
burst!(stackful_0_1_burst, stackful_0_1_impl);
