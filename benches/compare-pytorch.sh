#!/usr/bin/env bash
# The DCGAN-32 iteration (width 64, batch 64) in shadergan on lavapipe at 256-bit vectors
# (8-wide subgroups) and at 512-bit vectors (16-wide subgroups; the host needs AVX-512 for this
# to be a fair figure), then in PyTorch on the CPU with 2 threads, one after the other, in
# several rounds: a shared host's speed swings within minutes, so each round's ratio (shadergan's
# better width over PyTorch) is printed and then their median. Needs a Python with torch
# (PYTHON=/path/to/python to choose one).
# Usage: bash benches/compare-pytorch.sh [iters per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-10}"
rounds="${2:-3}"
python="${PYTHON:-python3}"
cargo build --release --quiet
median_of() { grep -oP 'median \K[0-9.]+' | head -1; }
./target/release/shadergan bench --config configs/dcgan-mnist.toml --width 64 --iters 1 2>&1 | grep -E "^(adapter|host)"
ratios=()
for round in $(seq "$rounds"); do
    s256=$(LP_NATIVE_VECTOR_WIDTH=256 ./target/release/shadergan bench --config configs/dcgan-mnist.toml --width 64 \
        --iters "$iters" 2>&1 | median_of)
    s512=$(LP_NATIVE_VECTOR_WIDTH=512 ./target/release/shadergan bench --config configs/dcgan-mnist.toml --width 64 \
        --iters "$iters" 2>&1 | median_of)
    torch=$("$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 2 | median_of)
    ratio=$(python3 -c "print(f'{min($s256, $s512) / $torch:.2f}')")
    ratios+=("$ratio")
    echo "round $round: shadergan 256-bit ${s256} s, 512-bit ${s512} s; PyTorch (2 threads) ${torch} s; ratio ${ratio}x"
done
echo "median ratio over $rounds rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')x"
"$python" benches/pytorch_dcgan.py --width 64 --batch 64 --iters "$iters" --threads 1
