#!/usr/bin/env bash
# Runs a command on SwiftShader, Google's Vulkan driver on the CPU (the one Chrome's WebGPU uses
# on a machine without a GPU), within WebGPU's default limits: `bash scripts/with-swiftshader.sh
# cargo test` runs the suite as a browser's WebGPU would see it. scripts/setup.sh --swiftshader
# installs it (Debian's chromium ships the driver).
set -euo pipefail
icd=""
for candidate in /usr/lib/chromium/vk_swiftshader_icd.json /usr/lib/chromium-browser/vk_swiftshader_icd.json; do
    [ -e "$candidate" ] && { icd=$candidate; break; }
done
if [ -z "$icd" ] && command -v dpkg >/dev/null; then
    icd=$(dpkg -L chromium 2>/dev/null | grep -m1 'vk_swiftshader_icd.json$' || true)
fi
if [ -z "$icd" ]; then
    echo "with-swiftshader: SwiftShader's vk_swiftshader_icd.json not found; install it with scripts/setup.sh --swiftshader" >&2
    exit 2
fi
[ $# -gt 0 ] || { echo "usage: scripts/with-swiftshader.sh COMMAND [ARGS...]" >&2; exit 2; }
VK_ICD_FILENAMES=$icd SHADERGAN_LIMITS=webgpu exec "$@"
