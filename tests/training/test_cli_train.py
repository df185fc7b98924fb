"""train -> sample -> export -> load_pretrained through the real `vidsynth` command in a temp folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import vidsynth
from vidsynth.data.video_io import read_video

VIDSYNTH = Path(sys.executable).with_name("vidsynth")
TINY = ["steps=3", "sample_every=3", "checkpoint_every=3", "log_every=1", "num_samples=2", "g_channels=8",
        "d_channels=8", "max_channels=32", "z_dim=16", "num_frames=8", "length=32", "batch_size=4"]


def run(*args, cwd):
    env = {**os.environ, "VIDSYNTH_CACHE": str(Path(cwd) / ".cache")}
    out = subprocess.run([str(VIDSYNTH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=600)
    return out


def test_quick_preset_train_sample_export(tmp_path):
    out = run("train", "--preset", "quick", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-mocogan-shapes32"
    assert (run_dir / "samples" / "step-0000003.mp4").is_file()
    assert read_video(run_dir / "samples" / "step-0000003.mp4")[0].shape[0] == 8

    out = run("sample", run_dir, "--seeds", "0-2", "--out", "s", "--class", "star", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["seed0000.mp4", "seed0001.mp4", "seed0002.mp4"]
    out = run("sample", run_dir, "--seeds", "0-3", "--out", "g", "--format", "grid", "--frames", "12", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "g" / "grid.png").is_file()

    out = run("export", run_dir, "--out", "exported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "exported" / "config.json").read_text())["model"]["resolution"] == 32
    config = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert config["format_version"] == 2 and "beta" not in config["model"]
    model = vidsynth.load_pretrained(tmp_path / "exported")
    assert model.class_names[3] == "diamond" and model.config.layered
    videos = model.sample([0, 1], labels=[0, 1])
    assert videos.shape == (2, 3, 8, 32, 32) and videos.abs().max() <= 1
    alone = model.sample([5], labels=[2])
    batch = model.sample([4, 5, 6], labels=[1, 2, 3])
    torch.testing.assert_close(alone[0], batch[1], rtol=0, atol=1e-6)  # seed 5 alone == seed 5 in a batch
    assert not torch.equal(batch[0], batch[1])
    torch.testing.assert_close(model.sample(3)[2], model.sample([2])[0], rtol=0, atol=1e-6)  # default labels too
    out = run("sample", "exported", "--seeds", "5", "--out", "one", "--class", "triangle", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    decoded = read_video(tmp_path / "one" / "seed0005.mp4")[0]
    assert decoded.shape == (8, 32, 32, 3)

    out = run("train", "--resume", "latest", "steps=4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (run_dir / "checkpoints" / "step-0000004.pt").is_file()


def test_train_user_errors_are_one_line(tmp_path):
    cases = [
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "loss=wgan-xx", *TINY], "wgan-xx"),
        (["train", "model.resolution=64"], "comes from the dataset"),
        (["train", "seed=3"], "ambiguous"),
        (["train", "beta=2", *TINY], "beta=2 is a completion / vae option that mocogan does not read"),
        (["train", "--model", "vgan", "train.recon=l1"], "recon=l1 is a vae option that vgan does not read"),
        (["train", "--resume", "latest"], "no run with a checkpoint"),
        (["train", "--model", "vgan", "num_frames=12"], "power of two"),
        (["sample", ".", "--out", "x"], "neither a run folder"),
    ]
    for args, message in cases:
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr[-1500:])
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_dry_run_prints_config_and_stops(tmp_path):
    out = run("train", "--preset", "quick", "--dry-run", "steps=7", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["train"]["steps"] == 7
    assert not (tmp_path / "runs").exists()


def test_train_prints_one_summary_line_and_readable_times(tmp_path):
    out = run("train", "--preset", "quick", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines() + out.stderr.splitlines()
    starting = [line for line in lines if line.startswith("starting ")]
    assert len(starting) == 1 and "mocogan on shapes 32x32x8 (5 classes" in starting[0], lines
    assert not any(line.strip().startswith('"') for line in lines)  # no config dump
    assert all("time=" not in line and "elapsed=0:00:" in line for line in lines if line.startswith("step "))
    assert "run folder: runs/00000-mocogan-shapes32" in out.stdout


def test_a_checkpoint_of_another_layout_fails_in_one_line(tmp_path):
    """Weights whose names do not fit the model (e.g. written by an older vidsynth) give a one-line error, exit 2."""
    assert run("train", "--preset", "quick", "--outdir", "runs", *TINY, cwd=tmp_path).returncode == 0
    checkpoint = next((tmp_path / "runs").glob("*/checkpoints/*.pt"))
    state = torch.load(checkpoint, weights_only=True)
    modules = state["objective"]["modules"]
    modules["generator_ema"] = {k.replace(".conv.", ".1."): v for k, v in modules["generator_ema"].items()}
    torch.save(state, checkpoint)
    out = run("sample", checkpoint.parent.parent, "--seeds", "0", "--out", "s", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "does not fit the VideoGenerator its config describes" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_continuous_family_trains_samples_long_videos_exports_and_loads(tmp_path):
    out = run("train", "--model", "continuous", *TINY, "w_dim=32", "motion_dim=8", "motion_spacing=4",
              "background=plain", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-continuous-shapes64"
    assert read_video(run_dir / "samples" / "step-0000003.mp4")[0].shape[0] == 8
    out = run("sample", run_dir, "--seeds", "0-1", "--out", "long", "--frames", "40", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert read_video(tmp_path / "long" / "seed0001.mp4")[0].shape == (40, 64, 64, 3)
    out = run("export", run_dir, "--out", "exported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    model = vidsynth.load_pretrained(tmp_path / "exported")
    long = model.sample([1], labels=[1], num_frames=40)
    short = model.sample([3, 1], labels=[0, 1], num_frames=40)
    torch.testing.assert_close(long[0], short[1], rtol=0, atol=1e-5)
    decoded = read_video(tmp_path / "long" / "seed0001.mp4")[0]
    expected = ((long[0].permute(1, 2, 3, 0) + 1) * 127.5).round()
    assert (decoded.float() - expected).abs().mean() < 8  # the same video, through mp4
