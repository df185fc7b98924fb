"""FVD/KVD end to end on the real I3D: protocol names, detector input, batch-size independence, the real-feature
cache, and `vidsynth eval` on folders of real mp4 files and on a trained run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidsynth.config import DataConfig
from vidsynth.errors import UserError
from vidsynth.io import to_uint8, write_video
from vidsynth.metrics.evaluate import clip_order, evaluate, real_features
from vidsynth.metrics.fvd import (
    Protocol,
    detector_input,
    parse_metric,
    score,
    video_features,
)
from vidsynth.metrics.i3d import load_i3d

VIDSYNTH = Path(sys.executable).with_name("vidsynth")
SHAPES = DataConfig(name="shapes", resolution=32, num_frames=16, background="plain", length=40)


@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: the autouse per-test cache is not set up yet
        mp.setenv("VIDSYNTH_CACHE", str(tmp_path_factory.mktemp("i3d-cache")))
        return load_i3d()


def shapes_clips(n: int, seed: int = 0) -> torch.Tensor:
    from vidsynth.data import build_dataset
    data = build_dataset(DataConfig(name="shapes", resolution=32, num_frames=16, background="plain", seed=seed))
    return torch.stack([data[i]["video"] for i in range(n)])


def test_metric_names_carry_the_protocol():
    assert parse_metric("fvd2048_16f") == Protocol("fvd", 2048, 16)
    assert parse_metric("kvd256_16f_s2_styleganv") == Protocol("kvd", 256, 16, stride=2, resize="torch")
    for name in ("fvd2048_16f", "kvd256_16f_s2", "fvd64_9f_styleganv"):
        assert parse_metric(name).name == name
    for bad in ("fid50k", "fvd2048", "fvd1_16f", "fvd16_16f_s0", "fvd16_8f"):
        with pytest.raises(UserError, match="fvd"):
            parse_metric(bad)


def test_detector_input_is_8bit_frames_resized_to_224_in_minus_one_one():
    video = torch.linspace(-1, 1, 2 * 3 * 4 * 8 * 8).view(2, 3, 4, 8, 8)
    x = detector_input(video)
    assert x.shape == (2, 3, 4, 224, 224) and x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6
    # a constant frame stays constant, on an 8-bit level: 0.3 -> round(1.3 * 127.5) = 166 -> 2 * 166 / 255 - 1
    const = detector_input(torch.full((1, 1, 2, 5, 7), 0.3))
    assert const.shape == (1, 3, 2, 224, 224)
    assert torch.allclose(const, torch.full_like(const, 2 * 166 / 255 - 1), atol=1e-6)


def test_features_do_not_depend_on_batch_size_and_identical_sets_give_zero(i3d):
    clips = shapes_clips(3)
    one = video_features(clips, i3d, batch_size=1)
    three = video_features(clips, i3d, batch_size=3)
    assert one.shape == (3, 400) and one.dtype == torch.float64
    assert torch.allclose(one, three, atol=1e-4), (one - three).abs().max()
    assert abs(score("fvd", one, one)) < 1e-6 * float(one.var(0).sum())
    other = video_features(torch.flip(clips, dims=[4]) * 0.5, i3d, batch_size=3)
    assert score("fvd", one, other) > 1  # (KVD of 3 clips is too noisy to have a sign: tested on its own)


def test_real_clips_are_a_seeded_spread_not_the_first_files():
    order = clip_order(100, 10, seed=0)
    assert order == clip_order(100, 10, seed=0) and order != list(range(10)) and len(set(order)) == 10
    assert sorted(clip_order(4, 8, seed=1)) == [0, 0, 1, 1, 2, 2, 3, 3]  # every video before any repeats


def test_real_features_are_cached_by_everything_that_made_them(i3d, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSYNTH_CACHE", str(tmp_path))
    protocol = parse_metric("fvd3_16f")
    first, info = real_features(SHAPES, protocol, i3d, "sha-a")
    files = list((tmp_path / "metrics").glob("real-*.safetensors"))
    assert len(files) == 1 and info["clips"] == 3 and info["dataset"] == "shapes"
    os.utime(files[0], (0, 0))
    again, _ = real_features(SHAPES, protocol, i3d, "sha-a")
    assert torch.equal(first, again) and files[0].stat().st_mtime == 0  # read, not rewritten
    real_features(SHAPES, protocol, i3d, "sha-b")  # another detector: another entry
    real_features(SHAPES, parse_metric("fvd3_16f_styleganv"), i3d, "sha-a")  # another resize: another entry
    assert len(list((tmp_path / "metrics").glob("real-*.safetensors"))) == 3


def run(*args, cwd):
    env = {**os.environ, "VIDSYNTH_CACHE": str(Path(cwd) / ".cache")}
    return subprocess.run([str(VIDSYNTH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def write_clips(folder: Path, videos: torch.Tensor) -> None:
    folder.mkdir(parents=True)
    for i, frames in enumerate(to_uint8(videos)):
        write_video(folder / f"clip{i}.mp4", frames, fps=8)


def test_eval_on_two_folders_of_mp4_files(tmp_path, i3d):
    real = shapes_clips(4)
    write_clips(tmp_path / "real", real)
    # a copy, not a second encode: libx264 via PyAV gave different bytes for the same frames in ~1 of 20 encodes
    shutil.copytree(tmp_path / "real", tmp_path / "same")
    write_clips(tmp_path / "other", shapes_clips(4, seed=5).flip(3) * 0.3)
    same = run("eval", "--real", "real", "--fake", "same", "--metrics", "fvd4_16f,kvd4_16f", cwd=tmp_path)
    assert same.returncode == 0, same.stderr[-2000:]
    other = run("eval", "--real", "real", "--fake", "other", "--metrics", "fvd4_16f", cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-2000:]
    values = {line.split(" = ")[0]: float(line.split(" = ")[1].split()[0]) for line in same.stdout.splitlines()}
    different = float(other.stdout.split(" = ")[1].split()[0])
    assert abs(values["fvd4_16f"]) < 1e-3 * different and different > 1
    # the same number from Python, on the decoded files
    from vidsynth.metrics.evaluate import folder_data
    record, = evaluate(["fvd4_16f"], folder_data(tmp_path / "other"), folder_data(tmp_path / "real"))
    assert record["value"] == pytest.approx(different, rel=1e-3)
    too_few = run("eval", "--real", "real", "--fake", "other", "--metrics", "fvd8_16f", cwd=tmp_path)
    assert too_few.returncode == 2 and "fvd4_16f" in too_few.stderr and "Traceback" not in too_few.stderr


def test_metric_during_training_and_eval_of_the_run_append_the_same_value(tmp_path):
    tiny = ["steps=2", "sample_every=2", "checkpoint_every=2", "num_samples=2", "g_channels=8", "d_channels=8",
            "max_channels=32", "z_dim=16", "length=16", "batch_size=2"]
    out = run("train", "--preset", "quick", *tiny, "--metrics", "fvd3_16f", "--metric-every", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-mocogan-shapes32"
    out = run("eval", run_dir, "--metrics", "fvd3_16f", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    during, after = [json.loads(line) for line in (run_dir / "metric-fvd3_16f.jsonl").read_text().splitlines()]
    assert during["step"] == 2 and after["checkpoint"].endswith("step-0000002.pt")
    assert during["value"] == pytest.approx(after["value"], rel=1e-4) and after["value"] > 0
    assert after["real"]["split"] == "train" and after["protocol"]["resize"] == "tf1"
    bad = run("train", "--preset", "quick", *tiny, "--metrics", "fid50k", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown metric" in bad.stderr and not (tmp_path / "runs" / "00001-mocogan-shapes32").exists()


def test_completion_models_are_scored_on_the_real_clips_they_complete(tmp_path):
    from vidsynth.data import build_dataset
    from vidsynth.metrics.evaluate import completed_clips, real_clips
    from vidsynth.models.completion import CompletionSampler
    from vidsynth.training import build_network, model_config
    torch.manual_seed(0)
    cfg = model_config("completion", resolution=32, num_frames=16, context=4, g_channels=8, stochastic=True,
                       latent_channels=2, task="predict")
    network = build_network(cfg)
    torch.nn.init.normal_(network.residual_conv.weight, 0, 0.05)
    model = CompletionSampler(network, cfg)
    protocol = parse_metric("fvd3_16f")
    dataset = build_dataset(SHAPES)
    real = torch.cat(list(real_clips(dataset, protocol, 2)))
    one, three = torch.cat(list(completed_clips(model, dataset, protocol, 1))), next(completed_clips(model, dataset,
                                                                                                      protocol, 3))
    torch.testing.assert_close(one, three)  # masks and latent noise drawn clip by clip
    assert torch.equal(one[:, :, :4], real[:, :, :4]) and (one[:, :, 4:] - real[:, :, 4:]).abs().max() > 0.01

    tiny = ["steps=2", "sample_every=2", "checkpoint_every=2", "num_samples=2", "g_channels=8", "max_channels=32",
            "length=16", "batch_size=2", "background=plain", "context=10", "content_l2=1"]
    out = run("train", "--data", "shapes", "--model", "completion", "resolution=32", *tiny, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-completion-shapes32"
    out = run("eval", run_dir, "--metrics", "fvd3_16f", "--data", "shapes", "split=val", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((run_dir / "metric-fvd3_16f.jsonl").read_text())
    assert record["real"]["split"] == "val" and record["fake"]["task"] == "predict" and record["value"] > 0
    out = run("eval", run_dir, "--metrics", "fvd3_10f", cwd=tmp_path)
    assert out.returncode == 2 and "clips need more than 10 frames" in out.stderr


def test_eval_of_a_vae_run_samples_its_decoder(tmp_path):
    tiny = ["steps=2", "sample_every=2", "checkpoint_every=2", "num_samples=2", "g_channels=8", "max_channels=32",
            "z_dim=16", "length=16", "batch_size=2", "background=plain", "val_clips=2"]
    out = run("train", "--data", "shapes", "--model", "vae", "resolution=32", *tiny, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-vae-shapes32"
    out = run("eval", run_dir, "--metrics", "fvd3_16f", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((run_dir / "metric-fvd3_16f.jsonl").read_text())
    assert record["fake"]["model"] == "vae" and record["value"] > 0
