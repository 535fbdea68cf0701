"""Step 3, rib counting (Algorithm 7): number the ribs 1..12 per side from their anatomy.

The rib labels 67..90 are merged and split into 6-connected components; each component's side
comes from the mid-sagittal plane (the left-right split's plane; without it, the centre of the
rib cage). The rule only acts on evidence that is unambiguous in the field of view; otherwise
it reports and leaves the map alone (do no harm). Per side:

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

**Rib order from anatomy, not convention.** Before counting, the labels the model gave are
checked against the attachments: rib k should attach to T_k. When most checked ribs attach to
T_(13-k), the model numbers from the other end (rib 1 = most inferior, as the released script
does); every rib label k becomes 13-k, with a warning, and ``details["rib_order"]`` says
"reversed" ("anatomical" when rib k attaches to T_k, "undetermined" without evidence).

The release kept the 24 largest components and failed with fewer than 24; here partial fields
of view, fragments and more than 12 pieces per side are handled.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy.spatial import cKDTree

from AnatomyCommonLib.volume import Volume

from ..label_schema import rib_id
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


#: Fraction of a rib's medial votes that must go to one vertebra for a clear attachment.
_ATTACHMENT_MAJORITY = 0.6
#: Fraction of the checked ribs that must attach to T_(13-k) to call the numbering reversed.
_REVERSED_MAJORITY = 0.75


class _Component:
    def __init__(
        self,
        index: int,
        voxels: int,
        points: np.ndarray,
        distance: np.ndarray,
        heights: np.ndarray,
        *,
        border: bool = False,
        label: int = 0,
    ):
        self.index = index
        self.voxels = voxels
        self.border = border  # a voxel on a face of the image: cut by the field of view
        self.label = label  # the label most of its voxels hold (the model's number)
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


def _touches_border(mask: np.ndarray, region, shape: tuple[int, ...]) -> bool:
    """True when a mask (a crop at ``region``) has a voxel on a face of the whole image."""
    for axis, (sl, n) in enumerate(zip(region, shape, strict=True)):
        if sl.start == 0 and np.take(mask, 0, axis=axis).any():
            return True
        if sl.stop == n and np.take(mask, -1, axis=axis).any():
            return True
    return False


def _attachment_numbers(context: StepContext, ribs: list[_Component], report: StepReport) -> dict[int, int]:
    """Rib component index -> number of the thoracic vertebra its medial end clearly attaches to.

    Only vertebrae wholly in view count: a rib whose medial end is nearest to a vertebra cut by
    the image border, or whose votes split between vertebrae, gets no attachment.
    """
    editor = context.editor
    present = editor.present_labels(THORACIC_VERTEBRAE)
    if not present:
        return {}
    points, owners, in_view = [], [], np.zeros(len(THORACIC_VERTEBRAE) + 1, dtype=bool)
    for label in present:
        mask, region = editor.mask(label)
        number = THORACIC_VERTEBRAE.index(label) + 1
        in_view[number] = not _touches_border(mask, region, editor.array.shape)
        pts = context.geometry.points_ras(mask, region, max_points=20_000)
        points.append(pts)
        owners.append(np.full(len(pts), number))
    tree = cKDTree(np.concatenate(points))
    owner = np.concatenate(owners)
    numbers = {}
    for rib in ribs:
        closest = np.argsort(np.abs(rib.distance))[: max(5, int(len(rib.distance) * _MEDIAL_FRACTION))]
        dist, nearest = tree.query(rib.points[closest])
        votes = owner[nearest[dist <= _ATTACHMENT_MAX_DISTANCE_MM]]
        if not votes.size:
            continue
        counts = np.bincount(votes)
        winner = int(counts.argmax())
        if counts[winner] >= _ATTACHMENT_MAJORITY * votes.size and in_view[winner]:
            numbers[rib.index] = winner
    report.details["thoracic_vertebrae_present"] = len(present)
    report.details["thoracic_vertebrae_in_view"] = int(in_view.sum())
    return numbers


def _number_of(label: int) -> int:
    return (label - RIBS[0]) // 2 + 1


def _check_rib_order(ribs: list[_Component], attachments: dict[int, int], report: StepReport) -> bool:
    """Compare the model's rib numbers with the attachments; True when numbered from the other end."""
    checked = [(r, attachments[r.index]) for r in ribs if r.index in attachments and r.label in RIBS]
    agree = sum(1 for r, t in checked if _number_of(r.label) == t)
    reversed_ = sum(1 for r, t in checked if _number_of(r.label) == RIBS_PER_SIDE + 1 - t)
    report.details["rib_order_evidence"] = {
        "checked": len(checked),
        "rib_k_at_T_k": agree,
        "reversed": reversed_,
    }
    if len(checked) >= 2 and reversed_ > agree and reversed_ >= _REVERSED_MAJORITY * len(checked):
        report.details["rib_order"] = "reversed"
        report.warnings.append(
            f"the rib labels are numbered from the other end ({reversed_} of {len(checked)} ribs labelled k "
            "attach to vertebra T(13-k): rib 1 = most inferior, as the released script numbers them); "
            "every rib label k was renumbered 13-k"
        )
        return True
    report.details["rib_order"] = "anatomical" if agree and agree >= reversed_ else "undetermined"
    return False


def _renumber_reversed(context: StepContext, report: StepReport) -> None:
    """Rib label k -> 13-k on both sides (the model counted from the other end)."""
    editor = context.editor
    region = editor.box(*RIBS)
    crop = editor.array[region].copy()
    for label in RIBS:
        mask = crop == label
        if mask.any():
            number = _number_of(label)
            side = "left" if (label - RIBS[0]) % 2 == 0 else "right"
            editor.relabel(region, mask, rib_id(RIBS_PER_SIDE + 1 - number, side), report)


def _number_side(side: str, ribs: list[_Component], attachments: dict[int, int], report: StepReport) -> bool:
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
            _Component(
                index,
                int(sizes[index]),
                points,
                plane.signed_distance(points),
                points[:, 2],
                border=_touches_border(own, global_box, editor.array.shape),
                label=int(np.bincount(crop[box][own]).argmax()),
            )
        )
    numbered: list[_Component] = []
    fragments: list[_Component] = []
    sides: dict[str, list[_Component]] = {}
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
    attachments = _attachment_numbers(context, candidates, report)
    if _check_rib_order(candidates, attachments, report):
        _renumber_reversed(context, report)
    for side, ribs in sides.items():
        if _number_side(side, ribs, attachments, report):
            numbered.extend(r for r in ribs if r.number is not None)
        report.details[f"{side}_ribs"] = len(ribs)
    report.details["fragments"] = len(fragments)
    # relabel numbered ribs
    target = np.zeros(n + 1, dtype=np.uint8)
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
