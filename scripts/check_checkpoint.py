#!/usr/bin/env python3
"""Loads a shadergan model checkpoint with the `safetensors` Python package (and with PyTorch,
when it is installed) and checks that tensor names, dtypes and shapes are those of the
equivalent PyTorch DCGAN `nn.Sequential` modules described by the config in the metadata.

Usage: python3 scripts/check_checkpoint.py runs/NAME/model.safetensors
Exit status 0 when everything matches; a message naming the first mismatch otherwise.
"""
import json
import struct
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def expected_dcgan(cfg):
    """Names -> shapes of PyTorch's nn.Sequential DCGAN with shadergan's layer order."""
    size, ch = cfg["data"].get("image_size", 32), cfg["data"].get("channels", 1)
    m = cfg.get("model", {})
    latent, gw, dw = m.get("latent_dim", 100), m.get("g_width", 64), m.get("d_width", 64)
    stages = (size // 4).bit_length() - 1
    out = {}
    # Generator: ConvT, BN, ReLU, (ConvT, BN, ReLU)*, ConvT, Tanh
    c = gw << (stages - 1)
    i = 0
    out[f"generator.{i}.weight"] = [latent, c, 4, 4]
    i += 1
    for _ in range(stages):
        bn = i
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"generator.{bn}.{name}"] = [c]
        out[f"generator.{bn}.num_batches_tracked"] = []
        i += 2  # BN, ReLU
        if _ < stages - 1:
            out[f"generator.{i}.weight"] = [c, c // 2, 4, 4]
            c //= 2
            i += 1
    out[f"generator.{i}.weight"] = [c, ch, 4, 4]
    # Discriminator: Conv, LReLU, (Conv, BN, LReLU)*, Conv, Flatten
    c = dw
    out["discriminator.0.weight"] = [c, ch, 4, 4]
    i = 2
    for _ in range(stages - 1):
        out[f"discriminator.{i}.weight"] = [c * 2, c, 4, 4]
        c *= 2
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"discriminator.{i + 1}.{name}"] = [c]
        out[f"discriminator.{i + 1}.num_batches_tracked"] = []
        i += 3
    out[f"discriminator.{i}.weight"] = [1, c, 4, 4]
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    from safetensors.numpy import load_file

    tensors = load_file(path)
    meta = header(path).get("__metadata__", {})
    if meta.get("format") != "shadergan-model-v1":
        sys.exit(f"{path}: metadata format is {meta.get('format')!r}")
    if tomllib is None:
        sys.exit("Python 3.11+ is needed to read the embedded TOML config")
    cfg = tomllib.loads(meta["config"])
    want = expected_dcgan(cfg)
    for name, shape in want.items():
        if name not in tensors:
            sys.exit(f"{path}: missing tensor {name}")
        got = list(tensors[name].shape)
        if name.endswith("num_batches_tracked"):
            if tensors[name].dtype.name != "int64" or got != []:
                sys.exit(f"{path}: {name} should be a 0-d int64 like PyTorch's, got {tensors[name].dtype} {got}")
            continue
        if got != shape or tensors[name].dtype.name != "float32":
            sys.exit(f"{path}: {name} has {tensors[name].dtype} {got}, expected float32 {shape}")
    extra = sorted(set(tensors) - set(want))
    if extra:
        sys.exit(f"{path}: unexpected tensors {extra[:5]}")
    try:
        import torch  # noqa: F401
        from safetensors.torch import load_file as torch_load
        state = torch_load(path)
        assert state["generator.0.weight"].shape == tuple(want["generator.0.weight"])
        print("loaded with safetensors.torch as well")
    except ImportError:
        pass
    print(f"ok: {len(want)} tensors with PyTorch DCGAN names and shapes (step {meta.get('step')})")


if __name__ == "__main__":
    main()
