"""The render route: scene description -> scene graph -> 3D scene with motion, light and shadow -> frames.

    from vidsynth.render import parse, caption, render_scene
    clip = render_scene(parse("a red sphere bounces left of a blue metal cube. the camera orbits."), frames=16)

Needs the render extra (``pip install 'vidsynth[render]'``: Mitsuba 3, MuJoCo, lark, trimesh, jsonschema).
"""

from __future__ import annotations

import importlib.util

from vidsynth.errors import UserError

REQUIRED = {"mitsuba": "mitsuba", "mujoco": "mujoco", "lark": "lark", "trimesh": "trimesh", "jsonschema": "jsonschema"}


def require() -> None:
    """One line naming what to install when a package of the render extra is missing."""
    missing = [pkg for module, pkg in REQUIRED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UserError(f"rendering needs the render extra (missing: {', '.join(missing)}): "
                        "pip install 'vidsynth[render]'")


from vidsynth.render.clip import Clip, render_scene, write_passes  # noqa: E402
from vidsynth.render.language import caption, parse  # noqa: E402
from vidsynth.render.scene import Scene, from_json, load, random_scene, to_json  # noqa: E402

__all__ = ["Clip", "Scene", "caption", "from_json", "load", "parse", "random_scene", "render_scene", "require",
           "to_json", "write_passes"]
