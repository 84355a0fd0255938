//! `stackful::registry` (feature `registry`): the live coroutines of the process, their
//! creation sites, suspension times and backtraces, also taken from other threads
//! while the coroutines are resumed, dropped and moved between threads.
//!
//! Tests run in parallel in one process, so every test finds its own coroutines in a
//! snapshot by their ids (`id_of`: the newest coroutine created at a given line).
#![cfg(all(feature = "registry", not(target_arch = "wasm32")))]

use futures::task::noop_waker_ref;
use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
use stackful::registry::{self, Coroutine, Kind, Snapshot, State};
use stackful::{scope, stackful, stream, wait, Builder, SendFuture, StreamHandle};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref()))
}

/// The newest live coroutine created at `line` of this file.
fn find(snapshot: &Snapshot, line: u32) -> Option<&Coroutine> {
    snapshot
        .iter()
        .filter(|c| c.created_at().file().ends_with("registry.rs") && c.created_at().line() == line)
        .max_by_key(|c| c.id())
}

fn id_of(line: u32) -> u64 {
    find(&registry::snapshot(), line)
        .unwrap_or_else(|| panic!("no coroutine created at line {line}"))
        .id()
}

fn by_id(snapshot: &Snapshot, id: u64) -> Option<&Coroutine> {
    snapshot.iter().find(|c| c.id() == id)
}

#[inline(never)]
fn registry_parked_in_wait(rx: futures::channel::oneshot::Receiver<u32>) -> u32 {
    black_box("registry_parked_in_wait");
    wait(rx).unwrap()
}

#[inline(never)]
fn registry_parked_in_yeet(y: &YieldHandle<u32>) {
    black_box("registry_parked_in_yeet");
    y.yeet(1);
}

#[test]
fn states_sites_kinds_and_removal() {
    let (tx, rx) = futures::channel::oneshot::channel();
    let mut fut = stackful(move || registry_parked_in_wait(rx));
    let fut_line = line!() - 1;
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| registry_parked_in_yeet(y));
    let gen_line = line!() - 1;
    let strm = stream(|y: &StreamHandle<u32>| y.yield_item(1));
    let strm_line = line!() - 1;
    let built = Builder::new().future(|| 5).unwrap();
    let built_line = line!() - 1;

    let (fut_id, gen_id, strm_id, built_id) = (
        id_of(fut_line),
        id_of(gen_line),
        id_of(strm_line),
        id_of(built_line),
    );
    let s = registry::snapshot();
    for (id, kind) in [
        (fut_id, Kind::Future),
        (gen_id, Kind::Generator),
        (strm_id, Kind::Stream),
        (built_id, Kind::Future),
    ] {
        let c = by_id(&s, id).unwrap();
        assert_eq!(c.kind(), kind);
        assert_eq!(c.state(), State::NotStarted);
        assert!(c.thread().is_none() && c.backtrace().is_none());
    }

    assert!(poll(&mut fut).is_pending());
    Pin::new(&mut gen).resume(());
    std::thread::sleep(Duration::from_millis(50));
    let s = registry::snapshot_with_backtraces();
    let f = by_id(&s, fut_id).unwrap();
    // The registry's clock ticks every few milliseconds on Linux (at most 10 ms).
    let d = f.suspended_for().unwrap();
    assert!(d >= Duration::from_millis(40), "{d:?}");
    assert_eq!(f.thread().unwrap().id(), Some(std::thread::current().id()));
    let trace = f.backtrace().unwrap().to_string();
    assert!(trace.contains("registry_parked_in_wait"), "{trace}");
    let g = by_id(&s, gen_id).unwrap();
    let trace = g.backtrace().unwrap().to_string();
    assert!(trace.contains("registry_parked_in_yeet"), "{trace}");
    // Without backtraces, the same coroutines, none traced.
    let plain = registry::snapshot();
    assert!(by_id(&plain, fut_id).unwrap().suspended_for().is_some());
    assert!(by_id(&plain, fut_id).unwrap().backtrace().is_none());
    // The report names the site of each and the suspended function.
    let report = s.to_string();
    assert!(
        report.contains(&format!("tests/registry.rs:{fut_line}")),
        "{report}"
    );
    // Only the coroutines' own frames: not the capture's, not the tracer's.
    assert!(report.contains("registry_parked_in_wait"), "{report}");
    assert!(!report.contains("token_received"), "{report}");
    assert!(!report.contains("snapshot_with_backtraces"), "{report}");

    // The traced coroutines go on as if nothing happened.
    tx.send(9).unwrap();
    assert_eq!(poll(&mut fut), Poll::Ready(9));
    assert_eq!(futures::executor::block_on(built), 5);
    let s = registry::snapshot();
    assert_eq!(by_id(&s, fut_id).unwrap().state(), State::Finished);
    assert!(by_id(&s, built_id).is_none(), "dropped by block_on");
    drop((fut, gen, strm));
    let s = registry::snapshot();
    for id in [fut_id, gen_id, strm_id] {
        assert!(
            by_id(&s, id).is_none(),
            "dropped coroutine {id} still listed"
        );
    }
}

