"""Dataset registry and the two dataset bases: ``VideoDataset`` (every dataset) and ``FileDataset`` (videos on disk:
metadata index, group-safe splits, bad-file handling, clip sampling, RAM cache).

Every dataset returns ``{"video": float [C, T, H, W] in [-1, 1], "label": int, "index": int}`` and exposes
``num_classes``, ``class_names``, ``resolution``, ``num_frames``. ``dataset[i]`` is deterministic; a sampler may
pass ``dataset[(i, seed)]`` to draw the random clip start / crop / flip from ``seed`` instead (see loader.py).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vidsynth.config import DataConfig
from vidsynth.data.index import VideoIndex
from vidsynth.data.transforms import clip_indices, clip_span, make_clip, resize_short_side
from vidsynth.data.video_io import VideoError, VideoInfo, read_video
from vidsynth.errors import EmptySplitError, UserError

log = logging.getLogger("vidsynth.data")

# DataConfig fields every dataset reads; each dataset class adds its own in `options`
CLIP_OPTIONS = ("split", "resolution", "num_frames", "frame_stride", "seed")
FILE_OPTIONS = ("start", "short", "crop", "flip", "cache", "cache_gb")

DATASETS: dict[str, type["VideoDataset"]] = {}


class NoUsableVideosError(UserError):
    """Every video of a split was unreadable or too short; ``report`` lists them (for `vidsynth prepare`)."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def register_dataset(name: str):
    """Class decorator: make a dataset available under ``name`` (its CLI name)."""
    def deco(cls):
        cls.name = name
        DATASETS[name] = cls
        return cls
    return deco


def words(caption: str) -> list[str]:
    """A caption's words, lower-cased (what text encoders and vocabularies count)."""
    return re.findall(r"[a-z]+", caption.lower())


