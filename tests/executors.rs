//! Stackful futures on real executors: tokio, smol and futures' `LocalPool`, and a
//! synchronous `io::Read` parser over a real TCP socket.

#[cfg(not(target_arch = "wasm32"))] // the socket tests
use byteorder::{BigEndian, ReadBytesExt};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use stackful::{in_stackful, stackful, wait, yield_now};
use std::cell::{Cell, RefCell};
use std::future::Future;
#[cfg(not(target_arch = "wasm32"))] // the socket tests
use std::io::{self, Read};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
#[cfg(not(target_arch = "wasm32"))] // the socket tests
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, entry: impl Into<String>) {
    log.borrow_mut().push(entry.into());
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Two stackful tasks on a `LocalSet` that hand a token back and forth through tokio
/// channels (with tokio sleeps in between, so every step really pends): their steps
/// must alternate.
#[test]
fn tokio_local_set_interleaves_stackful_tasks() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let log: Log = Rc::default();
    let (tx_ab, mut rx_ab) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let (tx_ba, mut rx_ba) = tokio::sync::mpsc::unbounded_channel::<u32>();

    let l = log.clone();
    let a = local.spawn_local(stackful(move || {
        assert!(in_stackful());
        let mut sum = 0;
        for i in 0..4 {
            push(&l, format!("A{i}"));
            tx_ab.send(i).unwrap();
            wait(tokio::time::sleep(Duration::from_millis(1)));
            sum += wait(rx_ba.recv()).unwrap();
        }
        sum
    }));
    let l = log.clone();
    let b = local.spawn_local(stackful(move || {
        let mut sum = 0;
        for i in 0..4 {
            let got = wait(rx_ab.recv()).unwrap();
            assert_eq!(got, i);
            push(&l, format!("B{i}"));
            wait(tokio::time::sleep(Duration::from_millis(1)));
            tx_ba.send(got * 10).unwrap();
            sum += got;
        }
        sum
    }));
    let (a, b) = rt.block_on(local.run_until(async { (a.await.unwrap(), b.await.unwrap()) }));
    assert_eq!(a, 60);
    assert_eq!(b, 6);
    assert_eq!(
        *log.borrow(),
        ["A0", "B0", "A1", "B1", "A2", "B2", "A3", "B3"]
    );
}

/// Several stackful tasks sleeping on tokio timers at once: all of them are suspended
/// together (the log shows every start before any end).
#[test]
fn tokio_local_set_runs_sleeping_stackful_tasks_concurrently() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let log: Log = Rc::default();
    let handles: Vec<_> = (0..5u64)
        .map(|i| {
            let l = log.clone();
            local.spawn_local(stackful(move || {
                push(&l, "start");
                // Synchronous code several calls deep, sleeping through tokio.
                fn sleep_then_double(l: &Log, i: u64) -> u64 {
                    wait(tokio::time::sleep(Duration::from_millis(5 + i)));
                    yield_now();
                    push(l, "end");
                    i * 2
                }
                sleep_then_double(&l, i)
            }))
        })
        .collect();
    let results = rt.block_on(local.run_until(async {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }));
    assert_eq!(results, [0, 2, 4, 6, 8]);
    let log = log.borrow();
    assert_eq!(log.len(), 10);
    assert!(log[..5].iter().all(|e| e == "start"), "{log:?}");
    assert!(log[5..].iter().all(|e| e == "end"), "{log:?}");
}

// Not on wasm32: tokio's multi-thread runtime needs threads.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn tokio_multi_thread_runtime_block_on_a_stackful_future() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let v = rt.block_on(stackful(|| {
        // Waiting on Send tasks that run on the worker threads.
        let handles: Vec<_> = (0..4u32)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    i + 1
                })
            })
            .collect();
        handles.into_iter().map(|h| wait(h).unwrap()).sum::<u32>()
    }));
    assert_eq!(v, 10);
}

// Not on wasm32: smol is a native-only dev-dependency (and this spawns a thread).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn smol_block_on_a_stackful_future() {
    let v = smol::block_on(stackful(|| {
        let start = wait(async { 1 });
        wait(smol::Timer::after(Duration::from_millis(2)));
        let (tx, rx) = smol::channel::bounded(1);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            tx.send_blocking(41).unwrap();
        });
        start + wait(rx.recv()).unwrap()
    }));
    assert_eq!(v, 42);
}

