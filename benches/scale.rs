//! Scale: 10,000 / 100,000 / 1,000,000 suspended coroutines alive at once, each with a
//! 64 KiB stack and a guard page, at the kernel's default limits. Not a criterion
//! bench: each figure is one measurement of a whole population (criterion cannot
//! repeat "create a million" a hundred times); it prints a table and writes
//! `<target>/criterion/scale.csv`.
//!
//! For each library and count: the time to create the coroutines (each started once,
//! so it is suspended: ours and stackful 0.1.5 a future pending in `wait`, corosensei a
//! coroutine suspended in `suspend`), the growth of `VmRSS` and `VmPTE` per coroutine,
//! the round trip (resume a suspended coroutine until it suspends again: one poll of
//! the future) of one coroutine polled over and over while the others are alive
//! ("hot": the fastest of [`HOT_BATCHES`] batches, so that a moment of interference
//! from the host does not count as the cost of having many alive) and of every alive
//! coroutine polled once in turn ("sweep": each poll touches another stack), and the
//! time to drop them all. A library that cannot create them
//! all (the `vm.max_map_count` limit: two mappings per stack) is reported with how many
//! it created and the error.
//!
//! Run: `cargo bench --bench scale` (all counts, about a minute and 6 GiB at the
//! million), or `cargo bench --bench scale -- 10000 100000 ours` for some counts
//! and libraries.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const STACK: usize = 64 * 1024;
/// Polls of the one coroutine in one batch of the "hot" round trip.
const HOT_POLLS: u32 = 200_000;
/// Batches of the "hot" round trip; the fastest one is reported.
const HOT_BATCHES: usize = 5;

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Lines of `/proc/self/maps`, read through a fixed buffer.
fn map_count() -> usize {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open("/proc/self/maps") else {
        return 0;
    };
    let mut buf = [0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

fn read_sys(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

struct PendingForever;

impl Future for PendingForever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// What one population measured.
struct Outcome {
    created: usize,
    error: Option<String>,
    create: Duration,
    rss_kib: u64,
    pte_kib: u64,
    maps: usize,
    hot: Option<Duration>,
    sweep: Option<Duration>,
    drop: Duration,
}

/// Creates up to `n` coroutines with `make`, measures, drops them.
fn population<T>(
    n: usize,
    mut make: impl FnMut() -> Result<T, String>,
    mut poll: impl FnMut(&mut T),
) -> Outcome {
    let mut alive: Vec<T> = Vec::with_capacity(n);
    let (rss0, pte0, maps0) = (status_kib("VmRSS"), status_kib("VmPTE"), map_count());
    let t = Instant::now();
    let mut error = None;
    for _ in 0..n {
        match make() {
            Ok(c) => alive.push(c),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let create = t.elapsed();
    let (rss1, pte1, maps1) = (status_kib("VmRSS"), status_kib("VmPTE"), map_count());
    let complete = error.is_none();
    let (mut hot, mut sweep) = (None, None);
    if complete {
        // Hot: the most recently created one, over and over.
        let last = alive.last_mut().unwrap();
        hot = (0..HOT_BATCHES)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..HOT_POLLS {
                    poll(black_box(&mut *last));
                }
                t.elapsed() / HOT_POLLS
            })
            .min();
        // Sweep: each one once, twice over (the second pass is measured).
        for _ in 0..2 {
            let t = Instant::now();
            for c in alive.iter_mut() {
                poll(black_box(c));
            }
            sweep = Some(t.elapsed() / n as u32);
        }
    }
    let created = alive.len();
    let t = Instant::now();
    drop(black_box(alive));
    let drop = t.elapsed();
    stackful::stack::clear_thread_pool();
    Outcome {
        created,
        error,
        create,
        rss_kib: rss1.saturating_sub(rss0),
        pte_kib: pte1.saturating_sub(pte0),
        maps: maps1.saturating_sub(maps0),
        hot,
        sweep,
        drop,
    }
}

fn waker_cx() -> Context<'static> {
    Context::from_waker(futures::task::noop_waker_ref())
}

fn ours(n: usize) -> Outcome {
    population(
        n,
        || {
            let mut f = Box::pin(
                stackful::Builder::new()
                    .stack_size(STACK)
                    .future(|| stackful::wait(PendingForever))
                    .map_err(|e| e.to_string())?,
            );
            assert!(f.as_mut().poll(&mut waker_cx()).is_pending());
            Ok(f)
        },
        |f| assert!(f.as_mut().poll(&mut waker_cx()).is_pending()),
    )
}

fn stackful_0_1(n: usize) -> Outcome {
    population(
        n,
        || {
            // 0.1.5 panics when it cannot map a stack (its stack size is fixed: 2 MiB);
            // the panic hook is silenced meanwhile (see `main`).
            let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut f = Box::pin(stackful_0_1::stackful(|| {
                    stackful_0_1::wait(PendingForever)
                }));
                assert!(f.as_mut().poll(&mut waker_cx()).is_pending());
                f
            }));
            made.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into())
            })
        },
        |f| assert!(f.as_mut().poll(&mut waker_cx()).is_pending()),
    )
}

