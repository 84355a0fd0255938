//! `stackful::io`: `SyncIo`/`TokioSyncIo` (std IO traits over async IO) and
//! `AsyncReader`/`AsyncWriter` (async IO traits over a synchronous reader or writer on
//! a coroutine), with real IO: tokio TCP on 127.0.0.1, futures' `Cursor`, and the
//! synchronous `serde_json` and `flate2` working on async sources.
#![cfg(all(feature = "futures-io", feature = "tokio"))]
// Without unwinding, threads or sockets (wasm32) the tests that need them are left
// out, and with them some of the helpers and imports.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

mod common;

use common::{in_child, pend_n, CountingWaker, Drops, Token};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::executor::{block_on, LocalPool};
use futures::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, Cursor};
use futures::task::{noop_waker_ref, LocalSpawnExt};
use futures::TryStreamExt;
use stackful::io::{AsyncReader, AsyncWriter, SyncIo, TokioSyncIo};
use stackful::{in_stackful, stackful, wait, Builder};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
#[cfg(not(target_arch = "wasm32"))] // the TCP tests
use tokio::net::{TcpListener, TcpStream};

// ------------------------------------------------------------------------- helpers

/// An async source that hands out `data` in chunks of `chunk` bytes and is not ready
/// (waking its task at once) before each chunk, like a socket receiving packets.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    ready: bool,
    pendings: Rc<Cell<usize>>,
}

impl Chunked {
    fn new(data: Vec<u8>, chunk: usize) -> (Self, Rc<Cell<usize>>) {
        let pendings = Rc::new(Cell::new(0));
        let this = Chunked {
            data,
            pos: 0,
            chunk,
            ready: false,
            pendings: pendings.clone(),
        };
        (this, pendings)
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<&[u8]> {
        if room == 0 || self.pos == self.data.len() {
            return Poll::Ready(&[]);
        }
        if !self.ready {
            self.ready = true;
            self.pendings.set(self.pendings.get() + 1);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let n = self.chunk.min(room).min(self.data.len() - self.pos);
        let chunk = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Poll::Ready(chunk)
    }
}

impl futures::io::AsyncRead for Chunked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let chunk = std::task::ready!(self.get_mut().poll_chunk(cx, buf.len()));
        buf[..chunk.len()].copy_from_slice(chunk);
        Poll::Ready(Ok(chunk.len()))
    }
}

impl tokio::io::AsyncRead for Chunked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let chunk = std::task::ready!(self.get_mut().poll_chunk(cx, buf.remaining()));
        buf.put_slice(chunk);
        Poll::Ready(Ok(()))
    }
}

/// An async sink that records what it accepts; writes are pending (without waking
/// anyone) while the gate is closed.
#[derive(Clone, Default)]
struct Gate {
    open: Rc<Cell<bool>>,
    written: Rc<RefCell<Vec<u8>>>,
}

impl futures::io::AsyncWrite for Gate {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.open.get() {
            return Poll::Pending;
        }
        self.written.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A future that never completes and records its drop.
struct PendingForever(#[allow(dead_code)] Token);

impl Future for PendingForever {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[derive(Debug, PartialEq)]
struct Payload(&'static str);

/// Some text that compresses, of about `n` bytes.
fn text(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let word =
            ["stack", "ful", "wait", "poll", "yield", "future", "stream"][(i >> 60) as usize % 7];
        out.extend_from_slice(word.as_bytes());
        out.push(if (i >> 40) % 9 == 0 { b'\n' } else { b' ' });
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// A JSON document with nesting, strings with escapes, numbers.
fn json_doc(records: usize) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..records)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "name": format!("record \"{i}\"\n"),
                "score": i as f64 / 7.0,
                "tags": ["a", "b", i.to_string()],
                "nested": { "ok": i % 2 == 0, "none": null },
            })
        })
        .collect();
    serde_json::json!({ "version": 1, "items": items })
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------- SyncIo (futures-io)

#[test]
fn sync_io_reads_writes_and_seeks_a_futures_cursor_in_a_coroutine() {
    let out = block_on(stackful(|| {
        assert!(in_stackful());
        let mut io = SyncIo::new(Cursor::new(Vec::new()));
        io.write_all(b"first line\nhello world\n").unwrap();
        io.flush().unwrap();
        assert_eq!(io.seek(SeekFrom::Start(0)).unwrap(), 0);
        let mut line = String::new();
        io.read_line(&mut line).unwrap();
        assert_eq!(line, "first line\n");
        assert_eq!(io.seek(SeekFrom::End(-6)).unwrap(), 17);
        let mut rest = String::new();
        io.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "world\n");
        let mut parts = [[0u8; 5]; 2];
        io.seek(SeekFrom::Start(0)).unwrap();
        let [a, b] = &mut parts;
        let n = io
            .read_vectored(&mut [io::IoSliceMut::new(a), io::IoSliceMut::new(b)])
            .unwrap();
        assert!(n > 0);
        io.close().unwrap();
        io.into_inner().into_inner()
    }));
    assert_eq!(out, b"first line\nhello world\n");
}

