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
//! * [`budget`]: a cooperative yield budget for CPU-bound synchronous code
//!   ([`budget::consume`] at loop back-edges yields every N units;
//!   [`Builder::yield_budget`] sets N per coroutine).
//!
//! ## Executors
//!
//! Coroutines are `!Send` (code on their stacks may hold references to
//! thread-locals; [`SendFuture`] and [`SendStream`] are the `unsafe` opt-in for
//! work-stealing executors), so they run on single-threaded executors or through
//! `spawn_local`: tokio's `current_thread` runtime or a `LocalSet`, smol's
//! `LocalExecutor` or `block_on`, `futures::executor::LocalPool` or `block_on`.
//! The futures that `wait` polls may be anything the executor supports, e.g. tokio
//! I/O and timers inside a tokio runtime.
//!
//! On tokio's multi-thread runtime, whose `tokio::spawn` requires `Send`, run them on a
//! pool of single-threaded workers with tokio-util's `LocalPoolHandle::spawn_pinned`,
//! which creates the coroutine on a pool thread, keeps it there and returns a `Send`
//! `JoinHandle` (the README's "On tokio's multi-thread runtime" has the recipe).
//!
//! ## Using with tokio, smol, futures and wasm-bindgen-futures
//!
//! A [`StackfulFuture`] is `!Send`. A suspended coroutine is a stack whose frames may
//! hold what must stay on the thread it ran on (an `Rc`, a reference into a
//! `thread_local!` borrowed across a `wait`, a lock guard), which the compiler cannot
//! check in a suspended stack; so it is resumed on that thread, unless the caller
//! vouches for it with the `unsafe` [`StackfulFuture::assume_send`](future::StackfulFuture::assume_send). Work-stealing executors move tasks between
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
//! # // smol does not build for wasm32: there this doctest compiles to nothing.
//! # #[cfg(not(target_arch = "wasm32"))] {
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
//! # }
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
//! **wasm-bindgen-futures** (wasm32, see "WebAssembly" below):
//! `wasm_bindgen_futures::spawn_local`, which takes `!Send` futures; inside the
//! coroutine, `wait(JsFuture::from(promise))` suspends the synchronous code until the
//! promise settles.
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
//! With the `registry` feature, `stackful::registry` lists every live coroutine of the
//! process, where it was created, how long it has been suspended and where (its
//! backtrace): what to look at when a service hangs.
//!
//! ## How it works
//!
//! Each coroutine owns a stack (by default 2 MiB of address space from `mmap`, with a
//! guard page; only touched pages use memory, and stacks are pooled per thread; on
//! Windows committed memory from `VirtualAlloc`). A context switch is a call into a
//! few lines of assembly per architecture (`asm/x86_64.S`, `asm/aarch64.S`,
//! `asm/riscv64.S`, `asm/x86.S`, `asm/x86_64_windows.S`) that saves the callee-saved
//! registers on one stack and restores them from the other. DWARF CFI in that
//! assembly (SEH unwind data on Windows) lets debuggers, panics' backtraces and
//! profilers walk from a coroutine's frames into the frames of whoever resumed it.
//!
//! ## WebAssembly
//!
//! On `wasm32` (WASI or the browser) there is no instruction to switch stacks, so the
//! switch (`asm/wasm32.s`) is built on Binaryen's Asyncify: suspending a coroutine
//! unwinds its frames into a save buffer of its own, resuming rewinds them. The
//! module must be processed with `wasm-opt --asyncify
//! --pass-arg=asyncify-imports@__none__` after it is built (and before
//! `wasm-bindgen`); `.cargo/config.toml` makes `cargo test --target wasm32-wasip1` do
//! that. Stacks come from the allocator ([`stack::DEFAULT_STACK_SIZE`] is 256 KiB
//! there) with a save buffer of [`stack::DEFAULT_SAVE_BUFFER_SIZE`] bytes each
//! ([`Builder::save_buffer_size`]). A save-buffer overflow, a shadow-stack overflow
//! (detected at the next switch: there are no guard pages) and a module that was not
//! instrumented abort with a message naming the problem. wasm is `panic = "abort"`:
//! a suspended coroutine that is dropped is leaked, as below. See the README for the
//! details and the costs.
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
//!   Dropping it in that state aborts the process: it cannot be unwound a second
//!   time, and Rust aborts with "panic in a destructor during cleanup". A coroutine
//!   that merely suspended while the *thread* was panicking (resumed from a
//!   destructor during an unrelated unwind) is dropped like any other.
//! * With **`panic = "abort"`** a suspended coroutine cannot be unwound. Dropping a
//!   `'static` one leaks its stack (never frees memory that a pinned value on it may
//!   still be referenced through) and counts it in [`leaked_stacks`]; the same
//!   happens to one dropped while it is still running (whatever resumed it was
//!   leaked). A coroutine that borrows (made in a [`scope()`] or by an unchecked
//!   constructor) cannot be leaked: in those cases the process aborts with a message
//!   that names the cause.
//! * **Stack overflow** hits the guard page below every default stack. On Linux a
//!   `SIGSEGV`/`SIGBUS` handler (installed lazily, on an alternate signal stack,
//!   chained to the previous handler so Rust's own thread-overflow message still
//!   works) prints `stackful: coroutine stack overflow (stack size N bytes) — raise it
//!   with Builder::stack_size` and aborts. On Windows Rust's runtime reports the
//!   overflow and aborts. Elsewhere, and for custom stacks, the process dies with
//!   `SIGSEGV`; memory is never silently corrupted (given a guard). In a
//!   thread-local destructor at thread exit the message needs an alternate signal
//!   stack that std has removed by then: the crate installs one when its own
//!   per-thread state is destroyed, which covers thread-locals first used before the
//!   thread's first coroutine (see the README).
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
//! ## Soundness
//!
//! No safe program can reach undefined behaviour through this crate's API, with one
//! exception that no type can rule out, in this crate or any other stackful-coroutine
//! library: code that suspends inside a thread-local's `with` or initializer (see
//! "Thread-locals" below). The one rule that shapes the API: **a coroutine can be leaked while it is suspended**
//! (`mem::forget`, an `Rc` cycle, a task an executor never drops, a drop under
//! `panic = "abort"`, which cannot unwind the stack). Its stack is then never freed
//! and never resumed, so its own frames stay valid; but anything it *borrowed* from
//! outside would be released while code it suspended in the middle of still relies on
//! it. `std::thread::scope` is the sharpest case: a coroutine suspended inside it
//! leaves a scoped thread running that holds its borrows. Hence:
//!
//! | constructor | what must be `'static` | to borrow instead |
//! |---|---|---|
//! | [`StackfulGenerator::new`], `with_stack`, [`Builder::generator`] | the closure, `Y`, `Resume` (and the stack) | [`scope()`] + [`Scope::generator`], or `new_unchecked` |
//! | [`stackful`], [`StackfulFuture::new`], `with_stack`, [`Builder::future`] | the closure (and the stack) | [`scope()`] + [`Scope::future`], or `new_unchecked` |
//! | [`stream()`], [`StackfulStream::new`], `with_stack`, [`Builder::stream`] | the closure, `T` (and the stack) | [`scope()`] + [`Scope::stream`], or `new_unchecked` |
//! | `io::AsyncReader::*`, `io::AsyncWriter::*` | the reader/writer and closures | `with_builder_unchecked` |
//!
//! * **Resume and yielded values** flow between the coroutine and its caller while it
//!   runs, so they are `'static` too: a `Resume` of `&str` hands the coroutine a
//!   borrow directly, and a yielded value can carry one back in (yield a channel's
//!   `Sender<&str>`, receive on the coroutine side). A **return value** (`R`, a
//!   future's `T`) is not bound: it only leaves the coroutine once it has finished,
//!   when nothing can run on its stack any more.
//! * **Scopes**: [`scope()`] owns the coroutines made in it and drops (unwinds) every
//!   one of them before it returns, even those whose handle was forgotten, like
//!   `std::thread::scope` joins its threads. The handles carry the scope's invariant
//!   lifetime, so they cannot be moved out of it or swapped with those of another
//!   scope. Futures and streams made there must be driven to completion inside the
//!   scope (`block_on`), since no executor can be made to drop a task in time.
//! * **Unchecked constructors** (`unsafe`): `new_unchecked`/`with_stack_unchecked` on
//!   each type, `Builder::{future,generator,stream}_unchecked`, and the io adapters'
//!   `with_builder_unchecked`. The caller promises to finish or drop the coroutine
//!   before its borrows end. Scoped and unchecked coroutines are never leaked: where
//!   one cannot be unwound (`panic = "abort"`, or dropped while still running) the
//!   process aborts with a message instead.
//! * **Thread-locals** are the hazard no type rules out, because a coroutine's stack
//!   outlives the calls it suspended in:
//!   - do not suspend (`wait`, `yeet`, `yield_item`, `yield_now`, and
//!     `budget::consume`/`Meter::consume`, which may yield) inside `LocalKey::with`
//!     or a `thread_local!` lazy initializer: another coroutine on the same thread
//!     that initializes the same key while the first is suspended makes std drop
//!     the value the first one still borrows (use-after-free);
//!   - do not suspend while holding a `std::sync::Mutex` guard, or inside a
//!     `Once`/`OnceLock`/`LazyLock` initializer: another coroutine of the same thread
//!     that takes the lock or initializes the cell deadlocks the thread, with no
//!     message (use an async mutex and `wait` on it);
//!   - a suspended coroutine kept in a thread-local and dropped when the thread exits
//!     would be unwound then; if it suspended inside `LocalKey::with` of a key that
//!     is already destroyed, its destructors would use that value after its
//!     destruction. Mitigation: once this crate's per-thread state is destroyed
//!     (thread-local destructors run in the reverse order of first use; the crate's
//!     is first used when the thread creates its first coroutine), a `'static`
//!     coroutine dropped while suspended is leaked, not unwound (its destructors do
//!     not run; [`leaked_stacks`] counts it). On Linux that covers coroutines kept
//!     in thread-locals first used *before* the thread's first coroutine; one kept in
//!     a thread-local first used later is still unwound, and on Windows the order
//!     differs. Drop coroutines before their thread exits.
//!
//!   `!Send` keeps a coroutine on its thread; it does not make these safe.
//!
//! ### Migrating from stackful 0.1
//!
//! Code whose closures own what they use compiles unchanged. A closure that borrows
//! now gets a lifetime error (`E0597`, "borrowed value does not live long enough",
//! "argument requires that ... is borrowed for `'static`"). Move what it uses into it
//! (`move`, clones, `Rc`), or put the coroutine in a scope:
//!
//! ```
//! use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
//! use std::pin::Pin;
//!
//! let words = vec!["a", "bb", "ccc"];
//! // stackful 0.1: StackfulGenerator::new(|y, ()| for w in &words { y.yeet(w.len()) })
//! let lengths: Vec<usize> = stackful::scope(|s| {
//!     s.generator(|y: &YieldHandle<usize>, ()| words.iter().for_each(|w| y.yeet(w.len())))
//!         .collect()
//! });
//! assert_eq!(lengths, [1, 2, 3]);
//!
//! // A nested generator that yields through its parent's handle borrows it: scope it.
//! let mut parent = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
//!     stackful::scope(|s| {
//!         let mut child = s.generator(|_: &YieldHandle<()>, ()| y.yeet(1));
//!         assert_eq!(Pin::new(&mut child).resume(()), GeneratorState::Complete(()));
//!     });
//! });
//! assert_eq!(Pin::new(&mut parent).resume(()), GeneratorState::Yielded(1));
//! ```
//!
//! A borrowing future that an executor drives (`spawn_local` needs `'static` anyway)
//! becomes either `'static` (move its data in) or, when it is awaited in place,
//! `unsafe { StackfulFuture::new_unchecked(..) }` with the contract of
//! [`StackfulFuture::new_unchecked`].
//!
//! [`StackfulFuture`]: future::StackfulFuture
//! [`StackfulGenerator::new`]: generator::StackfulGenerator::new
//! [`StackfulFuture::new`]: future::StackfulFuture::new
//! [`StackfulFuture::new_unchecked`]: future::StackfulFuture::new_unchecked

