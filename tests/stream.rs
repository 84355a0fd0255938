//! `stream`, `StackfulStream` and `StreamHandle::yield_item`: items in order, `wait`
//! between items on real executors, drop mid-way, panics, fusing, combinators,
//! nesting.

// Without unwinding (wasm32) the tests that need it are left out, and with them
// some of the helpers and imports.
#![cfg_attr(not(panic = "unwind"), allow(dead_code, unused_imports))]

mod common;

use common::{panic_message, pend_n, CountingWaker, Drops, HeapStack, Token};
use futures::executor::{block_on, LocalPool};
use futures::stream::FusedStream;
use futures::task::{noop_waker_ref, LocalSpawnExt};
use futures::{Stream, StreamExt};
use stackful::generator::{StackfulGenerator, YieldHandle};
use stackful::{in_stackful, stackful, stream, wait, Builder, StackfulStream, StreamHandle};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A future that never completes and records its drop.
struct PendingForever(#[allow(dead_code)] Token);

impl Future for PendingForever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

fn poll_next<S: Stream + Unpin>(s: &mut S, waker: &Waker) -> Poll<Option<S::Item>> {
    Pin::new(s).poll_next(&mut Context::from_waker(waker))
}

#[derive(Debug, PartialEq)]
struct Payload(&'static str);

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn items_come_in_order() {
    let s = stream(|y: &StreamHandle<u32>| {
        for i in 0..100 {
            y.yield_item(i);
        }
    });
    let all: Vec<u32> = block_on(s.collect());
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[test]
fn an_empty_stream_ends_at_once() {
    let mut s = stream(|_: &StreamHandle<String>| {});
    assert!(!s.is_complete());
    assert_eq!(poll_next(&mut s, noop_waker_ref()), Poll::Ready(None));
    assert!(s.is_complete());
}

#[test]
fn items_are_yielded_from_any_depth_of_calls() {
    fn walk(depth: u32, y: &StreamHandle<u32>) {
        if depth > 0 {
            walk(depth - 1, y);
            y.yield_item(depth);
            walk(depth - 1, y);
        }
    }
    let all: Vec<u32> = block_on(stream(|y: &StreamHandle<u32>| walk(3, y)).collect());
    assert_eq!(all, [1, 2, 1, 3, 1, 2, 1]);
}

/// Each poll runs the closure just up to the next item: nothing runs before the
/// first poll, and the code after an item runs only when the next one is asked for.
#[test]
fn the_closure_runs_lazily_one_item_per_poll() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut s = stream(move |y: &StreamHandle<u32>| {
        l.borrow_mut().push("start");
        y.yield_item(1);
        l.borrow_mut().push("after 1");
        y.yield_item(2);
        l.borrow_mut().push("end");
    });
    let waker = noop_waker_ref();
    assert!(log.borrow().is_empty());
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(1)));
    assert_eq!(*log.borrow(), ["start"]);
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(2)));
    assert_eq!(*log.borrow(), ["start", "after 1"]);
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(None));
    assert_eq!(*log.borrow(), ["start", "after 1", "end"]);
}

/// `wait` between items makes `poll_next` pending; the awaited future's wake-ups
/// reach the poller's waker.
#[test]
fn wait_between_items_pends_and_wakes_the_poller() {
    let mut s = stream(|y: &StreamHandle<u32>| {
        assert!(in_stackful());
        y.yield_item(wait(pend_n(2, 10)));
        y.yield_item(wait(pend_n(1, 20)));
    });
    let (count, waker) = CountingWaker::new();
    assert_eq!(poll_next(&mut s, &waker), Poll::Pending);
    assert_eq!(poll_next(&mut s, &waker), Poll::Pending);
    assert_eq!(count.count(), 2);
    assert_eq!(poll_next(&mut s, &waker), Poll::Ready(Some(10)));
    assert_eq!(poll_next(&mut s, &waker), Poll::Pending);
    assert_eq!(count.count(), 3);
    assert_eq!(poll_next(&mut s, &waker), Poll::Ready(Some(20)));
    assert_eq!(poll_next(&mut s, &waker), Poll::Ready(None));
}