#[test]
fn running_coroutines_have_no_backtrace_and_may_take_snapshots() {
    let mut fut = stackful(|| {
        let s = registry::snapshot_with_backtraces();
        // Itself: running, not traced.
        let me = s
            .iter()
            .filter(|c| c.created_at().line() == line!() - 5)
            .max_by_key(|c| c.id())
            .unwrap();
        assert_eq!(me.state(), State::Running);
        assert!(me.backtrace().is_none());
        // A suspended generator, traced from inside this coroutine: its report shows
        // its own frames only, not the tracer's (which include a coroutine entry too).
        let mut g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| registry_parked_in_yeet(y));
        let line = line!() - 1;
        Pin::new(&mut g).resume(());
        let s = registry::snapshot_with_backtraces();
        let report = find(&s, line).unwrap().to_string();
        assert!(report.contains("registry_parked_in_yeet"), "{report}");
        assert!(!report.contains("snapshot_with_backtraces"), "{report}");
        wait(async { 1 })
    });
    assert_eq!(poll(&mut fut), Poll::Ready(1));
}

#[inline(never)]
fn registry_outer(rx: futures::channel::oneshot::Receiver<u32>) -> u32 {
    black_box("registry_outer");
    let mut inner =
        StackfulGenerator::new(move |_: &YieldHandle<()>, ()| registry_parked_in_wait(rx));
    match Pin::new(&mut inner).resume(()) {
        stackful::generator::GeneratorState::Complete(v) => v,
        _ => unreachable!(),
    }
}

/// A future suspended in a `wait` of a generator nested in it: the future's report
/// shows the frames of both, the generator is listed as running.
#[test]
fn nested_chains_are_traced_through_the_outer_coroutine() {
    let (tx, rx) = futures::channel::oneshot::channel();
    let mut fut = stackful(move || registry_outer(rx));
    let line = line!() - 1;
    assert!(poll(&mut fut).is_pending());
    let s = registry::snapshot_with_backtraces();
    let outer = find(&s, line).unwrap();
    let report = outer.to_string();
    assert!(report.contains("registry_parked_in_wait"), "{report}");
    assert!(report.contains("registry_outer"), "{report}");
    assert!(!report.contains("snapshot_with_backtraces"), "{report}");
    tx.send(3).unwrap();
    assert_eq!(poll(&mut fut), Poll::Ready(3));
}

#[test]
fn scoped_and_with_stack_constructors_record_the_caller() {
    scope(|s| {
        let g = s.generator(|y: &YieldHandle<u8>, ()| y.yeet(1));
        let line = line!() - 1;
        let c = find(&registry::snapshot(), line).map(|c| c.kind());
        assert_eq!(c, Some(Kind::Generator));
        drop(g);
    });
    let stack = stackful::stack::DefaultStack::new(64 * 1024).unwrap();
    let f = stackful::future::StackfulFuture::with_stack(stack, || 3);
    let line = line!() - 1;
    assert!(find(&registry::snapshot(), line).is_some());
    // SAFETY: owns nothing thread-bound.
    let send = unsafe { SendFuture::new(|| 4) };
    let send_line = line!() - 1;
    assert!(find(&registry::snapshot(), send_line).is_some());
    assert_eq!(futures::executor::block_on(f), 3);
    assert_eq!(futures::executor::block_on(send), 4);
}

