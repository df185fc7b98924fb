import math

import pytest
import torch

from vidsynth.metrics.frechet import Gaussian, frechet_distance
from vidsynth.metrics.kvd import kernel_distance, polynomial_mmd


def random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.5],
                                                                                    dtype=torch.float64)
    var_a, var_b = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([9.0, 1.0, 0.25],
                                                                                      dtype=torch.float64)
    expected = float(((mu_a - mu_b) ** 2).sum() + ((var_a.sqrt() - var_b.sqrt()) ** 2).sum())  # 7.25 + 4 + 1 + 0
    got = frechet_distance(Gaussian(mu_a, var_a.diag(), 10), Gaussian(mu_b, var_b.diag(), 10))
    assert got == pytest.approx(expected, rel=1e-12) and expected == pytest.approx(12.25)


def test_frechet_distance_of_a_scaled_full_covariance_is_the_closed_form():
    # S_b = c S_a: (S_a S_b)^(1/2) = sqrt(c) S_a, so FD = |mu_a - mu_b|^2 + (1 - sqrt(c))^2 Tr(S_a)
    cov = random_cov(20, 0)
    mean = torch.zeros(20, dtype=torch.float64)
    shift = torch.full((20,), 0.5, dtype=torch.float64)
    got = frechet_distance(Gaussian(mean, cov, 100), Gaussian(mean + shift, 4 * cov, 100))
    assert got == pytest.approx(20 * 0.25 + float(cov.trace()), rel=1e-9)


def test_gaussian_fit_uses_the_unbiased_covariance():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    g = Gaussian.fit(x)
    assert torch.allclose(g.cov, torch.cov(x.double().T), atol=1e-12)
    assert torch.allclose(g.mean, x.double().mean(0))


def test_identical_feature_sets_give_zero_fvd():
    x = torch.randn(300, 400, generator=torch.Generator().manual_seed(2)) * 3 + 1
    # rank-deficient covariance (300 < 400 + 1): the square root must not turn rounding into a sizeable value
    assert abs(frechet_distance(Gaussian.fit(x), Gaussian.fit(x))) < 1e-6 * float(Gaussian.fit(x).cov.trace())


def test_polynomial_mmd_matches_the_definition():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(7, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen,
                                                                              dtype=torch.float64) + 0.3

    def k(a, b):
        return (float(a @ b) / 4 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert polynomial_mmd(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randn(400, 16, generator=gen), torch.randn(400, 16, generator=gen)
    same = kernel_distance(a, b, num_subsets=20, max_subset_size=200)
    other = kernel_distance(a, b + 0.5, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.1 * other and other > 0
    # one subset that is the whole set: the plain unbiased estimate (the order of vectors does not matter)
    assert kernel_distance(a, b, num_subsets=1) == pytest.approx(polynomial_mmd(b, a), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)
    assert math.isfinite(same)
