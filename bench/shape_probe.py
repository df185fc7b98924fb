"""How soon the image discriminator's trunk can tell the Shapes classes apart: the trunk (``DownStack``, as in
mocogan's image D) plus a linear head, trained as a plain 5-way classifier on single frames, printing held-out
accuracy as it goes (chance = 20%). A discriminator that cannot tell a star from a circle cannot teach the generator
to draw one: this is the probe behind the README's note on why the quick preset's frames show blobs.

    .venv/bin/python bench/shape_probe.py                       # the quick preset's image D: d_channels 16, SN
    .venv/bin/python bench/shape_probe.py --no-spectral-norm --steps 1500
    .venv/bin/python bench/shape_probe.py --judge runs/00000-mocogan-shapes32

``--judge RUN...`` (run or export folders of class-conditional models trained on Shapes) first trains a judge
that sees shape (``--deep``: a stride-1 3x3 conv before each strided conv, a head on the features averaged over
positions, no spectral norm: 99% of held-out frames after 2,000-3,000 steps, 40 s), then classifies every frame of
each model's samples and prints the share in the class it was sampled for (chance 20%), the share the judge is sure
about (next to the share for held-out real frames), the share agreeing with its clip's most frequent prediction,
and the share of frames that show a sprite at all and, of those, the share in class (the judge never saw an empty
frame and calls one a triangle): numbers for "are the shapes recognisable".
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from vidsynth.data import build_dataset
from vidsynth.errors import UserError
from vidsynth.models.layers import (
    DownStack,
    deep_trunk,
    init_weights,
    spectral_norm,
    widths,
)
from vidsynth.models.sampler import Sampler
from vidsynth.pretrained import load as load_model


def frames(dataset, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` single frames ``[n, 3, R, R]`` (a random frame of a random clip each) and their shape labels."""
    clips = torch.randint(len(dataset), (n,), generator=generator).tolist()
    times = torch.randint(dataset.num_frames, (n,), generator=generator).tolist()
    items = [dataset[i] for i in clips]
    return (torch.stack([item["video"][:, t] for item, t in zip(items, times)]),
            torch.tensor([item["label"] for item in items]))


def classifier(args, classes: int) -> nn.Sequential:
    """The probed trunk plus a linear head: ``[B, 3, R, R]`` -> logits ``[B, classes]``."""
    w = widths(args.resolution, args.d_channels, 512)
    if args.deep:
        trunk, features = deep_trunk(args.resolution, args.d_channels, args.spectral_norm), w[4]
    else:
        stack = DownStack(2, 3, args.resolution, w, sn=args.spectral_norm)
        trunk, features = nn.Sequential(stack, nn.Flatten()), stack.out_channels * 16
    return nn.Sequential(trunk, spectral_norm(init_weights(nn.Linear(features, classes)), args.spectral_norm))


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The predicted class of each of ``x`` and its probability."""
    probability, predicted = torch.cat([net(chunk).softmax(1) for chunk in x.split(256)]).max(1)
    return predicted, probability


def sprite_visible(x: torch.Tensor, min_pixels: int = 8, off: float = 0.3) -> torch.Tensor:
    """Whether each frame ``[N, C, R, R]`` in [-1, 1] shows an object: at least ``min_pixels`` pixels differ from
    the frame's median colour (its background: a Shapes sprite covers well under half the frame) by more than
    ``off`` in some channel. The judge never saw an empty frame, so its class for one is arbitrary: a generator
    that hid one class's sprite would score as drawing that class."""
    background = x.flatten(2).median(2).values[:, :, None, None]
    return ((x - background).abs().amax(1) > off).flatten(1).sum(1) >= min_pixels


def load(path: str) -> Sampler:
    """The sampler of a class-conditional Shapes run or export at ``path``; a one-line exit otherwise."""
    try:
        sampler = load_model(path)
    except UserError as e:
        raise SystemExit(f"--judge: {e}") from None
    if not sampler.generates or sampler.data.name != "shapes" or not sampler.num_classes:
        raise SystemExit(f"--judge {path}: needs a class-conditional model trained on shapes")
    return sampler