/// A `!Send` coroutine owned by this thread, traced from another thread while this
/// one keeps resuming it (and taking its own backtraces): every trace is whole, and
/// the coroutine's values are intact.
#[test]
fn traced_from_another_thread_while_its_owner_resumes_it() {
    let stop = Arc::new(AtomicBool::new(false));
    let traced = Arc::new(AtomicUsize::new(0));
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64, u64>, mut x: u64| loop {
        x = registry_ping(y, x);
    });
    let line = line!() - 3;
    let id = id_of(line);
    let tracer = {
        let (stop, traced) = (Arc::clone(&stop), Arc::clone(&traced));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = registry::snapshot_with_backtraces();
                if let Some(bt) = by_id(&s, id).and_then(Coroutine::backtrace) {
                    let text = bt.to_string();
                    assert!(text.contains("registry_ping"), "{text}");
                    traced.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut own = 0;
    for i in 0..20_000u64 {
        match Pin::new(&mut g).resume(i) {
            stackful::generator::GeneratorState::Yielded(v) => assert_eq!(v, i + 1),
            _ => unreachable!(),
        }
        if i % 1000 == 0 {
            let t = g.backtrace().unwrap().to_string();
            assert!(t.contains("registry_ping"), "{t}");
            own += 1;
        }
    }
    // Suspended now: give the tracer time to catch it at least once.
    for _ in 0..1000 {
        if traced.load(Ordering::Relaxed) > 0 || tracer.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    tracer.join().unwrap();
    assert_eq!(own, 20);
    assert!(
        traced.load(Ordering::Relaxed) > 0,
        "the tracer never caught the coroutine"
    );
    match Pin::new(&mut g).resume(7) {
        stackful::generator::GeneratorState::Yielded(v) => assert_eq!(v, 8),
        _ => unreachable!(),
    }
}

#[inline(never)]
fn registry_ping(y: &YieldHandle<u64, u64>, x: u64) -> u64 {
    black_box("registry_ping");
    y.yeet(x + 1)
}

#[inline(never)]
fn registry_hop(rounds: usize) -> usize {
    black_box("registry_hop");
    for i in 0..rounds {
        if i % 2 == 0 {
            wait(registry_yield());
        } else {
            wait(registry_sleep());
        }
    }
    rounds
}

#[inline(never)]
fn registry_sleep() -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_micros(500))
}

#[inline(never)]
fn registry_yield() -> impl Future<Output = ()> {
    tokio::task::yield_now()
}

static HOP_LINE: AtomicU32 = AtomicU32::new(0);

/// `SendFuture`s migrating between the workers of a multi-thread runtime, created,
/// resumed and dropped while another thread takes snapshots with backtraces in a
/// loop: no trace ever runs while its coroutine runs elsewhere (the traces are whole,
/// the results right), and finished ones leave the registry.
#[test]
fn snapshots_race_with_migrating_send_futures() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(std::sync::Barrier::new(2));
    let tracer = {
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        std::thread::spawn(move || {
            let (mut snapshots, mut traced) = (0, 0);
            started.wait();
            while !stop.load(Ordering::Relaxed) || snapshots == 0 {
                let s = registry::snapshot_with_backtraces();
                snapshots += 1;
                for c in s
                    .iter()
                    .filter(|c| c.created_at().line() == HOP_LINE.load(Ordering::Relaxed))
                {
                    if let Some(bt) = c.backtrace() {
                        let text = bt.to_string();
                        assert!(text.contains("registry_hop"), "{text}");
                        traced += 1;
                    }
                }
            }
            (snapshots, traced)
        })
    };
    let n = 300;
    started.wait();
    let total: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (fut, line) = spawn_hop(i % 7 + 2);
                HOP_LINE.store(line, Ordering::Relaxed);
                tokio::spawn(fut)
            })
            .collect();
        // Some are aborted while suspended (dropped on whichever thread).
        for t in tasks.iter().step_by(5) {
            t.abort();
        }
        let mut total = 0;
        for t in tasks {
            if let Ok(r) = t.await {
                total += r;
            }
        }
        total
    });
    stop.store(true, Ordering::Relaxed);
    let (snapshots, traced) = tracer.join().unwrap();
    eprintln!("{snapshots} snapshots, {traced} traces of migrating coroutines");
    assert!(total > 0 && snapshots > 0);
    assert!(traced > 0, "no suspended SendFuture was traced");
    drop(rt);
    let left = registry::snapshot()
        .iter()
        .filter(|c| c.created_at().line() == HOP_LINE.load(Ordering::Relaxed))
        .count();
    assert_eq!(left, 0, "dropped coroutines still listed");
}

/// A `SendFuture` running `registry_hop`, and the line that created it.
#[inline(never)]
fn spawn_hop(rounds: usize) -> (SendFuture<usize>, u32) {
    let body = move || registry_hop(rounds);
    // SAFETY: owns a usize; thread-locals (tokio's context) only out of line.
    (unsafe { SendFuture::new(body) }, line!())
}