#[test]
fn sync_io_accessors() {
    let mut io = SyncIo::new(Cursor::new(vec![1, 2, 3]));
    assert_eq!(io.get_ref().position(), 0);
    io.get_mut().set_position(2);
    let mut b = [0; 4];
    assert_eq!(io.read(&mut b).unwrap(), 1);
    assert_eq!(b[0], 3);
    assert_eq!(io.into_inner().into_inner(), [1, 2, 3]);
}

/// Inside a coroutine, a pending async read suspends the coroutine (its future
/// returns `Pending`) instead of blocking the thread.
#[test]
fn sync_io_suspends_the_coroutine_on_a_pending_read() {
    let data = text(1000);
    let (source, pendings) = Chunked::new(data.clone(), 100);
    let mut fut = stackful(move || {
        let mut all = Vec::new();
        SyncIo::new(source).read_to_end(&mut all).unwrap();
        all
    });
    let (wakes, waker) = CountingWaker::new();
    let mut polls = 0;
    let all = loop {
        polls += 1;
        if let Poll::Ready(all) = poll_once(&mut fut, &waker) {
            break all;
        }
    };
    assert_eq!(all, data);
    assert!(pendings.get() >= 10);
    assert_eq!(
        polls,
        pendings.get() + 1,
        "one Pending per chunk, then Ready"
    );
    assert_eq!(wakes.count(), pendings.get());
}

/// Outside a coroutine the adapter blocks the thread until another thread provides
/// the data.
// Not on wasm32: needs a second thread.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn sync_io_blocks_outside_a_coroutine() {
    let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Vec<u8>>>();
    let feeder = std::thread::spawn(move || {
        for chunk in [&b"hello, "[..], b"blocking ", b"world"] {
            std::thread::sleep(std::time::Duration::from_millis(5));
            tx.unbounded_send(Ok(chunk.to_vec())).unwrap();
        }
    });
    assert!(!in_stackful());
    let mut reader = SyncIo::new(rx.into_async_read());
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello, blocking world");
    feeder.join().unwrap();
}

#[test]
fn serde_json_from_reader_over_an_async_source() {
    let doc = json_doc(50);
    let bytes = serde_json::to_vec_pretty(&doc).unwrap();
    // Buffered, as serde_json's docs advise.
    let (source, pendings) = Chunked::new(bytes.clone(), 61);
    let parsed: serde_json::Value = block_on(stackful(move || {
        serde_json::from_reader(BufReader::new(SyncIo::new(source)))
    }))
    .unwrap();
    assert_eq!(parsed, doc);
    assert!(pendings.get() >= bytes.len() / 61);
    // Unbuffered: every byte is an async read, still correct.
    let (source, _) = Chunked::new(bytes, 1000);
    let parsed: serde_json::Value = block_on(stackful(move || {
        serde_json::from_reader(SyncIo::new(source))
    }))
    .unwrap();
    assert_eq!(parsed, doc);
}

