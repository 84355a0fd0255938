//! Async streams written as synchronous code: `stackful::stream`.
//!
//! Two streams, both plain loops and recursion that hand out items with
//! `yield_item` and `wait` on async calls in between:
//!
//! * a paginated listing: the closure fetches page after page from a (simulated)
//!   async API and yields the entries one by one. The consumer uses `StreamExt`
//!   combinators and stops early, so only the pages it needs are fetched, and the
//!   unfinished closure is unwound when the stream is dropped;
//! * a recursive walk of a tree whose children are fetched asynchronously, which
//!   would need boxed recursive futures or a hand-written state machine as an
//!   `async` stream.
//!
//! Run it with `cargo run --example stream`.

use futures::StreamExt;
use stackful::{stream, wait, StreamHandle};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// A page of a listing, as a remote API would return it.
struct Page {
    entries: Vec<u32>,
    next: Option<usize>,
}

/// The async API: returns page `n` of the listing after a short delay.
async fn fetch_page(n: usize, fetched: Rc<Cell<usize>>) -> Page {
    tokio::time::sleep(Duration::from_millis(2)).await;
    fetched.set(fetched.get() + 1);
    let first = n as u32 * 10;
    Page {
        entries: (first..first + 10).collect(),
        next: (n < 99).then_some(n + 1),
    }
}

/// Tracks the stream's closure: says when it is dropped (also by unwinding).
struct Guard(&'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        println!("  ({} finished: its stack was unwound or returned)", self.0);
    }
}

/// The async "children of a node" call of the tree walk.
async fn children(node: u32) -> Vec<u32> {
    tokio::task::yield_now().await;
    if node < 8 {
        vec![node * 3 + 1, node * 3 + 2]
    } else {
        Vec::new()
    }
}

/// A depth-first walk, written as ordinary recursion: yields `(depth, node)`.
fn walk(node: u32, depth: usize, y: &StreamHandle<(usize, u32)>) {
    y.yield_item((depth, node));
    for child in wait(children(node)) {
        walk(child, depth + 1, y);
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Streams are !Send like every coroutine: a current_thread runtime's block_on (or
    // a LocalSet) runs them.
    rt.block_on(async {
        println!("paginated listing, first 5 multiples of 7 above 100:");
        let fetched = Rc::new(Cell::new(0));
        let f = Rc::clone(&fetched);
        let listing = stream(move |y: &StreamHandle<u32>| {
            let _guard = Guard("the listing");
            let mut page = Some(0);
            while let Some(n) = page {
                let Page { entries, next } = wait(fetch_page(n, Rc::clone(&f)));
                for entry in entries {
                    y.yield_item(entry);
                }
                page = next;
            }
        });
        let picked: Vec<u32> = listing
            .filter(|v| std::future::ready(*v > 100 && v % 7 == 0))
            .take(5)
            .collect()
            .await;
        // wasm32 is panic=abort: an unfinished stream that is dropped is not unwound
        // there (its stack is leaked), so the guard above says nothing.
        #[cfg(target_arch = "wasm32")]
        println!(
            "  (the listing was dropped unfinished: on wasm32 its stack is leaked, not \
             unwound; stackful::leaked_stacks() = {})",
            stackful::leaked_stacks()
        );
        println!("  got {picked:?}");
        println!("  fetched {} of 100 pages", fetched.get());
        assert_eq!(picked, [105, 112, 119, 126, 133]);
        assert_eq!(fetched.get(), 14);

        println!("tree walk with async children:");
        let mut tree = stream(|y: &StreamHandle<(usize, u32)>| walk(0, 0, y));
        let mut count = 0;
        while let Some((depth, node)) = tree.next().await {
            println!("  {:indent$}{node}", "", indent = depth * 2);
            count += 1;
        }
        assert!(tree.is_complete());
        println!("  {count} nodes");
        assert_eq!(count, 13);
    });
}
