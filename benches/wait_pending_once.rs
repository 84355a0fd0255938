//! Criterion bench `wait_pending_once`: ours and the reference libraries side by side in one
//! run. The cases are in `common/wait_pending_once.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::wait_pending_once::GROUP]);
}
