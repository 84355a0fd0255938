//! Coroutines from inside tokio's multi-thread runtime, the safe way (issue #18):
//! coroutines are `!Send`, so `tokio::spawn(stackful(..))` does not compile; instead
//! each one goes to a pool of single-threaded workers with
//! `tokio_util::task::LocalPoolHandle::spawn_pinned`, which takes a `Send` closure that
//! creates the `!Send` future on the worker thread, keeps it there, and returns a
//! `JoinHandle` that is `Send` and can be awaited anywhere.
//!
//! The test serves TCP connections on 127.0.0.1 from a multi-thread runtime: the
//! accepting task is an ordinary `tokio::spawn`ed task, and every connection is served
//! by plain synchronous code (`BufRead`/`Write` over `stackful::io::TokioSyncIo`) on a
//! coroutine on one of the pool's threads.
//!
//! Needs the `tokio` feature (CI runs `cargo test --all-features`); native only
//! (threads and sockets).
#![cfg(all(feature = "tokio", not(target_arch = "wasm32")))]

use stackful::io::TokioSyncIo;
use stackful::stackful;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Barrier;
use tokio_util::task::LocalPoolHandle;

/// Concurrent connections.
const CLIENTS: usize = 50;
/// Requests per connection.
const MESSAGES: usize = 5;
/// Single-threaded workers in the pool.
const POOL_THREADS: usize = 4;

/// What one handler reports back (`Send`: it crosses threads through the `JoinHandle`).
#[derive(Debug)]
struct Served {
    requests: usize,
    /// The thread the handler started on, and the one it finished on after all its
    /// suspensions.
    first_thread: ThreadId,
    last_thread: ThreadId,
    /// The flavor of the runtime the coroutine was polled by.
    flavor: RuntimeFlavor,
}

/// The synchronous handler, one line per request: answers `<n> <LINE>` (the request
/// number on this connection, the line in upper case) and, when the client shuts its
/// side down, `BYE <requests>`.
fn handle(stream: TcpStream) -> io::Result<Served> {
    let first_thread = thread::current().id();
    let flavor = Handle::current().runtime_flavor();
    let mut conn = BufReader::new(TokioSyncIo::new(stream));
    let mut requests = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            break; // the client shut down its writing side
        }
        requests += 1;
        let reply = format!("{requests} {}\n", line.trim_end().to_uppercase());
        conn.get_mut().write_all(reply.as_bytes())?;
    }
    conn.get_mut()
        .write_all(format!("BYE {requests}\n").as_bytes())?;
    conn.get_mut().flush()?;
    Ok(Served {
        requests,
        first_thread,
        last_thread: thread::current().id(),
        flavor,
    })
}

/// An ordinary async client on the multi-thread runtime. It sends one request and
/// reads its answer, then waits at `all_connected` until every client got its first
/// answer (so all the connections are open at once and the pool spreads them over its
/// workers), then sends the others with small pauses, shuts its writing side down and
/// reads the rest up to the end of the stream.
async fn client(
    addr: std::net::SocketAddr,
    id: usize,
    all_connected: Arc<Barrier>,
) -> io::Result<Vec<String>> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut replies = Vec::new();
    for message in 0..MESSAGES {
        if message == 1 {
            all_connected.wait().await;
        }
        if message > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        writer
            .write_all(format!("client {id} message {message}\n").as_bytes())
            .await?;
        let mut reply = String::new();
        reader.read_line(&mut reply).await?;
        replies.push(reply);
    }
    writer.shutdown().await?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest).await?;
    replies.push(rest);
    Ok(replies)
}

#[test]
fn multi_thread_runtime_serves_tcp_with_sync_handlers_on_a_local_pool() {
    // The multi-thread runtime's own threads, to tell them from the pool's.
    let runtime_threads = Arc::new(Mutex::new(HashSet::new()));
    let rt = {
        let runtime_threads = Arc::clone(&runtime_threads);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                runtime_threads
                    .lock()
                    .unwrap()
                    .insert(thread::current().id());
            })
            .build()
            .unwrap()
    };
    let pool = LocalPoolHandle::new(POOL_THREADS);

    let (served, accept_thread, accept_flavor, replies) = rt.block_on(async move {
        let work = async move {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;

            // The accepting task is `Send`: it only holds `JoinHandle`s of the pinned
            // tasks, so it is an ordinary task of the multi-thread runtime.
            let server = tokio::spawn(async move {
                let accept_thread = thread::current().id();
                let accept_flavor = Handle::current().runtime_flavor();
                let mut handlers = Vec::with_capacity(CLIENTS);
                for _ in 0..CLIENTS {
                    let (stream, _) = listener.accept().await?;
                    // `tokio::spawn(stackful(..))` would not compile (`!Send`); the
                    // closure given to `spawn_pinned` is `Send` (it holds the socket)
                    // and creates the coroutine on a worker of the pool.
                    handlers.push(pool.spawn_pinned(move || stackful(move || handle(stream))));
                }
                let mut served = Vec::with_capacity(CLIENTS);
                for handler in handlers {
                    served.push(handler.await.expect("a handler panicked")?);
                }
                Ok::<_, io::Error>((served, accept_thread, accept_flavor))
            });

            let all_connected = Arc::new(Barrier::new(CLIENTS));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|id| tokio::spawn(client(addr, id, Arc::clone(&all_connected))))
                .collect();
            let mut replies = Vec::with_capacity(CLIENTS);
            for client in clients {
                replies.push(client.await.expect("a client panicked")?);
            }
            let (served, accept_thread, accept_flavor) =
                server.await.expect("the accepting task panicked")?;
            Ok::<_, io::Error>((served, accept_thread, accept_flavor, replies))
        };
        // A hang guard only: the test asserts no timings.
        tokio::time::timeout(Duration::from_secs(30), work)
            .await
            .expect("the server and its clients took more than 30 s")
            .unwrap()
    });
    drop(rt);

    // Every client got every answer, in order, from a handler that kept its state
    // (the request count) across its suspensions.
    for (id, replies) in replies.iter().enumerate() {
        let mut expected: Vec<String> = (0..MESSAGES)
            .map(|m| format!("{} CLIENT {id} MESSAGE {m}\n", m + 1))
            .collect();
        expected.push(format!("BYE {MESSAGES}\n"));
        assert_eq!(replies, &expected, "client {id}");
    }

    // The accepting task ran on the multi-thread runtime, on one of its threads.
    let runtime_threads = runtime_threads.lock().unwrap().clone();
    assert_eq!(accept_flavor, RuntimeFlavor::MultiThread);
    assert!(runtime_threads.contains(&accept_thread));

    // The handlers ran on the pool's single-threaded runtimes, each on one thread from
    // start to end, never on the multi-thread runtime's threads, and the pool used
    // more than one of its threads.
    assert_eq!(served.len(), CLIENTS);
    let mut per_thread: HashMap<ThreadId, usize> = HashMap::new();
    for s in &served {
        assert_eq!(s.requests, MESSAGES);
        assert_eq!(s.flavor, RuntimeFlavor::CurrentThread);
        assert_eq!(s.first_thread, s.last_thread, "a coroutine changed threads");
        assert!(!runtime_threads.contains(&s.first_thread));
        *per_thread.entry(s.first_thread).or_default() += 1;
    }
    assert!(
        per_thread.len() > 1,
        "all connections were served by one pool thread: {per_thread:?}"
    );
    assert!(per_thread.len() <= POOL_THREADS, "{per_thread:?}");
}
