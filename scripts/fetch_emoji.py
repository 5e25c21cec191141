#!/usr/bin/env python3
"""Lays out Google's Noto emoji (64x64 PNGs from the npm package emoji-datasource-google@16.0.0)
as an image folder with one sub-folder per category, the classes of the emoji classifier.

  data/emoji/train/<category>/<code>.png   90% of each category (shadergan trains on these)
  data/emoji/test/<category>/<code>.png    the other 10%, held out for the classifier's accuracy
  data/emoji/ATTRIBUTION.md                where the images come from and under which licence

The images are the Noto Color Emoji artwork, (c) Google, under the Apache License 2.0
(https://github.com/googlefonts/noto-emoji); the package that ships them (emoji-datasource,
(c) Cal Henderson) is MIT-licensed. Skin-tone variations (five near-copies of each person
emoji) are left out, so one category does not swamp the others, and so is the "Component"
category (five swatches). The PNGs keep
their alpha channel: shadergan's folder loader composites transparent pixels onto white.

Usage: python3 scripts/fetch_emoji.py [path/to/extracted/package] [--out FOLDER]
Without a path it runs `npm pack emoji-datasource-google@16.0.0` in a temporary folder; --out
writes somewhere else than data/emoji (whatever is there is replaced).
Only the Python standard library is needed.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "16.0.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "emoji")
SKIPPED_CATEGORIES = {"Component"}
TEST_SHARE = 0.1

ATTRIBUTION = f"""# Noto emoji, 64x64

Made by `scripts/fetch_emoji.py` from the npm package emoji-datasource-google@{VERSION}.

- Images: Noto Color Emoji, (c) Google Inc., licensed under the Apache License, Version 2.0
  (https://www.apache.org/licenses/LICENSE-2.0); source https://github.com/googlefonts/noto-emoji.
- Package and category metadata: emoji-datasource, (c) 2013 Cal Henderson, MIT licence
  (https://github.com/iamcal/emoji-data).

Sub-folders are the emoji's Unicode categories; skin-tone variations are left out.
`train/` holds 90% of each category (seeded split), `test/` the rest.
"""


def package_dir(given):
    if given:
        return given
    tmp = tempfile.mkdtemp()
    subprocess.run(["npm", "pack", f"emoji-datasource-google@{VERSION}"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    with tarfile.open(os.path.join(tmp, f"emoji-datasource-google-{VERSION}.tgz")) as tar:
        tar.extractall(tmp, filter="data")
    return os.path.join(tmp, "package")


def images_by_category(pkg):
    folder = os.path.join(pkg, "img", "google", "64")
    present = set(os.listdir(folder))
    with open(os.path.join(pkg, "emoji.json"), encoding="utf-8") as f:
        table = json.load(f)
    by_category = {}
    for emoji in table:
        category = emoji["category"]
        if category in SKIPPED_CATEGORIES:
            continue
        if emoji.get("has_img_google") and emoji["image"] in present:
            by_category.setdefault(category, []).append(os.path.join(folder, emoji["image"]))
    return by_category


def main():
    parser = argparse.ArgumentParser(description="Lay out the Noto emoji by category.")
    parser.add_argument("package", nargs="?", help="an extracted emoji-datasource-google package")
    parser.add_argument("--out", default=OUT, help="the folder to write (default data/emoji)")
    args = parser.parse_args()
    out = args.out
    by_category = images_by_category(package_dir(args.package))
    if not by_category:
        sys.exit("no emoji with Google images found in the package")
    if os.path.exists(out):
        shutil.rmtree(out)
    rng = random.Random(0)
    counts = {}
    for category, files in sorted(by_category.items()):
        name = category.replace(" & ", "-and-").replace(" ", "-").lower()
        files = sorted(set(files))
        rng.shuffle(files)
        # A category of one image has none to spare for testing.
        n_test = max(1, round(TEST_SHARE * len(files))) if len(files) > 1 else 0
        for split, chosen in (("test", files[:n_test]), ("train", files[n_test:])):
            if not chosen:
                continue
            target = os.path.join(out, split, name)
            os.makedirs(target, exist_ok=True)
            for src in chosen:
                shutil.copyfile(src, os.path.join(target, os.path.basename(src)))
        counts[name] = (len(files) - n_test, n_test)
    with open(os.path.join(out, "ATTRIBUTION.md"), "w", encoding="utf-8") as f:
        f.write(ATTRIBUTION)
    for name, (train, test) in counts.items():
        print(f"{name:22} {train:5} train {test:4} test")
    total = sum(t for t, _ in counts.values()), sum(t for _, t in counts.values())
    print(f"{'all':22} {total[0]:5} train {total[1]:4} test -> {out}")


if __name__ == "__main__":
    main()
