"""Training: the family registry (families.py), the objectives' base (objective.py), one objective per family
(gan.py, vae.py, completion.py), the one loop (loop.py), checkpoints and processes."""

from vidsynth.training.families import (FAMILIES, RunConfig, build_network, get_family, model_config,  # noqa: F401
                                         register_family, train_config)
from vidsynth.training import completion, continuous, gan, vae  # noqa: E402,F401,I001  (register the families)
