//! A synchronous `std::io::Read` parser over an asynchronous TCP stream.
//!
//! A tokio server sends a small binary format in small chunks with short pauses. The
//! client parses it with plain blocking-style code (`byteorder::ReadBytesExt`,
//! `Read::read_exact`) that runs inside `stackful::stackful(...)`: every `read` calls
//! `stackful::wait` on tokio's async `read`, so whenever no data has arrived yet the
//! whole parser stack is suspended and the runtime's single thread runs other tasks
//! (here a ticker) in the meantime.
//!
//! Run it with `cargo run --example read`.

// wasm32 (WASI preview 1) has no TCP sockets: there `main` only says so, and the rest
// is unused.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use byteorder::{ReadBytesExt, LE};
use stackful::{stackful, wait};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io::{self, Read};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
#[cfg(not(target_arch = "wasm32"))]
use tokio::net::{TcpListener, TcpStream};

/// The wire format:
///
/// ```text
/// magic     b"STKF"
/// version   u8 (1)
/// count     u16 LE           number of records
/// record    name_len u8, name (UTF-8), samples u16 LE, then that many i32 LE
/// ```
const MAGIC: &[u8; 4] = b"STKF";
const VERSION: u8 = 1;

/// Bytes per write on the server side, and the pause between writes.
const CHUNK: usize = 5;
const PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    name: String,
    samples: Vec<i32>,
}

fn sample_data() -> Vec<Record> {
    let record = |name: &str, samples: &[i32]| Record {
        name: name.to_owned(),
        samples: samples.to_vec(),
    };
    vec![
        record("kitchen", &[21, 22, 22, 23]),
        record("cellar", &[12, 11]),
        record("attic", &[-3, -1, 0, 2, 5]),
        record("garden", &[]),
        record("garage", &[8, 9, 10]),
    ]
}

/// The server side's encoder (written with `to_le_bytes`, as tokio's `AsyncWriteExt`
/// and byteorder's `WriteBytesExt` would clash on `Vec<u8>`).
fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let count = u16::try_from(records.len()).expect("too many records");
    out.extend_from_slice(&count.to_le_bytes());
    for r in records {
        out.push(u8::try_from(r.name.len()).expect("name too long"));
        out.extend_from_slice(r.name.as_bytes());
        let samples = u16::try_from(r.samples.len()).expect("too many samples");
        out.extend_from_slice(&samples.to_le_bytes());
        for &s in &r.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out
}

/// A plain synchronous parser: nothing in it knows about async.
fn parse(r: &mut impl Read) -> io::Result<Vec<Record>> {
    let bad = |msg: &str| io::Error::new(io::ErrorKind::InvalidData, msg.to_owned());
    let mut magic = [0; 4];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("bad magic"));
    }
    if r.read_u8()? != VERSION {
        return Err(bad("unsupported version"));
    }
    let count = r.read_u16::<LE>()?;
    let mut records = Vec::with_capacity(count.into());
    for _ in 0..count {
        let mut name = vec![0; r.read_u8()?.into()];
        r.read_exact(&mut name)?;
        let name = String::from_utf8(name).map_err(|_| bad("name is not UTF-8"))?;
        let samples = (0..r.read_u16::<LE>()?)
            .map(|_| r.read_i32::<LE>())
            .collect::<io::Result<_>>()?;
        records.push(Record { name, samples });
    }
    // The server closes the connection after the last record.
    if r.read(&mut [0])? != 0 {
        return Err(bad("trailing data"));
    }
    Ok(records)
}

/// `std::io::Read` over a tokio `AsyncRead`: each `read` waits on the async read.
struct SyncRead<R> {
    inner: R,
    /// Calls of `read`.
    reads: usize,
    /// Times the async read was not ready, i.e. the coroutine suspended.
    suspensions: usize,
}

impl<R: AsyncRead + Unpin> Read for SyncRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        let mut fut = pin!(self.inner.read(buf));
        let suspensions = &mut self.suspensions;
        // Count the polls that return `Pending`: each one suspends the coroutine.
        wait(poll_fn(|cx| {
            let poll = fut.as_mut().poll(cx);
            if poll.is_pending() {
                *suspensions += 1;
            }
            poll
        }))
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn serve(listener: TcpListener, data: Vec<u8>) -> io::Result<()> {
    let (mut socket, _) = listener.accept().await?;
    socket.set_nodelay(true)?;
    for chunk in data.chunks(CHUNK) {
        socket.write_all(chunk).await?;
        tokio::time::sleep(PAUSE).await;
    }
    socket.shutdown().await
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> io::Result<()> {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Coroutines are !Send: they run as local tasks on a single thread.
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let expected = sample_data();
        let data = encode(&expected);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::task::spawn_local(serve(listener, data.clone()));

        // Another task on the same thread: it runs while the parser is suspended.
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = tokio::task::spawn_local({
            let ticks = Rc::clone(&ticks);
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(5));
                loop {
                    interval.tick().await;
                    ticks.set(ticks.get() + 1);
                }
            }
        });

        let stream = TcpStream::connect(addr).await?;
        // The synchronous parser, turned into a future by `stackful`.
        let client = tokio::task::spawn_local(stackful(move || {
            let mut reader = SyncRead {
                inner: stream,
                reads: 0,
                suspensions: 0,
            };
            let records = parse(&mut reader);
            (records, reader.reads, reader.suspensions)
        }));

        let (records, reads, suspensions) = client.await.expect("the parser task panicked");
        let records = records?;
        server.await.expect("the server task panicked")?;
        ticker.abort();

        println!(
            "received {} bytes in chunks of {CHUNK} with {} ms pauses",
            data.len(),
            PAUSE.as_millis()
        );
        println!("parsed {} records:", records.len());
        for r in &records {
            println!("  {:<8} {:?}", r.name, r.samples);
        }
        println!(
            "the parser called read() {reads} times; the coroutine suspended {suspensions} \
             times waiting for data"
        );
        println!(
            "meanwhile the ticker task ran {} times on the same thread",
            ticks.get()
        );

        assert_eq!(
            records, expected,
            "parsed records differ from what was sent"
        );
        assert!(suspensions > 0, "the parser never had to wait for data");
        assert!(
            ticks.get() > 0,
            "the ticker never ran while the parser waited"
        );
        Ok::<_, io::Error>(())
    })?;
    println!("done in {:.2?}", start.elapsed());
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {
    println!(
        "this example needs TCP sockets (native only); see examples/wasi_read.rs for \
         a synchronous parser over async input on wasm32-wasip1"
    );
}
