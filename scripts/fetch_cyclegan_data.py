#!/usr/bin/env python3
"""Extracts CycleGAN's second domains from PyPI wheels into assets/:

- the UCI optical recognition of handwritten digits (1,797 8x8 images with values 0..16, CC BY
  4.0), shipped as sklearn/datasets/data/digits.csv.gz in the scikit-learn wheel; written as
  gzip'd IDX (values scaled to 0..255) with labels;
- scikit-image's CC0 textures skimage/data/grass.png and gravel.png (512x512 grayscale).

Usage: python3 scripts/fetch_cyclegan_data.py [folder with the two wheels]
Without a folder it runs `pip download` for the pinned versions into a temporary folder.
"""
import csv
import gzip
import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
WHEELS = ["scikit-learn==1.9.1", "scikit-image==0.26.0"]


def wheels(folder):
    if folder is None:
        folder = tempfile.mkdtemp()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", folder] + WHEELS,
                       check=True, stdout=subprocess.DEVNULL)
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".whl")]


def member(paths, suffix):
    for p in paths:
        with zipfile.ZipFile(p) as z:
            for n in z.namelist():
                if n.endswith(suffix):
                    return z.read(n)
    sys.exit(f"no {suffix} in {paths}")


def main():
    paths = wheels(sys.argv[1] if len(sys.argv) > 1 else None)
    rows = list(csv.reader(io.StringIO(gzip.decompress(member(paths, "sklearn/datasets/data/digits.csv.gz")).decode())))
    images, labels = [], []
    for r in rows:
        values = [int(float(v)) for v in r]
        assert len(values) == 65 and all(0 <= v <= 16 for v in values[:64]), "unexpected digits.csv layout"
        images.append(bytes(round(v * 255 / 16) for v in values[:64]))
        labels.append(values[64])
    os.makedirs(ASSETS, exist_ok=True)
    with gzip.GzipFile(os.path.join(ASSETS, "uci-digits-images-idx3-ubyte.gz"), "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 8, 8))
        f.write(b"".join(images))
    with gzip.GzipFile(os.path.join(ASSETS, "uci-digits-labels-idx1-ubyte.gz"), "wb", mtime=0) as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(bytes(labels))
    textures = os.path.join(ASSETS, "textures")
    for name in ["grass", "gravel"]:
        os.makedirs(os.path.join(textures, name), exist_ok=True)
        with open(os.path.join(textures, name, f"{name}.png"), "wb") as f:
            f.write(member(paths, f"skimage/data/{name}.png"))
    print(f"wrote {len(images)} UCI digits and the grass/gravel textures to {ASSETS}")


if __name__ == "__main__":
    main()
