"""The Mitsuba route: deterministic frames, a shadow that is really there and moves with its object, and passes
(ids, depth, flow) that agree with the known geometry and motion."""

from __future__ import annotations

import copy

import numpy as np

from vidsynth.render import language
from vidsynth.render.clip import render_scene
from vidsynth.render.mitsuba_route import MitsubaRenderer
from vidsynth.render.world import simulate

RES = 48


def luminance(rgb):
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def test_renders_are_deterministic():
    scene = language.parse("a red metal sphere bounces left of a blue cube. a green glass torus spins. "
                           "a warm area light from the left. the camera orbits.")
    a, b = (render_scene(scene, frames=3, resolution=24, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.video.shape == (3, 24, 24, 3) and a.video.dtype == np.uint8


def test_a_shadow_darkens_the_ground_and_moves_with_its_object():
    scene = language.parse("a large sphere moves right. a white point light from the left.")
    world, trajectory = simulate(scene, 12, 12.0, seed=0)
    gone = copy.deepcopy(trajectory)
    gone.positions[:, 0, 2] = -100.0                       # the same scene with the sphere far below the ground
    lit, unlit = MitsubaRenderer(world, gone, RES, spp=4), MitsubaRenderer(world, trajectory, RES, spp=4)
    centres = []
    for t in (0, 11):
        with_sphere = unlit.frame(t)
        _, ids = unlit.passes(t)
        darker = luminance(lit.frame(t)) - luminance(with_sphere)
        ground = ids == 0
        for axis in (0, 1):                                 # not the pixels the sphere's silhouette partly covers
            for shift in (-1, 1):
                ground &= np.roll(ids, shift, axis) == 0
        shadow = (darker > 0.05) & ground
        assert shadow.sum() > 20, "no shadow on the ground"
        assert np.abs(darker[ground & ~shadow]).max() < 0.05   # elsewhere the ground is unchanged
        centres.append(np.argwhere(shadow).mean(0))
        # the shadow lies where the light's ray through the sphere's centre meets the ground
        light = world.lights[0][1]
        centre = trajectory.positions[t, 0]
        ground_hit = light + (centre - light) * light[2] / (light[2] - centre[2])
        (x, y), _ = trajectory.cameras[t].project(ground_hit, RES, RES)
        assert np.hypot(centres[-1][1] - x, centres[-1][0] - y) < 4
    assert centres[1][1] > centres[0][1] + 2                # it moved right with the sphere


def test_ids_depth_and_flow_match_the_geometry():
    scene = language.parse("a large sphere moves right.")
    clip = render_scene(scene, frames=6, resolution=RES, seed=1)
    world, trajectory = simulate(scene, 6, 12.0, seed=1)
    camera = trajectory.cameras[0]
    assert set(np.unique(clip.ids)) == {0, 1}
    for t in range(5):
        centre = trajectory.positions[t, 0]
        (x, y), z = camera.project(centre, RES, RES)
        assert clip.ids[t, int(y), int(x)] == 1
        assert abs(clip.depth[t, int(y), int(x)] - (z - 0.7)) < 0.1        # the sphere's near side, radius 0.7 m
        step, _ = camera.project(trajectory.positions[t + 1, 0], RES, RES)
        inside = clip.ids[t] == 1
        np.testing.assert_allclose(np.median(clip.flow[t][inside], 0), step - (x, y), atol=0.3)
        assert np.abs(clip.flow[t][clip.ids[t] == 0]).max() < 1e-3          # a fixed camera: the ground stays
    assert clip.metadata["objects"][0]["visible_pixels"][0] == int((clip.ids[0] == 1).sum())
    x0, y0, x1, y1 = clip.metadata["objects"][0]["boxes"][0]
    ys, xs = np.nonzero(clip.ids[0] == 1)
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
