"""The real `vidsynth` command, run as a subprocess in a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidsynth.data.video_io import read_video

VIDSYNTH = Path(sys.executable).with_name("vidsynth")


def run(*args, cwd):
    env = {**os.environ, "VIDSYNTH_CACHE": str(Path(cwd) / ".cache")}
    return subprocess.run([str(VIDSYNTH), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_datasets_lists_every_dataset_with_options(tmp_path):
    out = run("datasets", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("shapes", "movingmnist", "videofolder", "ucf101", "hmdb51"):
        assert f"\n{name}\n" in f"\n{out.stdout}"
    assert "root=None" in out.stdout and "resolution=64" in out.stdout


def test_show_writes_grid_and_video(tmp_path):
    out = run("show", "shapes", "resolution=32", "num_frames=8", "--num", "4", "--out", "grid.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "grid.png").stat().st_size > 0 and "moves" in out.stdout
    out = run("show", "shapes", "resolution=32", "num_frames=8", "--num", "4", "--out", "sub/clip.mp4",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    video, _ = read_video(tmp_path / "sub" / "clip.mp4")
    assert video.shape[0] == 8


def test_prepare_reports_classes_splits_and_bad_files(tmp_path, make_video):
    for i in range(4):
        make_video(tmp_path / "d" / "walk" / f"w{i}.mp4", num_frames=20, seed=i)
        make_video(tmp_path / "d" / "run" / f"r{i}.avi", num_frames=20, seed=9 + i)
    (tmp_path / "d" / "run" / "broken.mp4").write_text("not a video")
    make_video(tmp_path / "d" / "walk" / "tiny.mp4", num_frames=2)
    out = run("prepare", "videofolder", "root=d", "val_fraction=0.4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    counts = {line.split(":")[0]: int(line.split()[1]) for line in out.stdout.splitlines() if " clips, " in line}
    assert set(counts) == {"train", "val"} and counts["train"] + counts["val"] == 8 and counts["val"] >= 1
    assert "  walk " in out.stdout and "  run " in out.stdout
    assert "unreadable files: 1" in out.stdout and "broken.mp4" in out.stdout
    assert "shorter than the clip" in out.stdout and "tiny.mp4" in out.stdout
    assert "broken.mp4" in out.stderr  # the indexing warning
    again = run("prepare", "videofolder", "root=d", "val_fraction=0.4", cwd=tmp_path)
    assert again.stdout == out.stdout  # from the index cache, same report


@pytest.mark.parametrize("args, message", [
    (("show", "kinetics", "--out", "x.png"), "unknown dataset 'kinetics'"),
    (("show", "shapes", "resolution=big", "--out", "x.png"), "bad value for resolution"),
    (("show", "shapes", "colour=red", "--out", "x.png"), "unknown option 'colour'"),
    (("show", "shapes", "--out", "x.doc"), "--out x.doc"),
    (("prepare", "videofolder", "root=nowhere"), "root=nowhere is not a folder"),
    (("prepare", "movingmnist", "root=."), "MNIST"),
    (("show", "shapes", "--num", "0", "--out", "x.png"), "--num"),
])
def test_user_errors_are_one_line(tmp_path, args, message):
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_prepare_skips_a_fifo_and_names_a_bad_frame(tmp_path, make_video):
    """A FIFO named like a video would block its reader forever; a frame folder with one corrupt frame is reported
    by that frame's name. Both are skipped, the rest is used."""
    for i in range(3):
        make_video(tmp_path / "d" / "walk" / f"w{i}.mp4", num_frames=20, seed=i)
    os.mkfifo(tmp_path / "d" / "walk" / "clip.mp4")
    frames = tmp_path / "d" / "walk" / "strip_folder"
    frames.mkdir()
    png = read_video(tmp_path / "d" / "walk" / "w0.mp4")[0].numpy()
    from PIL import Image
    for t in range(20):
        Image.fromarray(png[t % len(png)]).save(frames / f"{t:03d}.png")
    (frames / "007.png").write_bytes((frames / "007.png").read_bytes()[:60])  # truncated mid-image
    out = run("prepare", "videofolder", "root=d", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "train: 3 clips" in out.stdout
    assert "clip.mp4: not a regular file" in out.stdout
    assert "strip_folder: frame 007.png" in out.stdout, out.stdout
