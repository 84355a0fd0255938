//! Nesting: what a switch costs when the suspension point is deep.
//!
//! * `nesting_depth/<lib>/<d>`: a generator round trip (as in `round_trip`) whose
//!   yield happens `d` frames deep in ordinary recursion on the coroutine stack.
//! * `nesting_generators/<lib>/<n>`: `n` coroutine stacks nested inside each other;
//!   the innermost yields a value to the caller of the outermost. Ours and stackful
//!   0.1.5 yield *through* the nesting with the outermost `YieldHandle` (one switch
//!   each way, the chain of stacks is suspended as one). corosensei cannot do that (a
//!   `Yielder` belongs to its own coroutine), so each level forwards the value with
//!   its own suspend: `n` switches each way.
//! * `nesting_futures/<lib>/<n>`: `n` coroutine futures nested via
//!   `wait(stackful(..))`; the innermost waits on a `PendingOnce`, so every wait
//!   suspends all `n` levels and every poll resumes them. `async-await` is the same
//!   nesting as `n` nested `async` blocks (the floor).

use super::{drive, timed, Case, Make, PendingOnce, Run};
use std::hint::black_box;
use std::pin::Pin;

pub const DEPTH_GROUP: &str = "nesting_depth";
pub const GEN_GROUP: &str = "nesting_generators";
pub const FUT_GROUP: &str = "nesting_futures";
pub const DEPTHS: [u32; 3] = [1, 10, 100];
pub const LEVELS: [usize; 3] = [1, 4, 16];
const INSN_OPS: u64 = 20_000;

pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    type Libs = Vec<(&'static str, Make)>;
    let groups: [(&'static str, Vec<String>, Libs); 3] = [
        (
            DEPTH_GROUP,
            DEPTHS.iter().map(u32::to_string).collect(),
            vec![
                ("ours", depth_ours as Make),
                ("corosensei", depth_corosensei),
            ],
        ),
        (
            GEN_GROUP,
            LEVELS.iter().map(usize::to_string).collect(),
            vec![
                ("ours", gen_ours as Make),
                ("stackful-0.1.5", gen_stackful_0_1),
                ("corosensei-forwarding", gen_corosensei),
            ],
        ),
        (
            FUT_GROUP,
            LEVELS.iter().map(usize::to_string).collect(),
            vec![
                ("ours", fut_ours as Make),
                ("stackful-0.1.5", fut_stackful_0_1),
                ("async-await", fut_async),
            ],
        ),
    ];
    for (group, params, libs) in groups {
        for param in &params {
            for &(function, make) in &libs {
                v.push(Case {
                    group,
                    function,
                    param: Some(param.clone()),
                    elements: 1,
                    bytes: None,
                    insn_ops: INSN_OPS,
                    make,
                });
            }
        }
    }
    v
}

fn param<T: std::str::FromStr>(p: Option<&str>) -> T {
    match p.and_then(|p| p.parse().ok()) {
        Some(v) => v,
        None => panic!("nesting: bad parameter {p:?}"),
    }
}

/// Recurses `depth - 1` more frames, then yields through `y` forever (until resumed
/// with `u64::MAX`). Every frame does work after the call, so none is a tail call.
#[inline(never)]
fn deep<Y: Fn(u64) -> u64>(depth: u32, y: &Y, mut x: u64) -> u64 {
    if depth <= 1 {
        loop {
            x = y(x.wrapping_add(1));
            if x == u64::MAX {
                return x;
            }
        }
    }
    let r = deep(black_box(depth - 1), y, x);
    black_box(r)
}

/// Resumes with `0..n` and consumes the yielded values.
macro_rules! resume_loop {
    ($n:expr, $resume:expr) => {{
        let n = $n;
        timed(|| {
            for i in 0..n {
                black_box($resume(black_box(i)));
            }
        })
    }};
}

pub fn depth_ours(p: Option<&str>) -> Run {
    use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
    let depth: u32 = param(p);
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64, u64>, x: u64| {
        deep(depth, &|v| y.yeet(v), x)
    });
    Pin::new(&mut g).resume(0);
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        resume_loop!(n, |i| g.as_mut().resume(i))
    })
}

pub fn depth_corosensei(p: Option<&str>) -> Run {
    use corosensei::{Coroutine, Yielder};
    let depth: u32 = param(p);
    let mut co =
        Coroutine::new(move |y: &Yielder<u64, u64>, x: u64| deep(depth, &|v| y.suspend(v), x));
    co.resume(0);
    Box::new(move |n| resume_loop!(n, |i| co.resume(i)))
}

/// `levels` nested generators of ours; the innermost yields through `y0`, the handle
/// of the outermost.
fn nest_ours(levels: usize, y0: &stackful::generator::YieldHandle<u64, u64>, mut x: u64) -> u64 {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    if levels <= 1 {
        loop {
            x = y0.yeet(x.wrapping_add(1));
        }
    }
    // Unchecked (not a scoped generator) so that the measured path is that of a plain
    // `StackfulGenerator`, as for corosensei and stackful 0.1.
    // SAFETY: `inner` borrows only `y0`, which outlives this call. `inner` is a local
    // of this frame: it is resumed until it completes, or dropped (unwound) when this
    // frame unwinds because the outermost generator is dropped; either way before
    // `y0` ends. It is never leaked.
    let mut inner = unsafe {
        StackfulGenerator::new_unchecked(move |_: &YieldHandle<(), ()>, ()| {
            nest_ours(levels - 1, y0, x)
        })
    };
    match Pin::new(&mut inner).resume(()) {
        GeneratorState::Complete(v) => v,
        GeneratorState::Yielded(()) => unreachable!(),
    }
}

