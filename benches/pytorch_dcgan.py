"""The DCGAN iteration of `shadergan bench` in PyTorch on the CPU, for comparison.

Same networks as src/models/dcgan.rs at 32x32 (PyTorch's DCGAN example scaled to 32x32):
G: convT(z -> 4w, k4 s1 p0), BN, ReLU, convT(4w -> 2w), BN, ReLU, convT(2w -> w), BN, ReLU,
convT(w -> 1), tanh; D: conv(1 -> w), leaky 0.2, conv(w -> 2w), BN, leaky, conv(2w -> 4w), BN,
leaky, conv(4w -> 1, k4 s1 p0); no biases before BN (none anywhere, as in the example);
Adam (2e-4, 0.5, 0.999); BCE with logits, non-saturating G loss. One iteration: D on a real batch
and a detached fake, then G, reusing the fake as the PyTorch example does.

    python benches/pytorch_dcgan.py --width 64 --batch 64 --iters 20 --threads 2

Prints the median, min and max seconds per iteration after warm-up (real images are random
tensors: the data pipeline is not what is timed, on either side).
"""

import argparse
import statistics
import time

import torch
from torch import nn


def generator(latent, w):
    return nn.Sequential(
        nn.ConvTranspose2d(latent, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU(True),
        nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
        nn.ConvTranspose2d(w, 1, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(w):
    return nn.Sequential(
        nn.Conv2d(1, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * w, 1, 4, 1, 0, bias=False), nn.Flatten())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g, d = generator(args.latent, args.width), discriminator(args.width)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    b = args.batch
    ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

    def iteration():
        real = torch.rand(b, 1, 32, 32) * 2 - 1
        fake = g(torch.randn(b, args.latent, 1, 1))
        # (1) update D on a real batch and a detached fake
        opt_d.zero_grad(set_to_none=True)
        loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        # (2) update G (non-saturating)
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(d(fake), ones)
        loss_g.backward()
        opt_g.step()
        return loss_d.item() + loss_g.item()

    t0 = time.perf_counter()
    iteration()
    cold = time.perf_counter() - t0
    iteration()
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - t)
    print(f"pytorch {torch.__version__} cpu, {args.threads} threads, batch {b}, width {args.width}: "
          f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s "
          f"over {args.iters} iterations (first {cold:.3f} s)")


if __name__ == "__main__":
    main()
