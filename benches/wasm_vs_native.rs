//! Criterion bench `wasm_vs_native`: the same generator and `wait` round trips, at a
//! suspension depth of 1, 10 and 100 frames, built for whatever target it is run on.
//! Run it natively and in wasm and compare (BENCHMARKS.md, "WebAssembly"):
//!
//! ```sh
//! cargo bench --bench wasm_vs_native
//! STACKFUL_WASM_OPT_FLAGS=-O cargo bench --bench wasm_vs_native --target wasm32-wasip1
//! ```
//!
//! Natively a switch costs the same at any depth (only registers are saved). On wasm,
//! Asyncify unwinds every frame between the coroutine's entry and the suspension
//! point into the save buffer and rebuilds it on resume, so the cost grows with the
//! depth: that is what this bench shows.
//!
//! Self-contained on purpose (no `benches/common`): the references there (corosensei,
//! generator-rs, stackful 0.1.5) do not build for wasm32.

use criterion::{BenchmarkId, Criterion};
use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const DEPTHS: [u32; 3] = [1, 10, 100];

/// Calls itself `depth - 1` times, then yields `x` and returns what it was resumed with.
#[inline(never)]
fn yield_at_depth(depth: u32, y: &YieldHandle<u64, u64>, x: u64) -> u64 {
    if depth <= 1 {
        return y.yeet(x);
    }
    // Not a tail call: the frame stays on the stack across the yield.
    black_box(yield_at_depth(black_box(depth - 1), y, x)).wrapping_add(1)
}

/// A future that is pending once (waking itself), then ready.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Calls itself `depth - 1` times, then `wait`s on a future that is pending once.
#[inline(never)]
fn wait_at_depth(depth: u32) -> u32 {
    if depth <= 1 {
        stackful::wait(PendingOnce(false));
        return 0;
    }
    black_box(wait_at_depth(black_box(depth - 1))).wrapping_add(1)
}

/// Polls `fut` to completion with a no-op waker, through `dyn Future` as an
/// executor's task would be.
fn drive<T>(mut fut: Pin<&mut dyn Future<Output = T>>) -> T {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(black_box(&waker));
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn generator_round_trip(depth: u32, iters: u64) -> Duration {
    let mut gen = StackfulGenerator::new(move |y: &YieldHandle<u64, u64>, mut x: u64| loop {
        x = yield_at_depth(depth, y, x);
    });
    let mut gen = Pin::new(&mut gen);
    gen.as_mut().resume(0); // started; every further resume is one round trip
    let start = Instant::now();
    for i in 0..iters {
        black_box(gen.as_mut().resume(i));
    }
    start.elapsed()
}

fn wait_round_trip(depth: u32, iters: u64) -> Duration {
    let mut fut = Box::pin(stackful::stackful(move || {
        for _ in 0..iters {
            black_box(wait_at_depth(depth));
        }
    }));
    let start = Instant::now();
    drive(fut.as_mut());
    start.elapsed()
}

/// The floor: the same `wait` loop as a native `async` block (no stack switch).
fn async_round_trip(iters: u64) -> Duration {
    let mut fut = Box::pin(async move {
        for _ in 0..iters {
            PendingOnce(false).await;
        }
    });
    let start = Instant::now();
    drive(fut.as_mut());
    start.elapsed()
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let target = if cfg!(target_arch = "wasm32") {
        "wasm32"
    } else {
        std::env::consts::ARCH
    };
    {
        let mut g = c.benchmark_group(format!("generator_round_trip_{target}"));
        for depth in DEPTHS {
            g.bench_with_input(BenchmarkId::new("depth", depth), &depth, |b, &d| {
                b.iter_custom(|iters| generator_round_trip(d, iters))
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group(format!("wait_round_trip_{target}"));
        for depth in DEPTHS {
            g.bench_with_input(BenchmarkId::new("depth", depth), &depth, |b, &d| {
                b.iter_custom(|iters| wait_round_trip(d, iters))
            });
        }
        g.bench_function("async-await", |b| b.iter_custom(async_round_trip));
        g.finish();
    }
    c.final_summary();
}
