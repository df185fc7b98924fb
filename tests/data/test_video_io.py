"""Decoding real files written by PyAV/Pillow: every container, ranges, odd inputs, bad files."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import moving_frames
from vidsynth.data.video_io import VideoError, decode_stats, probe, read_video

CONTAINERS = [".mp4", ".webm", ".gif", ".avi", ".mkv", ".mov"]


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_roundtrip_every_container(tmp_path, make_video, suffix):
    path = make_video(tmp_path / f"clip{suffix}", num_frames=20, height=32, width=40)
    info = probe(path)
    assert (info.num_frames, info.height, info.width) == (20, 32, 40)
    video, fps = read_video(path)
    assert video.dtype == torch.uint8 and video.shape == (20, 32, 40, 3)
    assert fps > 0
    error = (video.float() - torch.from_numpy(moving_frames(20, 32, 40)).float()).abs().mean()
    assert error < (1 if suffix == ".gif" else 12), f"{suffix}: decoded frames differ from written ({error})"
    part, _ = read_video(path, 13, 5)
    assert torch.equal(part, video[13:18])


def _write_with_pts(path, frames, pts, gop=None, codec="libx264", pix_fmt="yuv420p", time_base=Fraction(1, 1000)):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        s.codec_context.time_base = time_base
        if gop:
            s.codec_context.gop_size = gop
        for f, t in zip(frames, pts):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = t, time_base
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


def test_range_read_seeks_instead_of_decoding_everything(tmp_path):
    frames = moving_frames(200, 32, 32)
    path = tmp_path / "long.mp4"
    _write_with_pts(path, frames, [i * 40 for i in range(200)], gop=10)  # 25 fps, keyframe every 10
    full, _ = read_video(path)
    before = decode_stats["frames"]
    part, _ = read_video(path, 180, 8)
    decoded = decode_stats["frames"] - before
    assert torch.equal(part, full[180:188])
    assert decoded <= 20, f"decoded {decoded} frames for an 8-frame range at the end of a 200-frame file"


def test_variable_frame_rate(tmp_path):
    frames = moving_frames(30, 32, 32)
    pts = np.cumsum([0] + [20 if i % 3 else 70 for i in range(29)]).tolist()  # irregular gaps
    path = tmp_path / "vfr.mp4"
    _write_with_pts(path, frames, pts)
    info = probe(path)
    video, _ = read_video(path)
    assert info.num_frames == 30 and video.shape == (30, 32, 32, 3)
    assert read_video(path, 10, 4)[0].shape == (4, 32, 32, 3)


def test_grayscale_rgba_and_odd_sizes_come_out_rgb(tmp_path):
    gray = tmp_path / "gray.mkv"  # ffv1 stores true grayscale, odd size
    with av.open(str(gray), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 33, 21, "gray"
        for t in range(5):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((21, 33), 40 * t, np.uint8), format="gray")))
        c.mux(s.encode(None))
    video, _ = read_video(gray)
    assert video.shape == (5, 21, 33, 3)
    assert torch.equal(video[3], torch.full((21, 33, 3), 120, dtype=torch.uint8))

    rgba = tmp_path / "rgba.mov"  # PNG-in-MOV keeps alpha
    with av.open(str(rgba), "w") as c:
        s = c.add_stream("png", rate=10)
        s.width, s.height, s.pix_fmt = 17, 11, "rgba"
        for t in range(4):
            a = np.zeros((11, 17, 4), np.uint8)
            a[..., 1], a[..., 3] = 200, 128
            c.mux(s.encode(av.VideoFrame.from_ndarray(a, format="rgba")))
        c.mux(s.encode(None))
    video, _ = read_video(rgba)
    assert video.shape == (4, 11, 17, 3) and int(video[0, 0, 0, 1]) == 200


def test_frame_folder_and_strip(tmp_path):
    frames = moving_frames(7, 24, 24)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):  # names that sort wrongly as plain strings
        Image.fromarray(f).convert("L" if t == 0 else "RGB").save(folder / f"frame_{t}.png")
    video, _ = read_video(folder)
    assert video.shape == (7, 24, 24, 3)
    assert torch.equal(video[1:], torch.from_numpy(frames[1:]))
    assert probe(folder).num_frames == 7

    strip = tmp_path / "strip.png"
    Image.fromarray(np.concatenate(list(frames), axis=1)).convert("RGBA").save(strip)
    info = probe(strip)
    assert (info.num_frames, info.height, info.width) == (7, 24, 24)
    video, _ = read_video(strip, 2, 3)
    assert torch.equal(video, torch.from_numpy(frames[2:5]))


def test_weizmann_strip_is_readable(weizmann):
    path = weizmann / "bend" / "00000006.png"
    info = probe(path)
    video, _ = read_video(path)
    assert info.height == info.width == 64 and video.shape == (info.num_frames, 64, 64, 3)
    assert 51 <= info.num_frames <= 146


def test_bad_files_raise_video_error(tmp_path, make_video):
    good = make_video(tmp_path / "good.mp4", num_frames=30)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    for name in ("truncated.mp4", "empty.mp4", "text.mp4"):
        with pytest.raises(VideoError):
            probe(tmp_path / name)
        with pytest.raises(VideoError):
            read_video(tmp_path / name)
    one = make_video(tmp_path / "one.mp4", num_frames=1)
    assert probe(one).num_frames == 1 and read_video(one)[0].shape[0] == 1
