"""The model-based route: sparse voxel octrees traversed by a hierarchical DDA, vectorised in torch.

Two levels, as Embree and OptiX animate scenes:
- **object level**: each geometry (shape and size) is voxelised once, in its own frame, into a sparse voxel octree:
  the occupied leaves of a ``2**depth`` grid in Morton order with their albedo and normal, and for every level the
  sorted Morton codes of its occupied nodes. For traversal each level is also kept as a bitmap (a few kilobytes per
  geometry at depth 5), so "is this node occupied" is one gather instead of a binary search.
- **scene level**: per frame only the instances change (an instance = a geometry and a rigid transform); their
  world boxes are inserted into a scene octree of the same kind, whose leaves list the instances they touch. A ray
  tests only the instances listed in the scene leaves it crosses.

``traverse`` is the hierarchical DDA of the object level: from a ray's current point it looks up the coarsest empty
node containing it (the skip map), jumps past it, and stops at the first occupied leaf. All (ray, instance) pairs
of a frame are processed together; each iteration keeps only the pairs still searching.

Shading is Lambert's: direct light from point, sun and area lights with shadow rays (hard for point and sun,
``area_samples`` rays per pixel toward points on an area light for soft shadows), a fill light from the camera's
side (unshadowed), the ground plane z = 0 analytic, the background colour where rays miss.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidsynth.render import scene as sg
from vidsynth.render.world import AREA_LIGHT_SIZE, FILL, IRRADIANCE, Body, Trajectory, World

DEPTH = 5                       # object octrees: 32 leaves per axis
MAX_STEPS = 512                 # traversal iterations before a ray is given up (never reached in practice)
DTYPE = torch.float64           # rays and poses (float32 is not enough for the exit nudges of long rays)
SHADOW_OFFSET = 0.08            # m: shadow rays start this far from the surface they leave (no self-shadowing)


# ------------------------------------------------------------------------------------------------------- Morton

def _spread(v: Tensor) -> Tensor:
    """Bits b9..b0 of ``v`` -> b9 0 0 b8 0 0 ... b0: the 3D Morton interleave of one axis (10 bits per axis)."""
    v = v & 0x3FF
    v = (v | (v << 16)) & 0x30000FF
    v = (v | (v << 8)) & 0x300F00F
    v = (v | (v << 4)) & 0x30C30C3
    return (v | (v << 2)) & 0x9249249


def morton(ijk: Tensor) -> Tensor:
    """Integer cell coordinates [..., 3] -> Morton codes [...] (x in the lowest bit)."""
    return _spread(ijk[..., 0]) | (_spread(ijk[..., 1]) << 1) | (_spread(ijk[..., 2]) << 2)


@dataclass
class Octree:
    """A sparse voxel octree over ``2**depth`` cells per axis: ``codes[l]`` = sorted Morton codes of the occupied
    nodes at level l (level ``depth`` = leaves), ``bitmaps[l]`` = the same as a dense [2**l]^3 bool grid, and
    ``skip`` [2**depth]^3 (uint8) = for each leaf cell the coarsest level whose node around it is empty
    (``depth + 1`` where the leaf is occupied): the traversal's one lookup per step; ``rows`` [2**depth]^3 = each
    occupied leaf's row in the Morton-ordered leaf data (-1 where empty)."""
    depth: int
    codes: list[Tensor]
    bitmaps: list[Tensor]

    @classmethod
    def from_cells(cls, cells: Tensor, depth: int) -> "Octree":
        """From occupied leaf cells [N, 3] (int64, each in 0..2**depth - 1; repeats allowed)."""
        grid = torch.zeros((2 ** depth,) * 3, dtype=torch.bool)
        if len(cells):
            grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
        bitmaps = [grid]
        for _ in range(depth):                             # a node is occupied when any of its 8 children is
            bitmaps.append(torch.nn.functional.max_pool3d(bitmaps[-1][None].to(torch.uint8), 2)[0].bool())
        bitmaps.reverse()
        codes = [torch.sort(morton(torch.nonzero(b))).values for b in bitmaps]
        return cls(depth, codes, bitmaps)

    # the traversal's lookup grids: built on first use (the per-frame scene octree never needs them)
    @functools.cached_property
    def skip(self) -> Tensor:
        depth = self.depth
        skip = torch.full((2 ** depth,) * 3, depth + 1, dtype=torch.uint8)
        for level in range(depth, -1, -1):                # emptiness is inherited: the coarsest empty level wins
            factor = 2 ** (depth - level)
            empty = ~self.bitmaps[level]
            empty = empty.repeat_interleave(factor, 0).repeat_interleave(factor, 1).repeat_interleave(factor, 2)
            skip[empty] = level
        return skip

    @functools.cached_property
    def rows(self) -> Tensor:
        rows = torch.full((2 ** self.depth,) * 3, -1, dtype=torch.int64)
        leaves = torch.nonzero(self.bitmaps[self.depth])
        order = torch.argsort(morton(leaves))
        rows[leaves[order, 0], leaves[order, 1], leaves[order, 2]] = torch.arange(len(leaves))
        return rows

    def leaf_index(self, cells: Tensor) -> Tensor:
        """Index of each occupied leaf cell [R, 3] in Morton order (the leaves' data rows)."""
        return self.rows[cells[:, 0], cells[:, 1], cells[:, 2]]


