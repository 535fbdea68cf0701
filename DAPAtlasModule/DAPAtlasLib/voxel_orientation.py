"""Lossless reorientation of a voxel array into the axis order a model was trained on.

nnU-Net does not reorient images: it sees the voxel array as stored. A model trained without
mirroring (DAP Atlas V2) therefore expects the voxel axes of its training data (LAS for the
AutoPET NIfTI files: index i grows towards patient Left, j towards Anterior, k towards Superior).
:func:`to_orientation` permutes and flips the ``[k, j, i]`` array of a :class:`Volume` into that
layout (the closest one for oblique scans; no interpolation, so nothing is lost) and returns an
:class:`Reorientation` whose :meth:`~Reorientation.restore` puts a result array back onto the
input's exact voxel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from AnatomyCommonLib.volume import Volume

_AXIS_LETTERS = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def direction_of(code: str) -> np.ndarray:
    """3x3 RAS direction matrix (columns = unit vectors of i, j, k) of an axis code like "LAS"."""
    code = str(code).upper()
    if len(code) != 3 or any(c not in _AXIS_LETTERS for c in code):
        raise ValueError(f"Voxel orientation must be a 3-letter code such as 'LAS' or 'RAS', got {code!r}.")
    direction = np.zeros((3, 3))
    for column, letter in enumerate(code):
        axis, sign = _AXIS_LETTERS[letter]
        direction[axis, column] = sign
    if sorted(np.nonzero(direction)[0].tolist()) != [0, 1, 2]:
        raise ValueError(f"Voxel orientation {code!r} names an anatomical axis twice.")
    return direction


def orientation_code(direction_ras: np.ndarray) -> str:
    """Closest axis code of a direction matrix ("LPS" for a typical DICOM series)."""
    letters = {(0, 1): "R", (0, -1): "L", (1, 1): "A", (1, -1): "P", (2, 1): "S", (2, -1): "I"}
    code = ""
    for column in np.asarray(direction_ras, dtype=float).T:
        axis = int(np.argmax(np.abs(column)))
        code += letters[(axis, 1 if column[axis] > 0 else -1)]
    return code


@dataclass(frozen=True)
class Reorientation:
    """How an input ``[k, j, i]`` array was permuted and flipped (``restore`` undoes it)."""

    permutation_kji: tuple[int, int, int]  # output array axis a comes from input array axis permutation[a]
    flips_kji: tuple[bool, bool, bool]  # flip applied to output axis a after permuting
    input_shape: tuple[int, int, int]

    @property
    def is_identity(self) -> bool:
        return self.permutation_kji == (0, 1, 2) and not any(self.flips_kji)

    def apply(self, array_kji: np.ndarray) -> np.ndarray:
        out = np.transpose(array_kji, self.permutation_kji)
        flip_axes = tuple(a for a, f in enumerate(self.flips_kji) if f)
        return np.flip(out, flip_axes) if flip_axes else out

    def restore(self, array_kji: np.ndarray) -> np.ndarray:
        """Map an array in the model's layout back onto the input grid."""
        flip_axes = tuple(a for a, f in enumerate(self.flips_kji) if f)
        out = np.flip(array_kji, flip_axes) if flip_axes else array_kji
        out = np.transpose(out, np.argsort(self.permutation_kji))
        if out.shape != self.input_shape:
            raise ValueError(f"Result shape {out.shape} does not match the input grid {self.input_shape}.")
        return np.ascontiguousarray(out)

    def spacing_kji(self, spacing_kji_mm: tuple[float, ...]) -> tuple[float, float, float]:
        """Voxel spacing in the reoriented array's axis order."""
        return tuple(float(spacing_kji_mm[p]) for p in self.permutation_kji)


def plan_reorientation(volume: Volume, target_code: str | None) -> Reorientation:
    """The permutation and flips that bring ``volume``'s voxel axes closest to ``target_code``.

    ``None`` keeps the array as stored. For oblique scans each voxel axis goes to the anatomical
    axis it is most aligned with (ties broken so that every axis is used once).
    """
    shape = tuple(int(n) for n in volume.array.shape)
    if target_code is None:
        return Reorientation((0, 1, 2), (False, False, False), shape)
    target = direction_of(target_code)
    source = volume.direction_ras  # columns: i, j, k in RAS
    cosines = target.T @ source  # [target axis t (i,j,k), source axis s (i,j,k)]
    order = np.argsort(-np.abs(cosines).max(axis=1))  # assign the best-aligned target axes first
    chosen: dict[int, int] = {}
    for t in order:
        candidates = [s for s in np.argsort(-np.abs(cosines[t])) if s not in chosen.values()]
        chosen[int(t)] = int(candidates[0])
    # target axis t (in i,j,k) takes source axis chosen[t]; arrays are [k, j, i] -> index 2 - axis
    permutation = tuple(2 - chosen[2 - a] for a in range(3))
    flips = tuple(bool(cosines[2 - a, chosen[2 - a]] < 0) for a in range(3))
    return Reorientation(permutation, flips, shape)
