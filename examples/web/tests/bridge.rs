//! The promise bridge, run by wasm-bindgen-test in node after asyncify
//! (`./run.sh test`; `cargo test` in this directory does the same through the
//! runner in `.cargo/config.toml`).
//!
//! Every test checks something that would come out differently if the coroutine did
//! not really suspend: a timer that fires only while the sync code is parked inside
//! `wait_promise`, completion orders, values kept in stack frames across the wait.

use js_sys::{Array, Promise};
use stackful::generator::{StackfulGenerator, YieldHandle};
use stackful::{stackful, wait, Builder};
use stackful_web::demo;
use stackful_web::promise::{
    fetch, js_error_message, sleep_ms, spawn, timeout, to_promise, wait_promise, StreamReader,
};
use std::cell::{Cell, RefCell};
use std::io::{BufRead, Read};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen(inline_js = r#"
let ticks = 0;
export function tick_after(ms) { setTimeout(() => { ticks += 1; }, ms); }
export function ticks_so_far() { return ticks; }
export function resolve_after(ms, v) { return new Promise(r => setTimeout(() => r(v), ms)); }
export function reject_after(ms, msg) {
    return new Promise((_, reject) => setTimeout(() => reject(new Error(msg)), ms));
}
export function now() { return Date.now(); }
// A byte stream that delivers `chunks` (strings) one per `ms`, then ends or, with
// `fail`, errors with `new Error(fail)`.
export function chunked_stream(chunks, ms, fail) {
    const enc = new TextEncoder();
    let i = 0;
    return new ReadableStream({
        pull(controller) {
            return new Promise(r => setTimeout(r, ms)).then(() => {
                if (i < chunks.length) controller.enqueue(enc.encode(chunks[i++]));
                else if (fail) controller.error(new Error(fail));
                else controller.close();
            });
        },
    });
}
export function response_of(stream) { return new Response(stream); }
// An HTTP server on 127.0.0.1 (node): /lines sends 50 numbered lines in 5 writes
// 5 ms apart, anything else is a 404. Resolves to [base URL, close function].
export async function start_server() {
    const http = await import('node:http');
    const server = http.createServer(async (req, res) => {
        if (req.url !== '/lines') { res.writeHead(404).end('nope'); return; }
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let part = 0; part < 5; part++) {
            let text = '';
            for (let i = part * 10; i < part * 10 + 10; i++) text += `line ${i}\n`;
            res.write(text);
            await new Promise(r => setTimeout(r, 5));
        }
        res.end();
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    return [`http://127.0.0.1:${server.address().port}`, () => server.close()];
}
"#)]
extern "C" {
    fn tick_after(ms: u32);
    fn ticks_so_far() -> u32;
    fn resolve_after(ms: u32, v: JsValue) -> Promise;
    fn reject_after(ms: u32, msg: &str) -> Promise;
    fn now() -> f64;
    fn chunked_stream(chunks: Array, ms: u32, fail: Option<String>) -> web_sys::ReadableStream;
    fn response_of(stream: &web_sys::ReadableStream) -> web_sys::Response;
    fn start_server() -> Promise;
}

fn strings(items: &[&str]) -> Array {
    items.iter().map(|s| JsValue::from_str(s)).collect()
}

/// Recurses `depth` frames, each holding a 64-byte array on the shadow stack, waits at
/// the bottom, then checks every frame's array on the way up: a wait that lost or
/// mixed up `__stack_pointer` or the frames would show here.
#[inline(never)]
fn deep_wait(depth: u32, ms: u32) -> u64 {
    let mine = [depth as u8; 64];
    let below = if depth == 0 {
        wait_promise(&resolve_after(ms, JsValue::from(7)))
            .unwrap()
            .as_f64()
            .unwrap() as u64
    } else {
        deep_wait(std::hint::black_box(depth - 1), ms)
    };
    assert!(
        std::hint::black_box(&mine)
            .iter()
            .all(|&b| b == depth as u8),
        "frame {depth} corrupted across the wait"
    );
    below + u64::from(mine[63])
}

#[wasm_bindgen_test]
async fn resolve_reaches_sync_code_after_the_event_loop_ran() {
    let got = stackful(|| {
        tick_after(0);
        let before = ticks_so_far();
        // The timer of `tick_after` fires only while this stack is suspended.
        let v = wait_promise(&resolve_after(20, JsValue::from_str("forty-two"))).unwrap();
        (before, ticks_so_far(), v.as_string().unwrap())
    })
    .await;
    assert_eq!(
        got.1,
        got.0 + 1,
        "the event loop did not run during the wait"
    );
    assert_eq!(got.2, "forty-two");
}

#[wasm_bindgen_test]
async fn deep_stack_survives_waits() {
    let sum = stackful(|| {
        let mut sum = 0;
        for round in 0..3 {
            sum += deep_wait(100, round);
        }
        sum
    })
    .await;
    // Each round: 7 from the promise plus 0 + 1 + ... + 100 from the frames.
    assert_eq!(sum, 3 * (7 + 5050));
}

#[wasm_bindgen_test]
async fn reject_is_err_with_the_js_error() {
    let (msg, after) = stackful(|| {
        let err = wait_promise(&reject_after(5, "boom")).unwrap_err();
        let err: js_sys::Error = err.dyn_into().expect("the rejection reason is an Error");
        // The coroutine carries on normally after a rejection.
        let after = wait_promise(&resolve_after(1, JsValue::from(3))).unwrap();
        (String::from(err.message()), after.as_f64().unwrap())
    })
    .await;
    assert_eq!(msg, "boom");
    assert_eq!(after, 3.0);
}

#[wasm_bindgen_test]
async fn to_promise_rejects_with_the_coroutines_err() {
    let p = to_promise(|| {
        wait_promise(&reject_after(2, "no such file"))?;
        Ok(JsValue::from_str("unreachable"))
    });
    let err = JsFuture::from(p).await.unwrap_err();
    assert_eq!(js_error_message(&err), "no such file");
}

#[wasm_bindgen_test]
async fn sleep_ms_sleeps() {
    let elapsed = stackful(|| {
        let t0 = now();
        sleep_ms(50);
        now() - t0
    })
    .await;
    // setTimeout may fire a little early by the clock's rounding, never 25 ms early.
    assert!(elapsed >= 45.0, "slept only {elapsed} ms");
}

#[wasm_bindgen_test]
async fn hundred_concurrent_coroutines() {
    const N: u32 = 100;
    let finished = Rc::new(RefCell::new(Vec::new()));
    let t0 = now();
    let promises: Array = (0..N)
        .map(|i| {
            let finished = finished.clone();
            to_promise(move || {
                // Later-started coroutines sleep less, so they finish first if and
                // only if they really run concurrently.
                let mut acc = 0.0;
                for step in 0..3 {
                    let v = wait_promise(&resolve_after(2 * (N - i) + step, JsValue::from(i)))?;
                    acc += v.as_f64().unwrap();
                }
                finished.borrow_mut().push(i);
                Ok(JsValue::from(acc + f64::from(i * 1000)))
            })
        })
        .map(JsValue::from)
        .collect();
    let all = JsFuture::from(Promise::all(&promises)).await.unwrap();
    let elapsed = now() - t0;
    let values: Vec<f64> = Array::from(&all)
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = (0..N).map(|i| f64::from(3 * i + i * 1000)).collect();
    assert_eq!(values, expected);

    let order = finished.borrow().clone();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..N).collect::<Vec<_>>(),
        "each finished exactly once"
    );
    // Started last, done first: the ten shortest sleepers (about 60 ms in all) all
    // finish before any of the ten longest (about 550 ms). Run one after the other,
    // in start order, it would be the reverse.
    let position = |i: u32| order.iter().position(|&j| j == i).unwrap();
    let last_short = (N - 10..N).map(position).max().unwrap();
    let first_long = (0..10).map(position).min().unwrap();
    assert!(last_short < first_long, "completion order: {order:?}");
    // Run one after the other they would take the sum of all sleeps (> 30 s).
    assert!(elapsed < 3000.0, "took {elapsed} ms: not concurrent");
}

