"""PNG overviews of a CT with label overlays: axial, coronal and sagittal views.

Every view is shown in the standard radiological display orientation whatever the voxel axis
order of the volume:

* axial: patient right on the image left, anterior up;
* coronal: superior up, patient right on the image left;
* sagittal: superior up, anterior on the image left.

This is achieved by reorienting the arrays with :meth:`Volume.anatomical_axis` (axis transposes
and flips, no interpolation), never by assuming an axis order; pixel aspect ratios come from the
voxel spacing. Oblique volumes are shown along their closest anatomical axes.

The module is generic: label colours are passed in (``{label id: (r, g, b)}``), nothing here knows
about a particular label schema. matplotlib is imported lazily (Agg backend, no display needed).
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .atomic_output import atomic_output_file
from .errors import ImageDimensionError, OutputExistsError
from .volume import Volume

__all__ = [
    "CANONICAL_AXES",
    "render_orthogonal_views",
    "render_orthogonal_views_arrays",
    "reorient_to_ras_axes",
]

#: Anatomical direction that the axes of :func:`reorient_to_ras_axes`' array grow towards.
CANONICAL_AXES: tuple[str, str, str] = ("superior", "anterior", "right")

_VIEWS = ("axial", "coronal", "sagittal")


def _axis_mapping(volume: Volume) -> list[tuple[int, int]]:
    """(array axis, sign) of the volume for each canonical axis (superior, anterior, right)."""
    if volume.array.ndim != 3:
        raise ImageDimensionError(
            f"Orthogonal views need a 3D volume, got an array of shape {volume.array.shape}."
        )
    mapping = []
    for direction in CANONICAL_AXES:
        axis = volume.anatomical_axis(direction)
        mapping.append((axis.array_axis, axis.sign))
    if sorted(axis for axis, _ in mapping) != [0, 1, 2]:
        # a 45-degree oblique grid: two directions share one voxel axis; fall back to the
        # voxel axes closest in order of alignment
        cosines = np.abs(volume.direction_ras)  # rows R, A, S; columns i, j, k
        rows = (2, 1, 0)  # superior, anterior, right
        used: set[int] = set()
        mapping = []
        for row in rows:
            order = np.argsort(-cosines[row])
            column = next(int(c) for c in order if int(c) not in used)
            used.add(column)
            sign = 1 if volume.direction_ras[row, column] > 0 else -1
            mapping.append((2 - column, sign))
    return mapping


def reorient_to_ras_axes(volume: Volume) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The volume's array as a view indexed ``[s, a, r]``, with its spacing in that order.

    Index ``s`` grows towards Superior, ``a`` towards Anterior and ``r`` towards patient Right:
    the array Slicer would hold for the same image stored with an RAS-aligned grid
    (``Volume.array`` of an "RAS" volume is already in this order). Only transposes and flips
    are applied (a view, no copy, no interpolation); oblique volumes are reoriented along their
    closest anatomical axes. The spacing is in mm per returned axis.
    """
    mapping = _axis_mapping(volume)
    view = volume.array.transpose([axis for axis, _ in mapping])
    flips = tuple(slice(None, None, -1) if sign < 0 else slice(None) for _, sign in mapping)
    spacing = volume.spacing_kji_mm
    return view[flips], tuple(float(spacing[axis]) for axis, _ in mapping)  # type: ignore[return-value]


def _canonical_index(volume: Volume, center_ras: Sequence[float] | None) -> tuple[int, int, int]:
    """Slice indices (s, a, r) in the reoriented array of an RAS point (default: volume centre)."""
    mapping = _axis_mapping(volume)
    shape = volume.array.shape
    if center_ras is None:
        kji = (np.asarray(shape, dtype=float) - 1) / 2
    else:
        point = np.asarray(center_ras, dtype=float).reshape(3)
        if not np.all(np.isfinite(point)):
            raise ValueError(f"center_ras must be three finite numbers, got {center_ras!r}.")
        kji = volume.ras_to_kji(point)[0]
    out = []
    for axis, sign in mapping:
        value = kji[axis] if sign > 0 else shape[axis] - 1 - kji[axis]
        # the same physical position rounds the same way whatever the axis order
        index = int(np.floor(value + 0.5 + 1e-6))
        out.append(min(max(index, 0), shape[axis] - 1))
    return out[0], out[1], out[2]


def _default_color(label: int) -> tuple[float, float, float]:
    hue = (int(label) * 0.618033988749895) % 1.0
    return colorsys.hls_to_rgb(hue, 0.55, 0.75)


