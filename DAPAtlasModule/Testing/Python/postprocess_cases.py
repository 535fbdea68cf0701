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