pub fn gen_ours(p: Option<&str>) -> Run {
    use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
    let levels: usize = param(p);
    let mut g =
        StackfulGenerator::new(move |y: &YieldHandle<u64, u64>, x: u64| nest_ours(levels, y, x));
    Pin::new(&mut g).resume(0);
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        resume_loop!(n, |i| g.as_mut().resume(i))
    })
}

/// As [`nest_ours`], with stackful 0.1.5.
fn nest_stackful_0_1(
    levels: usize,
    y0: &stackful_0_1::generator::YieldHandle<u64, u64>,
    mut x: u64,
) -> u64 {
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    if levels <= 1 {
        loop {
            x = y0.yeet(x.wrapping_add(1));
        }
    }
    let mut inner = StackfulGenerator::new(move |_: &YieldHandle<(), ()>, ()| {
        nest_stackful_0_1(levels - 1, y0, x)
    });
    match Pin::new(&mut inner).resume(()) {
        GeneratorState::Complete(v) => v,
        GeneratorState::Yielded(()) => unreachable!(),
    }
}

pub fn gen_stackful_0_1(p: Option<&str>) -> Run {
    use stackful_0_1::generator::{Generator, StackfulGenerator, YieldHandle};
    let levels: usize = param(p);
    let mut g = StackfulGenerator::new(move |y: &YieldHandle<u64, u64>, x: u64| {
        nest_stackful_0_1(levels, y, x)
    });
    Pin::new(&mut g).resume(0);
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        resume_loop!(n, |i| g.as_mut().resume(i))
    })
}

/// `levels` nested corosensei coroutines; each level forwards the values between its
/// inner coroutine and its own yielder.
fn nest_corosensei(levels: usize, y: &corosensei::Yielder<u64, u64>, mut x: u64) -> u64 {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    if levels <= 1 {
        loop {
            x = y.suspend(x.wrapping_add(1));
        }
    }
    let mut inner =
        Coroutine::new(move |yi: &Yielder<u64, u64>, x: u64| nest_corosensei(levels - 1, yi, x));
    loop {
        match inner.resume(x) {
            CoroutineResult::Yield(v) => x = y.suspend(v),
            CoroutineResult::Return(r) => return r,
        }
    }
}

pub fn gen_corosensei(p: Option<&str>) -> Run {
    use corosensei::{Coroutine, Yielder};
    let levels: usize = param(p);
    let mut co = Coroutine::new(move |y: &Yielder<u64, u64>, x: u64| nest_corosensei(levels, y, x));
    co.resume(0);
    Box::new(move |n| resume_loop!(n, |i| co.resume(i)))
}

fn nest_fut_ours(levels: usize, n: u64) {
    if levels <= 1 {
        for _ in 0..n {
            stackful::wait(PendingOnce::new());
        }
    } else {
        stackful::wait(stackful::stackful(move || nest_fut_ours(levels - 1, n)));
    }
}

pub fn fut_ours(p: Option<&str>) -> Run {
    let levels: usize = param(p);
    Box::new(move |n| {
        let mut fut = Box::pin(stackful::stackful(move || nest_fut_ours(levels, n)));
        timed(|| drive(fut.as_mut()))
    })
}

fn nest_fut_stackful_0_1(levels: usize, n: u64) {
    if levels <= 1 {
        for _ in 0..n {
            stackful_0_1::wait(PendingOnce::new());
        }
    } else {
        stackful_0_1::wait(stackful_0_1::stackful(move || {
            nest_fut_stackful_0_1(levels - 1, n)
        }));
    }
}

pub fn fut_stackful_0_1(p: Option<&str>) -> Run {
    let levels: usize = param(p);
    Box::new(move |n| {
        let mut fut = Box::pin(stackful_0_1::stackful(move || {
            nest_fut_stackful_0_1(levels, n)
        }));
        timed(|| drive(fut.as_mut()))
    })
}

/// `async move { inner.await }` wrapped once per token: statically nested futures,
/// as nested `async fn` calls compile to.
macro_rules! nest_async {
    ([] $inner:expr) => { $inner };
    ([$head:tt $($tail:tt)*] $inner:expr) => {
        async move { nest_async!([$($tail)*] $inner).await }
    };
}

macro_rules! waits {
    ($n:expr) => {
        async move {
            for _ in 0..$n {
                PendingOnce::new().await;
            }
        }
    };
}

pub fn fut_async(p: Option<&str>) -> Run {
    let levels: usize = param(p);
    Box::new(move |n| match levels {
        1 => {
            let mut fut = Box::pin(waits!(n));
            timed(|| drive(fut.as_mut()))
        }
        4 => {
            let mut fut = Box::pin(nest_async!([x x x] waits!(n)));
            timed(|| drive(fut.as_mut()))
        }
        16 => {
            let mut fut = Box::pin(nest_async!([x x x x x x x x x x x x x x x] waits!(n)));
            timed(|| drive(fut.as_mut()))
        }
        _ => panic!("nesting_futures/async-await: no static nesting of {levels} levels"),
    })
}
