//! Criterion bench `budget`: the cost of one `stackful::budget::consume` call. The
//! cases are in `common/budget.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::budget::GROUP]);
}
