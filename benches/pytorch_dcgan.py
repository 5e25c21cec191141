"""The DCGAN iteration of `shadergan bench` in PyTorch (CPU or CUDA), for comparison.

Same networks as src/models/dcgan.rs (PyTorch's DCGAN example; at 32x32 one stage fewer):
G: convT(z -> 2^(n-1) w, k4 s1 p0), BN, ReLU, then n-1 times convT(c -> c/2, k4 s2 p1), BN,
ReLU, then convT(w -> channels), tanh; D mirrors it: conv(channels -> w), leaky 0.2, n-1 times
conv(c -> 2c), BN, leaky, then conv(-> 1, k4 s1 p0); n = log2(image_size / 4): 3 at 32x32, 4 at
64x64 (the example's 3x64x64 with ngf = ndf = 64); no biases (none anywhere, as in the example);
Adam (2e-4, 0.5, 0.999); BCE with logits, non-saturating G loss. One iteration: D on a real batch
and a detached fake, then G, reusing the fake as the PyTorch example does.

    python benches/pytorch_dcgan.py --width 64 --batch 64 --iters 20 --threads 2
    python benches/pytorch_dcgan.py --device cuda --channels 3 --image-size 64 --batch 128

Prints the median, min and max seconds per iteration after warm-up (real images are random
tensors: the data pipeline is not what is timed, on either side).
"""

import argparse
import statistics
import time

import torch
from torch import nn


def stages(image_size):
    return (image_size // 4).bit_length() - 1


def generator(latent, w, channels, image_size):
    c = w << (stages(image_size) - 1)
    layers = [nn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
    for _ in range(1, stages(image_size)):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        c //= 2
    layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(w, channels, image_size):
    c = w
    layers = [nn.Conv2d(channels, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for _ in range(1, stages(image_size)):
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
        c *= 2
    layers += [nn.Conv2d(c, 1, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    size, ch = args.image_size, args.channels
    g = generator(args.latent, args.width, ch, size).to(dev)
    d = discriminator(args.width, ch, size).to(dev)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    b = args.batch
    ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)

    def iteration():
        real = torch.rand(b, ch, size, size, device=dev) * 2 - 1
        fake = g(torch.randn(b, args.latent, 1, 1, device=dev))
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
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {args.threads} threads"
    print(f"pytorch {torch.__version__} {where}, {ch}x{size}x{size}, batch {b}, width {args.width}: "
          f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s "
          f"over {args.iters} iterations (first {cold:.3f} s)")


if __name__ == "__main__":
    main()
