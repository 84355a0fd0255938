//! The coroutine registry (feature `registry`): every live coroutine of the process,
//! where it was created, on which thread it last ran, how long it has been suspended,
//! and on demand where it is suspended (its backtrace).
//!
//! ```
//! # #[cfg(not(target_arch = "wasm32"))] {
//! use stackful::{registry, stackful, wait};
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::Context;
//!
//! #[inline(never)]
//! fn wait_for_config(rx: futures::channel::oneshot::Receiver<u32>) -> u32 {
//!     std::hint::black_box("wait_for_config");
//!     wait(rx).unwrap()
//! }
//!
//! let (tx, rx) = futures::channel::oneshot::channel();
//! let site = (file!(), line!() + 1);
//! let mut fut = stackful(move || wait_for_config(rx)); // the creation site
//! let mut cx = Context::from_waker(futures::task::noop_waker_ref());
//! assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
//!
//! // From any thread: every live coroutine of the process.
//! let snapshot = registry::snapshot_with_backtraces();
//! let c = snapshot
//!     .iter()
//!     .find(|c| (c.created_at().file(), c.created_at().line()) == site)
//!     .unwrap();
//! assert!(c.suspended_for().is_some());
//! let trace = c.backtrace().unwrap().to_string();
//! assert!(trace.contains("wait_for_config"), "{trace}");
//! println!("{snapshot}"); // a report: one paragraph per coroutine
//! # drop(tx);
//! # }
//! ```
//!
//! # What it costs
//! Nothing when the feature is off: the hooks below are compiled out. When it is on,
//! creating a coroutine allocates an entry and enters it in a process-wide list under
//! a lock (dropping it takes it out), and every resume and every suspension update the
//! entry: an atomic swap and a few stores, a read of the monotonic clock and of a
//! thread-local (BENCHMARKS.md, "Issue #18: the registry", has the counts).
//!
//! # Which coroutines can be traced, from where
//! A backtrace is captured on the coroutine's own stack (see
//! [`StackfulGenerator::backtrace`](crate::generator::StackfulGenerator::backtrace)):
//! the capture briefly resumes it, on the thread that takes the snapshot. Only the
//! crate's suspension code and `Backtrace::force_capture` run there, never the
//! coroutine's own code, so any thread may do it, for `!Send` coroutines too. The
//! entry makes it exclusive: while a coroutine is suspended its entry publishes its
//! saved stack pointer; a tracer takes it with an atomic swap (and gives it back after
//! the capture), and the owner takes it the same way before every resume, waiting for
//! a tracer to finish if one holds it. A coroutine that is
//! running, finished or being traced by someone else at that moment is listed without
//! a backtrace. The snapshot holds the registry's lock while it captures, so no
//! coroutine is freed under it (coroutine creation and destruction wait meanwhile).

#[cfg(not(target_arch = "wasm32"))]
use crate::fiber;
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Every registered entry's address (entries are boxed, so they do not move); each
/// entry knows its index. Locked to enter, take out or read entries.
static REGISTRY: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The clock origin of [`clock_nanos`] where it uses `Instant`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Numbers of the entries, in creation order.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `Entry::suspended_at` of a coroutine that has not started.
const NOT_STARTED: u64 = 0;
/// `Entry::suspended_at` of a coroutine that is running (or part of a running chain).
const RUNNING: u64 = u64::MAX;
/// `Entry::suspended_at` of a finished coroutine.
const FINISHED: u64 = u64::MAX - 1;

fn lock() -> MutexGuard<'static, Vec<usize>> {
    // Nothing panics while holding it with the vector half-updated.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reading of the registry's clock in nanoseconds, never 0 ([`NOT_STARTED`]) nor
/// one of the other special values of `Entry::suspended_at`.
// Out of line: once per suspension, on the registry's side of the switch.
#[inline(never)]
fn now_nanos() -> u64 {
    clock_nanos()
}