fn corosensei(n: usize) -> Outcome {
    use corosensei::{stack::DefaultStack, Coroutine, CoroutineResult, Yielder};
    population(
        n,
        || {
            let stack = DefaultStack::new(STACK).map_err(|e| e.to_string())?;
            let mut c = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| loop {
                y.suspend(());
            });
            assert!(matches!(c.resume(()), CoroutineResult::Yield(())));
            Ok(c)
        },
        |c| assert!(matches!(c.resume(()), CoroutineResult::Yield(()))),
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut counts: Vec<usize> = args
        .iter()
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let only: Vec<&String> = args
        .iter()
        .filter(|a| a.replace('_', "").parse::<usize>().is_err())
        .collect();
    if counts.is_empty() {
        counts = vec![10_000, 100_000, 1_000_000];
    }
    let mut csv = String::from("library,alive,created,create_s,rss_kib_each,pte_kib_each,maps_each,hot_ns,sweep_ns,drop_s,error\n");
    println!(
        "scale: kernel {}, vm.max_map_count = {}, page size {}, {} KiB stacks",
        read_sys("/proc/sys/kernel/osrelease"),
        read_sys("/proc/sys/vm/max_map_count"),
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) },
        STACK / 1024
    );
    let one = ours(1);
    println!(
        "ours with one alive: round trip {:?}",
        one.hot.unwrap_or_default()
    );
    type Lib = (&'static str, fn(usize) -> Outcome);
    let libs: [Lib; 3] = [
        ("ours", ours),
        ("corosensei", corosensei),
        ("stackful-0.1.5", stackful_0_1),
    ];
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8}",
        "library",
        "alive",
        "created",
        "create",
        "RSS/each",
        "PTE/each",
        "maps/ea",
        "hot rt",
        "sweep rt",
        "drop"
    );
    for &n in &counts {
        for (name, run) in libs {
            if !only.is_empty() && !only.iter().any(|o| *o == name) {
                continue;
            }
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let o = run(n);
            std::panic::set_hook(hook);
            let each = |kib: u64| kib as f64 / o.created.max(1) as f64;
            let ns = |d: Option<Duration>| d.map(|d| format!("{} ns", d.as_nanos()));
            println!(
                "{:<15} {:>9} {:>9} {:>8.2}s {:>6.2}KiB {:>6.2}KiB {:>8.3} {:>9} {:>9} {:>7.2}s",
                name,
                n,
                o.created,
                o.create.as_secs_f64(),
                each(o.rss_kib),
                each(o.pte_kib),
                o.maps as f64 / o.created.max(1) as f64,
                ns(o.hot).unwrap_or_else(|| "-".into()),
                ns(o.sweep).unwrap_or_else(|| "-".into()),
                o.drop.as_secs_f64(),
            );
            if let Some(e) = &o.error {
                println!("    stopped after {}: {e}", o.created);
            }
            csv.push_str(&format!(
                "{name},{n},{},{:.3},{:.3},{:.3},{:.4},{},{},{:.3},{}\n",
                o.created,
                o.create.as_secs_f64(),
                each(o.rss_kib),
                each(o.pte_kib),
                o.maps as f64 / o.created.max(1) as f64,
                o.hot.map(|d| d.as_nanos().to_string()).unwrap_or_default(),
                o.sweep
                    .map(|d| d.as_nanos().to_string())
                    .unwrap_or_default(),
                o.drop.as_secs_f64(),
                o.error.unwrap_or_default().replace([',', '\n'], ";"),
            ));
        }
    }
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|p| p.to_path_buf()))
    {
        let dir = target.join("criterion");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("scale.csv"), csv);
    }
}
