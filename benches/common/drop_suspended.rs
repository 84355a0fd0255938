//! Group `drop_suspended`: the drop of a coroutine that is suspended, with a value
//! that has a destructor (a `String`) live on its stack two calls below its entry. A
//! correct drop unwinds the coroutine's stack to run that destructor: every library
//! here does (ours and stackful 0.1.5 with a private panic payload, corosensei with
//! its forced unwind), so this measures the unwinder's walk of the suspended frames.
//!
//! The coroutines are created and started in batches of [`BATCH`] outside the timed
//! region; only their drops are timed. Callgrind (`insn_counts`) cannot separate the
//! two: its Ir/op is create + start + drop, to be compared with `create_run_drop`.

use super::{Case, Run};
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub const GROUP: &str = "drop_suspended";

/// Coroutines created per untimed batch.
const BATCH: u64 = 256;

pub fn cases() -> Vec<Case> {
    vec![
        super::case(GROUP, "ours", 2_000, ours),
        super::case(GROUP, "corosensei", 2_000, corosensei),
        super::case(GROUP, "stackful-0.1.5", 2_000, stackful_0_1),
    ]
}

/// The coroutine body's frames: a `String` held across the suspension, one call
/// deeper, as real code holds its buffers.
#[inline(never)]
fn holds_a_string(suspend: &mut dyn FnMut()) -> usize {
    let s = black_box(String::from("live across the suspension"));
    suspend();
    s.len()
}

/// A `Run` that creates `n` suspended coroutines in batches and times their drops.
fn drops<T: 'static>(mut new_suspended: impl FnMut() -> T + 'static) -> Run {
    let mut v: Vec<T> = Vec::with_capacity(BATCH as usize);
    Box::new(move |n| {
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let k = left.min(BATCH);
            left -= k;
            for _ in 0..k {
                v.push(new_suspended());
            }
            let start = Instant::now();
            v.clear();
            total += start.elapsed();
        }
        total
    })
}

pub fn ours(_: Option<&str>) -> Run {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    drops(|| {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
            holds_a_string(&mut || y.yeet(()));
        });
        assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(()));
        g
    })
}

pub fn corosensei(_: Option<&str>) -> Run {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    drops(|| {
        let mut c = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            holds_a_string(&mut || y.suspend(()));
        });
        assert!(matches!(c.resume(()), CoroutineResult::Yield(())));
        c
    })
}

pub fn stackful_0_1(_: Option<&str>) -> Run {
    use stackful_0_1::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    drops(|| {
        let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| {
            holds_a_string(&mut || y.yeet(()));
        });
        assert!(matches!(
            Pin::new(&mut g).resume(()),
            GeneratorState::Yielded(())
        ));
        g
    })
}
