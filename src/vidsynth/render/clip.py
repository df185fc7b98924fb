"""One rendered clip: frames, passes (depth, object ids, optical flow) and Kubric-style metadata, from a scene graph.

    clip = render_scene(parse("a red sphere bounces."), frames=16, resolution=64)
    clip.video           uint8 [T, H, W, 3]
    clip.depth           float32 [T, H, W], distance along the camera's axis, inf where nothing is hit
    clip.ids             uint16 [T, H, W], 0 = ground and background, i + 1 = object i
    clip.flow            float32 [T, H, W, 2], forward flow (x, y) in pixels from frame t to t + 1 (zero at the end)
    clip.metadata        scene, caption, seed, fps, camera per frame, per object per frame: position, quaternion,
                         velocity, 2D box, visible pixels; events (collisions, with frame and objects)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidsynth.errors import UserError
from vidsynth.render import language, scene as sg
from vidsynth.render.world import Trajectory, simulate

ROUTES = ("mitsuba", "octree")
PASSES = ("depth", "ids", "flow")
FAR = 1e4                   # m: where a ray that hits nothing is taken to end, for the flow of the background


@dataclass
class Clip:
    video: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    flow: np.ndarray
    metadata: dict


def _renderer(route: str, world, trajectory, resolution: int, spp: int):
    if route == "mitsuba":
        from vidsynth.render.mitsuba_route import MitsubaRenderer
        return MitsubaRenderer(world, trajectory, resolution, spp)
    if route == "octree":
        from vidsynth.render.octree import OctreeRenderer
        return OctreeRenderer(world, trajectory, resolution)
    raise UserError(f"route={route!r} is not a render route: use one of {', '.join(ROUTES)}")


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB -> uint8 sRGB (the standard piecewise curve)."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.rint(srgb * 255).astype(np.uint8)


def render_scene(scene: sg.Scene, frames: int = 16, resolution: int = 64, route: str = "mitsuba", seed: int = 0,
                 fps: float = 12.0, spp: int = 4) -> Clip:
    """Simulate and render ``scene``; deterministic for the same arguments."""
    from vidsynth.render import require

    require()
    if frames < 1 or resolution < 8:
        raise UserError(f"frames={frames}, resolution={resolution}: need at least 1 frame of 8x8 pixels")
    world, trajectory = simulate(scene, frames, fps, seed)
    renderer = _renderer(route, world, trajectory, resolution, spp)
    video, positions, ids = [], [], []
    for t in range(frames):
        video.append(to_srgb(renderer.frame(t, seed=(seed * 100003 + t) % 2**32)))
        position, frame_ids = renderer.passes(t)
        positions.append(position)
        ids.append(frame_ids)
    positions, ids = np.stack(positions), np.stack(ids).astype(np.uint16)
    depth = np.stack([_depth(positions[t], trajectory, t) for t in range(frames)])
    flow = np.stack([forward_flow(positions[t], ids[t], trajectory, t) for t in range(frames)])
    return Clip(np.stack(video), depth, ids, flow, _metadata(scene, world, trajectory, ids, seed, resolution))


def _depth(position: np.ndarray, trajectory: Trajectory, t: int) -> np.ndarray:
    camera = trajectory.cameras[t]
    _, _, forward = camera.basis()
    depth = (position - camera.origin) @ forward
    return np.where(np.isnan(depth), np.inf, depth).astype(np.float32)


def forward_flow(position: np.ndarray, ids: np.ndarray, trajectory: Trajectory, t: int) -> np.ndarray:
    """Where each pixel's surface point is at frame t + 1, minus where it is at t, in pixels [H, W, 2]: the point
    is carried by its object's rigid motion (ground: static; background: at infinity, moving with the camera)."""
    height, width = ids.shape
    if t + 1 >= trajectory.num_frames:
        return np.zeros((height, width, 2), np.float32)
    now, nxt = trajectory.cameras[t], trajectory.cameras[t + 1]
    miss = np.isnan(position[..., 0])
    _, directions = now.rays(width, height)
    start = np.where(miss[..., None], now.origin + FAR * directions, position)
    end = np.where(miss[..., None], nxt.origin + FAR * directions, position)
    for k in np.unique(ids[~miss]):
        if k == 0:
            continue
        i, mask = int(k) - 1, (ids == k) & ~miss
        local = (position[mask] - trajectory.positions[t, i]) @ trajectory.rotation(t, i)
        end[mask] = local @ trajectory.rotation(t + 1, i).T + trajectory.positions[t + 1, i]
    before, _ = now.project(start, width, height)
    after, _ = nxt.project(end, width, height)
    return (after - before).astype(np.float32)


