//! Group `budget`: per operation, one `stackful::budget::consume(1)` call (the
//! cooperative yield budget), at the back-edge of an otherwise empty loop.
//!
//! * `consume-in-coroutine`: inside a coroutine future whose budget is off, so the
//!   loop never yields: the fast path alone.
//! * `consume-default-budget`: the same with the default budget of 10,000 units: one
//!   yield (a suspension, a return to the driver loop and a resume) every 10,000
//!   calls, amortised.
//! * `consume-outside`: outside any coroutine (a no-op after the thread-local read).
//! * `meter-in-coroutine`: `Meter::consume(1)` on a local meter inside a coroutine
//!   with the default budget (inlined; out of line once per share, i.e. per budget,
//!   where it also yields).
//! * `loop-alone`: the loop without the call, the floor the others are measured on.

use super::{case, drive, timed, Case, Run};
use std::hint::black_box;

pub const GROUP: &str = "budget";
const INSN_OPS: u64 = 200_000;

pub fn cases() -> Vec<Case> {
    vec![
        case(GROUP, "consume-in-coroutine", INSN_OPS, in_coroutine_off),
        case(
            GROUP,
            "consume-default-budget",
            INSN_OPS,
            in_coroutine_default,
        ),
        case(GROUP, "consume-outside", INSN_OPS, outside),
        case(GROUP, "meter-in-coroutine", INSN_OPS, meter_in_coroutine),
        case(GROUP, "loop-alone", INSN_OPS, loop_alone),
    ]
}

/// `n` calls of `consume(1)` (the unit count goes through `black_box`, as a real
/// interpreter's would not be a constant).
#[inline(always)]
fn consume_loop(n: u64) {
    for _ in 0..n {
        stackful::budget::consume(black_box(1));
    }
}

fn in_coroutine(units: usize) -> Run {
    Box::new(move |n| {
        let fut = stackful::Builder::new()
            .yield_budget(units)
            .future(move || consume_loop(n))
            .expect("stack");
        let mut fut = Box::pin(fut);
        timed(|| drive(fut.as_mut()))
    })
}

pub fn in_coroutine_off(_: Option<&str>) -> Run {
    in_coroutine(0)
}

pub fn in_coroutine_default(_: Option<&str>) -> Run {
    in_coroutine(stackful::budget::DEFAULT_BUDGET)
}

pub fn outside(_: Option<&str>) -> Run {
    Box::new(|n| timed(|| consume_loop(n)))
}

pub fn loop_alone(_: Option<&str>) -> Run {
    Box::new(|n| {
        timed(|| {
            for _ in 0..n {
                black_box(1usize);
            }
        })
    })
}

pub fn meter_in_coroutine(_: Option<&str>) -> Run {
    Box::new(move |n| {
        let fut = stackful::Builder::new()
            .yield_budget(stackful::budget::DEFAULT_BUDGET)
            .future(move || {
                let mut meter = stackful::budget::Meter::new();
                for _ in 0..n {
                    meter.consume(black_box(1));
                }
            })
            .expect("stack");
        let mut fut = Box::pin(fut);
        timed(|| drive(fut.as_mut()))
    })
}