#[wasm_bindgen_test]
async fn spawn_local_drives_a_coroutine() {
    let result = Rc::new(Cell::new(0.0));
    let (tx, done) = {
        let mut resolve = None;
        let done = Promise::new(&mut |r, _| resolve = Some(r));
        (resolve.unwrap(), done)
    };
    let r = result.clone();
    spawn(move || {
        let v = wait_promise(&resolve_after(3, JsValue::from(20))).unwrap();
        sleep_ms(1);
        r.set(v.as_f64().unwrap() + 1.0);
        tx.call0(&JsValue::NULL).unwrap();
    });
    assert_eq!(
        result.get(),
        0.0,
        "spawn_local does not run the coroutine inline"
    );
    JsFuture::from(done).await.unwrap();
    assert_eq!(result.get(), 21.0);
}

#[wasm_bindgen_test]
async fn nested_coroutines_wait_on_promises() {
    let got = stackful(|| {
        let a = wait_promise(&resolve_after(2, JsValue::from(1)))
            .unwrap()
            .as_f64()
            .unwrap();
        // A coroutine inside a coroutine: `wait` polls the inner StackfulFuture; when
        // the inner one suspends on its promise, both stacks are suspended.
        let b = wait(stackful(|| {
            let x = wait_promise(&resolve_after(3, JsValue::from(10))).unwrap();
            // Three levels deep, with a smaller stack from the Builder.
            let y = wait(
                Builder::new()
                    .stack_size(64 * 1024)
                    .future(|| wait_promise(&resolve_after(1, JsValue::from(100))).unwrap())
                    .unwrap(),
            );
            x.as_f64().unwrap() + y.as_f64().unwrap()
        }));
        a + b
    })
    .await;
    assert_eq!(got, 111.0);
}

