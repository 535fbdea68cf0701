"""Phantoms with injected model-style errors, shared by the post-processing tests.

Phantoms are cached per (orientation, sex, seed): a tiny phantom takes ~0.3 s and the rules
never modify their input. ``ORIENTATIONS`` covers the identity grid, the ITK/DICOM default,
flipped axes, permuted axes and an oblique (rotated) grid.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from AnatomyCommonLib.anatomy.phantom import Phantom, make_phantom
from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.simulated_model_errors import CorruptedLabels, inject_model_errors

ORIENTATIONS = ("RAS", "LPS", "LAI", "SRA", "oblique")


def oblique_direction() -> np.ndarray:
    """Voxel axes rotated 10 deg about z, -6 deg about y and 8 deg about x (the field of view
    still holds the whole body)."""
    a, b, c = np.deg2rad(10), np.deg2rad(-6), np.deg2rad(8)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    return rz @ ry @ rx


@cache
def phantom(orientation: str = "RAS", sex: str = "M", seed: int = 0, size: str = "tiny") -> Phantom:
    if orientation == "oblique":
        return make_phantom(size, seed=seed, sex=sex, direction_ras=oblique_direction())
    return make_phantom(size, seed=seed, sex=sex, orientation=orientation)


def step_output(step: str, labels: Volume, *, ct: Volume | None = None, sex: str | None = None):
    """(label map, step report) of one step run through the public pipeline."""
    result = postprocess(labels, ct=ct, sex=sex, steps=[step])
    return result.labels, result.report.step(step)


def corrupted_and_repaired(
    step: str, kinds: list[str], orientation: str = "RAS", sex: str = "M", seed: int = 0
):
    """(corrupted labels, expected repair, step output on corrupted, its report, clean phantom)."""
    p = phantom(orientation, sex, seed)
    corrupted: CorruptedLabels = inject_model_errors(p.labels, kinds, sex=sex)
    clean_out, _ = step_output(step, p.labels, ct=p.ct, sex=sex)
    out, report = step_output(step, corrupted.labels, ct=p.ct, sex=sex)
    return corrupted, corrupted.expected_after(clean_out), out, report, p


def changed_pairs(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], int]:
    """(old, new) label -> voxels changed between two label arrays (independent of the reports)."""
    changed = before != after
    pairs, counts = np.unique(np.stack([before[changed], after[changed]], axis=1), axis=0, return_counts=True)
    return {(int(a), int(b)): int(n) for (a, b), n in zip(pairs, counts, strict=True)}


def crop_between(volume: Volume, lowest_mm: float | None = None, highest_mm: float | None = None) -> Volume:
    """A partial field of view cut from a volume by hand: the index box of every voxel whose
    centre height (RAS z) lies between the two heights, with the origin moved so every kept voxel
    keeps its physical position (independent of the library's own cropping helper)."""
    matrix = np.asarray(volume.ijk_to_ras, dtype=float)
    nk, nj, ni = volume.shape
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij", sparse=True)
    height = matrix[2, 0] * i + matrix[2, 1] * j + matrix[2, 2] * k + matrix[2, 3]
    inside = np.ones(volume.shape, dtype=bool)
    if lowest_mm is not None:
        inside &= height >= lowest_mm
    if highest_mm is not None:
        inside &= height <= highest_mm
    box = []
    for axis in range(3):
        hit = np.flatnonzero(inside.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    k0, j0, i0 = (s.start for s in box)
    shifted = matrix.copy()
    shifted[:3, 3] = matrix[:3, :3] @ np.array([i0, j0, k0], dtype=float) + matrix[:3, 3]
    return Volume(np.ascontiguousarray(volume.array[tuple(box)]), shifted, dict(volume.metadata))


def median_height(volume: Volume, *labels: int) -> float:
    """Median RAS height (mm) of the voxels holding any of ``labels``."""
    return float(np.median(volume.kji_to_ras(np.argwhere(np.isin(volume.array, labels)))[:, 2]))


def touches_border(mask: np.ndarray) -> bool:
    """True when a mask has a voxel on a face of its array."""
    return any(np.take(mask, index, axis=axis).any() for axis in range(3) for index in (0, -1))
