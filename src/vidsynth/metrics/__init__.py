"""Evaluation metrics and their detectors: ``i3d.py`` (the FVD detector), ``weights.py`` (detector weights:
checksums, code-free unpickling, safetensors cache)."""
