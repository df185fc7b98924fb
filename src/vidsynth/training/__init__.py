"""Training: the family registry (families.py), the objectives' base (objective.py), one objective per family
(gan.py, vae.py, completion.py), the one loop (loop.py), checkpoints and processes."""

from vidsynth.training import completion, gan, vae  # noqa: E402,F401  (register the families)
from vidsynth.training.families import (  # noqa: F401
                                         FAMILIES,
                                         RunConfig,
                                         build_network,
                                         get_family,
                                         model_config,
                                         register_family,
                                         train_config,
)
