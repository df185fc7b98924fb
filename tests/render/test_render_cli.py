"""`vidsynth render` and `vidsynth render-dataset`, run as the real command in a temp folder: clips, passes, scene
files, a dataset killed and resumed, and read back by the `rendered` dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vidsynth.data import build_dataset
from vidsynth.data.video_io import read_video
from vidsynth.render import language, scene as sg

VIDSYNTH = Path(sys.executable).with_name("vidsynth")
TEXT = "a red rubber sphere bounces left of a blue metal cube. warm light from the left. the camera orbits slowly."


def run(*args, cwd, **kwargs):
    return subprocess.run([str(VIDSYNTH), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          **kwargs)


def test_render_writes_the_clip_its_passes_and_the_scene(tmp_path):
    out = run("render", TEXT, "--frames", 4, "--res", 32, "--out", "clip.mp4", "--passes", "depth,ids,flow",
              "--scene-out", "scene.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "a red sphere bounces left of the cube" in out.stdout
    frames, _ = read_video(tmp_path / "clip.mp4")
    assert tuple(frames.shape) == (4, 32, 32, 3)
    for name in ("depth", "ids", "flow"):
        assert read_video(tmp_path / f"clip.{name}.mp4")[0].shape[0] == 4
    with np.load(tmp_path / "clip.passes.npz", allow_pickle=False) as passes:
        assert passes["ids"].shape == (4, 32, 32) and passes["flow"].shape == (4, 32, 32, 2)
        assert set(np.unique(passes["ids"])) <= {0, 1, 2}
    assert sg.load(tmp_path / "scene.json") == language.parse(TEXT)
    again = run("render", "scene.json", "--frames", 4, "--res", 32, "--out", "again.mp4", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(read_video(tmp_path / "again.mp4")[0], frames)


def test_render_mistakes_are_one_line(tmp_path):
    for args, words in [(("a red sphre.", "--out", "x.mp4"), "'sphre'"),
                        ((TEXT, "--out", "x.png"), "video suffix"),
                        ((TEXT, "--out", "x.mp4", "--passes", "normals"), "normals"),
                        (("missing.json", "--out", "x.mp4"), "cannot read the scene file")]:
        out = run("render", *args, cwd=tmp_path)
        assert out.returncode == 2 and words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not list(tmp_path.glob("x.*"))


def clip_files(root: Path) -> dict:
    return {p.name: (json.loads((p / "clip.json").read_text()), read_video(p / "video.mp4")[0].numpy())
            for p in sorted((root / "clips").iterdir())}


def test_render_dataset_resumes_after_a_kill_and_reads_back(tmp_path):
    args = ["render-dataset", "--n", 8, "--frames", 4, "--res", 16, "--seed", 3, "--max-objects", 2]
    whole = run(*args, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([str(VIDSYNTH), *map(str, args), "--out", "killed"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clips = tmp_path / "killed" / "clips"
    deadline = time.time() + 120
    while time.time() < deadline and len([p for p in clips.glob("0*")] if clips.exists() else []) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in clips.glob("0*"))
    assert 2 <= len(done) < 8, done
    for name in done:                                       # every clip folder is complete
        assert {p.name for p in (clips / name).iterdir()} == {"video.mp4", "clip.json"}
    resumed = run(*args, "--out", "killed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "already there" in resumed.stdout and not list(clips.glob(".*"))
    a, b = clip_files(tmp_path / "whole"), clip_files(tmp_path / "killed")
    assert a.keys() == b.keys() and len(a) == 8
    for name in a:
        assert a[name][0] == b[name][0]
        np.testing.assert_array_equal(a[name][1], b[name][1])
    other = run(*args[:-2], "--max-objects", 3, "--out", "killed", cwd=tmp_path)
    assert other.returncode == 2 and "other settings" in other.stderr
    # read back: splits from the files, labels from the first object, captions in every item
    splits = {name: meta["split"] for name, (meta, _) in a.items()}
    for split in ("train", "val", "test"):
        wanted = sorted(n for n, s in splits.items() if s == split)
        if not wanted:
            continue
        ds = build_dataset(name="rendered", root=str(tmp_path / "whole"), split=split, resolution=16, num_frames=4,
                           label="colour")
        assert len(ds) == len(wanted)
        item = ds[0]
        meta = a[wanted[0]][0]
        assert tuple(item["video"].shape) == (3, 4, 16, 16)
        assert item["caption"] == meta["caption"] == language.caption(sg.from_dict(meta["scene"]))
        assert ds.class_names[item["label"]] == meta["scene"]["objects"][0]["colour"]


def test_the_octree_route_renders_from_the_command_line(tmp_path):
    args = ("render", TEXT, "--frames", 3, "--res", 24, "--route", "octree", "--passes", "ids")
    first, second = (run(*args, "--out", name, cwd=tmp_path) for name in ("a.mp4", "b.mp4"))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    np.testing.assert_array_equal(read_video(tmp_path / "a.mp4")[0], read_video(tmp_path / "b.mp4")[0])
    with np.load(tmp_path / "a.passes.npz", allow_pickle=False) as passes:
        assert set(np.unique(passes["ids"])) == {0, 1, 2}
