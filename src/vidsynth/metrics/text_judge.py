"""Faithfulness of text-conditioned samples: does a clip show what its prompt says?

A judge network is trained on real Shapes clips with their ground-truth attributes (the sprite's colour, shape and
initial motion direction, known exactly from each clip's seed), then reads generated clips; a prompt's attributes
come from parsing it with the Shapes caption grammar ("a red circle moves down-left"). Reported: per-attribute
accuracy and the all-correct rate. The judge sees the first frames of a clip (the caption names the initial
direction; a bounce reverses it later).

The judge is cached under ``$VIDSYNTH_CACHE/judges/`` (safetensors) by a hash of its settings; its accuracy on the
Shapes val split is stored with it, so a report can say how far to trust it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from vidsynth.data import build_dataset
from vidsynth.data.shapes import COLOURS, DIRECTIONS, SHAPES
from vidsynth.errors import UserError
from vidsynth.io import replaced_atomically
from vidsynth.models.layers import deep_trunk, widths

ATTRIBUTES = {"colour": tuple(COLOURS), "shape": SHAPES, "direction": DIRECTIONS}
JUDGE_FRAMES = 4            # frames 0, 1, 2, 3: the start of the motion, before any bounce in most clips
_CAPTION = re.compile(r"^an? (\w+) (\w+) moves ([\w-]+)$")


def prompt_attributes(prompt: str) -> dict[str, int]:
    """``"a red circle moves down-left"`` -> {"colour": 0, "shape": 0, "direction": 5}; one line if it is not a
    Shapes caption."""
    match = _CAPTION.match(prompt.strip().lower())
    values = dict(zip(ATTRIBUTES, match.groups())) if match else {}
    if not match or any(values[k] not in ATTRIBUTES[k] for k in ATTRIBUTES):
        raise UserError(f"{prompt!r} is not a Shapes caption ('a <colour> <shape> moves <direction>'): the judge "
                        "reads only those")
    return {k: ATTRIBUTES[k].index(v) for k, v in values.items()}


def _trunk(resolution: int, width: int, in_channels: int) -> nn.Sequential:
    trunk = deep_trunk(resolution, width, False, in_channels)
    for layer in trunk:
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()      # torch's default init: see DeepFrameDiscriminator
    return trunk


class ShapesJudge(nn.Module):
    """``[B, 3, T >= 4, R, R]`` in [-1, 1] -> logits per attribute. The shape from the first frame through the deep
    trunk that tells Shapes' classes apart fastest (``layers.deep_trunk``; the shape probe reaches 99% with it, a
    plain strided stack shared with the other heads stalled near 40%); colour and direction from the first
    ``JUDGE_FRAMES`` frames stacked on channels through five stride-2 convs with batch norm."""

    def __init__(self, resolution: int, width: int = 32):
        super().__init__()
        self.frame = _trunk(resolution, width // 2, 3)
        layers, channels, size = [], 3 * JUDGE_FRAMES, resolution
        while size > 1:
            layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU()]
            channels, size = width, (size + 1) // 2
        self.stack = nn.Sequential(*layers, nn.Flatten())
        self.heads = nn.ModuleDict({"colour": nn.Linear(width, len(COLOURS)),
                                    "shape": nn.Linear(widths(resolution, width // 2, 512)[4], len(SHAPES)),
                                    "direction": nn.Linear(width, len(DIRECTIONS))})
        self.resolution = resolution

    def forward(self, video: Tensor) -> dict[str, Tensor]:
        b, c, t, r, _ = video.shape
        if t < JUDGE_FRAMES or r != self.resolution:
            raise UserError(f"the judge reads clips of at least {JUDGE_FRAMES} frames at {self.resolution}px, got "
                            f"{t} frames at {r}px")
        moving = self.stack(video[:, :, :JUDGE_FRAMES].transpose(1, 2).reshape(b, c * JUDGE_FRAMES, r, r))
        shape = self.frame(video[:, :, 0])
        return {k: head(shape if k == "shape" else moving) for k, head in self.heads.items()}


def _batches(dataset, count: int, batch: int, seed: int):
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    for i in range(0, count, batch):
        clips = [dataset.clip(order[j % len(order)]) for j in range(i, min(count, i + batch))]
        video = torch.stack([dataset.render(c) for c in clips])
        targets = {"colour": torch.tensor([c.colour for c in clips]), "shape": torch.tensor([c.shape for c in clips]),
                   "direction": torch.tensor([c.direction for c in clips])}
        yield video, targets


def train_judge(resolution: int, background: str = "plain", steps: int = 1500, batch: int = 32, seed: int = 0,
                cache: Path | None = None) -> tuple[ShapesJudge, dict]:
    """A judge trained on Shapes train clips (its own 20,000-clip split, seed ``seed``), and its per-attribute
    accuracy on 1,000 val clips. Cached in ``cache`` when given."""
    settings = {"version": 3, "resolution": resolution, "background": background, "steps": steps, "batch": batch,
                "seed": seed, "frames": JUDGE_FRAMES}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    if cache is not None and (cache / f"judge-{key}.safetensors").is_file():
        from safetensors.torch import load_file
        judge = ShapesJudge(resolution)
        judge.load_state_dict(load_file(str(cache / f"judge-{key}.safetensors")))
        return judge.eval(), json.loads((cache / f"judge-{key}.json").read_text())["val_accuracy"]
    torch.manual_seed(seed)
    data = dict(name="shapes", resolution=resolution, num_frames=JUDGE_FRAMES, background=background, seed=seed + 1)
    train_set = build_dataset(**data, length=20000)
    judge = ShapesJudge(resolution)
    optimizer = torch.optim.Adam(judge.parameters(), 8e-4, betas=(0.5, 0.999))
    loss = nn.CrossEntropyLoss()
    judge.train()
    for video, targets in _batches(train_set, steps * batch, batch, seed):
        logits = judge(video)
        total = sum(loss(logits[k], targets[k]) for k in ATTRIBUTES)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    judge.eval()
    val = build_dataset(**data, split="val")
    hits = {k: 0 for k in ATTRIBUTES}
    with torch.no_grad():
        for video, targets in _batches(val, len(val), 100, seed):
            logits = judge(video)
            for k in ATTRIBUTES:
                hits[k] += int((logits[k].argmax(1) == targets[k]).sum())
    accuracy = {k: hits[k] / len(val) for k in ATTRIBUTES}
    if cache is not None:
        from safetensors.torch import save_file
        with replaced_atomically(cache / f"judge-{key}.safetensors") as tmp:
            save_file(judge.state_dict(), str(tmp))
        with replaced_atomically(cache / f"judge-{key}.json") as tmp:
            tmp.write_text(json.dumps({"settings": settings, "val_accuracy": accuracy}))
    return judge, accuracy


@torch.no_grad()
def text_accuracy(judge: ShapesJudge, videos: Tensor, prompts: Sequence[str]) -> dict[str, float]:
    """Per-attribute accuracy and the all-correct rate of ``videos`` ``[B, 3, T, R, R]`` against their prompts."""
    if len(videos) != len(prompts):
        raise UserError(f"{len(videos)} videos and {len(prompts)} prompts: give one prompt per video")
    wanted = [prompt_attributes(p) for p in prompts]
    correct = {k: [] for k in ATTRIBUTES}
    for i in range(0, len(videos), 64):
        logits = judge(videos[i: i + 64])
        for k in ATTRIBUTES:
            target = torch.tensor([w[k] for w in wanted[i: i + 64]])
            correct[k].append(logits[k].argmax(1) == target)
    correct = {k: torch.cat(v) for k, v in correct.items()}
    out = {k: float(v.float().mean()) for k, v in correct.items()}
    out["all"] = float(torch.stack(list(correct.values())).all(0).float().mean())
    return out