def judge(net: nn.Module, path: str, generator: nn.Module, per_class: int, names: list[str],
          real_sure: float, real_visible: float) -> None:
    """Print how ``net`` classifies the frames of ``per_class`` samples per class of the model at ``path``: the
    share in their sampled class, the share it is sure about (p > 0.9; ``real_sure`` for held-out real frames) and
    the share agreeing with their clip's most frequent prediction (a sprite keeps its shape over a clip). A model
    that draws shapes but ignores the class scores chance on the first and high on the others. Then the share of
    frames with a visible sprite (``sprite_visible``; ``real_visible`` for real frames) and the share in class
    among those, overall and per class."""
    labels = [c for c in range(generator.num_classes) for _ in range(per_class)]
    videos = generator.sample(list(range(len(labels))), labels)  # [N, C, T, R, R]
    t = videos.shape[2]
    x = videos.transpose(1, 2).flatten(0, 1)
    predicted, probability = predict(net, x)
    visible = sprite_visible(x)
    y = torch.tensor(labels).repeat_interleave(t)
    majority = predicted.view(-1, t).mode(1).values.repeat_interleave(t)
    print(f"judged {path}: {len(labels)} samples x {t} frames: in their sampled class "
          f"{float((predicted == y).float().mean()):.1%} (chance {1 / len(names):.0%}); sure (p > 0.9) "
          f"{float((probability > 0.9).float().mean()):.1%} (held-out real frames {real_sure:.1%}); agreeing with "
          f"their clip's majority {float((predicted == majority).float().mean()):.1%}; a visible sprite "
          f"{float(visible.float().mean()):.1%} (real frames {real_visible:.1%}), of those in their sampled class "
          f"{float((predicted == y)[visible].float().mean()):.1%}")
    for c, name in enumerate(names):
        counts = torch.bincount(predicted[y == c], minlength=len(names))
        spread = ", ".join(f"{n} {int(k)}" for n, k in zip(names, counts) if k)
        shown = visible[y == c]
        print(f"  sampled as {name:<9} predicted: {spread}; visible {float(shown.float().mean()):.0%}, of those "
              f"in class {float((predicted[y == c] == c)[shown].float().mean()):.0%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--d-channels", type=int, default=16)
    p.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--steps", type=int, help="training steps (default 1000, with --judge 3000)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--every", type=int, default=250, help="steps between accuracy reports")
    p.add_argument("--held-out", type=int, default=500, help="frames the accuracy is measured on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deep", action="store_true", help="the judge's trunk (see above) instead of the image D's")
    p.add_argument("--judge", metavar="RUN", nargs="+", help="score these runs' (or exports') samples with a "
                   "--deep --no-spectral-norm classifier")
    p.add_argument("--per-class", type=int, default=20, help="--judge: samples per class")
    args = p.parse_args()
    if args.judge:
        args.deep, args.spectral_norm = True, False
    args.steps = args.steps or (3000 if args.judge else 1000)
    generators = {path: load(path) for path in args.judge or []}  # bad paths fail before the training

    torch.manual_seed(args.seed)
    dataset = build_dataset(name="shapes", resolution=args.resolution, num_frames=16, background="plain")
    net = classifier(args, len(dataset.class_names))
    optimizer = torch.optim.Adam(net.parameters(), args.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(args.seed + 1)
    # held-out frames come from the val split: clips the training frames never show
    test_x, test_y = frames(build_dataset(name="shapes", resolution=args.resolution, num_frames=16,
                                          background="plain", split="val"), args.held_out, rng)
    trunk = "deep, position-averaged" if args.deep else "image D"
    print(f"shape probe: resolution {args.resolution}, d_channels {args.d_channels}, {trunk} trunk, spectral norm "
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
            held_out = float((predict(net, test_x)[0] == test_y).float().mean())
            print(f"  step {step:5d}  train loss {float(loss.detach()):.3f}  accuracy {held_out:.1%}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    net.eval()
    if generators:
        real_sure = float((predict(net, test_x)[1] > 0.9).float().mean())
        real_visible = float(sprite_visible(test_x).float().mean())
    for path, generator in generators.items():
        judge(net, path, generator, args.per_class, dataset.class_names, real_sure, real_visible)


if __name__ == "__main__":
    main()
