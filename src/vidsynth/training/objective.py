"""What every family's objective shares (``Objective``), and the adversarial term three of them use
(``Adversary``, configured by ``AdversarialOptions``).

A training step, for every family: ``n_critic`` discriminator updates when the family has an adversarial term, then
one update of the trained network over the family's ``loss_terms``, then the EMA update. The loop only calls
``train_step``, ``preview``, ``validate`` and ``sampler``, and checkpoints ``state_dict`` (replicated state, written
once) and ``rank_state`` (per process).

Randomness, all from CPU ``torch.Generator``s saved in the checkpoint, so a resumed run continues bit for bit:
latents, masks and noise come from ``latent_rng``, the same stream on every process, drawn for the global batch and
sliced per rank, so N processes compute the same update as one process with the same global batch; augmentation
and penalty interpolation come from ``rng``, seeded per rank.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidsynth.config import TrainConfig
from vidsynth.data.base import words
from vidsynth.losses import clip_weights, diff_augment, get_loss, gradient_penalty, parse_policy, r1_penalty
from vidsynth.models import load_weights
from vidsynth.models.sampler import Sampler, recalibrate_batch_norm
from vidsynth.models.text import embed_captions
from vidsynth.training.distributed import average_gradients
from vidsynth.training.families import build_network

Batch = dict  # "video" [b, C, T, H, W] on the device, "label" [b] long, and whatever else the dataset gives


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/Inf; the message names the step and the loss."""


@dataclass
class AdversarialOptions:
    """Options of the adversarial term (a GAN's whole loss; VAE-GAN's and the completion model's optional term)."""

    loss: str = "ns"                # ns (non-saturating cross-entropy) | lsgan | hinge | wgan | wgan-gp
    lr_d: float = 2e-4              # discriminators' learning rate
    n_critic: int = 1               # discriminator updates per update of the trained network
    r1_gamma: float = 0.0           # R1 penalty weight on real data (0 = off)
    r1_every: int = 1               # R1 on every k-th step only, weighted gamma * k (StyleGAN2's lazy regularisation)
    gp_lambda: float = 10.0         # wgan-gp gradient penalty weight
    clip: float = 0.01              # wgan weight clipping
    augment: str = ""               # DiffAugment policy, e.g. "color,translation,cutout" (same for every frame)
    match: float = 0.0              # text models: weight of the contrastive caption-matching term (0 = off)

    def check(self):
        get_loss(self.loss)
        parse_policy(self.augment)
        return super().check()