#[test]
fn serde_json_reports_errors_from_the_async_source() {
    let (tx, rx) = futures::channel::mpsc::unbounded::<io::Result<Vec<u8>>>();
    tx.unbounded_send(Ok(b"{\"a\": [1, 2".to_vec())).unwrap();
    tx.unbounded_send(Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")))
        .unwrap();
    let err = block_on(stackful(move || {
        serde_json::from_reader::<_, serde_json::Value>(SyncIo::new(rx.into_async_read()))
    }))
    .unwrap_err();
    assert!(err.is_io(), "{err}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn flate2_gz_decoder_over_an_async_source() {
    let data = text(200_000);
    let compressed = gzip(&data);
    let (source, pendings) = Chunked::new(compressed.clone(), 1500);
    let decoded = block_on(stackful(move || {
        let mut out = Vec::new();
        GzDecoder::new(SyncIo::new(source))
            .read_to_end(&mut out)
            .map(|_| out)
    }))
    .unwrap();
    assert_eq!(decoded, data);
    assert!(pendings.get() >= compressed.len() / 1500);
}

/// gzip-compressed JSON: `serde_json` over `flate2` over the async source.
#[test]
fn serde_json_over_flate2_over_an_async_source() {
    let doc = json_doc(200);
    let compressed = gzip(&serde_json::to_vec(&doc).unwrap());
    let (source, _) = Chunked::new(compressed, 512);
    let parsed: serde_json::Value = block_on(stackful(move || {
        let json = BufReader::new(GzDecoder::new(SyncIo::new(source)));
        serde_json::from_reader(json)
    }))
    .unwrap();
    assert_eq!(parsed, doc);
}

// ------------------------------------------------------------ TokioSyncIo (tokio)

#[test]
fn tokio_sync_io_reads_buf_reads_and_seeks_a_cursor() {
    let rt = current_thread_runtime();
    let (line, rest, end) = rt.block_on(stackful(|| {
        let mut io = TokioSyncIo::new(std::io::Cursor::new(b"one\ntwo\nthree".to_vec()));
        let mut line = String::new();
        io.read_line(&mut line).unwrap();
        let end = io.seek(SeekFrom::End(0)).unwrap();
        io.seek(SeekFrom::Start(4)).unwrap();
        let mut rest = String::new();
        io.read_to_string(&mut rest).unwrap();
        (line, rest, end)
    }));
    assert_eq!(
        (line.as_str(), rest.as_str(), end),
        ("one\n", "two\nthree", 13)
    );
}

#[test]
fn tokio_sync_io_suspends_on_a_chunked_source() {
    let data = text(3000);
    let (source, pendings) = Chunked::new(data.clone(), 256);
    let rt = current_thread_runtime();
    let all = rt.block_on(stackful(move || {
        let mut all = Vec::new();
        TokioSyncIo::new(source).read_to_end(&mut all).unwrap();
        all
    }));
    assert_eq!(all, data);
    assert!(pendings.get() >= 12);
}

/// A line-based sync handler per connection, each one a coroutine on a `LocalSet`,
/// with several clients at once; one of them sends a megabyte so that the server's
/// writes (and the client's) really have to wait for the socket.
// Not on wasm32: WASI preview 1 has no TCP sockets.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn tokio_tcp_sync_handlers_serve_concurrent_clients() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    fn handle(stream: TcpStream) -> io::Result<usize> {
        let io = TokioSyncIo::new(stream);
        let mut reader = BufReader::new(io);
        let mut lines = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            lines += 1;
            line.make_ascii_uppercase();
            reader.get_mut().write_all(&line)?;
        }
        reader.get_mut().shutdown()?;
        Ok(lines)
    }

    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = 4;
        let server = tokio::task::spawn_local(async move {
            let mut handlers = Vec::new();
            for _ in 0..clients {
                let (stream, _) = listener.accept().await.unwrap();
                handlers.push(tokio::task::spawn_local(stackful(move || handle(stream))));
            }
            let mut lines = Vec::new();
            for h in handlers {
                lines.push(h.await.unwrap().unwrap());
            }
            lines
        });
        let mut tasks = Vec::new();
        for c in 0..clients {
            tasks.push(tokio::task::spawn_local(async move {
                let request: Vec<u8> = if c == 0 {
                    text(1 << 20)
                        .split(|&b| b == b'\n')
                        .flat_map(|l| l.iter().copied().chain([b'\n']))
                        .collect()
                } else {
                    format!("hello from {c}\nbye from {c}\n").into_bytes()
                };
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut rd, mut wr) = stream.into_split();
                let send = async {
                    wr.write_all(&request).await.unwrap();
                    wr.shutdown().await.unwrap();
                };
                let mut response = Vec::new();
                let recv = rd.read_to_end(&mut response);
                let ((), got) = tokio::join!(send, recv);
                got.unwrap();
                (request, response)
            }));
        }
        for t in tasks {
            let (request, response) = t.await.unwrap();
            assert_eq!(response, request.to_ascii_uppercase());
        }
        let mut lines = server.await.unwrap();
        lines.sort_unstable();
        assert_eq!(&lines[..3], [2, 2, 2]);
        assert!(lines[3] > 1000);
    });
}

/// JSON over gzip over TCP, parsed by the synchronous crates in a coroutine.
// Not on wasm32: WASI preview 1 has no TCP sockets.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn tokio_tcp_gzip_json_parsed_by_sync_crates() {
    use tokio::io::AsyncWriteExt as _;
    let doc = json_doc(500);
    let compressed = gzip(&serde_json::to_vec(&doc).unwrap());
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let parsed = local.block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::task::spawn_local(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for chunk in compressed.chunks(1000) {
                s.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            s.shutdown().await.unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let parsed = tokio::task::spawn_local(stackful(move || {
            let json = BufReader::new(GzDecoder::new(BufReader::new(TokioSyncIo::new(stream))));
            serde_json::from_reader::<_, serde_json::Value>(json)
        }));
        sender.await.unwrap();
        parsed.await.unwrap().unwrap()
    });
    assert_eq!(parsed, doc);
}

/// Outside a coroutine, e.g. in `spawn_blocking`, the adapter blocks the thread while
/// the runtime's workers drive the socket.
// Not on wasm32: TCP sockets and tokio's multi-thread runtime.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn tokio_sync_io_blocks_in_spawn_blocking() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut q = [0; 5];
            s.read_exact(&mut q).await.unwrap();
            s.write_all(b"pong!").await.unwrap();
            s.shutdown().await.unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let client = tokio::task::spawn_blocking(move || {
            assert!(!in_stackful());
            let mut io = TokioSyncIo::new(stream);
            io.write_all(b"ping?").unwrap();
            let mut answer = String::new();
            io.read_to_string(&mut answer).unwrap();
            answer
        });
        server.await.unwrap();
        client.await.unwrap()
    });
    assert_eq!(answer, "pong!");
}

