"""vidsynth: deep generative video models (GANs, VAEs) -- data, training, sampling, evaluation."""

__version__ = "0.1.0"
