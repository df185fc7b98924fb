"""predict / interpolate / inpaint and the VAE through the real `vidsynth` command on real mp4 and PNG files."""

from __future__ import annotations

import numpy as np
import torch
from helpers import moving_frames
from PIL import Image
from training.test_cli_train import run

import vidsynth
from vidsynth.data.transforms import make_clip
from vidsynth.data.video_io import read_video

TINY = ["steps=2", "sample_every=2", "checkpoint_every=2", "log_every=1", "num_samples=2", "g_channels=8",
        "max_channels=32", "num_frames=8", "length=16", "batch_size=4", "background=plain"]


def test_predict_interpolate_inpaint_from_the_command_line(tmp_path, make_video):
    out = run("train", "--data", "shapes", "--model", "completion", "resolution=32", "context=3", "content_l2=1",
              *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-completion-shapes32"
    assert (run_dir / "samples" / "step-0000002.png").is_file()  # input / completion / real rows
    clip = make_video(tmp_path / "clip.mp4", num_frames=10, height=40, width=48)
    decoded = make_clip(read_video(clip)[0], 32)

    out = run("predict", run_dir, "--input", clip, "--context", "4", "--frames", "5", "--out", "pred.mp4",
              "--class", "star", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "48x40: resized to 38x32, centre-cropped to 32x32" in out.stdout and "predicted 5 frames" in out.stdout
    pred = make_clip(read_video(tmp_path / "pred.mp4")[0], 32)
    assert pred.shape == (3, 9, 32, 32)
    assert (pred[:, :4] - decoded[:, :4]).abs().mean() < 0.05  # the context, through one more lossy encode

    frames = moving_frames(10, 40, 48)
    Image.fromarray(frames[0]).save(tmp_path / "a.png")
    Image.fromarray(frames[-1]).save(tmp_path / "b.png")
    out = run("interpolate", run_dir, "--first", "a.png", "--last", "b.png", "--frames", "6", "--out", "i.png",
              "--class", "circle", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    grid = np.asarray(Image.open(tmp_path / "i.png"))
    assert grid.shape[1] > 5 * 32  # 6 frames side by side

    hole = np.zeros((40, 48, 3), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    for mask in ("hole.png", "box:10,10,20,10"):
        out = run("inpaint", run_dir, "--input", clip, "--mask", mask, "--out", "filled.mp4", "--class", "star",
                  cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert read_video(tmp_path / "filled.mp4")[0].shape[:3] == (10, 32, 32)

    out = run("export", run_dir, "--out", "exported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = run("predict", "exported", "--input", clip, "--out", "from_export.mp4", "--class", "star", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert read_video(tmp_path / "from_export.mp4")[0].shape[0] == 8  # the model's context 3 + 5 frames

    out = run("predict", run_dir, "--input", clip, "--out", "p.mp4", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: this model is class-conditional: pass --class with one of circle, square, triangle, diamond, star"]
    out = run("sample", run_dir, "--seeds", "0", "--out", "s", cwd=tmp_path)
    assert out.returncode == 2 and "use vidsynth predict, interpolate or inpaint" in out.stderr


def test_vae_train_sample_and_reject_completion_commands(tmp_path):
    out = run("train", "--data", "shapes", "--model", "vae", "resolution=32", "z_dim=16", "val_clips=4", *TINY,
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-vae-shapes32"
    assert "val_bpd" in (run_dir / "stats.jsonl").read_text()
    out = run("sample", run_dir, "--seeds", "0-1", "--out", "s", "--class", "square", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert read_video(tmp_path / "s" / "seed0001.mp4")[0].shape[:3] == (8, 32, 32)
    out = run("predict", run_dir, "--input", "s/seed0001.mp4", "--out", "p.mp4", cwd=tmp_path)
    assert out.returncode == 2 and "need a model trained with --model completion" in out.stderr
    out = run("export", run_dir, "--out", "exported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    vae = vidsynth.load_pretrained(tmp_path / "exported")
    assert vae.class_names[1] == "square"
    assert vae.sample([0, 1], labels=[0, 1]).shape == (2, 3, 8, 32, 32)
    assert torch.load(next((run_dir / "checkpoints").iterdir()), weights_only=True)["step"] == 2


def test_simvp_backbone_predicts_from_the_command_line_and_refuses_other_lengths(tmp_path, make_video):
    out = run("train", "--data", "shapes", "--model", "completion", "backbone=simvp", "translator_channels=32",
              "translator_blocks=2", "resolution=32", "context=3", "content_l2=1", "conditional=false", *TINY,
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "00000-completion-shapes32"
    clip = make_video(tmp_path / "clip.mp4", num_frames=10, height=32, width=32)
    out = run("export", run_dir, "--out", "exported", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = run("predict", "exported", "--input", clip, "--context", "3", "--frames", "5", "--out", "p.mp4",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert read_video(tmp_path / "p.mp4")[0].shape[:3] == (8, 32, 32)
    out = run("predict", "exported", "--input", clip, "--context", "3", "--frames", "6", "--out", "q.mp4",
              cwd=tmp_path)
    assert out.returncode == 2 and "reads exactly the 8 frames it was trained on, got 9" in out.stderr
