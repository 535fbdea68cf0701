"""A before/after PNG of the post-processing: the model output and the repaired label map.

Two rows (before, after) of three views in radiological display orientation, each view through
its own landmark so that the typical repairs are visible at once: a coronal view through the
kidneys (left/right, ribs, spine), an axial view through the orbits (eyeballs, nasal cavity) and
a sagittal view through the gallbladder (bladder/gallbladder, liver). Voxels the rules changed
are outlined in yellow on both rows. The views come from
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
    """Write the before/after PNG; refuses to overwrite unless asked."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; choose another file name or pass overwrite=True.")
    changed = before.with_array((before.array != after.array).astype(np.uint8))
    colors = default_colors_rgb()
    panels = {}
    for row, labels in (("before", before), ("after", after)):
        for view, ids, fallback in VIEW_LANDMARKS:
            center = _landmark(after, ids, fallback)  # the repaired map: eyeballs, not gonads
            images = render_orthogonal_views_arrays(
                ct, labels, colors, center_ras=center, extra_overlays=[(changed, (1.0, 1.0, 0.0))]
            )
            panels[(row, view)] = (images[view], images["pixel_mm"][view])

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    views = [v for v, _, _ in VIEW_LANDMARKS]
    ratios = []
    for view in views:
        image, (row_mm, col_mm) = panels[("before", view)]
        ratios.append(image.shape[1] * col_mm / (image.shape[0] * row_mm))
    width = 14.0
    height = 2 * width / sum(ratios) + 0.9
    figure = Figure(figsize=(width, height), facecolor="black")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 3, width_ratios=ratios, wspace=0.03, hspace=0.08, left=0.01, right=0.99,
                               bottom=0.01, top=1.0 - 0.7 / height)  # fmt: skip
    captions = {"before": "model output (injected errors)", "after": "after post-processing"}
    for r, row in enumerate(("before", "after")):
        for c, view in enumerate(views):
            image, (row_mm, col_mm) = panels[(row, view)]
            axes = figure.add_subplot(grid[r, c])
            axes.imshow(
                image,
                extent=(0, image.shape[1] * col_mm, image.shape[0] * row_mm, 0),
                interpolation="nearest",
            )
            axes.set_axis_off()
            axes.set_title(f"{captions[row]}: {view}", color="white", fontsize=9)
    figure.suptitle(f"{title} (changed voxels outlined in yellow)", color="white", fontsize=11)
    with atomic_output_file(target, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=dpi, facecolor="black")
    return target
