#!/usr/bin/env bash
# The DCGAN-32 iteration (width 64, batch 64) in shadergan on lavapipe at 256-bit vectors
# (8-wide subgroups) and at 512-bit vectors (16-wide subgroups; the host needs AVX-512 for this
# to be a fair figure), then in PyTorch on the CPU with 2 and 1 threads, one after the other in
# the same invocation so all see the same machine. Needs a Python with torch
# (PYTHON=/path/to/python to choose one). Usage: bash benches/compare-pytorch.sh [iters]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-10}"
python="${PYTHON:-python3}"
cargo build --release --quiet
for bits in 256 512; do
    echo "== shadergan, lavapipe at $bits bits"
    LP_NATIVE_VECTOR_WIDTH=$bits ./target/release/shadergan bench --config configs/dcgan-mnist.toml --width 64 \
        --iters "$iters" | grep -E "^(adapter|host|first|iteration|images|work)"
done
echo "== PyTorch CPU"
"$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 2
"$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 1