def seed_for(*values) -> int:
    """A 63-bit seed that depends on every value (stable across runs, machines and Python versions)."""
    digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class VideoDataset(Dataset):
    """Base of every dataset. Subclasses set ``class_names`` and implement ``__len__`` and ``load``."""

    name = ""
    description = ""
    options: tuple[str, ...] = CLIP_OPTIONS  # DataConfig fields this dataset reads (listed by `vidsynth datasets`)
    max_retries = 10

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg.check()
        self.class_names: list[str] = []
        self.failed: set[int] = set()  # indices whose file broke after indexing (per process)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def num_frames(self) -> int:
        return self.cfg.num_frames

    def load(self, index: int, generator: torch.Generator) -> dict:
        """The sample at ``index``; any randomness (clip start, crop, flip) comes from ``generator``."""
        raise NotImplementedError

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, seed_for(self.cfg.seed, key))
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        generator = torch.Generator().manual_seed(seed)
        for attempt in range(self.max_retries):
            if index not in self.failed:
                try:
                    sample = self.load(index, generator)
                    sample["index"] = index
                    return sample
                except VideoError as e:
                    # a file that broke after indexing: log it once and serve other clips rather than stop training
                    self.failed.add(index)
                    log.warning("skipping unreadable video %s (%s); using another clip", self.describe(index), e)
            index = seed_for(seed, attempt) % len(self)
        raise RuntimeError(f"{self.max_retries} videos in a row failed to decode; check the dataset files")

    def caption_words(self) -> list[str] | None:
        """Every word of this dataset's captions (sorted), or None when its clips have no captions."""
        return None

    def describe(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def report(self) -> dict:
        """Counts per class (and bad files for file datasets), for `vidsynth prepare`."""
        counts = [0] * self.num_classes
        for label in self.labels():
            counts[label] += 1
        return {"clips": len(self), "per_class": dict(zip(self.class_names, counts))}

    def labels(self) -> list[int]:
        return [self.load(i, torch.Generator().manual_seed(0))["label"] for i in range(len(self))]


@dataclass(frozen=True)
class VideoEntry:
    path: Path
    label: int
    group: str  # videos sharing a group (same actor/scene/source) stay on one side of every split


def split_groups(entries: list[VideoEntry], fractions: dict[str, float], seed: int) -> dict[str, list[VideoEntry]]:
    """Deterministic group-safe split per class: ``{"val": 0.1}`` -> ``{"train": [...], "val": [...]}``.

    Within each class the groups are ordered by a hash of (seed, class, group), and the first
    ``round(fraction * n_groups)`` (at least one if the fraction is > 0 and the class has two groups) go to each
    held-out split in turn. No group is on two sides; the result does not depend on file order.
    """
    out = {name: [] for name in ("train", *fractions)}
    by_class: dict[int, dict[str, list[VideoEntry]]] = {}
    for e in entries:
        by_class.setdefault(e.label, {}).setdefault(e.group, []).append(e)
    for label, groups in by_class.items():
        order = sorted(groups, key=lambda g: seed_for(seed, label, g))
        pos = 0
        for name, fraction in fractions.items():
            n = round(fraction * len(order))
            if fraction > 0 and len(order) > 1:
                n = min(max(n, 1), len(order) - 1 - pos)
            for g in order[pos: pos + n]:
                out[name].extend(groups[g])
            pos += n
        for g in order[pos:]:
            out["train"].extend(groups[g])
    return {name: sorted(v, key=lambda e: str(e.path)) for name, v in out.items()}


class FileDataset(VideoDataset):
    """Videos on disk. Subclasses implement ``discover`` and may set ``index_root``."""

    options = CLIP_OPTIONS + FILE_OPTIONS + ("root",)

    captions: dict[Path, str] = {}     # a video's caption, for datasets that have them (set by ``discover``)

    def __init__(self, cfg: DataConfig):
        super().__init__(cfg)
        if not cfg.root:
            raise UserError(f"dataset {self.name!r} needs root=<folder>")
        self.root = Path(cfg.root).expanduser()
        if not self.root.is_dir():
            raise UserError(f"root={cfg.root} is not a folder")
        self.class_names, entries = self.discover()
        index = VideoIndex(self.root)
        infos = index.lookup([e.path for e in entries], desc=f"indexing {self.root.name}")
        self.probed = index.probed  # files decoded to build the index this time (0 when all were cached)
        span = clip_span(cfg.num_frames, cfg.frame_stride)
        self.bad: list[tuple[Path, str]] = []
        self.too_short: list[Path] = []
        self.entries: list[VideoEntry] = []
        self.infos: list[VideoInfo] = []
        for e in entries:
            info = infos[e.path]
            if isinstance(info, str):
                self.bad.append((e.path, info))
            elif info.num_frames < span and cfg.short == "drop":
                self.too_short.append(e.path)
            else:
                self.entries.append(e)
                self.infos.append(info)
        self._warn_skipped(len(entries), span)
        if not self.entries:
            raise NoUsableVideosError(
                f"no usable videos in the {cfg.split} split of {self.root}"
                + (f" ({len(self.too_short)} shorter than {span} frames: try short=loop or fewer num_frames)"
                   if self.too_short else "; is root the folder that holds the class folders?"), self.report())
        self._cache: dict[int, torch.Tensor] = {}
        self.cache_enabled = cfg.cache == "ram" or (cfg.cache == "auto" and self.cache_bytes() <= cfg.cache_gb * 2**30)

    def discover(self) -> tuple[list[str], list[VideoEntry]]:
        """Class names and the entries of ``cfg.split``."""
        raise NotImplementedError

    def carve(self, entries: list[VideoEntry], names: tuple[str, ...]) -> list[VideoEntry]:
        """The entries of ``cfg.split`` after holding out the given splits with their configured fractions."""
        fractions = {name: getattr(self.cfg, f"{name}_fraction") for name in names}
        parts = split_groups(entries, fractions, self.cfg.seed)
        if self.cfg.split in fractions and fractions[self.cfg.split] == 0:
            raise EmptySplitError(f"split={self.cfg.split} is empty: set {self.cfg.split}_fraction (e.g. 0.1)")
        return parts[self.cfg.split]

    def _warn_skipped(self, total: int, span: int) -> None:
        if not (self.bad or self.too_short):
            return
        lines = [f"{p}: {why}" for p, why in self.bad] + [f"{p}: shorter than {span} frames (short=drop)"
                                                         for p in self.too_short]
        shown = "; ".join(lines[:20]) + (f"; ... and {len(lines) - 20} more (vidsynth prepare lists all)"
                                         if len(lines) > 20 else "")
        log.warning("skipped %d of %d videos in %s: %s", len(lines), total, self.root, shown)

    def __len__(self) -> int:
        return len(self.entries)

    def describe(self, index: int) -> str:
        return str(self.entries[index].path)

    def caption_words(self) -> list[str] | None:
        if not self.captions:
            return None
        return sorted({w for caption in self.captions.values() for w in words(caption)})

    def labels(self) -> list[int]:
        return [e.label for e in self.entries]

    def report(self) -> dict:
        if not self.entries:
            return {"clips": 0, "per_class": {}, "bad": [(str(p), why) for p, why in self.bad],
                    "too_short": [str(p) for p in self.too_short]}
        return {**super().report(), "bad": [(str(p), why) for p, why in self.bad],
                "too_short": [str(p) for p in self.too_short]}

    def _resized_size(self, info: VideoInfo) -> tuple[int, int]:
        scale = self.cfg.resolution / min(info.height, info.width)
        return max(self.cfg.resolution, round(info.height * scale)), max(self.cfg.resolution, round(info.width * scale))

    def cache_bytes(self) -> int:
        """RAM needed to keep every video decoded at the training size (shorter side = resolution)."""
        return sum(i.num_frames * math.prod(self._resized_size(i)) * 3 for i in self.infos)

    def warm_cache(self) -> None:
        """Decode every video once into RAM (before DataLoader workers fork, so they share it)."""
        if not self.cache_enabled:
            return
        from tqdm import tqdm
        for i in tqdm(range(len(self)), desc="caching clips", unit="video", disable=None, leave=False):
            if i not in self._cache:
                try:
                    self._frames(i, 0, None)
                except VideoError as e:
                    log.warning("skipping unreadable video %s (%s)", self.describe(i), e)

    def _frames(self, index: int, start: int, stop: int | None) -> torch.Tensor:
        """uint8 ``[T, h, w, 3]`` frames [start, stop) with the shorter side resized to ``resolution``."""
        if index in self._cache:
            return self._cache[index][start:stop]
        if self.cache_enabled:
            self._cache[index] = resize_short_side(read_video(self.entries[index].path)[0], self.cfg.resolution)
            return self._cache[index][start:stop]
        count = None if stop is None else stop - start
        return resize_short_side(read_video(self.entries[index].path, start, count)[0], self.cfg.resolution)

    def load(self, index: int, generator: torch.Generator) -> dict:
        cfg = self.cfg
        idx = clip_indices(self.infos[index].num_frames, cfg.num_frames, cfg.frame_stride, cfg.start, cfg.short,
                           generator)
        lo, hi = min(idx), max(idx) + 1
        frames = self._frames(index, lo, hi)
        # a file may hold fewer frames than indexed (e.g. timestamps of variable-rate video): repeat the last
        frames = frames[[min(i - lo, len(frames) - 1) for i in idx]]
        video = make_clip(frames, cfg.resolution, cfg.crop, cfg.flip, generator)
        item = {"video": video, "label": self.entries[index].label}
        if self.captions:
            item["caption"] = self.captions[self.entries[index].path]
        return item
