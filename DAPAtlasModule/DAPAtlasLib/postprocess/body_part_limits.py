"""Step 5, body-part limits (Algorithm 6, area restriction): organs outside their body part.

Networks trained on partial anatomy make systematic mistakes by appearance: gonads predicted in
the orbits, bowel gas predicted in the nasal cavity, the bladder in place of the gallbladder,
bronchi above the lungs. The rules bind those labels to their body part, voxel by voxel, with
landmark heights (RAS z, mm) taken from structures already predicted:

* ``neck``: mean of the median heights of C6 and C7 (either one if only one is present);
* ``skull base``: median height of C1;
* ``lower lumbar``: mean of the median heights of L3, L4, L5 (those present);
* ``lung top``: mean over the upper lobes (121, 124) of the highest point of their largest
  component.

Rules, in the released order:

1. bronchi (125) above the lung top -> trachea (126);
2. rib cartilage (91) above the neck -> unknown tissue (1);
3. gonads (18) above the neck -> eyeball, left (130) or right (131) by the mid-sagittal plane
   (without a plane: by the centre of the relabelled voxels);
4. colon (10) or small bowel (8) above the neck: above the skull base -> nasal cavity (132), else
   unknown tissue (1). Without C1 (the head is cut off below the skull base, so no nasal cavity
   is in view) all of it -> unknown tissue; without C6/C7 but with C1 only the nasal-cavity part
   runs;
5. bladder (17) above the lower lumbar level and below the neck -> gallbladder (12); above the
   neck -> unknown tissue. When no cervical vertebra, brain or skull is labelled the neck is out
   of view and the upper limit is open.

When C6 and C7 are missing (a head-only scan) the rules that only need "surely above the neck"
(2, 3 and the head part of 5) use the skull base instead. A rule whose landmark is missing is
skipped and listed in the report; nothing fails.
"""

from __future__ import annotations

import cc3d
import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import MidsagittalPlane, PlaneFitFailure, top_height
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "body_part_limits"

BRONCHI, TRACHEA = 125, 126
RIB_CARTILAGE = 91
GONADS, EYEBALL_LEFT, EYEBALL_RIGHT = 18, 130, 131
SMALL_BOWEL, COLON, NASAL_CAVITY = 8, 10, 132
BLADDER, GALLBLADDER = 17, 12
UNKNOWN_TISSUE = 1
C1, C6, C7 = 43, 48, 49
L3, L4, L5 = 64, 65, 66
UPPER_LOBES = (121, 124)
CERVICAL = tuple(range(43, 50))
HEAD_STRUCTURES = (25, 99)  # brain, skull


def _lung_top(context: StepContext) -> float | None:
    tops = []
    for lobe in UPPER_LOBES:
        found = context.editor.mask(lobe)
        if found is None:
            continue
        mask, region = found
        if context.is_single_piece(lobe, 6):  # one 6-connected piece is one 26-connected piece
            tops.append(top_height(context.geometry, mask, region))
            continue
        # uint8, not bool: cc3d 4.1.1 raises on a bool (1, 1, 3) [1, 0, 1] with connectivity 26
        pieces, n = cc3d.connected_components(mask.view(np.uint8), connectivity=26, return_N=True)
        # (one piece: the mask itself, no need to count)
        largest = 1 if n == 1 else int(np.argmax(np.bincount(pieces[pieces > 0])))
        tops.append(top_height(context.geometry, mask if n == 1 else pieces == largest, region))
    return float(np.mean(tops)) if tops else None


def _relabel_between(
    context: StepContext,
    label: int,
    to_label: int,
    report: StepReport,
    above_mm: float | None,
    below_mm: float | None = None,
) -> int:
    """Relabel voxels of ``label`` with height > above_mm (and < below_mm)."""
    editor = context.editor
    region = editor.box(label)
    if region is None:
        return 0
    geometry = context.geometry
    if above_mm is not None:
        region = geometry.region_above(above_mm, region)
    if region is not None and below_mm is not None:
        region = geometry.region_below(below_mm, region)
    if region is None:
        return 0
    mask = editor.array[region] == label
    heights = geometry.height_field(region)
    if above_mm is not None:
        mask &= np.broadcast_to(heights > above_mm, mask.shape)
    if below_mm is not None:
        mask &= np.broadcast_to(heights <= below_mm, mask.shape)
    return editor.relabel(region, mask, to_label, report)


