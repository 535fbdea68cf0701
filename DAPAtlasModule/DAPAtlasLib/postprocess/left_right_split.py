"""Step 1, left-right split (Algorithm 8): paired structures get the side they lie on.

A plane is fitted through the centres of the vertebrae, the sternum and the sacrum (the
mid-sagittal plane, :func:`~.anatomy_geometry.fit_midsagittal_plane`); it is refused, and the
step skipped with the reason, when its normal is more than ``max_plane_tilt_deg`` from the
patient's left-right axis. For every pair in :data:`GEOMETRIC_PAIRS` (left id, right id):

1. the union of both labels is split into 6-connected pieces;
2. a piece with less than ``side_minority_fraction`` of its voxels on one side of the plane goes
   wholly to its majority side (a right kidney partly labelled "left" becomes all right);
3. a piece that really straddles the plane (both thyroid lobes joined by the isthmus) is split
   voxel by voxel: left of the plane -> left label, right of it -> right label;
4. voxels within ``midline_tolerance_mm`` of the plane keep their label.

Differences from the released script, on purpose: sides come from physical RAS positions (any
voxel orientation, oblique grids included) instead of LAS voxel indices; the plausibility check
is an angle on the patient axis instead of ``0.9 < |n_x| < 1.1`` on the first voxel axis (same
threshold for axis-aligned scans); steps 2-4 replace the released "absorb touching fragments"
helper, which they generalise: a fragment that belongs to the other side's piece now goes with
that piece. With fewer than 3 anchors the step is skipped (the release accepted 2, which do not
define a plane).

Iliac arteries and veins are split only below the top of the sacrum: above it the left common
iliac vein crosses the midline to join the inferior vena cava, so a geometric rule would be
wrong there (the release did not split them geometrically at all). The liver's side is checked
as a sanity test of the plane (warning only, as released).

Pairs beyond the released list: lung lobes, eyeballs, cheeks, carotid arteries, internal
jugular veins and subclavian arteries, which also lie clearly on one side. Heart chambers and
the brachiocephalic veins are *not* split: their names say left/right but the left
brachiocephalic vein crosses the midline.
"""

from __future__ import annotations

import cc3d
import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import MidsagittalPlane, PlaneFitFailure
from .label_editing import component_statistics
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "left_right_split"

#: Pairs split as in the released script (left id, right id).
RELEASED_PAIRS: tuple[tuple[int, int], ...] = (
    (15, 16),  # kidney
    (22, 23),  # breast
    (27, 28),  # adrenal gland
    (29, 30),  # thyroid
    (32, 33),  # gluteus maximus
    (34, 35),  # gluteus medius
    (36, 37),  # gluteus minimus
    (38, 39),  # iliopsoas
    (40, 41),  # autochthon
    *((67 + 2 * k, 68 + 2 * k) for k in range(12)),  # ribs 1..12
    (93, 94),  # clavicle
    (95, 96),  # scapula
    (97, 98),  # humerus
    (100, 101),  # hip
    (103, 104),  # femur
)
#: Pairs added here (lung lobes, eyeballs, cheeks, neck arteries and veins).
ADDED_PAIRS: tuple[tuple[int, int], ...] = (
    (120, 122),  # lung lower lobe
    (121, 124),  # lung upper lobe
    (128, 129),  # cheek
    (130, 131),  # eyeball
    (134, 133),  # common carotid artery
    (137, 136),  # internal carotid artery
    (139, 138),  # internal jugular vein
    (144, 143),  # subclavian artery
)
GEOMETRIC_PAIRS: tuple[tuple[int, int], ...] = RELEASED_PAIRS + ADDED_PAIRS
#: Split only below the top of the sacrum.
ILIAC_PAIRS: tuple[tuple[int, int], ...] = ((112, 113), (115, 116))
SACRUM = 102
LIVER = 13


def _distance_range(plane: MidsagittalPlane, context: StepContext, box) -> tuple[float, float]:
    """Smallest and largest signed distance of the voxel centres of an index box (its corners)."""
    ends = [(sl.start, sl.stop - 1) for sl in box]
    corners = np.array([[k, j, i] for k in ends[0] for j in ends[1] for i in ends[2]], dtype=float)
    distance = plane.signed_distance(context.geometry.ras_of(corners))
    return float(distance.min()), float(distance.max())


