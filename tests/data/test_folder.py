"""VideoFolder on real files: formats, labels, group-safe splits, bad files, the index cache, the RAM cache."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import moving_frames
from vidsynth.data import build_dataset, dataset_splits, make_data_config
from vidsynth.data.video_io import decode_stats
from vidsynth.errors import UserError


def _mixed_tree(root, make_video):
    """Two classes, every kind of video: mp4, webm, gif, a frame folder, an image strip."""
    make_video(root / "left" / "a.mp4", num_frames=20, seed=1)
    make_video(root / "left" / "b.webm", num_frames=18, seed=2)
    make_video(root / "right" / "c.gif", num_frames=16, seed=3)
    frames = moving_frames(10, 32, 32, seed=4)
    (root / "right" / "d").mkdir(parents=True)
    for t, f in enumerate(frames):
        Image.fromarray(f).save(root / "right" / "d" / f"{t:03d}.jpg")
    Image.fromarray(np.concatenate(list(frames), axis=1)).save(root / "right" / "e.png")
    (root / "right" / "notes.txt").write_text("not a video")  # ignored: not a video suffix
    return root


def test_mixed_formats_labels_and_samples(tmp_path, make_video):
    root = _mixed_tree(tmp_path / "clips", make_video)
    ds = build_dataset(name="videofolder", root=str(root), resolution=16, num_frames=8)
    assert ds.class_names == ["left", "right"] and ds.num_classes == 2
    assert len(ds) == 5 and ds.labels() == [0, 0, 1, 1, 1]
    assert (ds.resolution, ds.num_frames) == (16, 8)
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["video"].shape == (3, 8, 16, 16) and sample["video"].dtype == torch.float32
        assert -1 <= sample["video"].min() and sample["video"].max() <= 1
        assert sample["label"] == ds.labels()[i] and sample["index"] == i
    assert torch.equal(ds[2]["video"], ds[2]["video"])  # deterministic without a sampler seed
    starts = {float(ds[(0, s)]["video"][1, 0].mean()) for s in range(10)}
    assert len(starts) > 1  # sampler seeds move the random clip start


def test_weizmann_strips_and_mirror_pair_split(weizmann):
    train = build_dataset(name="videofolder", root=str(weizmann), resolution=32, num_frames=16,
                          val_fraction=0.25, group="mirror_pairs")
    val = build_dataset(train.cfg.__class__(**{**train.cfg.__dict__, "split": "val"}))
    assert train.class_names == ["bend", "jack", "wave1", "wave2"]
    assert len(train) + len(val) == 72 and len(val) > 0
    pair = lambda ds: {(e.label, int(e.path.stem) // 2) for e in ds.entries}
    assert not pair(train) & pair(val), "a mirror pair straddles train and val"
    per_class = np.bincount(val.labels(), minlength=4)
    assert (per_class > 0).all(), "val must hold every class"
    assert train[0]["video"].shape == (3, 16, 32, 32)


def test_splits_api_is_deterministic_disjoint_and_complete(tmp_path, make_video):
    for c in range(2):
        for g in range(5):
            for k in range(2):
                make_video(tmp_path / "d" / f"c{c}" / f"v_c{c}_g{g:02d}_c{k}.mp4", num_frames=8, height=16, width=16)
    cfg = make_data_config("videofolder", root=str(tmp_path / "d"), val_fraction=0.2, test_fraction=0.2,
                           group=r"_g(\d+)_", num_frames=4, resolution=16)
    splits = dataset_splits(cfg)
    paths = {k: {str(e.path) for e in ds.entries} for k, ds in splits.items()}
    assert set(splits) == {"train", "val", "test"}
    assert sum(len(p) for p in paths.values()) == 20 and len(set.union(*paths.values())) == 20
    groups = {k: {(e.label, e.group) for e in ds.entries} for k, ds in splits.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    again = dataset_splits(cfg)
    assert {k: {str(e.path) for e in ds.entries} for k, ds in again.items()} == paths
    no_val = make_data_config("videofolder", root=str(tmp_path / "d"), num_frames=4)
    assert set(dataset_splits(no_val)) == {"train"}


def test_bad_files_are_reported_and_skipped(tmp_path, make_video, caplog):
    root = tmp_path / "bad"
    good = make_video(root / "x" / "good.mp4", num_frames=20)
    make_video(root / "x" / "good2.avi", num_frames=20, seed=5)
    (root / "x" / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (root / "x" / "zero.mp4").write_bytes(b"")
    (root / "x" / "text.mp4").write_text("hello " * 100)
    make_video(root / "x" / "one.mp4", num_frames=1)
    with caplog.at_level(logging.WARNING, logger="vidsynth.data"):
        ds = build_dataset(name="videofolder", root=str(root), num_frames=8, resolution=16)
    assert sorted(e.path.name for e in ds.entries) == ["good.mp4", "good2.avi"]
    assert sorted(p.name for p, _ in ds.bad) == ["text.mp4", "truncated.mp4", "zero.mp4"]
    assert [p.name for p in ds.too_short] == ["one.mp4"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning that counts and lists every skipped file"
    for name in ("4 of 6", "truncated.mp4", "zero.mp4", "text.mp4", "one.mp4"):
        assert name in warnings[0].getMessage()
    looped = build_dataset(name="videofolder", root=str(root), num_frames=8, resolution=16, short="loop")
    assert len(looped) == 3 and all(looped[i]["video"].shape == (3, 8, 16, 16) for i in range(3))


def test_file_broken_after_indexing_is_replaced(tmp_path, make_video, caplog):
    root = tmp_path / "late"
    for i in range(4):
        make_video(root / "x" / f"v{i}.mp4", num_frames=10, seed=i)
    ds = build_dataset(name="videofolder", root=str(root), num_frames=4, resolution=16, cache="none")
    ds.entries[1].path.write_bytes(b"corrupted after indexing")
    with caplog.at_level(logging.WARNING, logger="vidsynth.data"):
        sample = ds[1]
    assert sample["index"] != 1 and sample["video"].shape == (3, 4, 16, 16)
    assert any("v1.mp4" in r.getMessage() for r in caplog.records)


def test_index_cache_reuse(tmp_path, make_video):
    root = tmp_path / "idx"
    for i in range(5):
        make_video(root / "x" / f"v{i}.mp4", num_frames=10, seed=i)
    first = build_dataset(name="videofolder", root=str(root), num_frames=4)
    assert first.probed == 5
    before = decode_stats["frames"]
    second = build_dataset(name="videofolder", root=str(root), num_frames=4)
    assert second.probed == 0 and decode_stats["frames"] == before, "second open must decode nothing"
    assert [i.num_frames for i in second.infos] == [10] * 5
    changed = root / "x" / "v3.mp4"
    make_video(changed, num_frames=14, seed=9)
    os.utime(changed, ns=(1, 1))
    third = build_dataset(name="videofolder", root=str(root), num_frames=4)
    assert third.probed == 1 and third.infos[3].num_frames == 14


def test_ram_cache_serves_the_same_clips(tmp_path, make_video):
    root = _mixed_tree(tmp_path / "c", make_video)
    opts = dict(name="videofolder", root=str(root), resolution=16, num_frames=6, crop="random", flip=True)
    cached, plain = build_dataset(**opts, cache="ram"), build_dataset(**opts, cache="none")
    assert cached.cache_enabled and not plain.cache_enabled
    cached.warm_cache()
    keys = [(i, 1000 + i) for i in range(len(plain))]
    before = decode_stats["frames"]
    served = [cached[key]["video"] for key in keys]
    assert decode_stats["frames"] == before, "a warmed RAM cache must serve clips without decoding"
    for key, video in zip(keys, served):
        assert torch.equal(video, plain[key]["video"])
    assert len(cached._cache) == len(cached)
    auto = build_dataset(**opts)
    assert auto.cache_enabled and auto.cache_bytes() < 2**20
    assert not build_dataset(**opts, cache_gb=1e-9).cache_enabled


def test_config_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="needs root"):
        build_dataset(name="videofolder")
    with pytest.raises(UserError, match="not a folder"):
        build_dataset(name="videofolder", root=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="no videos found"):
        build_dataset(name="videofolder", root=str(tmp_path))
    with pytest.raises(UserError, match="short="):
        make_data_config("videofolder", root=".", short="stretch")
    with pytest.raises(UserError, match="does not take"):
        make_data_config("shapes", root=".")
    with pytest.raises(UserError, match="unknown dataset"):
        make_data_config("kinetics")


@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_captions_beside_a_folder_reach_every_item_and_uncaptioned_videos_are_reported(tmp_path, make_video,
                                                                                        caplog, form):
    root = tmp_path / "clips"
    for name, seed in (("walk/a.mp4", 1), ("walk/b.mp4", 2), ("run/c.mp4", 3)):
        make_video(root / name, num_frames=12, seed=seed)
    captions = {"walk/a.mp4": 'a person walks, slowly "left"', "run/c.mp4": "a person runs"}
    if form == "csv":
        lines = ["path,caption"] + [f'{p},"{c.replace(chr(34), chr(34) * 2)}"' for p, c in captions.items()]
        (root / "captions.csv").write_text("\n".join(lines) + "\n")
    else:
        (root / "captions.jsonl").write_text("".join(json.dumps({"path": p, "caption": c}) + "\n"
                                                     for p, c in captions.items()))
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(name="videofolder", root=str(root), resolution=16, num_frames=8)
    assert "skipped 1 of 3 videos" in caplog.text and "walk/b.mp4" in caplog.text
    assert len(ds) == 2
    assert sorted(ds[i]["caption"] for i in range(len(ds))) == sorted(captions.values())


def test_caption_file_mistakes_are_one_line(tmp_path, make_video):
    root = tmp_path / "clips"
    make_video(root / "walk" / "a.mp4", num_frames=12)
    (root / "captions.csv").write_text("file,text\nwalk/a.mp4,hello\n")
    with pytest.raises(UserError, match="columns path,caption"):
        build_dataset(name="videofolder", root=str(root), resolution=16, num_frames=8)
    (root / "captions.csv").write_text("path,caption\nother.mp4,hello\n")
    with pytest.raises(UserError, match="no video in .* has a caption"):
        build_dataset(name="videofolder", root=str(root), resolution=16, num_frames=8)
