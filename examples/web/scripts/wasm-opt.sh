# Sourced by run.sh and wasm-test-runner.sh: `pick_wasm_opt` and `asyncify`, shared
# with the wasm32-wasip1 test runner.
# shellcheck source=../../../.ci/wasm-opt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../.ci/wasm-opt.sh"
