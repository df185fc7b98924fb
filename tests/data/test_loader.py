"""Seeded, resumable, rank-aware loading: the clip stream depends on the seed only, not on the workers."""

from __future__ import annotations

from itertools import islice

import torch

from vidsynth.data import ClipSampler, build_dataset, make_loader


def test_sampler_resumes_exactly_and_reshuffles_each_epoch():
    full = list(islice(ClipSampler(10, seed=3), 35))
    assert list(islice(ClipSampler(10, seed=3, start=13), 22)) == full[13:]
    epochs = [[i for i, _ in full[k * 10:(k + 1) * 10]] for k in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs) and epochs[0] != epochs[1]
    assert len({s for _, s in full}) == 35  # every draw gets its own augmentation seed
    assert [i for i, _ in ClipSampler(10, seed=3, shuffle=False, epochs=1)] == list(range(10))
    assert len(ClipSampler(10, epochs=2, start=5)) == 15


def test_sampler_shards_ranks():
    shards = [list(ClipSampler(9, seed=1, rank=r, world_size=2, epochs=1)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5  # padded to equal length, like DistributedSampler
    indices = [i for s in shards for i, _ in s]
    assert set(indices) == set(range(9))
    assert not {s for _, s in shards[0]} & {s for _, s in shards[1]}


def test_loader_output_does_not_depend_on_workers(tmp_path, make_video):
    for c in range(2):
        for i in range(5):
            make_video(tmp_path / "d" / f"class{c}" / f"v{i}.mp4", num_frames=12, seed=10 * c + i)
    ds = build_dataset(name="videofolder", root=str(tmp_path / "d"), resolution=16, num_frames=4, crop="random",
                       flip=True)
    runs = []
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, num_workers=workers, seed=7)
        runs.append(list(islice(iter(loader), 4)))  # 16 clips: crosses an epoch boundary
    for a, b in zip(*runs):
        assert a["video"].shape == (4, 3, 4, 16, 16)
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["label"], b["label"])
        assert torch.equal(a["index"], b["index"])
    other = next(iter(make_loader(ds, batch_size=4, seed=8)))
    assert not torch.equal(other["video"], runs[0][0]["video"])