/// On Linux, the coarse monotonic clock (read from the vDSO without a time-stamp
/// counter: a few instructions; its resolution, a few milliseconds, is enough to
/// tell how long a coroutine has been stuck). Time since boot: never 0, and far
/// below the special values.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn clock_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC_COARSE exists on
    // every Linux this crate supports (2.6.32 and later).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Elsewhere, `Instant` since a process-wide origin, plus 1.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn clock_nanos() -> u64 {
    (EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64).saturating_add(1)
}

/// What kind of coroutine an entry belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A [`StackfulGenerator`](crate::generator::StackfulGenerator) (or a scoped one).
    Generator,
    /// A [`StackfulFuture`](crate::future::StackfulFuture), scoped or `Send` ones too.
    Future,
    /// A [`StackfulStream`](crate::StackfulStream) (also the coroutine of a
    /// `stackful::io` adapter), scoped or `Send` ones too.
    Stream,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Generator => "generator",
            Kind::Future => "future",
            Kind::Stream => "stream",
        })
    }
}

/// The registry's record of one coroutine, owned by its `Fiber` (boxed: its address is
/// in the registry). Shared with snapshots on any thread: atomics, or set before it is
/// entered.
pub(crate) struct Entry {
    /// The coroutine's saved stack pointer while it is suspended and nobody has taken
    /// it; 0 otherwise (not started, running, finished, or taken by the owner or a
    /// tracer). Taking it (a swap to 0) gives the right to resume the coroutine.
    sp: AtomicUsize,
    /// The coroutine's LINK slot (fixed for its life).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // no traces there
    link: usize,
    /// The lowest usable address of the coroutine's stack (fixed for its life).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // no traces there
    bottom: usize,
    /// Where in the registry's vector this entry's address is (changed under its lock).
    index: AtomicUsize,
    id: u64,
    site: &'static Location<'static>,
    created: Instant,
    /// A [`Kind`] as u8 (set by the typed layer right after creation).
    kind: AtomicU8,
    /// When the coroutine last suspended ([`now_nanos`]), or [`NOT_STARTED`],
    /// [`RUNNING`], [`FINISHED`]. Written by the owner only.
    suspended_at: AtomicU64,
    /// The number of the thread that last resumed it ([`thread_number`]; 0: none).
    thread: AtomicU64,
    /// The number of the thread tracing it while a tracer holds `sp`, else 0.
    tracer: AtomicU64,
}

impl Entry {
    /// Creates the entry of a new coroutine and enters it in the registry.
    pub(crate) fn register(
        link: *mut usize,
        bottom: usize,
        site: &'static Location<'static>,
    ) -> *const Entry {
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        EPOCH.get_or_init(Instant::now);
        let entry = Box::into_raw(Box::new(Entry {
            sp: AtomicUsize::new(0),
            link: link as usize,
            bottom,
            index: AtomicUsize::new(0),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            site,
            created: Instant::now(),
            kind: AtomicU8::new(Kind::Generator as u8),
            suspended_at: AtomicU64::new(NOT_STARTED),
            thread: AtomicU64::new(0),
            tracer: AtomicU64::new(0),
        }));
        let mut all = lock();
        // SAFETY: just allocated; nobody else has it yet.
        unsafe { (*entry).index.store(all.len(), Ordering::Relaxed) };
        all.push(entry as usize);
        entry
    }

    /// Takes the entry out of the registry and frees it.
    ///
    /// # Safety
    /// `entry` came from [`register`](Entry::register) and is unregistered once; the
    /// coroutine is not suspended with its `sp` published (a tracer could take it), or
    /// it is about to be leaked as it is (the lock excludes every tracer below).
    pub(crate) unsafe fn unregister(entry: *const Entry) {
        let mut all = lock();
        // SAFETY: registered and not freed (per the caller); its index is kept right
        // under the lock we hold.
        let index = unsafe { (*entry).index.load(Ordering::Relaxed) };
        debug_assert_eq!(all[index], entry as usize);
        all.swap_remove(index);
        if let Some(&moved) = all.get(index) {
            // SAFETY: a registered entry (alive while it is in the vector).
            unsafe {
                (*(moved as *const Entry))
                    .index
                    .store(index, Ordering::Relaxed)
            };
        }
        drop(all);
        // SAFETY: out of the registry (no snapshot can reach it: they hold the lock
        // while they use entries), and the fiber that owned it is going away.
        drop(unsafe { Box::from_raw(entry as *mut Entry) });
    }

