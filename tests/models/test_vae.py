"""The video VAE: shapes, the KL and likelihood terms against torch.distributions, free bits, fitting one batch,
interpolation endpoints, export -> load."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import build_models, make_objective
from torch.distributions import Laplace, Normal, kl_divergence

from vidsynth.config import ModelConfig, to_dict
from vidsynth.errors import UserError
from vidsynth.losses.vae import NLL_CONSTANT, free_bits_kl, gaussian_kl, reconstruction
from vidsynth.models.sampler import NoiseSampler, sample_seeds
from vidsynth.models.vae import VideoVAE
from vidsynth.training import model_config
from vidsynth.training.vae import VAEObjective


def tiny(resolution=32, latent="vector", num_classes=0, **kw) -> ModelConfig:
    values = dict(resolution=resolution, num_frames=8, num_classes=num_classes, latent=latent,
                  z_dim=16, latent_channels=4, g_channels=8, max_channels=64)
    return model_config("vae", **{**values, **kw})


def build_model(cfg):
    return build_models(cfg)


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("resolution,latent,latent_dim,upsample", [
    (32, "vector", 16, "resize"), (64, "vector", 16, "resize"), (32, "grid", 4 * 1 * 4 * 4, "resize"),
    (64, "grid", 4 * 1 * 4 * 4, "resize"), (32, "vector", 16, "transpose"), (64, "grid", 4 * 1 * 4 * 4, "transpose")])
def test_shapes(resolution, latent, latent_dim, upsample, num_classes):
    torch.manual_seed(0)
    models = build_model(tiny(resolution, latent, num_classes, upsample=upsample))
    assert isinstance(models.generator, VideoVAE) and set(models.discriminators) == {"video"}
    vae = models.generator
    transposed = any(isinstance(m, torch.nn.ConvTranspose3d) for m in vae.decoder.modules())
    assert transposed == (upsample == "transpose")  # the decoder of the issue: ConvTranspose3d stages
    labels = torch.arange(3) % num_classes if num_classes else None
    video = torch.rand(3, 3, 8, resolution, resolution) * 2 - 1
    mean, logvar = vae.encode(video, labels)
    assert mean.shape == logvar.shape == (3, latent_dim) == (3, vae.latent_dim())
    out = vae(mean, labels)
    assert out.shape == video.shape and out.min() >= -1 and out.max() <= 1
    sampler = NoiseSampler(vae, tiny(resolution, latent, num_classes, upsample=upsample))
    assert sampler.sample(2).shape == (2, 3, 8, resolution, resolution)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="latent='cube': use one of vector, grid"):
        build_model(tiny(latent="cube"))
    with pytest.raises(UserError, match="power of two"):
        build_model(tiny(num_frames=12))
    with pytest.raises(UserError, match="exactly the 8 frames"):
        build_model(tiny()).generator.latent_dim(16)


def test_kl_matches_torch_distributions_and_is_zero_at_the_prior():
    mean, logvar = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    reference = kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mean, logvar), reference)
    prior_mean, prior_logvar = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    reference = kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(prior_mean, torch.exp(0.5 * prior_logvar)))
    torch.testing.assert_close(gaussian_kl(mean, logvar, prior_mean, prior_logvar), reference)
    assert gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() == 0


def test_free_bits_floor_value_and_gradient():
    kl = torch.tensor([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], requires_grad=True)  # batch means 0.2, 1.5, 0.6
    penalty = free_bits_kl(kl, 0.5)
    assert math.isclose(float(penalty.mean().detach()), 0.5 + 1.5 + 0.6, rel_tol=1e-6)  # sum_j max(0.5, mean_j)
    penalty.mean().backward()
    assert kl.grad[:, 0].abs().max() == 0 and (kl.grad[:, 1:] > 0).all()  # the floored number gets no gradient
    torch.testing.assert_close(free_bits_kl(kl.detach(), 0.0), kl.detach().sum(1))


@pytest.mark.parametrize("name,dist", [("mse", lambda y: Normal(y, math.sqrt(0.5))), ("l1", lambda y: Laplace(y, 1.0))])
def test_reconstruction_terms_are_negative_log_likelihoods(name, dist):
    x, y = torch.rand(2, 3, 4, 5, 5, dtype=torch.float64) * 2 - 1, torch.rand(2, 3, 4, 5, 5, dtype=torch.float64)
    nll = -dist(y).log_prob(x).mean()
    torch.testing.assert_close(reconstruction(name, y, x) + NLL_CONSTANT[name], nll)


def objective(model_cfg: ModelConfig, **train) -> VAEObjective:
    obj = make_objective(model_cfg, **train)
    assert isinstance(obj, VAEObjective)
    return obj


def test_validation_nelbo_against_torch_distributions():
    cfg = tiny()
    obj = objective(cfg)
    video = torch.rand(3, 3, 8, 32, 32) * 2 - 1
    stats = obj.validate([{"video": video}])
    # the same single posterior sample (seed 0), the ELBO written with torch.distributions
    vae = obj.generator.eval()
    with torch.no_grad():
        mean, logvar = vae.encode(video)
        z = mean + torch.randn(mean.shape, generator=torch.Generator().manual_seed(0)) * torch.exp(0.5 * logvar)
        log_px = Normal(vae(z), math.sqrt(0.5)).log_prob(video).flatten(1).sum(1)
        kl = kl_divergence(Normal(mean, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    nelbo = float((kl - log_px).mean()) / video[0].numel()
    assert math.isclose(stats["val_nelbo"], nelbo, rel_tol=1e-4)
    assert math.isclose(stats["val_bpd"], nelbo / math.log(2), rel_tol=1e-4)


def test_overfits_one_batch():
    """Reconstruction error on one fixed batch of Shapes clips falls far below that of predicting the mean."""
    from vidsynth.data import build_dataset
    data = build_dataset(name="shapes", resolution=32, num_frames=8, length=4, background="plain")
    video = torch.stack([data[i]["video"] for i in range(4)])
    baseline = float((video - video.mean()).square().mean())
    obj = objective(tiny(g_channels=16, z_dim=32), lr=2e-3, beta=0.01, ema=0.0)
    for step in range(150):
        stats = obj.train_step(lambda: {"video": video}, step)
    recon = float(reconstruction("mse", obj.generator.reconstruct(video), video))
    assert stats["recon"] < 0.2 * baseline and recon < 0.2 * baseline, (stats, recon, baseline)


def test_interpolation_endpoints_are_the_reconstructions():
    vae = objective(tiny()).generator
    a, b = torch.rand(1, 3, 8, 32, 32) * 2 - 1, torch.rand(1, 3, 8, 32, 32) * 2 - 1
    path = vae.interpolate(a, b, 5)
    assert path.shape == (5, 3, 8, 32, 32)
    torch.testing.assert_close(path[0], vae.reconstruct(a)[0])
    torch.testing.assert_close(path[-1], vae.reconstruct(b)[0])
    assert (path[2] - path[0]).abs().max() > 0


def test_is_a_generator_for_sampling_and_export(tmp_path):
    from vidsynth.pretrained import load_pretrained
    vae = objective(tiny(num_classes=2)).generator
    assert isinstance(vae, VideoVAE)
    alone = sample_seeds(vae, [3], [1])
    batch = sample_seeds(vae, [0, 3], [0, 1])
    torch.testing.assert_close(alone[0], batch[1])
    import json

    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(tmp_path / "model.safetensors"))
    # a config.json of format 1 (before per-family options: every family's options, no format_version)
    old = {**to_dict(vae.cfg), "two_stream": False, "task": "predict", "image_frames": 4}
    (tmp_path / "config.json").write_text(json.dumps({"model": old, "class_names": ["a", "b"]}))
    loaded = load_pretrained(tmp_path)
    torch.testing.assert_close(loaded.sample([3], labels=[1]), alone)
    (tmp_path / "config.json").write_text(json.dumps({"format_version": 9, "model": to_dict(vae.cfg)}))
    with pytest.raises(UserError, match="format_version 9; this vidsynth reads 1 to 2: upgrade vidsynth"):
        load_pretrained(tmp_path)
