//! A synchronous request handler serving TCP connections on tokio, one coroutine per
//! connection.
//!
//! `handle` is plain blocking-style code over `std::io::{BufRead, Write}`: it reads a
//! request line, computes an answer, writes it back. Each accepted connection runs it
//! inside `stackful::stackful(...)` as a local task, reading and writing the socket
//! through `stackful::io::TokioSyncIo`, so whenever the socket is not ready the
//! handler's whole stack is suspended and the runtime's single thread serves the other
//! connections.
//!
//! The example starts the server, runs a few clients against it concurrently, prints
//! what they got, and exits.
//!
//! Run it with `cargo run --example tokio_echo --features tokio`.

// wasm32 (WASI preview 1) has no TCP sockets: there `main` only says so, and the rest
// is unused.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use stackful::io::TokioSyncIo;
use stackful::stackful;
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
#[cfg(not(target_arch = "wasm32"))]
use tokio::net::{TcpListener, TcpStream};

/// The protocol, one request per line:
///
/// ```text
/// ECHO <text>      -> <text>
/// UPPER <text>     -> <TEXT>
/// SUM <n> <n> ...  -> the sum
/// QUIT             -> BYE, and the server closes the connection
/// ```
fn answer(request: &str) -> Result<String, String> {
    let (command, rest) = request.split_once(' ').unwrap_or((request, ""));
    match command {
        "ECHO" => Ok(rest.to_owned()),
        "UPPER" => Ok(rest.to_uppercase()),
        "SUM" => rest
            .split_whitespace()
            .map(|n| n.parse::<i64>().map_err(|e| format!("{n:?}: {e}")))
            .sum::<Result<i64, _>>()
            .map(|sum| sum.to_string()),
        _ => Err(format!("unknown command {command:?}")),
    }
}

/// The synchronous handler: nothing in it knows about async. Returns the number of
/// requests it answered.
fn handle(mut input: impl BufRead, mut output: impl Write) -> io::Result<usize> {
    let mut served = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(served); // the client hung up
        }
        let request = line.trim_end();
        if request == "QUIT" {
            output.write_all(b"BYE\n")?;
            return Ok(served);
        }
        match answer(request) {
            Ok(reply) => writeln!(output, "OK {reply}")?,
            Err(why) => writeln!(output, "ERR {why}")?,
        }
        served += 1;
    }
}

/// Accepts connections forever; each one is served by `handle` on a coroutine.
#[cfg(not(target_arch = "wasm32"))]
async fn serve(listener: TcpListener, served: Rc<Cell<usize>>) -> io::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        let served = Rc::clone(&served);
        // Coroutines are !Send: a local task, not `tokio::spawn`.
        tokio::task::spawn_local(async move {
            let (reader, writer) = socket.into_split();
            // Reads are buffered; each write goes to the socket (and suspends the
            // coroutine if the socket is not ready).
            let input = BufReader::new(TokioSyncIo::new(reader));
            let output = TokioSyncIo::new(writer);
            match stackful(move || handle(input, output)).await {
                Ok(n) => served.set(served.get() + n),
                Err(e) => eprintln!("connection from {peer}: {e}"),
            }
        });
    }
}

/// An ordinary async client: sends its requests, reads one answer line per request.
#[cfg(not(target_arch = "wasm32"))]
async fn client(addr: std::net::SocketAddr, requests: Vec<String>) -> io::Result<Vec<String>> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut answers = Vec::new();
    for request in requests {
        writer.write_all(format!("{request}\n").as_bytes()).await?;
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        answers.push(line.trim_end().to_owned());
    }
    Ok(answers)
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> io::Result<()> {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let work = local.run_until(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("serving on {addr}");
        let served = Rc::new(Cell::new(0));
        let server = tokio::task::spawn_local(serve(listener, Rc::clone(&served)));

        let scripts: Vec<Vec<String>> = vec![
            vec!["ECHO hello".into(), "UPPER stackful".into(), "QUIT".into()],
            vec!["SUM 1 2 3 4".into(), "SUM 10 -3".into(), "QUIT".into()],
            vec![
                "ECHO one".into(),
                "FROB x".into(),
                "SUM 2 two".into(),
                "QUIT".into(),
            ],
            vec!["UPPER concurrent clients".into(), "QUIT".into()],
        ];
        let clients: Vec<_> = scripts
            .iter()
            .cloned()
            .map(|script| tokio::task::spawn_local(client(addr, script)))
            .collect();
        let mut answered = 0;
        for (i, (task, script)) in clients.into_iter().zip(&scripts).enumerate() {
            let answers = task.await.expect("a client task panicked")?;
            println!("client {i}:");
            for (request, answer) in script.iter().zip(&answers) {
                println!("  {request:<28} -> {answer}");
            }
            assert_eq!(answers.len(), script.len());
            assert_eq!(answers.last().map(String::as_str), Some("BYE"));
            answered += answers.len() - 1;
        }
        // Let the handlers see their clients' QUIT and finish, then stop accepting.
        while served.get() < answered {
            tokio::task::yield_now().await;
        }
        server.abort();
        println!(
            "{} connections, {} requests answered by synchronous handlers on coroutines",
            scripts.len(),
            served.get()
        );
        Ok::<_, io::Error>(())
    });
    // A guard so that the example always ends, even if something goes wrong.
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the example took too long"))?
    })?;
    println!("done in {:.2?}", start.elapsed());
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {
    println!(
        "this example needs TCP sockets (native only); see examples/wasi_read.rs for \
         synchronous IO over async input on wasm32-wasip1"
    );
}
