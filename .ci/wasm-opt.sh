# Sourced by .ci/wasm-runner (wasm32-wasip1) and by examples/web (run.sh,
# scripts/wasm-test-runner.sh, through scripts/wasm-opt.sh): which wasm-opt to use
# and how to run Binaryen's asyncify pass on a module the way stackful needs.
#
# wasm-opt: $WASM_OPT if set, else ~/.cargo/bin/wasm-opt (the crates registry's
# `wasm-opt`, Binaryen 116), else `wasm-opt` on PATH (Debian's `binaryen`).

pick_wasm_opt() {
    if [[ -n ${WASM_OPT:-} ]]; then
        echo "$WASM_OPT"
    elif [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/wasm-opt ]]; then
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/wasm-opt"
    elif command -v wasm-opt >/dev/null; then
        command -v wasm-opt
    else
        echo "stackful: no wasm-opt: set WASM_OPT, \`cargo install wasm-opt --locked\` or \`apt-get install binaryen\`" >&2
        return 1
    fi
}

# The features rustc enables for wasm32 (its target_features section says so too;
# passing them keeps validation working if that section is stripped).
WASM_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-mutable-globals
    --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue)

# asyncify IN OUT [EXTRA_WASM_OPT_ARGS...]
# No import may unwind (an empty asyncify-imports list would mean all of them: name
# a dummy). Indirect calls stay instrumented: closures are called through them.
# --strip-dwarf: asyncify rewrites every instrumented function, so the DWARF sections
# rustc wrote no longer match the code; wasm-bindgen's DWARF rewriter (walrus) then
# panics on some modules ("cannot convert to writable dwarf: InvalidDebugInfoRef",
# seen with the bridge tests depending on nothing but the checkout's path).
asyncify() {
    local in=$1 out=$2 wasm_opt
    shift 2
    wasm_opt=$(pick_wasm_opt)
    "$wasm_opt" "$in" -o "$out" "${WASM_FEATURES[@]}" \
        --strip-dwarf --asyncify --pass-arg=asyncify-imports@__none__ "$@"
}