def _gonads_to_eyeballs(context: StepContext, neck_mm: float, report: StepReport) -> None:
    editor = context.editor
    region = editor.box(GONADS)
    region = None if region is None else context.geometry.region_above(neck_mm, region)
    if region is None:
        return
    mask = (editor.array[region] == GONADS) & np.broadcast_to(
        context.geometry.height_field(region) > neck_mm, editor.array[region].shape
    )
    if not mask.any():
        return
    plane = context.plane()
    if isinstance(plane, PlaneFitFailure):
        center = np.mean(context.geometry.points_ras(mask, region, max_points=50_000), axis=0)
        plane = MidsagittalPlane(tuple(center), (-1.0, 0.0, 0.0), 0.0, "centre of the eyeballs")
        report.warnings.append(
            "no mid-sagittal plane: eyeball sides from the centre of the relabelled voxels"
        )
    left = np.broadcast_to(plane.signed_distance_field(context.geometry, region) > 0, mask.shape)
    editor.relabel(region, mask & left, EYEBALL_LEFT, report)
    editor.relabel(region, mask & ~left, EYEBALL_RIGHT, report)


def run(context: StepContext) -> StepReport:
    """Apply the body-part rules in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    neck, neck_ids = context.mean_of_median_heights((C6, C7))
    skull_base = context.median_height(C1)
    lumbar, lumbar_ids = context.mean_of_median_heights((L3, L4, L5))
    lung_top = _lung_top(context)
    head_in_view = bool(editor.present_labels(CERVICAL + HEAD_STRUCTURES))
    report.details["landmarks_mm"] = {
        "neck (C6/C7)": None if neck is None else round(neck, 2),
        "skull base (C1)": None if skull_base is None else round(skull_base, 2),
        "lower lumbar (L3-L5)": None if lumbar is None else round(lumbar, 2),
        "lung top": None if lung_top is None else round(lung_top, 2),
    }
    missing_neck = "vertebrae C6 and C7 are missing"
    # Rules that only need "surely above the neck" fall back to the skull base (C1) on scans
    # that end above C6 (head-only): whatever lies above C1 lies above the neck too.
    above_neck = neck if neck is not None else skull_base
    if neck is None and skull_base is not None:
        report.warnings.append(
            "C6 and C7 are missing: 'above the neck' rules use the skull base (C1) instead"
        )

    # 1. bronchi above the lungs -> trachea
    if lung_top is None:
        report.skip_rule("bronchi above the lungs -> trachea", "no upper lung lobe")
    else:
        _relabel_between(context, BRONCHI, TRACHEA, report, lung_top)
        report.rules.append("bronchi above the lungs -> trachea")
    # 2. rib cartilage above the neck -> unknown tissue
    if above_neck is None:
        report.skip_rule("rib cartilage above the neck -> unknown tissue", f"{missing_neck} (and C1)")
    else:
        _relabel_between(context, RIB_CARTILAGE, UNKNOWN_TISSUE, report, above_neck)
        report.rules.append("rib cartilage above the neck -> unknown tissue")
    # 3. gonads above the neck -> eyeballs
    if above_neck is None:
        report.skip_rule("gonads above the neck -> eyeballs", f"{missing_neck} (and C1)")
    else:
        _gonads_to_eyeballs(context, above_neck, report)
        report.rules.append("gonads above the neck -> eyeballs")
    # 4. bowel in the head -> nasal cavity / unknown tissue
    for bowel in (COLON, SMALL_BOWEL):
        if skull_base is not None:
            _relabel_between(context, bowel, NASAL_CAVITY, report, skull_base)
        if neck is not None:
            _relabel_between(context, bowel, UNKNOWN_TISSUE, report, neck)
    if skull_base is None and neck is None:
        report.skip_rule("bowel in the head -> nasal cavity", "vertebrae C1, C6 and C7 are missing")
    else:
        if skull_base is None:
            report.skip_rule("bowel above the skull base -> nasal cavity", "vertebra C1 is missing")
        if neck is None:
            report.skip_rule("bowel in the neck -> unknown tissue", missing_neck)
        report.rules.append("bowel in the head -> nasal cavity / unknown tissue")
    # 5. bladder above the pelvis -> gallbladder; in the head -> unknown tissue
    if above_neck is not None:
        _relabel_between(context, BLADDER, UNKNOWN_TISSUE, report, above_neck)
    if lumbar is None:
        report.skip_rule("bladder above the pelvis -> gallbladder", "vertebrae L3, L4 and L5 are missing")
    elif neck is None and head_in_view:
        report.skip_rule("bladder above the pelvis -> gallbladder", f"{missing_neck} but the head is in view")
    else:
        _relabel_between(context, BLADDER, GALLBLADDER, report, lumbar, neck)
        report.rules.append("bladder above the pelvis -> gallbladder")
    report.details["landmark_labels"] = {"neck": neck_ids, "lower lumbar": lumbar_ids}
    return report


def limit_body_parts(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Body-part rules on a DAP label map; returns the new label map and the step report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
