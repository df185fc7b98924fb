"""From a scene graph to 3D: object geometry, where each object starts (the layout), its motion simulated by MuJoCo,
the camera's path and the lights' positions. Both routes (Mitsuba and the octree) render the same ``Trajectory``.

Coordinates: metres, z up, the ground is z = 0; the camera starts on the -y side looking toward +y, so "left" is
-x, "in front of" and "forward" are -y (toward the camera) and "behind" and "back" are +y.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from vidsynth.render import scene as sg

SIZE_METRES = {"small": 0.35, "medium": 0.5, "large": 0.7}   # an object's half-extent
PLANE_THICKNESS = 0.06      # a plane's half-thickness, as a share of its size
SPEED_SCALE = {"slowly": 0.5, "normal": 1.0, "quickly": 2.0}
MOVE_SPEED = 1.0            # m/s of moves and rolls at normal speed
SPIN_SPEED = 3.0            # rad/s of spins
ORBIT_SPEED = 1.5           # rad/s of orbits
BOUNCE_HEIGHT = 1.0         # m above rest of a bounce's start
FALL_HEIGHT = 1.5
CAMERA_DISTANCE = 8.0       # m from the look-at point, for a 5 m wide area
CAMERA_ELEVATION = math.radians(30)
CAMERA_FOV = 40.0           # degrees, horizontal
SIM_STEP = 0.002            # s: MuJoCo's time step (500 Hz)
DEBOUNCE = 0.25             # s apart before a new contact of the same two objects counts as another event
MOTIONS_WITH_DIRECTION = {m: takes == "direction" for m, takes in sg.MOTIONS.items()}
_DIRECTION_VECTORS = {"left": (-1, 0), "right": (1, 0), "forward": (0, -1), "back": (0, 1)}
_RELATION_VECTORS = {"left of": (-1, 0), "right of": (1, 0), "in front of": (0, -1), "behind": (0, 1)}
LIGHT_DIRECTIONS = {"left": (-1, -0.3, 0.9), "right": (1, -0.3, 0.9), "front": (0, -1, 0.9), "back": (0, 1, 0.9),
                    "above": (-0.25, -0.35, 1.0)}
LIGHT_COLOURS = {"white": (1.0, 1.0, 1.0), "warm": (1.0, 0.78, 0.55), "cool": (0.6, 0.75, 1.0)}
DEFAULT_LIGHT = sg.Light("point", "white", "above")
# the lighting both routes share
IRRADIANCE = 3.0            # what the lights together give a surface facing them (linear units)
AREA_LIGHT_SIZE = 1.2       # m, side of an area light's square at area 2.5
FILL = 0.25                 # the fill light's share of IRRADIANCE, from the camera's starting side


@dataclass(frozen=True)
class Body:
    """One object's geometry in its own frame (origin = centre of its bounding box), for physics and rendering."""
    shape: str
    half: float                       # half-extent in metres
    rest_height: float                # z of the origin when it stands on the ground
    radius_xy: float                  # footprint radius, for the layout

    def mesh(self):
        """A trimesh of the object (spheres too, for the routes that need triangles)."""
        import trimesh

        h = self.half
        if self.shape == "sphere":
            return trimesh.creation.icosphere(subdivisions=3, radius=h)
        if self.shape == "cube":
            return trimesh.creation.box(extents=(1.6 * h,) * 3)
        if self.shape == "plane":
            return trimesh.creation.box(extents=(1.6 * h, 1.6 * h, 2 * PLANE_THICKNESS * h))
        if self.shape == "cylinder":
            return trimesh.creation.cylinder(radius=0.8 * h, height=1.6 * h, sections=32)
        if self.shape == "cone":
            cone = trimesh.creation.cone(radius=h, height=1.8 * h, sections=32)
            cone.apply_translation((0, 0, -0.9 * h))
            return cone
        return trimesh.creation.torus(major_radius=0.68 * h, minor_radius=0.32 * h, major_sections=32,
                                      minor_sections=16)


def body_for(obj: sg.Object) -> Body:
    h = SIZE_METRES[obj.size]
    rest = {"sphere": h, "cube": 0.8 * h, "cylinder": 0.8 * h, "cone": 0.9 * h, "torus": 0.32 * h,
            "plane": PLANE_THICKNESS * h}[obj.shape]
    radius = {"sphere": h, "cube": 0.8 * h * math.sqrt(2), "cylinder": 0.8 * h, "cone": h, "torus": h,
              "plane": 0.8 * h * math.sqrt(2)}[obj.shape]
    return Body(obj.shape, h, rest, radius)


