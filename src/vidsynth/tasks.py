"""Prediction, interpolation and inpainting with a trained completion model (``--model completion``), on tensors
(``predict``, ``interpolate``, ``inpaint``) or on files (``read_clip``, ``read_image``, ``read_hole``: the
training transforms applied to inputs of any size, with a note saying what was done).

``model`` is a completion model's sampler (``load_completion``, ``vidsynth.load_pretrained``). Tensors are in
[-1, 1]: clips ``[B, C, T, R, R]``, frames ``[B, C, R, R]``, holes ``[B or 1, 1, T or 1, R, R]``
with 1 where pixels are to be filled. Known pixels come back exactly as given. A stochastic model draws its
latents from ``generator`` (CPU; seed it for a repeatable result, vary the seed for other futures).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vidsynth.data.transforms import make_clip
from vidsynth.data.video_io import IMAGE_EXTS, VideoError, read_video
from vidsynth.errors import UserError
from vidsynth.models.completion import keyframes
from vidsynth.models.sampler import Sampler
from vidsynth.pretrained import load

__all__ = ["load_completion", "predict", "interpolate", "inpaint", "read_clip", "read_image", "read_hole"]


def load_completion(source: str | Path) -> Sampler:
    """The completion model of a run folder (latest checkpoint) or an export folder, as its sampler."""
    sampler = load(source)
    if sampler.generates:
        raise UserError(f"{source} holds a {sampler.config.name} model, which samples from noise: predict, "
                        "interpolate and inpaint need a model trained with --model completion")
    return sampler


def predict(model: Sampler, video: Tensor, context: int, frames: int, labels: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
    """The first ``context`` frames of ``video`` followed by ``frames`` predicted ones: ``[B, C, context +
    frames, R, R]``."""
    if not 1 <= context <= video.shape[2]:
        raise UserError(f"context={context}: the input has {video.shape[2]} frames; use 1 to {video.shape[2]}")
    if frames < 1:
        raise UserError(f"frames must be >= 1, got {frames}")
    b, c, _, r, _ = video.shape
    model.check_fits(b, context + frames, f"predicting {frames} frames", "ask for fewer --frames")
    clip = torch.zeros(b, c, context + frames, r, r, device=video.device)
    clip[:, :, :context] = video[:, :, :context]
    mask = torch.zeros(b, 1, context + frames, r, r, device=video.device)
    mask[:, :, :context] = 1
    return model.complete(clip.to(model.device), mask.to(model.device), labels, generator)


def interpolate(model: Sampler, first: Tensor, last: Tensor, frames: int, labels: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """``frames`` frames from ``first`` to ``last`` (both ``[B, C, R, R]``, returned as frames 0 and -1)."""
    if frames < 3:
        raise UserError(f"frames must be >= 3 (first, at least one between, last), got {frames}")
    b, c, r, _ = first.shape
    model.check_fits(b, frames, f"interpolating {frames} frames", "ask for fewer --frames")
    clip = torch.zeros(b, c, frames, r, r, device=first.device)
    clip[:, :, 0], clip[:, :, -1] = first, last
    mask = torch.zeros(b, 1, frames, r, r, device=first.device)
    mask[:, :, keyframes(frames, 0)] = 1
    return model.complete(clip.to(model.device), mask.to(model.device), labels, generator)


def inpaint(model: Sampler, video: Tensor, hole: Tensor, labels: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
    """``video`` with the pixels where ``hole`` is 1 filled in; every other pixel exactly as given."""
    b, _, t, r, _ = video.shape
    mask = (1 - hole.float()).expand(b, 1, t, r, r).to(model.device)
    return model.complete(video.to(model.device), mask, labels, generator)


def _transform_note(height: int, width: int, resolution: int) -> str:
    if height == width == resolution:
        return f"{width}x{height}, used as is"
    scale = resolution / min(height, width)
    h, w = max(resolution, round(height * scale)), max(resolution, round(width * scale))
    resized = f"resized to {w}x{h}, " if (h, w) != (height, width) else ""
    cropped = f"centre-cropped to {resolution}x{resolution}" if h != w else f"now {resolution}x{resolution}"
    return f"{width}x{height}: {resized}{cropped}"


def read_clip(path: str | Path, resolution: int, frame_stride: int = 1) -> tuple[Tensor, str]:
    """A video file (or frame folder / strip) as the model saw its training clips: every ``frame_stride``-th
    frame, shorter side resized to ``resolution``, centre-cropped: ``[C, T, R, R]`` in [-1, 1], and a note."""
    try:
        frames, fps = read_video(path)
    except VideoError as e:
        raise UserError(f"cannot read {path}: {e}") from None
    count = len(frames)
    frames = frames[::frame_stride]
    note = f"{path}: {count} frames at {fps:g} fps, {_transform_note(frames.shape[1], frames.shape[2], resolution)}"
    if frame_stride > 1:
        note += f", every {frame_stride}th frame kept as in training ({len(frames)} frames)"
    return make_clip(frames, resolution), note


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types for unreadable files
        raise UserError(f"cannot read image {path}: {e}") from None


def read_image(path: str | Path, resolution: int) -> tuple[Tensor, str]:
    """An image file as one frame ``[C, R, R]`` in [-1, 1] (training transforms), and a note."""
    image = torch.from_numpy(_read_picture(Path(path)).copy())
    return make_clip(image[None], resolution)[:, 0], f"{path}: {_transform_note(*image.shape[:2], resolution)}"


def read_hole(spec: str, height: int, width: int, num_frames: int, resolution: int,
              frame_stride: int = 1) -> tuple[Tensor, str]:
    """The hole ``[1, T or 1, R, R]`` (1 = fill) for an input of ``height`` x ``width`` pixels and ``num_frames``
    frames (after taking every ``frame_stride``-th), from ``box:x,y,w,h`` (input pixels), an image (nonzero =
    hole, every frame) or a video (nonzero = hole, frame by frame), transformed like the input clip."""
    box = re.fullmatch(r"box:(\d+),(\d+),(\d+),(\d+)", spec.strip())
    if box:
        x, y, w, h = map(int, box.groups())
        if w < 1 or h < 1 or x >= width or y >= height:
            raise UserError(f"--mask {spec}: the box must overlap the {width}x{height} input (x,y,w,h in pixels)")
        raw = torch.zeros(1, height, width, 3, dtype=torch.uint8)
        raw[:, y: y + h, x: x + w] = 255
        what = f"box at x={x} y={y}, {w}x{h} input pixels"
    elif not Path(spec).exists():
        raise UserError(f"--mask {spec}: not a file; use an image, a video, or box:x,y,w,h")
    elif Path(spec).suffix.lower() in IMAGE_EXTS:
        raw = torch.from_numpy(_read_picture(Path(spec)).copy())[None]
        what = f"image {spec} on every frame"
    else:
        try:
            raw = read_video(spec)[0][::frame_stride][:num_frames]
        except VideoError as e:
            raise UserError(f"cannot read mask video {spec}: {e}") from None
        if len(raw) < num_frames:
            raise UserError(f"--mask {spec} has {len(raw)} frames; the input clip has {num_frames}")
        what = f"video {spec}, frame by frame"
    if raw.shape[1:3] != (height, width):
        raise UserError(f"--mask {spec} is {raw.shape[2]}x{raw.shape[1]}; the input is {width}x{height}: "
                        "give a mask of the input's size")
    hole = (make_clip(raw, resolution)[:1] > -0.5).float()  # > 25% of full intensity after resizing
    if not hole.any():
        raise UserError(f"--mask {spec}: the hole is empty after resizing to {resolution}x{resolution}")
    return hole, f"hole: {what}, {100 * float(hole.mean()):.1f}% of the pixels"
