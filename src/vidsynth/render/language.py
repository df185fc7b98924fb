"""Controlled English <-> scene graph: ``parse(text) -> Scene`` and ``caption(scene) -> text``, one vocabulary.

Sentences (any number, each ending with a full stop; adjectives in any order):

    a [size] [colour] [material] <shape> [<motion>] [<relation> <object>].
    the <known object> <motion> [<relation> <object>].
    a [soft|hard] [white|warm|cool|<colour>] [point|area|sun] light from the <left|right|front|back> | from above.
    the camera is fixed | orbits | pans <left|right> | zooms <in|out>   [slowly|quickly].
    the background is <colour>.   the ground is <colour>.

with <motion> one of ``stays``, ``moves <left|right|forward|back>``, ``rolls <direction>`` (spheres), ``bounces``,
``falls``, ``spins``, ``orbits <object>``, each optionally ``slowly`` or ``quickly``; <object> is ``a ...`` (a new
object) or ``the ...`` (one named before, by enough of its words to be the only match). The parser is lark's LALR(1)
on a grammar built from ``scene.py``'s vocabulary, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import re

from vidsynth.errors import UserError
from vidsynth.render import scene as sg

SYNONYMS = {"box": "cube", "ball": "sphere", "grey": "gray", "soft": "area", "hard": "point"}
_LIGHT_TONES = ("warm", "cool")


def _alternatives(words) -> str:
    return " | ".join(f'"{w}"' for w in sorted(words, key=lambda w: (-len(w), w)))


@functools.cache
def _parser():
    from lark import Lark

    grammar = f"""
    start: sentence+
    ?sentence: (thing | light | camera | setting) "."
    thing: np motion? place?
    np: ARTICLE adjective* SHAPE -> new
      | "the" adjective* SHAPE -> ref
    adjective: SIZE | COLOUR | MATERIAL
    motion: MOTION_PLAIN speed?
          | MOTION_DIRECTED DIRECTION speed?
          | ORBITS np speed?
    speed: SPEED
    place: RELATION np
    light: ARTICLE? LIGHT_KIND? (COLOUR | TONE)? LIGHT_KIND? "light" "from" ("the" LIGHT_DIRECTION | ABOVE)
    camera: "the" "camera" (IS FIXED | CAMERA_STILL | CAMERA_MOVE speed? | PANS SIDE speed? | ZOOMS INOUT speed?)
    setting: "the" SETTING "is" COLOUR
    ARTICLE: "a" | "an"
    SIZE: {_alternatives(sg.SIZES)}
    COLOUR: {_alternatives(sg.COLOURS)}
    TONE: {_alternatives(_LIGHT_TONES)}
    MATERIAL: {_alternatives(sg.MATERIALS)}
    SHAPE: {_alternatives(sg.SHAPES)}
    MOTION_PLAIN: {_alternatives(m for m, takes in sg.MOTIONS.items() if takes is None)}
    MOTION_DIRECTED: {_alternatives(m for m, takes in sg.MOTIONS.items() if takes == "direction")}
    ORBITS: "orbits"
    DIRECTION: {_alternatives(sg.DIRECTIONS)}
    SPEED: {_alternatives(s for s in sg.SPEEDS if s != "normal")}
    RELATION: {_alternatives(sg.RELATIONS)}
    LIGHT_KIND: {_alternatives(sg.LIGHT_KINDS)}
    LIGHT_DIRECTION: {_alternatives(d for d in sg.LIGHT_DIRECTIONS if d != "above")}
    ABOVE: "above"
    IS: "is"
    FIXED: "fixed"
    CAMERA_STILL: "stays"
    CAMERA_MOVE: "orbits"
    PANS: "pans"
    SIDE: "left" | "right"
    ZOOMS: "zooms"
    INOUT: "in" | "out"
    SETTING: "background" | "ground"
    %import common.WS
    %ignore WS
    """
    return Lark(grammar, parser="lalr", maybe_placeholders=False)


# what each terminal stands for, for the one-line error that lists what could come next
_TERMINAL_WORDS = {
    "ARTICLE": ("a",), "SIZE": sg.SIZES, "COLOUR": tuple(sg.COLOURS), "TONE": _LIGHT_TONES,
    "MATERIAL": sg.MATERIALS, "SHAPE": sg.SHAPES, "MOTION_PLAIN": ("stays", "bounces", "falls", "spins"),
    "MOTION_DIRECTED": ("moves", "rolls"), "ORBITS": ("orbits",), "DIRECTION": sg.DIRECTIONS,
    "SPEED": ("slowly", "quickly"), "RELATION": sg.RELATIONS, "LIGHT_KIND": sg.LIGHT_KINDS,
    "LIGHT_DIRECTION": ("left", "right", "front", "back"), "ABOVE": ("above",), "IS": ("is",), "FIXED": ("fixed",),
    "CAMERA_STILL": ("stays",), "CAMERA_MOVE": ("orbits",), "PANS": ("pans",), "SIDE": ("left", "right"),
    "ZOOMS": ("zooms",), "INOUT": ("in", "out"), "SETTING": ("background", "ground"), "DOT": ("'.'",),
    "THE": ("the",), "LIGHT": ("light",), "FROM": ("from",), "CAMERA": ("camera",),
}
VOCABULARY = frozenset(
    w for words in _TERMINAL_WORDS.values() for phrase in words for w in phrase.split() if w != "'.'"
) | frozenset(SYNONYMS) | {"an"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+|\.|\S", text.lower())


def _normalise(text: str) -> str:
    words = _words(text)
    if not words:
        raise UserError("the scene description is empty: write sentences like 'a red sphere bounces.'")
    for w in words:
        if w != "." and w not in VOCABULARY:
            raise UserError(f"the word {w!r} is not in the scene grammar; it knows {grammar_summary()}")
    words = [SYNONYMS.get(w, w) for w in words]
    if words[-1] != ".":
        words.append(".")
    return " ".join(words)


def parse(text: str) -> sg.Scene:
    """Several sentences of controlled English -> Scene. A word or construction outside the grammar, or a reference
    that names no object (or several), is a one-line UserError naming it."""
    from vidsynth.render import require

    require()
    from lark.exceptions import UnexpectedInput

    normal = _normalise(text)
    try:
        tree = _parser().parse(normal)
    except UnexpectedInput as e:
        expected = getattr(e, "expected", None) or getattr(e, "allowed", None) or ()
        words = sorted({w for name in expected for w in _TERMINAL_WORDS.get(name, (name.lower(),))})
        before = normal[:e.pos_in_stream].split()[-4:]
        found = normal[e.pos_in_stream:].split()[:1]
        raise UserError(f"the scene description cannot go on with {' '.join(found) or 'its end'!r} after "
                        f"{' '.join(before)!r}: expected one of: {', '.join(words)}") from None
    return _Builder().build(tree)


class _Builder:
    """Walks lark's tree sentence by sentence, keeping the objects named so far."""

    def __init__(self):
        self.objects: list[dict] = []
        self.moved: set[int] = set()
        self.lights: list[sg.Light] = []
        self.camera = sg.Camera()
        self.settings: dict[str, str] = {}

    def build(self, tree) -> sg.Scene:
        for sentence in tree.children:
            getattr(self, "on_" + sentence.data)(sentence)
        return sg.Scene(tuple(sg.Object(**o) for o in self.objects), tuple(self.lights), self.camera,
                        self.settings.get("background"), self.settings.get("ground"))

    @staticmethod
    def _attributes(np) -> dict:
        attrs, shape = {}, str(np.children[-1])
        for adjective in np.children:
            if getattr(adjective, "data", None) != "adjective":
                continue
            token = adjective.children[0]
            key = {"SIZE": "size", "COLOUR": "colour", "MATERIAL": "material"}[token.type]
            if key in attrs:
                raise UserError(f"'{' '.join(_tokens(np))}' gives two {key}s ({attrs[key]}, {token}): keep one")
            attrs[key] = str(token)
        return {"shape": shape, **attrs}

    def _object(self, np) -> int:
        """The index of the object a noun phrase names: a new one is appended, 'the ...' is looked up."""
        attrs = self._attributes(np)
        if np.data == "new":
            self.objects.append({**attrs})
            return len(self.objects) - 1
        matches = [i for i, o in enumerate(self.objects)
                   if all(o.get(k, _DEFAULTS[k]) == v for k, v in attrs.items())]
        phrase = "the " + " ".join(_tokens(np))
        if not matches:
            raise UserError(f"{phrase!r} names no object described before it: introduce it first with 'a ...'")
        if len(matches) > 1:
            raise UserError(f"{phrase!r} could be any of {len(matches)} objects: add its size, colour or material")
        return matches[0]

    def on_thing(self, tree):
        np, *rest = tree.children
        parts = {child.data: child for child in rest}
        motion = {}
        if "motion" in parts:
            tokens = parts["motion"].children
            motion["motion"] = str(tokens[0])
            for child in tokens[1:]:
                if getattr(child, "data", None) == "speed":
                    motion["speed"] = str(child.children[0])
                elif getattr(child, "data", None) in ("new", "ref"):
                    motion["target"] = self._object(child)
                else:
                    motion["direction"] = str(child)
        anchor = self._object(parts["place"].children[1]) if "place" in parts else None
        index = self._object(np)
        subject = self.objects[index]
        if motion:
            if index in self.moved:
                raise UserError(f"{' '.join(_tokens(np))!r} is given a second motion: give each object one")
            self.moved.add(index)
            subject.update(motion)
        if anchor is not None:
            if "relation" in subject:
                raise UserError(f"{' '.join(_tokens(np))!r} is placed twice: give each object one relation")
            if anchor >= index:
                raise UserError(f"{' '.join(_tokens(np))!r} is placed relative to an object described after it: "
                                "describe that object first")
            subject.update(relation=str(parts["place"].children[0]), anchor=anchor)
        target = subject.get("target")
        if target is not None and target >= index:
            raise UserError(f"{' '.join(_tokens(np))!r} orbits an object described after it: describe that one first")

    def on_light(self, tree):
        light = {}
        keys = {"LIGHT_KIND": "kind", "COLOUR": "colour", "TONE": "colour", "LIGHT_DIRECTION": "direction",
                "ABOVE": "direction"}
        for token in tree.children:
            if token.type in keys:
                if keys[token.type] in light:
                    raise UserError(f"a light is given two {keys[token.type]}s ({light[keys[token.type]]}, {token}): "
                                    "keep one")
                light[keys[token.type]] = str(token)
        self.lights.append(sg.Light(**light))

    def on_camera(self, tree):
        tokens = [t for t in tree.children if getattr(t, "data", None) != "speed"]
        speeds = [str(t.children[0]) for t in tree.children if getattr(t, "data", None) == "speed"]
        motion = {"is": "fixed", "stays": "fixed"}.get(str(tokens[0]), str(tokens[0]))
        direction = str(tokens[1]) if motion in ("pans", "zooms") else None
        self.camera = sg.Camera(motion, direction, speeds[0] if speeds else "normal")

    def on_setting(self, tree):
        name, colour = (str(t) for t in tree.children)
        self.settings[name] = colour


