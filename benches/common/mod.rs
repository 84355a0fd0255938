//! The benchmark cases, shared by the criterion benches (one bench target per group)
//! and by `insn_counts` (which runs the very same code under callgrind).
//!
//! A case is set up once by its `make` function, which returns a `Run`: `run(n)`
//! performs `n` operations and returns the time they took (set-up and tear-down of
//! one batch are outside the timed region). Criterion calls it through
//! `Bencher::iter_custom`; `insn_counts` calls it with two batch sizes under callgrind
//! and reports the difference per operation.

// Every bench target compiles this whole module but uses only its own group.
#![allow(dead_code)]

pub mod budget;
pub mod churn;
pub mod create_run_drop;
pub mod drop_suspended;
pub mod nesting;
pub mod round_trip;
pub mod sync_over_async;
pub mod wait_pending_once;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Performs `n` operations and returns how long they took.
pub type Run = Box<dyn FnMut(u64) -> Duration>;

/// Sets a case up (given its parameter) and returns its [`Run`].
pub type Make = fn(Option<&str>) -> Run;

/// One benchmark: `group/function[/param]`, in criterion's naming.
pub struct Case {
    pub group: &'static str,
    pub function: &'static str,
    pub param: Option<String>,
    /// Elements per operation (e.g. 16 coroutines per burst), for criterion's
    /// throughput and for per-element figures.
    pub elements: u64,
    /// Bytes per operation, if the case has a byte throughput.
    pub bytes: Option<u64>,
    /// Operations per callgrind run in `insn_counts` (0: not counted, e.g. a case
    /// whose work happens on another thread).
    pub insn_ops: u64,
    pub make: Make,
}

impl Case {
    pub fn id(&self) -> String {
        match &self.param {
            Some(p) => format!("{}/{}/{}", self.group, self.function, p),
            None => format!("{}/{}", self.group, self.function),
        }
    }

    pub fn make(&self) -> Run {
        (self.make)(self.param.as_deref())
    }
}

/// Every case of every group, in report order.
pub fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(round_trip::cases());
    v.extend(wait_pending_once::cases());
    v.extend(create_run_drop::cases());
    v.extend(churn::cases());
    v.extend(drop_suspended::cases());
    v.extend(nesting::cases());
    v.extend(sync_over_async::cases());
    v.extend(budget::cases());
    v
}

/// A simple case: no parameter, one element per operation.
pub fn case(group: &'static str, function: &'static str, insn_ops: u64, make: Make) -> Case {
    Case {
        group,
        function,
        param: None,
        elements: 1,
        bytes: None,
        insn_ops,
        make,
    }
}

/// Times `f`.
#[inline(always)]
pub fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// A future that is `Pending` on its first poll (after waking its task through
/// `wake_by_ref`) and `Ready` on the next: the cheapest possible real suspension.
pub struct PendingOnce(bool);

impl PendingOnce {
    #[inline(always)]
    pub fn new() -> Self {
        PendingOnce(false)
    }
}

impl Default for PendingOnce {
    fn default() -> Self {
        Self::new()
    }
}

impl Future for PendingOnce {
    type Output = ();

    #[inline(always)]
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

/// Polls `fut` in a loop with a no-op waker until it is ready (the futures used here
/// wake themselves, so there is nothing to wait for between polls).
///
/// Like a real executor's task, the future is polled through `dyn Future`, and the
/// waker is opaque to the optimiser: otherwise LLVM sees through the whole loop of a
/// native `async` block (the no-op waker does nothing) and deletes it.
#[inline(always)]
pub fn drive<T>(mut fut: Pin<&mut dyn Future<Output = T>>) -> T {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(black_box(&waker));
    loop {
        let task = black_box(fut.as_mut());
        if let Poll::Ready(v) = task.poll(&mut cx) {
            return v;
        }
    }
}

/// The configuration of every criterion group: short enough that `cargo bench` runs
/// everything in a few minutes; command-line flags (`--measurement-time` ...) win.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

/// Registers every case of `group` with criterion, in one criterion group.
pub fn bench_group(c: &mut criterion::Criterion, group: &str, cases: &[Case]) {
    let mut g = c.benchmark_group(group);
    for case in cases.iter().filter(|k| k.group == group) {
        if let Some(bytes) = case.bytes {
            g.throughput(criterion::Throughput::Bytes(bytes));
        } else {
            g.throughput(criterion::Throughput::Elements(case.elements));
        }
        let mut run = case.make();
        let id = match &case.param {
            Some(p) => criterion::BenchmarkId::new(case.function, p),
            None => criterion::BenchmarkId::from_parameter(case.function),
        };
        g.bench_function(id, |b| b.iter_custom(&mut run));
    }
    g.finish();
}

/// The `main` of a criterion bench target that runs the listed groups.
pub fn bench_main(groups: &[&str]) {
    let cases = all_cases();
    let mut c = criterion();
    for group in groups {
        bench_group(&mut c, group, &cases);
    }
    c.final_summary();
}
