"""The scene grammar: parse, caption, their round trip, the JSON form and the one-line errors."""

from __future__ import annotations

import json
import random

import pytest

from vidsynth.errors import UserError
from vidsynth.render import language, scene as sg


def test_parse_builds_the_graph_the_sentences_say():
    g = language.parse("A red rubber sphere bounces left of a blue metal cube. Warm light from the left. "
                       "The camera orbits slowly. the ground is white")
    cube, sphere = g.objects
    assert (cube.shape, cube.colour, cube.material, cube.motion) == ("cube", "blue", "metal", "stays")
    assert (sphere.shape, sphere.colour, sphere.motion, sphere.relation, sphere.anchor) == \
        ("sphere", "red", "bounces", "left of", 0)
    assert g.lights == (sg.Light("point", "warm", "left"),)
    assert g.camera == sg.Camera("orbits", None, "slowly")
    assert g.ground == "white" and g.background is None


def test_references_synonyms_and_every_motion():
    g = language.parse("a large ball. a small grey box moves right quickly. the ball spins. a torus orbits the box. "
                       "a cone falls on the large sphere. a soft cool light from above. the camera zooms in.")
    ball, box, torus, cone = g.objects
    assert (ball.shape, ball.size, ball.motion) == ("sphere", "large", "spins")
    assert (box.shape, box.colour, box.direction, box.speed) == ("cube", "gray", "right", "quickly")
    assert (torus.motion, torus.target) == ("orbits", 1)
    assert (cone.motion, cone.relation, cone.anchor) == ("falls", "on", 0)
    assert g.lights[0] == sg.Light("area", "cool", "above")
    assert g.camera == sg.Camera("zooms", "in", "normal")


def test_caption_round_trips_every_generated_scene():
    rng = random.Random(0)
    for _ in range(400):
        scene = sg.random_scene(rng)
        text = language.caption(scene)
        assert language.parse(text) == scene, text


@pytest.mark.parametrize("text, words", [
    ("a crimson sphere.", ["'crimson'", "colours: gray, red"]),
    ("a red sphere jumps.", ["'jumps'", "motions: stays, moves"]),
    ("a red sphere moves.", ["'.'", "after 'a red sphere moves'", "back, forward, left, right"]),
    ("the blue cube spins.", ["'the blue cube' names no object"]),
    ("a sphere. a red sphere. the sphere spins.", ["could be any of 2 objects"]),
    ("a red cube rolls left.", ["a cube cannot roll"]),
    ("a red sphere moves left, quickly.", ["','"]),
    ("a red blue sphere.", ["two colours"]),
    ("a sphere spins. the sphere falls.", ["second motion"]),
    ("", ["empty"]),
])
def test_outside_the_grammar_is_one_line_naming_it(text, words):
    with pytest.raises(UserError) as e:
        language.parse(text)
    message = str(e.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_json_round_trip_and_schema_errors(tmp_path):
    scene = sg.random_scene(random.Random(3), 4, 4)
    assert sg.from_json(sg.to_json(scene)) == scene
    path = tmp_path / "scene.json"
    path.write_text(sg.to_json(scene))
    assert sg.load(path) == scene
    data = json.loads(sg.to_json(scene))
    data["objects"][1]["colour"] = "crimson"
    with pytest.raises(UserError, match=r"objects/1/colour: 'crimson' is not one of"):
        sg.from_dict(data)
    with pytest.raises(UserError, match="not valid JSON"):
        sg.from_json("{objects: ")
    with pytest.raises(UserError, match="anchor must index an earlier object"):
        sg.from_dict({"objects": [{"shape": "cube", "relation": "on", "anchor": 0}]})


def test_the_rendered_dataset_names_the_same_vocabulary():
    from vidsynth.data.rendered import LABELS
    assert LABELS == {"shape": sg.SHAPES, "colour": tuple(sg.COLOURS), "material": sg.MATERIALS, "size": sg.SIZES,
                      "motion": tuple(sg.MOTIONS)}
