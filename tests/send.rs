//! `SendFuture` / `SendStream`: coroutines that move between threads while suspended.
//!
//! Native only: wasm32 has no threads (and tokio's multi-thread runtime is a native
//! dev-dependency feature).
//!
//! The tokio tests spawn `STACKFUL_SEND_TASKS` coroutines (2000 unless set, 200 on
//! 32-bit targets; under valgrind use a few hundred) on a 4-worker runtime and prove
//! migration by recording the thread at every resume. The `std::thread` tests move one coroutine between
//! threads by hand, which migrates it deterministically.
#![cfg(not(target_arch = "wasm32"))]

use futures::task::noop_waker;
use futures::StreamExt;
use stackful::generator::{StackfulGenerator, YieldHandle};
use stackful::{stackful, wait, yield_now, Builder, SendFuture, SendStream, StreamHandle};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

fn tasks() -> usize {
    std::env::var("STACKFUL_SEND_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        // On 32-bit targets 2000 coroutines with their 2 MiB stacks (a few per task
        // in some tests) do not fit in the address space at once.
        .unwrap_or(if cfg!(target_pointer_width = "32") {
            200
        } else {
            2000
        })
}

/// The current thread's id. Out of line: a coroutine that moves between threads must
/// not read a thread-local in a function that also suspends (see
/// `StackfulFuture::assume_send`, point 2).
#[inline(never)]
fn thread_id() -> ThreadId {
    std::thread::current().id()
}

/// `tokio::time::sleep`, out of line (it reads the runtime's thread-local context).
#[inline(never)]
fn sleep_us(us: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_micros(us))
}

/// `tokio::spawn`, out of line (it reads the runtime's thread-local context).
#[inline(never)]
fn spawn_send(tx: tokio::sync::oneshot::Sender<u64>, r: u64) {
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        let _ = tx.send(r);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Counts drops.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A small deterministic pseudo-random sequence per task.
fn mix(seed: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xdead_beef;
    x ^= x >> 29;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// One coroutine's body: waits `rounds` times on futures woken from elsewhere (the
/// scheduler, the timer, another task), records the thread after every resume.
fn hop(seed: u64, rounds: usize) -> Vec<ThreadId> {
    let mut seen = vec![thread_id()];
    let mut r = seed;
    for _ in 0..rounds {
        r = mix(r);
        match r % 3 {
            0 => wait(tokio::task::yield_now()),
            1 => wait(sleep_us(r % 1000)),
            _ => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                spawn_send(tx, r);
                assert_eq!(wait(rx).unwrap(), r);
            }
        }
        seen.push(thread_id());
    }
    seen
}

/// Runs rounds of `n` spawned coroutines until one was resumed on more than one
/// thread (at most `max_rounds`, each bounded in time); returns the number of threads
/// seen overall and of coroutines that migrated.
fn spawn_until_migrated(n: usize, max_rounds: usize) -> (usize, usize) {
    let rt = runtime();
    let started = Instant::now();
    let mut threads = HashSet::new();
    let mut migrated = 0;
    for round in 0..max_rounds {
        let results: Vec<Vec<ThreadId>> = rt.block_on(async {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let seed = (round * n + i) as u64;
                    // SAFETY: `hop` holds only Send values across its waits (a Vec,
                    // integers, oneshot receivers) and reads its thread-local only
                    // through the out-of-line `thread_id`.
                    let fut = unsafe { SendFuture::new(move || hop(seed, 8)) };
                    tokio::spawn(fut)
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            for h in handles {
                out.push(
                    tokio::time::timeout(Duration::from_secs(120), h)
                        .await
                        .expect("a coroutine hung")
                        .unwrap(),
                );
            }
            out
        });
        for seen in &results {
            assert_eq!(seen.len(), 9);
            threads.extend(seen.iter().copied());
            if seen.iter().any(|t| *t != seen[0]) {
                migrated += 1;
            }
        }
        if threads.len() > 1 && migrated > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no migration observed"
        );
    }
    (threads.len(), migrated)
}

