"""Synthetic lesion masks and the prediction errors the dissertation simulates (section 5.1.5.1).

Spheres as a reference, and per-component perturbations of a prediction: missed (dropped),
over-segmented (dilated), under-segmented (eroded), shifted, plus false-positive spheres. Used by
the tests, the benchmark and the main job. Every operation works in a crop around the component,
so perturbing a whole-body mask costs little more than its lesions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .voronoi import label_components, spacing_array


@dataclass(frozen=True)
class Sphere:
    center_kji: tuple[float, float, float]
    radius_mm: float


def paint_sphere(
    mask: np.ndarray, center_kji: Sequence[float], radius_mm: float, spacing=None, value=True
) -> None:
    """Set the voxels whose centres lie within ``radius_mm`` of ``center_kji`` (in place)."""
    spacing_kji = spacing_array(spacing)
    center = np.asarray(center_kji, dtype=float)
    reach = np.ceil(radius_mm / spacing_kji).astype(int)
    lo = np.maximum(np.floor(center).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(center).astype(int) + reach + 1, mask.shape)
    if np.any(hi <= lo):
        return
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, center, spacing_kji, strict=True))
    mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))][distance2 <= radius_mm**2] = value


def sphere_mask(shape, spheres: Sequence[Sphere], spacing=None) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for sphere in spheres:
        paint_sphere(mask, sphere.center_kji, sphere.radius_mm, spacing)
    return mask


def random_spheres(
    shape: Sequence[int],
    n: int,
    radius_mm: tuple[float, float] = (3.0, 18.0),
    gap_mm: float = 6.0,
    spacing=None,
    seed: int = 0,
    max_tries: int = 100000,
) -> list[Sphere]:
    """``n`` non-overlapping spheres inside the grid, surfaces at least ``gap_mm`` apart."""
    rng = np.random.default_rng(seed)
    spacing_kji = spacing_array(spacing)
    extent = np.asarray(shape) * spacing_kji
    spheres: list[Sphere] = []
    for _ in range(max_tries):
        if len(spheres) == n:
            break
        radius = float(rng.uniform(*radius_mm))
        center_mm = rng.uniform(radius + spacing_kji, extent - radius - spacing_kji)
        if np.any(center_mm <= radius) or np.any(center_mm >= extent - radius):
            continue
        if all(
            np.linalg.norm(center_mm - np.asarray(s.center_kji) * spacing_kji)
            >= radius + s.radius_mm + gap_mm
            for s in spheres
        ):
            spheres.append(Sphere(tuple(float(v) for v in np.round(center_mm / spacing_kji)), radius))
    if len(spheres) < n:
        raise ValueError(
            f"Could place only {len(spheres)} of {n} spheres; use a larger grid or smaller radii."
        )
    return spheres


@dataclass
class Perturbation:
    """What was done to each reference component (ids as numbered by CC-Metrics)."""

    missed: list[int] = field(default_factory=list)
    dilated: list[int] = field(default_factory=list)
    eroded: list[int] = field(default_factory=list)
    shifted: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    false_positives: list[Sphere] = field(default_factory=list)

    def kind_of(self, component_id: int) -> str:
        for kind in ("missed", "dilated", "eroded", "shifted"):
            if component_id in getattr(self, kind):
                return kind
        return "unchanged"


def _crop(bbox_lo, bbox_hi, margin: int, shape) -> tuple[slice, ...]:
    return tuple(
        slice(max(int(lo) - margin, 0), min(int(hi) + margin + 1, s))
        for lo, hi, s in zip(bbox_lo, bbox_hi, shape, strict=True)
    )


def perturb_prediction(
    reference: np.ndarray,
    *,
    missed: int = 0,
    dilated: int = 0,
    eroded: int = 0,
    shifted: int = 0,
    false_positives: int = 0,
    dilation_voxels: int = 2,
    erosion_voxels: int = 1,
    shift_kji: Sequence[int] = (2, 1, 0),
    false_positive_radius_mm: float = 6.0,
    spacing=None,
    seed: int = 0,
    component_order: str = "random",
    false_positives_within: np.ndarray | None = None,
) -> tuple[np.ndarray, Perturbation]:
    """A prediction made from ``reference`` with the requested errors, and what was done where.

    Components are picked in random order (``component_order="random"``), smallest first
    (``"smallest"``) or largest first (``"largest"``): first the missed ones, then dilated, eroded
    and shifted. Dilation and erosion use the 6-neighbourhood ``*_voxels`` times; false positives
    are spheres whose centre is at least 3 radii from any reference voxel and earlier false positive
    (and inside ``false_positives_within`` when given, e.g. a body mask).
    """
    from scipy import ndimage

    reference = np.asarray(reference, dtype=bool)
    labels, n = label_components(reference, 26)
    wanted = missed + dilated + eroded + shifted
    if wanted > n:
        raise ValueError(f"Asked to change {wanted} components but the reference has only {n}.")
    rng = np.random.default_rng(seed)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    if component_order == "random":
        order = rng.permutation(n) + 1
    elif component_order in ("smallest", "largest"):
        order = np.argsort(sizes if component_order == "smallest" else -sizes, kind="stable") + 1
    else:
        raise ValueError(f"component_order must be random, smallest or largest, got {component_order!r}.")
    plan = Perturbation()
    cursor = 0
    for kind, count in (("missed", missed), ("dilated", dilated), ("eroded", eroded), ("shifted", shifted)):
        getattr(plan, kind).extend(int(c) for c in order[cursor : cursor + count])
        cursor += count
    plan.unchanged.extend(sorted(int(c) for c in order[cursor:]))

    prediction = reference.copy()
    coords = np.argwhere(labels)
    own = labels[tuple(coords.T)]
    shift = np.asarray(shift_kji, dtype=int)
    for component in plan.missed + plan.dilated + plan.eroded + plan.shifted:
        points = coords[own == component]
        margin = max(dilation_voxels, int(np.abs(shift).max())) + 1
        window = _crop(points.min(axis=0), points.max(axis=0), margin, reference.shape)
        local = labels[window] == component
        target = prediction[window]
        if component in plan.missed:
            target[local] = False
        elif component in plan.dilated:
            target |= ndimage.binary_dilation(local, iterations=dilation_voxels)
        elif component in plan.eroded:
            target[local & ~ndimage.binary_erosion(local, iterations=erosion_voxels)] = False
        else:
            target[local] = False
            moved = np.zeros_like(local)
            src = tuple(slice(max(0, -d), s - max(0, d)) for d, s in zip(shift, local.shape, strict=True))
            dst = tuple(slice(max(0, d), s - max(0, -d)) for d, s in zip(shift, local.shape, strict=True))
            moved[dst] = local[src]
            target |= moved

    spacing_kji = spacing_array(spacing)
    radius = float(false_positive_radius_mm)
    reach = np.ceil(3 * radius / spacing_kji).astype(int)
    low = np.ceil(radius / spacing_kji).astype(int)
    high = np.array(reference.shape) - 1 - low
    for _ in range(false_positives):
        for _attempt in range(10000):
            center = np.array([rng.integers(a, b + 1) for a, b in zip(low, high, strict=True)])
            window = tuple(slice(max(c - r, 0), c + r + 1) for c, r in zip(center, reach, strict=True))
            if false_positives_within is not None and not false_positives_within[tuple(center)]:
                continue
            if not reference[window].any() and not any(
                np.linalg.norm((center - np.asarray(s.center_kji)) * spacing_kji) < 3 * radius
                for s in plan.false_positives
            ):
                break
        else:
            raise ValueError("No room left for another false-positive sphere away from the reference.")
        paint_sphere(prediction, center, radius, spacing_kji)
        plan.false_positives.append(Sphere(tuple(float(v) for v in center), radius))
    return prediction, plan


def benchmark_case(shape=(200, 256, 256), n_spheres: int = 20, seed: int = 0, spacing=None):
    """The case of the reference notes: 20 spheres (radius 3-18, gaps >= 6) and its perturbation
    (3 missed, 4 dilated by 2, 3 eroded by 1, 3 shifted by (2, 1, 0), 7 unchanged, 3 false
    positives of radius 6). Returns (reference, prediction, perturbation)."""
    spheres = random_spheres(shape, n_spheres, (3.0, 18.0), 6.0, spacing, seed)
    reference = sphere_mask(shape, spheres, spacing)
    prediction, plan = perturb_prediction(
        reference, missed=3, dilated=4, eroded=3, shifted=3, false_positives=3, spacing=spacing, seed=seed
    )
    return reference, prediction, plan
