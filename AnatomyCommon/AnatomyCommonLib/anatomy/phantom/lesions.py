"""Synthetic lesions: irregular blobs placed in host organs, painted as instance ids.

:func:`place_lesions` draws hosts by weight (liver, lung, bone, lymph nodes next to the vessels,
kidney, spleen), sizes from each host's diameter range and keeps every lesion apart from the
others; it writes instance ids into the lesion map and the lesion material into the canvas, so
the CT shows them while the labels keep the host anatomy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .anatomy import Anatomy
from .anatomy_builder import LesionHost
from .materials import MATERIAL_HU, MATERIAL_INDEX
from .rasterise import Canvas
from .shapes import Ellipsoid, Shape, Union


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


def place_lesions(
    canvas: Canvas, anatomy: Anatomy, n_lesions: int, seed: int, lesions: np.ndarray
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
        canvas.material[sl][mask] = MATERIAL_INDEX[host.material]
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
    canvas: Canvas,
    anatomy: Anatomy,
    host: LesionHost,
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
