//! Criterion bench `drop_suspended`: dropping a suspended coroutine (its stack is
//! unwound to run the destructors of what it holds); ours and the reference libraries
//! side by side in one run. The cases are in `common/drop_suspended.rs`; see
//! BENCHMARKS.md for the results.

mod common;

fn main() {
    common::bench_main(&[common::drop_suspended::GROUP]);
}
