"""Synthetic whole-body CT phantoms with DAP Atlas labels and lesion instances.

Tests, demos and benchmarks of every module use these phantoms instead of patient data. The anatomy
is defined **analytically in patient RAS millimetres** (+x = patient Right, +y = Anterior,
+z = Superior), from the top of the skull (z ~ 1005 mm) to the mid-thighs (z = 0), body centred
at x = 0. Shapes are superellipsoids, elliptic/superelliptic cross-section stacks, cone-capsules
(tubes along polylines), boxes and half-spaces combined with union / intersection / difference.
Each shape is rasterised onto an arbitrary voxel grid (any spacing, any axis permutation or flip,
or an oblique direction matrix): only the voxels inside the shape's bounding box are visited, and
their RAS positions are computed from the grid's IJK->RAS matrix. Structures are painted in a
fixed order (body layers, muscles, organs, vessels, airways, bones, ribs last), so later structures
win where shapes overlap.

Consequences worth knowing:

* The same ``seed`` gives the same anatomy in physical space whatever the grid orientation. The
  presets build grids whose voxel centres are the *same physical points* for every axis-aligned
  orientation ("RAS", "LPS", "SRA", ...), so labels and CT (noise included) agree voxel for voxel
  after reorientation.
* A few thin structures get a minimum thickness that depends on the coarsest voxel size (ribs,
  vertebral arches, small vessels, the gaps between vertebrae), so that ribs stay single connected
  components and vertebrae stay separated even on the 6 mm "tiny" grid. Positions never depend on
  the grid.
* The CT is computed from a per-voxel *material* (air, lung, fat, cortical bone, ...) looked up in
  :data:`MATERIAL_HU`, plus Gaussian noise; labels keep the host anatomy where lesions are drawn.

Anatomical simplifications: no arms, no heart chambers (the heart is one label), no nasal cavity,
no gluteus medius/minimus, no duodenal/SMA detail beyond a C-loop. Sizes and positions vary
slightly with the seed (about +-4 % body width/depth, +-5 % organ size, a few mm of position).
"""

from __future__ import annotations

import abc
import itertools
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from AnatomyCommonLib.volume import Volume

from ..label_schema import label_id, rib_id, vertebra_id

__all__ = [
    "MATERIAL_HU",
    "SIZE_PRESETS",
    "Phantom",
    "make_phantom",
    "orientation_to_direction",
    "phantom_grid",
]

# ---------------------------------------------------------------------------------------------
# Presets and materials
# ---------------------------------------------------------------------------------------------

#: Physical centre (RAS mm) of every preset field of view: the body is centred at x = 0.
FOV_CENTER_RAS: tuple[float, float, float] = (0.0, 10.0, 510.0)