    pub(crate) fn set_kind(&self, kind: Kind) {
        self.kind.store(kind as u8, Ordering::Relaxed);
    }

    /// The owner, before resuming the coroutine saved at `sp` (0 if it is fresh):
    /// takes the published stack pointer back (waiting for a tracer that holds it) and
    /// records that it runs, and where.
    #[inline(always)]
    pub(crate) fn before_resume(&self, sp: usize) {
        if sp != 0 && self.sp.swap(0, Ordering::Acquire) != sp {
            self.wait_for_tracer(sp);
        }
        self.suspended_at.store(RUNNING, Ordering::Relaxed);
        self.thread.store(thread_number(), Ordering::Relaxed);
    }

    /// The owner, once the coroutine suspended at `sp`: publishes it.
    #[inline(always)]
    pub(crate) fn after_suspend(&self, sp: usize) {
        self.suspended_at.store(now_nanos(), Ordering::Relaxed);
        // Release: a tracer that takes `sp` sees the stack as the coroutine left it.
        self.sp.store(sp, Ordering::Release);
    }

    /// The owner, once the coroutine finished.
    pub(crate) fn finished(&self) {
        self.suspended_at.store(FINISHED, Ordering::Relaxed);
    }

    /// The owner, to trace its own suspended coroutine (saved at `sp`): takes it as
    /// for a resume, without changing what the entry reports.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn take_for_trace(&self, sp: usize) {
        if self.sp.swap(0, Ordering::Acquire) != sp {
            self.wait_for_tracer(sp);
        }
    }

    /// The owner, after [`take_for_trace`](Entry::take_for_trace).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn give_back(&self, sp: usize) {
        self.sp.store(sp, Ordering::Release);
    }

    /// A tracer holds the published stack pointer: wait until it gives it back.
    #[cold]
    #[inline(never)]
    fn wait_for_tracer(&self, sp: usize) {
        let mut spins = 0u32;
        loop {
            if self
                .sp
                .compare_exchange_weak(sp, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // The tracer writes its number before it starts to capture; when it is
            // this very thread, we are inside that capture (a global allocator that
            // resumes coroutines?) and waiting would never end.
            if self.tracer.load(Ordering::Relaxed) == thread_number() {
                panic!(
                    "a coroutine was resumed from inside the capture of its own backtrace \
                     by stackful::registry"
                );
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// What a snapshot shows of the entry; with a backtrace if `trace` and the
    /// coroutine is suspended and free.
    ///
    /// # Safety
    /// The registry's lock is held (the entry and the coroutine's stack stay alive).
    unsafe fn info(&self, now: u64, trace: bool) -> Coroutine {
        let suspended_at = self.suspended_at.load(Ordering::Relaxed);
        let state = match suspended_at {
            NOT_STARTED => State::NotStarted,
            RUNNING => State::Running,
            FINISHED => State::Finished,
            at => State::Suspended(Duration::from_nanos(now.saturating_sub(at))),
        };
        let backtrace = if trace && matches!(state, State::Suspended(_)) {
            // SAFETY: forwarded.
            unsafe { self.trace() }
        } else {
            None
        };
        Coroutine {
            id: self.id,
            kind: match self.kind.load(Ordering::Relaxed) {
                k if k == Kind::Future as u8 => Kind::Future,
                k if k == Kind::Stream as u8 => Kind::Stream,
                _ => Kind::Generator,
            },
            site: self.site,
            age: self.created.elapsed(),
            state,
            thread: thread_info(self.thread.load(Ordering::Relaxed)),
            backtrace,
        }
    }

    /// Captures the coroutine's backtrace if it is suspended and nobody holds it.
    ///
    /// # Safety
    /// As for [`info`](Entry::info).
    #[cfg(not(target_arch = "wasm32"))]
    unsafe fn trace(&self) -> Option<Backtrace> {
        let sp = self.sp.swap(0, Ordering::Acquire);
        if sp == 0 {
            return None; // running, or its owner or another tracer holds it
        }
        self.tracer.store(thread_number(), Ordering::Relaxed);
        // SAFETY: a published `sp` is the latest save point of the suspended
        // coroutine, and taking it makes us the only one to resume it until we give
        // it back (its owner waits in `before_resume`/`take_for_trace`); its stack is
        // alive (the fiber unregisters, under the lock we hold, before its stack
        // goes). Another thread may trace it: the capture runs only this crate's
        // suspension code and `Backtrace::force_capture` on the coroutine's stack,
        // none of its own code, and the switch keeps the per-thread state right (as for
        // `SendFuture`); the Acquire above pairs with the owner's Release.
        let trace = unsafe { fiber::trace_suspended(sp, self.link as *mut usize, self.bottom) };
        self.tracer.store(0, Ordering::Relaxed);
        self.sp.store(sp, Ordering::Release);
        trace
    }

    #[cfg(target_arch = "wasm32")]
    unsafe fn trace(&self) -> Option<Backtrace> {
        None
    }
}

thread_local! {
    /// This thread's number in [`THREADS`] (0 until it first resumes a coroutine).
    static THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
    /// Takes this thread out of [`THREADS`] when it exits.
    static THREAD_GUARD: ThreadGuard = const { ThreadGuard };
}

/// Threads that resumed a coroutine and have not exited: (number, id, name).
static THREADS: Mutex<Vec<(u64, ThreadId, Option<String>)>> = Mutex::new(Vec::new());
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

struct ThreadGuard;

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let me = THREAD_NUMBER.try_with(Cell::get).unwrap_or(0);
        let mut threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| t.0 != me);
    }
}

