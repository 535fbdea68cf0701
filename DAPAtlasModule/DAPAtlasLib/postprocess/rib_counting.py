"""Step 3, rib counting (Algorithm 7): number the ribs 1..12 per side from their position.

The rib labels 67..90 are merged and split into 6-connected components; each component's side
comes from the mid-sagittal plane (the left-right split's plane; without it, the centre of the
rib cage). Per side:

* Components smaller than ``rib_fragment_fraction`` of a typical rib of that side (the median
  of its largest components), and any beyond the 12 largest, are *fragments*; they never take
  part in the counting.
* **Whole rib cage** (12 ribs on a side): ribs are ordered by the height of their median point
  and numbered from the top, **rib 1 = the most superior rib** (the dissertation; the released
  script sorts ascending on its own axis convention and so gives rib 1 to the lowest rib, which
  we do not copy). The dissertation's consistency check is kept: when the order by median
  points differs from the order by lowest points, the side is left unchanged with a warning.
* **Partial field of view** (fewer than 12 ribs on a side: chest-only or abdomen-only scans):
  each rib's medial end (the voxels closest to the mid-sagittal plane) is matched to the
  nearest thoracic vertebra T1..T12, giving the number of the vertebra it attaches to. The
  visible ribs of a side are consecutive, so one offset (rank -> number) is chosen as the median
  over all ribs; single wrong attachments do not matter. Without thoracic vertebrae near the
  ribs the side is left unchanged and the report says so.
* Fragments take the new label of the nearest numbered rib when it is within
  ``rib_fragment_max_distance_mm``; farther ones keep their label.

The release kept the 24 largest components and failed with fewer than 24; here partial fields
of view, fragments and more than 12 pieces per side are handled.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy.spatial import cKDTree

from AnatomyCommonLib.anatomy.label_schema import rib_id
from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import MidsagittalPlane, PlaneFitFailure
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "rib_counting"
RIBS: tuple[int, ...] = tuple(range(67, 91))
THORACIC_VERTEBRAE: tuple[int, ...] = tuple(range(50, 62))  # T1 .. T12
RIBS_PER_SIDE = 12
#: Rib voxels used to find the vertebra a rib attaches to: the fraction closest to the midline.
_MEDIAL_FRACTION = 0.1
#: A medial rib voxel farther than this from every thoracic vertebra does not vote.
_ATTACHMENT_MAX_DISTANCE_MM = 25.0


class _Component:
    def __init__(
        self, index: int, voxels: int, points: np.ndarray, distance: np.ndarray, heights: np.ndarray
    ):
        self.index = index
        self.voxels = voxels
        self.points = points  # RAS (subsampled for large components)
        self.distance = distance  # signed distance to the plane of ``points``
        self.median_height = float(np.median(heights))
        self.lowest_height = float(heights.min())
        self.side = "left" if float(np.median(distance)) > 0 else "right"
        self.number: int | None = None


def _fallback_plane(context: StepContext, rib_mask: np.ndarray, region) -> MidsagittalPlane:
    """Plane through the median of all rib voxels with normal = patient left (no anchors)."""
    from .anatomy_geometry import median_ras

    center = median_ras(context.geometry, rib_mask, region)
    return MidsagittalPlane(tuple(center), (-1.0, 0.0, 0.0), 0.0, "rib cage centre")


def _attachment_numbers(context: StepContext, ribs: list[_Component], report: StepReport) -> dict[int, int]:
    """Rib component index -> number of the thoracic vertebra its medial end is nearest to."""
    editor = context.editor
    present = editor.present_labels(THORACIC_VERTEBRAE)
    if not present:
        return {}
    points, owners = [], []
    for label in present:
        mask, region = editor.mask(label)
        pts = context.geometry.points_ras(mask, region, max_points=20_000)
        points.append(pts)
        owners.append(np.full(len(pts), THORACIC_VERTEBRAE.index(label) + 1))
    tree = cKDTree(np.concatenate(points))
    owner = np.concatenate(owners)
    numbers = {}
    for rib in ribs:
        closest = np.argsort(np.abs(rib.distance))[: max(5, int(len(rib.distance) * _MEDIAL_FRACTION))]
        dist, nearest = tree.query(rib.points[closest])
        votes = owner[nearest[dist <= _ATTACHMENT_MAX_DISTANCE_MM]]
        if votes.size:
            numbers[rib.index] = int(np.bincount(votes).argmax())
    report.details["thoracic_vertebrae_present"] = len(present)
    return numbers


def _number_side(context: StepContext, side: str, ribs: list[_Component], report: StepReport) -> bool:
    """Set ``number`` on the ribs of one side; False when the side cannot be numbered."""
    ribs.sort(key=lambda r: -r.median_height)  # most superior first
    if len(ribs) == RIBS_PER_SIDE:
        by_lowest = sorted(ribs, key=lambda r: -r.lowest_height)
        if [r.index for r in by_lowest] != [r.index for r in ribs]:
            report.warnings.append(
                f"{side} ribs: the order of the ribs' median points differs from the order of their lowest "
                f"points (dissertation consistency check); the {side} ribs were left unchanged"
            )
            return False
        for rank, rib in enumerate(ribs, start=1):
            rib.number = rank
        report.details[f"{side}_method"] = "order by height (12 ribs)"
        return True
    attachments = _attachment_numbers(context, ribs, report)
    offsets = [attachments[r.index] - rank for rank, r in enumerate(ribs) if r.index in attachments]
    if not offsets:
        report.skip_rule(
            f"{side} ribs",
            f"{len(ribs)} rib(s) visible (partial field of view) and no thoracic vertebra next to them "
            "to count from; left unchanged",
        )
        return False
    offset = int(np.round(np.median(offsets)))
    offset = min(max(offset, 1), RIBS_PER_SIDE - len(ribs) + 1)
    disagreeing = sum(1 for o in offsets if o != offset)
    if disagreeing:
        report.warnings.append(
            f"{side} ribs: {disagreeing} of {len(offsets)} attachments disagree with the chosen count"
        )
    for rank, rib in enumerate(ribs):
        rib.number = offset + rank
    report.details[f"{side}_method"] = (
        f"{len(ribs)} ribs numbered by their thoracic vertebra (first visible rib = rib {offset})"
    )
    return True


def run(context: StepContext) -> StepReport:
    """Renumber the ribs in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    region = editor.box(*RIBS)
    if region is None:
        return report.skip("no rib labels in the image")
    crop = editor.array[region]
    lut = np.zeros(256, dtype=bool)
    lut[list(RIBS)] = True
    rib_mask = lut[crop]
    if not rib_mask.any():
        return report.skip("no rib labels in the image")
    plane = context.plane()
    if isinstance(plane, PlaneFitFailure):
        report.warnings.append(f"no mid-sagittal plane ({plane.reason}); sides from the rib cage centre")
        plane = _fallback_plane(context, rib_mask, region)
    pieces, n = cc3d.connected_components(rib_mask, connectivity=6, return_N=True)
    stats = cc3d.statistics(pieces)
    sizes = np.asarray(stats["voxel_counts"])
    geometry = context.geometry
    components = []
    for index in range(1, n + 1):
        box = stats["bounding_boxes"][index]
        own = pieces[box] == index
        global_box = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        points = geometry.points_ras(own, global_box, max_points=20_000)
        components.append(
            _Component(index, int(sizes[index]), points, plane.signed_distance(points), points[:, 2])
        )
    numbered: list[_Component] = []
    fragments: list[_Component] = []
    for side in ("left", "right"):
        mine = sorted((c for c in components if c.side == side), key=lambda c: -c.voxels)
        if not mine:
            report.skip_rule(f"{side} ribs", "no rib on this side")
            continue
        typical = float(np.median([c.voxels for c in mine[:RIBS_PER_SIDE]]))
        ribs = [
            c for c in mine[:RIBS_PER_SIDE] if c.voxels >= context.settings.rib_fragment_fraction * typical
        ]
        fragments.extend(c for c in mine if c not in ribs)
        if _number_side(context, side, ribs, report):
            numbered.extend(ribs)
        report.details[f"{side}_ribs"] = len(ribs)
    report.details["fragments"] = len(fragments)
    # relabel numbered ribs
    target = np.zeros(n + 1, dtype=np.uint8)
    for rib in numbered:
        target[rib.index] = rib_id(rib.number, rib.side)
    if numbered and fragments:
        tree = cKDTree(np.concatenate([r.points for r in numbered]))
        owner = np.concatenate([np.full(len(r.points), target[r.index]) for r in numbered])
        for fragment in fragments:
            dist, nearest = tree.query(fragment.points)
            if float(dist.min()) <= context.settings.rib_fragment_max_distance_mm:
                target[fragment.index] = owner[nearest[int(np.argmin(dist))]]
    for component in components:
        new_label = int(target[component.index])
        if new_label == 0:
            continue
        box = stats["bounding_boxes"][component.index]
        global_box = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        editor.relabel(global_box, pieces[box] == component.index, new_label, report)
    if numbered:
        report.rules.append("ribs numbered from the top (rib 1 = most superior)")
    else:
        report.applied = bool(report.relabelled)
        if not report.applied:
            report.skipped_reason = "no side could be numbered"
    return report


def count_ribs(labels: Volume, *, settings: PostprocessSettings | None = None) -> tuple[Volume, StepReport]:
    """Rib counting of a DAP label map; returns the new label map and the step report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
