//! Criterion bench `json`: parsing JSON that arrives from an async source with the
//! synchronous `serde_json::from_reader`, several ways:
//!
//! * `adapter`: inside `stackful`, over `BufReader<stackful::io::SyncIo<source>>`:
//!   each read waits on the async source, suspending the coroutine while the source
//!   is not ready;
//! * `read_all_then_from_slice`: read everything into memory asynchronously, then
//!   `serde_json::from_slice` (needs the whole document in memory);
//! * `thread_channel`: a new thread runs `from_reader` over a reader fed, chunk by
//!   chunk, through a channel by the async side (the usual way to run blocking code);
//! * `worker_thread_channel`: the same with one long-lived worker thread (no thread
//!   start per document);
//! * `sync_from_reader_in_memory` (reference, not async at all): `from_reader` over a
//!   `BufReader` of the bytes already in memory: what the adapter costs on top.
//!
//! Each way parses into a `serde_json::Value` (`json/value/...`: building the value
//! dominates) and into `serde::de::IgnoredAny` (`json/skim/...`: the parser only
//! validates, so the cost of getting the bytes to it shows).
//!
//! The source hands out the document in chunks of 16 KiB and is not ready (waking its
//! task at once) before each chunk, like a socket receiving data. Everything runs on
//! `futures::executor::block_on`.
//!
//! Run with `cargo bench --bench json --features futures-io`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::channel::{mpsc, oneshot};
use futures::executor::block_on;
use futures::io::AsyncReadExt;
use futures::{SinkExt, StreamExt};
use serde::de::IgnoredAny;
use serde_json::Value;
use stackful::io::SyncIo;
use std::hint::black_box;
use std::io::{self, BufReader, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

const CHUNK: usize = 16 * 1024;

/// An in-memory async source: `CHUNK` bytes per read, pending once before each read.
struct Source {
    data: Arc<[u8]>,
    pos: usize,
    ready: bool,
}

impl Source {
    fn new(data: &Arc<[u8]>) -> Self {
        Source {
            data: Arc::clone(data),
            pos: 0,
            ready: false,
        }
    }
}

impl futures::io::AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() || self.pos == self.data.len() {
            return Poll::Ready(Ok(0));
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let n = buf.len().min(CHUNK).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }
}

