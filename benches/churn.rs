//! Criterion bench `churn`: many coroutines in flight, created and completed in rounds;
//! ours and the reference libraries side by side in one run. The cases are in
//! `common/churn.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::churn::GROUP]);
}