// ----------------------------------------------------------------- AsyncReader

/// A synchronous gzip decoder reading an async source, handed to async code.
#[test]
fn async_reader_hands_a_sync_decoder_to_async_code() {
    let data = text(100_000);
    let (source, pendings) = Chunked::new(gzip(&data), 700);
    let mut reader = AsyncReader::lazy(move || Ok(GzDecoder::new(SyncIo::new(source))));
    let mut out = Vec::new();
    block_on(futures::io::AsyncReadExt::read_to_end(
        &mut reader,
        &mut out,
    ))
    .unwrap();
    assert_eq!(out, data);
    assert!(pendings.get() > 10);
}

/// The same over TCP: the decoder's coroutine suspends on the socket, and async code
/// (`tokio::io::copy`) reads the decoded bytes.
// Not on wasm32: WASI preview 1 has no TCP sockets.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn async_reader_over_tokio_tcp() {
    use tokio::io::AsyncWriteExt as _;
    let data = text(300_000);
    let compressed = gzip(&data);
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let out = local.block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::task::spawn_local(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for chunk in compressed.chunks(4096) {
                s.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            s.shutdown().await.unwrap();
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        // `GzDecoder::new` already reads (the header): make it on the coroutine.
        let mut decoded =
            AsyncReader::lazy(move || Ok(GzDecoder::new(BufReader::new(TokioSyncIo::new(stream)))));
        let mut out = Vec::new();
        tokio::io::copy(&mut decoded, &mut out).await.unwrap();
        sender.await.unwrap();
        out
    });
    assert_eq!(out, data);
}

#[test]
fn async_reader_buf_read_lines() {
    let input = "alpha\nbeta\ngamma";
    // futures' AsyncBufRead
    let lines: Vec<String> = block_on(
        AsyncReader::with_capacity(4, input.as_bytes())
            .lines()
            .try_collect(),
    )
    .unwrap();
    assert_eq!(lines, ["alpha", "beta", "gamma"]);
    // tokio's AsyncBufRead
    let rt = current_thread_runtime();
    let lines = rt.block_on(async {
        use tokio::io::AsyncBufReadExt;
        let mut reader = AsyncReader::with_capacity(3, input.as_bytes());
        let mut lines = Vec::new();
        let mut line = String::new();
        while AsyncBufReadExt::read_line(&mut reader, &mut line)
            .await
            .unwrap()
            > 0
        {
            lines.push(std::mem::take(&mut line));
        }
        lines
    });
    assert_eq!(lines, ["alpha\n", "beta\n", "gamma"]);
}

#[test]
fn async_reader_with_a_one_byte_buffer_and_a_builder() {
    let data = text(5000);
    // The reader owns (a copy of) the data: its coroutine is 'static.
    let mut reader = AsyncReader::with_capacity(0, io::Cursor::new(data.clone())); // clamped to 1
    let mut out = Vec::new();
    block_on(futures::io::AsyncReadExt::read_to_end(
        &mut reader,
        &mut out,
    ))
    .unwrap();
    assert_eq!(out, data);

    let owned = data.clone();
    let mut reader =
        AsyncReader::with_builder(Builder::new().stack_size(64 * 1024), 100, move || {
            Ok(io::Cursor::new(owned))
        })
        .unwrap();
    let mut out = Vec::new();
    block_on(futures::io::AsyncReadExt::read_to_end(
        &mut reader,
        &mut out,
    ))
    .unwrap();
    assert_eq!(out, data);
}

/// A synchronous reader that waits inside `read`: the async read is pending until
/// the value it waits for arrives.
#[test]
fn async_reader_of_a_reader_that_waits() {
    struct FromChannel(futures::channel::mpsc::UnboundedReceiver<Vec<u8>>);
    impl Read for FromChannel {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            use futures::StreamExt;
            assert!(in_stackful());
            match wait(self.0.next()) {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None => Ok(0),
            }
        }
    }
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let mut pool = LocalPool::new();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    pool.spawner()
        .spawn_local(async move {
            let mut reader = AsyncReader::new(FromChannel(rx));
            let mut buf = [0; 64];
            loop {
                let n = futures::io::AsyncReadExt::read(&mut reader, &mut buf)
                    .await
                    .unwrap();
                if n == 0 {
                    break;
                }
                g.borrow_mut()
                    .push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
        })
        .unwrap();
    pool.run_until_stalled();
    assert!(got.borrow().is_empty());
    for word in ["one", "two", "three"] {
        tx.unbounded_send(word.as_bytes().to_vec()).unwrap();
        pool.run_until_stalled();
        assert_eq!(got.borrow().last().map(String::as_str), Some(word));
    }
    drop(tx);
    pool.run();
    assert_eq!(*got.borrow(), ["one", "two", "three"]);
}