/// A stream on a tokio `current_thread` runtime's `LocalSet`, fed through a tokio
/// channel by another local task, with tokio timers in between: every item really
/// waits for the producer.
#[test]
fn wait_between_items_on_a_tokio_local_set() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let log = Rc::new(RefCell::new(Vec::new()));

    let l = log.clone();
    let producer = local.spawn_local(async move {
        for i in 1..=4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            l.borrow_mut().push(format!("sent {i}"));
            tx.send(i).unwrap();
        }
    });
    let l = log.clone();
    let doubled = stream(move |y: &StreamHandle<u32>| {
        while let Some(v) = wait(rx.recv()) {
            wait(tokio::time::sleep(Duration::from_millis(1)));
            y.yield_item(v * 2);
        }
        l.borrow_mut().push("channel closed".to_owned());
    });
    let l = log.clone();
    let consumer = local.spawn_local(async move {
        let mut doubled = doubled;
        let mut got = Vec::new();
        while let Some(v) = doubled.next().await {
            l.borrow_mut().push(format!("got {v}"));
            got.push(v);
        }
        got
    });
    let got = local.block_on(&rt, async {
        producer.await.unwrap();
        consumer.await.unwrap()
    });
    assert_eq!(got, [2, 4, 6, 8]);
    let log = log.borrow();
    for i in 1..=4 {
        let sent = log.iter().position(|e| *e == format!("sent {i}")).unwrap();
        let got = log
            .iter()
            .position(|e| *e == format!("got {}", i * 2))
            .unwrap();
        assert!(sent < got, "item {i} came out before it was sent: {log:?}");
    }
    assert_eq!(log.last().unwrap(), "channel closed");
}

/// The same with futures' `LocalPool` and oneshot channels completed by another task.
#[test]
fn wait_between_items_on_a_futures_local_pool() {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..5).map(|_| futures::channel::oneshot::channel()).unzip();
    let s = stream(move |y: &StreamHandle<String>| {
        for rx in receivers {
            y.yield_item(wait(rx).unwrap());
        }
    });
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    spawner
        .spawn_local(async move {
            let mut s = s;
            while let Some(v) = s.next().await {
                g.borrow_mut().push(v);
            }
        })
        .unwrap();
    // Nothing can come out before the values are sent.
    pool.run_until_stalled();
    assert!(got.borrow().is_empty());
    for (i, tx) in senders.into_iter().enumerate() {
        tx.send(format!("v{i}")).unwrap();
        pool.run_until_stalled();
        assert_eq!(got.borrow().len(), i + 1);
    }
    pool.run();
    assert_eq!(*got.borrow(), ["v0", "v1", "v2", "v3", "v4"]);
}

// Not on wasm32: needs a second thread.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wait_between_items_on_futures_block_on_with_another_thread() {
    let (tx, rx) = std::sync::mpsc::channel::<futures::channel::oneshot::Sender<u32>>();
    let feeder = std::thread::spawn(move || {
        for (i, tx) in rx.into_iter().enumerate() {
            tx.send(i as u32 * 3).unwrap();
        }
    });
    let s = stream(move |y: &StreamHandle<u32>| {
        for _ in 0..4 {
            let (otx, orx) = futures::channel::oneshot::channel();
            tx.send(otx).unwrap();
            y.yield_item(wait(orx).unwrap());
        }
    });
    let all: Vec<u32> = block_on(s.collect());
    assert_eq!(all, [0, 3, 6, 9]);
    feeder.join().unwrap();
}

// Not on wasm32: smol is a native-only dev-dependency.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn smol_local_executor_runs_a_stream() {
    let ex = smol::LocalExecutor::new();
    let s = stream(|y: &StreamHandle<u32>| {
        for i in 0..3 {
            wait(smol::Timer::after(Duration::from_millis(1)));
            y.yield_item(i);
        }
    });
    let task = ex.spawn(s.collect::<Vec<_>>());
    assert_eq!(smol::block_on(ex.run(task)), [0, 1, 2]);
}

