#!/usr/bin/env bash
# Trains the given configs one after another (every GAN config in configs/*-mnist.toml by default) and records
# each run's wall time in runs/<name>/wall-time.txt. Usage:
#   bash scripts/train-variants.sh [configs/wgan-mnist.toml ...] [-- extra train flags]
set -euo pipefail
cd "$(dirname "$0")/.."
configs=()
while [[ $# -gt 0 && "$1" != "--" ]]; do configs+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
if [[ ${#configs[@]} -eq 0 ]]; then
    for c in configs/*-mnist.toml; do [[ "$c" == *classifier* ]] || configs+=("$c"); done
fi
# SHADERGAN=path/to/binary uses a prebuilt binary instead of building this checkout.
bin="${SHADERGAN:-}"
if [[ -z "$bin" ]]; then
    cargo build --release --quiet
    bin=./target/release/shadergan
fi
for config in "${configs[@]}"; do
    name=$(basename "$config" .toml)
    out="runs/$name"
    mkdir -p "$out"
    start=$(date +%s)
    "$bin" train --config "$config" --out "$out" "$@"
    echo "$(( $(date +%s) - start )) s wall time for $config $*" | tee "$out/wall-time.txt"
done
