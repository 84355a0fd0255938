//! Group `sync_over_async`: parse 1 MiB of length-prefixed records (a `u16` LE length,
//! then that many bytes; the parser counts records and sums their bytes) that come
//! from an async source, [`ChunkedReader`]: an in-memory `futures::io::AsyncRead`
//! that returns at most 4 KiB per read and is `Pending` (waking itself) before every
//! chunk.
//!
//! * `ours`: the synchronous parser over `std::io::BufReader<SyncRead>`, where
//!   `SyncRead::read` is `stackful::wait(async_reader.read(buf))`, inside
//!   `stackful::stackful(..)`.
//! * `async`: the same parser written by hand as `async fn` over
//!   `futures::io::BufReader`.
//! * `thread-mpsc`: the synchronous parser on the calling thread, reading chunks from
//!   a `std::sync::mpsc::sync_channel(4)` fed by a thread that drives the async reader
//!   with `futures::executor::block_on` (spawning that thread is part of each
//!   operation, as it would be for a one-off conversion).
//!
//! All three are driven to completion on the calling thread with the same no-op
//! waker loop (`ours`, `async`), so they differ only in how sync meets async.

use super::{drive, timed, Case, Make, Run};
use futures::io::{AsyncRead, AsyncReadExt};
use std::hint::black_box;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

pub const GROUP: &str = "sync_over_async";
pub const INPUT_LEN: usize = 1 << 20;
pub const CHUNK: usize = 4096;
const BUF_CAPACITY: usize = 8192;

pub fn cases() -> Vec<Case> {
    let libs: [(&'static str, Make, u64); 3] = [
        ("ours", ours, 4),
        ("async", hand_async, 4),
        // The work is on another thread: instruction counts of one thread mean nothing.
        ("thread-mpsc", thread_mpsc, 0),
    ];
    libs.into_iter()
        .map(|(function, make, insn_ops)| Case {
            group: GROUP,
            function,
            param: None,
            elements: 1,
            bytes: Some(INPUT_LEN as u64),
            insn_ops,
            make,
        })
        .collect()
}

/// What the parser computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    pub records: u64,
    pub byte_sum: u64,
}

/// 1 MiB of records with pseudo-random lengths (0..=255) and contents, ending exactly
/// at a record boundary; and the summary the parser must produce.
pub fn input() -> &'static (Vec<u8>, Summary) {
    static INPUT: OnceLock<(Vec<u8>, Summary)> = OnceLock::new();
    INPUT.get_or_init(|| {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut data = Vec::with_capacity(INPUT_LEN);
        let mut summary = Summary::default();
        loop {
            let room = INPUT_LEN - data.len();
            if room == 0 {
                break;
            }
            let max = (room - 2).min(255);
            let mut len = ((next() % 256) as usize).min(max);
            // Never leave a single byte, which could not hold a header.
            if room - 2 - len == 1 {
                if len < max {
                    len += 1;
                } else {
                    len -= 1;
                }
            }
            data.extend_from_slice(&(len as u16).to_le_bytes());
            for _ in 0..len {
                let b = next() as u8;
                summary.byte_sum += u64::from(b);
                data.push(b);
            }
            summary.records += 1;
        }
        assert_eq!(data.len(), INPUT_LEN);
        (data, summary)
    })
}

/// An in-memory async reader: `Pending` before every chunk (it wakes its task at
/// once), then at most [`CHUNK`] bytes.
pub struct ChunkedReader {
    data: &'static [u8],
    ready: bool,
}

impl ChunkedReader {
    pub fn new(data: &'static [u8]) -> Self {
        ChunkedReader { data, ready: false }
    }
}

impl AsyncRead for ChunkedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.ready && !self.data.is_empty() {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let n = buf.len().min(CHUNK).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(n))
    }
}

/// The synchronous parser.
#[inline(never)]
pub fn parse_sync(mut r: impl Read) -> io::Result<Summary> {
    let mut s = Summary::default();
    let mut payload = [0u8; 256];
    loop {
        let mut header = [0u8; 2];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(s),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_le_bytes(header));
        let payload = &mut payload[..len];
        r.read_exact(payload)?;
        s.records += 1;
        s.byte_sum += payload.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
}

/// The same parser, written as `async fn`.
#[inline(never)]
pub async fn parse_async(mut r: impl AsyncRead + Unpin) -> io::Result<Summary> {
    let mut s = Summary::default();
    let mut payload = [0u8; 256];
    loop {
        let mut header = [0u8; 2];
        match r.read_exact(&mut header).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(s),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_le_bytes(header));
        let payload = &mut payload[..len];
        r.read_exact(payload).await?;
        s.records += 1;
        s.byte_sum += payload.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
}

/// `Read` over an `AsyncRead`, for code running inside `stackful::stackful`.
pub struct SyncRead<R>(pub R);

impl<R: AsyncRead + Unpin> Read for SyncRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        stackful::wait(self.0.read(buf))
    }
}

fn check(s: io::Result<Summary>) {
    let s = s.expect("parse failed");
    assert_eq!(s, input().1, "parser result");
    black_box(s);
}

pub fn ours(_: Option<&str>) -> Run {
    let data = &input().0[..];
    Box::new(move |n| {
        timed(|| {
            for _ in 0..n {
                let mut fut = std::pin::pin!(stackful::stackful(move || {
                    let r = io::BufReader::with_capacity(
                        BUF_CAPACITY,
                        SyncRead(ChunkedReader::new(data)),
                    );
                    parse_sync(r)
                }));
                check(drive(fut.as_mut()));
            }
        })
    })
}

pub fn hand_async(_: Option<&str>) -> Run {
    let data = &input().0[..];
    Box::new(move |n| {
        timed(|| {
            for _ in 0..n {
                let r =
                    futures::io::BufReader::with_capacity(BUF_CAPACITY, ChunkedReader::new(data));
                let mut fut = std::pin::pin!(parse_async(r));
                check(drive(fut.as_mut()));
            }
        })
    })
}

/// `Read` over chunks received from a channel.
struct ChannelRead {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                // The producer is done (or died; its join reports that).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

pub fn thread_mpsc(_: Option<&str>) -> Run {
    let data = &input().0[..];
    Box::new(move |n| {
        timed(|| {
            for _ in 0..n {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
                let producer = std::thread::spawn(move || {
                    futures::executor::block_on(async move {
                        let mut reader = ChunkedReader::new(data);
                        loop {
                            let mut chunk = vec![0; CHUNK];
                            let got = reader.read(&mut chunk).await?;
                            if got == 0 {
                                return io::Result::Ok(());
                            }
                            chunk.truncate(got);
                            if tx.send(chunk).is_err() {
                                return Ok(());
                            }
                        }
                    })
                });
                let r = io::BufReader::with_capacity(
                    BUF_CAPACITY,
                    ChannelRead {
                        rx,
                        chunk: Vec::new(),
                        pos: 0,
                    },
                );
                check(parse_sync(r));
                producer
                    .join()
                    .expect("producer thread panicked")
                    .expect("producer failed");
            }
        })
    })
}
