//! Finding a stuck connection with `stackful::registry`.
//!
//! A small line-based server on tokio serves each connection with a synchronous
//! handler on a coroutine (as in examples/tokio_echo.rs). One client sends half a
//! request and then goes silent: its handler stays suspended in `read_request`,
//! waiting for the rest of the line. Another thread, the "operator", takes a snapshot
//! of the registry and prints it: every live coroutine with its creation site, how
//! long it has been suspended, and its backtrace, which names `read_request`, the
//! function of the handler that is waiting. Then the example shuts the server down
//! (which drops, i.e. unwinds, the stuck coroutine) and exits.
//!
//! Run it with `cargo run --example stuck --features tokio,registry`.

// wasm32 (WASI preview 1) has no TCP sockets: there `main` only says so.
#![cfg_attr(target_arch = "wasm32", allow(dead_code, unused_imports))]

use stackful::io::TokioSyncIo;
use stackful::{registry, stackful};
use std::io::{self, BufRead, BufReader, Write};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
#[cfg(not(target_arch = "wasm32"))]
use tokio::net::{TcpListener, TcpStream};

/// Reads one request line; `None` when the client hung up. Not inlined, so that it
/// shows in backtraces under its own name in any build.
#[inline(never)]
fn read_request(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end().to_owned()))
}

/// The synchronous handler: one `ECHO <text>` request per line.
fn handle(mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    while let Some(request) = read_request(&mut input)? {
        match request.strip_prefix("ECHO ") {
            Some(text) => writeln!(output, "OK {text}")?,
            None => writeln!(output, "ERR unknown request")?,
        }
    }
    Ok(())
}

/// Accepts connections forever; each one is served by `handle` on a coroutine.
#[cfg(not(target_arch = "wasm32"))]
async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::task::spawn_local(async move {
            let (reader, writer) = socket.into_split();
            let input = BufReader::new(TokioSyncIo::new(reader));
            let output = TokioSyncIo::new(writer);
            // The creation site the registry reports for every handler.
            let handler = stackful(move || handle(input, output));
            if let Err(e) = handler.await {
                eprintln!("handler: {e}");
            }
        });
    }
}

/// A well-behaved client: one request, one answer, hang up.
#[cfg(not(target_arch = "wasm32"))]
async fn good_client(addr: std::net::SocketAddr, text: &str) -> io::Result<String> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    writer
        .write_all(format!("ECHO {text}\n").as_bytes())
        .await?;
    let mut answer = String::new();
    tokio::io::BufReader::new(reader)
        .read_line(&mut answer)
        .await?;
    Ok(answer.trim_end().to_owned())
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> io::Result<()> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The server: a current-thread runtime whose local tasks run the handlers.
    let server =
        std::thread::Builder::new()
            .name("server".into())
            .spawn(move || -> io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?;
                    addr_tx.send(addr).unwrap();
                    let server = tokio::task::spawn_local(serve(listener));
                    // Two clients that behave, then one that sends half a line and
                    // keeps its connection open without another word.
                    for text in ["hello", "world"] {
                        println!("client: ECHO {text} -> {}", good_client(addr, text).await?);
                    }
                    let mut stuck = TcpStream::connect(addr).await?;
                    stuck.write_all(b"ECHO this line never en").await?;
                    // Until the operator has seen enough (at most 10 s, so that the example
                    // always ends).
                    let _ = tokio::time::timeout(Duration::from_secs(10), stop_rx).await;
                    server.abort();
                    drop(stuck);
                    Ok::<_, io::Error>(())
                })?;
                // Dropping the runtime drops the stuck handler's task: its coroutine is
                // unwound.
                drop(local);
                drop(rt);
                Ok(())
            })?;
    let addr = addr_rx
        .recv()
        .map_err(|_| io::Error::other("the server did not start"))?;
    println!("serving on {addr}");

    // The operator: the service seems stuck; what is each coroutine waiting for?
    let mut found = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let snapshot = registry::snapshot_with_backtraces();
        let stuck = snapshot.suspended().into_iter().find(|c| {
            c.suspended_for() >= Some(Duration::from_millis(300))
                && c.created_at().file().ends_with("stuck.rs")
        });
        if let Some(c) = stuck {
            found = Some((c.to_string(), snapshot.to_string()));
            break;
        }
    }
    let _ = stop_tx.send(());
    server
        .join()
        .map_err(|_| io::Error::other("the server thread panicked"))??;
    let Some((stuck, report)) = found else {
        return Err(io::Error::other(
            "no stuck coroutine showed up in the registry",
        ));
    };
    println!("\n--- stackful::registry::snapshot_with_backtraces() ---\n{report}");
    // What CI checks: the report names where the stuck handler was created and the
    // function of the handler that is waiting.
    assert!(stuck.contains("examples/stuck.rs:"), "{stuck}");
    assert!(stuck.contains("read_request"), "{stuck}");
    println!("found the stuck handler: suspended in read_request; server shut down");
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn main() {
    println!("this example needs TCP sockets (native only)");
}