/// This thread's number (out of line: a coroutine may move between threads, see
/// `future::current_poll_state`).
#[inline(never)]
fn thread_number() -> u64 {
    match THREAD_NUMBER.try_with(Cell::get) {
        Ok(0) => new_thread_number(),
        Ok(n) => n,
        Err(_) => 0, // exiting: its thread-locals are gone
    }
}

#[cold]
fn new_thread_number() -> u64 {
    let n = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    let current = std::thread::current();
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).push((
        n,
        current.id(),
        current.name().map(str::to_owned),
    ));
    THREAD_NUMBER.with(|c| c.set(n));
    // Registers the guard's destructor (a no-op if the thread is exiting).
    let _ = THREAD_GUARD.try_with(|_| ());
    n
}

fn thread_info(number: u64) -> Option<ThreadInfo> {
    if number == 0 {
        return None;
    }
    let threads = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    Some(match threads.iter().find(|t| t.0 == number) {
        Some((_, id, name)) => ThreadInfo {
            id: Some(*id),
            name: name.clone(),
        },
        None => ThreadInfo {
            id: None,
            name: None,
        },
    })
}

/// Every live coroutine of the process (created and not dropped yet), without
/// backtraces; in no particular order. See [`snapshot_with_backtraces`].
pub fn snapshot() -> Snapshot {
    take(false)
}

/// Every live coroutine of the process, with the backtrace of each one that is
/// suspended (captured from the calling thread; see the module docs for how, and why
/// any thread may). A coroutine that is running, or being traced by another snapshot
/// at that moment, has none; so has every coroutine on wasm32.
///
/// The capture of each backtrace runs where the coroutine is saved (its own stack, or
/// that of a generator it runs) and needs 8 KiB free there: a coroutine saved with
/// less free below that point has none.
/// Capturing is cheap (symbols are resolved when a backtrace is
/// displayed), but it blocks the creation and destruction of coroutines in the whole
/// process meanwhile, and an owner that wants to resume a coroutine being traced
/// waits for that trace: a tool for when something is stuck, not for every request.
pub fn snapshot_with_backtraces() -> Snapshot {
    // The captures may overflow a nearly full coroutine stack: make sure this thread
    // can report it.
    crate::stack::prepare_thread();
    take(true)
}