#: Grid presets. ``spacing_ras_mm`` and ``fov_ras_mm`` are given per *anatomical* axis
#: (left-right, posterior-anterior, inferior-superior) and mapped onto i, j, k by the orientation.
SIZE_PRESETS: dict[str, dict[str, tuple[float, float, float]]] = {
    "tiny": {"spacing_ras_mm": (6.0, 6.0, 6.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    "small": {"spacing_ras_mm": (3.0, 3.0, 3.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    "medium": {"spacing_ras_mm": (1.6, 1.6, 2.0), "fov_ras_mm": (420.0, 330.0, 1020.0)},
    # 512 x 512 x 510 voxels, a typical whole-body CT reconstruction (FOV 410 mm).
    "realistic": {"spacing_ras_mm": (0.8, 0.8, 2.0), "fov_ras_mm": (409.6, 409.6, 1020.0)},
}

_MATERIAL_TABLE: tuple[tuple[str, float], ...] = (
    ("air", -1000.0),  # outside the body, airways, bowel and stomach gas
    ("lung", -850.0),
    ("fat", -100.0),
    ("muscle", 50.0),
    ("skin", 30.0),
    ("visceral tissue", -40.0),  # "unknown tissue": mesentery, mediastinum, face
    ("liver", 60.0),
    ("spleen", 50.0),
    ("kidney cortex", 40.0),
    ("kidney medulla", 28.0),
    ("blood", 40.0),  # heart, aorta, veins (non-contrast)
    ("stomach content", 20.0),
    ("small bowel", 30.0),
    ("colon content", 10.0),
    ("urine", 5.0),
    ("brain", 35.0),
    ("eyeball", 10.0),
    ("cortical bone", 1000.0),
    ("dense cortical bone", 1200.0),  # femoral shaft
    ("thin cortical bone", 750.0),  # vertebrae, ribs, sternum
    ("cancellous bone", 250.0),
    ("skull", 1000.0),
    ("cartilage", 120.0),
    ("intervertebral disc", 80.0),
    ("spinal canal", 25.0),
    ("pancreas", 45.0),
    ("bile", 10.0),
    ("adrenal", 30.0),
    ("thyroid", 110.0),
    ("prostate", 40.0),
    ("testis", 35.0),
    ("uterus", 55.0),
    ("ovary", 35.0),
    ("breast", -50.0),
    ("esophagus", 40.0),
    ("lesion liver", 20.0),  # hypodense metastasis
    ("lesion lung", 40.0),  # soft-tissue nodule
    ("lesion bone", 120.0),  # lytic
    ("lesion lymph node", 40.0),
    ("lesion kidney", 10.0),  # cyst-like
    ("lesion spleen", 25.0),
)

#: Mean Hounsfield units of every material (before noise).
MATERIAL_HU: dict[str, float] = dict(_MATERIAL_TABLE)
_MAT: dict[str, int] = {name: index for index, (name, _) in enumerate(_MATERIAL_TABLE)}
_HU_LUT = np.array([hu for _, hu in _MATERIAL_TABLE], dtype=np.float32)

_SKIN_MM = 2.5
#: Coarsest voxel size (mm) at which ribs and vertebrae are guaranteed to stay separate pieces.
_MAX_FAITHFUL_SPACING_MM = 8.0
_SUBCUTANEOUS = frozenset({0, 42, 3})  # air, skin, subcutaneous fat

_AXIS_LETTERS: dict[str, tuple[int, float]] = {
    "R": (0, 1.0),
    "L": (0, -1.0),
    "A": (1, 1.0),
    "P": (1, -1.0),
    "S": (2, 1.0),
    "I": (2, -1.0),
}


def orientation_to_direction(code: str) -> np.ndarray:
    """3x3 direction matrix (columns = RAS unit vectors of i, j, k) of an axis code like "LPS".

    Each letter names the anatomical direction the voxel index **increases towards** (the
    NIfTI/nibabel "axcodes" and DICOM convention): "RAS" means i grows towards patient Right,
    j towards Anterior, k towards Superior (the identity); "LPS" means i grows towards Left,
    j towards Posterior, k towards Superior (ITK's/DICOM's default patient frame). Beware that
    ITK's ``SpatialOrientation`` enum names orientations by where axes come **from**, so ITK's
    "RAI" is this function's "LPS".
    """
    if not isinstance(code, str) or len(code) != 3:
        raise ValueError(
            f"Orientation must be a 3-letter code such as 'RAS' or 'LPS' (one of R/L, A/P, S/I "
            f"per voxel axis), got {code!r}."
        )
    direction = np.zeros((3, 3))
    used: set[int] = set()
    for column, letter in enumerate(code.upper()):
        if letter not in _AXIS_LETTERS:
            raise ValueError(
                f"Orientation {code!r} has the letter {letter!r}; use only R, L, A, P, S, I "
                "(one from each pair), e.g. 'RAS', 'LPS', 'LAI', 'SRA'."
            )
        axis, sign = _AXIS_LETTERS[letter]
        if axis in used:
            raise ValueError(
                f"Orientation {code!r} names the same anatomical axis twice; use one letter from "
                "each pair R/L, A/P and S/I."
            )
        used.add(axis)
        direction[axis, column] = sign
    return direction


# ---------------------------------------------------------------------------------------------
# Analytic shapes. ``depth(x, y, z)`` is an approximate signed distance in mm: positive inside,
# zero on the surface. Inputs are broadcastable float32 arrays (axis-aligned grids pass 1-D
# "rulers" shaped to broadcast, which keeps evaluation cheap).
# ---------------------------------------------------------------------------------------------

_INF = np.inf


def _rotation(axis: str, degrees: float) -> np.ndarray:
    """Right-handed rotation about a RAS axis ("x", "y" or "z")."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float)


def _frame(first: Sequence[float], second: Sequence[float]) -> np.ndarray:
    """Orthonormal frame (columns) whose first axis is ``first`` and second lies near ``second``."""
    u = np.asarray(first, dtype=float)
    u = u / np.linalg.norm(u)
    v = np.asarray(second, dtype=float)
    v = v - u * float(u @ v)
    v = v / np.linalg.norm(v)
    return np.column_stack([u, v, np.cross(u, v)])


def _combine(terms: Sequence[tuple[float, Any]]) -> Any:
    """Sum of coefficient * array, skipping zero coefficients (keeps broadcast shapes small)."""
    total: Any = None
    for coefficient, array in terms:
        if abs(coefficient) < 1e-12:
            continue
        term = array if coefficient == 1.0 else np.float32(coefficient) * array
        total = term if total is None else total + term
    return np.float32(0.0) if total is None else total


class Shape(abc.ABC):
    """Base class: an analytic solid with a bounding box and an approximate depth function."""

    @abc.abstractmethod
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corners of the shape's axis-aligned bounding box in RAS mm."""

    @abc.abstractmethod
    def depth(self, x: Any, y: Any, z: Any) -> Any:
        """Approximate signed depth in mm at RAS points (> 0 inside the shape)."""

    def pieces(self) -> list[Shape]:
        """Sub-shapes that may be painted separately (with their own, tighter bounding boxes)."""
        return [self]

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Depth at (N, 3) points (for sampling, independent of any grid)."""
        p = np.asarray(points, dtype=np.float32)
        return np.asarray(self.depth(p[:, 0], p[:, 1], p[:, 2]), dtype=np.float32)


class Ellipsoid(Shape):
    """Superellipsoid ``sum |q_i / s_i|^p = 1`` in a (possibly rotated) local frame.

    ``rotation`` columns are the local axes in RAS. The depth is the distance to the surface
    along the ray from the centre (exact on the principal axes).
    """

    def __init__(
        self,
        center: Sequence[float],
        semi_axes: Sequence[float],
        rotation: np.ndarray | None = None,
        exponent: float = 2.0,
    ) -> None:
        self.center = np.asarray(center, dtype=float)
        self.semi = np.asarray(semi_axes, dtype=float)
        self.rotation = None if rotation is None else np.asarray(rotation, dtype=float)
        self.exponent = float(exponent)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        half = self.semi.copy() if self.rotation is None else np.abs(self.rotation) @ self.semi
        return self.center - half, self.center + half

    def _local(self, x: Any, y: Any, z: Any) -> tuple[Any, Any, Any]:
        dx, dy, dz = (
            x - np.float32(self.center[0]),
            y - np.float32(self.center[1]),
            z - np.float32(self.center[2]),
        )
        if self.rotation is None:
            return dx, dy, dz
        r = self.rotation
        return tuple(_combine([(r[0, c], dx), (r[1, c], dy), (r[2, c], dz)]) for c in range(3))

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        q = self._local(x, y, z)
        s = self.semi.astype(np.float32)
        r2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2]
        if self.exponent == 2.0:
            rho = np.sqrt((q[0] / s[0]) ** 2 + (q[1] / s[1]) ** 2 + (q[2] / s[2]) ** 2)
        else:
            p = np.float32(self.exponent)
            rho = (np.abs(q[0] / s[0]) ** p + np.abs(q[1] / s[1]) ** p + np.abs(q[2] / s[2]) ** p) ** (1 / p)
        r = np.sqrt(r2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = r / rho - r
        return np.where(rho > 1e-6, d, np.float32(s.min()))


def Sphere(center: Sequence[float], radius: float) -> Ellipsoid:
    return Ellipsoid(center, (radius, radius, radius))


class Box(Shape):
    """Rectangular box (exact depth inside), optionally rotated."""

    def __init__(
        self, center: Sequence[float], half_sizes: Sequence[float], rotation: np.ndarray | None = None
    ):
        self.inner = Ellipsoid(center, half_sizes, rotation)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.bbox()

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        q = self.inner._local(x, y, z)
        s = self.inner.semi.astype(np.float32)
        return np.minimum(np.minimum(s[0] - np.abs(q[0]), s[1] - np.abs(q[1])), s[2] - np.abs(q[2]))


class Capsule(Shape):
    """Segment from ``p0`` to ``p1`` swept by a sphere whose radius goes linearly from r0 to r1."""

    def __init__(self, p0: Sequence[float], p1: Sequence[float], r0: float, r1: float | None = None):
        self.p0 = np.asarray(p0, dtype=float)
        self.p1 = np.asarray(p1, dtype=float)
        self.r0 = float(r0)
        self.r1 = float(r0 if r1 is None else r1)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.minimum(self.p0 - self.r0, self.p1 - self.r1)
        hi = np.maximum(self.p0 + self.r0, self.p1 + self.r1)
        return lo, hi

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        d = self.p1 - self.p0
        length2 = float(d @ d)
        dx = x - np.float32(self.p0[0])
        dy = y - np.float32(self.p0[1])
        dz = z - np.float32(self.p0[2])
        if length2 < 1e-12:
            t: Any = np.float32(0.0)
        else:
            t = np.clip(
                _combine([(d[0] / length2, dx), (d[1] / length2, dy), (d[2] / length2, dz)]), 0.0, 1.0
            )
        ex = dx - np.float32(d[0]) * t if d[0] else dx
        ey = dy - np.float32(d[1]) * t if d[1] else dy
        ez = dz - np.float32(d[2]) * t if d[2] else dz
        radius = np.float32(self.r0) + np.float32(self.r1 - self.r0) * t
        return radius - np.sqrt(ex * ex + ey * ey + ez * ez)


class HalfSpace(Shape):
    """Points on the side of the plane through ``point`` that ``normal`` points to."""

    def __init__(self, point: Sequence[float], normal: Sequence[float]):
        n = np.asarray(normal, dtype=float)
        self.normal = n / np.linalg.norm(n)
        self.point = np.asarray(point, dtype=float)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(3, -_INF), np.full(3, _INF)

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        n, p = self.normal, self.point
        return _combine([(n[0], x), (n[1], y), (n[2], z)]) - np.float32(n @ p)


class ZSlab(Shape):
    """All points with z0 <= z <= z1."""

    def __init__(self, z0: float, z1: float):
        self.z0, self.z1 = float(z0), float(z1)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([-_INF, -_INF, self.z0]), np.array([_INF, _INF, self.z1])

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        return np.minimum(z - np.float32(self.z0), np.float32(self.z1) - z)


class ZStack(Shape):
    """Stack of axial superellipses interpolated linearly between keyframes along z.

    Keyframes (ascending z): semi-axes ``a`` (left-right) and ``b`` (anterior-posterior), centre
    (``xc``, ``yc``) and exponent ``p``. Closed by flat caps at the first and last keyframe.
    """

    def __init__(
        self,
        z: Sequence[float],
        a: Sequence[float],
        b: Sequence[float],
        xc: Sequence[float] | float = 0.0,
        yc: Sequence[float] | float = 0.0,
        p: Sequence[float] | float = 2.0,
    ):
        self.z = np.asarray(z, dtype=float)
        if np.any(np.diff(self.z) <= 0):
            raise ValueError("ZStack keyframes must have strictly increasing z.")
        n = len(self.z)

        def column(values: Sequence[float] | float) -> np.ndarray:
            arr = np.asarray(values, dtype=float)
            return np.full(n, float(arr)) if arr.ndim == 0 else arr

        self.a, self.b, self.xc, self.yc, self.p = (column(v) for v in (a, b, xc, yc, p))

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([np.min(self.xc - self.a), np.min(self.yc - self.b), self.z[0]])
        hi = np.array([np.max(self.xc + self.a), np.max(self.yc + self.b), self.z[-1]])
        return lo, hi

    def _at(self, values: np.ndarray, z: Any) -> Any:
        if np.all(values == values[0]):
            return np.float32(values[0])
        return np.interp(z, self.z, values).astype(np.float32)

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        a, b = self._at(self.a, z), self._at(self.b, z)
        dx = x - self._at(self.xc, z)
        dy = y - self._at(self.yc, z)
        p = self._at(self.p, z)
        if np.ndim(p) == 0 and float(p) == 2.0:
            rho = np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
        else:
            rho = (np.abs(dx / a) ** p + np.abs(dy / b) ** p) ** (1.0 / p)
        r = np.sqrt(dx * dx + dy * dy)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = r / rho - r
        d = np.where(rho > 1e-6, d, np.minimum(a, b))
        return np.minimum(d, np.minimum(z - np.float32(self.z[0]), np.float32(self.z[-1]) - z))


class Union(Shape):
    def __init__(self, *shapes: Shape):
        self.shapes = list(shapes)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        boxes = [s.bbox() for s in self.shapes]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        result = self.shapes[0].depth(x, y, z)
        for shape in self.shapes[1:]:
            result = np.maximum(result, shape.depth(x, y, z))
        return result

    def pieces(self) -> list[Shape]:
        return [piece for shape in self.shapes for piece in shape.pieces()]


class Intersection(Shape):
    def __init__(self, *shapes: Shape):
        self.shapes = list(shapes)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        boxes = [s.bbox() for s in self.shapes]
        return np.max([b[0] for b in boxes], axis=0), np.min([b[1] for b in boxes], axis=0)

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        result = self.shapes[0].depth(x, y, z)
        for shape in self.shapes[1:]:
            result = np.minimum(result, shape.depth(x, y, z))
        return result


class Difference(Shape):
    """``base`` minus every shape of ``removed``."""

    def __init__(self, base: Shape, *removed: Shape):
        self.base = base
        self.removed = list(removed)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.base.bbox()

    def depth(self, x: Any, y: Any, z: Any) -> Any:
        result = self.base.depth(x, y, z)
        for shape in self.removed:
            result = np.minimum(result, -shape.depth(x, y, z))
        return result


def Tube(points: Sequence[Sequence[float]], radii: Sequence[float] | float) -> Union:
    """Union of cone-capsules along a polyline (radius per point, or one radius)."""
    pts = np.asarray(points, dtype=float)
    rad = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
    return Union(*(Capsule(pts[n], pts[n + 1], rad[n], rad[n + 1]) for n in range(len(pts) - 1)))


# ---------------------------------------------------------------------------------------------
# Rasterisation onto a voxel grid
# ---------------------------------------------------------------------------------------------

#: Where a structure may be painted, by the label already present.
#: "any": everywhere; "body": inside the body but never over the skin; "deep": also not over
#: subcutaneous fat; "core": also not over the muscle layer of the body wall.
_WHERE_EXCLUDED: dict[str, frozenset[int]] = {
    "any": frozenset(),
    "body": frozenset({0, 42}),
    "deep": _SUBCUTANEOUS,
    "core": _SUBCUTANEOUS | {2},
}


@dataclass
class _BodyPart:
    """A piece of the body surface with its layers (skin, fat, muscle) and what lies inside."""

    shape: Shape
    fat_mm: Callable[[Any], Any]
    muscle_mm: Callable[[Any], Any]
    core_label: Callable[[Any], Any]
    core_material: Callable[[Any], Any]


class _Canvas:
    """Label and material arrays on one voxel grid, plus painting of analytic shapes.

    Shapes live in *template* millimetres; the patient RAS position is
    ``(x * scale_x, y * scale_y, z)`` (the seed-dependent body width and depth).
    """

    def __init__(
        self, shape_kji: tuple[int, int, int], ijk_to_ras: np.ndarray, scale_xy: tuple[float, float]
    ):
        self.shape = tuple(int(n) for n in shape_kji)
        self.matrix = np.asarray(ijk_to_ras, dtype=float)
        self.inverse = np.linalg.inv(self.matrix)
        self.scale = np.array([scale_xy[0], scale_xy[1], 1.0])
        self.labels = np.zeros(self.shape, dtype=np.uint8)
        self.material = np.zeros(self.shape, dtype=np.uint8)  # 0 = air
        self.chunk_voxels = 1 << 22
        nk, nj, ni = self.shape
        corners = np.array(
            [[i, j, k, 1.0] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5) for k in (-0.5, nk - 0.5)]
        )
        ras = corners @ self.matrix.T
        self.ras_lo, self.ras_hi = ras[:, :3].min(axis=0), ras[:, :3].max(axis=0)
        self._luts: dict[Any, np.ndarray] = {}

    # -- geometry
    def index_box(self, lo_t: np.ndarray, hi_t: np.ndarray) -> tuple[int, int, int, int, int, int] | None:
        """Voxel index ranges (k0, k1, j0, j1, i0, i1) covering a template-space bounding box."""
        lo = np.maximum(np.asarray(lo_t) * self.scale, self.ras_lo)
        hi = np.minimum(np.asarray(hi_t) * self.scale, self.ras_hi)
        if np.any(lo > hi):
            return None
        corners = np.array(
            [[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        ijk = (corners @ self.inverse.T)[:, :3]
        first = np.floor(ijk.min(axis=0)).astype(int)
        last = np.ceil(ijk.max(axis=0)).astype(int) + 1
        nk, nj, ni = self.shape
        i0, j0, k0 = np.maximum(first, 0)
        i1, j1, k1 = np.minimum(last, (ni, nj, nk))
        if i0 >= i1 or j0 >= j1 or k0 >= k1:
            return None
        return int(k0), int(k1), int(j0), int(j1), int(i0), int(i1)

    def coords(self, k0: int, k1: int, j0: int, j1: int, i0: int, i1: int) -> tuple[Any, Any, Any]:
        """Template coordinates of the voxel centres of a block, as broadcastable float32 arrays."""
        rulers = (
            np.arange(i0, i1, dtype=float).reshape(1, 1, -1),
            np.arange(j0, j1, dtype=float).reshape(1, -1, 1),
            np.arange(k0, k1, dtype=float).reshape(-1, 1, 1),
        )
        out = []
        for row in range(3):
            value: Any = self.matrix[row, 3]
            for column in range(3):
                coefficient = self.matrix[row, column]
                if abs(coefficient) > 1e-9:
                    value = value + coefficient * rulers[column]
            value = np.asarray(value / self.scale[row], dtype=np.float32)
            out.append(value if value.ndim else value.reshape(1, 1, 1))
        return out[0], out[1], out[2]

    def blocks(self, shape: Shape) -> Iterator[tuple[tuple[slice, slice, slice], Any]]:
        """(slices, depth) for chunks of the shape's bounding box (chunks split along axis 0)."""
        box = self.index_box(*shape.bbox())
        if box is None:
            return
        k0, k1, j0, j1, i0, i1 = box
        step = max(1, self.chunk_voxels // max(1, (j1 - j0) * (i1 - i0)))
        for ka in range(k0, k1, step):
            kb = min(k1, ka + step)
            x, y, z = self.coords(ka, kb, j0, j1, i0, i1)
            block = (kb - ka, j1 - j0, i1 - i0)
            depth = np.broadcast_to(shape.depth(x, y, z), block)
            yield (slice(ka, kb), slice(j0, j1), slice(i0, i1)), depth

    def _allowed(self, where: str | frozenset[int] | set[int]) -> np.ndarray | None:
        key = where if isinstance(where, str) else frozenset(where)
        if key == "any":
            return None
        if key not in self._luts:
            lut = np.zeros(256, dtype=bool)
            if isinstance(key, str):
                lut[:] = True
                lut[list(_WHERE_EXCLUDED[key])] = False
            else:
                lut[list(key)] = True
            self._luts[key] = lut
        return self._luts[key]

    # -- painting
    def paint(
        self,
        shape: Shape,
        label: int | None,
        material: str | None,
        *,
        core: tuple[float, str] | None = None,
        where: str | frozenset[int] | set[int] = "core",
    ) -> None:
        """Paint ``label``/``material`` where ``shape`` has positive depth (and ``where`` allows).

        ``core = (depth_mm, material)`` additionally gives the material to voxels deeper than
        ``depth_mm`` inside the shape that now carry ``label`` (cortical shell, cancellous core).
        """
        allowed = self._allowed(where)
        mat = None if material is None else _MAT[material]
        pieces = shape.pieces()
        single = len(pieces) == 1
        for piece in pieces:
            for sl, depth in self.blocks(piece):
                mask = depth > 0
                labels = self.labels[sl]
                if allowed is not None:
                    mask &= allowed[labels]
                if label is not None:
                    labels[mask] = label
                if mat is not None:
                    self.material[sl][mask] = mat
                if core is not None and single:
                    self._paint_core(sl, depth, label, core)
        if core is not None and not single:
            for piece in pieces:
                for sl, depth in self.blocks(piece):
                    self._paint_core(sl, depth, label, core)

    def _paint_core(
        self, sl: tuple[slice, ...], depth: Any, label: int | None, core: tuple[float, str]
    ) -> None:
        if label is None:
            raise ValueError("a core material needs the label it belongs to")
        mask = (depth > core[0]) & (self.labels[sl] == label)
        self.material[sl][mask] = _MAT[core[1]]

    def paint_body(self, parts: Sequence[_BodyPart]) -> None:
        """Skin, subcutaneous fat, muscle wall and core of the union of body parts.

        Each voxel takes the layers of the part in which it lies deepest.
        """
        nk, nj, ni = self.shape
        boxes = [self.index_box(*part.shape.bbox()) for part in parts]
        step = max(1, self.chunk_voxels // (nj * ni))
        skin = np.float32(_SKIN_MM)
        for ka in range(0, nk, step):
            kb = min(nk, ka + step)
            best = np.full((kb - ka, nj, ni), -np.inf, dtype=np.float32)
            best_label = np.zeros(best.shape, dtype=np.uint8)
            best_material = np.zeros(best.shape, dtype=np.uint8)
            for part, box in zip(parts, boxes, strict=True):
                if box is None:
                    continue
                k0, k1, j0, j1, i0, i1 = box
                k0, k1 = max(k0, ka), min(k1, kb)
                if k0 >= k1:
                    continue
                x, y, z = self.coords(k0, k1, j0, j1, i0, i1)
                block = (k1 - k0, j1 - j0, i1 - i0)
                depth = np.broadcast_to(part.shape.depth(x, y, z), block)
                fat = skin + part.fat_mm(z)
                muscle = fat + part.muscle_mm(z)
                label = np.where(
                    depth < skin,
                    np.uint8(42),
                    np.where(
                        depth < fat, np.uint8(3), np.where(depth < muscle, np.uint8(2), part.core_label(z))
                    ),
                ).astype(np.uint8)
                material = np.where(
                    depth < skin,
                    np.uint8(_MAT["skin"]),
                    np.where(
                        depth < fat,
                        np.uint8(_MAT["fat"]),
                        np.where(depth < muscle, np.uint8(_MAT["muscle"]), part.core_material(z)),
                    ),
                ).astype(np.uint8)
                sub = (slice(k0 - ka, k1 - ka), slice(j0, j1), slice(i0, i1))
                better = depth > best[sub]
                best[sub][better] = depth[better]
                best_label[sub][better] = np.broadcast_to(label, block)[better]
                best_material[sub][better] = np.broadcast_to(material, block)[better]
            inside = best > 0
            self.labels[ka:kb] = np.where(inside, best_label, 0)
            self.material[ka:kb] = np.where(inside, best_material, 0)

    def voxel_of(self, point_t: Sequence[float]) -> tuple[int, int, int] | None:
        """Nearest voxel (k, j, i) of a template-space point, or None outside the grid."""
        ras = np.asarray(point_t, dtype=float) * self.scale
        ijk = self.inverse[:3, :3] @ ras + self.inverse[:3, 3]
        i, j, k = (math.floor(v + 0.5) for v in ijk)
        nk, nj, ni = self.shape
        if 0 <= i < ni and 0 <= j < nj and 0 <= k < nk:
            return k, j, i
        return None


# ---------------------------------------------------------------------------------------------
# Anatomy (template millimetres; see the module docstring)
# ---------------------------------------------------------------------------------------------

# Outer body contour of the trunk and neck: superellipse per height.
_TORSO_Z = (25, 45, 90, 160, 230, 300, 380, 460, 560, 640, 690, 720, 742, 765, 860, 895)
_TORSO_A = (105, 163, 182, 176, 168, 152, 158, 166, 170, 172, 180, 170, 100, 58, 55, 55)
_TORSO_B = (68, 105, 122, 112, 108, 112, 116, 120, 120, 112, 100, 90, 68, 60, 58, 56)
_TORSO_YC = (-5, -5, 0, 8, 10, 10, 8, 5, 2, -2, -8, -10, -12, -8, -4, -2)
_TORSO_P = (2.2, 2.4, 2.6, 2.6, 2.5, 2.4, 2.3, 2.2, 2.2, 2.3, 2.8, 2.6, 2.2, 2.0, 2.0, 2.0)
_FAT_Z, _FAT_MM = (25, 100, 230, 330, 420, 500, 640, 700, 760, 900), (18, 22, 24, 25, 18, 13, 12, 10, 7, 5)
_MUSCLE_Z, _MUSCLE_MM = (25, 100, 230, 330, 420, 560, 690, 742), (12, 15, 14, 12, 10, 9, 10, 0)
#: Shoulder and neck interior is muscle; below, the trunk interior is "unknown tissue".
_NECK_MUSCLE_Z = 700.0
# Antero-posterior position of the vertebral body centres (spinal curvature).
_SPINE_Y_Z = (150, 190, 250, 330, 430, 520, 620, 700, 760, 850)
_SPINE_Y = (-22, -22, -10, -12, -36, -44, -42, -25, -8, -12)

_VERTEBRAE = tuple(
    [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
)


@dataclass
class _Vertebra:
    name: str
    z_top: float
    z_bottom: float
    y_body: float
    rx: float
    ry: float
    canal: tuple[float, float, float]  # semi-axes x, y and centre y of the spinal canal
    arch: float
    spinous: tuple[float, float]  # length, radius
    transverse: tuple[float, float]
    disc_mm: float = 0.0  # nominal disc height below this vertebra

    @property
    def z_center(self) -> float:
        return 0.5 * (self.z_top + self.z_bottom)


def _vertebra_specs(name: str) -> dict[str, Any]:
    region, number = name[0], int(name[1:])
    if region == "C":
        rx = {1: 10.0, 2: 9.0}.get(number, 9.5 + 0.5 * (number - 3) + (0.5 if number == 7 else 0.0))
        return {
            "height": {1: 13.0, 2: 18.0}.get(number, 14.0),
            "disc": 4.5,
            "rx": rx,
            "ry": 8.0 + 0.15 * number,
            "canal": {1: (13.0, 10.0), 2: (11.0, 8.5)}.get(number, (11.0, 7.5)),
            "arch": 4.5,
            "spinous": ({1: 6.0, 7: 26.0}.get(number, 15.0), 3.5),
            "transverse": (20.0 if number == 1 else 10.0, 3.5),
        }
    if region == "T":
        return {
            "height": (20, 20, 21, 21, 22, 22, 23, 23, 24, 24, 25, 26)[number - 1],
            "disc": 5.0 if number < 12 else 6.0,
            "rx": 12.5 + 0.6 * (number - 1),
            "ry": 10.0 + 5.0 * (number - 1) / 11.0,
            "canal": (8.5, 7.5),
            "arch": 5.0,
            "spinous": (26.0, 4.5),
            "transverse": (16.0, 4.5),
        }
    return {
        "height": (28, 29, 30, 30, 30)[number - 1],
        "disc": 8.0 if number < 5 else 9.0,
        "rx": 19.0 + number,
        "ry": 16.0 + 0.5 * (number - 1),
        "canal": (10.5, 8.5),
        "arch": 6.0,
        "spinous": (24.0, 5.5),
        "transverse": ((20.0, 24.0, 26.0, 24.0, 22.0)[number - 1], 4.5),
    }


@dataclass
class _LesionHost:
    name: str
    weight: float
    shape: Shape | None  # None: lymph node sampled next to the vessels
    labels: frozenset[int]
    material: str
    diameter_mm: tuple[float, float]


@dataclass
class _Op:
    shape: Shape
    label: int | None
    material: str | None
    core: tuple[float, str] | None = None
    where: str | frozenset[int] = "core"


class _Anatomy:
    """Builds the ordered list of structures for one seed and sex.

    ``min_mm`` (the coarsest voxel size) only sets minimum thicknesses of thin structures, and
    ``z_step_mm`` (the largest superior-inferior distance between two 26-adjacent voxel centres)
    the minimum gap between vertebrae; every random draw happens in a fixed order, so the
    anatomy does not otherwise depend on the grid.
    """

    def __init__(self, seed: int, sex: str, min_mm: float, z_step_mm: float | None = None):
        self.rng = np.random.default_rng([int(seed), 0])
        self.sex = sex
        self.min_mm = float(min_mm)
        self.z_step_mm = float(min_mm if z_step_mm is None else z_step_mm)
        rng = self.rng
        self.scale_xy = (float(rng.uniform(0.96, 1.04)), float(rng.uniform(0.95, 1.05)))
        self.fat_factor = float(rng.uniform(0.85, 1.2)) * (1.3 if sex == "F" else 1.0)
        self.ops: list[_Op] = []
        self.body_parts: list[_BodyPart] = []
        self.hosts: list[_LesionHost] = []
        self.node_paths: list[tuple[np.ndarray, np.ndarray]] = []  # vessel polylines for lymph nodes
        self._build()

    # -- small helpers
    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def jit(self, point: Sequence[float], mm: float = 3.0) -> tuple[float, float, float]:
        return tuple(float(v) + self.u(-mm, mm) for v in point)  # type: ignore[return-value]

    def size(self, semi: Sequence[float], fraction: float = 0.05) -> tuple[float, float, float]:
        factor = self.u(1 - fraction, 1 + fraction)
        return tuple(float(v) * factor for v in semi)  # type: ignore[return-value]

    def thin(self, radius: float, factor: float = 0.9) -> float:
        """Radius of a thin tube, at least ``factor`` voxels so it stays one connected piece."""
        return max(float(radius), factor * self.min_mm)

    def add(self, shape: Shape, label: int | None, material: str | None, **kwargs: Any) -> Shape:
        self.ops.append(_Op(shape, label, material, **kwargs))
        return shape

    @staticmethod
    def fat_at(z: Any, factor: float) -> Any:
        return (np.interp(z, _FAT_Z, _FAT_MM) * factor).astype(np.float32)

    @staticmethod
    def muscle_at(z: Any) -> Any:
        return np.interp(z, _MUSCLE_Z, _MUSCLE_MM).astype(np.float32)

    def torso_at(self, z: float) -> tuple[float, float, float, float]:
        """(A, B, yc, p) of the trunk contour at height z."""
        return tuple(
            float(np.interp(z, _TORSO_Z, v)) for v in (self.torso_a, self.torso_b, self.torso_yc, _TORSO_P)
        )  # type: ignore[return-value]

    def spine_y(self, z: float) -> float:
        return float(np.interp(z, _SPINE_Y_Z, _SPINE_Y))

    # -- the body, in painting order
    def _build(self) -> None:
        self._body()
        self._spine_layout()
        self._muscles()
        self._thorax()
        self._abdomen()
        self._pelvis()
        self._head_and_neck()
        self._vessels()
        self._airways()
        self._bones()
        self._ribs()

    def _body(self) -> None:
        ff = self.fat_factor
        self.torso_a = np.array(_TORSO_A, dtype=float) * self.u(0.98, 1.02)
        self.torso_b = np.array(_TORSO_B, dtype=float) * self.u(0.98, 1.02)
        self.torso_yc = np.array(_TORSO_YC, dtype=float)
        torso = ZStack(_TORSO_Z, self.torso_a, self.torso_b, 0.0, self.torso_yc, _TORSO_P)
        muscle_label, visceral_label = np.uint8(2), np.uint8(1)
        muscle_mat, visceral_mat = np.uint8(_MAT["muscle"]), np.uint8(_MAT["visceral tissue"])

        def torso_core_label(z: Any) -> Any:
            return np.where(z > _NECK_MUSCLE_Z, muscle_label, visceral_label)

        def torso_core_material(z: Any) -> Any:
            return np.where(z > _NECK_MUSCLE_Z, muscle_mat, visceral_mat)

        def const(value: float) -> Callable[[Any], Any]:
            return lambda z: np.float32(value)

        def const_u8(value: int) -> Callable[[Any], Any]:
            return lambda z: np.uint8(value)

        parts = [
            _BodyPart(
                torso, lambda z: self.fat_at(z, ff), self.muscle_at, torso_core_label, torso_core_material
            ),
            # cranium and face
            _BodyPart(
                Ellipsoid(self.jit((0, -4, 918), 2), self.size((80, 99, 88), 0.03)),
                const(4 * ff),
                const(0.0),
                const_u8(1),
                const_u8(_MAT["visceral tissue"]),
            ),
            _BodyPart(
                Ellipsoid((0, 28, 848), (60, 72, 68)),
                const(6 * ff),
                const(4.0),
                const_u8(1),
                const_u8(_MAT["muscle"]),
            ),
        ]
        for side in (-1, 1):  # thighs: muscle inside
            parts.append(
                _BodyPart(
                    Capsule((side * 90, 8, 115), (side * 97, 14, -40), 80 * self.u(0.97, 1.03), 70),
                    const(12 * ff),
                    const(0.0),
                    const_u8(2),
                    const_u8(_MAT["muscle"]),
                )
            )
        if self.sex == "M":
            parts.append(
                _BodyPart(
                    Ellipsoid((0, 62, 30), (38, 30, 36)),
                    const(3.0),
                    const(0.0),
                    const_u8(1),
                    const_u8(_MAT["visceral tissue"]),
                )
            )
        else:
            for side, lab in ((-1, label_id("breast left")), (1, label_id("breast right"))):
                parts.append(
                    _BodyPart(
                        Ellipsoid(
                            self.jit((side * 80, 98, 560)),
                            self.size((66, 40, 60), 0.08),
                            _rotation("z", side * 15),
                        ),
                        const(5.0),
                        const(0.0),
                        const_u8(lab),
                        const_u8(_MAT["breast"]),
                    )
                )
        self.body_parts = parts

    def _spine_layout(self) -> None:
        """Vertebrae C1..L5 stacked from the skull base down, plus the sacrum's top."""
        scale = self.u(0.98, 1.02)
        z = 835.0 + self.u(-3, 3)
        # voxels of two vertebrae further apart in z than z_step_mm can never be 26-neighbours
        gap_min = 1.05 * self.z_step_mm
        self.vertebrae: list[_Vertebra] = []
        for name in _VERTEBRAE:
            spec = _vertebra_specs(name)
            height, disc = spec["height"] * scale, spec["disc"] * scale
            z_top, z_bottom = z, z - height
            y_body = self.spine_y(0.5 * (z_top + z_bottom))
            cx, cy = spec["canal"]
            canal_y = y_body - spec["ry"] - cy - 1.5
            self.vertebrae.append(
                _Vertebra(
                    name,
                    z_top,
                    z_bottom,
                    y_body,
                    spec["rx"],
                    spec["ry"],
                    (cx, cy, canal_y),
                    spec["arch"],
                    spec["spinous"],
                    spec["transverse"],
                    disc,
                )
            )
            z = z_bottom - disc
        self.sacrum_top = z
        # shrink vertebrae symmetrically where the disc is thinner than the grid allows
        chain = [*self.vertebrae]
        for upper_index, upper in enumerate(chain):
            extra = max(0.0, gap_min - upper.disc_mm) / 2
            upper.z_bottom += extra
            if upper_index + 1 < len(chain):
                chain[upper_index + 1].z_top -= extra
            else:
                self.sacrum_top -= extra
        self.by_name = {v.name: v for v in self.vertebrae}

    def _muscles(self) -> None:
        verts = self.vertebrae
        for side, lab in ((-1, label_id("autochthon left")), (1, label_id("autochthon right"))):
            points, radii = [], []
            for v in verts[1:]:
                cx, cy, canal_y = v.canal
                points.append((side * (cx + v.arch + 8), canal_y - cy - 12, v.z_center))
                radii.append({"C": 9.0, "T": 13.0, "L": 20.0}[v.name[0]])
            points.append((side * 22, -70, 165))
            radii.append(10.0)
            self.add(Tube(points, radii), lab, "muscle", where="deep")
        for side, lab in ((-1, label_id("iliopsoas left")), (1, label_id("iliopsoas right"))):
            pts = [
                (side * 22, self.spine_y(395) + 4, 395),
                (side * 36, self.spine_y(320) + 6, 320),
                (side * 46, self.spine_y(245) + 8, 245),
                (side * 60, 4, 175),
                (side * 72, 32, 118),
                (side * 86, 40, 78),
                (side * 106, 22, 32),
            ]
            self.add(Tube(pts, [6, 14, 19, 20, 17, 14, 11]), lab, "muscle", where="deep")
        for side, lab in ((-1, label_id("gluteus maximus left")), (1, label_id("gluteus maximus right"))):
            self.add(
                Ellipsoid(self.jit((side * 78, -78, 92)), self.size((48, 26, 62)), _rotation("z", side * 25)),
                lab,
                "muscle",
                where="deep",
            )

    # -- thorax
    def cage_at(self, z: float) -> tuple[float, float, float]:
        """Rib cage centre line at height z: (half width a, half depth b, centre y)."""
        big_a, big_b, yc, _ = self.torso_at(z)
        fat = float(self.fat_at(z, self.fat_factor))
        muscle = float(self.muscle_at(z))
        r = self.rib_radius
        a = big_a - (_SKIN_MM + fat + max(muscle, 9.0) + r + 3)
        front = yc + big_b - (_SKIN_MM + fat + 6 + r + 3)
        back = yc - big_b + (_SKIN_MM + fat + 13)
        a = min(a, float(np.interp(z, (600, 650, 680, 712), (500, 118, 95, 64))))
        front = min(front, float(np.interp(z, (600, 650, 680, 712), (500, 86, 62, 38))))
        back = max(back, float(np.interp(z, (600, 650, 680, 712), (-500, -86, -78, -70))))
        return a, 0.5 * (front - back), 0.5 * (front + back)

    def _thorax(self) -> None:
        self.rib_radius = self.thin(5.0)
        inset = self.rib_radius + 4.0
        zs = np.arange(372.0, 722.0, 10.0)
        cav = [self.cage_at(float(z)) for z in zs]
        cav_a = [c[0] - inset for c in cav] + [26.0]
        cav_b = [c[1] - inset for c in cav] + [24.0]
        cav_y = [c[2] for c in cav] + [-18.0]
        cavity = ZStack([*zs, 736.0], cav_a, cav_b, 0.0, cav_y, 2.3)
        dome_top_right = 478.0 + self.u(-6, 6)
        dome_top_left = dome_top_right - 15.0 + self.u(-4, 4)
        # centred anteriorly: the lung bases reach lowest in the posterior costophrenic recesses
        dome_right = Ellipsoid((70, 20, dome_top_right - 130), (125, 110, 130))
        dome_left = Ellipsoid((-70, 20, dome_top_left - 130), (125, 110, 130))
        self.below_diaphragm = Union(dome_right, dome_left)
        self.dome_top = (dome_top_left, dome_top_right)
        z_t4 = self.by_name["T4"].z_center
        lungs = {}
        for side in (-1, 1):
            lung = Difference(
                Intersection(cavity, HalfSpace((side * 10, 0, 0), (side, 0, 0))), dome_right, dome_left
            )
            lungs[side] = lung
            posterior = (0.0, -70.0, z_t4 + (8.0 if side < 0 else 0.0))
            anterior_z = (dome_top_left if side < 0 else dome_top_right) - 25.0
            normal = (0.0, posterior[2] - anterior_z, 85.0 - posterior[1])  # perpendicular in y-z
            oblique = HalfSpace(posterior, normal)  # upper lobe side (anterior-superior)
            if side < 0:
                self.add(lung, label_id("lung lower lobe left"), "lung", where="deep")
                self.add(Intersection(lung, oblique), label_id("lung upper lobe left"), "lung", where="deep")
            else:
                z_horizontal = self.by_name["T6"].z_center + self.u(-5, 5)
                self.add(lung, label_id("lung lower lobe right"), "lung", where="deep")
                self.add(Intersection(lung, oblique), label_id("lung upper lobe right"), "lung", where="deep")
                below = HalfSpace((0, 0, z_horizontal), (0, 0, -1))
                self.add(
                    Intersection(lung, oblique, below),
                    label_id("lung middle lobe right"),
                    "lung",
                    where="deep",
                )
        self.lungs = Union(lungs[-1], lungs[1])
        self.heart = Ellipsoid(self.jit((-22, 28, 535)), self.size((58, 46, 56)), _rotation("z", -40))
        self.add(self.heart, label_id("heart"), "blood", where="deep")
        self.add(
            Ellipsoid(self.jit((0, 62, 622), 2), (20, 10, 26)),
            label_id("thymus"),
            "visceral tissue",
            where="deep",
        )

    # -- abdomen
    def _abdomen(self) -> None:
        below = self.below_diaphragm
        # small bowel: a serpentine filling the central abdomen
        points = []
        for row, z in enumerate((298, 272, 246, 220, 194)):
            xs = (-60, -30, 0, 30, 60) if row % 2 == 0 else (60, 30, 0, -30, -60)
            for n, x in enumerate(xs):
                points.append(
                    (x + self.u(-5, 5), 42 + 18 * (-1) ** (n + row) + self.u(-4, 4), z + self.u(-4, 4))
                )
        self.add(Tube(points, 13.0), label_id("small bowel"), "small bowel")
        colon = [
            (72, 15, 175), (80, 5, 240), (78, 5, 320), (70, 30, 352), (30, 66, 338),  # cecum, ascending
            (-20, 66, 332), (-70, 40, 372), (-88, 5, 392),  # transverse, splenic flexure
            (-90, -5, 320), (-88, -5, 240), (-75, 15, 185),  # descending
            (-45, 35, 160), (-15, 0, 168),  # sigmoid
        ]  # fmt: skip
        colon = [self.jit(p, 3) for p in colon]
        self.add(
            Tube([colon[-1], (-6, -10, 140), (0, -20, 105), (0, -8, 72), (0, 2, 48)], [12, 16, 15, 12, 9]),
            label_id("rectum"),
            "colon content",
        )
        self.add(
            Tube(colon, [24, 22, 22, 21, 20, 20, 20, 19, 18, 18, 17, 16, 15]),
            label_id("colon"),
            "colon content",
        )
        for index in (4, 5, 7):  # gas pockets on the anterior side of the colon
            x, y, z = colon[index]
            self.add(Sphere((x, y + 9, z), 9), None, "air", where={label_id("colon")})
        duodenum = [
            (18, 56, 358),
            (40, 34, 352),
            (48, 22, 320),
            (32, 32, 296),
            (0, 40, 292),
            (-25, 36, 300),
            (-35, 40, 318),
        ]
        self.add(Tube(duodenum, 12.0), label_id("duodenum"), "small bowel")
        stomach = Intersection(
            Union(
                Ellipsoid(self.jit((-58, 5, 440)), self.size((42, 44, 40))),
                Ellipsoid((-42, 35, 398), (36, 28, 48), _rotation("y", -20)),
                Tube([(-35, 58, 372), (-5, 64, 360), (18, 56, 358)], [20, 17, 14]),
            ),
            below,
        )
        self.add(stomach, label_id("stomach"), "stomach content")
        self.add(
            Intersection(stomach, Ellipsoid((-55, 35, 450), (38, 22, 26))),
            None,
            "air",
            where={label_id("stomach")},
        )
        self.liver = Difference(
            Intersection(
                Union(
                    Ellipsoid(self.jit((55, 8, 412)), self.size((88, 92, 72)), _rotation("z", 15)),
                    Ellipsoid(self.jit((-8, 42, 428)), self.size((52, 36, 30)), _rotation("z", -10)),
                ),
                below,
            ),
            Capsule((0, -30, 320), (0, -30, 500), 36),  # keeps the liver off the spine and aorta
        )
        self.add(self.liver, label_id("liver"), "liver")
        self.add(
            Ellipsoid(self.jit((52, 48, 362), 2), self.size((14, 28, 16), 0.1), _rotation("x", 30)),
            label_id("gallbladder"),
            "bile",
        )
        self.spleen = Intersection(
            Ellipsoid(self.jit((-96, -38, 418)), self.size((24, 52, 55)), _rotation("z", -35)), below
        )
        self.add(self.spleen, label_id("spleen"), "spleen")
        self.add(
            Tube([self.jit((24, 36, 340), 2), (2, 42, 352), (-40, 30, 365), (-82, 0, 385)], [16, 13, 12, 10]),
            label_id("pancreas"),
            "pancreas",
        )
        # splenic vein along the back of the pancreas, portal vein up into the liver hilum
        self.add(
            Tube([(-84, -8, 384), (-40, 18, 364), (0, 30, 352), (28, 22, 370), (50, 10, 398)], self.thin(6)),
            label_id("portal vein and splenic vein"),
            "blood",
        )
        kidneys = []
        for side, center, lab in (
            (-1, (-72, -35, 352), label_id("kidney left")),
            (1, (72, -36, 336), label_id("kidney right")),
        ):
            c = self.jit(center)
            rotation = _rotation("y", -side * 15) @ _rotation("z", side * 20)
            kidney = Ellipsoid(c, self.size((27, 23, 54)), rotation)
            kidneys.append(kidney)
            self.add(kidney, lab, "kidney cortex")
            medulla = Ellipsoid((c[0] - side * 4, c[1], c[2]), (14, 12, 36), rotation)
            self.add(medulla, None, "kidney medulla", where={lab})
        self.kidneys = Union(*kidneys)
        self.add(
            Ellipsoid(self.jit((-46, -28, 414), 2), (7, 5, 18)), label_id("adrenal gland left"), "adrenal"
        )
        self.add(
            Ellipsoid(self.jit((44, -30, 402), 2), (7, 5, 18)), label_id("adrenal gland right"), "adrenal"
        )

    def _pelvis(self) -> None:
        if self.sex == "M":
            self.add(
                Ellipsoid(self.jit((0, 45, 105), 2), self.size((36, 30, 28), 0.1)),
                label_id("bladder"),
                "urine",
            )
            self.add(Ellipsoid(self.jit((0, 24, 64), 2), (17, 14, 15)), label_id("prostate"), "prostate")
            for side in (-1, 1):
                self.add(
                    Ellipsoid(self.jit((side * 17, 66, 22), 2), (12, 11, 19)),
                    label_id("gonads"),
                    "testis",
                    where="deep",
                )
        else:
            self.add(
                Ellipsoid(self.jit((0, 22, 138), 3), self.size((30, 20, 36)), _rotation("x", -35)),
                label_id("uterus"),
                "uterus",
            )
            self.add(Ellipsoid((0, 14, 104), (14, 14, 16)), label_id("uterocervix"), "uterus")
            for side in (-1, 1):
                self.add(
                    Ellipsoid(self.jit((side * 52, 5, 132), 3), (14, 9, 18)), label_id("gonads"), "ovary"
                )
            self.add(
                Ellipsoid(self.jit((0, 48, 96), 2), self.size((38, 28, 24), 0.1)),
                label_id("bladder"),
                "urine",
            )

    def _head_and_neck(self) -> None:
        self.add(Ellipsoid((0, -6, 920), (65, 83, 70)), label_id("brain"), "brain")
        eyes = [(side * 32, 58, 882) for side in (-1, 1)]
        skull = Union(
            Difference(
                Ellipsoid((0, -5, 918), (73, 92, 81)),
                Ellipsoid((0, -6, 920), (66, 84, 72)),
                *(Sphere(eye, 15) for eye in eyes),  # orbits
            ),
            Tube(
                [
                    (-48, -10, 862),
                    (-46, 8, 800),
                    (-20, 50, 792),
                    (0, 62, 794),
                    (20, 50, 792),
                    (46, 8, 800),
                    (48, -10, 862),
                ],
                self.thin(6),
            ),
        )
        self.add(skull, label_id("skull"), "skull", where="body")
        for eye, lab in zip(eyes, (label_id("eyeball left"), label_id("eyeball right")), strict=True):
            self.add(Sphere(eye, 12), lab, "eyeball", where="body")
        for side, lab in ((-1, label_id("thyroid left")), (1, label_id("thyroid right"))):
            self.add(Ellipsoid(self.jit((side * 19, 22, 748), 1.5), (8, 9, 20)), lab, "thyroid", where="deep")

    def _vessels(self) -> None:
        t = self.thin
        sy = self.spine_y
        aorta = [
            (3, 35, 560), (6, 38, 598), (2, 30, 632),  # ascending
            (-18, 12, 645), (-30, -14, 638),  # arch
            (-32, sy(610) + 6, 610), (-30, sy(560) + 8, 560), (-27, sy(500) + 10, 500),  # descending
            (-20, sy(440) + 22, 440), (-12, sy(395) + 28, 395),  # through the diaphragm
            (-8, sy(300) + 30, 300), (-4, sy(252) + 30, 252),  # abdominal, down to the bifurcation
        ]  # fmt: skip
        aorta_r = [14, 14, 13, 12, 12, 11.5, 11, 11, 11, 10.5, 10, 9]
        self.add(Tube(aorta, aorta_r), label_id("aorta"), "blood", where="deep")
        self.node_paths.append((np.asarray(aorta[6:], dtype=float), np.asarray(aorta_r[6:], dtype=float)))
        bifurcation = aorta[-1]
        ivc = [
            (22, 22, 482),
            (25, 0, 445),
            (26, -8, 405),
            (27, sy(330) + 29, 330),
            (22, sy(270) + 30, 270),
            (14, sy(245) + 26, 245),
        ]
        self.add(Tube(ivc, [13, 12, 12, 11, 11, 10]), label_id("inferior vena cava"), "blood", where="deep")
        # veins first: the arteries lie in front of them and win where they touch
        for side, vein in ((-1, label_id("iliac vein left")), (1, label_id("iliac vein right"))):
            pts_v = [
                ivc[-1],
                (side * 34, 12, 205),
                (side * 44, 22, 155),
                (side * 50, 36, 110),
                (side * 66, 46, 70),
            ]
            self.add(Tube(pts_v, [t(8), t(8), t(7), t(7), t(6)]), vein, "blood", where="deep")
        for side, artery in ((-1, label_id("iliac artery left")), (1, label_id("iliac artery right"))):
            pts_a = [
                bifurcation,
                (side * 30, 28, 205),
                (side * 46, 38, 155),
                (side * 54, 48, 110),
                (side * 76, 58, 70),
            ]
            radii_a = [t(7), t(6.5), t(6), t(5.5), t(5)]
            self.add(Tube(pts_a, radii_a), artery, "blood", where="deep")
            self.node_paths.append((np.asarray(pts_a, dtype=float), np.asarray(radii_a)))
        aorta_395 = (-12, sy(395) + 28, 395)
        self.add(
            Capsule((aorta_395[0], aorta_395[1] + 8, 392), (-8, aorta_395[1] + 26, 388), t(4)),
            label_id("celiac trunk"),
            "blood",
            where="deep",
        )
        self.add(
            Tube([(-12, 52, 562), (-14, 36, 596), (-42, 10, 602)], [t(12), t(11), t(9)]),
            label_id("pulmonary artery"),
            "blood",
            where="deep",
        )
        self.add(
            Capsule((-14, 36, 596), (28, 8, 588), t(9)), label_id("pulmonary artery"), "blood", where="deep"
        )
        self.add(
            Capsule((2, 30, 636), (14, 22, 672), t(7)),
            label_id("brachiocephalic artery"),
            "blood",
            where="deep",
        )
        neck_vessels = (
            ("subclavian artery right", [(14, 22, 672), (40, 6, 690), (80, -2, 696)], 5.0),
            ("subclavian artery left", [(-24, 6, 642), (-40, 0, 684), (-80, -4, 694)], 5.0),
            ("common carotid artery right", [(14, 22, 672), (28, 6, 730), (30, 4, 800)], 4.5),
            ("common carotid artery left", [(-10, 22, 645), (-28, 6, 730), (-30, 4, 800)], 4.5),
            ("internal jugular vein right", [(38, 10, 785), (40, 14, 720), (34, 18, 692)], 6.0),
            ("internal jugular vein left", [(-38, 10, 785), (-40, 14, 720), (-34, 18, 692)], 6.0),
            ("brachiocephalic vein right", [(34, 18, 692), (18, 26, 640)], 7.0),
            ("brachiocephalic vein left", [(-34, 18, 692), (-6, 40, 665), (16, 28, 642)], 6.0),
        )
        for name, pts, radius in neck_vessels:
            self.add(Tube(pts, t(radius)), label_id(name), "blood", where="deep")

    def _airways(self) -> None:
        t = self.thin
        sy = self.spine_y
        esophagus = [
            (0, 8, 790), (2, 5, 730), (4, -14, 660), (6, sy(600) + 21, 600), (8, sy(520) + 22.5, 520),
            (2, sy(470) + 26, 470), (-12, 4, 448), (-32, 14, 438),
        ]  # fmt: skip
        self.add(Tube(esophagus, t(7)), label_id("esophagus"), "esophagus", where="deep")
        self.add(
            Tube([(0, 26, 790), (0, 22, 740), (0, 8, 670), (0, -2, 618)], t(9)),
            label_id("trachea"),
            "air",
            where="deep",
        )
        carina = (0, -3, 614)
        right_main, intermediate, left_main = (26, -6, 596), (36, -8, 572), (-38, -10, 588)
        bronchi = [
            (carina, right_main, 7.0), (right_main, (52, 0, 618), 5.0), (right_main, intermediate, 6.0),
            (intermediate, (52, 22, 556), 4.5), (intermediate, (58, -30, 530), 5.0),
            (carina, left_main, 6.5), (left_main, (-58, 6, 610), 5.0), (left_main, (-58, -32, 538), 5.0),
        ]  # fmt: skip
        self.add(
            Union(*(Capsule(a, b, t(r)) for a, b, r in bronchi)), label_id("bronchi"), "air", where="deep"
        )

    # -- bones
    def _bones(self) -> None:
        t = self.thin
        sacrum_top = self.sacrum_top
        # hips: iliac wing, acetabular block, pubic and ischial rami
        self.femoral_heads = []
        hips, femurs = [], []
        for side, hip_label, femur_label in (
            (-1, label_id("hip left"), label_id("femur left")),
            (1, label_id("hip right"), label_id("femur right")),
        ):
            head = self.jit((side * 86, 5, 88), 2)
            self.femoral_heads.append(Sphere(head, 23))
            # iliac wing: a plate from the sacroiliac joint (postero-medial) to the anterior
            # superior iliac spine, flaring outwards at the iliac crest
            wing_frame = _frame((side * 0.66, 0.75, 0.0), (side * 0.3, 0.0, 0.95))
            hip = Union(
                Ellipsoid((side * 88, -8, 186), (62, 60, t(9, 1.0)), wing_frame, exponent=2.5),
                Difference(
                    Ellipsoid((side * 74, 2, 100), (30, 30, 38)),
                    Sphere(head, 23 + max(1.5, 0.6 * self.min_mm)),
                ),
                Capsule((side * 70, 20, 85), (side * 14, 48, 68), t(9)),
                Capsule((side * 75, -15, 85), (side * 62, -30, 38), t(10)),
                Capsule((side * 62, -30, 38), (side * 16, 40, 58), t(7)),
            )
            hips.append(hip)
            self.add(hip, hip_label, "cortical bone", core=(2.5, "cancellous bone"), where="body")
            femur = Union(
                Sphere(head, 23),
                Capsule(head, (side * 118, -2, 68), t(15)),
                Sphere((side * 124, -6, 72), 16),
                Capsule((side * 120, 0, 62), (side * 108, 15, -30), t(14)),
            )
            femurs.append(femur)
            self.add(femur, femur_label, "dense cortical bone", core=(4.0, "cancellous bone"), where="body")
        self.add(
            Intersection(
                Union(
                    Ellipsoid((0, -36, 168), (58, 22, 20), _rotation("x", -15), exponent=2.5),
                    Ellipsoid((0, -50, 138), (44, 18, 22), _rotation("x", -25)),
                    Ellipsoid((0, -66, 110), (28, 14, 20), _rotation("x", -40)),
                    Ellipsoid((0, -80, 88), (14, 10, 13), _rotation("x", -50)),
                ),
                ZSlab(-100, sacrum_top),
            ),
            label_id("sacrum"),
            "cortical bone",
            core=(2.5, "cancellous bone"),
            where="body",
        )
        # intervertebral discs, vertebrae and the spinal canal
        chain = self.vertebrae
        for upper, lower_top, lower_rx, lower_ry, lower_y in [
            (v, w.z_top, w.rx, w.ry, w.y_body) for v, w in itertools.pairwise(chain)
        ] + [(chain[-1], sacrum_top, 26.0, 17.0, chain[-1].y_body)]:
            if upper.z_bottom - lower_top <= 0:
                continue
            disc = ZStack(
                (lower_top, upper.z_bottom),
                (0.95 * lower_rx, 0.95 * upper.rx),
                (0.95 * lower_ry, 0.95 * upper.ry),
                0.0,
                (lower_y, upper.y_body),
            )
            self.add(disc, 1, "intervertebral disc", where="body")
        bodies = []
        for v in chain:
            cx, cy, canal_y = v.canal
            z0, z1, zc = v.z_bottom, v.z_top, v.z_center
            arch = t(v.arch, 1.1)
            body = ZStack((z0, z1), v.rx, v.ry, 0.0, v.y_body)
            bodies.append((v.name, body))
            spin_len, spin_r = v.spinous
            tp_len, tp_r = v.transverse
            back = canal_y - cy - arch
            parts: list[Shape] = [
                body,
                ZStack((z0, z1), cx + arch, cy + arch, 0.0, canal_y),
                Capsule((0, back + 2, zc), (0, back - spin_len, zc - 0.25 * (z1 - z0)), t(spin_r)),
            ]
            for side in (-1, 1):
                parts.append(
                    Capsule(
                        (side * (cx + arch - 1), canal_y + 1, zc),
                        (side * (cx + arch + tp_len), canal_y - 6, zc),
                        t(tp_r),
                    )
                )
            self.add(
                Intersection(Union(*parts), ZSlab(z0, z1)),
                vertebra_id(v.name),
                "thin cortical bone",
                core=(2.0, "cancellous bone"),
                where="body",
            )
        canal_keys = sorted((v.z_center, v.canal) for v in chain)
        zs = [chain[-1].z_bottom] + [k[0] for k in canal_keys] + [chain[0].z_top + 6]
        canals = [canal_keys[0][1]] + [k[1] for k in canal_keys] + [canal_keys[-1][1]]
        self.add(
            ZStack(zs, [c[0] for c in canals], [c[1] for c in canals], 0.0, [c[2] for c in canals]),
            label_id("spinal canal"),
            "spinal canal",
            where="body",
        )
        # sternum, clavicles, scapulae
        st_top = self.by_name["T2"].z_center + 12
        st_bottom = self.by_name["T9"].z_center + 8
        st_z = [
            st_bottom,
            st_bottom + 12,
            st_bottom + 35,
            0.55 * (st_bottom + st_top),
            st_top - 28,
            st_top - 14,
            st_top,
        ]
        st_a = [6, 12, 16, 16, 18, 26, 27]
        st_b = [t(4, 0.6), t(5, 0.6), t(6, 0.6), t(6, 0.6), t(6.5, 0.6), t(7.5, 0.6), t(7.5, 0.6)]
        st_y = [self.sternum_y(z) - b for z, b in zip(st_z, st_b, strict=True)]
        self.sternum = ZStack(st_z, st_a, st_b, 0.0, st_y)
        self.sternum_top, self.sternum_bottom = st_top, st_bottom
        self.add(
            self.sternum,
            label_id("sternum"),
            "thin cortical bone",
            core=(2.0, "cancellous bone"),
            where="body",
        )
        for side, lab in ((-1, label_id("clavicle left")), (1, label_id("clavicle right"))):
            pts = [
                (side * 30, self.sternum_y(st_top - 5) - 6, st_top - 5),
                (side * 65, 60, 698),
                (side * 110, 32, 708),
                (side * 148, -2, 714),
            ]
            self.add(Tube(pts, t(7)), lab, "cortical bone", core=(2.5, "cancellous bone"), where="body")
        for side, lab in ((-1, label_id("scapula left")), (1, label_id("scapula right"))):
            blade = Ellipsoid(
                (side * 98, -80, 625),
                (40, 70, t(6, 0.6)),
                _frame((side * 0.82, 0.57, 0), (0, 0, 1)),
                exponent=2.5,
            )
            spine = Tube([(side * 72, -92, 668), (side * 128, -66, 688), (side * 150, -22, 704)], t(6))
            self.add(Union(blade, spine), lab, "cortical bone", core=(2.5, "cancellous bone"), where="body")
        self.bone_hosts = Union(*(b for name, b in bodies if name[0] in "TL"), *self.femoral_heads)

    def sternum_y(self, z: float) -> float:
        """Antero-posterior position of the sternum's anterior surface at height z."""
        _, big_b, yc, _ = self.torso_at(z)
        return yc + big_b - (_SKIN_MM + float(self.fat_at(z, self.fat_factor)) + 7.0)

    def _ribs(self) -> None:
        r = self.rib_radius
        drops = (22, 35, 45, 52, 58, 62, 66, 70, 72, 74, 75, 75)
        ends = (150, 155, 158, 160, 160, 158, 155, 150, 140, 128, 105, 85)
        n_true = 7
        st_attach = np.linspace(self.sternum_top - 8, self.sternum_bottom + 22, n_true)
        cartilage_mid: dict[tuple[int, int], tuple[float, float, float]] = {}
        rib_paths: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        for k in range(1, 13):
            v = self.by_name[f"T{k}"]
            cx, _, canal_y = v.canal
            zk = v.z_center
            drop = drops[k - 1] * self.u(0.95, 1.05)
            end = math.radians(ends[k - 1])
            for side in (-1, 1):
                head = (side * (v.rx + r), v.y_body - 3, zk)
                tubercle_x = cx + v.arch + v.transverse[0] + r
                tubercle = (side * tubercle_x, canal_y - 6, zk)
                a0, _, _ = self.cage_at(zk)
                start = math.asin(min(0.95, (tubercle_x + 18) / a0))
                path = [head, tubercle]
                for phi in np.linspace(start, end, max(4, int(math.degrees(end - start) / 8))):
                    g = ((phi - start) / (math.pi - start)) ** 1.3
                    z = zk - drop * g
                    a, b, yc = self.cage_at(z)
                    path.append((side * a * math.sin(phi), yc - b * math.cos(phi), z))
                rib_paths[(k, side)] = path
        # cartilage first (ribs are painted over it, so they stay whole)
        for k in range(1, 11):
            for side in (-1, 1):
                end_point = rib_paths[(k, side)][-1]
                if k <= n_true:
                    z_st = float(st_attach[k - 1])
                    half_width = float(np.interp(z_st, self.sternum.z, self.sternum.a))
                    target = (side * (half_width + 1.0), self.sternum_y(z_st) - 7.0, z_st)
                else:
                    target = cartilage_mid[(k - 1, side)]
                mid = tuple(0.5 * (p + q) for p, q in zip(end_point, target, strict=True))
                cartilage_mid[(k, side)] = mid  # type: ignore[assignment]
                self.add(
                    Capsule(end_point, target, self.thin(5.0)),
                    label_id("rib cartilage"),
                    "cartilage",
                    where="body",
                )
        for (k, side), path in rib_paths.items():
            lab = rib_id(k, "left" if side < 0 else "right")
            self.add(Tube(path, r), lab, "thin cortical bone", core=(1.8, "cancellous bone"), where="body")

    # -- lesion hosts
    def lesion_hosts(self) -> list[_LesionHost]:
        vertebra_labels = frozenset(range(43, 67))
        return [
            _LesionHost("liver", 0.3, self.liver, frozenset({13}), "lesion liver", (5.0, 60.0)),
            _LesionHost("lung", 0.3, self.lungs, frozenset(range(120, 125)), "lesion lung", (3.0, 45.0)),
            _LesionHost(
                "bone", 0.15, self.bone_hosts, vertebra_labels | {103, 104}, "lesion bone", (5.0, 25.0)
            ),
            _LesionHost("lymph node", 0.15, None, frozenset({1, 3}), "lesion lymph node", (6.0, 30.0)),
            _LesionHost("kidney", 0.05, self.kidneys, frozenset({15, 16}), "lesion kidney", (5.0, 30.0)),
            _LesionHost("spleen", 0.05, self.spleen, frozenset({26}), "lesion spleen", (5.0, 30.0)),
        ]


# ---------------------------------------------------------------------------------------------
# Clean-up
# ---------------------------------------------------------------------------------------------

#: Labels allowed to consist of several pieces (body layers, paired gonads, costal cartilages).
#: Vertebrae and ribs are one piece by construction (and the tests check it), so the clean-up
#: leaves them alone.
_MULTI_PART_LABELS = frozenset({0, 1, 2, 3, 42, 18, 91}) | frozenset(range(43, 91))


def _merge_detached_fragments(labels: np.ndarray) -> None:
    """Give detached fragments of single-piece structures to their most common neighbour.

    Where a later structure cuts through an earlier one on a coarse grid, a few voxels can be
    left isolated; real segmentations (and the DAP Atlas rules) expect one piece per organ.
    The material (and so the CT) of those voxels is unchanged.
    """
    from scipy import ndimage

    structure = np.ones((3, 3, 3), dtype=bool)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or index in _MULTI_PART_LABELS:
            continue
        box = tuple(
            slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, labels.shape, strict=True)
        )
        crop = labels[box]
        components, count = ndimage.label(crop == index, structure=structure)
        if count <= 1:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        keep = int(np.argmax(sizes))
        for fragment_id, fragment_box in enumerate(ndimage.find_objects(components), start=1):
            if fragment_id == keep or fragment_box is None:
                continue
            grown = tuple(
                slice(max(b.start - 1, 0), min(b.stop + 1, n))
                for b, n in zip(fragment_box, crop.shape, strict=True)
            )
            fragment = components[grown] == fragment_id
            around = ndimage.binary_dilation(fragment, structure=structure) & ~fragment
            neighbours = crop[grown][around]
            neighbours = neighbours[neighbours != index]
            crop[grown][fragment] = int(np.bincount(neighbours).argmax()) if neighbours.size else 1


# ---------------------------------------------------------------------------------------------
# Lesions
# ---------------------------------------------------------------------------------------------


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _lesion_shape(rng: np.random.Generator, center: np.ndarray, radius: float) -> tuple[Shape, float]:
    """An irregular blob: an ellipsoid plus one or two overlapping satellites; and its extent."""
    parts: list[Shape] = [Ellipsoid(center, radius * rng.uniform(0.8, 1.15, 3), _random_rotation(rng))]
    extent = 1.15 * radius
    for _ in range(int(rng.integers(1, 3))):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        offset = radius * rng.uniform(0.3, 0.6)
        semi = radius * rng.uniform(0.45, 0.7, 3)
        parts.append(Ellipsoid(center + offset * direction, semi, _random_rotation(rng)))
        extent = max(extent, offset + float(semi.max()))
    return Union(*parts), extent


def _place_lesions(
    canvas: _Canvas, anatomy: _Anatomy, n_lesions: int, seed: int, lesions: np.ndarray
) -> list[dict[str, Any]]:
    """Draw ``n_lesions`` non-touching lesions into ``lesions`` and the canvas materials."""
    from scipy import ndimage

    if n_lesions == 0:
        return []
    rng = np.random.default_rng([int(seed), 2])
    hosts = anatomy.lesion_hosts()
    weights = np.array([h.weight for h in hosts])
    weights /= weights.sum()
    min_radius = max(1.5, 0.9 * anatomy.min_mm)  # a voxel centre always falls inside
    # two voxels closer than 2 * sqrt(3) voxel sizes may be at most 2 indices apart; beyond that
    # at least two empty voxels separate any two lesions
    margin = max(5.0, 3.5 * anatomy.min_mm)
    scale = canvas.scale
    placed: list[tuple[np.ndarray, float]] = []  # (centre RAS, extent mm)
    info: list[dict[str, Any]] = []
    structure = np.ones((3, 3, 3), dtype=bool)
    failures = 0  # consecutive attempts that placed nothing: the organs are full
    while len(info) < n_lesions:
        failures += 1
        if failures > 400:
            raise ValueError(
                f"Could only place {len(info)} of {n_lesions} non-touching lesions in this phantom; "
                "ask for fewer lesions or a finer grid."
            )
        host = hosts[int(rng.choice(len(hosts), p=weights))]
        low, high = host.diameter_mm
        radius = max(0.5 * math.exp(rng.uniform(math.log(low), math.log(high))), min_radius)
        touching = bool(rng.random() < 0.3) and host.shape is not None
        center_t = None
        for _ in range(4):
            center_t = _sample_center(canvas, anatomy, host, radius, touching, rng, placed, margin)
            if center_t is not None:
                break
            radius = max(min_radius, 0.75 * radius)
        if center_t is None:
            continue
        shape, extent = _lesion_shape(rng, center_t, radius)
        box = canvas.index_box(*shape.bbox())
        if box is None:
            continue
        k0, k1, j0, j1, i0, i1 = box
        sl = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
        x, y, z = canvas.coords(k0, k1, j0, j1, i0, i1)
        labels = canvas.labels[sl]
        mask = (shape.depth(x, y, z) > 0) & (labels != 0) & (labels != 42) & (lesions[sl] == 0)
        components, count = ndimage.label(mask, structure=structure)
        if count == 0:
            continue
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            mask = components == int(np.argmax(sizes))
        failures = 0
        lesion_id = len(info) + 1
        lesions[sl][mask] = lesion_id
        canvas.material[sl][mask] = _MAT[host.material]
        center_ras = np.asarray(center_t) * scale
        placed.append((center_ras, extent))
        n_voxels = int(mask.sum())
        info.append(
            {
                "id": lesion_id,
                "center_ras": tuple(float(v) for v in center_ras),
                "radius_mm": float(radius),
                "host_label": int(np.bincount(labels[mask]).argmax()),
                "host": host.name,
                "touches_border": touching,
                "n_voxels": n_voxels,
                "hu": MATERIAL_HU[host.material],
            }
        )
    return info


def _sample_center(
    canvas: _Canvas,
    anatomy: _Anatomy,
    host: _LesionHost,
    radius: float,
    touching: bool,
    rng: np.random.Generator,
    placed: list[tuple[np.ndarray, float]],
    margin: float,
) -> np.ndarray | None:
    """A lesion centre (template mm) inside ``host``, far enough from the lesions already placed."""
    if host.shape is None:  # lymph node next to the aorta or an iliac artery
        path, radii = anatomy.node_paths[int(rng.integers(len(anatomy.node_paths)))]
        candidates = []
        for _ in range(64):
            segment = int(rng.integers(len(path) - 1))
            t = rng.random()
            point = path[segment] * (1 - t) + path[segment + 1] * t
            vessel_r = radii[segment] * (1 - t) + radii[segment + 1] * t
            angle = rng.uniform(0, 2 * math.pi)
            distance = vessel_r + radius + rng.uniform(2.0, 6.0)
            candidates.append(point + distance * np.array([math.cos(angle), math.sin(angle), 0.0]))
        points = np.asarray(candidates)
    else:
        lo, hi = host.shape.bbox()
        points = lo + (hi - lo) * rng.random((256, 3))
        depth = host.shape.contains(points)
        ok = (depth > 0.15 * radius) & (depth < 0.75 * radius) if touching else depth > radius + 1.0
        points = points[ok]
    if len(points) == 0:
        return None
    extent = 1.75 * radius  # bound of _lesion_shape's extent
    if placed:
        centers = np.array([c for c, _ in placed])
        extents = np.array([e for _, e in placed])
        distances = np.linalg.norm((points * canvas.scale)[:, None, :] - centers[None], axis=2)
        points = points[np.all(distances > extents[None] + extent + margin, axis=1)]
    for point in points:
        voxel = canvas.voxel_of(point)
        if voxel is not None and int(canvas.labels[voxel]) in host.labels:
            return point
    return None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass
class Phantom:
    """A synthetic CT with its DAP Atlas labels and lesion instances, all on one voxel grid."""

    ct: Volume  #: int16 Hounsfield units
    labels: Volume  #: uint8 DAP Atlas ids (0..144)
    lesions: Volume  #: uint16 lesion instance ids (0 = none, 1..N)
    sex: str  #: "M" or "F"
    lesion_info: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0

    def present_labels(self) -> list[int]:
        """Label ids that occur in the phantom (background excluded)."""
        return [int(v) for v in np.flatnonzero(np.bincount(self.labels.array.ravel(), minlength=256)) if v]


def _normalise_sex(sex: str) -> str:
    value = str(sex).strip().upper()
    aliases = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}
    if value not in aliases:
        raise ValueError(f"sex must be 'M' or 'F' (male or female), got {sex!r}.")
    return aliases[value]


def _validated_direction(direction_ras: Any) -> np.ndarray:
    try:
        direction = np.asarray(direction_ras, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("direction_ras must be a 3x3 matrix of numbers.") from None
    if direction.shape != (3, 3) or not np.all(np.isfinite(direction)):
        raise ValueError(f"direction_ras must be a finite 3x3 matrix, got shape {direction.shape}.")
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise ValueError(
            "direction_ras must be orthonormal (columns = unit RAS vectors of i, j, k, mutually "
            "perpendicular); put the voxel size into spacing_mm instead."
        )
    return direction


def _grid(
    size: str,
    orientation: str,
    direction_ras: Any,
    spacing_mm: Any,
    shape: Any,
) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray]:
    """(shape k,j,i; IJK->RAS matrix; spacing i,j,k) of the phantom grid."""
    if size not in SIZE_PRESETS:
        raise ValueError(f"Unknown phantom size {size!r}; use one of {', '.join(SIZE_PRESETS)}.")
    if direction_ras is not None:
        if str(orientation).upper() != "RAS":
            raise ValueError("Give either orientation (an axis code) or direction_ras (a matrix), not both.")
        direction = _validated_direction(direction_ras)
    else:
        direction = orientation_to_direction(orientation)
    preset = SIZE_PRESETS[size]
    nearest_ras_axis = np.argmax(np.abs(direction), axis=0)  # per voxel axis i, j, k
    if spacing_mm is None:
        spacing = np.asarray(preset["spacing_ras_mm"], dtype=float)[nearest_ras_axis]
    else:
        try:
            spacing = np.asarray(spacing_mm, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(
                f"spacing_mm must be three numbers (i, j, k order), got {spacing_mm!r}."
            ) from None
        if spacing.size == 1:
            spacing = np.repeat(spacing, 3)
        if spacing.size != 3 or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise ValueError(
                f"spacing_mm must be three positive numbers in mm (i, j, k order), got {spacing_mm!r}."
            )
        if np.any(spacing < 0.1) or np.any(spacing > 50):
            raise ValueError(f"spacing_mm must lie between 0.1 and 50 mm, got {tuple(spacing)}.")
    if shape is None:
        extent = np.abs(direction).T @ np.asarray(preset["fov_ras_mm"], dtype=float)
        shape_ijk = np.maximum(1, np.round(extent / spacing)).astype(int)
    else:
        try:
            shape_ijk = np.asarray(shape).reshape(-1)
            ok = shape_ijk.size == 3 and all(float(v).is_integer() and v > 0 for v in shape_ijk)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"shape must be three positive integers (i, j, k order), got {shape!r}.")
        shape_ijk = shape_ijk.astype(int)
    n_voxels = int(np.prod(shape_ijk.astype(np.int64)))
    if n_voxels > 1_500_000_000:
        raise ValueError(f"A phantom of {tuple(shape_ijk)} voxels is too large (limit 1.5e9 voxels).")
    _check_memory(n_voxels)
    center = np.asarray(FOV_CENTER_RAS, dtype=float)
    origin = center - direction @ (spacing * (shape_ijk - 1) / 2.0)
    matrix = np.eye(4)
    matrix[:3, :3] = direction @ np.diag(spacing)
    matrix[:3, 3] = origin
    return (int(shape_ijk[2]), int(shape_ijk[1]), int(shape_ijk[0])), matrix, spacing


def _check_memory(n_voxels: int) -> None:
    """Refuse early when the arrays (about 6 bytes per voxel plus work space) cannot fit."""
    needed = 6 * n_voxels + 300 * 2**20
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is optional
        return
    available = int(psutil.virtual_memory().available)
    if needed > available:
        from AnatomyCommonLib.errors import InsufficientMemoryError

        raise InsufficientMemoryError(
            f"This phantom needs about {needed / 2**30:.1f} GiB of memory but only "
            f"{available / 2**30:.1f} GiB is available; choose a smaller size or coarser spacing_mm."
        )


def _canonical_view(array: np.ndarray, volume: Volume) -> np.ndarray:
    """View of ``array`` with axes (inferior->superior, posterior->anterior, left->right).

    Used so that the noise lands on the same physical voxels whatever the axis order. Oblique
    grids without a clean axis correspondence keep their own order.
    """
    axes = [volume.anatomical_axis(d) for d in ("superior", "anterior", "right")]
    if sorted(a.array_axis for a in axes) != [0, 1, 2]:
        return array
    view = array.transpose([a.array_axis for a in axes])
    flips = tuple(slice(None, None, -1) if a.sign < 0 else slice(None) for a in axes)
    return view[flips]


def _synthesize_ct(material: np.ndarray, geometry: Volume, noise_hu: float, seed: int) -> np.ndarray:
    ct = np.empty(material.shape, dtype=np.int16)
    ct_view = _canonical_view(ct, geometry)
    material_view = _canonical_view(material, geometry)
    rng = np.random.default_rng([int(seed), 1])
    plane = int(np.prod(ct_view.shape[1:]))
    step = max(1, (1 << 22) // max(1, plane))
    for s0 in range(0, ct_view.shape[0], step):
        s1 = min(ct_view.shape[0], s0 + step)
        values = _HU_LUT[material_view[s0:s1]]
        if noise_hu > 0:
            values += rng.standard_normal(values.shape, dtype=np.float32) * np.float32(noise_hu)
        np.rint(values, out=values)
        np.clip(values, -1024, 3071, out=values)
        ct_view[s0:s1] = values.astype(np.int16)
    return ct


def phantom_grid(
    size: str = "tiny",
    *,
    orientation: str = "RAS",
    direction_ras: Any = None,
    spacing_mm: Any = None,
    shape: Any = None,
) -> Volume:
    """The voxel grid :func:`make_phantom` would use, without generating anything.

    The returned volume's array is a read-only broadcast view of zeros (no memory allocated):
    use it for its ``shape``, ``spacing_mm``, ``ijk_to_ras``. Arguments as in :func:`make_phantom`.
    """
    shape_kji, matrix, _ = _grid(size, orientation, direction_ras, spacing_mm, shape)
    return Volume(
        np.broadcast_to(np.uint8(0), shape_kji),
        matrix,
        {"source": "AnatomyCommonLib.anatomy.phantom", "size": size},
    )


def make_phantom(
    size: str = "tiny",
    *,
    seed: int = 0,
    sex: str = "M",
    orientation: str = "RAS",
    direction_ras: Any = None,
    spacing_mm: Any = None,
    shape: Any = None,
    n_lesions: int = 0,
    noise_hu: float = 15.0,
) -> Phantom:
    """Generate a synthetic whole-body CT phantom (skull top to mid-thighs).

    Parameters
    ----------
    size:
        "tiny" (6 mm voxels, 70x55x170, well under a second), "small" (3 mm), "medium"
        (1.6x1.6x2 mm) or "realistic" (512x512x510 at 0.8x0.8x2 mm, FOV 410 mm). See
        :data:`SIZE_PRESETS`; ``shape``/``spacing_mm`` override the preset.
    seed:
        Anatomy, lesions and noise are deterministic functions of the seed (non-negative int).
    sex:
        "M" (prostate, testes) or "F" (uterus, cervix, ovaries, breasts).
    orientation:
        Voxel axis code, each letter the direction i, j, k increase towards (see
        :func:`orientation_to_direction`): "RAS", "LPS", "LAI", "SRA", ...
    direction_ras:
        An orthonormal 3x3 matrix (columns = RAS unit vectors of i, j, k) for oblique grids;
        replaces ``orientation``.
    spacing_mm, shape:
        Voxel size (three numbers, or one for isotropic voxels) and grid size in **i, j, k
        order**. Without them the preset's spacing and field of view (given per anatomical axis)
        are mapped onto the voxel axes. The grid is centred on the body (:data:`FOV_CENTER_RAS`).
        Up to 8 mm voxels every rib and vertebra is one connected component, neighbouring
        vertebrae never touch and ribs never touch each other; coarser grids warn.
    n_lesions:
        Number of separate lesions (instances 1..N) placed in the liver, lungs, bones, next to the
        aorta/iliac arteries (lymph nodes), kidneys and spleen.
    noise_hu:
        Standard deviation of the Gaussian noise added to the CT (0 = none).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    sex = _normalise_sex(sex)
    if (
        not isinstance(n_lesions, (int, np.integer))
        or isinstance(n_lesions, bool)
        or not 0 <= n_lesions <= 500
    ):
        raise ValueError(f"n_lesions must be an integer between 0 and 500, got {n_lesions!r}.")
    try:
        noise = float(noise_hu)
    except (TypeError, ValueError):
        raise ValueError(f"noise_hu must be a number of Hounsfield units, got {noise_hu!r}.") from None
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise_hu must be zero or positive, got {noise_hu!r}.")
    shape_kji, matrix, spacing = _grid(size, orientation, direction_ras, spacing_mm, shape)
    if float(np.max(spacing)) > _MAX_FAITHFUL_SPACING_MM:
        warnings.warn(
            f"Voxels of {float(np.max(spacing)):g} mm are too coarse to keep every rib and vertebra "
            f"separate (guaranteed up to {_MAX_FAITHFUL_SPACING_MM:g} mm).",
            stacklevel=2,
        )

    z_step_mm = float(np.abs(matrix[2, :3]).sum())  # superior extent of one voxel step in i, j and k
    anatomy = _Anatomy(int(seed), sex, float(np.max(spacing)), z_step_mm)
    canvas = _Canvas(shape_kji, matrix, anatomy.scale_xy)
    canvas.paint_body(anatomy.body_parts)
    for op in anatomy.ops:
        canvas.paint(op.shape, op.label, op.material, core=op.core, where=op.where)
    _merge_detached_fragments(canvas.labels)
    lesions = np.zeros(shape_kji, dtype=np.uint16)
    lesion_info = _place_lesions(canvas, anatomy, int(n_lesions), int(seed), lesions)

    metadata = {"source": "AnatomyCommonLib.anatomy.phantom", "seed": int(seed), "sex": sex, "size": size}
    geometry = Volume(canvas.material, matrix)
    ct = _synthesize_ct(canvas.material, geometry, noise, int(seed))
    return Phantom(
        ct=Volume(ct, matrix.copy(), {**metadata, "kind": "ct"}),
        labels=Volume(canvas.labels, matrix.copy(), {**metadata, "kind": "labels"}),
        lesions=Volume(lesions, matrix.copy(), {**metadata, "kind": "lesions"}),
        sex=sex,
        lesion_info=lesion_info,
        seed=int(seed),
    )