@dataclass
class Camera:
    """A pinhole camera: ``origin`` looking at ``target`` with ``up``, horizontal field of view ``fov`` (degrees)."""
    origin: np.ndarray
    target: np.ndarray
    up: np.ndarray
    fov: float

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, forward) unit vectors."""
        forward = self.target - self.origin
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        right = right / np.linalg.norm(right)
        return right, np.cross(right, forward), forward

    def project(self, points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """World points [..., 3] -> (pixel coordinates [..., 2] as (x, y) with (0, 0) the top-left corner of the
        top-left pixel, depth along the view axis [...])."""
        right, up, forward = self.basis()
        rel = points - self.origin
        x, y, z = rel @ right, rel @ up, rel @ forward
        focal = 0.5 * width / math.tan(math.radians(self.fov) / 2)
        z_safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        return np.stack([0.5 * width + focal * x / z_safe, 0.5 * height - focal * y / z_safe], -1), z

    def rays(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins [H, W, 3] and unit directions [H, W, 3] through pixel centres."""
        right, up, forward = self.basis()
        focal = 0.5 * width / math.tan(math.radians(self.fov) / 2)
        xs = (np.arange(width) + 0.5 - 0.5 * width) / focal
        ys = (0.5 * height - np.arange(height) - 0.5) / focal
        d = forward + xs[None, :, None] * right + ys[:, None, None] * up
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        return np.broadcast_to(self.origin, d.shape).copy(), d


@dataclass
class Trajectory:
    """Everything that moves, per frame: ``positions`` [T, N, 3], ``quaternions`` [T, N, 4] (w, x, y, z),
    ``velocities`` [T, N, 3] (m/s), the camera per frame, and collision events (first frame of each contact)."""
    positions: np.ndarray
    quaternions: np.ndarray
    velocities: np.ndarray
    cameras: list[Camera]
    events: list[dict] = field(default_factory=list)
    fps: float = 12.0

    @property
    def num_frames(self) -> int:
        return len(self.positions)

    def rotation(self, t: int, i: int) -> np.ndarray:
        return quaternion_matrix(self.quaternions[t, i])


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@dataclass
class World:
    """A scene made concrete: bodies, their starting poses, the area they stand in, the lights (position, colour
    as RGB, kind) and the scene's colours as RGB."""
    scene: sg.Scene
    bodies: list[Body]
    start: np.ndarray                  # [N, 3]
    yaw: np.ndarray                    # [N] radians
    area: float                        # half-width of the square the objects start in
    lights: list[tuple[str, np.ndarray, np.ndarray]]
    background: np.ndarray
    ground: np.ndarray


def layout(scene: sg.Scene, seed: int, duration: float = 0.0) -> World:
    """Where each object starts: relations put an object beside (or on) its anchor with a random gap and offset;
    the others are drawn uniformly without overlap, those that move or roll set back by half the way they will go in
    ``duration`` seconds (so that they cross the view instead of leaving it); falling and bouncing objects start in
    the air."""
    rng = random.Random(seed)
    bodies = [body_for(o) for o in scene.objects]
    area = 2.5 * max(1.0, math.sqrt(len(bodies) / 6))
    start = np.zeros((len(bodies), 3))
    tops = np.zeros(len(bodies))        # z of each object's top at rest
    for i, (obj, body) in enumerate(zip(scene.objects, bodies)):
        z = body.rest_height
        for attempt in range(200):
            if obj.motion == "orbits" and obj.relation is None:
                a, angle = start[obj.target], rng.uniform(0, 2 * math.pi)
                gap = bodies[obj.target].radius_xy + body.radius_xy + rng.uniform(0.3, 0.9)
                x, y = a[0] + gap * math.cos(angle), a[1] + gap * math.sin(angle)
            elif obj.relation is None:
                x, y = rng.uniform(-area, area), rng.uniform(-area, area)
                if MOTIONS_WITH_DIRECTION.get(obj.motion):
                    way = 0.5 * MOVE_SPEED * SPEED_SCALE[obj.speed] * duration
                    dx, dy = _DIRECTION_VECTORS[obj.direction]
                    x, y = (float(np.clip(c - way * d, -area, area)) for c, d in ((x, dx), (y, dy)))
            elif obj.relation == "on":
                a = start[obj.anchor]
                x, y = a[0] + rng.uniform(-0.05, 0.05), a[1] + rng.uniform(-0.05, 0.05)
                z = tops[obj.anchor] + body.rest_height
            else:
                relation = obj.relation
                if relation == "next to":
                    relation = rng.choice(("left of", "right of"))
                dx, dy = _RELATION_VECTORS[relation]
                gap = bodies[obj.anchor].radius_xy + body.radius_xy + rng.uniform(0.15, 0.6)
                side = rng.uniform(-0.3, 0.3)
                a = start[obj.anchor]
                x, y = a[0] + dx * gap - dy * side, a[1] + dy * gap + dx * side
            clear = all(obj.relation == "on" and j == obj.anchor
                        or math.hypot(x - start[j, 0], y - start[j, 1]) > body.radius_xy + bodies[j].radius_xy + 0.05
                        for j in range(i))
            if clear:
                break
        lift = {"falls": FALL_HEIGHT, "bounces": BOUNCE_HEIGHT * SPEED_SCALE[obj.speed]}.get(obj.motion, 0.0)
        start[i] = (x, y, z + lift)
        tops[i] = z + body.rest_height
    yaw = np.array([rng.uniform(0, 2 * math.pi) for _ in bodies])
    lights = []
    for light in scene.lights or (DEFAULT_LIGHT,):
        direction = np.array(LIGHT_DIRECTIONS[light.direction], dtype=float)
        position = direction / np.linalg.norm(direction) * (3.0 * area)
        colour = np.array(LIGHT_COLOURS.get(light.colour) or sg.COLOURS[light.colour], dtype=float)
        lights.append((light.kind, position, colour / max(colour.max(), 1e-6)))
    background = np.array(sg.COLOURS[scene.background] if scene.background else (0.05, 0.05, 0.07))
    ground = np.array(sg.COLOURS[scene.ground] if scene.ground else (0.5, 0.5, 0.5))
    return World(scene, bodies, start, yaw, area, lights, background, ground)


