"""Rib anatomy shared by the rib rules: rib components, their sides and their vertebra attachments.

The rib labels 67..90 are merged and split into 6-connected components (one per rib when the
ribs do not touch). Each component knows its voxel count, RAS points, heights, side (from the
mid-sagittal plane; without it, the centre of the rib cage), whether the image border cuts it,
and the label most of its voxels hold (the model's number). A rib's *attachment* is the
thoracic vertebra its medial end (the voxels closest to the mid-sagittal plane) lies next to:
rib k attaches to T_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy.spatial import cKDTree

from .anatomy_geometry import MidsagittalPlane, PlaneFitFailure, Region
from .report import StepReport
from .step_context import StepContext

RIBS: tuple[int, ...] = tuple(range(67, 91))
THORACIC_VERTEBRAE: tuple[int, ...] = tuple(range(50, 62))  # T1 .. T12
RIBS_PER_SIDE = 12
#: Rib voxels used to find the vertebra a rib attaches to: the fraction closest to the midline.
_MEDIAL_FRACTION = 0.1
#: A medial rib voxel farther than this from every thoracic vertebra does not vote.
_ATTACHMENT_MAX_DISTANCE_MM = 25.0
#: Points of a rib component at most (an evenly strided subsample in raster order).
_MAX_POINTS = 20_000
#: Fraction of a rib's medial votes that must go to one vertebra for a clear attachment.
_ATTACHMENT_MAJORITY = 0.6


class RibComponent:
    """One 6-connected piece of rib voxels."""

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
        #: Thoracic vertebra number the medial end attaches to; False until computed.
        self.attachment: int | bool | None = False


def _fallback_plane(context: StepContext, rib_mask: np.ndarray, region) -> MidsagittalPlane:
    """Plane through the median of all rib voxels with normal = patient left (no anchors)."""
    from .anatomy_geometry import median_ras

    center = median_ras(context.geometry, rib_mask, region)
    return MidsagittalPlane(tuple(center), (-1.0, 0.0, 0.0), 0.0, "rib cage centre")


def touches_border(mask: np.ndarray, region, shape: tuple[int, ...]) -> bool:
    """True when a mask (a crop at ``region``) has a voxel on a face of the whole image."""
    for axis, (sl, n) in enumerate(zip(region, shape, strict=True)):
        if sl.start == 0 and np.take(mask, 0, axis=axis).any():
            return True
        if sl.stop == n and np.take(mask, -1, axis=axis).any():
            return True
    return False


def _vertebra_points(context: StepContext) -> tuple[cKDTree, np.ndarray, np.ndarray, int] | None:
    """KD-tree of thoracic vertebra voxels (RAS), their vertebra numbers, which are wholly in view."""
    editor = context.editor
    present = editor.present_labels(THORACIC_VERTEBRAE)
    if not present:
        return None
    points, owners, in_view = [], [], np.zeros(len(THORACIC_VERTEBRAE) + 1, dtype=bool)
    for label in present:
        mask, region = editor.mask(label)
        number = THORACIC_VERTEBRAE.index(label) + 1
        in_view[number] = not touches_border(mask, region, editor.array.shape)
        pts = context.geometry.points_ras(mask, region, max_points=20_000)
        points.append(pts)
        owners.append(np.full(len(pts), number))
    return cKDTree(np.concatenate(points)), np.concatenate(owners), in_view, len(present)


def attachment_numbers(
    context: StepContext, ribs: list[RibComponent], report: StepReport, found: RibPieces | None = None
) -> dict[int, int]:
    """Rib component index -> number of the thoracic vertebra its medial end clearly attaches to.

    Only vertebrae wholly in view count: a rib whose medial end is nearest to a vertebra cut by
    the image border, or whose votes split between vertebrae, gets no attachment. The vertebra
    points are kept in ``found`` for the next rule.
    """
    vertebrae = found.vertebrae if found is not None and found.vertebrae is not None else None
    if vertebrae is None:
        vertebrae = _vertebra_points(context)
        if found is not None:
            found.vertebrae = vertebrae
    if vertebrae is None:
        return {}
    tree, owner, in_view, present = vertebrae
    numbers = {}
    for rib in ribs:
        if rib.attachment is False:  # not computed yet (None: computed, no clear attachment)
            rib.attachment = None
            count = min(len(rib.distance), max(5, int(len(rib.distance) * _MEDIAL_FRACTION)))
            closest = np.argpartition(np.abs(rib.distance), count - 1)[:count]
            rib.attachment = _clear_attachment(tree, owner, in_view, rib.points[closest])
        if rib.attachment is not None:
            numbers[rib.index] = rib.attachment
    report.details["thoracic_vertebrae_present"] = present
    report.details["thoracic_vertebrae_in_view"] = int(in_view.sum())
    return numbers


def _clear_attachment(
    tree: cKDTree, owner: np.ndarray, in_view: np.ndarray, points: np.ndarray
) -> int | None:
    """The vertebra (number) the ``points`` vote for: each point within
    ``_ATTACHMENT_MAX_DISTANCE_MM`` of a vertebra point votes for the vertebra of its nearest one;
    the most voted vertebra wins when it has at least ``_ATTACHMENT_MAJORITY`` of the votes and is
    wholly in view, else None.

    The nearest-point lookups are the costly part, so they run in batches and stop as soon as
    the points not looked up yet cannot change the outcome (whatever they vote); the answer is
    the one of looking all points up (each lookup is independent of the others).
    """
    total = len(points)
    counts = np.zeros(len(in_view), dtype=np.int64)  # votes per vertebra number (0 unused)
    votes = done = 0
    # a clear attachment needs at least the majority of all points looked up: start there
    batch = max(32, math.ceil(_ATTACHMENT_MAJORITY * total) + 1)
    while done < total:
        dist, nearest = tree.query(points[done : done + batch])
        done += len(dist)
        new = owner[nearest[dist <= _ATTACHMENT_MAX_DISTANCE_MM]]
        counts += np.bincount(new, minlength=len(counts))
        votes += new.size
        left = total - done
        if not left:
            break
        batch = max(32, total // 25)
        # (the margin 0.01 of a vote is far above rounding errors and keeps the answer exact)
        leader = int(counts.argmax())
        if counts[leader] >= _ATTACHMENT_MAJORITY * (votes + left) + 0.01:
            # the majority (above half) whatever the rest votes: the winner is known
            return leader if in_view[leader] else None
        # a vertebra can still reach the majority only when (nearly) all remaining points vote for it
        reachable = counts + (1 - _ATTACHMENT_MAJORITY) * left + 0.01 >= _ATTACHMENT_MAJORITY * votes
        if not (reachable & in_view).any():
            return None
    if votes:
        winner = int(counts.argmax())
        if counts[winner] >= _ATTACHMENT_MAJORITY * votes and in_view[winner]:
            return winner
    return None


def is_rib(labels: np.ndarray) -> np.ndarray:
    """Mask of the rib labels 67..90 (one id range: two cheap passes instead of a lookup table)."""
    return np.subtract(labels, RIBS[0], dtype=np.uint8) < len(RIBS)


def rib_number(label: int) -> int:
    """Rib number 1..12 of a rib label id."""
    return (label - RIBS[0]) // 2 + 1


def rib_side(label: int) -> str:
    return "left" if (label - RIBS[0]) % 2 == 0 else "right"


@dataclass
class RibPieces:
    """The rib components of one label map state: crop box, component map, component statistics."""

    region: Region
    pieces: np.ndarray
    stats: dict
    components: list[RibComponent]
    complete: bool  # every component built (not only the largest)
    vertebrae: tuple | None = None  # thoracic vertebra points (see attachment_numbers)


def _grouped_statistics(flat: np.ndarray, owner: np.ndarray, n: int, shape) -> tuple[dict, np.ndarray]:
    """``component_statistics`` of a component map from its foreground voxels (``flat``, raster
    order) and their components (``owner``, 1..n), and the order grouping them by component.

    Listing the foreground once beats a run pass over a mostly empty box (the rib cage's).
    """
    order = np.argsort(owner.astype(np.uint16) if n < 2**16 else owner, kind="stable")  # radix
    counts = np.bincount(owner, minlength=n + 1).astype(np.int64)
    if n == 0:
        return {"voxel_counts": counts, "bounding_boxes": [None], "first_voxel": np.full(1, -1)}, order
    grouped = flat[order]  # raster order within each component
    starts = np.cumsum(counts)[:-1]  # where component c starts: starts[c - 1]
    first = np.full(n + 1, -1, dtype=np.intp)
    first[1:] = grouped[starts]
    k, j, i = np.unravel_index(grouped, shape)
    ends = np.append(starts[1:], len(grouped)) - 1
    low = (k[starts], np.minimum.reduceat(j, starts), np.minimum.reduceat(i, starts))
    high = (k[ends], np.maximum.reduceat(j, starts), np.maximum.reduceat(i, starts))
    boxes = [None] + [
        tuple(slice(int(lo[c]), int(hi[c]) + 1) for lo, hi in zip(low, high, strict=True)) for c in range(n)
    ]
    return {"voxel_counts": counts, "bounding_boxes": boxes, "first_voxel": first}, order


def rib_components(
    context: StepContext,
    region: Region,
    rib_mask: np.ndarray,
    report: StepReport,
    *,
    largest: int | None = None,
) -> RibPieces:
    """6-connected components of the rib voxels (``rib_mask``, a crop at ``region``).

    Only the ``largest`` biggest components are built when given (biggest first).
    """
    editor = context.editor
    crop = editor.array[region]
    plane = context.plane()
    if isinstance(plane, PlaneFitFailure):
        report.warnings.append(f"no mid-sagittal plane ({plane.reason}); sides from the rib cage centre")
        plane = _fallback_plane(context, rib_mask, region)
    pieces, n = cc3d.connected_components(rib_mask, connectivity=6, return_N=True)
    # every rib voxel once, grouped by component (raster order within each group, as
    # flatnonzero of the component's own mask would list them)
    flat = np.flatnonzero(rib_mask)
    owner = pieces.ravel()[flat]
    stats, order = _grouped_statistics(flat, owner, n, rib_mask.shape)
    sizes = stats["voxel_counts"]
    geometry = context.geometry
    components = []
    holders = []  # the labels each component holds
    indices = range(1, n + 1)
    if largest is not None and n > largest:
        indices = (np.argsort(-sizes[1:], kind="stable")[:largest] + 1).tolist()
    group_end = np.cumsum(sizes)  # group of component c: [group_end[c - 1], group_end[c])
    held_labels = np.ascontiguousarray(crop).ravel()[flat]  # (faster than crop[rib_mask])
    offset = np.array([r.start for r in region])
    shape = editor.array.shape
    for index in indices:
        mine = order[group_end[index - 1] : group_end[index]]
        voxels = flat[mine]
        if len(voxels) > _MAX_POINTS:  # the subsample of points_ras
            voxels = voxels[:: math.ceil(len(voxels) / _MAX_POINTS)]
        points = geometry.ras_of(np.stack(np.unravel_index(voxels, rib_mask.shape), axis=1) + offset)
        held = np.bincount(held_labels[mine])
        box = stats["bounding_boxes"][index]  # exact: a face of the image holds a voxel iff
        border = any(  # the component's box reaches it
            r.start + b.start == 0 or r.start + b.stop == dim
            for r, b, dim in zip(region, box, shape, strict=True)
        )
        components.append(
            RibComponent(
                index,
                int(sizes[index]),
                points,
                plane.signed_distance(points),
                points[:, 2],
                border=border,
                label=int(held.argmax()),
            )
        )
        holders.append(np.flatnonzero(held))
    if len(components) == n:
        # a rib label held by one component only, which holds nothing else, is one 6-connected
        # piece: the largest-component rule need not label it again
        owners = np.bincount(np.concatenate(holders), minlength=RIBS[-1] + 1) if holders else []
        for labels in holders:
            if len(labels) == 1 and owners[labels[0]] == 1:
                context.note_single_piece(int(labels[0]), 6)
    return RibPieces(region, pieces, stats, components, len(components) == n)