#[test]
fn futures_migrate_between_tokio_workers() {
    let (threads, migrated) = spawn_until_migrated(tasks(), 50);
    eprintln!("{threads} threads, {migrated} coroutines resumed on more than one");
    assert!(threads > 1, "only one thread ran the coroutines");
    assert!(migrated > 0, "no coroutine was resumed on another thread");
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = noop_waker();
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// A future that is pending `n` times (waking itself), then ready.
struct PendN(usize);

impl Future for PendN {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_future_created_on_one_thread_resumed_on_another_and_finished_on_a_third() {
    let drops = Arc::new(AtomicUsize::new(0));
    let token = Token(drops.clone());
    // SAFETY: the closure owns a Token (Send) and holds only Send values across its
    // waits; thread ids are read out of line.
    let mut fut = unsafe {
        SendFuture::new(move || {
            let _token = token;
            let mut seen = vec![thread_id()];
            for _ in 0..2 {
                wait(PendN(1));
                seen.push(thread_id());
            }
            seen
        })
    };
    let a = thread_id();
    assert!(poll_once(&mut fut).is_pending());
    let (fut, b) = std::thread::spawn(move || {
        assert!(poll_once(&mut fut).is_pending());
        (fut, thread_id())
    })
    .join()
    .unwrap();
    let (seen, c) = std::thread::spawn(move || {
        let mut fut = fut;
        let Poll::Ready(seen) = poll_once(&mut fut) else {
            panic!("not finished")
        };
        assert!(fut.is_complete());
        drop(fut);
        (seen, thread_id())
    })
    .join()
    .unwrap();
    assert_eq!(seen, [a, b, c]);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_future_suspended_on_one_thread_is_dropped_on_another() {
    let drops = Arc::new(AtomicUsize::new(0));
    let dropped_on = Arc::new(std::sync::Mutex::new(None));
    let (token, d) = (Token(drops.clone()), dropped_on.clone());
    struct Where(Arc<std::sync::Mutex<Option<ThreadId>>>);
    impl Drop for Where {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(thread_id());
        }
    }
    // SAFETY: only Send values live across the wait.
    let mut fut = unsafe {
        SendFuture::new(move || {
            let _token = token;
            let _where = Where(d);
            wait(std::future::pending::<()>());
        })
    };
    assert!(poll_once(&mut fut).is_pending());
    let other = std::thread::spawn(move || {
        drop(fut);
        thread_id()
    })
    .join()
    .unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(*dropped_on.lock().unwrap(), Some(other));
    assert_ne!(other, thread_id());
}

#[test]
fn suspended_futures_aborted_from_another_task_run_their_destructors() {
    let n = tasks();
    let rt = runtime();
    let drops = Arc::new(AtomicUsize::new(0));
    let suspended = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let token = Token(drops.clone());
                let suspended = suspended.clone();
                // SAFETY: only Send values live across the waits.
                let fut = unsafe {
                    SendFuture::new(move || {
                        let _token = token;
                        wait(tokio::task::yield_now());
                        suspended.fetch_add(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            wait(std::future::pending::<()>());
                        } else {
                            let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
                            let _ = wait(rx);
                            // `_tx` lives across the wait: never sent.
                            unreachable!();
                        }
                    })
                };
                tokio::spawn(fut)
            })
            .collect();
        // Let every coroutine reach its last suspension (bounded).
        let deadline = Instant::now() + Duration::from_secs(120);
        while suspended.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "coroutines did not suspend");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Abort them from another task (on whichever worker runs it).
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        tokio::spawn(async move { aborts.iter().for_each(|a| a.abort()) })
            .await
            .unwrap();
        for h in handles {
            assert!(h.await.unwrap_err().is_cancelled());
        }
    });
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), n);
}

#[test]
fn streams_migrate_between_tokio_workers() {
    let n = (tasks() / 4).max(8);
    let rt = runtime();
    let started = Instant::now();
    loop {
        let results: Vec<(Vec<usize>, HashSet<ThreadId>)> = rt.block_on(async {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    // SAFETY: only Send values live across the waits and yields.
                    let s = unsafe {
                        SendStream::new(move |y: &StreamHandle<(usize, ThreadId)>| {
                            for k in 0..6 {
                                if (i + k) % 2 == 0 {
                                    wait(tokio::task::yield_now());
                                } else {
                                    wait(sleep_us(100));
                                }
                                y.yield_item((k, thread_id()));
                            }
                        })
                    };
                    tokio::spawn(s.collect::<Vec<_>>())
                })
                .collect();
            let mut out = Vec::new();
            for h in handles {
                let items = h.await.unwrap();
                out.push((
                    items.iter().map(|i| i.0).collect(),
                    items.iter().map(|i| i.1).collect(),
                ));
            }
            out
        });
        let mut migrated = 0;
        for (ks, threads) in &results {
            assert_eq!(ks, &[0, 1, 2, 3, 4, 5]);
            migrated += usize::from(threads.len() > 1);
        }
        if migrated > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no stream migrated"
        );
    }
}

