"""Writers: mp4 is H.264/yuv420p with even sizes, gif and PNG grids have the documented layout."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import moving_frames
from vidsynth.data.video_io import read_video
from vidsynth.io import frame_grid, save_videos, tile_videos, to_uint8, write_video


def test_mp4_is_h264_yuv420p_and_pads_odd_sizes(tmp_path):
    path = write_video(tmp_path / "odd.mp4", moving_frames(6, 21, 35), fps=12)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.format.name == "yuv420p"
        assert (s.width, s.height) == (36, 22)
    video, fps = read_video(path)
    assert video.shape == (6, 22, 36, 3) and fps == 12


def test_to_uint8_range_and_layout():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 1, 4).expand(2, 3, 5, 1, 4)
    u = to_uint8(x)
    assert u.shape == (2, 5, 1, 4, 3) and u.dtype == torch.uint8
    assert u[0, 0, 0, :, 0].tolist() == [0, 128, 255, 255]
    assert to_uint8(torch.zeros(1, 1, 2, 3, 3)).shape == (1, 2, 3, 3, 3)  # grey -> RGB


def test_frame_grid_rows_are_videos_columns_are_frames():
    videos = torch.from_numpy(np.stack([moving_frames(4, 8, 10, seed=s) for s in range(3)]))
    grid = frame_grid(videos, pad=2)
    assert grid.shape == (3 * 10 + 2, 4 * 12 + 2, 3)
    for i in range(3):
        for t in range(4):
            y, x = 2 + i * 10, 2 + t * 12
            assert torch.equal(grid[y: y + 8, x: x + 10], videos[i, t])


def test_tile_videos_and_save_videos(tmp_path):
    videos = torch.rand(5, 3, 6, 16, 16) * 2 - 1
    tiled = tile_videos(videos, nrow=3, pad=2)
    assert tiled.shape == (6, 2 * 18 + 2, 3 * 18 + 2, 3)
    assert torch.equal(tiled[:, 2 + 18: 2 + 18 + 16, 2: 18], to_uint8(videos)[3])
    for name in ("grid.png", "clip.mp4", "clip.gif"):
        out = save_videos(tmp_path / name, videos)
        assert out.stat().st_size > 0
    assert Image.open(tmp_path / "grid.png").size == (6 * 18 + 2, 5 * 18 + 2)
    assert read_video(tmp_path / "clip.gif")[0].shape[0] == 6
    with pytest.raises(ValueError, match="unknown output type"):
        save_videos(tmp_path / "clip.xyz", videos)
