//! `stackful::scope`: coroutines that borrow, dropped by their scope (issue #14), and
//! the unchecked constructors used as their contract says.

mod common;

#[cfg(panic = "unwind")]
use common::Drops;
use futures::StreamExt;
use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{wait, Builder, StreamHandle};
use std::cell::Cell;
#[cfg(any(panic = "unwind", not(target_arch = "wasm32")))]
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

enum Tree {
    Leaf(u32),
    Node(Vec<Tree>),
}

fn walk(tree: &Tree, y: &YieldHandle<u32>) {
    match tree {
        Tree::Leaf(v) => y.yeet(*v),
        Tree::Node(children) => children.iter().for_each(|c| walk(c, y)),
    }
}

fn tree(depth: u32, next: &mut u32) -> Tree {
    if depth == 0 {
        *next += 1;
        Tree::Leaf(*next)
    } else {
        Tree::Node((0..3).map(|_| tree(depth - 1, next)).collect())
    }
}

#[test]
fn a_recursive_walk_over_borrowed_data() {
    let t = tree(5, &mut 0);
    let leaves: Vec<u32> = stackful::scope(|s| {
        s.generator(|y: &YieldHandle<u32>, ()| walk(&t, y))
            .collect()
    });
    assert_eq!(leaves, (1..=243).collect::<Vec<_>>());
    // `t` is still ours.
    assert!(matches!(t, Tree::Node(_)));
}

#[test]
fn two_borrowing_generators_interleave_and_compare() {
    let a = tree(3, &mut 0);
    let b = tree(3, &mut 0);
    let same = stackful::scope(|s| {
        let left = s.generator(|y: &YieldHandle<u32>, ()| walk(&a, y));
        let right = s.generator(|y: &YieldHandle<u32>, ()| walk(&b, y));
        left.eq(right)
    });
    assert!(same);
}

#[test]
fn a_scoped_generator_mutably_borrows_and_resume_values_borrow() {
    let mut log = Vec::new();
    let words = [String::from("a"), String::from("bc")];
    stackful::scope(|s| {
        let mut g = s.generator(|y: &YieldHandle<usize, &str>, first: &str| {
            let mut word = first;
            loop {
                log.push(word.to_owned());
                if word == "bc" {
                    return log.len();
                }
                word = y.yeet(word.len());
            }
        });
        assert_eq!(
            Pin::new(&mut g).resume(&words[0]),
            GeneratorState::Yielded(1)
        );
        assert_eq!(
            Pin::new(&mut g).resume(&words[1]),
            GeneratorState::Complete(2)
        );
    });
    assert_eq!(log, ["a", "bc"]);
}

#[test]
fn nested_scopes_borrow_from_each_other() {
    let base = [1, 2, 3];
    let total = stackful::scope(|outer| {
        let mut doubled =
            outer.generator(|y: &YieldHandle<i32>, ()| base.iter().for_each(|v| y.yeet(v * 2)));
        let first = doubled.next().unwrap();
        let rest = stackful::scope(|inner| {
            // The inner scope's generator drives the outer scope's one.
            let sum = inner.generator(|y: &YieldHandle<i32>, ()| {
                let s: i32 = doubled.by_ref().sum();
                y.yeet(s + first)
            });
            sum.collect::<Vec<_>>()
        });
        rest[0] + base.len() as i32
    });
    assert_eq!(total, 2 + 4 + 6 + 3);
}

/// Suspends forever, holding a token.
#[cfg(panic = "unwind")]
fn hold(drops: &Drops) -> impl FnOnce(&YieldHandle<u32>, ()) + '_ {
    move |y, ()| {
        let _t = drops.token();
        loop {
            y.yeet(1);
        }
    }
}

