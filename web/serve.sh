#!/usr/bin/env bash
# Builds the page's wasm and serves the repository on http://localhost:8000/web/ (WebGPU needs a
# secure context: localhost counts). Needs scripts/setup.sh --wasm.
#   PORT=8080 bash web/serve.sh   another port
#   BUILD_ONLY=1                  build web/pkg without serving
#   DEBUG_BUILD=1                 the quick-to-compile `web` profile (what web/page_test.py serves:
#                                 the tests' build; the kernels run on the GPU either way)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DEBUG_BUILD:-}" ]; then profile=web; dir=web; else profile=release; dir=release; fi
cargo build --profile "$profile" --target wasm32-unknown-unknown -p shadergan-web
wasm-bindgen --target web --no-typescript --out-dir web/pkg "target/wasm32-unknown-unknown/$dir/shadergan_web.wasm"
[ -n "${BUILD_ONLY:-}" ] && exit 0
port=${PORT:-8000}
echo "serving on http://localhost:$port/web/ (Ctrl-C stops)"
exec python3 -m http.server "$port" --bind 127.0.0.1
