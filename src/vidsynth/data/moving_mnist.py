"""``MovingMNIST``: two MNIST digits bouncing in a 64x64 canvas, generated on the fly from the MNIST IDX files in
``root`` (Srivastava, Mansimov & Salakhutdinov 2015, "Unsupervised Learning of Video Representations using LSTMs").

As in the original generator: each digit starts at a uniform position, moves at 3.6 px per frame (0.1 of the free
range 64 - 28) in a uniform direction, reflects off the borders, and overlapping digits combine by maximum.
Deviations: the clip length is ``num_frames`` (the released test set has 20), a stride keeps every n-th frame, and
``resolution != 64`` resizes the canvas (bilinear). A sample is ``{"video": float [3, T, R, R] in [-1, 1] (grey in
all three channels), "label": 10 * first digit + second digit, "index": int}``.

Digit pools: with ``train-images-idx3-ubyte[.gz]`` in ``root``, train/val clips use the 60k training digits and
test clips the 10k test digits; with only the ``t10k`` files, test digits [0, 8000) serve train/val and
[8000, 10000) test, so no digit image appears on both sides.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from vidsynth.config import DataConfig
from vidsynth.data.base import register_dataset
from vidsynth.data.synthetic import SyntheticDataset, bounce
from vidsynth.data.transforms import resize_short_side, to_model_range
from vidsynth.errors import UserError

CANVAS = 64
DIGIT = 28
STEP = 0.1 * (CANVAS - DIGIT)  # px per frame, the original's step length of 0.1 in units of the free range
IMAGES_MAGIC = 0x00000803      # IDX header: unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801      # unsigned bytes, 1 dimension
T10K_SPLIT = 8000              # without the training files: t10k digits before this index train, after it test
FILES_HINT = "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (optionally train-*) from the MNIST site"


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file, gzip'd or plain: ``[N, 28, 28]`` images or ``[N]`` labels.

    Raises UserError (one line, saying what to do) when the file is not the expected IDX file.
    """
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip by content, not by suffix: a gunzipped file may keep its .gz name
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path} is a damaged gzip file ({e}): download it again") from None
    kind = "image" if magic == IMAGES_MAGIC else "label"
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        shown = "none" if found is None else f"0x{found:08x}"
        raise UserError(f"{path} is not an MNIST {kind} file (IDX magic {shown}, expected 0x{magic:08x}): "
                        f"replace it with the original {path.name.removesuffix('.gz')}.gz")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + math.prod(dims):
        raise UserError(f"{path} holds {len(data) - header} bytes of data but its header says {dims}: "
                        f"it is truncated or damaged, download it again")
    if kind == "image" and dims[1:] != (DIGIT, DIGIT):
        raise UserError(f"{path} holds {dims[1]}x{dims[2]} images, expected 28x28 MNIST digits: use the MNIST files")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def find_files(root: Path, prefix: str) -> tuple[Path, Path] | None:
    """The images and labels files of the ``train`` or ``t10k`` set in ``root`` (each gzip'd or plain), or None."""
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    found = [next((p for p in (root / n, root / f"{n}.gz") if p.is_file()), None) for n in names]
    if found == [None, None]:
        return None
    if None in found:
        raise UserError(f"{root} has only half of the MNIST {prefix} set: add {names[found.index(None)]}.gz")
    return found[0], found[1]