#[cfg(panic = "unwind")]
#[test]
fn early_exit_drops_every_coroutine_made_in_the_scope() {
    let drops = Drops::new();
    let n = stackful::scope(|s| {
        let mut a = s.generator(hold(&drops));
        let mut b = s.generator(hold(&drops));
        let c = s.generator(hold(&drops)); // never started: nothing to unwind
        assert_eq!(a.next(), Some(1));
        assert_eq!(b.next(), Some(1));
        std::mem::forget(c);
        // `a` is forgotten while suspended: the scope still unwinds it.
        std::mem::forget(a);
        drop(b); // unwinds now
        assert_eq!(drops.dropped(), 1);
        7
    });
    assert_eq!(n, 7);
    assert_eq!(drops.created(), 2);
    drops.assert_all_dropped_once();
}

#[cfg(panic = "unwind")]
#[test]
fn a_panic_inside_the_scope_unwinds_every_coroutine_and_propagates() {
    let drops = Drops::new();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stackful::scope(|s| {
            let mut gens: Vec<_> = (0..5).map(|_| s.generator(hold(&drops))).collect();
            for g in &mut gens {
                g.next();
            }
            assert_eq!(drops.created(), 5);
            std::panic::panic_any(42u32);
        })
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    drops.assert_all_dropped_once();
}

#[cfg(panic = "unwind")]
#[test]
fn a_panic_inside_a_scoped_generator_propagates_to_its_resumer() {
    let data = String::from("x");
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stackful::scope(|s| {
            let mut g = s.generator(|_: &YieldHandle<()>, ()| panic!("inner {}", data));
            g.next()
        })
    }))
    .unwrap_err();
    assert_eq!(common::panic_message(&*payload), "inner x");
}

#[cfg(panic = "unwind")]
#[test]
fn a_panic_while_the_scope_unwinds_a_coroutine_propagates_after_all_are_unwound() {
    let drops = Drops::new();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stackful::scope(|s| {
            let mut a = s.generator(hold(&drops));
            // Catches its cancellation and panics (a panic in a destructor during
            // the unwind would abort, as any panic during unwinding does).
            let mut p = s.generator(|y: &YieldHandle<u32>, ()| {
                let cancelled =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.yeet(0)));
                assert!(cancelled.is_err());
                panic!("after the cancellation");
            });
            let mut b = s.generator(hold(&drops));
            a.next();
            p.next();
            b.next();
            std::mem::forget((a, p, b));
        })
    }))
    .unwrap_err();
    assert_eq!(common::panic_message(&*payload), "after the cancellation");
    drops.assert_all_dropped_once();
}

/// The data race of issue #14, made sound: the coroutine suspended inside
/// `std::thread::scope` is forgotten, but the scope unwinds it before its borrows end,
/// so the scoped thread is joined while `s` still says "Happy".
#[cfg(all(panic = "unwind", not(target_arch = "wasm32")))]
#[test]
fn a_forgotten_coroutine_inside_a_thread_scope_is_joined_before_the_borrow_ends() {
    struct SendOnDrop(Option<std::sync::mpsc::SyncSender<()>>);
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            self.0.take().unwrap().send(()).unwrap();
        }
    }
    let mut s = "Happy".to_owned();
    let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
    let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
    stackful::scope(|scope| {
        let s = s.as_str();
        let mut g = scope.generator(move |y: &YieldHandle<()>, ()| {
            std::thread::scope(move |threads| {
                threads.spawn(move || {
                    rx1.recv().unwrap();
                    tx2.send(s.to_owned()).unwrap();
                });
                // Lets the thread go when this stack unwinds.
                let _go = SendOnDrop(Some(tx1));
                y.yeet(());
            });
        });
        let _ = g.next();
        std::mem::forget(g);
    });
    s.clear();
    s.push_str("Sad");
    assert_eq!(rx2.recv().unwrap(), "Happy");
}