def _exit(o: Tensor, inverse: Tensor, lo: Tensor, width: Tensor) -> tuple[Tensor, Tensor]:
    """Where each ray leaves the box [lo, lo + width)^3: (t, a t a little later that is surely past the face it
    leaves by: a millionth of a cell along that face's axis)."""
    bound = torch.where(inverse > 0, lo + width, lo).to(o.dtype)
    times = (bound - o) * inverse
    t, axis = times.min(-1)
    return t, t + 1e-6 * inverse.abs().gather(1, axis.unsqueeze(1)).squeeze(1)


def traverse(skip: Tensor, origin: Tensor, direction: Tensor, t_start: Tensor, t_end: Tensor,
             which: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The first occupied leaf along each ray, from ``t_start`` to ``t_end``.

    ``origin``, ``direction`` [R, 3] are in leaf units (the grid spans [0, 2**depth) per axis); ``skip`` is the
    octrees' skip maps stacked, [G, 2**depth, 2**depth, 2**depth] for G geometries, and ``which`` [R] says which
    geometry each ray walks (0 when None). Returns (t at which the ray enters the leaf, inf where none, [R]; the leaf
    cell [R, 3], -1 where none)."""
    size = skip.shape[-1]
    depth = size.bit_length() - 1
    count = len(origin)
    which = torch.zeros(count, dtype=torch.int64) if which is None else which
    # a zero component gets a tiny positive one: the ray then never leaves through that axis's faces
    inverse = 1.0 / torch.where(direction.abs() < 1e-12, torch.full_like(direction, 1e-12), direction)
    lo, hi = (0.0 - origin) * inverse, (size - origin) * inverse
    t_in = torch.maximum(torch.minimum(lo, hi).amax(-1), t_start)
    t_out = torch.minimum(torch.maximum(lo, hi).amin(-1), t_end)
    t_hit = torch.full((count,), math.inf, dtype=origin.dtype)
    cell_hit = torch.full((count, 3), -1, dtype=torch.int64)
    alive = torch.nonzero(t_in < t_out).squeeze(1)
    # each step works on the rays still searching, with their state packed in one tensor (one compaction a step):
    # origin 0:3, direction 3:6, inverse 6:9, t_out 9, flat offset of the ray's geometry in ``skip`` 10, ray 11
    state = torch.cat([origin, direction, inverse, t_out[:, None], (which * size ** 3)[:, None].to(origin.dtype),
                       torch.arange(count, dtype=origin.dtype)[:, None]], 1)[alive]
    flat = skip.reshape(-1)
    t = look = t_in[alive]           # t: where the ray entered the current node; look: where it is looked up
    strides = torch.tensor([size * size, size, 1])
    for _ in range(MAX_STEPS):
        if len(state) == 0:
            break
        cell = (state[:, 0:3] + state[:, 3:6] * look[:, None]).floor().clamp_(0, size - 1).long()
        level = flat[state[:, 10].long() + cell @ strides].long()   # the coarsest empty level here (depth + 1: hit)
        hit = level == depth + 1
        if hit.any():
            rows = state[hit, 11].long()
            t_hit[rows] = t[hit]
            cell_hit[rows] = cell[hit]
        shift = (depth - level).clamp_(min=0).unsqueeze(1)
        t, look = _exit(state[:, 0:3], state[:, 6:9], (cell >> shift) << shift, torch.ones_like(shift) << shift)
        keep = ~hit & (t < state[:, 9])
        state, t, look = state[keep], t[keep], look[keep]
    return t_hit, cell_hit


# ---------------------------------------------------------------------------------------------------- geometry

@dataclass
class Geometry:
    """One voxelised shape: its octree, leaf normals [N, 3] (in Morton order), and the cube it spans in its own
    frame (``lo`` corner, ``edge`` length)."""
    octree: Octree
    normals: Tensor
    lo: float
    edge: float


def voxelise(body: Body, depth: int = DEPTH) -> Geometry:
    """Leaves = cells whose centre is inside the mesh; normals from the gradient of the smoothed occupancy."""
    mesh = body.mesh()
    edge = 2.0 * float(np.abs(mesh.bounds).max()) * 1.02
    lo = -edge / 2
    n = 2 ** depth
    centres = lo + (np.arange(n) + 0.5) * edge / n
    points = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    inside = torch.from_numpy(mesh.contains(points).reshape(n, n, n))
    cells = torch.nonzero(inside)
    octree = Octree.from_cells(cells, depth)
    order = torch.argsort(morton(cells))
    cells = cells[order]
    field = inside.float()[None, None]
    for _ in range(2):
        field = torch.nn.functional.avg_pool3d(torch.nn.functional.pad(field, (1,) * 6), 3, 1)
    field = torch.nn.functional.pad(field, (1,) * 6)[0, 0]
    i, j, k = (cells + 1).unbind(1)
    gradient = torch.stack([field[i + 1, j, k] - field[i - 1, j, k], field[i, j + 1, k] - field[i, j - 1, k],
                            field[i, j, k + 1] - field[i, j, k - 1]], -1)
    normals = -gradient / gradient.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return Geometry(octree, normals, lo, edge)


_GEOMETRIES: dict[tuple, Geometry] = {}


def geometry_for(body: Body, depth: int = DEPTH) -> Geometry:
    key = (body.shape, body.half, depth)
    if key not in _GEOMETRIES:
        _GEOMETRIES[key] = voxelise(body, depth)
    return _GEOMETRIES[key]


# ------------------------------------------------------------------------------------------------------ scene

class Instances:
    """The scene at one frame: every object's geometry and pose, and the scene octree over their boxes."""

    def __init__(self, geometries: list[Geometry], kinds: Tensor, rotations: Tensor, positions: Tensor,
                 top_depth: int | None = None):
        self.geometries, self.kinds = geometries, kinds
        depth = geometries[0].octree.depth
        self.skip = torch.stack([g.octree.skip for g in geometries])
        self.depth = depth
        dtype = positions.dtype
        edges = torch.tensor([g.edge for g in geometries], dtype=dtype)[kinds]
        los = torch.tensor([g.lo for g in geometries], dtype=dtype)[kinds]
        # world -> leaf units of each instance: x_leaf = (R^T (x - p) - lo) * 2**depth / edge
        self.scale = (2 ** depth) / edges
        self.rotations, self.positions, self.los = rotations, positions, los
        corners = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=dtype)
        local = los[:, None, None] + corners[None] * edges[:, None, None]                 # [N, 8, 3]
        world = torch.einsum("nij,nkj->nki", rotations, local) + positions[:, None]
        self.box_lo, self.box_hi = world.amin(1), world.amax(1)
        # the scene octree: a cube around every box, leaves listing the instances whose box they touch
        count = len(kinds)
        top = top_depth if top_depth is not None else max(1, min(6, math.ceil(math.log2(max(count, 1)) / 3) + 1))
        self.top_depth = top
        lo, hi = self.box_lo.amin(0), self.box_hi.amax(0)
        self.top_lo, self.top_edge = lo, float((hi - lo).max()) * 1.001 + 1e-6
        cells_per = (2 ** top) / self.top_edge
        first = ((self.box_lo - lo) * cells_per).floor().long().clamp(0, 2 ** top - 1)
        last = ((self.box_hi - lo) * cells_per).floor().long().clamp(0, 2 ** top - 1)
        extent = last - first + 1
        sizes = extent.prod(1)
        instance = torch.repeat_interleave(torch.arange(count), sizes)
        k = torch.arange(int(sizes.sum())) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
        e = extent[instance]
        offset = torch.stack([k // (e[:, 1] * e[:, 2]), (k // e[:, 2]) % e[:, 1], k % e[:, 2]], 1)
        pairs = torch.cat([first[instance] + offset, instance[:, None]], 1)
        # the scene octree's leaves: which are occupied, and the instances each lists (pairs sorted by leaf)
        n = 2 ** top
        keys = (pairs[:, 0] * n + pairs[:, 1]) * n + pairs[:, 2]
        order = torch.argsort(keys, stable=True)
        self.pair_keys, self.pair_instance = keys[order], pairs[order, 3]
        self.top = Octree.from_cells(pairs[:, :3], top)
        self.top_occupied = self.top.bitmaps[top].reshape(-1)

    def to_local(self, origin: Tensor, direction: Tensor, instance: Tensor) -> tuple[Tensor, Tensor]:
        """World rays -> instance leaf units (the ray parameter t is unchanged: the map is affine)."""
        rot, scale = self.rotations[instance], self.scale[instance].unsqueeze(1)
        o = (torch.einsum("nji,nj->ni", rot, origin - self.positions[instance]) - self.los[instance, None]) * scale
        d = torch.einsum("nji,nj->ni", rot, direction) * scale
        return o, d

    def intersect_instances(self, origin: Tensor, direction: Tensor, instance: Tensor, t_start: Tensor,
                            t_end: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest hit of each (ray, instance) pair: (t [P], leaf cell [P, 3])."""
        o, d = self.to_local(origin, direction, instance)
        return traverse(self.skip, o, d, t_start, t_end, self.kinds[instance])

    def candidates(self, origin: Tensor, direction: Tensor, t_start: Tensor, t_end: Tensor
                   ) -> tuple[Tensor, Tensor]:
        """(ray, instance) pairs to test: the instances listed in every occupied scene-octree leaf each ray passes
        through between ``t_start`` and ``t_end``, each pair once. The scene octree is shallow (at most 2**6 leaves
        per axis), so the leaves are found all at once: a ray enters a leaf where it starts or where it crosses one
        of the grid's planes, and the order does not matter since every candidate is tested."""
        n = 2 ** self.top_depth
        cells_per = n / self.top_edge
        o, d = (origin - self.top_lo) * cells_per, direction * cells_per
        inverse = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
        lo, hi = -o * inverse, (n - o) * inverse
        t_in = torch.maximum(torch.minimum(lo, hi).amax(-1), t_start)
        t_out = torch.minimum(torch.maximum(lo, hi).amin(-1), t_end)
        planes = torch.arange(1, n, dtype=o.dtype)
        crossing = (planes[None, None] - o[..., None]) * inverse[..., None]                   # [R, 3, n - 1]
        ray, axis, plane = torch.nonzero((crossing > t_in[:, None, None]) & (crossing < t_out[:, None, None]),
                                         as_tuple=True)
        cell = (o[ray] + d[ray] * crossing[ray, axis, plane, None]).floor().long()
        # on the crossed axis, the leaf entered: the plane's index going up, the one below going down
        cell[torch.arange(len(ray)), axis] = plane + 1 - (d[ray, axis] < 0).long()
        entered = torch.nonzero(t_in < t_out).squeeze(1)
        first = (o[entered] + d[entered] * t_in[entered, None]).floor().long()
        ray, cell = torch.cat([ray, entered]), torch.cat([cell, first]).clamp(0, n - 1)
        key = (cell[:, 0] * n + cell[:, 1]) * n + cell[:, 2]
        occupied = self.top_occupied[key]
        ray, key = ray[occupied], key[occupied]
        start = torch.searchsorted(self.pair_keys, key)
        counts = torch.searchsorted(self.pair_keys, key, right=True) - start
        owner = torch.repeat_interleave(torch.arange(len(ray)), counts)
        offsets = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        instance = self.pair_instance[start[owner] + offsets]
        pairs = torch.unique(ray[owner] * len(self.kinds) + instance)
        return pairs // len(self.kinds), pairs % len(self.kinds)

    def cast(self, origin: Tensor, direction: Tensor, t_end: Tensor, t_start: Tensor | None = None,
             candidates: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Nearest object hit of each ray in [``t_start``, ``t_end``): (t, or ``t_end`` where none; instance, -1
        where none; leaf cell). The scene octree gives each ray its candidate instances (or ``candidates`` does:
        every instance for every ray, the brute-force baseline); all (ray, instance) pairs are then traversed at
        once."""
        count = len(origin)
        t_start = torch.zeros(count, dtype=origin.dtype) if t_start is None else t_start
        ray, instance = candidates if candidates is not None else self.candidates(origin, direction, t_start, t_end)
        t_hit, leaf = self.intersect_instances(origin[ray], direction[ray], instance, t_start[ray], t_end[ray])
        best_t = t_end.clone().scatter_reduce(0, ray, t_hit, "amin")
        winner = torch.nonzero(torch.isfinite(t_hit) & (t_hit == best_t[ray])).squeeze(1)
        best_i = torch.full((count,), -1, dtype=torch.int64)
        best_cell = torch.full((count, 3), -1, dtype=torch.int64)
        best_i[ray[winner]] = instance[winner]
        best_cell[ray[winner]] = leaf[winner]
        return best_t, best_i, best_cell

    def all_pairs(self, count: int) -> tuple[Tensor, Tensor]:
        """Every (ray, instance) pair: what a renderer without the scene octree tests."""
        n = len(self.kinds)
        return torch.arange(count).repeat_interleave(n), torch.arange(n).repeat(count)

    def normals(self, instance: Tensor, cell: Tensor) -> Tensor:
        """World normals of hit leaves."""
        out = torch.zeros(len(instance), 3, dtype=self.rotations.dtype)
        for g, geometry in enumerate(self.geometries):
            mask = self.kinds[instance] == g
            if mask.any():
                local = geometry.normals[geometry.octree.leaf_index(cell[mask])].to(out.dtype)
                out[mask] = torch.einsum("nij,nj->ni", self.rotations[instance[mask]], local)
        return out


# --------------------------------------------------------------------------------------------------- renderer

class OctreeRenderer:
    """Same interface as ``MitsubaRenderer``: ``frame(t)`` -> linear RGB [H, W, 3], ``passes(t)`` -> (world position,
    NaN where nothing is hit; ids). One ray per pixel through its centre; ``area_samples`` shadow rays per pixel
    toward an area light."""

    def __init__(self, world: World, trajectory: Trajectory, resolution: int, spp: int = 1, area_samples: int = 9,
                 depth: int = DEPTH):
        self.world, self.trajectory, self.resolution = world, trajectory, resolution
        self.area_samples = area_samples
        kinds_of: dict[tuple, int] = {}
        geometries = []
        kinds = []
        for body in world.bodies:
            key = (body.shape, body.half)
            if key not in kinds_of:
                kinds_of[key] = len(geometries)
                geometries.append(geometry_for(body, depth))
            kinds.append(kinds_of[key])
        self.geometries, self.kinds = geometries, torch.tensor(kinds)
        self.colours = torch.tensor([sg.COLOURS[o.colour] for o in world.scene.objects], dtype=DTYPE)
        self.emissive = torch.tensor([o.material == "emissive" for o in world.scene.objects])
        self.irradiance, self.fill, self.area_size = IRRADIANCE, FILL, AREA_LIGHT_SIZE
        self._cache: dict[int, tuple] = {}

    def instances(self, t: int) -> Instances:
        traj = self.trajectory
        rotations = torch.from_numpy(np.stack([traj.rotation(t, i) for i in range(len(self.world.bodies))]))
        return Instances(self.geometries, self.kinds, rotations.to(DTYPE), torch.from_numpy(traj.positions[t]).to(DTYPE))

    def _primary(self, t: int):
        if t not in self._cache:
            camera = self.trajectory.cameras[t]
            origin, direction = (torch.from_numpy(a.reshape(-1, 3)).to(DTYPE)
                                 for a in camera.rays(self.resolution, self.resolution))
            scene = self.instances(t)
            t_ground = torch.where(direction[:, 2] < -1e-9, -origin[:, 2] / direction[:, 2].clamp(max=-1e-9),
                                   torch.full_like(origin[:, 2], math.inf))
            hit_t, instance, cell = scene.cast(origin, direction, t_ground)
            self._cache = {t: (scene, origin, direction, t_ground, hit_t, instance, cell)}
        return self._cache[t]

    def frame(self, t: int, seed: int = 0) -> np.ndarray:
        scene, origin, direction, t_ground, hit_t, instance, cell = self._primary(t)
        world, res = self.world, self.resolution
        on_object = instance >= 0
        on_ground = ~on_object & torch.isfinite(t_ground)
        point = origin + direction * hit_t.clamp(max=1e9).unsqueeze(1)
        normal = torch.zeros_like(point)
        normal[on_ground, 2] = 1.0
        if on_object.any():
            normal[on_object] = scene.normals(instance[on_object], cell[on_object])
        albedo = torch.zeros_like(point)
        albedo[on_ground] = torch.from_numpy(world.ground).to(DTYPE)
        albedo[on_object] = self.colours[instance[on_object]]
        lit = on_object | on_ground
        radiance = torch.zeros_like(point)
        per_light = self.irradiance / math.sqrt(len(world.lights))
        generator = torch.Generator().manual_seed(seed)
        for kind, position, colour in world.lights:
            position_t = torch.from_numpy(position).to(DTYPE)
            colour_t = torch.from_numpy(colour).to(DTYPE)
            if kind == "area":
                targets = self._area_points(position_t, generator)           # [S, 3]
            else:
                targets = position_t[None]
            light = torch.zeros(len(point), dtype=point.dtype)
            for target in targets:
                if kind == "sun":
                    to_light = position_t / position_t.norm() * 1e4
                    scale = per_light
                else:
                    to_light = target - point
                    scale = per_light * float(position_t @ position_t) / (to_light * to_light).sum(-1)
                cosine = ((normal * to_light).sum(-1) / to_light.norm(dim=-1)).clamp(min=0)
                rows = torch.nonzero(lit & (cosine > 0)).squeeze(1)
                visible = torch.zeros(len(point), dtype=torch.bool)
                if len(rows):
                    d = to_light[rows] if to_light.dim() == 2 else to_light.expand(len(rows), 3)
                    # start 8 cm out (a few leaves of the surface's own object), in units of the ray's length
                    t_min = SHADOW_OFFSET / d.norm(dim=-1)
                    _, blocker, _ = scene.cast(point[rows], d, torch.ones(len(rows), dtype=point.dtype), t_min)
                    visible[rows] = blocker < 0
                light += torch.where(visible, cosine * scale, torch.zeros_like(cosine))
            radiance += (light / len(targets)).unsqueeze(1) * colour_t
        view = self.trajectory.cameras[0].origin - self.trajectory.cameras[0].target
        fill_dir = torch.from_numpy(view / np.linalg.norm(view)).to(DTYPE)
        radiance += (normal @ fill_dir).clamp(min=0).unsqueeze(1) * self.fill * self.irradiance
        image = albedo / math.pi * radiance
        glow = on_object & self.emissive[instance.clamp(min=0)]
        image[glow] = 2.5 * self.colours[instance[glow]]
        image[~lit] = torch.from_numpy(world.background).to(DTYPE)
        return image.reshape(res, res, 3).float().numpy()

    def _area_points(self, position: Tensor, generator: torch.Generator) -> Tensor:
        """``area_samples`` points on the area light's square (stratified), which faces the scene's centre."""
        side = self.area_size * self.world.area / 2.5
        forward = -position / position.norm()
        right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=position.dtype))
        right = right / right.norm().clamp(min=1e-9)
        up = torch.linalg.cross(right, forward)
        n = max(1, int(round(math.sqrt(self.area_samples))))
        u = (torch.arange(n, dtype=position.dtype) + torch.rand(n, generator=generator, dtype=position.dtype)) / n
        uu, vv = torch.meshgrid(u - 0.5, u - 0.5, indexing="ij")
        return position + side * (uu.reshape(-1, 1) * right + vv.reshape(-1, 1) * up)

    def passes(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        _, origin, direction, t_ground, hit_t, instance, _ = self._primary(t)
        res = self.resolution
        hit = (instance >= 0) | torch.isfinite(t_ground)
        point = origin + direction * torch.where(instance >= 0, hit_t, t_ground).clamp(max=1e9).unsqueeze(1)
        point[~hit] = math.nan
        return point.reshape(res, res, 3).float().numpy(), (instance + 1).reshape(res, res).numpy()
