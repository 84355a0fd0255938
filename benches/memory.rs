//! Memory: RSS per suspended small coroutine, and how many coroutines fit under the
//! kernel's default limits. Not a criterion bench: it measures once and prints.
//!
//! 1. For ours (generator and future), corosensei and stackful 0.1.5: create 10,000
//!    small coroutines, each suspended at its first yield/wait, and report the growth
//!    of `VmRSS` (and page tables, `VmPTE`) per coroutine.
//! 2. The pool of a thread after a burst of 10,000 coroutines: how many stacks it
//!    keeps, its limit and the memory held, and how many low-load creations it takes
//!    for the limit to decay back to `DEFAULT_POOL_LIMIT`.
//! 3. Create suspended coroutines with `stackful::Builder` until it returns `Err`:
//!    report the count, the error and `vm.max_map_count` (each default stack is two
//!    mappings: the stack and its guard page). The same for corosensei's
//!    `DefaultStack::new` for reference. Everything is released afterwards and the
//!    mapping count is checked to return to where it was.
//!
//! Run: `cargo bench --bench memory`.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};

const COUNT: usize = 10_000;
/// Upper bound for the exhaustion test: the default `vm.max_map_count` of 65530 allows
/// about 32,700 two-mapping stacks; with guard regions (slab stacks) ours has no such
/// limit, and 200,000 default (2 MiB) stacks already take about 2.4 GiB (a touched page
/// and two page-table pages each), so the test stops there.
const MAX_ATTEMPTS: usize = 200_000;

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Lines of `/proc/self/maps`, read through a fixed buffer: near the mapping limit a
/// growing `String` could not get memory (large allocations are mappings too).
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

/// `key,value` lines for `<target>/criterion/memory.csv` (read by `benches/report.py`).
static RESULTS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record(key: &str, value: impl std::fmt::Display) {
    RESULTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!(
            "{},{}",
            key.replace(',', ";"),
            value.to_string().replace(',', ";")
        ));
}

/// Keeps `make` coroutines suspended and reports the memory they use.
fn rss_per_coroutine<T>(what: &str, mut make: impl FnMut() -> T) {
    stackful::stack::clear_thread_pool();
    let mut alive: Vec<T> = Vec::with_capacity(COUNT);
    let (rss0, pte0, maps0) = (status_kib("VmRSS"), status_kib("VmPTE"), map_count());
    for _ in 0..COUNT {
        alive.push(make());
    }
    let (rss1, pte1, maps1) = (status_kib("VmRSS"), status_kib("VmPTE"), map_count());
    drop(black_box(alive));
    stackful::stack::clear_thread_pool();
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 * 1024.0 / COUNT as f64;
    println!(
        "{what:<34} RSS {:>7.0} B/coroutine ({:.2} KiB)   page tables {:>5.0} B/coroutine   mappings {:.2}/coroutine",
        per(rss0, rss1),
        per(rss0, rss1) / 1024.0,
        per(pte0, pte1),
        (maps1 - maps0) as f64 / COUNT as f64,
    );
    record(&format!("rss_bytes_per_coroutine:{what}"), per(rss0, rss1));
    record(
        &format!("page_table_bytes_per_coroutine:{what}"),
        per(pte0, pte1),
    );
}

fn ours_generator() -> impl Sized {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| {
        y.yeet(1);
    });
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(1));
    g
}

fn ours_future() -> impl Sized {
    let mut f = Box::pin(stackful::stackful(|| stackful::wait(PendingForever)));
    let waker = futures::task::noop_waker();
    assert!(f
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    f
}

fn corosensei_coroutine() -> impl Sized {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    let mut c = Coroutine::new(|y: &Yielder<(), u64>, ()| {
        y.suspend(1);
    });
    assert!(matches!(c.resume(()), CoroutineResult::Yield(1)));
    c
}

fn stackful_0_1_generator() -> impl Sized {
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64>, ()| {
        y.yeet(1);
    });
    assert!(matches!(
        Pin::new(&mut g).resume(()),
        GeneratorState::Yielded(1)
    ));
    g
}

struct PendingForever;

impl std::future::Future for PendingForever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// Creates suspended coroutines with `try_make` until it fails; returns how many
/// succeeded and the error.
fn until_err<T, E>(mut try_make: impl FnMut() -> Result<T, E>) -> (Vec<T>, Option<E>) {
    // Reserve up front: near the mapping limit, growing the vector (a large malloc
    // is an mmap) could fail itself.
    let mut alive = Vec::with_capacity(MAX_ATTEMPTS);
    for _ in 0..MAX_ATTEMPTS {
        match try_make() {
            Ok(c) => alive.push(c),
            Err(e) => return (alive, Some(e)),
        }
    }
    (alive, None)
}

fn exhaustion<T, E: std::fmt::Display>(what: &str, try_make: impl FnMut() -> Result<T, E>) {
    stackful::stack::clear_thread_pool();
    let maps0 = map_count();
    let vm0 = status_kib("VmSize");
    let (alive, err) = until_err(try_make);
    let maps1 = map_count();
    let vm1 = status_kib("VmSize");
    let n = alive.len();
    let t = std::time::Instant::now();
    drop(alive);
    let drop_time = t.elapsed();
    stackful::stack::clear_thread_pool();
    let maps2 = map_count();
    println!("{what}: {n} suspended coroutines created before the first error");
    record(&format!("max_coroutines:{what}"), n);
    match err {
        Some(e) => {
            println!("    error: {e}");
            record(&format!("error:{what}"), e);
        }
        None => println!("    no error after {MAX_ATTEMPTS} attempts"),
    }
    println!(
        "    mappings: {maps0} before, {maps1} at the error, {maps2} after releasing all \
         ({})",
        if maps2 <= maps0 {
            "all released"
        } else {
            "NOT all released"
        }
    );
    println!(
        "    address space at the error: {:.1} GiB; releasing all {n} took {drop_time:?}",
        (vm1 - vm0) as f64 / (1024.0 * 1024.0)
    );
}

