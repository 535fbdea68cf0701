"""PNG sheets that show every reference component and every false-positive component.

One panel per reference component (ids in order), then one panel per false-positive component of
each prediction (a prediction component that touches no reference voxel). Panels are paged:
``panels_per_page`` per sheet, ``components.png``, ``components_page2.png``, ... Every model is
drawn, in its own colour. Each panel shows the slice where the component's error is largest
(reference voxels missed plus predicted voxels in the component's Voronoi region outside it,
summed over the models; the largest cross-section when there is no error), its slice index, a
millimetre scale bar and the patient orientation letters of its edges (from the direction
matrix; radiological view when the geometry is known: patient right on the image left, anterior
up). Region ids are computed exactly for the shown window only (no full region map is built).
A reference without foreground gets a page that says so (plus the false-positive panels).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.atomic_output import output_mode

from .evaluation import ComparisonResult, PreparedReference, as_mask
from .exceptions import GeometryMismatchError, InvalidParameterError, OutputExistsError
from .voronoi import label_components

#: Outline colours of the predictions, in order (more models: tab20 colours); the reference is green.
PREDICTION_COLORS = ("#ff3b30", "#ffcc00", "#34c7ff", "#ff66cc", "#ff9500", "#b388ff")
REFERENCE_COLOR = "#30d158"
#: Tint blended over a lesion's Voronoi region (20 % of this colour over the image).
REGION_TINT = (0.35, 0.55, 1.0)
REGION_TINT_WEIGHT = 0.2
ARRAY_AXIS_NAMES = ("k", "j", "i")
#: Patient direction letters of the RAS axes, (negative, positive): +x is right, +y anterior, +z superior.
_RAS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))


@dataclass
class Panel:
    """What one panel shows: ``kind`` "lesion" (reference component ``component_id``) or
    "false_positive" (component ``component_id`` of ``prediction``); the slice (array axis name
    and index), the error voxels on it, the scale bar length and the edge letters."""

    page: int
    kind: str
    component_id: int
    prediction: str | None
    slice_axis: str
    slice_index: int
    error_voxels: int
    scale_bar_mm: float
    orientation: dict[str, str]


@dataclass
class ComponentReport:
    """The written sheets (``pages``, first = the requested path) and their ``panels``."""

    pages: list[Path]
    panels: list[Panel] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    colors: dict[str, str] = field(default_factory=dict)
    empty_reference: bool = False

    @property
    def path(self) -> Path:
        return self.pages[0]


def prediction_colors(names: Sequence[str]) -> dict[str, str]:
    """One distinct colour per model: the six defaults, then tab20 colours."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    extra = [to_hex(c) for c in colormaps["tab20"].colors]
    palette = list(PREDICTION_COLORS) + [c for c in extra if c not in PREDICTION_COLORS]
    return {name: palette[index % len(palette)] for index, name in enumerate(names)}


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


def orientation_letters(ijk_to_ras: np.ndarray | None, rows, columns) -> dict[str, str]:
    """Patient direction letters at the panel edges ("left", "right", "top", "bottom").

    The direction a growing displayed column (row) moves in is the RAS direction of its array
    axis times the display sign; its dominant RAS component names the right (bottom) edge. Empty
    strings when the geometry is unknown.
    """
    if ijk_to_ras is None:
        return {"left": "", "right": "", "top": "", "bottom": ""}
    direction = np.asarray(ijk_to_ras, dtype=float)[:3, :3]

    def letter(array_axis: int, sign: int) -> tuple[str, str]:
        vector = direction[:, 2 - array_axis] * sign
        axis = int(np.argmax(np.abs(vector)))
        positive = vector[axis] > 0
        return _RAS_LETTERS[axis][int(positive)], _RAS_LETTERS[axis][int(not positive)]

    right, left = letter(*columns)
    bottom, top = letter(*rows)
    return {"left": left, "right": right, "top": top, "bottom": bottom}


def _plane(volume_window: np.ndarray, slice_axis: int, index: int, rows, columns) -> np.ndarray:
    plane = np.take(volume_window, index, axis=slice_axis)
    remaining = [a for a in range(3) if a != slice_axis]
    plane = np.transpose(plane, (remaining.index(rows[0]), remaining.index(columns[0])))
    return plane[:: rows[1], :: columns[1]]


