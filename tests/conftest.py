"""Shared fixtures: real video files written with PyAV, and an isolated metadata-index cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SHARED, moving_frames


@pytest.fixture(autouse=True)
def _index_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VIDSYNTH_CACHE", str(tmp_path_factory.mktemp("vidsynth-cache")))


@pytest.fixture
def make_video():
    """make_video(path, num_frames=12, height=32, width=40, fps=8) writes a real video (format from suffix)."""
    from vidsynth.io import write_video

    def make(path: Path, num_frames: int = 12, height: int = 32, width: int = 40, fps: float = 8, seed: int = 0):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_video(path, moving_frames(num_frames, height, width, seed), fps=fps)
    return make


@pytest.fixture
def weizmann() -> Path:
    root = SHARED / "weizmann_actions"
    assert root.is_dir(), f"shared test data missing: {root}"
    return root
