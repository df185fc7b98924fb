"""Per-file video metadata cache, so opening a folder of 13,000 videos does not decode them at every start.

One JSON file per dataset root under ``$VIDSYNTH_CACHE`` (default ``~/.cache/vidsynth``), entries keyed by path
relative to the root and valid while the file's size and mtime are unchanged. Unreadable files are cached too
(with their error), so they are reported at every open but probed only once. Written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from vidsynth.data.video_io import VideoError, VideoInfo, probe
from vidsynth.io import remove_stale_temps, replaced_atomically

INDEX_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("VIDSYNTH_CACHE") or Path.home() / ".cache" / "vidsynth")


def _signature(path: Path) -> list[int]:
    """size + mtime; for frame folders the folder's own entry changes when files are added or removed."""
    st = path.stat()
    if path.is_dir():
        return [sum(1 for _ in path.iterdir()), st.st_mtime_ns]
    return [st.st_size, st.st_mtime_ns]


def _probe_entry(path: Path) -> dict:
    try:
        info = probe(path)
        return {"frames": info.num_frames, "fps": info.fps, "height": info.height, "width": info.width}
    except VideoError as e:
        return {"error": str(e) or "unreadable"}


class VideoIndex:
    """Metadata of the videos under ``root``; ``lookup`` probes only new or changed files."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        key = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        self.path = cache_dir() / f"index-{self.root.name}-{key}.json"
        self.entries: dict[str, dict] = {}
        self.probed = 0  # files probed by the last lookup (0 when everything came from the cache)
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") == INDEX_VERSION:
                self.entries = data["entries"]
        except (OSError, ValueError, KeyError):
            pass  # no cache yet, or an unreadable one: rebuild

    def lookup(self, paths: list[Path], desc: str = "indexing") -> dict[Path, VideoInfo | str]:
        """VideoInfo, or the error message of an unreadable file, for each path. Saves the index if it changed."""
        todo, out = [], {}
        for path in paths:
            rel = os.path.relpath(path, self.root)
            try:
                sig = _signature(path)
            except OSError as e:
                out[path] = f"cannot stat: {e.strerror}"
                continue
            entry = self.entries.get(rel)
            if entry is None or entry.get("sig") != sig:
                todo.append((path, rel, sig))
            else:
                out[path] = self._info(entry)
        self.probed = len(todo)
        if todo:
            # PyAV releases the GIL while demuxing, so threads overlap I/O and parsing
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                results = pool.map(lambda item: _probe_entry(item[0]), todo)
                for (path, rel, sig), entry in tqdm(zip(todo, results), total=len(todo), desc=desc,
                                                    unit="video", disable=None, leave=False):
                    self.entries[rel] = {"sig": sig, **entry}
                    out[path] = self._info(self.entries[rel])
            self._save()
        return out

    @staticmethod
    def _info(entry: dict) -> VideoInfo | str:
        if "error" in entry:
            return entry["error"]
        return VideoInfo(entry["frames"], entry["fps"], entry["height"], entry["width"])

    def _save(self) -> None:
        # keep entries of files that still exist (other splits of the same root), drop the rest
        self.entries = {rel: e for rel, e in self.entries.items() if os.path.lexists(self.root / rel)}
        remove_stale_temps(self.path.parent)
        with replaced_atomically(self.path) as tmp:
            tmp.write_text(json.dumps({"version": INDEX_VERSION, "root": str(self.root), "entries": self.entries}))
