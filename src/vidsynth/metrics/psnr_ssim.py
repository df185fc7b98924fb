"""PSNR and SSIM per frame, for frame prediction.

SSIM follows Wang, Bovik, Sheikh, Simoncelli 2004 ("Image quality assessment: from error visibility to structural
similarity") as their reference ``ssim_index.m`` computes it: an 11x11 Gaussian window with sigma 1.5, local
statistics only where the window fits inside the frame ("valid"), K1 = 0.01, K2 = 0.03, C = (K L)^2 for the data
range L, window-weighted (not sample-corrected) variances; colour frames are scored per channel and averaged, like
scikit-image's ``structural_similarity(..., gaussian_weights=True, channel_axis=...)``. Frames must be at least
11x11.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(f"expected two videos [B, C, T, H, W] of the same shape, got {list(pred.shape)} and "
                         f"{list(target.shape)}")


def psnr(pred: Tensor, target: Tensor, data_range: float = 2.0) -> Tensor:
    """``[B, T]`` PSNR in dB of each frame (MSE over channels and pixels) of videos ``[B, C, T, H, W]`` whose values
    span ``data_range`` (2 for the library's [-1, 1]). Identical frames give inf."""
    _check(pred, target)
    mse = (pred.double() - target.double()).square().mean((1, 3, 4))
    return (10 * torch.log10(data_range**2 / mse)).float()


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> Tensor:
    """The normalised 1D Gaussian ``[size]`` whose outer product is the 2D SSIM window."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: Tensor, target: Tensor, data_range: float = 2.0) -> Tensor:
    """``[B, T]`` SSIM of each frame (mean over channels and valid window positions) of videos ``[B, C, T, H, W]``
    whose values span ``data_range``; computed in float64."""
    _check(pred, target)
    b, c, t, h, w = pred.shape
    if min(h, w) < WINDOW:
        raise ValueError(f"SSIM needs frames of at least {WINDOW}x{WINDOW}, got {h}x{w}")
    # every frame of every channel as one single-channel image
    x = pred.double().transpose(1, 2).reshape(b * t * c, 1, h, w)
    y = target.double().transpose(1, 2).reshape(b * t * c, 1, h, w)
    g = gaussian_window().to(x.device)

    def blur(image: Tensor) -> Tensor:  # separable valid Gaussian filter
        return F.conv2d(F.conv2d(image, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return index.mean((1, 2, 3)).view(b, t, c).mean(2).float()
