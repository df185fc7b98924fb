"""GAN losses and regularisers: hand-computed values, and the direction each player's gradient moves D."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vidsynth.errors import UserError
from vidsynth.losses import GAN_LOSSES, clip_weights, content_l2, get_loss, gradient_penalty, r1_penalty
from vidsynth.training.objective import AdversarialOptions

SHAPE = (8, 1, 4, 8, 8)  # [B, C, T, H, W]: 256 values per clip


class LinearD(nn.Module):
    """D(x) = w . flatten(x) + b, so grad_x D = w for every input."""

    def __init__(self, features: int = 256, std: float = 0.01, seed: int = 0):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(1, features, generator=g) * std)
            self.linear.bias.zero_()

    def forward(self, video, labels=None):
        return self.linear(video.flatten(1)).squeeze(1)


class QuadraticD(nn.Module):
    """D(x) = a * ||x||^2, so grad_x D = 2 a x."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, video, labels=None):
        return self.a * video.square().flatten(1).sum(1)


class LabelLinearD(nn.Module):
    """D(x, y) = W[y] . flatten(x): the input gradient depends on the label."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = nn.Parameter(weights.clone())

    def forward(self, video, labels):
        return (self.weights[labels] * video.flatten(1)).sum(1)


def batches():
    """Real clips around +0.5, fake clips around -0.5 (two different distributions)."""
    g = torch.Generator().manual_seed(1)
    real = 0.5 + 0.1 * torch.randn(SHAPE, generator=g)
    fake = -0.5 + 0.1 * torch.randn(SHAPE, generator=g)
    return real, fake


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


REAL, FAKE = [2.0, -1.0], [0.5, -3.0]
HAND = {  # (d_loss, g_loss) on the logits above, worked out by hand from each paper's formula
    "ns": ((softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2,
           (softplus(-0.5) + softplus(3)) / 2),
    # 0.5 * mean([1, 4]) + 0.5 * mean([0.25, 9]);  0.5 * mean([0.25, 16])
    "lsgan": (0.5 * 2.5 + 0.5 * 4.625, 0.5 * 8.125),
    # mean([0, 2]) + mean([1.5, 0]);  -mean([0.5, -3])
    "hinge": (1.0 + 0.75, 1.25),
    # mean([0.5, -3]) - mean([2, -1])
    "wgan": (-1.25 - 0.5, 1.25),
    "wgan-gp": (-1.25 - 0.5, 1.25),
}


def test_registry_matches_config_names_and_flags():
    assert set(GAN_LOSSES) == set(HAND)
    assert AdversarialOptions().loss in GAN_LOSSES
    assert [n for n, e in GAN_LOSSES.items() if e.weight_clipping] == ["wgan"]
    assert [n for n, e in GAN_LOSSES.items() if e.gradient_penalty] == ["wgan-gp"]
    assert get_loss("hinge") is GAN_LOSSES["hinge"]


def test_unknown_loss_is_one_line_user_error():
    with pytest.raises(UserError) as info:
        get_loss("wgangp")
    message = str(info.value)
    assert "\n" not in message and "wgangp" in message
    assert all(name in message for name in GAN_LOSSES)


@pytest.mark.parametrize("name", list(HAND))
def test_values_on_hand_picked_logits(name):
    loss = get_loss(name)
    d_expected, g_expected = HAND[name]
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert loss.d_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g_loss(fake).item() == pytest.approx(g_expected, rel=1e-6)
    assert loss.d_loss(real, fake).dim() == 0 and loss.g_loss(fake).dim() == 0


def test_losses_reject_unflattened_logits():
    with pytest.raises(AssertionError, match=r"\[B\]"):
        get_loss("ns").g_loss(torch.zeros(4, 1))


@pytest.mark.parametrize("name", list(HAND))
def test_d_steps_separate_real_from_fake(name):
    loss = get_loss(name)
    real, fake = batches()
    d = LinearD()
    if loss.weight_clipping:
        clip_weights(d, 0.01)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)  # 256 weights: larger Adam steps overshoot
    rng = torch.Generator().manual_seed(0)

    def measure():
        with torch.no_grad():
            r, f = d(real), d(fake)
            return loss.d_loss(r, f).item(), (r.mean() - f.mean()).item()

    loss_before, gap_before = measure()
    for _ in range(5):
        opt.zero_grad()
        objective = loss.d_loss(d(real), d(fake))
        if loss.gradient_penalty:
            objective = objective + 10.0 * gradient_penalty(d, real, fake, None, rng)
        objective.backward()
        opt.step()
        if loss.weight_clipping:
            clip_weights(d, 0.01)
    loss_after, gap_after = measure()
    assert loss_after < loss_before - 1e-3
    assert gap_after > gap_before + 1e-3
    if loss.weight_clipping:
        assert d.linear.weight.abs().max() <= 0.01


@pytest.mark.parametrize("name", list(HAND))
def test_g_gradient_raises_d_of_fake(name):
    loss = get_loss(name)
    _, fake = batches()
    d = LinearD()
    with torch.no_grad():
        d.linear.weight.fill_(0.01)  # D(fake) ~ -1.28: below every loss's target for fakes
    fake = fake.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss.g_loss(d(fake)), fake)
    (d_grad,) = torch.autograd.grad(d(fake).sum(), fake)  # per clip: the direction that raises D(fake_i)
    along = (-grad * d_grad).flatten(1).sum(1)
    assert (along > 0).all(), f"{name}: descending g_loss lowers D for some clips: {along}"
    with torch.no_grad():
        stepped = fake - 0.1 * grad
        assert (d(stepped) > d(fake)).all()
        assert loss.g_loss(d(stepped)) < loss.g_loss(d(fake))


# --- regularisers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_penalty_of_linear_d_is_norm_minus_one_squared(seed):
    real, fake = batches()
    d = LinearD(std=0.2, seed=seed)
    w = d.linear.weight
    expected = (w.norm() - 1).square()
    penalty = gradient_penalty(d, real, fake, None, torch.Generator().manual_seed(seed))
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    # create_graph=True: the penalty trains D, d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    (grad_w,) = torch.autograd.grad(penalty, w)
    assert torch.allclose(grad_w, 2 * (w.norm() - 1) * w / w.norm(), rtol=1e-4, atol=1e-7)


def test_gradient_penalty_of_quadratic_d_uses_one_epsilon_per_clip():
    a = 0.75
    real = torch.tensor([[1.0, 2.0], [0.0, -1.0]]).view(2, 1, 2, 1, 1)
    fake = torch.tensor([[3.0, 0.0], [1.0, 1.0]]).view(2, 1, 2, 1, 1)
    eps = torch.rand(2, generator=torch.Generator().manual_seed(7)).tolist()  # the documented draw
    expected = 0.0
    for e, r, f in zip(eps, real.flatten(1).tolist(), fake.flatten(1).tolist()):
        mixed = [e * ri + (1 - e) * fi for ri, fi in zip(r, f)]
        norm = 2 * a * math.sqrt(sum(m * m for m in mixed))  # ||grad D|| = ||2 a x_hat||
        expected += (norm - 1) ** 2 / 2
    penalty = gradient_penalty(QuadraticD(a), real, fake, None, torch.Generator().manual_seed(7))
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    other = gradient_penalty(QuadraticD(a), real, fake, None, torch.Generator().manual_seed(8))
    assert other.item() != pytest.approx(expected, rel=1e-3)


def test_gradient_penalty_does_not_backprop_into_real_or_fake():
    real, fake = batches()
    fake = fake.clone().requires_grad_(True)
    penalty = gradient_penalty(QuadraticD(0.1), real, fake, None, torch.Generator().manual_seed(0))
    penalty.backward()
    assert fake.grad is None


def test_r1_is_squared_norm_of_input_gradient_with_labels():
    real, _ = batches()
    weights = torch.randn(3, 256, generator=torch.Generator().manual_seed(3)) * 0.1
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    d = LabelLinearD(weights)
    penalty = r1_penalty(d, real, labels)
    expected = weights[labels].square().sum(1).mean()  # mean_i ||W[y_i]||^2, without gamma / 2
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(penalty, d.weights)  # trains D: d/dW_k of mean_i ||W[y_i]||^2
    counts = torch.bincount(labels, minlength=3).float()[:, None]
    assert torch.allclose(grad, 2 * weights * counts / len(labels), rtol=1e-4, atol=1e-7)


def test_r1_of_linear_d_is_squared_weight_norm():
    real, _ = batches()
    d = LinearD(std=0.3, seed=4)
    penalty = r1_penalty(d, real, None)
    assert penalty.item() == pytest.approx(d.linear.weight.square().sum().item(), rel=1e-5)


def test_clip_weights_clamps_in_place():
    d = LinearD(std=1.0)
    weight = d.linear.weight
    with torch.no_grad():
        d.linear.bias.fill_(-3.0)
        weight[0, 0] = 0.005
    before = weight.detach().clone()
    clip_weights(d, 0.01)
    assert d.linear.weight is weight and weight.requires_grad and weight.grad_fn is None
    assert weight.abs().max().item() == pytest.approx(0.01)
    assert d.linear.bias.item() == pytest.approx(-0.01)
    assert weight[0, 0].item() == pytest.approx(0.005)  # values inside [-c, c] are left alone
    assert torch.equal(weight, before.clamp(-0.01, 0.01))


def test_content_l2_is_mean_squared_error_toward_real():
    real = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1, 1).requires_grad_(True)
    fake = torch.zeros(1, 1, 4, 1, 1, requires_grad=True)
    value = content_l2(fake, real)
    assert value.item() == pytest.approx((1 + 4 + 9 + 16) / 4)  # mean over elements, not sum
    value.backward()
    assert torch.allclose(fake.grad.flatten(), torch.tensor([-0.5, -1.0, -1.5, -2.0]))  # 2 (fake - real) / 4
    assert real.grad is None
