#!/usr/bin/env bash
# Cargo runner for wasm32-unknown-unknown (examples/web/.cargo/config.toml): runs
# Binaryen's asyncify pass on the test module, then hands it to
# wasm-bindgen-test-runner (which runs wasm-bindgen on it and the tests in node).
# asyncify has to come first: after wasm-bindgen the `asyncify` imports would be
# left unresolved in the JS glue.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=wasm-opt.sh
source "$here/wasm-opt.sh"

wasm=$1
shift
out_dir=$(dirname "$wasm")/asyncified
mkdir -p "$out_dir"
out=$out_dir/$(basename "$wasm")
asyncify "$wasm" "$out"
exec wasm-bindgen-test-runner "$out" "$@"
