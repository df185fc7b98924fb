"""``Shapes``: the built-in synthetic dataset (needs no files, it is the default training data).

One coloured sprite (circle, square, triangle, diamond or star) moves with constant speed in one of 8 directions
and bounces off the borders, over a plain or a textured background. Clips are rendered straight at the output
resolution with anti-aliased edges: a signed distance to the shape's outline, computed in torch for every frame at
once, becomes a one-pixel coverage ramp (about a millisecond for a 16x64x64 clip on one CPU core).

A sample is ``{"video": float [3, T, R, R] in [-1, 1], "label": shape id, "motion": direction id 0-7,
"caption": "a red circle moves down-left", "index": int}``; the caption names the initial direction (a bounce
reverses it later). Everything a clip shows is drawn from its own seed ``(seed, split, index)``, in units of the
frame side, so a clip is the same sprite on the same path at every resolution, frame count and stride.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidsynth.config import DataConfig
from vidsynth.data.base import register_dataset, seed_for
from vidsynth.data.synthetic import SyntheticDataset, bounce
from vidsynth.errors import UserError

SHAPES = ("circle", "square", "triangle", "diamond", "star")
COLOURS = {  # RGB in [0, 1]: saturated and bright (one channel >= 0.9), so they stand out from the dark backgrounds
    "red": (0.90, 0.10, 0.10), "green": (0.10, 0.80, 0.15), "blue": (0.15, 0.35, 1.00),
    "yellow": (0.95, 0.90, 0.10), "cyan": (0.10, 0.90, 0.90), "magenta": (0.90, 0.15, 0.90),
    "white": (1.00, 1.00, 1.00), "orange": (1.00, 0.55, 0.00),
}
DIRECTIONS = ("up", "up-right", "right", "down-right", "down", "down-left", "left", "up-left")  # clockwise
TEXTURES = ("noise", "stripes", "checks")

SIZE = (0.20, 0.35)          # sprite size (the side of the box it fits in), fraction of the frame side
SPEED = (0.03, 0.06)         # fraction of the frame side per source frame: 0.5-1 frame side over 16 frames
BACKGROUND = (0.05, 0.35)    # each channel of the background's base colour: dark, far from every sprite colour
CONTRAST = (0.04, 0.10)      # amplitude of the textured background's pattern around its base colour
PATTERN_FREQ = (2.0, 6.0)    # texture cycles (or noise cells) per frame side
NOISE_CELLS = 7              # the largest smooth-noise grid (drawn at full size always, so draws never shift)


@dataclass(frozen=True)
class ShapeClip:
    """What one clip shows; lengths and positions are fractions of the frame side."""

    shape: int
    colour: int
    direction: int
    size: float
    speed: float
    start: tuple[float, float]              # sprite centre (x, y) at frame 0, y pointing down
    background: tuple[float, float, float]  # base RGB in [0, 1]
    texture: int
    frequency: float
    angle: float
    phase: float
    contrast: float
    noise: torch.Tensor                     # [NOISE_CELLS, NOISE_CELLS] in [0, 1], for the smooth-noise texture

    @property
    def caption(self) -> str:
        colour = list(COLOURS)[self.colour]
        article = "an" if colour[0] in "aeiou" else "a"
        return f"{article} {colour} {SHAPES[self.shape]} moves {DIRECTIONS[self.direction]}"

    @property
    def velocity(self) -> tuple[float, float]:
        # direction k is k * 45 degrees clockwise from up; on screen (y down) up is (0, -1)
        angle = self.direction * math.pi / 4
        return self.speed * math.sin(angle), -self.speed * math.cos(angle)


def parse_holdout(text: str) -> set[tuple[int, int]]:
    """``"blue star,red circle"`` -> {(colour id, shape id)}; a word outside the palette or the shapes is an error."""
    pairs = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        words = item.split()
        if len(words) != 2 or words[0] not in COLOURS or words[1] not in SHAPES:
            raise UserError(f"holdout={text!r}: {item!r} is not '<colour> <shape>' (colours: {', '.join(COLOURS)}; "
                            f"shapes: {', '.join(SHAPES)})")
        pairs.add((list(COLOURS).index(words[0]), SHAPES.index(words[1])))
    if len(pairs) >= len(COLOURS) * len(SHAPES):
        raise UserError(f"holdout={text!r} holds out every pair: keep some for training")
    return pairs


def draw_clip(seed: int) -> ShapeClip:
    """The content of the clip with this seed. All scalars come from one fixed-size draw: cheap enough that
    ``labels()`` can call it for 10000+ clips, and the layout of draws never depends on earlier values."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(15, generator=generator, dtype=torch.float64).tolist()
    noise = torch.rand(NOISE_CELLS, NOISE_CELLS, generator=generator)

    def pick(x: float, n: int) -> int:
        return min(int(x * n), n - 1)

    def between(x: float, bounds: tuple[float, float]) -> float:
        return bounds[0] + x * (bounds[1] - bounds[0])

    size = between(u[3], SIZE)
    # the sprite's box stays inside the frame: its centre lives in [size / 2, 1 - size / 2]
    start = (between(u[5], (size / 2, 1 - size / 2)), between(u[6], (size / 2, 1 - size / 2)))
    return ShapeClip(
        shape=pick(u[0], len(SHAPES)), colour=pick(u[1], len(COLOURS)), direction=pick(u[2], len(DIRECTIONS)),
        size=size, speed=between(u[4], SPEED), start=start,
        background=tuple(between(x, BACKGROUND) for x in u[7:10]), texture=pick(u[10], len(TEXTURES)),
        frequency=between(u[11], PATTERN_FREQ), angle=u[12] * math.pi, phase=u[13] * 2 * math.pi,
        contrast=between(u[14], CONTRAST), noise=noise)


