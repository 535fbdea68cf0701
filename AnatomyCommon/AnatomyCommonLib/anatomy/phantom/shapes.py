"""Analytic shapes in template millimetres: superellipsoids, boxes, capsules, stacks, CSG.

``depth(x, y, z)`` is an approximate signed distance in mm: positive inside, zero on the surface.
Inputs are broadcastable float32 arrays (axis-aligned grids pass 1-D "rulers" shaped to
broadcast, which keeps evaluation cheap). ``bbox()`` bounds the shape so the rasteriser visits
only the voxels that can be inside.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

_INF = np.inf


def rotation_matrix(axis: str, degrees: float) -> np.ndarray:
    """Right-handed rotation about a RAS axis ("x", "y" or "z")."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float)


def frame_matrix(first: Sequence[float], second: Sequence[float]) -> np.ndarray:
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
