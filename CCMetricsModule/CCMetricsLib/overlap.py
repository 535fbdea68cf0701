"""Overlap metrics from voxel counts (vectorised over components)."""

from __future__ import annotations

import numpy as np

#: Overlap metrics computed from voxel counts.
OVERLAP_METRICS = ("dice", "iou")


def dice_from_counts(intersection, prediction_count, reference_count) -> np.ndarray:
    """2|P∩S| / (|P| + |S|); 1 where both are empty."""
    intersection = np.asarray(intersection, dtype=np.float64)
    total = np.asarray(prediction_count, dtype=np.float64) + np.asarray(reference_count, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * intersection / np.where(total > 0, total, 1.0), 1.0)


def iou_from_counts(intersection, prediction_count, reference_count) -> np.ndarray:
    """|P∩S| / |P∪S|; 1 where both are empty."""
    intersection = np.asarray(intersection, dtype=np.float64)
    union = (
        np.asarray(prediction_count, dtype=np.float64)
        + np.asarray(reference_count, dtype=np.float64)
        - intersection
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 1.0)
