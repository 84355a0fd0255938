//! Group `wait_pending_once`: per operation, code inside a coroutine future waits on
//! a [`PendingOnce`] future: it is polled (Pending, wakes its task), the coroutine
//! suspends, the outer future returns `Pending` to the driver loop (a no-op waker),
//! the driver polls it again, the coroutine resumes, polls the future again (Ready).
//!
//! References in the same group: the same loop as native `async`/`.await` (the
//! floor: no stack switch at all), and the raw resume + suspend of corosensei and of
//! our generator (the switch alone, no future machinery).

use super::{case, drive, timed, Case, PendingOnce, Run};
use std::hint::black_box;
use std::pin::Pin;

pub const GROUP: &str = "wait_pending_once";
const INSN_OPS: u64 = 20_000;

pub fn cases() -> Vec<Case> {
    vec![
        case(GROUP, "ours", INSN_OPS, ours),
        case(GROUP, "stackful-0.1.5", INSN_OPS, stackful_0_1),
        case(GROUP, "async-await", INSN_OPS, async_await),
        case(GROUP, "corosensei-raw-switch", INSN_OPS, corosensei_raw),
        case(GROUP, "ours-raw-switch", INSN_OPS, ours_raw),
    ]
}

/// `stackful::stackful(|| loop { wait(PendingOnce) })`.
pub fn ours(_: Option<&str>) -> Run {
    Box::new(|n| {
        let mut fut = Box::pin(stackful::stackful(move || {
            for _ in 0..n {
                stackful::wait(PendingOnce::new());
            }
        }));
        timed(|| drive(fut.as_mut()))
    })
}

/// stackful 0.1.5's `stackful(..)` (an `async fn` around its `StackfulFuture`) and
/// `wait`.
pub fn stackful_0_1(_: Option<&str>) -> Run {
    Box::new(|n| {
        let mut fut = Box::pin(stackful_0_1::stackful(move || {
            for _ in 0..n {
                stackful_0_1::wait(PendingOnce::new());
            }
        }));
        timed(|| drive(fut.as_mut()))
    })
}

/// The same loop as an `async` block: the cost of the future machinery alone.
pub fn async_await(_: Option<&str>) -> Run {
    Box::new(|n| {
        let mut fut = Box::pin(async move {
            for _ in 0..n {
                PendingOnce::new().await;
            }
        });
        timed(|| drive(fut.as_mut()))
    })
}

/// corosensei: `resume(())` + `suspend(())`, no futures involved.
pub fn corosensei_raw(_: Option<&str>) -> Run {
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| loop {
        y.suspend(());
    });
    assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
    Box::new(move |n| {
        timed(|| {
            for _ in 0..n {
                black_box(co.resume(()));
            }
        })
    })
}

/// Our generator: `resume(())` + `yeet(())`, no futures involved.
pub fn ours_raw(_: Option<&str>) -> Run {
    use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
    let mut g = StackfulGenerator::new(|y: &YieldHandle<()>, ()| loop {
        y.yeet(());
    });
    assert_eq!(Pin::new(&mut g).resume(()), GeneratorState::Yielded(()));
    Box::new(move |n| {
        let mut g = Pin::new(&mut g);
        timed(|| {
            for _ in 0..n {
                black_box(g.as_mut().resume(()));
            }
        })
    })
}
