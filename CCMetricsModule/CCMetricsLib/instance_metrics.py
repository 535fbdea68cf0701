"""Instance-matching metrics the dissertation compares CC-Metrics with: Panoptic Quality, Lesion Dice.

Both work on the connected components of reference and prediction and on their voxel overlaps;
:class:`~CCMetricsLib.evaluation.evaluate` reports them next to the CC metrics.

- Panoptic Quality (Kirillov et al., eq. 15): a predicted and a reference component match when
  their IoU exceeds 0.5 (which makes the matching unique);
  PQ = sum of matched IoUs / (TP + FP/2 + FN/2) = SQ x RQ.
- Lesion Dice (BraTS 2023, eq. 16): every reference lesion is matched to all predicted components
  that overlap it by at least one voxel (a predicted component may serve several lesions); its
  Dice is computed against their union; unmatched lesions are FN (Dice 0), predicted components
  overlapping no lesion are FP; LD = sum of lesion Dice / (TP + FN + FP). BraTS' extra
  hyper-parameters (dilating the reference to merge lesions, ignoring small components) are not
  applied: ``min_prediction_volume_ml`` offers the second.

Both are 1 when reference and prediction are empty, 0 when only one of them is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ComponentOverlaps:
    """Voxel counts of reference components (1..n), predicted components (1..m) and their overlaps."""

    reference_sizes: np.ndarray  # (n,)
    prediction_sizes: np.ndarray  # (m,)
    pairs: np.ndarray  # (p, 2) reference id, prediction id (1-based)
    counts: np.ndarray  # (p,) overlapping voxels of each pair

    @classmethod
    def from_labels(
        cls,
        reference_ids,
        prediction_ids,
        n_reference: int,
        n_prediction: int,
        reference_sizes,
        prediction_sizes,
    ):
        """From the component ids of the voxels in both masks (two aligned 1D arrays)."""
        reference_ids = np.asarray(reference_ids, dtype=np.int64)
        prediction_ids = np.asarray(prediction_ids, dtype=np.int64)
        keys = reference_ids * (n_prediction + 1) + prediction_ids
        unique, counts = np.unique(keys, return_counts=True)
        pairs = np.stack([unique // (n_prediction + 1), unique % (n_prediction + 1)], axis=1)
        return cls(np.asarray(reference_sizes), np.asarray(prediction_sizes), pairs, counts)

    @classmethod
    def from_masks(cls, reference: np.ndarray, prediction: np.ndarray, connectivity: int = 26):
        """Label both masks and count overlaps (dense convenience for small arrays and tests)."""
        from .voronoi import label_components

        ref_labels, n = label_components(reference, connectivity)
        pred_labels, m = label_components(prediction, connectivity)
        both = (ref_labels > 0) & (pred_labels > 0)
        return cls.from_labels(
            ref_labels[both],
            pred_labels[both],
            n,
            m,
            np.bincount(ref_labels.ravel(), minlength=n + 1)[1:],
            np.bincount(pred_labels.ravel(), minlength=m + 1)[1:],
        )


def panoptic_quality(overlaps: ComponentOverlaps) -> dict[str, float]:
    """PQ, SQ, RQ and the TP/FP/FN counts (IoU > 0.5 matching)."""
    n, m = len(overlaps.reference_sizes), len(overlaps.prediction_sizes)
    if n == 0 and m == 0:
        return {"pq": 1.0, "sq": 1.0, "rq": 1.0, "pq_tp": 0, "pq_fp": 0, "pq_fn": 0}
    ref_ids, pred_ids = overlaps.pairs[:, 0], overlaps.pairs[:, 1]
    union = overlaps.reference_sizes[ref_ids - 1] + overlaps.prediction_sizes[pred_ids - 1] - overlaps.counts
    iou = overlaps.counts / union if len(union) else np.zeros(0)
    matched = iou > 0.5
    tp = int(matched.sum())
    fp, fn = m - tp, n - tp
    iou_sum = float(iou[matched].sum())
    denominator = tp + 0.5 * fp + 0.5 * fn
    return {
        "pq": iou_sum / denominator if denominator else 0.0,
        "sq": iou_sum / tp if tp else 0.0,
        "rq": tp / denominator if denominator else 0.0,
        "pq_tp": tp,
        "pq_fp": fp,
        "pq_fn": fn,
    }


def lesion_dice(
    overlaps: ComponentOverlaps,
    prediction_voxel_volume_ml: float = 0.0,
    min_prediction_volume_ml: float = 0.0,
) -> dict[str, float]:
    """Lesion Dice with any-overlap matching, and its TP/FP/FN counts.

    Predicted components smaller than ``min_prediction_volume_ml`` (needs the voxel volume) are
    not counted as false positives.
    """
    n, m = len(overlaps.reference_sizes), len(overlaps.prediction_sizes)
    if n == 0 and m == 0:
        return {"lesion_dice": 1.0, "ld_tp": 0, "ld_fp": 0, "ld_fn": 0}
    ref_ids, pred_ids = overlaps.pairs[:, 0], overlaps.pairs[:, 1]
    intersection = np.bincount(ref_ids, weights=overlaps.counts, minlength=n + 1)[1:]
    matched_volume = np.bincount(ref_ids, weights=overlaps.prediction_sizes[pred_ids - 1], minlength=n + 1)[
        1:
    ]
    dice = np.where(intersection > 0, 2.0 * intersection / (overlaps.reference_sizes + matched_volume), 0.0)
    tp = int(np.count_nonzero(intersection))
    fn = n - tp
    unmatched = np.ones(m, dtype=bool)
    unmatched[pred_ids - 1] = False
    if min_prediction_volume_ml > 0:
        unmatched &= overlaps.prediction_sizes * prediction_voxel_volume_ml >= min_prediction_volume_ml
    fp = int(unmatched.sum())
    counted = tp + fn + fp
    score = float(dice.sum() / counted) if counted else 1.0  # only ignored small predictions left
    return {"lesion_dice": score, "ld_tp": tp, "ld_fp": fp, "ld_fn": fn}