#[test]
fn scoped_futures_and_streams_borrow_and_complete_inside_the_scope() {
    let names = vec!["a".to_string(), "bcd".to_string()];
    let mut seen = Vec::new();
    let (total, items) = stackful::scope(|s| {
        let total = s.future(|| {
            names
                .iter()
                .map(|n| wait(common::pend_n(2, n.len())))
                .sum::<usize>()
        });
        let items = s.stream(|y: &StreamHandle<&str>| {
            for n in &names {
                wait(common::pend_n(1, ()));
                seen.push(n.len());
                y.yield_item(n);
            }
        });
        let total = futures::executor::block_on(total);
        let items: Vec<&str> = futures::executor::block_on(items.collect());
        (total, items.join(","))
    });
    assert_eq!((total, items.as_str()), (4, "a,bcd"));
    assert_eq!(seen, [1, 3]);
}

#[cfg(panic = "unwind")]
#[test]
fn a_pending_scoped_future_is_dropped_by_the_scope() {
    let drops = Drops::new();
    stackful::scope(|s| {
        let mut fut = s.future(|| {
            let _t = drops.token();
            wait(std::future::pending::<()>())
        });
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert!(!fut.is_complete());
        std::mem::forget(fut);
        assert_eq!(drops.dropped(), 0);
    });
    drops.assert_all_dropped_once();
}

#[test]
fn the_scoped_builder_sets_the_stack_and_takes_a_borrowed_stack() {
    let text = String::from("abc");
    let mut memory = common::HeapStack::new(64 * 1024, Rc::new(Cell::new(false)));
    let out = stackful::scope(|s| -> std::io::Result<String> {
        let small = s
            .builder(Builder::new().stack_size(32 * 1024))
            .generator(|y: &YieldHandle<char>, ()| text.chars().for_each(|c| y.yeet(c)))?;
        let on_borrowed = s
            .builder(Builder::new())
            .generator_with_stack(&mut memory, |y: &YieldHandle<char>, ()| {
                text.chars().rev().for_each(|c| y.yeet(c))
            })?;
        Ok(small.chain(on_borrowed).collect())
    })
    .unwrap();
    assert_eq!(out, "abccba");
}

// The scope ends with suspended coroutines: they must be unwound.
#[cfg(panic = "unwind")]
#[test]
fn coroutines_created_while_the_scope_ends_are_dropped_too() {
    let drops = Drops::new();
    stackful::scope(|s| {
        struct SpawnOnDrop<'s, 'e>(&'s stackful::Scope<'s, 'e>, &'s Drops);
        impl Drop for SpawnOnDrop<'_, '_> {
            fn drop(&mut self) {
                // A destructor running during the scope's cleanup makes another.
                let drops = self.1;
                let mut g = self.0.generator(hold(drops));
                g.next();
                std::mem::forget(g);
            }
        }
        let mut g = s.generator(|y: &YieldHandle<u32>, ()| {
            let _spawn = SpawnOnDrop(s, &drops);
            y.yeet(0)
        });
        g.next();
        std::mem::forget(g);
    });
    drops.assert_all_dropped_once();
    assert_eq!(drops.created(), 1);
}

// ---------------------------------------------------------------- unchecked constructors

#[test]
fn unchecked_future_borrows_and_is_driven_to_completion() {
    let data = [1, 2, 3];
    // SAFETY: awaited to completion right here, before `data` is dropped.
    let fut = unsafe {
        stackful::future::StackfulFuture::new_unchecked(|| {
            data.iter()
                .map(|&v| wait(common::pend_n(1, v)))
                .sum::<i32>()
        })
    };
    assert_eq!(futures::executor::block_on(fut), 6);
}

#[test]
fn unchecked_stream_and_generator_borrow() {
    let data = vec![1, 2, 3];
    // SAFETY: collected to the end before `data` is dropped.
    let s = unsafe {
        stackful::StackfulStream::new_unchecked(|y: &StreamHandle<i32>| {
            data.iter()
                .for_each(|&v| y.yield_item(wait(common::pend_n(1, v))))
        })
    };
    assert_eq!(futures::executor::block_on(s.collect::<Vec<_>>()), data);
    // SAFETY: dropped (unwound) at the end of this statement's scope, before `data`.
    let g = unsafe {
        StackfulGenerator::new_unchecked(|y: &YieldHandle<i32>, ()| {
            data.iter().for_each(|&v| y.yeet(v))
        })
    };
    assert_eq!(g.collect::<Vec<_>>(), data);
}

