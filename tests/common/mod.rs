//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stackful::stack::Stack;
use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Records which [`Token`]s were created and dropped, to check that every value is
/// dropped exactly once.
#[derive(Clone, Default)]
pub struct Drops(Rc<RefCell<DropsInner>>);

#[derive(Default)]
struct DropsInner {
    created: usize,
    dropped: Vec<usize>,
}

impl Drops {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new value whose drop is recorded.
    pub fn token(&self) -> Token {
        let mut inner = self.0.borrow_mut();
        let id = inner.created;
        inner.created += 1;
        Token {
            id,
            drops: self.clone(),
        }
    }

    pub fn created(&self) -> usize {
        self.0.borrow().created
    }

    /// How many drops happened (a double drop counts twice).
    pub fn dropped(&self) -> usize {
        self.0.borrow().dropped.len()
    }

    pub fn is_dropped(&self, id: usize) -> bool {
        self.0.borrow().dropped.contains(&id)
    }

    /// Asserts that every token created so far was dropped exactly once.
    #[track_caller]
    pub fn assert_all_dropped_once(&self) {
        let inner = self.0.borrow();
        let mut dropped = inner.dropped.clone();
        dropped.sort_unstable();
        let expected: Vec<usize> = (0..inner.created).collect();
        assert_eq!(
            dropped, expected,
            "each of the {} tokens must be dropped exactly once",
            inner.created
        );
    }

    /// Asserts that no token was dropped twice (some may still be alive).
    #[track_caller]
    pub fn assert_no_double_drop(&self) {
        let inner = self.0.borrow();
        let mut dropped = inner.dropped.clone();
        dropped.sort_unstable();
        let before = dropped.len();
        dropped.dedup();
        assert_eq!(before, dropped.len(), "a token was dropped twice");
    }
}

/// A value that records its drop in its [`Drops`].
pub struct Token {
    pub id: usize,
    drops: Drops,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.drops.0.borrow_mut().dropped.push(self.id);
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.id)
    }
}

/// A waker that counts its wake-ups.
#[derive(Default)]
pub struct CountingWaker(AtomicUsize);

impl CountingWaker {
    pub fn new() -> (Arc<Self>, Waker) {
        let this = Arc::new(Self::default());
        let waker = Waker::from(this.clone());
        (this, waker)
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_owned()
    }
}

/// Runs the test named `name` of the current test binary in a child process with
/// `STACKFUL_TEST_CHILD=name` set, and returns its exit status and stderr.
///
/// Under qemu-user (cross-testing) the test binary cannot be executed directly; then
/// it is run through `$STACKFUL_TEST_RUNNER` (whitespace-separated), by default
/// `qemu-<arch> -L /usr/<arch>-linux-gnu`.
///
/// Not on wasm32: WASI has no processes (`std::process::Command` always fails).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_child(name: &str) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let run = |program: &str, pre: &[String]| {
        std::process::Command::new(program)
            .args(pre)
            .arg(&exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env("STACKFUL_TEST_CHILD", name)
            .env("RUST_BACKTRACE", "0")
            .output()
    };
    let direct = std::process::Command::new(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("STACKFUL_TEST_CHILD", name)
        .env("RUST_BACKTRACE", "0")
        .output();
    let exec_failed = match &direct {
        Err(_) => true,
        // What a failed exec looks like from inside qemu-user.
        Ok(out) => out.status.code() == Some(127) && out.stderr.is_empty(),
    };
    let out = if exec_failed {
        let runner = std::env::var("STACKFUL_TEST_RUNNER").unwrap_or_else(|_| {
            let arch = std::env::consts::ARCH;
            format!("qemu-{arch} -L /usr/{arch}-linux-gnu")
        });
        let mut words = runner.split_whitespace().map(str::to_owned);
        let program = words.next().expect("an empty STACKFUL_TEST_RUNNER");
        let pre: Vec<String> = words.collect();
        run(&program, &pre).expect("spawn the test binary through the runner")
    } else {
        direct.unwrap()
    };
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether this process is the child started by [`run_child`] for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var("STACKFUL_TEST_CHILD").as_deref() == Ok(name)
}

/// Runs `f` in a child process (the test named `name`, which must call this), so that
/// a crash fails only this test; panics unless the child succeeded.
///
/// On wasm32 there are no processes: `f` runs in this process (a crash there aborts
/// the whole test binary, which fails the run all the same).
pub fn in_child(name: &str, f: impl FnOnce()) {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = name;
        f();
    }
    #[cfg(not(target_arch = "wasm32"))]
    in_child_process(name, f);
}

#[cfg(not(target_arch = "wasm32"))]
fn in_child_process(name: &str, f: impl FnOnce()) {
    if is_child(name) {
        f();
        return;
    }
    let (status, stderr) = run_child(name);
    assert!(
        status.success(),
        "the child process running `{name}` failed ({status}); stderr:\n{stderr}"
    );
}

