"""Step 8, the rule-derived skull from the CT (dissertation 3.1.2).

Skull (99) = voxels with ``skull_hu_min <= HU <= skull_hu_max`` (300..3000, the bone window)
that lie above the top of vertebra C5, minus the vertebrae. The dissertation's "minus
vertebrae" is applied to every labelled structure: only voxels currently labelled as a tissue
class (unknown tissue 1, muscles 2, fat 3, abdominal tissue 4, mediastinal tissue 5, skin 42)
become skull, so contrast-filled vessels, the spinal canal, eyeballs or bones of the arms in
the head region keep their labels. Background (0, outside the body) never becomes skull: the
head holder and table stay background. Existing skull voxels are kept (the rule adds).

"Above C5" uses the highest point of C5 in patient coordinates, so it works in any orientation.
The step needs the CT on the label map's grid and vertebra C5; without either it is skipped and
the report says why. It is not in the released script (which never reads the CT) and runs
after the largest-component rule, so the mandible and other separate bony pieces of the head
stay skull.
"""

from __future__ import annotations

import math

import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import nonzero_indices, top_height
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "skull_from_ct"
SKULL = 99
C5 = 47
#: Labels the skull may replace.
REPLACEABLE = (1, 2, 3, 4, 5, 42)


def bone_window(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """``low <= hu <= high`` voxel-wise.

    An integer CT (the usual int16) is compared with the integer bounds ceil(low) and
    floor(high): the same voxels, without casting every voxel to float64 (about 2x faster).
    """
    if np.issubdtype(hu.dtype, np.integer) and math.isfinite(low) and math.isfinite(high):
        info = np.iinfo(hu.dtype)
        low_int, high_int = max(math.ceil(low), int(info.min)), min(math.floor(high), int(info.max))
        if low_int > high_int:
            return np.zeros(hu.shape, dtype=bool)
        bone = hu >= hu.dtype.type(low_int)
        bone &= hu <= hu.dtype.type(high_int)
        return bone
    bone = hu >= low
    bone &= hu <= high
    return bone


def _above(context: StepContext, region, height_mm: float):
    """(the part of ``region`` above ``height_mm``, True) when the height changes along one voxel
    axis only (axis-aligned grids): whole slices lie above or not, so no voxel needs its own
    height test; (``region``, None) otherwise; (None, True) when no slice lies above."""
    field = context.geometry.height_field(region)
    varying = [axis for axis in range(3) if field.shape[axis] > 1]
    if len(varying) > 1:
        return region, None
    axis = varying[0] if varying else 0
    above = np.flatnonzero(field.reshape(-1) > height_mm)  # the comparison of the per-voxel test
    if above.size == 0:
        return None, True
    if len(above) == field.shape[axis]:
        return region, True
    parts = list(region)
    # a linear field: the slices above form one run at one end
    parts[axis] = slice(region[axis].start + int(above[0]), region[axis].start + int(above[-1]) + 1)
    return tuple(parts), True


def run(context: StepContext) -> StepReport:
    """Add the thresholded skull above C5 to the label map, in place."""
    report = context.new_report(STEP_NAME)
    if context.ct is None:
        return report.skip("no CT given; the skull rule thresholds the CT")
    c5 = context.editor.mask(C5)
    if c5 is None:
        return report.skip("vertebra C5 is missing, so the head region is unknown")
    top_of_c5 = top_height(context.geometry, *c5)
    report.details["top_of_c5_mm"] = round(top_of_c5, 2)
    region = context.geometry.region_above(top_of_c5)
    if region is None:
        return report.skip("nothing of the image lies above C5")
    settings = context.settings
    region, above = _above(context, region, top_of_c5)
    if region is not None:
        labels = context.editor.array[region]
        hu = context.ct.array[region]
        # bone window first (few voxels pass), then the label and height tests on those voxels only
        bone = bone_window(hu, settings.skull_hu_min, settings.skull_hu_max)
        indices = nonzero_indices(bone)
        del bone
        replaceable = np.zeros(256, dtype=bool)
        replaceable[list(REPLACEABLE)] = True
        keep = replaceable[labels[indices]]
        indices = tuple(index[keep] for index in indices)
        if above is None:  # the height varies inside the slices: test each voxel
            heights = np.broadcast_to(context.geometry.height_field(region), labels.shape)
            keep = heights[indices] > top_of_c5
            indices = tuple(index[keep] for index in indices)
        context.editor.relabel_indices(region, indices, SKULL, report)
    report.rules.append(f"{settings.skull_hu_min:g}..{settings.skull_hu_max:g} HU above C5 -> skull")
    return report


def skull_from_ct(
    labels: Volume, ct: Volume, *, settings: PostprocessSettings | None = None, force: bool = False
) -> tuple[Volume, StepReport]:
    """Skull rule on a DAP label map and its CT; returns the new label map and the report.

    A ``ct`` that does not look like a CT in HU raises ImplausibleCTError unless ``force``
    (then the report warns)."""
    from . import run_single_step

    return run_single_step(run, labels, ct=ct, settings=settings, force=force)
