//! Group `round_trip`: one resume + one suspend of a started generator, passing a
//! `u64` each way.

use super::{case, timed, Case, Run};
use std::hint::black_box;
use std::pin::Pin;

pub const GROUP: &str = "round_trip";
const INSN_OPS: u64 = 20_000;

pub fn cases() -> Vec<Case> {
    vec![
        case(GROUP, "ours", INSN_OPS, ours),
        case(GROUP, "corosensei", INSN_OPS, corosensei),
        case(GROUP, "generator-rs", INSN_OPS, generator_rs),
        case(GROUP, "stackful-0.1.5", INSN_OPS, stackful_0_1),
    ]
}

/// `stackful::generator::StackfulGenerator` (pooled default stack).
pub fn ours(_: Option<&str>) -> Run {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64, u64>, mut x: u64| loop {
        x = y.yeet(x.wrapping_add(1));
    });
    // Start it, so that every measured resume is a plain switch.
    assert_eq!(Pin::new(&mut g).resume(0), GeneratorState::Yielded(1));
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        timed(|| {
            for i in 0..n {
                match g.as_mut().resume(black_box(i)) {
                    GeneratorState::Yielded(v) => {
                        black_box(v);
                    }
                    GeneratorState::Complete(()) => unreachable!(),
                }
            }
        })
    })
}

/// `corosensei::Coroutine` on its `DefaultStack` (1 MiB mmap).
pub fn corosensei(_: Option<&str>) -> Run {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    let mut co = Coroutine::new(|y: &Yielder<u64, u64>, mut x: u64| loop {
        x = y.suspend(x.wrapping_add(1));
    });
    assert!(matches!(co.resume(0), CoroutineResult::Yield(1)));
    Box::new(move |n| {
        timed(|| {
            for i in 0..n {
                match co.resume(black_box(i)) {
                    CoroutineResult::Yield(v) => {
                        black_box(v);
                    }
                    CoroutineResult::Return(()) => unreachable!(),
                }
            }
        })
    })
}

/// `generator::Generator` (generator-rs 0.8, `Gn::new_scoped`).
pub fn generator_rs(_: Option<&str>) -> Run {
    let mut g = generator::Gn::<u64>::new_scoped(|mut s| {
        let mut x = s.get_yield().unwrap_or(0);
        loop {
            x = s.yield_(x.wrapping_add(1)).unwrap_or(0);
        }
    });
    assert_eq!(g.send(0), 1);
    Box::new(move |n| {
        timed(|| {
            for i in 0..n {
                black_box(g.send(black_box(i)));
            }
        })
    })
}

/// stackful 0.1.5's `StackfulGenerator`.
pub fn stackful_0_1(_: Option<&str>) -> Run {
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    let mut g = StackfulGenerator::new(|y: &YieldHandle<u64, u64>, mut x: u64| loop {
        x = y.yeet(x.wrapping_add(1));
    });
    assert!(matches!(
        Pin::new(&mut g).resume(0),
        GeneratorState::Yielded(1)
    ));
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        timed(|| {
            for i in 0..n {
                match g.as_mut().resume(black_box(i)) {
                    GeneratorState::Yielded(v) => {
                        black_box(v);
                    }
                    GeneratorState::Complete(()) => unreachable!(),
                }
            }
        })
    })
}
