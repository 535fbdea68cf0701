"""The public phantom API: :class:`Phantom`, :func:`make_phantom` and :func:`phantom_grid`.

Validates the arguments, builds the voxel grid of a preset (or the caller's), paints the anatomy
and lesions onto it and computes the CT from the materials (plus seeded noise).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy import Anatomy, merge_detached_fragments
from .lesions import place_lesions
from .materials import (
    FOV_CENTER_RAS,
    HU_LOOKUP,
    MAX_FAITHFUL_SPACING_MM,
    SIZE_PRESETS,
    orientation_to_direction,
)
from .rasterise import Canvas


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
        values = HU_LOOKUP[material_view[s0:s1]]
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
    if float(np.max(spacing)) > MAX_FAITHFUL_SPACING_MM:
        warnings.warn(
            f"Voxels of {float(np.max(spacing)):g} mm are too coarse to keep every rib and vertebra "
            f"separate (guaranteed up to {MAX_FAITHFUL_SPACING_MM:g} mm).",
            stacklevel=2,
        )

    z_step_mm = float(np.abs(matrix[2, :3]).sum())  # superior extent of one voxel step in i, j and k
    anatomy = Anatomy(int(seed), sex, float(np.max(spacing)), z_step_mm)
    canvas = Canvas(shape_kji, matrix, anatomy.scale_xy)
    canvas.paint_body(anatomy.body_parts)
    for op in anatomy.ops:
        canvas.paint(op.shape, op.label, op.material, core=op.core, where=op.where)
    merge_detached_fragments(canvas.labels)
    lesions = np.zeros(shape_kji, dtype=np.uint16)
    lesion_info = place_lesions(canvas, anatomy, int(n_lesions), int(seed), lesions)

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
