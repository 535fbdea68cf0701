"""Step 4, cheeks from thyroid fragments: thyroid-labelled pieces in the face become cheeks.

Models trained on neck data confuse the cheeks with the thyroid (both soft tissue lateral to
the airway). For each side separately, the thyroid label (29 left, 30 right) is split into
26-connected pieces of at least ``cheek_min_component_ml``. A piece becomes cheek (128 left,
129 right) when

* the C2 vertebra is present and the piece's median point lies above C2's median height (the
  thyroid lies at C5..T1, far below), or
* it is not the lowest piece and lies at least ``cheek_min_height_above_thyroid_mm`` above the
  lowest piece (the thyroid lobe itself).

The released rule ("exactly two large pieces: the higher one is the cheek") is the second case
without the distance guard; the guard keeps a thyroid lobe split in two from losing its upper
pole, and the C2 anchor handles a head-only scan where the thyroid itself is out of view.
Pieces below both limits are left to the largest-component rule.
"""

from __future__ import annotations

import cc3d
import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import heights_of
from .label_editing import component_statistics
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "cheeks"
THYROID_TO_CHEEK: tuple[tuple[int, int], ...] = ((29, 128), (30, 129))
C2 = 44


def run(context: StepContext) -> StepReport:
    """Relabel thyroid pieces in the face as cheeks, in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    settings = context.settings
    c2_height = context.median_height(C2)
    if c2_height is None:
        report.skip_rule("above C2", "vertebra C2 is missing; only the height above the thyroid is used")
    for thyroid, cheek in THYROID_TO_CHEEK:
        found = editor.mask(thyroid)
        if found is None:
            continue
        mask, region = found
        # uint8, not bool: cc3d 4.1.1 raises on a bool (1, 1, 3) [1, 0, 1] with connectivity 26
        pieces, n = cc3d.connected_components(mask.view(np.uint8), connectivity=26, return_N=True)
        stats = component_statistics(pieces, n)
        sizes = np.asarray(stats["voxel_counts"])
        large = [
            p for p in range(1, n + 1) if sizes[p] * editor.voxel_volume_ml >= settings.cheek_min_component_ml
        ]
        medians = {}
        for piece in large:
            box = stats["bounding_boxes"][piece]
            global_box = tuple(
                slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
            )
            medians[piece] = float(np.median(heights_of(context.geometry, pieces[box] == piece, global_box)))
        if not medians:
            continue
        lowest = min(medians, key=medians.get)
        for piece, height in medians.items():
            above_c2 = c2_height is not None and height > c2_height
            above_thyroid = (
                piece != lowest and height - medians[lowest] >= settings.cheek_min_height_above_thyroid_mm
            )
            if above_c2 or above_thyroid:
                editor.relabel(region, pieces == piece, cheek, report)
    report.rules.append("thyroid pieces in the face -> cheek")
    return report


def cheeks_from_thyroid(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Cheek rule on a DAP label map; returns the new label map and the step report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
