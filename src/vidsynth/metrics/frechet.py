"""Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017), as TF-GAN computes it for
the original FVD: mean and *unbiased* covariance (n - 1) in float64, and the trace of the matrix square root of
``sigma_1 sigma_2`` taken as the trace of the square root of the symmetric PSD matrix
``sqrt(sigma_1) sigma_2 sqrt(sigma_1)`` (same eigenvalues), so no complex parts arise and nothing is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Gaussian:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of ``num`` feature vectors."""

    mean: Tensor
    cov: Tensor
    num: int

    @classmethod
    def fit(cls, features: Tensor) -> Gaussian:
        """features ``[N, D]``, N >= 2."""
        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(f"features: expected [N >= 2, D], got {list(features.shape)}")
        x = features.double()
        mean = x.mean(0)
        centred = x - mean
        return cls(mean, centred.T @ centred / (x.shape[0] - 1), x.shape[0])


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix; eigenvalues that rounding pushed below zero are
    taken as zero."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64."""
    root_a = _sqrt_psd(a.cov)
    product = root_a @ b.cov @ root_a
    inner = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
    diff = a.mean - b.mean
    return float(diff @ diff + a.cov.trace() + b.cov.trace() - 2 * inner)
