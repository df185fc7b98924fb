"""GAN model families. ``MODELS`` maps a family's CLI name to its builder (filled by ``@register_model``);
``build_model(cfg)`` checks the config and returns the generator and its discriminators.

The training objective sums the GAN loss over ``GANModels.discriminators``, so it never branches on the family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from torch import nn

from vidsynth.config import ModelConfig
from vidsynth.errors import UserError

RESOLUTIONS = (32, 64, 128, 256)


@dataclass
class GANModels:
    """The generator and the discriminators by role, e.g. ``{"video": D}`` or ``{"image": D_I, "video": D_V}``.

    generator: ``forward(latents [B, L], labels [B] long | None) -> video [B, C, T, R, R]`` in [-1, 1], plus
    ``latent_dim``, ``make_latents``, ``sample`` (see ``layers.Generator``).
    each discriminator: ``forward(video [B, C, T, R, R], labels [B] long | None) -> logits [B]``.
    """

    generator: nn.Module
    discriminators: dict[str, nn.Module]


MODELS: dict[str, Callable[[ModelConfig], GANModels]] = {}


def register_model(name: str):
    """Decorator: make a builder ``fn(cfg) -> GANModels`` available under ``name`` (its CLI name)."""
    def deco(fn):
        MODELS[name] = fn
        return fn
    return deco


# options only some families read: set for another family they would be silently ignored, so they are rejected
FAMILY_OPTIONS = {"two_stream": ("vgan",), "layered": ("mocogan",), "image_frames": ("mocogan",),
                  "image_d": ("mocogan",), "motion_dim": ("mocogan",), "latent": ("vae",),
                  "latent_channels": ("vae", "completion"), "task": ("completion",), "context": ("completion",),
                  "keyframe_stride": ("completion",), "stochastic": ("completion",)}
# where a family has its own option for what the user probably wanted
FAMILY_HINTS = {("vgan", "layered"): "for vgan's foreground/background generator set two_stream=true",
                ("mocogan", "two_stream"): "for mocogan's background + moving sprite generator set layered=true",
                ("vgan", "image_d"): "vgan has only a video discriminator"}


def check_config(cfg: ModelConfig) -> ModelConfig:
    """Reject model settings no family can build, or that ``cfg.name``'s family would ignore, with one line that
    says what to do."""
    if cfg.name not in MODELS:
        raise UserError(f"unknown model {cfg.name!r}: use one of {', '.join(sorted(MODELS))}")
    for field in fields(ModelConfig):
        families, value = FAMILY_OPTIONS.get(field.name), getattr(cfg, field.name)
        if families is not None and cfg.name not in families and value != field.default:
            hint = FAMILY_HINTS.get((cfg.name, field.name), f"remove it or use model {' or '.join(families)}")
            value = str(value).lower() if isinstance(value, bool) else value  # as typed on the command line
            raise UserError(f"{field.name}={value} is a {' / '.join(families)} option that {cfg.name} does not read: "
                            f"{hint}")
    if cfg.resolution not in RESOLUTIONS:
        raise UserError(f"resolution={cfg.resolution} is not supported by the GAN models: set the data resolution "
                        f"to one of {', '.join(map(str, RESOLUTIONS))}")
    if cfg.num_frames < 1:
        raise UserError(f"num_frames must be >= 1, got {cfg.num_frames} (it comes from the data config)")
    for key in ("z_dim", "motion_dim", "g_channels", "d_channels", "max_channels", "image_frames", "channels",
                "latent_channels", "context"):
        if getattr(cfg, key) < 1:
            raise UserError(f"model {key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.keyframe_stride < 0:
        raise UserError(f"keyframe_stride must be >= 0, got {cfg.keyframe_stride}")
    if cfg.num_classes < 0:
        raise UserError(f"num_classes must be >= 0, got {cfg.num_classes}")
    if cfg.upsample not in ("resize", "transpose"):
        raise UserError(f"upsample={cfg.upsample!r}: use resize or transpose")
    if cfg.image_d not in ("strided", "deep"):
        raise UserError(f"image_d={cfg.image_d!r}: use strided or deep")
    return cfg


def build_model(cfg: ModelConfig) -> GANModels:
    """The generator and discriminators of family ``cfg.name``, after checking ``cfg`` (UserError if bad)."""
    check_config(cfg)
    return MODELS[cfg.name](cfg)


def load_weights(module: nn.Module, state: dict, source: str) -> None:
    """``module.load_state_dict(state)``, with a one-line UserError when the names or shapes do not match (weights
    written by another model config or by an older vidsynth whose layers were laid out differently)."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise UserError(f"{source} does not fit this vidsynth's {type(module).__name__} ({detail[:300]}): it was "
                        "written by another vidsynth version; sample it with that version, or retrain") from None


from vidsynth.models import completion, mocogan, vae, vgan  # noqa: E402,F401  (fill MODELS)
