//! # Stackful coroutines that bridge sync and async
//!
//! Synchronous code — a parser over [`std::io::Read`], a visitor, a C library with
//! callbacks, an interpreter — runs on a stack of its own. When it needs a value that
//! only an async API can give, it calls [`wait`]`(future)` and the whole stack is
//! suspended until the future is ready. [`stackful`]`(|| sync_code())` turns such code
//! into a [`Future`](std::future::Future) that any executor (tokio, smol, futures)
//! can poll.
//!
//! ```
//! use stackful::{stackful, wait};
//! use std::io::Read;
//!
//! /// A synchronous `Read` over an async source: every read waits on a future.
//! struct SyncRead<R>(R);
//!
//! impl<R: futures::io::AsyncRead + Unpin> Read for SyncRead<R> {
//!     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
//!         use futures::io::AsyncReadExt;
//!         wait(self.0.read(buf))
//!     }
//! }
//!
//! let source = futures::io::Cursor::new(vec![0xef, 0xbe, 0xad, 0xde]);
//! let n = futures::executor::block_on(stackful(move || {
//!     let mut word = [0; 4];
//!     SyncRead(source).read_exact(&mut word).unwrap(); // sync code, suspends on reads
//!     u32::from_le_bytes(word)
//! }));
//! assert_eq!(n, 0xdeadbeef);
//! ```
//!
//! The same machinery gives generators on stable Rust ([`generator`]) and streams
//! written as synchronous code that yields items ([`stream()`]).
//!
//! ## The API
//!
//! * [`wait`], [`stackful`], [`StackfulFuture`] (`future` module) and
//!   [`generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle}`](generator)
//!   keep the shapes of stackful 0.1.
//! * [`Builder`] sets the stack size and constructs fallibly (`io::Result`);
//!   [`stack`] has the stack types, the per-thread pool and the [`Stack`](stack::Stack)
//!   trait for custom stacks.
//! * [`in_stackful`] tells whether `wait` would suspend; [`yield_now`] lets other
//!   tasks run.
//!
//! ## Executors
//!
//! Coroutines are `!Send` (code on their stacks may hold references to
//! thread-locals), so they run on single-threaded executors or through
//! `spawn_local`: tokio's `current_thread` runtime or a `LocalSet`, smol's
//! `LocalExecutor` or `block_on`, `futures::executor::LocalPool` or `block_on`.
//! The futures that `wait` polls may be anything the executor supports, e.g. tokio
//! I/O and timers inside a tokio runtime.
//!
//! ## Using with tokio, smol, futures and wasm-bindgen-futures
//!
//! A [`StackfulFuture`] is `!Send`. A suspended coroutine is a stack whose frames may
//! hold references into the thread-locals of the thread it ran on (this crate's own
//! bookkeeping among them; any `thread_local!` a caller borrowed across a `wait`), so
//! it must be resumed on that thread. Work-stealing executors move tasks between
//! worker threads between two polls, which is why their `spawn` requires `Send` and
//! will not accept one. Every executor has a single-threaded way that does:
//!
//! **tokio**: a `current_thread` runtime's `block_on`, or `spawn_local` on a
//! `LocalSet` (which also runs inside a multi-thread runtime, on the thread that
//! drives it). tokio's IO and timers work inside, since `wait` polls them with the
//! task's own context inside the runtime. Outside a coroutine `wait` blocks the
//! thread: never call it from async code on a runtime thread (on a `current_thread`
//! runtime nothing would drive the IO or timer it waits for).
//!
//! ```
//! use stackful::{stackful, wait};
//! use std::time::Duration;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! // One coroutine: block on it.
//! let one = rt.block_on(stackful(|| {
//!     wait(tokio::time::sleep(Duration::from_millis(1)));
//!     1
//! }));
//! // Many, as tasks: spawn_local on a LocalSet (`tokio::spawn` would not compile).
//! let local = tokio::task::LocalSet::new();
//! let sum = local.block_on(&rt, async {
//!     let tasks: Vec<_> = (0..3)
//!         .map(|i| tokio::task::spawn_local(stackful(move || wait(async move { i * 10 }))))
//!         .collect();
//!     let mut sum = 0;
//!     for task in tasks {
//!         sum += task.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!((one, sum), (1, 30));
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! With `#[tokio::main(flavor = "current_thread")]`, put the coroutines on a
//! `LocalSet` with `LocalSet::run_until` (or `block_on` them as above).
//!
//! **smol**: `smol::block_on`, or a `LocalExecutor` (`smol::spawn` and `Executor`
//! require `Send`). smol's `Async` IO and `Timer` work inside.
//!
//! ```
//! use stackful::{stackful, wait};
//!
//! let ex = smol::LocalExecutor::new();
//! let a = ex.spawn(stackful(|| wait(async { 2 })));
//! let b = ex.spawn(stackful(|| {
//!     wait(smol::Timer::after(std::time::Duration::from_millis(1)));
//!     3
//! }));
//! let product = smol::block_on(ex.run(async { a.await * b.await }));
//! assert_eq!(product, 6);
//! ```
//!
//! **futures**: `futures::executor::block_on`, or a `LocalPool` with
//! `LocalSpawnExt::spawn_local` (`ThreadPool` requires `Send`).
//!
//! ```
//! use futures::executor::LocalPool;
//! use futures::task::LocalSpawnExt;
//! use stackful::{stackful, wait};
//!
//! let mut pool = LocalPool::new();
//! let (tx, rx) = futures::channel::oneshot::channel();
//! let got = pool
//!     .spawner()
//!     .spawn_local_with_handle(stackful(move || wait(rx).unwrap() + 1))
//!     .unwrap();
//! pool.spawner()
//!     .spawn_local(async move { tx.send(41).unwrap() })
//!     .unwrap();
//! assert_eq!(pool.run_until(got), 42);
//! ```
//!
//! **wasm-bindgen-futures**: `wasm_bindgen_futures::spawn_local`, which takes
//! `!Send` futures. **This crate does not support `wasm32` yet**: WebAssembly has no
//! instruction to switch stacks (that needs the stack-switching proposal or a
//! transformation such as Asyncify), so the build fails on that target today. When
//! it is supported, the recipe will be:
//!
//! ```ignore
//! wasm_bindgen_futures::spawn_local(async {
//!     let text = stackful::stackful(|| sync_code_that_waits()).await;
//!     web_sys::console::log_1(&text.into());
//! });
//! ```
//!
//! With the `futures-io` and `tokio` features, the `stackful::io` module has
//! ready-made adapters: std `Read`/`BufRead`/`Write`/`Seek` over async IO (every call
//! waits), and async readers and writers driving a synchronous `Read` or `Write` on a
//! coroutine.
//!
//! ## How it works
//!
//! Each coroutine owns a stack (by default 2 MiB of address space from `mmap`, with a
//! guard page; only touched pages use memory, and stacks are pooled per thread; on
//! Windows committed memory from `VirtualAlloc`). A context switch is a few lines of
//! assembly per architecture (inline in `src/switch_out.rs` on x86_64 and aarch64,
//! with the coroutine start in `asm/x86_64.S`/`asm/aarch64.S`; `asm/riscv64.S`,
//! `asm/x86.S`, `asm/x86_64_windows.S` elsewhere) that saves the callee-saved
//! registers on one stack and restores them from the other. DWARF CFI in that
//! assembly (SEH unwind data on Windows) lets debuggers, panics' backtraces and
//! profilers walk from a coroutine's frames into the frames of whoever resumed it.
//!
//! ## Safety and failure modes
//!
//! * **Panics** inside a coroutine propagate to whoever resumed or polled it, with the
//!   original payload; the coroutine is finished afterwards.
//! * **Dropping** a suspended coroutine unwinds its stack with a private payload, so
//!   every destructor on it runs. If user code catches that unwind
//!   (`catch_unwind`) the coroutine still ends: any further `wait`/`yeet` on it
//!   panics with a message, and the drop completes once the closure returns or
//!   unwinds. A destructor that calls `wait`/`yeet` during that unwind cannot
//!   suspend: it panics, which Rust turns into an abort (a panic while unwinding).
//! * A coroutine may **suspend while it unwinds** from its own panic (a destructor
//!   that yields or waits, e.g. a writer flushing on drop). Until it finishes
//!   unwinding, the thread's panic count includes that panic, so its resumer sees
//!   `std::thread::panicking() == true`; resume it to completion to end that state.
//!   Dropping it in that state aborts the process with a message saying so (it
//!   cannot be unwound a second time).
//! * With **`panic = "abort"`** a suspended coroutine cannot be unwound; dropping it
//!   leaks its stack (never frees memory that a pinned value on it may still be
//!   referenced through) and counts it in [`leaked_stacks`].
//! * **Stack overflow** hits the guard page below every default stack. On Linux a
//!   `SIGSEGV`/`SIGBUS` handler (installed lazily, on an alternate signal stack,
//!   chained to the previous handler so Rust's own thread-overflow message still
//!   works) prints `stackful: coroutine stack overflow (stack size N bytes) — raise it
//!   with Builder::stack_size` and aborts. On Windows Rust's runtime reports the
//!   overflow and aborts. Elsewhere, and for custom stacks, the process dies with
//!   `SIGSEGV`; memory is never silently corrupted (given a guard).
//! * **Exhaustion** (address space, `RLIMIT_AS`, the `vm.max_map_count` mapping
//!   limit): [`Builder`] returns the `io::Error`; the plain constructors
//!   ([`stackful`], [`StackfulGenerator::new`]) panic with a message that says so.
//! * **Misuse** panics with a message naming it: resuming a completed or panicked
//!   generator, polling a completed `StackfulFuture`, resuming a generator from inside
//!   itself, calling `wait` from inside a `poll` that `wait` is running, and yielding
//!   from inside a poll that started after the coroutine was resumed (a future it
//!   polls, or `wait(async { y.yeet(x) })`), which would leave that poll half-done.
//! * The floating-point environment (MXCSR/x87 control word, FPCR, fcsr) is thread
//!   state: a coroutine shares it with the thread that resumes it, as `<fenv.h>`
//!   defines it.
//!
//! [`StackfulFuture`]: future::StackfulFuture
//! [`StackfulGenerator::new`]: generator::StackfulGenerator::new

#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod arch;
mod block_on;
mod builder;
mod fiber;
pub mod future;
pub mod generator;
#[cfg(any(feature = "futures-io", feature = "tokio"))]
pub mod io;
pub mod stack;
pub mod stream;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg(not(windows))]
mod switch_out;

pub use builder::Builder;
pub use fiber::leaked_stacks;
pub use future::{in_stackful, stackful, wait, yield_now};
pub use stream::{stream, StackfulStream, StreamHandle};

/// The panic of the infallible constructors when no stack can be had.
#[cold]
#[track_caller]
pub(crate) fn allocation_failed(what: &str, err: std::io::Error) -> ! {
    panic!("{what}: could not allocate a coroutine stack ({err}); use stackful::Builder to handle this as an error")
}
