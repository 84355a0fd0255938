//! The same sync-over-async bridge as `examples/read.rs`, in WebAssembly (WASI).
//!
//! A producer task sends a CSV text in small chunks, yielding to the executor between
//! them. A plain synchronous parser (`BufRead::lines`, `str::parse`) reads it through
//! a `std::io::Read` whose `read` calls `stackful::wait` on the channel: whenever no
//! chunk has arrived, the whole parser stack is suspended (on wasm: unwound into the
//! coroutine's Asyncify save buffer) and the single-threaded executor runs the
//! producer and a ticker in the meantime.
//!
//! Run it natively with `cargo run --example wasi_read`, or in wasm with
//! `cargo run --example wasi_read --target wasm32-wasip1` (through the runner in
//! `.cargo/config.toml`: `wasm-opt --asyncify`, then node's WASI).

use futures::channel::mpsc;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::{SinkExt, StreamExt};
use stackful::{stackful, wait};
use std::cell::Cell;
use std::future::poll_fn;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::task::Poll;

/// `std::io::Read` over a channel of byte chunks: each `read` waits for a chunk
/// when the current one is used up.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    waits: Rc<Cell<usize>>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            self.waits.set(self.waits.get() + 1);
            match wait(self.rx.next()) {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                None => return Ok(0), // the producer is done
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A synchronous parser: `city,temperature` lines; returns per-city (count, min, max).
fn parse(input: impl Read) -> io::Result<Vec<(String, usize, f64, f64)>> {
    let mut stats: Vec<(String, usize, f64, f64)> = Vec::new();
    for line in BufReader::with_capacity(16, input).lines() {
        let line = line?;
        let (city, temp) = line
            .split_once(',')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        let temp: f64 = temp
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{line}: {e}")))?;
        match stats.iter_mut().find(|s| s.0 == city) {
            Some(s) => {
                s.1 += 1;
                s.2 = s.2.min(temp);
                s.3 = s.3.max(temp);
            }
            None => stats.push((city.to_owned(), 1, temp, temp)),
        }
    }
    Ok(stats)
}

/// Yields to the executor once.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

fn main() {
    let cities = ["Lisbon", "Oslo", "Quito", "Hobart"];
    let mut text = String::new();
    for i in 0..200 {
        let city = cities[i % cities.len()];
        let temp = ((i * 37) % 61) as f64 / 2.0 - 5.0;
        text.push_str(&format!("{city},{temp:.1}\n"));
    }
    let bytes = text.into_bytes();
    let total = bytes.len();

    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let (mut tx, rx) = mpsc::channel::<Vec<u8>>(1);
    let ticks = Rc::new(Cell::new(0usize));
    let done = Rc::new(Cell::new(false));

    // The producer: 7-byte chunks, yielding to the executor after each one.
    spawner
        .spawn_local(async move {
            for chunk in bytes.chunks(7) {
                tx.send(chunk.to_vec()).await.expect("the parser hung up");
                yield_once().await;
            }
        })
        .unwrap();
    // A ticker that runs whenever the parser is suspended.
    {
        let (ticks, done) = (ticks.clone(), done.clone());
        spawner
            .spawn_local(async move {
                while !done.get() {
                    ticks.set(ticks.get() + 1);
                    yield_once().await;
                }
            })
            .unwrap();
    }

    let waits = Rc::new(Cell::new(0usize));
    let reader = ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
        waits: waits.clone(),
    };
    let parser = stackful(move || parse(reader));
    let done2 = done.clone();
    let result = pool.run_until(async move {
        let r = parser.await;
        done2.set(true);
        r
    });
    let stats = result.expect("parse error");

    let arch = if cfg!(target_arch = "wasm32") {
        "wasm32 (asyncify)"
    } else {
        std::env::consts::ARCH
    };
    println!("parsed {total} bytes on {arch}:");
    for (city, n, min, max) in &stats {
        println!("  {city:<7} {n:>3} readings, min {min:>5.1}, max {max:>5.1}");
    }
    println!(
        "the parser waited {} times; the ticker ran {} times meanwhile; save buffer peak {} bytes",
        waits.get(),
        ticks.get(),
        stackful::stack::stats().save_buffer_peak
    );
    assert_eq!(stats.iter().map(|s| s.1).sum::<usize>(), 200);
}