class Adversary:
    """Discriminators trained to tell real clips from a family's fakes, with their optimiser and GAN loss.

    Text-conditioned models pass ``wrong`` captions' embeddings to ``d_terms``: the discriminators also learn that a
    real clip with a caption that is not its own is fake (the matching-aware D of Reed et al. 2016, GAN-INT-CLS), so
    the projection term must judge whether video and caption agree, not only whether the video looks real."""

    def __init__(self, discriminators: dict[str, nn.Module], cfg: AdversarialOptions, device: torch.device,
                 rng: torch.Generator, adam):
        self.cfg, self.rng = cfg, rng
        self.discriminators = nn.ModuleDict(discriminators).to(device)
        self.loss = get_loss(cfg.loss)
        self.optimizer = adam(self.discriminators.parameters(), lr=cfg.lr_d)

    def augment(self, video: Tensor) -> Tensor:
        return diff_augment(video, self.cfg.augment, self.rng) if self.cfg.augment else video

    def d_terms(self, real: Tensor, fake: Tensor, y: Tensor | None, step: int, wrong: Tensor | None = None,
                **context: Tensor) -> dict[str, Tensor]:
        """The discriminators' loss terms on ``real`` and (detached) ``fake`` clips; ``wrong``: text embeddings
        ``[B, K, dim]`` of K captions per clip that do not describe the real clips, or None (scored by the projection
        heads from the same features as the clip's own caption, so K costs a dot product each). ``context``:
        per-clip tensors the discriminators also read (e.g. the frames' ``times``), the same for the real and the
        fake clip at each batch position."""
        cfg = self.cfg
        real_in, fake_in = self.augment(real), self.augment(fake)
        judges = {name: functools.partial(d, **context) for name, d in self.discriminators.items()}
        # with wrong captions, every clip is scored with [its own caption, K wrong ones]; a fake's wrong scores unused
        labels = None if y is None else [y, y] if wrong is None else [torch.cat([y.unsqueeze(1), wrong], 1)] * 2
        terms = {}
        for name, d in self.discriminators.items():
            real_logits, fake_logits = self._judge(d, [real_in, fake_in], labels, context)
            if wrong is not None:   # (the real term again: real weighs 2, each kind of fake 1, as in GAN-INT-CLS)
                if cfg.match > 0:
                    terms[f"D_{name}_match"] = cfg.match * matching(real_logits)
                terms[f"D_{name}_mismatch"] = self.loss.d_loss(real_logits[:, 0], real_logits[:, 1:].flatten())
                real_logits, fake_logits = real_logits[:, 0], fake_logits[:, 0]
            terms[f"D_{name}"] = self.loss.d_loss(real_logits, fake_logits)
        if self.loss.gradient_penalty:
            terms["gp"] = cfg.gp_lambda * sum(gradient_penalty(d, real_in, fake_in, y, self.rng)
                                              for d in judges.values())
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
            terms["r1"] = cfg.r1_gamma * cfg.r1_every / 2 * sum(r1_penalty(d, real_in, y) for d in judges.values())
        return terms

    def g_terms(self, fake: Tensor, y: Tensor | None, weight: float = 1.0, wrong: Tensor | None = None,
                **context: Tensor) -> dict[str, Tensor]:
        """The trained network's adversarial terms on its ``fake`` clips, each times ``weight``. The
        discriminators read the labels detached: a learned text encoder learns what helps the network draw the
        caption, not embeddings that raise the discriminators' projection term whatever the clip shows. With
        ``wrong`` captions (see ``d_terms``) and ``match`` > 0, also the matching term: each fake clip should pick
        its own caption among them."""
        fake_in, y = self.augment(fake), None if y is None else y.detach()
        match = wrong is not None and self.cfg.match > 0
        labels = torch.cat([y.unsqueeze(1), wrong.detach()], 1) if match else y
        terms = {}
        for name, d in self.discriminators.items():
            logits = d(fake_in, labels, **context)
            if match:
                terms[f"G_{name}_match"] = self.cfg.match * matching(logits)
                logits = logits[:, 0]
            terms[f"G_{name}"] = self.loss.g_loss(logits)
        return terms if weight == 1 else {k: weight * v for k, v in terms.items()}

    def after_update(self) -> None:
        if self.loss.weight_clipping:
            for d in self.discriminators.values():
                clip_weights(d, self.cfg.clip)

    @staticmethod
    def _judge(d, videos: list[Tensor], labels: list[Tensor] | None, context: dict) -> tuple[Tensor, ...]:
        """D's logits on each batch of ``videos`` (real, fake, ...) with its ``labels``, from one forward pass over
        them all: D has no batch statistics, so each clip's logit is what a pass over its own batch gives (the image
        discriminator draws one frame phase for all), at a fraction of the spectral-norm work and with larger,
        faster convolutions. ``context``: per-clip tensors of one batch, repeated for each."""
        logits = d(torch.cat(videos), None if labels is None else torch.cat(labels),
                   **{k: torch.cat([v] * len(videos)) for k, v in context.items()})
        return logits.split(len(videos[0]))


def matching(logits: Tensor) -> Tensor:
    """The contrastive caption-matching loss of clips scored ``[B, 1 + K]`` with their own caption first and K
    wrong ones: cross-entropy of picking the own caption (XMC-GAN's image-text term, Zhang et al. 2021, over hard
    negatives instead of the batch). Only the projection terms differ between a clip's scores, so it reads
    whether clip and caption agree and not whether the clip looks real: the discriminators learn it on real clips,
    the network on its fakes, a signal for each attribute that does not fade as the realness term saturates."""
    return F.cross_entropy(logits.float(), torch.zeros(len(logits), dtype=torch.long, device=logits.device))