def camera_path(scene: sg.Scene, area: float, num_frames: int, fps: float) -> list[Camera]:
    """The camera at each frame: fixed, orbiting the scene's centre, panning sideways, or zooming."""
    cam = scene.camera
    scale = SPEED_SCALE[cam.speed]
    distance0 = CAMERA_DISTANCE * area / 2.5
    target = np.array([0.0, 0.0, 0.3])
    up = np.array([0.0, 0.0, 1.0])
    cameras = []
    for t in range(num_frames):
        seconds = t / fps
        azimuth, distance, shift = -math.pi / 2, distance0, 0.0
        if cam.motion == "orbits":
            azimuth += 0.5 * scale * seconds
        elif cam.motion == "zooms":
            distance *= math.exp((-0.3 if cam.direction == "in" else 0.3) * scale * seconds)
        elif cam.motion == "pans":
            shift = (-1 if cam.direction == "left" else 1) * 0.8 * scale * seconds * area / 2.5
        offset = distance * np.array([math.cos(CAMERA_ELEVATION) * math.cos(azimuth),
                                      math.cos(CAMERA_ELEVATION) * math.sin(azimuth), math.sin(CAMERA_ELEVATION)])
        right = np.array([-math.sin(azimuth), math.cos(azimuth), 0.0])
        look = target + shift * right
        cameras.append(Camera(look + offset, look, up, CAMERA_FOV))
    return cameras


# ----------------------------------------------------------------------------------------------------- physics

def _mjcf(world: World) -> str:
    """MuJoCo's model: a ground plane and one free body per object (cones and tori collide as their convex
    hulls, which MuJoCo computes from the mesh)."""
    parts, assets = [], []
    for i, (obj, body) in enumerate(zip(world.scene.objects, world.bodies)):
        h = body.half
        if obj.shape == "sphere":
            geom = f'type="sphere" size="{h}"'
        elif obj.shape == "cube":
            geom = f'type="box" size="{0.8 * h} {0.8 * h} {0.8 * h}"'
        elif obj.shape == "plane":
            geom = f'type="box" size="{0.8 * h} {0.8 * h} {PLANE_THICKNESS * h}"'
        elif obj.shape == "cylinder":
            geom = f'type="cylinder" size="{0.8 * h} {0.8 * h}"'
        else:
            vertices = " ".join(f"{v:.5f}" for v in np.asarray(body.mesh().convex_hull.vertices).ravel())
            assets.append(f'<mesh name="m{i}" vertex="{vertices}"/>')
            geom = f'type="mesh" mesh="m{i}"'
        # a bouncing object gets an under-damped contact (MuJoCo's restitution); the rest a stiff, damped one
        # (priority: its own contact parameters win over the ground's when they touch)
        # (as stiffness and damping: a rebound to about 2/3 of the drop height)
        solref = '-20000 -20" priority="1' if obj.motion == "bounces" else "0.004 1"
        density = {"metal": 7800, "glass": 2500}.get(obj.material, 1100)
        x, y, z = world.start[i]
        half_yaw = world.yaw[i] / 2
        parts.append(
            f'<body name="o{i}" pos="{x:.6f} {y:.6f} {z:.6f}" quat="{math.cos(half_yaw):.8f} 0 0 '
            f'{math.sin(half_yaw):.8f}"><freejoint/><geom name="g{i}" {geom} density="{density}" '
            f'solref="{solref}" solimp="0.95 0.99 0.001" friction="0.6 0.005 0.0001"/></body>')
    return (f'<mujoco><option timestep="{SIM_STEP}" gravity="0 0 -9.81"/>'
            f'<asset>{"".join(assets)}</asset><worldbody>'
            f'<geom name="ground" type="plane" size="0 0 1" solref="0.004 1" solimp="0.95 0.99 0.001"/>'
            f'{"".join(parts)}</worldbody></mujoco>')


