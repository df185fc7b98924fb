"""Writing videos and grids: mp4 (H.264, yuv420p), webm/mkv/avi, gif, and PNG frame grids.

Library videos are float ``[B, C, T, H, W]`` in [-1, 1]; uint8 ``[T, H, W, 3]`` exists only here and in decoding.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from vidsynth.errors import UserError

# codec and pixel format per container; yuv420p is what every player decodes
_CODECS = {
    ".mp4": ("libx264", "yuv420p"), ".mov": ("libx264", "yuv420p"), ".mkv": ("libx264", "yuv420p"),
    ".m4v": ("libx264", "yuv420p"), ".webm": ("libvpx-vp9", "yuv420p"), ".avi": ("mpeg4", "yuv420p"),
}
VIDEO_OUT_EXTS = frozenset(_CODECS) | {".gif"}
IMAGE_OUT_EXTS = frozenset({".png", ".jpg", ".jpeg"})


# a temp file of replaced_atomically: hidden, with its writer's pid and host, the suffix kept
_TEMP = re.compile(r"^\..+\.tmp(\d+)-([A-Za-z0-9-]+)(\.\w+)?$")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


@contextlib.contextmanager
def replaced_atomically(path: str | Path) -> Iterator[Path]:
    """``with replaced_atomically(path) as tmp:`` write ``tmp``; it is renamed over ``path`` when the block ends
    without error (and removed when it fails), so a kill at any moment leaves the old file or the new one, never a
    partial one. ``tmp`` is a hidden file in the same folder with the same suffix (writers that pick the format
    from it work unchanged); ``remove_stale_temps`` clears those a killed writer left. Creates the parent folder;
    a folder that cannot be written is a one-line UserError."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise cannot_write(path, e) from None
        raise


def temp_path(path: Path, pid: int | None = None) -> Path:
    """Where ``replaced_atomically`` writes ``path`` first: ``.{stem}.tmp{pid}-{host}{suffix}`` beside it."""
    return path.with_name(f".{path.stem}.tmp{os.getpid() if pid is None else pid}-{_HOST}{path.suffix}")


def cannot_write(path: Path, error: OSError) -> UserError:
    return UserError(f"cannot write {path}: {error.strerror or error}; choose a folder you can write to")


def writable_folder(folder: str | Path) -> Path:
    """``folder``, created if needed; a one-line UserError if it cannot be made or written (checked before any
    work, so a long job does not fail at its first output)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_write(folder, e) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {folder}: permission denied; choose a folder you can write to")
    return folder


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temp files of ``replaced_atomically`` in ``folder`` whose writer, a process of this host, is no
    longer running (a kill between creating and renaming one leaves it behind); returns them. Only names of that
    exact form are touched (hidden, ``.tmp<pid>-<host>``), never another file."""
    removed = []
    for p in Path(folder).iterdir() if Path(folder).is_dir() else []:
        m = _TEMP.match(p.name)
        if m and m.group(2) == _HOST and p.is_file() and not _running(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes its temps inside a with block: one found now is a dead writer's
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def to_levels(videos: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float 8-bit levels 0..255 (rounded), on the same device and layout: what a written
    video holds."""
    return ((videos.float() + 1) * 127.5).round_().clamp_(0, 255)


def to_uint8(videos: torch.Tensor) -> torch.Tensor:
    """float ``[B, C, T, H, W]`` (or ``[C, T, H, W]``) in [-1, 1] -> uint8 ``[B, T, H, W, 3]``.

    Single-channel videos are repeated to RGB.
    """
    if videos.ndim == 4:
        videos = videos[None]
    assert videos.ndim == 5 and videos.shape[1] in (1, 3), f"expected [B, C, T, H, W], got {tuple(videos.shape)}"
    videos = to_levels(videos.detach().cpu()).to(torch.uint8)
    return videos.expand(-1, 3, -1, -1, -1).permute(0, 2, 3, 4, 1).contiguous()


def _as_uint8_batch(videos) -> torch.Tensor:
    """Accepts float ``[B, C, T, H, W]``/``[C, T, H, W]`` in [-1, 1] or uint8 ``[B, T, H, W, 3]``/``[T, H, W, 3]``."""
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(videos)
    if videos.dtype == torch.uint8:
        return videos[None] if videos.ndim == 4 else videos
    return to_uint8(videos)


def frame_grid(videos, pad: int = 2, max_frames: int | None = None) -> torch.Tensor:
    """PNG-style grid: rows = videos, columns = frames. Returns uint8 ``[H', W', 3]`` (white separators)."""
    v = _as_uint8_batch(videos)[:, :max_frames]
    b, t, h, w, _ = v.shape
    grid = torch.full((b * (h + pad) + pad, t * (w + pad) + pad, 3), 255, dtype=torch.uint8)
    for i in range(b):
        for j in range(t):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y: y + h, x: x + w] = v[i, j]
    return grid


def tile_videos(videos, nrow: int | None = None, pad: int = 2) -> torch.Tensor:
    """Several videos side by side in one video: uint8 ``[T, H', W', 3]``, ``nrow`` videos per row. A single video
    comes back as it is, without a border."""
    v = _as_uint8_batch(videos)
    b, t, h, w, _ = v.shape
    if b == 1:
        return v[0]
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    out = torch.full((t, rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, dtype=torch.uint8)
    for i in range(b):
        y, x = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        out[:, y: y + h, x: x + w] = v[i]
    return out


def write_image(path: str | Path, image) -> Path:
    """Write uint8 ``[H, W, 3]`` as PNG/JPG."""
    path = Path(path)
    with replaced_atomically(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp)
    return path


def write_video(path: str | Path, frames, fps: float = 8.0, crf: int = 18) -> Path:
    """Write uint8 ``[T, H, W, 3]`` frames; the container comes from the suffix (.mp4, .webm, .mkv, .mov, .avi, .gif).

    yuv420p needs even sizes: odd heights/widths are padded by repeating the last row/column.
    """
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    assert frames.ndim == 4 and frames.shape[-1] == 3, f"expected [T, H, W, 3], got {frames.shape}"
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        with replaced_atomically(path) as tmp:
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        return path
    if suffix not in _CODECS:
        raise ValueError(f"cannot write {suffix!r} videos; use one of {', '.join(sorted(VIDEO_OUT_EXTS))}")
    codec, pix_fmt = _CODECS[suffix]
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with replaced_atomically(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": str(crf)}
        elif codec == "libvpx-vp9":
            stream.options = {"crf": str(crf + 12), "b": "0", "deadline": "realtime"}
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def save_videos(path: str | Path, videos, fps: float = 8.0, nrow: int | None = None) -> Path:
    """Save a batch for people to look at: ``.png``/``.jpg`` -> frame grid (rows = videos, columns = frames),
    a video suffix -> all videos tiled in one clip. Accepts float ``[B, C, T, H, W]`` in [-1, 1] or uint8."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_OUT_EXTS:
        return write_image(path, frame_grid(videos))
    if suffix in VIDEO_OUT_EXTS:
        return write_video(path, tile_videos(videos, nrow=nrow), fps=fps)
    raise ValueError(f"unknown output type {suffix!r}: use .png, .jpg, {', '.join(sorted(VIDEO_OUT_EXTS))}")