_DEFAULTS = {f.name: f.default for f in sg.Object.__dataclass_fields__.values()}


def _tokens(tree) -> list[str]:
    return [str(t) for t in tree.scan_values(lambda v: True)]


# ------------------------------------------------------------------------------------------------------ caption

_REFERENCE_WORDS = (("shape",), ("colour", "shape"), ("size", "shape"), ("size", "colour", "shape"),
                    ("colour", "material", "shape"), ("size", "colour", "material", "shape"))


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _reference(scene: sg.Scene, index: int, known: int) -> str:
    """'the red sphere': the fewest words that name object ``index`` alone among objects 0..known-1."""
    obj = scene.objects[index]
    for keys in _REFERENCE_WORDS:
        wanted = {k: getattr(obj, k) for k in keys}
        if sum(all(getattr(o, k) == v for k, v in wanted.items()) for o in scene.objects[:known]) == 1:
            return "the " + " ".join(wanted[k] for k in ("size", "colour", "material", "shape") if k in wanted)
    raise UserError(f"objects[{index}] looks the same as another object, so no caption can name it: "
                    "change its size, colour or material")


def caption(scene: sg.Scene) -> str:
    """Scene -> controlled English that ``parse`` reads back into the same scene."""
    sentences = []
    for i, o in enumerate(scene.objects):
        words = [_article(sg.describe(o)), o.motion]
        if o.direction is not None:
            words.append(o.direction)
        if o.target is not None:
            words.append(_reference(scene, o.target, i))
        if o.speed != "normal":
            words.append(o.speed)
        if o.relation is not None:
            words += [o.relation, _reference(scene, o.anchor, i)]
        sentences.append(" ".join(words))
    for light in scene.lights:
        where = "from above" if light.direction == "above" else f"from the {light.direction}"
        sentences.append(f"{_article(light.colour)} {light.kind} light {where}")
    cam = scene.camera
    if cam.motion != "fixed" or cam.speed != "normal":
        words = ["the camera", "is fixed" if cam.motion == "fixed" else cam.motion]
        words += [w for w in (cam.direction, None if cam.speed == "normal" else cam.speed) if w]
        sentences.append(" ".join(words))
    for name in ("background", "ground"):
        if getattr(scene, name) is not None:
            sentences.append(f"the {name} is {getattr(scene, name)}")
    return ". ".join(sentences) + "."


def grammar_summary() -> str:
    """The vocabulary, for --help and error messages."""
    groups = {"shapes": sg.SHAPES, "sizes": sg.SIZES, "colours": tuple(sg.COLOURS), "materials": sg.MATERIALS,
              "motions": tuple(sg.MOTIONS), "directions": sg.DIRECTIONS, "speeds": ("slowly", "quickly"),
              "relations": sg.RELATIONS, "lights": sg.LIGHT_KINDS + _LIGHT_TONES,
              "camera": ("is fixed", "orbits", "pans left/right", "zooms in/out")}
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())

