"""The render-based route: a ``World`` and its ``Trajectory`` rendered by Mitsuba 3 (its ``scalar_rgb`` variant, the
one that runs on any CPU), frame by frame, with the scene's parameters updated in place (``mi.traverse``): object
poses, the camera. Light and shadow come from the renderer at every frame: hard shadows from point and sun lights,
soft ones from area lights.

Passes from Mitsuba's ``aov`` integrator at one sample per pixel: depth (along the camera's axis), object ids
(0 = ground and background, i + 1 = object i), and forward optical flow (frame t -> t + 1) from each pixel's world
position carried by its object's known motion and projected with the next frame's camera.
"""

from __future__ import annotations

import math

import numpy as np

from vidsynth.errors import UserError
from vidsynth.render.world import AREA_LIGHT_SIZE, FILL, IRRADIANCE, Camera, Trajectory, World



def _mitsuba():
    try:
        import mitsuba as mi
    except ImportError:
        raise UserError("the mitsuba route needs Mitsuba 3: pip install 'vidsynth[render]'") from None
    if mi.variant() != "scalar_rgb":
        mi.set_variant("scalar_rgb")
    return mi


def _look_at(mi, camera: Camera):
    return mi.ScalarTransform4f().look_at(origin=camera.origin.tolist(), target=camera.target.tolist(),
                                          up=camera.up.tolist())


def _material(obj, colour):
    rgb = {"type": "rgb", "value": list(colour)}
    diffuse = {"type": "diffuse", "reflectance": rgb}
    if obj.material == "metal":
        # half diffuse, half a rough mirror tinted by the colour: the colour stays visible with a direct integrator
        return {"type": "blendbsdf", "weight": 0.5, "a": diffuse,
                "b": {"type": "roughconductor", "alpha": 0.15, "specular_reflectance": rgb}}
    if obj.material == "glass":
        return {"type": "blendbsdf", "weight": 0.6, "a": {"type": "diffuse", "reflectance": {
            "type": "rgb", "value": [0.35 * c for c in colour]}}, "b": {"type": "roughdielectric", "alpha": 0.05}}
    return diffuse


