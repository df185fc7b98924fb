"""The GAN family's objective: per training step, ``n_critic`` discriminator updates, then one generator update
and an EMA update of the generator. The training loop only calls ``train_step`` and checkpoints ``state_dict``.

Randomness, all from CPU ``torch.Generator``s saved in the checkpoint, so a resumed run continues bit for bit:
latents come from ``latent_rng``, the same stream on every process, drawn for the global batch and sliced per
rank, so N processes compute the same update as one process with the same global batch; augmentation and penalty
interpolation come from ``rng``, seeded per rank.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math

import torch
from torch import nn

from vidsynth.config import ModelConfig, TrainConfig
from vidsynth.losses import clip_weights, content_l2, diff_augment, get_loss, gradient_penalty, r1_penalty
from vidsynth.models import GANModels, load_weights
from vidsynth.sampling import recalibrate_batch_norm, sample_seeds, seed_labels
from vidsynth.training.distributed import average_gradients


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/Inf; the message names the step and the loss."""


class GANObjective:
    def __init__(self, models: GANModels, model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
                 rank: int = 0, world_size: int = 1):
        self.cfg, self.model_cfg, self.device = cfg, model_cfg, device
        self.generator = models.generator.to(device)
        self.discriminators = nn.ModuleDict(models.discriminators).to(device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.loss = get_loss(cfg.loss)
        # fused: one kernel over all parameters instead of a loop over tensors (vgan 64: both updates 10 instead of
        # 36 ms per step on 2 CPU cores)
        adam = functools.partial(torch.optim.Adam, betas=(cfg.beta1, cfg.beta2), fused=True)
        self.opt_g = adam(self.generator.parameters(), lr=cfg.lr_g)
        # none when a family trains without discriminators (a VAE without its adversarial term)
        self.opt_d = (adam(self.discriminators.parameters(), lr=cfg.lr_d)
                      if len(self.discriminators) else None)
        self.rank, self.world_size = rank, world_size
        self.latent_rng = torch.Generator().manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed * world_size + rank)
        self._bad: str | None = None  # first non-finite loss of the current update
        self.step = 0
        fp16 = cfg.precision == "fp16"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=fp16)

    # what the loop checkpoints and exports
    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminators": self.discriminators,
                "generator_ema": self.generator_ema}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: o for k, o in {"generator": self.opt_g, "discriminators": self.opt_d}.items() if o is not None}

    @property
    def sampler(self) -> nn.Module:
        """The network to sample from and export: the EMA generator."""
        return self.generator_ema

    def preview(self, num_samples: int, num_classes: int, clips=None) -> torch.Tensor:
        """The run's samples/ videos: fixed seeds 0..num_samples-1 of the EMA generator, BatchNorm statistics
        recalibrated on a copy (the training state stays untouched). ``clips`` (unused here) is the loop's
        ``n -> [(video, labels)]`` for objectives that preview on data."""
        seeds = list(range(num_samples))
        generator = recalibrate_batch_norm(copy.deepcopy(self.sampler))
        return sample_seeds(generator, seeds, seed_labels(seeds, num_classes))

    def state_dict(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict(), "rng": self.rng.get_state(),
                "latent_rng": self.latent_rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules.items():
            load_weights(m, state["modules"][k], "the checkpoint")
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.scaler.load_state_dict(state["scaler"])
        self.rng.set_state(state["rng"])
        self.latent_rng.set_state(state["latent_rng"])

    # one training step
    def train_step(self, next_batch, step: int) -> dict[str, float]:
        """``next_batch()`` -> ``(real [b, C, T, H, W], labels [b] | None)`` on the device; returns loss values."""
        self.step = step  # for step-dependent terms (a KL warm-up)
        stats, batch = {}, None
        for _ in range(self.cfg.n_critic if self.opt_d is not None else 0):
            batch = real, labels = next_batch()
            stats.update(self._update("discriminator", real, labels, step))
            if self.loss.weight_clipping:
                for d in self.discriminators.values():
                    clip_weights(d, self.cfg.clip)
        real, labels = batch or next_batch()  # the last D batch pairs with the G update (content_l2)
        stats.update(self._update("generator", real, labels, step))
        self._update_ema(step)
        return stats

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _latents(self, n: int) -> torch.Tensor:
        """This rank's ``n`` latents: its share of the global batch's draw. Rank r's i-th clip is global position
        ``i * world + r`` (see ClipSampler), so latents pair with the same clips and labels as in one process."""
        latents = self.generator.make_latents(n * self.world_size, self.latent_rng)
        return latents[self.rank:: self.world_size].to(self.device)

    def _shared_normal(self, n: int, shape) -> torch.Tensor:
        """``[n, *shape]`` ~ N(0, 1): this rank's share of a global-batch draw from the shared stream (see
        ``_latents``)."""
        noise = torch.randn((n * self.world_size, *shape), generator=self.latent_rng)
        return noise[self.rank:: self.world_size].to(self.device)

    def _augment(self, video: torch.Tensor) -> torch.Tensor:
        return diff_augment(video, self.cfg.augment, self.rng) if self.cfg.augment else video

    def _micro_batches(self, real, labels):
        chunks = real.chunk(self.cfg.accum)
        label_chunks = labels.chunk(self.cfg.accum) if labels is not None else [None] * len(chunks)
        return zip(chunks, label_chunks)

    def _update(self, name: str, real, labels, step: int) -> dict[str, float]:
        """One optimizer step of ``name`` ("discriminator" or "generator") with the other network frozen, over
        ``accum`` micro-batches; returns the mean loss terms."""
        train, frozen = ((self.discriminators, self.generator) if name == "discriminator"
                         else (self.generator, self.discriminators))
        optimizer = self.opt_d if name == "discriminator" else self.opt_g
        terms_of = self._d_terms if name == "discriminator" else self._g_terms
        frozen.requires_grad_(False)
        train.requires_grad_(True)
        optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for real_mb, y in self._micro_batches(real, labels):
            terms = terms_of(real_mb, y)
            self._backward(terms, step)
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / self.cfg.accum
        self._step(optimizer, train, name, step)
        return totals

    def _d_terms(self, real, y) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        with torch.no_grad(), self._autocast():
            fake = self._fake(real, y)
        with self._autocast():
            real_in, fake_in = self._augment(real), self._augment(fake.float())
            terms = {f"D_{name}": self.loss.d_loss(*self._judge(d, real_in, fake_in, y))
                     for name, d in self.discriminators.items()}
            if self.loss.gradient_penalty:
                terms["gp"] = cfg.gp_lambda * sum(gradient_penalty(d, real_in, fake_in, y, self.rng)
                                                  for d in self.discriminators.values())
            if cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0:
                terms["r1"] = cfg.r1_gamma * cfg.r1_every / 2 * sum(r1_penalty(d, real_in, y)
                                                                    for d in self.discriminators.values())
        return terms

    def _fake(self, real, y) -> torch.Tensor:
        """What the discriminators learn to tell from ``real``: samples of the generator."""
        return self.generator(self._latents(len(real)), y)

    @staticmethod
    def _judge(d, real, fake, y):
        """D's logits on real and on fake from one forward pass over both batches: D has no batch statistics, so
        each clip's logit is what a pass over its own batch gives (the image discriminator draws one frame phase
        for both), at half the spectral-norm work and with larger, faster convolutions."""
        logits = d(torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
        return logits[:len(real)], logits[len(real):]

    def _g_terms(self, real, y) -> dict[str, torch.Tensor]:
        with self._autocast():
            fake = self.generator(self._latents(len(real)), y)
            fake_in = self._augment(fake)
            terms = {f"G_{name}": self.loss.g_loss(d(fake_in, y)) for name, d in self.discriminators.items()}
            if self.cfg.content_l2 > 0:
                terms["l2"] = self.cfg.content_l2 * content_l2(fake, real)
        return terms

    def _backward(self, terms: dict[str, torch.Tensor], step: int) -> None:
        for name, value in terms.items():
            if self._bad is None and not torch.isfinite(value).all():
                self._bad = f"loss {name} is {float(value.detach())}"
        self.scaler.scale(sum(terms.values()) / self.cfg.accum).backward()

    def _step(self, optimizer, module: nn.Module, name: str, step: int) -> None:
        params = [p for p in module.parameters() if p.grad is not None]
        average_gradients(params)
        # decided after averaging, so every rank sees the same gradients and stops together
        total = float(torch.stack([p.grad.sum() for p in params]).sum())
        bad, self._bad = self._bad, None
        if (bad or not math.isfinite(total)) and not self.scaler.is_enabled():  # fp16: the scaler skips these
            raise NonFiniteError(f"step {step}: {bad or f'{name} gradient is {total}'}")
        self.scaler.step(optimizer)
        self.scaler.update()

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        # ramp the decay up so early samples are not dominated by the random initialisation
        beta = min(self.cfg.ema, (1 + step) / (10 + step))
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            b_ema.copy_(b)
