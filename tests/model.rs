//! Model-based stress test.
//!
//! A deterministic pseudo-random generator builds programs: trees of nested
//! generators and `stackful` futures whose bodies yield (`yeet` / `wait` on a future
//! that is pending once), create drop-counted tokens, drive child coroutines (to
//! completion, or dropping them after a number of resumes), panic, and return. Each
//! program is run for real, logging events, and the log is compared with the one a
//! plain interpreter of the same program (no coroutines: an explicit program counter
//! per node) predicts. Every value that crosses a switch (resume arguments, yielded
//! and returned values, panic payloads, captured closures) is counted, and must all
//! be dropped exactly once; the stack allocator's counters must come back.
//!
//! `cargo test` runs a small budget; the `#[ignore]`d `*_release` tests run >= 10
//! million switches on one thread and 1 million on each of 8 threads and are run by
//! `.ci/run` with `cargo test --release --test model -- --ignored`.

mod common;

use common::pend_n;
use stackful::generator::{Generator, GeneratorState, YieldHandle};
use stackful::wait;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

// ---------------------------------------------------------------- programs

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gen,
    Fut,
}

#[derive(Debug)]
enum Step {
    Yield(u32),
    Token(u32),
    Child(Box<Node>),
    Panic(u32),
}

#[derive(Debug)]
struct Node {
    id: u32,
    kind: Kind,
    steps: Vec<Step>,
    ret: u32,
    /// Resumes after which the driver drops the child; `None`: run to completion.
    budget: Option<u32>,
}

fn gen_node(rng: &mut Rng, depth: u32, next_id: &mut u32) -> Node {
    let id = *next_id;
    *next_id += 1;
    let kind = if rng.below(2) == 0 {
        Kind::Gen
    } else {
        Kind::Fut
    };
    let mut steps = Vec::new();
    let mut yields = 0;
    for _ in 0..rng.below(10) {
        match rng.below(10) {
            0..=4 => {
                yields += 1;
                steps.push(Step::Yield(rng.below(1000) as u32))
            }
            5 | 6 => steps.push(Step::Token(rng.below(1000) as u32)),
            _ if depth < 4 => steps.push(Step::Child(Box::new(gen_node(rng, depth + 1, next_id)))),
            _ => steps.push(Step::Yield(7)),
        }
    }
    if rng.below(8) == 0 {
        let payload = rng.below(1000) as u32;
        // Without unwinding (wasm32 is panic=abort) a panic cannot be caught: no
        // panics there.
        if cfg!(panic = "unwind") {
            steps.push(Step::Panic(payload));
        }
    }
    let budget = if rng.below(3) == 0 {
        Some(rng.below(yields + 2) as u32)
    } else {
        None
    };
    // Without unwinding (wasm32) a suspended coroutine is not unwound when dropped
    // (its stack is leaked): there, only drop children before their first resume or
    // let them finish (one resume per `Yield` step, plus one, complete a node).
    let suspensions = steps.iter().filter(|s| matches!(s, Step::Yield(_))).count();
    let budget = budget.filter(|&b| cfg!(panic = "unwind") || b == 0 || b as usize > suspensions);
    Node {
        id,
        kind,
        steps,
        ret: rng.below(1000) as u32,
        budget,
    }
}

// ---------------------------------------------------------------- events

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Start(u32, u32),
    Yield(u32, u32),
    Got(u32, u32),
    Resumed(u32, u32),
    TokenDrop(u32, u32),
    Returned(u32, u32),
    Caught(u32, u32),
    Dropped(u32),
}

type Log = RefCell<Vec<Ev>>;

thread_local! {
    /// Values that crossed (or could cross) a switch and are still alive.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Switches performed (each resume and each suspension counts one).
    static SWITCHES: Cell<u64> = const { Cell::new(0) };
}

/// A value whose creation and destruction are counted.
#[derive(Debug)]
struct Tracked(u32);

impl Tracked {
    fn new(v: u32) -> Self {
        LIVE.with(|l| l.set(l.get() + 1));
        Tracked(v)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

struct Token<'a> {
    node: u32,
    value: u32,
    log: &'a Log,
    _t: Tracked,
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        self.log
            .borrow_mut()
            .push(Ev::TokenDrop(self.node, self.value));
    }
}

fn count_switches(n: u64) {
    SWITCHES.with(|s| s.set(s.get() + n));
}

// ---------------------------------------------------------------- real run

