//! Criterion bench `create_run_drop`: ours and the reference libraries side by side in one
//! run. The cases are in `common/create_run_drop.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[
        common::create_run_drop::GROUP,
        common::create_run_drop::BURST_GROUP,
    ]);
}
