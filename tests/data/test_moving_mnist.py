"""MovingMNIST from the real MNIST test files: every frame is exactly the two named digits, moving; pools are
disjoint; bad roots and bad files give one clear UserError."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from helpers import SHARED
from vidsynth.data import DATASETS, build_dataset, make_data_config
from vidsynth.data.moving_mnist import MovingMNIST
from vidsynth.errors import UserError

MNIST = SHARED / "mnist"


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """The t10k images [10000, 28, 28] and labels [10000], parsed here independently of the module."""
    assert (MNIST / "t10k-images-idx3-ubyte.gz").is_file(), f"shared test data missing: {MNIST}"
    images = np.frombuffer(gzip.open(MNIST / "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
    labels = np.frombuffer(gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
    return images.reshape(-1, 28, 28), labels


@pytest.fixture(scope="module")
def train():
    return build_dataset(name="movingmnist", root=str(MNIST), num_frames=10)


def _mnist(**options):
    return build_dataset(name="movingmnist", **{"root": str(MNIST), "num_frames": 10, **options})


def _to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """Channel 0 of a [3, H, W] frame in [-1, 1] back to the uint8 canvas it was made from."""
    return ((frame[0] + 1) * 127.5).round().to(torch.uint8)


def _placements(frame: torch.Tensor, digit: torch.Tensor) -> list[tuple[int, int]]:
    """Top-left corners (x, y) where ``digit`` [28, 28] fits under the 64x64 ``frame`` (max-combined digits never
    darken one another, so the true placement always passes)."""
    patches = frame.float().unfold(0, 28, 1).unfold(1, 28, 1)  # [37, 37, 28, 28]
    fits = (patches >= digit.float()).flatten(2).all(dim=2)
    return [(int(x), int(y)) for y, x in torch.nonzero(fits)]


def _paste(corners: list[tuple[tuple[int, int], torch.Tensor]]) -> torch.Tensor:
    canvas = torch.zeros(64, 64, dtype=torch.uint8)
    for (x, y), digit in corners:
        canvas[y: y + 28, x: x + 28] = torch.maximum(canvas[y: y + 28, x: x + 28], digit)
    return canvas


def _track(video: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> list[tuple]:
    """Per frame, the corners of the two digits that rebuild the frame exactly; fails if no placement does."""
    path = []
    for t in range(video.shape[1]):
        frame = _to_uint8(video[:, t])
        found = next(((a, b) for a in _placements(frame, first) for b in _placements(frame, second)
                      if torch.equal(_paste([(a, first), (b, second)]), frame)), None)
        assert found is not None, f"frame {t} is not the two digits max-combined"
        path.append(found)
    return path


def test_clip_format_and_split_sizes(train):
    sample = train[0]
    video = sample["video"]
    assert video.shape == (3, 10, 64, 64) and video.dtype == torch.float32
    assert video.min() == -1 and 0.9 < video.max() <= 1  # black canvas, white strokes
    assert torch.equal(video[0], video[1]) and torch.equal(video[0], video[2])  # grey in all three channels
    assert sample["index"] == 0 and 0 <= sample["label"] < 100
    assert train.num_classes == 100 and train.class_names[:3] == ["00", "01", "02"] and train.class_names[-1] == "99"
    assert len(train) == 10000  # `length` (default) training clips
    assert len(_mnist(length=50)) == 50
    assert len(_mnist(split="val", length=50)) == 1000 and len(_mnist(split="test", length=50)) == 10000


def test_same_seed_and_index_give_identical_clips_whatever_the_sampler_key(train):
    other = _mnist()
    for a, b in ((train[5], other[5]), (train[5], other[(5, 999)])):
        assert torch.equal(a["video"], b["video"]) and a["label"] == b["label"]
    assert not torch.equal(train[5]["video"], train[6]["video"])
    assert not torch.equal(train[5]["video"], _mnist(seed=1)[5]["video"])
    assert not torch.equal(train[5]["video"], _mnist(split="val")[5]["video"])


def test_every_frame_is_the_two_labelled_digits_moving(train, mnist):
    images, labels = mnist
    for index in range(4):
        sample = train[index]
        a, b = train.digit_indices(index)
        assert sample["label"] == 10 * labels[a] + labels[b]
        assert train.class_names[sample["label"]] == f"{labels[a]}{labels[b]}"
        path = _track(sample["video"], torch.from_numpy(images[a].copy()), torch.from_numpy(images[b].copy()))
        for digit in range(2):
            corners = torch.tensor([frame[digit] for frame in path], dtype=torch.float32)  # [T, 2]
            steps = (corners[1:] - corners[:-1]).norm(dim=1)
            # 3.6 px a frame (0.1 of the free range 36), corners rounded to pixels; a bounce can only shorten a step
            assert 2.8 < steps.median() < 4.4 and steps.max() < 3.6 + 2 ** 0.5 + 1e-4, \
                f"clip {index} digit {digit}: {steps.tolist()}"
            assert corners.min() >= 0 and corners.max() <= 36


def test_labels_match_samples_and_report():
    ds = _mnist(length=40)
    assert ds.labels() == [ds[i]["label"] for i in range(40)]
    assert sum(ds.report()["per_class"].values()) == 40
    assert len(set(ds.labels())) > 20  # ordered pairs spread over the 100 classes


def test_test_digits_are_disjoint_from_train_and_val_digits(train):
    val, test = _mnist(split="val"), _mnist(split="test")
    assert train.pool_file == val.pool_file == test.pool_file == "t10k"  # only the t10k files are available
    assert train.pool_indices.tolist() == list(range(8000)) == val.pool_indices.tolist()
    assert test.pool_indices.tolist() == list(range(8000, 10000))
    used = {split: {i for index in range(300) for i in ds.digit_indices(index)}
            for split, ds in (("train", train), ("val", val), ("test", test))}
    assert max(used["train"] | used["val"]) < 8000 <= min(used["test"])
    assert len(used["test"]) > 200  # clips draw from the whole pool, not a few digits


def test_resolution_and_frame_stride():
    small = _mnist(resolution=32, num_frames=4)[2]["video"]
    assert small.shape == (3, 4, 32, 32) and small.min() >= -1 and small.max() <= 1
    full = _mnist(num_frames=4)[2]["video"]
    # a 2x downscale of the same clip: the same picture at coarse scale (means over 8x8-pixel blocks of the 64 canvas)
    coarse = torch.nn.functional.avg_pool2d
    # (the antialiasing filter spans 4 source pixels, so block means shift a little; another clip is far off)
    assert (coarse(small, 4) - coarse(full, 8)).abs().max() < 0.15
    assert (coarse(small, 4) - coarse(_mnist(num_frames=4)[3]["video"], 8)).abs().max() > 0.5
    dense = _mnist(num_frames=7)[2]["video"]
    strided = _mnist(num_frames=4, frame_stride=2)[2]["video"]
    assert torch.equal(strided, dense[:, ::2]) and not torch.equal(strided, dense[:, :4])


def _write_idx(path, array: np.ndarray, magic: int | None = None, compress: bool = False):
    """An IDX file of uint8 ``array``; ``magic`` overrides the correct one."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _fake_set(root, prefix: str, count: int, first_value: int, compress: bool):
    """``count`` synthetic 28x28 'digits', digit i a solid block of value first_value + i, labels i % 10."""
    images = np.zeros((count, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = (first_value + np.arange(count, dtype=np.uint8))[:, None, None]
    suffix = ".gz" if compress else ""
    _write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    _write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(count, dtype=np.uint8) % 10, compress=compress)


def test_train_files_when_present_feed_train_and_val(tmp_path):
    _fake_set(tmp_path, "train", 30, first_value=10, compress=False)  # plain IDX files
    _fake_set(tmp_path, "t10k", 12, first_value=100, compress=True)
    for split, pool_file, count, values in (("train", "train", 30, range(10, 40)), ("val", "train", 30, range(10, 40)),
                                            ("test", "t10k", 12, range(100, 112))):
        ds = _mnist(root=str(tmp_path), split=split)
        assert ds.pool_file == pool_file and ds.pool_indices.tolist() == list(range(count))
        pixels = set(_to_uint8(ds[0]["video"][:, 0]).unique().tolist()) - {0}
        assert pixels and pixels <= set(values), f"{split} clip shows pixels {pixels}"


def _one_line_user_error(match: str, **options) -> str:
    with pytest.raises(UserError, match=match) as error:
        build_dataset(name="movingmnist", **options)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_missing_root_and_folder_without_mnist_files(tmp_path):
    assert "root=" in _one_line_user_error("needs root=")
    assert "t10k-images-idx3-ubyte.gz" in _one_line_user_error("is not a folder", root=str(tmp_path / "absent"))
    (tmp_path / "readme.txt").write_text("not MNIST")
    assert "t10k-images-idx3-ubyte.gz" in _one_line_user_error("no MNIST test files", root=str(tmp_path))


def test_bad_idx_files(tmp_path):
    labels = np.arange(5, dtype=np.uint8)
    images = np.zeros((5, 28, 28), np.uint8)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    # half a set
    _one_line_user_error("add t10k-images-idx3-ubyte", root=str(tmp_path))
    # a labels file under the images name: wrong magic
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", labels)
    message = _one_line_user_error("not an MNIST image file", root=str(tmp_path))
    assert "0x00000801" in message and "0x00000803" in message and "replace it" in message
    # a gzip'd file with a foreign magic number
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, magic=0x12345678, compress=True)
    _one_line_user_error("magic 0x12345678", root=str(tmp_path))
    # a truncated file
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, compress=True)
    data = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-100]))
    _one_line_user_error("truncated", root=str(tmp_path))
    # a damaged gzip stream
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data)[:-30])
    _one_line_user_error("damaged gzip", root=str(tmp_path))
    # images and labels of different sets
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((7, 28, 28), np.uint8), compress=True)
    _one_line_user_error("7 images but", root=str(tmp_path))


def test_through_the_registry():
    ds = build_dataset(name="movingmnist", root=str(MNIST), resolution=32, num_frames=8)
    assert isinstance(ds, MovingMNIST) and DATASETS["movingmnist"] is MovingMNIST
    assert ds[0]["video"].shape == (3, 8, 32, 32)
    assert set(MovingMNIST.options) == {"split", "resolution", "num_frames", "frame_stride", "seed", "root", "length"}
    with pytest.raises(UserError):
        make_data_config("movingmnist", root=str(MNIST), background="plain")  # an option it does not read
