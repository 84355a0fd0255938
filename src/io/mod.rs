//! Synchronous IO over async IO and back (features `futures-io`, `tokio`).
//!
//! * [`SyncIo`] (feature `futures-io`) and [`TokioSyncIo`] (feature `tokio`) give
//!   `std::io::{Read, BufRead, Write, Seek}` over the async IO traits of
//!   [`futures_io`] and of [`tokio::io`]. Every operation [`wait`](crate::wait)s on
//!   the async one, so inside a coroutine it suspends the coroutine, and anywhere
//!   else it blocks the thread. Any synchronous parser, decoder or protocol handler
//!   can then work on sockets, pipes and files of an async runtime.
//! * [`AsyncReader`] and [`AsyncWriter`] go the other way: they run a synchronous
//!   `Read` or `Write` on a coroutine of their own and implement the async traits of
//!   whichever features are enabled, so a synchronous codec can be handed to async
//!   code. The synchronous side may itself read from or write to a `SyncIo`.
//!
//! Decoding gzip-compressed JSON from an async source with synchronous crates
//! (`flate2`, `serde_json`) inside a coroutine:
//!
//! ```
//! # #[cfg(feature = "futures-io")] {
//! use flate2::{read::GzDecoder, write::GzEncoder, Compression};
//! use stackful::io::SyncIo;
//! use std::io::{BufReader, Write};
//!
//! let mut gz = GzEncoder::new(Vec::new(), Compression::default());
//! gz.write_all(br#"{"name": "stackful", "stars": [1, 2, 3]}"#)?;
//! let compressed = futures::io::Cursor::new(gz.finish()?); // any futures-io AsyncRead
//!
//! let value: serde_json::Value = futures::executor::block_on(stackful::stackful(move || {
//!     let json = GzDecoder::new(BufReader::new(SyncIo::new(compressed)));
//!     serde_json::from_reader(json)
//! }))?;
//! assert_eq!(value["stars"][2], 3);
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! `serde_json::from_reader` reads a byte at a time: give it a `BufReader` (or a
//! reader that is already buffered), or each byte becomes an async read.
//!
//! ## While a coroutine unwinds
//!
//! A coroutine that is being dropped, or through which a panic propagates, cannot
//! suspend; [`wait`](crate::wait) panics there, and a panic in a destructor during an
//! unwind aborts the process. Destructors that write (`BufWriter`, compression
//! encoders finishing on drop) do exactly that, so the adapters of this module do
//! not call `wait` then: the operation is polled once, and if it is not ready at once
//! it fails with an [`io::Error`](std::io::Error) (which such destructors ignore).
//!
//! ## Executors
//!
//! Coroutines, and so the adapters' futures, are `!Send`: run them on a
//! single-threaded executor or through `spawn_local`. See the
//! [crate documentation](crate#using-with-tokio-smol-futures-and-wasm-bindgen-futures)
//! for the recipe for each executor.

// With only one of the features, the docs' links to the other one's types cannot
// resolve (they show as plain text); docs.rs builds with both.
#![cfg_attr(
    not(all(feature = "futures-io", feature = "tokio")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod reader;
mod sync_io;
mod writer;

pub use reader::{AsyncReader, DEFAULT_BUF_SIZE};
#[cfg(feature = "futures-io")]
pub use sync_io::SyncIo;
#[cfg(feature = "tokio")]
pub use sync_io::TokioSyncIo;
pub use writer::AsyncWriter;
