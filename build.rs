//! Assembles the context-switch primitives in `asm/` for the target architecture.
//!
//! The switch code is hand-written assembly (one file per architecture) so that the exact
//! register set and frame layout are under our control and can be checked line by line;
//! see the comment at the top of each file.

use std::env;

/// Architectures with a context-switch implementation in `asm/`.
const SUPPORTED: &[(&str, &str)] = &[
    ("x86_64", "asm/x86_64.S"),
    ("aarch64", "asm/aarch64.S"),
    ("riscv64", "asm/riscv64.S"),
    ("x86", "asm/x86.S"),
    // Through Binaryen's Asyncify: the module must then go through `wasm-opt --asyncify`.
    ("wasm32", "asm/wasm32.s"),
];

/// Windows (another ABI, and the switch also swaps the TIB's stack fields).
const SUPPORTED_WINDOWS: &[(&str, &str)] = &[("x86_64", "asm/x86_64_windows.S")];

fn main() {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let target = env::var("TARGET").unwrap_or_default();
    for (_, file) in SUPPORTED.iter().chain(SUPPORTED_WINDOWS) {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let windows = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows");
    let supported = if windows {
        SUPPORTED_WINDOWS
    } else {
        SUPPORTED
    };
    let Some((_, file)) = supported.iter().find(|(a, _)| *a == arch) else {
        let names: Vec<&str> = supported.iter().map(|(a, _)| *a).collect();
        panic!(
            "\n\nstackful: the target architecture `{arch}` (target `{target}`) is not supported.\n\
             stackful switches stacks with hand-written assembly and has an implementation for: {}.\n\
             Contributions of an `asm/{arch}.S` are welcome.\n\n",
            names.join(", ")
        );
    };

    cc::Build::new()
        .file(file)
        // Recent GCC/clang warn about flags they do not use when assembling.
        .flag_if_supported("-Wno-unused-command-line-argument")
        .compile("stackful_switch");
}
