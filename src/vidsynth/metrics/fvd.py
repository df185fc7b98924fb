"""FVD and KVD (Unterthiner et al. 2018, "Towards Accurate Generative Models of Video"; reference code:
google-research/frechet_video_distance) on the logits of I3D trained on Kinetics-400 (TF-Hub
``deepmind/i3d-kinetics-400/1``, ported in ``i3d.py``).

Protocol, as the reference code does it unless a name says otherwise:
- a clip is ``num_frames`` frames (every ``stride``-th source frame for real clips), 8-bit as a saved video would be
  (generated clips are quantised as ``vidsynth.io`` writes them);
- every frame is resized to 224x224 with TF1's ``resize_bilinear`` (no aspect-preserving crop, no antialias,
  corner-anchored: ``resize.py``), then scaled by 2x/255 - 1;
- the 400-d logits are the features; FVD = Frechet distance of Gaussians fitted to them (``frechet.py``), KVD = the
  polynomial-kernel MMD of KID (``kvd.py``).

The name carries the protocol: ``fvd2048_16f`` = 2048 real and 2048 generated clips of 16 frames; ``_s2`` = real
clips take every 2nd source frame; ``_styleganv`` = frames resized with torch's half-pixel bilinear instead (as
StyleGAN-V's code does), for comparison with papers that used it. Real clips are a seeded random selection of the
split's videos (not the first N files in sorted order, which is class-skewed on UCF101), each with a seeded random
start; when the split has fewer than N videos it is gone through again, with new random starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from vidsynth.errors import UserError
from vidsynth.io import to_levels
from vidsynth.metrics.frechet import Gaussian, frechet_distance
from vidsynth.metrics.i3d import MIN_FRAMES
from vidsynth.metrics.kvd import kernel_distance
from vidsynth.metrics.resize import RESIZE_METHODS, resize_frames

DETECTOR_SIZE = 224
KINDS = ("fvd", "kvd")
_NAME = re.compile(r"(fvd|kvd)(\d+)_(\d+)f(?:_s(\d+))?(_styleganv)?")


@dataclass(frozen=True)
class Protocol:
    """Everything that decides a metric's value besides the two sets of videos."""

    kind: str              # fvd | kvd
    num_clips: int         # real clips, and generated clips
    num_frames: int
    stride: int = 1        # frame stride of real clips
    resize: str = "tf1"    # tf1 (the reference) | torch (StyleGAN-V)
    seed: int = 0          # real clip selection and starts; generated clips use seeds 0..num_clips-1

    @property
    def name(self) -> str:
        return (f"{self.kind}{self.num_clips}_{self.num_frames}f" + (f"_s{self.stride}" if self.stride != 1 else "")
                + ("_styleganv" if self.resize == "torch" else ""))


def parse_metric(name: str) -> Protocol:
    """``fvd2048_16f``, ``kvd256_16f_s2``, ``fvd2048_16f_styleganv`` -> Protocol."""
    m = _NAME.fullmatch(name.strip())
    if not m:
        raise UserError(f"unknown metric {name!r}: use <fvd|kvd><clips>_<frames>f[_s<stride>][_styleganv], "
                        "e.g. fvd2048_16f or kvd256_16f")
    kind, clips, frames, stride, sgv = m.groups()
    if int(clips) < 2 or int(frames) < MIN_FRAMES or (stride and int(stride) < 1):
        raise UserError(f"metric {name!r}: needs >= 2 clips, >= {MIN_FRAMES} frames (I3D's minimum) and stride >= 1")
    return Protocol(kind, int(clips), int(frames), int(stride or 1), "torch" if sgv else "tf1")


def detector_input(videos: Tensor, resize: str = "tf1") -> Tensor:
    """float ``[B, C, T, H, W]`` in [-1, 1] (C = 1 or 3) -> I3D input float ``[B, 3, T, 224, 224]`` in [-1, 1]:
    quantised to 8 bits, every frame resized bilinearly to 224x224 by ``resize``, scaled 2x/255 - 1."""
    if videos.dim() != 5 or videos.shape[1] not in (1, 3):
        raise ValueError(f"videos: expected [B, C, T, H, W] with C = 1 or 3, got {list(videos.shape)}")
    if resize not in RESIZE_METHODS:
        raise UserError(f"resize={resize!r}: use one of {', '.join(RESIZE_METHODS)}")
    x = to_levels(videos).expand(-1, 3, -1, -1, -1)
    return resize_frames(x, DETECTOR_SIZE, resize) * (2 / 255) - 1


@torch.inference_mode()
def video_features(videos, detector: torch.nn.Module, resize: str = "tf1", batch_size: int = 8,
                   total: int | None = None, desc: str = "I3D features") -> Tensor:
    """float64 ``[N, 400]`` logits of ``videos``: a float ``[N, C, T, H, W]`` tensor in [-1, 1] (run in batches of
    ``batch_size``) or an iterable of such batches. The detector sees one clip's frames at a time per batch row, so
    the features do not depend on how the clips are batched."""
    device = next(detector.parameters()).device
    if isinstance(videos, Tensor):
        videos, total = videos.split(batch_size), len(videos)
    out = []
    with tqdm(total=total, desc=desc, unit="clip", leave=False) as bar:
        for batch in videos:
            out.append(detector(detector_input(batch.to(device), resize)).double().cpu())
            bar.update(len(batch))
    if not out:
        raise UserError("no videos to compute features of")
    return torch.cat(out)


def score(kind: str, real: Tensor, fake: Tensor, seed: int = 0) -> float:
    """The metric ``kind`` (fvd | kvd) between feature sets ``[N, D]`` and ``[M, D]``."""
    if kind == "fvd":
        return frechet_distance(Gaussian.fit(real), Gaussian.fit(fake))
    if kind == "kvd":
        return kernel_distance(real, fake, seed=seed)
    raise ValueError(f"unknown metric kind {kind!r}: use one of {', '.join(KINDS)}")


def _metric(kind: str, real, fake, resize: str, batch_size: int, detector) -> float:
    if detector is None:
        from vidsynth.metrics.i3d import load_i3d
        detector = load_i3d()
    return score(kind, video_features(real, detector, resize, batch_size, desc="real"),
                 video_features(fake, detector, resize, batch_size, desc="fake"))


def fvd(real, fake, *, resize: str = "tf1", batch_size: int = 8, detector=None) -> float:
    """FVD between two sets of videos, each a float ``[N, C, T, H, W]`` tensor in [-1, 1] or an iterable of such
    batches (all clips of the same length; 16 frames is the standard)."""
    return _metric("fvd", real, fake, resize, batch_size, detector)


def kvd(real, fake, *, resize: str = "tf1", batch_size: int = 8, detector=None) -> float:
    """KVD between two sets of videos (as ``fvd``)."""
    return _metric("kvd", real, fake, resize, batch_size, detector)