/// `Interrupted` is retried; other errors come out of the poll that sees them, and
/// the reader goes on afterwards.
#[test]
fn async_reader_errors() {
    struct Script(Vec<io::Result<&'static [u8]>>);
    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let data = self.0.remove(0)?;
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
    }
    let mut reader = AsyncReader::new(Script(vec![
        Err(io::ErrorKind::Interrupted.into()),
        Ok(b"ab"),
        Err(io::ErrorKind::Interrupted.into()),
        Err(io::ErrorKind::Interrupted.into()),
        Ok(b"cd"),
        Err(io::Error::new(io::ErrorKind::InvalidData, "bad")),
        Ok(b"ef"),
    ]));
    block_on(async {
        let mut buf = [0; 8];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"cd");
        let err = reader.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
        assert_eq!(reader.read(&mut [][..]).await.unwrap(), 0);
    });
    assert!(format!("{reader:?}").contains("AsyncReader"));
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn async_reader_panic_propagates_then_reads_fail() {
    struct PanicsSecond(u32);
    impl Read for PanicsSecond {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0 += 1;
            if self.0 == 2 {
                wait(pend_n(1, ()));
                std::panic::panic_any(Payload("in read"));
            }
            buf[0] = 1;
            Ok(1)
        }
    }
    let mut reader = AsyncReader::new(PanicsSecond(0));
    let mut buf = [0; 4];
    assert_eq!(block_on(reader.read(&mut buf)).unwrap(), 1);
    let err =
        panic::catch_unwind(AssertUnwindSafe(|| block_on(reader.read(&mut buf)))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("in read")));
    let err = block_on(reader.read(&mut buf)).unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
}

/// Dropping it while a read waits unwinds the coroutine: the reader and the future
/// it waits on are dropped.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn async_reader_dropped_mid_read_drops_the_reader_and_the_awaited_future() {
    struct Waits(Drops, #[allow(dead_code)] Token);
    impl Read for Waits {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            let _frame = self.0.token();
            wait(PendingForever(self.0.token()));
            unreachable!("dropped while waiting")
        }
    }
    let drops = Drops::new();
    let mut reader = AsyncReader::new(Waits(drops.clone(), drops.token()));
    let mut buf = [0; 4];
    {
        let mut read = futures::io::AsyncReadExt::read(&mut reader, &mut buf);
        assert!(poll_once(&mut read, noop_waker_ref()).is_pending());
    }
    // The read future is gone; the read itself is still suspended.
    assert_eq!(drops.created(), 3);
    assert_eq!(drops.dropped(), 0);
    drop(reader);
    drops.assert_all_dropped_once();
}

/// The read in progress survives its poll's future being dropped: the next read
/// resumes it and gets its data.
#[test]
fn async_reader_resumes_a_read_after_the_read_future_is_dropped() {
    let (source, _) = Chunked::new(b"abcdef".to_vec(), 3);
    let mut reader = AsyncReader::new(SyncIo::new(source));
    let mut buf = [0; 8];
    {
        let mut read = futures::io::AsyncReadExt::read(&mut reader, &mut buf);
        assert!(poll_once(&mut read, noop_waker_ref()).is_pending());
    }
    let mut other = [0; 2];
    assert_eq!(block_on(reader.read(&mut other)).unwrap(), 2);
    assert_eq!(&other, b"ab");
    let mut rest = Vec::new();
    block_on(futures::io::AsyncReadExt::read_to_end(
        &mut reader,
        &mut rest,
    ))
    .unwrap();
    assert_eq!(rest, b"cdef");
}

/// A `SyncIo` over an `AsyncReader` inside `stackful`: a coroutine inside a coroutine.
#[test]
fn sync_io_over_an_async_reader_inside_stackful() {
    let data = text(20_000);
    let (source, _) = Chunked::new(gzip(&data), 333);
    let out = block_on(stackful(move || {
        // Made here, inside the outer coroutine, the decoder's header read suspends it.
        let inner = AsyncReader::new(GzDecoder::new(SyncIo::new(source)));
        let mut out = Vec::new();
        SyncIo::new(inner).read_to_end(&mut out).unwrap();
        out
    }));
    assert_eq!(out, data);
}

// ----------------------------------------------------------------- AsyncWriter

