"""The networks of the model families, one module per family (``vgan.py``, ``mocogan.py``, ``vae.py``,
``completion.py``), each with its config dataclass, its network builder and, where it has one, its discriminators;
``layers.py`` holds the blocks they share and ``sampler.py`` the one sampling interface. A family is registered,
with its objective, in ``vidsynth.training`` (``@register_family``).
"""

from __future__ import annotations

from torch import nn

from vidsynth.errors import UserError


def load_weights(module: nn.Module, state: dict, source: str) -> None:
    """``module.load_state_dict(state)``, with a one-line UserError when the names or shapes do not match."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise UserError(f"{source} does not fit the {type(module).__name__} its config describes ({detail[:300]}): "
                        "the weights and the config come from different runs, or were edited; export or train "
                        "the run again") from None
