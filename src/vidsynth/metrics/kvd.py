"""KVD: the kernel distance of KID (Binkowski et al. 2018) on video features: the unbiased MMD^2 estimate with the
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets as KID does (torch-fidelity, StyleGAN3's
``kernel_inception_distance``: 100 subsets of min(n_real, n_fake, 1000) vectors each, drawn without replacement).
Subsets come from a seeded generator, so the value is reproducible."""

from __future__ import annotations

import torch
from torch import Tensor


def polynomial_mmd(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 between samples ``x [m, d]`` and ``y [n, d]`` (m, n >= 2) under (x.y / d + 1)^3, float64."""
    x, y = x.double(), y.double()
    d, m, n = x.shape[1], x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = [(a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y))]
    # the diagonals (a vector with itself) are left out of the within-set means: that is what makes it unbiased
    within = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1)) + (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within - 2 * k_xy.mean())


def kernel_distance(real: Tensor, fake: Tensor, num_subsets: int = 100, max_subset_size: int = 1000,
                    seed: int = 0) -> float:
    """Mean of ``polynomial_mmd`` over ``num_subsets`` random subsets of size min(len(real), len(fake),
    max_subset_size). real ``[N, D]``, fake ``[M, D]``."""
    size = min(len(real), len(fake), max_subset_size)
    if size < 2:
        raise ValueError(f"kernel distance needs at least 2 vectors per set, got {len(real)} real, {len(fake)} fake")
    rng = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(num_subsets):
        total += polynomial_mmd(fake[torch.randperm(len(fake), generator=rng)[:size]],
                                real[torch.randperm(len(real), generator=rng)[:size]])
    return total / num_subsets
