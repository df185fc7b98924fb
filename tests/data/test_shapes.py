"""Shapes: clip format, determinism per (seed, split, index), and that labels, motion ids and captions describe
what the frames really show."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import default_collate

from vidsynth.data import DATASETS, build_dataset, make_data_config
from vidsynth.data.shapes import Shapes, bounce
from vidsynth.errors import UserError

# what a caption's words mean on screen (x right, y down), written out here rather than read from the module
DIRECTION_VECTORS = {"up": (0, -1), "up-right": (1, -1), "right": (1, 0), "down-right": (1, 1), "down": (0, 1),
                     "down-left": (-1, 1), "left": (-1, 0), "up-left": (-1, -1)}
COLOUR_CHECKS = {  # RGB in [0, 1] of the sprite's fully covered pixels
    "red": lambda r, g, b: r > 0.7 and g < 0.3 and b < 0.3,
    "green": lambda r, g, b: g > 0.7 and r < 0.3 and b < 0.3,
    "blue": lambda r, g, b: b > 0.7 and r < 0.3 and g < 0.5,
    "yellow": lambda r, g, b: r > 0.7 and g > 0.7 and b < 0.3,
    "cyan": lambda r, g, b: g > 0.7 and b > 0.7 and r < 0.3,
    "magenta": lambda r, g, b: r > 0.7 and b > 0.7 and g < 0.3,
    "white": lambda r, g, b: min(r, g, b) > 0.9,
    "orange": lambda r, g, b: r > 0.9 and 0.35 < g < 0.75 and b < 0.2,
}


def _shapes(**options):
    return build_dataset(name="shapes", **{"resolution": 32, "num_frames": 8, **options})


def _sprite_weight(frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """On a plain background: (coverage [H, W] in [0, 1], background RGB [3] in [-1, 1]) of frame [3, H, W].

    The sprite covers well under half the frame, so the per-channel median is the background; a pixel's largest
    channel difference from it is proportional to the sprite's coverage of that pixel.
    """
    background = frame.flatten(1).median(dim=1).values
    diff = (frame - background[:, None, None]).abs().amax(dim=0)
    return diff / diff.max(), background


def _centre(weight: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(weight.shape[0]), torch.arange(weight.shape[1]), indexing="ij")
    return torch.stack([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def _classify(weight: torch.Tensor, bins: int = 48) -> str:
    """Name the shape in a coverage map from the Fourier spectrum of its outline's radius around the centroid:
    a circle is flat, a triangle has 3 lobes, a square and a diamond 4 (corners on the diagonals or on the axes),
    a star 5."""
    ys, xs = (c.float() for c in torch.nonzero(weight > 0.5, as_tuple=True))
    dy, dx = ys - ys.mean(), xs - xs.mean()
    angle = torch.atan2(dy, dx)
    bin_of = ((angle + math.pi) / (2 * math.pi) * bins).long() % bins
    radius = torch.zeros(bins).scatter_reduce(0, bin_of, torch.hypot(dx, dy), "amax")
    spectrum = torch.fft.rfft(radius).abs() / radius.mean() / bins * 2
    lobes = {3: spectrum[3], 4: spectrum[4], 5: spectrum[5]}
    k = max(lobes, key=lobes.get)
    if lobes[k] < 0.05:
        return "circle"
    if k == 4:
        # bins at 0, 90, 180, 270 degrees hold the axes, bins half-way between them the diagonals
        axes = radius[torch.arange(0, bins, bins // 4)].mean()
        diagonals = radius[torch.arange(bins // 8, bins, bins // 4)].mean()
        return "diamond" if axes > diagonals else "square"
    return {3: "triangle", 5: "star"}[k]


def test_clip_format_and_split_sizes():
    ds = _shapes(length=123)
    sample = ds[0]
    video = sample["video"]
    assert video.shape == (3, 8, 32, 32) and video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    assert video.max() - video.min() > 1  # a bright sprite on a dark background, not a blank clip
    assert sample["index"] == 0 and isinstance(sample["label"], int) and isinstance(sample["motion"], int)
    assert 0 <= sample["label"] < ds.num_classes == 5 and 0 <= sample["motion"] < 8
    words = sample["caption"].split()
    assert isinstance(sample["caption"], str) and words[0] == ("an" if words[1] == "orange" else "a")
    assert (ds.resolution, ds.num_frames) == (32, 8)
    assert len(ds) == 123
    assert len(_shapes(split="val", length=123)) == 500 and len(_shapes(split="test", length=123)) == 1000
    with pytest.raises(IndexError):
        ds[123]


def test_registry_entry_and_options():
    assert DATASETS["shapes"] is Shapes
    assert set(Shapes.options) == {"split", "resolution", "num_frames", "frame_stride", "seed", "length", "background",
                                   "holdout"}
    assert Shapes.description and "\n" not in Shapes.description
    assert isinstance(build_dataset(), Shapes)  # the default dataset needs no options at all
    with pytest.raises(UserError):
        make_data_config("shapes", root="/somewhere")  # shapes reads no files: root is a mistake, not ignored


def test_same_seed_and_index_give_identical_clips_whatever_the_sampler_key():
    a, b = _shapes(), _shapes()
    first = a[3]
    for other in (b[3], b[(3, 12345)], a[(3, 0)]):
        assert torch.equal(first["video"], other["video"])
        assert (first["label"], first["motion"], first["caption"]) == (other["label"], other["motion"],
                                                                      other["caption"])


def test_other_index_or_seed_gives_other_clips():
    ds, reseeded = _shapes(), _shapes(seed=1)
    assert not torch.equal(ds[3]["video"], ds[4]["video"])
    assert not torch.equal(ds[3]["video"], reseeded[3]["video"])
    captions = [ds[i]["caption"] for i in range(20)]
    assert len(set(captions)) > 10


def test_train_val_test_are_different_streams():
    clips = {split: [_shapes(split=split)[i] for i in range(5)] for split in ("train", "val", "test")}
    for one, other in (("train", "val"), ("train", "test"), ("val", "test")):
        for x, y in zip(clips[one], clips[other]):
            assert not torch.equal(x["video"], y["video"])
    # a split's stream does not depend on the training length
    assert torch.equal(_shapes(split="val", length=7)[2]["video"], _shapes(split="val")[2]["video"])


def test_frame_stride_keeps_every_nth_frame_of_the_same_motion():
    dense = _shapes(num_frames=7, frame_stride=1)[5]["video"]
    strided = _shapes(num_frames=4, frame_stride=2)[5]["video"]
    assert strided.shape == (3, 4, 32, 32)
    assert torch.equal(strided, dense[:, ::2])
    assert not torch.equal(strided, dense[:, :4])


def test_caption_words_label_and_motion_match_the_frames():
    ds = _shapes(resolution=64, num_frames=2, background="plain")
    checked, directions_seen = 0, set()
    for i in range(150):
        sample = ds[i]
        article, colour, shape, verb, direction = sample["caption"].split()
        assert (article, verb) == ("an" if colour == "orange" else "a", "moves")
        assert ds.class_names[sample["label"]] == shape
        assert list(DIRECTION_VECTORS)[sample["motion"]] == direction
        directions_seen.add(direction)
        weight, _ = _sprite_weight(sample["video"][:, 0])
        rgb = (sample["video"][:, 0][:, weight > 0.99].mean(dim=1) + 1) / 2
        assert COLOUR_CHECKS[colour](*rgb.tolist()), f"{sample['caption']}: sprite colour {rgb.tolist()}"
        # compare the first step with the caption where no bounce can interfere: sprite well inside the frame
        ys, xs = torch.nonzero(weight > 0.01, as_tuple=True)
        if min(ys.min(), xs.min(), 63 - ys.max(), 63 - xs.max()) < 11:
            continue
        step = _centre(_sprite_weight(sample["video"][:, 1])[0]) - _centre(weight)
        expected = torch.tensor(DIRECTION_VECTORS[direction], dtype=torch.float32)
        cosine = torch.dot(step, expected) / (step.norm() * expected.norm())
        assert cosine > 0.99, f"clip {i} ({sample['caption']}) moved by {step.tolist()}"
        assert 0.025 * 64 < step.norm() < 0.07 * 64  # clearly visible, not a jump
        checked += 1
    assert checked >= 30 and len(directions_seen) == 8


def test_label_names_the_rendered_shape():
    ds = _shapes(resolution=128, num_frames=1, background="plain")
    seen = set()
    for i in range(40):
        sample = ds[i]
        shape = ds.class_names[sample["label"]]
        assert _classify(_sprite_weight(sample["video"][:, 0])[0]) == shape, f"clip {i}: {sample['caption']}"
        seen.add(shape)
    assert seen == set(ds.class_names)


def test_plain_and_textured_backgrounds():
    plain, textured = _shapes(background="plain"), _shapes(background="textured")
    assert _shapes().cfg.background == "textured"  # the default
    patterns = []
    for i in range(6):
        p, t = plain[i]["video"], textured[i]["video"]
        weight, background = _sprite_weight(p[:, 0])
        off_sprite = weight == 0
        # plain: one uniform colour around the sprite; textured: a visible but low-contrast static pattern
        assert torch.equal(p[:, 0][:, off_sprite], background[:, None].expand(-1, int(off_sprite.sum())))
        pattern = t[:, 0][:, off_sprite]
        assert 0.02 < pattern.std(dim=1).mean() < 0.2
        # static: pixels the sprite covers in neither the first nor the last frame are unchanged
        static = off_sprite & (_sprite_weight(p[:, -1])[0] == 0)
        assert torch.equal(t[:, 0][:, static], t[:, -1][:, static])
        # same sprite and path on both backgrounds
        assert (plain[i]["caption"], plain[i]["label"]) == (textured[i]["caption"], textured[i]["label"])
        patterns.append((pattern - pattern.mean(dim=1, keepdim=True))[:, :200])
    # the pattern itself (not only its colour) varies from clip to clip
    assert all(not torch.allclose(patterns[0], other, atol=0.02) for other in patterns[1:])


def test_batch_covers_every_class_direction_and_colour():
    ds = _shapes(num_frames=16, length=64)
    batch = default_collate([ds[i] for i in range(64)])
    assert batch["video"].shape == (64, 3, 16, 32, 32)
    assert set(batch["label"].tolist()) == set(range(5))
    assert set(batch["motion"].tolist()) == set(range(8))
    assert len({caption.split()[1] for caption in batch["caption"]}) == 8
    assert ds.labels() == batch["label"].tolist()
    assert sum(ds.report()["per_class"].values()) == 64


def test_bounce_reflects_off_both_walls():
    times = torch.arange(8, dtype=torch.float32)
    path = bounce(torch.tensor([1.0]), torch.tensor([3.0]), times, 0.0, 10.0)[:, 0]
    assert path.tolist() == [1, 4, 7, 10, 7, 4, 1, 2]


def test_held_out_pairs_never_reach_the_train_split():
    from vidsynth.data import build_dataset
    from vidsynth.errors import UserError
    held = build_dataset(name="shapes", resolution=32, num_frames=4, length=300, holdout="blue star, red circle")
    captions = [held.clip(i).caption for i in range(300)]
    assert not any("blue star" in c or "red circle" in c for c in captions)
    full = build_dataset(name="shapes", resolution=32, num_frames=4, length=300)
    assert sum("blue star" in full.clip(i).caption or "red circle" in full.clip(i).caption for i in range(300)) > 5
    kept = [i for i in range(300) if full.clip(i).caption == captions[i]]
    assert len(kept) > 250                                  # other clips are the same as without a holdout
    test = build_dataset(name="shapes", resolution=32, num_frames=4, split="test", holdout="blue star")
    assert any("blue star" in test.clip(i).caption for i in range(len(test)))   # only train holds them out
    with pytest.raises(UserError, match="is not '<colour> <shape>'"):
        build_dataset(name="shapes", resolution=32, num_frames=4, holdout="purple star")