#[test]
fn a_stream_suspended_on_one_thread_is_dropped_on_another() {
    let drops = Arc::new(AtomicUsize::new(0));
    let token = Token(drops.clone());
    // SAFETY: only Send values live across the yields.
    let mut s = unsafe {
        Builder::new()
            .stack_size(64 * 1024)
            .stream_send(move |y: &StreamHandle<u32>| {
                let _token = token;
                for i in 0.. {
                    y.yield_item(i);
                }
            })
    }
    .unwrap();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(0)));
    let s = std::thread::spawn(move || {
        let mut s = s;
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        s
    })
    .join()
    .unwrap();
    std::thread::spawn(move || drop(s)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// The crate's bookkeeping under migration: a generator resumed between waits, a
/// nested coroutine future waited on, coroutines created and dropped in a loop
/// around waits (their stacks taken from one thread's pool and returned to
/// another's), all inside coroutines that move between workers.
#[test]
fn nested_coroutines_inside_migrating_futures() {
    let n = (tasks() / 4).max(8);
    let rt = runtime();
    let ok = rt.block_on(async {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                // SAFETY: only Send values live across the waits (the generator is
                // !Send but only its own frames, which hold integers, are suspended
                // with it; it is created and dropped inside the coroutine and never
                // touches a thread-local).
                let fut = unsafe {
                    SendFuture::new(move || {
                        let mut gen = StackfulGenerator::new(|y: &YieldHandle<usize>, ()| {
                            for k in 0..4 {
                                y.yeet(k);
                            }
                        });
                        let mut sum = 0;
                        let mut threads = HashSet::new();
                        for k in 0..4 {
                            sum += gen.next().unwrap();
                            wait(tokio::task::yield_now());
                            // A nested coroutine future, waited on from this one.
                            sum += wait(stackful(move || {
                                yield_now();
                                wait(sleep_us(50));
                                k * 10
                            }));
                            threads.insert(thread_id());
                            // A coroutine created and dropped between two waits.
                            let mut g =
                                StackfulGenerator::new(move |y: &YieldHandle<usize>, ()| y.yeet(i));
                            assert_eq!(g.next(), Some(i));
                            drop(g);
                        }
                        assert_eq!(gen.next(), None);
                        (sum, threads.len())
                    })
                };
                tokio::spawn(fut)
            })
            .collect();
        let mut ok = 0;
        for h in handles {
            let (sum, _) = h.await.unwrap();
            assert_eq!(sum, (0..4).sum::<usize>() + 60);
            ok += 1;
        }
        ok
    });
    assert_eq!(ok, n);
}

#[test]
fn send_futures_and_streams_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SendFuture<String>>();
    assert_send::<SendStream<u8>>();
    // SAFETY: nothing is held across a suspension.
    let fut = unsafe { stackful(|| 1).assume_send() };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(futures::executor::block_on(fut)).unwrap());
    assert_eq!(rx.recv().unwrap(), 1);
}

#[inline(never)]
fn send_stream_parked(y: &StreamHandle<u8>) {
    std::hint::black_box("send_stream_parked");
    y.yield_item(1);
}

/// `SendStream::backtrace` on the thread that owns the stream now, not the one it
/// suspended on.
#[test]
fn a_send_stream_is_traced_on_another_thread() {
    // SAFETY: holds nothing thread-bound across its suspension.
    let mut s = unsafe { SendStream::new(|y: &StreamHandle<u8>| send_stream_parked(y)) };
    assert!(s.backtrace().is_none(), "not started");
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
    let (trace, mut s) = std::thread::spawn(move || {
        let trace = s.backtrace().expect("suspended").to_string();
        (trace, s)
    })
    .join()
    .unwrap();
    assert!(trace.contains("send_stream_parked"), "{trace}");
    assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert!(s.backtrace().is_none(), "finished");
}
