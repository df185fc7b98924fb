"""Datasets, clip sampling and loading. ``build_dataset(DataConfig(...))`` or ``build_dataset(name="shapes")``."""

from __future__ import annotations

from vidsynth.config import DataConfig, from_dict
from vidsynth.data.base import (DATASETS, FileDataset, NoUsableVideosError, VideoDataset, VideoEntry, register_dataset,
                                split_groups)
from vidsynth.data.loader import ClipSampler, make_loader
from vidsynth.errors import EmptySplitError, UserError

# importing the dataset modules fills the registry
from vidsynth.data import folder, hmdb51, moving_mnist, rendered, shapes, ucf101  # noqa: E402,F401  isort: skip

__all__ = ["DATASETS", "DataConfig", "ClipSampler", "FileDataset", "VideoDataset", "VideoEntry", "build_dataset",
           "check_options", "dataset_splits", "make_data_config", "make_loader", "register_dataset", "split_groups"]


def make_data_config(name: str, **options) -> DataConfig:
    """A checked DataConfig for dataset ``name``; options it does not read are an error, not silently ignored."""
    check_options(name, options)
    return from_dict(DataConfig, {"name": name, **options}).check()


def check_options(name: str, options) -> None:
    """UserError unless ``name`` is a dataset that reads every one of ``options``."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    unused = sorted(set(options) - set(DATASETS[name].options))
    if unused:
        raise UserError(f"dataset {name!r} does not take {', '.join(unused)}; "
                        f"its options: {', '.join(DATASETS[name].options)}")


def build_dataset(cfg: DataConfig | None = None, **options) -> VideoDataset:
    """The dataset a config describes: ``build_dataset(cfg)`` or ``build_dataset(name="shapes", resolution=32)``."""
    cfg = cfg or make_data_config(options.pop("name", "shapes"), **options)
    if cfg.name not in DATASETS:
        raise UserError(f"unknown dataset {cfg.name!r}; available: {', '.join(sorted(DATASETS))}")
    return DATASETS[cfg.name](cfg.check())


def dataset_splits(cfg: DataConfig, reports: bool = False, splits=("train", "val", "test")) -> dict:
    """Every split of ``splits`` the dataset ``cfg`` describes: ``{"train": ..., "val": ..., "test": ...}``, leaving
    out splits the config leaves empty. With ``reports=True``, each split's ``report()`` instead of the dataset,
    including splits whose every video is unusable (for `vidsynth prepare`)."""
    import dataclasses
    out = {}
    for split in splits:
        try:
            ds = build_dataset(dataclasses.replace(cfg, split=split))
            out[split] = ds.report() if reports else ds
        except EmptySplitError:
            pass
        except NoUsableVideosError as e:
            if not reports:
                raise
            out[split] = e.report
    return out
