"""The octree route: its traversal finds exactly the leaf a brute-force test of every leaf finds, its scene octree
exactly the hits of testing every instance, and its frames agree with two references, embree (through trimesh)
and Mitsuba, on what each pixel sees and where the shadows fall."""

from __future__ import annotations

import copy
import math
import random

import numpy as np
import pytest
import torch
import trimesh

from vidsynth.render import language, scene as sg
from vidsynth.render.mitsuba_route import MitsubaRenderer
from vidsynth.render.octree import OctreeRenderer, geometry_for, traverse
from vidsynth.render.world import body_for, simulate

RES = 64
SCENE = ("a large red sphere moves left. a blue cube right of the sphere. a large yellow torus behind the cube. "
         "a green cone in front of the sphere. a small purple cylinder stays on the cube. "
         "a white point light from the left.")


@pytest.mark.parametrize("shape", sg.SHAPES)
def test_traversal_hits_what_testing_every_leaf_hits(shape):
    geometry = geometry_for(body_for(sg.Object(shape)))
    size = geometry.octree.skip.shape[-1]
    g = torch.Generator().manual_seed(0)
    origin = torch.rand(1500, 3, generator=g, dtype=torch.float64) * (size + 20) - 10
    direction = torch.rand(1500, 3, generator=g, dtype=torch.float64) * size - origin
    far = torch.full((1500,), 10.0, dtype=torch.float64)
    t_hit, cell = traverse(geometry.octree.skip[None], origin, direction, torch.zeros(1500, dtype=torch.float64), far)
    leaves = torch.nonzero(geometry.octree.bitmaps[-1]).double()
    lo = (leaves[None] - origin[:, None]) * (1 / direction[:, None])
    hi = (leaves[None] + 1 - origin[:, None]) * (1 / direction[:, None])
    t_in = torch.minimum(lo, hi).amax(-1).clamp(min=0)
    t_in = torch.where(t_in < torch.maximum(lo, hi).amin(-1), t_in, torch.full_like(t_in, math.inf))
    best_t, best = t_in.min(1)
    assert torch.isfinite(best_t).sum() > 300
    assert torch.equal(torch.isfinite(t_hit), torch.isfinite(best_t))
    hit = torch.isfinite(t_hit)
    assert torch.equal(cell[hit], leaves[best[hit]].long())
    torch.testing.assert_close(t_hit[hit], best_t[hit], rtol=0, atol=1e-9)


def test_the_scene_octree_finds_the_hits_of_testing_every_instance():
    rng_scene = sg.random_scene(random.Random(1), 6, 6)
    objects = tuple(sg.Object(o.shape, o.size, o.colour) for o in rng_scene.objects) * 5   # 30 objects
    world, trajectory = simulate(sg.Scene(objects), 1, 12.0, 0)
    renderer = OctreeRenderer(world, trajectory, RES)
    scene = renderer.instances(0)
    origin, direction = (torch.from_numpy(a.reshape(-1, 3)) for a in trajectory.cameras[0].rays(RES, RES))
    far = torch.full((len(origin),), 1e9, dtype=torch.float64)
    fast, brute = scene.cast(origin, direction, far), scene.cast(origin, direction, far, None,
                                                                  scene.all_pairs(len(origin)))
    assert (fast[1] >= 0).sum() > 200
    for a, b in zip(fast, brute):
        assert torch.equal(a, b)


def posed_meshes(world, trajectory, t: int) -> list:
    """The objects' meshes posed at frame t."""
    meshes = []
    for i, body in enumerate(world.bodies):
        mesh = body.mesh()
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = trajectory.rotation(t, i), trajectory.positions[t, i]
        meshes.append(mesh.apply_transform(pose))
    return meshes


def embree_ids(world, trajectory, t: int) -> np.ndarray:
    """Object ids per pixel from embree (trimesh's ray intersector) on the objects' meshes, posed at frame t."""
    meshes = posed_meshes(world, trajectory, t)
    owners = [np.full(len(mesh.faces), i + 1) for i, mesh in enumerate(meshes)]
    intersector = trimesh.ray.ray_pyembree.RayMeshIntersector(trimesh.util.concatenate(meshes))
    origin, direction = trajectory.cameras[t].rays(RES, RES)
    faces = intersector.intersects_first(origin.reshape(-1, 3), direction.reshape(-1, 3))
    return np.where(faces >= 0, np.concatenate(owners)[faces], 0).reshape(RES, RES)


def iou(a, b, k):
    union = ((a == k) | (b == k)).sum()
    return ((a == k) & (b == k)).sum() / union if union else 1.0