#[cfg(panic = "unwind")]
#[test]
fn unchecked_coroutines_dropped_while_suspended_are_unwound() {
    let drops = Drops::new();
    // SAFETY: dropped below, before `drops`.
    let mut g = unsafe { StackfulGenerator::new_unchecked(hold(&drops)) };
    assert_eq!(g.next(), Some(1));
    let d = &drops;
    // SAFETY: dropped below, before `drops`.
    let mut fut = unsafe {
        Builder::new()
            .future_unchecked(move || {
                let _t = d.token();
                wait(std::future::pending::<()>())
            })
            .unwrap()
    };
    let waker = futures::task::noop_waker();
    assert!(Pin::new(&mut fut)
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(g);
    drop(fut);
    drops.assert_all_dropped_once();
    assert_eq!(drops.created(), 2);
}

#[test]
fn unchecked_with_stack_runs_on_a_borrowed_stack() {
    let freed = Rc::new(Cell::new(false));
    let mut memory = common::HeapStack::new(64 * 1024, freed.clone());
    let word = String::from("stack");
    {
        // SAFETY: run to completion before `memory` and `word` go.
        let g = unsafe {
            StackfulGenerator::with_stack_unchecked(&mut memory, |y: &YieldHandle<usize>, ()| {
                y.yeet(word.len())
            })
        };
        assert_eq!(g.collect::<Vec<_>>(), [5]);
    }
    assert!(!freed.get(), "the borrowed stack is still ours");
    drop(memory);
    assert!(freed.get());
}

#[cfg(not(target_arch = "wasm32"))]
type Slot = std::cell::RefCell<Option<StackfulGenerator<'static, (), (), ()>>>;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static RUNNING: Slot = const { std::cell::RefCell::new(None) };
}

/// On a new thread: puts `g` in a thread-local, lets a `'static` future resume it so
/// that it suspends the future's whole chain in `wait` (`g` is then running), forgets
/// the future (sound: it is 'static) and exits: the thread-local's destructor drops
/// `g` while it is still running.
#[cfg(not(target_arch = "wasm32"))]
fn drop_while_running(make: fn() -> StackfulGenerator<'static, (), (), ()>) {
    std::thread::spawn(move || {
        RUNNING.with(|slot| *slot.borrow_mut() = Some(make()));
        let mut outer = stackful::stackful(|| {
            RUNNING.with(|slot| {
                let mut guard = slot.borrow_mut();
                let _ = Pin::new(guard.as_mut().unwrap()).resume(());
            })
        });
        let waker = futures::task::noop_waker();
        let _ = Pin::new(&mut outer).poll(&mut std::task::Context::from_waker(&waker));
        std::mem::forget(outer);
    })
    .join()
    .unwrap();
}

/// A coroutine that borrows must never be leaked: dropping one that is still running
/// (its resumer was leaked) aborts with a message instead.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn dropping_a_running_borrowing_coroutine_aborts_with_a_message() {
    const NAME: &str = "dropping_a_running_borrowing_coroutine_aborts_with_a_message";
    if common::is_child(NAME) {
        drop_while_running(|| {
            // Made by an unchecked constructor, so it may borrow and must never be
            // leaked (what it borrows here is 'static, so that a thread-local can
            // hold it).
            // SAFETY: deliberately broken (this child process must abort).
            unsafe {
                StackfulGenerator::new_unchecked(|_: &YieldHandle<()>, ()| {
                    wait(std::future::pending::<()>())
                })
            }
        });
        unreachable!("the drop at thread exit must abort");
    }
    let (status, stderr) = common::run_child(NAME);
    assert!(common::aborted(&status), "{status}: {stderr}");
    assert!(
        stderr.contains("borrows from its creator")
            && stderr.contains("still running")
            && stderr.contains("dangle"),
        "{stderr}"
    );
}