// Not on wasm32: smol is a native-only dev-dependency.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn smol_local_executor_with_many_stackful_tasks() {
    let ex = smol::LocalExecutor::new();
    let (tx, rx) = smol::channel::unbounded::<u32>();
    let log: Log = Rc::default();
    let consumer = {
        let l = log.clone();
        ex.spawn(stackful(move || {
            let mut total = 0;
            while let Ok(v) = wait(rx.recv()) {
                total += v;
            }
            push(&l, "consumer done");
            total
        }))
    };
    let producers: Vec<_> = (0..10u32)
        .map(|i| {
            let tx = tx.clone();
            ex.spawn(stackful(move || {
                for j in 0..5 {
                    wait(smol::Timer::after(Duration::from_millis(1)));
                    wait(tx.send(i * 5 + j)).unwrap();
                }
                i
            }))
        })
        .collect();
    drop(tx);
    let (ids, total) = smol::block_on(ex.run(async {
        let mut ids = Vec::new();
        for p in producers {
            ids.push(p.await);
        }
        (ids, consumer.await)
    }));
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_eq!(total, (0..50).sum());
    assert_eq!(*log.borrow(), ["consumer done"]);
}

/// Wakes its task from another thread after `after`, then is ready (on wasm32, from
/// its first poll: see below).
struct WakeFromThread {
    after: Duration,
    started: bool,
    done: Rc<Cell<bool>>,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Future for WakeFromThread {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        use std::sync::atomic::Ordering;
        if self.flag.load(Ordering::SeqCst) {
            self.done.set(true);
            return Poll::Ready(());
        }
        if !self.started {
            self.started = true;
            let (flag, waker, after) = (self.flag.clone(), cx.waker().clone(), self.after);
            #[cfg(not(target_arch = "wasm32"))]
            std::thread::spawn(move || {
                std::thread::sleep(after);
                flag.store(true, Ordering::SeqCst);
                waker.wake();
            });
            // wasm32 has no threads: sleep here, then wake the task from this poll (it
            // still returns Pending and is polled again once woken).
            #[cfg(target_arch = "wasm32")]
            {
                std::thread::sleep(after);
                flag.store(true, Ordering::SeqCst);
                waker.wake();
            }
        }
        Poll::Pending
    }
}

#[test]
fn futures_local_pool_with_many_stackful_tasks() {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let results = Rc::new(RefCell::new(Vec::new()));
    let woken_from_threads = Rc::new(Cell::new(0));
    for i in 0..200u32 {
        let results = results.clone();
        let w = woken_from_threads.clone();
        spawner
            .spawn_local(stackful(move || {
                let mut acc = i;
                for step in 0..3 {
                    if (i + step) % 50 == 0 {
                        let done = Rc::new(Cell::new(false));
                        wait(WakeFromThread {
                            after: Duration::from_millis(2),
                            started: false,
                            done: done.clone(),
                            flag: Default::default(),
                        });
                        assert!(done.get());
                        w.set(w.get() + 1);
                    } else {
                        yield_now();
                    }
                    acc += step;
                }
                results.borrow_mut().push((i, acc));
            }))
            .unwrap();
    }
    pool.run();
    let mut results = results.borrow_mut();
    results.sort_unstable();
    let expected: Vec<_> = (0..200).map(|i| (i, i + 3)).collect();
    assert_eq!(*results, expected);
    assert_eq!(woken_from_threads.get(), 12);
}

#[test]
fn futures_local_pool_yield_now_round_robin() {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let log: Log = Rc::default();
    for name in ["a", "b", "c"] {
        let l = log.clone();
        spawner
            .spawn_local(stackful(move || {
                for i in 0..3 {
                    push(&l, format!("{name}{i}"));
                    yield_now();
                }
            }))
            .unwrap();
    }
    pool.run();
    let log = log.borrow();
    assert_eq!(log.len(), 9);
    // Every task ran its first step before any task finished: yield_now let the
    // others run.
    let first_end = log.iter().position(|e| e.ends_with('2')).unwrap();
    for name in ["a0", "b0", "c0", "a1", "b1", "c1"] {
        let at = log.iter().position(|e| e == name).unwrap();
        assert!(at < first_end, "{log:?}");
    }
}

// ---- A synchronous parser over a real socket ----
// (Not on wasm32: WASI preview 1 has no sockets, and tokio::net no TCP there.)

#[cfg(not(target_arch = "wasm32"))]
/// A blocking-style `io::Read` over a tokio `TcpStream`: each read waits on the async
/// read, suspending the coroutine when no data is there yet.
struct SyncStream {
    stream: tokio::net::TcpStream,
    pending_reads: Rc<Cell<usize>>,
}

#[cfg(not(target_arch = "wasm32"))]
/// Counts how often the wrapped future is pending.
struct CountPending<'a, F> {
    fut: Pin<Box<F>>,
    count: &'a Cell<usize>,
}