/// A destructor that runs while its coroutine is being dropped (unwound) takes a
/// snapshot: the coroutine is listed as running, without a backtrace, and nothing
/// waits for anything.
#[test]
fn snapshot_from_a_destructor_during_cancellation() {
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let s = registry::snapshot_with_backtraces();
            let me = s
                .iter()
                .find(|c| c.id() as usize == self.0.load(Ordering::Relaxed))
                .expect("the coroutine being dropped is still listed");
            assert_eq!(me.state(), State::Running);
            assert!(me.backtrace().is_none());
            self.0.store(0, Ordering::Relaxed);
        }
    }
    let id = Arc::new(AtomicUsize::new(usize::MAX));
    let theirs = Arc::clone(&id);
    let mut fut = stackful(move || {
        let _guard = OnDrop(theirs);
        wait(std::future::pending::<()>())
    });
    let line = line!() - 4;
    assert!(poll(&mut fut).is_pending());
    id.store(id_of(line) as usize, Ordering::Relaxed);
    drop(fut);
    assert_eq!(id.load(Ordering::Relaxed), 0, "the destructor did not run");
}

/// A coroutine forgotten while suspended (its stack is leaked, never freed) stays
/// listed, and tracing it is still sound.
#[test]
fn forgotten_coroutines_stay_listed_and_traceable() {
    let mut fut = stackful(|| {
        registry_parked_forever();
    });
    let line = line!() - 3;
    assert!(poll(&mut fut).is_pending());
    let id = id_of(line);
    std::mem::forget(fut);
    for _ in 0..2 {
        let s = registry::snapshot_with_backtraces();
        let c = by_id(&s, id).expect("a forgotten coroutine is listed");
        let trace = c.backtrace().unwrap().to_string();
        assert!(trace.contains("registry_parked_forever"), "{trace}");
    }
}

#[inline(never)]
fn registry_parked_forever() {
    black_box("registry_parked_forever");
    wait(std::future::pending::<()>())
}

/// The thread a coroutine last ran on has exited: the snapshot says so.
#[test]
fn the_last_thread_may_have_exited() {
    let (fut, id) = std::thread::spawn(|| {
        // SAFETY: holds nothing thread-bound across its `wait`.
        let mut fut = unsafe { SendFuture::new(|| wait(std::future::pending::<u8>())) };
        let line = line!() - 1;
        assert!(poll(&mut fut).is_pending());
        let id = id_of(line);
        let s = registry::snapshot();
        let t = by_id(&s, id).unwrap().thread().unwrap().clone();
        assert_eq!(t.id(), Some(std::thread::current().id()));
        (fut, id)
    })
    .join()
    .unwrap();
    let s = registry::snapshot_with_backtraces();
    let c = by_id(&s, id).unwrap();
    assert!(c.thread().unwrap().id().is_none(), "{c}");
    assert!(c.to_string().contains("a thread that has exited"), "{c}");
    assert!(c.backtrace().is_some());
    drop(fut); // unwound here, on this thread
    assert!(by_id(&registry::snapshot(), id).is_none());
}

/// Snapshots from a thread-local destructor at thread exit (after the crate's own
/// per-thread state may be gone) still trace other threads' coroutines.
#[test]
fn snapshot_from_a_thread_local_destructor() {
    struct AtExit(u64, std::sync::mpsc::Sender<bool>);
    impl Drop for AtExit {
        fn drop(&mut self) {
            let s = registry::snapshot_with_backtraces();
            let traced = by_id(&s, self.0)
                .and_then(Coroutine::backtrace)
                .is_some_and(|bt| bt.to_string().contains("registry_parked_in_wait"));
            let _ = self.1.send(traced);
        }
    }
    thread_local! {
        static AT_EXIT: std::cell::RefCell<Option<AtExit>> = const { std::cell::RefCell::new(None) };
    }
    let (_tx, rx) = futures::channel::oneshot::channel();
    let mut fut = stackful(move || registry_parked_in_wait(rx));
    let line = line!() - 1;
    assert!(poll(&mut fut).is_pending());
    let id = id_of(line);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // A coroutine of this thread first, so that the crate's thread-locals exist.
        let mut own = stackful(|| wait(async { 1 }));
        assert_eq!(poll(&mut own), Poll::Ready(1));
        AT_EXIT.with(|a| *a.borrow_mut() = Some(AtExit(id, done_tx)));
    })
    .join()
    .unwrap();
    assert!(
        done_rx.recv().unwrap(),
        "not traced from the exiting thread"
    );
    drop(fut);
}

/// The `stackful::io` adapters record their caller too.
#[cfg(feature = "futures-io")]
#[test]
fn io_adapters_record_their_caller() {
    let reader = stackful::io::AsyncReader::new(std::io::Cursor::new(vec![1u8, 2, 3]));
    let line = line!() - 1;
    let s = registry::snapshot();
    assert_eq!(find(&s, line).map(Coroutine::kind), Some(Kind::Stream));
    drop(reader);
}
