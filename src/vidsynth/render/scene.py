"""The scene graph: typed objects with their relations and motions, lights, a camera, the background and the ground.

A graph holds only what the controlled English can say (words, never coordinates), so a caption and a graph carry
the same information: ``parse(caption(g)) == g``. Where objects stand is decided from the graph and a seed by
``layout.py``; the rendered clip's metadata records the exact positions.

The JSON form (``to_json`` / ``from_json``) is the second input form; ``SCHEMA`` is its JSON Schema.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.errors import UserError

FORMAT_VERSION = 1

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "plane")     # plane: a flat square tile
SIZES = ("small", "medium", "large")
# CLEVR's palette (Johnson et al. 2017) and white / black, in linear-ish 0-1 RGB
COLOURS = {
    "gray": (0.34, 0.34, 0.34), "red": (0.68, 0.14, 0.14), "blue": (0.16, 0.29, 0.84), "green": (0.11, 0.41, 0.08),
    "brown": (0.51, 0.29, 0.10), "purple": (0.51, 0.15, 0.75), "cyan": (0.16, 0.82, 0.82),
    "yellow": (1.0, 0.93, 0.20), "white": (0.9, 0.9, 0.9), "black": (0.05, 0.05, 0.05),
}
MATERIALS = ("rubber", "metal", "glass", "emissive")
# motion -> what it takes: a direction, an object, or nothing
MOTIONS = {"stays": None, "moves": "direction", "rolls": "direction", "bounces": None, "falls": None,
           "spins": None, "orbits": "target"}
DIRECTIONS = ("left", "right", "forward", "back")        # forward = toward the camera, back = away from it
SPEEDS = ("slowly", "normal", "quickly")
RELATIONS = ("left of", "right of", "in front of", "behind", "on", "next to")
LIGHT_KINDS = ("point", "area", "sun")                   # area = soft shadows; point and sun = hard ones
LIGHT_COLOURS = ("white", "warm", "cool") + tuple(COLOURS)
LIGHT_DIRECTIONS = ("left", "right", "front", "back", "above")
CAMERA_MOTIONS = {"fixed": None, "orbits": None, "pans": ("left", "right"), "zooms": ("in", "out")}
ROUND_SHAPES = ("sphere",)                               # what "rolls" can do


@dataclass(frozen=True)
class Object:
    """One object. ``target`` (for ``orbits``) and ``anchor`` (for ``relation``) index earlier objects."""
    shape: str
    size: str = "medium"
    colour: str = "gray"
    material: str = "rubber"
    motion: str = "stays"
    direction: str | None = None
    speed: str = "normal"
    target: int | None = None
    relation: str | None = None
    anchor: int | None = None


@dataclass(frozen=True)
class Light:
    kind: str = "point"
    colour: str = "white"
    direction: str = "above"


@dataclass(frozen=True)
class Camera:
    motion: str = "fixed"
    direction: str | None = None      # pans: left / right; zooms: in / out
    speed: str = "normal"


@dataclass(frozen=True)
class Scene:
    """``lights`` empty means the renderer's default light (a white point light above and in front)."""
    objects: tuple[Object, ...]
    lights: tuple[Light, ...] = ()
    camera: Camera = field(default_factory=Camera)
    background: str | None = None
    ground: str | None = None

    def __post_init__(self):
        validate(self)

    def describe(self, index: int) -> str:
        return describe(self.objects[index])


def describe(obj: Object) -> str:
    """``large red metal sphere``: the object's words, defaults (medium, gray, rubber) left out."""
    words = [w for w, default in ((obj.size, "medium"), (obj.colour, None), (obj.material, "rubber")) if w != default]
    return " ".join(words + [obj.shape])


def _choose(what: str, value, allowed, where: str) -> None:
    if value not in allowed:
        raise UserError(f"{where}: {value!r} is not a {what}; use one of: {', '.join(map(str, allowed))}")