def _metadata(scene, world, trajectory, ids, seed, resolution) -> dict:
    objects = []
    for i, obj in enumerate(scene.objects):
        boxes, visible = [], []
        for t in range(trajectory.num_frames):
            ys, xs = np.nonzero(ids[t] == i + 1)
            visible.append(int(len(xs)))
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else None)
        objects.append({
            "description": sg.describe(obj), "shape": obj.shape, "size": obj.size, "colour": obj.colour,
            "material": obj.material, "motion": obj.motion, "size_metres": world.bodies[i].half,
            "positions": np.round(trajectory.positions[:, i], 5).tolist(),
            "quaternions": np.round(trajectory.quaternions[:, i], 6).tolist(),
            "velocities": np.round(trajectory.velocities[:, i], 5).tolist(),
            "boxes": boxes, "visible_pixels": visible,
        })
    return {
        "format_version": sg.FORMAT_VERSION, "caption": language.caption(scene), "scene": sg.to_dict(scene),
        "seed": seed, "fps": trajectory.fps, "num_frames": trajectory.num_frames, "resolution": resolution,
        "box_format": "x0, y0, x1, y1 in pixels (x1, y1 exclusive); null where the object is not visible",
        "camera": [{"origin": np.round(c.origin, 5).tolist(), "target": np.round(c.target, 5).tolist(),
                    "fov": c.fov} for c in trajectory.cameras],
        "objects": objects, "events": trajectory.events,
    }


def write_passes(path: str | Path, clip: Clip, passes=PASSES) -> list[Path]:
    """``<stem>.passes.npz`` (the exact arrays, loadable without pickle) and one mp4 per pass to look at, beside
    ``path``."""
    from vidsynth.io import replaced_atomically, write_video

    path = Path(path)
    stem = path.with_suffix("")
    arrays = {name: getattr(clip, name) for name in passes}
    written = []
    with replaced_atomically(stem.with_suffix(".passes.npz")) as tmp:
        np.savez_compressed(tmp, **arrays)
    written.append(stem.with_suffix(".passes.npz"))
    fps = clip.metadata["fps"]
    for name in passes:
        out = stem.with_name(f"{stem.name}.{name}.mp4")
        write_video(out, visualise(name, arrays[name]), fps=fps)
        written.append(out)
    return written


def visualise(name: str, array: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W, 3] pictures of a pass: depth as grey (near = bright), ids as fixed colours, flow as HSV
    (hue = direction, brightness = speed)."""
    if name == "depth":
        finite = np.isfinite(array)
        lo, hi = (np.percentile(array[finite], (1, 99)) if finite.any() else (0.0, 1.0))
        grey = np.where(finite, 1 - (array - lo) / max(hi - lo, 1e-6), 0.0)
        return np.repeat((np.clip(grey, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)
    if name == "ids":
        palette = np.random.default_rng(0).integers(40, 256, (int(array.max()) + 1, 3)).astype(np.uint8)
        palette[0] = 0
        return palette[array]
    magnitude = np.linalg.norm(array, axis=-1)
    hue = (np.arctan2(array[..., 1], array[..., 0]) / (2 * np.pi)) % 1.0
    value = np.clip(magnitude / max(np.percentile(magnitude, 99), 1e-6), 0, 1)
    return _hsv_to_rgb(hue, np.ones_like(hue), value)


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(table):
        mask = i == k
        rgb[mask] = np.stack([r[mask], g[mask], b[mask]], -1)
    return (rgb * 255).astype(np.uint8)
