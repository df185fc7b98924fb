"""Decoding videos to uint8 ``[T, H, W, 3]`` RGB: any container PyAV opens, folders of frame images, and
horizontal image strips of square frames (frame t = ``strip[:, H*t : H*(t+1)]``).

Grayscale, RGBA, paletted, odd-sized and variable-frame-rate inputs all come out as RGB uint8.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from vidsynth.errors import UserError

VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".avi", ".webm", ".mkv", ".mov", ".gif", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv", ".3gp"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
DEFAULT_FPS = 25.0  # for image strips and frame folders, which carry no rate

# Frames decoded by this process since import; lets tests check that a range read does not decode the whole
# file and that a cached index decodes nothing.
decode_stats = {"frames": 0}


class VideoError(UserError):
    """A video that cannot be read (unreadable, truncated, no frames, undecodable): a dataset skips and reports it;
    given on the command line, it is a one-line error."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def natural_key(name: str):
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def video_kind(path: Path) -> str | None:
    """'container', 'frames' (folder of images), 'strip' (one image), or None if not a video."""
    if path.is_dir():
        return "frames" if any(p.suffix.lower() in IMAGE_EXTS for p in path.iterdir()) else None
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTS:
        return "container"
    if suffix in IMAGE_EXTS:
        return "strip"
    return None


def _frame_files(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=lambda p: natural_key(p.name))


def _load_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@contextlib.contextmanager
def _naming(frame: Path):
    """A failure inside the block becomes a VideoError naming ``frame`` (not just its folder)."""
    try:
        yield
    except VideoError:
        raise
    except Exception as e:  # PIL raises many types on bad input; all mean "cannot read"
        raise VideoError(f"frame {frame.name}: {type(e).__name__}: {e}".strip()) from e


def _load_frame(path: Path) -> np.ndarray:
    with _naming(path):
        return _load_image(path)


def _check_frames(files: list[Path]) -> tuple[int, int]:
    """(height, width) of a frame folder's frames after checking every one: a regular file whose image data is
    intact (PIL's verify: chunk checksums, no pixel decoding) and of the first frame's size."""
    size = None
    for f in files:
        if not f.is_file():
            raise VideoError(f"frame {f.name}: not a regular file")
        with _naming(f), Image.open(f) as im:
            im.verify()
            frame_size = im.size
        if size is not None and frame_size != size:
            raise VideoError(f"frame {f.name} is {frame_size[0]}x{frame_size[1]}, the first frame "
                             f"{size[0]}x{size[1]}")
        size = frame_size
    _load_frame(files[-1])  # verify reads no pixels: decode one to prove the format decodes
    return size[1], size[0]


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else DEFAULT_FPS


def probe(path: str | Path) -> VideoInfo:
    """Frame count, rate and size of a video, checking that it decodes. Raises VideoError.

    Container frame counts come from demuxing every packet (no decoding): header counts are absent in webm/gif
    and wrong in truncated files. Only the first frame is decoded, to prove the stream is decodable. Every file of
    a frame folder is checked (``_check_frames``). FIFOs, devices and sockets are refused without being opened.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() or path.is_file()):  # a FIFO would block the reader forever
        raise VideoError("not a regular file (a FIFO, device or socket)")
    kind = video_kind(path)
    decode_stats["frames"] += 1
    try:
        if kind == "strip":
            image = _load_image(path)
            h, w = image.shape[:2]
            if w % h:
                raise VideoError(f"image strip width {w} is not a multiple of its height {h}")
            return VideoInfo(w // h, DEFAULT_FPS, h, h)
        if kind == "frames":
            files = _frame_files(path)
            h, w = _check_frames(files)
            return VideoInfo(len(files), DEFAULT_FPS, h, w)
        if kind == "container":
            return _probe_container(path)
    except VideoError:
        raise
    except Exception as e:  # PyAV/PIL raise many types on bad input; all mean "cannot read"
        raise VideoError(f"{type(e).__name__}: {e}".strip()) from e
    raise VideoError("not a video file, frame folder or image strip")


def _probe_container(path: Path) -> VideoInfo:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        count, first = 0, None
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            count += 1
            if first is None:
                first = next(iter(packet.decode()), None)  # decoders with delay return nothing for a few packets
        if first is None and count:
            first = next(iter(stream.decode(None)), None)  # flush the decoder
        if first is None:
            raise VideoError("no decodable frames")
        if stream.frames and count < stream.frames:
            raise VideoError(f"truncated: {count} of {stream.frames} frames present")
        return VideoInfo(count, _fps(stream), first.height, first.width)


def read_video(path: str | Path, start: int = 0, num_frames: int | None = None) -> tuple[torch.Tensor, float]:
    """Frames ``[start, start + num_frames)`` (all from ``start`` if None) as uint8 ``[T, H, W, 3]``, and the fps.

    Seeks to the keyframe before ``start`` where the container allows it, so a range near the end does not decode
    the whole file. After a seek, frame indices are derived from timestamps at the average rate (exact for
    constant-rate files). Fewer frames are returned if the video ends early. Raises VideoError.
    """
    path = Path(path)
    stop = None if num_frames is None else start + num_frames
    kind = video_kind(path)
    try:
        if kind == "strip":
            image = _load_image(path)
            h = image.shape[0]
            frames = image[:, : image.shape[1] // h * h].reshape(h, -1, h, 3).transpose(1, 0, 2, 3)
            decode_stats["frames"] += len(frames)
            frames, fps = frames[start:stop], DEFAULT_FPS
        elif kind == "frames":
            frames = [_load_frame(p) for p in _frame_files(path)[start:stop]]
            decode_stats["frames"] += len(frames)
            frames, fps = (np.stack(frames) if frames else []), DEFAULT_FPS
        elif kind == "container":
            frames, fps = _read_container(path, start, stop)
        else:
            raise VideoError("not a video file, frame folder or image strip")
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(f"{type(e).__name__}: {e}".strip()) from e
    if len(frames) == 0:
        raise VideoError(f"no frames from index {start}")
    return torch.from_numpy(np.ascontiguousarray(frames)), fps


def _read_container(path: Path, start: int, stop: int | None) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        fps = _fps(stream)
        frames = _decode_range(container, stream, fps, start, stop, seek=start > 0)
        if frames is None:  # the seek landed somewhere we cannot index from: decode from the start instead
            container.seek(0)
            frames = _decode_range(container, stream, fps, start, stop, seek=False)
        return (np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)), fps


def _decode_range(container, stream, fps, start, stop, seek):
    """List of rgb24 frames in [start, stop), or None if seeking gave frames without usable timestamps."""
    tb = stream.time_base
    t0 = stream.start_time or 0
    if seek:
        try:
            container.seek(int(t0 + start / fps / tb), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            seek = False
            container.seek(0)
    frames = []
    for i, frame in enumerate(container.decode(stream)):
        decode_stats["frames"] += 1
        if seek:
            if frame.pts is None:
                return None
            i = round(float((frame.pts - t0) * tb) * fps)
            if i > start and not frames:
                return None  # landed after the target (no keyframe before it was found)
        if i < start:
            continue
        if stop is not None and i >= stop:
            break
        frames.append(frame.to_ndarray(format="rgb24"))
    return frames
