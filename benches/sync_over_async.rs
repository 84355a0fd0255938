//! Criterion bench `sync_over_async`: ours and the reference libraries side by side in one
//! run. The cases are in `common/sync_over_async.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::sync_over_async::GROUP]);
}