/// A sink that records writes, flushes and its drop.
#[derive(Clone)]
struct Recorder {
    data: Rc<RefCell<Vec<u8>>>,
    flushes: Rc<Cell<usize>>,
    dropped: Rc<Cell<bool>>,
    /// `wait`s this many times per write.
    pend: usize,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        wait(pend_n(self.pend, ()));
        self.data.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        wait(pend_n(self.pend, ()));
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

#[test]
fn async_writer_buffers_until_full_flush_or_close() {
    let rec = Recorder {
        data: Rc::default(),
        flushes: Rc::default(),
        dropped: Rc::default(),
        pend: 2,
    };
    let mut w = AsyncWriter::with_capacity(16, rec.clone());
    block_on(async {
        w.write_all(b"0123456789").await.unwrap();
        assert!(rec.data.borrow().is_empty(), "small writes stay buffered");
        assert_eq!(w.buffer(), b"0123456789");
        w.flush().await.unwrap();
        assert_eq!(*rec.data.borrow(), b"0123456789");
        assert_eq!(rec.flushes.get(), 1);
        w.write_all(&[b'x'; 40]).await.unwrap();
        assert!(
            rec.data.borrow().len() >= 10 + 32,
            "full buffers are written"
        );
        assert_eq!(rec.flushes.get(), 1);
        assert!(!rec.dropped.get());
        w.close().await.unwrap();
    });
    assert_eq!(rec.data.borrow().len(), 50);
    assert_eq!(rec.flushes.get(), 2, "close flushes");
    assert!(rec.dropped.get(), "close drops the writer");
    // After close.
    block_on(async {
        let err = w.write(b"more").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        w.flush().await.unwrap();
        w.close().await.unwrap();
    });
    assert!(format!("{w:?}").contains("closed: true"));
}

/// A synchronous gzip encoder handed to async code, writing into an async sink; the
/// close function finishes the stream and closes the sink.
#[test]
fn async_writer_gzip_encoder_into_a_futures_cursor() {
    let data = text(100_000);
    // The writer owns the sink (its coroutine is 'static); the close function hands
    // it back once it has finished the stream and closed the sink.
    let (sink_tx, sink_rx) = std::sync::mpsc::channel();
    block_on(async {
        let gz = GzEncoder::new(SyncIo::new(Cursor::new(Vec::new())), Compression::fast());
        let mut w = AsyncWriter::with_close(gz, move |gz| {
            let mut sink = gz.finish()?;
            sink.close()?;
            sink_tx.send(sink.into_inner()).unwrap();
            Ok(())
        });
        for chunk in data.chunks(777) {
            w.write_all(chunk).await.unwrap();
        }
        w.close().await.unwrap();
    });
    let sink = sink_rx.try_recv().expect("close handed the sink back");
    assert_eq!(gunzip(sink.get_ref()), data);
}

/// The same over TCP with tokio: async code writes through the encoder, whose
/// coroutine suspends on the socket; the peer decodes.
// Not on wasm32: WASI preview 1 has no TCP sockets.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn async_writer_over_tokio_tcp() {
    use tokio::io::AsyncReadExt as _;
    let doc = json_doc(300);
    let json = serde_json::to_vec(&doc).unwrap();
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let received = local.block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = tokio::task::spawn_local(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let gz = GzEncoder::new(TokioSyncIo::new(stream), Compression::default());
        let mut w = AsyncWriter::with_close(gz, |gz| gz.finish()?.shutdown());
        for chunk in json.chunks(5000) {
            tokio::io::AsyncWriteExt::write_all(&mut w, chunk)
                .await
                .unwrap();
        }
        tokio::io::AsyncWriteExt::shutdown(&mut w).await.unwrap();
        receiver.await.unwrap()
    });
    let parsed: serde_json::Value = serde_json::from_slice(&gunzip(&received)).unwrap();
    assert_eq!(parsed, doc);
}

/// `serde_json::to_writer` in a coroutine into an `AsyncWriter`'s counterpart: a
/// `SyncIo` over tokio TCP, with a `BufWriter`.
// Not on wasm32: WASI preview 1 has no TCP sockets.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn serde_json_to_writer_over_tokio_tcp() {
    use tokio::io::AsyncReadExt as _;
    let doc = json_doc(300);
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let received = local.block_on(&rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = tokio::task::spawn_local(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let d = doc.clone();
        tokio::task::spawn_local(stackful(move || {
            let mut out = BufWriter::new(TokioSyncIo::new(stream));
            serde_json::to_writer(&mut out, &d).unwrap();
            out.into_inner().unwrap().shutdown().unwrap();
        }))
        .await
        .unwrap();
        receiver.await.unwrap()
    });
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&received).unwrap(),
        doc
    );
}

#[test]
fn async_writer_errors_are_reported_and_the_writer_goes_on() {
    struct FailsOnce(bool, Rc<RefCell<Vec<u8>>>);
    impl Write for FailsOnce {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.0 {
                self.0 = true;
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "once"));
            }
            self.1.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut w = AsyncWriter::new(FailsOnce(false, data.clone()));
    block_on(async {
        w.write_all(b"lost").await.unwrap();
        let err = w.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        w.write_all(b"kept").await.unwrap();
        w.flush().await.unwrap();
    });
    assert_eq!(*data.borrow(), b"kept");
}

