"""``render-dataset``: random scenes rendered into a captioned dataset with exact ground truth, resumable.

Layout of ``DIR``:

    dataset.json                    how it was made (n, frames, resolution, seed, route, fps, spp, passes)
    clips/000123/video.mp4          the clip
    clips/000123/clip.json          caption, scene graph, split, metadata (per object per frame: position,
                                    quaternion, velocity, 2D box, visible pixels), events
    clips/000123/video.passes.npz   depth, ids, flow, and video.<pass>.mp4 to look at (with --passes)

Clip i's scene and seed come from (seed, i) alone, so a killed run continues where it stopped and makes what an
uninterrupted run makes. A clip is written into ``clips/.000123.partial/`` and renamed to ``clips/000123/`` when
complete, so a clip folder is either complete or absent; partial folders are removed when a run starts. Splits are
fixed per clip (80% train, 10% val, 10% test by a hash of the index), written in its JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from vidsynth.errors import UserError
from vidsynth.io import replaced_atomically, write_video
from vidsynth.render.clip import PASSES, render_scene, write_passes
from vidsynth.render.scene import random_scene

SPLIT_FRACTIONS = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def clip_split(seed: int, index: int) -> str:
    u = random.Random(f"split-{seed}-{index}").random()
    edge = 0.0
    for name, fraction in SPLIT_FRACTIONS:
        edge += fraction
        if u < edge:
            return name
    return SPLIT_FRACTIONS[-1][0]


def clip_seed(seed: int, index: int) -> int:
    return random.Random(f"clip-{seed}-{index}").getrandbits(31)


def render_dataset(out: str | Path, n: int, frames: int = 16, resolution: int = 64, seed: int = 0,
                   route: str = "mitsuba", fps: float = 12.0, spp: int = 4, passes: bool = False,
                   max_objects: int = 6, progress: bool = True) -> dict:
    """Render clips 0..n-1 into ``out`` (those already complete are kept). Returns {"rendered", "kept"}.
    A folder made with other settings is refused in one line (a dataset is one set of settings)."""
    from tqdm import tqdm

    out = Path(out)
    settings = {"format_version": 1, "frames": frames, "resolution": resolution, "seed": seed, "route": route,
                "fps": fps, "spp": spp, "passes": passes, "max_objects": max_objects}
    manifest = out / "dataset.json"
    clips = out / "clips"
    if manifest.exists():
        made = json.loads(manifest.read_text())
        differ = {k: (made.get(k), v) for k, v in settings.items() if made.get(k) != v}
        if differ:
            raise UserError(f"{out} holds a dataset made with other settings ("
                            + ", ".join(f"{k}={a} there, {b} now" for k, (a, b) in differ.items())
                            + "): use another --out or the same settings")
    clips.mkdir(parents=True, exist_ok=True)
    for partial in clips.glob(".*.partial"):
        shutil.rmtree(partial)
    with replaced_atomically(manifest) as tmp:
        tmp.write_text(json.dumps({**settings, "n": max(n, _count(manifest))}, indent=2))
    todo = [i for i in range(n) if not (clips / f"{i:06d}").is_dir()]
    for i in tqdm(todo, desc="rendering clips", unit="clip", disable=not progress or None):
        rng = random.Random(clip_seed(seed, i))
        scene = random_scene(rng, 1, max_objects)
        clip = render_scene(scene, frames, resolution, route, clip_seed(seed, i), fps, spp)
        partial = clips / f".{i:06d}.partial"
        partial.mkdir()
        write_video(partial / "video.mp4", clip.video, fps=fps)
        if passes:
            write_passes(partial / "video.mp4", clip, PASSES)
        (partial / "clip.json").write_text(json.dumps({"index": i, "split": clip_split(seed, i), **clip.metadata}))
        os.rename(partial, clips / f"{i:06d}")
    return {"rendered": len(todo), "kept": n - len(todo)}


def _count(manifest: Path) -> int:
    return json.loads(manifest.read_text()).get("n", 0) if manifest.exists() else 0