/// The same with a `'static` coroutine: leaking it is sound, so it is leaked and
/// counted.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn dropping_a_running_static_coroutine_leaks_it() {
    let before = stackful::leaked_stacks();
    drop_while_running(|| {
        StackfulGenerator::new(|_: &YieldHandle<()>, ()| wait(std::future::pending::<()>()))
    });
    // No other test of this binary leaks a stack.
    assert_eq!(stackful::leaked_stacks(), before + 1);
}

/// An older scoped future resumes a newer scoped generator that waits on a pending
/// future: the generator runs on top of the suspended future when the scope ends.
/// The scope sets the running one aside, unwinds the future (which unwinds through
/// the generator), then drops the generator (found by review; it aborted before).
#[cfg(panic = "unwind")]
#[test]
fn a_coroutine_running_on_top_of_another_at_scope_end_is_dropped_after_it() {
    let drops = Drops::new();
    let after_wait = Cell::new(false);
    stackful::scope(|s| {
        let cell = Rc::new(std::cell::RefCell::new(None));
        let theirs = cell.clone();
        let mut fut = s.future(move || {
            let mut g = theirs.borrow_mut();
            let g: &mut stackful::ScopedGenerator<'_, u32, ()> = g.as_mut().unwrap();
            let _ = Pin::new(g).resume(());
        });
        let g = s.generator(|_: &YieldHandle<u32>, ()| {
            let _t = drops.token();
            wait(std::future::pending::<()>());
            after_wait.set(true);
        });
        *cell.borrow_mut() = Some(g);
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        std::mem::forget(fut);
    });
    assert!(!after_wait.get());
    drops.assert_all_dropped_once();
}

/// Review: a second panic while the scope ends, whose payload's destructor panics
/// too, must not stop the scope from ending its other coroutines.
#[cfg(panic = "unwind")]
#[test]
fn panicking_panic_payloads_at_scope_end_do_not_skip_coroutines() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ARMED: AtomicBool = AtomicBool::new(true);
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if ARMED.swap(false, Ordering::SeqCst) {
                panic!("payload destructor panics");
            }
        }
    }
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            std::panic::panic_any(Bomb);
        }
    }
    let drops = Drops::new();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stackful::scope(|s| {
            let mut victim = s.generator(hold(&drops));
            victim.next();
            std::mem::forget(victim);
            let (b1, b2) = (PanicOnDrop, PanicOnDrop);
            let g1 = s.generator(move |_: &YieldHandle<()>, ()| drop(b1));
            let g2 = s.generator(move |_: &YieldHandle<()>, ()| drop(b2));
            std::mem::forget((g1, g2));
        })
    }))
    .unwrap_err();
    assert!(payload.is::<Bomb>());
    drops.assert_all_dropped_once();
    assert_eq!(drops.created(), 1);
}

/// Review: formatting the scope (`Debug`) from a coroutine that suspends inside the
/// formatter's writer must not keep the scope from ending that coroutine.
#[cfg(panic = "unwind")]
#[test]
fn a_coroutine_suspended_while_formatting_its_scope_is_ended() {
    struct SuspendingWriter<'a>(&'a YieldHandle<()>);
    impl std::fmt::Write for SuspendingWriter<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if s != "Scope" {
                self.0.yeet(());
            }
            Ok(())
        }
    }
    let drops = Drops::new();
    stackful::scope(|s| {
        let d = &drops;
        let mut victim = s.generator(move |y: &YieldHandle<()>, ()| {
            let _t = d.token();
            use std::fmt::Write;
            let _ = write!(SuspendingWriter(y), "{s:?}");
        });
        victim.next();
        std::mem::forget(victim);
    });
    drops.assert_all_dropped_once();
    assert_eq!(drops.created(), 1);
}