fn take(trace: bool) -> Snapshot {
    let all = lock();
    let now = now_nanos();
    let coroutines = all
        .iter()
        // SAFETY: registered entries, alive while we hold the lock.
        .map(|&e| unsafe { (*(e as *const Entry)).info(now, trace) })
        .collect();
    drop(all);
    Snapshot { coroutines }
}

/// The live coroutines of the process at one moment: [`snapshot`],
/// [`snapshot_with_backtraces`]. Its `Display` is a report, one paragraph per
/// coroutine, longest suspended first.
#[derive(Debug)]
pub struct Snapshot {
    coroutines: Vec<Coroutine>,
}

impl Snapshot {
    /// The coroutines, in no particular order.
    pub fn iter(&self) -> std::slice::Iter<'_, Coroutine> {
        self.coroutines.iter()
    }

    /// How many coroutines were live.
    pub fn len(&self) -> usize {
        self.coroutines.len()
    }

    /// Whether no coroutine was live.
    pub fn is_empty(&self) -> bool {
        self.coroutines.is_empty()
    }

    /// The suspended coroutines, longest suspended first.
    pub fn suspended(&self) -> Vec<&Coroutine> {
        let mut v: Vec<&Coroutine> = self
            .coroutines
            .iter()
            .filter(|c| c.suspended_for().is_some())
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.suspended_for()));
        v
    }

    /// The coroutines that last ran on (or are running on) thread `id`.
    pub fn on_thread(&self, id: ThreadId) -> impl Iterator<Item = &Coroutine> {
        self.coroutines
            .iter()
            .filter(move |c| c.thread().and_then(ThreadInfo::id) == Some(id))
    }
}

impl<'s> IntoIterator for &'s Snapshot {
    type Item = &'s Coroutine;
    type IntoIter = std::slice::Iter<'s, Coroutine>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suspended = self.suspended();
        writeln!(
            f,
            "{} live coroutine(s), {} suspended",
            self.len(),
            suspended.len()
        )?;
        for c in &suspended {
            write!(f, "\n{c}")?;
        }
        for c in self.iter().filter(|c| c.suspended_for().is_none()) {
            write!(f, "\n{c}")?;
        }
        Ok(())
    }
}

/// What a coroutine was doing when the snapshot was taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum State {
    /// Created, never resumed.
    NotStarted,
    /// Running, or part of a chain of coroutines that is running or suspended as a
    /// whole (a generator resumed by a future that is suspended in `wait`: the
    /// future's backtrace shows the generator's frames).
    Running,
    /// Suspended for this long.
    Suspended(Duration),
    /// Finished (returned or panicked), not dropped yet.
    Finished,
}

/// A thread as a snapshot saw it.
#[derive(Clone, Debug)]
pub struct ThreadInfo {
    id: Option<ThreadId>,
    name: Option<String>,
}

impl ThreadInfo {
    /// The thread's id; `None` if it has exited.
    pub fn id(&self) -> Option<ThreadId> {
        self.id
    }

    /// The thread's name, if it has one (and has not exited).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ThreadInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.id) {
            (Some(name), Some(id)) => write!(f, "thread '{name}' ({id:?})"),
            (None, Some(id)) => write!(f, "thread {id:?}"),
            _ => f.write_str("a thread that has exited"),
        }
    }
}

/// One live coroutine in a [`Snapshot`].
#[derive(Debug)]
pub struct Coroutine {
    id: u64,
    kind: Kind,
    site: &'static Location<'static>,
    age: Duration,
    state: State,
    thread: Option<ThreadInfo>,
    backtrace: Option<Backtrace>,
}

impl Coroutine {
    /// A number unique in the process (in creation order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What kind of coroutine it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Where it was created: the caller of the constructor (`stackful`,
    /// `StackfulFuture::new`, `Builder::future`, `Scope::future`, `SendFuture::new`,
    /// an `AsyncReader` constructor, ...).
    pub fn created_at(&self) -> &'static Location<'static> {
        self.site
    }