/// Dropping the stream while it waits unwinds the closure: every value on its
/// stack, the closure's captures and the awaited future are dropped.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_while_waiting_unwinds_the_closure_and_drops_the_awaited_future() {
    fn deep(n: u32, d: &Drops) {
        let _frame = d.token();
        if n == 0 {
            wait(PendingForever(d.token()));
            unreachable!("dropped while waiting");
        }
        deep(n - 1, d);
    }
    let drops = Drops::new();
    let captured = drops.token();
    let d = drops.clone();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let mut s = stream(move |y: &StreamHandle<u32>| {
        let _captured = captured;
        y.yield_item(1);
        deep(5, &d);
        a.set(true);
    });
    let waker = noop_waker_ref();
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(1)));
    assert_eq!(poll_next(&mut s, waker), Poll::Pending);
    // captured + 6 frames + the awaited future.
    assert_eq!(drops.created(), 8);
    assert_eq!(drops.dropped(), 0);
    drop(s);
    drops.assert_all_dropped_once();
    assert!(
        !after.get(),
        "the closure went on after its stream was dropped"
    );
}

/// Dropping it while suspended at an item unwinds the closure from `yield_item`.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn drop_at_an_item_unwinds_the_closure() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut s = stream(move |y: &StreamHandle<Token>| {
        let _local = d.token();
        for _ in 0..10 {
            y.yield_item(d.token());
        }
    });
    let waker = noop_waker_ref();
    let first = match poll_next(&mut s, waker) {
        Poll::Ready(Some(t)) => t,
        other => panic!("{other:?}"),
    };
    let second = match poll_next(&mut s, waker) {
        Poll::Ready(Some(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(drops.created(), 3);
    drop(first);
    drop(s);
    assert_eq!(drops.dropped(), 2, "the local and the first item");
    assert!(!drops.is_dropped(second.id), "items belong to the consumer");
    drop(second);
    drops.assert_all_dropped_once();
}

#[test]
fn drop_before_the_first_poll_drops_the_closure() {
    let drops = Drops::new();
    let t = drops.token();
    let s = stream(move |y: &StreamHandle<u32>| {
        drop(t);
        y.yield_item(1);
        unreachable!("never polled");
    });
    assert!(!s.is_complete());
    assert!(!s.is_terminated());
    drop(s);
    drops.assert_all_dropped_once();
}

/// A panic propagates out of `poll_next` with the original payload, after the
/// closure's stack was unwound; the stream is complete afterwards.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_propagates_from_poll_next_with_its_payload() {
    let drops = Drops::new();
    let d = drops.clone();
    let mut s = stream(move |y: &StreamHandle<u32>| {
        let _t = d.token();
        y.yield_item(1);
        wait(pend_n(1, ()));
        std::panic::panic_any(Payload("in the stream"));
    });
    let waker = noop_waker_ref();
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(1)));
    assert_eq!(poll_next(&mut s, waker), Poll::Pending);
    let err = panic::catch_unwind(AssertUnwindSafe(|| poll_next(&mut s, waker))).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Payload>(),
        Some(&Payload("in the stream"))
    );
    drops.assert_all_dropped_once();
    assert!(s.is_complete());
    assert!(s.is_terminated());
    // Polling a panicked stream again is a misuse, reported as such.
    let again = panic::catch_unwind(AssertUnwindSafe(|| poll_next(&mut s, waker))).unwrap_err();
    let msg = panic_message(&*again);
    assert!(
        msg.contains("StackfulStream resumed after it panicked"),
        "{msg}"
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_through_an_executor_keeps_its_payload() {
    let err = panic::catch_unwind(|| {
        block_on(
            stream(|y: &StreamHandle<u32>| {
                y.yield_item(1);
                std::panic::panic_any(Payload("via block_on"));
            })
            .collect::<Vec<_>>(),
        )
    })
    .unwrap_err();
    assert_eq!(
        err.downcast_ref::<Payload>(),
        Some(&Payload("via block_on"))
    );
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn a_panic_in_the_awaited_future_reaches_the_closure_first() {
    struct PanicOnPoll;
    impl Future for PanicOnPoll {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            std::panic::panic_any(Payload("in poll"))
        }
    }
    let s = stream(|y: &StreamHandle<u32>| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wait(PanicOnPoll))).is_err();
        y.yield_item(u32::from(caught));
        y.yield_item(wait(PanicOnPoll));
    });
    let mut s = s;
    assert_eq!(block_on(s.next()), Some(1));
    let err = panic::catch_unwind(AssertUnwindSafe(|| block_on(s.next()))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("in poll")));
}

