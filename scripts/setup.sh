#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to run shadergan without a GPU: Mesa's
# lavapipe (a Vulkan driver that runs on the CPU) and the Vulkan loader. A machine with a GPU
# driver already installed needs nothing from here.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 && ldconfig -p | grep -q libvulkan.so.1; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing mesa-vulkan-drivers and libvulkan1 (software Vulkan)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
