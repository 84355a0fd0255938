//! Generators on stable Rust.
//!
//! 1. Resume values and yielding *through* a nested generator (the stackful 0.1
//!    example): the inner generator captures the outer one's `YieldHandle`, and a
//!    `yeet` on it suspends both stacks at once.
//! 2. A generator as an `Iterator`: an in-order walk of a binary tree that yields
//!    from deep inside the recursion.
//!
//! Generators that borrow (the outer handle, the tree) are made in a
//! [`stackful::scope`], which drops them before the borrowed data goes away.
//!
//! Run it with `cargo run --example generator`.

use stackful::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use stackful::{Scope, ScopedGenerator};
use std::pin::Pin;

fn nested() {
    let mut gen = StackfulGenerator::new(|y: &YieldHandle<i32, i32>, mut r: i32| {
        for i in 0..100 {
            assert_eq!(r, i);
            r = y.yeet(i);
        }

        // Yield across nested generators: `gen2` yields on the *outer* handle `y`.
        // It borrows `y` and `r`, so it is made in a scope.
        stackful::scope(|s| {
            let mut gen2 = s.generator(|_: &YieldHandle<(), ()>, ()| {
                assert_eq!(r, 100);
                r = y.yeet(100);
            });
            assert_eq!(Pin::new(&mut gen2).resume(()), GeneratorState::Complete(()));
        });

        assert_eq!(r, 1000);
        1000
    });
    let mut gen = Pin::new(&mut gen);

    let mut yielded = Vec::new();
    for i in 0..101 {
        match gen.as_mut().resume(i) {
            GeneratorState::Yielded(v) => yielded.push(v),
            GeneratorState::Complete(v) => panic!("completed early with {v}"),
        }
    }
    assert_eq!(yielded, (0..=100).collect::<Vec<_>>());
    println!(
        "nested: yielded {:?} .. {:?} ({} values; the last one from inside a nested generator)",
        &yielded[..3],
        &yielded[yielded.len() - 3..],
        yielded.len()
    );

    let done = gen.as_mut().resume(1000);
    println!("nested: resumed with 1000 -> {done:?}");
    assert_eq!(done, GeneratorState::Complete(1000));
}

/// A binary search tree.
enum Tree {
    Leaf,
    Node(Box<Tree>, i32, Box<Tree>),
}

impl Tree {
    fn insert(&mut self, value: i32) {
        match self {
            Tree::Leaf => *self = Tree::Node(Box::new(Tree::Leaf), value, Box::new(Tree::Leaf)),
            Tree::Node(left, v, right) => {
                if value < *v {
                    left.insert(value);
                } else {
                    right.insert(value);
                }
            }
        }
    }

    /// An ordinary recursive walk; `yeet` suspends the whole recursion.
    fn walk(&self, depth: usize, y: &YieldHandle<(usize, i32)>) {
        if let Tree::Node(left, v, right) = self {
            left.walk(depth + 1, y);
            y.yeet((depth, *v));
            right.walk(depth + 1, y);
        }
    }

    /// The tree's values in order, produced lazily by a generator of the scope `s`
    /// (it borrows the tree).
    fn in_order<'scope>(
        &'scope self,
        s: &'scope Scope<'scope, '_>,
    ) -> ScopedGenerator<'scope, (usize, i32), (), ()> {
        s.generator(move |y: &YieldHandle<(usize, i32)>, ()| self.walk(0, y))
    }
}

fn tree() {
    let input = [50, 30, 70, 20, 40, 60, 80, 35, 45, 65];
    let mut tree = Tree::Leaf;
    for v in input {
        tree.insert(v);
    }

    // The walks borrow the tree: scoped generators, dropped when the scope ends.
    stackful::scope(|s| {
        let walked: Vec<(usize, i32)> = tree.in_order(s).collect();
        println!("tree: in-order walk (depth, value): {walked:?}");
        let values: Vec<i32> = walked.iter().map(|&(_, v)| v).collect();
        let mut sorted = input.to_vec();
        sorted.sort_unstable();
        assert_eq!(values, sorted);

        // Lazy: only as much of the recursion runs as is consumed. Dropping the
        // unfinished generator unwinds its stack.
        let first: Vec<i32> = tree.in_order(s).map(|(_, v)| v).take(3).collect();
        println!("tree: first three: {first:?}");
        assert_eq!(first, sorted[..3]);

        let depth = walked.iter().map(|&(d, _)| d).max().unwrap_or(0);
        let deepest: Vec<i32> = tree
            .in_order(s)
            .filter(|&(d, _)| d == depth)
            .map(|(_, v)| v)
            .collect();
        println!("tree: deepest nodes (depth {depth}): {deepest:?}");
        assert_eq!((depth, deepest), (3, vec![35, 45, 65]));
    });
}

fn main() {
    nested();
    tree();
}
