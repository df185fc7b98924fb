"""Render speed of the render route on this machine: frames per second at 64x64 and 128x128 for 1, 10 and 100
objects (random CLEVR-like scenes, a point light: hard shadows), measured three ways:

- ``rgb``: the frame alone (Mitsuba scalar_rgb, direct lighting, ``--spp`` samples per pixel, one render per light);
- ``clip``: everything ``vidsynth render`` does per frame: physics, the frame, the ids/depth/flow passes and the
  metadata, i.e. ``render_scene`` time divided by its frames.

    python bench/render_speed.py                 # prints a table; --json FILE also writes it
    python bench/render_speed.py --frames 16 --spp 4 --objects 1,10,100 --res 64,128
"""

from __future__ import annotations

import argparse
import json
import random
import time

from vidsynth.render import scene as sg
from vidsynth.render.clip import render_scene
from vidsynth.render.mitsuba_route import MitsubaRenderer
from vidsynth.render.world import simulate


def scene_with(count: int, seed: int) -> sg.Scene:
    """``count`` objects with random looks, a third of them moving, one white point light."""
    rng = random.Random(seed)
    objects = []
    for i in range(count):
        motion = rng.choice(("stays", "stays", "moves"))
        objects.append(sg.Object(rng.choice(sg.SHAPES), rng.choice(sg.SIZES), rng.choice(tuple(sg.COLOURS)),
                                 rng.choice(("rubber", "metal")), motion,
                                 rng.choice(sg.DIRECTIONS) if motion == "moves" else None))
    return sg.Scene(tuple(objects), (sg.Light("point", "white", "left"),))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", default="1,10,100")
    parser.add_argument("--res", default="64,128")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--spp", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for count in map(int, args.objects.split(",")):
        scene = scene_with(count, 0)
        for res in map(int, args.res.split(",")):
            world, trajectory = simulate(scene, args.frames, 12.0, 0)
            renderer = MitsubaRenderer(world, trajectory, res, args.spp)
            renderer.frame(0)                              # warm-up
            start = time.perf_counter()
            for t in range(args.frames):
                renderer.frame(t)
            rgb = args.frames / (time.perf_counter() - start)
            start = time.perf_counter()
            render_scene(scene, args.frames, res, "mitsuba", 0, 12.0, args.spp)
            clip = args.frames / (time.perf_counter() - start)
            rows.append({"route": "mitsuba", "objects": count, "resolution": res, "rgb_fps": round(rgb, 1),
                         "clip_fps": round(clip, 1)})
            print(f"mitsuba  {count:4d} objects  {res:4d}px   rgb {rgb:7.1f} frames/s   clip {clip:7.1f} frames/s",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"frames": args.frames, "spp": args.spp, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
