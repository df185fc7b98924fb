"""Bilinear frame resizing exactly as the FVD implementations do it, as two interpolation matrices (rows x frame x
columns), so each variant is a few lines of index arithmetic that a test can check by hand.

- ``tf1``: TensorFlow 1's ``tf.image.resize_bilinear`` with its defaults, which the original FVD code uses:
  ``align_corners=False, half_pixel_centers=False``, i.e. output pixel i samples source position ``i * in / out``
  (the image is anchored at its top-left corner), no antialiasing when shrinking.
- ``torch``: ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``, half-pixel centres: output
  pixel i samples ``(i + 0.5) * in / out - 0.5``, clamped at 0 (StyleGAN-V's variant).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

RESIZE_METHODS = ("tf1", "torch")


def interpolation_matrix(size_in: int, size_out: int, method: str) -> Tensor:
    """float64 ``[size_out, size_in]``: row i holds the weights of output pixel i on the input pixels."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method {method!r}: use one of {', '.join(RESIZE_METHODS)}")
    scale = size_in / size_out
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    for i in range(size_out):
        src = i * scale if method == "tf1" else max((i + 0.5) * scale - 0.5, 0.0)
        lo = min(math.floor(src), size_in - 1)
        hi, frac = min(lo + 1, size_in - 1), src - lo
        matrix[i, lo] += 1 - frac
        matrix[i, hi] += frac
    return matrix


def resize_frames(frames: Tensor, size: int, method: str = "tf1") -> Tensor:
    """float ``[..., H, W]`` -> ``[..., size, size]`` (same dtype) by bilinear interpolation ``method``."""
    h, w = frames.shape[-2:]
    rows = interpolation_matrix(h, size, method).to(frames)
    cols = interpolation_matrix(w, size, method).to(frames)
    return rows @ frames @ cols.T
