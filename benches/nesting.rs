//! Criterion bench `nesting`: ours and the reference libraries side by side in one
//! run. The cases are in `common/nesting.rs`; see BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[
        common::nesting::DEPTH_GROUP,
        common::nesting::GEN_GROUP,
        common::nesting::FUT_GROUP,
    ]);
}