/// A thread runs a burst of `BURST` suspended coroutines (default stacks), then all
/// end: what its pool keeps afterwards (stacks, limit, memory), and after a period of
/// low load (one coroutine at a time) how far the limit decayed.
fn idle_pool_after_burst() {
    const BURST: usize = 10_000;
    std::thread::spawn(|| {
        use stackful::stack::{stats, thread_pool_limit};
        let rss0 = status_kib("VmRSS") + status_kib("VmPTE");
        let gens: Vec<_> = (0..BURST).map(|_| ours_generator()).collect();
        let rss_burst = status_kib("VmRSS") + status_kib("VmPTE");
        drop(black_box(gens));
        let rss_idle = status_kib("VmRSS") + status_kib("VmPTE");
        let (pooled, limit) = (stats().pooled_on_this_thread, thread_pool_limit());
        println!(
            "after a burst of {BURST}: {pooled} stacks pooled (limit {limit}), RSS + page \
             tables {:.1} MiB above the start (during the burst {:.1} MiB)",
            rss_idle.saturating_sub(rss0) as f64 / 1024.0,
            rss_burst.saturating_sub(rss0) as f64 / 1024.0,
        );
        record("idle_pool_after_burst:pooled", pooled);
        record("idle_pool_after_burst:limit", limit);
        record("idle_pool_after_burst:kib", rss_idle.saturating_sub(rss0));
        // Low load: one coroutine at a time.
        let mut takes = 0;
        while thread_pool_limit() > stackful::stack::DEFAULT_POOL_LIMIT && takes < 1_000_000 {
            drop(black_box(ours_generator()));
            takes += 1;
        }
        let rss_low = status_kib("VmRSS") + status_kib("VmPTE");
        println!(
            "then one coroutine at a time: the limit is back at {} after {takes} coroutines; \
             {} stacks pooled, RSS + page tables {:.1} MiB above the start",
            thread_pool_limit(),
            stats().pooled_on_this_thread,
            rss_low.saturating_sub(rss0) as f64 / 1024.0,
        );
        record("idle_pool_after_burst:decay_takes", takes);
    })
    .join()
    .unwrap();
}

fn main() {
    let max_map_count = read_sys("/proc/sys/vm/max_map_count");
    record("vm.max_map_count", &max_map_count);
    record("page_size", page_size());
    println!("memory: page size {} B", page_size());
    println!(
        "memory: vm.max_map_count = {}, vm.overcommit_memory = {}, transparent_hugepage = {}",
        max_map_count,
        read_sys("/proc/sys/vm/overcommit_memory"),
        read_sys("/sys/kernel/mm/transparent_hugepage/enabled"),
    );
    println!("memory: mappings of this process at start: {}", map_count());
    println!();
    println!("RSS per suspended small coroutine, {COUNT} alive:");
    rss_per_coroutine("ours (StackfulGenerator)", ours_generator);
    rss_per_coroutine("ours (stackful future, in wait)", ours_future);
    rss_per_coroutine("corosensei (Coroutine)", corosensei_coroutine);
    rss_per_coroutine("stackful-0.1.5 (StackfulGenerator)", stackful_0_1_generator);
    println!();
    println!("The pool of a thread after a burst:");
    idle_pool_after_burst();
    println!();
    println!("Exhaustion at default limits:");
    exhaustion("ours (stackful::Builder::generator)", || {
        use stackful::generator::{Generator, YieldHandle};
        stackful::Builder::new()
            .generator(|y: &YieldHandle<u64>, ()| {
                y.yeet(1);
            })
            .map(|mut g| {
                Pin::new(&mut g).resume(());
                g
            })
    });
    exhaustion("ours (stackful::Builder::future)", || {
        stackful::Builder::new()
            .future(|| stackful::wait(PendingForever))
            .map(|f| {
                let mut f = Box::pin(f);
                let waker = futures::task::noop_waker();
                assert!(f
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending());
                f
            })
    });
    exhaustion("corosensei (DefaultStack::new, 1 MiB)", || {
        corosensei::stack::DefaultStack::new(1024 * 1024).map(|stack| {
            let mut c =
                corosensei::Coroutine::with_stack(stack, |y: &corosensei::Yielder<(), u64>, ()| {
                    y.suspend(1);
                });
            c.resume(());
            c
        })
    });
    write_results();
}

fn page_size() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }
}

/// Writes the recorded results next to criterion's (`<target>/criterion/memory.csv`,
/// from `<target>/<profile>/deps/<this executable>`).
fn write_results() {
    let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|p| p.to_path_buf()))
    else {
        return;
    };
    let dir = target.join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let mut text = String::from("key,value\n");
    for line in RESULTS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        text.push_str(line);
        text.push('\n');
    }
    if let Err(e) = std::fs::write(dir.join("memory.csv"), text) {
        eprintln!("memory: cannot write memory.csv: {e}");
    }
}