def _nice_length(limit_mm: float) -> float:
    """The largest of 1, 2, 5 x 10^n mm not above ``limit_mm`` (at least 0.1 mm)."""
    if limit_mm <= 0.1:
        return 0.1
    exponent = math.floor(math.log10(limit_mm))
    for step in (5, 2, 1):
        if step * 10**exponent <= limit_mm:
            return float(step * 10**exponent)
    return float(10**exponent)


def _window(lo, hi, spacing_kji, margin_mm, shape, slice_axis) -> tuple[slice, ...]:
    """The component's box plus ``margin_mm`` (or half its size) in-plane; its full slice range."""
    reach = np.ceil(np.maximum(margin_mm, 0.5 * (hi - lo + 1) * spacing_kji) / spacing_kji).astype(int)
    reach[slice_axis] = 0
    start = np.maximum(lo - reach, 0)
    stop = np.minimum(hi + reach + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def _lesion_error_per_slice(prepared, component, window, pred_masks, slice_axis) -> np.ndarray:
    """Error voxels of ``component`` per slice of ``window`` (summed over the models).

    Error = reference voxels of the component that a model misses + voxels a model predicts in
    the component's Voronoi region outside the component. Region ids only for predicted voxels.
    """
    origin = np.array([w.start for w in window])
    depth = window[slice_axis].stop - window[slice_axis].start
    errors = np.zeros(depth, dtype=np.int64)
    own = prepared.components_in_window(window) == component
    for mask in pred_masks.values():
        predicted = mask[window]
        missed = own & ~predicted
        errors += missed.sum(axis=tuple(a for a in range(3) if a != slice_axis))
        extra = np.argwhere(predicted & ~own)
        if extra.size:
            region = prepared.component_at(extra + origin)
            outside = region == 0
            if prepared.n_components and outside.any():
                region[outside] = prepared.sites.nearest_component(extra[outside] + origin)
            errors += np.bincount(extra[region == component, slice_axis], minlength=depth)
    return errors


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
    max_components: int | None = None,
    background: Any = None,
    window_hu: tuple[float, float] = (40.0, 400.0),
    panels_per_page: int = 30,
    component_names: Mapping[int, str] | None = None,
) -> ComponentReport:
    """Write the per-component PNG sheets for ``comparison`` (from :func:`~CCMetricsLib.compare`).

    ``reference``/``predictions`` are the masks (arrays or Volumes) that were evaluated;
    ``background`` an optional image on the same grid (a CT, shown with ``window_hu`` = (level,
    width)); each panel reaches ``margin_mm`` (or half the lesion size) beyond the lesion. Every
    component is shown (``max_components`` is accepted for compatibility and ignored): sheets
    after the first are ``<stem>_page2.png`` ... beside ``path``. All sheets are rendered before
    any is written; existing sheets are refused unless ``overwrite``. Returns a
    :class:`ComponentReport` (pages and what each panel shows). ``component_names`` (component
    id -> the name a user knows it by, e.g. ``"lesion 10"`` of an instance mask) is shown beside
    the id in each panel title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    if panels_per_page < 1 or columns < 1:
        raise InvalidParameterError(
            f"panels_per_page and columns must be >= 1, got {panels_per_page} and {columns}."
        )
    path = Path(path)
    first = next(iter(comparison))
    settings = first.settings
    label = label if label is not None else settings.get("label")
    ref_mask = as_mask(reference, label, "reference")
    spacing_kji = np.asarray(spacing if spacing is not None else settings["spacing_kji_mm"], dtype=float)
    connectivity = connectivity or settings["connectivity"]
    prepared = PreparedReference(ref_mask.array, spacing_kji, connectivity, ref_mask.ijk_to_ras)
    pred_masks = {name: as_mask(mask, label, name).array for name, mask in predictions.items()}
    for name, mask in pred_masks.items():
        if mask.shape != tuple(prepared.shape):
            raise GeometryMismatchError(
                f"Prediction {name!r} has {mask.shape} voxels but the reference {tuple(prepared.shape)}."
            )
    colors = prediction_colors(list(pred_masks))
    slice_axis, rows, cols = _display_axes(ref_mask.ijk_to_ras)
    letters = orientation_letters(ref_mask.ijk_to_ras, rows, cols)
    background_array = None
    if background is not None:
        background_array = np.asarray(background.array if hasattr(background, "array") else background)
        if background_array.shape != tuple(prepared.shape):
            raise GeometryMismatchError(
                f"The background image has {background_array.shape} voxels but the masks "
                f"{tuple(prepared.shape)}; pass the image the masks were drawn on."
            )
    shape = np.array(prepared.shape)

    # what to show: every reference component, then every false-positive component per model
    items: list[dict[str, Any]] = []
    for row in first.per_component:
        i0, j0, k0, i1, j1, k1 = row["bbox"]
        lo, hi = np.array([k0, j0, i0]), np.array([k1, j1, i1])
        window = _window(lo, hi, spacing_kji, margin_mm, shape, slice_axis)
        errors = _lesion_error_per_slice(prepared, row["component_id"], window, pred_masks, slice_axis)
        items.append({"kind": "lesion", "row": row, "window": window, "errors": errors, "prediction": None})
    for name, mask in pred_masks.items():
        if not mask.any():
            continue
        labels, m = label_components(mask, connectivity)
        touching = np.unique(labels[mask & ref_mask.array])
        for component in range(1, m + 1):
            if component in touching:
                continue
            voxels = np.argwhere(labels == component)
            lo, hi = voxels.min(axis=0), voxels.max(axis=0)
            window = _window(lo, hi, spacing_kji, margin_mm, shape, slice_axis)
            depth = window[slice_axis].stop - window[slice_axis].start
            errors = np.bincount(voxels[:, slice_axis] - window[slice_axis].start, minlength=depth)
            items.append(
                {
                    "kind": "false_positive",
                    "component_id": component,
                    "prediction": name,
                    "window": window,
                    "errors": errors,
                    "voxels": int(voxels.shape[0]),
                    "volume_ml": voxels.shape[0] * prepared.voxel_volume_ml,
                }
            )

    empty_reference = prepared.n_components == 0
    page_items: list[list[dict[str, Any]]] = [[]] if empty_reference else []
    page_items += [items[i : i + panels_per_page] for i in range(0, len(items), panels_per_page)]
    pages = [path] + [
        path.with_name(f"{path.stem}_page{number}{path.suffix}") for number in range(2, len(page_items) + 1)
    ]
    existing = [str(p) for p in pages if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; choose another file name or pass overwrite=True.")

    header_lines = _summary_lines(comparison, colors)
    report = ComponentReport(pages, models=list(pred_masks), colors=colors, empty_reference=empty_reference)
    figures = []
    try:
        for page_number, content in enumerate(page_items, start=1):
            figures.append(
                _render_page(
                    plt,
                    content,
                    page_number,
                    len(page_items),
                    report,
                    prepared=prepared,
                    pred_masks=pred_masks,
                    comparison=comparison,
                    component_names=dict(component_names or {}),
                    colors=colors,
                    header_lines=header_lines,
                    columns=columns,
                    spacing_kji=spacing_kji,
                    view=(slice_axis, rows, cols),
                    letters=letters,
                    background=(background_array, window_hu),
                )
            )
        _write_figures(figures, pages)
    finally:
        for figure in figures:
            plt.close(figure)
    return report


def _summary_lines(comparison: ComparisonResult, colors: Mapping[str, str]) -> list[tuple[str, str]]:
    lines = []
    for name, result in comparison.results.items():
        s, m = result.standard, result.mean
        text = f"{name}: " + ", ".join(
            f"{metric} {_short(s[metric])} / CC {_short(m[metric])}"
            for metric in ("dice", "nsd", "hd95")
            if metric in s
        )
        text += f", PQ {result.instance['pq']:.2f}, LD {result.instance['lesion_dice']:.2f}"
        text += f", detected {result.counts['n_detected']}/{result.counts['n_reference_components']}"
        text += f", FP components {result.counts['n_false_positive_components']}"
        lines.append((text, colors[name]))
    return lines


def _legend_handles(colors: Mapping[str, str]):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    grey = np.full(3, 0.12)
    tint = (1 - REGION_TINT_WEIGHT) * grey + REGION_TINT_WEIGHT * np.array(REGION_TINT)
    handles = [
        Line2D([], [], color=REFERENCE_COLOR, lw=2.6, label="reference: this lesion (thick), others (thin)"),
        Patch(facecolor=tint, edgecolor="#666666", label="the lesion's Voronoi region (blue tint)"),
        Line2D([], [], color="white", lw=0.8, ls="dotted", label="region borders"),
    ]
    handles += [
        Line2D([], [], color=color, lw=1.4, label=f"prediction {name}") for name, color in colors.items()
    ]
    return handles


def _render_page(plt, content, page_number, n_pages, report, **context):
    colors = context["colors"]
    header_lines = context["header_lines"]
    n_cols = min(context["columns"], max(len(content), 1))
    n_rows = max(1, math.ceil(len(content) / n_cols))
    header_in = 0.5 + 0.22 * (len(header_lines) + 1) + 0.25 * math.ceil(len(colors) / 3 + 1)
    height = 3.8 * n_rows + header_in
    figure, axes = plt.subplots(
        n_rows, n_cols, figsize=(max(3.3 * n_cols, 9.0), height), squeeze=False, layout="constrained"
    )
    figure.get_layout_engine().set(rect=(0, 0, 1, 1 - (header_in + 0.2) / height), h_pad=0.08, w_pad=0.05)
    figure.patch.set_facecolor("black")
    for ax in axes.ravel():
        ax.set_axis_off()
    header = (
        f"CC-Metrics  page {page_number}/{n_pages}  "
        "(standard / CC; each panel shows the slice with the largest error)"
    )
    figure.text(0.01, 1 - 0.2 / height, header, color="white", fontsize=10, va="top")
    for number, (text, color) in enumerate(header_lines, start=1):
        figure.text(0.01, 1 - (0.2 + 0.22 * number) / height, text, color=color, fontsize=9, va="top")
    figure.legend(
        handles=_legend_handles(colors),
        loc="upper left",
        ncol=3,
        fontsize=7,
        facecolor="black",
        edgecolor="#444444",
        labelcolor="white",
        bbox_to_anchor=(0.005, 1 - (0.3 + 0.22 * len(header_lines)) / height),
    )
    if not content:
        message = "The reference has no foreground: there are no lesions to show.\n" + (
            "Every predicted component is a false positive; they follow on the next pages."
            if n_pages > 1
            else "No model predicted anything either."
        )
        axes[0, 0].text(0.5, 0.5, message, color="white", fontsize=12, ha="center", va="center", wrap=True)
    for panel, item in zip(axes.ravel(), content, strict=False):
        report.panels.append(_draw_panel(panel, item, page_number, **context))
    return figure


def _draw_panel(panel, item, page_number, **context) -> Panel:
    prepared = context["prepared"]
    slice_axis, rows, cols = context["view"]
    spacing_kji = context["spacing_kji"]
    background_array, window_hu = context["background"]
    colors = context["colors"]
    comparison = context["comparison"]
    errors = item["errors"]
    window = list(item["window"])
    lesion = item["kind"] == "lesion"
    component = item["row"]["component_id"] if lesion else item["component_id"]
    # the slice with the largest error; without error, the largest cross-section of the component
    if errors.max(initial=0) > 0:
        offset = int(np.argmax(errors))
    else:
        area = (
            (prepared.components_in_window(tuple(window)) == component).sum(
                axis=tuple(a for a in range(3) if a != slice_axis)
            )
            if lesion
            else errors
        )
        offset = int(np.argmax(area))
    index = window[slice_axis].start + offset
    window[slice_axis] = slice(index, index + 1)
    window = tuple(window)
    pixel_mm = (spacing_kji[rows[0]], spacing_kji[cols[0]])
    regions = _plane(prepared.regions_in_window(window), slice_axis, 0, rows, cols)
    components_here = _plane(prepared.components_in_window(window), slice_axis, 0, rows, cols)
    width_mm, height_mm = regions.shape[1] * pixel_mm[1], regions.shape[0] * pixel_mm[0]
    extent = (0, width_mm, height_mm, 0)
    if background_array is not None:
        level, width = window_hu
        image = _plane(background_array[window], slice_axis, 0, rows, cols).astype(float)
        grey = np.clip((image - level + width / 2) / width, 0, 1) * 0.85
    else:
        grey = np.full(regions.shape, 0.12)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if lesion:
        inside = regions == component
        rgb[inside] = (1 - REGION_TINT_WEIGHT) * rgb[inside] + REGION_TINT_WEIGHT * np.array(REGION_TINT)
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
    outlines = [(components_here == component, REFERENCE_COLOR, 2.6)] if lesion else []
    outlines += [(components_here > 0, REFERENCE_COLOR, 0.8)]
    for name, mask in context["pred_masks"].items():
        outlines.append((_plane(mask[window], slice_axis, 0, rows, cols), colors[name], 1.2))
    for mask, color, linewidth in outlines:
        if mask.any() and not mask.all():
            panel.contour(xs, ys, mask.astype(float), levels=[0.5], colors=color, linewidths=linewidth)
        elif mask.all():
            panel.add_patch(_frame(width_mm, height_mm, color))
    slice_name = ARRAY_AXIS_NAMES[slice_axis]
    if lesion:
        row = item["row"]
        missed = [
            name
            for name in comparison.results
            if not comparison[name].per_component[component - 1]["detected"]
        ]
        known_as = context["component_names"].get(component)
        named = f"#{component} = {known_as}" if known_as else f"#{component}"
        title = f"{named}  {row['volume_ml']:.2f} ml  {slice_name}={index}"
        title_color = "#ff453a" if missed else "white"
        texts = []
        for name, result in comparison.results.items():
            scores = result.per_component[component - 1]
            parts = [f"Dice {scores['dice']:.2f}"] if "dice" in scores else []
            if "hd95" in scores:
                parts.append(f"HD95 {_short(scores['hd95'])}")
            if not scores["detected"]:
                parts = ["MISSED"] + (["(FP in region)"] if scores["prediction_voxels"] else [])
            texts.append((f"{name}: {' '.join(parts)}", colors[name]))
    else:
        title = f"FP {item['prediction']} #{component}  {item['volume_ml']:.2f} ml  {slice_name}={index}"
        title_color = colors[item["prediction"]]
        missed = []
        texts = [
            (f"false positive of {item['prediction']} ({item['voxels']} voxels)", colors[item["prediction"]])
        ]
    for number, (text, color) in enumerate(reversed(texts)):
        # scores in white (a red first-model colour read as "failed" on every line); the frame in
        # the model's colour says whose score it is
        panel.text(
            0.02,
            0.075 + 0.085 * number,
            text,
            color="white",
            fontsize=7,
            transform=panel.transAxes,
            bbox={"facecolor": "black", "alpha": 0.7, "pad": 1.5, "edgecolor": color, "linewidth": 1.0},
        )
    bar_mm = _nice_length(0.3 * width_mm)
    x1 = width_mm * 0.96
    y = height_mm * 0.06
    panel.plot([x1 - bar_mm, x1], [y, y], color="white", lw=2.0, solid_capstyle="butt")
    panel.text(
        x1 - bar_mm / 2,
        y + height_mm * 0.02,
        f"{bar_mm:g} mm",
        color="white",
        fontsize=6,
        ha="center",
        va="top",
    )
    letters = context["letters"]
    for where, (x, y_, ha, va) in {
        "left": (0.01, 0.5, "left", "center"),
        "right": (0.99, 0.5, "right", "center"),
        "top": (0.5, 0.99, "center", "top"),
        "bottom": (0.5, 0.01, "center", "bottom"),
    }.items():
        if letters[where]:
            panel.text(
                x, y_, letters[where], color="#ffd60a", fontsize=8, ha=ha, va=va, transform=panel.transAxes
            )
    panel.set_xlim(0, width_mm)
    panel.set_ylim(height_mm, 0)
    panel.set_title(title, color=title_color, fontsize=8)
    panel.set_axis_on()
    panel.set_xticks([])
    panel.set_yticks([])
    edge = "#ff453a" if missed else (title_color if not lesion else "#444444")
    for spine in panel.spines.values():
        spine.set_color(edge)
    return Panel(
        page=page_number,
        kind=item["kind"],
        component_id=int(component),
        prediction=item["prediction"],
        slice_axis=slice_name,
        slice_index=int(index),
        error_voxels=int(errors[offset]),
        scale_bar_mm=bar_mm,
        orientation=dict(letters),
    )


def _frame(width_mm, height_mm, color):
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0), width_mm, height_mm, fill=False, edgecolor=color, linewidth=1.2)


def _write_figures(figures, pages: list[Path]) -> None:
    """Render every sheet to a temporary file first; replace the targets only when all succeeded."""
    pages[0].parent.mkdir(parents=True, exist_ok=True)
    temporaries = []
    try:
        for figure in figures:
            handle, temporary = tempfile.mkstemp(suffix=".png", dir=pages[0].parent)
            os.close(handle)
            os.chmod(temporary, output_mode())  # mkstemp makes 0600; a user output gets the umask's mode
            temporaries.append(temporary)
            figure.savefig(temporary, dpi=90, facecolor="black")
        for temporary, page in zip(temporaries, pages, strict=True):
            os.replace(temporary, page)
    finally:
        for temporary in temporaries:
            if os.path.exists(temporary):
                os.remove(temporary)


def _short(value: float) -> str:
    if not math.isfinite(value):
        return "inf"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
