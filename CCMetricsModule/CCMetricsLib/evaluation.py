"""CC-Metrics evaluation: per-component metrics in the Voronoi region of each reference component.

For every connected component C of the reference, the metric m is computed on
(prediction ∩ R_C, reference ∩ R_C), R_C being C's generalized Voronoi region
(:mod:`CCMetricsLib.voronoi`); the CC score is the mean over components (dissertation 5.1.2.2).
The usual global ("standard") metrics and two instance-matching metrics (Panoptic Quality,
Lesion Dice) are reported beside them.

How it stays fast and small: nothing is computed per voxel of the grid. Reference and prediction
become lists of voxel indices; the region of a predicted voxel is its reference component's id
when it lies in the reference, otherwise the nearest component found with a k-d tree over the
reference's boundary voxels (exact, ties to the lowest id); boundaries come from looking up six
neighbours in a padded crop around each mask; distances come from per-component k-d trees.
Time O(N) for finding the voxels of each mask and labelling its crop plus O((V + B) log B) for the
V mask voxels and B boundary voxels; extra memory O(crop) bytes, a few hundred MB for a whole-body
CT (the full region map of :func:`~CCMetricsLib.voronoi.voronoi_regions` is never built).

Differences from the authors' package (CCMetrics 0.0.3), on purpose:

- distances and the NSD tolerance are in mm (the package works in voxel units, no spacing);
- equidistant voxels go to the lowest component id (the package's feature transform breaks ties
  arbitrarily);
- a component without any prediction in its region gets ``distance_worst`` as its distances; by
  default that is the image diagonal in mm (the length of the grid's extent, an upper bound of every
  distance inside the grid), so one missed lesion no longer makes the mean inf; pass
  ``distance_worst=math.inf`` for the old behaviour. A finite distance larger than
  ``distance_worst`` is kept unless ``clamp_distances=True`` (the package replaces only NaN/inf by its
  worst score, so it keeps e.g. 52.2 with worst 50 as well);
- detection rule (one rule, every reference component is exactly one of them): a component is
  *detected* when at least one predicted voxel overlaps it, else *missed* (the "any overlap" criterion
  of Lesion Dice, dissertation 5.1.1.2; the dissertation's Voronoi matching itself assigns every
  prediction to a region but defines no detection threshold). A missed component may still have a
  non-overlapping prediction in its Voronoi region (``n_missed_with_prediction_nearby``): its Dice
  is 0 and its distances are the real, finite ones;
- reference empty: best scores when the prediction is empty too, worst otherwise (as the package).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import GeometryMismatchError, InvalidParameterError, LabelNotFoundError, UnknownMetricError
from .instance_metrics import ComponentOverlaps, lesion_dice, panoptic_quality
from .overlap import dice_from_counts, iou_from_counts
from .surface_distance import SURFACE_METRICS, directed_distances_mm, kd_tree, surface_scores
from .voronoi import (
    SPACING_ORDERS,  # noqa: F401  (public here before it moved to voronoi)
    as_binary_mask,
    check_connectivity,
    component_sites,
    label_components,
    resolve_spacing_kji,
    spacing_array,
)

#: Every per-component metric, in display order.
METRICS = ("dice", "iou", "nsd", "hd95", "hd", "assd")
#: Metrics where larger is better (the others are distances in mm, smaller is better).
HIGHER_IS_BETTER = frozenset({"dice", "iou", "nsd"})
DISTANCE_METRICS = ("hd95", "hd", "assd")
INSTANCE_KEYS = ("pq", "sq", "rq", "lesion_dice")


# ---------------------------------------------------------------------------- inputs
@dataclass
class MaskInput:
    """A binary mask given as an array or a Volume, with its geometry when known."""

    array: np.ndarray
    ijk_to_ras: np.ndarray | None
    spacing_kji: np.ndarray | None


def as_mask(data: Any, label: int | None, name: str) -> MaskInput:
    """A binary mask (``== label`` if given) from an array or a Volume, with the Volume's geometry.

    ``name`` names the input in the error raised for a non-binary array without ``label``.
    """
    ijk_to_ras = spacing = None
    if hasattr(data, "array") and hasattr(data, "ijk_to_ras"):  # AnatomyCommonLib Volume
        ijk_to_ras = np.asarray(data.ijk_to_ras, dtype=float)
        spacing = np.asarray(data.spacing_kji_mm, dtype=float)
        data = data.array
    array = np.asarray(data)
    if label is not None:
        array = array == label
    return MaskInput(as_binary_mask(array, name), ijk_to_ras, spacing)


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(m.lower() for m in metrics))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise UnknownMetricError(f"Unknown metric(s) {unknown}; choose from {', '.join(METRICS)}.")
    if not chosen:
        raise UnknownMetricError(f"Choose at least one metric from {', '.join(METRICS)}.")
    return chosen


def _check_same_grid(reference: MaskInput, prediction: MaskInput, name: str) -> None:
    if reference.array.shape != prediction.array.shape:
        raise GeometryMismatchError(
            f"reference has {reference.array.shape} voxels but {name} has {prediction.array.shape}; "
            "both must lie on the same voxel grid (resample the prediction onto the reference first)."
        )
    known = reference.ijk_to_ras is not None and prediction.ijk_to_ras is not None
    if known and not np.allclose(reference.ijk_to_ras, prediction.ijk_to_ras, atol=1e-3, rtol=0):
        raise GeometryMismatchError(
            f"reference and {name} have the same size but a different spacing, origin or direction; "
            "they must lie on the same voxel grid (resample the prediction onto the reference first)."
        )


def _resolve_spacing(spacing, reference: MaskInput, spacing_order: str | None = None) -> np.ndarray:
    """Spacing in array axis order (k, j, i); see :func:`~CCMetricsLib.voronoi.resolve_spacing_kji`."""
    return resolve_spacing_kji(spacing, spacing_order, reference.spacing_kji)


# ---------------------------------------------------------------------------- prepared reference
class PreparedReference:
    """The reference's components, boundary and k-d trees, computed once for many predictions.

    Holds the voxel indices of the reference, their component ids, per-component statistics and
    a :class:`~CCMetricsLib.voronoi.ComponentSites` over the boundary voxels.
    """

    def __init__(self, mask: np.ndarray, spacing_kji: np.ndarray, connectivity: int, ijk_to_ras=None):
        self.shape = mask.shape
        self.spacing = spacing_array(spacing_kji)
        self.connectivity = check_connectivity(connectivity)
        self.ijk_to_ras = ijk_to_ras
        self.voxel_volume_ml = (
            float(abs(np.linalg.det(ijk_to_ras[:3, :3]))) / 1000.0
            if ijk_to_ras is not None
            else float(np.prod(self.spacing)) / 1000.0
        )
        flat = np.flatnonzero(mask)
        self.voxel_count = int(flat.size)
        if flat.size == 0:
            self.n_components = 0
            self.sizes = np.zeros(0, dtype=np.int64)
            self.sites = component_sites(np.zeros((1, 1, 1), np.uint8), 0, self.spacing)
            self._labels = None
            return
        coords = np.stack(np.unravel_index(flat, self.shape), axis=1)
        self._lo = coords.min(axis=0) - 1
        crop_shape = tuple(coords.max(axis=0) - self._lo + 2)
        crop = np.zeros(crop_shape, dtype=bool)
        crop[tuple((coords - self._lo).T)] = True
        labels, n = label_components(crop, self.connectivity)
        self._labels = labels
        self.n_components = n
        own = labels[tuple((coords - self._lo).T)].astype(np.int64)
        self.sizes = np.bincount(own, minlength=n + 1)[1:]
        self.centroids_kji = (
            np.stack([np.bincount(own, weights=coords[:, a], minlength=n + 1)[1:] for a in range(3)], axis=1)
            / self.sizes[:, None]
        )
        order = np.argsort(own, kind="stable")
        starts = np.searchsorted(own[order], np.arange(1, n + 1))
        self.bbox_min_kji = np.minimum.reduceat(coords[order], starts, axis=0)
        self.bbox_max_kji = np.maximum.reduceat(coords[order], starts, axis=0)
        self.sites = component_sites(labels, n, self.spacing, origin_kji=self._lo, framed=True)

    def component_at(self, coords_kji: np.ndarray) -> np.ndarray:
        """Reference component id (0 = not in the reference) of each voxel."""
        result = np.zeros(coords_kji.shape[0], dtype=np.int64)
        if self._labels is None:
            return result
        local = coords_kji - self._lo
        inside = np.all((local >= 0) & (local < np.array(self._labels.shape)), axis=1)
        result[inside] = self._labels[tuple(local[inside].T)]
        return result

    def components_in_window(self, window: tuple[slice, slice, slice]) -> np.ndarray:
        """Reference component ids (0 = background) in a box of the full grid (slices in k, j, i)."""
        starts = np.array([w.start for w in window])
        stops = np.array([w.stop for w in window])
        result = np.zeros(tuple(stops - starts), dtype=np.int64)
        if self._labels is None:
            return result
        lo = np.maximum(starts, self._lo)
        hi = np.minimum(stops, self._lo + np.array(self._labels.shape))
        if np.any(hi <= lo):
            return result
        source = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, self._lo, strict=True))
        target = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, starts, strict=True))
        result[target] = self._labels[source]
        return result

    def regions_in_window(self, window: tuple[slice, slice, slice]) -> np.ndarray:
        """Exact Voronoi region ids in a box of the full grid (cost grows with the box, not the grid)."""
        components = self.components_in_window(window)
        outside = np.argwhere(components == 0)
        if self.n_components and outside.size:
            origin = np.array([w.start for w in window])
            components[tuple(outside.T)] = self.sites.nearest_component(outside + origin)
        return components

    def component_rows(self) -> list[dict[str, Any]]:
        """Per-component description: id, size, volume, centroid (IJK, RAS), bounding box (IJK)."""
        rows = []
        for index in range(self.n_components):
            centroid_ijk = [float(v) for v in self.centroids_kji[index][::-1]]
            row: dict[str, Any] = {
                "component_id": index + 1,
                "voxel_count": int(self.sizes[index]),
                "volume_ml": float(self.sizes[index] * self.voxel_volume_ml),
                "centroid_ijk": centroid_ijk,
            }
            if self.ijk_to_ras is not None:
                ras = self.ijk_to_ras[:3, :3] @ np.asarray(centroid_ijk) + self.ijk_to_ras[:3, 3]
                row["centroid_ras"] = [float(v) for v in ras]
            row["bbox"] = [int(v) for v in self.bbox_min_kji[index][::-1]] + [
                int(v) for v in self.bbox_max_kji[index][::-1]
            ]
            rows.append(row)
        return rows


# ---------------------------------------------------------------------------- result objects
def json_value(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as plain Python and inf/NaN as the strings "inf"/"nan"."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Lists become one column per entry (centroid_ijk -> centroid_i, centroid_j, centroid_k ...)."""
    names = {
        "centroid_ijk": ("centroid_i", "centroid_j", "centroid_k"),
        "centroid_ras": ("centroid_r", "centroid_a", "centroid_s"),
        "bbox": ("bbox_i_min", "bbox_j_min", "bbox_k_min", "bbox_i_max", "bbox_j_max", "bbox_k_max"),
    }
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if key in names and isinstance(value, (list, tuple)):
            flat.update(zip(names[key], value, strict=True))
        else:
            flat[key] = value
    return flat


