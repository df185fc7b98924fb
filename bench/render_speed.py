"""Render speed of both render routes on this machine, in one run:

1. frames per second at 64x64 and 128x128 for 1, 10 and 100 objects (random CLEVR-like scenes, one point light:
   hard shadows), for each route measured two ways:
   - ``frame``: the frame alone (Mitsuba: scalar_rgb, direct lighting, ``--spp`` samples per pixel, one render per
     light; octree: one primary and one shadow ray per pixel);
   - ``clip``: everything ``vidsynth render`` does per frame: physics, the frame, the ids/depth/flow passes and the
     metadata, i.e. ``render_scene`` time divided by its frames;
2. the scene octree's speed-up over brute force at 10, 100 and 1,000 objects: the primary rays of a 64x64 frame
   cast through the scene octree (each ray tests the instances listed in the scene leaves it crosses) against the
   same cast testing every instance for every ray (the object-level traversal is the same in both).

    python bench/render_speed.py                 # prints the tables; --json FILE also writes them
    python bench/render_speed.py --frames 16 --spp 4 --objects 1,10,100 --res 64,128 --brute 10,100,1000
"""

from __future__ import annotations

import argparse
import json
import random
import time

from vidsynth.render import scene as sg
from vidsynth.render.clip import render_scene
import torch

from vidsynth.render.mitsuba_route import MitsubaRenderer
from vidsynth.render.octree import OctreeRenderer
from vidsynth.render.world import simulate

RENDERERS = {"mitsuba": MitsubaRenderer, "octree": OctreeRenderer}


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
    parser.add_argument("--brute", default="10,100,1000")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for count in map(int, args.objects.split(",")):
        scene = scene_with(count, 0)
        for res in map(int, args.res.split(",")):
            world, trajectory = simulate(scene, args.frames, 12.0, 0)
            for route, renderer_class in RENDERERS.items():
                renderer = renderer_class(world, trajectory, res, args.spp)
                renderer.frame(0)                          # warm-up (and the octree's voxelisation)
                start = time.perf_counter()
                for t in range(args.frames):
                    renderer.frame(t)
                frame = args.frames / (time.perf_counter() - start)
                start = time.perf_counter()
                render_scene(scene, args.frames, res, route, 0, 12.0, args.spp)
                clip = args.frames / (time.perf_counter() - start)
                rows.append({"route": route, "objects": count, "resolution": res, "frame_fps": round(frame, 1),
                             "clip_fps": round(clip, 1)})
                print(f"{route:8s} {count:5d} objects {res:4d}px   frame {frame:7.1f} frames/s   "
                      f"clip {clip:7.1f} frames/s", flush=True)
    brute = []
    for count in map(int, args.brute.split(",")):
        world, trajectory = simulate(scene_with(count, 0), 1, 12.0, 0)
        renderer = OctreeRenderer(world, trajectory, 64)
        scene = renderer.instances(0)
        origin, direction = (torch.from_numpy(a.reshape(-1, 3)).double() for a in trajectory.cameras[0].rays(64, 64))
        far = torch.full((len(origin),), 1e9, dtype=torch.float64)
        timings = {}
        for name, candidates in (("octree", None), ("brute", scene.all_pairs(len(origin)))):
            start = time.perf_counter()
            result = scene.cast(origin, direction, far, candidates=candidates)
            timings[name] = time.perf_counter() - start
            timings[name + "_result"] = result
        same = bool(torch.equal(timings["octree_result"][1], timings["brute_result"][1]))
        brute.append({"objects": count, "octree_ms": round(1000 * timings["octree"], 1),
                      "brute_ms": round(1000 * timings["brute"], 1),
                      "speedup": round(timings["brute"] / timings["octree"], 1), "identical_hits": same})
        print(f"scene octree {count:5d} objects: {1000 * timings['octree']:8.1f} ms, brute force "
              f"{1000 * timings['brute']:8.1f} ms, speed-up {timings['brute'] / timings['octree']:6.1f}x, "
              f"identical hits: {same}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"frames": args.frames, "spp": args.spp, "rows": rows, "brute_force": brute}, f, indent=2)


if __name__ == "__main__":
    main()
