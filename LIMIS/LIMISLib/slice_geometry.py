"""Axial slices of a volume as the user sees them, and 2D box arithmetic in display pixels.

LIMIS works on one axial slice at a time, in *display orientation* (see
:mod:`LIMISLib.model_interfaces`): the image as Slicer's axial (red) view shows it, in the
radiological convention -- row 0 is the most **anterior** row (top of the view), rows grow towards
**posterior**; column 0 is the patient's **right** (left edge of the view), columns grow towards
the patient's **left**. Which voxel axes these are comes from the direction matrix
(:meth:`AnatomyCommonLib.volume.Volume.anatomical_axis`), never from the array order, so RAS, LPS,
permuted ("SRA") and flipped volumes all give the same picture.

Continuous pixel coordinates: pixel ``(c, r)`` covers ``[c, c + 1) x [r, r + 1)``; its centre is
``(c + 0.5, r + 0.5)``. A point ``(x, y)`` lies on pixel ``(floor(x), floor(y))``; a box
``(x0, y0, x1, y1)`` covers columns ``floor(x0) .. ceil(x1) - 1``. The voxel centre of the
underlying volume is the pixel centre, so ``pixel_to_ras((c + 0.5, r + 0.5))`` is exactly the RAS
position of that voxel.

Oblique volumes: the "axial" slice is the voxel plane whose normal is closest to superior (as
Slicer's volume reslicing does when "Rotate to volume plane" is used); RAS positions always use
the exact IJK->RAS matrix, so markups placed from pixels land on the right voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyCommonLib.volume import Volume

from .exceptions import GeometryMismatchError, ImageDimensionError, InvalidPromptError
from .model_interfaces import Box, Point

__all__ = [
    "AxialSliceGeometry",
    "box_around_mask",
    "box_center",
    "box_pixel_slices",
    "clip_box",
    "move_box",
    "resize_box",
]


@dataclass(frozen=True)
class AxialSliceGeometry:
    """How the axial slices of one volume map to display pixels and to RAS.

    ``slice_axis``, ``row_axis``, ``column_axis`` index the volume array (0 = k, 1 = j, 2 = i).
    ``*_sign`` is +1 when a growing array index moves superior (slice), posterior (row) or to the
    patient's left (column); -1 when it moves the other way (the axis is flipped for display).
    """

    shape_kji: tuple[int, int, int]
    ijk_to_ras: np.ndarray
    slice_axis: int
    slice_sign: int
    row_axis: int
    row_sign: int
    column_axis: int
    column_sign: int

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_volume(cls, volume: Volume) -> AxialSliceGeometry:
        """Geometry of ``volume``'s axial slices (any axis order, flips or mild obliquity)."""
        if volume.array.ndim != 3:
            raise ImageDimensionError(
                f"LIMIS needs a 3D CT volume to take axial slices from; got shape {volume.shape}."
            )
        slice_ = volume.anatomical_axis("superior")
        row = volume.anatomical_axis("posterior")
        column = volume.anatomical_axis("left")
        axes = {slice_.array_axis, row.array_axis, column.array_axis}
        if len(axes) != 3:
            raise GeometryMismatchError(
                "The volume is so oblique (about 45 degrees) that no voxel plane is closest to axial; "
                "resample it to an axis-aligned grid (Resample Scalar Volume or Crop Volume) first."
            )
        return cls(
            shape_kji=tuple(int(n) for n in volume.shape),
            ijk_to_ras=np.array(volume.ijk_to_ras, dtype=float),
            slice_axis=slice_.array_axis,
            slice_sign=slice_.sign,
            row_axis=row.array_axis,
            row_sign=row.sign,
            column_axis=column.array_axis,
            column_sign=column.sign,
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_slices(self) -> int:
        return self.shape_kji[self.slice_axis]

    @property
    def image_shape(self) -> tuple[int, int]:
        """(rows, columns) of one display slice."""
        return self.shape_kji[self.row_axis], self.shape_kji[self.column_axis]

    @property
    def _spacing_kji_mm(self) -> np.ndarray:
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)[::-1]

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        """(column spacing, row spacing) in mm, i.e. the size of one pixel along x and y."""
        spacing = self._spacing_kji_mm
        return float(spacing[self.column_axis]), float(spacing[self.row_axis])

    @property
    def slice_spacing_mm(self) -> float:
        return float(self._spacing_kji_mm[self.slice_axis])

    def neighbour(self, slice_index: int, direction: str) -> int | None:
        """The slice next to ``slice_index`` towards "up" (superior) or "down" (inferior); None at the end."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' (superior) or 'down' (inferior), not {direction!r}.")
        step = self.slice_sign if direction == "up" else -self.slice_sign
        neighbour = slice_index + step
        return neighbour if 0 <= neighbour < self.n_slices else None

    def require_slice(self, slice_index: int) -> int:
        if not 0 <= int(slice_index) < self.n_slices:
            raise InvalidPromptError(
                f"Slice {slice_index} is outside the volume, which has axial slices 0..{self.n_slices - 1}."
            )
        return int(slice_index)

    # ------------------------------------------------------------------ pixels <-> array
    def _display_view(self, array_kji: np.ndarray) -> np.ndarray:
        """A (slice, row, column) view of the array with row/column flipped for display."""
        view = np.transpose(array_kji, (self.slice_axis, self.row_axis, self.column_axis))
        if self.row_sign < 0:
            view = view[:, ::-1, :]
        if self.column_sign < 0:
            view = view[:, :, ::-1]
        return view

    def extract(self, array_kji: np.ndarray, slice_index: int) -> np.ndarray:
        """The display-oriented 2D image (rows, columns) of one axial slice (a copy)."""
        if tuple(array_kji.shape) != self.shape_kji:
            raise GeometryMismatchError(
                f"Array of shape {tuple(array_kji.shape)} does not match the volume grid {self.shape_kji}."
            )
        return np.array(self._display_view(array_kji)[self.require_slice(slice_index)], copy=True)

    def insert(self, array_kji: np.ndarray, slice_index: int, image: np.ndarray) -> None:
        """Write a display-oriented 2D image into one axial slice of ``array_kji`` (in place)."""
        image = np.asarray(image)
        if image.shape != self.image_shape:
            raise GeometryMismatchError(
                f"The slice image has shape {image.shape}; this volume's axial slices are {self.image_shape}."
            )
        self._display_view(array_kji)[self.require_slice(slice_index)] = image

    def slice_block(self, image: np.ndarray) -> np.ndarray:
        """A display-oriented 2D image as the one-slice block of the array (slice axis of length 1).

        ``array[slice_region_kji(k)] = slice_block(image)`` equals ``insert(array, k, image)``.
        """
        image = np.asarray(image)
        if image.shape != self.image_shape:
            raise GeometryMismatchError(
                f"The slice image has shape {image.shape}; this volume's axial slices are {self.image_shape}."
            )
        if self.row_sign < 0:
            image = image[::-1, :]
        if self.column_sign < 0:
            image = image[:, ::-1]
        order = (self.slice_axis, self.row_axis, self.column_axis)
        return np.ascontiguousarray(np.transpose(image[None], np.argsort(order)))

    def slice_region_kji(self, slice_index: int) -> tuple[slice, slice, slice]:
        """Array index (k, j, i slices) of one whole axial slice."""
        region = [slice(None)] * 3
        region[self.slice_axis] = slice(slice_index, slice_index + 1)
        return tuple(region)

    # ------------------------------------------------------------------ pixels <-> RAS
    def pixel_to_kji(self, points_xy: np.ndarray, slice_index: float) -> np.ndarray:
        """Fractional voxel indices (N, 3, k/j/i order) of continuous pixel points (N, 2)."""
        xy = np.atleast_2d(np.asarray(points_xy, dtype=float))
        rows, columns = self.image_shape
        column = xy[:, 0] - 0.5
        row = xy[:, 1] - 0.5
        kji = np.zeros((len(xy), 3))
        kji[:, self.column_axis] = column if self.column_sign > 0 else (columns - 1) - column
        kji[:, self.row_axis] = row if self.row_sign > 0 else (rows - 1) - row
        kji[:, self.slice_axis] = float(slice_index)
        return kji

    def kji_to_pixel(self, indices_kji: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(continuous pixel points (N, 2), fractional slice index (N,)) of voxel indices (N, 3)."""
        kji = np.atleast_2d(np.asarray(indices_kji, dtype=float))
        rows, columns = self.image_shape
        column = kji[:, self.column_axis]
        row = kji[:, self.row_axis]
        x = (column if self.column_sign > 0 else (columns - 1) - column) + 0.5
        y = (row if self.row_sign > 0 else (rows - 1) - row) + 0.5
        return np.column_stack([x, y]), kji[:, self.slice_axis].copy()

    def pixel_to_ras(self, points_xy: np.ndarray, slice_index: float) -> np.ndarray:
        """RAS positions (N, 3) in mm of continuous pixel points (N, 2) on one slice."""
        ijk = self.pixel_to_kji(points_xy, slice_index)[:, ::-1]
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def ras_to_pixel(self, points_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(continuous pixel points (N, 2), fractional slice index (N,)) of RAS points (N, 3)."""
        ras = np.atleast_2d(np.asarray(points_ras, dtype=float))
        ras_to_ijk = np.linalg.inv(self.ijk_to_ras)
        ijk = ras @ ras_to_ijk[:3, :3].T + ras_to_ijk[:3, 3]
        return self.kji_to_pixel(ijk[:, ::-1])

    def slice_index_of_ras(self, point_ras: np.ndarray) -> int:
        """The axial slice (rounded, clipped to the volume) that a RAS point lies on."""
        _, position = self.ras_to_pixel(np.asarray(point_ras, dtype=float).reshape(1, 3))
        return int(np.clip(np.rint(position[0]), 0, self.n_slices - 1))

    def display_axes_ras(self) -> np.ndarray:
        """3x3 matrix whose columns are the RAS unit vectors of display x, display y and slice normal."""
        direction = self.ijk_to_ras[:3, :3] / np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)[None, :]

        def axis_vector(array_axis: int, sign: int) -> np.ndarray:
            return direction[:, 2 - array_axis] * sign

        return np.column_stack(
            [
                axis_vector(self.column_axis, self.column_sign),
                axis_vector(self.row_axis, self.row_sign),
                axis_vector(self.slice_axis, self.slice_sign),
            ]
        )


# ---------------------------------------------------------------------------- 2D boxes
def clip_box(box: Box, image_shape: tuple[int, int], *, min_size_px: float = 2.0) -> Box:
    """``box`` clipped to the image (rows, columns), at least ``min_size_px`` wide and high."""
    rows, columns = image_shape
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 < x0:
        x0, x1 = x1, x0
    if y1 < y0:
        y0, y1 = y1, y0
    x0, x1 = max(0.0, x0), min(float(columns), x1)
    y0, y1 = max(0.0, y0), min(float(rows), y1)
    if x1 - x0 < min_size_px or y1 - y0 < min_size_px:
        raise InvalidPromptError(
            f"The box {tuple(round(v, 1) for v in box)} has (almost) nothing inside the "
            f"{columns} x {rows} pixel slice; draw or detect a box over the structure."
        )
    return (x0, y0, x1, y1)


def move_box(box: Box, dx_px: float, dy_px: float, image_shape: tuple[int, int]) -> Box:
    """``box`` shifted by (dx, dy) pixels, keeping its size and staying inside the image."""
    rows, columns = image_shape
    x0, y0, x1, y1 = box
    dx = float(np.clip(dx_px, -x0, columns - x1))
    dy = float(np.clip(dy_px, -y0, rows - y1))
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)


def resize_box(
    box: Box, pixels_per_side: float, image_shape: tuple[int, int], *, min_size_px: float = 2.0
) -> Box:
    """``box`` grown (positive) or shrunk (negative) by ``pixels_per_side`` on each side, clipped."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half_w = max(min_size_px / 2.0, (x1 - x0) / 2.0 + pixels_per_side)
    half_h = max(min_size_px / 2.0, (y1 - y0) / 2.0 + pixels_per_side)
    return clip_box(
        (cx - half_w, cy - half_h, cx + half_w, cy + half_h), image_shape, min_size_px=min_size_px
    )


def box_center(box: Box) -> Point:
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


def box_pixel_slices(box: Box, image_shape: tuple[int, int]) -> tuple[slice, slice]:
    """(row slice, column slice) of the pixels the box covers (model_interfaces convention)."""
    rows, columns = image_shape
    x0, y0, x1, y1 = box
    c0, c1 = max(0, int(np.floor(x0))), min(columns, int(np.ceil(x1)))
    r0, r1 = max(0, int(np.floor(y0))), min(rows, int(np.ceil(y1)))
    return slice(r0, r1), slice(c0, c1)


def box_around_mask(mask: np.ndarray, margin_px: float = 0.0) -> Box | None:
    """The tight box around a 2D mask's pixels plus ``margin_px``, clipped; None if the mask is empty."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    box = (
        float(columns[0]) - margin_px,
        float(rows[0]) - margin_px,
        float(columns[-1] + 1) + margin_px,
        float(rows[-1] + 1) + margin_px,
    )
    return clip_box(box, mask.shape, min_size_px=1.0)
