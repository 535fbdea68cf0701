"""A before/after PNG of the post-processing: the model output and the repaired label map.

Two rows (before, after) of three views in radiological display orientation, each view through
its own landmark so that the typical repairs are visible at once: a coronal view through the
kidneys (left/right, ribs, spine), an axial view through the orbits (eyeballs, nasal cavity) and
a sagittal view through the gallbladder (bladder/gallbladder, liver). Voxels the rules changed
are outlined in yellow on both rows; each view is cropped to the body and carries orientation
letters, the first column a 100 mm scale bar, and a legend explains the outline. The views come from
:func:`AnatomyCommonLib.rendering.render_orthogonal_views_arrays`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb
from AnatomyCommonLib.atomic_output import atomic_output_file
from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.rendering import render_orthogonal_views_arrays
from AnatomyCommonLib.volume import Volume

#: (view, label whose median position the view passes through, fallback RAS point)
VIEW_LANDMARKS: tuple[tuple[str, tuple[int, ...], tuple[float, float, float]], ...] = (
    ("coronal", (15, 16), (0.0, -35.0, 350.0)),
    ("axial", (130, 131), (0.0, 50.0, 880.0)),
    ("sagittal", (12, 17), (50.0, 40.0, 360.0)),
)


def _landmark(labels: Volume, ids: tuple[int, ...], fallback: tuple[float, float, float]) -> np.ndarray:
    mask = np.isin(labels.array, ids)
    if not mask.any():
        return np.asarray(fallback)
    return np.median(labels.kji_to_ras(np.argwhere(mask)), axis=0)


#: letters at the (left, right, top, bottom) edges of each view in radiological display orientation
EDGE_LETTERS = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
}
CHANGED_RGB = (1.0, 1.0, 0.0)
SCALE_BAR_MM = 100.0


def _content_box(images: list[np.ndarray], margin: int = 4) -> tuple[slice, slice]:
    """Rows and columns holding anything but the black air around the body (union over images)."""
    content = np.zeros(images[0].shape[:2], dtype=bool)
    for image in images:
        content |= image[..., :3].max(axis=2) > 0.03
    if not content.any():
        return slice(None), slice(None)
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    return (
        slice(max(0, rows[0] - margin), rows[-1] + 1 + margin),
        slice(max(0, cols[0] - margin), cols[-1] + 1 + margin),
    )


def before_after_figure(
    ct: Volume, before: Volume, after: Volume, *, title: str = "DAP Atlas post-processing"
):
    """The before/after matplotlib Figure (rows: model output, repaired; columns: coronal, axial,
    sagittal), cropped to the body, with orientation letters, a 100 mm scale bar and a legend."""
    changed = before.with_array((before.array != after.array).astype(np.uint8))
    colors = default_colors_rgb()
    panels = {}
    for row, labels in (("before", before), ("after", after)):
        for view, ids, fallback in VIEW_LANDMARKS:
            center = _landmark(after, ids, fallback)  # the repaired map: eyeballs, not gonads
            images = render_orthogonal_views_arrays(
                ct, labels, colors, center_ras=center, extra_overlays=[(changed, CHANGED_RGB)]
            )
            panels[(row, view)] = (images[view], images["pixel_mm"][view])
    views = [v for v, _, _ in VIEW_LANDMARKS]
    for view in views:  # the same crop on both rows, so before and after line up
        box = _content_box([panels[(row, view)][0] for row in ("before", "after")])
        for row in ("before", "after"):
            image, pixel_mm = panels[(row, view)]
            panels[(row, view)] = (image[box], pixel_mm)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ratios = []
    for view in views:
        image, (row_mm, col_mm) = panels[("before", view)]
        ratios.append(image.shape[1] * col_mm / (image.shape[0] * row_mm))
    heights = [panels[("before", v)][0].shape[0] * panels[("before", v)][1][0] for v in views]
    width, left, header, footer = 12.0, 0.35, 0.75, 0.45
    row_height = (width - left - 0.2) / sum(ratios)
    height = 2 * row_height + header + footer
    figure = Figure(figsize=(width, height), facecolor="black")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        2, 3, width_ratios=ratios, wspace=0.04, hspace=0.04, left=left / width, right=1 - 0.2 / width,
        bottom=footer / height, top=1.0 - header / height,
    )  # fmt: skip
    captions = {"before": "model output (injected errors)", "after": "after post-processing"}
    letter_style = {"color": "white", "fontsize": 9, "fontweight": "bold"}
    for r, row in enumerate(("before", "after")):
        for c, view in enumerate(views):
            image, (row_mm, col_mm) = panels[(row, view)]
            axes = figure.add_subplot(grid[r, c])
            w_mm, h_mm = image.shape[1] * col_mm, image.shape[0] * row_mm
            axes.imshow(image, extent=(0, w_mm, h_mm, 0), interpolation="nearest")
            axes.set_axis_off()
            west, east, north, south = EDGE_LETTERS[view]
            for x, y, text, ha, va in (
                (0.01, 0.5, west, "left", "center"),
                (0.99, 0.5, east, "right", "center"),
                (0.5, 0.99, north, "center", "top"),
                (0.5, 0.01, south, "center", "bottom"),
            ):
                axes.text(x, y, text, transform=axes.transAxes, ha=ha, va=va, **letter_style)
            if r == 0:
                axes.set_title(view, color="white", fontsize=10)
            if c == 0:
                bar = min(SCALE_BAR_MM, 0.4 * w_mm)
                y = h_mm - 0.04 * max(heights)
                axes.plot([0.06 * w_mm, 0.06 * w_mm + bar], [y, y], color="white", linewidth=2)
                axes.text(0.06 * w_mm, y - 0.01 * h_mm, f"{bar:g} mm", color="white", fontsize=8, va="bottom")
        center = 1.0 - (header + (r + 0.5) * row_height) / height
        figure.text(0.12 / width, center, captions[row], rotation=90, color="white", fontsize=10,
                    ha="center", va="center")  # fmt: skip
    figure.suptitle(title, color="white", fontsize=12, y=1.0 - 0.15 / height, va="top")
    handles = [Line2D([], [], color=CHANGED_RGB, linewidth=2, label="voxels the rules changed (outline)")]
    figure.legend(
        handles=[*handles, Line2D([], [], linestyle="none", label="fill colours: DAP Atlas label table")],
        loc="lower center", ncol=2, frameon=False, labelcolor="white", fontsize=9,
    )  # fmt: skip
    return figure


def render_before_after(
    path: str | os.PathLike[str],
    ct: Volume,
    before: Volume,
    after: Volume,
    *,
    title: str = "DAP Atlas post-processing",
    overwrite: bool = False,
    dpi: int = 100,
) -> Path:
    """Write the before/after PNG (:func:`before_after_figure`); refuses to overwrite unless asked."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; choose another file name or pass overwrite=True.")
    figure = before_after_figure(ct, before, after, title=title)
    with atomic_output_file(target, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=dpi, facecolor="black")
    return target