#[cfg(not(target_arch = "wasm32"))]
impl<F: Future> Future for CountPending<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.fut.as_mut().poll(cx);
        if r.is_pending() {
            self.count.set(self.count.get() + 1);
        }
        r
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Read for SyncStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.pending_reads.clone();
        wait(CountPending {
            fut: Box::pin(self.stream.read(buf)),
            count: &count,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, PartialEq)]
struct Record {
    kind: u16,
    body: Vec<u8>,
}

#[cfg(not(target_arch = "wasm32"))]
/// Plain synchronous parsing code: `u16` kind, `u32` length, body; kind 0 ends.
fn parse_records(r: &mut impl Read) -> io::Result<Vec<Record>> {
    let mut out = Vec::new();
    loop {
        let kind = r.read_u16::<BigEndian>()?;
        if kind == 0 {
            return Ok(out);
        }
        let len = r.read_u32::<BigEndian>()? as usize;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        out.push(Record { kind, body });
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn encode(records: &[Record]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in records {
        bytes.extend_from_slice(&r.kind.to_be_bytes());
        bytes.extend_from_slice(&(r.body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&r.body);
    }
    bytes.extend_from_slice(&0u16.to_be_bytes());
    bytes
}

#[cfg(not(target_arch = "wasm32"))]
fn sample_records() -> Vec<Record> {
    (1..=20u16)
        .map(|k| Record {
            kind: k,
            body: (0..u32::from(k) * 7).map(|b| (b * 31 + 7) as u8).collect(),
        })
        .collect()
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn sync_parser_over_a_tokio_tcp_stream() {
    let rt = current_thread_runtime();
    let records = sample_records();
    let bytes = encode(&records);
    let chunks = bytes.len().div_ceil(5);
    let parsed = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            // Small writes with pauses: the reader runs out of data many times.
            for chunk in bytes.chunks(5) {
                sock.write_all(chunk).await.unwrap();
                sock.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            sock.shutdown().await.unwrap();
        });
        let pending_reads = Rc::new(Cell::new(0));
        let p = pending_reads.clone();
        let parsed = stackful(move || {
            let stream = wait(tokio::net::TcpStream::connect(addr)).unwrap();
            let mut sync = SyncStream {
                stream,
                pending_reads: p,
            };
            let records = parse_records(&mut sync).unwrap();
            // After the end marker the server closes: EOF.
            let mut rest = Vec::new();
            sync.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
            records
        })
        .await;
        server.await.unwrap();
        (parsed, pending_reads.get())
    });
    let (parsed, pending_reads) = parsed;
    assert_eq!(parsed, records);
    // Each chunk after the first is written only after the reader has suspended.
    assert!(
        pending_reads >= chunks - 1,
        "{pending_reads} pending reads for {chunks} chunks"
    );
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn sync_parser_reports_a_truncated_stream_as_an_io_error() {
    let rt = current_thread_runtime();
    let mut bytes = encode(&sample_records());
    bytes.truncate(bytes.len() / 2);
    let err = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            for chunk in bytes.chunks(64) {
                sock.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Dropping the socket closes it mid-record.
        });
        let err = stackful(move || {
            let stream = wait(tokio::net::TcpStream::connect(addr)).unwrap();
            parse_records(&mut SyncStream {
                stream,
                pending_reads: Rc::default(),
            })
            .unwrap_err()
        })
        .await;
        server.await.unwrap();
        err
    });
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[cfg(not(target_arch = "wasm32"))]
/// Several synchronous parsers share one thread, each on its own connection.
#[test]
fn several_sync_parsers_on_one_local_set() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let records = sample_records();
    let bytes = encode(&records);
    let all = local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::task::spawn_local(async move {
            let mut conns = Vec::new();
            for _ in 0..3 {
                let (sock, _) = listener.accept().await.unwrap();
                conns.push(sock);
            }
            // Round-robin over the connections in small pieces.
            for chunk in bytes.chunks(16) {
                for sock in &mut conns {
                    sock.write_all(chunk).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let parsers: Vec<_> = (0..3)
            .map(|_| {
                tokio::task::spawn_local(stackful(move || {
                    let stream = wait(tokio::net::TcpStream::connect(addr)).unwrap();
                    parse_records(&mut SyncStream {
                        stream,
                        pending_reads: Rc::default(),
                    })
                    .unwrap()
                }))
            })
            .collect();
        let mut all = Vec::new();
        for p in parsers {
            all.push(p.await.unwrap());
        }
        server.await.unwrap();
        all
    });
    assert_eq!(all.len(), 3);
    for parsed in all {
        assert_eq!(parsed, records);
    }
}
