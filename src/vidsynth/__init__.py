"""vidsynth: deep generative video models (GANs, VAEs) -- data, training, sampling, evaluation."""

__version__ = "0.1.0"


def load_pretrained(model_dir, device="cpu"):
    """An exported generator (``vidsynth export``): ``load_pretrained(dir).sample(4)`` -> [4, 3, T, H, W]."""
    from vidsynth.pretrained import load_pretrained as _load
    return _load(model_dir, device)
