"""Layout and MuJoCo motion: relations hold at the start, motions go where the words say, contacts are stiff,
collisions are events, and reruns are identical."""

from __future__ import annotations

import numpy as np

from vidsynth.render import language
from vidsynth.render.world import layout, simulate


def run(text, frames=24, seed=0):
    return simulate(language.parse(text), frames, 12.0, seed)


def test_reruns_are_identical():
    text = "a red sphere bounces. a cube moves left next to the sphere. a cone orbits the cube. the camera orbits."
    (_, a), (_, b) = run(text), run(text)
    for name in ("positions", "quaternions", "velocities"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.events == b.events


def test_relations_place_objects_where_they_say():
    g = language.parse("a large cube. a sphere left of the cube. a cone behind the cube. a torus in front of the "
                       "cube. a small cylinder on the cube.")
    for seed in range(5):
        start = layout(g, seed).start
        cube, sphere, cone, torus, cylinder = start
        assert sphere[0] < cube[0] - 0.5 and cone[1] > cube[1] + 0.5 and torus[1] < cube[1] - 0.5
        assert abs(cylinder[0] - cube[0]) < 0.1 and cylinder[2] > cube[2] + 0.5


def test_motions_follow_the_words():
    _, t = run("a sphere rolls right. a small cube moves forward quickly.", frames=13)
    sphere, cube = t.positions[-1] - t.positions[0]
    assert sphere[0] > 0.8 and abs(sphere[1]) < 0.1          # 1 m/s for 1 s, rolling to the right
    assert cube[1] < -1.6 and abs(cube[0]) < 0.1             # forward = toward the camera (-y), twice as fast
    _, t = run("a red sphere bounces.", frames=36)
    z = t.positions[:, 0, 2]
    low = int(np.argmin(z[:12]))
    assert z[0] > 1.4 and z[low] < 0.8 and z[low:].max() > z[low] + 0.2   # falls, lands, comes back up
    assert [e["objects"] for e in t.events][:2] == [["ground", 0], ["ground", 0]]


def test_resting_contacts_are_stiff():
    _, t = run("a large sphere stays. a cube on the sphere.", frames=24)
    assert abs(t.positions[-1, 0, 2] - 0.7) < 0.01            # a 0.7 m sphere sinks less than a centimetre


def test_a_collision_is_an_event_with_its_frame_and_objects():
    _, t = run("a large cube. a sphere moves right quickly left of the cube.", frames=24)
    hits = [e for e in t.events if e["objects"] == [0, 1]]
    assert len(hits) == 1 and 0 < hits[0]["frame"] < 24
    assert t.positions[-1, 0, 0] > t.positions[0, 0, 0] + 0.2  # the cube was pushed
