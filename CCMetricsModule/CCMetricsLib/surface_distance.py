"""Boundary voxels and the surface metrics computed from their distances, in millimetres.

Conventions follow MONAI 1.6 (``get_mask_edges`` + ``get_surface_distance`` with ``spacing=``):

- the boundary of a mask is the mask XOR its binary erosion with the 6-neighbourhood cross,
  voxels on the grid edge being boundary voxels (scipy erodes with a zero border);
- the distance of a boundary voxel to the other mask is the Euclidean distance in mm between voxel
  centres to the nearest boundary voxel of the other mask (a k-d tree, exact);
- HD = the larger of the two directed maxima; HD95 = the larger of the two directed 95th
  percentiles (linear interpolation, ``torch.quantile``); ASSD = the mean of both directions'
  distances pooled together (``SurfaceDistanceMetric(symmetric=True)``); NSD = boundary voxels
  of both masks within the tolerance (inclusive) over all boundary voxels.

A direction with no boundary voxels on the other side (an empty mask) gives infinite distances
and NSD 0; both masks empty is handled by the caller (best score).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .voronoi import as_binary_mask, spacing_array

#: Surface metrics computed from boundary distances.
SURFACE_METRICS = ("nsd", "hd95", "hd", "assd")


def boundary_mask(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a 6-neighbour outside it (or outside the grid): mask XOR erosion."""
    binary = as_binary_mask(mask)
    padded = np.pad(binary, 1)
    interior = padded[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for step in (-1, 1):
            window = [slice(1, -1)] * 3
            window[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
            interior &= padded[tuple(window)]
    return binary & ~interior


def directed_distances_mm(from_points_mm: np.ndarray, to_tree) -> np.ndarray:
    """Distance (mm) from each point to the nearest point of the tree; inf when the tree is empty."""
    if from_points_mm.shape[0] == 0:
        return np.zeros(0)
    if to_tree is None or to_tree.n == 0:
        return np.full(from_points_mm.shape[0], np.inf)
    # threads cost more than they save on the small boundaries of single lesions
    workers = -1 if from_points_mm.shape[0] > 20000 else 1
    return to_tree.query(from_points_mm, k=1, workers=workers)[0]


def kd_tree(points_mm: np.ndarray):
    from scipy.spatial import cKDTree

    # boundary points lie on a lattice: the sliding-midpoint split (balanced_tree=False) builds several
    # times faster than the median split there and queries as fast
    return cKDTree(points_mm, leafsize=32, balanced_tree=False) if points_mm.shape[0] else None


def surface_scores(
    pred_to_ref_mm: np.ndarray,
    ref_to_pred_mm: np.ndarray,
    tolerance_mm: float = 1.0,
    metrics: Iterable[str] = SURFACE_METRICS,
) -> dict[str, float]:
    """NSD, HD95, HD and ASSD from the two directed boundary distance arrays (MONAI definitions)."""
    wanted = set(metrics)
    scores: dict[str, float] = {}
    both = np.concatenate([pred_to_ref_mm, ref_to_pred_mm])
    if "nsd" in wanted:
        scores["nsd"] = (
            float(np.count_nonzero(both <= tolerance_mm) / both.size) if both.size else float("nan")
        )
    if "hd" in wanted:
        scores["hd"] = float(max(_max(pred_to_ref_mm), _max(ref_to_pred_mm)))
    if "hd95" in wanted:
        scores["hd95"] = float(max(_percentile95(pred_to_ref_mm), _percentile95(ref_to_pred_mm)))
    if "assd" in wanted:
        scores["assd"] = float(both.mean()) if both.size else float("nan")
    return scores


def _max(values: np.ndarray) -> float:
    # -inf for an empty direction so that max() over both directions takes the other one
    return float(values.max()) if values.size else float("-inf")


def _percentile95(values: np.ndarray) -> float:
    if not values.size:
        return float("-inf")
    if np.isinf(values).any():  # np.quantile would give nan when interpolating next to an inf
        return float("inf")
    return float(np.quantile(values, 0.95))


def surface_distances_mm(
    prediction: np.ndarray, reference: np.ndarray, spacing: float | Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(prediction -> reference, reference -> prediction) boundary distances in mm of two dense masks."""
    spacing_kji = spacing_array(spacing)
    pred_points = np.argwhere(boundary_mask(prediction)) * spacing_kji
    ref_points = np.argwhere(boundary_mask(reference)) * spacing_kji
    return (
        directed_distances_mm(pred_points, kd_tree(ref_points)),
        directed_distances_mm(ref_points, kd_tree(pred_points)),
    )
