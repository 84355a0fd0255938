//! Compiles the C side of the tests (c/coro.c) against include/stackful.h.
fn main() {
    println!("cargo:rerun-if-changed=c/coro.c");
    println!("cargo:rerun-if-changed=../../include/stackful.h");
    cc::Build::new()
        .file("c/coro.c")
        .include("../../include")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("stackful_ffi_tests_c");
}