/// A stack on the heap: no guard page (an overflow would write below `bottom`), so it
/// is only for code whose stack use is known. Its top is 16-byte aligned.
pub struct HeapStack {
    base: NonNull<u8>,
    size: usize,
    freed: Rc<Cell<bool>>,
}

impl HeapStack {
    pub fn new(size: usize, freed: Rc<Cell<bool>>) -> Self {
        assert!(size % 16 == 0 && size >= 4096);
        let layout = Layout::from_size_align(size, 16).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc::alloc(layout) }).expect("allocation failed");
        HeapStack { base, size, freed }
    }
}

// SAFETY: `base..base+size` is a live heap allocation owned by this value until drop,
// not used by anything else and not moved with the value; `top` is 16-aligned because
// the allocation is 16-aligned and `size` is a multiple of 16; there is no guard region
// (guard_size is 0), and the tests only run shallow code on it.
unsafe impl Stack for HeapStack {
    fn top(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the allocation.
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(self.size)) }
    }

    fn bottom(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for HeapStack {
    fn drop(&mut self) {
        self.freed.set(true);
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe {
            alloc::dealloc(
                self.base.as_ptr(),
                Layout::from_size_align(self.size, 16).unwrap(),
            )
        };
    }
}

/// Whether a child process ended by `std::process::abort`: `SIGABRT` on Unix; on
/// Windows `abort` ends the process with `__fastfail`, whose exit code is
/// `STATUS_STACK_BUFFER_OVERRUN` (0xC0000409). Not on wasm32 (no child processes).
#[cfg(not(target_arch = "wasm32"))]
pub fn aborted(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(6)
    }
    #[cfg(windows)]
    {
        status.code() == Some(0xC000_0409_u32 as i32)
    }
}

/// Whether a child process was killed by a fault or an abort: a signal on Unix, an
/// NTSTATUS error (0xC0000000 and above, e.g. `STATUS_STACK_OVERFLOW`) as the exit
/// code on Windows. Not on wasm32 (no child processes).
#[cfg(not(target_arch = "wasm32"))]
pub fn killed(status: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal().is_some()
    }
    #[cfg(windows)]
    {
        status.code().is_some_and(|c| c as u32 >= 0xC000_0000)
    }
}

/// Returns `Pending` (waking its task at once) `n` times, then `Ready(value)`.
pub struct PendN<T> {
    n: usize,
    value: Option<T>,
}

/// A future that is pending `n` times (waking itself each time), then ready with
/// `value`.
pub fn pend_n<T: Unpin>(n: usize, value: T) -> PendN<T> {
    PendN {
        n,
        value: Some(value),
    }
}

impl<T: Unpin> Future for PendN<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.n == 0 {
            Poll::Ready(self.value.take().expect("polled after completion"))
        } else {
            self.n -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Where `local` is, as a stack address to compare with other stack addresses (is
/// the coroutine on the stack it was given, how deep is the recursion).
///
/// Under AddressSanitizer (`cfg(stackful_asan)`, which the crate's build script sets
/// for its tests too) a local whose address is taken is not on the stack: ASan moves
/// it to its "fake stack", memory of its own, to detect uses after return. The
/// address of the local then says nothing about the stack, so this returns the
/// stack pointer instead, which is on the stack that runs the caller. Everywhere
/// else it is the address of `local`, as before.
#[inline(always)]
pub fn stack_address<T>(local: &T) -> usize {
    #[cfg(all(stackful_asan, any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = local;
        let sp: usize;
        // SAFETY: only copies the stack pointer into a register.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    }
    #[cfg(not(all(stackful_asan, any(target_arch = "x86_64", target_arch = "aarch64"))))]
    {
        local as *const T as usize
    }
}

/// Stack that code around a suspension (`wait`, `yeet`) takes beyond its usual share
/// under AddressSanitizer, whose frames are larger (redzones): tests that fill a stack
/// until a few KiB are left leave this much more.
pub const ASAN_EXTRA_STACK: usize = if cfg!(stackful_asan) { 4 * 1024 } else { 0 };

/// Whether a chain left with `left` bytes below the point where it recursed (plus
/// [`ASAN_EXTRA_STACK`]) is sure to have less than the 8 KiB a backtrace needs: then
/// a test may require `None`.
pub fn surely_too_full_to_trace(left: usize) -> bool {
    left + ASAN_EXTRA_STACK <= 8 * 1024
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    Pin::new(fut).poll(&mut cx)
}

/// Recurses until fewer than `left` bytes (plus [`ASAN_EXTRA_STACK`]) are free above
/// `bottom`, then waits on a future that is pending once (suspending the whole chain
/// it runs in). Tests look for its name in backtraces.
#[inline(never)]
pub fn descend_and_wait(bottom: usize, left: usize) -> usize {
    let pad = std::hint::black_box([0u8; 256]);
    let here = stack_address(&pad);
    if here < bottom + left + ASAN_EXTRA_STACK {
        stackful::wait(pend_n(1, 7usize));
        return pad[0] as usize;
    }
    descend_and_wait(bottom, left) + std::hint::black_box(pad[1]) as usize
}
