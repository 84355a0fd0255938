//! stackful in the browser: synchronous Rust waiting on JavaScript promises.
//!
//! Built for `wasm32-unknown-unknown` with wasm-bindgen, after Binaryen's asyncify
//! pass (which is what lets stackful suspend a coroutine's stack on wasm). See
//! `README.md` in this directory and `run.sh`.
//!
//! * [`promise`]: the reusable bridge (`wait_promise`, `sleep_ms`, `fetch`,
//!   `StreamReader`, `to_promise`, `spawn`).
//! * [`demo`]: the demo's synchronous parser.
//! * [`run_demo`]: the page's entry point.

use js_sys::{Object, Reflect};
use std::io;
use wasm_bindgen::prelude::*;

pub mod demo;
pub mod promise;

use promise::{fetch, sleep_ms, to_promise, StreamReader};

/// Rows between two progress reports (each followed by a short sleep).
const PROGRESS_EVERY: u64 = 1000;

/// Fetches `url` and parses it as measurements (see [`demo`]) with synchronous code
/// that reads the response body chunk by chunk as it arrives, reporting progress to
/// `on_progress(rows)` every 1000 rows and then sleeping 20 ms on a `setTimeout`
/// promise (standing in for any other asynchronous call).
///
/// Returns a promise of `{ summary, rows, chunks, sleeps, elapsedMs }`; it rejects
/// with an `Error` if the fetch, the stream or the parse fails.
#[wasm_bindgen]
pub fn run_demo(url: String, on_progress: js_sys::Function) -> js_sys::Promise {
    to_promise(move || {
        let start = js_sys::Date::now();
        let response = fetch(&url)?;
        let mut body = StreamReader::from_response(&response)?;
        let mut sleeps = 0u32;
        let summary = demo::parse_measurements(&mut body, PROGRESS_EVERY, |rows| {
            // A JS exception from the callback is the page's business, not ours.
            let _ = on_progress.call1(&JsValue::NULL, &JsValue::from_f64(rows as f64));
            sleep_ms(20);
            sleeps += 1;
        })
        .map_err(|e: io::Error| js_sys::Error::new(&format!("{url}: {e}")))?;

        let out = Object::new();
        let set = |k: &str, v: JsValue| Reflect::set(&out, &JsValue::from_str(k), &v);
        set("summary", demo::render(&summary).into())?;
        set("rows", JsValue::from_f64(summary.rows as f64))?;
        set("chunks", JsValue::from_f64(body.chunks() as f64))?;
        set("sleeps", JsValue::from_f64(f64::from(sleeps)))?;
        set("elapsedMs", JsValue::from_f64(js_sys::Date::now() - start))?;
        Ok(out.into())
    })
}

/// How many suspended coroutines were dropped without being finished (their stacks
/// are leaked: wasm is `panic = "abort"`, so they cannot be unwound).
#[wasm_bindgen]
pub fn leaked_stacks() -> f64 {
    stackful::leaked_stacks() as f64
}