NEGATIVES = 3   # wrong captions per clip in the matching-aware term (one per attribute of a Shapes caption)


def mismatched(captions: list[str], first: int = 0, stride: int = 1, count: int = 1) -> list[list[str]]:
    """For each caption, one that differs from it in a single content word where it can: the next caption of the
    batch (cyclically) that is not the same caption, with one of the words the two differ in taken into the caption
    (``"a red circle moves left"`` and ``"a blue star moves up"`` give ``"a red star moves left"``, or the colour or
    the direction swapped; "moves up-left" against "moves up" gives "moves up"), else the next caption whole. A
    negative that differs in every word is told apart by its easiest word alone (a colour), so the discriminator
    would never learn the others; one that differs in one word makes it learn each (hard negatives, as in VSE++,
    Faghri et al. 2018). ``count`` captions per clip, each with another of the words (cyclically); which first: by
    the clip's global position ``first + i * stride`` in the run's stream (no random state, the same whatever the
    process count)."""
    out = []
    for i, caption in enumerate(captions):
        others = [captions[(i + j) % len(captions)] for j in range(1, len(captions))]
        other = next((c for c in others if c != caption), others[0])  # all the same: no true negative exists
        mine, theirs = words(caption), words(other)
        edits = []   # (i1, i2, j1, j2): mine[i1:i2] becomes theirs[j1:j2]; a replaced run word by word
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes():
            if tag == "replace" and i2 - i1 == j2 - j1:
                edits += [(i1 + k, i1 + k + 1, j1 + k, j1 + k + 1) for k in range(i2 - i1)]
            elif tag != "equal":
                edits.append((i1, i2, j1, j2))
        # edits of short words only ("a" / "an", which follow the colour) change no attribute
        edits = [e for e in edits if max(map(len, mine[e[0]:e[1]] + theirs[e[2]:e[3]])) > 2]
        if not edits:
            out.append([other] * count)
            continue
        position = first + i * stride
        out.append([" ".join(mine[:i1] + theirs[j1:j2] + mine[i2:])
                    for i1, i2, j1, j2 in (edits[(position + j) % len(edits)] for j in range(count))])
    return out


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The learning rate at update ``step`` (0-based) of ``steps``, as a multiple of the configured one: 1 for
    ``constant``; for ``onecycle`` the schedule of torch's ``OneCycleLR`` with its defaults (Smith & Topin 2019: from
    1/25 up to 1 over the first 30% of the updates, then down to 1/250,000, both halves cosine), a function of the
    step alone so a resumed run follows it exactly. Past ``steps`` (a resumed run given more) it stays at the end."""
    if schedule == "constant":
        return 1.0
    start, end, peak = 1 / 25, 1 / 25 / 1e4, max(1.0, 0.3 * steps - 1)
    step = min(step, steps - 1)
    if step <= peak:
        lo, hi, t = start, 1.0, step / peak
    else:
        lo, hi, t = 1.0, end, (step - peak) / max(1.0, steps - 1 - peak)
    return hi + (lo - hi) / 2 * (1 + math.cos(math.pi * t))


class Objective:
    """Base of every family's objective: the trained network (``generator``: a GAN's generator, the VAE, the
    completion network) and its EMA copy (what is sampled and exported), the optional ``adversary``, autocast,
    gradient accumulation over ``accum`` micro-batches, the non-finite check, gradient averaging across processes,
    and the state a resume needs.

    A family implements ``loss_terms(batch)``; if it has an adversarial term, ``adversarial_weight`` (> 0 builds
    the discriminators) and ``fake(real, labels)``, what the discriminators learn to tell from real clips. It may
    override ``learning_rate`` (default: the ``lr`` option), ``preview``, ``validation`` and ``validate``."""

    def __init__(self, family, model_cfg, cfg: TrainConfig, device: torch.device, rank: int = 0,
                 world_size: int = 1):
        self.family, self.model_cfg, self.cfg, self.device = family, model_cfg, cfg, device
        self.rank, self.world_size = rank, world_size
        self.generator = build_network(model_cfg).to(device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.latent_rng = torch.Generator().manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed * world_size + rank)
        self._bad: str | None = None  # first non-finite loss of the current update
        self.step = 0
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
        self.optimizer = self.adam(self.generator.parameters(), self.learning_rate())
        # the discriminators are built after the network, so a seed gives the initial weights of building both
        # together
        self.adversary = (Adversary(family.discriminators(model_cfg), cfg, device, self.rng, self.adam)
                          if self.adversarial_weight() > 0 else None)
        # the learning rates the schedule scales (from the config, so a resumed run follows the same schedule)
        self._base_lrs = [o.param_groups[0]["lr"] for o in self.optimizers.values()]

    def adam(self, params, lr: float) -> torch.optim.Optimizer:
        # fused: one kernel over all parameters instead of a loop over tensors (vgan 64: both updates 10 instead of
        # 36 ms per step on 2 CPU cores)
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, self.cfg.beta2), fused=True)

    # what the family implements
    def learning_rate(self) -> float:
        return self.cfg.lr

    def adversarial_weight(self) -> float:
        """Weight of the adversarial term in ``loss_terms``; 0: the family trains no discriminators."""
        return 0.0

    def loss_terms(self, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def fake(self, real: Tensor, y: Tensor | None) -> Tensor:
        raise NotImplementedError

    # what the loop calls
    def train_step(self, next_batch, step: int) -> dict[str, float]:
        """``next_batch()`` -> a ``Batch`` on the device; returns the loss values."""
        self.step = step  # for step-dependent terms (lazy R1, a KL warm-up)
        factor = lr_factor(self.cfg.lr_schedule, step, self.cfg.steps)
        for optimizer, base in zip(self.optimizers.values(), self._base_lrs):
            for group in optimizer.param_groups:
                group["lr"] = base * factor
        stats, batch = {}, None
        for _ in range(self.adversary.cfg.n_critic if self.adversary else 0):
            batch = next_batch()
            stats.update(self._update(self.adversary.optimizer, self.adversary.discriminators, [self.generator],
                                      self.d_terms, batch, "discriminator", step))
            self.adversary.after_update()
        batch = batch or next_batch()  # the last D batch pairs with the network's update (content terms)
        frozen = [self.adversary.discriminators] if self.adversary else []
        stats.update(self._update(self.optimizer, self.generator, frozen, self.loss_terms, batch, "generator", step))
        self._update_ema(step)
        return stats

    def sampler(self) -> Sampler:
        """The EMA network behind the family's sampling interface, on a copy with batch-norm statistics
        recalibrated to its weights (the training state stays untouched)."""
        return self.family.sampler(recalibrate_batch_norm(copy.deepcopy(self.generator_ema)), self.model_cfg)

    def preview(self, num_samples: int, clips) -> Tensor:
        """The run's samples/ videos ``[N, C, T, H, W]``: fixed seeds 0..num_samples-1 of the EMA network (a
        text-conditioned one with the captions of the first fixed clips). ``clips(n)`` gives the loop's first ``n``
        fixed data batches, for families that preview on data."""
        if self.model_cfg.text:
            captions = [c for batch in clips(num_samples) for c in batch["caption"]][:num_samples]
            return self.sampler().sample(len(captions), prompts=captions)
        return self.sampler().sample(num_samples)

    def validation(self) -> tuple[int, int]:
        """(steps between validation records, clips per record); (0, 0): the family does not validate."""
        return 0, 0

    def validate(self, batches: list[Batch]) -> dict[str, float]:
        return {}

    @property
    def modules(self) -> dict[str, nn.Module]:
        out = {"generator": self.generator, "generator_ema": self.generator_ema}
        return out | ({"discriminators": self.adversary.discriminators} if self.adversary else {})

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer} | ({"discriminators": self.adversary.optimizer} if self.adversary else {})

    def state_dict(self) -> dict:
        """What every process holds alike (written once per checkpoint)."""
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict(), "latent_rng": self.latent_rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules.items():
            load_weights(m, state["modules"][k], "the checkpoint")
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.scaler.load_state_dict(state["scaler"])
        self.latent_rng.set_state(state["latent_rng"])

    def rank_state(self) -> dict:
        """What differs between processes."""
        return {"rng": self.rng.get_state()}

    def load_rank_state(self, state: dict) -> None:
        self.rng.set_state(state["rng"])

    # helpers for the families
    def labels(self, batch: Batch) -> Tensor | None:
        """What the networks read as labels: the classes, or the captions' embeddings by the network's text
        encoder (trained with the network when it is the learned one)."""
        if self.model_cfg.text:
            return embed_captions(self.generator, batch["caption"])
        return batch["label"] if self.model_cfg.num_classes else None

    def wrong_labels(self, batch: Batch) -> Tensor | None:
        """For a text-conditioned model: embeddings ``[B, NEGATIVES, dim]`` of captions that do not describe the
        batch's clips (see ``mismatched``), for the discriminators' matching-aware term; else None."""
        if not self.model_cfg.text or len(batch["caption"]) < 2:
            return None
        first = self.step * len(batch["caption"]) * self.world_size + self.rank
        wrong = mismatched(batch["caption"], first, self.world_size, NEGATIVES)
        embedded = embed_captions(self.generator, [c for per_clip in wrong for c in per_clip])
        return embedded.view(len(wrong), NEGATIVES, -1)

    def matched_labels(self, batch: Batch) -> Tensor | None:
        """The wrong captions' embeddings for the network's matching term (``match`` > 0), else None."""
        return self.wrong_labels(batch) if getattr(self.cfg, "match", 0) > 0 else None

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def shared_normal(self, n: int, shape) -> Tensor:
        """``[n, *shape]`` ~ N(0, 1): this rank's share of a global-batch draw from the shared stream. Rank r's i-th
        clip is global position ``i * world + r`` (see ClipSampler), so draws pair with the same clips and labels as
        in one process."""
        noise = torch.randn((n * self.world_size, *shape), generator=self.latent_rng)
        return noise[self.rank:: self.world_size].to(self.device)

    def latents(self, n: int) -> Tensor:
        """This rank's ``n`` latents of the network (a ``Generator``), drawn like ``shared_normal``."""
        latents = self.generator.make_latents(n * self.world_size, self.latent_rng)
        return latents[self.rank:: self.world_size].to(self.device)

    def d_terms(self, batch: Batch) -> dict[str, Tensor]:
        """The discriminators' loss terms on ``batch`` and on fakes (the adversarial families' discriminator
        update; a family whose discriminators read more than clips and labels overrides it)."""
        real, y = batch["video"], self.labels(batch)
        with torch.no_grad(), self.autocast():
            fake = self.fake(real, y)
        with self.autocast():
            return self.adversary.d_terms(real, fake.float(), y, self.step, self.wrong_labels(batch))

    # the update
    def _micro_batches(self, batch: Batch):
        """``accum`` slices of every entry of ``batch`` (tensors and lists alike), sized as ``torch.chunk``'s."""
        n = len(batch["video"])
        size = -(-n // self.cfg.accum)
        for start in range(0, n, size):
            yield {k: v[start: start + size] for k, v in batch.items()}

    def _update(self, optimizer, train: nn.Module, frozen: list[nn.Module], terms_of, batch: Batch, name: str,
                step: int) -> dict[str, float]:
        """One optimizer step of ``train`` with ``frozen`` fixed, over ``accum`` micro-batches of ``batch``; returns
        the mean loss terms."""
        for module in frozen:
            module.requires_grad_(False)
        train.requires_grad_(True)
        optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for micro in self._micro_batches(batch):
            terms = terms_of(micro)
            self._backward(terms)
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / self.cfg.accum
        self._step(optimizer, train, name, step)
        return totals

    def _backward(self, terms: dict[str, Tensor]) -> None:
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
            raise NonFiniteError(f"step {step + 1}: {bad or f'{name} gradient is {total}'}")
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

