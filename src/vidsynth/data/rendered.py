"""``Rendered``: a dataset made by ``vidsynth render-dataset`` (``root/clips/<index>/video.mp4`` + ``clip.json``).

Each item carries the clip's caption; the class is the first object's ``label`` attribute (shape, colour,
material, size or motion) or the number of objects (``count``). The splits are the ones ``render-dataset`` wrote
into each clip's JSON (80 / 10 / 10 %). Reads the files only: the render extra is not needed to train on them."""

from __future__ import annotations

import json

from vidsynth.data.base import FileDataset, VideoEntry, register_dataset
from vidsynth.errors import EmptySplitError, UserError

# the class names per label, in the order of the scene vocabulary (kept here so that reading needs no render extra)
LABELS = {
    "shape": ("sphere", "cube", "cylinder", "cone", "torus", "plane"),
    "colour": ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow", "white", "black"),
    "material": ("rubber", "metal", "glass", "emissive"),
    "size": ("small", "medium", "large"),
    "motion": ("stays", "moves", "rolls", "bounces", "falls", "spins", "orbits"),
}
MAX_COUNT = 10


@register_dataset("rendered")
class Rendered(FileDataset):
    description = "clips made by `vidsynth render-dataset` (root=DIR), with captions; label=shape|colour|...|count"
    options = FileDataset.options + ("label",)

    def discover(self):
        label = self.cfg.label
        if label not in (*LABELS, "count"):
            raise UserError(f"label={label!r} is not a scene attribute: use one of {', '.join((*LABELS, 'count'))}")
        clips = self.root / "clips"
        if not (self.root / "dataset.json").is_file() or not clips.is_dir():
            raise UserError(f"{self.root} is not a rendered dataset (no dataset.json and clips/): make one with "
                            "`vidsynth render-dataset --out DIR`")
        names = [str(k) for k in range(1, MAX_COUNT + 1)] if label == "count" else list(LABELS[label])
        entries, self.captions = [], {}
        for folder in sorted(clips.glob("[0-9]*")):
            meta = json.loads((folder / "clip.json").read_text())
            if meta.get("split") != self.cfg.split:
                continue
            video = folder / "video.mp4"
            objects = meta["scene"]["objects"]
            value = len(objects) if label == "count" else objects[0][label]
            entries.append(VideoEntry(video, names.index(str(value)), str(meta["index"])))
            self.captions[video] = meta["caption"]
        if not entries:
            raise EmptySplitError(f"the {self.cfg.split} split of {self.root} has no complete clips yet")
        return names, entries