def _color_table(colors_rgb: Mapping[int, Sequence[float]] | None, max_label: int) -> np.ndarray:
    """(max_label+1, 3) float colours in 0..1; 0..255 inputs are detected and scaled."""
    table = np.array([_default_color(i) for i in range(max_label + 1)], dtype=np.float32)
    if colors_rgb:
        values = np.array([list(c)[:3] for c in colors_rgb.values()], dtype=float)
        divisor = 255.0 if values.size and values.max() > 1.0 else 1.0
        for label, color in colors_rgb.items():
            if 0 <= int(label) <= max_label:
                table[int(label)] = np.asarray(list(color)[:3], dtype=float) / divisor
    return table


def _planes(array_sar: np.ndarray, index: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Display-oriented 2D planes (row 0 = image top, column 0 = image left)."""
    s, a, r = index
    return {
        # rows: anterior -> posterior; columns: right -> left
        "axial": array_sar[s, ::-1, ::-1],
        # rows: superior -> inferior; columns: right -> left
        "coronal": array_sar[::-1, a, ::-1],
        # rows: superior -> inferior; columns: anterior -> posterior
        "sagittal": array_sar[::-1, ::-1, r],
    }


def _pixel_sizes(spacing_sar: tuple[float, float, float]) -> dict[str, tuple[float, float]]:
    """(row height, column width) in mm of each view's pixels."""
    s, a, r = spacing_sar
    return {"axial": (a, r), "coronal": (s, r), "sagittal": (s, a)}


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a 2D mask that touch a pixel outside it (4-neighbourhood)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = (
        padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )
    return mask & ~interior


def _normalise_overlays(extra_overlays: Any) -> list[tuple[Volume, tuple[float, float, float]]]:
    if extra_overlays is None:
        return []
    if isinstance(extra_overlays, Volume):
        extra_overlays = [extra_overlays]
    items = []
    for item in extra_overlays:
        if isinstance(item, Volume):
            volume, color = item, (1.0, 1.0, 0.0)
        elif isinstance(item, Mapping):
            volume, color = item["volume"], item.get("color", (1.0, 1.0, 0.0))
        else:
            volume, color = item[0], (item[1] if len(item) > 1 else (1.0, 1.0, 0.0))
        rgb = np.asarray(list(color)[:3], dtype=float)
        if rgb.max() > 1.0:
            rgb = rgb / 255.0
        items.append((volume, (float(rgb[0]), float(rgb[1]), float(rgb[2]))))
    return items


def render_orthogonal_views_arrays(
    ct: Volume,
    labels: Volume | None = None,
    colors_rgb: Mapping[int, Sequence[float]] | None = None,
    *,
    center_ras: Sequence[float] | None = None,
    window_hu: tuple[float, float] = (400.0, 40.0),
    label_opacity: float = 0.45,
    extra_overlays: Any = None,
) -> dict[str, Any]:
    """The three views as RGB float arrays (no file written).

    Returns ``{"axial": (H, W, 3), "coronal": ..., "sagittal": ..., "pixel_mm": {view: (row
    height, column width)}, "index_sar": (s, a, r)}`` with values in 0..1, already in display
    orientation (see the module docstring). ``window_hu`` is (width, level). ``colors_rgb`` maps
    label ids to (r, g, b) in 0..255 or 0..1 (labels without a colour get a generated one) and
    label voxels are blended with ``label_opacity``. ``extra_overlays``
    are masks on the same grid drawn as coloured outlines: a Volume, a list of Volumes, of
    ``(Volume, rgb)`` pairs or of ``{"volume": ..., "color": ...}`` dicts (non-zero = inside).
    """
    ct.require_3d("ct")
    width, level = (float(v) for v in window_hu)
    if not width > 0:
        raise ValueError(f"window_hu is (width, level) with a positive width, got {window_hu!r}.")
    if not 0.0 <= label_opacity <= 1.0:
        raise ValueError(f"label_opacity must lie between 0 and 1, got {label_opacity!r}.")
    if labels is not None:
        ct.require_same_grid(labels, ("ct", "labels"))
    overlays = _normalise_overlays(extra_overlays)
    for volume, _ in overlays:
        ct.require_same_grid(volume, ("ct", "overlay"))

    index = _canonical_index(ct, center_ras)
    ct_sar, spacing = reorient_to_ras_axes(ct)
    low = level - width / 2
    images = {}
    gray_planes = _planes(ct_sar, index)
    label_planes = _planes(reorient_to_ras_axes(labels)[0], index) if labels is not None else None
    overlay_planes = [(_planes(reorient_to_ras_axes(v)[0], index), c) for v, c in overlays]
    table = None
    if labels is not None:
        max_label = int(labels.array.max()) if labels.array.size else 0
        table = _color_table(colors_rgb, max(max_label, 0))
    for view in _VIEWS:
        gray = np.clip((gray_planes[view].astype(np.float32) - low) / width, 0.0, 1.0)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        if label_planes is not None and table is not None:
            plane = np.asarray(label_planes[view]).astype(np.int64)
            inside = plane > 0
            if np.any(inside):
                colors = table[np.clip(plane, 0, len(table) - 1)]
                rgb[inside] = (1 - label_opacity) * rgb[inside] + label_opacity * colors[inside]
        for planes, color in overlay_planes:
            edge = _outline(np.asarray(planes[view]) != 0)
            rgb[edge] = color
        images[view] = rgb
    images["pixel_mm"] = _pixel_sizes(spacing)
    images["index_sar"] = index
    return images


def render_orthogonal_views(
    path: str | os.PathLike[str],
    ct: Volume,
    labels: Volume | None = None,
    colors_rgb: Mapping[int, Sequence[float]] | None = None,
    *,
    center_ras: Sequence[float] | None = None,
    window_hu: tuple[float, float] = (400.0, 40.0),
    title: str | None = None,
    extra_overlays: Any = None,
    overwrite: bool = False,
    label_opacity: float = 0.45,
    dpi: int = 110,
) -> Path:
    """Write a PNG with the axial, coronal and sagittal views through ``center_ras``.

    Raises :class:`OutputExistsError` if ``path`` exists and ``overwrite`` is False. The file is
    written to a temporary name first and moved into place, so a failure leaves nothing behind.
    Returns the path written.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"{target} already exists; choose another file name or pass overwrite=True to replace it."
        )
    if target.suffix.lower() != ".png":
        raise ValueError(f"The overview is written as PNG; give a path ending in .png, got {target.name!r}.")
    images = render_orthogonal_views_arrays(
        ct,
        labels,
        colors_rgb,
        center_ras=center_ras,
        window_hu=window_hu,
        label_opacity=label_opacity,
        extra_overlays=extra_overlays,
    )

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    extents = {}
    for view in _VIEWS:
        rows, cols = images[view].shape[:2]
        row_mm, col_mm = images["pixel_mm"][view]
        extents[view] = (cols * col_mm, rows * row_mm)  # width, height in mm
    # every panel gets the same height on the page (each keeps its own physical aspect ratio)
    ratios = [extents[v][0] / extents[v][1] for v in _VIEWS]
    fig_width = 14.0
    fig_height = fig_width / sum(ratios) + (0.7 if title else 0.4)
    figure = Figure(figsize=(fig_width, fig_height), facecolor="black")
    FigureCanvasAgg(figure)
    top = 1.0 - (0.6 if title else 0.3) / fig_height
    grid = figure.add_gridspec(
        1, 3, width_ratios=ratios, wspace=0.03, left=0.01, right=0.99, bottom=0.01, top=top
    )
    letters = {
        "axial": ("R", "L", "A", "P"),
        "coronal": ("R", "L", "S", "I"),
        "sagittal": ("A", "P", "S", "I"),
    }
    for column, view in enumerate(_VIEWS):
        axes = figure.add_subplot(grid[0, column])
        width_mm, height_mm = extents[view]
        axes.imshow(images[view], extent=(0, width_mm, height_mm, 0), interpolation="nearest")
        axes.set_aspect("equal")
        axes.set_axis_off()
        left, right, top, bottom = letters[view]
        style = {"color": "yellow", "fontsize": 9, "fontweight": "bold"}
        axes.text(0.01, 0.5, left, transform=axes.transAxes, ha="left", va="center", **style)
        axes.text(0.99, 0.5, right, transform=axes.transAxes, ha="right", va="center", **style)
        axes.text(0.5, 0.99, top, transform=axes.transAxes, ha="center", va="top", **style)
        axes.text(0.5, 0.01, bottom, transform=axes.transAxes, ha="center", va="bottom", **style)
        axes.set_title(view, color="white", fontsize=9)
    if title:
        figure.suptitle(title, color="white", fontsize=11)

    with atomic_output_file(target, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=dpi, facecolor=figure.get_facecolor())
        if target.exists() and not overwrite:  # appeared while rendering
            raise OutputExistsError(
                f"{target} appeared while the overview was rendered; nothing was overwritten."
            )
    return target