/// A close that fails keeps failing, as a file or socket that failed to close does:
/// every later close and flush reports an error of the same kind and message, and
/// writes fail. Through futures-io's `poll_close`.
#[test]
fn async_writer_failed_close_keeps_failing() {
    let data = Rc::new(RefCell::new(Vec::new()));
    let d = data.clone();
    let mut w = AsyncWriter::with_close(Vec::new(), move |written| {
        *d.borrow_mut() = written;
        Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "no room for the trailer",
        ))
    });
    block_on(async {
        w.write_all(b"body").await.unwrap();
        let err = w.close().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(err.to_string(), "no room for the trailer");
        for _ in 0..2 {
            let err = w.close().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::StorageFull);
            assert!(err.to_string().contains("no room for the trailer"), "{err}");
            assert!(err.to_string().contains("close failed"), "{err}");
            let err = w.flush().await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::StorageFull);
            assert!(err.to_string().contains("no room for the trailer"), "{err}");
        }
        let err = w.write(b"more").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(err.to_string().contains("no room for the trailer"), "{err}");
    });
    assert_eq!(
        *data.borrow(),
        b"body",
        "the bytes before the close were written"
    );
}

/// The same through tokio's `poll_shutdown`.
#[test]
fn async_writer_failed_shutdown_keeps_failing() {
    use tokio::io::AsyncWriteExt as Tokio;
    let mut w = AsyncWriter::with_close(Vec::new(), |_| {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "peer went away"))
    });
    block_on(async {
        Tokio::write_all(&mut w, b"body").await.unwrap();
        let err = Tokio::shutdown(&mut w).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(err.to_string(), "peer went away");
        for _ in 0..2 {
            let err = Tokio::shutdown(&mut w).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            assert!(err.to_string().contains("peer went away"), "{err}");
            let err = Tokio::flush(&mut w).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
            assert!(err.to_string().contains("peer went away"), "{err}");
        }
        assert!(Tokio::write(&mut w, b"more").await.is_err());
    });
}

// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn async_writer_panic_propagates_then_writes_fail() {
    struct Panics;
    impl Write for Panics {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            wait(pend_n(1, ()));
            std::panic::panic_any(Payload("in write"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = AsyncWriter::new(Panics);
    block_on(w.write_all(b"x")).unwrap();
    let err = panic::catch_unwind(AssertUnwindSafe(|| block_on(w.flush()))).unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("in write")));
    let err = block_on(w.write_all(b"y")).unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(block_on(w.close()).is_err());
}

// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn async_writer_dropped_mid_write_drops_the_writer_and_the_awaited_future() {
    struct Waits(Drops, #[allow(dead_code)] Token);
    impl Write for Waits {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            let _frame = self.0.token();
            wait(PendingForever(self.0.token()));
            unreachable!("dropped while waiting")
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let drops = Drops::new();
    let mut w = AsyncWriter::new(Waits(drops.clone(), drops.token()));
    block_on(w.write_all(b"data")).unwrap();
    {
        let mut flush = w.flush();
        assert!(poll_once(&mut flush, noop_waker_ref()).is_pending());
    }
    assert_eq!(drops.created(), 3);
    assert_eq!(drops.dropped(), 0);
    drop(w);
    drops.assert_all_dropped_once();
}

/// The default close drops the writer on the coroutine, so a `Drop` that waits
/// works there.
#[test]
fn async_writer_close_drops_the_writer_where_it_may_wait() {
    struct WaitsOnDrop(Rc<Cell<bool>>);
    impl Write for WaitsOnDrop {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            wait(pend_n(3, ()));
            self.0.set(true);
        }
    }
    let done = Rc::new(Cell::new(false));
    let mut w = AsyncWriter::new(WaitsOnDrop(done.clone()));
    let mut pool = LocalPool::new();
    pool.run_until(async {
        w.write_all(b"abc").await.unwrap();
        w.close().await.unwrap();
    });
    assert!(done.get());
}

// ------------------------------------------------------- while a coroutine unwinds

/// A `BufWriter` over a `SyncIo` in a coroutine that is dropped while it waits: the
/// `BufWriter`'s drop flushes through the adapter during the unwind. The sink is
/// ready, so the data gets written (one try without waiting).
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn unwinding_flush_through_sync_io_succeeds_when_ready() {
    in_child(
        "unwinding_flush_through_sync_io_succeeds_when_ready",
        || {
            let gate = Gate::default();
            let g = gate.clone();
            let mut fut = stackful(move || {
                let mut out = BufWriter::new(SyncIo::new(g));
                out.write_all(b"buffered").unwrap();
                wait(std::future::pending::<()>());
            });
            assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
            gate.open.set(true);
            drop(fut);
            assert_eq!(*gate.written.borrow(), b"buffered");
        },
    );
}

/// The same with a sink that is not ready: the flush fails (the `BufWriter` ignores
/// it) instead of `wait` panicking inside a destructor during an unwind, which would
/// abort the process.
// Needs unwinding (wasm32 is panic=abort): drops a suspended coroutine (wasm leaks it).
#[cfg(panic = "unwind")]
#[test]
fn unwinding_flush_through_sync_io_fails_instead_of_aborting() {
    in_child(
        "unwinding_flush_through_sync_io_fails_instead_of_aborting",
        || {
            let gate = Gate::default();
            let g = gate.clone();
            let mut fut = stackful(move || {
                let mut out = BufWriter::new(SyncIo::new(g));
                out.write_all(b"buffered").unwrap();
                wait(std::future::pending::<()>());
            });
            assert!(poll_once(&mut fut, noop_waker_ref()).is_pending());
            drop(fut);
            assert!(gate.written.borrow().is_empty());
        },
    );
}