class MitsubaRenderer:
    """Builds the Mitsuba scenes once; ``frame(t)`` poses them at frame t and renders, ``passes(t)`` gives the
    frame's world positions and object ids. ``spp`` samples per pixel.

    Light: the scene's lights (point, sun: hard shadows; area: soft ones) and a dim fill from the camera's starting
    side, so that shadowed sides are dark, not black; the background colour is seen where rays miss (a constant
    emitter that is never sampled for lighting, so it adds no noise). Ids come from a second scene with the same
    shapes, each emitting its id and nothing else, rendered at one sample per pixel: exact integers, no lookup of
    Mitsuba's internal shape order."""

    def __init__(self, world: World, trajectory: Trajectory, resolution: int, spp: int = 8):
        self.mi = mi = _mitsuba()
        self.world, self.trajectory, self.resolution, self.spp = world, trajectory, resolution, spp
        self.meshes = {i: np.asarray(body.mesh().vertices, dtype=np.float32)
                       for i, body in enumerate(world.bodies) if body.shape != "sphere"}
        camera = trajectory.cameras[0]
        lights = self._lights(camera)
        self.scene = self._scene(self._shapes(ids=False), lights, camera, spp)
        self.id_scene = self._scene(self._shapes(ids=True), {}, camera, 1)
        self.params = [mi.traverse(self.scene), mi.traverse(self.id_scene)]
        self.light_weights = [f"{name}.sampling_weight" if name.startswith("fill") or "emitter" not in light
                              else f"{name}.emitter.sampling_weight" for name, light in lights.items()
                              if name != "background"]
        self.aov = mi.load_dict({"type": "aov", "aovs": "dd:depth,pos:position", "ids": {"type": "direct"}})

    def _shapes(self, ids: bool) -> dict:
        from vidsynth.render import scene as sg

        mi, world = self.mi, self.world
        black = {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0, 0, 0]}}
        ground = black if ids else {"type": "diffuse", "reflectance": {"type": "rgb", "value": world.ground.tolist()}}
        shapes = {"ground": {"type": "rectangle", "bsdf": ground,
                             "to_world": mi.ScalarTransform4f().scale([40 * world.area / 2.5] * 3)}}
        for i, (obj, body) in enumerate(zip(world.scene.objects, world.bodies)):
            colour = sg.COLOURS[obj.colour]
            spec = {"bsdf": black if ids else _material(obj, colour)}
            if ids:
                spec["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": [i + 1, 0, 0]}}
            elif obj.material == "emissive":
                # glows where seen, lights nothing else (a sampled emitter per object would add noise everywhere)
                spec["emitter"] = {"type": "area", "radiance": {"type": "rgb", "value": [2.5 * c for c in colour]},
                                   "sampling_weight": 0.0}
            if obj.shape == "sphere":
                shapes[f"o{i}"] = {"type": "sphere", **spec}     # unit sphere, scaled by to_world per frame
            else:
                shapes[f"o{i}"] = self._mesh(f"o{i}", body.mesh(), spec)
        return shapes

    def _lights(self, camera: Camera) -> dict:
        mi, world = self.mi, self.world
        rgb = lambda v: {"type": "rgb", "value": [float(x) for x in v]}  # noqa: E731
        per_light = IRRADIANCE / math.sqrt(len(world.lights))
        view = camera.origin - camera.target
        lights = {
            "background": {"type": "constant", "radiance": rgb(world.background), "sampling_weight": 0.0},
            "fill": {"type": "directional", "direction": (-view / np.linalg.norm(view)).tolist(),
                     "irradiance": rgb([FILL * IRRADIANCE] * 3)},
        }
        for k, (kind, position, colour) in enumerate(world.lights):
            d2 = float(position @ position)
            if kind == "point":
                lights[f"light{k}"] = {"type": "point", "position": position.tolist(),
                                       "intensity": rgb(colour * per_light * d2)}
            elif kind == "sun":
                lights[f"light{k}"] = {"type": "directional", "direction": (-position).tolist(),
                                       "irradiance": rgb(colour * per_light)}
            else:
                side = AREA_LIGHT_SIZE * world.area / 2.5
                lights[f"light{k}"] = {
                    "type": "rectangle",
                    "to_world": mi.ScalarTransform4f().look_at(origin=position.tolist(), target=[0, 0, 0],
                                                              up=[0, 0, 1]).scale([side / 2, side / 2, 1]),
                    "emitter": {"type": "area", "radiance": rgb(colour * per_light * d2 / side ** 2)},
                    "bsdf": {"type": "diffuse", "reflectance": rgb([0, 0, 0])}}
        return lights

    def _mesh(self, name: str, mesh, spec: dict):
        """A Mitsuba mesh from a trimesh, with the BSDF (and emitter) of ``spec``; its vertices are set per frame."""
        mi = self.mi
        props = mi.Properties()
        for key in ("bsdf", "emitter"):
            if key in spec:
                props[key] = mi.load_dict(spec[key])
        m = mi.Mesh(name, len(mesh.vertices), len(mesh.faces), props=props, has_vertex_normals=False)
        p = mi.traverse(m)
        p["vertex_positions"] = type(p["vertex_positions"])(np.asarray(mesh.vertices, dtype=np.float32).ravel())
        p["faces"] = type(p["faces"])(np.asarray(mesh.faces, dtype=np.uint32).ravel())
        p.update()
        return m

    def _scene(self, shapes: dict, lights: dict, camera: Camera, spp: int):
        mi = self.mi
        return mi.load_dict({
            "type": "scene",
            # emitter sampling only: the never-sampled background adds its colour where rays miss, no noise
            "integrator": {"type": "direct", "emitter_samples": 1, "bsdf_samples": 0},
            "sensor": {"type": "perspective", "fov": camera.fov, "fov_axis": "x", "to_world": _look_at(mi, camera),
                       "film": {"type": "hdrfilm", "width": self.resolution, "height": self.resolution,
                                "pixel_format": "rgb", "rfilter": {"type": "box"}},
                       "sampler": {"type": "independent", "sample_count": spp}},
            **lights, **shapes})

    def _pose(self, t: int) -> None:
        mi, traj = self.mi, self.trajectory
        for params in self.params:
            for i in range(len(self.world.bodies)):
                rotation, position = traj.rotation(t, i), traj.positions[t, i]
                if i in self.meshes:
                    key = f"o{i}.vertex_positions"
                    moved = self.meshes[i] @ rotation.T.astype(np.float32) + position.astype(np.float32)
                    params[key] = type(params[key])(moved.ravel())
                else:
                    params[f"o{i}.to_world"] = mi.ScalarTransform4f().translate(position.tolist()).scale(
                        self.world.bodies[i].half)
            params["sensor.to_world"] = _look_at(mi, traj.cameras[t])
            params.update()

    def frame(self, t: int, seed: int = 0) -> np.ndarray:
        """Frame t as linear RGB float32 [H, W, 3]: one render per light, summed. Mitsuba picks one light at random
        per sample, which speckles the image when there are several; one light per render has no such noise."""
        self._pose(t)
        params, image = self.params[0], 0.0
        for key in self.light_weights:
            for other in self.light_weights:
                params[other] = 1.0 if other == key else 0.0
            params.update()
            image = image + np.array(self.mi.render(self.scene, spp=self.spp, seed=seed), dtype=np.float32)
        return image

    def passes(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(world position [H, W, 3], NaN where a ray hits nothing; object id [H, W]: 0 = ground or background,
        i + 1 = object i) of frame t at one sample per pixel. Call after ``frame(t)``, which poses the scenes."""
        out = np.array(self.mi.render(self.id_scene, spp=1, seed=0, integrator=self.aov), dtype=np.float32)
        ids, hit, position = np.rint(out[..., 0]).astype(np.int64), out[..., 3] > 0, out[..., 4:7]
        position[~hit] = np.nan
        return position, ids