def validate(scene: Scene) -> None:
    """Every word from the vocabulary, every reference to an earlier object, nothing contradictory."""
    if not scene.objects:
        raise UserError("the scene has no objects: describe at least one, e.g. 'a red sphere bounces.'")
    for i, o in enumerate(scene.objects):
        where = f"objects[{i}]"
        _choose("shape", o.shape, SHAPES, where)
        _choose("size", o.size, SIZES, where)
        _choose("colour", o.colour, tuple(COLOURS), where)
        _choose("material", o.material, MATERIALS, where)
        _choose("motion", o.motion, tuple(MOTIONS), where)
        _choose("speed", o.speed, SPEEDS, where)
        takes = MOTIONS[o.motion]
        if takes == "direction":
            _choose(f"direction for {o.motion}", o.direction, DIRECTIONS, where)
        elif o.direction is not None:
            raise UserError(f"{where}: {o.motion} takes no direction (only moves and rolls do)")
        if takes == "target":
            if not isinstance(o.target, int) or not 0 <= o.target < i:
                raise UserError(f"{where}: orbits needs target = the index of an earlier object (0..{i - 1}), "
                                f"got {o.target!r}")
        elif o.target is not None:
            raise UserError(f"{where}: {o.motion} takes no target (only orbits does)")
        if o.motion == "rolls" and o.shape not in ROUND_SHAPES:
            raise UserError(f"{where}: a {o.shape} cannot roll; only a {' or '.join(ROUND_SHAPES)} rolls: "
                            "use moves for the others")
        if (o.relation is None) != (o.anchor is None):
            raise UserError(f"{where}: relation and anchor go together (relation {o.relation!r}, anchor {o.anchor!r})")
        if o.relation is not None:
            _choose("relation", o.relation, RELATIONS, where)
            if not isinstance(o.anchor, int) or not 0 <= o.anchor < i:
                raise UserError(f"{where}: anchor must index an earlier object (0..{i - 1}), got {o.anchor!r}")
    for i, light in enumerate(scene.lights):
        _choose("light kind", light.kind, LIGHT_KINDS, f"lights[{i}]")
        _choose("light colour", light.colour, LIGHT_COLOURS, f"lights[{i}]")
        _choose("light direction", light.direction, LIGHT_DIRECTIONS, f"lights[{i}]")
    cam = scene.camera
    _choose("camera motion", cam.motion, tuple(CAMERA_MOTIONS), "camera")
    _choose("speed", cam.speed, SPEEDS, "camera")
    options = CAMERA_MOTIONS[cam.motion]
    if options is None and cam.direction is not None:
        raise UserError(f"camera: {cam.motion} takes no direction")
    if cam.motion == "fixed" and cam.speed != "normal":
        raise UserError(f"camera: a fixed camera has no speed (got {cam.speed!r})")
    if options is not None:
        _choose(f"direction for the camera's {cam.motion}", cam.direction, options, "camera")
    for name in ("background", "ground"):
        value = getattr(scene, name)
        if value is not None:
            _choose(f"{name} colour", value, tuple(COLOURS), name)


# ---------------------------------------------------------------------------------------------------------- JSON

def _property(values=None, kind="string", nullable=False):
    spec = {"type": [kind, "null"] if nullable else kind}
    if values is not None:
        spec["enum"] = list(values) + ([None] if nullable else [])
    return spec


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "vidsynth scene",
    "type": "object",
    "required": ["objects"],
    "additionalProperties": False,
    "properties": {
        "format_version": {"const": FORMAT_VERSION},
        "objects": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["shape"], "additionalProperties": False,
            "properties": {
                "shape": _property(SHAPES), "size": _property(SIZES), "colour": _property(COLOURS),
                "material": _property(MATERIALS), "motion": _property(MOTIONS),
                "direction": _property(DIRECTIONS, nullable=True), "speed": _property(SPEEDS),
                "target": _property(kind="integer", nullable=True),
                "relation": _property(RELATIONS, nullable=True), "anchor": _property(kind="integer", nullable=True),
            }}},
        "lights": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"kind": _property(LIGHT_KINDS), "colour": _property(LIGHT_COLOURS),
                           "direction": _property(LIGHT_DIRECTIONS)}}},
        "camera": {"type": "object", "additionalProperties": False,
                   "properties": {"motion": _property(CAMERA_MOTIONS),
                                  "direction": _property(("left", "right", "in", "out"), nullable=True),
                                  "speed": _property(SPEEDS)}},
        "background": _property(COLOURS, nullable=True),
        "ground": _property(COLOURS, nullable=True),
    },
}


