#!/usr/bin/env bash
# The DCGAN-32 iteration (width 64, batch 64) in shadergan and in PyTorch on the CPU, one after
# the other in the same invocation, so both see the same machine. Needs a Python with torch
# (PYTHON=/path/to/python to choose one). Usage: bash benches/compare-pytorch.sh [iters]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-10}"
python="${PYTHON:-python3}"
cargo build --release --quiet
./target/release/shadergan bench --config configs/dcgan-mnist.toml --width 64 --iters "$iters"
"$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 2
"$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 1