/// A panic propagating through a coroutine: the adapter fails instead of suspending
/// mid-unwind; the panic reaches the poller with its payload.
// Needs unwinding (wasm32 is panic=abort): catches the panic.
#[cfg(panic = "unwind")]
#[test]
fn sync_io_during_a_panic_in_a_coroutine_does_not_suspend() {
    let gate = Gate::default();
    let g = gate.clone();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    struct OnDrop(SyncIo<Gate>, Rc<RefCell<Vec<String>>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let res = self.0.write(b"during unwind");
            self.1.borrow_mut().push(format!("{res:?}"));
        }
    }
    let err = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(stackful(move || {
            let _guard = OnDrop(SyncIo::new(g), r);
            std::panic::panic_any(Payload("boom"));
        }))
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<Payload>(), Some(&Payload("boom")));
    let results = results.borrow();
    assert_eq!(results.len(), 1);
    assert!(results[0].contains("unwinding"), "{results:?}");
    assert!(gate.written.borrow().is_empty());
}

/// An error from `lazy`'s `make` is returned by every read or write.
#[test]
fn lazy_construction_errors_are_returned_by_every_operation() {
    let mut reader = AsyncReader::<&[u8]>::lazy(|| {
        Err(io::Error::new(io::ErrorKind::NotFound, "no such reader"))
    });
    let mut buf = [0; 4];
    for _ in 0..3 {
        let err = block_on(reader.read(&mut buf)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("no such reader"));
    }
    let mut writer = AsyncWriter::<Vec<u8>>::lazy(|| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "no such writer",
        ))
    });
    block_on(async {
        writer.write_all(b"buffered").await.unwrap();
        let err = writer.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let err = writer.close().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            writer.write(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    });
}

/// `lazy` makes the reader on the coroutine: a constructor that waits suspends the
/// coroutine instead of blocking.
#[test]
fn lazy_makes_the_reader_on_the_coroutine() {
    let made_inside = Rc::new(Cell::new(false));
    let m = made_inside.clone();
    let mut reader = AsyncReader::lazy(move || {
        m.set(in_stackful());
        wait(pend_n(2, ()));
        Ok(&b"made"[..])
    });
    assert!(!made_inside.get(), "nothing runs before the first poll");
    let mut buf = [0; 8];
    let mut read = futures::io::AsyncReadExt::read(&mut reader, &mut buf);
    let (_, waker) = CountingWaker::new();
    assert!(poll_once(&mut read, &waker).is_pending());
    assert!(poll_once(&mut read, &waker).is_pending());
    match poll_once(&mut read, &waker) {
        Poll::Ready(Ok(n)) => assert_eq!(n, 4),
        other => panic!("{other:?}"),
    }
    drop(read);
    assert_eq!(&buf[..4], b"made");
    assert!(made_inside.get());
}

/// An async sink that is not ready at the first write (it wakes its task and is ready
/// at the next poll); records what it was given.
struct NotReadyAtFirst {
    first: bool,
    got: Rc<RefCell<Vec<u8>>>,
}

impl futures::io::AsyncWrite for NotReadyAtFirst {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if std::mem::take(&mut self.first) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.got.borrow_mut().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Issue #15, fault 2: a `Drop` that flushes through `SyncIo` inside a fresh
/// `stackful` coroutine, during an unrelated panic, must wait for the sink as usual
/// (before the fix it got "cannot wait while the coroutine is unwinding" and the data
/// was lost).
#[cfg(panic = "unwind")]
#[test]
fn sync_io_waits_in_a_destructor_during_an_unrelated_panic() {
    struct FlushOnDrop(Rc<RefCell<Vec<u8>>>, Rc<RefCell<Option<String>>>);
    impl Drop for FlushOnDrop {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            let got = self.0.clone();
            let result = block_on(stackful(move || {
                let sink = SyncIo::new(NotReadyAtFirst { first: true, got });
                let mut w = BufWriter::new(sink);
                w.write_all(b"saved")?;
                w.flush()
            }));
            *self.1.borrow_mut() = Some(format!("{result:?}"));
        }
    }
    let got = Rc::new(RefCell::new(Vec::new()));
    let result = Rc::new(RefCell::new(None));
    let (g, r) = (got.clone(), result.clone());
    let caught = panic::catch_unwind(AssertUnwindSafe(move || {
        let _f = FlushOnDrop(g, r);
        panic!("unrelated");
    }));
    assert!(caught.is_err());
    assert_eq!(result.borrow().as_deref(), Some("Ok(())"));
    assert_eq!(&got.borrow()[..], b"saved");
}
