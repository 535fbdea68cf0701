"""A PNG that shows, per reference component, the axial slice through it with the Voronoi region
boundaries, the reference and prediction outlines and the per-component scores.

One panel per component (largest slice count first is not assumed: components keep their ids),
shown in radiological orientation when the geometry is known (patient right on the image left,
anterior up; slice axis = the array axis closest to superior), with physical pixel aspect. Region
ids in each panel are computed exactly for that window only (no full region map is built).
Components a prediction does not overlap get a red title and "MISSED", so a researcher sees at
a glance which lesions a model misses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.atomic_output import atomic_output_file

from .evaluation import ComparisonResult, PreparedReference, as_mask
from .exceptions import GeometryMismatchError, OutputExistsError

#: Outline colours of the predictions, in order; the reference is green.
PREDICTION_COLORS = ("#ff3b30", "#ffcc00", "#34c7ff", "#ff66cc", "#ff9500", "#b388ff")
REFERENCE_COLOR = "#30d158"


def _display_axes(ijk_to_ras: np.ndarray | None) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """(slice axis, (row axis, row sign), (column axis, column sign)) for an axial radiological view.

    Sign +1 keeps the array order, -1 flips it. Without geometry: slices along axis 0, rows axis 1,
    columns axis 2.
    """
    if ijk_to_ras is None:
        return 0, (1, 1), (2, 1)
    from AnatomyCommonLib.volume import Volume

    probe = Volume(np.zeros((1, 1, 1), np.uint8), ijk_to_ras)
    superior = probe.anatomical_axis("superior").array_axis
    anterior = probe.anatomical_axis("anterior")  # image top = anterior: rows run posterior-wards
    left = probe.anatomical_axis("left")  # image left = patient right: columns run leftwards
    if len({superior, anterior.array_axis, left.array_axis}) < 3:
        return 0, (1, 1), (2, 1)
    return superior, (anterior.array_axis, -anterior.sign), (left.array_axis, left.sign)


def _plane(volume_window: np.ndarray, slice_axis: int, index: int, rows, columns) -> np.ndarray:
    plane = np.take(volume_window, index, axis=slice_axis)
    remaining = [a for a in range(3) if a != slice_axis]
    plane = np.transpose(plane, (remaining.index(rows[0]), remaining.index(columns[0])))
    return plane[:: rows[1], :: columns[1]]


def render_component_report(
    reference: Any,
    predictions: Mapping[str, Any],
    comparison: ComparisonResult,
    path: str | os.PathLike,
    *,
    spacing: Sequence[float] | None = None,
    connectivity: int | None = None,
    label: int | None = None,
    columns: int = 5,
    margin_mm: float = 30.0,
    overwrite: bool = False,
    max_components: int = 120,
    background: Any = None,
    window_hu: tuple[float, float] = (40.0, 400.0),
) -> Path:
    """Write the per-component PNG for ``comparison`` (from :func:`~CCMetricsLib.compare`).

    ``reference``/``predictions`` are the masks (arrays or Volumes) that were evaluated;
    ``background`` an optional image on the same grid (a CT, shown with ``window_hu`` = (level,
    width)); each panel reaches ``margin_mm`` (or half the lesion size) beyond the lesion.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; choose another file name or pass overwrite=True.")
    first = next(iter(comparison))
    settings = first.settings
    ref_mask = as_mask(reference, label if label is not None else settings.get("label"), "reference")
    spacing_kji = np.asarray(spacing if spacing is not None else settings["spacing_kji_mm"], dtype=float)
    prepared = PreparedReference(
        ref_mask.array, spacing_kji, connectivity or settings["connectivity"], ref_mask.ijk_to_ras
    )
    pred_masks = {
        name: as_mask(mask, label if label is not None else settings.get("label"), name).array
        for name, mask in predictions.items()
    }
    slice_axis, rows, cols = _display_axes(ref_mask.ijk_to_ras)
    background_array = None
    if background is not None:
        background_array = np.asarray(background.array if hasattr(background, "array") else background)
        if background_array.shape != tuple(prepared.shape):
            raise GeometryMismatchError(
                f"The background image has {background_array.shape} voxels but the masks "
                f"{tuple(prepared.shape)}; pass the image the masks were drawn on."
            )
    components = first.per_component[:max_components]
    n_panels = max(len(components), 1)
    n_cols = min(columns, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols, 3.6 * n_rows + 0.9), squeeze=False)
    figure.patch.set_facecolor("black")
    for ax in axes.ravel():
        ax.set_axis_off()
    shape = np.array(prepared.shape)
    pixel_mm = (spacing_kji[rows[0]], spacing_kji[cols[0]])
    for panel, row in zip(axes.ravel(), components, strict=False):
        component = row["component_id"]
        i0, j0, k0, i1, j1, k1 = row["bbox"]
        lo, hi = np.array([k0, j0, i0]), np.array([k1, j1, i1])
        reach = np.ceil(np.maximum(margin_mm, 0.5 * (hi - lo + 1) * spacing_kji) / spacing_kji).astype(int)
        reach[slice_axis] = 0
        start = np.maximum(lo - reach, 0)
        stop = np.minimum(hi + reach + 1, shape)
        centre = round(row["centroid_ijk"][::-1][slice_axis])
        start[slice_axis], stop[slice_axis] = centre, centre + 1
        window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        regions = _plane(prepared.regions_in_window(window), slice_axis, 0, rows, cols)
        components_here = _plane(prepared.components_in_window(window), slice_axis, 0, rows, cols)
        extent = (0, regions.shape[1] * pixel_mm[1], regions.shape[0] * pixel_mm[0], 0)
        if background_array is not None:
            level, width = window_hu
            image = _plane(background_array[window], slice_axis, 0, rows, cols).astype(float)
            grey = np.clip((image - level + width / 2) / width, 0, 1) * 0.85
        else:
            grey = np.full(regions.shape, 0.12)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        inside = regions == component
        rgb[inside] = 0.8 * rgb[inside] + 0.2 * np.array([0.35, 0.55, 1.0])  # this lesion's region
        panel.imshow(rgb, extent=extent, interpolation="nearest")
        xs = (np.arange(regions.shape[1]) + 0.5) * pixel_mm[1]
        ys = (np.arange(regions.shape[0]) + 0.5) * pixel_mm[0]
        for region_id in np.unique(regions):
            if 0 < np.count_nonzero(regions == region_id) < regions.size:
                panel.contour(
                    xs,
                    ys,
                    (regions == region_id).astype(float),
                    levels=[0.5],
                    colors="white",
                    linewidths=0.7,
                    linestyles="dotted",
                )
        outlines = [(components_here == component, REFERENCE_COLOR, 2.6)]
        outlines += [(components_here > 0, REFERENCE_COLOR, 0.8)]
        for mask, color in zip(pred_masks.values(), PREDICTION_COLORS, strict=False):
            outlines.append((_plane(mask[window], slice_axis, 0, rows, cols), color, 1.2))
        for mask, color, width in outlines:
            if mask.any():
                panel.contour(xs, ys, mask.astype(float), levels=[0.5], colors=color, linewidths=width)
        missed = [
            name
            for name in comparison.results
            if not comparison[name].per_component[component - 1]["detected"]
        ]
        title = [f"#{component}  {row['volume_ml']:.2f} ml"]
        n_predictions = len(comparison.results)
        for (name, result), color in zip(comparison.results.items(), PREDICTION_COLORS, strict=False):
            scores = result.per_component[component - 1]
            parts = [f"Dice {scores['dice']:.2f}"] if "dice" in scores else []
            if "hd95" in scores:
                parts.append(f"HD95 {_short(scores['hd95'])}")
            if not scores["detected"]:
                parts = ["MISSED"] + (["(FP in region)"] if scores["prediction_voxels"] else [])
            title.append(" ".join(parts))
            panel.text(
                0.02,
                0.02 + 0.09 * (n_predictions + 1 - len(title)),
                f"{name}: {title[-1]}",
                color=color,
                fontsize=8,
                transform=panel.transAxes,
                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "edgecolor": "none"},
            )
        panel.set_title(title[0], color="#ff453a" if missed else "white", fontsize=9)
        panel.set_axis_on()
        panel.set_xticks([])
        panel.set_yticks([])
        for spine in panel.spines.values():
            spine.set_color("#ff453a" if missed else "#444444")
    lines = []
    for (name, result), color in zip(comparison.results.items(), PREDICTION_COLORS, strict=False):
        s, m = result.standard, result.mean
        text = f"{name}: "
        text += ", ".join(
            f"{metric} {_short(s[metric])} / CC {_short(m[metric])}"
            for metric in ("dice", "nsd", "hd95")
            if metric in s
        )
        text += f", PQ {result.instance['pq']:.2f}, LD {result.instance['lesion_dice']:.2f}"
        text += f", detected {result.counts['n_detected']}/{result.counts['n_reference_components']}"
        text += f", FP components {result.counts['n_false_positive_components']}"
        lines.append((text, color))
    header = (
        "CC-Metrics  (green: reference, blue tint: the lesion's Voronoi region, dotted: region borders; "
        "standard / CC)"
    )
    figure.text(0.01, 1 - 0.25 / (3.6 * n_rows + 0.9), header, color="white", fontsize=10, va="top")
    for number, (text, color) in enumerate(lines, start=1):
        figure.text(
            0.01, 1 - (0.25 + 0.22 * number) / (3.6 * n_rows + 0.9), text, color=color, fontsize=9, va="top"
        )
    figure.tight_layout(rect=(0, 0, 1, 1 - (0.45 + 0.22 * len(lines)) / (3.6 * n_rows + 0.9)))
    try:
        with atomic_output_file(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=90, facecolor="black")
    finally:
        plt.close(figure)
    return path


def _short(value: float) -> str:
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
