"""GAN objectives and regularisers (``gan.py``) and DiffAugment for videos (``augment.py``)."""

from vidsynth.losses.augment import AUGMENTATIONS, diff_augment, parse_policy
from vidsynth.losses.gan import (GAN_LOSSES, GANLoss, clip_weights, content_l2, get_loss, gradient_penalty,
                                 r1_penalty)

__all__ = ["AUGMENTATIONS", "GAN_LOSSES", "GANLoss", "clip_weights", "content_l2", "diff_augment", "get_loss",
           "gradient_penalty", "parse_policy", "r1_penalty"]