    /// How long ago it was created.
    pub fn age(&self) -> Duration {
        self.age
    }

    /// What it was doing.
    pub fn state(&self) -> State {
        self.state
    }

    /// How long it had been suspended, if it was. On Linux the registry reads a
    /// coarse clock (`CLOCK_MONOTONIC_COARSE`, one tick per timer interrupt: 1 to
    /// 10 ms), so this is precise to a tick.
    pub fn suspended_for(&self) -> Option<Duration> {
        match self.state {
            State::Suspended(d) => Some(d),
            _ => None,
        }
    }

    /// The thread that last resumed it (`None` if it never ran).
    pub fn thread(&self) -> Option<&ThreadInfo> {
        self.thread.as_ref()
    }

    /// Where it was suspended (from [`snapshot_with_backtraces`] only): the whole
    /// trace, as [`StackfulGenerator::backtrace`](crate::generator::StackfulGenerator::backtrace)
    /// describes it (`Display` of the coroutine shows only its own frames).
    pub fn backtrace(&self) -> Option<&Backtrace> {
        self.backtrace.as_ref()
    }
}

impl fmt::Display for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "coroutine #{} ({}) created at {}",
            self.id, self.kind, self.site
        )?;
        match self.state {
            State::NotStarted => write!(f, ", not started")?,
            State::Running => write!(f, ", running")?,
            State::Finished => write!(f, ", finished")?,
            State::Suspended(d) => write!(f, ", suspended for {d:.3?}")?,
        }
        if let Some(t) = &self.thread {
            write!(f, ", last on {t}")?;
        }
        writeln!(f)?;
        if let Some(bt) = &self.backtrace {
            f.write_str(&own_frames(&bt.to_string()))?;
        }
        Ok(())
    }
}

/// The coroutine's own frames of a displayed backtrace: from the caller of the
/// capture (the frames above this crate's `token_received` are the capture itself) to
/// the coroutine's entry (the frames below it are the tracer's). The whole trace if
/// either is missing (e.g. no symbols).
fn own_frames(trace: &str) -> String {
    // A frame starts with a line "   <n>: <symbol>"; its "at <file>" line follows.
    let mut frames: Vec<&str> = Vec::new();
    let mut rest = trace;
    let is_start = |line: &str| {
        let t = line.trim_start();
        t.split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        while end < rest.len() && !is_start(&rest[end..]) {
            end = rest[end..].find('\n').map_or(rest.len(), |i| end + i + 1);
        }
        frames.push(&rest[..end]);
        rest = &rest[end..];
    }
    // The function's name without generic arguments: `stackful::fiber::entry` in a
    // debug build, `entry<...>` for a frame inlined into another in a release build.
    // (`stackful::fiber::entry::<...>` with a nightly's symbol names).
    let is = |frame: &str, name: &str| {
        let line = frame.lines().next().unwrap_or("");
        let symbol = line.split_once(": ").map_or("", |(_, s)| s.trim());
        let (mut path, mut depth) = (String::new(), 0usize);
        for c in symbol.chars() {
            match c {
                '<' => depth += 1,
                '>' => depth = depth.saturating_sub(1),
                c if depth == 0 => path.push(c),
                _ => {}
            }
        }
        let path = path.replace("::::", "::");
        let path = path.trim_end_matches("::");
        path == name || path.strip_suffix(name).is_some_and(|p| p.ends_with("::"))
    };
    let first = frames.iter().position(|f| is(f, "token_received"));
    // The last entry before the switch from the tracer: a coroutine suspended in a
    // nested one shows both entries; the tracer may run in a coroutine too.
    let tracer = frames
        .iter()
        .position(|f| is(f, "trace_suspended"))
        .unwrap_or(frames.len());
    let last = frames[..tracer].iter().rposition(|f| is(f, "entry"));
    match (first, last) {
        (Some(first), Some(last)) if first < last => frames[first + 1..=last].concat(),
        _ => trace.to_owned(),
    }
}