fn run_body(node: &Node, log: &Log, suspend: &dyn Fn(u32) -> u32) -> Tracked {
    let mut tokens = Vec::new();
    for step in &node.steps {
        match step {
            Step::Yield(v) => {
                log.borrow_mut().push(Ev::Yield(node.id, *v));
                let r = suspend(*v);
                log.borrow_mut().push(Ev::Resumed(node.id, r));
            }
            Step::Token(t) => tokens.push(Token {
                node: node.id,
                value: *t,
                log,
                _t: Tracked::new(*t),
            }),
            Step::Child(child) => drive(child, log),
            Step::Panic(p) => panic::panic_any(Tracked::new(*p)),
        }
    }
    Tracked::new(node.ret)
}

fn drive(child: &Node, log: &Log) {
    let id = child.id;
    let captured = Tracked::new(u32::MAX);
    // The coroutines borrow the tree and the log (and nest): scoped coroutines.
    stackful::scope(|s| match child.kind {
        Kind::Gen => {
            let mut g = s.generator(move |y: &YieldHandle<Tracked, Tracked>, first: Tracked| {
                let _captured = captured;
                log.borrow_mut().push(Ev::Start(id, first.0));
                run_body(child, log, &|v| {
                    count_switches(1);
                    y.yeet(Tracked::new(v)).0
                })
            });
            let mut resumes = 0;
            loop {
                if child.budget.is_some_and(|b| resumes >= b) {
                    drop(g);
                    log.borrow_mut().push(Ev::Dropped(id));
                    return;
                }
                let arg = Tracked::new(resumes);
                resumes += 1;
                count_switches(1);
                match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut g).resume(arg))) {
                    Ok(GeneratorState::Yielded(v)) => log.borrow_mut().push(Ev::Got(id, v.0)),
                    Ok(GeneratorState::Complete(r)) => {
                        count_switches(1);
                        log.borrow_mut().push(Ev::Returned(id, r.0));
                        return;
                    }
                    Err(payload) => {
                        count_switches(1);
                        let p = payload.downcast::<Tracked>().expect("our payload");
                        log.borrow_mut().push(Ev::Caught(id, p.0));
                        return;
                    }
                }
            }
        }
        Kind::Fut => {
            let mut f = s.future(move || {
                let _captured = captured;
                log.borrow_mut().push(Ev::Start(id, 0));
                run_body(child, log, &|_| {
                    count_switches(1);
                    wait(pend_n(1, ()));
                    0
                })
            });
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let mut resumes = 0;
            loop {
                if child.budget.is_some_and(|b| resumes >= b) {
                    drop(f);
                    log.borrow_mut().push(Ev::Dropped(id));
                    return;
                }
                resumes += 1;
                count_switches(1);
                match panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut f).poll(&mut cx))) {
                    Ok(Poll::Pending) => log.borrow_mut().push(Ev::Got(id, 0)),
                    Ok(Poll::Ready(r)) => {
                        count_switches(1);
                        log.borrow_mut().push(Ev::Returned(id, r.0));
                        return;
                    }
                    Err(payload) => {
                        count_switches(1);
                        let p = payload.downcast::<Tracked>().expect("our payload");
                        log.borrow_mut().push(Ev::Caught(id, p.0));
                        return;
                    }
                }
            }
        }
    })
}

// ---------------------------------------------------------------- the model

