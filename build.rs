//! Assembles the context-switch primitives in `asm/` for the target architecture, and
//! compiles `csrc/context.c` (the one symbol shared by every copy of the crate).
//!
//! The switch code is hand-written assembly (one file per architecture) so that the exact
//! register set and frame layout are under our control and can be checked line by line;
//! see the comment at the top of each file.
//!
//! # Symbols private to this copy of the crate
//!
//! A program may link several copies of this crate (two semver-incompatible versions,
//! or one under another package name). Each copy must run its *own* switch code: two
//! copies whose assembly defined the same global symbols would be resolved by the
//! linker, silently, to one of them, and a copy whose frame layout differs would then
//! run the other's assembly. So every `stackful_` symbol of the assembly (and the
//! Rust functions it calls) is renamed to `stackful_<package>_<version>_<hash>_...`
//! (`prefix`): the assembly is copied into `OUT_DIR` with the names replaced, the
//! static library gets the same prefix, and the Rust side names the symbols with
//! `concat!(env!("STACKFUL_SYM_PREFIX"), ...)`. The hash (of the assembly text) tells
//! apart two copies with the same name and version from different sources. The only
//! symbol meant to be shared, `stackful_context_slot` (csrc/context.c, weak), is not
//! renamed.

use std::env;
use std::path::PathBuf;

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
    println!("cargo:rerun-if-changed=csrc/context.c");
    println!("cargo:rerun-if-changed=include/stackful.h");
    println!("cargo:rerun-if-changed=build.rs");

    // AddressSanitizer (`-Zsanitizer=address`, nightly): the stack switches then tell
    // it which stack they go to (src/asan.rs). Found from the compiler flags, so no
    // feature is needed; with the cfg off the switch code is exactly as without it.
    // (Single colon: a Cargo older than 1.80 takes the check-cfg line as metadata.)
    println!("cargo:rustc-check-cfg=cfg(stackful_asan)");
    if address_sanitizer() {
        println!("cargo:rustc-cfg=stackful_asan");
    }

    // The context slot is read inline, not through `stackful_context_slot()`, on
    // Linux x86_64 and aarch64 (src/context.rs, `tls`; csrc/context.c).
    println!("cargo:rustc-check-cfg=cfg(stackful_inline_tls)");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let pointer_width = env::var("CARGO_CFG_TARGET_POINTER_WIDTH").unwrap_or_default();
    if os == "linux" && (arch == "x86_64" || arch == "aarch64") && pointer_width == "64" {
        println!("cargo:rustc-cfg=stackful_inline_tls");
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

    let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {file}: {e}"));
    let prefix = symbol_prefix(&source);
    println!("cargo:rustc-env=STACKFUL_SYM_PREFIX={prefix}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let name = std::path::Path::new(file)
        .file_name()
        .expect("asm file name");
    let renamed = out.join(name);
    std::fs::write(&renamed, source.replace("stackful_", &prefix))
        .unwrap_or_else(|e| panic!("writing {}: {e}", renamed.display()));

    cc::Build::new()
        .file(&renamed)
        .file("csrc/context.c")
        .include("include")
        // csrc/context.c is a leaf called at every resume: no frame-pointer setup.
        .flag_if_supported("-fomit-frame-pointer")
        // Recent GCC/clang warn about flags they do not use when assembling.
        .flag_if_supported("-Wno-unused-command-line-argument")
        .compile(&format!("{prefix}switch"));
}

/// `stackful_<package>_<version>_<hash>_`: the prefix of this copy's private symbols
/// (see the module docs), made of characters every assembler takes in a name.
fn symbol_prefix(asm: &str) -> String {
    let name = env::var("CARGO_PKG_NAME").unwrap_or_default();
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // FNV-1a over the assembly text.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in asm.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    format!("stackful_{}_{}_{hash:08x}_", clean(&name), clean(&version))
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
