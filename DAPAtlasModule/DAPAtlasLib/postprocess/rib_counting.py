"""Step 4, rib counting (Algorithm 7): number the ribs 1..12 per side from their anatomy.

The rib labels 67..90 are merged and split into 6-connected components
(:mod:`.rib_anatomy`); each component's side comes from the mid-sagittal plane (the left-right
split's plane; without it, the centre of the rib cage). The rule only acts on evidence that is
unambiguous in the field of view; otherwise it reports and leaves the map alone (do no harm).
Per side:

* Components smaller than ``rib_fragment_fraction`` of a typical rib of that side (the median
  of its largest components), and any beyond the 12 largest, are *fragments*; they never take
  part in the counting.
* A rib **cut by the image border** (a voxel on a face of the image) keeps its label: which
  rib it is may depend on the part outside the image.
* **Whole rib cage** (12 ribs on a side, none cut): ribs are ordered by the height of their
  median point and numbered from the top, **rib 1 = the most superior rib** (the dissertation;
  the released script sorts ascending on its own axis convention and so gives rib 1 to the
  lowest rib, which we do not copy). The dissertation's consistency check is kept: when the
  order by median points differs from the order by lowest points, the side is left unchanged.
* **Partial field of view** (fewer than 12 ribs, or ribs cut by the border): each complete
  rib's medial end (the voxels closest to the mid-sagittal plane) is matched to the nearest
  thoracic vertebra T1..T12; a rib has an *attachment* when most of its medial voxels vote for
  one vertebra and that vertebra is wholly in view (not cut by the border). Ribs are numbered
  from their attachments only when every attachment of the side agrees with the ribs' order
  by height (rib k+1 below rib k attaches to T(k+1)); when they disagree, or no rib has an
  attachment, the side is left unchanged and the report says why.
* Fragments take the new label of the nearest numbered rib when it is within
  ``rib_fragment_max_distance_mm`` and not cut by the border; others keep their label.

Whether the model numbers ribs from the other end (rib 1 = most inferior, as the released
script does) is checked just before, by the ``rib_order`` step (:mod:`.rib_order`).

The release kept the 24 largest components and failed with fewer than 24; here partial fields
of view, fragments and more than 12 pieces per side are handled.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from AnatomyCommonLib.anatomy.label_schema import rib_id
from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import PlaneFitFailure
from .report import StepReport
from .rib_anatomy import (
    RIBS,
    RIBS_PER_SIDE,
    THORACIC_VERTEBRAE,
    RibComponent,
    attachment_numbers,
    is_rib,
    rib_components,
)
from .step_context import PostprocessSettings, StepContext

__all__ = ["RIBS", "RIBS_PER_SIDE", "STEP_NAME", "THORACIC_VERTEBRAE", "count_ribs", "run"]

STEP_NAME = "rib_counting"


def _number_side(
    side: str, ribs: list[RibComponent], attachments: dict[int, int], report: StepReport
) -> bool:
    """Set ``number`` on the complete ribs of one side; False when the side cannot be numbered."""
    ribs.sort(key=lambda r: -r.median_height)  # most superior first
    complete = [r for r in ribs if not r.border]
    cut = len(ribs) - len(complete)
    if cut:
        report.details[f"{side}_ribs_cut_by_the_border"] = cut
    if not complete:
        report.skip_rule(f"{side} ribs", "every visible rib is cut by the image border; labels kept")
        return False
    if len(complete) == RIBS_PER_SIDE:
        by_lowest = sorted(complete, key=lambda r: -r.lowest_height)
        if [r.index for r in by_lowest] != [r.index for r in complete]:
            report.warnings.append(
                f"{side} ribs: the order of the ribs' median points differs from the order of their lowest "
                f"points (dissertation consistency check); the {side} ribs were left unchanged"
            )
            return False
        for rank, rib in enumerate(complete, start=1):
            rib.number = rank
        report.details[f"{side}_method"] = "order by height (12 ribs)"
        return True
    attached = [(rank, attachments[r.index]) for rank, r in enumerate(complete) if r.index in attachments]
    if not attached:
        report.skip_rule(
            f"{side} ribs",
            f"{len(complete)} complete rib(s) visible (partial field of view) and no thoracic vertebra "
            "wholly in view that they clearly attach to; left unchanged",
        )
        return False
    offsets = sorted({number - rank for rank, number in attached})
    if len(offsets) > 1:
        report.warnings.append(
            f"{side} ribs: attachments disagree with the ribs' order by height (from the top, the complete "
            f"ribs attach to {', '.join(f'T{n}' for _, n in attached)}); the {side} ribs were left unchanged"
        )
        return False
    offset = offsets[0]
    if offset < 1 or offset + len(complete) - 1 > RIBS_PER_SIDE:
        report.warnings.append(
            f"{side} ribs: {len(complete)} ribs from rib {offset} do not fit ribs 1..12; left unchanged"
        )
        return False
    for rank, rib in enumerate(complete):
        rib.number = offset + rank
    report.details[f"{side}_method"] = (
        f"{len(complete)} ribs numbered by their thoracic vertebra (first complete rib = rib {offset})"
    )
    return True


def run(context: StepContext) -> StepReport:
    """Renumber the ribs in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    region = editor.box(*RIBS)
    if region is None:
        return report.skip("no rib labels in the image")
    found = context.rib_components
    context.rib_components = None
    if found is None or found.region != region:
        rib_mask = is_rib(editor.array[region])
        if not rib_mask.any():
            return report.skip("no rib labels in the image")
        found = rib_components(context, region, rib_mask, report)
    elif isinstance(context.plane(), PlaneFitFailure):
        report.warnings.append(
            f"no mid-sagittal plane ({context.plane().reason}); sides from the rib cage centre"
        )
    pieces, stats, components = found.pieces, found.stats, found.components
    numbered: list[RibComponent] = []
    fragments: list[RibComponent] = []
    sides: dict[str, list[RibComponent]] = {}
    for side in ("left", "right"):
        mine = sorted((c for c in components if c.side == side), key=lambda c: -c.voxels)
        if not mine:
            report.skip_rule(f"{side} ribs", "no rib on this side")
            continue
        typical = float(np.median([c.voxels for c in mine[:RIBS_PER_SIDE]]))
        sides[side] = [
            c for c in mine[:RIBS_PER_SIDE] if c.voxels >= context.settings.rib_fragment_fraction * typical
        ]
        fragments.extend(c for c in mine if c not in sides[side])
    candidates = [r for ribs in sides.values() for r in ribs if not r.border]
    attachments = attachment_numbers(context, candidates, report, found)
    for side, ribs in sides.items():
        if _number_side(side, ribs, attachments, report):
            numbered.extend(r for r in ribs if r.number is not None)
        report.details[f"{side}_ribs"] = len(ribs)
    report.details["fragments"] = len(fragments)
    # relabel numbered ribs
    target = np.zeros(len(components) + 1, dtype=np.uint8)
    for rib in numbered:
        target[rib.index] = rib_id(rib.number, rib.side)
    if numbered and fragments:
        tree = cKDTree(np.concatenate([r.points for r in numbered]))
        owner = np.concatenate([np.full(len(r.points), target[r.index]) for r in numbered])
        for fragment in (f for f in fragments if not f.border):
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
