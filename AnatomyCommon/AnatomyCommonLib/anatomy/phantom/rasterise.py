"""Rasterisation of analytic shapes onto a voxel grid: label and material arrays.

:class:`Canvas` holds the labels and materials of one grid (any spacing, axis order or oblique
direction) and paints shapes block by block inside their bounding boxes; ``paint_body`` lays
skin, subcutaneous fat and the muscle wall over the union of body parts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .materials import MATERIAL_INDEX, SKIN_MM, SUBCUTANEOUS_LABELS
from .shapes import Shape

#: Where a structure may be painted, by the label already present.
#: "any": everywhere; "body": inside the body but never over the skin; "deep": also not over
#: subcutaneous fat; "core": also not over the muscle layer of the body wall.
_WHERE_EXCLUDED: dict[str, frozenset[int]] = {
    "any": frozenset(),
    "body": frozenset({0, 42}),
    "deep": SUBCUTANEOUS_LABELS,
    "core": SUBCUTANEOUS_LABELS | {2},
}


@dataclass
class BodyPart:
    """A piece of the body surface with its layers (skin, fat, muscle) and what lies inside."""

    shape: Shape
    fat_mm: Callable[[Any], Any]
    muscle_mm: Callable[[Any], Any]
    core_label: Callable[[Any], Any]
    core_material: Callable[[Any], Any]


class Canvas:
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
        mat = None if material is None else MATERIAL_INDEX[material]
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
        self.material[sl][mask] = MATERIAL_INDEX[core[1]]

    def paint_body(self, parts: Sequence[BodyPart]) -> None:
        """Skin, subcutaneous fat, muscle wall and core of the union of body parts.

        Each voxel takes the layers of the part in which it lies deepest.
        """
        nk, nj, ni = self.shape
        boxes = [self.index_box(*part.shape.bbox()) for part in parts]
        step = max(1, self.chunk_voxels // (nj * ni))
        skin = np.float32(SKIN_MM)
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
                    np.uint8(MATERIAL_INDEX["skin"]),
                    np.where(
                        depth < fat,
                        np.uint8(MATERIAL_INDEX["fat"]),
                        np.where(depth < muscle, np.uint8(MATERIAL_INDEX["muscle"]), part.core_material(z)),
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
