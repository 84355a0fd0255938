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
//! ## How it works
//!
//! Each coroutine owns a stack (by default 2 MiB of address space from `mmap`, with a
//! guard page; only touched pages use memory, and stacks are pooled per thread). A
//! context switch is a call into a few lines of assembly per architecture
//! (`asm/x86_64.S`, `asm/aarch64.S`) that saves the callee-saved registers on one
//! stack and restores them from the other. DWARF CFI in that assembly lets debuggers,
//! panics' backtraces and profilers walk from a coroutine's frames into the frames of
//! whoever resumed it.
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
//!   with Builder::stack_size` and aborts. Elsewhere, and for custom stacks, the
//!   process dies with `SIGSEGV`; memory is never silently corrupted (given a guard).
//! * **Exhaustion** (address space, `RLIMIT_AS`, the `vm.max_map_count` mapping
//!   limit): [`Builder`] returns the `io::Error`; the plain constructors
//!   ([`stackful`], [`StackfulGenerator::new`]) panic with a message that says so.
//! * **Misuse** panics with a message naming it: resuming a completed or panicked
//!   generator, polling a completed `StackfulFuture`, resuming a generator from inside
//!   itself, calling `wait` from inside a `poll` that `wait` is running.
//! * The floating-point environment (MXCSR/x87 control word, FPCR) is thread state:
//!   a coroutine shares it with the thread that resumes it, as `<fenv.h>` defines it.
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
pub mod stack;
pub mod stream;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
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