#[wasm_bindgen_test]
async fn generator_inside_a_future_waits_on_promises() {
    let got: Vec<f64> = stackful(|| {
        // The generator's own code waits on promises between yields: each wait
        // suspends the generator's stack and the future's stack under it.
        let gen = StackfulGenerator::new(|y: &YieldHandle<f64>, ()| {
            for i in 0..5 {
                let v = wait_promise(&resolve_after(1 + i, JsValue::from(i * i))).unwrap();
                y.yeet(v.as_f64().unwrap());
            }
        });
        gen.collect()
    })
    .await;
    assert_eq!(got, vec![0.0, 1.0, 4.0, 9.0, 16.0]);
}

#[wasm_bindgen_test]
async fn stream_reader_reads_chunk_by_chunk() {
    let (text, lines, chunks) = stackful(|| {
        let stream = chunked_stream(strings(&["hel", "lo\nwor", "", "ld\n", "last"]), 2, None);
        let mut reader = StreamReader::new(&stream).unwrap();
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        let lines: Vec<String> = format!("{first}{rest}").lines().map(String::from).collect();
        (first + &rest, lines, reader.chunks())
    })
    .await;
    assert_eq!(text, "hello\nworld\nlast");
    assert_eq!(lines, ["hello", "world", "last"]);
    // Four non-empty chunks and an empty one: every one is a separate wait.
    assert_eq!(chunks, 5);
}

#[wasm_bindgen_test]
async fn stream_error_is_an_io_error() {
    let (first, err) = stackful(|| {
        let stream = chunked_stream(strings(&["ok\n"]), 1, Some("connection reset".into()));
        let mut reader = StreamReader::from_response(&response_of(&stream)).unwrap();
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let err = reader.read(&mut [0; 16]).unwrap_err();
        (first, err.to_string())
    })
    .await;
    assert_eq!(first, "ok\n");
    assert_eq!(err, "connection reset");
}

#[wasm_bindgen_test]
async fn demo_parser_over_a_chunked_response() {
    // Lines split across chunk boundaries at odd places.
    let input = "Oslo;-3.5\nLima;20.1\nOslo;4.0\nLi";
    let input2 = "ma;19.9\nOslo;-0.2\n";
    let (summary, progress) = stackful(move || {
        let stream = chunked_stream(strings(&[input, input2]), 3, None);
        let mut reader = StreamReader::from_response(&response_of(&stream)).unwrap();
        let mut progress = Vec::new();
        let s = demo::parse_measurements(&mut reader, 2, |rows| {
            progress.push(rows);
            sleep_ms(1);
        })
        .unwrap();
        (demo::render(&s), progress)
    })
    .await;
    assert_eq!(
        summary,
        "5 measurements from 2 stations\nLima 19.9/20.0/20.1 (2)\nOslo -3.5/0.1/4.0 (3)\n"
    );
    assert_eq!(progress, [2, 4]);
}

#[wasm_bindgen_test]
async fn demo_parser_reports_bad_input() {
    let err = stackful(|| {
        let stream = chunked_stream(strings(&["Oslo;1.0\nOslo;warm\n"]), 1, None);
        let mut reader = StreamReader::new(&stream).unwrap();
        demo::parse_measurements(&mut reader, 0, |_| {})
            .unwrap_err()
            .to_string()
    })
    .await;
    assert_eq!(err, "line 2: bad temperature: \"Oslo;warm\"");
}

#[wasm_bindgen_test]
async fn dropping_a_suspended_coroutine_leaks_its_stack() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let before = stackful::leaked_stacks();
    let mut fut = Box::pin(stackful(|| {
        wait_promise(&timeout(10)).unwrap();
    }));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(fut.as_mut().poll(&mut cx) == Poll::Pending);
    // wasm is panic = "abort": the suspended stack cannot be unwound, so it is leaked
    // (and counted) rather than freed under frames that may still be referenced.
    drop(fut);
    assert_eq!(stackful::leaked_stacks(), before + 1);
    // A finished coroutine leaks nothing.
    stackful(|| sleep_ms(1)).await;
    assert_eq!(stackful::leaked_stacks(), before + 1);
}

#[wasm_bindgen_test]
async fn fetch_and_read_the_body_as_it_arrives() {
    let started = Array::from(&JsFuture::from(start_server()).await.unwrap());
    let base = started.get(0).as_string().unwrap();
    let close: js_sys::Function = started.get(1).dyn_into().unwrap();
    let (lines, chunks, missing) = stackful(move || {
        let response = fetch(&format!("{base}/lines")).unwrap();
        let reader = StreamReader::from_response(&response).unwrap();
        let mut reader = std::io::BufReader::with_capacity(7, reader);
        let lines: Vec<String> = (&mut reader).lines().map(Result::unwrap).collect();
        let chunks = reader.get_ref().chunks();
        let missing = fetch(&format!("{base}/missing")).map(|_| ()).unwrap_err();
        (lines, chunks, js_error_message(&missing))
    })
    .await;
    close.call0(&JsValue::NULL).unwrap();
    assert_eq!(
        lines,
        (0..50).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    // Five writes 5 ms apart: node's fetch delivers them as separate chunks (or a few
    // merged), so the reader waited more than once.
    assert!(chunks > 1, "{chunks} chunk(s)");
    assert!(missing.ends_with("HTTP 404 Not Found"), "{missing}");
}