# Signed distances in pixels (negative inside) of shapes centred at the origin, for local coordinates x, y
# (y down) of any shape and a radius r = half the sprite size; each shape fits in the box [-r, r]^2.

def _circle(x, y, r):
    return torch.sqrt(x * x + y * y) - r


def _square(x, y, r):
    # Chebyshev distance: exact inside and along the edges, which is all a one-pixel coverage ramp needs
    return torch.maximum(x.abs(), y.abs()) - 0.8 * r  # 0.8: a full-box square would look much bigger than the rest


def _diamond(x, y, r):
    return (x.abs() + y.abs() - r) * math.sqrt(0.5)


def _triangle(x, y, r):
    # equilateral, apex up, circumradius r: the largest of the distances to its three edge lines (inradius r / 2)
    return torch.maximum(y, x.abs() * math.cos(math.pi / 6) - y * 0.5) - 0.5 * r


def _star(x, y, r, inner=0.5):
    # five points, one up: Inigo Quilez's exact star distance (iquilezles.org/articles/distfunctions2d),
    # which folds the plane into one half-spike by mirroring across the star's symmetry axes
    kx, ky = math.cos(math.pi / 5), -math.sin(math.pi / 5)
    px, py = x.abs(), -y
    for mx in (kx, -kx):
        d = 2 * (mx * px + ky * py).clamp(min=0)
        px, py = px - d * mx, py - d * ky
    px, py = px.abs(), py - r
    bx, by = -ky * inner, kx * inner - 1  # from the tip towards the inner corner, per unit of r
    h = ((px * bx + py * by) / (bx * bx + by * by)).clamp(0, r)
    return torch.hypot(px - bx * h, py - by * h) * torch.sign(py * bx - px * by)


SDF = {"circle": _circle, "square": _square, "triangle": _triangle, "diamond": _diamond, "star": _star}
assert tuple(SDF) == SHAPES


