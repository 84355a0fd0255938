//! The bridge between stackful coroutines and JavaScript promises.
//!
//! Synchronous Rust running inside a [`stackful`](stackful::stackful) coroutine calls
//! [`wait_promise`] and its whole stack is suspended (by the asyncify backend) until
//! the promise settles; the browser's event loop keeps running meanwhile. The other
//! direction, [`to_promise`] and [`spawn`], starts such a coroutine from JavaScript's
//! side: `wasm_bindgen_futures` drives its `StackfulFuture` like any other future.
//!
//! On top of that: [`sleep_ms`] (a `setTimeout` promise), [`fetch`] and
//! [`StreamReader`], a [`std::io::Read`]/[`BufRead`] over a `ReadableStream` (such as
//! a `fetch` response body) that waits for the next chunk whenever its buffer is
//! empty, so any synchronous parser can consume a download as it arrives.

use js_sys::{Promise, Reflect, Uint8Array};
use std::io::{self, BufRead, Read};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader, Response};

#[wasm_bindgen]
extern "C" {
    // Globals of both the browser and node, called unbound (no `window` needed).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;

    #[wasm_bindgen(js_name = fetch)]
    fn fetch_js(url: &str) -> Promise;
}

#[wasm_bindgen(
    inline_js = "export function cancel_quietly(reader) { reader.cancel().catch(() => {}); }"
)]
extern "C" {
    // `cancel()` rejects if the stream already failed: no unhandled rejection for that.
    fn cancel_quietly(reader: &ReadableStreamDefaultReader);
}

/// Waits until `promise` settles: `Ok` with its value if it resolves, `Err` with the
/// rejection reason (usually a JS `Error`) if it rejects.
///
/// Only the coroutine's stack is suspended; the event loop runs other tasks, timers
/// and other coroutines until the promise settles.
///
/// # Panics
/// Outside a stackful coroutine: there the calling thread would have to block, and the
/// one thread of a page cannot block until its own event loop settles a promise.
pub fn wait_promise(promise: &Promise) -> Result<JsValue, JsValue> {
    assert!(
        stackful::in_stackful(),
        "wait_promise called outside a stackful coroutine: run the code with \
         `to_promise`, `spawn` or `stackful::stackful(..)` awaited by an executor"
    );
    stackful::wait(JsFuture::from(promise.clone()))
}

/// A promise that resolves to `undefined` after `ms` milliseconds (`setTimeout`).
pub fn timeout(ms: i32) -> Promise {
    Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, ms);
    })
}

/// Sleeps `ms` milliseconds: waits on a `setTimeout` promise, so the page stays
/// responsive (and other coroutines run) meanwhile.
pub fn sleep_ms(ms: i32) {
    wait_promise(&timeout(ms)).expect("a setTimeout promise does not reject");
}

/// Runs `f` on a new coroutine and returns a promise of its result, for JavaScript to
/// `await`. `f` may call [`wait_promise`] (and [`stackful::wait`]) anywhere down its
/// call stack.
pub fn to_promise<F>(f: F) -> Promise
where
    F: FnOnce() -> Result<JsValue, JsValue> + 'static,
{
    wasm_bindgen_futures::future_to_promise(stackful::stackful(f))
}

/// Runs `f` on a new coroutine driven by `wasm_bindgen_futures::spawn_local`, without
/// a result.
pub fn spawn<F>(f: F)
where
    F: FnOnce() + 'static,
{
    wasm_bindgen_futures::spawn_local(stackful::stackful(f));
}

/// `fetch(url)`, waited on: the response once its headers arrived (the body is read
/// later, e.g. with [`StreamReader::from_response`]). A status other than 2xx is an
/// error.
pub fn fetch(url: &str) -> Result<Response, JsValue> {
    let response: Response = wait_promise(&fetch_js(url))?.dyn_into()?;
    if !response.ok() {
        return Err(js_sys::Error::new(&format!(
            "fetch {url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ))
        .into());
    }
    Ok(response)
}

/// The message of a JS error value, for `io::Error`s and reports.
pub fn js_error_message(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        String::from(e.message())
    } else if let Some(s) = err.as_string() {
        s
    } else {
        format!("{err:?}")
    }
}

fn to_io(err: JsValue) -> io::Error {
    io::Error::other(js_error_message(&err))
}

/// A synchronous [`Read`] + [`BufRead`] over a `ReadableStream` of bytes (such as a
/// `fetch` response body). When its buffer is empty it waits for the stream's next
/// chunk with [`wait_promise`], so it must be used inside a coroutine. An error of the
/// stream (a dropped connection, an aborted fetch) becomes an `io::Error`.
pub struct StreamReader {
    reader: ReadableStreamDefaultReader,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    chunks: usize,
}

impl StreamReader {
    /// Locks `stream` and reads from it.
    pub fn new(stream: &ReadableStream) -> Result<Self, JsValue> {
        let reader: ReadableStreamDefaultReader = stream.get_reader().dyn_into()?;
        Ok(StreamReader {
            reader,
            chunk: Vec::new(),
            pos: 0,
            done: false,
            chunks: 0,
        })
    }

    /// Reads the body of `response`.
    pub fn from_response(response: &Response) -> Result<Self, JsValue> {
        match response.body() {
            Some(body) => Self::new(&body),
            None => Err(js_sys::Error::new("the response has no body").into()),
        }
    }

    /// How many chunks the stream delivered so far (each one a wait).
    pub fn chunks(&self) -> usize {
        self.chunks
    }
}

impl BufRead for StreamReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // A stream may deliver empty chunks: wait until there are bytes or the end.
        while self.pos == self.chunk.len() && !self.done {
            let result = wait_promise(&self.reader.read()).map_err(to_io)?;
            let done = Reflect::get(&result, &JsValue::from_str("done")).map_err(to_io)?;
            if done.is_truthy() {
                self.done = true;
                break;
            }
            let value = Reflect::get(&result, &JsValue::from_str("value")).map_err(to_io)?;
            let bytes: Uint8Array = value
                .dyn_into()
                .map_err(|v| io::Error::other(format!("a stream chunk is not bytes: {v:?}")))?;
            self.chunk.resize(bytes.length() as usize, 0);
            bytes.copy_to(&mut self.chunk);
            self.pos = 0;
            self.chunks += 1;
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        if !self.done {
            // Stop the download; nobody waits for the cancellation to finish.
            cancel_quietly(&self.reader);
        }
    }
}