/// A synchronous reader over chunks that arrive through a channel.
struct ChannelReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            // Blocks this (non-async) thread until the async side sends a chunk.
            match block_on(self.chunks.next()) {
                Some(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The async side of the channel variants: reads the source, sends its chunks.
async fn feed(mut source: Source, mut tx: mpsc::Sender<Vec<u8>>) {
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = source.read(&mut chunk).await.unwrap();
        if n == 0 {
            return;
        }
        chunk.truncate(n);
        tx.send(chunk).await.unwrap();
    }
}

/// What to parse into.
#[derive(Clone, Copy, Debug)]
enum Target {
    Value,
    Skim,
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Value(Value),
    Skimmed,
}

fn from_reader(r: impl Read, target: Target) -> serde_json::Result<Parsed> {
    Ok(match target {
        Target::Value => Parsed::Value(serde_json::from_reader(r)?),
        Target::Skim => {
            serde_json::from_reader::<_, IgnoredAny>(r)?;
            Parsed::Skimmed
        }
    })
}

fn from_slice(s: &[u8], target: Target) -> serde_json::Result<Parsed> {
    Ok(match target {
        Target::Value => Parsed::Value(serde_json::from_slice(s)?),
        Target::Skim => {
            serde_json::from_slice::<IgnoredAny>(s)?;
            Parsed::Skimmed
        }
    })
}

fn adapter(data: &Arc<[u8]>, target: Target) -> Parsed {
    let source = Source::new(data);
    block_on(stackful::stackful(move || {
        from_reader(BufReader::new(SyncIo::new(source)), target)
    }))
    .unwrap()
}

fn sync_from_reader_in_memory(data: &Arc<[u8]>, target: Target) -> Parsed {
    from_reader(BufReader::new(&data[..]), target).unwrap()
}

fn read_all_then_from_slice(data: &Arc<[u8]>, target: Target) -> Parsed {
    let mut source = Source::new(data);
    block_on(async {
        let mut all = Vec::new();
        source.read_to_end(&mut all).await.unwrap();
        from_slice(&all, target)
    })
    .unwrap()
}

fn thread_channel(data: &Arc<[u8]>, target: Target) -> Parsed {
    let (tx, rx) = mpsc::channel(4);
    let parser = std::thread::spawn(move || {
        let reader = ChannelReader {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
        };
        from_reader(BufReader::new(reader), target).unwrap()
    });
    block_on(feed(Source::new(data), tx));
    parser.join().unwrap()
}

type Job = (mpsc::Receiver<Vec<u8>>, Target, oneshot::Sender<Parsed>);

/// One long-lived thread that parses whatever it is sent.
struct Worker {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Worker {
    fn new() -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (chunks, target, done) in rx {
                let reader = ChannelReader {
                    chunks,
                    current: Vec::new(),
                    pos: 0,
                };
                let value = from_reader(BufReader::new(reader), target).unwrap();
                let _ = done.send(value);
            }
        });
        Worker { jobs }
    }

    fn parse(&self, data: &Arc<[u8]>, target: Target) -> Parsed {
        let (tx, rx) = mpsc::channel(4);
        let (done, result) = oneshot::channel();
        self.jobs.send((rx, target, done)).unwrap();
        block_on(async {
            feed(Source::new(data), tx).await;
            result.await.unwrap()
        })
    }
}

/// A JSON document of about `bytes` bytes: records with strings, numbers, nesting.
fn document(bytes: usize) -> Arc<[u8]> {
    let mut items = Vec::new();
    let mut len = 0;
    let mut i = 0u64;
    while len < bytes {
        items.push(serde_json::json!({
            "id": i,
            "name": format!("record number {i}"),
            "score": i as f64 / 7.0,
            "tags": ["alpha", "beta", i.to_string()],
            "nested": { "ok": i % 3 == 0, "none": null, "list": [1, 2, 3] },
        }));
        len += serde_json::to_vec(items.last().unwrap()).unwrap().len() + 1;
        i += 1;
    }
    serde_json::to_vec(&items).unwrap().into()
}

/// One way of parsing a document.
type Case<'a> = dyn Fn(&Arc<[u8]>) -> Parsed + 'a;

fn bench(c: &mut Criterion) {
    let worker = Worker::new();
    for (group, target) in [("json/value", Target::Value), ("json/skim", Target::Skim)] {
        let mut group = c.benchmark_group(group);
        group.measurement_time(Duration::from_secs(3));
        for (label, bytes) in [("4KiB", 4 << 10), ("1MiB", 1 << 20)] {
            let data = document(bytes);
            let expected = read_all_then_from_slice(&data, target);
            assert_eq!(adapter(&data, target), expected);
            assert_eq!(thread_channel(&data, target), expected);
            assert_eq!(worker.parse(&data, target), expected);
            assert_eq!(sync_from_reader_in_memory(&data, target), expected);
            group.throughput(Throughput::Bytes(data.len() as u64));
            let cases: [(&str, &Case); 5] = [
                ("adapter", &|d| adapter(d, target)),
                ("read_all_then_from_slice", &|d| {
                    read_all_then_from_slice(d, target)
                }),
                ("thread_channel", &|d| thread_channel(d, target)),
                ("worker_thread_channel", &|d| worker.parse(d, target)),
                ("sync_from_reader_in_memory", &|d| {
                    sync_from_reader_in_memory(d, target)
                }),
            ];
            for (name, run) in cases {
                group.bench_with_input(BenchmarkId::new(name, label), &data, |b, d| {
                    b.iter(|| black_box(run(d)))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
