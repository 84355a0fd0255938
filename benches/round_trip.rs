//! Criterion bench `round_trip`: ours and the reference libraries side by side in one
//! run. The cases are in `common/round_trip.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::round_trip::GROUP]);
}