def test_what_each_pixel_sees_agrees_with_embree_and_mitsuba():
    # Objects span 8-20 pixels here and leaves are 1/32 of an object, so silhouettes may differ by about one pixel
    # along their edge (Mitsuba also jitters its one sample in the pixel): for an object of ~100 pixels that bounds
    # the IoU near 0.75, the threshold per object; most objects agree much better (the mean threshold 0.85).
    world, trajectory = simulate(language.parse(SCENE), 3, 12.0, 0)
    octree = OctreeRenderer(world, trajectory, RES)
    mitsuba = MitsubaRenderer(world, trajectory, RES, spp=4)
    for t in (0, 2):
        octree.frame(t)
        mitsuba.frame(t)
        ours = octree.passes(t)[1]
        references = {"embree": embree_ids(world, trajectory, t), "mitsuba": mitsuba.passes(t)[1]}
        for name, ids in references.items():
            scores = [iou(ours, ids, k) for k in range(1, len(world.bodies) + 1) if (ids == k).sum() >= 30]
            assert len(scores) >= 4 and min(scores) > 0.75 and np.mean(scores) > 0.85, (name, t, scores)


def embree_shadow(world, trajectory, t: int, ids: np.ndarray) -> np.ndarray:
    """Ground pixels (ids 0, a ray that meets z = 0) from which embree finds an object between them and the light."""
    meshes = posed_meshes(world, trajectory, t)
    intersector = trimesh.ray.ray_pyembree.RayMeshIntersector(trimesh.util.concatenate(meshes))
    origin, direction = (a.reshape(-1, 3) for a in trajectory.cameras[t].rays(RES, RES))
    ground = (ids.reshape(-1) == 0) & (direction[:, 2] < 0)
    points = origin[ground] + direction[ground] * (-origin[ground, 2] / direction[ground, 2])[:, None]
    to_light = world.lights[0][1] - points
    blocked = intersector.intersects_any(points + 1e-4 * to_light, to_light / np.linalg.norm(to_light, axis=1,
                                                                                               keepdims=True))
    shadow = np.zeros(RES * RES, dtype=bool)
    shadow[np.flatnonzero(ground)[blocked]] = True
    return shadow.reshape(RES, RES)


def shadow_mask(renderer_class, world, trajectory, t, **kwargs):
    """Ground pixels darker with the objects than without them (all objects moved far below the ground)."""
    gone = copy.deepcopy(trajectory)
    gone.positions[:, :, 2] = -100.0
    with_objects = renderer_class(world, trajectory, RES, **kwargs)
    luminance = with_objects.frame(t) @ np.array([0.2126, 0.7152, 0.0722])
    empty = renderer_class(world, gone, RES, **kwargs).frame(t) @ np.array([0.2126, 0.7152, 0.0722])
    _, ids = with_objects.passes(t)
    ground = ids == 0
    for axis in (0, 1):
        for shift in (-1, 1):
            ground &= np.roll(ids, shift, axis) == 0
    return (luminance < 0.7 * empty) & ground, (luminance < 0.97 * empty) & (luminance > 0.3 * empty) & ground


def test_shadows_agree_with_mitsuba_and_area_lights_soften_them():
    # Hard shadows: the same light, the same objects; edges differ by the voxelisation and Mitsuba's pixel jitter,
    # about one pixel, which for shadows of a few dozen pixels at 64x64 bounds the IoU near 0.75 (threshold 0.7).
    world, trajectory = simulate(language.parse(SCENE), 1, 12.0, 0)
    ours, _ = shadow_mask(OctreeRenderer, world, trajectory, 0)
    theirs, _ = shadow_mask(MitsubaRenderer, world, trajectory, 0, spp=8)
    assert theirs.sum() > 30
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.7
    # and embree's shadow rays toward the same light, from the ground the octree route sees (edges excluded alike)
    ids = OctreeRenderer(world, trajectory, RES).passes(0)[1]
    reference = embree_shadow(world, trajectory, 0, ids)
    inside = np.ones_like(ours)
    for axis in (0, 1):
        for shift in (-1, 1):
            inside &= np.roll(ids, shift, axis) == 0
    reference &= inside & (ids == 0)
    assert reference.sum() > 30
    assert (ours & reference).sum() / (ours | reference).sum() > 0.7
    # an area light: a penumbra (ground partly lit) much larger than a point light's
    soft_world, soft_trajectory = simulate(language.parse(SCENE.replace("point", "area")), 1, 12.0, 0)
    _, hard_penumbra = shadow_mask(OctreeRenderer, world, trajectory, 0)
    _, soft_penumbra = shadow_mask(OctreeRenderer, soft_world, soft_trajectory, 0, area_samples=16)
    assert soft_penumbra.sum() > 2 * max(hard_penumbra.sum(), 10)