/// After the end, `poll_next` keeps returning `Ready(None)` without running anything.
#[test]
fn ready_none_is_fused_after_the_end() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let mut s = stream(move |y: &StreamHandle<u32>| {
        r.set(r.get() + 1);
        y.yield_item(7);
    });
    let waker = noop_waker_ref();
    assert!(!s.is_terminated());
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(7)));
    assert!(!s.is_terminated());
    assert!(!s.is_complete());
    for _ in 0..5 {
        assert_eq!(poll_next(&mut s, waker), Poll::Ready(None));
        assert!(s.is_terminated());
        assert!(s.is_complete());
    }
    assert_eq!(runs.get(), 1);
}

#[test]
fn is_complete_tracks_the_closure() {
    let mut s = stream(|y: &StreamHandle<u32>| {
        y.yield_item(1);
        wait(pend_n(1, ()));
    });
    let waker = noop_waker_ref();
    assert!(!s.is_complete());
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(1)));
    assert!(!s.is_complete());
    assert_eq!(poll_next(&mut s, waker), Poll::Pending);
    assert!(!s.is_complete());
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(None));
    assert!(s.is_complete());
}

/// `take` stops polling after n items and drops the stream, unwinding the rest.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn take_stops_early_and_drops_the_rest() {
    let drops = Drops::new();
    let d = drops.clone();
    let produced = Rc::new(Cell::new(0));
    let p = produced.clone();
    let s = stream(move |y: &StreamHandle<u64>| {
        let _guard = d.token();
        for i in 0.. {
            p.set(p.get() + 1);
            y.yield_item(i);
        }
    });
    let firsts: Vec<u64> = block_on(s.take(3).collect());
    assert_eq!(firsts, [0, 1, 2]);
    assert_eq!(produced.get(), 3);
    drops.assert_all_dropped_once();
}

#[test]
fn stream_ext_combinators() {
    let numbers = || {
        stream(|y: &StreamHandle<u32>| {
            for i in 1..=10 {
                y.yield_item(wait(pend_n(1, i)));
            }
        })
    };
    let evens_squared: Vec<u32> = block_on(
        numbers()
            .filter(|v| std::future::ready(v % 2 == 0))
            .map(|v| v * v)
            .collect(),
    );
    assert_eq!(evens_squared, [4, 16, 36, 64, 100]);
    let sum = block_on(numbers().fold(0, |acc, v| async move { acc + v }));
    assert_eq!(sum, 55);
    let zipped: Vec<(u32, u32)> = block_on(numbers().zip(numbers().skip(5)).collect());
    assert_eq!(zipped, [(1, 6), (2, 7), (3, 8), (4, 9), (5, 10)]);
    let chained: Vec<u32> = block_on(numbers().take(2).chain(numbers().skip(8)).collect());
    assert_eq!(chained, [1, 2, 9, 10]);
    // `select` interleaves two suspended streams polled by one task.
    let mut both: Vec<u32> = block_on(futures::stream::select(numbers(), numbers()).collect());
    both.sort_unstable();
    let mut expected: Vec<u32> = (1..=10).chain(1..=10).collect();
    expected.sort_unstable();
    assert_eq!(both, expected);
}

/// A stream whose closure consumes another stream (with `wait` on its `next()`):
/// each inner wait suspends both.
#[test]
fn nested_streams() {
    let inner = stream(|y: &StreamHandle<u32>| {
        for i in 0..5 {
            y.yield_item(wait(pend_n(1, i)));
        }
    });
    let outer = stream(move |y: &StreamHandle<String>| {
        let mut inner = inner;
        while let Some(v) = wait(inner.next()) {
            y.yield_item(format!("<{v}>"));
        }
        assert!(inner.is_complete());
    });
    let mut outer = outer;
    let (count, waker) = CountingWaker::new();
    let mut got = Vec::new();
    let mut pendings = 0;
    loop {
        match poll_next(&mut outer, &waker) {
            Poll::Ready(Some(v)) => got.push(v),
            Poll::Ready(None) => break,
            Poll::Pending => pendings += 1,
        }
    }
    assert_eq!(got, ["<0>", "<1>", "<2>", "<3>", "<4>"]);
    assert_eq!(pendings, 5, "each inner wait made the outer stream pend");
    assert_eq!(count.count(), 5);
}