@register_dataset("shapes")
class Shapes(SyntheticDataset):
    """Coloured sprites bouncing around; label = shape. No files needed."""

    description = ("synthetic, no files: a coloured circle/square/triangle/diamond/star moving in one of 8 directions "
                   "and bouncing off the borders, on a plain or textured background; label = shape")
    options = SyntheticDataset.options + ("background", "holdout")
    SPLIT_SIZES = {"val": 500, "test": 1000}

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.class_names = list(SHAPES)
        self.holdout = parse_holdout(cfg.holdout) if cfg.split == "train" else set()
        # pixel centres, broadcastable to [T, R, R]
        centres = torch.arange(cfg.resolution, dtype=torch.float32) + 0.5
        self._x, self._y = centres.view(1, 1, -1), centres.view(1, -1, 1)

    def caption_words(self) -> list[str]:
        """Every word a caption of this dataset can hold."""
        return sorted({"a", "an", "moves", *SHAPES, *COLOURS, *(w for d in DIRECTIONS for w in d.split("-"))})

    def clip(self, index: int) -> ShapeClip:
        """What clip ``index`` of this split shows (no rendering); in the train split never a held-out pair (such a
        draw is drawn again from a derived seed)."""
        seed = self.clip_seed(index)
        clip = draw_clip(seed)
        while (clip.colour, clip.shape) in self.holdout:
            seed = seed_for(seed, "holdout")
            clip = draw_clip(seed)
        return clip

    def labels(self) -> list[int]:
        return [self.clip(i).shape for i in range(len(self))]

    def load(self, index: int, generator: torch.Generator) -> dict:
        # `generator` is for augmentation and a synthetic clip has none: the content comes from the clip's own
        # seed, so it is the same whichever sampler key asked for it
        clip = self.clip(index)
        return {"video": self.render(clip), "label": clip.shape, "motion": clip.direction, "caption": clip.caption}

    def render(self, clip: ShapeClip) -> torch.Tensor:
        """float ``[3, T, R, R]`` in [-1, 1]."""
        res = self.cfg.resolution
        radius = clip.size * res / 2
        start = torch.tensor(clip.start) * res
        velocity = torch.tensor(clip.velocity) * res
        centre = bounce(start, velocity, self.frame_times, radius, res - radius)             # [T, 2]
        x = self._x - centre[:, 0, None, None]                                               # [T, 1, R]
        y = self._y - centre[:, 1, None, None]                                               # [T, R, 1]
        coverage = (0.5 - SDF[SHAPES[clip.shape]](x, y, radius)).clamp_(0, 1)                # [T, R, R]
        background = torch.tensor(clip.background).view(3, 1, 1, 1)
        if self.cfg.background == "textured":
            background = (background + clip.contrast * self.texture(clip)).clamp_(0, 1)     # [3, 1, R, R]
        colour = torch.tensor(COLOURS[list(COLOURS)[clip.colour]]).view(3, 1, 1, 1)
        video = background + (colour - background) * coverage                               # [3, T, R, R]
        return video.mul_(2).sub_(1)

    def texture(self, clip: ShapeClip) -> torch.Tensor:
        """The static background pattern, float ``[R, R]`` in [-1, 1]."""
        res = self.cfg.resolution
        # above ~R/6 cycles a pattern would alias into moire at small resolutions
        freq = min(clip.frequency, res / 6)
        kind = TEXTURES[clip.texture]
        if kind == "noise":
            cells = clip.noise[: max(2, round(freq)) + 1, : max(2, round(freq)) + 1]
            smooth = F.interpolate(cells[None, None], size=(res, res), mode="bicubic", align_corners=True)
            return (smooth[0, 0] * 2 - 1).clamp_(-1, 1)
        # rotated coordinates in frame sides
        cos, sin = math.cos(clip.angle), math.sin(clip.angle)
        u = (self._x[0] * cos + self._y[0] * sin) / res
        v = (self._y[0] * cos - self._x[0] * sin) / res
        if kind == "stripes":
            return torch.sin(2 * math.pi * freq * u + clip.phase)
        # soft-edged checks: the sign of a product of two waves, with edges blurred so they do not alias
        return torch.tanh(3 * torch.sin(math.pi * freq * u + clip.phase) * torch.sin(math.pi * freq * v))
