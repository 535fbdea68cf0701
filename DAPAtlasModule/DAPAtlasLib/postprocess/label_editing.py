"""The label map the post-processing steps edit in place, with per-label bounding boxes.

A whole-body label map has ~131 million voxels (512 x 512 x 500) and 145 labels: one pass over
the full volume per label would cost minutes. :class:`LabelMapEditor` finds every label's
bounding box once (``scipy.ndimage.find_objects``: one pass) and lets the rules work inside
crops. Every change goes through :meth:`LabelMapEditor.relabel`, which records the change in the
step's report and grows the bounding box of the receiving label, so boxes stay valid supersets
for the rest of the run without another full pass.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID
from AnatomyCommonLib.volume import Volume

from ..exceptions import InvalidLabelValuesError
from .anatomy_geometry import PatientGeometry, Region
from .report import StepReport


def _as_label_array(array: np.ndarray, name: str) -> np.ndarray:
    """A writable copy as uint8 (every DAP id fits) after checking the values."""
    if array.ndim != 3:
        raise InvalidLabelValuesError(f"{name} must be a 3D label map, got {array.ndim} dimension(s).")
    if not np.issubdtype(array.dtype, np.integer) and not np.all(np.mod(array, 1) == 0):
        raise InvalidLabelValuesError(
            f"{name} holds non-integer values, so it is not a label map; did you pass the CT instead?"
        )
    low, high = (int(v) for v in (array.min(), array.max())) if array.size else (0, 0)
    if low < 0 or high > MAX_LABEL_ID:
        raise InvalidLabelValuesError(
            f"{name} holds values from {low} to {high}, but DAP Atlas label ids run from 0 to "
            f"{MAX_LABEL_ID}; is this the output of a DAP Atlas model?"
        )
    return np.array(array, dtype=np.uint8, copy=True)


class LabelMapEditor:
    """A writable uint8 copy of a DAP label map, its geometry and per-label bounding boxes."""

    def __init__(self, labels: Volume, *, name: str = "label map"):
        labels.require_3d(name)
        self.volume = labels
        self.array = _as_label_array(labels.array, name)
        self.geometry = PatientGeometry(labels)
        objects = ndimage.find_objects(self.array, max_label=MAX_LABEL_ID)
        self._boxes: list[list[int] | None] = [None] * (MAX_LABEL_ID + 1)
        for label, box in enumerate(objects, start=1):
            if box is not None:
                self._boxes[label] = [v for sl in box for v in (sl.start, sl.stop)]

    # ---------------------------------------------------------------- boxes
    @property
    def voxel_volume_ml(self) -> float:
        return self.geometry.voxel_volume_ml

    def present(self, label: int) -> bool:
        """True when the label may be present (its box is a superset; see :meth:`count`)."""
        return self._boxes[int(label)] is not None

    def box(self, *labels: int, margin: int = 0) -> Region | None:
        """The union of the labels' bounding boxes grown by ``margin`` voxels, or None."""
        boxes = [self._boxes[int(label)] for label in labels if self._boxes[int(label)] is not None]
        if not boxes:
            return None
        k0 = min(b[0] for b in boxes)
        k1 = max(b[1] for b in boxes)
        j0 = min(b[2] for b in boxes)
        j1 = max(b[3] for b in boxes)
        i0 = min(b[4] for b in boxes)
        i1 = max(b[5] for b in boxes)
        nk, nj, ni = self.array.shape
        return (
            slice(max(0, k0 - margin), min(nk, k1 + margin)),
            slice(max(0, j0 - margin), min(nj, j1 + margin)),
            slice(max(0, i0 - margin), min(ni, i1 + margin)),
        )

    def mask(self, label: int, region: Region | None = None) -> tuple[np.ndarray, Region] | None:
        """(mask of ``label`` in its box, the box), or None when the label is absent."""
        region = region or self.box(label)
        if region is None:
            return None
        mask = self.array[region] == label
        if not mask.any():
            return None
        return mask, region

    def count(self, label: int) -> int:
        found = self.mask(label)
        return 0 if found is None else int(np.count_nonzero(found[0]))

    def present_labels(self, labels: Iterable[int]) -> list[int]:
        """The labels of ``labels`` that have at least one voxel."""
        return [label for label in labels if self.mask(label) is not None]

    # ---------------------------------------------------------------- edits
    def relabel(self, region: Region, mask: np.ndarray, to_label: int, report: StepReport) -> int:
        """Set the voxels of ``mask`` (a crop at ``region``) to ``to_label``; returns voxels changed.

        Voxels that already hold ``to_label`` are not counted. The report gets one entry per
        (old label, new label) pair.
        """
        crop = self.array[region]
        mask = mask & (crop != to_label)
        old = crop[mask]
        if old.size == 0:
            return 0
        counts = np.bincount(old, minlength=MAX_LABEL_ID + 1)
        for from_label in np.flatnonzero(counts):
            report.record_relabel(int(from_label), int(to_label), int(counts[from_label]))
        crop[mask] = to_label
        if to_label != 0:
            self._grow(int(to_label), region, mask)
        return int(old.size)

    def _grow(self, label: int, region: Region, mask: np.ndarray) -> None:
        bounds = []
        for axis, sl in enumerate(region):
            other = tuple(a for a in range(3) if a != axis)
            hit = np.flatnonzero(mask.any(axis=other))
            bounds.extend((sl.start + int(hit[0]), sl.start + int(hit[-1]) + 1))
        box = self._boxes[label]
        if box is None:
            self._boxes[label] = bounds
        else:
            self._boxes[label] = [
                min(box[0], bounds[0]), max(box[1], bounds[1]),
                min(box[2], bounds[2]), max(box[3], bounds[3]),
                min(box[4], bounds[4]), max(box[5], bounds[5]),
            ]  # fmt: skip

    def refresh_boxes(self, labels: Iterable[int] | None = None) -> None:
        """Recompute exact boxes (all labels: one full pass; given labels: within their boxes)."""
        if labels is None:
            objects = ndimage.find_objects(self.array, max_label=MAX_LABEL_ID)
            self._boxes = [None] + [
                None if box is None else [v for sl in box for v in (sl.start, sl.stop)] for box in objects
            ]
            return
        for label in labels:
            region = self.box(label)
            if region is None:
                continue
            box = ndimage.find_objects((self.array[region] == label).astype(np.uint8), max_label=1)[0]
            self._boxes[label] = (
                None
                if box is None
                else [
                    v
                    for sl, outer in zip(box, region, strict=True)
                    for v in (outer.start + sl.start, outer.start + sl.stop)
                ]
            )

    def to_volume(self) -> Volume:
        """The edited label map on the input grid (uint8), metadata kept."""
        return self.volume.with_array(self.array)