def to_dict(scene: Scene) -> dict:
    return {"format_version": FORMAT_VERSION, **dataclasses.asdict(scene)}


def to_json(scene: Scene) -> str:
    return json.dumps(to_dict(scene), indent=2)


def from_dict(data: dict, source: str = "scene") -> Scene:
    """A scene from its JSON form, checked against ``SCHEMA`` first (one line naming the first problem)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "top level"
        raise UserError(f"{source}: {where}: {error.message}")
    objects = tuple(Object(**o) for o in data["objects"])
    try:
        return Scene(objects=objects, lights=tuple(Light(**x) for x in data.get("lights", ())),
                     camera=Camera(**data.get("camera", {})), background=data.get("background"),
                     ground=data.get("ground"))
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


def from_json(text: str, source: str = "scene") -> Scene:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{source}: not valid JSON ({e}); see `vidsynth render --schema`") from None
    return from_dict(data, source)


def load(path: str | Path) -> Scene:
    path = Path(path)
    try:
        return from_json(path.read_text(), str(path))
    except OSError as e:
        raise UserError(f"cannot read the scene file {path}: {e.strerror}") from None


# ------------------------------------------------------------------------------------------------ random scenes

def random_scene(rng: random.Random, min_objects: int = 1, max_objects: int = 6) -> Scene:
    """A CLEVR-like random scene: 1-6 objects with uniform attributes (no two alike, so every object can be named),
    each with a motion and, with probability 1/2, a relation to an earlier object; 0-2 lights; a camera that is
    fixed half of the time."""
    count = rng.randint(min_objects, max_objects)
    seen: set[tuple] = set()
    objects: list[Object] = []
    while len(objects) < count:
        looks = (rng.choice(SHAPES), rng.choice(SIZES), rng.choice(tuple(COLOURS)), rng.choice(MATERIALS))
        if looks in seen:
            continue
        seen.add(looks)
        shape, size, colour, material = looks
        i = len(objects)
        motions = [m for m in MOTIONS if (m != "orbits" or i > 0) and (m != "rolls" or shape in ROUND_SHAPES)]
        motion = rng.choice(motions)
        direction = rng.choice(DIRECTIONS) if MOTIONS[motion] == "direction" else None
        target = rng.randrange(i) if motion == "orbits" else None
        relation = anchor = None
        if i > 0 and motion != "orbits" and rng.random() < 0.5:
            relation, anchor = rng.choice(RELATIONS), rng.randrange(i)
        speed = "normal" if motion in ("stays", "falls") else rng.choice(SPEEDS)
        objects.append(Object(shape, size, colour, material, motion, direction, speed, target, relation, anchor))
    lights = tuple(Light(rng.choice(LIGHT_KINDS), rng.choice(("white", "white", "warm", "cool")),
                         rng.choice(LIGHT_DIRECTIONS)) for _ in range(rng.choice((0, 1, 1, 2))))
    cam_motion = rng.choice(("fixed", "fixed", "fixed", "orbits", "pans", "zooms"))
    options = CAMERA_MOTIONS[cam_motion]
    camera = Camera(cam_motion, rng.choice(options) if options else None,
                    "normal" if cam_motion == "fixed" else rng.choice(SPEEDS))
    return Scene(tuple(objects), lights, camera,
                 rng.choice((None, None, "black", "white", "blue")), rng.choice((None, None, "gray", "white", "brown")))
