"""A voxel array with its physical geometry, following the Slicer convention.

``Volume.array`` is indexed ``[k, j, i]`` (slice, row, column), exactly what
``slicer.util.arrayFromVolume`` returns. ``Volume.ijk_to_ras`` is the 4x4 matrix that maps
the voxel index ``(i, j, k, 1)`` to patient RAS millimetres (Right, Anterior, Superior), the
matrix Slicer stores in ``vtkMRMLVolumeNode.GetIJKToRASMatrix``. Files on disk (NIfTI, NRRD via
ITK) use LPS; :mod:`AnatomyCommonLib.image_io` converts at the boundary.

Every algorithm in the toolkit takes distances from :attr:`Volume.spacing_kji_mm` and
anatomical directions from :meth:`Volume.anatomical_axis`, never from an assumed axis order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import GeometryMismatchError, ImageDimensionError, NonFiniteValuesError

#: RAS unit vectors of the six anatomical directions.
ANATOMICAL_DIRECTIONS_RAS: dict[str, tuple[float, float, float]] = {
    "right": (1.0, 0.0, 0.0),
    "left": (-1.0, 0.0, 0.0),
    "anterior": (0.0, 1.0, 0.0),
    "posterior": (0.0, -1.0, 0.0),
    "superior": (0.0, 0.0, 1.0),
    "inferior": (0.0, 0.0, -1.0),
}

#: Converts between RAS and LPS (the matrix is its own inverse).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class AnatomicalAxis:
    """Which array axis points (mostly) in an anatomical direction.

    ``array_axis`` indexes ``Volume.array`` (0 = k, 1 = j, 2 = i); ``sign`` is +1 when a growing
    index moves in the requested direction, -1 when it moves away from it; ``alignment`` is the
    cosine between that voxel axis and the direction (1.0 for axis-aligned scans).
    """

    array_axis: int
    sign: int
    alignment: float


@dataclass
class Volume:
    """A 3D (or 2D) voxel array plus its IJK->RAS geometry and free-form metadata.

    Build one with :meth:`from_geometry` when you have spacing/origin/direction, or pass the
    4x4 ``ijk_to_ras`` matrix directly.
    """

    array: np.ndarray
    ijk_to_ras: np.ndarray = field(default_factory=lambda: np.eye(4))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        matrix = np.asarray(self.ijk_to_ras, dtype=float)
        if matrix.shape != (4, 4):
            raise ImageDimensionError(
                f"ijk_to_ras must be a 4x4 matrix, got shape {matrix.shape}; "
                "pass a homogeneous IJK->RAS matrix as Slicer's GetIJKToRASMatrix returns it."
            )
        if abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise GeometryMismatchError(
                "The IJK->RAS matrix is singular (a zero spacing or parallel axes); "
                "check the image header's spacing and direction."
            )
        self.ijk_to_ras = matrix

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_geometry(
        cls,
        array: np.ndarray,
        spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
        origin_ras: tuple[float, float, float] = (0.0, 0.0, 0.0),
        direction_ras: np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Volume:
        """Build a volume from spacing (i, j, k order), origin and direction in RAS.

        ``direction_ras`` is a 3x3 matrix whose columns are the unit RAS vectors of the
        i, j and k voxel axes; the identity means i grows towards patient Right, j towards
        Anterior and k towards Superior.
        """
        direction = np.eye(3) if direction_ras is None else np.asarray(direction_ras, dtype=float)
        spacing = np.asarray(spacing_mm, dtype=float)
        if np.any(spacing <= 0):
            raise GeometryMismatchError(f"Spacing must be positive, got {tuple(spacing)} mm.")
        matrix = np.eye(4)
        matrix[:3, :3] = direction @ np.diag(spacing)
        matrix[:3, 3] = np.asarray(origin_ras, dtype=float)
        return cls(array=np.asarray(array), ijk_to_ras=matrix, metadata=dict(metadata or {}))

    @classmethod
    def from_lps_geometry(
        cls,
        array: np.ndarray,
        spacing_mm: tuple[float, float, float],
        origin_lps: tuple[float, float, float],
        direction_lps: np.ndarray,
        metadata: dict[str, Any] | None = None,
    ) -> Volume:
        """Build a volume from ITK-style (LPS) geometry, as SimpleITK reports it."""
        direction_ras = RAS_FROM_LPS @ np.asarray(direction_lps, dtype=float).reshape(3, 3)
        origin_ras = RAS_FROM_LPS @ np.asarray(origin_lps, dtype=float)
        return cls.from_geometry(array, spacing_mm, tuple(origin_ras), direction_ras, metadata)

    def with_array(self, array: np.ndarray, **metadata: Any) -> Volume:
        """A new volume on the same voxel grid holding ``array`` (shape must match)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise GeometryMismatchError(
                f"The new array has shape {array.shape} but the volume grid is {self.array.shape}."
            )
        merged = {**self.metadata, **metadata}
        return Volume(array=array, ijk_to_ras=self.ijk_to_ras.copy(), metadata=merged)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in millimetres."""
        return tuple(float(v) for v in np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0))

    @property
    def spacing_kji_mm(self) -> tuple[float, ...]:
        """Voxel size per array axis (k, j, i order): pass this to distance transforms."""
        return tuple(reversed(self.spacing_mm))[-self.array.ndim :]

    @property
    def origin_ras(self) -> tuple[float, float, float]:
        """RAS position (mm) of the centre of voxel (0, 0, 0)."""
        return tuple(float(v) for v in self.ijk_to_ras[:3, 3])

    @property
    def direction_ras(self) -> np.ndarray:
        """3x3 matrix; column c is the RAS unit vector of voxel axis c (i, j, k)."""
        return self.ijk_to_ras[:3, :3] / np.asarray(self.spacing_mm)[None, :]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (1 ml = 1000 mm^3)."""
        return float(abs(np.linalg.det(self.ijk_to_ras[:3, :3]))) / 1000.0

    def anatomical_axis(self, direction: str) -> AnatomicalAxis:
        """The array axis that best points to ``direction`` ("left", "superior", ...)."""
        try:
            target = np.asarray(ANATOMICAL_DIRECTIONS_RAS[direction.lower()])
        except KeyError:
            raise ValueError(
                f"Unknown anatomical direction {direction!r}; use one of "
                f"{', '.join(ANATOMICAL_DIRECTIONS_RAS)}."
            ) from None
        cosines = self.direction_ras.T @ target  # one value per voxel axis i, j, k
        ijk_axis = int(np.argmax(np.abs(cosines)))
        return AnatomicalAxis(
            array_axis=2 - ijk_axis,
            sign=1 if cosines[ijk_axis] > 0 else -1,
            alignment=float(abs(cosines[ijk_axis])),
        )

    def kji_to_ras(self, indices_kji: np.ndarray) -> np.ndarray:
        """RAS positions (N, 3) of voxel indices given as (N, 3) in k, j, i order (may be fractional)."""
        kji = np.atleast_2d(np.asarray(indices_kji, dtype=float))
        ijk = kji[:, ::-1]
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def ras_to_kji(self, points_ras: np.ndarray) -> np.ndarray:
        """Fractional voxel indices (N, 3) in k, j, i order of RAS points (N, 3)."""
        ras = np.atleast_2d(np.asarray(points_ras, dtype=float))
        ras_to_ijk = np.linalg.inv(self.ijk_to_ras)
        ijk = ras @ ras_to_ijk[:3, :3].T + ras_to_ijk[:3, 3]
        return ijk[:, ::-1]

    def same_grid_as(self, other: Volume, atol_mm: float = 1e-3) -> bool:
        """True when both volumes have the same shape and the same IJK->RAS matrix."""
        return self.shape == other.shape and np.allclose(
            self.ijk_to_ras, other.ijk_to_ras, atol=atol_mm, rtol=0
        )

    def require_same_grid(self, other: Volume, names: tuple[str, str] = ("image", "other")) -> None:
        """Raise :class:`GeometryMismatchError` naming what differs unless grids match."""
        first, second = names
        if self.shape != other.shape:
            raise GeometryMismatchError(
                f"{first} has {self.shape} voxels but {second} has {other.shape}; "
                "resample one onto the other before comparing them."
            )
        checks = (
            ("spacing", np.asarray(self.spacing_mm), np.asarray(other.spacing_mm), "mm"),
            ("origin", np.asarray(self.origin_ras), np.asarray(other.origin_ras), "mm (RAS)"),
            ("direction", self.direction_ras, other.direction_ras, ""),
        )
        for what, a, b, unit in checks:
            if not np.allclose(a, b, atol=1e-3, rtol=0):
                raise GeometryMismatchError(
                    f"{first} and {second} have a different {what}: "
                    f"{np.round(a, 4).tolist()} vs {np.round(b, 4).tolist()} {unit}. "
                    "They must lie on the same voxel grid; resample one onto the other first."
                )

    # ------------------------------------------------------------------ validation
    def require_3d(self, name: str = "image") -> Volume:
        """Raise :class:`ImageDimensionError` unless the array is 3D."""
        if self.array.ndim != 3:
            raise ImageDimensionError(
                f"{name} must be a 3D volume but has {self.array.ndim} dimension(s) "
                f"(shape {self.shape}); load the whole series or volume, not a single slice."
            )
        return self

    def require_finite(self, name: str = "image") -> Volume:
        """Raise :class:`NonFiniteValuesError` if the array holds NaN or infinite values."""
        if np.issubdtype(self.array.dtype, np.floating):
            bad = int(np.count_nonzero(~np.isfinite(self.array)))
            if bad:
                raise NonFiniteValuesError(
                    f"{name} contains {bad} NaN or infinite voxel(s); "
                    "fix or mask them (e.g. replace with -1024 HU) before processing."
                )
        return self