/// Ten levels of streams, each consuming the one inside it.
#[test]
fn deeply_nested_streams() {
    fn level(n: u32) -> StackfulStream<'static, u32> {
        stream(move |y: &StreamHandle<u32>| {
            if n == 0 {
                for i in 0..3 {
                    y.yield_item(wait(pend_n(1, i)));
                }
            } else {
                let mut inner = level(n - 1);
                while let Some(v) = wait(inner.next()) {
                    y.yield_item(v + 1);
                }
            }
        })
    }
    assert_eq!(block_on(level(10).collect::<Vec<_>>()), [10, 11, 12]);
}

/// Dropping an outer stream while an inner one waits unwinds both.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn dropping_nested_streams_unwinds_both() {
    let drops = Drops::new();
    let d = drops.clone();
    let inner = stream(move |y: &StreamHandle<u32>| {
        let _t = d.token();
        y.yield_item(1);
        wait(PendingForever(d.token()));
    });
    let d = drops.clone();
    let mut outer = stream(move |y: &StreamHandle<u32>| {
        let _t = d.token();
        let mut inner = inner;
        while let Some(v) = wait(inner.next()) {
            y.yield_item(v);
        }
    });
    let waker = noop_waker_ref();
    assert_eq!(poll_next(&mut outer, waker), Poll::Ready(Some(1)));
    assert_eq!(poll_next(&mut outer, waker), Poll::Pending);
    assert_eq!(drops.created(), 3);
    drop(outer);
    drops.assert_all_dropped_once();
}

/// A stream consumed from synchronous code inside `stackful`, and a `stackful`
/// future awaited from inside a stream.
#[test]
fn streams_and_futures_inside_each_other() {
    let total = block_on(stackful(|| {
        let mut s = stream(|y: &StreamHandle<u32>| {
            for i in 1..=4 {
                let v = wait(stackful(move || wait(pend_n(1, i * 10))));
                y.yield_item(v);
            }
        });
        let mut total = 0;
        while let Some(v) = wait(s.next()) {
            total += v;
        }
        total
    }));
    assert_eq!(total, 100);
}

/// A generator inside a stream: its items are re-yielded as stream items.
#[test]
fn a_generator_inside_a_stream() {
    let s = stream(|y: &StreamHandle<u32>| {
        let g = StackfulGenerator::new(|gy: &YieldHandle<u32>, ()| {
            for i in 0..3 {
                gy.yeet(i);
            }
        });
        for v in g {
            y.yield_item(wait(pend_n(1, v * 2)));
        }
    });
    assert_eq!(block_on(s.collect::<Vec<_>>()), [0, 2, 4]);
}

/// A stream borrowing local data: a scoped stream.
#[test]
fn a_stream_borrowing_local_data() {
    let words = vec!["a".to_owned(), "bb".to_owned(), "ccc".to_owned()];
    let seen = Cell::new(0);
    let got: Vec<&str> = stackful::scope(|sc| {
        let s = sc.stream(|y: &StreamHandle<&str>| {
            for w in &words {
                seen.set(seen.get() + 1);
                y.yield_item(w.as_str());
            }
        });
        block_on(s.collect())
    });
    assert_eq!(got, ["a", "bb", "ccc"]);
    assert_eq!(seen.get(), 3);
}

#[test]
fn builder_and_custom_stacks() {
    let s = Builder::new()
        .stack_size(64 * 1024)
        .stream(|y: &StreamHandle<u32>| {
            y.yield_item(wait(pend_n(1, 5)));
        })
        .unwrap();
    assert_eq!(block_on(s.collect::<Vec<_>>()), [5]);

    let freed = Rc::new(Cell::new(false));
    let s = StackfulStream::with_stack(
        HeapStack::new(64 * 1024, freed.clone()),
        |y: &StreamHandle<u32>| {
            y.yield_item(1);
            y.yield_item(wait(pend_n(2, 2)));
        },
    );
    assert_eq!(block_on(s.collect::<Vec<_>>()), [1, 2]);
    assert!(freed.get(), "the custom stack was freed with the stream");
}

#[test]
fn large_items_and_large_captures() {
    let big = [7u8; 4096];
    let s = stream(move |y: &StreamHandle<[u8; 4096]>| {
        y.yield_item(big);
        let mut other = big;
        other[0] = 1;
        y.yield_item(other);
    });
    let items: Vec<[u8; 4096]> = block_on(s.collect());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], [7u8; 4096]);
    assert_eq!(items[1][0], 1);
}