def _split_pair(
    context: StepContext,
    plane: MidsagittalPlane,
    left: int,
    right: int,
    report: StepReport,
    *,
    below_height_mm: float | None = None,
) -> int:
    """Relabel one pair by side; returns the number of changed voxels.

    The signed distance is linear in the voxel index, so a box lying wholly beyond the midline
    band is decided from its corners alone: a pair whose two label boxes are each on their own
    side costs nothing, and otherwise work is per connected piece inside the piece's box; only
    pieces near the midline need voxel-wise distances.
    """
    editor = context.editor
    tolerance = context.midline_tolerance_mm()
    boxes = {}
    for label in (left, right):
        box = editor.box(label)
        if box is not None and below_height_mm is not None:
            box = context.geometry.region_below(below_height_mm, box)
        if box is not None:
            boxes[label] = box
    if not boxes:
        return 0
    # Fast path (the usual case): each label's bounding box lies wholly beyond the midline band
    # on its own side, so every voxel is already right; no voxel needs to be looked at.
    if (left not in boxes or _distance_range(plane, context, boxes[left])[0] > tolerance) and (
        right not in boxes or _distance_range(plane, context, boxes[right])[1] < -tolerance
    ):
        return 0
    region = editor.box(left, right)
    if below_height_mm is not None:
        region = context.geometry.region_below(below_height_mm, region)
        if region is None:
            return 0
    crop = editor.array[region]
    is_left = crop == left
    union = is_left | (crop == right)
    if below_height_mm is not None:
        union &= np.broadcast_to(context.geometry.height_field(region) < below_height_mm, union.shape)
    pieces, n = cc3d.connected_components(union, connectivity=6, return_N=True)
    if n == 0:
        return 0
    minority = context.settings.side_minority_fraction
    changed = 0
    straddling = 0
    for piece, box in enumerate(component_statistics(pieces, n)["bounding_boxes"][1:], start=1):
        if box is None:
            continue
        global_box = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        own = pieces[box] == piece
        low, high = _distance_range(plane, context, global_box)
        if low > tolerance or high < -tolerance:  # wholly on one side
            side = left if low > tolerance else right
            left_count = int(np.count_nonzero(own & is_left[box]))
            if (side == left and left_count == int(own.sum())) or (side == right and left_count == 0):
                continue
            changed += editor.relabel(global_box, own, side, report)
            continue
        distance = np.broadcast_to(plane.signed_distance_field(context.geometry, global_box), own.shape)
        on_left = own & (distance > tolerance)
        on_right = own & (distance < -tolerance)
        left_votes, right_votes = int(on_left.sum()), int(on_right.sum())
        total = left_votes + right_votes
        if total == 0:
            continue  # wholly within the midline band
        if right_votes <= minority * total:
            changed += editor.relabel(global_box, own, left, report)
        elif left_votes <= minority * total:
            changed += editor.relabel(global_box, own, right, report)
        else:
            straddling += 1
            changed += editor.relabel(global_box, on_left, left, report)
            changed += editor.relabel(global_box, on_right, right, report)
    if straddling:
        report.details.setdefault("straddling_pieces", {})[f"{left}/{right}"] = straddling
    return changed


def run(context: StepContext) -> StepReport:
    """Apply the left-right split to ``context.editor`` in place."""
    report = context.new_report(STEP_NAME)
    plane = context.plane()
    if isinstance(plane, PlaneFitFailure):
        return report.skip(f"no plausible mid-sagittal plane: {plane.reason}")
    report.details["plane"] = plane.to_dict()
    report.details["midline_tolerance_mm"] = round(context.midline_tolerance_mm(), 3)
    if plane.method != "fit":
        report.warnings.append(
            "the anchors are nearly collinear (no sternum?); the plane contains the spine line and the "
            "patient's anterior axis"
        )
    liver = context.editor.mask(LIVER)
    if liver is not None:
        from .anatomy_geometry import median_ras

        side = float(plane.signed_distance(median_ras(context.geometry, *liver))[0])
        report.details["liver_distance_from_plane_mm"] = round(side, 2)
        if side > 0:
            report.warnings.append(
                "the liver lies left of the mid-sagittal plane: situs inversus, or a wrong (flipped) "
                "direction matrix in the image header? Sides were assigned from the header's geometry."
            )
    for left, right in GEOMETRIC_PAIRS:
        _split_pair(context, plane, left, right, report)
    report.rules.append("paired structures by side of the mid-sagittal plane")
    sacrum = context.editor.mask(SACRUM)
    if sacrum is None:
        report.skip_rule("iliac vessels", "the sacrum is missing, so the pelvis level is unknown")
    else:
        from .anatomy_geometry import top_height

        sacrum_top = top_height(context.geometry, *sacrum)
        report.details["sacrum_top_mm"] = round(sacrum_top, 2)
        for left, right in ILIAC_PAIRS:
            _split_pair(context, plane, left, right, report, below_height_mm=sacrum_top)
        report.rules.append("iliac vessels below the top of the sacrum")
    return report


def split_left_right(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Left-right split of a DAP label map; returns the new label map and the step report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