def rows_to_csv(rows: Sequence[Mapping[str, Any]], path: str | Path | None = None) -> str:
    """CSV text of dict rows (union of keys as columns, floats in full precision); written to ``path``."""
    flat = [flat_row(r) for r in rows]
    columns: list[str] = []
    for row in flat:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    text = buffer.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value


def write_json(data: Any, path: str | Path | None) -> str:
    """``data`` as indented JSON text (numpy values converted), also written to ``path`` if given."""
    text = json.dumps(json_value(data), indent=2)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")
    return text


@dataclass
class CCMetricsResult:
    """CC-Metrics of one prediction against one reference.

    - ``per_component``: one dict per reference component (id, voxel_count, volume_ml,
      centroid_ijk, centroid_ras when geometry is known, bbox = [i0, j0, k0, i1, j1, k1] inclusive,
      detected, n_pred_components, prediction_voxels, and one key per metric);
    - ``mean``: the CC score of each metric (mean over components);
    - ``standard``: the usual global metric of each kind on the whole volume;
    - ``instance``: Panoptic Quality (pq, sq, rq) and Lesion Dice with their TP/FP/FN counts;
    - ``counts``: components of reference and prediction, detected, missed (detected + missed =
      reference components; missed split into with/without a prediction in the region), false
      positives.

    Distances are in mm; a component without prediction in its region gets ``distance_worst``
    (default: the image diagonal, see ``settings["distance_worst_rule"]``).
    """

    name: str
    per_component: list[dict[str, Any]]
    mean: dict[str, float]
    standard: dict[str, float]
    instance: dict[str, float]
    counts: dict[str, int]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.settings.get("metrics", METRICS))

    def summary(self) -> dict[str, Any]:
        """One flat row: counts, then standard_<metric> and cc_<metric> side by side, then PQ/LD."""
        row: dict[str, Any] = {"prediction": self.name, "label": self.settings.get("label"), **self.counts}
        for metric in self.metrics:
            row[f"standard_{metric}"] = self.standard[metric]
            row[f"cc_{metric}"] = self.mean[metric]
            if metric in DISTANCE_METRICS:
                # how many components of this mean are missed (their distance may be the worst value)
                row[f"cc_{metric}_n_missed"] = self.counts["n_missed"]
        row.update({k: self.instance[k] for k in INSTANCE_KEYS})
        return row

    def component_rows(self) -> list[dict[str, Any]]:
        label = self.settings.get("label")
        return [{"prediction": self.name, "label": label, **row} for row in self.per_component]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction": self.name,
            "settings": self.settings,
            "counts": self.counts,
            "standard": self.standard,
            "mean": self.mean,
            "instance": self.instance,
            "per_component": self.per_component,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text (non-finite numbers as the strings "inf"/"nan"); also written to ``path``."""
        return write_json(self.to_dict(), path)

    def to_csv(self, path: str | Path | None = None) -> str:
        """Per-component CSV text (one row per reference component); also written to ``path``."""
        return rows_to_csv(self.component_rows(), path)


@dataclass
class ComparisonResult:
    """Several predictions evaluated against one reference: one table."""

    results: dict[str, CCMetricsResult]

    def __getitem__(self, name: str) -> CCMetricsResult:
        return self.results[name]

    def __iter__(self):
        return iter(self.results.values())

    def __len__(self) -> int:
        return len(self.results)

    def component_rows(self) -> list[dict[str, Any]]:
        return [row for result in self.results.values() for row in result.component_rows()]

    def summary_rows(self) -> list[dict[str, Any]]:
        return [result.summary() for result in self.results.values()]

    def to_csv(self, path: str | Path | None = None) -> str:
        """Per-component rows of every prediction (column ``prediction`` first)."""
        return rows_to_csv(self.component_rows(), path)

    def summary_csv(self, path: str | Path | None = None) -> str:
        """One row per prediction: standard vs CC metrics, PQ, Lesion Dice."""
        return rows_to_csv(self.summary_rows(), path)

    def to_json(self, path: str | Path | None = None) -> str:
        return write_json({"predictions": [r.to_dict() for r in self.results.values()]}, path)


# ---------------------------------------------------------------------------- evaluation
def image_diagonal_mm(shape: Sequence[int], spacing_kji: Sequence[float]) -> float:
    """Length of the grid's extent in mm (``norm(shape * spacing)``): the default worst distance,
    larger than any distance between two voxels of the grid."""
    return float(np.linalg.norm(np.asarray(shape, dtype=float) * np.asarray(spacing_kji, dtype=float)))


def _worst(metric: str, distance_worst: float | None) -> float:
    if metric in HIGHER_IS_BETTER:
        return 0.0
    return float("inf") if distance_worst is None else float(distance_worst)


def _best(metric: str) -> float:
    return 1.0 if metric in HIGHER_IS_BETTER else 0.0


def _finish_distances(
    scores: dict[str, float], distance_worst: float | None, clamp: bool
) -> dict[str, float]:
    for metric in DISTANCE_METRICS:
        if metric in scores and distance_worst is not None:
            value = scores[metric]
            if not math.isfinite(value) or (clamp and value > distance_worst):
                scores[metric] = float(distance_worst)
    return scores


def _evaluate_prepared(
    reference: PreparedReference,
    prediction: np.ndarray,
    name: str,
    metrics: tuple[str, ...],
    nsd_tolerance: float,
    distance_worst: float | None,
    clamp_distances: bool,
    settings: dict[str, Any],
) -> CCMetricsResult:
    import cc3d

    n = reference.n_components
    spacing = reference.spacing
    surface_wanted = [m for m in metrics if m in SURFACE_METRICS]

    flat = np.flatnonzero(prediction)
    coords = (
        np.stack(np.unravel_index(flat, reference.shape), axis=1) if flat.size else np.zeros((0, 3), np.int64)
    )
    in_reference = reference.component_at(coords)
    region = in_reference.copy()
    outside = np.flatnonzero(region == 0)
    if n and outside.size:
        region[outside] = reference.sites.nearest_component(coords[outside])

    # connected components and 6-neighbour boundaries of the prediction, in a padded crop
    m = 0
    pred_components = np.zeros(flat.size, dtype=np.int64)
    boundary_in_region = np.zeros(flat.size, dtype=bool)
    boundary_global = np.zeros(flat.size, dtype=bool)
    if flat.size:
        lo = coords.min(axis=0) - 1
        crop_shape = tuple(coords.max(axis=0) - lo + 2)
        dtype = np.uint8 if n < 255 else (np.uint16 if n < 65535 else np.uint32)
        crop = np.zeros(crop_shape, dtype=dtype)
        positions = np.ravel_multi_index(tuple((coords - lo).T), crop_shape)
        own = region.astype(dtype) if n else np.ones(flat.size, dtype=dtype)
        crop.ravel()[positions] = own
        if surface_wanted:
            crop_flat = crop.ravel()
            for stride in np.array(crop.strides) // crop.itemsize:
                for step in (-int(stride), int(stride)):
                    neighbour = crop_flat[positions + step]
                    boundary_in_region |= neighbour != own
                    boundary_global |= neighbour == 0
        labels = cc3d.connected_components((crop != 0).view(np.uint8), connectivity=reference.connectivity)
        pred_components = labels.ravel()[positions].astype(np.int64)
        m = int(pred_components.max(initial=0))
        del crop, labels
    pred_sizes = np.bincount(pred_components, minlength=m + 1)[1:]

    # overlap counts per component and globally
    both = in_reference > 0
    intersection = np.bincount(in_reference[both], minlength=n + 1)[1:]
    in_region = np.bincount(region, minlength=n + 1)[1:] if n else np.zeros(0, np.int64)
    region_pairs = np.unique(region * (m + 1) + pred_components) if flat.size else np.zeros(0, np.int64)
    pred_components_per_region = np.bincount(region_pairs // (m + 1), minlength=n + 1)[1:]

    overlaps = ComponentOverlaps.from_labels(
        in_reference[both], pred_components[both], n, m, reference.sizes, pred_sizes
    )
    instance = {**panoptic_quality(overlaps), **lesion_dice(overlaps)}
    touching = np.zeros(m + 1, dtype=bool)
    touching[overlaps.pairs[:, 1]] = True

    # per component
    per_component = reference.component_rows()
    dice = dice_from_counts(intersection, in_region, reference.sizes)
    iou = iou_from_counts(intersection, in_region, reference.sizes)
    if surface_wanted and n:
        bd_regions = region[boundary_in_region]
        bd_points = coords[boundary_in_region] * spacing
        order = np.argsort(bd_regions, kind="stable")
        bd_regions, bd_points = bd_regions[order], bd_points[order]
        edges = np.searchsorted(bd_regions, np.arange(1, n + 2))
    for index, row in enumerate(per_component):
        component = index + 1
        row["detected"] = bool(intersection[index] > 0)  # the detection rule (module docstring)
        row["prediction_nearby"] = bool(in_region[index] > 0)
        row["n_pred_components"] = int(pred_components_per_region[index])
        row["prediction_voxels"] = int(in_region[index])
        scores: dict[str, float] = {"dice": float(dice[index]), "iou": float(iou[index])}
        if surface_wanted:
            if in_region[index] == 0:
                scores.update({metric: _worst(metric, distance_worst) for metric in surface_wanted})
            else:
                pred_points = bd_points[edges[index] : edges[index + 1]]
                ref_points = reference.sites.component_points_mm(component)
                scores.update(
                    surface_scores(
                        directed_distances_mm(pred_points, reference.sites.component_tree(component)),
                        directed_distances_mm(ref_points, kd_tree(pred_points)),
                        nsd_tolerance,
                        surface_wanted,
                    )
                )
        _finish_distances(scores, distance_worst, clamp_distances)
        row.update({metric: scores[metric] for metric in metrics})

    # CC mean
    if n:
        mean = {metric: float(np.mean([row[metric] for row in per_component])) for metric in metrics}
    elif flat.size:
        mean = {metric: _worst(metric, distance_worst) for metric in metrics}
    else:
        mean = {metric: _best(metric) for metric in metrics}

    # standard global metrics
    if reference.voxel_count == 0 and flat.size == 0:
        standard = {metric: _best(metric) for metric in metrics}
    else:
        overlap_total = int(intersection.sum())
        standard = {
            "dice": float(dice_from_counts(overlap_total, flat.size, reference.voxel_count)),
            "iou": float(iou_from_counts(overlap_total, flat.size, reference.voxel_count)),
        }
        if surface_wanted:
            if reference.voxel_count == 0 or flat.size == 0:
                standard.update({metric: _worst(metric, distance_worst) for metric in surface_wanted})
            else:
                pred_points = coords[boundary_global] * spacing
                standard.update(
                    surface_scores(
                        directed_distances_mm(pred_points, reference.sites.tree),
                        directed_distances_mm(reference.sites.points_mm, kd_tree(pred_points)),
                        nsd_tolerance,
                        surface_wanted,
                    )
                )
        _finish_distances(standard, distance_worst, clamp_distances)
        standard = {metric: standard[metric] for metric in metrics}

    counts = {
        "n_reference_components": n,
        "n_detected": int(np.count_nonzero(intersection)),
        "n_missed": int(n - np.count_nonzero(intersection)),
        "n_missed_with_prediction_nearby": int(np.count_nonzero((intersection == 0) & (in_region > 0))),
        "n_missed_without_prediction": int(np.count_nonzero(in_region == 0)),
        "n_prediction_components": m,
        "n_false_positive_components": int(m - touching[1:].sum()),
    }
    return CCMetricsResult(name, per_component, mean, standard, instance, counts, dict(settings))


def _settings(metrics, nsd_tolerance, connectivity, distance_worst, clamp_distances, label, spacing) -> dict:
    return {
        "metrics": list(metrics),
        "nsd_tolerance_mm": float(nsd_tolerance),
        "connectivity": connectivity,
        "distance_worst_mm": distance_worst,
        "clamp_distances": bool(clamp_distances),
        "label": label,
        "spacing_kji_mm": [float(v) for v in spacing],
    }


def _raw_array(data: Any) -> np.ndarray:
    return np.asarray(data.array if hasattr(data, "array") and hasattr(data, "ijk_to_ras") else data)


def require_label_present(label: int, masks: Mapping[str, Any]) -> None:
    """LabelNotFoundError when no voxel of any mask has the value ``label`` (it would score a perfect
    empty-versus-empty match: Dice 1, HD95 0, PQ 1)."""
    present: set = set()
    for data in masks.values():
        array = _raw_array(data)
        if np.any(array == label):
            return
        present |= set(np.unique(array).tolist())
    values = sorted(int(v) if float(v).is_integer() else float(v) for v in present - {0})
    raise LabelNotFoundError(
        f"label {label} occurs in none of {', '.join(masks)}; the labels present are "
        f"{values if values else 'none (all masks are empty)'}; choose one of them."
    )


def _check_parameters(nsd_tolerance: float, distance_worst: float | None, clamp_distances: bool) -> None:
    if not (math.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
        raise InvalidParameterError(
            f"nsd_tolerance must be a finite distance >= 0 mm, got {nsd_tolerance!r}."
        )
    if distance_worst is not None and not (distance_worst >= 0):  # also refuses NaN
        raise InvalidParameterError(f"distance_worst must be a distance >= 0 mm, got {distance_worst!r}.")
    if clamp_distances and distance_worst is None:
        raise InvalidParameterError(
            "clamp_distances=True needs distance_worst (the largest distance to report)."
        )


def compare(
    reference: Any,
    predictions: Mapping[str, Any] | Sequence[Any],
    spacing: float | Sequence[float] | None = None,
    metrics: Iterable[str] = METRICS,
    nsd_tolerance: float = 1.0,
    connectivity: int = 26,
    distance_worst: float | None = None,
    *,
    label: int | None = None,
    clamp_distances: bool = False,
    spacing_order: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ComparisonResult:
    """Evaluate several predictions against one reference (the reference is prepared once).

    ``predictions`` maps names to masks (or is a sequence, named prediction_1, prediction_2 ...).
    Masks are binary arrays or Volumes; with ``label=N`` label maps are compared on value N.
    ``progress(index, total, name)`` is called before each prediction (a GUI's progress bar; it may
    raise to stop). See :func:`evaluate` for the other arguments.
    """
    metrics = check_metrics(metrics)
    connectivity = check_connectivity(connectivity)
    _check_parameters(nsd_tolerance, distance_worst, clamp_distances)
    if not isinstance(predictions, Mapping):
        predictions = {f"prediction_{i}": p for i, p in enumerate(predictions, start=1)}
    if not predictions:
        raise InvalidParameterError("Give at least one prediction to evaluate.")
    if label is not None:
        require_label_present(label, {"reference": reference, **predictions})
    reference_mask = as_mask(reference, label, "reference")
    spacing_kji = _resolve_spacing(spacing, reference_mask, spacing_order)
    prepared = PreparedReference(reference_mask.array, spacing_kji, connectivity, reference_mask.ijk_to_ras)
    worst_rule = "given"
    if distance_worst is None:
        distance_worst, worst_rule = (
            image_diagonal_mm(reference_mask.array.shape, spacing_kji),
            "image diagonal",
        )
    settings = _settings(
        metrics, nsd_tolerance, connectivity, distance_worst, clamp_distances, label, spacing_kji
    )
    settings["distance_worst_rule"] = worst_rule
    results = {}
    for index, (name, prediction) in enumerate(predictions.items()):
        if progress is not None:
            progress(index, len(predictions), str(name))
        prediction_mask = as_mask(prediction, label, str(name))
        _check_same_grid(reference_mask, prediction_mask, str(name))
        results[str(name)] = _evaluate_prepared(
            prepared,
            prediction_mask.array,
            str(name),
            metrics,
            nsd_tolerance,
            distance_worst,
            clamp_distances,
            settings,
        )
    return ComparisonResult(results)


def evaluate(
    reference: Any,
    prediction: Any,
    spacing: float | Sequence[float] | None = None,
    metrics: Iterable[str] = METRICS,
    nsd_tolerance: float = 1.0,
    connectivity: int = 26,
    distance_worst: float | None = None,
    *,
    label: int | None = None,
    clamp_distances: bool = False,
    name: str = "prediction",
    spacing_order: str | None = None,
) -> CCMetricsResult:
    """CC-Metrics of ``prediction`` against ``reference``.

    Args:
        reference, prediction: binary 3D masks (numpy arrays indexed like the image, or
            AnatomyCommonLib Volumes, whose spacing and geometry are then used and checked), or
            label maps with ``label=N``.
        spacing: mm per axis (None: from the Volume, else 1 mm); a number is isotropic. An
            anisotropic spacing with raw arrays needs ``spacing_order``.
        spacing_order: "kji" (numpy array axis order) or "xyz" (SimpleITK ``GetSpacing()`` order).
        metrics: any of "dice", "iou", "nsd", "hd95", "hd", "assd".
        nsd_tolerance: normalized surface Dice tolerance in mm.
        connectivity: 6, 18 or 26 for the connected components of reference and prediction.
        distance_worst: distances of a component without prediction in its region and of a case
            with an empty reference but a prediction (None: the image diagonal in mm; may be inf).
        clamp_distances: also cap finite distances at ``distance_worst``.

    Returns a :class:`CCMetricsResult`. Raises GeometryMismatchError for different grids,
    NonBinaryMaskError for label maps without ``label``, LabelNotFoundError for a ``label`` no mask
    holds, InvalidParameterError for an anisotropic raw-array spacing without ``spacing_order``.
    """
    result = compare(
        reference,
        {name: prediction},
        spacing,
        metrics,
        nsd_tolerance,
        connectivity,
        distance_worst,
        label=label,
        clamp_distances=clamp_distances,
        spacing_order=spacing_order,
    )
    return result[name]


def evaluate_labels(
    reference: Any,
    prediction: Any,
    labels: Iterable[int] | None = None,
    **options: Any,
) -> dict[int, CCMetricsResult]:
    """Evaluate label maps one label at a time (all non-zero labels of either map by default)."""
    ref_array = reference.array if hasattr(reference, "array") else np.asarray(reference)
    pred_array = prediction.array if hasattr(prediction, "array") else np.asarray(prediction)
    if labels is None:
        present = set(np.unique(ref_array).tolist()) | set(np.unique(pred_array).tolist())
        labels = sorted(present - {0})
    return {
        int(value): evaluate(reference, prediction, label=int(value), name=f"label_{int(value)}", **options)
        for value in labels
    }
