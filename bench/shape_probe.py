"""How soon the image discriminator's trunk can tell the Shapes classes apart: the trunk (``DownStack``, as in
mocogan's image D) plus a linear head, trained as a plain 5-way classifier on single frames, printing held-out
accuracy as it goes (chance = 20%). A discriminator that cannot tell a star from a circle cannot teach the generator
to draw one: this is the probe behind the README's note on why the quick preset's frames show blobs.

    .venv/bin/python bench/shape_probe.py                       # the quick preset's image D: d_channels 16, SN
    .venv/bin/python bench/shape_probe.py --no-spectral-norm --steps 1500
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from vidsynth.data import build_dataset
from vidsynth.models.layers import DownStack, init_weights, spectral_norm, widths


def frames(dataset, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` single frames ``[n, 3, R, R]`` (a random frame of a random clip each) and their shape labels."""
    clips = torch.randint(len(dataset), (n,), generator=generator).tolist()
    times = torch.randint(dataset.num_frames, (n,), generator=generator).tolist()
    items = [dataset[i] for i in clips]
    return (torch.stack([item["video"][:, t] for item, t in zip(items, times)]),
            torch.tensor([item["label"] for item in items]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--d-channels", type=int, default=16)
    p.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--every", type=int, default=250, help="steps between accuracy reports")
    p.add_argument("--held-out", type=int, default=500, help="frames the accuracy is measured on")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    dataset = build_dataset(name="shapes", resolution=args.resolution, num_frames=16, background="plain")
    trunk = DownStack(2, 3, args.resolution, widths(args.resolution, args.d_channels, 512), sn=args.spectral_norm)
    head = spectral_norm(init_weights(nn.Linear(trunk.out_channels * 16, len(dataset.class_names))),
                         args.spectral_norm)
    net = nn.Sequential(trunk, nn.Flatten(), head)
    optimizer = torch.optim.Adam(net.parameters(), args.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(args.seed + 1)
    # held-out frames come from the val split: clips the training frames never show
    test_x, test_y = frames(build_dataset(name="shapes", resolution=args.resolution, num_frames=16,
                                          background="plain", split="val"), args.held_out, rng)
    print(f"shape probe: resolution {args.resolution}, d_channels {args.d_channels}, spectral norm "
          f"{args.spectral_norm}, batch {args.batch}, lr {args.lr}; held-out accuracy (chance "
          f"{1 / len(dataset.class_names):.0%}):")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = frames(dataset, args.batch, rng)
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                accuracy = float((net(test_x).argmax(1) == test_y).float().mean())
            print(f"  step {step:5d}  train loss {float(loss.detach()):.3f}  accuracy {accuracy:.1%}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