fn model_drive(child: &Node, log: &mut Vec<Ev>) {
    let id = child.id;
    let gen = child.kind == Kind::Gen;
    let mut pc = 0;
    let mut started = false;
    let mut tokens: Vec<u32> = Vec::new();
    let mut resumes = 0;
    loop {
        if child.budget.is_some_and(|b| resumes >= b) {
            // Cancelled while suspended (or before it started): tokens drop in order.
            log.extend(tokens.iter().map(|&t| Ev::TokenDrop(id, t)));
            log.push(Ev::Dropped(id));
            return;
        }
        let arg = if gen { resumes } else { 0 };
        resumes += 1;
        log.push(if started {
            Ev::Resumed(id, arg)
        } else {
            Ev::Start(id, arg)
        });
        started = true;
        loop {
            let Some(step) = child.steps.get(pc) else {
                log.extend(tokens.iter().map(|&t| Ev::TokenDrop(id, t)));
                log.push(Ev::Returned(id, child.ret));
                return;
            };
            pc += 1;
            match step {
                Step::Yield(v) => {
                    log.push(Ev::Yield(id, *v));
                    log.push(Ev::Got(id, if gen { *v } else { 0 }));
                    break;
                }
                Step::Token(t) => tokens.push(*t),
                Step::Child(c) => model_drive(c, log),
                Step::Panic(p) => {
                    log.extend(tokens.iter().map(|&t| Ev::TokenDrop(id, t)));
                    log.push(Ev::Caught(id, *p));
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- harness

/// Runs programs from `seed` until at least `switches` switches were made; checks
/// every log against the model and that nothing leaked. Returns the switch count.
fn run_programs(seed: u64, switches: u64) -> u64 {
    let start = SWITCHES.with(Cell::get);
    let mut rng = Rng(seed | 1);
    let mut programs = 0u64;
    while SWITCHES.with(Cell::get) - start < switches {
        let mut next_id = 0;
        let root = gen_node(&mut rng, 0, &mut next_id);
        let log: Log = RefCell::new(Vec::new());
        drive(&root, &log);
        let mut expected = Vec::new();
        model_drive(&root, &mut expected);
        let actual = log.into_inner();
        if actual != expected {
            let at = actual
                .iter()
                .zip(&expected)
                .position(|(a, e)| a != e)
                .unwrap_or(actual.len().min(expected.len()));
            panic!(
                "program {programs} of seed {seed:#x} diverged at event {at}:\n  actual:   {:?}\n  \
                 expected: {:?}\nprogram: {root:#?}",
                &actual[at.saturating_sub(3)..(at + 3).min(actual.len())],
                &expected[at.saturating_sub(3)..(at + 3).min(expected.len())],
            );
        }
        assert_eq!(
            LIVE.with(Cell::get),
            0,
            "values leaked or double-dropped in program {programs} of seed {seed:#x}: {root:#?}"
        );
        programs += 1;
    }
    SWITCHES.with(Cell::get) - start
}

/// The model tests use process-wide state (the panic hook, the stack counters).
static SERIAL: Mutex<()> = Mutex::new(());

fn quiet_panics<R>(f: impl FnOnce() -> R) -> R {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Silence the programs' own panics (payload `Tracked`), report everything else.
    let hook = std::sync::Arc::new(panic::take_hook());
    let inner = hook.clone();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<Tracked>().is_none() {
            inner(info)
        }
    }));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(Box::new(move |info| hook(info)));
    match r {
        Ok(r) => r,
        Err(e) => panic::resume_unwind(e),
    }
}

fn single_thread(switches: u64) {
    quiet_panics(|| {
        let before = stackful::stack::stats();
        let done = run_programs(0x5eed_0001, switches);
        assert!(done >= switches);
        // Every stack went back to this thread's pool or was unmapped.
        stackful::stack::clear_thread_pool();
        let after = stackful::stack::stats();
        assert_eq!(after.pooled_on_this_thread, 0);
        assert!(
            after.mapped <= before.mapped,
            "stacks leaked: {before:?} -> {after:?}"
        );
        assert_eq!(after.leaked, before.leaked);
        println!("{done} switches checked against the model");
    });
}

// Not on wasm32: no threads.
#[cfg(not(target_arch = "wasm32"))]
fn eight_threads(switches_per_thread: u64) {
    quiet_panics(|| {
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let done = run_programs(0xdead_beef_0000 + i * 7919, switches_per_thread);
                    // Limit the pool, churn it, then release it.
                    stackful::stack::set_thread_pool_limit(2);
                    let done = done + run_programs(0x1234_0000 + i, switches_per_thread / 10);
                    stackful::stack::clear_thread_pool();
                    assert_eq!(stackful::stack::stats().pooled_on_this_thread, 0);
                    done
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(total >= 8 * switches_per_thread);
        println!("{total} switches on 8 threads checked against the model");
    });
}

#[test]
fn model_single_thread() {
    single_thread(if cfg!(debug_assertions) {
        60_000
    } else {
        600_000
    });
}

// Not on wasm32: no threads.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn model_eight_threads() {
    eight_threads(if cfg!(debug_assertions) {
        10_000
    } else {
        100_000
    });
}

#[test]
#[ignore = "10 million switches: run in release by .ci/run"]
fn model_single_thread_release() {
    single_thread(10_000_000);
}

// Not on wasm32: no threads.
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "8 x 1 million switches: run in release by .ci/run"]
fn model_eight_threads_release() {
    eight_threads(1_000_000);
}
