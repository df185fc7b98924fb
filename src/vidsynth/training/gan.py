"""The GAN families' objective (vgan, mocogan): the adversarial term is the whole loss, plus an optional L2
content term toward the paired real batch."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vidsynth.config import TrainConfig
from vidsynth.losses import content_l2
from vidsynth.models import mocogan, vgan
from vidsynth.training.families import register_family
from vidsynth.training.objective import AdversarialOptions, Batch, Objective


@dataclass
class GANTrainConfig(AdversarialOptions, TrainConfig):
    lr_g: float = 2e-4              # generator's learning rate
    content_l2: float = 0.0         # lambda of ||G(z) - x||^2 toward the paired real batch (0 = off)


@register_family("vgan", model_config=vgan.VganConfig, train_config=GANTrainConfig, build=vgan.build,
                 discriminators=vgan.discriminators, summary="3D-conv generator and discriminator (Vondrick et al. "
                 "2016); two_stream=true: foreground + mask over a static background",
                 hints={"layered": "for vgan's foreground/background generator set two_stream=true",
                        "image_d": "vgan has only a video discriminator"})
@register_family("mocogan", model_config=mocogan.MocoganConfig, train_config=GANTrainConfig, build=mocogan.build,
                 discriminators=mocogan.discriminators, summary="content code + GRU motion codes, image and video "
                 "discriminators (Tulyakov et al. 2018); layered=true: a sprite moved over a background",
                 hints={"two_stream": "for mocogan's background + moving sprite generator set layered=true"})
class GANObjective(Objective):
    def learning_rate(self) -> float:
        return self.cfg.lr_g

    def adversarial_weight(self) -> float:
        return 1.0

    def fake(self, real: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(self.latents(len(real)), y)

    def loss_terms(self, batch: Batch) -> dict[str, Tensor]:
        real, y = batch["video"], self.labels(batch)
        with self.autocast():
            fake = self.fake(real, y)
            terms = self.adversary.g_terms(fake, y, wrong=self.matched_labels(batch))
            if self.cfg.content_l2 > 0:
                terms["l2"] = self.cfg.content_l2 * content_l2(fake, real)
        return terms