#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

// wasm32 switches through Binaryen's Asyncify instead (asm/wasm32.s).
#[cfg_attr(target_arch = "wasm32", path = "arch/wasm32.rs")]
mod arch;
#[cfg(stackful_asan)]
mod asan;
mod block_on;
pub mod budget;
mod builder;
#[cfg(doctest)]
mod compile_fail;
mod context;
mod fiber;
pub mod future;
pub mod generator;
#[cfg(any(feature = "futures-io", feature = "tokio"))]
pub mod io;
#[cfg(feature = "registry")]
pub mod registry;
mod scope;
mod send;
pub mod stack;
pub mod stream;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[cfg(not(windows))]
mod switch_out;

pub use builder::Builder;
pub use fiber::leaked_stacks;
pub use future::{in_stackful, stackful, wait, yield_now};
pub use scope::{scope, Scope, ScopedBuilder, ScopedFuture, ScopedGenerator, ScopedStream};
pub use send::{SendFuture, SendStream};
pub use stream::{stream, StackfulStream, StreamHandle};

/// The result of a `with_stack` constructor, or its panic.
#[track_caller]
pub(crate) fn expect_custom<T>(what: &str, made: std::io::Result<T>) -> T {
    match made {
        Ok(made) => made,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The panic of the infallible constructors when no stack can be had.
#[cold]
#[track_caller]
pub(crate) fn allocation_failed(what: &str, err: std::io::Error) -> ! {
    panic!("{what}: could not allocate a coroutine stack ({err}); use stackful::Builder to handle this as an error")
}
