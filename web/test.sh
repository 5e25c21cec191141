#!/usr/bin/env bash
# The engine's browser tests (web/tests/browser.rs) in headless Chromium's WebGPU, on SwiftShader
# where the machine has no GPU: kernels, a second-order gradient and DCGAN steps, each awaited
# as a page would; then the page (web/index.html) trains a few steps (web/page_test.py).
# Arguments go to `cargo test` alone, without the page test. Needs scripts/setup.sh --wasm (the target, wasm-bindgen-cli at the version
# web/Cargo.toml pins, chromium and chromium-driver). Chromium's flags are in web/webdriver.json.
set -euo pipefail
cd "$(dirname "$0")"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# Each test may compile kernels for the first time in SwiftShader: minutes, not the default 20 s.
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}
# The `web` profile (Cargo.toml) unless the arguments ask for --release.
profile=(--profile web)
for arg in "$@"; do [ "$arg" = --release ] && profile=(); done
cargo test "${profile[@]}" --target wasm32-unknown-unknown "$@"
# Then the page itself: it loads, trains and draws samples with no error (web/page_test.py).
if [ $# -eq 0 ]; then
    DEBUG_BUILD=1 BUILD_ONLY=1 bash serve.sh
    python3 page_test.py
fi
