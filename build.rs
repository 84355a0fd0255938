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

    // AddressSanitizer (`-Zsanitizer=address`, nightly): the stack switches then tell
    // it which stack they go to (src/asan.rs). Found from the compiler flags, so no
    // feature is needed; with the cfg off the switch code is exactly as without it.
    // (Single colon: a Cargo older than 1.80 takes the check-cfg line as metadata.)
    println!("cargo:rustc-check-cfg=cfg(stackful_asan)");
    if address_sanitizer() {
        println!("cargo:rustc-cfg=stackful_asan");
    }

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

/// Whether the crate is compiled with `-Zsanitizer=address` (alone or in a list such
/// as `-Zsanitizer=address,leak`), from the target's flags (`CARGO_ENCODED_RUSTFLAGS`,
/// split on 0x1f, else `RUSTFLAGS`), or from the `sanitize` cfg that rustc sets then.
fn address_sanitizer() -> bool {
    let cfg = env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if cfg.split(',').any(|s| s == "address") {
        return true;
    }
    let flags: Vec<String> = match env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(encoded) => encoded.split('\x1f').map(str::to_owned).collect(),
        Err(_) => env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    // `-Zsanitizer=address`, or `-Z` and `sanitizer=address` as two flags.
    let mut after_z = false;
    flags.iter().any(|flag| {
        let option = flag
            .strip_prefix("-Z")
            .filter(|rest| !rest.is_empty())
            .or(after_z.then_some(flag.as_str()));
        after_z = flag == "-Z";
        option
            .and_then(|o| o.trim().strip_prefix("sanitizer="))
            .is_some_and(|list| list.split(',').any(|s| s == "address"))
    })
}
