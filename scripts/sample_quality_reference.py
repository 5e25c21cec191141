#!/usr/bin/env python3
"""Writes tests/data/sample_quality_reference.txt: two seeded feature sets (skewed, correlated,
not Gaussian) and their Fréchet distance, KID, precision and recall computed with NumPy and
SciPy as torch-fidelity and Kynkäänniemi et al. define them. tests/sample_quality.rs checks
shadergan's eval against these numbers.

  FD   = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 sqrtm(S_r S_f))      (scipy.linalg.sqrtm)
  KID  = unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, on the full sets (equal sizes)
  P/R  = share of one set inside the other's union of k-NN balls (k = 3)

Usage: python3 scripts/sample_quality_reference.py   (needs numpy and scipy)
"""
import os

import numpy as np
from scipy import linalg

N, D, K = 240, 10, 3
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                   "sample_quality_reference.txt")


def features(rng, shift, spread):
    mix = rng.standard_normal((D, D)) * spread
    x = rng.standard_normal((N, D)) @ mix
    x[:, 0] = np.exp(0.5 * x[:, 0])            # skewed
    x[:, 1] = np.abs(x[:, 1]) + x[:, 2] ** 2    # folded, dependent
    return x + shift


def frechet(a, b):
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sa @ sb).real
    return float(((ma - mb) ** 2).sum() + np.trace(sa + sb - 2 * covmean))


def kid(a, b):
    m = len(a)
    kernel = lambda x, y: (x @ y.T / D + 1) ** 3
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))
    return float(off(kaa) + off(kbb) - 2 * kab.mean())


def coverage(support, probe):
    d2 = ((support[:, None, :] - support[None, :, :]) ** 2).sum(-1)
    radii = np.sort(d2, axis=1)[:, K]           # column 0 is the row itself
    to_probe = ((probe[:, None, :] - support[None, :, :]) ** 2).sum(-1)
    return float((to_probe <= radii[None, :]).any(axis=1).mean())


def main():
    rng = np.random.default_rng(2026)
    real = features(rng, 0.0, 0.6)
    fake = features(rng, 0.3, 0.5)
    lines = [
        "# written by scripts/sample_quality_reference.py (NumPy %s, SciPy)" % np.__version__,
        f"dims {D}",
        f"rows {N}",
        f"fd {frechet(real, fake)!r}",
        f"kid {kid(real, fake)!r}",
        f"precision {coverage(real, fake)!r}",
        f"recall {coverage(fake, real)!r}",
        "real",
    ]
    lines += [" ".join(repr(float(v)) for v in row) for row in real]
    lines.append("fake")
    lines += [" ".join(repr(float(v)) for v in row) for row in fake]
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:7]))


if __name__ == "__main__":
    main()
