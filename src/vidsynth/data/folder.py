"""``VideoFolder``: ``root/<class>/<video>``, where a video is a file PyAV decodes, a folder of frame images, or
one PNG/JPG horizontal strip of square frames. Labels come from the class folder names (sorted).

Captions (the WebVid layout): ``root/captions.csv`` (columns ``path,caption``) or ``root/captions.jsonl`` (lines
``{"path": ..., "caption": ...}``), paths relative to root. With one, every item carries its ``caption``; a video
without a caption is skipped and reported when the folder is indexed."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

from vidsynth.data.base import FileDataset, VideoEntry, register_dataset
from vidsynth.data.video_io import natural_key, video_kind
from vidsynth.errors import UserError

log = logging.getLogger("vidsynth.data")


def read_captions(root: Path) -> dict[Path, str] | None:
    """``root/captions.csv`` or ``root/captions.jsonl`` -> {video path: caption}; None when there is neither."""
    table, jsonl = root / "captions.csv", root / "captions.jsonl"
    if table.is_file() and jsonl.is_file():
        raise UserError(f"{root} has both captions.csv and captions.jsonl: keep one")
    rows = []
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"path", "caption"} <= set(reader.fieldnames or ()):
                raise UserError(f"{table}: expected a header with the columns path,caption, got {reader.fieldnames}")
            rows = [(r["path"], r["caption"], f"{table}:{n + 2}") for n, r in enumerate(reader)]
    elif jsonl.is_file():
        for n, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    record = json.loads(line)
                    rows.append((record["path"], record["caption"], f"{jsonl}:{n + 1}"))
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise UserError(f"{jsonl}:{n + 1}: expected {{\"path\": ..., \"caption\": ...}}") from None
    else:
        return None
    captions = {}
    for path, caption, where in rows:
        if not str(caption).strip():
            raise UserError(f"{where}: the caption of {path} is empty")
        captions[(root / path).resolve()] = str(caption).strip()
    return captions


def group_key(path: Path, rule: str) -> str:
    """The split unit of a video: its own stem ('file'), the pair 2k/2k+1 of numbered mirror copies
    ('mirror_pairs', the Weizmann/MoCoGAN layout), or the first capture group of a regex."""
    if rule == "file":
        return path.stem
    if rule == "mirror_pairs":
        if not path.stem.isdigit():
            raise UserError(f"group=mirror_pairs needs numbered files, got {path.name}")
        return str(int(path.stem) // 2)
    match = re.search(rule, path.name)
    return match.group(1) if match and match.groups() else path.stem


def list_videos(folder: Path) -> list[Path]:
    """Video files, frame folders and strips directly inside ``folder`` (hidden files ignored)."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".") and video_kind(p)),
                  key=lambda p: natural_key(p.name))


@register_dataset("videofolder")
class VideoFolder(FileDataset):
    description = ("any folder of videos: root/<class>/<files, frame folders or image strips>; "
                   "train/val/test carved by val_fraction/test_fraction without splitting a group")
    options = FileDataset.options + ("val_fraction", "test_fraction", "group")

    def discover(self):
        if self.cfg.group not in ("file", "mirror_pairs"):
            try:
                if re.compile(self.cfg.group).groups != 1:
                    raise UserError(f"group={self.cfg.group!r} needs exactly one capture group, e.g. '_g(\\d+)_'")
            except re.error as e:
                raise UserError(f"group={self.cfg.group!r} is not a valid regex: {e}") from None
        # subfolders of root are always classes (a class folder of image strips looks like a frame folder)
        class_dirs = sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                            key=lambda p: natural_key(p.name))
        if not class_dirs:  # a flat folder of video files is one class
            class_dirs = [self.root]
        names, entries = [], []
        for d in class_dirs:
            videos = list_videos(d)
            if videos:
                entries += [VideoEntry(p, len(names), group_key(p, self.cfg.group)) for p in videos]
                names.append(d.name)
        if not entries:
            raise UserError(f"no videos found in {self.root}: expected root/<class>/<video files>")
        captions = read_captions(self.root)
        if captions is not None:
            without = [e.path for e in entries if e.path.resolve() not in captions]
            if without:
                shown = ", ".join(str(p.relative_to(self.root)) for p in without[:10])
                log.warning("skipped %d of %d videos in %s that have no caption in its captions file: %s%s",
                            len(without), len(entries), self.root, shown, " ..." if len(without) > 10 else "")
            entries = [e for e in entries if e.path.resolve() in captions]
            self.captions = {e.path: captions[e.path.resolve()] for e in entries}
            if not entries:
                raise UserError(f"no video in {self.root} has a caption in its captions file: check its paths "
                                "(relative to root, e.g. walk/0001.mp4)")
        return names, self.carve(entries, ("val", "test"))
