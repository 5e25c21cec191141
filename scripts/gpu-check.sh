#!/usr/bin/env bash
# The engine on a real GPU in one prepared run: the test suite on the GPU's adapter, the browser
# tests in headless Chromium on that GPU where the machine has Chromium and chromedriver, then
# `shadergan bench` on DCGAN-32 (1x32x32, width 64, batch 64) and DCGAN-64 (3x64x64, PyTorch's
# example with ngf = ndf = 64, batch 128), then the same networks in PyTorch on CUDA in the same
# invocation, and the ratio of the step times.
#
# Two halves, because a lent GPU machine has no Rust toolchain and no network:
#   bash scripts/gpu-check.sh prepare   # here: builds everything into gpu-check/ (git-ignored)
#   bash scripts/gpu-check.sh run       # there, from the repository root, with gpu-check/ carried
# `run` needs python3 with torch built for CUDA for the comparison (it is skipped, and says so,
# without one). On a machine without a Vulkan loader, `prepare` has packed Debian's libvulkan1
# and `run` unpacks it. Everything `run` prints also goes to $OUT/gpu-check.log when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=gpu-check

prepare() {
    set -e
    rm -rf "$bundle" && mkdir -p "$bundle/tests" "$bundle/gl"
    cargo build --release --quiet
    cp target/release/shadergan "$bundle/"
    # The integration tests, built as CI builds them but without debug info, so they travel.
    CARGO_PROFILE_TEST_DEBUG=false cargo test --no-run --message-format=json --quiet 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | while read -r exe; do cp "$exe" "$bundle/tests/"; done
    # The binary the tests run (CARGO_BIN_EXE_shadergan: the test profile's, at a path compiled
    # into them), and the manifest folder they find fixtures through.
    mkdir -p "$bundle/bin" && cp target/debug/shadergan "$bundle/bin/"
    strip "$bundle"/shadergan "$bundle"/tests/* "$bundle"/bin/shadergan
    pwd >"$bundle/manifest_dir"
    (cd "$bundle/gl" && apt-get download libvulkan1 >/dev/null 2>&1) || echo "prepare: could not download libvulkan1 (run will need a loader there)"
    # The browser tests (web/tests/browser.rs) and their runner, for a machine with Chromium.
    if command -v wasm-bindgen-test-runner >/dev/null; then
        mkdir -p "$bundle/web"
        (cd web && cargo test --profile web --target wasm32-unknown-unknown --no-run --message-format=json --quiet 2>/dev/null) |
            python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "browser" and m.get("filenames"):
        print([f for f in m["filenames"] if f.endswith(".wasm")][0])' | while read -r wasm; do cp "$wasm" "$bundle/web/browser.wasm"; done
        cp "$(command -v wasm-bindgen-test-runner)" "$bundle/web/"
    else
        echo "prepare: no wasm-bindgen-test-runner (scripts/setup.sh --wasm): the browser tests will not travel"
    fi
    tar -C "$bundle" -cJf "$bundle.tar.xz" . && rm -rf "$bundle" && mkdir "$bundle" && mv "$bundle.tar.xz" "$bundle/"
    du -h "$bundle/$bundle.tar.xz"
}

# The browser tests in headless Chromium on this machine's GPU (WebGPU through Vulkan), where
# the machine has Chromium and chromedriver (CHROME and CHROMEDRIVER name others).
browser_tests() {
    echo "== browser tests on this GPU"
    local chrome=${CHROME:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
    local driver=${CHROMEDRIVER:-$(command -v chromedriver || true)}
    if [ ! -f "$bundle/web/browser.wasm" ] || [ -z "$chrome" ] || [ -z "$driver" ]; then
        echo "skipped: needs the bundle's browser.wasm (prepare with wasm-bindgen-test-runner), Chromium and chromedriver (found: '${chrome}', '${driver}')"
        return
    fi
    local dir="$bundle/web/run"
    mkdir -p "$dir"
    cat >"$dir/webdriver.json" <<JSON
{"goog:chromeOptions": {"binary": "$chrome", "args": ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu",
  "--enable-features=Vulkan", "--use-angle=vulkan", "--disable-background-networking", "--no-first-run"]}}
JSON
    if (cd "$dir" && CHROMEDRIVER="$driver" WASM_BINDGEN_TEST_TIMEOUT=600 ../wasm-bindgen-test-runner ../browser.wasm --nocapture) >"$bundle/browser.log" 2>&1; then
        echo "pass  browser tests ($(grep -o '[0-9]* passed' "$bundle/browser.log" | tail -n 1))"
    else
        failed=$((failed + 1))
        echo "FAIL  browser tests"
    fi
    grep -E 'adapter:|DCGAN in the browser|panicked|FAILED' "$bundle/browser.log" | head -n 20
}

median() { sed -n 's/.*median \([0-9.]*\) s.*/\1/p' | head -n 1; }

run() {
    local log=/dev/null
    [ -n "${OUT:-}" ] && log="$OUT/gpu-check.log"
    exec > >(tee "$log") 2>&1
    tar -C "$bundle" -xJf "$bundle/$bundle.tar.xz" || { echo "run: no bundle; run 'prepare' first"; exit 1; }
    if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
        for deb in "$bundle"/gl/*.deb; do dpkg -x "$deb" /; done
        ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
    local manifest
    manifest=$(cat "$bundle/manifest_dir")
    [ -e "$manifest" ] || { mkdir -p "$(dirname "$manifest")" && ln -s "$PWD" "$manifest"; }
    [ -e "$manifest/target/debug/shadergan" ] || { mkdir -p "$manifest/target/debug" && cp "$bundle/bin/shadergan" "$manifest/target/debug/"; }
    export RUST_LOG=warn
    echo "== adapter"
    "$bundle/shadergan" info || { echo "run: no adapter"; exit 1; }
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null

    echo "== tests on this adapter"
    local failed=0
    for t in "$bundle"/tests/*; do
        if "$t" -q >"$bundle/test.log" 2>&1; then
            echo "pass  $(basename "$t") ($(grep -o '[0-9]* passed' "$bundle/test.log" | tail -n 1))"
        else
            failed=$((failed + 1))
            echo "FAIL  $(basename "$t")"
            grep -E 'panicked|FAILED|failures:|differ' "$bundle/test.log" | head -n 20
        fi
    done
    echo "test binaries failed: $failed"

    browser_tests

    echo "== DCGAN-32: 1x32x32, width 64, batch 64"
    local ours32 ours64 torch32 torch64
    ours32=$("$bundle/shadergan" bench --config configs/dcgan-mnist.toml --width 64 --batch 64 --iters 20)
    echo "$ours32" | grep -E '^(adapter|first|iteration|images|work|dispatches|peak)'
    echo "== DCGAN-64: 3x64x64, width 64, batch 128"
    ours64=$("$bundle/shadergan" bench --config configs/dcgan-mnist.toml --width 64 --batch 128 --image-size 64 --channels 3 --iters 20)
    echo "$ours64" | grep -E '^(adapter|first|iteration|images|work|dispatches|peak)'

    echo "== PyTorch on CUDA, the same networks"
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        torch32=$(python3 benches/pytorch_dcgan.py --device cuda --width 64 --batch 64 --iters 20)
        echo "$torch32"
        torch64=$(python3 benches/pytorch_dcgan.py --device cuda --width 64 --batch 128 --image-size 64 --channels 3 --iters 20)
        echo "$torch64"
        echo "== ratio (shadergan step / PyTorch CUDA step)"
        python3 - "$(echo "$ours32" | median)" "$(echo "$torch32" | median)" "$(echo "$ours64" | median)" "$(echo "$torch64" | median)" <<'PY'
import sys
o32, t32, o64, t64 = map(float, sys.argv[1:])
print(f"DCGAN-32: shadergan {o32:.4f} s, PyTorch {t32:.4f} s: {o32 / t32:.2f}x")
print(f"DCGAN-64: shadergan {o64:.4f} s, PyTorch {t64:.4f} s: {o64 / t64:.2f}x")
PY
    else
        echo "no python3 with torch on CUDA here: the comparison is skipped"
    fi
    [ "$failed" -eq 0 ]
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash scripts/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
