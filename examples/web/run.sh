#!/usr/bin/env bash
# stackful in the browser: build, serve and test the demo.
#
#   ./run.sh serve [PORT]   build (release) and serve it on http://127.0.0.1:PORT/ (8000)
#   ./run.sh build [--debug]  build into dist/: cargo -> wasm-opt --asyncify (-O in
#                           release) -> wasm-bindgen --target web
#   ./run.sh test           the promise bridge tests: wasm-bindgen-test in node, each
#                           test module asyncified first (scripts/wasm-test-runner.sh)
#   ./run.sh e2e            build, then load the page in headless Chromium
#                           (e2e/e2e.mjs, playwright-core) and check the result
#   ./run.sh setup          install what is missing: the wasm32-unknown-unknown target,
#                           wasm-bindgen-cli (the version in Cargo.lock), playwright-core
#                           (npm, into e2e/node_modules), chromium (apt)
#   ./run.sh ci             setup, test, e2e
#
# Environment: WASM_OPT (wasm-opt to use; see scripts/wasm-opt.sh), CHROMIUM (browser
# binary, default /usr/bin/chromium), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
here=$PWD
# shellcheck source=scripts/wasm-opt.sh
source scripts/wasm-opt.sh

TARGET=wasm32-unknown-unknown
CRATE=stackful_web

log() { printf '\033[1mstackful-web: %s\033[0m\n' "$*" >&2; }

# The wasm-bindgen version in Cargo.lock: wasm-bindgen-cli must be exactly that.
bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

setup() {
    local t0=$SECONDS
    if rustup target list --installed | grep -qx "$TARGET"; then
        echo "rust target $TARGET: installed"
    else
        rustup target add "$TARGET"
    fi

    local want have
    want=$(bindgen_version)
    have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
    if [[ $have == "$want" ]] && command -v wasm-bindgen-test-runner >/dev/null; then
        echo "wasm-bindgen-cli $want: installed"
    else
        log "installing wasm-bindgen-cli $want (have: ${have:-none}); a few minutes"
        # Not --locked: the CLI's own lock file pins crates that need a newer rustc.
        cargo install "wasm-bindgen-cli@$want"
    fi

    if [[ -f e2e/node_modules/playwright-core/package.json ]]; then
        echo "playwright-core: installed"
    else
        (cd e2e && npm install --no-audit --no-fund)
    fi

    if [[ -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
        echo "chromium: ${CHROMIUM:-/usr/bin/chromium}"
    else
        local sudo=()
        (( $(id -u) == 0 )) || sudo=(sudo)
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
            install -y -q --no-install-recommends chromium
    fi

    if pick_wasm_opt >/dev/null; then
        echo "wasm-opt: $(pick_wasm_opt) ($("$(pick_wasm_opt)" --version))"
    else
        return 1
    fi
    echo "setup took $(( SECONDS - t0 ))s"
}

target_dir() {
    cargo metadata --format-version 1 --no-deps |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))'
}

build() {
    local profile=release cargo_flags=(--release)
    if [[ ${1:-} == --debug ]]; then
        profile=debug
        cargo_flags=()
    fi
    log "cargo build ($profile)"
    cargo build --lib --target "$TARGET" "${cargo_flags[@]}"
    local wasm out=dist
    wasm=$(target_dir)/$TARGET/$profile/$CRATE.wasm
    rm -rf "$out"
    mkdir -p "$out/pkg"

    # 1. asyncify, before wasm-bindgen (after it, the `asyncify` imports would be
    #    left unresolved in the JS glue). In release, -O after asyncify shrinks its
    #    code growth. Not after wasm-bindgen: Debian's Binaryen 108 rewrites
    #    wasm-bindgen's externref table so that Chrome rejects JS values in it
    #    ("WebAssembly.Table.set(): Argument 1 is invalid for table").
    local opt=()
    [[ $profile == debug ]] || opt=(-O)
    log "wasm-opt --asyncify ${opt[*]} ($(pick_wasm_opt))"
    asyncify "$wasm" "$out/$CRATE.asyncified.wasm" "${opt[@]}"
    # 2. wasm-bindgen: the JS glue and the final module.
    log "wasm-bindgen --target web"
    wasm-bindgen --target web --out-dir "$out/pkg" "$out/$CRATE.asyncified.wasm" \
        --out-name "$CRATE"
    rm "$out/$CRATE.asyncified.wasm"

    cp www/* "$out/"
    node scripts/gen-data.mjs "$out/measurements.csv"
    log "built $here/$out ($(du -h "$out/pkg/${CRATE}_bg.wasm" | cut -f1) of wasm)"
}

cmd=${1:-serve}
shift || true
case $cmd in
    setup) setup ;;
    build) build "$@" ;;
    serve)
        build
        exec node scripts/serve.mjs --root dist --port "${1:-8000}"
        ;;
    test) cargo test --target "$TARGET" "$@" ;;
    e2e)
        build
        node e2e/e2e.mjs
        ;;
    ci)
        setup
        log "wasm-bindgen-test (node)"
        cargo test --target "$TARGET"
        build
        log "end-to-end (headless Chromium)"
        node e2e/e2e.mjs
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
        exit 2
        ;;
esac