def simulate(scene: sg.Scene, num_frames: int, fps: float = 12.0, seed: int = 0) -> tuple[World, Trajectory]:
    """The scene's motion, frame by frame. Objects that move, spin or orbit are driven: their horizontal velocity
    (moves, orbits) or spin (spins) is set at every physics step, as a motor would, while gravity and contacts
    act on the rest; bounces, falls and rolls start with their state and then follow physics alone. Deterministic
    for a given scene, seed and frame rate."""
    import mujoco

    world = layout(scene, seed, num_frames / fps)
    model = mujoco.MjModel.from_xml_string(_mjcf(world))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    n = len(scene.objects)
    steps_per_frame = max(1, round(1 / (fps * SIM_STEP)))
    qvel = data.qvel.reshape(n, 6)
    orbit = {}
    for i, obj in enumerate(scene.objects):
        speed = SPEED_SCALE[obj.speed]
        if obj.motion == "rolls":
            vx, vy = (MOVE_SPEED * speed * c for c in _DIRECTION_VECTORS[obj.direction])
            r, yaw = world.bodies[i].half, world.yaw[i]
            # a free joint's angular velocity is in the body's frame: turn the rolling axis by -yaw
            wx, wy = -vy / r, vx / r
            qvel[i] = (vx, vy, 0, math.cos(yaw) * wx + math.sin(yaw) * wy, -math.sin(yaw) * wx + math.cos(yaw) * wy, 0)
        elif obj.motion == "orbits":
            rel = world.start[i, :2] - world.start[obj.target, :2]
            orbit[i] = (max(np.linalg.norm(rel), 0.5), math.atan2(rel[1], rel[0]))
    positions, quaternions, velocities = (np.zeros((num_frames, n, k)) for k in (3, 4, 3))
    last_touch: dict[tuple, float] = {}
    events = []
    ground = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "ground")
    geom_body = model.geom_bodyid - 1           # body 0 is the world
    for frame in range(num_frames):
        for _ in range(steps_per_frame if frame else 0):
            _drive(scene, data, qvel, orbit)
            falling = qvel[:, 2] < -0.3
            mujoco.mj_step(model, data)
            now = set()
            for c in data.contact[:data.ncon]:
                a, b = sorted((c.geom1, c.geom2))
                now.add(("ground" if a == ground else int(geom_body[a]), int(geom_body[b])))
            # a contact between objects that were apart for a while (contacts flicker while objects touch) is an
            # event; with the ground only a landing (falling faster than 0.3 m/s), not a resting object's flicker
            for pair in sorted(now, key=str):
                if data.time - last_touch.get(pair, -1.0) > DEBOUNCE and (pair[0] != "ground" or falling[pair[1]]):
                    events.append({"frame": frame, "objects": list(pair)})
                last_touch[pair] = data.time
        positions[frame] = data.xpos[1:]
        quaternions[frame] = data.xquat[1:]
        velocities[frame] = qvel[:, :3]
    return world, Trajectory(positions, quaternions, velocities, camera_path(scene, world.area, num_frames, fps),
                             events, fps)


def _drive(scene: sg.Scene, data, qvel: np.ndarray, orbit: dict) -> None:
    for i, obj in enumerate(scene.objects):
        speed = SPEED_SCALE[obj.speed]
        if obj.motion == "moves":
            qvel[i, :2] = [MOVE_SPEED * speed * c for c in _DIRECTION_VECTORS[obj.direction]]
            qvel[i, 3:] = 0
        elif obj.motion == "spins":
            qvel[i, :2] = 0
            qvel[i, 3:5] = 0
            qvel[i, 5] = SPIN_SPEED * speed
        elif obj.motion == "orbits":
            radius, phase = orbit[i]
            omega = ORBIT_SPEED * speed
            angle = phase + omega * data.time
            centre = data.xpos[obj.target + 1, :2]
            goal = centre + radius * np.array([math.cos(angle), math.sin(angle)])
            tangent = radius * omega * np.array([-math.sin(angle), math.cos(angle)])
            qvel[i, :2] = tangent + 20.0 * (goal - data.xpos[i + 1, :2])
            qvel[i, 3:5] = 0