def read_mnist(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 28, 28]`` and labels ``[N]`` (0-9), both uint8, checked to belong together."""
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise UserError(f"{images_path.name} holds {len(images)} images but {labels_path.name} {len(labels)} labels: "
                        f"use the two files of the same MNIST set")
    if labels.size and labels.max() > 9:
        raise UserError(f"{labels_path} holds labels above 9: it is not an MNIST label file, use the original")
    return images, labels


@register_dataset("movingmnist")
class MovingMNIST(SyntheticDataset):
    """Two bouncing MNIST digits; label = the ordered digit pair (100 classes "00" to "99").

    Splits: test has the size of the standard Moving MNIST test set; val draws from the train digit pool, test
    from the disjoint test pool.
    """

    description = ("Moving MNIST (Srivastava et al. 2015): two MNIST digits bouncing in a 64x64 canvas, generated "
                   "from the MNIST IDX files in root; label = digit pair 00-99")
    options = SyntheticDataset.options + ("root",)
    SPLIT_SIZES = {"val": 1000, "test": 10000}

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        self.class_names = [f"{i:02d}" for i in range(100)]
        if not cfg.root:
            raise UserError(f"dataset 'movingmnist' needs root=<folder with the MNIST files {FILES_HINT}>")
        root = Path(cfg.root).expanduser()
        if not root.is_dir():
            raise UserError(f"root={cfg.root} is not a folder: pass the folder holding {FILES_HINT}")
        # the digit pool of this split, read once: uint8 images [N, 28, 28], labels [N], and where each came from
        self.pool_file, indices, images, labels = self._pool(root, cfg.split)
        self.pool_indices = torch.from_numpy(indices)  # [N] positions in the `pool_file` MNIST set
        self.images = torch.from_numpy(images[indices])
        self.digit_labels = torch.from_numpy(labels[indices]).long()

    @staticmethod
    def _pool(root: Path, split: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """(MNIST set name, indices of the split's digits in it, the set's images, its labels)."""
        test_files, train_files = find_files(root, "t10k"), find_files(root, "train")
        if test_files is None:
            raise UserError(f"no MNIST test files in {root}: put {FILES_HINT} there")
        if train_files is not None:
            name, files = ("t10k", test_files) if split == "test" else ("train", train_files)
            images, labels = read_mnist(*files)
            indices = np.arange(len(images))
        else:
            name, (images, labels) = "t10k", read_mnist(*test_files)
            cut = min(T10K_SPLIT, len(images))
            indices = np.arange(cut, len(images)) if split == "test" else np.arange(cut)
        if len(indices) == 0:
            raise UserError(f"the MNIST files in {root} leave no digits for split={split}: use the full files (without "
                            f"train-*, t10k digits from {T10K_SPLIT} on are the test pool)")
        return name, indices, images, labels

    def _draw(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clip ``index``: pool positions of its two digits ``[2]``, start corners ``[4]`` (x1, y1, x2, y2) and
        velocities ``[4]`` in canvas pixels. The digits are drawn first, so ``labels()`` is as cheap as this."""
        generator = torch.Generator().manual_seed(self.clip_seed(index))
        picks = torch.randint(len(self.images), (2,), generator=generator)
        start = torch.rand(4, generator=generator) * (CANVAS - DIGIT)
        theta = torch.rand(2, generator=generator) * (2 * math.pi)
        velocity = torch.stack([theta.cos(), theta.sin()], dim=1).flatten() * STEP
        return picks, start, velocity

    def digit_indices(self, index: int) -> tuple[int, int]:
        """Indices of clip ``index``'s two digits in the MNIST file set ``pool_file`` (first digit first)."""
        picks = self._draw(index)[0]
        return int(self.pool_indices[picks[0]]), int(self.pool_indices[picks[1]])

    def _label(self, picks: torch.Tensor) -> torch.Tensor:
        """Pool positions ``[..., 2]`` -> class ids ``[...]``: 10 * first digit + second digit."""
        digits = self.digit_labels[picks]
        return digits[..., 0] * 10 + digits[..., 1]

    def labels(self) -> list[int]:
        return self._label(torch.stack([self._draw(i)[0] for i in range(len(self))])).tolist()

    def load(self, index: int, generator: torch.Generator) -> dict:
        # `generator` is for augmentation and a synthetic clip has none: the content comes from the clip's own
        # seed, so it is the same whichever sampler key asked for it
        picks, start, velocity = self._draw(index)
        corners = bounce(start, velocity, self.frame_times, 0, CANVAS - DIGIT)
        corners = corners.round().long().view(-1, 2, 2)                                          # [T, 2, xy]
        # paste both digits into every frame with one indexed write: layer [T, 2, 64, 64], one digit per layer
        offsets = torch.arange(DIGIT)
        rows = (corners[..., 1, None] + offsets)[..., :, None]                                    # [T, 2, 28, 1]
        cols = (corners[..., 0, None] + offsets)[..., None, :]                                    # [T, 2, 1, 28]
        num = len(self.frame_times)
        frame, digit = torch.arange(num).view(-1, 1, 1, 1), torch.arange(2).view(1, -1, 1, 1)
        layers = torch.zeros(num, 2, CANVAS, CANVAS, dtype=torch.uint8)
        layers[frame, digit, rows, cols] = self.images[picks]
        video = layers.amax(dim=1)[..., None]                                                     # [T, 64, 64, 1]
        video = resize_short_side(video, self.cfg.resolution)
        return {"video": to_model_range(video.expand(-1, -1, -1, 3)), "label": int(self._label(picks))}
