import math

import pytest
import torch

from vidsynth.metrics.psnr_ssim import gaussian_window, psnr, ssim


def test_psnr_matches_a_hand_computed_value():
    target = torch.zeros(1, 3, 2, 8, 8)
    pred = target.clone()
    pred[:, :, 0] = 0.1           # frame 0: MSE 0.01 on range 2 -> 10 log10(4 / 0.01)
    pred[:, 0, 1] = 0.3           # frame 1: one channel off by 0.3 -> MSE 0.09 / 3
    got = psnr(pred, target)
    assert got.shape == (1, 2)
    assert got[0, 0] == pytest.approx(10 * math.log10(400), abs=1e-4)
    assert got[0, 1] == pytest.approx(10 * math.log10(4 / 0.03), abs=1e-4)
    assert psnr(target, target).isinf().all()


def test_ssim_of_constant_frames_is_the_luminance_term():
    a, b = 0.2, -0.4
    c1 = (0.01 * 2) ** 2
    got = ssim(torch.full((1, 3, 1, 16, 16), a), torch.full((1, 3, 1, 16, 16), b))
    assert got.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    x = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2, 4))


def test_ssim_matches_the_definition_on_one_window():
    # an 11x11 frame holds exactly one window: SSIM from explicit weighted sums (Wang et al. 2004, eq. 13-14)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(11, 11, generator=gen, dtype=torch.float64)
    y = (x + 0.3 * torch.rand(11, 11, generator=gen, dtype=torch.float64)).clamp(0, 1)
    g = gaussian_window()
    w = g[:, None] * g[None, :]
    assert g[5] == g.max() and torch.allclose(g, g.flip(0))
    assert float(w.sum()) == pytest.approx(1.0)
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01**2, 0.03**2  # data range 1
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = ssim(x.view(1, 1, 1, 11, 11).float(), y.view(1, 1, 1, 11, 11).float(), data_range=1.0)
    assert got.item() == pytest.approx(float(expected), abs=1e-5)


def test_ssim_rejects_frames_smaller_than_the_window():
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(1, 3, 1, 8, 8), torch.zeros(1, 3, 1, 8, 8))