#[test]
fn debug_output() {
    let s = stream(|y: &StreamHandle<u32>| y.yield_item(1));
    assert!(format!("{s:?}").contains("StackfulStream"));
    let inside = block_on(
        stream(|y: &StreamHandle<String>| y.yield_item(format!("{y:?}"))).collect::<Vec<_>>(),
    );
    assert!(inside[0].contains("StreamHandle"), "{inside:?}");
}

/// Many streams alive at once, polled round-robin by one task.
#[test]
fn many_streams_interleaved() {
    let mut streams: Vec<_> = (0..50u32)
        .map(|k| {
            stream(move |y: &StreamHandle<u32>| {
                for i in 0..4 {
                    y.yield_item(wait(pend_n(1, k * 100 + i)));
                }
            })
        })
        .collect();
    let waker = noop_waker_ref();
    let mut got: Vec<Vec<u32>> = vec![Vec::new(); streams.len()];
    let mut live = streams.len();
    while live > 0 {
        live = 0;
        for (k, s) in streams.iter_mut().enumerate() {
            match poll_next(s, waker) {
                Poll::Ready(Some(v)) => {
                    got[k].push(v);
                    live += 1;
                }
                Poll::Ready(None) => {}
                Poll::Pending => live += 1,
            }
        }
    }
    for (k, items) in got.iter().enumerate() {
        let k = k as u32;
        assert_eq!(*items, [k * 100, k * 100 + 1, k * 100 + 2, k * 100 + 3]);
    }
}

/// Calling `yield_item` from inside the `poll` of a future that `wait` is polling
/// would suspend the stream in the middle of that poll; `wait` would then touch the
/// previous `poll_next`'s (dead) frame when the poll returns. It must be refused with
/// a panic, as `wait` inside such a poll is.
///
/// (Before the fix, it was not refused, and the stale write corrupted the stack of
/// whoever called the second `poll_next`.)
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn yield_item_inside_a_poll_that_wait_is_polling_is_refused() {
    #[inline(never)]
    fn poll_deeper(n: u32, s: &mut StackfulStream<'_, u32>) -> Poll<Option<u32>> {
        let mut pad = [0xffu8; 256];
        std::hint::black_box(&mut pad);
        let r = if n == 0 {
            poll_next(s, noop_waker_ref())
        } else {
            poll_deeper(n - 1, s)
        };
        std::hint::black_box(&mut pad);
        assert!(
            pad.iter().all(|&b| b == 0xff),
            "the caller's stack was overwritten"
        );
        r
    }
    let mut s = stream(|y: &StreamHandle<u32>| {
        let v = wait(async {
            y.yield_item(1);
            7
        });
        y.yield_item(v);
    });
    let first = panic::catch_unwind(AssertUnwindSafe(|| poll_next(&mut s, noop_waker_ref())));
    assert!(
        first.is_err(),
        "yield_item inside wait's poll was not refused"
    );
    // The refused yield unwound the stream while its poll frame was alive; the stream
    // is finished now, and polling it again (deeper in the stack) only panics.
    let again = panic::catch_unwind(AssertUnwindSafe(|| poll_deeper(3, &mut s)));
    let msg = panic_message(&*again.expect_err("a stream that panicked stays finished"));
    assert!(msg.contains("resumed after it panicked"), "{msg}");
}

/// `yield_item` from inside a `stackful` future that the stream is polling (with
/// `wait`) is refused: the future's poll would be left half-done.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn yield_item_from_inside_a_nested_stackful_future_panics() {
    let mut s = stream(|y: &StreamHandle<u32>| {
        y.yield_item(1);
        // The future borrows the stream's handle: a scoped future, awaited in the scope.
        stackful::scope(|sc| wait(sc.future(|| y.yield_item(2))));
    });
    let waker = noop_waker_ref();
    assert_eq!(poll_next(&mut s, waker), Poll::Ready(Some(1)));
    let err = panic::catch_unwind(AssertUnwindSafe(|| poll_next(&mut s, waker))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("cannot suspend while a poll"), "{msg}");
    assert!(s.is_complete());
}
