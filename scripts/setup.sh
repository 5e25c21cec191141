#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to run shadergan without a GPU: Mesa's
# lavapipe (a Vulkan driver that runs on the CPU) and the Vulkan loader. A machine with a GPU
# driver already installed needs nothing from here.
#
# --mpi also installs OpenMPI and libclang, which data-parallel training needs
# (`cargo build --features distributed`; bindgen reads stddef.h from libclang-common).
# --datasets also installs Debian's dataset-fashion-mnist (the 70,000 Fashion-MNIST images under
# /usr/share/datasets/fashion-mnist/, for configs/*-fashion.toml).
# --swiftshader also installs Debian's chromium, which ships Google's SwiftShader Vulkan driver
# (the second driver the tests run on: scripts/with-swiftshader.sh) and Chrome's WebGPU.
# --wasm also adds Rust's wasm32-unknown-unknown target, wasm-bindgen-cli at the exact version of
# the wasm-bindgen crate in Cargo.lock (its test runner drives the browser), and Debian's chromium
# and chromium-driver (web/test.sh: the engine's tests in headless Chromium's WebGPU).
set -euo pipefail
want_mpi=false
want_datasets=false
want_swiftshader=false
want_wasm=false
for arg in "$@"; do
    case "$arg" in
        --mpi) want_mpi=true ;;
        --datasets) want_datasets=true ;;
        --swiftshader) want_swiftshader=true ;;
        --wasm) want_wasm=true ;;
        *) echo "setup: unknown option $arg (accepted: --mpi, --datasets, --swiftshader, --wasm)" >&2; exit 2 ;;
    esac
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=()
if ! { ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 && ldconfig -p | grep -q libvulkan.so.1; }; then
    echo "setup: installing mesa-vulkan-drivers and libvulkan1 (software Vulkan)" >&2
    packages+=(mesa-vulkan-drivers libvulkan1)
fi
if $want_mpi && ! { command -v mpirun >/dev/null && ldconfig -p | grep -q libclang; }; then
    echo "setup: installing OpenMPI and libclang (data-parallel training)" >&2
    packages+=(libopenmpi-dev openmpi-bin libclang1-14 libclang-common-14-dev)
fi
if $want_datasets && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "setup: installing dataset-fashion-mnist" >&2
    packages+=(dataset-fashion-mnist)
fi
if { $want_swiftshader || $want_wasm; } && ! [ -e /usr/lib/chromium/vk_swiftshader_icd.json ]; then
    echo "setup: installing chromium (SwiftShader's Vulkan driver, WebGPU)" >&2
    packages+=(chromium)
fi
if $want_wasm && ! command -v chromedriver >/dev/null; then
    echo "setup: installing chromium-driver (browser tests)" >&2
    packages+=(chromium-driver)
fi
if [ ${#packages[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if $want_wasm && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target" >&2
    rustup target add wasm32-unknown-unknown >&2
fi
if $want_wasm; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    pinned=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$here/Cargo.lock")
    if [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$pinned" ]; then
        echo "setup: installing wasm-bindgen-cli $pinned (a few minutes of compiling)" >&2
        cargo install --quiet wasm-bindgen-cli --version "$pinned" >&2
    fi
fi
