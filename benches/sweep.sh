#!/usr/bin/env bash
# How the DCGAN iteration (configs/dcgan-mnist.toml) grows with batch size and image size:
# batch 32, 64, 128 and 256 at 32x32, and batch 64 at 64x64 (one more layer on each side).
# Usage: bash benches/sweep.sh [iters] [width]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-5}"
width="${2:-32}"
cargo build --release --quiet
for batch in 32 64 128 256; do
    ./target/release/shadergan bench --config configs/dcgan-mnist.toml --width "$width" --batch "$batch" --iters "$iters" \
        | grep -E "^(config|iteration|images|work)"
done
./target/release/shadergan bench --config configs/dcgan-mnist.toml --width "$width" --batch 64 --image-size 64 \
    --iters "$iters" | grep -E "^(config|iteration|images|work)"
